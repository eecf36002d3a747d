"""The `fwdlib` command, how each of its commands starts and stops on a signal, and packages that load
on first use; imports nothing heavy.

    fwdlib bench [--preset quick ...]          the head-to-head benchmark
    fwdlib bench status|report|export|import|plan|remove-unit ...   a pooled study's other actions
    fwdlib tune [status] ...                   the hyperparameter search
    fwdlib speed ...                           the speed command: every case timed
    fwdlib gpu-check ...                       every GPU acceptance check

(`python -m fwdlib ...` is the same command.) The old forms, `python -m fwdlib.bench --status` and
the like, keep working and say their new name in one line.

A command spends seconds importing torch before its own error boundary exists. `launch` makes that boundary first: a Ctrl-C or a SIGTERM at any moment, the
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


# command -> its module; and the actions each command once took as flags
COMMANDS = {"bench": "fwdlib.bench.cli", "tune": "fwdlib.tune.cli", "speed": "fwdlib.speed.cases",
            "gpu-check": "fwdlib.gpu_check"}
ACTIONS = {"bench": {"status": "--status", "report": "--report-only", "export": "--export", "import": "--import",
                     "plan": "--plan-only", "remove-unit": "--remove-unit"},
           "tune": {"status": "--status"}}


def new_form(command: str, argv: list[str]) -> str:
    """The `fwdlib` command line that an old one (`python -m fwdlib.bench --status ...`) is now."""
    flags = {flag: action for action, flag in ACTIONS.get(command, {}).items()}
    action = next((flags[a.split("=")[0]] for a in argv if a.split("=")[0] in flags), None)
    return f"fwdlib {command}" + (f" {action}" if action else "")


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM while modules import, then act on the first that came: raised inside
    torch's C++ import machinery, an exception aborts the process (SIGABRT, a page of C++ errors)
    instead of unwinding. The imports take a few seconds; the signal is answered when they end, as
    the handler before would have answered it (an ignored SIGINT stays ignored). A second signal
    while an import hangs (a network disk) ends the process at once: nothing has run yet."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {}

    def hold(signum, frame):
        if previous.get(signum) == signal.SIG_IGN:        # .get: a signal may come before both are held
            return
        if came:                                   # asked twice: stop now, the default way
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        came.append(signum)

    previous.update({s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)})
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if came:          # the signal wins over whatever the imports did after it
            answer = previous[came[0]]
            if callable(answer):
                answer(came[0], None)
            else:
                signal.raise_signal(came[0])


def launch(command: str, module: str, argv: list[str] | None = None) -> int:
    """Import `module` and run its main() on `argv` (default: the command line), a signal stopping
    either with one line."""
    started = False
    try:
        with stop_on_signals():
            with signals_held():
                main = importlib.import_module(module).main
            started = True
            return main(argv)
    except KeyboardInterrupt as stop:        # a main() that has no boundary of its own, or the imports
        print(f"\n{command}: {str(stop) or 'interrupted'}" + ("" if started else " while starting; nothing was run"),
              file=sys.stderr)
        return exit_code_of(stop)


USAGE = ("usage: fwdlib {bench,tune,speed,gpu-check} [ACTION] [OPTIONS]\n"
         "  fwdlib bench [--preset quick ...]; fwdlib bench status|report|export|import|plan|remove-unit ...\n"
         "  fwdlib tune [status] ...; fwdlib speed ...; fwdlib gpu-check ...\n"
         "  fwdlib COMMAND --help: that command's options")


def main(argv: list[str] | None = None) -> int:
    """`fwdlib COMMAND [ACTION] ...`: the command's parser reads the action as its flag."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"fwdlib: unknown command {command!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return launch(f"fwdlib {command}", COMMANDS[command], rest)     # its parser reads the action word


def old_form(command: str) -> int:
    """`python -m fwdlib.bench ...` and the fwdlib-bench scripts: as before, with the new name said once."""
    argv = sys.argv[1:]
    print(f"{command}: this command is now `{new_form(command, argv)}`; the old form keeps working", file=sys.stderr)
    return launch(command, COMMANDS[command], argv)


def fwdlib() -> None:
    sys.exit(main())


def bench() -> None:
    sys.exit(old_form("bench"))


def tune() -> None:
    sys.exit(old_form("tune"))


def speed() -> None:
    sys.exit(old_form("speed"))
