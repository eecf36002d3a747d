"""Tuning and the pooled benchmark across machines, on a real PostgreSQL server that the test
starts and removes itself.

Tuning: three workers share one study; one is killed with SIGKILL in the middle of a trial. Its
trial must end FAIL once its heartbeat has been silent for the grace period, a live worker must
run its parameters again, and the study must hold exactly --trials finished trials.

The pooled benchmark: three workers fill a plan of 12 (pair, seed) units; one is killed with
SIGKILL while it holds a unit, which another worker must finish; and a worker whose database
stops mid-run keeps its finished runs, which the same command reuses once it is back; a frozen
server stops a worker within twice its grace, and a refusing one is told apart from a lost one.

The server runs as the `postgres` system user when the test runs as root (PostgreSQL refuses root).

Needs Debian's `postgresql` package and the psycopg driver (dev extra). Skipped with the reason
where either is missing, except in CI (CI=true), where missing parts fail the test.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import require
from fwdlib import tune
from fwdlib.bench.pool import Pool

ROLE, PASSWORD, DATABASE = "fwdlib", "s3cret-Pw0rd", "optuna"
GRACE_S = 4
pytestmark = [pytest.mark.postgres, pytest.mark.slow]   # starts a server and waits out a worker's grace period


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A PostgreSQL server of the test's own: its URL, and stop/start as an outage would."""

    def __init__(self, bin_dir: Path, folder: Path, port: int, run_as: list[str]):
        self.bin_dir, self.folder, self.port, self.run_as = bin_dir, folder, port, run_as
        self.data = folder / "data"
        self.url = f"postgresql+psycopg://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"

    def pg(self, *args, **kwargs):
        return subprocess.run([*self.run_as, *map(str, args)], check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> None:
        self.pg(self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log", "-w", "start", "-o",
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                f"-c hba_file={self.folder / 'pg_hba.conf'}")

    def stop(self, mode: str = "fast") -> None:
        self.pg(self.bin_dir / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, writers): what a frozen server stops."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])

        def parent(pid: str) -> int:
            try:
                return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                return -1
        return [postmaster, *(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent(p.name) == postmaster)]

    def signal_all(self, signum: int) -> None:
        """SIGSTOP freezes the server as a hung machine would: TCP still connects, nothing answers."""
        for pid in self.processes():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:       # a backend that exited since the listing (its client left)
                pass


@pytest.fixture(scope="module")
def server():
    """A fresh server on a free localhost port with a role and a database for the studies, set up
    as the README tells a user to; stopped and its folder removed afterwards, also on failure."""
    bin_dir = pg_bin()
    require(bin_dir is not None, "PostgreSQL is not installed (Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require(False, 'the psycopg driver is not installed (pip install "psycopg[binary]")')
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="fwdlib-pg-"))
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
    db = Server(bin_dir, folder, free_port(), ["runuser", "-u", "postgres", "--"] if as_root else [])
    try:
        db.pg(bin_dir / "initdb", "-D", db.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        (folder / "pg_hba.conf").write_text("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                                            "host all all 127.0.0.1/32 scram-sha-256\n")
        if as_root:
            shutil.chown(folder / "pg_hba.conf", "postgres", "postgres")
        db.start()
        psql = [bin_dir / "psql", "-h", folder, "-p", db.port, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c"]
        db.pg(*psql, f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        db.pg(*psql, f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        yield db
    finally:
        if (db.data / "postmaster.pid").exists():
            subprocess.run([*db.run_as, str(bin_dir / "pg_ctl"), "-D", str(db.data), "-m", "immediate", "stop"],
                           capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(server):
    return server.url


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "fwdlib", "tune", *args]


def env() -> dict:
    return {**os.environ, "FWDLIB_QUICK": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def clean_up(workers, logs) -> None:
    """Kill the workers still running (a failed test's) and close their logs."""
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
    for log in logs:
        log.close()


def trials_of(url: str, study: str):
    import optuna
    return optuna.load_study(study_name=study, storage=tune.open_storage(url, 1, GRACE_S)).get_trials()


def test_a_killed_workers_trial_is_failed_after_its_grace_period_and_retried(postgres_url, tmp_path):
    from optuna.trial import TrialState

    trials = 8
    # trials long enough that the poll below catches the victim mid-training
    args = ["--algorithm", "mf", "--epochs", "6", "--set", "hidden=[64]", "--storage", postgres_url,
            "--study", "shared", "--no-figures", "--heartbeat", "1", "--grace", str(GRACE_S)]
    # one trial first: the study exists and the bytecode is compiled before the workers race
    first = subprocess.run(cli(*args, "--trials", "1", "--out", str(tmp_path / "w0.json")), cwd=tmp_path,
                           env=env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    logs = [open(tmp_path / f"w{i}.log", "w+") for i in (1, 2, 3)]

    def start(i: int):
        return subprocess.Popen(cli(*args, "--trials", str(trials), "--worker", str(i),
                                    "--out", str(tmp_path / f"w{i}.json")),
                                cwd=tmp_path, env=env(), stdout=logs[i - 1], stderr=subprocess.STDOUT)
    victim = start(1)
    workers = [victim]

    searched = set(trials_of(postgres_url, "shared")[0].params)        # every parameter a trial samples

    def training():
        """The victim's trials past sampling (every parameter drawn), so killed mid-training."""
        return [t.number for t in trials_of(postgres_url, "shared") if t.state == TrialState.RUNNING
                and t.user_attrs.get("worker", "").endswith(f":{victim.pid}") and set(t.params) == searched]

    try:
        # the others start once the victim trains: on a busy machine they would otherwise run every
        # trial while the victim still imports torch
        deadline = time.monotonic() + 300
        while not training() and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        workers += [start(2), start(3)]
        deadline, killed = time.monotonic() + 120, None
        while killed is None and time.monotonic() < deadline:
            if training():
                # Freeze it, then look again: a trial that finished in the instant between the first
                # look and the signal would otherwise be mistaken for one killed mid-training.
                victim.send_signal(signal.SIGSTOP)
                still = training()
                if still:
                    victim.send_signal(signal.SIGKILL)
                    killed = still[0]
                else:
                    victim.send_signal(signal.SIGCONT)
            time.sleep(0.1)
        assert killed is not None, "the victim never ran a trial"
        victim.wait(timeout=30)
        before = next(t for t in trials_of(postgres_url, "shared") if t.number == killed)
        print(f"\nkilled worker's trial {killed} right after SIGKILL: {before.state.name}")
        assert before.state == TrialState.RUNNING
        print(tune.status("shared", postgres_url))            # what a user sees during the grace period
        for worker in workers[1:]:
            assert worker.wait(timeout=300) == 0, (tmp_path / "w2.log").read_text()
    finally:
        clean_up(workers, logs)

    after = trials_of(postgres_url, "shared")
    lost = after[killed]
    finished = [t for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    print(f"killed worker's trial {killed} after the grace period: {lost.state.name}")
    status = subprocess.run(cli("--status", "--study", "shared", "--storage", postgres_url),
                            env=env(), capture_output=True, text=True, timeout=60)
    print(status.stdout)
    assert f"retry of trial {killed}" in status.stdout and PASSWORD not in status.stdout + status.stderr
    assert len(finished) == trials
    assert [t.number for t in after] == list(range(len(after)))           # unique and contiguous
    assert lost.state == TrialState.FAIL
    retries = [t for t in after if tune.retry_of(t) == killed]
    assert [(t.params, t.state in (TrialState.COMPLETE, TrialState.PRUNED)) for t in retries] == [(lost.params, True)]
    others = [t for t in after if t.params and t.number != killed and t not in retries]
    assert len({json.dumps(t.params, sort_keys=True) for t in others}) == len(others), "a parameter set ran twice"
    assert all("surplus" in t.user_attrs for t in after if t.state == TrialState.FAIL and t.number != killed)
    ran = {int(t.user_attrs["worker"].rpartition(":")[2]) for t in after if "worker" in t.user_attrs}
    assert {w.pid for w in workers} <= ran, "every worker took part"

    written = "".join((tmp_path / f).read_text() for f in os.listdir(tmp_path) if f.endswith((".json", ".log")))
    assert PASSWORD not in written and postgres_url.split("@")[1] in written        # host shown, password not


def test_a_wrong_password_gets_a_message_without_any_password(postgres_url, capsys):
    wrong = postgres_url.replace(PASSWORD, "n0t-the-Pw")
    code = tune.main(["--algorithm", "mf", "--storage", wrong, "--trials", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot open the storage" in err and "psycopg" in err
    assert "n0t-the-Pw" not in err and PASSWORD not in err


# --- the pooled benchmark ------------------------------------------------------------------------

def test_a_refusing_database_is_told_apart_from_a_lost_one(server, tmp_path):
    """A wrong password and a role without rights are refusals: the message says what to fix, and
    not that the worker keeps its runs until the database is back."""
    psql = [server.bin_dir / "psql", "-h", server.folder, "-p", server.port, "-U", "postgres", "-d", DATABASE,
            "-v", "ON_ERROR_STOP=1", "-c"]
    server.pg(*psql, "CREATE ROLE reader LOGIN PASSWORD 'r3ader-Pw'")
    server.pg(*psql, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    reader = server.url.replace(f"{ROLE}:{PASSWORD}", "reader:r3ader-Pw")
    wrong = server.url.replace(PASSWORD, "n0t-the-Pw")
    plan = ["--algorithms", "mf", "--epochs", "1", "--seeds", "1", "--study", "refused", "--out", "w"]
    said = {}
    for name, url, extra in (("wrong password", wrong, ["--status"]), ("wrong password, a worker", wrong, []),
                             ("no rights", reader, [])):
        done = subprocess.run(bench_cli(*plan, "--storage", url, *extra), cwd=tmp_path, env=env(),
                              capture_output=True, text=True, timeout=120)
        said[name] = done.stderr
        assert done.returncode == 2 and "refused" in done.stderr and "database is back" not in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "n0t-the-Pw" not in done.stderr and "r3ader" not in done.stderr
    print("\n".join(f"{k}: {v}" for k, v in said.items()))
    assert "check the user and password in --storage" in said["wrong password"]
    assert "make it the database's owner" in said["no rights"]


def bench_cli(*args) -> list[str]:
    return [sys.executable, "-m", "fwdlib", "bench", "--no-co2", *args]


def units_of_study(url: str, study: str) -> list[dict]:
    return Pool(url, study).units()


def held_by(url: str, study: str, pid: int) -> list[dict]:
    """The units `pid` holds (none while its study's tables are still being made)."""
    try:
        units = units_of_study(url, study)
    except ValueError:                    # DatabaseRefused: no tables yet
        return []
    return [u for u in units if u["state"] == "running" and u["worker"].endswith(f":{pid}")]


def freeze_while_holding(process, url: str, study: str, deadline_s: float = 120) -> dict:
    """Stop `process` (SIGSTOP) at a moment it holds a unit, looking again once it is frozen (a unit
    finished in the instant between the look and the signal does not count); the unit held."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if held_by(url, study, process.pid):
            process.send_signal(signal.SIGSTOP)
            still = held_by(url, study, process.pid)
            if still:
                return still[0]
            process.send_signal(signal.SIGCONT)
        time.sleep(0.1)
    raise AssertionError("the worker never held a unit")


def local_records(folder: Path) -> list[dict]:
    path = folder / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_three_bench_workers_pool_12_units_and_a_killed_workers_unit_is_finished_by_another(server, tmp_path):
    url, study = server.url, "class"
    plan = ["--algorithms", "mf", "--epochs", "12", "--seeds", "12", "--storage", url, "--study", study]
    created = subprocess.run(bench_cli(*plan, "--plan-only", "--out", "instructor"), cwd=tmp_path, env=env(),
                             capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stderr
    assert "12 added now" in created.stdout and "12 planned, 0 running" in created.stdout
    logs = [open(tmp_path / f"bench-w{i}.log", "w+") for i in (1, 2, 3)]
    workers = [subprocess.Popen(bench_cli(*plan, "--heartbeat", "1", "--grace", str(GRACE_S), "--out", f"w{i}"),
                                cwd=tmp_path, env=env(), stdout=log, stderr=subprocess.STDOUT)
               for i, log in zip((1, 2, 3), logs)]
    victim = workers[0]
    status = [bench_cli("--status", "--storage", url, "--study", study)]
    try:
        killed = freeze_while_holding(victim, url, study)
        during = subprocess.run(*status, env=env(), capture_output=True, text=True, timeout=60).stdout
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        print(f"\n--status during the run, the victim frozen holding unit {killed['position']}:\n{during}")
        assert f"worker {killed['worker']} for" in during and " running " in during
        for worker in workers[1:]:
            assert worker.wait(timeout=300) == 0, (tmp_path / "bench-w2.log").read_text()
    finally:
        clean_up(workers, logs)

    after = {u["unit"]: u for u in units_of_study(url, study)}
    assert [u["state"] for u in after.values()] == ["done"] * 12
    redone = after[killed["unit"]]
    assert redone["worker"] != killed["worker"] and redone["attempts"] == 2
    assert f"reclaimed from {killed['worker']}" in redone["note"]
    records = Pool(url, study).records()
    assert len(records) == 24 and len({r["key"] for r in records}) == 24       # none duplicated, none lost
    for unit in after.values():
        mine = [r for r in records if r["pool"]["unit"] == unit["unit"]]
        assert len(mine) == 2 and {r["pool"]["worker"] for r in mine} == {unit["worker"]}
        assert len({r["machine"]["host"] for r in mine}) == 1                  # the pair ran on one machine
    trained = [r["key"] for i in (1, 2, 3) for r in local_records(tmp_path / f"w{i}")]
    assert {r["key"] for r in records} <= set(trained)                         # every stored run was trained
    survivors = {f":{w.pid}" for w in workers[1:]}
    assert all(any(u["worker"].endswith(s) for u in after.values()) for s in survivors)

    final = subprocess.run(*status, env=env(), capture_output=True, text=True, timeout=60).stdout
    print(final)
    assert "0 planned, 0 running, 12 done, 0 failed" in final and "attempt 2" in final
    for args in (["--export", "exported"], ["--report-only", "--out", "from-db"]):
        done = subprocess.run(bench_cli("--storage", url, "--study", study, *args), cwd=tmp_path, env=env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    local = subprocess.run(bench_cli("--report-only", "--out", "exported"), cwd=tmp_path, env=env(),
                           capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr
    for name in ("report.md", "report.csv"):
        assert (tmp_path / "from-db" / name).read_text() == (tmp_path / "exported" / name).read_text()
    header = (tmp_path / "from-db" / "report.md").read_text().split("## The tables")[0]
    print(header)
    assert "# fwdlib benchmark: study class, pooled" in header and "Runs from 1 machine(s)" in header
    outputs = during + final + created.stdout + created.stderr + done.stdout + done.stderr + local.stdout
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert PASSWORD not in outputs and PASSWORD.encode() not in written
    assert "fwdlib:***@127.0.0.1" in final                                    # the URL shown, its password not


def test_a_bench_worker_whose_database_stops_keeps_its_records_and_the_rerun_reuses_them(server, tmp_path):
    url, study = server.url, "outage"
    command = bench_cli("--algorithms", "mf", "--epochs", "20", "--seeds", "4", "--storage", url, "--study", study,
                        "--heartbeat", "1", "--grace", str(GRACE_S), "--out", "w")
    worker = subprocess.Popen(command, cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        freeze_while_holding(worker, url, study)
        server.stop()                           # the database goes away while a unit trains
        worker.send_signal(signal.SIGCONT)
        out, err = worker.communicate(timeout=300)
    finally:
        if worker.poll() is None:
            worker.kill()
        if not (server.data / "postmaster.pid").exists():
            server.start()
    print(f"\nthe worker, its database stopped mid-unit:\n{err}")
    assert worker.returncode == 2 and "kept in w/results.jsonl" in err and "run the same command again" in err
    assert PASSWORD not in out + err
    kept = {r["key"] for r in local_records(tmp_path / "w")}

    again = subprocess.run(command, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    records = Pool(url, study).records()
    assert [u["state"] for u in units_of_study(url, study)] == ["done"] * 4
    assert kept <= {r["key"] for r in records} and len(records) == 8 == len({r["key"] for r in records})
    assert len(local_records(tmp_path / "w")) == 8                # every run trained once: the kept ones reused


def test_a_frozen_database_stops_a_worker_within_twice_its_grace_and_ctrl_c_within_5_s(server, tmp_path):
    """The server frozen (SIGSTOP) while a worker trains: its heartbeat cannot land, the worker stops
    within twice the grace period with exit 2 and its finished runs kept; a worker started against
    the frozen server stops on Ctrl-C within 5 s; thawed, the same command finishes the study."""
    url, study, grace = server.url, "frozen", 6
    command = bench_cli("--algorithms", "mf", "--protocol", "matched", "--epochs", "80", "--seeds", "1",
                        "--storage", url, "--study", study, "--heartbeat", "1", "--grace", str(grace), "--out", "w")
    worker = subprocess.Popen(command, cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    late = None
    try:
        deadline = time.monotonic() + 120
        while not held_by(url, study, worker.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        server.signal_all(signal.SIGSTOP)
        frozen = time.monotonic()
        late = subprocess.Popen([*command[:-1], "late"], cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        out, err = worker.communicate(timeout=120)
        stopped_after = time.monotonic() - frozen
        assert late.stdout.readline().startswith("data: ")    # its data are ready: next it joins the study
        time.sleep(1)                                          # and waits on the frozen server
        late.send_signal(signal.SIGINT)
        asked = time.monotonic()
        late_out, late_err = late.communicate(timeout=60)
        ctrl_c_after = time.monotonic() - asked
    finally:
        server.signal_all(signal.SIGCONT)
        for process in (worker, late):
            if process is not None and process.poll() is None:
                process.kill()
    print(f"\nfrozen mid-unit, the worker stopped after {stopped_after:.1f} s:\n{err}\n"
          f"Ctrl-C to a worker waiting on the frozen server: {ctrl_c_after:.1f} s:\n{late_err}")
    assert worker.returncode == 2 and stopped_after <= 2 * grace
    assert "no heartbeat landed for" in err and "kept in w/results.jsonl" in err
    assert late.returncode == 130 and ctrl_c_after <= 5 and "Traceback" not in late_err
    assert PASSWORD not in out + err + late_out + late_err

    again = subprocess.run(command, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert [u["state"] for u in units_of_study(url, study)] == ["done"]
    assert len(Pool(url, study).records()) == 2


def class_recipe(text: str) -> list[str]:
    """The bash block after the `<!-- class recipe -->` mark (README and instructor guide)."""
    return text.split("<!-- class recipe -->\n")[1].split("```bash\n")[1].split("```")[0].splitlines()


def test_the_class_recipe_runs_as_written(server, tmp_path):
    lines = class_recipe((Path(__file__).resolve().parents[1] / "README.md").read_text())
    assert lines[0].startswith('STUDY="--storage postgresql+psycopg://') and lines[1].startswith('PLAN="--preset')
    # the two settings a class chooses, set for a server of the test's own and a plan of minutes
    settings = f'STUDY="--storage {server.url} --study recipe"\nPLAN="--preset quick --algorithms mf --epochs 2 --seeds 6 --no-co2"\n'
    shell = {**env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = {}
    for line in lines[2:]:
        if "every student" in line:        # two laptops: two folders, started together
            folders = [tmp_path / f"student{i}" for i in (1, 2)]
            for folder in folders:
                folder.mkdir()
            students = [subprocess.Popen(["bash", "-c", settings + line], cwd=folder, env=shell, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for folder in folders]
            outputs[line] = "".join(s.communicate(timeout=300)[0] for s in students)
            assert [s.returncode for s in students] == [0, 0], outputs[line]
        else:
            done = subprocess.run(["bash", "-c", settings + line], cwd=tmp_path, env=shell, capture_output=True,
                                  text=True, timeout=300)
            outputs[line] = done.stdout + done.stderr
            assert done.returncode == 0, (line, outputs[line])
    said = "\n".join(outputs.values())
    print(said[-3000:])
    assert "6 added now" in said and "0 planned, 0 running, 6 done, 0 failed" in said
    assert "# fwdlib benchmark: study recipe, pooled" in (tmp_path / "class-report" / "report.md").read_text()
    assert len((tmp_path / "class-results" / "results.jsonl").read_text().splitlines()) == 12
    assert PASSWORD not in said
