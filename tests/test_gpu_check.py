"""make gpu-check: explains itself without a GPU; on a GPU, graphs train like eager code."""
import subprocess
import sys

import pytest
import torch

from fwdlib import gpu_check


def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", "unused"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "no CUDA GPU" in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU message; a GPU machine runs the checks")
def test_make_gpu_check_runs_the_module_and_stops_cleanly():
    done = subprocess.run([sys.executable, "-m", "fwdlib.gpu_check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "make gpu-check" in done.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU (make gpu-check runs this)")
def test_cuda_graph_training_equals_eager_training_for_every_algorithm():
    results = gpu_check.graphs_match_eager(torch.device("cuda"))
    assert set(results) == set(gpu_check.GRAPH_CASES)
    for label, r in results.items():
        assert r["ok"], (label, r)


def test_the_speed_targets_are_the_benchmarks_own_runs():
    from fwdlib import speed
    cases = speed.case_specs(list(gpu_check.SPEED_TARGETS), device="cpu")
    assert [(s.dataset, str(s.entry)) for s, _ in cases] == [(d, e) for _, d, e in gpu_check.SPEED_TARGETS]
    ff = next(s for s, _ in cases if str(s.entry) == "ff+kit")
    assert (ff.batch_size, ff.config["hidden"]) == (128, (2000,) * 4)
    keys = {s.key for s, _ in cases}
    assert all(twin in keys for s, twin in cases if s.algorithm == "mf")     # each MF target has its twin timed
