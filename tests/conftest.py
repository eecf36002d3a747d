import math
import os
import socket

import pytest
import torch

from fwdlib import algorithms, data
from fwdlib.algorithms.base import Algorithm
from fwdlib.runs.entry import Entry
from fwdlib.runs.record import Record


def record(key: str, status: str = "ok", seed: int = 0, **fields) -> Record:
    """A minimal benchmark record with every field the report reads (fwdlib.runs.validate checks it)."""
    algorithm = Entry.parse(fields.get("entries", ["mf"])[0]).algorithm
    spec = {"dataset": data.SAMPLE_NAME, "algorithm": algorithm, "config": {"hidden": [8]}, "protocol": "converge",
            "device": "cpu", "seed": seed, "epochs": 1, "patience": 2, "monitor": "val_acc",
            "min_delta": 0.0, "batch_size": 128, "cuda_graphs": False}
    return Record.from_mapping({
        "key": key, "spec": {**spec, **fields.pop("spec", {})}, "entries": ["mf"], "status": status, "test_acc": 0.5, "epochs": 1,
        "train_time_s": 1.0, "energy_measured_j": 0.0, "energy_estimated_j": None, "history": [],
        "reason": "" if status == "ok" else "ValueError: broken", "payload": "x" * 400, **fields})


def require(condition: bool, message: str) -> None:
    """Skip a test whose real part (a browser, a server, a sandbox) this machine lacks, saying which;
    in CI (`CI=true`), which must run every test, fail instead."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message + " (CI must run this test, not skip it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def sample():
    return data.load("fashion_mnist_sample", device="cpu")


@pytest.fixture
def no_network(monkeypatch):
    """Fail loudly on any attempt to open a network connection."""
    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class Diverging(Algorithm):
    """An algorithm whose loss is NaN from the first step."""
    name = "diverging"

    def __init__(self, input_shape, num_classes, **config):
        super().__init__()
        self.w = torch.nn.Linear(4, 2)

    def train_step(self, x, y, stage):
        return {"loss": torch.tensor(math.nan)}


@pytest.fixture
def diverging(monkeypatch):
    """Register `Diverging` as the algorithm "diverging" for one test."""
    monkeypatch.setitem(algorithms.REGISTRY, "diverging", Diverging)
    return "diverging"
