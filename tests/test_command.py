"""The `fwdlib` command: one front door with subcommands; the old forms keep working and name the new."""
import subprocess
import sys

import pytest

from fwdlib import launch
from fwdlib.bench.cli import main as bench_main


def fwdlib(*args, module=("-m", "fwdlib")):
    return subprocess.run([sys.executable, *module, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("action,flag", sorted(launch.ACTIONS["bench"].items()))
def test_each_bench_action_is_the_flag_of_the_same_name(action, flag, monkeypatch, tmp_path):
    """The action reaches the benchmark as its flag (checked on the parser, so no action names a flag
    that is gone), and the rest of the line follows it unchanged."""
    seen = {}
    monkeypatch.setattr(launch, "launch", lambda command, module, argv: seen.update(command=command, argv=argv) or 0)
    assert launch.main(["bench", action, "7" if action == "remove-unit" else str(tmp_path), "--study", "s"]) == 0
    assert seen["command"] == "fwdlib bench" and seen["argv"][0] == flag and seen["argv"][-2:] == ["--study", "s"]
    with pytest.raises(SystemExit) as stop:
        bench_main([flag, "--help"] if flag.endswith(("only", "status")) else ["--help"])
    assert stop.value.code == 0


def test_the_command_runs_a_pooled_study_by_its_actions(tmp_path):
    study = ["--storage", f"sqlite:///{tmp_path}/s.db", "--study", "lab"]
    plan = fwdlib("bench", "plan", "--preset", "quick", "--algorithms", "mf", "--seeds", "2", *study)
    assert plan.returncode == 0, plan.stderr
    status = fwdlib("bench", "status", *study)
    assert status.returncode == 0 and "2 planned, 0 running" in status.stdout
    assert "unit   1 planned  fashion_mnist_sample mf seed 1" in status.stdout
    assert "this command is now" not in status.stderr                         # the new form says nothing more
    old = fwdlib("--status", *study, module=("-m", "fwdlib.bench"))
    assert old.returncode == 0 and old.stdout == status.stdout
    assert old.stderr.strip() == "bench: this command is now `fwdlib bench status`; the old form keeps working"


def test_no_command_or_an_unknown_one_says_what_there_is():
    none = fwdlib()
    assert none.returncode == 2 and "usage: fwdlib {bench,tune,speed,gpu-check}" in none.stderr
    unknown = fwdlib("bnech")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "fwdlib: unknown command 'bnech'; choose one of bench, tune, speed, gpu-check"
    assert fwdlib("--help").returncode == 0


@pytest.mark.parametrize("command,argv,new", [
    ("bench", ["--preset", "quick"], "fwdlib bench"), ("bench", ["--export=d", "--study", "s"], "fwdlib bench export"),
    ("bench", ["--report-only"], "fwdlib bench report"), ("tune", ["--status"], "fwdlib tune status"),
    ("speed", ["--only", "mf"], "fwdlib speed")])
def test_an_old_form_is_named_by_its_new_one(command, argv, new):
    assert launch.new_form(command, argv) == new


def test_the_library_names_a_value_and_the_command_names_its_flag(tmp_path, capsys):
    """One check, two readers: a notebook calling the library reads the parameter's name, a shell
    reads the flag."""
    from fwdlib import bench
    from fwdlib.commandline import BadValue
    with pytest.raises(BadValue, match=r"^seeds must be from 1 to 10000, got 0$"):
        bench.run("quick", seeds=0, out=tmp_path, verbose=False)
    with pytest.raises(BadValue, match=r"^params .*missing.json: no such file"):
        bench.run("quick", params=[tmp_path / "missing.json"], out=tmp_path, verbose=False)
    assert bench_main(["--seeds", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --seeds must be from 1 to 10000, got 0"
    assert bench_main(["--idle-s", "-1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --idle-s must be a finite number of seconds, 0 or more, got -1.0"
