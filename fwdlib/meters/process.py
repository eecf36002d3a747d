"""The process's own facts: peak resident memory, CPU time and the load others put on its CPUs,
the machine, the versions that made a number."""
from __future__ import annotations

import os
import platform
import socket
import time
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


# A run shares its CPUs with whatever else the machine does. Over the run's window the CPUs this
# process may use were busy for B CPU-seconds (/proc/stat: every state but idle and iowait), of
# which the process itself spent P (user + system); the rest, B - P, is foreign work. Divided by
# the window's wall time it is the foreign load in cores: 1.0 is one other core-hog all along.
FOREIGN_LOAD_LIMIT = 0.25    # cores: above it a run's time and energy are contaminated
# /proc/stat and os.times count in ticks of 10 ms: over a window of a second the load is known to
# about 0.05 cores, over 0.2 s to 0.2, so a load is only judged once others used this much CPU time.
FOREIGN_CPU_FLOOR_S = 0.5


def busy_cpu_seconds(cpus=None, stat: str | None = None) -> float | None:
    """CPU-seconds the CPUs `cpus` (default: this process's affinity) have been busy since boot,
    from /proc/stat's per-CPU lines (USER_HZ ticks); None where there is no /proc/stat."""
    try:
        stat = stat if stat is not None else Path("/proc/stat").read_text()
        cpus = set(cpus if cpus is not None else os.sched_getaffinity(0))
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError):
        return None
    busy = 0
    for line in stat.splitlines():
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, idle, iowait, irq, softirq, steal = (int(t) for t in (ticks + ["0"] * 8)[:8])
            busy += user + nice + system + irq + softirq + steal   # guest time is inside user already
    return busy / hz


def own_cpu_seconds() -> float:
    """User + system CPU time of this process and the children it waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def contamination(record: dict) -> str | None:
    """Why a run's time and energy cannot be trusted (other work on its CPUs), or None; a record
    from before runs measured their window has nothing to judge by. Decided when read, so a record
    is judged by the limit of the kit that reads it."""
    load = record.get("foreign_load")
    if load is not None and load > FOREIGN_LOAD_LIMIT and record.get("foreign_cpu_s", 0) >= FOREIGN_CPU_FLOOR_S:
        return (f"other work kept {load:.2f} of {record.get('cpus', '?')} CPUs busy during the run (limit "
                f"{FOREIGN_LOAD_LIMIT} cores)")
    return None


class CpuWindow:
    """Context manager: this process's CPU time and the machine's foreign load over a window."""

    def __enter__(self) -> "CpuWindow":
        self.start = (time.perf_counter(), own_cpu_seconds(), busy_cpu_seconds())
        return self

    def __exit__(self, *exc) -> None:
        wall0, own0, busy0 = self.start
        wall, own, busy = time.perf_counter() - wall0, own_cpu_seconds() - own0, busy_cpu_seconds()
        foreign = None if busy is None or busy0 is None else max(0.0, busy - busy0 - own)
        self.result = {"process_cpu_s": own, "foreign_cpu_s": foreign,
                       "foreign_load": None if foreign is None else foreign / max(wall, 1e-9),
                       "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}

