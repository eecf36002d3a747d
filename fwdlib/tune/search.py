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
import sys
import warnings
from collections import Counter
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from .. import algorithms as registry
from .. import data as datasets
from ..runs.entry import Entry
from ..bench.figures import save_png
from ..bench.params import UNPINNED, params_record
from ..bench.plan import entries_of, spec_of
from ..bench.presets import PRESETS
from ..runs.build import build_model, fit_spec
from ..runs.spec import RunSpec
from ..train import TrainingDiverged, evaluate, progress_bar, show_progress
from ..launch import Stopped
from ..commandline import BadValue, format_settings, redact
from ..files import as_json, atomic_write, writable_folder
from ..session import pick_device, seed_all
from .space import sampler_seed, search_space
from ..coordination import GRACE_S, HEARTBEAT_S
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
    specs = {entry: spec_of(PRESETS[preset], dataset, entry, epochs=epochs, device=device, seed=seed)
             for entry in entries_of(PRESETS[preset], dataset)}
    try:
        entry = Entry.parse(name)
    except ValueError:
        entry = None
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
        trial.report(record["val_acc"], step)
        if trial.should_prune():
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


def tune(algorithm: str, dataset: str = datasets.SAMPLE_NAME, *, trials: int = 20, epochs: int | None = None,
         storage: str = DEFAULT_STORAGE, study: str | None = None, seed: int = 0, worker: int = 0,
         out: str | Path | None = None, pruner: str = "median", only=None, overrides: dict | None = None,
         device: str | None = None, root=None, figures: bool = True, progress: bool | None = None,
         verbose: bool = True, heartbeat_s: float = HEARTBEAT_S, grace_s: float = GRACE_S,
         preset: str | None = None) -> dict:
    """Run (or resume) a search until the study holds `trials` finished trials; write the best
    parameters to `out` (default tune-results/STUDY.json) and return what was written.
    preset: the benchmark preset whose run is tuned (default: the first that runs `dataset`).
    heartbeat_s, grace_s: database storage only (see the module's docstring)."""

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
    spec, entries = base_spec(algorithm, dataset, preset, epochs=epochs, overrides=overrides,
                              device=str(pick_device(device)), seed=seed)
    searched, _ = search_space(spec.algorithm, spec.config, spec.rule.epochs, only)
    for key in sorted(set(overrides or {}) & set(searched)):
        print(f"tune: warning: --set {key}={overrides[key]!r} is ignored, because {key} is searched; "
              f"leave it out of the search with --only to fix it at that value", file=sys.stderr)
    spec = searched_spec(spec, searched)
    setup = setup_of(spec, entries, searched, pruner)
    check_config(spec, searched)
    study_name = study or f"{entries[0] if len(entries) == 1 else spec.algorithm}-{dataset}"
    out = Path(out) if out else DEFAULT_DIR / f"{study_name}.json"
    # Everything a search needs is checked before a study is stored: where the best parameters
    # go, the device (chosen above) and the data.
    writable_folder(out.parent, what=f"the folder of --out {out}")
    if out.is_dir():
        raise BadValue("out", f"{out} is a folder; name the .json file to write, e.g. {out / (study_name + '.json')}")
    data = datasets.load(dataset, device=torch.device(spec.device), root=root)

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
        print(f"data: {data.source}")
        print(f"tune {study_name}: {done} of {trials} trials already finished in {redact(storage)}"
              + (f"; retrying interrupted trial(s) {retried}" if retried else ""), flush=True)
    if done < trials:
        bar = progress_bar(trials, f"tune {study_name}", show_progress() if progress is None else progress,
                           initial=done, unit="trial", leave=True)
        callbacks = [lambda s, t: _advance(bar, s, t)]
        try:
            with Interrupts() as interrupts:
                fill(the_study, store, objective(spec, data, searched, trials, interrupts), trials,
                     callbacks=callbacks, verbose=verbose, interrupts=interrupts)
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
