"""The `fwdlib` command: one front door with subcommands; the old forms keep working and name the new."""
import subprocess
import sys

import pytest

from fwdlib import launch
from fwdlib.bench.cli import main as bench_main


def bench_code(argv) -> int:
    """The exit code of `fwdlib bench ARGV`, argparse's own errors included."""
    try:
        return bench_main(argv)
    except SystemExit as stop:
        return stop.code


def fwdlib(*args, module=("-m", "fwdlib")):
    return subprocess.run([sys.executable, *module, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("action,flag", sorted(launch.ACTIONS["bench"].items()))
def test_each_bench_action_is_its_flag_wherever_it_stands(action, flag, tmp_path, capsys):
    """The action word anywhere among the options (not as a flag's value) is read as its flag, its
    value after it; two actions are refused in one line."""
    value = {"export": [str(tmp_path / "x")], "import": [str(tmp_path / "x")], "remove-unit": ["7"]}.get(action, [])
    assert bench_code(["--out", str(tmp_path), "--no-co2", action, *value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    if action == "report":
        assert err == f"error: no results in {tmp_path / 'results.jsonl'} to report on"
    else:
        assert err.startswith(f"fwdlib bench: error: {flag} needs --storage URL and --study NAME")
    assert bench_code(["--out", str(tmp_path), action, *value, "status" if action != "status" else "report"]) == 2
    assert "one action at a time, not" in capsys.readouterr().err


def test_a_word_that_is_a_flags_value_is_not_an_action(tmp_path, capsys):
    assert bench_code(["--study", "status", "--out", str(tmp_path)]) == 2
    assert "--study needs --storage URL" in capsys.readouterr().err


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
        bench.Benchmark.of("quick", seeds=0, out=tmp_path, verbose=False)
    with pytest.raises(BadValue, match=r"^params .*missing.json: no such file"):
        bench.Benchmark.of("quick", params=[tmp_path / "missing.json"], out=tmp_path, verbose=False)
    assert bench_main(["--seeds", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --seeds must be from 1 to 10000, got 0"
    assert bench_main(["--idle-s", "-1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --idle-s must be a finite number of seconds, 0 or more, got -1.0"


def test_an_actions_value_and_what_follows_a_double_dash_are_no_actions(tmp_path, capsys):
    """`export report`: a folder named report, not a second action; after `--` nothing is an action;
    an abbreviated option is not read (its value would pass for an action)."""
    assert bench_code(["--out", str(tmp_path), "export", "report"]) == 2
    assert "--export needs --storage URL" in capsys.readouterr().err
    assert bench_code(["--out", str(tmp_path), "--", "status"]) == 2
    assert "--status" not in capsys.readouterr().err
    assert bench_code(["--stud", "report", "--out", str(tmp_path)]) == 2
    assert "unrecognized arguments: --stud" in capsys.readouterr().err


def test_a_benchmark_checks_the_device_and_its_folder_before_any_data(tmp_path, monkeypatch):
    """Cheapest first: a device no machine has, then an OUT that cannot be written, are refused
    before a dataset is located or loaded; a benchmark planned for no machine trains nothing."""
    from fwdlib import bench
    from fwdlib.bench import benchmark
    monkeypatch.setattr(benchmark, "_present", lambda *a: pytest.fail("data looked at before the folder"))
    with pytest.raises(ValueError, match="unknown device 'any'"):
        bench.Benchmark.of("quick", device="any", out=tmp_path)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ValueError, match="cannot write to the results folder .*a-file"):
        bench.Benchmark.of("quick", device="cpu", out=tmp_path / "a-file" / "sub")
    planned = bench.Benchmark.planned("quick", algorithms="mf", seeds=2)
    assert planned.log is None and len(planned.runs()) == 4
    with pytest.raises(ValueError, match="planned for no machine"):
        bench.run(planned, verbose=False)

