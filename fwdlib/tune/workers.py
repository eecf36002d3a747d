"""Several workers fill one study: who runs a trial, which trials a dead worker left, when the study
is full, and each trial's state for --status."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..launch import Stopped
from ..commandline import redact
from ..processes import process_start, worker_id
from ..coordination import GRACE_S, MAX_ATTEMPTS, Waiter, ago, local_pid, local_worker_gone, sqlite_file, status_line
from .storage import has_heartbeat, open_storage, retry_of


def mark_worker(trial) -> None:
    """Sign a trial with this process: host:pid and when the process started."""
    trial.set_user_attr("worker", worker_id())
    trial.set_user_attr("worker_start", process_start(os.getpid()))


def worker_gone(trial, grace_s: float = GRACE_S, study: str = "") -> bool:
    """Whether the worker of a running trial is a gone process of this machine (`local_worker_gone`;
    this process runs no trial while it looks). A worker signs its trial just after the storage
    creates it (`mark_worker`), so an unsigned trial is one being started, or one whose worker was
    killed in between: it counts as gone once this process has seen it unsigned for the grace
    period, by this process's own clock (the trial's start time is another machine's local time)."""
    if "worker" in trial.user_attrs:
        return local_worker_gone(trial.user_attrs["worker"], trial.user_attrs.get("worker_start"), idle_here=True)
    first = _UNSIGNED_SINCE.setdefault((study, trial.number), time.monotonic())
    return time.monotonic() - first > grace_s


_UNSIGNED_SINCE: dict = {}      # (study, trial number) -> when this process first saw it unsigned


def elsewhere(trial) -> bool:
    """Whether a running trial's worker runs on another machine; an unsigned trial (just started,
    see `worker_gone`) is not known to."""
    return "worker" in trial.user_attrs and local_pid(trial.user_attrs["worker"]) is None


def recover_abandoned(study, storage, grace_s: float = GRACE_S) -> list[int]:
    """Trials left running by a worker of this machine that no longer runs them (killed, crashed,
    restarted; see `worker_gone`): mark them failed and queue their parameters again, so the
    search resumes where it stopped, unless the trial has run MAX_ATTEMPTS times already (its
    `retry_of` chain). For SQLite and journal files, where every worker runs on this machine."""
    study_id = storage.get_study_id_from_name(study.study_name)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    retried = []
    for trial in trials.values():
        if trial.state != TrialState.RUNNING or not worker_gone(trial, grace_s, study.study_name):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        attempts = attempts_of(trial, trials)
        who = trial.user_attrs.get("worker")
        storage.set_trial_user_attr(trial_id, "abandoned", (f"worker {who} exited mid-trial" if who else
                                                            f"no worker signed it within {grace_s:g} s")
                                    + (f" ({attempts} runs of these parameters; not retried)"
                                       if attempts >= MAX_ATTEMPTS else ""))
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        if trial.params and attempts < MAX_ATTEMPTS:   # a worker killed before it sampled leaves nothing
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            retried.append(trial.number)
    return retried


def attempts_of(trial, trials: dict) -> int:
    """How many runs of these parameters this trial is: 1 plus the trials it retries, back along `retry_of`."""
    count, seen = 1, {trial.number}
    while (earlier := retry_of(trial)) is not None and earlier in trials and earlier not in seen:
        trial, count = trials[earlier], count + 1
        seen.add(earlier)
    return count


class StudyFull(Exception):
    """A trial began when the study already held all its trials (finished, running or queued)."""


def taken_before(trial) -> int:
    """Trials numbered below this one that finished, run or wait to run: the places they take.
    Numbers are given out one at a time by the storage, so two workers that start together
    never both see room for one last trial."""
    taking = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    return sum(t.number < trial.number and t.state in taking for t in trial.study.get_trials(deepcopy=False))


class Interrupts:
    """Ctrl-C and SIGTERM that never cut the storage in half: during a trial's training they stop
    the trial at once; during a storage call (a database query, Optuna's bookkeeping) they are held
    until the call is over and raised at the next `check`, so no cursor is left open mid-fetch."""
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.training, self.pending = False, None

    def __enter__(self) -> Interrupts:
        self.previous = {}
        if threading.current_thread() is threading.main_thread():   # only there can a handler be set
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame) -> None:
        if self.training:
            raise Stopped(signum)
        self.pending = signum

    def check(self) -> None:
        if self.pending is not None:
            raise Stopped(self.pending)

    @contextlib.contextmanager
    def training_window(self):
        self.check()
        self.training = True
        try:
            yield
        finally:
            self.training = False

    @contextlib.contextmanager
    def storage_call(self):
        """A storage call inside the training window (the pruner's report after an epoch): a signal
        waits until it is over, then stops the trial. Raised inside it, it could cut a commit in half
        and leave the file's write lock held, so that the trial could not even be marked failed."""
        training, self.training = self.training, False
        try:
            yield
        finally:
            self.training = training
        self.check()


def fill(study, storage, run_trial, trials: int, *, callbacks=(), poll_s: float = 1.0, grace_s: float = GRACE_S,
         verbose: bool = True, interrupts: Interrupts | None = None) -> None:
    """Run trials until the study holds `trials` finished ones (completed or pruned).

    Several workers may fill one study. A worker starts a trial while finished, running and
    queued trials leave room (a queued one, a retry, is always taken first). When no room is left
    but trials still run, it waits for them, because one may belong to a dead worker: with a
    database server's heartbeats such a trial is failed and queued again once it has been silent
    for the grace period; with SQLite or a journal file, only a dead process of this machine can
    be told (by its process id), so a worker stops waiting when the rest run elsewhere (a trial
    no worker has signed yet is waited for: it is being started, or is failed after `grace_s`).
    """
    heartbeat = has_heartbeat(storage)
    waiter = Waiter("tune", poll_s, "if that worker has stopped, its trial is failed and retried here "
                    + ("once its heartbeat has been silent for the grace period" if heartbeat
                       else "as soon as its process is gone"), print if verbose else (lambda *a, **k: None))
    while True:
        if interrupts is not None:
            interrupts.check()
        if heartbeat:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        else:
            recover_abandoned(study, storage, grace_s)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
        if finished >= trials:
            return
        if states[TrialState.WAITING] or finished + states[TrialState.RUNNING] < trials:
            with _quiet_about(StudyFull, KeyboardInterrupt, Stopped):   # both are reported our own way
                study.optimize(run_trial, n_trials=1, callbacks=callbacks, catch=(StudyFull,))
            continue
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not heartbeat and all(elsewhere(t) for t in running):
            return
        waiter.wait([(t.number, f"trial {t.number}", t.user_attrs.get("worker", "starting")) for t in running])


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
    file = sqlite_file(storage)
    if file and file != Path("") and not file.exists():
        raise ValueError(f"no storage file {file}: check the --storage path "
                         "(--status only reads; it creates nothing)")
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:
        raise ValueError(f"no study {study_name!r} in {redact(storage)}; name it with --study") from None
    lines = [f"study {study_name} in {redact(storage)}"]
    for t in study.get_trials(deepcopy=False):
        repeats = retry_of(t)
        notes = [f"val_acc {t.value:.4f}" if t.value is not None else "",
                 f"running for {ago(time.time(), t.datetime_start.timestamp())}"
                 if t.state.name == "RUNNING" and t.datetime_start else "",
                 f"retry of trial {repeats}" if repeats is not None else "",
                 t.user_attrs.get("surplus", ""), t.user_attrs.get("abandoned", "")]
        lines.append(status_line(f"  trial {t.number:3d} {t.state.name:8s} worker {t.user_attrs.get('worker', '-')}"
                                 + "".join(f"; {n}" for n in notes if n)))
    return "\n".join(lines)
