"""How a check calls a student's function: its own exceptions told apart from the student's, a
stub told apart from a gap, and the tools a task forbids refused (autograd in Exercise 4.2)."""
from __future__ import annotations

import contextlib
import re
import sys

import torch
from torch.autograd.variable import Variable


def stub(err: NotImplementedError) -> bool:
    """An exercise's stub ("Exercise 2.1: replace this line..."), not a NotImplementedError of the
    student's own or of torch's."""
    return not str(err) or bool(re.search(r"Exercise \d+\.\d+|your code here|replace this line", str(err), re.I))


class StudentError(Exception):
    """An exception raised inside the student's function (the check's own failures are not)."""


class Forbidden(Exception):
    """Raised inside the student's code when it calls a tool the task forbids."""


@contextlib.contextmanager
def backward_forbidden():
    """Forward mode allowed, every backward refused: torch.autograd.grad, .backward() and
    torch.autograd.functional.jvp (a double backward) all end in autograd's engine, swapped out
    here (Exercise 8.1, and fwdlib.algorithms.fg's test)."""
    class Refused:
        def __getattr__(self, name):
            raise Forbidden("a backward pass (torch.autograd.grad, .backward(), or torch.autograd.functional, "
                            "which runs one)")

    engine, Variable._execution_engine = Variable._execution_engine, Refused()
    try:
        yield
    finally:
        Variable._execution_engine = engine


FORWARD_MODE = ("torch/_functorch/eager_transforms.py", "torch/autograd/forward_ad.py", "torch/autograd/functional.py")


@contextlib.contextmanager
def autograd_forbidden():
    """No graph can be built and every way into autograd is refused, however it was imported: the
    engine that runs every backward is swapped out, turning grad mode on raises, and a profiler
    notes any call into torch.func's transforms or forward-mode AD (raised once the call ends)."""
    def refuse(name):
        def call(*args, **kwargs):
            raise Forbidden(name)
        return call

    class Refused:                  # every backward, however it was imported, ends in the engine
        def __getattr__(self, name):
            raise Forbidden("autograd (a backward or torch.autograd.grad)")

    def set_grad(mode):
        if mode:
            raise Forbidden("autograd: it turned grad mode on (torch.enable_grad, set_grad_enabled, or a torch.func "
                            "transform that does)")
        setter(mode)

    used = []

    def watch(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.replace("\\", "/").endswith(FORWARD_MODE):
            used.append(frame.f_code.co_name)

    targets = [(torch.autograd, "grad"), (torch.autograd, "backward"), (torch.Tensor, "backward")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]
    engine, setter, profiler = Variable._execution_engine, torch._C._set_grad_enabled, sys.getprofile()
    with torch.no_grad():
        try:
            for owner, name, _ in saved:
                setattr(owner, name, refuse(f"{owner.__name__}.{name}"))
            Variable._execution_engine, torch._C._set_grad_enabled = Refused(), set_grad
            sys.setprofile(watch)
            yield
        finally:
            sys.setprofile(profiler)
            Variable._execution_engine, torch._C._set_grad_enabled = engine, setter
            for owner, name, original in saved:
                setattr(owner, name, original)
    if used:
        raise Forbidden(f"torch.func / forward-mode autograd ({used[0]})")
