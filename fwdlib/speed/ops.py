"""Where a run's time goes, operation by operation: torch.profiler's self time of every op, the
matmuls apart.

A FLOP floor holds only for the work that scales with the FLOPs: the matmuls and convolutions.
The rest of a step (the optimizer reading and writing every parameter, the elementwise ops, the
Python between ops) costs what it costs whatever the FLOPs. `profile_ops` splits a run into the
two, so that the floor can scale the first, carry the second over, and name the operation that
keeps a rival above it.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from ..session import synchronize

MATMULS = "matmuls"                          # every matmul and convolution op, as one
OUTSIDE = "outside any op"                   # Python between ops on a CPU; the device idle on a GPU
# The CUDA kernels that do the FLOPs FlopCounterMode counts, by name (cuBLAS, cuDNN, CUTLASS),
# the convolutions among them apart.
CUDA_CONV_KERNELS = ("conv", "wgrad", "dgrad", "fprop")
CUDA_MATMUL_KERNELS = ("gemm", "cutlass", "xmma", *CUDA_CONV_KERNELS)


def is_convolution(name: str) -> bool:
    """Whether a matmul op (an aten op such as aten::mkldnn_convolution, a cuDNN kernel) is a convolution."""
    return any(k in name.lower() for k in CUDA_CONV_KERNELS)


def is_matmul(name: str, device_type: str) -> bool:
    """Whether an op (CPU: an aten op; CUDA: a kernel) does matmul or convolution FLOPs."""
    name = name.lower()
    if device_type == "cuda":
        return any(k in name for k in CUDA_MATMUL_KERNELS)
    return name.startswith("aten::") and (name.endswith("mm") or "convolution" in name)


@dataclass
class OpProfile:
    """One unit of work (a step, an epoch): its wall seconds, its matmul FLOPs, and the share of its
    wall time each op took by itself: `op_share` outside the matmuls (OUTSIDE included),
    `matmul_op_share` among them, `matmul_share` their sum."""
    seconds: float
    flops: int
    op_share: dict
    matmul_op_share: dict

    @property
    def matmul_share(self) -> float:
        return sum(self.matmul_op_share.values())

    @property
    def mostly_convolutions(self) -> bool:
        """Whether convolutions take most of the matmul time (a CNN's step, not a predictor's)."""
        return sum(s for op, s in self.matmul_op_share.items() if is_convolution(op)) > self.matmul_share / 2

    def top(self, k: int = 3, matmuls: bool = False) -> list[tuple[str, float]]:
        """The k largest (op, share) outside the matmuls (`matmuls`: among them)."""
        return sorted((self.matmul_op_share if matmuls else self.op_share).items(), key=lambda kv: -kv[1])[:k]


def self_seconds(rows, device_type: str) -> tuple[dict, dict]:
    """({matmul op: seconds}, {other op: seconds}) from torch.profiler's key_averages() rows: self
    CPU time on a CPU, self device time on a GPU (where the kernels are rows of their own)."""
    def seconds(row):
        us = (getattr(row, "self_device_time_total", getattr(row, "self_cuda_time_total", 0))
              if device_type == "cuda" else row.self_cpu_time_total)
        return us / 1e6
    matmuls, ops = {}, {}
    for row in rows:
        s = seconds(row)
        if s > 0:
            into = matmuls if is_matmul(row.key, device_type) else ops
            into[row.key] = into.get(row.key, 0.0) + s
    return matmuls, ops


@dataclass
class _Tally:
    """Wall and self seconds summed over profiled runs, and the units of work they did."""
    wall: float = 0.0
    units: int = 0
    matmuls: dict = field(default_factory=dict)
    ops: dict = field(default_factory=dict)

    def add(self, wall: float, units: int, matmuls: dict, ops: dict) -> None:
        self.wall, self.units = self.wall + wall, self.units + units
        for mine, theirs in ((self.matmuls, matmuls), (self.ops, ops)):
            for op, seconds in theirs.items():
                mine[op] = mine.get(op, 0.0) + seconds

    def profile(self, flops: int) -> OpProfile:
        rest = {**self.ops, OUTSIDE: max(0.0, self.wall - sum(self.matmuls.values()) - sum(self.ops.values()))}
        return OpProfile(self.wall / self.units, flops, {op: s / self.wall for op, s in rest.items()},
                         {op: s / self.wall for op, s in self.matmuls.items()})


@contextlib.contextmanager
def native_stderr_silenced():
    """Kineto, the profiler's native half, writes trace markers (and, on a machine without a CUDA
    driver, a harmless "gpuGetDeviceCount failed") straight to file descriptor 2: hide them."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _profiled(run, device: torch.device, tally: _Tally) -> None:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with native_stderr_silenced():
        with profile(activities=activities) as prof:
            synchronize(device)
            start = time.perf_counter()
            units = run()
            synchronize(device)
            wall = time.perf_counter() - start
        rows = prof.key_averages()
    tally.add(wall, units, *self_seconds(rows, device.type))


def _flops_per_unit(run) -> int:
    with FlopCounterMode(display=False) as counter:
        units = run()
    return int(counter.get_total_flops() / units)


def profile_ops(run, device: torch.device, rounds: int = 1) -> OpProfile:
    """Profile `run()`, a callable that does some units of work (steps, epochs) and returns how
    many: once under a FlopCounterMode (its FLOPs, and a warm-up), then `rounds` times under the
    profiler. Give it fresh state each call (a fit builds its own model)."""
    return profile_interleaved([run], device, rounds)[0]


def profile_interleaved(runs, device: torch.device, rounds: int = 4) -> list[OpProfile]:
    """`profile_ops` of several runs, profiled in alternating order `rounds` times each and summed,
    so that a shared machine's drift falls on all of them alike."""
    flops = [_flops_per_unit(run) for run in runs]
    tallies = [_Tally() for _ in runs]
    for i in range(rounds):
        order = range(len(runs)) if i % 2 == 0 else reversed(range(len(runs)))
        for k in order:
            _profiled(runs[k], device, tallies[k])
    return [tally.profile(f) for tally, f in zip(tallies, flops)]
