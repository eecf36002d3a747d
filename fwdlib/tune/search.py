"""Hyperparameter search with Optuna: the same fair search for every algorithm.

    fwdlib tune --algorithm mf --dataset fashion_mnist_sample --trials 20
    fwdlib bench --params tune-results/mf-fashion_mnist_sample.json

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

import contextlib
import json
import signal
import warnings
from collections import Counter
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from .. import data as datasets
from ..bench.figures import save_png
from ..bench.params import params_record
from ..runs.build import build_model, fit_spec
from ..runs.spec import RunSpec
from ..train import TrainingDiverged, evaluate, progress_bar, show_progress
from ..launch import Stopped
from ..commandline import format_settings, redact
from ..files import atomic_write
from ..session import seed_all
from .space import sampler_seed
from .search_spec import SearchSpec
from .storage import has_heartbeat, open_storage
from .workers import (
    Interrupts,
    StudyFull,
    fill,
    mark_worker,
    recover_abandoned,
    taken_before,
)


class NoCompletedTrial(RuntimeError):
    """Every trial was pruned, diverged or failed: the algorithm's outcome, not bad input."""


def _make_pruner(name: str):
    if name == "median":     # the study's BP pruner, now for everyone; never on the first two epochs
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    return optuna.pruners.NopPruner()


def objective(spec: RunSpec, data, searched: dict, trials: int | None = None,
              interrupts: Interrupts | None = None):
    """Optuna's objective: the spec with the sampled parameters, trained as the benchmark trains
    it (`fit_spec`), scored by validation accuracy. Each epoch reports to the pruner; divergence
    counts as pruned. With `trials`, a trial that finds the study full fails at once, before it
    draws parameters."""

    def run_trial(trial: optuna.Trial) -> float:
        mark_worker(trial)
        if trials is not None and taken_before(trial) >= trials:
            trial.set_user_attr("surplus", f"the study already held its {trials} trials when this one began")
            raise StudyFull(trial.number)
        return train_trial(trial, spec.with_config(**{
            name: (trial.suggest_int(name, low, high) if kind == "int" else trial.suggest_float(name, low, high, log=True))
            for name, (low, high, kind) in searched.items()}), data, interrupts)

    return run_trial


def train_trial(trial: optuna.Trial, spec: RunSpec, data, interrupts: Interrupts | None = None) -> float:
    """Train one trial's spec; its validation accuracy. Ctrl-C stops the training at once."""
    seed_all(spec.seed)
    model = build_model(spec, data)
    step, staged = 0, len(model.stages()) > 1

    def report(record):
        nonlocal step
        step += 1
        if staged:     # CaFo's blocks, greedy MF's layers: step k of one trial may be block 2
            return     # while step k of another is block 1, so the pruner could only mislead
        with interrupts.storage_call() if interrupts else contextlib.nullcontext():
            trial.report(record["val_acc"], step)
            prune = trial.should_prune()
        if prune:
            raise optuna.TrialPruned(f"pruned at epoch {step}: val_acc {record['val_acc']:.4f}")

    try:
        with interrupts.training_window() if interrupts else contextlib.nullcontext():
            fit_spec(model, data, spec, on_epoch=report)
    except TrainingDiverged as err:
        trial.set_user_attr("diverged", str(err))
        raise optuna.TrialPruned(str(err)) from err
    return evaluate(model, data.val)


def _check_setup(study, setup: dict, url: str) -> None:
    stored = study.user_attrs.get("fwdlib_setup")
    if stored is None:
        study.set_user_attr("fwdlib_setup", setup)
        return
    stored, asked = _flat(stored), _flat(setup)
    differ = sorted(k for k in set(stored) | set(asked) if stored.get(k) != asked.get(k))
    if differ:
        lines = "; ".join(f"{k}: study has {stored.get(k)!r}, asked {asked.get(k)!r}" for k in differ)
        raise ValueError(f"study {study.study_name!r} in {redact(url)} was made with other settings "
                         f"({lines}); its trials would not be comparable. Resume it with the same "
                         "settings, or start another with --study NAME")


def _flat(setup: dict) -> dict:
    """The setup with its spec's settings as "spec.NAME" (a mismatch names the one setting)."""
    return {**{k: v for k, v in setup.items() if k != "spec"},
            **{f"spec.{k}": v for k, v in (setup.get("spec") or {}).items()}}


def tune(search: SearchSpec, *, root=None, figures: bool = True, progress: bool | None = None,
         verbose: bool = True) -> dict:
    """Run (or resume) `search` until its study holds `search.trials` finished trials; write the
    best parameters to `search.out` and return what was written. root: the datasets' folder."""
    spec, setup, storage, study_name, out, trials = (search.spec, search.setup, search.storage, search.study,
                                                     search.out, search.trials)
    data = datasets.load(spec.dataset, device=torch.device(spec.device), root=root)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(storage, search.heartbeat_s, search.grace_s)
    the_study = optuna.create_study(study_name=study_name, storage=store, pruner=_make_pruner(search.pruner),
                                    direction="maximize", load_if_exists=True)
    _check_setup(the_study, setup, storage)
    sampling_seed = sampler_seed(study_name, search.seed, search.worker,
                                 stored=len(the_study.get_trials(deepcopy=False)))
    the_study.sampler = optuna.samplers.TPESampler(seed=sampling_seed, constant_liar=True)
    retried = [] if has_heartbeat(store) else recover_abandoned(the_study, store, search.grace_s)
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    done = len(the_study.get_trials(deepcopy=False, states=finished_states))
    if verbose:
        print(f"data: {data.source}")
        print(f"tune {study_name}: {done} of {trials} trials already finished in {redact(storage)}"
              + (f"; retrying interrupted trial(s) {retried}" if retried else ""), flush=True)
    if done < trials:
        bar = progress_bar(trials, f"tune {study_name}", show_progress() if progress is None else progress,
                           initial=done, unit="trial", leave=True)
        callbacks = [lambda s, t: _advance(bar, s, t)]
        try:
            with Interrupts() as interrupts:
                fill(the_study, store, objective(spec, data, search.space, trials, interrupts), trials,
                     callbacks=callbacks, grace_s=search.grace_s, verbose=verbose, interrupts=interrupts)
        except KeyboardInterrupt as stop:   # Optuna has marked the running trial failed; keep the best so far
            saved = bool(the_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if saved:
                summarise(the_study, spec, setup, storage=storage, out=out, figures=False, verbose=False,
                          sampler_seed=sampling_seed)
            raise Stopped(getattr(stop, "signum", signal.SIGINT),
                          f"{stop or 'interrupted'}; the running trial is marked failed, the finished ones are kept"
                          + (f", the best so far is in {out}" if saved else "")) from None
        finally:
            bar.close()
    return summarise(the_study, spec, setup, storage=storage, out=out, figures=figures, verbose=verbose,
                     sampler_seed=sampling_seed)


def _advance(bar, study, trial) -> None:
    if trial.state.name in ("COMPLETE", "PRUNED"):
        bar.update()
    try:
        bar.set_postfix(best_val_acc=f"{study.best_value:.4f}")
    except ValueError:                  # no completed trial yet
        pass


def summarise(study, spec: RunSpec, setup: dict, *, storage: str, out: Path, figures: bool = True,
              verbose: bool = True, sampler_seed: int | None = None) -> dict:
    """Write the best parameters with the spec they were tuned on (and figures); print the summary."""
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    counts = ", ".join(f"{n} {s.name.lower()}" for s, n in states.items())
    if not states[TrialState.COMPLETE]:
        diverged = sum("diverged" in t.user_attrs for t in study.get_trials(deepcopy=False))
        advice = (f"{diverged} trial(s) diverged: the searched learning rates are too large for this configuration "
                  "(see fwdlib tune status); narrow the search with --only, or change the configuration"
                  if diverged else "run more trials, or use --pruner none")
        raise NoCompletedTrial(f"study {study.study_name!r} has no completed trial ({counts or 'no trials'}); {advice}")
    best = study.best_trial
    result = params_record(
        spec, best.params, setup["entries"], best_val_acc=best.value, best_trial=best.number,
        finished_trials=states[TrialState.COMPLETE] + states[TrialState.PRUNED],
        trial_states={s.name.lower(): n for s, n in states.items()},
        study=study.study_name, storage=redact(storage), sampler_seed=sampler_seed,
        search={"space": setup["space"], "pruner": setup["pruner"]},
        versions={"torch": torch.__version__, "optuna": optuna.__version__})
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(result, indent=2))
    written = [out]
    if figures:
        written += _figures(study, out)
    if verbose:
        print(f"study {study.study_name}: {counts}")
        print(f"best: trial {best.number}, validation accuracy {best.value:.4f}: {format_settings(best.params)}")
        print("written: " + ", ".join(map(str, written)))
        print(f"use it: fwdlib bench --params {out}")
    return result


def _figures(study, out: Path) -> list[Path]:
    """Optimisation history and parameter importances, beside the parameters file."""
    import matplotlib.pyplot as plt
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
