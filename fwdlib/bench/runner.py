"""The head-to-head benchmark: every forward-only algorithm against its backprop twin.

    fwdlib bench --preset quick                # the default: embedded sample, CPU minutes
    fwdlib bench --preset paper-fmnist --device cuda

Fairness: both members of a pair get the same data split, batch size, epoch cap, stopping rule
(metric, patience, min_delta), warm-up and execution mode; the seeds run one after another, the
pairs' order rotated each seed, a pair's members back to back and counterbalanced (`plan`). Each
run records its CPU time and the foreign load on its CPUs; one that other work contaminated is
left out of time and energy (`contamination`) and rerun by `--rerun-contaminated`.

Nothing is lost: each finished run is appended at once to OUT/results.jsonl as one JSON line
(flushed and fsynced), keyed by a hash of its full configuration. Running the same command again
skips finished runs; a failed run is recorded with its reason and the others go on.
"""
from __future__ import annotations

import dataclasses
import math
import time
import traceback
from pathlib import Path

import torch

from .. import algorithms as registry, data as datasets
from ..runs.build import build_model, fit_spec, warm_up
from ..runs.record import SCHEMA, Record
from ..runs.spec import MAX_EPOCHS, MAX_SEEDS, PROTOCOLS, RunSpec
from ..meters.energy import EnergyMeter
from ..meters.process import CpuWindow, contamination, machine
from ..train import evaluate
from ..commandline import BadValue, as_tuple
from ..session import pick_device, seed_all
from .params import apply_params, load_params
from .report import write_report
from .plan import PlannedRun, configuration_of, entries_of, pairs_at_seeds, plan, preset_specs
from .presets import PRESETS, augmentation
from .results import ResultsLog, ResultsNotSaved
from .summary import printout


DEFAULT_OUT = "bench-results"


_DATA_CACHE: dict = {}


def _dataset(name: str, device: torch.device, root=None):
    key = (name, str(device), root)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()                    # one dataset resident at a time
        _DATA_CACHE[key] = datasets.load(name, device=device, root=root)
    return _DATA_CACHE[key]


def run_one(run: PlannedRun, *, root=None, co2: bool = True, idle_s: float = 0.0) -> Record:
    """Train one configuration under the meter. What the algorithm does wrong (an exception in
    building, training or evaluating it) is recorded as a failed run; unreadable data raise,
    since retrying the algorithm would not help."""
    spec = run.spec
    record = {"key": run.key, "spec": spec.record(), "entries": [str(e) for e in run.entries], "status": "ok",
              "schema": SCHEMA, "configuration": configuration_of(spec),
              "machine": machine(spec.device), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    data = _dataset(spec.dataset, torch.device(spec.device), root)   # outside the try: the data's
    record["augmentation"] = augmentation(data.augment, spec.augment)  # failures stop the benchmark
    try:
        warm_up(spec, data)
        seed_all(spec.seed)
        model = build_model(spec, data)
        with CpuWindow() as cpu, EnergyMeter(co2=co2, idle_s=idle_s, device=spec.device) as meter:
            history = fit_spec(model, data, spec, measure_memory=True)
        result = meter.result
        record.update(cpu.result)
        record.update(
            test_acc=evaluate(model, data.test), best_val_acc=max(history["val_acc"]),
            epochs=history.epochs, stopped_early=history.stopped_early,
            # One window for time and energy: the meter's, the whole fit() call.
            train_time_s=result.wall_s, prep_time_s=history.prep_time_s,
            epoch_time_s=history.train_time_s - history.prep_time_s, wall_s=result.wall_s,
            gpu_time_s=result.gpu_time_s,
            energy_measured_j=result.measured_joules(), energy_gpu_j=result.measured_joules_of("gpu"),
            energy_idle_subtracted_j=result.idle_subtracted_joules(),
            energy_estimated_j=result.estimated_joules(),
            energy_sources=sorted({f"{d.device}: {d.source}" + (f" ({d.reason})" if d.reason else "")
                                   for d in result.devices}),
            co2_kg=result.co2_kg, co2_method=result.co2_method,
            train_memory_bytes=history.step_memory.total,
            train_memory_parts=dataclasses.asdict(history.step_memory),
            gpu_peak_allocated_bytes=sum(m.peak_allocated_bytes for m in result.gpu_memory) or None,
            gpu_peak_reserved_bytes=sum(m.peak_reserved_bytes for m in result.gpu_memory) or None,
            nvml_used_bytes=sum(m.nvml_used_bytes or 0 for m in result.gpu_memory) or None,
            cpu_peak_rss_bytes=result.cpu_peak_rss_bytes, cpu_rss_method=result.cpu_rss_method,
            cpu_rss_growth_bytes=(None if result.cpu_rss_start_bytes is None
                                  else result.cpu_peak_rss_bytes - result.cpu_rss_start_bytes),
            execution_mode=history.mode, notes=history.notes, history=history.records,
            data_source=data.source, device_names=result.device_names, versions=result.versions,
            parameters=sum(p.numel() for p in model.parameters()))
    except Exception as err:  # noqa: BLE001 - recorded as failed; the benchmark goes on
        record.update(status="failed", reason=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc(limit=4))
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return Record.from_mapping(record)      # checked as every reader will check it, before it is written


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A benchmark ready to train: its device, its entries' specs (seed 0), every planned run and
    the local results log."""
    device: str
    idle_s: float
    specs: list[RunSpec]
    seeds: int
    log: ResultsLog

    def runs(self, seeds: int | None = None) -> list[PlannedRun]:
        return plan(self.specs, seeds or self.seeds)


def prepare(preset: str = "quick", *, dataset=None, algorithms=None, seeds: int | None = None,
            protocol: str = "converge", out: str | Path = DEFAULT_OUT, device: str | None = None,
            cuda_graphs: bool = True, epochs: int | None = None, root=None, idle_s: float | None = None,
            params=None, verbose: bool = True) -> Prepared:
    """Check the input and the environment, and plan: a missing device, unreadable data or an
    unwritable OUT stops the benchmark here with its reason, before anything trains and before
    anything is recorded."""
    preset_obj, dataset_names, names = check_input(preset, dataset, algorithms, protocol, seeds, epochs, idle_s)
    device_name = str(pick_device(device))
    if idle_s is None:
        idle_s = 3.0 if device_name.startswith("cuda") else 0.0
    log = ResultsLog(Path(out) / "results.jsonl")
    dataset_names = _present(dataset_names, root, verbose)
    for name in dataset_names:
        data = _dataset(name, torch.device(device_name), root)   # read once: corrupt files fail here
        if verbose:
            print(f"data: {data.source}")
    specs = specs_of(preset_obj, dataset_names, names, protocol=protocol, epochs=epochs, device=device_name,
                     cuda_graphs=cuda_graphs, params=params, verbose=verbose)
    seeds = seeds if seeds is not None else preset_obj.seeds
    return Prepared(device_name, idle_s, specs, seeds, log)


def specs_of(preset_obj, dataset_names, names, *, params=None, verbose: bool = True, **settings) -> list[RunSpec]:
    """The spec of every selected entry (seed 0), tuned parameters merged in."""
    specs = preset_specs(preset_obj, dataset_names, names, **settings)
    if not specs:
        raise ValueError(f"nothing to run: preset {preset_obj.name} has no run for {', '.join(names or ())} "
                         f"on {', '.join(dataset_names)}")
    return apply_params(specs, load_params(params), verbose) if params else specs


def train_logged(item: PlannedRun, log: ResultsLog, left: int, *, root=None, co2: bool = True,
                 idle_s: float = 0.0) -> Record:
    """Train one run and append its record to the log before anything else happens to it."""
    with log.reserved() as release:     # room for the record, held while the run trains
        record = run_one(item, root=root, co2=co2, idle_s=idle_s)
        release()
    try:
        log.append(record)
    except ResultsNotSaved as err:
        raise ResultsNotSaved(err.errno, f"run {run_name(record)} finished but was NOT saved: {err.strerror}. "
                              f"The {left} run(s) from this one on will run again when you rerun the same "
                              "command; every earlier run is kept.") from err
    return record


def run_name(record: dict) -> str:
    spec = record["spec"]
    return f"{spec['dataset']} {spec['algorithm']} seed {spec['seed']}"


def outcome(record: dict) -> str:
    if record["status"] != "ok":
        return f"FAILED: {record['reason']}"
    return (f"test acc {record['test_acc']:.4f}, {record['epochs']} epochs, {record['train_time_s']:.1f} s"
            + (f"; CONTAMINATED: {contamination(record)}" if contamination(record) else ""))


def run(preset: str = "quick", *, dataset: str | list[str] | None = None,
        algorithms: str | list[str] | None = None, seeds: int | None = None,
        protocol: str = "converge", out: str | Path = DEFAULT_OUT, device: str | None = None,
        cuda_graphs: bool = True, epochs: int | None = None, root=None, co2: bool = True,
        idle_s: float | None = None, retry_failed: bool = False, rerun_contaminated: bool = False,
        params=None, report: bool = True, verbose: bool = True, margins: dict | None = None) -> list[dict]:
    """Run a benchmark (resuming what OUT already holds) and write its report. Returns records.

    idle_s: seconds of idle-power baseline before each run, for idle-subtracted energy
    (default: 3 on CUDA, where energy is measured; 0 elsewhere).
    params: best-parameters file(s) of `fwdlib tune`, merged into the runs they fit.
    margins: the verdicts' practical margins (default `verdicts.MARGINS`).
    rerun_contaminated: run again each pair (at its seed) with a run whose time and energy other
    work on the machine spoiled (`contamination`), whole and back to back; the new records
    replace the old ones in the report.
    """
    ready = prepare(preset, dataset=dataset, algorithms=algorithms, seeds=seeds, protocol=protocol, out=out,
                    device=device, cuda_graphs=cuda_graphs, epochs=epochs, root=root, idle_s=idle_s,
                    params=params, verbose=verbose)
    log, runs = ready.log, ready.runs()
    with log.lock():
        latest = log.latest()
        spoiled = {r["key"] for r in latest if rerun_contaminated and contamination(r)}
        # a spoiled run's whole pair runs again, back to back, as the plan ordered it
        again = {run.key for _, group in pairs_at_seeds(runs) if any(run.key in spoiled for run in group)
                 for run in group}
        done = {r["key"] for r in latest if (r["status"] == "ok" or not retry_failed) and r["key"] not in again}
        todo = [r for r in runs if r.key not in done]
        if verbose:
            print(f"bench {preset}: {len(runs)} runs, {len(runs) - len(todo)} already in {log.path}, "
                  f"{len(todo)} to go; protocol {protocol}, device {ready.device}")
        for i, item in enumerate(todo, 1):
            record = train_logged(item, log, len(todo) - i + 1, root=root, co2=co2, idle_s=ready.idle_s)
            if verbose:
                print(f"  [{i}/{len(todo)}] {run_name(record)}: {outcome(record)}", flush=True)
    keys = {r.key for r in runs}
    records = [r for r in log.latest() if r["key"] in keys]
    if report:
        write_report(records, out, title=f"preset {preset}, protocol {protocol}", margins=margins)
        if verbose:
            print(printout(out))
    return records


def check_input(preset, dataset, algorithm_list, protocol, seeds, epochs, idle_s=None):
    """The preset, its datasets and the algorithms named, each checked: (preset, datasets, names)."""
    if preset == "speed":
        raise ValueError("the speed profiler is a command of its own: fwdlib speed")
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
