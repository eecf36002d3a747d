"""Other processes of this machine, as a lock or a study's worker sees them: alive or gone (its id
reused by a later process), and this worker's name."""
from __future__ import annotations

import os
import socket
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with this id exists (assumed yes where it cannot be
    asked without harm: on Windows, os.kill would terminate it)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)          # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's process
        return True
    return True


def worker_id() -> str:
    """host:pid of this process, stored with each trial it runs (beside `process_start`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(pid: int, started: str | None) -> bool:
    """Whether process `pid`, which started at `started` (`process_start`; None if unknown), is gone:
    it exited, or its id now belongs to a later process (a reused id: another start time, as pid 1
    after a reboot or this very process after a container restart)."""
    if not process_alive(pid):
        return True
    now = process_start(pid)
    return started is not None and now is not None and now != started


def process_start(pid: int) -> str | None:
    """When process `pid` started (Linux: clock ticks since boot, field 22 of /proc/PID/stat), to
    tell a process from a later one that reuses its id; None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]       # fields after the command name start at 3
