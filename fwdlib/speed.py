"""How fast a training step is, where its time goes, and how far it is from the machine's limit.

    python -m fwdlib.bench --preset speed

For each of the study's architectures: seconds per epoch (beside the study's A100 figure), and
for one eager step the time of its parts:

    forward      everything not listed below (the algorithm's own passes, its losses)
    backward     every .backward() call
    optimizer    every optimizer.step()
    extra pass   passes an algorithm makes besides learning (FF's neutral-label pass for its head)

plus the step's matrix-multiply FLOPs (counted by torch.utils.flop_counter) divided by its time,
against the peak the same device reaches on one large torch.mm in the same dtype: a printed
"fraction of the limit" on any machine, CPU or GPU.
"""
from __future__ import annotations

import contextlib
import json
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from . import algorithms as registry, data as datasets
from .algorithms.base import implementation_of
from .bench.study import study_row
from .train import fit
from .utils import atomic_write, pick_device, seed_all, synchronize, writable_folder

# (label, dataset family, algorithm, config, batch size, the study entry whose seconds per epoch
# it is compared with, the case it is the rival of)
SPEED_CASES = (
    ("bp-mlp 2x1000", "fashion_mnist", "bp-mlp", {"hidden": (1000, 1000)}, 128, "bp-mlp@mf", None),
    ("mf 2x1000", "fashion_mnist", "mf", {"hidden": (1000, 1000)}, 128, None, "bp-mlp 2x1000"),
    ("bp-mlp 3x2000", "cifar10", "bp-mlp", {"hidden": (2000,) * 3}, 128, "bp-mlp@mf", None),
    ("mf 3x2000", "cifar10", "mf", {"hidden": (2000,) * 3}, 128, None, "bp-mlp 3x2000"),
    ("bp-mlp 4x2000", "fashion_mnist", "bp-mlp", {"hidden": (2000,) * 4}, 100, "bp-mlp@ff", None),
    ("ff 4x2000", "fashion_mnist", "ff", {"hidden": (2000,) * 4}, 100, None, "bp-mlp 4x2000"),
    ("bp-cnn", "fashion_mnist", "bp-cnn", {}, 128, "bp-cnn", None),
    ("cafo-rand", "fashion_mnist", "cafo-rand", {}, 128, None, "bp-cnn"),
    ("cafo-dfa", "fashion_mnist", "cafo-dfa", {}, 128, None, "bp-cnn"),
)
PARTS = ("forward", "backward", "optimizer", "extra pass")


def study_s_per_epoch(family: str, entry: str) -> float | None:
    """The study's seconds per epoch on its A100 (time / epochs of its table), if it gives both.
    (The study's per-batch MF rows do not exist: it ran MF greedy, so its figure is the greedy one.)"""
    row = study_row(family, entry)
    return row.s_per_epoch if row else None


# ============================================================================ where a step's time goes

@dataclass
class StepBreakdown:
    """Seconds of one training step by part (the step of median time among those timed), and its FLOPs."""
    forward: float
    backward: float
    optimizer: float
    extra_pass: float
    step: float
    flops: int

    @property
    def parts(self) -> dict[str, float]:
        return dict(zip(PARTS, (self.forward, self.backward, self.optimizer, self.extra_pass)))

    def flops_per_s(self) -> float:
        return self.flops / self.step if self.step > 0 else float("nan")


class _PartTimer:
    """Adds the synchronised wall time of every call of a patched function to one part."""

    def __init__(self, device):
        self.device, self.seconds, self.depth = device, {p: 0.0 for p in PARTS[1:]}, 0

    def wrap(self, part, fn):
        def timed(*args, **kwargs):
            if self.depth:                       # nested inside a timed part: counted there
                return fn(*args, **kwargs)
            self.depth += 1
            synchronize(self.device)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                synchronize(self.device)
                self.seconds[part] += time.perf_counter() - start
                self.depth -= 1
        return timed


@contextlib.contextmanager
def _timed_parts(algorithm, device):
    """Patch backward, every optimizer's step and the algorithm's extra passes for one step."""
    timer = _PartTimer(device)
    # Tensor.backward calls torch.autograd.backward (which DFA calls directly): patch both,
    # the depth guard counts a nested call once.
    saved_backward, saved_functional = torch.Tensor.backward, torch.autograd.backward
    torch.Tensor.backward = timer.wrap("backward", saved_backward)
    torch.autograd.backward = timer.wrap("backward", saved_functional)
    patched = [(o, "step", "optimizer") for o in algorithm.optimizers()]
    patched += [(algorithm, name, "extra pass") for name in algorithm.extra_passes]
    for owner, name, part in patched:
        setattr(owner, name, timer.wrap(part, getattr(owner, name)))
    try:
        yield timer
    finally:
        torch.Tensor.backward, torch.autograd.backward = saved_backward, saved_functional
        for owner, name, _ in patched:
            delattr(owner, name)                 # back to the class's method


def step_breakdown(algorithm, x: torch.Tensor, y: torch.Tensor, stage=None, steps: int = 10,
                   warmup: int = 3) -> StepBreakdown:
    """Time `steps` eager training steps on one batch, split into PARTS; count one step's FLOPs.
    The algorithm trains while it is timed (use a throwaway model)."""
    stage = stage or algorithm.stages()[0]
    device = x.device
    algorithm.train()
    for _ in range(warmup):
        algorithm.train_step(x, y, stage)
    rows = []
    for _ in range(steps):
        with _timed_parts(algorithm, device) as timer:
            synchronize(device)
            start = time.perf_counter()
            algorithm.train_step(x, y, stage)
            synchronize(device)
            total = time.perf_counter() - start
        rows.append([total - sum(timer.seconds.values()), *timer.seconds.values(), total])
    with FlopCounterMode(display=False) as counter:
        algorithm.train_step(x, y, stage)
    rows.sort(key=lambda r: r[-1])
    forward, backward, optimizer, extra, step = rows[len(rows) // 2]      # the median step, whole
    return StepBreakdown(float(forward), float(backward), float(optimizer), float(extra), float(step),
                         int(counter.get_total_flops()))


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                repeats: int = 5) -> float:
    """FLOP/s of one large square torch.mm on `device` (best of `repeats`): the machine's limit."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b                                          # warm-up: kernels load, clocks rise
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def first_stage_breakdown(name: str, config: dict, data: datasets.Dataset, batch_size: int):
    """(StepBreakdown, stage) of a fresh model's first stage, prepared on a few batches only."""
    model = registry.build(name, input_shape=data.input_shape, num_classes=data.num_classes, **config)
    model.to(data.device)
    stage = model.stages()[0]
    stage_data = model.begin_stage(stage, datasets.first(data, 4 * batch_size))
    x, y = stage_data.train.x[:batch_size], stage_data.train.y[:batch_size]
    return step_breakdown(model, x, y, stage), stage


# ============================================================================ the preset

def synthetic(name: str, device: torch.device, n_train: int, seed: int = 0) -> datasets.Dataset:
    """Random tensors shaped like `name`, for timing only (accuracy is meaningless)."""
    spec = datasets.SPECS[name]
    gen = torch.Generator().manual_seed(seed)

    def split(n):
        return datasets.Split(torch.randn(n, *spec.input_shape, generator=gen).to(device),
                              torch.randint(0, spec.num_classes, (n,), generator=gen).to(device))

    return datasets.Dataset(f"{name}-shaped synthetic (TIMING ONLY)", split(n_train), split(1000),
                            split(1000), spec.num_classes, spec.input_shape,
                            tuple(map(str, range(spec.num_classes))), "synthetic random tensors",
                            spec.mean, spec.std, augment=datasets.augments(name))


def speed(dataset_names=None, algorithm_names=None, *, out, device=None, cuda_graphs=True,
          epochs=None, root=None, verbose=True, cases=None) -> list[dict]:
    """Seconds per epoch on the study's architectures beside the study's, where each step's time
    goes, and the fraction of the device's matmul peak it reaches. Writes OUT/speed.json."""
    device = pick_device(device)
    out = writable_folder(out)
    epochs = epochs or 3                       # the first epoch of each stage is warm-up
    peak = matmul_peak(device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    if verbose:
        print(f"speed on {device_name} ({device}), float32 matmul peak {peak / 1e9:.1f} GFLOP/s "
              f"(one large torch.mm)")
    rows = []
    for label, family, name, config, batch_size, study_entry, rival_of in cases or SPEED_CASES:
        if algorithm_names and name not in algorithm_names:
            continue
        if dataset_names and family not in dataset_names:
            continue
        try:
            data = datasets.load(family, device=device, root=root, download=False)
            data_label = data.name
        except datasets.DataError:
            n = 45_000 if family.startswith("cifar") else 54_000
            data, data_label = synthetic(family, device, n), f"{family}-shaped synthetic (timing only)"
        seed_all(0)
        model = registry.build(name, input_shape=data.input_shape, num_classes=data.num_classes, **config)
        history = fit(model, data, epochs=epochs, batch_size=batch_size, progress=False, cuda_graphs=cuda_graphs)
        per_stage = {}
        for r in history.records:
            per_stage.setdefault(r["stage"], []).append(r["time_s"])
        timed = [t for times in per_stage.values() for t in (times[1:] or times)]
        parts, stage = first_stage_breakdown(name, config, data, batch_size)
        row = {"case": label, "algorithm": name, "batch_size": batch_size, "data": data_label,
               "device": str(device), "device_name": device_name, "mode": history.mode,
               "s_per_epoch": float(np.median(timed)), "epochs_timed": len(timed),
               "prep_s": history.prep_time_s,      # stage preparation (CaFo's features, greedy MF's cache)
               # the study's way: the whole training time over the epochs, preparation included
               "s_per_epoch_whole": history.train_time_s / history.epochs,
               "study_s_per_epoch_a100": study_s_per_epoch(family, study_entry or name),
               "step": asdict(parts), "step_stage": stage.name, "flops_per_s": parts.flops_per_s(),
               "matmul_peak_flops_per_s": peak, "fraction_of_peak": parts.flops_per_s() / peak,
               "rival_of": rival_of, "notes": history.notes, "torch": torch.__version__,
               "optimizer": sorted({implementation_of(o) for o in model.optimizers()})}
        rows.append(row)
        if verbose:
            print(describe(row), flush=True)
        del model, data
    for row in rows:                            # a rival's step against its twin's, same machine
        twin = next((t for t in rows if t["case"] == row["rival_of"]), None)
        row["step_ratio_to_twin"] = row["step"]["step"] / twin["step"]["step"] if twin else None
        row["epoch_ratio_to_twin"] = row["s_per_epoch_whole"] / twin["s_per_epoch_whole"] if twin else None
        if verbose and twin:
            print(f"  {row['case']} / {twin['case']}: step x{row['step_ratio_to_twin']:.2f}, whole training "
                  f"time per epoch x{row['epoch_ratio_to_twin']:.2f}")
    atomic_write(out / "speed.json", json.dumps(rows, indent=2))
    return rows


def describe(row: dict) -> str:
    """One case in two lines: seconds per epoch, then where a step goes and the FLOP/s."""
    step = row["step"]
    study = row["study_s_per_epoch_a100"]
    parts = ", ".join(f"{p} {1000 * step[p.replace(' ', '_')]:.1f}" for p in PARTS)
    prep = f" + {row['prep_s']:.3g} s stage preparation in all" if row["prep_s"] > 1e-3 else ""
    return (f"  {row['case']:14s} batch {row['batch_size']:3d}: {row['s_per_epoch']:8.3f} s/epoch{prep}, "
            f"{row['s_per_epoch_whole']:.3f} s per epoch of the whole training ({row['mode']}, {row['data']})"
            + (f"; study A100 {study:.2f} s (its whole time / epochs)" if study else "")
            + f"\n  {'':14s} one eager step {1000 * step['step']:.1f} ms = {parts} ms ({row['step_stage']}); "
            f"{row['flops_per_s'] / 1e9:.1f} GFLOP/s = {100 * row['fraction_of_peak']:.0f}% of the matmul peak")
