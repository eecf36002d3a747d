"""What every check shares: its verdict, the record of what passed, compact renderings of an input,
and the measured experiments a check reruns (the function checks' properties are in contract.py)."""
from __future__ import annotations

import math
import re

import torch

from ... import algorithms, train
from ...data import Dataset, first, load
from ...session import seed_all


class Mismatch(Exception):
    """Raised by comparisons with a message for the student."""


def describe(value) -> str:
    """What a value is, in a few words: a tensor by its shape and dtype, a container by its items."""
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)):
        items = ", ".join(describe(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"{type(value).__name__} of {len(value)} ({items})"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 80 else text[:77] + '...'}"


def rounded(value):
    """Nested floats to 4 significant digits, for a compact failing input."""
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return float(f"{value:.4g}") if isinstance(value, float) else value


def small(value) -> str:
    """A short rendering of an input, for the failing example (lists of tensors included)."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 24:
            return repr(rounded(value.detach().cpu().tolist()))
        return f"<tensor {tuple(value.shape)}{'' if value.is_contiguous() else ', not contiguous'}>"
    if isinstance(value, torch.nn.Module):
        return f"<{type(value).__name__}>"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {small(v)}" for k, v in value.items()) + "}" if len(value) <= 8 else \
            f"<dict of {len(value)}>"
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"<{type(value).__name__} of {len(value)}>"
        inner = ", ".join(small(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(rounded(value))


class Result:
    """A check's verdict: truthy when right; shows nothing in a notebook (the message is printed)."""

    def __init__(self, ok: bool):
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other) -> bool:
        return self.ok == bool(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"Result({self.ok})"

    def _ipython_display_(self) -> None:
        pass


_PASSED: set[str] = set()


def verdict(exercise: str, ok: bool) -> Result:
    if ok:
        _PASSED.add(exercise)
    else:
        _PASSED.discard(exercise)
    return Result(ok)


def solved(*exercises: str) -> bool:
    """Whether each exercise has passed its check in this session; if one has not, say which to
    finish (a demo cell that uses a student's function runs only after its check passed)."""
    for exercise in exercises:
        if exercise not in _PASSED:
            print(f"finish Exercise {exercise} first (its check has not passed yet); this cell uses your answer")
            return False
    return True


def not_attempted(exercise: str, err: NotImplementedError) -> str:
    """"not attempted yet", or which earlier exercise the student's code is waiting for."""
    other = re.search(r"Exercise (\d+\.\d+)", str(err))
    if other and other[1] != exercise:
        return f"Exercise {exercise} uses your answer to Exercise {other[1]}: finish Exercise {other[1]} first"
    return f"Exercise {exercise} not attempted yet"


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def experiment_data(n_train: int = 512, n_val: int = 256) -> Dataset:
    """The first images of the embedded sample: an experiment the check can rerun in a second."""
    return first(load("fashion_mnist_sample", device="cpu"), n_train, n_val)


def measured(exercise: str, student, reference, settings, data) -> Result:
    """A measurement the student wrote: rerun it for each setting and compare with ours."""
    if student is Ellipsis or student is None:
        print(f"Exercise {exercise} not attempted yet")
        return verdict(exercise, False)
    for setting in settings:
        expected = reference(setting, data)
        try:
            got = student(setting, data)
        except NotImplementedError as err:
            print(not_attempted(exercise, err))
            return verdict(exercise, False)
        except Exception as err:  # noqa: BLE001 - the student's bug, reported as feedback
            print(f"✗ Exercise {exercise}: your code raised {type(err).__name__}: {err} for setting {setting!r}")
            return verdict(exercise, False)
        if not isinstance(got, (float, int)) or not 0.0 <= got <= 1.0:
            print(f"✗ Exercise {exercise}: return the validation accuracy as a number in [0, 1], got {describe(got)}")
            return verdict(exercise, False)
        if not math.isclose(got, expected, abs_tol=1e-6):
            print(f"✗ Exercise {exercise}: for {setting!r} you measured {got:.4f}; the same recipe gives another "
                  "accuracy. Seed with fwdlib.seed_all(0) right before building the model, train with "
                  "train.fit(model, data, epochs=..., batch_size=128, progress=False) and return "
                  "train.evaluate(model, data.val)")
            return verdict(exercise, False)
    print(f"✓ Exercise {exercise}: your measurement reproduces for {', '.join(map(repr, settings))}.")
    return verdict(exercise, True)


def accuracy_after(name: str, config: dict, epochs: int, data: Dataset) -> float:
    seed_all(0)
    model = algorithms.build(name, input_shape=data.input_shape, num_classes=data.num_classes, **config)
    train.fit(model, data, epochs=epochs, batch_size=128, progress=False)
    return train.evaluate(model, data.val)
