import socket

import pytest
import torch

from fwdlib import data


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
