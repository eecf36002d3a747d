"""The results log: one finished run per JSON line, fsynced, never rewritten, and one writer at a time."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from pathlib import Path

from ..files import regular_file, writable_folder
from ..processes import process_alive, process_gone, process_start
from ..runs.record import Record, RecordError


class ResultsNotSaved(OSError):
    """A finished run could not be written to the results log (disk full, ...)."""


LOCK_START_S = 5.0      # an empty lock older than this was left by a crash, not by a benchmark starting


def _allocate(fd: int, size: int) -> None:
    """Claim `size` bytes of disk for the file: fallocate where the file system has it, else zeros."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except AttributeError:                       # not on macOS or Windows
        pass
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):   # e.g. ENOSPC: no room
            raise
    written = 0
    while written < size:
        written += os.write(fd, bytes(min(size - written, 2**20)))


def _lock_state(path: Path) -> tuple[str, str | None, float]:
    """(the holder's process id as written, or "", when that process started if the lock says, the
    lock's age in seconds)."""
    try:
        holder, _, started = path.read_text().strip().partition(" ")
        return holder, started or None, time.time() - path.stat().st_mtime
    except OSError:
        return "", None, 0.0


# Every record this kit writes begins so; a last line that does and is not JSON is a torn write.
RECORD_START = b'{"key": '
# Room kept free in the results folder while a run trains, so its record can always be written.
RESERVE_BYTES = 4 * 2**20


class ResultsLog:
    """Append-only JSON lines: one finished run per line, fsynced, never rewritten.

    A record is written whole or not at all: a short write is continued, and a failed one is
    cut back to the last complete record, so the file never holds half a line.

    write=False opens it for reading only (--report-only): nothing is probed, repaired or locked.
    `option` is the flag that names its folder, for the advice (--out, or --export)."""

    def __init__(self, path: Path, write: bool = True, option: str = "--out"):
        self.path, self.option = Path(path), option
        self.skipped = 0            # lines the last read skipped
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder, not a results file; move it away or choose another {option}")
        if write:
            writable_folder(self.path.parent, option=option)
            self._probe()
            self._repair()
            self._sweep_reserves()

    def _probe(self) -> None:
        """Open the results file itself for appending, as every record will be: an immutable or
        read-only file stops the benchmark here, before anything trains."""
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as err:
            raise ValueError(f"cannot append to the results file {self.path} ({err.strerror or err}); make it "
                             f"writable (chmod u+w, chattr -i) or choose another {self.option}. Nothing was trained.") from None

    def _repair(self) -> None:
        """A process killed mid-write can leave a torn record as the last line: drop it (that run
        had not finished). A complete last line that only lacks its newline (a whole record, a
        line of another program) is kept and given its newline: nothing complete is ever cut."""
        raw = self.path.read_bytes() if self.path.exists() else b""
        if not raw or raw.endswith(b"\n"):
            return
        start = raw.rfind(b"\n") + 1
        tail = raw[start:]
        try:
            json.loads(tail.decode("utf-8"))
            torn = False
        except (UnicodeDecodeError, json.JSONDecodeError):
            torn = tail.startswith(RECORD_START)
        if torn:
            self._truncate(start)
            print(f"bench: dropped an unfinished last record ({len(tail)} bytes, a write cut short) from {self.path}")
        else:
            with open(self.path, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
            print(f"bench: the last line of {self.path} lacked its newline; added it (the line is kept)")

    def _sweep_reserves(self) -> None:
        """Remove the reserve of a benchmark that was killed (its process is gone)."""
        for stale in self.path.parent.glob(".reserve-*"):
            pid = stale.name.removeprefix(".reserve-")
            if pid.isdigit() and not process_alive(int(pid)):
                stale.unlink(missing_ok=True)

    @contextlib.contextmanager
    def reserved(self, size: int = RESERVE_BYTES):
        """Hold `size` bytes of the results folder while a run trains, released just before its
        record is written: a disk that fills up meanwhile cannot cost the finished run. A disk
        without that room stops the benchmark before the run trains."""
        path = self.path.parent / f".reserve-{os.getpid()}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _allocate(fd, size)
            finally:
                os.close(fd)
        except OSError as err:
            path.unlink(missing_ok=True)
            raise ResultsNotSaved(err.errno, f"the results folder {self.path.parent} has no room for a run's record "
                                  f"({size // 2**20} MiB kept free while it trains; {err.strerror or err}): free space, "
                                  "then rerun the same command. Nothing more was trained.") from None
        try:
            yield lambda: path.unlink(missing_ok=True)
        finally:
            path.unlink(missing_ok=True)

    def _truncate(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[Record]:
        """Every record, in file order. A line that is not one of this kit's records (invalid
        UTF-8 or JSON, another program's line, an older schema) is skipped with a warning that
        names it, and left in place."""
        self.skipped = 0
        if not self.path.exists():
            return []
        out = []
        for number, raw in enumerate(regular_file(self.path, "the results file").read_bytes().split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                out.append(Record.from_json(raw))
            except RecordError as err:
                print(f"bench: {self.path} line {number}: {err.problem}; skipped (left in place)")
                self.skipped += 1
        return out

    def latest(self) -> list[Record]:
        """The last record of each run key: a retried run replaces its failure, a duplicate is
        not a second seed."""
        return list({r["key"]: r for r in self.records()}.values())

    def append(self, record: Record) -> None:
        """Write one record whole, then to disk; on failure cut the file back and raise."""
        line = (record.to_json() + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise ResultsNotSaved(err.errno, f"could not open {self.path} ({err.strerror or err})") from err
        size = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(line):          # os.write may write less than asked
                n = os.write(fd, line[written:])
                if n == 0:
                    raise OSError(28, "no space left on device")
                written += n
            os.fsync(fd)
        except OSError as err:
            os.close(fd)
            self._truncate(size)               # never leave half a record behind
            raise ResultsNotSaved(err.errno, f"could not write to {self.path} ({err.strerror or err})") from err
        os.close(fd)

    @contextlib.contextmanager
    def lock(self, starting_s: float = LOCK_START_S):
        """Only one benchmark writes to a results folder at a time. A lock whose process is gone,
        or that stayed empty longer than a start takes (a crash between creating and filling
        it), is taken over with a line saying so."""
        path = self.path.parent / ".lock"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                holder, started, age = _lock_state(path)
                gone = holder.isdigit() and process_gone(int(holder), started)
                if not gone and not (not holder and age > starting_s):
                    raise ValueError(f"another benchmark (process {holder or 'starting'}) is writing to "
                                     f"{self.path.parent}; wait for it to finish, or choose another {self.option} "
                                     f"(if none is running, delete {path})") from None
                reused = gone and process_alive(int(holder))
                print(f"bench: took over the lock {path}: "
                      + (f"its process id {holder} now belongs to another process" if reused else
                         f"its process {holder} is gone" if holder else f"it was left empty {age:.0f} s ago by a crash"))
                path.unlink(missing_ok=True)
        else:
            raise ValueError(f"could not take the lock {path}; remove it if no benchmark is running")
        try:
            os.write(fd, f"{os.getpid()} {process_start(os.getpid()) or ''}".strip().encode())
            os.close(fd)
            yield
        finally:
            path.unlink(missing_ok=True)


def run_folder(name: str | Path, resume: bool = False) -> Path:
    """Where a notebook's run writes: `name` when resuming or when nothing is there yet, else the
    first free `name-2`, `name-3`, ...: an earlier run is neither continued silently nor overwritten."""
    base = Path(name)
    if resume or not base.exists():
        return base
    return next(path for n in range(2, 10**6) if not (path := base.with_name(f"{base.name}-{n}")).exists())
