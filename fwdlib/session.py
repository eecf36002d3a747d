"""A student's session, set up once by every notebook's first cell: the device, the seeds, quick or full
mode (FWDLIB_QUICK, the notebook's switch) and the CPU threads (FWDLIB_THREADS). These are the
machine's and the lesson's settings; what a run trains is its spec's (fwdlib.runs)."""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch


def in_colab() -> bool:
    return "google.colab" in sys.modules


QUICK_ON, QUICK_OFF = ("1", "true", "yes", "y", "on"), ("", "0", "false", "no", "n", "off")
# FWDLIB_QUICK as it was when the kernel first imported fwdlib: set from outside (CI, a lab
# server, gpu_check), it wins over a notebook's switch.
QUICK_FROM_OUTSIDE = os.environ.get("FWDLIB_QUICK")


def use_quick_mode(switch: bool) -> bool:
    """A notebook's quick-mode switch (the setup cell's form field): it sets FWDLIB_QUICK unless
    that was set before fwdlib was imported. Rerunning the cell with the switch flipped takes effect."""
    if QUICK_FROM_OUTSIDE is None:
        os.environ["FWDLIB_QUICK"] = "1" if switch else "0"
    return quick_mode()


def quick_mode() -> bool:
    """True when FWDLIB_QUICK asks notebooks, tests and the benchmark to shrink their work;
    a value that is neither yes nor no is refused rather than read as full mode."""
    value = os.environ.get("FWDLIB_QUICK", "").strip().lower()
    if value not in QUICK_ON + QUICK_OFF:
        raise ValueError(f"FWDLIB_QUICK={os.environ['FWDLIB_QUICK']!r} is not understood: set it to 1 "
                         f"(quick mode; also {', '.join(QUICK_ON[1:])}) or 0 (full mode; also "
                         f"{', '.join(QUICK_OFF[2:])}), or unset it")
    return value in QUICK_ON


DEFAULT_THREADS = torch.get_num_threads()    # torch's own choice: one per core


def use_training_threads() -> int:
    """Intra-op threads for CPU training: one per core but one, which is left to the rest of the
    machine (at least one thread). Beside one busy program on 2 cores, a thread per core made each
    parallel op wait at its barrier for the core the program held: a quick benchmark run took 3-4x
    its quiet time, with one thread its quiet time. The count is fixed per machine, not measured
    from the load, because it changes the order of float sums and so the numbers a lesson prints.
    FWDLIB_THREADS pins it."""
    pinned = os.environ.get("FWDLIB_THREADS", "")
    if pinned and not (pinned.isdigit() and int(pinned) > 0):
        raise ValueError(f"FWDLIB_THREADS must be a positive whole number of threads, got {pinned!r}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = int(pinned) if pinned else max(1, min(DEFAULT_THREADS, cpus - 1))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """The requested device, else the best available one: cuda, then mps, then cpu."""
    if preferred is not None:
        try:
            device = torch.device(preferred)
        except (RuntimeError, ValueError, TypeError):
            raise ValueError(f"unknown device {str(preferred)!r}; choose cuda, cuda:N, mps or cpu "
                             "(--device), or leave it unset to pick the best available one") from None
        mps = getattr(torch.backends, "mps", None)
        missing = ("CUDA" if device.type == "cuda" and not torch.cuda.is_available() else
                   "Apple GPU (MPS)" if device.type == "mps" and not (mps and mps.is_available()) else None)
        if missing:
            raise RuntimeError(
                f"device {str(preferred)!r} was requested but this machine has no {missing}; "
                "pass device='cpu' (--device cpu) or leave it unset to pick the best available one"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    if in_colab():
        print("No GPU in this Colab runtime: Runtime > Change runtime type > T4 GPU, then rerun.")
    return torch.device("cpu")


def seed_all(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); returns a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued GPU work: CUDA is asynchronous, a clock read without this lies."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device is not None and device.type == "mps":
        torch.mps.synchronize()


def banner(device: torch.device) -> str:
    """One line naming the device and the mode, printed by every notebook's setup cell."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    mode = "quick" if quick_mode() else "full"
    return f"fwdlib on {name} ({device}), {mode} mode, torch {torch.__version__}"
