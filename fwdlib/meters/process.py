"""The process's own facts: peak resident memory, the machine, the versions that made a number."""
from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

import torch

from .backends import package_version


def reset_peak_rss() -> str:
    """Reset Linux's VmHWM so the peak covers this window; else fall back to the lifetime peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "VmHWM from /proc/self/status, reset at the window start"
    except OSError:
        return "ru_maxrss: peak over the whole process lifetime (could not reset)"


def status_bytes(field: str) -> int | None:
    """A memory line of /proc/self/status (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int | None:
    peak = status_bytes("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource            # POSIX only: on Windows there is no lifetime peak to read
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024   # bytes on macOS, KiB on Linux


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"cpu ({line.split(':', 1)[1].strip()}, {os.cpu_count()} logical)"
    except OSError:
        pass
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} logical)"


def run_versions() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "codecarbon": package_version("codecarbon"),
            "nvidia-ml-py": package_version("nvidia-ml-py"), "fwdlib": package_version("fwdlib")}


def machine(device: str) -> dict:
    """The machine a run ran on, as a pooled study tells machines apart: its host name, CPU, GPU
    (where the run used one) and torch."""
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
    return {"host": socket.gethostname(), "cpu": cpu_name(), "gpu": gpu, "torch": torch.__version__}
