"""What the training loop needs from an algorithm, and the pieces BP and its rivals share.

An algorithm is an `nn.Module` that owns its optimizer and says how to learn from one batch.
`fwdlib.train.fit` does the rest (epochs, validation, early stopping, timing), so each
algorithm module holds only its own math.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset, Split


@dataclass(frozen=True)
class Stage:
    """One phase of training. Most algorithms have one; greedy MF has one per layer and CaFo
    one per block. `max_epochs` caps this stage below fit's epoch cap (never above it); a `closed_form`
    stage is solved once by `Algorithm.solve` instead of trained by epochs."""
    name: str
    max_epochs: int | None = None
    closed_form: bool = False


@dataclass(frozen=True)
class Param:
    """One hyperparameter the tuner searches: log-uniform floats, or integer epoch counts.

    `epochs`: an epoch count, clipped to the trial's epoch cap. `applies(config)`: whether the
    configuration uses the parameter at all (a greedy-only setting is not searched per-batch)."""
    name: str
    low: float
    high: float
    epochs: bool = False
    applies: Callable[[dict], bool] | None = None


# The BP twins' space in the study, also MF's (which the study searched without weight decay).
LR_BP, WD_BP = Param("lr", 1e-5, 1e-2), Param("weight_decay", 1e-6, 1e-3)


@dataclass
class StageData:
    """The tensors a stage trains on: raw images, or cached features of frozen layers below."""
    train: Split
    val: Split
    augment: bool = False


class Algorithm(nn.Module):
    """Interface used by `fit`. Subclasses implement `train_step` and `predict`."""

    name = "algorithm"
    twin: str | None = None                    # the BP algorithm with the same layers (None: a twin itself)
    search_space: tuple[Param, ...] = ()       # what `fwdlib.tune` searches (the study's space)
    extra_passes: tuple[str, ...] = ()    # methods that run passes besides learning (fwdlib.speed times them)
    # What the kit derives from the registry, so that a new algorithm needs no edit outside its module:
    quick: dict = {}                      # its layers in the quick preset (its twin gets the same layers)
    architecture: tuple[str, ...] = ()    # a twin's: the constructor arguments that are its layers
    examples: dict[str, dict] = {}        # small configurations, one per code path (the GPU check's graph cases)
    flow: dict | None = None              # its diagram: layers, losses, detaches (fwdlib.course.flows)
    augments = True                       # False: it trains on cached features, which cannot be augmented
    initialisation = ""                   # how its layers start where that is not PyTorch's default (the report says)
    tangent_bytes = 0                     # forward mode: the random directions a step holds at once (the meter counts them)
    variants: dict[str, dict] = {}        # named configurations it also runs as (a twin's "checkpoint": bp-mlp+checkpoint@mf)

    def stages(self) -> list[Stage]:
        return [Stage("all")]

    def begin_stage(self, stage: Stage, data: Dataset) -> StageData:
        """Prepare `stage` (freeze, cache features) and return what it trains on."""
        return StageData(data.train, data.val, data.augment)

    def end_stage(self, stage: Stage) -> None:
        """Called after `stage` ended, with its best state restored."""

    def begin_epoch(self, stage: Stage, epoch: int, epochs: int) -> None:
        """Called before epoch `epoch` (1-based) of `epochs` in `stage`: learning-rate schedules."""

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer the algorithm steps (CUDA graphs make them capturable; memory counts
        their state). Found among the attributes, in lists and dicts too."""
        found = []
        for value in vars(self).values():
            values = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
            found += [v for v in values if isinstance(v, torch.optim.Optimizer)]
        return found

    def train_step(self, x: torch.Tensor, y: torch.Tensor, stage: Stage) -> dict[str, torch.Tensor]:
        """Learn from one batch. Returns {"loss": scalar} and optionally {"correct": count};
        tensors stay on the device so the loop never waits for the GPU mid-epoch."""
        raise NotImplementedError

    def eval_step(self, x: torch.Tensor, y: torch.Tensor, stage: Stage
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss, number correct) of one validation batch of `stage`'s data."""
        logits = self.logits(x)
        return F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(1) == y).sum()

    def solve(self, stage: Stage, data: StageData) -> None:
        raise NotImplementedError(f"{self.name} has no closed-form stage {stage.name!r}")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(1)


def mlp_layers(in_features: int, widths: tuple[int, ...]) -> nn.ModuleList:
    """The hidden Linear layers of an MLP: in -> widths[0] -> widths[1] -> ..."""
    sizes = (in_features, *widths)
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """CaFo's block (and its BP twin's): Conv3x3 -> ReLU -> MaxPool 2x2 -> BatchNorm. The conv's
    weight is stored channels-last (NHWC), so its output and every op after it are too: the same
    math, in the layout oneDNN's convolutions and max-pools run fastest in on a CPU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2), nn.BatchNorm2d(out_channels)).to(memory_format=torch.channels_last)


def conv_blocks(input_shape: tuple[int, ...], channels: tuple[int, ...]) -> nn.ModuleList:
    if len(input_shape) != 3 or min(input_shape[1:]) < 2 ** len(channels):
        raise ValueError(
            f"a CNN needs image input (C, H, W) at least {2 ** len(channels)} pixels on a side, "
            f"got input_shape={tuple(input_shape)}; use an MLP (bp-mlp, mf, ff) for flat input")
    sizes = (input_shape[0], *channels)
    return nn.ModuleList(conv_block(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


def block_out_dims(input_shape: tuple[int, int, int], channels: tuple[int, ...]) -> list[int]:
    """Flattened size of each block's output: every block halves H and W (floor)."""
    _, h, w = input_shape
    dims = []
    for c in channels:
        h, w = h // 2, w // 2
        dims.append(c * h * w)
    return dims


def require_images(x: torch.Tensor, who: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{who} is a CNN and needs image batches (N, C, H, W), got shape "
                         f"{tuple(x.shape)}; pass the dataset's images, not flattened vectors")


KERNELS = ("fused", "foreach")
_kernels = ["fused"]            # what make_optimizer builds by default: a run's spec says (optimizer_kernels)


@contextlib.contextmanager
def optimizer_kernels(kind: str):
    """Build every optimizer inside with `kind` kernels ("fused" or "foreach"): how a run's spec
    (`RunSpec.kernels`) reaches the algorithms, none of which needs an argument for it."""
    if kind not in KERNELS:
        raise ValueError(f"unknown optimizer kernels {kind!r}; choose one of {', '.join(KERNELS)}")
    _kernels.append(kind)
    try:
        yield
    finally:
        _kernels.pop()


def make_optimizer(params, kind: str, lr: float, weight_decay: float, momentum: float = 0.9,
                   implementation: str | None = None):
    """AdamW or SGD with momentum. `implementation`: "fused" (one kernel per step for all the
    parameters, on CPU and CUDA; measured 3-5x faster than foreach for a 4x2000 AdamW step on 2
    CPU cores), "foreach" (one kernel per operation over all tensors) or None for the kernels
    `optimizer_kernels` chose (default fused): fused where this torch and device support it, else
    foreach. The math is the same."""
    params = [p for p in params if p.requires_grad]
    if kind not in ("adamw", "sgd"):
        raise ValueError(f"unknown optimizer {kind!r}; choose 'adamw' or 'sgd'")
    implementation = implementation or _kernels[-1]
    if implementation not in ("fused", "foreach"):
        raise ValueError(f"unknown optimizer implementation {implementation!r}; choose 'fused' or 'foreach'")
    options = {"lr": lr, "weight_decay": weight_decay, **({"momentum": momentum} if kind == "sgd" else {})}
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.SGD
    if implementation == "fused":
        try:
            return cls(params, fused=True, **options)
        except (RuntimeError, ValueError, TypeError):  # an older torch, or a device without fused kernels
            pass
    return cls(params, foreach=True, **options)


def implementation_of(optimizer: torch.optim.Optimizer) -> str:
    """"fused" or "foreach": which kernels an optimizer runs."""
    return "fused" if optimizer.defaults.get("fused") else "foreach"


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate, in place when it is a tensor (a CUDA graph reads it)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def accuracy_count(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).sum()


@torch.no_grad()
def accuracy_of_each(model: nn.Module, scores_fn, split: Split, batch_size: int = 1024) -> list[float]:
    """Accuracy of each of the score tensors `scores_fn(x)` returns (one per layer or block)."""
    model.eval()
    correct = None
    for start in range(0, len(split), batch_size):
        x, y = split.x[start:start + batch_size], split.y[start:start + batch_size]
        counts = torch.stack([accuracy_count(s, y) for s in scores_fn(x)]).cpu()
        correct = counts if correct is None else correct + counts
    return (correct.double() / len(split)).tolist()
