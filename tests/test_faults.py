"""Faults lose nothing: a full disk, a resumed or interrupted search, a broken environment, a
foreign line, a second writer, a quietly exploding loss, and bad input, each with a clear answer."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from fwdlib import algorithms, bench, data, energy, train, tune
from fwdlib.algorithms.base import Algorithm
from fwdlib.bench import ResultsLog, ResultsNotSaved, results
from fwdlib.bench.params import params_record
from fwdlib.bench.plan import spec_of
from fwdlib.processes import process_start

from conftest import record

SAMPLE = data.SAMPLE_NAME
ROOT = Path(__file__).resolve().parents[1]


# ============================================================================ the results log

def test_short_writes_are_continued_and_a_failed_write_leaves_no_half_record(tmp_path, monkeypatch):
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append(record("a"))
    real_write = os.write
    monkeypatch.setattr(results.os, "write", lambda fd, b: real_write(fd, b[:100]))     # 100 bytes a call
    log.append(record("b"))
    assert [r["key"] for r in log.records()] == ["a", "b"]

    calls = []

    def disk_full_midway(fd, b):
        calls.append(len(b))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, b[:200])

    monkeypatch.setattr(results.os, "write", disk_full_midway)
    before = log.path.read_bytes()
    with pytest.raises(ResultsNotSaved, match="No space left"):
        log.append(record("c"))
    assert log.path.read_bytes() == before                      # cut back to the last whole record
    monkeypatch.setattr(results.os, "write", real_write)
    log.append(record("d"))                                      # space back: nothing glued on
    assert [r["key"] for r in log.records()] == ["a", "b", "d"]


NAMESPACE_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from fwdlib import Record
    from fwdlib.bench import ResultsLog, ResultsNotSaved
    folder, template = Path(sys.argv[1]), Record.from_json(sys.argv[2])
    filler = folder / "filler"
    log = ResultsLog(folder / "results.jsonl")
    filler.write_bytes(b"f" * 16384)
    saved = 0
    try:
        while True:
            log.append(template.replace(key=str(saved), extra={"payload": "x" * 1500}))
            saved += 1
    except ResultsNotSaved as err:
        message = str(err.strerror)
    lines = (folder / "results.jsonl").read_bytes()
    whole = lines.endswith(b"\\n") and all(json.loads(l) for l in lines.splitlines())
    filler.unlink()
    log.append(template.replace(key="after"))
    keys = [r["key"] for r in log.records()]
    print(json.dumps({"saved": saved, "message": message, "whole": whole, "keys": keys}))
""")


def test_a_full_disk_loses_no_finished_run(tmp_path):
    """On a real 64 KiB tmpfs, in a private mount namespace (needs root and unshare)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a small tmpfs in a private mount namespace")
    folder = tmp_path / "small"
    folder.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(NAMESPACE_SCRIPT)
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           f"mount -t tmpfs -o size=64k tmpfs {folder} && {sys.executable} {script} {folder} "
                           f"'{record('t').to_json()}'"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["saved"] > 5 and "No space left" in result["message"]
    assert result["whole"], "the full disk left half a record in the file"
    assert result["keys"] == [str(i) for i in range(result["saved"])] + ["after"]


def test_an_unwritable_out_is_refused_before_anything_trains(tmp_path, capsys):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a read-only mount (root ignores file permissions)")
    folder = tmp_path / "ro"
    folder.mkdir()
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           f"mount -t tmpfs -o ro,size=64k tmpfs {folder} && {sys.executable} -m fwdlib bench "
                           f"--out {folder}/out --epochs 1 --seeds 1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2 and "cannot write to the results folder" in done.stderr, done.stderr
    assert "Nothing was trained" in done.stderr and "[1/" not in done.stdout


def test_out_a_file_results_a_folder_and_params_a_folder_get_messages(tmp_path, capsys):
    a_file = tmp_path / "out.txt"
    a_file.write_text("x")
    assert bench.main(["--out", str(a_file), "--epochs", "1"]) == 2
    assert "is a file; choose another --out" in capsys.readouterr().err
    (tmp_path / "out" / "results.jsonl").mkdir(parents=True)
    assert bench.main(["--out", str(tmp_path / "out"), "--epochs", "1"]) == 2
    assert "is a folder, not a results file" in capsys.readouterr().err
    assert bench.main(["--out", str(tmp_path / "o2"), "--params", str(tmp_path), "--epochs", "1"]) == 2
    assert "is a folder; pass the .json file" in capsys.readouterr().err


def test_foreign_lines_are_skipped_with_their_line_number_and_left_in_place(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    good = record("a").to_json().encode()
    raw = b"\n".join([b"{not json", b"[1, 2]", b'{"old": "schema"}', b"\xff\xfe bytes", good]) + b"\n"
    path.write_bytes(raw)
    assert [r["key"] for r in ResultsLog(path).records()] == ["a"]
    out = capsys.readouterr().out
    for number, why in ((1, "not valid JSON"), (2, "not a benchmark record"), (3, "not a benchmark record of this version (no key, spec, entries, status)"),
                        (4, "not UTF-8")):
        assert f"line {number}: {why}" in out
    assert path.read_bytes() == raw
    assert bench.main(["--report-only", "--out", str(tmp_path)]) == 0


def test_the_report_counts_the_latest_record_of_each_run(tmp_path):
    log = ResultsLog(tmp_path / "results.jsonl")
    for r in (record("a", "failed"), record("a"), record("a"), record("b", seed=1)):
        log.append(r)                     # a retried failure, then a duplicate
    assert [(r["key"], r["status"]) for r in log.latest()] == [("a", "ok"), ("b", "ok")]


def test_a_second_writer_is_stopped_and_a_stale_lock_is_taken_over(tmp_path):
    log = ResultsLog(tmp_path / "results.jsonl")
    (tmp_path / ".lock").write_text(str(os.getpid()))          # a live process holds it
    with pytest.raises(ValueError, match=f"another benchmark \\(process {os.getpid()}\\)"):
        with log.lock():
            pass
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(str(dead.pid))
    with log.lock():
        holder, started = (tmp_path / ".lock").read_text().split()      # its process and when it started
        assert holder == str(os.getpid()) and started == process_start(os.getpid())
    (tmp_path / ".lock").write_text(f"{os.getpid()} 1")           # this id, but an earlier process's (a restart)
    with log.lock():
        pass
    assert not (tmp_path / ".lock").exists()


# ============================================================================ the environment

def test_a_missing_device_fails_before_any_run_is_recorded(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert bench.main(["--device", "mps", "--out", str(tmp_path), "--epochs", "1"]) == 2
    assert "has no Apple GPU" in capsys.readouterr().err
    assert ResultsLog(tmp_path / "results.jsonl").records() == []


def test_corrupt_data_fails_before_any_run_is_recorded(tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    for stem in data.IDX_FILES.values():                         # headers that promise more than is there
        (root / stem).write_bytes(bytes([0, 0, 8, 1]) + (1000).to_bytes(4, "big") + b"\0" * 10)
    out = tmp_path / "out"
    assert bench.main(["--preset", "paper-fmnist", "--data-root", str(root), "--out", str(out),
                       "--algorithms", "mf", "--seeds", "1", "--epochs", "1"]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err
    assert ResultsLog(out / "results.jsonl").records() == []    # a fixed rerun trains everything


def test_no_dataset_present_is_an_error_not_an_empty_report(tmp_path, capsys, monkeypatch, no_network):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert bench.main(["--preset", "paper", "--dataset", "mnist,cifar10", "--data-root", str(tmp_path / "none"),
                       "--out", str(tmp_path / "out")]) == 2
    assert "none of the datasets is here" in capsys.readouterr().err


def test_a_failed_run_makes_a_nonzero_exit_that_says_how_to_retry(tmp_path, capsys):
    params = tmp_path / "exploding.json"
    spec = spec_of(bench.PRESETS["quick"], SAMPLE, "mf", device="cpu")
    params.write_text(json.dumps(params_record(spec, {"lr": 1e3}, ["mf"])))
    code = bench.main(["--algorithms", "mf", "--seeds", "1", "--epochs", "2", "--out", str(tmp_path / "out"),
                       "--params", str(params), "--no-co2"])
    err = capsys.readouterr().err
    assert code == 1 and "1 run(s) failed" in err and "--retry-failed" in err
    assert "TrainingDiverged" in err and "rule:" in err


# ============================================================================ training

class Exploding(Algorithm):
    """Finite losses that grow a thousandfold each step: divergence without a NaN."""
    name = "exploding"

    def __init__(self, input_shape, num_classes, **config):
        super().__init__()
        self.w = torch.nn.Linear(4, 2)
        self.steps = 0

    def train_step(self, x, y, stage):
        self.steps += 1
        return {"loss": torch.tensor(2.3 * 1000.0 ** min(self.steps, 4))}

    def eval_step(self, x, y, stage):
        return torch.tensor(0.0), 0


def tiny(n_val: int = 8):
    split = data.Split(torch.randn(16, 1, 28, 28), torch.arange(16) % 10)
    val = data.Split(torch.randn(n_val, 1, 28, 28), torch.arange(n_val) % 10)
    return data.Dataset("tiny", split, val, val, 10, (1, 28, 28), tuple("0123456789"), "test", (0.5,), (0.5,))


def test_a_huge_finite_loss_is_divergence_and_the_rule_is_named():
    with pytest.raises(train.TrainingDiverged, match="more than 100x the first step's 2.3.*rule"):
        train.fit(Exploding((1, 28, 28), 10), tiny(), epochs=2, batch_size=4, progress=False)


def test_an_empty_validation_split_is_refused_with_a_message():
    model = algorithms.build("mf", input_shape=(1, 28, 28), num_classes=10, hidden=(8,))
    with pytest.raises(ValueError, match="the val split of tiny is empty"):
        train.fit(model, tiny(n_val=0), epochs=1, progress=False)


def test_a_cnn_on_flat_input_is_refused_with_a_message():
    flat = tiny()
    flat.train = data.Split(flat.train.x.flatten(1), flat.train.y)
    model = algorithms.build("cafo-rand", input_shape=(1, 28, 28), num_classes=10, channels=(4,))
    with pytest.raises(ValueError, match="cafo-rand is a CNN and needs image batches"):
        train.fit(model, flat, epochs=1, progress=False)


@pytest.mark.parametrize("name, config, message", [
    ("mf", {"hidden": -5}, "hidden=-5; hidden must be a non-empty list of positive integers"),
    ("mf", {"hidden": (0,)}, "hidden=(0,); hidden must be"),
    ("mf", {"lr": "fast"}, "lr='fast'; lr must be a number above 0"),
    ("ff", {"head_lr": 0}, "head_lr=0; head_lr must be a number above 0"),
    ("bp-mlp", {"weight_decay": -1e-4}, "weight_decay=-0.0001; weight_decay must be a number, 0 or above"),
    ("cafo-rand", {"channels": ()}, "channels=(); channels must be a non-empty list"),
    ("cafo-rand", {"epochs_per_block": 0}, "epochs_per_block=0; epochs_per_block must be a positive integer"),
])
def test_bad_configurations_name_the_parameter(name, config, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        algorithms.build(name, input_shape=(1, 28, 28), num_classes=10, **config)


# ============================================================================ the energy meter

def test_the_energy_meter_refuses_misuse_with_a_message():
    meter = energy.EnergyMeter(co2=False, rapl_root="/nonexistent", cuda_device_list=[])
    for call in (meter.stop, lambda: meter.lap("epoch 1")):
        with pytest.raises(RuntimeError, match="before start\\(\\): call meter.start\\(\\) first"):
            call()
    with meter:
        meter.lap("epoch 1")
    with pytest.raises(RuntimeError, match="already measured a window; make a new EnergyMeter"):
        meter.start()
    with pytest.raises(RuntimeError, match="after stop\\(\\)"):
        meter.lap("epoch 2")
    assert [lap.name for lap in meter.result.laps] == ["epoch 1"]


def test_an_unknown_codecarbon_country_warns():
    with pytest.warns(UserWarning, match="CodeCarbon knows no country 'XYZ'") as caught:
        energy.EnergyMeter(country="XYZ", rapl_root="/nonexistent", cuda_device_list=[])
    assert caught[0].filename == __file__                 # it points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        energy.EnergyMeter(country="FRA", rapl_root="/nonexistent", cuda_device_list=[])


# ============================================================================ the tuner

def test_a_resumed_or_extended_search_draws_new_parameters(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    common = dict(epochs=1, storage=storage, study="s", out=tmp_path / "best.json", pruner="none",
                  overrides={"hidden": [32]})
    tune.tune(tune.SearchSpec.of("mf", SAMPLE, trials=3, **common), figures=False, verbose=False)
    tune.tune(tune.SearchSpec.of("mf", SAMPLE, trials=6, **common), figures=False, verbose=False)  # the same, more trials
    trials = optuna.load_study(study_name="s", storage=tune.open_storage(storage)).get_trials()
    assert len(trials) == 6
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 6, "a resume replayed the search"


def test_a_set_on_a_searched_key_warns(tmp_path, capsys):
    tune.SearchSpec.of("mf", SAMPLE, trials=1, epochs=1, storage=f"sqlite:///{tmp_path}/s.db", out=tmp_path / "b.json",
                       overrides={"lr": 0.1, "hidden": [32]})         # warned when the search is built
    assert "--set lr=0.1 is ignored, because lr is searched" in capsys.readouterr().err


def test_a_storage_path_under_a_file_gets_a_message(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert tune.main(["--algorithm", "mf", "--storage", f"sqlite:///{a_file}/studies.db", "--trials", "1"]) == 2
    assert "cannot make the folder" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_the_tuner_cleanly_and_keeps_the_best_so_far(tmp_path, signum):
    storage = f"sqlite:///{tmp_path}/s.db"
    best = tmp_path / "best.json"
    proc = subprocess.Popen([sys.executable, "-m", "fwdlib", "tune", "--algorithm", "mf", "--epochs", "1",
                             "--set", "hidden=[32]", "--storage", storage, "--study", "s", "--trials", "200",
                             "--out", str(best), "--no-figures", "--pruner", "none"],
                            cwd=tmp_path, env={**os.environ, "FWDLIB_QUICK": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.3)
            try:
                done = optuna.load_study(study_name="s", storage=tune.open_storage(storage)).get_trials(
                    states=(TrialState.COMPLETE,))
            except KeyError:
                continue
            if len(done) >= 2:
                break
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "To resume, run the same command again" in err
    assert len(err.strip().splitlines()) <= 3, err
    trials = optuna.load_study(study_name="s", storage=tune.open_storage(storage)).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING], "the interrupted trial is still RUNNING"
    assert json.loads(best.read_text())["finished_trials"] >= 2
