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
import time
import traceback

from ..runs.build import build_model, fit_spec, warm_up
from ..runs.entry import Entry
from ..runs.record import SCHEMA, Record
from ..meters.energy import EnergyMeter
from ..meters.process import CpuWindow, contamination, machine
from ..train import evaluate
from ..session import seed_all
from .benchmark import Benchmark, resident
from .report import write_report
from .plan import PlannedRun, configuration_of, pairs_at_seeds
from .presets import augmentation
from .results import ResultsNotSaved
from .summary import printout


def run_one(run: PlannedRun, *, root=None, co2: bool = True, idle_s: float = 0.0) -> Record:
    """Train one configuration under the meter. What the algorithm does wrong (an exception in
    building, training or evaluating it) is recorded as a failed run; unreadable data raise,
    since retrying the algorithm would not help."""
    spec = run.spec
    record = {"key": run.key, "spec": spec.record(), "entries": [str(e) for e in run.entries], "status": "ok",
              "schema": SCHEMA, "configuration": configuration_of(spec),
              "machine": machine(spec.device), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    data = resident(spec.dataset, spec.device, root)   # outside the try: the data's
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


def train_logged(item: PlannedRun, benchmark: Benchmark, left: int, *, co2: bool = True) -> Record:
    """Train one run and append its record to the benchmark's log before anything else happens to it."""
    log = benchmark.ready_log()
    with log.reserved() as release:     # room for the record, held while the run trains
        record = run_one(item, root=benchmark.root, co2=co2, idle_s=benchmark.idle_s)
        release()
    try:
        log.append(record)
    except ResultsNotSaved as err:
        raise ResultsNotSaved(err.errno, f"run {run_name(record)} finished but was NOT saved: {err.strerror}. "
                              f"The {left} run(s) from this one on will run again when you rerun the same "
                              "command; every earlier run is kept.") from err
    return record


def run_name(record: dict) -> str:
    """"fashion_mnist bp-mlp+checkpoint seed 0": the dataset, the rival or the twin as the report names it."""
    spec, entry = record["spec"], Entry.parse(record["entries"][0])
    return f"{spec['dataset']} {entry.twin_name or entry} seed {spec['seed']}"


def outcome(record: dict) -> str:
    if record["status"] != "ok":
        return f"FAILED: {record['reason']}"
    return (f"test acc {record['test_acc']:.4f}, {record['epochs']} epochs, {record['train_time_s']:.1f} s"
            + (f"; CONTAMINATED: {contamination(record)}" if contamination(record) else ""))


def run(benchmark: Benchmark, *, co2: bool = True, retry_failed: bool = False, rerun_contaminated: bool = False,
        report: bool = True, verbose: bool = True, margins: dict | None = None) -> list[Record]:
    """Run a benchmark (resuming what its OUT already holds) and write its report. Returns records.

    co2: measure with CodeCarbon too; retry_failed: run again the runs recorded as failed;
    rerun_contaminated: run again each pair (at its seed) with a run whose time and energy other
    work on the machine spoiled (`contamination`), whole and back to back; the new records
    replace the old ones in the report. margins: the verdicts' practical margins (default
    `verdicts.MARGINS`).
    """
    log, runs = benchmark.ready_log(), benchmark.runs()
    with log.lock():
        latest = log.latest()
        spoiled = {r["key"] for r in latest if rerun_contaminated and contamination(r)}
        # a spoiled run's whole pair runs again, back to back, as the plan ordered it
        again = {run.key for _, group in pairs_at_seeds(runs) if any(run.key in spoiled for run in group)
                 for run in group}
        done = {r["key"] for r in latest if (r["status"] == "ok" or not retry_failed) and r["key"] not in again}
        todo = [r for r in runs if r.key not in done]
        if verbose:
            print(f"bench {benchmark.preset}: {len(runs)} runs, {len(runs) - len(todo)} already in {log.path}, "
                  f"{len(todo)} to go; protocol {benchmark.protocol}, device {benchmark.device}")
        for i, item in enumerate(todo, 1):
            record = train_logged(item, benchmark, len(todo) - i + 1, co2=co2)
            if verbose:
                print(f"  [{i}/{len(todo)}] {run_name(record)}: {outcome(record)}", flush=True)
    keys = {r.key for r in runs}
    records = [r for r in log.latest() if r["key"] in keys]
    if report:
        write_report(records, benchmark.out, title=f"preset {benchmark.preset}, protocol {benchmark.protocol}",
                     margins=margins)
        if verbose:
            print(printout(benchmark.out))
    return records
