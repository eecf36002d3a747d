"""Where workers coordinate through a database: the pooled benchmark's study and the tuner's
storage share its defaults (heartbeat, grace, attempts), its rule for taking over a silent or dead
worker's work (`silent`, `local_worker_gone`), its reading of storage URLs, its bounds on every
call, how a worker waits for others and how a status line reads.

Work is taken over in one way for both: a unit or trial is another worker's to run again when
its worker's heartbeat has been silent for the grace period (by the database's clock; the
tuner's database server does this through Optuna), or at once when the storage is this machine's
own (SQLite, a journal file: every worker runs here) and its worker's process is gone. After
MAX_ATTEMPTS runs it is failed instead: work that kills every worker it meets is not run forever.

A database can fail in two ways that call for different advice. It can be *lost*: unreachable,
restarting, or frozen (a stopped server process still accepts TCP, so without a bound a call
waits forever). Then the worker stops within its grace period, keeps its finished runs locally
and uploads them when the same command runs again. Or it can *refuse*: a wrong password, a role
without rights, a value too long. Then running again changes nothing; the message says what to fix.

Three bounds, so that no call outlives `within` seconds:
- the server's own: connect, statement, lock and idle-transaction timeouts (PostgreSQL);
- the socket's: TCP keepalives and a user timeout, for a network that drops without a word;
- the client's: each call runs in a helper thread and is given up after `within` seconds, for
  the server that answers TCP but nothing else (SIGSTOP, a hung disk). The helper thread is left
  to finish on its own; it holds only its connection.
"""
from __future__ import annotations

import math
import os
import socket
import threading
import time
from pathlib import Path

from sqlalchemy import event, or_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .commandline import BadValue, hide_secrets, one_line, redact
from .processes import process_gone


# A running unit or trial beats every HEARTBEAT_S; silent for GRACE_S, another worker takes it on,
# MAX_ATTEMPTS times in all.
HEARTBEAT_S, GRACE_S = 10, 120
MAX_ATTEMPTS = 3
DRIVER_HINT = 'pip install "psycopg[binary]" and use a postgresql+psycopg://USER:PASSWORD@HOST/DB URL'
GRACE_MAX_S = 7 * 24 * 3600.0
HEARTBEAT_RANGE_S = (0.5, 3600.0)      # faster loads the database for nothing; slower is no heartbeat


def check_liveness(heartbeat_s: float, grace_s: float) -> None:
    """Refuse a worker's heartbeat and grace period that cannot work together (the pooled benchmark's
    and the tuner's): a finite heartbeat in HEARTBEAT_RANGE_S, and a finite grace of at least three
    heartbeats, so that a worker one beat late does not lose its work to another."""
    low, high = HEARTBEAT_RANGE_S
    if not (math.isfinite(heartbeat_s) and low <= heartbeat_s <= high):
        raise BadValue("heartbeat", f"{heartbeat_s:g} s: a heartbeat is from {low:g} s to {high:g} s")
    if not (math.isfinite(grace_s) and grace_s <= GRACE_MAX_S):
        raise BadValue("grace", f"{grace_s:g} s: a grace period is at most {GRACE_MAX_S:g} s (a week); longer, "
                         "a dead worker's unit or trial would never be taken on")
    if not grace_s >= 3 * heartbeat_s:
        raise BadValue("grace", f"{grace_s:g} s: the grace period must be at least three heartbeats "
                         f"({3 * heartbeat_s:g} s with --heartbeat {heartbeat_s:g}), or a worker one beat late "
                         "would lose its work to another")


class DatabaseLost(RuntimeError):
    """The study's database could not be reached, or did not answer in time."""


class DatabaseRefused(ValueError):
    """The study's database answered, and refused: running again will not help."""


# SQLSTATE classes of a lost server: connection exceptions (08), operator intervention such as a
# shutdown or a server still starting (57), insufficient resources (53), a cancelled statement (57014
# is in 57: our own statement_timeout), a lock not granted in time (55P03) and a transaction to retry
# (40). Every other code is a refusal.
LOST_SQLSTATES = ("08", "40", "53", "57", "55P03")     # 40: a deadlock or serialization retry
# SQLite result codes that pass: another process holds the write lock, the file is being replaced.
LOST_SQLITE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR")
ADVICE = {"28": "check the user and password in --storage",
          "3D": "check the database's name in --storage (it must exist: README, A class as one benchmark)",
          "42501": "the study's role may not create or write its tables: make it the database's owner "
                   "(README: CREATE DATABASE ... OWNER)",
          "22001": "a value is longer than the database's column allows",
          "SQLITE_READONLY": "the study's file or its folder is read-only: make it writable or copy it",
          "SQLITE_CANTOPEN": "the study's file cannot be opened: check its path and the folder's permissions",
          "SQLITE_PERM": "the study's file is not writable: check its permissions",
          "URL": "check --storage: the value it names is not one the database driver accepts",
          "HOST": "check the host in --storage (a password holding @, / or : must be percent-encoded: %40, %2F, %3A)"}


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL in any spelling (sqlite:///, sqlite+pysqlite:///, ...), None for
    another database; Path("") for one in memory."""
    try:
        parsed = make_url(url)
    except Exception:             # not a URL: create_engine says why, with the advice
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if parsed.query.get("uri") == "true" and database.startswith("file:"):    # sqlite:///file:PATH?uri=true
        database = database.removeprefix("file:").partition("?")[0]
    return Path("" if database in ("", ":memory:") else database)


def bound_of(grace_s: float) -> float:
    """How long one call may take: half the grace period (at most 30 s, at least 1 s), so that a
    heartbeat that cannot land is noticed, and the worker stopped, within twice the grace period."""
    return max(1.0, min(30.0, grace_s / 2))


def engine_options(url: str, within: float) -> dict:
    """create_engine's arguments that bound every wait on the server's side and on the socket."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":          # a busy file: wait for its lock no longer than a call may take
        return {"connect_args": {"timeout": within}}
    options = {"pool_pre_ping": True, "pool_timeout": within}
    if backend == "postgresql" and make_url(url).get_driver_name() in ("psycopg", "psycopg2"):
        ms = int(within * 1000)
        options["connect_args"] = {
            "connect_timeout": max(2, math.ceil(within)),           # libpq's minimum is 2 s
            "options": f"-c statement_timeout={ms} -c lock_timeout={ms} "
                       f"-c idle_in_transaction_session_timeout={4 * ms}",
            "keepalives": 1, "keepalives_idle": max(1, int(within)), "keepalives_interval": 1,
            "keepalives_count": 3, "tcp_user_timeout": ms}
    return options


def sqlite_immediate(engine) -> None:
    """SQLite takes its write lock at the first write of a transaction; two claims that both read
    first would then deadlock. BEGIN IMMEDIATE takes it at the start (SQLAlchemy's recipe)."""
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# A refusal while connecting comes without its SQLSTATE (libpq reports the server's FATAL as text);
# so does a host name that resolves to nothing, which is a wrong URL, not a lost server.
REFUSED_AT_CONNECT = {"authentication failed": "28P01", "no pg_hba.conf entry": "28000",
                      "role \"": "28000", "database \"": "3D000", "permission denied": "42501",
                      "failed to resolve host": "HOST", "could not translate host name": "HOST",
                      "invalid port": "URL", "invalid sslmode": "URL", "invalid connection option": "URL",
                      "invalid integer value": "URL"}
# Without a code, only these say the server is out of reach; any other error is the request's.
UNREACHED = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def failure(err: SQLAlchemyError, url: str) -> DatabaseLost | DatabaseRefused:
    """The error as one of the two kinds, said without the URL's secrets."""
    orig = getattr(err, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or getattr(orig, "sqlite_errorname", None)
    if code is None:
        code = next((c for text, c in REFUSED_AT_CONNECT.items() if text in str(orig)), None)
    first = str(orig or err).strip().splitlines()
    said = f"{type(err).__name__}: {hide_secrets(first[0] if first else '', url)}"
    if (code is None and isinstance(err, UNREACHED)) or (code and (code.startswith(LOST_SQLSTATES) or code in LOST_SQLITE)):
        return DatabaseLost(f"the study's database {redact(url)} failed ({said})")
    advice = next((text for prefix, text in ADVICE.items() if code.startswith(prefix)), None)
    return DatabaseRefused(f"the study's database {redact(url)} refused ({said}); "
                           + (advice or "fix the cause it names, then run the same command again"))


def bounded(call, within: float, url: str):
    """call() in a helper thread, its answer or its error; DatabaseLost if it has neither after
    `within` seconds. Ctrl-C interrupts the wait at once (the helper finishes on its own)."""
    answer: dict = {}

    def run():
        try:
            answer["value"] = call()
        except BaseException as err:             # handed to the caller below
            answer["error"] = err

    helper = threading.Thread(target=run, daemon=True, name="fwdlib-database-call")
    helper.start()
    helper.join(within)
    if helper.is_alive():
        raise DatabaseLost(f"the study's database {redact(url)} did not answer in {within:g} s "
                           "(a frozen server or a broken network)")
    if "error" in answer:
        error = answer["error"]
        if isinstance(error, SQLAlchemyError):
            raise failure(error, url) from None
        raise error
    return answer["value"]


CLOCK_SLACK_S = 60         # a stored time further ahead of the database's clock is no time


def silent(heartbeat, now: float, grace_s: float) -> bool:
    """Whether a running unit's or trial's last heartbeat (seconds, by the database's clock) lets
    another worker take it: none stored, not a number, further ahead than CLOCK_SLACK_S, or older
    than the grace period. `silent_clause` is the same rule inside a query."""
    return not (isinstance(heartbeat, (int, float)) and math.isfinite(heartbeat)
                and now - grace_s <= heartbeat <= now + CLOCK_SLACK_S)


def silent_clause(heartbeat, now: float, grace_s: float):
    """`silent` as SQL on a heartbeat column (PostgreSQL sorts NaN above every number, so a NaN is
    caught by the upper bound)."""
    return or_(heartbeat.is_(None), heartbeat < now - grace_s, heartbeat > now + CLOCK_SLACK_S)


def local_worker_gone(worker: str, started: str | None = None, *, idle_here: bool = False) -> bool:
    """Whether `worker` (host:pid, `processes.worker_id`) is a process of this machine that is gone:
    it exited, or its id now names a later process (when `started`, its `processes.process_start`,
    is known: a reused id, as after a container restart), or, where the asking process runs none
    of the work while it looks (`idle_here`: the tuner between trials), it is the asker's own id,
    left by an earlier process that had it. Only for storage every worker shares on this machine
    (`single_machine`): on a server, a worker of another machine may have this one's host name (a
    cloned lab image, a container) and only its heartbeat tells."""
    pid = local_pid(worker)
    return pid is not None and ((idle_here and pid == os.getpid()) or process_gone(pid, started))


def single_machine(url: str) -> bool:
    """Whether a storage URL is a file of this machine (SQLite, an Optuna journal), so that every
    worker of it runs here."""
    return sqlite_file(url) is not None or str(url).startswith("journal:")


def local_pid(worker: str) -> int | None:
    """The process id of `worker` (host:pid) if it runs on this machine, else None."""
    host, _, pid = str(worker).rpartition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def ago(now: float, then) -> str:
    """How long ago `then` was by the database's clock, said even when the row holds no time."""
    seconds = now - then if isinstance(then, (int, float)) else float("nan")
    # a time in the future (beyond the moment between two statements) is no time either
    return (f"{seconds:.0f} s" if math.isfinite(seconds) and seconds > -CLOCK_SLACK_S
            else "an unknown time (no valid time stored)")


def status_line(text: str) -> str:
    """One item of a status (a unit, a trial): every value on one line, so that a newline in an
    edited row or a worker's name cannot print lines of its own."""
    return one_line(text)


class Waiter:
    """What a worker does when nothing is left to take but others still run: one of them may be
    dead, and its unit or trial comes back once its silence proves it. Says once per item whom it
    waits for and why that is safe, then sleeps `poll_s`."""

    def __init__(self, command: str, poll_s: float, why: str, say=print):
        self.command, self.poll_s, self.why, self.say = command, poll_s, why, say
        self.seen: set = set()

    def wait(self, items) -> None:
        """`items`: (key, what, worker) of each unit or trial others run now."""
        for key, what, worker in items:
            if key not in self.seen:
                self.seen.add(key)
                self.say(one_line(f"{self.command}: waiting for {what} of worker {worker}; {self.why}"), flush=True)
        time.sleep(self.poll_s)
