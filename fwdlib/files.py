"""Files the kit writes whole and reads only when they are what they claim: a crash or a full disk
never leaves half a file, a named pipe never blocks a reader, and an unwritable folder is found
before anything trains."""
from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path


def atomic_write(path: str | Path, payload: bytes | str) -> None:
    """Write `payload` to a temporary file beside `path`, flush it to disk, then rename it into
    place: readers see the old file or the new one, never half of one."""
    path = Path(path)
    data = payload.encode() if isinstance(payload, str) else payload
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)   # mkstemp makes owner-only files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def as_json(value):
    """`value` as JSON reads it back (tuples become lists), so configurations compare equal
    whether they came from code or from a file."""
    return json.loads(json.dumps(value, sort_keys=True, default=list))


def writable_folder(folder: Path, what: str = "the results folder", option: str = "--out") -> Path:
    """Make `folder` and check, by writing, that results can go there: before anything trains.
    `option` is the flag that names it, for the advice."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} {folder} is a file; choose another {option}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"x" * 4096)      # room for a record or two
        probe.unlink()
    except OSError as err:
        raise ValueError(f"cannot write to {what} {folder} ({err.strerror or err}); "
                         f"make it writable (or free space) or choose another {option}. Nothing was trained.") from None
    return folder


def regular_file(path: Path, what: str, max_bytes: int | None = None) -> Path:
    """`path` if it is a regular file of at most `max_bytes`; otherwise a ValueError that says what it
    is: a named pipe or a device would block or never end, a huge file would fill the memory."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a named pipe" if stat.S_ISFIFO(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a socket")
        raise ValueError(f"{what} {path} is {kind}, not a file; give the path of the file itself")
    if max_bytes is not None and info.st_size > max_bytes:
        raise ValueError(f"{what} {path} is {info.st_size} bytes, more than such a file ever holds "
                         f"({max_bytes}); is it the right file?")
    return path
