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

import json
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from .. import algorithms as registry, data as datasets
from ..bench.figures import save_png
from ..bench.params import FORMAT
from ..bench.presets import PRESETS, Preset
from ..train import TrainingDiverged, evaluate, fit, progress_bar, show_progress
from ..utils import as_json, atomic_write, format_settings, pick_device, seed_all
from .space import sampler_seed, search_space
from .storage import GRACE_S, HEARTBEAT_S, has_heartbeat, open_storage, redact
from .workers import StudyFull, fill, recover_abandoned, taken_before, worker_id

DEFAULT_DIR = Path("tune-results")
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_DIR}/studies.db"
PRUNERS = ("median", "none")


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
    if name == "median":     # the study's BP pruner, now for everyone; never on the first two epochs
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    return optuna.pruners.NopPruner()


def objective(tgt: Target, data, setup: dict, seed: int, trials: int | None = None):
    """Optuna's objective: build with the sampled parameters, train with `fit`, return the
    validation accuracy. Each epoch reports to the pruner; divergence counts as pruned. With
    `trials`, a trial that finds the study full fails at once, before it draws parameters."""

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
