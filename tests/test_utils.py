import pytest
import torch

from fwdlib import utils


def test_quick_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("FWDLIB_QUICK", "1")
    assert utils.quick_mode()
    monkeypatch.setenv("FWDLIB_QUICK", "0")
    assert not utils.quick_mode()


def test_pick_device_prefers_request_and_refuses_missing_cuda(monkeypatch):
    assert utils.pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        utils.pick_device("cuda")


def test_colab_cpu_hint(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    assert utils.pick_device().type in ("cpu", "mps")
    assert "Change runtime type" in capsys.readouterr().out


def test_seed_all_repeats():
    utils.seed_all(3)
    a = torch.rand(3)
    utils.seed_all(3)
    assert torch.equal(a, torch.rand(3))


def test_settings_read_as_one_line():
    assert utils.format_settings({"lr": 0.00059123, "hidden": [1000, 1000], "schedule": "greedy"}) == \
        "lr=0.0005912, hidden=[1000, 1000], schedule=greedy"
