"""The results log: one finished run per JSON line, fsynced, never rewritten, and one writer at a time."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ..utils import process_alive, writable_folder


class ResultsNotSaved(OSError):
    """A finished run could not be written to the results log (disk full, ...)."""


# What the report reads from a record: a line without it (another program's, an older schema)
# is skipped rather than breaking the report.
RECORD_KEYS = ("key", "spec", "entries", "status")
SPEC_KEYS = ("dataset", "algorithm", "config", "protocol", "device", "seed")
OK_KEYS = ("test_acc", "epochs", "train_time_s", "energy_measured_j", "energy_estimated_j", "history")


def schema_problem(record) -> str | None:
    """Why `record` is not one of this kit's benchmark records, or None if it is."""
    if not isinstance(record, dict):
        return "not a benchmark record"
    missing = [k for k in RECORD_KEYS if k not in record]
    if not missing:
        spec = record["spec"] if isinstance(record["spec"], dict) else {}
        missing = [f"spec.{k}" for k in SPEC_KEYS if k not in spec]
        missing += [k for k in OK_KEYS if record["status"] == "ok" and k not in record]
    return f"not a benchmark record of this version (no {', '.join(missing)})" if missing else None


class ResultsLog:
    """Append-only JSON lines: one finished run per line, fsynced, never rewritten.

    A record is written whole or not at all: a short write is continued, and a failed one is
    cut back to the last complete record, so the file never holds half a line."""

    def __init__(self, path: Path):
        self.path = Path(path)
        writable_folder(self.path.parent)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder, not a results file; move it away or choose another --out")
        self._repair()

    def _repair(self) -> None:
        """A process killed mid-write can leave a last line without its newline: drop it
        (that run had not finished), keeping every complete line."""
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            self._truncate(raw.rfind(b"\n") + 1)
            print(f"bench: dropped an unfinished last line from {self.path}")

    def _truncate(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict]:
        """Every record, in file order. A line that is not one of this kit's records (invalid
        UTF-8 or JSON, another program's line, an older schema) is skipped with a warning that
        names it, and left in place."""
        if not self.path.exists():
            return []
        out = []
        for number, raw in enumerate(self.path.read_bytes().split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problem = "not UTF-8 text"
            except json.JSONDecodeError:
                problem = "not valid JSON"
            else:
                problem = schema_problem(record)
            if problem:
                print(f"bench: {self.path} line {number} is {problem}; skipped (left in place)")
            else:
                out.append(record)
        return out

    def latest(self) -> list[dict]:
        """The last record of each run key: a retried run replaces its failure, a duplicate is
        not a second seed."""
        return list({r["key"]: r for r in self.records()}.values())

    def append(self, record: dict) -> None:
        """Write one record whole, then to disk; on failure cut the file back and raise."""
        line = (json.dumps(record, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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
    def lock(self):
        """Only one benchmark writes to a results folder at a time."""
        path = self.path.parent / ".lock"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                holder = path.read_text().strip() if path.exists() else ""
                if not holder.isdigit() or process_alive(int(holder)):   # empty: one is just starting
                    raise ValueError(f"another benchmark (process {holder or 'starting'}) is writing to "
                                     f"{self.path.parent}; wait for it to finish, or choose another --out "
                                     f"(if none is running, delete {path})") from None
                path.unlink(missing_ok=True)     # its process is gone: the lock is stale
        else:
            raise ValueError(f"could not take the lock {path}; remove it if no benchmark is running")
        try:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            yield
        finally:
            path.unlink(missing_ok=True)
