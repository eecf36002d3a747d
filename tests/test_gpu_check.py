"""make gpu-check: explains itself without a GPU; on a GPU, graphs train like eager code."""
import subprocess
import sys
from pathlib import Path

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
    done = subprocess.run([sys.executable, "-m", "fwdlib", "gpu-check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "make gpu-check" in done.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU (make gpu-check runs this)")
def test_cuda_graph_training_equals_eager_training_for_every_algorithm():
    results = gpu_check.graphs_match_eager(torch.device("cuda"))
    assert set(results) == set(gpu_check.graph_cases())
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
    assert all(twin in keys for s, twin in cases if s.algorithm == "ff")     # and FF's, for its floor


def test_every_lesson_has_a_t4_budget_and_its_estimate_scales_with_the_matmul_peaks(monkeypatch, tmp_path):
    lessons = sorted(Path(__file__).resolve().parents[1].glob("notebooks/[0-9][0-9]_*.ipynb"))
    assert {p.name[:2] for p in lessons} == set(gpu_check.T4_BUDGET_S)
    for name in ("00_a.ipynb", "06_b.ipynb", "99_unplanned.ipynb"):
        (tmp_path / name).write_text("{}")
    monkeypatch.setattr(gpu_check, "matmul_peak", lambda device: 4 * gpu_check.T4_FP32_FLOPS)   # a GPU 4x a T4
    monkeypatch.setattr(gpu_check, "notebook_full", lambda path, timeout: {"notebook": path, "seconds": 100.0, "ok": True})
    result = gpu_check.lessons_full("cuda", folder=str(tmp_path))
    assert result["t4_scale"] == 4 and result["00_a.ipynb"]["t4_estimate_s"] == 400
    assert not result["00_a.ipynb"]["ok"] and result["06_b.ipynb"]["ok"]       # budgets 300 s and 1800 s
    assert not result["99_unplanned.ipynb"]["ok"]                              # a lesson without a budget fails


def test_the_speed_check_judges_the_floor_and_the_peak(monkeypatch):
    def row(case, algorithm, hidden, floor=None, fraction=0.7, epoch_ratio=0.9):
        return {"dataset": "fashion_mnist", "case": case, "algorithm": algorithm, "s_per_epoch": 0.05, "twin": "bp",
                "fraction_of_peak": fraction, "epoch_ratio_to_twin": epoch_ratio, "spec": {"config": {"hidden": hidden}},
                "floor": floor}
    def floor(measured, flops_ratio, with_rest):
        return {"measured": measured, "flops_ratio": flops_ratio, "with_rest": with_rest,
                "distance": measured / flops_ratio - 1, "verdict": "-"}
    rows = [row("bp 2x1000", "bp-mlp", (1000,) * 2), row("mf 2x1000", "mf", (1000,) * 2, floor(0.84, 0.79, 0.81)),
            row("bp 3x2000", "bp-mlp", (2000,) * 3), row("mf 3x2000", "mf", (2000,) * 3, floor(0.80, 0.78, 0.80), 0.6),
            row("bp ff", "bp-mlp", (2000,) * 4), row("ff 4x2000", "ff", (2000,) * 4, floor(1.70, 1.73, 1.8), epoch_ratio=1.7)]
    monkeypatch.setattr(gpu_check, "speed", lambda cases, out, root: rows)
    result = gpu_check.speed_targets("cuda", "unused")
    assert result["fashion_mnist mf 2x1000 / bp: step at its floor"]["ok"]            # 0.84 <= 1.05 x 0.81
    assert not result["fashion_mnist mf 3x2000: share of the matmul peak"]["ok"]       # 60% < 65%
    assert result["fashion_mnist ff 4x2000 / bp: step at or below its FLOP floor"]["ok"]
    assert result["fashion_mnist ff 4x2000"]["ok"] and "fashion_mnist bp ff" not in result   # no epoch target of its own


def test_only_names_the_checks_it_knows(capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--only", "lessons,colour"])
    assert "--only colour: no such check" in capsys.readouterr().err
