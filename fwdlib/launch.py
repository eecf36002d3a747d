"""How a command starts and stops on a signal, and packages that load on first use; imports nothing heavy.

`python -m fwdlib.bench` (and tune, speed) spends seconds importing torch before its own error
boundary exists. `launch` makes that boundary first: a Ctrl-C or a SIGTERM at any moment, the
imports included, ends the command with one line and 128 + the signal's number (Ctrl-C 130,
SIGTERM 143), never with a traceback, and every `finally` on the way runs.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import signal
import sys
import threading


def lazy(package: str, names: dict[str, str]):
    """A package's __getattr__ (PEP 562) that imports on first use: names[name] is "module" (the
    name is that module) or "module:attribute", the module relative to `package`. A command that
    starts then imports torch inside its own error boundary (fwdlib.launch), not before it."""
    def __getattr__(name: str):
        if name not in names:          # a submodule, as a plain package would have it once imported
            if importlib.util.find_spec(f"{package}.{name}") is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            return importlib.import_module(f"{package}.{name}")
        module, _, attribute = names[name].partition(":")
        found = importlib.import_module(module, package)
        return getattr(found, attribute) if attribute else found
    return __getattr__


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (Ctrl-C, `timeout`, Slurm, `docker stop`): unwind, so that locks
    are released and what is finished stays written, then exit with 128 + the signal's number.
    A KeyboardInterrupt, so that Optuna fails the running trial as it does for Ctrl-C."""

    def __init__(self, signum: int = signal.SIGINT, message: str = ""):
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code_of(stop: KeyboardInterrupt) -> int:
    return getattr(stop, "exit_code", 128 + signal.SIGINT)


def _stop(signum, frame):
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals():
    """Turn SIGTERM into `Stopped` (Python ends silently on it, skipping every `finally`);
    SIGINT is already a KeyboardInterrupt. Only the main thread can set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def launch(command: str, module: str) -> int:
    """Import `module` and run its main(), a signal stopping either with one line."""
    main = None
    try:
        with stop_on_signals():
            main = importlib.import_module(module).main
            return main()
    except KeyboardInterrupt as stop:        # a main() that has no boundary of its own, or the imports
        print(f"\n{command}: {str(stop) or 'interrupted'}" + ("" if main else " while starting; nothing was run"),
              file=sys.stderr)
        return exit_code_of(stop)


def bench() -> None:
    sys.exit(launch("bench", "fwdlib.bench.cli"))


def tune() -> None:
    sys.exit(launch("tune", "fwdlib.tune.cli"))


def speed() -> None:
    sys.exit(launch("speed", "fwdlib.speed.profiler"))
