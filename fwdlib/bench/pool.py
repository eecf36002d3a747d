"""One benchmark, many machines: a class pools its seeds into one study in a database.

The unit of work is a (pair, seed): a rival and its twin for one seed, run back to back on one
machine, so every paired ratio of time, energy and memory is measured within one machine even
when the class's laptops differ. The plan is one table row per unit:

    planned --claim--> running --finish--> done (or failed: a run of it raised)
                          |  silent heartbeat for the grace period, or (SQLite: every worker on
                          |  this machine) its process gone: claimable again (coordination.py's
                          |  rule, the tuner's too)
                          '---------------------------------------------------------> running

Coordination is the database's own: SQLAlchemy over PostgreSQL (or SQLite on one machine). A
claim is `SELECT ... FOR UPDATE SKIP LOCKED` (workers never queue on, nor take, the same row),
then an UPDATE that writes a fresh claim token only if the row is still as read; a finish
writes the records only where the unit is not done yet, so the first finisher wins and no unit
is ever stored twice. Heartbeats and the grace period use the database's clock, so the
laptops' clocks need not agree. Optuna's trial queue was the other choice; its ask() makes a
new trial when the queue empties between a look and a claim, and its trials have no room for a
unit's state, so this is one table of our own in the class's database, not a server.
"""
from __future__ import annotations

import _thread
import json
import signal
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import (Column, Float, Integer, MetaData, String, Table, Text, and_, create_engine, func, inspect,
                        or_, select, text, update)

from ..commandline import BadValue, hide_secrets, redact
from ..files import writable_folder
from ..coordination import (DRIVER_HINT, GRACE_S, HEARTBEAT_S, MAX_ATTEMPTS, DatabaseLost, DatabaseRefused, ago,
                            bound_of, bounded, check_liveness, engine_options, local_worker_gone, silent,
                            silent_clause, single_machine, sqlite_file, sqlite_immediate)
from ..runs.record import Record
from ..meters.process import contamination
from ..runs.spec import MAX_SEEDS
from .units import stored_records, Unit, plan_difference, plan_key, plan_problem

RELEASE_S = 2.0            # how long a stopping worker tries to give its unit back

META = MetaData()
STUDIES = Table("fwdlib_bench_studies", META,
                Column("name", String(200), primary_key=True), Column("plan", Text, nullable=False))
UNITS = Table("fwdlib_bench_units", META,
              Column("study", String(200), primary_key=True), Column("unit", String(32), primary_key=True),
              Column("position", Integer, nullable=False), Column("seed", Integer, nullable=False),
              Column("label", String(400), nullable=False),
              Column("state", String(16), nullable=False),      # planned, running, done, failed
              Column("worker", String(300)), Column("token", String(32)), Column("attempts", Integer, nullable=False),
              Column("claimed", Float), Column("heartbeat", Float), Column("finished", Float),
              Column("records", Text), Column("note", Text))


RERUN_NOTE = "run again: other work contaminated its time (--rerun-contaminated)"


NOW_SQL = {"postgresql": "SELECT extract(epoch from clock_timestamp())",
           "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
           "mysql": "SELECT UNIX_TIMESTAMP(NOW(6))"}
STUDY_NAME_MAX = 200           # the tables' column


def check_study_name(study: str) -> None:
    """A study's name is one printable line that fits the database's column: a newline would
    write false lines into --status, and PostgreSQL refuses what SQLite would store."""
    if not study or not study.strip():
        raise BadValue("study", "is empty; name the class's study (the same name on every machine)")
    if not study.isprintable():
        raise BadValue("study", f"{study!r} holds a newline or another control character; use one line "
                         "of letters, digits and punctuation")
    if len(study) > STUDY_NAME_MAX:
        raise BadValue("study", f"is {len(study)} characters long; the database holds at most {STUDY_NAME_MAX}")


class Pool:
    """One study of the pooled benchmark in a database: its plan, its units and their records.
    Every call is bounded (`database.bounded`, half the grace period); write=False opens it to read
    only (--status, --report-only, --export): nothing is created or locked to find out."""

    def __init__(self, url: str, study: str, heartbeat_s: float = HEARTBEAT_S, grace_s: float = GRACE_S,
                 write: bool = True):
        check_study_name(study)
        check_liveness(heartbeat_s, grace_s)
        self.url, self.study, self.heartbeat_s, self.grace_s = url, study, heartbeat_s, grace_s
        self.within = bound_of(grace_s)
        hint = f"use sqlite:///FILE.db on one machine or a database URL for several (for PostgreSQL, {DRIVER_HINT})"
        self.sqlite_file = sqlite_file(url)
        if write and self.sqlite_file:
            writable_folder(self.sqlite_file.parent, "the storage's folder", "--storage")
        try:
            self.engine = create_engine(url, **engine_options(url, self.within))
        except Exception as err:     # a malformed URL, an uninstalled driver: the same advice
            raise ValueError(f"cannot open the storage {redact(url)!r} ({type(err).__name__}: "
                             f"{self.hide(str(err).splitlines()[0])}); {hint}") from None
        if self.engine.dialect.name not in NOW_SQL:
            raise ValueError(f"the storage {redact(url)!r} is a {self.engine.dialect.name} database; {hint}")
        if self.sqlite_file == Path(""):
            raise ValueError(f"the storage {url!r} is a database in this process's memory, which no other worker "
                             "sees; use sqlite:///FILE.db on one machine or a database server for several")
        if write and self.engine.dialect.name == "sqlite":
            sqlite_immediate(self.engine)

    def hide(self, message: str) -> str:
        return hide_secrets(message, self.url)

    def _call(self, work, within: float | None = None):
        """work(connection) in one transaction, bounded in time; DatabaseLost or DatabaseRefused."""
        def transaction():
            with self.engine.begin() as c:
                return work(c)
        return bounded(transaction, within or self.within, self.url)

    def _tables(self) -> None:
        """Create the two tables where missing. Two workers that start together may both try;
        PostgreSQL then refuses the second CREATE, which finds the tables made on its retry."""
        for attempt in range(3):
            try:
                return self._call(META.create_all)
            except (DatabaseLost, DatabaseRefused):
                if attempt == 2:
                    raise
                time.sleep(0.5)

    def _now(self, conn) -> float:
        return float(conn.execute(text(NOW_SQL[self.engine.dialect.name])).scalar())

    # --- the plan -------------------------------------------------------------------------
    def plan(self) -> dict | None:
        """The study's plan, or None if there is no such study (nothing is created to find out)."""
        if self.sqlite_file and not self.sqlite_file.exists():
            return None

        def read(c):
            if not inspect(c).has_table(STUDIES.name):
                return None
            return c.execute(select(STUDIES.c.plan).where(STUDIES.c.name == self.study)).scalar()
        found = self._call(read)
        return None if found is None else self._checked(found)

    def _checked(self, stored: str) -> dict:
        """The stored plan, if it is one: an edited or damaged row stops every command with the
        field it lacks, not a traceback."""
        problem = plan_problem(stored)
        if problem:
            raise ValueError(f"study {self.study!r} in {redact(self.url)} has a damaged plan ({problem}); no "
                             "command can join or read it as a study: start a new --study, or restore the row")
        return json.loads(stored)

    def existing_plan(self) -> dict:
        """The plan of a study that must exist already (to read its status, report or records)."""
        found = self.plan()
        if found is None:
            raise ValueError(f"no study {self.study!r} in {redact(self.url)}; check --storage and --study "
                             "(the first worker, or `fwdlib bench plan`, creates it)")
        return found

    def join(self, plan: dict, units: list[Unit], retry_failed: bool = False,
             rerun_contaminated: bool = False) -> tuple[int, int]:
        """Create the study, or join it if its plan is this worker's; add the units it lacks (more
        seeds); never touch one it has, unless asked to plan again its failed units or the done
        ones with a contaminated run. Returns (units added, seeds the study now plans)."""
        self._tables()

        def join(c):
            return self._join(c, plan, units, retry_failed, rerun_contaminated)
        within = max(self.within, 30.0)     # a plan of thousands of units is one insert
        try:
            return self._call(join, within)
        except (DatabaseLost, DatabaseRefused):   # two workers created the study at once: the second joins it
            return self._call(join, within)

    def _join(self, c, plan: dict, units: list[Unit], retry_failed: bool,
              rerun_contaminated: bool) -> tuple[int, int]:
        found = c.execute(select(STUDIES.c.plan).where(STUDIES.c.name == self.study).with_for_update()).scalar()
        if found is None:
            c.execute(STUDIES.insert().values(name=self.study, plan=json.dumps(plan, sort_keys=True)))
        elif (why := plan_difference(self._checked(found), plan)) is not None:
            raise ValueError(f"this worker's plan differs from study {self.study!r}: {why}. Nothing was run; "
                             "run the study's command (fwdlib bench status --storage URL --study "
                             "NAME shows its preset), or name another --study")
        have = dict(c.execute(select(UNITS.c.unit, UNITS.c.position).where(UNITS.c.study == self.study)).all())
        new = [u for u in units if u.key not in have]
        start = max(have.values(), default=-1) + 1
        if new:
            c.execute(UNITS.insert(), [{"study": self.study, "unit": u.key, "position": start + i, "seed": u.seed,
                                        "label": u.label, "state": "planned", "attempts": 0}
                                       for i, u in enumerate(new)])
        if retry_failed:
            c.execute(update(UNITS).where(UNITS.c.study == self.study, UNITS.c.state == "failed")
                      .values(state="planned", token=None, attempts=0, note="retried (--retry-failed)"))
        if rerun_contaminated:
            done = c.execute(select(UNITS.c.unit, UNITS.c.records).where(UNITS.c.study == self.study,
                                                                         UNITS.c.state == "done")).all()
            spoiled = [u for u, records in done
                       if any(contamination(r) for r in stored_records(records, f"study {self.study} unit {u}"))]
            if spoiled:
                c.execute(update(UNITS).where(UNITS.c.study == self.study, UNITS.c.unit.in_(spoiled))
                          .values(state="planned", token=None, attempts=0, note=RERUN_NOTE))
        seeds = c.execute(select(func.max(UNITS.c.seed)).where(UNITS.c.study == self.study)).scalar() + 1
        if not 1 <= seeds <= MAX_SEEDS:      # only an edited table holds more: planning it would fill the memory
            raise ValueError(f"study {self.study!r} plans {seeds} seeds, beyond the kit's {MAX_SEEDS}: its units "
                             "table was edited; start a new --study")
        return len(new), seeds

    # --- claiming, beating, finishing -----------------------------------------------------
    def claim(self, worker: str) -> tuple[str, str, str] | None:
        """Take the first planned unit, or one whose worker fell silent: (unit, token, note), or
        None when every unit is done, failed or running under a live heartbeat."""
        return self._call(lambda c: self._claim(c, worker))

    def _claim(self, c, worker: str) -> tuple[str, str, str] | None:
        while True:
            now = self._now(c)
            lapsed = and_(UNITS.c.state == "running", silent_clause(UNITS.c.heartbeat, now, self.grace_s))
            # in this machine's own file a unit whose worker's process is gone is taken at once (coordination.py)
            dead = [w for w in c.execute(select(UNITS.c.worker).distinct().where(
                UNITS.c.study == self.study, UNITS.c.state == "running")).scalars()
                    if local_worker_gone(w)] if single_machine(self.url) else []
            gone = and_(UNITS.c.state == "running", UNITS.c.worker.in_(dead))
            row = c.execute(select(UNITS).where(UNITS.c.study == self.study,
                                                or_(UNITS.c.state == "planned", lapsed, gone))
                            .order_by(UNITS.c.position).limit(1)
                            .with_for_update(skip_locked=True)).mappings().first()
            if row is None:
                return None
            reclaimed = None
            if row["state"] == "running":
                reclaimed = (f"reclaimed from {row['worker']} ("
                             + (f"heartbeat silent {ago(now, row['heartbeat'])})" if silent(row["heartbeat"], now, self.grace_s)
                                else "its process on this machine is gone)"))
            # a unit planned again for contamination stays so until it is done, whoever claims it
            rerun = row["note"] if RERUN_NOTE in (row["note"] or "") else None
            note = "; ".join(filter(None, (rerun, reclaimed))) or None
            as_read = [UNITS.c.study == self.study, UNITS.c.unit == row["unit"], UNITS.c.state == row["state"],
                       UNITS.c.token.is_(None) if row["token"] is None else UNITS.c.token == row["token"]]
            if row["attempts"] >= MAX_ATTEMPTS:
                c.execute(update(UNITS).where(*as_read).values(
                    state="failed", token=None, note=f"its worker fell silent {row['attempts']} times; "
                                                     "rerun with --retry-failed"))
                continue
            token = uuid.uuid4().hex
            taken = c.execute(update(UNITS).where(*as_read).values(
                state="running", worker=worker, token=token, attempts=row["attempts"] + 1, claimed=now,
                heartbeat=now, note=note)).rowcount
            if taken == 1:
                return row["unit"], token, note

    def beat(self, unit: str, token: str) -> bool:
        """Record that the claim is alive; False once the unit is no longer this claim's."""
        def beat(c):
            now = self._now(c)
            return c.execute(update(UNITS).where(UNITS.c.study == self.study, UNITS.c.unit == unit,
                                                 UNITS.c.token == token).values(heartbeat=now)).rowcount == 1
        return self._call(beat)

    def finish(self, unit: str, records: list[Record], worker: str) -> str | None:
        """Store a unit's records, unless it is done already: None when stored, else who did it."""
        failed = any(r["status"] != "ok" for r in records)

        def finish(c):
            now = self._now(c)
            stored = c.execute(update(UNITS).where(UNITS.c.study == self.study, UNITS.c.unit == unit,
                                                   UNITS.c.state != "done").values(
                state="failed" if failed else "done", token=None, worker=worker, finished=now,
                records=json.dumps([r.as_dict() for r in records], default=str),
                **({"note": "a run failed: rerun with --retry-failed once fixed"} if failed else {}))).rowcount
            if stored:
                return None
            return c.execute(select(UNITS.c.worker).where(UNITS.c.study == self.study, UNITS.c.unit == unit)).scalar()
        return self._call(finish)

    def release(self, unit: str, token: str) -> None:
        """Give a claimed unit back to the plan as not silent (this worker stops), trying for at
        most RELEASE_S, so that Ctrl-C ends a worker at once; where the database does not answer,
        the unit's heartbeat falls silent and the grace period gives it back instead."""
        def release(c):
            c.execute(update(UNITS).where(UNITS.c.study == self.study, UNITS.c.unit == unit, UNITS.c.token == token)
                      .values(state="planned", token=None, attempts=UNITS.c.attempts - 1,   # not a silence
                              note="given back by a worker that stopped"))
        try:
            self._call(release, min(self.within, RELEASE_S))
        except (DatabaseLost, DatabaseRefused):
            pass

    def remove(self, position: int) -> dict | None:
        """Remove the records of the unit at `position` and plan it again; the unit as it was, or
        None if the study has none there. A unit running now is left alone (ValueError)."""
        def remove(c):
            where = [UNITS.c.study == self.study, UNITS.c.position == position]
            row = c.execute(select(UNITS).where(*where).with_for_update()).mappings().first()
            if row is not None and row["state"] == "running":
                raise ValueError(f"unit {position} is running now (worker {row['worker']}); wait until `fwdlib bench "
                                 "status` shows it done or failed, then remove it")
            if row is not None:              # that row alone, even where an edit repeated its position
                c.execute(update(UNITS).where(UNITS.c.study == self.study, UNITS.c.unit == row["unit"]).values(
                    state="planned", token=None, attempts=0, records=None, worker=None, claimed=None, heartbeat=None,
                    finished=None, note="its records were removed (fwdlib bench remove-unit); planned again"))
            return None if row is None else dict(row)
        return self._call(remove)

    def heartbeat(self, unit: str, token: str) -> Heartbeat:
        return Heartbeat(self, unit, token)

    # --- reading ---------------------------------------------------------------------------
    def units(self) -> list[dict]:
        def read(c):
            now = self._now(c)
            rows = c.execute(select(UNITS).where(UNITS.c.study == self.study).order_by(UNITS.c.position)).mappings()
            return [{**row, "now": now} for row in rows]
        return self._call(read)

    def records(self) -> list[Record]:
        """Every stored record (done and failed units) that passes the record check, in plan
        order, each run once; one that does not is skipped with a line naming its unit and field."""
        found: dict[str, Record] = {}
        for u in self.units():
            where = f"study {self.study} unit {u['position']}"
            for r in stored_records(u["records"], where):
                run = plan_key(r)
                if run in found:            # only an edited table repeats a run: it is not a second seed
                    print(f"bench: {where} repeats run {run} of another unit; skipped")
                else:
                    found[run] = r
        return list(found.values())


class Heartbeat:
    """Beats for one claim from a thread while the unit trains. `lost` says why it stopped: the
    database is gone (the records are kept locally) or another worker holds the unit now. A
    database silent for the grace period less one call's bound, or one that refuses, ends the
    unit's training: `abandoned` is set and the main thread interrupted, so that a frozen server
    stops the worker within twice the grace."""

    RECLAIMED = "another worker holds the unit now (this one was silent past the grace period)"

    def __init__(self, pool: Pool, unit: str, token: str):
        self.pool, self.unit, self.token = pool, unit, token
        self.lost: str | None = None
        self.error: Exception | None = None      # the last failed beat's
        self.abandoned, self.silent_s = False, 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fwdlib-heartbeat")

    def _run(self) -> None:
        last = time.monotonic()
        # given up one call's bound before the grace ends, so that a call the main thread makes
        # meanwhile (storing the unit) still ends within twice the grace
        patience = self.pool.grace_s - self.pool.within
        while not self.stop.wait(self.pool.heartbeat_s):
            try:
                if not self.pool.beat(self.unit, self.token):
                    self.lost = self.RECLAIMED
                    return
                self.lost, last = None, time.monotonic()
            except (DatabaseLost, DatabaseRefused) as err:
                self.lost, self.error = str(err), err      # a lost database may come back: keep trying
                self.silent_s = time.monotonic() - last
                if isinstance(err, DatabaseRefused) or self.silent_s > patience:
                    self._abandon()
                    return

    def failure(self, what: str) -> DatabaseLost | DatabaseRefused:
        """Why this worker stopped training `what`, as the kind of failure its database had."""
        if isinstance(self.error, DatabaseRefused):
            return DatabaseRefused(f"{self.lost}. This worker stopped training {what}")
        return DatabaseLost(f"{self.lost}; no heartbeat landed for {self.silent_s:.0f} s (the grace period is "
                            f"{self.pool.grace_s:g} s), so this worker stopped training {what}")

    def _abandon(self) -> None:
        """Stop the training in the main thread, through whichever of SIGINT and SIGTERM Python
        handles there (a worker started with `&` from a script has SIGINT ignored)."""
        if self.stop.is_set():
            return
        self.abandoned = True
        for signum in (signal.SIGINT, signal.SIGTERM):
            if callable(signal.getsignal(signum)):
                _thread.interrupt_main(signum)
                return

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(0.5)                 # a beat under way is bounded; a stopping worker need not wait for it
