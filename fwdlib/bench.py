"""The head-to-head benchmark: every forward-only algorithm against its backprop twin.

    python -m fwdlib.bench --preset quick                # the default: embedded sample, CPU minutes
    python -m fwdlib.bench --preset paper-fmnist --device cuda
    python -m fwdlib.bench --preset speed                # seconds per epoch beside the study's

Fairness: both members of a pair get the same data split, batch size, epoch cap, stopping rule
(metric, patience, min_delta), warm-up and execution mode; several seeds run interleaved
(seed-major, the algorithm order rotated each seed) so drift and heat favour no one.

Nothing is lost: each finished run is appended at once to OUT/results.jsonl as one JSON line
(flushed and fsynced), keyed by a hash of its full configuration. Running the same command again
skips finished runs; a failed run is recorded with its reason and the others go on.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

from . import algorithms as registry, data as datasets
from .energy import EnergyMeter
from .params import apply_params, load_params
from .presets import PRESET_NAMES, PRESETS, SPEED, Preset, augmentation
from .report import write_report
from .speed import speed
from .train import evaluate, fit
from .utils import as_tuple, pick_device, process_alive, quick_mode, seed_all, writable_folder

PROTOCOLS = ("converge", "matched")
DEFAULT_OUT = "bench-results"


# ============================================================================ runs

def run_key(spec: dict) -> str:
    """Hash of a run's full configuration: the same configuration is the same run."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan(preset: Preset, *, dataset_names: tuple[str, ...], algorithm_names: tuple[str, ...] | None,
         seeds: int, protocol: str, device: str, cuda_graphs: bool, epochs: int | None = None) -> list[dict]:
    """Every run of a benchmark, interleaved: seed-major, algorithm order rotated per seed."""
    cap = epochs or (preset.matched_epochs or preset.epochs if protocol == "matched" else preset.epochs)
    rule = {"epochs": cap, "monitor": preset.monitor, "patience": None if protocol == "matched" else preset.patience,
            "min_delta": preset.min_delta, "protocol": protocol}
    unique = []
    for dataset in dataset_names:
        for pair in preset.pairs[dataset]:
            for entry, name, config in pair.members():
                if algorithm_names and not {name, pair.rival, pair.entry} & set(algorithm_names):
                    continue
                base = {"dataset": dataset, "algorithm": name, "config": dict(config),
                        "batch_size": pair.batch_size or preset.batch_size, **rule,
                        # only where the data is augmented at all (CIFAR), so equal runs stay one run
                        "augment": pair.augment if datasets.augments(dataset) else None,
                        "device": device, "cuda_graphs": cuda_graphs}
                if not any(u["base"] == base for u in unique):
                    unique.append({"base": base, "entries": [entry]})
                else:
                    next(u for u in unique if u["base"] == base)["entries"].append(entry)
    runs = []
    for seed in range(seeds):
        shift = seed % max(len(unique), 1)
        for item in unique[shift:] + unique[:shift]:
            spec = {**item["base"], "seed": seed}
            runs.append({"key": run_key(spec), "spec": spec, "entries": item["entries"]})
    return runs


class ResultsNotSaved(OSError):
    """A finished run could not be written to the results log (disk full, ...)."""


# What the report reads from a record: a line without it (another program's, an older schema)
# is skipped rather than breaking the report.
RECORD_KEYS = ("key", "spec", "entries", "status")
SPEC_KEYS = ("dataset", "algorithm", "config", "protocol", "device", "seed")
OK_KEYS = ("test_acc", "epochs", "train_time_s", "energy_measured_j", "energy_estimated_j", "history")


def schema_problem(record) -> str | None:
    """Why `record` is not one of this kit's benchmark records, or None if it is."""
    if not isinstance(record, dict):
        return "not a benchmark record"
    missing = [k for k in RECORD_KEYS if k not in record]
    if not missing:
        spec = record["spec"] if isinstance(record["spec"], dict) else {}
        missing = [f"spec.{k}" for k in SPEC_KEYS if k not in spec]
        missing += [k for k in OK_KEYS if record["status"] == "ok" and k not in record]
    return f"not a benchmark record of this version (no {', '.join(missing)})" if missing else None


class ResultsLog:
    """Append-only JSON lines: one finished run per line, fsynced, never rewritten.

    A record is written whole or not at all: a short write is continued, and a failed one is
    cut back to the last complete record, so the file never holds half a line."""

    def __init__(self, path: Path):
        self.path = Path(path)
        writable_folder(self.path.parent)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder, not a results file; move it away or choose another --out")
        self._repair()

    def _repair(self) -> None:
        """A process killed mid-write can leave a last line without its newline: drop it
        (that run had not finished), keeping every complete line."""
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            self._truncate(raw.rfind(b"\n") + 1)
            print(f"bench: dropped an unfinished last line from {self.path}")

    def _truncate(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict]:
        """Every record, in file order. A line that is not one of this kit's records (invalid
        UTF-8 or JSON, another program's line, an older schema) is skipped with a warning that
        names it, and left in place."""
        if not self.path.exists():
            return []
        out = []
        for number, raw in enumerate(self.path.read_bytes().split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problem = "not UTF-8 text"
            except json.JSONDecodeError:
                problem = "not valid JSON"
            else:
                problem = schema_problem(record)
            if problem:
                print(f"bench: {self.path} line {number} is {problem}; skipped (left in place)")
            else:
                out.append(record)
        return out

    def latest(self) -> list[dict]:
        """The last record of each run key: a retried run replaces its failure, a duplicate is
        not a second seed."""
        return list({r["key"]: r for r in self.records()}.values())

    def append(self, record: dict) -> None:
        """Write one record whole, then to disk; on failure cut the file back and raise."""
        line = (json.dumps(record, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(line):          # os.write may write less than asked
                n = os.write(fd, line[written:])
                if n == 0:
                    raise OSError(28, "no space left on device")
                written += n
            os.fsync(fd)
        except OSError as err:
            os.close(fd)
            self._truncate(size)               # never leave half a record behind
            raise ResultsNotSaved(err.errno, f"could not write to {self.path} ({err.strerror or err})") from err
        os.close(fd)

    @contextlib.contextmanager
    def lock(self):
        """Only one benchmark writes to a results folder at a time."""
        path = self.path.parent / ".lock"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                holder = path.read_text().strip() if path.exists() else ""
                if not holder.isdigit() or process_alive(int(holder)):   # empty: one is just starting
                    raise ValueError(f"another benchmark (process {holder or 'starting'}) is writing to "
                                     f"{self.path.parent}; wait for it to finish, or choose another --out "
                                     f"(if none is running, delete {path})") from None
                path.unlink(missing_ok=True)     # its process is gone: the lock is stale
        else:
            raise ValueError(f"could not take the lock {path}; remove it if no benchmark is running")
        try:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            yield
        finally:
            path.unlink(missing_ok=True)


_DATA_CACHE: dict = {}


def _dataset(name: str, device: torch.device, root=None):
    key = (name, str(device), root)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()                    # one dataset resident at a time
        _DATA_CACHE[key] = datasets.load(name, device=device, root=root)
    return _DATA_CACHE[key]


WARMUP_STEPS = 5


def warm_up(name: str, config: dict, data, batch_size: int, cuda_graphs: bool = False) -> None:
    """The same untimed warm-up for every run: a throwaway model trains on a few batches
    (kernels load, autotuning settles, allocator pools grow), in the execution mode the timed
    run will use, so that a CUDA graph's capture never lands in the first timed epoch."""
    small = datasets.first(data, WARMUP_STEPS * batch_size)
    model = registry.build(name, input_shape=data.input_shape, num_classes=data.num_classes, **config)
    fit(model, small, epochs=1, batch_size=batch_size, progress=False, restore_best=False,
        cuda_graphs=cuda_graphs)


def run_one(run: dict, *, root=None, co2: bool = True, idle_s: float = 0.0) -> dict:
    """Train one configuration under the meter. What the algorithm does wrong (an exception in
    building, training or evaluating it) is recorded as a failed run; a missing device or
    unreadable data raise, since retrying the algorithm would not help."""
    spec = run["spec"]
    record = {"key": run["key"], "spec": spec, "entries": run["entries"], "status": "ok",
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    device = pick_device(spec["device"])      # outside the try: the environment's failures are
    data = _dataset(spec["dataset"], device, root)   # not the algorithm's, and stop the benchmark
    record["augmentation"] = augmentation(data.augment, spec.get("augment"))
    if spec.get("augment") is False and data.augment:
        data = dataclasses.replace(data, augment=False)   # the pair's rival trains on cached features
    try:
        warm_up(spec["algorithm"], spec["config"], data, spec["batch_size"], spec["cuda_graphs"])
        seed_all(spec["seed"])
        model = registry.build(spec["algorithm"], input_shape=data.input_shape,
                                 num_classes=data.num_classes, **spec["config"])
        with EnergyMeter(co2=co2, idle_s=idle_s) as meter:
            history = fit(model, data, epochs=spec["epochs"], batch_size=spec["batch_size"],
                          monitor=spec["monitor"], patience=spec["patience"],
                          min_delta=spec["min_delta"], seed=spec["seed"], progress=False,
                          cuda_graphs=spec["cuda_graphs"], measure_memory=True)
        result = meter.result
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
    return record


def run(preset: str = "quick", *, dataset: str | list[str] | None = None,
        algorithms: str | list[str] | None = None, seeds: int | None = None,
        protocol: str = "converge", out: str | Path = DEFAULT_OUT, device: str | None = None,
        cuda_graphs: bool = True, epochs: int | None = None, root=None, co2: bool = True,
        idle_s: float | None = None, retry_failed: bool = False, params=None, report: bool = True,
        verbose: bool = True) -> list[dict]:
    """Run a benchmark (resuming what OUT already holds) and write its report. Returns records.

    idle_s: seconds of idle-power baseline before each run, for idle-subtracted energy
    (default: 3 on CUDA, where energy is measured; 0 elsewhere).
    params: best-parameters file(s) of `python -m fwdlib.tune`, merged into the runs they fit.
    """
    preset_obj, dataset_names, algorithm_names = _validate(preset, dataset, algorithms, protocol, seeds, epochs)
    if preset == SPEED:
        if params:
            raise ValueError("--params does not apply to the speed preset: it times fixed configurations")
        return speed(dataset_names, algorithm_names, out=out, device=device, cuda_graphs=cuda_graphs,
                     epochs=epochs, root=root, verbose=verbose)
    # The environment first: a missing device, unreadable data or an unwritable OUT stops the
    # benchmark here with its reason, before anything trains and before anything is recorded.
    device_name = str(pick_device(device))
    if idle_s is None:
        idle_s = 3.0 if device_name.startswith("cuda") else 0.0
    out = Path(out)
    log = ResultsLog(out / "results.jsonl")
    dataset_names = _present(dataset_names, root, verbose)
    for name in dataset_names:
        _dataset(name, torch.device(device_name), root)          # read once: corrupt files fail here
    if params:
        preset_obj = apply_params(preset_obj, load_params(params), dataset_names, verbose)
    runs = plan(preset_obj, dataset_names=dataset_names, algorithm_names=algorithm_names,
                seeds=seeds if seeds is not None else (1 if quick_mode() and preset == "quick" else preset_obj.seeds),
                protocol=protocol, device=device_name, cuda_graphs=cuda_graphs, epochs=epochs)
    if not runs:
        raise ValueError(f"nothing to run: preset {preset} has no run for {', '.join(algorithm_names or ())} "
                         f"on {', '.join(dataset_names)}")
    with log.lock():
        done = {r["key"] for r in log.latest() if r["status"] == "ok" or not retry_failed}
        todo = [r for r in runs if r["key"] not in done]
        if verbose:
            print(f"bench {preset}: {len(runs)} runs, {len(runs) - len(todo)} already in {log.path}, "
                  f"{len(todo)} to go; protocol {protocol}, device {device_name}")
        for i, item in enumerate(todo, 1):
            record = run_one(item, root=root, co2=co2, idle_s=idle_s)
            spec = record["spec"]
            name = f"{spec['dataset']} {spec['algorithm']} seed {spec['seed']}"
            try:
                log.append(record)
            except ResultsNotSaved as err:
                raise ResultsNotSaved(err.errno, f"run {name} finished but was NOT saved: {err.strerror}. "
                                      f"The {len(todo) - i + 1} run(s) from this one on will run again when "
                                      "you rerun the same command; every earlier run is kept.") from err
            if verbose:
                what = (f"test acc {record['test_acc']:.4f}, {record['epochs']} epochs, "
                        f"{record['train_time_s']:.1f} s" if record["status"] == "ok"
                        else f"FAILED: {record['reason']}")
                print(f"  [{i}/{len(todo)}] {name}: {what}", flush=True)
    keys = {r["key"] for r in runs}
    records = [r for r in log.latest() if r["key"] in keys]
    if report:
        paths = write_report(records, out, title=f"preset {preset}, protocol {protocol}")
        if verbose:
            print((out / "report.md").read_text())
            print("written: " + ", ".join(str(p) for p in paths))
    return records


def _validate(preset, dataset, algorithm_list, protocol, seeds, epochs):
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if seeds is not None and seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {epochs}")
    preset_obj = PRESETS.get(preset)
    allowed = preset_obj.datasets if preset_obj else datasets.NAMES
    names = as_tuple(dataset) or (allowed if preset_obj else ())
    for name in names:
        if name not in allowed:
            raise ValueError(f"unknown dataset {name!r} for preset {preset!r}; choose from {', '.join(allowed)}")
    algos = as_tuple(algorithm_list)
    entries = {p.entry for pairs in (preset_obj.pairs.values() if preset_obj else ()) for p in pairs} - {None}
    for name in algos or ():
        if name not in registry.NAMES and name not in entries:
            raise ValueError(f"unknown algorithm {name!r}; choose from {', '.join((*registry.NAMES, *sorted(entries)))}")
    return preset_obj, names, algos


def _present(names, root, verbose) -> tuple[str, ...]:
    """Datasets whose files are here (the `paper` preset runs those present)."""
    present, missing = [], []
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
            missing.append(f"{name}: {str(err).splitlines()[0]}")
            if verbose:
                print(f"bench: skipping {name}: {str(err).splitlines()[0]}")
    if not present:
        raise datasets.DataError("none of the datasets is here, so there is nothing to run:\n  "
                                 + "\n  ".join(missing) + "\nFix: install or download one (see the README's Data section)")
    return tuple(present)


# ============================================================================ command line

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fwdlib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick", help=f"one of: {', '.join(PRESET_NAMES)}")
    parser.add_argument("--dataset", help="comma-separated subset of the preset's datasets")
    parser.add_argument("--algorithms", help="comma-separated subset (twins follow their rival)")
    parser.add_argument("--seeds", type=int, help="runs per configuration (default: preset's, 3)")
    parser.add_argument("--protocol", default="converge", help="converge (own early stop) or matched (same epochs)")
    parser.add_argument("--epochs", type=int, help="override the epoch cap (per stage)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="results folder (resumed if it exists)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--data-root", help="folder holding the datasets (else $FWDLIB_DATA, cache, system)")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="run every step eagerly")
    parser.add_argument("--no-co2", action="store_true", help="skip CodeCarbon")
    parser.add_argument("--idle-s", type=float, help="seconds of idle-power baseline per run (default: 3 on CUDA, else 0)")
    parser.add_argument("--retry-failed", action="store_true", help="rerun runs recorded as failed")
    parser.add_argument("--params", action="append", metavar="FILE",
                        help="best parameters from python -m fwdlib.tune (repeat for several algorithms)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from OUT/results.jsonl")
    args = parser.parse_args(argv)
    try:
        if args.report_only:
            records = ResultsLog(Path(args.out) / "results.jsonl").latest()
            if not records:
                raise ValueError(f"no results in {args.out}/results.jsonl to report on")
            write_report(records, Path(args.out), title="from results.jsonl")
            print((Path(args.out) / "report.md").read_text())
            return 0
        records = run(args.preset, dataset=args.dataset, algorithms=args.algorithms, seeds=args.seeds,
                      protocol=args.protocol, out=args.out, device=args.device,
                      cuda_graphs=not args.no_cuda_graphs, epochs=args.epochs, root=args.data_root,
                      co2=not args.no_co2, idle_s=args.idle_s, retry_failed=args.retry_failed,
                      params=args.params)
    except ResultsNotSaved as err:
        print(f"error: {err.strerror}", file=sys.stderr)
        return 1
    except OSError as err:        # the report or its figures: the results log itself is safe
        print(f"error: could not write the report in {args.out} ({err.strerror or err}); every finished run "
              f"is kept in {args.out}/results.jsonl: free space, then run with --report-only", file=sys.stderr)
        return 1
    except (ValueError, datasets.DataError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = [r for r in records if r.get("status") == "failed"]
    if failed:
        print(f"error: {len(failed)} run(s) failed (first: {failed[0]['spec']['algorithm']} seed "
              f"{failed[0]['spec']['seed']}: {failed[0]['reason']}); fix the cause and rerun the same "
              "command with --retry-failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
