"""Faults as a lab's operator meets them, one row each: what is done to the kit, the exit code it
must give, a phrase of its message, and what must survive on disk. Rows 1-10 are the second
round's (issue 23), rows 40.N the third round's (issue 40, item N); the rest are the first round's
cases, kept so that they stay passing. What needs a real server or mount lives beside its kind:
a frozen PostgreSQL (40.1) and a refusing one (40.12) in tests/test_postgres.py, a read-only
mount in tests/test_pool.py, any hostile value in any record field in tests/test_records.py.

Every command runs in this process (`main(argv)`), except the signal rows, which need a process
to signal. No row may end in a traceback.
"""
from __future__ import annotations

import errno
import re
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
import pytest
import sqlalchemy.exc

from fwdlib import bench, data, launch, train, tune
from fwdlib.algorithms import mf
from fwdlib.bench import results as results_module

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = data.SAMPLE_NAME
UNENCODED = "Zq!p@ss/w%rd:9"        # a password typed into a URL as it is: an @, a / and a % in it
Q = ["--preset", "quick", "--algorithms", "mf", "--seeds", "1", "--epochs", "1", "--no-co2", "--device", "cpu"]
TUNE = ["--algorithm", "mf", "--epochs", "1", "--set", "hidden=[32]", "--trials", "1", "--no-figures",
        "--pruner", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A results folder holding the quick preset's mf pair, one seed, one epoch."""
    out = tmp_path_factory.mktemp("finished")
    assert bench.main([*Q, "--out", str(out)]) == 0
    return out / "results.jsonl"


@dataclass
class Row:
    name: str
    prepare: Callable        # (tmp_path, monkeypatch, finished) -> argv, its first word "bench" or "tune"
    code: int
    phrase: str
    survives: Callable | None = None     # (tmp_path) -> None, asserting what is on disk


def copy_results(tmp_path: Path, finished: Path, content: bytes | None = None) -> Path:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "results.jsonl").write_bytes(finished.read_bytes() if content is None else content)
    return out


def one_line_without_newline(tmp_path, monkeypatch, finished):
    line = finished.read_bytes().split(b"\n")[0]
    out = copy_results(tmp_path, finished, line)
    return ["bench", "--report-only", "--out", str(out)]


def one_line_then_run(tmp_path, monkeypatch, finished):
    lines = finished.read_bytes().split(b"\n")
    copy_results(tmp_path, finished, lines[0] + b"\n" + lines[1])        # the second record lacks its \n
    return ["bench", *Q, "--out", str(tmp_path / "out")]


def results_file_unwritable(tmp_path, monkeypatch, finished):
    out = copy_results(tmp_path, finished, b"")
    real_open = os.open

    def refuse(path, flags, *args):       # what chattr +i or a read-only file gives, also as root
        if str(path).endswith("results.jsonl") and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real_open(path, flags, *args)

    monkeypatch.setattr(results_module.os, "open", refuse)
    monkeypatch.setattr(bench.runner, "run_one", never_trains)
    return ["bench", *Q, "--out", str(out)]


def never_trains(*args, **kwargs):
    raise AssertionError("a run trained although the environment could not keep its record")


def disk_nearly_full(tmp_path, monkeypatch, finished):
    out = copy_results(tmp_path, finished, b"")

    def no_room(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results_module.os, "posix_fallocate", no_room)
    monkeypatch.setattr(bench.runner, "run_one", never_trains)
    return ["bench", *Q, "--out", str(out)]


def unparsable_url(tmp_path, monkeypatch, finished):
    return ["tune", "--status", "--study", "s", "--storage", "postgresql+psycopg://u:s3cret@host:abc/db"]


def lower_case_percent_encoding(tmp_path, monkeypatch, finished):
    return ["tune", "--status", "--study", "s", "--storage", "postgresql+psycopg://u:se%2fcret@127.0.0.1:9/db"]


def mistyped_flag_next_to_a_url(tmp_path, monkeypatch, finished):
    return ["tune", "--algorithm", "mf", "--storge", "postgresql+psycopg://u:s3cret@host/db"]


def trial_of_this_pid(tmp_path, monkeypatch, finished):
    storage = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="s", storage=tune.open_storage(storage), direction="maximize")
    left = study.ask()                     # left RUNNING under this very process id, as after a restart
    left.set_user_attr("worker", tune.worker_id())
    left.suggest_float("lr", 1e-4, 1e-3, log=True)
    return ["tune", *TUNE, "--storage", storage, "--study", "s", "--out", str(tmp_path / "best.json")]


def wrong_types(tmp_path, monkeypatch, finished):
    good, *_ = [json.loads(line) for line in finished.read_text().splitlines()]
    bad = [dict(good, test_acc=None), dict(good, test_acc="0.9"), dict(good, entries="mf"),
           dict(good, spec=dict(good["spec"], algorithm="rnn"), entries=["rnn"])]
    content = "".join(json.dumps(r) + "\n" for r in [*bad, good]).encode()
    return ["bench", "--report-only", "--out", str(copy_results(tmp_path, finished, content))]


def every_trial_diverges(tmp_path, monkeypatch, finished):
    monkeypatch.setattr(tune.search, "fit_spec", diverge)
    return ["tune", *TUNE, "--storage", f"sqlite:///{tmp_path}/s.db", "--out", str(tmp_path / "best.json")]


def diverge(model, data, spec, **options):
    raise train.TrainingDiverged("training diverged: loss nan at epoch 1")


def out_under_a_file(tmp_path, monkeypatch, finished):
    (tmp_path / "notes.txt").write_text("x")
    return ["tune", *TUNE, "--storage", f"sqlite:///{tmp_path}/s.db", "--out", str(tmp_path / "notes.txt" / "b.json")]


def storage_full(tmp_path, monkeypatch, finished):
    def full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr(optuna, "create_study", full)
    return ["tune", *TUNE, "--storage", f"sqlite:///{tmp_path}/s.db", "--out", str(tmp_path / "b.json")]


def missing_data_before_the_study(tmp_path, monkeypatch, finished):
    return ["tune", "--algorithm", "mf", "--dataset", "mnist", "--data-root", str(tmp_path / "nothing"),
            "--storage", f"sqlite:///{tmp_path}/s.db", "--trials", "1"]


def status_of_a_mistyped_path(tmp_path, monkeypatch, finished):
    return ["tune", "--status", "--study", "s", "--storage", f"sqlite:///{tmp_path}/studeis.db"]


def empty_algorithms(tmp_path, monkeypatch, finished):
    monkeypatch.setattr(bench.runner, "run_one", never_trains)
    return ["bench", "--algorithms", "", "--out", str(tmp_path / "out")]


def data_root_for_the_sample(tmp_path, monkeypatch, finished):
    return ["bench", *Q, "--data-root", str(tmp_path), "--out", str(copy_results(tmp_path, finished))]


def nothing_present(tmp_path, monkeypatch, finished):
    monkeypatch.delenv("FWDLIB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data.sources, "_download", refuse_download)
    return ["bench", "--preset", "paper", "--dataset", "mnist,cifar10", "--out", str(tmp_path / "out"),
            "--device", "cpu"]


def refuse_download(name, cache):
    raise data.DataError(f"{name}: no network here")


def empty_stale_lock(tmp_path, monkeypatch, finished):
    out = copy_results(tmp_path, finished)
    lock = out / ".lock"
    lock.write_text("")
    old = time.time() - 60
    os.utime(lock, (old, old))
    return ["bench", *Q, "--out", str(out)]


def second_writer(tmp_path, monkeypatch, finished):
    out = copy_results(tmp_path, finished)
    (out / ".lock").write_text(str(os.getppid()))          # a live process holds it
    return ["bench", *Q, "--out", str(out)]


def out_is_a_file(tmp_path, monkeypatch, finished):
    (tmp_path / "out").write_text("x")
    return ["bench", *Q, "--out", str(tmp_path / "out")]


def corrupt_params(tmp_path, monkeypatch, finished):
    (tmp_path / "p.json").write_text("{not json")
    return ["bench", *Q, "--params", str(tmp_path / "p.json"), "--out", str(copy_results(tmp_path, finished))]


def torn_last_record(tmp_path, monkeypatch, finished):
    out = copy_results(tmp_path, finished, finished.read_bytes() + b'{"key": "half a rec')
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / f".reserve-{dead.pid}").write_bytes(bytes(1024))      # the reserve of the killed run
    return ["bench", *Q, "--out", str(tmp_path / "out")]


def unchanged(tmp_path, finished_bytes):
    assert (tmp_path / "out" / "results.jsonl").read_bytes() == finished_bytes


def kept_whole(tmp_path):
    raw = (tmp_path / "out" / "results.jsonl").read_bytes()
    assert raw.endswith(b"\n") and len(raw.splitlines()) == 2, raw[-200:]


def no_study_stored(tmp_path):
    assert not (tmp_path / "s.db").exists() and not (tmp_path / "studeis.db").exists()


def one_line_kept(tmp_path):
    raw = (tmp_path / "out" / "results.jsonl").read_bytes()
    assert raw.count(b"\n") == 0 and raw.startswith(b'{"key": ')       # --report-only wrote nothing


def lock_released_results_kept(tmp_path):
    out = tmp_path / "out"
    assert not (out / ".lock").exists()
    assert (out / "results.jsonl").read_text().count("\n") == 2


def empty_results(tmp_path):
    assert (tmp_path / "out" / "results.jsonl").read_bytes() == b""


def retried_own_trial(tmp_path):
    trials = optuna.load_study(study_name="s", storage=tune.open_storage(f"sqlite:///{tmp_path}/s.db")).trials
    assert trials[0].state.name == "FAIL" and trials[1].user_attrs["retry_of"] == 0
    assert json.loads((tmp_path / "best.json").read_text())["finished_trials"] == 1


def torn_record_dropped(tmp_path):
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["status"] == "ok" for line in lines)
    assert not list((tmp_path / "out").glob(".reserve-*")), "the killed run's reserve was left behind"


def keyword_dsn(tmp_path, monkeypatch, finished):
    return ["bench", "--status", "--study", "s", "--storage", "host=127.0.0.1 port=9 password=s3cret dbname=d"]


def url_without_a_scheme(tmp_path, monkeypatch, finished):
    return ["tune", "--status", "--study", "s", "--storage", "u:s3cret@127.0.0.1:9/db"]


def unencoded_at_in_a_password(tmp_path, monkeypatch, finished):
    return ["bench", "--status", "--study", "s", "--storage", f"postgresql+psycopg://u:{UNENCODED}@127.0.0.1:9/db"]


def seeds_beyond_any_study(tmp_path, monkeypatch, finished):
    return ["bench", *Q, "--seeds", "100000000", "--out", str(copy_results(tmp_path, finished))]


def params_from_a_device(tmp_path, monkeypatch, finished):
    return ["bench", *Q, "--params", "/dev/zero", "--out", str(copy_results(tmp_path, finished))]


def lock_of_a_reused_process_id(tmp_path, monkeypatch, finished):
    out = copy_results(tmp_path, finished)
    (out / ".lock").write_text(f"{os.getppid()} 1")     # a live process, but not the one that started at tick 1
    return ["bench", *Q, "--out", str(out)]


def import_from_a_named_pipe(tmp_path, monkeypatch, finished):
    (tmp_path / "w").mkdir()
    os.mkfifo(tmp_path / "w" / "results.jsonl")
    return ["bench", *Q, "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s", "--import", str(tmp_path / "w")]


def infinite_heartbeat(tmp_path, monkeypatch, finished):
    return ["bench", *Q, "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s", "--heartbeat", "1e10",
            "--grace", "inf", "--out", str(tmp_path / "out")]


def grace_under_three_heartbeats(tmp_path, monkeypatch, finished):
    return ["tune", *TUNE, "--storage", f"sqlite:///{tmp_path}/s.db", "--heartbeat", "1", "--grace", "2",
            "--out", str(tmp_path / "t")]


def ctrl_c_in_a_run(tmp_path, monkeypatch, finished):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt            # Python's own, with no message (not the kit's Stopped)
    monkeypatch.setattr("fwdlib.bench.cli.run", interrupted)
    return ["bench", *Q, "--out", str(copy_results(tmp_path, finished))]


def status_of_a_database_that_does_not_answer(tmp_path, monkeypatch, finished):
    return ["bench", "--status", "--study", "s", "--storage", "postgresql+psycopg://u:s3cret@127.0.0.1:9/db"]


def hostile_import(tmp_path, monkeypatch, finished):
    """A machine's folder whose results.jsonl holds, before its good records, one record of each
    hostile kind the third round tried."""
    good = [json.loads(line) for line in finished.read_text().splitlines()]
    hostile = [dict(good[0], history="epoch 1: 0.9"), dict(good[0], train_memory_bytes=10**400),
               dict(good[0], machine={"host": ["a", "b"]}), dict(good[0], machine="x"), dict(good[0], pool="x"),
               dict(good[0], spec={k: v for k, v in good[0]["spec"].items() if k != "epochs"}),
               dict(good[0], train_time_s=float("nan"))]
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*hostile, *good]))
    return ["bench", *Q, "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s", "--import", str(folder)]


def study_still_reports(tmp_path):
    study = ["--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s"]
    assert bench.main([*study, "--status"]) == 0
    assert bench.main([*study, "--report-only", "--out", str(tmp_path / "r")]) == 0


def worker_on_an_edited_study(tmp_path, monkeypatch, table: str, **values) -> list[str]:
    """A worker's command on a study whose `table` (STUDIES or UNITS) was edited by hand to `values`
    after --plan-only made it; nothing may train."""
    from sqlalchemy import update

    from fwdlib.bench import pool
    study = ["--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s"]
    assert bench.main([*Q, *study, "--plan-only", "--out", str(tmp_path / "o")]) == 0
    pool.Pool(study[1], "s")._call(lambda c: c.execute(update(getattr(pool, table)).values(**values)))
    monkeypatch.setattr(bench.runner, "run_one", never_trains)
    return ["bench", *Q, *study, "--out", str(tmp_path / "out")]


def every_unit_failed_silent(tmp_path, monkeypatch, finished):
    return worker_on_an_edited_study(tmp_path, monkeypatch, "UNITS", state="failed",
                                     note="its worker fell silent 3 times; rerun with --retry-failed")


def nan_in_a_record(tmp_path, monkeypatch, finished):
    good, *rest = [json.loads(line) for line in finished.read_text().splitlines()]
    content = json.dumps(dict(good, train_time_s=float("nan"))) + "\n" + "".join(json.dumps(r) + "\n" for r in rest)
    return ["bench", "--report-only", "--out", str(copy_results(tmp_path, finished, content.encode()))]


def study_name_with_a_newline(tmp_path, monkeypatch, finished):
    return ["bench", *Q, "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "lab\nunit 0 done", "--status"]


def study_name_too_long(tmp_path, monkeypatch, finished):
    return ["bench", *Q, "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "x" * 201, "--plan-only"]


def export_to_a_file(tmp_path, monkeypatch, finished):
    study = ["--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s"]
    assert bench.main([*Q, *study, "--import", str(copy_results(tmp_path, finished))]) == 0
    (tmp_path / "a-file").write_text("x")
    return ["bench", *study, "--export", str(tmp_path / "a-file")]


def export_of_a_missing_study(tmp_path, monkeypatch, finished):
    return ["bench", "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s", "--export", str(tmp_path / "exp")]


def no_export_folder(tmp_path):
    assert not (tmp_path / "exp").exists() and not (tmp_path / "s.db").exists()


def status_of_a_typo_in_another_spelling(tmp_path, monkeypatch, finished):
    return ["bench", "--storage", f"sqlite+pysqlite:///{tmp_path}/typo.db", "--study", "s", "--status"]


def no_typo_file(tmp_path):
    assert not (tmp_path / "typo.db").exists()


def damaged_plan(tmp_path, monkeypatch, finished):
    return worker_on_an_edited_study(tmp_path, monkeypatch, "STUDIES", plan='{"preset": "quick"}')


def seeds_beyond_the_bound_in_the_table(tmp_path, monkeypatch, finished):
    return worker_on_an_edited_study(tmp_path, monkeypatch, "UNITS", seed=2**31 - 1)


def edited_unit_key(tmp_path, monkeypatch, finished):
    return worker_on_an_edited_study(tmp_path, monkeypatch, "UNITS", unit="zzzz")


def forged_lines_in_a_failed_unit(tmp_path, monkeypatch, finished):
    return worker_on_an_edited_study(tmp_path, monkeypatch, "UNITS", state="failed",
                                     label="L\nerror: forged label", note="n\nerror: forged note")


def grace_beyond_a_week(tmp_path, monkeypatch, finished):
    return ["tune", *TUNE, "--storage", f"sqlite:///{tmp_path}/s.db", "--grace", "1e14"]


def argparse_error_with_a_password_in_a_flag(tmp_path, monkeypatch, finished):
    return ["bench", "--study", "x", "--storage-url=postgresql+psycopg://u:se cret@127.0.0.1:9/db"]


def argparse_error_with_half_a_password(tmp_path, monkeypatch, finished):
    return ["bench", "--study", "x", "--storage", "postgresql+psycopg://u:se", "cret@127.0.0.1:9/db"]


def argparse_error_with_a_spaced_password(tmp_path, monkeypatch, finished):
    return ["bench", "--storge", "postgresql+psycopg://u:se cret@127.0.0.1:9/db", "--study", "s"]


HELD = []      # a connection holding a study's write lock while a row's command runs


def status_while_a_writer_holds_the_lock(tmp_path, monkeypatch, finished):
    import sqlite3
    argv = [*Q, "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s"]
    assert bench.main([*argv, "--plan-only", "--out", str(tmp_path / "o")]) == 0
    writer = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")                    # as a worker claiming a unit holds it
    HELD.append(writer)
    return ["bench", "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s", "--status", "--grace", "3",
            "--heartbeat", "1"]


def lock_let_go(tmp_path):
    HELD.pop().close()


def study_in_memory(tmp_path, monkeypatch, finished):
    return ["bench", *Q, "--storage", "sqlite://", "--study", "s", "--out", str(tmp_path / "out")]


def status_in_a_missing_folder(tmp_path, monkeypatch, finished):
    return ["bench", "--storage", f"sqlite:///{tmp_path}/nowhere/s.db", "--study", "s", "--status"]


def no_folder_made(tmp_path):
    assert not (tmp_path / "nowhere").exists()


def lock_released(tmp_path):
    assert not (tmp_path / "out" / ".lock").exists()


ROWS = [
    # --- third round (issue 40): its item number first
    Row("40.2 a libpq keyword DSN keeps its password hidden", keyword_dsn, 2, "password=***"),
    Row("40.2 a URL without a scheme keeps its password hidden", url_without_a_scheme, 2, "u:***@127.0.0.1:9/db"),
    Row("40.2 a password with an unencoded @ and / stays hidden whole", unencoded_at_in_a_password, 2,
        "u:***@127.0.0.1:9/db"),
    Row("40.7 --seeds beyond any study is refused before planning", seeds_beyond_any_study, 2,
        "--seeds must be from 1 to"),
    Row("40.7 --params that is a device is refused, not read", params_from_a_device, 2, "is a device, not a file"),
    Row("40.8 a lock whose process id now belongs to another process is taken over", lock_of_a_reused_process_id, 0,
        "now belongs to another process", lock_released),
    Row("40.9 a plain Ctrl-C says what happened", ctrl_c_in_a_run, 130, "bench: interrupted; every finished run"),
    Row("40.10 --import of a named pipe is refused, not waited on", import_from_a_named_pipe, 2,
        "is a named pipe, not a file", no_study_stored),
    Row("40.11 an endless heartbeat or grace is refused", infinite_heartbeat, 2, "a heartbeat is from"),
    Row("40.11 a grace shorter than three heartbeats is refused", grace_under_three_heartbeats, 2,
        "at least three heartbeats"),
    Row("40.1 --status of a database that does not answer says so, and not that it uploads",
        status_of_a_database_that_does_not_answer, 2, "Nothing was changed; run the same command again when"),
    Row("40.3 --import of hostile records skips each, naming its line and field; the study still reports",
        hostile_import, 2, "line 1: history is not a list", study_still_reports),
    Row("40.3 a record's number too large is named", hostile_import, 2, "line 2: train_memory_bytes is too large"),
    Row("40.4 --import of a record whose machine is not a mapping is a message, not a traceback", hostile_import, 2,
        "line 4: machine is not a mapping"),
    Row("40.4 --import of a spec without epochs is named", hostile_import, 2, "line 6: spec.epochs is missing"),
    Row("40.4 --import says what was skipped and what to do", hostile_import, 2,
        "import skipped 7 line(s)"),
    Row("40.5 units failed without a record end the worker with exit 1 and the fix", every_unit_failed_silent, 1,
        "failed without a record"),
    Row("40.6 a NaN measurement is skipped, never a median", nan_in_a_record, 0, "line 1: train_time_s is not finite"),
    Row("40.12 a newline in a study's name is refused", study_name_with_a_newline, 2, "holds a newline"),
    Row("40.12 a study's name longer than the database holds is refused on SQLite too", study_name_too_long, 2,
        "holds at most 200"),
    Row("40.12 --export's errors name --export", export_to_a_file, 2, "choose another --export"),
    Row("40.12 --status reads while a worker holds the study's write lock (it writes nothing)",
        status_while_a_writer_holds_the_lock, 0, "1 units of (pair, seed)", lock_let_go),
    Row("40.12 --status of a study in a missing folder makes no folder", status_in_a_missing_folder, 2,
        "no study 's'", no_folder_made),
    Row("40.12 a study in this process's memory, which no other worker sees, is refused", study_in_memory, 2,
        "which no other worker sees"),
    Row("40.12 --export of a missing study makes no folder", export_of_a_missing_study, 2, "no study 's'",
        no_export_folder),
    Row("40.12 --status of a mistyped SQLite path in another spelling makes no file",
        status_of_a_typo_in_another_spelling, 2, "no study 's'", no_typo_file),
    Row("40.3 a damaged plan in the study's table is named to the worker that meets it", damaged_plan, 2,
        "has a damaged plan (protocol is not text)"),
    Row("40.7 a seed beyond the bound in an edited table is refused before planning",
        seeds_beyond_the_bound_in_the_table, 2, "plans 2147483648 seeds, beyond the kit's"),
    Row("40.2 argparse's error hides a password no pattern finds (a space in it)",
        argparse_error_with_a_spaced_password, 2, "u:***@127.0.0.1:9/db"),
    Row("40.2 argparse hides a password in --flag=URL", argparse_error_with_a_password_in_a_flag, 2,
        "***@127.0.0.1:9/db"),
    Row("40.2 argparse hides the half of a password a space split off", argparse_error_with_half_a_password, 2,
        "unrecognized arguments: ***@127.0.0.1:9/db"),
    Row("40.3 a unit key no plan makes (an edited row) is a message, not a traceback", edited_unit_key, 2,
        "that is not in its plan (an edited row)"),
    Row("40.12 values of an edited row print no lines of their own", forged_lines_in_a_failed_unit, 1,
        "L\\nerror: forged label: n\\nerror: forged note"),
    Row("40.11 a grace beyond a week is refused (a clock cannot hold it)", grace_beyond_a_week, 2,
        "a grace period is at most 604800 s"),
    # --- second round (issue 23)
    Row("1 a complete last line without its newline survives --report-only", one_line_without_newline, 0,
        "# fwdlib benchmark: from results.jsonl", one_line_kept),
    Row("1 a complete last line is given its newline, never cut", one_line_then_run, 0,
        "lacked its newline; added it", kept_whole),
    Row("2 an unwritable results file stops the run before it trains", results_file_unwritable, 2,
        "cannot append to the results file", empty_results),
    Row("3 a nearly full disk stops the run before it trains", disk_nearly_full, 2,
        "has no room for a run's record", empty_results),
    Row("4 an unparsable URL keeps its password hidden", unparsable_url, 2, "u:***@host:abc"),
    Row("4 a lower-case percent-encoded password stays hidden", lower_case_percent_encoding, 2, "u:***@"),
    Row("4 argparse's own error hides the password", mistyped_flag_next_to_a_url, 2, "unrecognized arguments"),
    Row("5 a trial left under this process's own id is retried, not waited for", trial_of_this_pid, 0,
        "retrying interrupted trial(s) [0]", retried_own_trial),
    Row("7 records of the kit's shape with wrong types are skipped by --report-only", wrong_types, 0,
        "line 1: a finished run without test_acc"),
    Row("8 every trial diverged is the algorithm's outcome (exit 1) with advice that fits", every_trial_diverges, 1,
        "trial(s) diverged"),
    Row("8 --out under a file is refused before any trial", out_under_a_file, 2, "is a file", no_study_stored),
    Row("8 a full disk under the storage gets a message, not a traceback", storage_full, 2,
        "could not be written (OperationalError"),
    Row("8 missing data is found before a study is stored", missing_data_before_the_study, 2, "mnist",
        no_study_stored),
    Row("8 --status on a mistyped SQLite path creates nothing", status_of_a_mistyped_path, 2,
        "no storage file", no_study_stored),
    Row("10 an empty --algorithms is refused", empty_algorithms, 2, "--algorithms is empty"),
    Row("10 --data-root for the embedded sample says it is not used", data_root_for_the_sample, 0,
        "--data-root is not used for fashion_mnist_sample"),
    Row("10 nothing present keeps each dataset's whole reason", nothing_present, 2, "Places tried"),
    Row("10 an empty lock left by a crash is taken over with a line", empty_stale_lock, 0,
        "left empty 60 s ago by a crash"),
    # --- first round, kept passing
    Row("a second writer is refused", second_writer, 2, "another benchmark (process"),
    Row("an OUT that is a file is refused", out_is_a_file, 2, "is a file"),
    Row("a params file that is not JSON is refused", corrupt_params, 2, "not valid JSON"),
    Row("a torn last record is dropped and its run trains again", torn_last_record, 0,
        "dropped an unfinished last record", torn_record_dropped),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fault(row, tmp_path, monkeypatch, capsys, finished):
    monkeypatch.chdir(tmp_path)
    argv = row.prepare(tmp_path, monkeypatch, finished)
    command = {"bench": bench.main, "tune": tune.main}[argv[0]]
    try:
        code = command(argv[1:])
    except SystemExit as exit_:            # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == row.code, (out[-2000:], err[-2000:])
    assert row.phrase in out + err, (out[-2000:], err[-2000:])
    assert "Traceback" not in err and "forged" not in err.replace("\\nerror: forged", "")
    for secret in ("s3cret", "se%2fcret", "se/cret", "se%2Fcret", UNENCODED, "ss/w%rd", "se cret"):
        assert secret not in out + err
    if row.survives:
        row.survives(tmp_path)


# ----------------------------------------------------------------------------- signals (row 6)

@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_6_a_signal_stops_the_benchmark_with_one_line_and_frees_the_lock(tmp_path, signum):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fwdlib", "bench", "--preset", "quick", "--algorithms", "mf", "--seeds", "3",
           "--epochs", "2", "--no-co2", "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "FWDLIB_QUICK": "0"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    results = out / "results.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and not (results.exists() and results.read_text().count("\n") >= 1):
        time.sleep(0.05)
    proc.send_signal(signum)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "To resume, run the same command again" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (out / ".lock").exists(), "the lock was left behind"
    kept = results.read_text()
    assert kept.endswith("\n") and kept.count("\n") >= 1


# ----------------------------------------------------------------------------- rows that are not commands

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_40_9_a_signal_while_the_command_imports_ends_it_with_one_line(tmp_path, monkeypatch, capsys, signum):
    """fwdlib.launch: a signal that arrives while the command's modules load (torch takes seconds) is
    held until the imports end (raised inside torch's C++ import, it aborted the process), then ends
    the command with one line."""
    done = tmp_path / "imported"
    name = f"slow_to_import_{int(signum)}"          # imported whole now, so one module per case
    (tmp_path / f"{name}.py").write_text(f"import os, time\nos.kill(os.getpid(), {int(signum)})\n"
                                         f"time.sleep(1)\nopen({str(done)!r}, 'w').close()\n"
                                         "def main(argv):\n    raise SystemExit('main ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # as in a terminal: a shell's background job (`make unit &`) starts with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        assert launch.launch("bench", name) == 128 + signum
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert done.exists(), "the signal cut the import short"
    assert time.monotonic() - started < 5 and err.strip().count("\n") == 0 and "Traceback" not in err
    assert err.strip() == f"bench: {'interrupted' if signum == signal.SIGINT else 'stopped by SIGTERM'} while " \
                          "starting; nothing was run"
    assert signal.getsignal(signal.SIGTERM) is not launch._stop          # the handler is given back


def test_40_9_an_ignored_sigint_stays_ignored_while_the_command_imports(tmp_path, monkeypatch):
    """A worker started with `&` from a script ignores SIGINT: holding signals during the imports
    must not turn that SIGINT into a stop."""
    (tmp_path / "quietly_imported.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n"
                                                  "def main(argv):\n    return 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert launch.launch("bench", "quietly_imported") == 0
    finally:
        signal.signal(signal.SIGINT, previous)


def test_40_9_the_commands_start_through_the_launcher():
    for name in ("bench", "tune", "speed"):
        assert (ROOT / "fwdlib" / name / "__main__.py").read_text().endswith(f"from fwdlib.launch import {name}\n\n{name}()\n")
    scripts = (ROOT / "pyproject.toml").read_text()
    assert all(f'fwdlib-{n} = "fwdlib.launch:{n}"' in scripts for n in ("bench", "tune", "speed"))


def test_9_greedy_mf_never_trains_past_the_epoch_cap(sample):
    model = mf.MonoForward(sample.input_shape, sample.num_classes, hidden=(32, 32), schedule="greedy",
                           epochs_per_layer=12)
    history = train.fit(model, data.first(sample, 512, 256), epochs=1, batch_size=128, progress=False)
    assert [r["stage"] for r in history.records] == ["layer1", "layer2"]      # one epoch per layer, not 12


def bad_values(tmp_path: Path) -> dict[str, list[str]]:
    """For each kind of argument, values that are wrong for it (a flag with no value at all is
    tried too). The fuzzer draws flags, kinds' values and combinations from these."""
    junk = ["", " ", "huge", "ééé", "x" * 300, "a,,b", "../../etc", "-"]
    return {
        "count": ["", "0", "-3", "nan", "1.5", "1e9999", "huge", "0x10"],
        "seconds": ["", "-1", "nan", "inf", "huge"],
        "name": junk,
        "folder": [str(tmp_path / "a-file"), str(tmp_path / "a-file" / "below"), ""],
        "file": [str(tmp_path), str(tmp_path / "a-file" / "below.json"), ""],
        "params": [str(tmp_path / "missing.json"), str(tmp_path / "bad.json"), str(tmp_path / "a-file"),
                   str(tmp_path), ""],
        "set": ["novalue", "=3", "colour=1", "schedule=sideways", "hidden=[0]", ""],
        "storage": ["postgresql+psycopg://u:s3cret@h:abc/db", "mysql+nodriver://u:s3cret@h/db", "journal:",
                    f"sqlite:///{tmp_path / 'a-file' / 'x.db'}", "nosuchscheme://x", "",
                    # every spelling of a password a storage may carry (issue 40.2), each unreachable
                    "host=127.0.0.1 port=9 password=s3cret dbname=d", "u:s3cret@127.0.0.1:9/db",
                    f"postgresql+psycopg://u:{UNENCODED}@127.0.0.1:9/db",
                    "postgresql+psycopg://u@127.0.0.1:9/db?password=s3cret",
                    "postgresql+psycopg://127.0.0.1:9/db?sslpassword=s3cret&password=s3cret"],
        "study": ["", " ", "lab\nunit 0 done", "x" * 201, "tab\there"],
        "unit": ["", "-3", "nan", "1.5", "huge", "999999"],
        "import": [str(tmp_path / "hostile"), str(tmp_path / "fifo"), str(tmp_path / "missing"),
                   str(tmp_path / "a-file"), ""],
    }


def hostile_folders(tmp_path: Path, finished: Path) -> None:
    """Folders to --import: hostile records beside good ones (issue 40.3/40.4), a named pipe."""
    good = [json.loads(line) for line in finished.read_text().splitlines()]
    hostile = [dict(good[0], history={"deep": [[["junk"]]]}), dict(good[0], cpu_peak_rss_bytes=10**400),
               dict(good[0], machine=None, pool=[1]), dict(good[0], spec=dict(good[0]["spec"], seed="0")),
               dict(good[0], energy_measured_j=float("inf")), dict(good[0], entries=[])]
    (tmp_path / "hostile").mkdir()
    (tmp_path / "hostile" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*good, *hostile]))
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "results.jsonl")


BENCH_FLAGS = {"--preset": "name", "--dataset": "name", "--algorithms": "name", "--seeds": "count",
               "--protocol": "name", "--epochs": "count", "--device": "name", "--params": "params",
               "--idle-s": "seconds", "--out": "folder"}
# the pooled benchmark's flags: tried on a study that exists, so that only the flag is wrong
POOLED_FLAGS = {"--storage": "storage", "--study": "study", "--import": "import", "--export": "folder",
                "--remove-unit": "unit", "--heartbeat": "seconds", "--grace": "seconds"}
TUNE_FLAGS = {"--algorithm": "name", "--dataset": "name", "--preset": "name", "--trials": "count",
              "--epochs": "count", "--pruner": "name", "--only": "name", "--set": "set", "--storage": "storage",
              "--device": "name", "--heartbeat": "seconds", "--grace": "seconds", "--out": "file"}


def test_the_fuzzer_finds_no_traceback_and_every_bad_argument_is_named(tmp_path, capsys, monkeypatch, finished):
    """A seeded fuzzer over flags, values and files: 200 commands with one bad argument each, each
    refused with exit 2 and a message naming the bad part, none ending in a traceback, none
    training, none printing a password. Then every bad value of the pooled benchmark's flags, on a
    study that exists: storage URLs in every spelling of a password, hostile study names and
    --import folders (hostile records, a named pipe)."""
    import random
    rng = random.Random(23)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench.runner, "run_one", never_trains)
    monkeypatch.setattr(tune.search, "fit_spec", never_trains)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "bad.json").write_text("{")
    hostile_folders(tmp_path, finished)
    values = bad_values(tmp_path)
    study = ["--storage", f"sqlite:///{tmp_path}/pooled.db", "--study", "lab"]
    assert bench.main([*Q, *study, "--plan-only", "--out", str(tmp_path / "planner")]) == 0
    capsys.readouterr()
    drawn = []
    for i in range(200):
        tool, flags = (("bench", BENCH_FLAGS), ("tune", TUNE_FLAGS))[i % 2]
        flag = rng.choice(sorted(flags))
        drawn.append((tool, flag, rng.choice(values[flags[flag]] + [None])))   # None: the flag without its value
    every = [("pooled", flag, value) for flag, kind in POOLED_FLAGS.items() for value in values[kind] + [None]]
    for i, (tool, flag, value) in enumerate(drawn + every):
        argv = [flag] + ([] if value is None else [value])
        if tool == "tune":
            argv = ["--trials", "1", "--epochs", "1", "--storage", f"sqlite:///{tmp_path}/s{i}.db",
                    "--algorithm", "mf", "--out", str(tmp_path / f"t{i}.json"), *argv]
        elif tool == "pooled":      # --status where nothing else is asked: a bad storage is met, nothing trains
            status = ["--status"] if flag in ("--storage", "--study", "--heartbeat", "--grace") else []
            argv = [*Q, *study, *status, "--out", str(tmp_path / f"p{i}"), *argv]
            tool = "bench"
        else:
            argv = ["--epochs", "1", "--seeds", "1", "--no-co2", "--out", str(tmp_path / f"o{i}"), *argv]
        command = {"bench": bench.main, "tune": tune.main}[tool]
        try:
            code = command(argv)
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        what = (tool, flag, value, err[-600:])
        assert code == 2 and "Traceback" not in err, what
        assert not [secret for secret in ("s3cret", UNENCODED, "ss/w%rd") if secret in out + err], what
        # the flag, a word of the value, or the value as the message quotes it
        words = [flag.lstrip("-").split("-")[0].rstrip("s")] + [w for w in re.split(r"[=,/:@\[\]\s]+", value or "")
                                                               if len(w) >= 3]
        assert any(w.lower() in err.lower() for w in words) or repr(value) in err, what
