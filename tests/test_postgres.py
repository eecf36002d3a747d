"""Tuning across machines, on a real PostgreSQL server that the test starts and removes itself.

Three workers share one study; one is killed with SIGKILL in the middle of a trial. Its trial must
end FAIL once its heartbeat has been silent for the grace period, a live worker must run its
parameters again, and the study must hold exactly --trials finished trials. The server runs as the
`postgres` system user when the test runs as root (PostgreSQL refuses root).

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

from fwdlib import tune

ROLE, PASSWORD, DATABASE = "fwdlib", "s3cret-Pw0rd", "optuna"
GRACE_S = 4
pytestmark = [pytest.mark.postgres, pytest.mark.slow]   # starts a server and waits out a worker's grace period


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def require(condition: bool, message: str) -> None:
    if condition:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message + " (CI must run this test, not skip it)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A fresh server on a free localhost port with a role and a database for the study, set up as
    the README tells a user to; stopped and its folder removed afterwards, also on failure."""
    bin_dir = pg_bin()
    require(bin_dir is not None, "PostgreSQL is not installed (Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require(False, 'the psycopg driver is not installed (pip install "psycopg[binary]")')
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="fwdlib-pg-"))
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()

    def pg(*args, **kwargs):
        return subprocess.run([*run_as, *map(str, args)], check=True, capture_output=True, text=True, **kwargs)

    try:
        pg(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        (folder / "pg_hba.conf").write_text("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                                            "host all all 127.0.0.1/32 scram-sha-256\n")
        if as_root:
            shutil.chown(folder / "pg_hba.conf", "postgres", "postgres")
        pg(bin_dir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "start", "-o",
           f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c hba_file={folder / 'pg_hba.conf'}")
        psql = [bin_dir / "psql", "-h", folder, "-p", port, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c"]
        pg(*psql, f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        pg(*psql, f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        yield f"postgresql+psycopg://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "fwdlib.tune", *args]


def env() -> dict:
    return {**os.environ, "FWDLIB_QUICK": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


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

    workers = [subprocess.Popen(cli(*args, "--trials", str(trials), "--worker", str(i),
                                    "--out", str(tmp_path / f"w{i}.json")),
                                cwd=tmp_path, env=env(), stdout=log, stderr=subprocess.STDOUT)
               for i, log in zip((1, 2, 3), logs)]
    victim = workers[0]

    searched = set(trials_of(postgres_url, "shared")[0].params)        # every parameter a trial samples

    def training():
        """The victim's trials past sampling (every parameter drawn), so killed mid-training."""
        return [t.number for t in trials_of(postgres_url, "shared") if t.state == TrialState.RUNNING
                and t.user_attrs.get("worker", "").endswith(f":{victim.pid}") and set(t.params) == searched]

    try:
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
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        for log in logs:
            log.close()

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
