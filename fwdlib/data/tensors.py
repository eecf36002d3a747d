"""A dataset resident on its device: splits as tensors, batches as index slices (no DataLoader,
no per-batch copy), CIFAR's crop-and-flip augmentation done on the device."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import torch
import torch.nn.functional as F


@dataclass
class Split:
    """One split: normalised images `x` (N, C, H, W) float32 and labels `y` (N,) int64."""
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    source: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False          # CIFAR: random crop + flip on training batches

    @property
    def device(self) -> torch.device:
        return self.train.x.device

    def __repr__(self) -> str:
        return (f"Dataset({self.name}: train {len(self.train)}, val {len(self.val)}, "
                f"test {len(self.test)}, {self.num_classes} classes, {self.input_shape}, "
                f"on {self.device}; from {self.source})")


def first(data: Dataset, n_train: int, n_val: int | None = None) -> Dataset:
    """`data` cut to its first `n_train` training and `n_val` validation examples (None: the same
    training examples validate too): small runs for warm-ups, timing probes and exercises."""
    train = Split(data.train.x[:n_train], data.train.y[:n_train])
    val = train if n_val is None else Split(data.val.x[:n_val], data.val.y[:n_val])
    return replace(data, train=train, val=val)


def batches(split: Split, batch_size: int, *, shuffle: bool = False,
            generator: torch.Generator | None = None, augment: bool = False
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches as index slices of device-resident tensors (no host copy per batch).

    The permutation (and, with `augment`, every crop offset and flip) is drawn on the CPU from
    `generator`, so a seed gives the same epoch on every device, and moved to the device once
    per epoch.
    """
    n = len(split)
    device = split.x.device
    if shuffle:
        order = torch.randperm(n, generator=generator).to(device)
    if augment:
        offsets, flips = (t.to(device) for t in draw_crops(n, generator))
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        if shuffle:
            idx = order[start:end]
            x, y = split.x[idx], split.y[idx]
        else:
            x, y = split.x[start:end], split.y[start:end]
        if augment:
            x = random_crop_flip(x, offsets[:, start:end], flips[start:end])
        yield x, y


def draw_crops(n: int, generator: torch.Generator | None = None, padding: int = 4
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (row, column) crop offsets in 0..2*padding, shape (2, n), and h-flips, shape (n,)."""
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    return offsets, torch.rand(n, generator=generator) < 0.5


def random_crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor,
                     padding: int = 4) -> torch.Tensor:
    """CIFAR augmentation on the device: reflect-pad by 4, crop back to size at `offsets`,
    mirror where `flips`. Padding commutes with per-channel normalisation, so it is applied
    to normalised images."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)            # (b, h)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)            # (b, w)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch_idx = torch.arange(b, device=x.device)[:, None, None, None]
    chan_idx = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]


# ----------------------------------------------------------------------------- file readers


def unnormalise(x: torch.Tensor, data: Dataset) -> torch.Tensor:
    """Back to [0, 1] pixel values, for showing images."""
    mean = torch.tensor(data.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=x.device).view(1, -1, 1, 1)
    if x.dim() == 2:
        x = x.reshape(-1, *data.input_shape)
    return (x * std + mean).clamp(0, 1)
