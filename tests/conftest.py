import math
import os
import socket

import pytest
import torch

from fwdlib import algorithms, data
from fwdlib.algorithms.base import Algorithm


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
    monkeypatch.setattr(algorithms, "NAMES", (*algorithms.NAMES, "diverging"))
    return "diverging"
