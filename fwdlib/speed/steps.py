"""Where a training step's time goes: its parts, its FLOPs, and a rival's step against its twin's."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from .. import data as datasets
from ..session import synchronize
from .ops import OpProfile, profile_interleaved, profile_ops

PARTS = ("forward", "backward", "optimizer", "extra pass")


@dataclass
class StepBreakdown:
    """Seconds of one training step by part (the step of median time among those timed), and its FLOPs."""
    forward: float
    backward: float
    optimizer: float
    extra_pass: float
    step: float
    flops: int
    part_flops: dict | None = None      # the FLOPs of each part
    ops: OpProfile | None = None        # the step operation by operation (`ops.profile_ops`)

    @property
    def parts(self) -> dict[str, float]:
        return dict(zip(PARTS, (self.forward, self.backward, self.optimizer, self.extra_pass)))

    def flops_per_s(self) -> float:
        return self.flops / self.step if self.step > 0 else float("nan")


class _PartTimer:
    """Adds the synchronised wall time of every call of a patched function to one part (and,
    with `count_flops`, its matmul FLOPs, counted by a FlopCounterMode of its own)."""

    def __init__(self, device, count_flops: bool = False):
        self.device, self.seconds, self.depth = device, {p: 0.0 for p in PARTS[1:]}, 0
        self.count_flops, self.flops = count_flops, {p: 0 for p in PARTS[1:]}

    def wrap(self, part, fn):
        def timed(*args, **kwargs):
            if self.depth:                       # nested inside a timed part: counted there
                return fn(*args, **kwargs)
            self.depth += 1
            counter = FlopCounterMode(display=False) if self.count_flops else contextlib.nullcontext()
            synchronize(self.device)
            start = time.perf_counter()
            try:
                with counter:
                    return fn(*args, **kwargs)
            finally:
                synchronize(self.device)
                self.seconds[part] += time.perf_counter() - start
                self.flops[part] += counter.get_total_flops() if self.count_flops else 0
                self.depth -= 1
        return timed


@contextlib.contextmanager
def _timed_parts(algorithm, device, count_flops: bool = False):
    """Patch backward, every optimizer's step and the algorithm's extra passes for one step."""
    timer = _PartTimer(device, count_flops)
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
    """Time `steps` eager training steps on one batch, split into PARTS; count one step's FLOPs;
    profile `steps` more operation by operation. The algorithm trains while it is timed (use a
    throwaway model)."""
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
    with _timed_parts(algorithm, device, count_flops=True) as timer, FlopCounterMode(display=False) as counter:
        algorithm.train_step(x, y, stage)
    total = int(counter.get_total_flops())
    part_flops = {"forward": total - sum(timer.flops.values()), **timer.flops}
    rows.sort(key=lambda r: r[-1])
    forward, backward, optimizer, extra, step = rows[len(rows) // 2]      # the median step, whole

    def train() -> int:
        for _ in range(steps):
            algorithm.train_step(x, y, stage)
        return steps

    return StepBreakdown(float(forward), float(backward), float(optimizer), float(extra), float(step), total,
                         part_flops, profile_ops(train, device))


def _peak(run, flops: int, device: torch.device, repeats: int) -> float:
    """FLOP/s of `run()`, which does `flops`, at its best of `repeats` timings after a warm-up."""
    run()                                          # warm-up: kernels load, clocks rise
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return flops / best


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                repeats: int = 5) -> float:
    """FLOP/s of one large square torch.mm on `device` (best of `repeats`): the machine's limit."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return _peak(lambda: a @ b, 2 * n ** 3, device, repeats)


def conv_peak(device: torch.device, dtype: torch.dtype = torch.float32, batch: int | None = None,
              repeats: int = 5) -> float:
    """FLOP/s of one large 3x3 convolution (128 -> 256 channels on 28x28, channels-last like the
    kit's conv blocks): a CNN's limit, which oneDNN and cuDNN reach at rates no torch.mm does."""
    batch = batch or (256 if device.type == "cuda" else 32)
    x = torch.randn(batch, 128, 28, 28, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 128, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    return _peak(lambda: F.conv2d(x, w, padding=1), 2 * batch * 28 * 28 * 256 * 128 * 9, device, repeats)


def first_stage_batch(model, data: datasets.Dataset, batch_size: int):
    """(x, y, stage): one batch of a fresh model's first stage, prepared on a few batches only."""
    model.to(data.device)
    stage = model.stages()[0]
    stage_data = model.begin_stage(stage, datasets.first(data, 4 * batch_size))
    return stage_data.train.x[:batch_size], stage_data.train.y[:batch_size], stage


def first_stage_breakdown(model, data: datasets.Dataset, batch_size: int):
    """(StepBreakdown, stage) of a fresh model's first stage, prepared on a few batches only."""
    x, y, stage = first_stage_batch(model, data, batch_size)
    return step_breakdown(model, x, y, stage), stage


def interleaved_step_ratio(rival, twin, data: datasets.Dataset, rival_batch: int, twin_batch: int,
                           blocks: int = 8, steps: int = 10, profile_rounds: int = 4) -> dict:
    """The rival's step time over its twin's, as the median of `blocks` interleaved blocks of
    `steps` steps each (the order alternating), so that a machine's drift or a neighbour's burst
    falls on both: the ratio a single pair of timings cannot give on a shared machine. Then
    `profile_rounds` more blocks of each, alternating under the profiler: "ops", the two steps'
    OpProfiles (rival, twin), for `Floor.of(*result["ops"], result["ratio"])`."""
    runs = [(m, *first_stage_batch(m, data, b)) for m, b in ((rival, rival_batch), (twin, twin_batch))]
    device = runs[0][1].device

    def block(model, x, y, stage) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            model.train_step(x, y, stage)
        synchronize(device)
        return (time.perf_counter() - start) / steps

    for run in runs:
        block(*run)                                  # warm-up
    times = ([], [])
    for i in range(blocks):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for k in order:
            times[k].append(block(*runs[k]))
    ratios = sorted(a / b for a, b in zip(*times))

    def profiled_block(run):
        def steps_done() -> int:
            block(*run)
            return steps
        return steps_done

    ops = profile_interleaved([profiled_block(run) for run in runs], device, profile_rounds)
    return {"ratio": float(np.median(ratios)), "lo": ratios[0], "hi": ratios[-1], "blocks": blocks, "steps": steps,
            "rival_step_s": float(np.median(times[0])), "twin_step_s": float(np.median(times[1])),
            "ops": tuple(ops)}
