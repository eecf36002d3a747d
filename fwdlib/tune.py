"""Hyperparameter search with Optuna: the same fair search for every algorithm.

    python -m fwdlib.tune --algorithm mf --dataset fashion_mnist_sample --trials 20
    python -m fwdlib.bench --params tune-results/mf-fashion_mnist_sample.json

The study this kit reproduces tuned each algorithm with Optuna TPE, and its own audit found the
tuning unfair: a median pruner for BP but none for the others, one sampler seed reused across
studies, weight decay searched for some algorithms only. Here every algorithm gets
- the study's search space (Spyra & Dzwinel 2025, arXiv 2511.01061; the README's "The study and
  the papers"), with weight decay searched for all of them;
- the same pruner (median by default, or none) and the same stopping rule inside each trial: the
  benchmark preset's (monitor, patience, min_delta, batch size). Algorithms trained in stages
  (CaFo's blocks, greedy MF's layers) are never pruned: epoch k of one trial may train block 2
  while epoch k of another trains block 1, and the pruner would compare the two;
- a sampler seed of its own, derived from the study's name, --seed and --worker.
The objective is validation accuracy of the restored best model; the test set is never seen.

Storage: a local SQLite file by default (rerun the command to resume an interrupted search);
journal:FILE for several worker processes on one machine; any database URL Optuna accepts
(postgresql+psycopg://...) for workers on several machines running one study together. On a
database server every running trial beats a heartbeat: a trial whose worker falls silent for the
grace period (a machine that lost power, a killed process) is failed and its parameters are run
again by a live worker. SQLite and journal files have no heartbeat; there a trial left running by
a dead process of this machine is found by its process id (when a worker starts, and while it
waits for the last trials to finish).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import socket
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import torch

from . import algorithms as registry, data as datasets
from .algorithms.base import Param
from .params import FORMAT
from .presets import PRESETS, Preset
from .plots import save_png
from .train import TrainingDiverged, evaluate, fit, progress_bar, show_progress
from .utils import as_json, as_tuple, atomic_write, format_settings, pick_device, process_alive, seed_all

DEFAULT_DIR = Path("tune-results")
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_DIR}/studies.db"
PRUNERS = ("median", "none")
# Database storage: a running trial writes a heartbeat every HEARTBEAT_S; once it has been silent
# for GRACE_S, any live worker fails it and queues its parameters again (at most MAX_RETRIES times,
# so a trial that kills every worker it meets is not retried forever).
HEARTBEAT_S, GRACE_S, MAX_RETRIES = 10, 120, 2
DRIVER_HINT = 'pip install "psycopg[binary]" and use a postgresql+psycopg://USER:PASSWORD@HOST/DB URL'


# ============================================================================ search spaces

# Each algorithm declares the study's search space next to its math (weight decay added where the
# study fixed it, in the twin's range).
SPACES: dict[str, tuple[Param, ...]] = {name: cls.search_space for name, cls in registry.REGISTRY.items()}


def search_space(algorithm: str, config: dict, epochs: int, only=None) -> tuple[dict, dict]:
    """(searched, fixed): searched maps name -> (low, high, kind) with kind "log" or "int";
    fixed holds epoch counts the epoch cap pins to one value."""
    params = [p for p in SPACES[algorithm] if p.applies is None or p.applies(config)]
    if only:
        unknown = sorted(set(only) - {p.name for p in params})
        if unknown:
            raise ValueError(f"--only names {', '.join(unknown)}, which {algorithm} with this configuration "
                             f"does not search; its space: {', '.join(p.name for p in params) or 'empty'}")
        params = [p for p in params if p.name in only]
    searched, fixed = {}, {}
    for p in params:
        if not p.epochs:
            searched[p.name] = (p.low, p.high, "log")
            continue
        high = min(int(p.high), epochs)        # no stage may outrun the trial's epoch cap
        low = min(int(p.low), high)
        if low == high:
            fixed[p.name] = high
        else:
            searched[p.name] = (low, high, "int")
    if not searched:
        raise ValueError(f"nothing to search for {algorithm} with configuration {config}"
                         + (f" (fixed by --epochs {epochs}: {fixed})" if fixed else "")
                         + ": choose parameters it uses (--only), a configuration that trains them, "
                           "or a larger --epochs")
    return searched, fixed


# ============================================================================ what is tuned

@dataclass(frozen=True)
class Target:
    """An algorithm as the benchmark runs it: its entries (e.g. "bp-mlp@mf") and base config."""
    algorithm: str
    entries: tuple[str, ...]
    dataset: str
    config: dict
    preset: Preset


def target(name: str, dataset: str, overrides: dict | None = None) -> Target:
    """Find `name` (an algorithm or a twin entry like "bp-mlp@mf") in the benchmark preset that
    runs `dataset`, so the tuned parameters fit the configuration the benchmark will train."""
    if dataset not in datasets.NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(datasets.NAMES)}")
    preset = next(p for p in PRESETS.values() if dataset in p.pairs)
    entries = {entry: (algorithm, config) for pair in preset.pairs[dataset]
               for entry, algorithm, config in pair.members()}
    if name in entries:
        matches = {name: entries[name]}
    elif name in registry.NAMES:
        matches = {e: v for e, v in entries.items() if v[0] == name} or {name: (name, {})}
    else:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(registry.NAMES)}, "
                         f"or a twin entry of preset {preset.name}: "
                         + ", ".join(e for e in entries if "@" in e))
    configs = [as_json(config) for _, config in matches.values()]
    if any(config != configs[0] for config in configs):
        raise ValueError(f"{name} runs with different configurations in preset {preset.name} on {dataset} "
                         f"({', '.join(matches)}); name the one to tune, e.g. --algorithm {next(iter(matches))}")
    algorithm, config = next(iter(matches.values()))
    return Target(algorithm, tuple(matches), dataset, {**config, **(overrides or {})}, preset)


def sampler_seed(study_name: str, seed: int, worker: int = 0, stored: int = 0) -> int:
    """A seed of the study's own: two studies (or two workers) never share one by accident, and
    a resumed search (`stored` trials already in the study) continues instead of replaying."""
    digest = hashlib.sha256(f"{study_name}|{seed}|{worker}|{stored}".encode()).hexdigest()
    return int(digest[:8], 16)


# ============================================================================ storage

def open_storage(url: str, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S):
    """sqlite:///FILE, journal:FILE or any database URL Optuna accepts; a clear error otherwise.
    A database server's storage gets heartbeats and retries (see the module's docstring)."""
    import optuna
    hint = ("use sqlite:///FILE.db (one process at a time), journal:FILE.log (several processes on one "
            f"machine) or a database URL (several machines; for PostgreSQL, {DRIVER_HINT})")
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not path.name or path.is_dir():
            raise ValueError(f"storage {url!r} names no journal file; {hint}")
        _make_folder(path.parent, url)
        from optuna.storages.journal import JournalFileBackend
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    heartbeat = not url.startswith("sqlite:")   # a server: workers may be on machines whose processes we cannot see
    if not heartbeat and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        _make_folder(Path(url.removeprefix("sqlite:///")).parent, url)
    if heartbeat and not 0 < heartbeat_s < grace_s:
        raise ValueError(f"the heartbeat interval ({heartbeat_s} s) must be positive and shorter than "
                         f"the grace period ({grace_s} s)")
    try:
        with warnings.catch_warnings():        # heartbeats and retries are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, **(_heartbeat_options(heartbeat_s, grace_s) if heartbeat else {}))
    except Exception as err:  # every way a URL can fail gets the same advice
        reason = hide_secrets(str(err).splitlines()[0], url)
        raise ValueError(f"cannot open the storage {redact(url)!r} ({type(err).__name__}: {reason}); "
                         f"{hint}") from err


def _make_folder(folder: Path, url: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:    # a file where a folder should be, no permission, ...
        raise ValueError(f"cannot make the folder {folder} for the storage {redact(url)!r} "
                         f"({err.strerror or err}); choose a path in a folder you can write") from None


def _heartbeat_options(heartbeat_s: int, grace_s: int) -> dict:
    """RDBStorage's heartbeat arguments; the retry callback and its argument were renamed in
    Optuna 4.9, and the kit accepts Optuna from 4.0 on."""
    import optuna
    storages = optuna.storages
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        retry = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)}
    else:
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=MAX_RETRIES)}
    return {"heartbeat_interval": heartbeat_s, "grace_period": grace_s, **retry}


def retry_of(trial) -> int | None:
    """The trial this one repeats: after a dead worker (same machine: user attribute `retry_of`;
    stale heartbeat: Optuna's system attribute `failed_trial`)."""
    return trial.user_attrs.get("retry_of", trial.system_attrs.get("failed_trial"))


def has_heartbeat(storage) -> bool:
    from optuna.storages import RDBStorage
    return isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() is not None


SECRET_KEYS = ("password", "passwd", "pwd", "pass", "sslpassword", "secret", "token")


def _secrets(url: str) -> list[str]:
    """The password and every secret query parameter of a database URL."""
    from sqlalchemy.engine import make_url
    try:
        parsed = make_url(url)
    except Exception:            # not a URL SQLAlchemy reads: nothing to hide that we can find
        return []
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in SECRET_KEYS:
            found += [value] if isinstance(value, str) else list(value)
    found = [str(v) for v in found if v]
    return found + [quote(v, safe="") for v in found if quote(v, safe="") != v]   # as written in the URL


def redact(url: str) -> str:
    """The URL without its password (user:PASSWORD@ or ?password=...), for files and logs."""
    for secret in _secrets(url):
        url = url.replace(f":{secret}@", ":***@").replace(f"={secret}", "=***")
    return url


def hide_secrets(text: str, url: str) -> str:
    """`text` (an error message, say) with every secret of `url` replaced by ***."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def worker_id() -> str:
    """host:pid of this process, stored with each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def local_pid(trial) -> int | None:
    """The process id of the trial's worker if that worker runs on this machine, else None."""
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def recover_abandoned(study, storage) -> list[int]:
    """Trials left running by a worker of this machine that no longer exists (killed, crashed):
    mark them failed and queue their parameters again, so the search resumes where it stopped.
    Workers on other machines are left alone: only they know whether they still run."""
    from optuna.trial import TrialState
    study_id = storage.get_study_id_from_name(study.study_name)
    retried = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = local_pid(trial)
        if pid is None or process_alive(pid):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "abandoned", f"worker {trial.user_attrs['worker']} exited mid-trial")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        if trial.params:         # a worker killed before it sampled anything leaves nothing to retry
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            retried.append(trial.number)
    return retried


# ============================================================================ the search

def _setup(tgt: Target, searched: dict, fixed: dict, epochs: int, pruner: str) -> dict:
    """Everything that must match for trials to be comparable; stored with the study."""
    preset = tgt.preset
    return as_json({
        "algorithm": tgt.algorithm, "entries": tgt.entries, "dataset": tgt.dataset,
        "config": {**{k: v for k, v in tgt.config.items() if k not in searched}, **fixed}, "space": searched, "epochs": epochs, "pruner": pruner,
        "batch_size": preset.batch_size, "monitor": preset.monitor, "patience": preset.patience,
        "min_delta": preset.min_delta})


def check_config(tgt: Target, setup: dict) -> None:
    """Build the model once, on the CPU, before anything is stored: a bad --set fails here
    with the constructor's message instead of leaving a study behind."""
    spec = datasets.SPECS["fashion_mnist" if tgt.dataset == datasets.SAMPLE_NAME else tgt.dataset]
    params = {name: low for name, (low, _, _) in setup["space"].items()}
    registry.build(tgt.algorithm, input_shape=spec.input_shape, num_classes=spec.num_classes,
                   **setup["config"], **params)


def _make_pruner(name: str):
    import optuna
    if name == "median":     # the study's BP pruner, now for everyone; never on the first two epochs
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    return optuna.pruners.NopPruner()


class StudyFull(Exception):
    """A trial began when the study already held all its trials (finished, running or queued)."""


def taken_before(trial) -> int:
    """Trials numbered below this one that finished, run or wait to run: the places they take.
    Numbers are given out one at a time by the storage, so two workers that start together
    never both see room for one last trial."""
    from optuna.trial import TrialState
    taking = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    return sum(t.number < trial.number and t.state in taking for t in trial.study.get_trials(deepcopy=False))


def objective(tgt: Target, data, setup: dict, seed: int, trials: int | None = None):
    """Optuna's objective: build with the sampled parameters, train with `fit`, return the
    validation accuracy. Each epoch reports to the pruner; divergence counts as pruned. With
    `trials`, a trial that finds the study full fails at once, before it draws parameters."""
    import optuna

    def run_trial(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_id())
        if trials is not None and taken_before(trial) >= trials:
            trial.set_user_attr("surplus", f"the study already held its {trials} trials when this one began")
            raise StudyFull(trial.number)
        params = {name: (trial.suggest_int(name, low, high) if kind == "int"
                         else trial.suggest_float(name, low, high, log=True))
                  for name, (low, high, kind) in setup["space"].items()}
        seed_all(seed)
        model = registry.build(tgt.algorithm, input_shape=data.input_shape,
                               num_classes=data.num_classes, **setup["config"], **params)
        step, staged = 0, len(model.stages()) > 1

        def report(record):
            nonlocal step
            step += 1
            if staged:     # CaFo's blocks, greedy MF's layers: step k of one trial may be block 2
                return     # while step k of another is block 1, so the pruner could only mislead
            trial.report(record["val_acc"], step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {step}: val_acc {record['val_acc']:.4f}")

        try:
            fit(model, data, epochs=setup["epochs"], batch_size=setup["batch_size"],
                monitor=setup["monitor"], patience=setup["patience"], min_delta=setup["min_delta"],
                seed=seed, progress=False, on_epoch=report, cuda_graphs=True)
        except TrainingDiverged as err:
            trial.set_user_attr("diverged", str(err))
            raise optuna.TrialPruned(str(err)) from err
        return evaluate(model, data.val)

    return run_trial


def _check_setup(study, setup: dict, url: str) -> None:
    stored = study.user_attrs.get("fwdlib_setup")
    if stored is None:
        study.set_user_attr("fwdlib_setup", setup)
        return
    differ = sorted(k for k in set(stored) | set(setup) if stored.get(k) != setup.get(k))
    if differ:
        lines = "; ".join(f"{k}: study has {stored.get(k)!r}, asked {setup.get(k)!r}" for k in differ)
        raise ValueError(f"study {study.study_name!r} in {redact(url)} was made with other settings "
                         f"({lines}); its trials would not be comparable. Resume it with the same "
                         "settings, or start another with --study NAME")


def tune(algorithm: str, dataset: str = datasets.SAMPLE_NAME, *, trials: int = 20, epochs: int | None = None,
         storage: str = DEFAULT_STORAGE, study: str | None = None, seed: int = 0, worker: int = 0,
         out: str | Path | None = None, pruner: str = "median", only=None, overrides: dict | None = None,
         device: str | None = None, root=None, figures: bool = True, progress: bool | None = None,
         verbose: bool = True, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S) -> dict:
    """Run (or resume) a search until the study holds `trials` finished trials; write the best
    parameters to `out` (default tune-results/STUDY.json) and return what was written.
    heartbeat_s, grace_s: database storage only (see the module's docstring)."""
    import optuna
    from optuna.trial import TrialState

    if trials < 1:
        raise ValueError(f"--trials must be at least 1, got {trials}")
    if pruner not in PRUNERS:
        raise ValueError(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
    tgt = target(algorithm, dataset, overrides)
    epochs = tgt.preset.epochs if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {epochs}")
    searched, fixed = search_space(tgt.algorithm, tgt.config, epochs, only)
    for key in sorted(set(overrides or {}) & set(searched)):
        print(f"tune: warning: --set {key}={overrides[key]!r} is ignored, because {key} is searched; "
              f"leave it out of the search with --only to fix it at that value", file=sys.stderr)
    setup = _setup(tgt, searched, fixed, epochs, pruner)
    check_config(tgt, setup)
    study_name = study or f"{tgt.entries[0] if len(tgt.entries) == 1 else tgt.algorithm}-{dataset}"
    out = Path(out) if out else DEFAULT_DIR / f"{study_name}.json"

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(storage, heartbeat_s, grace_s)
    the_study = optuna.create_study(study_name=study_name, storage=store, pruner=_make_pruner(pruner),
                                    direction="maximize", load_if_exists=True)
    _check_setup(the_study, setup, storage)
    sampling_seed = sampler_seed(study_name, seed, worker, stored=len(the_study.get_trials(deepcopy=False)))
    the_study.sampler = optuna.samplers.TPESampler(seed=sampling_seed, constant_liar=True)
    retried = [] if has_heartbeat(store) else recover_abandoned(the_study, store)
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    done = len(the_study.get_trials(deepcopy=False, states=finished_states))
    if verbose:
        print(f"tune {study_name}: {done} of {trials} trials already finished in {redact(storage)}"
              + (f"; retrying interrupted trial(s) {retried}" if retried else ""), flush=True)
    if done < trials:
        data = datasets.load(dataset, device=pick_device(device), root=root)
        bar = progress_bar(trials, f"tune {study_name}", show_progress() if progress is None else progress,
                           initial=done, unit="trial", leave=True)
        callbacks = [lambda s, t: _advance(bar, s, t)]
        try:
            fill(the_study, store, objective(tgt, data, setup, seed, trials), trials, callbacks=callbacks,
                 verbose=verbose)
        except KeyboardInterrupt:   # Optuna has marked the running trial failed; keep the best so far
            saved = bool(the_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if saved:
                summarise(the_study, setup, storage=storage, out=out, figures=False, verbose=False,
                          sampler_seed=sampling_seed)
            raise KeyboardInterrupt("interrupted; the running trial is marked failed, the finished ones are kept"
                                    + (f", the best so far is in {out}" if saved else "")) from None
        finally:
            bar.close()
    return summarise(the_study, setup, storage=storage, out=out, figures=figures, verbose=verbose,
                     sampler_seed=sampling_seed)


def fill(study, storage, run_trial, trials: int, *, callbacks=(), poll_s: float = 1.0,
         verbose: bool = True) -> None:
    """Run trials until the study holds `trials` finished ones (completed or pruned).

    Several workers may fill one study. A worker starts a trial while finished, running and
    queued trials leave room (a queued one, a retry, is always taken first). When no room is left
    but trials still run, it waits for them, because one may belong to a dead worker: with a
    database server's heartbeats such a trial is failed and queued again once it has been silent
    for the grace period; with SQLite or a journal file, only a dead process of this machine can
    be told (by its process id), so a worker stops waiting when the rest run elsewhere.
    """
    import optuna
    from optuna.trial import TrialState
    heartbeat, waited_for = has_heartbeat(storage), set()
    while True:
        if heartbeat:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        else:
            recover_abandoned(study, storage)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
        if finished >= trials:
            return
        if states[TrialState.WAITING] or finished + states[TrialState.RUNNING] < trials:
            with _quiet_about(StudyFull, KeyboardInterrupt):   # both are reported our own way
                study.optimize(run_trial, n_trials=1, callbacks=callbacks, catch=(StudyFull,))
            continue
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not heartbeat and all(local_pid(t) is None for t in running):
            return
        for trial in running:
            if verbose and trial.number not in waited_for:
                waited_for.add(trial.number)
                print(f"tune: waiting for trial {trial.number} of worker {trial.user_attrs.get('worker', '?')}; "
                      "if that worker has stopped, its trial is failed and retried here "
                      + ("once its heartbeat has been silent for the grace period" if heartbeat
                         else "as soon as its process is gone"), flush=True)
        time.sleep(poll_s)


class _quiet_about:
    """Hide Optuna's "Trial N failed ... because of" warning for expected exception types
    (a filter on the handlers: Optuna logs from child loggers, which skip a parent's filters)."""

    def __init__(self, *kinds: type[BaseException]):
        names = tuple(f"{k.__name__}(" for k in kinds)
        # Optuna says it twice: "... because of the following error: Kind(...)", then
        # "Trial N failed with value None." (a trial failed by an uncaught error raises anyway).
        self.filter = lambda record: not (any(n in record.getMessage() for n in names)
                                          or record.getMessage().endswith("failed with value None."))
        self.handlers = logging.getLogger("optuna").handlers

    def __enter__(self):
        for handler in self.handlers:
            handler.addFilter(self.filter)

    def __exit__(self, *exc):
        for handler in self.handlers:
            handler.removeFilter(self.filter)


def status(study_name: str, storage: str) -> str:
    """Every trial of a study, one line each, readable from any machine that reaches the storage:
    a running trial shows its worker and how long it has been running."""
    import optuna
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:
        raise ValueError(f"no study {study_name!r} in {redact(storage)}; name it with --study") from None
    lines = [f"study {study_name} in {redact(storage)}"]
    for t in study.get_trials(deepcopy=False):
        repeats = retry_of(t)
        notes = [f"val_acc {t.value:.4f}" if t.value is not None else "",
                 f"running for {time.time() - t.datetime_start.timestamp():.0f} s"
                 if t.state.name == "RUNNING" and t.datetime_start else "",
                 f"retry of trial {repeats}" if repeats is not None else "",
                 t.user_attrs.get("surplus", ""), t.user_attrs.get("abandoned", "")]
        lines.append(f"  trial {t.number:3d} {t.state.name:8s} worker {t.user_attrs.get('worker', '-')}"
                     + "".join(f"; {n}" for n in notes if n))
    return "\n".join(lines)


def _advance(bar, study, trial) -> None:
    if trial.state.name in ("COMPLETE", "PRUNED"):
        bar.update()
    try:
        bar.set_postfix(best_val_acc=f"{study.best_value:.4f}")
    except ValueError:                  # no completed trial yet
        pass


def summarise(study, setup: dict, *, storage: str, out: Path, figures: bool = True,
              verbose: bool = True, sampler_seed: int | None = None) -> dict:
    """Write the best parameters (and figures) and print the study's summary."""
    import optuna
    from optuna.trial import TrialState
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    counts = ", ".join(f"{n} {s.name.lower()}" for s, n in states.items())
    if not states[TrialState.COMPLETE]:
        raise RuntimeError(f"study {study.study_name!r} has no completed trial ({counts or 'no trials'}); "
                           "every trial was pruned or failed: run more trials, or use --pruner none")
    best = study.best_trial
    result = {
        "format": FORMAT, "algorithm": setup["algorithm"], "entries": setup["entries"],
        "dataset": setup["dataset"], "params": best.params, "config": setup["config"],
        "best_val_acc": best.value, "best_trial": best.number,
        "finished_trials": states[TrialState.COMPLETE] + states[TrialState.PRUNED],
        "trial_states": {s.name.lower(): n for s, n in states.items()},
        "study": study.study_name, "storage": redact(storage), "sampler_seed": sampler_seed,
        "search": {k: setup[k] for k in ("space", "epochs", "pruner", "batch_size", "monitor",
                                         "patience", "min_delta")},
        "versions": {"torch": torch.__version__, "optuna": optuna.__version__},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(result, indent=2))
    written = [out]
    if figures:
        written += _figures(study, out)
    if verbose:
        print(f"study {study.study_name}: {counts}")
        print(f"best: trial {best.number}, validation accuracy {best.value:.4f}: {format_settings(best.params)}")
        print("written: " + ", ".join(map(str, written)))
        print(f"use it: python -m fwdlib.bench --params {out}")
    return result


def _figures(study, out: Path) -> list[Path]:
    """Optimisation history and parameter importances, beside the parameters file."""
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as optuna_plots
    drawn = []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for name, draw in (("history", optuna_plots.plot_optimization_history),
                       ("importances", optuna_plots.plot_param_importances)):
        if name == "importances" and (len(complete) < 2 or len(complete[0].params) < 2):
            print("tune: importances figure not drawn: it needs two searched parameters and two "
                  "completed trials")
            continue
        # rc_context: Optuna switches the global style to ggplot; the notebooks' figures keep theirs.
        with warnings.catch_warnings(), plt.rc_context():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                fig = draw(study).figure
            except (ValueError, RuntimeError) as err:
                print(f"tune: {name} figure not drawn: {err}")
                continue
            fig.tight_layout()
            drawn.append(save_png(fig, out.with_name(f"{out.stem}-{name}.png")))
            plt.close(fig)
    return drawn


# ============================================================================ command line

def parse_overrides(items) -> dict:
    """--set key=value pairs, values as JSON (hidden=[256,256], schedule="greedy" or greedy)."""
    overrides = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fwdlib.tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm",
                        help=f"one of {', '.join(registry.NAMES)}, or a twin entry such as bp-mlp@mf")
    parser.add_argument("--dataset", default=datasets.SAMPLE_NAME, help=", ".join(datasets.NAMES))
    parser.add_argument("--trials", type=int, default=20, help="finished trials the study should hold")
    parser.add_argument("--epochs", type=int, help="epoch cap per trial and stage (default: the preset's)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="sqlite:///FILE, journal:FILE or a database URL")
    parser.add_argument("--study", help="study name (default: ALGORITHM-DATASET)")
    parser.add_argument("--seed", type=int, default=0, help="training seed; with the study name, the sampler's")
    parser.add_argument("--worker", type=int, default=0, help="this worker's number, when several share a study")
    parser.add_argument("--out", help="best-parameters file (default: tune-results/STUDY.json)")
    parser.add_argument("--pruner", default="median", help="median or none: the same for every algorithm")
    parser.add_argument("--only", help="comma-separated subset of the search space")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="change the base configuration")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--data-root", help="folder holding the datasets")
    parser.add_argument("--no-figures", action="store_true", help="skip the history and importance plots")
    parser.add_argument("--heartbeat", type=int, default=HEARTBEAT_S, metavar="S",
                        help=f"database storage: seconds between a running trial's heartbeats (default {HEARTBEAT_S})")
    parser.add_argument("--grace", type=int, default=GRACE_S, metavar="S",
                        help="database storage: seconds of silence after which a trial's worker counts as "
                             f"dead and the trial is failed and retried (default {GRACE_S})")
    parser.add_argument("--status", action="store_true",
                        help="print every trial of the study (state, worker, value, running time, retries) and exit")
    args = parser.parse_args(argv)
    if not args.algorithm and not (args.status and args.study):
        parser.error("--algorithm is required (with --status, --study NAME will do instead)")
    try:
        if args.status:
            print(status(args.study or f"{args.algorithm}-{args.dataset}", args.storage))
            return 0
        tune(args.algorithm, args.dataset, trials=args.trials, epochs=args.epochs, storage=args.storage,
             study=args.study, seed=args.seed, worker=args.worker, out=args.out, pruner=args.pruner,
             only=as_tuple(args.only), overrides=parse_overrides(args.set), device=args.device,
             root=args.data_root, figures=not args.no_figures, heartbeat_s=args.heartbeat, grace_s=args.grace)
    except KeyboardInterrupt as stop:
        print(f"\ntune: {stop or 'interrupted'}. To resume, run the same command again.", file=sys.stderr)
        return 130
    except (ValueError, datasets.DataError, RuntimeError, TypeError) as err:
        print(f"error: {hide_secrets(str(err), args.storage)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
