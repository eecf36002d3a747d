"""A benchmark, built once at the edge: what it runs, checked before anything trains.

The command line and a notebook's cell build a `Benchmark` from their words (`Benchmark.of`);
below this point no function takes a preset name, a dataset list or a flag again: it takes the
benchmark, whose specs are what will train. A wrong value stops here with a message about the
value (`BadValue` names the parameter; the command line names its flag).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import algorithms as registry, data as datasets
from ..commandline import BadValue, as_tuple
from ..runs.spec import MAX_EPOCHS, MAX_SEEDS, PROTOCOLS, RunSpec
from ..session import pick_device
from .params import apply_params, load_params
from .plan import PlannedRun, check_twin_variants, entries_of, plan, preset_specs
from .presets import PRESETS, Preset
from .results import ResultsLog

DEFAULT_OUT = "bench-results"
ANY_DEVICE = "any"      # a benchmark planned for no machine in particular (a pooled study's import)


@dataclass(frozen=True, eq=False)
class Benchmark:
    """Every run of a preset's selection, ready to train on this machine.

    specs: one per selected entry at seed 0 (tuned parameters merged in); seeds: runs of each;
    out: the results folder and log its results log (OUT/results.jsonl, resumed); root: the
    datasets' folder; idle_s: seconds of idle-power baseline before each run (3 on CUDA, where
    energy is measured). A benchmark `planned` for no machine has no log and trains nothing."""
    preset: str
    protocol: str
    specs: tuple[RunSpec, ...]
    seeds: int
    device: str
    out: Path
    root: str | None = None
    idle_s: float = 0.0
    log: ResultsLog | None = field(default=None, repr=False)

    @classmethod
    def of(cls, preset: str = "quick", *, dataset: str | list[str] | None = None,
           algorithms: str | list[str] | None = None, seeds: int | None = None, protocol: str = "converge",
           epochs: int | None = None, device: str | None = None, cuda_graphs: bool = True, params=None,
           out: str | Path = DEFAULT_OUT, root=None, idle_s: float | None = None, twin_variants=(),
           verbose: bool = True) -> Benchmark:
        """Check the words and the machine, cheapest first: an unknown name, a missing device, an
        unwritable OUT, then missing or unreadable data stop the benchmark here with their reason,
        before anything trains or is recorded. twin_variants: each twin also runs that way
        (("checkpoint",): the memory-fair twin beside the plain one)."""
        preset_obj, dataset_names, names = check_input(preset, dataset, algorithms, protocol, seeds, epochs, idle_s)
        twin_variants = check_twin_variants(twin_variants)
        if not str(out).strip():
            raise BadValue("out", "is empty; name a folder (the default is bench-results)")
        device = str(pick_device(device))
        log = ResultsLog(Path(out) / "results.jsonl")         # an unwritable OUT stops it before any data loads
        dataset_names = _present(dataset_names, root, verbose)
        for name in dataset_names:
            data = resident(name, device, root)     # read once: corrupt files fail here
            if verbose:
                print(f"data: {data.source}")
        specs = _specs(preset_obj, dataset_names, names, protocol, epochs, device, cuda_graphs, params, verbose,
                       twin_variants)
        return cls(preset, protocol, specs, seeds if seeds is not None else preset_obj.seeds, device, Path(out), root,
                   (3.0 if device.startswith("cuda") else 0.0) if idle_s is None else idle_s, log)

    @classmethod
    def planned(cls, preset: str = "quick", *, dataset=None, algorithms=None, seeds: int | None = None,
                protocol: str = "converge", epochs: int | None = None, cuda_graphs: bool = True, params=None,
                twin_variants=(), verbose: bool = True) -> Benchmark:
        """The same runs planned for no machine (device ANY_DEVICE, no data read, no log): what a
        pooled study's import compares a folder's records with."""
        preset_obj, dataset_names, names = check_input(preset, dataset, algorithms, protocol, seeds, epochs)
        specs = _specs(preset_obj, dataset_names, names, protocol, epochs, ANY_DEVICE, cuda_graphs, params, verbose,
                       check_twin_variants(twin_variants))
        return cls(preset, protocol, specs, seeds if seeds is not None else preset_obj.seeds, ANY_DEVICE, Path("."))

    def runs(self, seeds: int | None = None) -> list[PlannedRun]:
        """Every run, seed-major and counterbalanced (`plan`); `seeds` instead of the benchmark's."""
        return plan(list(self.specs), seeds or self.seeds)

    def ready_log(self) -> ResultsLog:
        """The log the runs go to; a benchmark planned for no machine trains nothing."""
        if self.log is None:
            raise ValueError(f"this benchmark was planned for no machine (device {self.device}): build it with "
                             "Benchmark.of to train it")
        return self.log


def _specs(preset_obj, dataset_names, names, protocol, epochs, device, cuda_graphs, params, verbose,
           twin_variants) -> tuple:
    """The spec of every selected entry (seed 0), tuned parameters merged in."""
    specs = preset_specs(preset_obj, dataset_names, names, twin_variants, protocol=protocol, epochs=epochs,
                         device=device, cuda_graphs=cuda_graphs)
    if not specs:
        raise ValueError(f"nothing to run: preset {preset_obj.name} has no run for {', '.join(names)} "
                         f"on {', '.join(dataset_names)}")
    return tuple(apply_params(specs, load_params(params), verbose) if params else specs)


_RESIDENT: dict = {}


def resident(name: str, device: str, root=None) -> datasets.Dataset:
    """The dataset on `device`, loaded once: the check above and the runs share it (one resident at a time)."""
    key = (name, device, root)
    if key not in _RESIDENT:
        _RESIDENT.clear()
        _RESIDENT[key] = datasets.load(name, device=torch.device(device), root=root)
    return _RESIDENT[key]


def check_input(preset, dataset, algorithm_list, protocol, seeds, epochs, idle_s=None) -> tuple[Preset, tuple, tuple]:
    """The preset, its datasets and the algorithms named, each checked: (preset, datasets, names)."""
    if preset == "speed":
        raise ValueError("the speed command is a command of its own: fwdlib speed")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if seeds is not None and not 1 <= seeds <= MAX_SEEDS:
        raise BadValue("seeds", f"must be from 1 to {MAX_SEEDS}, got {seeds}")
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise BadValue("epochs", f"must be from 1 to {MAX_EPOCHS}, got {epochs}")
    if idle_s is not None and not 0 <= idle_s < math.inf:
        raise BadValue("idle_s", f"must be a finite number of seconds, 0 or more, got {idle_s}")
    for name, value in (("dataset", dataset), ("algorithms", algorithm_list)):
        if value is not None and not as_tuple(value):
            raise BadValue(name, "is empty; name at least one, or leave it out to run them all")
    preset_obj = PRESETS[preset]
    names = as_tuple(dataset) or preset_obj.datasets
    for name in names:
        if name not in preset_obj.datasets:
            raise ValueError(f"unknown dataset {name!r} for preset {preset!r}; choose from {', '.join(preset_obj.datasets)}")
    algos = as_tuple(algorithm_list)
    variants = sorted({str(e.rival_entry) for d in preset_obj.datasets for e in entries_of(preset_obj, d)
                       if e.variant})
    for name in algos or ():
        if name not in registry.NAMES and name not in variants:
            raise ValueError(f"unknown algorithm {name!r}; choose from {', '.join((*registry.NAMES, *variants))}")
    return preset_obj, names, algos


def _present(names, root, verbose) -> tuple[str, ...]:
    """Datasets whose files are here (the `paper` preset runs those present)."""
    present, missing = [], []
    if root is not None and datasets.SAMPLE_NAME in names and verbose:
        print(f"bench: --data-root is not used for {datasets.SAMPLE_NAME}: it is embedded in fwdlib")
    for name in names:
        if datasets.available(name, root):     # a file check: the run itself reads the data
            present.append(name)
            continue
        try:
            datasets.locate(name, root, download=True)
            present.append(name)
        except datasets.DataError as err:
            if len(names) == 1:
                raise
            missing.append(f"{name}: " + str(err).replace("\n", "\n    "))
            if verbose:
                print(f"bench: skipping {name}: {str(err).splitlines()[0]}")
    if not present:
        raise datasets.DataError("none of the datasets is here, so there is nothing to run:\n  "
                                 + "\n  ".join(missing) + "\nFix: install or download one (see the README's Data section)")
    return tuple(present)
