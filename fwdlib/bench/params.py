"""Best-parameter files: what `python -m fwdlib.tune` writes and `python -m fwdlib.bench --params` reads.

A file (format FORMAT) names its dataset, the entries it was tuned for (e.g. "mf" and
"bp-mlp@mf"), the tuned parameters, and the rest of the configuration they were tuned with; it
applies only where the benchmark runs exactly that configuration.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .presets import Preset
from ..utils import as_json, as_tuple, format_settings

FORMAT = "fwdlib-params/1"


def load_params(paths) -> list[dict]:
    """Best-parameters files written by `python -m fwdlib.tune`, checked."""
    tuned = []
    for path in as_tuple(paths) or ():
        path = Path(path)
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"--params {path}: no such file (python -m fwdlib.tune writes one)") from None
        except IsADirectoryError:
            raise ValueError(f"--params {path} is a folder; pass the .json file python -m fwdlib.tune wrote "
                             f"in it, e.g. {path / 'mf-fashion_mnist_sample.json'}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"--params {path}: cannot read it ({err})") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"--params {path}: not valid JSON ({err})") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError(f"--params {path}: not a best-parameters file of python -m fwdlib.tune "
                             f"(expected format {FORMAT!r})")
        missing = [k for k in ("dataset", "entries", "params", "config") if k not in record]
        if missing:
            raise ValueError(f"--params {path}: {', '.join(missing)} missing; write it again with python -m fwdlib.tune")
        for other in tuned:
            both = set(other["entries"]) & set(record["entries"])
            if other["dataset"] == record["dataset"] and both:
                raise ValueError(f"--params {other['path']} and {path} both tune {', '.join(sorted(both))} "
                                 f"on {record['dataset']}; pass one of them")
        tuned.append({**record, "path": str(path)})
    return tuned


def apply_params(preset: Preset, tuned: list[dict], dataset_names, verbose: bool = True) -> Preset:
    """The preset with tuned parameters merged into the configs they were tuned for.

    A file applies to its entries (e.g. "mf", "bp-mlp@mf") on its dataset, and only if the rest
    of the configuration (layers, schedule, ...) is the one it was tuned with."""
    pairs = {d: list(p) for d, p in preset.pairs.items()}
    tuned_entries = set()
    for t in tuned:
        if t["dataset"] not in dataset_names:
            raise ValueError(f"--params {t['path']} was tuned on {t['dataset']}; this benchmark runs "
                             f"{', '.join(dataset_names)}. Tune on the benchmark's dataset, or pick it with --dataset")
        applied = []
        for i, pair in enumerate(pairs[t["dataset"]]):
            (rival, _, rival_config), (twin, _, twin_config) = pair.members()
            if rival in t["entries"]:
                rival_config = _tuned_config(t, rival, rival_config)
                applied.append(rival)
            if twin in t["entries"]:
                twin_config = _tuned_config(t, twin, twin_config)
                applied.append(twin)
            pairs[t["dataset"]][i] = dataclasses.replace(pair, rival_config=rival_config, twin_config=twin_config)
        if not applied:
            raise ValueError(f"--params {t['path']} is for {', '.join(t['entries'])}, which preset "
                             f"{preset.name} does not run on {t['dataset']}")
        tuned_entries.update((t["dataset"], e) for e in applied)
        if verbose:
            print(f"bench: tuned parameters from {t['path']} for {', '.join(applied)}: {format_settings(t['params'])}")
    for dataset, ps in pairs.items():
        for pair in ps:
            (rival, _, _), (twin, _, _) = pair.members()
            if verbose and ((dataset, rival) in tuned_entries) != ((dataset, twin) in tuned_entries):
                print(f"bench: note: only one of {rival} and {twin} on {dataset} is tuned; "
                      "the pair is not compared on equal terms")
    return dataclasses.replace(preset, pairs={d: tuple(p) for d, p in pairs.items()})


def _tuned_config(tuned: dict, entry: str, config: dict) -> dict:
    rest = {k: v for k, v in config.items() if k not in tuned["params"]}
    if as_json(rest) != as_json(tuned["config"]):
        raise ValueError(f"--params {tuned['path']} tuned {entry} with configuration {tuned['config']}, "
                         f"but this benchmark runs it with {rest}: tune again with the benchmark's configuration")
    return {**config, **tuned["params"]}
