"""How a command starts and stops on a signal; imports nothing heavy.

`python -m fwdlib.bench` (and tune, speed) spends seconds importing torch before its own error
boundary exists. `launch` makes that boundary first: a Ctrl-C or a SIGTERM at any moment, the
imports included, ends the command with one line and 128 + the signal's number (Ctrl-C 130,
SIGTERM 143), never with a traceback, and every `finally` on the way runs.
"""
from __future__ import annotations

import contextlib
import importlib
import signal
import sys
import threading


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
