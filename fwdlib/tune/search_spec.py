"""A search, built once at the edge: which run it tunes, what it searches, where it is stored.

The command line and a notebook's cell build a `SearchSpec` from their words (`SearchSpec.of`);
every value is checked there, before a study is stored: the entry (so that the tuned parameters
fit exactly what the benchmark trains), the space, the configuration (built once on the CPU),
the parameters file and the heartbeat. `search.tune` then takes the spec alone.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .. import algorithms as registry
from .. import data as datasets
from ..bench.params import UNPINNED
from ..bench.plan import check_twin_variants, entries_of, spec_of
from ..bench.presets import PRESETS
from ..commandline import BadValue, format_settings
from ..coordination import GRACE_S, HEARTBEAT_S, check_liveness
from ..files import as_json, writable_folder
from ..runs.entry import Entry
from ..runs.spec import RunSpec
from ..session import pick_device
from .space import search_space

DEFAULT_DIR = Path("tune-results")
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_DIR}/studies.db"
PRUNERS = ("median", "none")


def default_preset(dataset: str) -> str:
    """The first preset that runs `dataset`: quick for the sample, paper-fmnist for Fashion-MNIST."""
    if dataset not in datasets.NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(datasets.NAMES)}")
    return next(name for name, preset in PRESETS.items() if dataset in preset.pairs)


def base_spec(name: str, dataset: str, preset: str | None = None, *, epochs: int | None = None,
              overrides: dict | None = None, device: str = "cpu", seed: int = 0) -> tuple[RunSpec, tuple[Entry, ...]]:
    """The spec the benchmark runs for `name` (an algorithm, or an entry such as "bp-mlp@mf" or
    "mf+per-batch") on `dataset` in `preset`, and every entry that trains that same run, so that
    the tuned parameters fit exactly what the benchmark will train. `overrides` (--set) change
    its config; the benchmark then refuses the file unless it runs the same."""
    preset = default_preset(dataset) if preset is None else preset
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if dataset not in PRESETS[preset].pairs:
        raise ValueError(f"preset {preset} does not run {dataset}; it runs {', '.join(PRESETS[preset].pairs)}")
    try:
        entry = Entry.parse(name)
    except ValueError:
        entry = None
    ways = check_twin_variants([entry.twin_variant]) if entry and entry.twin_variant else ()     # bp-cnn+checkpoint@...
    specs = {entry: spec_of(PRESETS[preset], dataset, entry, epochs=epochs, device=device, seed=seed)
             for entry in entries_of(PRESETS[preset], dataset, ways)}
    if entry in specs:
        chosen = [entry]
    elif name in registry.NAMES:
        chosen = [e for e in specs if e.algorithm == name]
    else:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(registry.NAMES)}, "
                         f"or an entry of preset {preset} on {dataset}: {', '.join(map(str, specs))}")
    if not chosen:
        raise ValueError(f"preset {preset} runs no {name} on {dataset}, so the benchmark could not use what is "
                         f"tuned; its entries there: {', '.join(map(str, specs))}")
    if len({specs[e].key for e in chosen}) > 1:
        raise ValueError(f"{name} runs with different configurations in preset {preset} on {dataset} "
                         f"({', '.join(map(str, chosen))}); name the one to tune, e.g. --algorithm {chosen[0]}")
    spec = specs[chosen[0]]
    entries = tuple(e for e in specs if specs[e].key == spec.key)
    return (spec.with_config(**overrides) if overrides else spec), entries


def searched_spec(spec: RunSpec, searched: dict) -> RunSpec:
    """The spec every trial shares: the benchmark's, without the values a trial samples. (An epoch
    count the cap leaves one value for is not searched; the spec's own applies, as in the benchmark.)"""
    return spec.replace(config={k: v for k, v in spec.config.items() if k not in searched})


def setup_of(spec: RunSpec, entries, searched: dict, pruner: str) -> dict:
    """Everything that must match for trials to be comparable; stored with the study. The seed
    and the device are left out: workers on different machines share one study."""
    settings = {k: v for k, v in spec.settings().items() if k not in UNPINNED}
    return as_json({"spec": settings, "entries": [str(e) for e in entries], "space": searched, "pruner": pruner})


def check_config(spec: RunSpec, searched: dict) -> None:
    """Build the model once, on the CPU, before anything is stored: a bad --set fails here
    with the constructor's message instead of leaving a study behind."""
    shape = datasets.SPECS["fashion_mnist" if spec.dataset == datasets.SAMPLE_NAME else spec.dataset]
    try:
        registry.build(spec.algorithm, input_shape=shape.input_shape, num_classes=shape.num_classes,
                       **spec.config, **{name: low for name, (low, _, _) in searched.items()})
    except (TypeError, ValueError) as err:
        raise ValueError(f"the configuration to tune ({format_settings(dict(spec.config))}; change it with --set) "
                         f"is not one {spec.algorithm} accepts: {err}") from None


@dataclass(frozen=True)
class SearchSpec:
    """Everything one search is, checked: `spec` is the run every trial shares (the benchmark's,
    less the values a trial samples), `entries` every benchmark entry that trains that run,
    `space` name -> (low, high, "log" or "int"); `study` the study's name in `storage`; `out` the
    best-parameters file; `seed` the training seed (with the study's name and `worker`, the
    sampler's); heartbeat_s, grace_s: database storage only (see search.py)."""
    spec: RunSpec
    entries: tuple[Entry, ...]
    space: dict
    trials: int
    pruner: str
    study: str
    storage: str
    out: Path
    seed: int = 0
    worker: int = 0
    heartbeat_s: float = HEARTBEAT_S
    grace_s: float = GRACE_S

    @classmethod
    def of(cls, algorithm: str, dataset: str = datasets.SAMPLE_NAME, *, trials: int = 20, epochs: int | None = None,
           preset: str | None = None, storage: str = DEFAULT_STORAGE, study: str | None = None, seed: int = 0,
           worker: int = 0, out: str | Path | None = None, pruner: str = "median", only=None,
           overrides: dict | None = None, device: str | None = None, heartbeat_s: float = HEARTBEAT_S,
           grace_s: float = GRACE_S) -> SearchSpec:
        """The search of `algorithm` (or an entry such as "bp-mlp@mf") on `dataset` as `preset`
        (default: the first that runs it) trains it; `overrides` change its configuration, `only`
        narrows the space."""
        if trials < 1:
            raise BadValue("trials", f"must be at least 1, got {trials}")
        if pruner not in PRUNERS:
            raise ValueError(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
        if epochs is not None and epochs < 1:
            raise BadValue("epochs", f"must be at least 1, got {epochs}")
        if out is not None and not str(out).strip():
            raise BadValue("out", "is empty; name the .json file for the best parameters, or leave it out")
        if only is not None and not only:
            raise BadValue("only", "is empty; name the parameters to search, or leave it out to search them all")
        check_liveness(heartbeat_s, grace_s)
        spec, entries = base_spec(algorithm, dataset, preset, epochs=epochs, overrides=overrides,
                                  device=str(pick_device(device)), seed=seed)
        space, _ = search_space(spec.algorithm, spec.config, spec.rule.epochs, only)
        for key in sorted(set(overrides or {}) & set(space)):
            print(f"tune: warning: --set {key}={overrides[key]!r} is ignored, because {key} is searched; "
                  f"leave it out of the search with --only to fix it at that value", file=sys.stderr)
        spec = searched_spec(spec, space)
        check_config(spec, space)
        study = study or f"{entries[0] if len(entries) == 1 else entries[0].twin_name or spec.algorithm}-{dataset}"
        out = Path(out) if out else DEFAULT_DIR / f"{study}.json"
        writable_folder(out.parent, what=f"the folder of --out {out}")
        if out.is_dir():
            raise BadValue("out", f"{out} is a folder; name the .json file to write, e.g. {out / (study + '.json')}")
        return cls(spec, entries, space, trials, pruner, study, storage, out, seed, worker, heartbeat_s, grace_s)

    @property
    def setup(self) -> dict:
        """Everything that must match for trials to be comparable; stored with the study."""
        return setup_of(self.spec, self.entries, self.space, self.pruner)
