"""The pooled benchmark's commands: a worker's loop, --status, --import, --export and the report.

    fwdlib bench --preset paper-fmnist --storage URL --study lab     # on every machine
    fwdlib bench status --storage URL --study lab                  # anyone, any time

A worker writes every finished run to its own OUT/results.jsonl first, then stores its unit in
the study: a worker that loses the database loses nothing, and the same command uploads what it
kept when the database is back (before it claims anything new).
"""
from __future__ import annotations

from pathlib import Path

from ..meters.process import contamination
from ..runs.record import Record
from ..commandline import one_line, redact
from ..processes import worker_id
from .benchmark import Benchmark
from .plan import PlannedRun
from ..coordination import Waiter, ago, silent, status_line
from .pool import RERUN_NOTE, Heartbeat, Pool
from .units import Unit, neutral, plan_key, plan_record, units_of
from .report import title_of, write_report
from .results import ResultsLog
from .runner import outcome, run_name, train_logged
from .summary import printout


def work(ready: Benchmark, pool: Pool, *, plan_only: bool = False, retry_failed: bool = False,
         rerun_contaminated: bool = False, co2: bool = True, margins: dict | None = None,
         verbose: bool = True) -> list[Record]:
    """Join (or create) the study, upload what OUT kept, then claim and run units until none is
    left; write the pooled report into OUT. Returns the study's records."""
    log = ready.ready_log()
    plan = plan_record(ready.preset, ready.protocol, ready.specs)
    added, seeds = pool.join(plan, units_of(ready.runs()), retry_failed, rerun_contaminated)
    units = {u.key: u for u in units_of(ready.runs(seeds))}
    say = print if verbose else (lambda *a, **k: None)
    say(f"bench {ready.preset} in study {pool.study} ({redact(pool.url)}): {len(units)} units of (pair, seed) over "
        f"{seeds} seeds, {added} added now; device {ready.device}")
    if plan_only:
        say(status(pool))
        return []
    me = worker_id()
    with log.lock():
        uploaded = upload(pool, units.values(), log.latest(), me)
        if uploaded:
            say(f"bench: uploaded {uploaded} unit(s) finished earlier and kept in {ready.log.path}")
        waiter = Waiter("bench", min(pool.heartbeat_s, 5), f"if that worker has stopped, its unit is run here once its "
                        f"heartbeat has been silent {pool.grace_s:g} s (Ctrl-C stops this worker and loses nothing)", say)
        while True:
            claim = pool.claim(me)
            if claim is None:
                running = [u for u in pool.units() if u["state"] == "running"]
                if not running:
                    break
                waiter.wait([(u["unit"], u["label"], u["worker"]) for u in running])
                continue
            key, token, note = claim
            unit = units.get(key)
            if unit is None:              # only an edited row holds a unit no plan makes
                pool.release(key, token)
                raise ValueError(f"study {pool.study} holds a unit ({key}) that is not in its plan (an edited row); "
                                 "`fwdlib bench status` numbers it: remove it with `fwdlib bench remove-unit N`, then run again")
            say(one_line(f"  {unit.label}" + (f" ({note})" if note else "")), flush=True)
            beat = pool.heartbeat(key, token)
            try:
                with beat:
                    records = run_unit(unit, ready, beat, co2=co2, say=say,
                                       rerun=rerun_contaminated or RERUN_NOTE in (note or ""))
            except BaseException as stop:   # Ctrl-C, a full disk: the unit goes back to the plan at once
                if not (beat.abandoned and isinstance(stop, KeyboardInterrupt)):
                    pool.release(key, token)
                    raise
            if beat.abandoned:                # the heartbeat's doing: its database is lost, or refuses
                raise beat.failure(unit.label) from None
            if records is None:
                say(f"  {unit.label}: {Heartbeat.RECLAIMED}; stopped, its finished runs stay in {ready.log.path}")
                continue
            first = pool.finish(key, stamped(records, pool.study, key, me), me)
            if first is not None:
                say(f"  {unit.label} was finished first by {first}; this worker's records stay in "
                    f"{ready.log.path} only")
    records = pool.records()
    if records:
        write_report(records, ready.log.path.parent, title=title_of(records), margins=margins)
        say(printout(ready.log.path.parent))
    silenced = [u for u in pool.units() if u["state"] == "failed" and not u["records"]]
    if silenced:      # a failed run is reported with its records; these have none to report
        raise UnitsFailed(f"{len(silenced)} unit(s) of study {pool.study} failed without a record (first: "
                          f"{silenced[0]['label']}: {silenced[0]['note']}); find why its workers stopped (memory? "
                          "--status shows them), then run the same command with --retry-failed")
    return records


class UnitsFailed(RuntimeError):
    """The study has units that no worker will run again unless asked (--retry-failed)."""


def run_unit(unit: Unit, ready: Benchmark, beat: Heartbeat, *, co2, say, rerun: bool = False) -> list[Record] | None:
    """Every run of a unit, back to back on this machine: one found finished in the local log (a
    unit whose upload the database missed) is taken from there, unless the unit is planned again
    because other work contaminated it: then its pair runs whole again, back to back. None if
    another worker took the unit meanwhile."""
    kept = {} if rerun else {r["key"]: r for r in ready.log.latest() if r["status"] == "ok"}
    records = []
    for i, run in enumerate(unit.runs):
        if beat.lost == Heartbeat.RECLAIMED or beat.abandoned:
            return None
        local = run.spec.replace(device=ready.device)
        record = kept.get(local.key)
        if record is None:
            record = train_logged(PlannedRun(local, run.entries), ready, len(unit.runs) - i, co2=co2)
            say(f"    {run_name(record)}: {outcome(record)}", flush=True)
        records.append(record)
    return records


def stamped(records: list[Record], study: str, unit: str, worker: str) -> list[Record]:
    """The records as the study stores them: each names its study, unit and worker."""
    return [r.replace(pool={"study": study, "unit": unit, "worker": worker}) for r in records]


def upload(pool: Pool, units, records: list[dict], worker: str) -> int:
    """Store every unit of the study that `records` hold whole (each of its runs finished, all on
    one machine) and the study does not have yet. Returns how many were stored."""
    found = {plan_key(r): r for r in records}
    state = {u["unit"]: (u["state"], u["note"] or "") for u in pool.units()}
    stored = 0
    for unit in units:
        if state.get(unit.key, ("done",))[0] == "done":
            continue
        mine = [found.get(neutral(run.spec).key) for run in unit.runs]
        if not all(mine) or len({str((r.get("machine") or {}).get("host")) for r in mine}) > 1:
            continue
        if RERUN_NOTE in state[unit.key][1] and any(contamination(r) for r in mine):
            continue                     # planned again for this: the pair runs again, whole
        who = (mine[0].get("pool") or {}).get("worker", worker)
        if pool.finish(unit.key, stamped(mine, pool.study, unit.key, who), who) is None:
            stored += 1
    return stored


def import_folder(planned: Benchmark, pool: Pool, folder: Path, *, verbose: bool = True) -> int:
    """--import: store the whole units of FOLDER/results.jsonl (a machine's own benchmark, or a
    worker's folder) in the study, as `planned` plans it (`Benchmark.planned`); say what did not fit."""
    path = Path(folder) / "results.jsonl"
    if not path.exists():
        raise ValueError(f"no results in {path} to import; name the folder that holds results.jsonl")
    log = ResultsLog(path, write=False)
    records = log.latest()
    _, planned_seeds = pool.join(plan_record(planned.preset, planned.protocol, planned.specs),
                                 units_of(planned.runs()))
    units = units_of(planned.runs(planned_seeds))
    in_plan = {neutral(run.spec).key for u in units for run in u.runs}
    stored = upload(pool, units, records, f"imported from {folder}")
    foreign = sum(plan_key(r) not in in_plan for r in records)
    if verbose:
        print(f"bench: imported {stored} unit(s) from {path} into study {pool.study}"
              + (f"; {foreign} record(s) are not in its plan (another preset or settings, or seeds beyond "
                 f"its {planned_seeds}: add them with --seeds)" if foreign else ""))
    if log.skipped:
        raise ValueError(f"import skipped {log.skipped} line(s) of {path} that are not usable records (each named "
                         "above with its line and field); every whole unit of the usable ones was imported. Fix or delete those lines, "
                         "then import again")
    return stored


def export(pool: Pool, folder: Path) -> int:
    """--export: append the study's records that FOLDER/results.jsonl lacks; the local report
    (--report-only --out FOLDER) then reads them. Returns how many were written."""
    pool.existing_plan()
    records = pool.records()
    if not records:
        raise ValueError(f"study {pool.study} holds no finished unit yet; nothing to export")
    log = ResultsLog(Path(folder) / "results.jsonl", option="--export")
    with log.lock():
        have = {r["key"] for r in log.latest()}
        new = [r for r in records if r["key"] not in have]
        for r in new:
            log.append(r)
    print(f"bench: exported {len(new)} record(s) of study {pool.study} to {log.path} ({len(records) - len(new)} "
          f"already there); the report: fwdlib bench report --out {folder}")
    return len(new)


def report(pool: Pool, out: Path, margins: dict | None = None) -> None:
    """--report-only from the study: the same report, figures and CSV as from a results.jsonl."""
    pool.existing_plan()
    records = pool.records()
    if not records:
        raise ValueError(f"study {pool.study} holds no finished unit yet; nothing to report")
    write_report(records, out, title=title_of(records), margins=margins)
    print(printout(out))


def remove_unit(pool: Pool, position: int) -> str:
    """--remove-unit N: a unit whose records are wrong (a hand edit, a hostile import) loses them
    and is planned again, so that the next worker runs it."""
    pool.existing_plan()
    removed = pool.remove(position)
    if removed is None:
        raise ValueError(f"remove-unit {position}: study {pool.study} has no unit {position}; `fwdlib bench status` "
                         "lists its units by number")
    return one_line(f"bench: removed the records of unit {position} ({removed['label']}, {removed['state']}) "
                    f"from study {pool.study}; it is planned again: the next worker runs it")


def status(pool: Pool) -> str:
    """Every unit of the study, one line each: planned, running (by which worker, for how long,
    how recently it beat), done (by whom) or failed (why)."""
    plan = pool.existing_plan()
    units = pool.units()
    counts = {s: sum(u["state"] == s for u in units) for s in ("planned", "running", "done", "failed")}
    machines = {(r.get("machine") or {}).get("host") for r in pool.records()}
    lines = [status_line(f"study {pool.study} in {redact(pool.url)}: preset {plan['preset']}, protocol "
                      f"{plan['protocol']}, fwdlib {plan['fwdlib']}, torch {plan['torch']}.x; {len(units)} units of "
                      "(pair, seed)"),
             "  " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"; {len(machines)} machine(s) contributed"]
    for u in units:
        now = u["now"]
        if u["state"] == "running":
            detail = (f"worker {u['worker']} for {ago(now, u['claimed'])}, heartbeat {ago(now, u['heartbeat'])} ago"
                      + (" (silent past the grace period: the next worker reclaims it)"
                         if silent(u["heartbeat"], now, pool.grace_s) else ""))
        elif u["state"] in ("done", "failed") and u["finished"]:
            took = ago(u["finished"], u["claimed"])
            detail = f"by {u['worker']}" + (f" in {took}" if took.endswith(" s") else "")
        else:
            detail = ""
        notes = [detail, f"attempt {u['attempts']}" if (u["attempts"] or 0) > 1 else "", u["note"] or ""]
        # every value on one line: a newline in an edited row must not print lines of its own
        lines.append(status_line(f"  unit {u['position']:3d} {u['state']:8s} {u['label']}"
                              + "".join(f"; {n}" for n in notes if n)))
    return "\n".join(lines)
