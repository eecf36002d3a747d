"""The pooled benchmark on SQLite (one machine, several processes): the plan's units, claims that
never give one unit to two workers, heartbeats, reclaims, refusals and the report that pools
machines. tests/test_postgres.py runs the same commands on a real PostgreSQL server."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from conftest import record, require
from fwdlib import coordination
from fwdlib.bench import pool as pool_module, workers
from fwdlib.bench.cli import main
from fwdlib.bench.plan import plan, preset_specs
from fwdlib.bench.pool import Pool
from fwdlib.bench.units import plan_difference, plan_record, units_of
from fwdlib.bench.presets import PRESETS
from fwdlib.bench.report import group_rows, markdown


def specs(preset="quick", device="cpu", **settings):
    p = PRESETS[preset]
    return preset_specs(p, p.datasets, protocol="converge", device=device, cuda_graphs=True, **settings)


STUDIED = ["ff", "mf", "cafo-rand", "cafo-dfa"]      # the study's algorithms (the quick preset runs any registered)


def units(seeds=2, device="cpu"):
    return units_of(plan(specs(device=device, names=STUDIED), seeds))


def test_a_unit_is_a_pair_at_one_seed_and_the_same_on_every_device():
    found = units(seeds=2)
    # quick: ff, mf and the two CaFos that share one BP-CNN run (one unit), per seed
    assert sorted(u.label for u in found) == sorted(f"fashion_mnist_sample {r} seed {s}" for s in (0, 1)
                                                    for r in ("ff", "mf", "cafo-dfa/cafo-rand"))
    cafo = next(u for u in found if "cafo" in u.label)
    assert sorted(r.spec.algorithm for r in cafo.runs) == ["bp-cnn", "cafo-dfa", "cafo-rand"]
    assert [u.key for u in found] == [u.key for u in units(seeds=2, device="cuda")]
    assert len({u.key for u in found}) == len(found)


def test_a_worker_with_another_plan_is_told_the_difference():
    mine = plan_record("quick", "converge", specs())
    assert plan_difference(mine, mine) is None
    assert "preset quick, this worker paper" in plan_difference(mine, {**mine, "preset": "paper"})
    assert "torch major version 2, this worker 3" in plan_difference(mine, {**mine, "torch": "3"})
    assert "fwdlib version" in plan_difference(mine, {**mine, "fwdlib": "0.1.0"})
    fewer = plan_record("quick", "converge", [s for s in specs() if s.algorithm in ("mf", "bp-mlp")])
    why = plan_difference(mine, fewer)
    assert "only the study has" in why and "fashion_mnist_sample ff" in why and "only this worker" not in why
    longer = plan_record("quick", "converge", [s.replace(rule=s.rule.__class__(9, patience=2)) for s in specs()])
    assert "rule.epochs: study 6, this worker 9" in plan_difference(mine, longer)


def test_claims_never_hand_out_one_unit_twice_and_the_first_finisher_wins(tmp_path):
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=60)
    plan_units = units(seeds=2)
    assert db.join(plan_record("quick", "converge", specs()), plan_units) == (6, 2)
    claims = [db.claim(f"w{i}") for i in range(6)]
    assert len({c[0] for c in claims}) == 6 and db.claim("w9") is None        # all six held
    unit, token, _ = claims[0]
    assert db.finish(unit, [record("k")], "w0") is None
    assert db.finish(unit, [record("k")], "w1") == "w0"                          # stored once, by w0
    assert not db.beat(unit, token)                                           # the claim is over
    states = {u["unit"]: u["state"] for u in db.units()}
    assert list(states.values()).count("done") == 1 and len(db.records()) == 1
    # more seeds add units and touch none of those there
    assert db.join(plan_record("quick", "converge", specs()), units(seeds=3)) == (3, 3)
    assert {u["unit"]: u["state"] for u in db.units()}[unit] == "done"


def test_rerun_contaminated_plans_again_the_done_units_with_a_spoiled_run(tmp_path):
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=60)
    study = plan_record("quick", "converge", specs())
    db.join(study, units(seeds=1))
    (a, _, _), (b, _, _) = db.claim("w0"), db.claim("w1")
    db.finish(a, [record("k", foreign_load=1.2, foreign_cpu_s=9.0, cpus=2)], "w0")
    db.finish(b, [record("k", foreign_load=0.01, cpus=2)], "w1")
    db.join(study, units(seeds=1))                                         # without the flag: kept
    assert {u["unit"]: u["state"] for u in db.units()}[a] == "done"
    db.join(study, units(seeds=1), rerun_contaminated=True)
    states = {u["unit"]: u for u in db.units()}
    assert states[a]["state"] == "planned" and "--rerun-contaminated" in states[a]["note"]
    assert states[b]["state"] == "done"


def test_a_unit_whose_worker_process_here_is_gone_is_taken_at_once_by_the_tuners_rule(tmp_path):
    """One rule for both worker systems (coordination.py): a worker of this machine whose process
    is gone leaves its work to the next claim at once, as a tuning trial's does."""
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=600)
    db.join(plan_record("quick", "converge", specs()), units(seeds=1)[:2])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    ghost = f"{socket.gethostname()}:{gone.pid}"
    assert coordination.local_worker_gone(ghost)
    unit, _, _ = db.claim(ghost)
    again, _, note = db.claim("other-laptop:5")              # long before the grace period ends
    assert again == unit and note == f"reclaimed from {ghost} (its process on this machine is gone)"
    live, _, _ = db.claim(f"{socket.gethostname()}:1")          # a live process here (init)
    assert live != unit and db.claim("third:7") is None        # both held: a live worker's unit is kept
    assert {u["unit"]: u["worker"] for u in db.units()} == {unit: "other-laptop:5", live: f"{socket.gethostname()}:1"}


def test_a_live_worker_of_this_process_or_a_server_study_keeps_its_unit(tmp_path):
    """The immediate takeover is for this machine's own file and a gone process only: this very
    process (two workers in one notebook) is alive, and on a database server another machine may
    share this one's host name (a cloned lab image), so there only the heartbeat tells."""
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=600)
    db.join(plan_record("quick", "converge", specs()), units(seeds=1)[:1])
    db.claim(f"{socket.gethostname()}:{os.getpid()}")
    assert db.claim("other:1") is None
    assert coordination.single_machine(f"sqlite:///{tmp_path}/s.db") and coordination.single_machine("journal:x.log")
    assert not coordination.single_machine("postgresql+psycopg://ann:pw@db.lab/class")


@settings(max_examples=300, deadline=None)
@given(beat=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                      st.floats(min_value=-200, max_value=200).map(lambda d: 1000.0 + d)),
       grace=st.sampled_from([3.0, 120.0]))
def test_the_silence_rule_reads_the_same_in_python_and_in_sql(beat, grace):
    """`silent` (the statuses) and `silent_clause` (a claim's query) are one rule, for any stored heartbeat."""
    from sqlalchemy import Column, Float, MetaData, Table, create_engine, insert, select
    table = Table("beats", MetaData(), Column("heartbeat", Float))
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as c:
        c.execute(insert(table).values(heartbeat=beat))
        stored = c.execute(select(table.c.heartbeat)).scalar()      # SQLite stores NaN as NULL
        in_sql = c.execute(select(coordination.silent_clause(table.c.heartbeat, 1000.0, grace))).scalar()
    assert bool(in_sql) == coordination.silent(stored, 1000.0, grace) == coordination.silent(beat, 1000.0, grace)


def test_a_silent_unit_is_reclaimed_after_the_grace_period_and_failed_after_max_attempts(tmp_path):
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=5)
    db.join(plan_record("quick", "converge", specs()), units(seeds=1)[:1])
    unit, token, _ = db.claim("dead")
    assert db.claim("live") is None                                          # still within its grace
    silence = db.units()[0]["now"] - 6
    with db.engine.begin() as c:
        c.execute(pool_module.UNITS.update().values(heartbeat=silence))
    again, new_token, note = db.claim("live")
    assert again == unit and new_token != token and "reclaimed from dead" in note
    assert not db.beat(unit, token) and db.beat(unit, new_token)             # the dead claim is void
    for attempt in range(coordination.MAX_ATTEMPTS - 2):
        with db.engine.begin() as c:
            c.execute(pool_module.UNITS.update().values(heartbeat=silence))
        assert db.claim(f"w{attempt}")[0] == unit
    with db.engine.begin() as c:
        c.execute(pool_module.UNITS.update().values(heartbeat=silence))
    assert db.claim("another") is None                                       # three silent workers: failed
    assert "fell silent 3 times" in db.units()[0]["note"] and db.units()[0]["state"] == "failed"
    db.release(unit, new_token)                                              # a stale token releases nothing
    assert db.units()[0]["state"] == "failed"


def test_a_joiner_with_another_preset_is_refused_and_nothing_changes(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    assert main(["--algorithms", "mf", "--storage", url, "--study", "lab", "--plan-only", "--seeds", "2",
                 "--out", str(tmp_path / "a")]) == 0
    def rows():
        return [{k: v for k, v in u.items() if k != "now"} for u in Pool(url, "lab").units()]

    before = rows()
    assert main(["--algorithms", "mf", "--epochs", "3", "--storage", url, "--study", "lab",
                 "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "plan differs from study 'lab'" in err and "rule.epochs: study 6, this worker 3" in err
    assert rows() == before and not (tmp_path / "b" / "results.jsonl").stat().st_size


def test_flags_of_the_pooled_benchmark_need_a_storage_and_a_study(tmp_path, capsys):
    for argv, words in ((["--status"], "--status needs --storage URL and --study NAME"),
                        (["--storage", "sqlite:///x.db"], "--storage needs --study NAME")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and words in capsys.readouterr().err
    url = "postgresql+psycopg://ann:hunter2-pw@127.0.0.1:1/db"
    assert main(["--status", "--storage", url, "--study", "lab"]) == 2
    err = capsys.readouterr().err
    assert "hunter2-pw" not in err and "ann:***@" in err
    assert main(["--status", "--storage", f"sqlite:///{tmp_path}/none.db", "--study", "lab"]) == 2
    assert "no study 'lab'" in capsys.readouterr().err and not (tmp_path / "none.db").exists()


def bench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fwdlib", "bench", "--no-co2", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "FWDLIB_QUICK": "1"})


def test_two_workers_fill_one_study_and_its_report_equals_its_export(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    args = ["--algorithms", "mf", "--epochs", "2", "--seeds", "4", "--storage", url, "--study", "lab"]
    workers = [subprocess.Popen([sys.executable, "-m", "fwdlib", "bench", "--no-co2", *args, "--out", f"w{i}"],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "FWDLIB_QUICK": "1"}) for i in (1, 2)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    db = Pool(url, "lab")
    assert [u["state"] for u in db.units()] == ["done"] * 4
    records = db.records()
    assert len(records) == 8 and len({r["key"] for r in records}) == 8
    assert all(r["pool"]["study"] == "lab" and r["machine"]["cpu"] for r in records)
    ran = [json.loads(line)["key"] for i in (1, 2) for line in (tmp_path / f"w{i}" / "results.jsonl").read_text().splitlines()]
    assert sorted(ran) == sorted(r["key"] for r in records)                  # each run trained once
    assert bench("--storage", url, "--study", "lab", "--export", "exported", cwd=tmp_path).returncode == 0
    assert bench("--storage", url, "--study", "lab", "--export", "exported", cwd=tmp_path).returncode == 0   # idempotent
    assert len((tmp_path / "exported" / "results.jsonl").read_text().splitlines()) == 8
    assert bench("--storage", url, "--study", "lab", "--report-only", "--out", "from-db", cwd=tmp_path).returncode == 0
    assert bench("--report-only", "--out", "exported", cwd=tmp_path).returncode == 0
    for name in ("report.md", "report.csv"):
        assert (tmp_path / "from-db" / name).read_text() == (tmp_path / "exported" / name).read_text()
    assert "# fwdlib benchmark: study lab, pooled" in (tmp_path / "from-db" / "report.md").read_text()
    status = bench("--status", "--storage", url, "--study", "lab", cwd=tmp_path).stdout
    assert "4 done" in status and status.count(" done ") == 4


def test_a_lost_database_loses_nothing_and_the_same_command_uploads_it(tmp_path, monkeypatch, capsys):
    url, out = f"sqlite:///{tmp_path}/s.db", tmp_path / "w"
    argv = ["--algorithms", "mf", "--epochs", "1", "--seeds", "2", "--storage", url, "--study", "lab", "--out",
            str(out), "--no-co2"]
    real_finish = Pool.finish

    def lost(self, *args, **kwargs):
        raise pool_module.DatabaseLost(f"the study's database {url} failed (OperationalError: gone)")

    monkeypatch.setattr(Pool, "finish", lost)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "run the same command again: it uploads them" in err and f"fwdlib bench import {out}" in err
    assert len((out / "results.jsonl").read_text().splitlines()) == 2          # the unit's two runs, kept
    assert [u["state"] for u in Pool(url, "lab").units()] == ["running", "planned"]
    monkeypatch.setattr(Pool, "finish", real_finish)
    assert main(argv[:-1] + ["--no-co2", "--grace", "30"]) == 0   # its own silent unit: uploaded, not rerun
    assert "uploaded 1 unit(s) finished earlier" in capsys.readouterr().out
    assert [u["state"] for u in Pool(url, "lab").units()] == ["done", "done"]
    assert len((out / "results.jsonl").read_text().splitlines()) == 4          # only the second unit trained


def test_the_report_pools_paired_ratios_and_splits_absolute_costs_by_machine_kind():
    def record(seed, algorithm, entry, time_s, cpu):
        return {"key": f"{entry}{seed}{cpu}", "status": "ok", "entries": [entry], "test_acc": 0.8, "epochs": 3,
                "train_time_s": time_s, "energy_measured_j": None, "energy_estimated_j": 1.0, "history": [],
                "machine": {"host": cpu, "cpu": cpu, "gpu": None},
                "spec": {"dataset": "fashion_mnist_sample", "algorithm": algorithm, "config": {"hidden": [8]},
                         "batch_size": 128, "epochs": 3, "monitor": "val_acc", "patience": 2, "min_delta": 0.001,
                         "protocol": "converge", "augment": None, "device": "cpu", "cuda_graphs": True, "seed": seed}}
    records = [r for seed, cpu, scale in ((0, "laptop", 10), (1, "laptop", 10), (2, "server", 1))
               for r in (record(seed, "mf", "mf", 0.8 * scale, cpu), record(seed, "bp-mlp", "bp-mlp@mf", scale, cpu))]
    rows = group_rows(records)
    mf = next(r for r in rows if r["entry"] == "mf")
    assert mf["paired"]["train_time_s"]["n"] == 3 and mf["paired"]["train_time_s"]["estimate"] == pytest.approx(0.8)
    assert mf["train_time_s"]["by_machine"] and mf["by_machine"]["laptop"]["train_time_s"]["median"] == 8
    text = markdown(rows, "t")
    assert "Runs from 2 machine(s) of 2 kind(s): laptop; server." in text
    assert "by machine kind (below)" in text and "| fashion_mnist_sample | mf | server | 1 | 0.80" in text


def test_status_lists_every_unit_with_its_worker(tmp_path):
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=5)
    db.join(plan_record("quick", "converge", specs()), units(seeds=1))
    db.claim("ann:12")
    text = workers.status(db)
    assert "preset quick" in text and "2 planned, 1 running, 0 done, 0 failed" in text
    assert "running  fashion_mnist_sample" in text and "worker ann:12 for 0 s" in text


@pytest.mark.slow
def test_status_and_the_report_read_a_study_on_a_read_only_mount(tmp_path):
    """The whole machine read-only (bubblewrap), as a study on a read-only share is: the reading
    commands answer, and say so, without trying to write."""
    require(shutil.which("bwrap") is not None, "bubblewrap is not installed (Debian: apt-get install bubblewrap)")
    url = f"sqlite:///{tmp_path}/s.db"
    db = Pool(url, "lab", heartbeat_s=1, grace_s=5)
    db.join(plan_record("quick", "converge", specs()), units(seeds=1))
    unit, _, _ = db.claim("ann:12")
    db.finish(unit, [record("k")], "ann:12")
    writable = tmp_path / "writable"          # the one place the commands may write: a report's folder
    writable.mkdir()
    read_only = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", str(writable),
                 "--setenv", "MPLCONFIGDIR", str(writable), sys.executable, "-m", "fwdlib", "bench", "--storage", url,
                 "--study", "lab"]
    status = subprocess.run([*read_only, "--status"], capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "2 planned, 0 running, 1 done, 0 failed" in status.stdout, status.stderr
    report = subprocess.run([*read_only, "--report-only", "--out", str(writable / "r")], capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 0 and f"full report: {writable}/r/report.md" in report.stdout, report.stderr
    writer = subprocess.run([*read_only, "--plan-only"], capture_output=True, text=True, timeout=120)
    assert writer.returncode == 2 and "Read-only file system" in writer.stderr         # a writer is told


def test_import_stores_a_machines_own_benchmark_as_whole_units_and_nothing_retrains(tmp_path, capsys):
    url, alone, worker = f"sqlite:///{tmp_path}/s.db", tmp_path / "alone", tmp_path / "worker"
    plan_args = ["--algorithms", "mf", "--epochs", "1", "--no-co2"]
    assert main([*plan_args, "--seeds", "2", "--out", str(alone)]) == 0            # one machine, no study
    extra = json.loads((alone / "results.jsonl").read_text().splitlines()[0])
    extra["spec"]["seed"], extra["key"] = 7, "seed-7-run"                           # a seed the study lacks
    with open(alone / "results.jsonl", "a") as log:
        log.write(json.dumps(extra) + "\n")
    capsys.readouterr()
    study = ["--storage", url, "--study", "lab"]
    assert main([*plan_args, "--seeds", "3", *study, "--import", str(alone)]) == 0
    said = capsys.readouterr().out
    assert "imported 2 unit(s)" in said and "1 record(s) are not in its plan" in said
    assert [u["state"] for u in Pool(url, "lab").units()] == ["done", "done", "planned"]
    assert {u["worker"] for u in Pool(url, "lab").units()[:2]} == {f"imported from {alone}"}
    assert main([*plan_args, "--seeds", "3", *study, "--out", str(worker)]) == 0
    assert len((worker / "results.jsonl").read_text().splitlines()) == 2              # only the third unit trained
    assert main(["--algorithms", "mf", "--epochs", "2", "--no-co2", *study, "--import", str(alone)]) == 2
    assert "plan differs from study 'lab'" in capsys.readouterr().err


def test_a_worker_stopped_by_ctrl_c_any_number_of_times_never_fails_its_unit(tmp_path):
    """Giving a unit back is not falling silent: only silences count towards MAX_ATTEMPTS."""
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=5)
    db.join(plan_record("quick", "converge", specs()), units(seeds=1)[:1])
    for stop in range(coordination.MAX_ATTEMPTS + 2):
        unit, token, _ = db.claim(f"laptop-{stop}")
        db.release(unit, token)
        assert db.units()[0]["state"] == "planned" and db.units()[0]["attempts"] == 0
    unit, token, _ = db.claim("laptop-last")
    assert db.units()[0]["state"] == "running" and db.units()[0]["attempts"] == 1


# ----------------------------------------------------------------------------- bounded calls (issue 40.1)

def test_a_call_that_does_not_answer_is_given_up_after_its_bound():
    started = time.monotonic()
    with pytest.raises(coordination.DatabaseLost, match="did not answer in 0.2 s"):
        coordination.bounded(lambda: time.sleep(3), 0.2, "sqlite:///x.db")
    assert time.monotonic() - started < 1.5
    assert coordination.bounded(lambda: 42, 0.2, "sqlite:///x.db") == 42


@pytest.mark.parametrize("orig,kind", [
    (type("PgError", (Exception,), {"sqlstate": "08006"})("connection lost"), coordination.DatabaseLost),
    (type("PgError", (Exception,), {"sqlstate": "57014"})("canceling statement due to statement timeout"),
     coordination.DatabaseLost),
    (type("PgError", (Exception,), {"sqlstate": "28P01"})("password authentication failed"), coordination.DatabaseRefused),
    (type("PgError", (Exception,), {"sqlstate": "22001"})("value too long"), coordination.DatabaseRefused),
    (type("PgError", (Exception,), {"sqlstate": None})('FATAL:  database "x" does not exist'), coordination.DatabaseRefused),
    (type("PgError", (Exception,), {"sqlstate": None})("connection refused"), coordination.DatabaseLost),
    (type("PgError", (Exception,), {"sqlstate": None})("failed to resolve host 't'"), coordination.DatabaseRefused),
    (type("Sqlite", (Exception,), {"sqlite_errorname": "SQLITE_BUSY"})("database is locked"), coordination.DatabaseLost),
    (type("Sqlite", (Exception,), {"sqlite_errorname": "SQLITE_READONLY"})("readonly database"),
     coordination.DatabaseRefused),
])
def test_a_refusal_is_told_apart_from_a_lost_database(orig, kind):
    import sqlalchemy.exc
    told = coordination.failure(sqlalchemy.exc.OperationalError("SELECT", {}, orig), "postgresql://u:s3cret@h/db")
    assert type(told) is kind and "s3cret" not in str(told)
    assert ("run the same command again" in str(told) or "check" in str(told) or "longer" in str(told)
            or "read-only" in str(told)) if kind is coordination.DatabaseRefused else "failed" in str(told)
    if "resolve host" in str(orig):
        assert "percent-encoded: %40" in str(told)


def test_a_heartbeat_silent_past_the_grace_interrupts_the_training(tmp_path, monkeypatch):
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=0.5, grace_s=1.5)

    def frozen(*args):
        raise coordination.DatabaseLost("the study's database did not answer in 1 s")
    monkeypatch.setattr(db, "beat", frozen)
    started = time.monotonic()
    beat = db.heartbeat("unit", "token")
    with pytest.raises(KeyboardInterrupt):
        with beat:
            while time.monotonic() - started < 10:      # training
                time.sleep(0.01)
    assert beat.abandoned and "did not answer" in beat.lost and time.monotonic() - started < 2 * db.grace_s


def test_a_refused_heartbeat_stops_the_training_at_once_and_says_it_was_refused(tmp_path, monkeypatch):
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=0.5, grace_s=60)

    def revoked(*args):
        raise coordination.DatabaseRefused("the study's database refused (permission denied for table units)")
    monkeypatch.setattr(db, "beat", revoked)
    beat, started = db.heartbeat("unit", "token"), time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with beat:
            while time.monotonic() - started < 10:
                time.sleep(0.01)
    told = beat.failure("mf seed 0")
    assert time.monotonic() - started < 2 and type(told) is coordination.DatabaseRefused
    assert "permission denied" in str(told) and "heartbeat" not in str(told)


def test_a_worker_started_with_sigint_ignored_is_still_stopped_through_sigterm(tmp_path, monkeypatch):
    """A worker started with `&` from a script has SIGINT ignored: the heartbeat interrupts the
    training through the SIGTERM handler the command installs instead."""
    from fwdlib.launch import Stopped, stop_on_signals
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=0.5, grace_s=1.5)
    monkeypatch.setattr(db, "beat", lambda *a: (_ for _ in ()).throw(coordination.DatabaseLost("gone")))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.monotonic()
    try:
        with pytest.raises(Stopped), stop_on_signals(), db.heartbeat("unit", "token") as beat:
            while time.monotonic() - started < 10:
                time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert beat.abandoned and time.monotonic() - started < 2 * db.grace_s


@pytest.mark.parametrize("heartbeat", [None, float("nan"), 1e300, "ahead"], ids=["null", "nan", "future", "100 s ahead"])
def test_a_unit_whose_stored_heartbeat_is_no_time_is_reclaimed_and_listed(tmp_path, heartbeat):
    from sqlalchemy import update
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=3)
    db.join(plan_record("quick", "converge", specs()), units(seeds=1)[:1])
    unit, _, _ = db.claim("ann:1")
    heartbeat = time.time() + 100 if heartbeat == "ahead" else heartbeat     # ahead of now, not of collection
    db._call(lambda c: c.execute(update(pool_module.UNITS).values(heartbeat=heartbeat, claimed=None)))
    text = workers.status(db)
    assert "heartbeat an unknown time (no valid time stored) ago (silent past the grace period" in text
    assert db.claim("ben:2")[0] == unit                            # reclaimed at once, not waited on forever


def test_an_sqlite_uri_spelling_names_the_same_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                 # where a misread "file:" folder would appear
    url = f"sqlite:///file:{tmp_path}/u.db?uri=true"
    study = ["--storage", url, "--study", "lab"]
    assert main(["--algorithms", "mf", "--seeds", "1", "--epochs", "1", *study, "--plan-only",
                 "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "u.db").exists() and not any(p.name.startswith("file:") for p in tmp_path.rglob("*"))
    assert main([*study, "--status"]) == 0 and "1 units of (pair, seed)" in capsys.readouterr().out


def test_the_tuner_and_the_pooled_benchmark_wait_and_report_alike(tmp_path, monkeypatch):
    """coordination.Waiter and status_line: whom a worker waits for is said once, on one line, and a
    trial's worker name with a newline (an edited storage) prints no line of its own in tune status."""
    import optuna

    from fwdlib.tune.workers import status as tune_status
    said = []
    monkeypatch.setattr(coordination.time, "sleep", lambda s: said.append(f"slept {s}"))
    waiter = coordination.Waiter("bench", 2, "it comes back", lambda text, **_: said.append(text))
    waiter.wait([(1, "unit a", "w1"), (2, "unit b", "w2\nforged")])
    waiter.wait([(1, "unit a", "w1")])
    assert said == ["bench: waiting for unit a of worker w1; it comes back",
                    "bench: waiting for unit b of worker w2\\nforged; it comes back", "slept 2", "slept 2"]
    url = f"sqlite:///{tmp_path}/t.db"
    study = optuna.create_study(study_name="s", storage=url)
    trial = study.ask()
    trial.set_user_attr("worker", "lab1\n  trial   9 COMPLETE worker forged")
    text = tune_status("s", url)
    assert text.count("\n") == 1 and "running for" in text and "\\n" in text
