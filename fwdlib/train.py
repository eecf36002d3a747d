"""One training loop for every algorithm: epochs, validation, early stopping, timing.

`fit` walks the algorithm's stages in order (one for BP; one per layer for greedy MF; one per
block for CaFo) and applies the same stopping rule to each: stop when the monitored validation
metric has not improved by `min_delta` for `patience` epochs, then restore the best state.
"""
from __future__ import annotations

import copy
import math
import os
import sys
import time
from dataclasses import dataclass, field

import torch

from .algorithms.base import Algorithm, Stage, StageData
from .data import Dataset, Split, batches
from .graphs import GraphedStep, execution_mode
from .meters.memory import SavedTensors, StepMemory, stage_cache_bytes, step_memory
from .session import synchronize, use_training_threads

DEFAULT_BATCH = 128        # the study's batch for every algorithm but FF (bench/study.py)

MONITORS = ("val_loss", "val_acc")
# Divergence: a non-finite loss, or an epoch whose mean loss exceeds this multiple of the stage's
# first step's loss (training that works lowers its loss; one that explodes raises it by orders).
DIVERGENCE_FACTOR = 100.0


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names where."""


@dataclass
class History:
    """Per-epoch records (dicts) of every stage, plus the best epoch of each stage."""
    records: list[dict] = field(default_factory=list)
    best: dict[str, dict] = field(default_factory=dict)
    stopped_early: dict[str, bool] = field(default_factory=dict)
    mode: str = "eager"
    notes: list[str] = field(default_factory=list)
    prep_s: dict[str, float] = field(default_factory=dict)     # each stage's preparation
    memory: dict[str, StepMemory] = field(default_factory=dict)  # with measure_memory: per stage

    @property
    def step_memory(self) -> StepMemory | None:
        """The largest training step's memory over the stages (see fwdlib.memory)."""
        return max(self.memory.values(), key=lambda m: m.total, default=None)

    @property
    def prep_time_s(self) -> float:
        """Stage preparation: CaFo's feature extraction and BatchNorm calibration, greedy MF's
        cached activations. Part of training's cost, so part of train_time_s."""
        return sum(self.prep_s.values())

    def __getitem__(self, key: str) -> list:
        return [r[key] for r in self.records]

    @property
    def epochs(self) -> int:
        return len(self.records)

    @property
    def train_time_s(self) -> float:
        """The whole cost of training: stage preparation plus every training epoch (validation
        excluded), each timed after a synchronize."""
        return self.prep_time_s + sum(r["time_s"] for r in self.records)

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        return (f"History({self.epochs} epochs over {len(self.best)} stage(s), "
                f"train {self.train_time_s:.1f} s (preparation {self.prep_time_s:.1f} s), "
                f"last val_acc {last.get('val_acc', float('nan')):.4f})")


def show_progress() -> bool:
    """Bars in an interactive terminal or notebook; silent in CI and in logs."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def fit(algorithm: Algorithm, data: Dataset, *, epochs: int, batch_size: int = DEFAULT_BATCH,
        monitor: str = "val_loss", patience: int | None = None, min_delta: float = 0.0,
        seed: int = 0, restore_best: bool = True, eval_batch_size: int = 1024,
        progress: bool | None = None, on_epoch=None, cuda_graphs: bool = False,
        measure_memory: bool = False) -> History:
    """Train `algorithm` on `data` and return its History.

    epochs: cap per stage (a stage's own `max_epochs`, greedy MF's epochs_per_layer say, trains
    fewer where it is lower, never more: the cap is the cap). patience=None trains the
    full cap (the `matched` protocol) but still restores the best validation checkpoint when
    `restore_best`. on_epoch(record) is called after each epoch (learning curves, energy laps).
    cuda_graphs: on CUDA, replay each stage's fixed-shape training step as a CUDA graph.
    measure_memory: measure each stage's first training step (which always runs eagerly) with
    `fwdlib.memory`: saved tensors, parameters, gradients, optimizer state, the stage's cache.
    """
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    for part in ("train", "val"):
        if len(getattr(data, part)) == 0:
            raise ValueError(f"the {part} split of {data.name} is empty; training needs both a training "
                             "and a validation split (data.load gives both)")
    generator = torch.Generator().manual_seed(seed)
    if data.device.type == "cpu":
        use_training_threads()
    algorithm.to(data.device)
    history = History(mode=execution_mode(cuda_graphs, data.device))
    progress = show_progress() if progress is None else progress
    for stage in algorithm.stages():
        synchronize(data.device)
        start = time.perf_counter()
        stage_data = algorithm.begin_stage(stage, data)
        synchronize(data.device)
        history.prep_s[stage.name] = time.perf_counter() - start
        if stage.closed_form:
            start = time.perf_counter()
            algorithm.solve(stage, stage_data)
            synchronize(data.device)
            record = _record(stage, 1, math.nan, math.nan, time.perf_counter() - start,
                             *_validate(algorithm, stage, stage_data.val, eval_batch_size))
            history.records.append(record)
            history.best[stage.name] = record
            history.stopped_early[stage.name] = False
            _notify(on_epoch, record)
        else:
            _fit_stage(algorithm, stage, stage_data, history, epochs=min(stage.max_epochs or epochs, epochs),
                       batch_size=batch_size, monitor=monitor, patience=patience,
                       min_delta=min_delta, generator=generator, restore_best=restore_best,
                       eval_batch_size=eval_batch_size, progress=progress, on_epoch=on_epoch,
                       cache_bytes=stage_cache_bytes(stage_data, data) if measure_memory else None)
        algorithm.end_stage(stage)
    return history


def _fit_stage(algorithm, stage, stage_data: StageData, history, *, epochs, batch_size, monitor,
               patience, min_delta, generator, restore_best, eval_batch_size, progress, on_epoch,
               cache_bytes: int | None):
    device = stage_data.train.x.device
    if history.mode == "cuda-graph":
        step = GraphedStep(algorithm, stage)
    else:
        def step(x, y):
            return algorithm.train_step(x, y, stage)
    best_value, best_state, bad_epochs = None, None, 0
    history.stopped_early[stage.name] = False
    bar = progress_bar(epochs, f"{algorithm.name} {stage.name}", progress)
    for epoch in range(1, epochs + 1):
        algorithm.begin_epoch(stage, epoch, epochs)
        algorithm.train()
        synchronize(device)
        start = time.perf_counter()
        losses, correct = [], torch.zeros((), device=device, dtype=torch.long)
        for x, y in batches(stage_data.train, batch_size, shuffle=True, generator=generator,
                            augment=stage_data.augment):
            if cache_bytes is not None and stage.name not in history.memory:
                with SavedTensors(exclude=[*algorithm.parameters(), *algorithm.buffers()]) as saved:
                    out = step(x, y)
                history.memory[stage.name] = step_memory(algorithm, saved, cache_bytes)
            else:
                out = step(x, y)
            losses.append(out["loss"])
            if "correct" in out:
                correct = correct + out["correct"]
        synchronize(device)
        seconds = time.perf_counter() - start
        step_losses = torch.stack(losses).float()
        if epoch == 1:
            first_loss = step_losses[0].item()
        _check_diverged(step_losses, first_loss, stage, epoch, algorithm)
        n = len(stage_data.train)
        train_acc = correct.item() / n if "correct" in out else math.nan
        record = _record(stage, epoch, step_losses.mean().item(), train_acc, seconds,
                         *_validate(algorithm, stage, stage_data.val, eval_batch_size))
        history.records.append(record)
        _notify(on_epoch, record)
        value = record[monitor]
        improved = best_value is None or (
            value < best_value - min_delta if monitor == "val_loss" else value > best_value + min_delta)
        if improved:
            best_value, bad_epochs = value, 0
            history.best[stage.name] = record
            if restore_best:
                best_state = copy.deepcopy(algorithm.state_dict())
        else:
            bad_epochs += 1
        bar.set_postfix(val_loss=f"{record['val_loss']:.4f}", val_acc=f"{record['val_acc']:.4f}")
        bar.update()
        if patience is not None and bad_epochs >= patience:
            history.stopped_early[stage.name] = True
            break
    bar.close()
    if restore_best and best_state is not None:
        algorithm.load_state_dict(best_state)
    if getattr(step, "failure", None):
        history.notes.append(f"{stage.name}: {step.failure}")


def _check_diverged(step_losses: torch.Tensor, first_loss: float, stage: Stage, epoch: int, algorithm) -> None:
    """Raise TrainingDiverged, naming the rule that fired: a non-finite loss, or an epoch's mean
    loss above DIVERGENCE_FACTOR times the stage's first step's."""
    finite = torch.isfinite(step_losses)
    if not bool(finite.all()):
        step = int((~finite).nonzero()[0]) + 1
        raise TrainingDiverged(
            f"{algorithm.name}: the loss became {step_losses[step - 1].item()} at epoch {epoch}, "
            f"step {step} (stage {stage.name!r}; rule: the loss must stay finite). Training diverged: "
            "try a lower learning rate (for example half of it), or check the inputs for NaN values.")
    mean = step_losses.mean().item()
    if math.isfinite(first_loss) and abs(first_loss) > 0 and mean > DIVERGENCE_FACTOR * abs(first_loss):
        raise TrainingDiverged(
            f"{algorithm.name}: epoch {epoch}'s mean loss {mean:.3g} is more than {DIVERGENCE_FACTOR:g}x "
            f"the first step's {first_loss:.3g} (stage {stage.name!r}; rule: the loss must not grow "
            f"{DIVERGENCE_FACTOR:g}-fold). Training diverged: try a lower learning rate.")


def _validate(algorithm, stage: Stage, split: Split, batch_size: int) -> tuple[float, float]:
    algorithm.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for x, y in batches(split, batch_size):
            batch_loss, batch_correct = algorithm.eval_step(x, y, stage)
            loss, correct = loss + batch_loss, correct + batch_correct
    n = len(split)
    return float(loss) / n, int(correct) / n


def _record(stage, epoch, train_loss, train_acc, seconds, val_loss, val_acc) -> dict:
    return {"stage": stage.name, "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
            "val_loss": val_loss, "val_acc": val_acc, "time_s": seconds}


def _notify(on_epoch, record):
    if on_epoch is not None:
        on_epoch(record)


def progress_bar(total: int, desc: str, enabled: bool, **options):
    """A tqdm bar (a disabled one, which prints nothing, when progress is not shown).

    In a notebook it is a text bar on stdout that stays when finished: a widget bar is stored
    frozen at its first state in a saved notebook, and a bar on stderr looks like an error.
    """
    from tqdm import tqdm
    if not enabled:
        return tqdm(total=total, disable=True)
    defaults = {"file": sys.stdout, "leave": True, "ncols": 100} if "ipykernel" in sys.modules else {"leave": False}
    return tqdm(total=total, desc=desc, **{**defaults, **options})


def evaluate(algorithm: Algorithm, split: Split, *, batch_size: int = 1024) -> float:
    """Accuracy of `algorithm.predict` on a split (eval mode, no gradients)."""
    algorithm.eval()
    correct = 0
    with torch.no_grad():
        for x, y in batches(split, batch_size):
            correct += int((algorithm.predict(x) == y).sum())
    return correct / len(split)
