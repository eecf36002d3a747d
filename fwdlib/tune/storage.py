"""Where a study lives: SQLite, a journal file, or a database server with heartbeats and retries;
secrets of its URL never printed."""
from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend

from ..coordination import (DRIVER_HINT, GRACE_S, HEARTBEAT_S, MAX_ATTEMPTS, check_liveness, engine_options,
                            sqlite_file)
from ..commandline import hide_secrets, redact

# Database storage: a running trial writes a heartbeat every HEARTBEAT_S; once it has been silent
# for GRACE_S, any live worker fails it and queues its parameters again (MAX_ATTEMPTS runs in all,
# so a trial that kills every worker it meets is not retried forever): coordination.py's rule, the
# pooled benchmark's too.
# A server that does not answer a connection, a statement or a lock within this, or a network that
# drops, fails the call instead of holding the worker (coordination.py). Optuna makes the calls, so
# a server frozen outright (SIGSTOP) can still hold a tuning worker: the pooled benchmark bounds that too.
CALL_BOUND_S = 30.0


def open_storage(url: str, heartbeat_s: float = HEARTBEAT_S, grace_s: float = GRACE_S):
    """sqlite:///FILE, journal:FILE or any database URL Optuna accepts; a clear error otherwise.
    A database server's storage gets heartbeats and retries (see the module's docstring)."""
    hint = ("use sqlite:///FILE.db (one process at a time), journal:FILE.log (several processes on one "
            f"machine) or a database URL (several machines; for PostgreSQL, {DRIVER_HINT})")
    # checked for every storage, so that a bad --heartbeat is refused even where it would not be used
    check_liveness(heartbeat_s, grace_s)
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not path.name or path.is_dir():
            raise ValueError(f"storage {url!r} names no journal file; {hint}")
        _make_folder(path.parent, url)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    file = sqlite_file(url)
    heartbeat = file is None     # a server: workers may be on machines whose processes we cannot see
    if file and file != Path(""):
        _make_folder(file.parent, url)
    try:
        with warnings.catch_warnings():        # heartbeats and retries are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_options(url, CALL_BOUND_S),
                                              **(_heartbeat_options(heartbeat_s, grace_s) if heartbeat else {}))
    except Exception as err:  # every way a URL can fail gets the same advice
        reason = hide_secrets(str(err).splitlines()[0], url)
        raise ValueError(f"cannot open the storage {redact(url)!r} ({type(err).__name__}: {reason}); "
                         f"{hint}") from err


def _make_folder(folder: Path, url: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:    # a file where a folder should be, no permission, ...
        raise ValueError(f"cannot make the folder {folder} for the storage {redact(url)!r} "
                         f"({err.strerror or err}); choose a path in a folder you can write") from None


def _heartbeat_options(heartbeat_s: float, grace_s: float) -> dict:
    """RDBStorage's heartbeat arguments; the retry callback and its argument were renamed in
    Optuna 4.9, and the kit accepts Optuna from 4.0 on."""
    storages = optuna.storages
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        retry = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_ATTEMPTS - 1)}
    else:
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=MAX_ATTEMPTS - 1)}
    return {"heartbeat_interval": heartbeat_s, "grace_period": grace_s, **retry}


def retry_of(trial) -> int | None:
    """The trial this one repeats: after a dead worker (same machine: user attribute `retry_of`;
    stale heartbeat: Optuna's system attribute `failed_trial`)."""
    return trial.user_attrs.get("retry_of", trial.system_attrs.get("failed_trial"))


def has_heartbeat(storage) -> bool:
    return isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() is not None
