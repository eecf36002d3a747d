"""Small shared helpers: the device, seeds, quick mode and where the course lives.

Every notebook, test and benchmark goes through these, so a setting changes in one place.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import stat
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import torch


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


def as_tuple(value) -> tuple[str, ...] | None:
    """A comma-separated string or a sequence as a tuple of names (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def format_settings(values: dict) -> str:
    """lr=0.0005912, hidden=[1000, 1000]: hyperparameters in one readable line."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


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


def process_start(pid: int) -> str | None:
    """When process `pid` started (Linux: clock ticks since boot, field 22 of /proc/PID/stat), to
    tell a process from a later one that reuses its id; None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]       # fields after the command name start at 3


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


# ============================================================================ command lines

# Every spelling of a database's password a message may carry, whether or not the URL parses:
# user:PASSWORD@ after a scheme (up to the token's last @: a password may hold an unencoded @ or /),
# the same without a scheme (user:PASSWORD@host), password-like query parameters (?password=...) and
# libpq's keyword form (host=... password=... dbname=..., the value bare or quoted).
URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)(?P<secret>\S+)(?=@[^\s@]*(?:\s|$))",
                          re.IGNORECASE)
BARE_PASSWORD = re.compile(r"(?P<head>(?<![\w/:@.+%*-])[\w.+-]+:)(?!//)(?P<secret>\S+)(?=@[\w.-]+(?::\d+)?(?:/[^\s@]*)?(?=[\s'\")]|$))")
QUERY_SECRET = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd|pass|sslpassword|secret|token)=)(?P<secret>[^&\s'\"]+)",
                          re.IGNORECASE)
KEYWORD_SECRET = re.compile(r"(?P<head>(?<![\w?&;])(?:password|passwd|pwd|sslpassword)\s*=\s*)"
                            r"(?P<secret>'(?:[^'\\]|\\.)*'|[^\s'\"&]+)", re.IGNORECASE)
SECRET_PATTERNS = (URL_PASSWORD, BARE_PASSWORD, QUERY_SECRET, KEYWORD_SECRET)


def redact_text(text: str) -> str:
    """`text` with every database password in it, in any of the spellings above, as ***."""
    text = str(text)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(r"\g<head>***", text)
    return text


SECRET_KEYS = ("password", "passwd", "pwd", "pass", "sslpassword", "secret", "token")


def _secrets(url: str) -> list[str]:
    """The password and every secret query parameter of a database URL, in every spelling it may
    take in a message: as written (found by pattern, so an unparsable URL keeps none), decoded,
    and encoded with upper- or lower-case hex."""
    from sqlalchemy.engine import make_url
    found = [m["secret"] for pattern in SECRET_PATTERNS for m in pattern.finditer(url)]
    found += [f[1:-1] for f in found if len(f) > 1 and f[0] == f[-1] == "'"]          # a quoted keyword value
    try:
        parsed = make_url(url)
    except Exception:            # not a URL SQLAlchemy reads: the pattern found what there is
        parsed = None
    if parsed is not None:
        found += [parsed.password] if parsed.password else []
        for key, value in parsed.query.items():
            if key.lower() in SECRET_KEYS:
                found += [value] if isinstance(value, str) else list(value)
    spellings = set()
    for secret in (str(v) for v in found if v):
        plain = unquote(secret)
        spellings |= {secret, plain, quote(plain, safe=""), re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(),
                                                                    quote(plain, safe=""))}
    return sorted(spellings, key=len, reverse=True)      # longest first: no secret is left half-hidden


def one_line(text: str) -> str:
    """`text` with every character that is not printable shown escaped (a newline as \\n): a value
    read from a shared database cannot print lines of its own."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def redact(url: str) -> str:
    """The URL without its password (user:PASSWORD@ or ?password=...), for files and logs."""
    return hide_secrets(url, url)


def hide_secrets(text: str, url: str) -> str:
    """`text` (an error message, a status line) with every secret of `url` replaced by ***, and
    the password of any other URL in it too."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return redact_text(text)


class Parser(argparse.ArgumentParser):
    """argparse, whose own errors (a mistyped flag next to a database URL) never echo a password:
    each argument is read as a URL, so that a password no pattern finds (one with a space) is
    hidden too."""

    def parse_args(self, args=None, namespace=None):
        self.arguments = list(sys.argv[1:] if args is None else args)
        return super().parse_args(args, namespace)

    def error(self, message: str):
        for argument in map(str, getattr(self, "arguments", ())):
            if "@" in argument or "=" in argument:        # what could carry a password
                for part in {argument, argument.partition("=")[2]} - {""}:
                    message = hide_secrets(message, part)
            if "@" in argument and argument in message:    # a password no reading finds (a space in it)
                message = message.replace(argument, "***@" + argument.rpartition("@")[2])
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {redact_text(message)}\n")
