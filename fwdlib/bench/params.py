"""Best-parameter files: what `fwdlib tune` writes and `fwdlib bench --params` reads.

A file (format FORMAT) holds the tuned parameters, the entries they were tuned for (e.g. "mf"
and "bp-mlp@mf") and the spec they were tuned with (`RunSpec.settings()`, less the seed and the
device). It applies only to a run whose spec is that one: a different batch, augmentation or
layer size is refused with the settings that differ. A different stopping rule (tuning on a
shorter budget is common) is applied with a note.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import algorithms as registry
from ..commandline import BadValue, as_tuple, format_settings
from ..files import regular_file
from ..runs.entry import Entry
from ..runs.spec import RunSpec

FORMAT = "fwdlib-params/2"
PARAMS_MAX_BYTES = 2**20            # a best-parameters file is a few hundred bytes
# Settings a tuned file does not pin: the seed and where it runs; the stopping rule is noted.
UNPINNED = ("seed", "device", "cuda_graphs")
NOTED = ("rule.",)


def params_record(spec: RunSpec, params: dict, entries, **extra) -> dict:
    """A best-parameters file for `params` tuned on `spec` (for `entries`)."""
    settings = {k: v for k, v in spec.settings().items() if k not in UNPINNED}
    return {"format": FORMAT, "dataset": spec.dataset, "algorithm": spec.algorithm,
            "entries": [str(e) for e in entries], "params": dict(params), "spec": settings, **extra}


def load_params(paths) -> list[dict]:
    """Best-parameters files written by `fwdlib tune`, checked."""
    tuned = []
    for path in as_tuple(paths) or ():
        path = Path(path)
        try:
            if not path.is_dir():             # a folder gets its own advice below
                regular_file(path, "--params", PARAMS_MAX_BYTES)
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise BadValue("params", f"{path}: no such file (fwdlib tune writes one)") from None
        except IsADirectoryError:
            raise BadValue("params", f"{path} is a folder; pass the .json file fwdlib tune wrote "
                             f"in it, e.g. {path / 'mf-fashion_mnist_sample.json'}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise BadValue("params", f"{path}: cannot read it ({err})") from None
        except json.JSONDecodeError as err:
            raise BadValue("params", f"{path}: not valid JSON ({err})") from None
        if isinstance(record, dict) and record.get("format") == "fwdlib-params/1":
            raise BadValue("params", f"{path} was written by an older fwdlib, which did not record the run it "
                             "was tuned for; tune again with this version (fwdlib tune)")
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise BadValue("params", f"{path}: not a best-parameters file of fwdlib tune "
                             f"(expected format {FORMAT!r})")
        missing = [k for k in ("dataset", "entries", "params", "spec") if k not in record]
        if missing:
            raise BadValue("params", f"{path}: {', '.join(missing)} missing; write it again with fwdlib tune")
        for other in tuned:
            both = set(other["entries"]) & set(record["entries"])
            if other["dataset"] == record["dataset"] and both:
                raise BadValue("params", f"{other['path']} and {path} both tune {', '.join(sorted(both))} "
                                 f"on {record['dataset']}; pass one of them")
        tuned.append({**record, "path": str(path)})
    return tuned


def apply_params(specs: list[RunSpec], tuned: list[dict], verbose: bool = True) -> list[RunSpec]:
    """The specs with tuned parameters set where a file was tuned for them.

    A file applies to its entries on its dataset, and only to a spec that is the one it was
    tuned with, the tuned values aside; a twin's file applies to its variants too (a checkpointed
    twin computes the same gradients: its plain twin's values are its own)."""
    specs = list(specs)
    datasets = sorted({s.dataset for s in specs})
    tuned_entries = set()
    for t in tuned:
        if t["dataset"] not in datasets:
            raise BadValue("params", f"{t['path']} was tuned on {t['dataset']}; this benchmark runs "
                             f"{', '.join(datasets)}. Tune on the benchmark's dataset, or pick it with --dataset")
        entries = {Entry.parse(e) for e in t["entries"]}
        applied = []
        for i, spec in enumerate(specs):
            if spec.dataset != t["dataset"] or not {spec.entry, spec.entry.plain_twin} & entries:
                continue
            way = registry.REGISTRY[spec.algorithm].variants.get(spec.entry.twin_variant, {}) \
                if spec.entry not in entries else {}
            ignore = (*UNPINNED, *(f"config.{k}" for k in (*t["params"], *way)))
            refused = [d for d in spec.differences(t["spec"], ignore=ignore) if not d.startswith(NOTED)]
            if refused:
                raise BadValue("params", f"{t['path']} was tuned for {spec.entry} on another run than this "
                                 f"benchmark's (setting: this benchmark's, the tuned run's): {'; '.join(refused)}. "
                                 f"Tune again with the benchmark's settings: fwdlib tune --algorithm "
                                 f"{spec.entry} --dataset {spec.dataset} (and its --preset)")
            noted = [d for d in spec.differences(t["spec"], ignore=ignore) if d.startswith(NOTED)]
            if noted and verbose:
                print(f"bench: note: {spec.entry} was tuned under another stopping rule ({'; '.join(noted)})")
            specs[i] = spec.with_config(**t["params"])
            applied.append(str(spec.entry))
        if not applied:
            raise BadValue("params", f"{t['path']} is for {', '.join(t['entries'])}, which this benchmark "
                             f"does not run on {t['dataset']}")
        tuned_entries.update((t["dataset"], e) for e in applied)
        if verbose:
            print(f"bench: tuned parameters from {t['path']} for {', '.join(applied)}: {format_settings(t['params'])}")
    for spec in specs:
        if spec.entry.is_twin and verbose:
            rival = (spec.dataset, str(spec.entry.rival_entry))
            if ((spec.dataset, str(spec.entry)) in tuned_entries) != (rival in tuned_entries):
                print(f"bench: note: only one of {spec.entry.rival_entry} and {spec.entry} on {spec.dataset} is "
                      "tuned; the pair is not compared on equal terms")
    return specs
