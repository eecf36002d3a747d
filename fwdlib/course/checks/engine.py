"""How an exercise is checked: run the student's function on cases, compare with the reference
(tensors, scalars, tuples), name the slip a wrong answer most likely made, and rerun a measured
experiment."""
from __future__ import annotations

import math
import re

import numpy as np
import torch

from ... import algorithms, train
from ...data import Dataset, first, load
from ...utils import seed_all


class Mismatch(Exception):
    """Raised by comparisons with a message for the student."""


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def small(value) -> str:
    """A short rendering of an input, for the failing example (lists of tensors included)."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 24:
            return repr(value.detach().cpu().numpy().round(4).tolist())
        return f"<tensor {tuple(value.shape)}>"
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"<{type(value).__name__} of {len(value)}>"
        inner = ", ".join(small(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(value)


def compare_tensors(got, expected: torch.Tensor, *, name: str = "your result", rtol=1e-4, atol=1e-5) -> None:
    if got is None:
        raise Mismatch(f"{name} is None: did you forget to `return` it?")
    if got is Ellipsis:
        raise NotImplementedError
    if not isinstance(got, torch.Tensor):
        raise Mismatch(f"{name} should be a torch tensor, got {describe(got)}")
    if got.shape != expected.shape:
        hint = ""
        if got.shape == expected.shape[::-1] and got.dim() == 2:
            hint = " (transposed?)"
        elif got.numel() == expected.numel():
            hint = " (same number of elements: a reshape or a missing/extra dimension?)"
        elif got.dim() == expected.dim() - 1 or got.dim() == 0:
            hint = " (summed or averaged over one dimension too many?)"
        raise Mismatch(f"{name} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}{hint}")
    if got.dtype != expected.dtype and not (got.is_floating_point() and expected.is_floating_point()):
        raise Mismatch(f"{name} has dtype {got.dtype}, expected {expected.dtype}")
    got_f, exp_f = got.detach().double(), expected.detach().double()
    if torch.allclose(got_f, exp_f, rtol=rtol, atol=atol):
        return
    diff = (got_f - exp_f).abs()
    where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape)) if diff.dim() else ()
    hints = []
    offset = got_f - exp_f
    if offset.numel() > 1 and torch.allclose(offset, offset.flatten()[0].expand_as(offset), atol=atol * 10):
        hints.append(f"every entry is off by the same constant {offset.flatten()[0].item():.4g}")
    if torch.allclose(got_f, -exp_f, rtol=rtol, atol=atol):
        hints.append("the sign is flipped")
    if got_f.dim() == 2 and got_f.shape[0] == got_f.shape[1] and torch.allclose(got_f.T, exp_f, rtol=rtol, atol=atol):
        hints.append("it is the transpose of the right answer")
    ratio = (got_f.flatten() / exp_f.flatten().where(exp_f.flatten().abs() > 1e-12, torch.ones(1, dtype=torch.float64)))
    r = ratio[0].item()
    whole = any(abs(v - round(v)) < 1e-3 and round(v) >= 2 for v in (r, 1 / r if r else 0))
    if (torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-3) and abs(r - 1) > 1e-3
            and (ratio.numel() > 1 or whole)):
        hints.append(f"{'every entry is' if ratio.numel() > 1 else 'it is'} scaled by {ratio[0].item():.4g} "
                     "(a missing or extra factor: a sum instead of a mean?)")
    raise Mismatch(f"{name} differs from the right answer: largest difference {diff.max().item():.4g} "
                    f"at index {where} (your value there: {got_f[where].item():.6g})"
                    + (f"; hint: {'; '.join(hints)}" if hints else ""))


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


def _slip(student, cases, slips, compare) -> str | None:
    """The message of the first known slip (a plausible wrong answer) that the student's answers
    match on every case: one matching case could be a different mistake that agrees there."""
    for wrong, message in slips:
        try:
            for case in cases:
                copies = tuple(c.clone() if isinstance(c, torch.Tensor) else c for c in case)
                compare(student(*copies), wrong(*case))
        except Exception:  # noqa: BLE001 - not this slip
            continue
        return message
    return None


def run_cases(exercise: str, student, cases, reference, compare=compare_tensors, slips=()) -> Result:
    """Call student(*case) for each case and compare with reference(*case). `slips`: pairs of
    (a wrong reference, the message that names that mistake)."""
    if student is Ellipsis or student is None:
        print(f"Exercise {exercise} not attempted yet")
        return verdict(exercise, False)
    for number, case in enumerate(cases, 1):
        expected = reference(*case)
        copies = tuple(c.clone() if isinstance(c, torch.Tensor) else c for c in case)
        example = ", ".join(small(c) for c in case)
        try:
            got = student(*copies)
        except NotImplementedError as err:
            print(not_attempted(exercise, err))
            return verdict(exercise, False)
        except Exception as err:  # noqa: BLE001 - the student's bug, reported as feedback
            print(f"✗ Exercise {exercise}: your code raised {type(err).__name__}: {err}\n"
                  f"  on input #{number}: ({example})")
            return verdict(exercise, False)
        try:
            compare(got, expected)
        except NotImplementedError:
            print(f"Exercise {exercise} not attempted yet")
            return verdict(exercise, False)
        except Mismatch as err:
            named = _slip(student, cases, slips, compare)
            print(f"✗ Exercise {exercise}: {named or err}.\n  Failing input #{number}: ({example})")
            return verdict(exercise, False)
        except Exception as err:  # noqa: BLE001 - the check's own failure, not the student's
            print(f"✗ Exercise {exercise}: the check could not compare your answer ({type(err).__name__}: "
                  f"{err}); you returned {describe(got)[:200]} for input #{number}: ({example})")
            return verdict(exercise, False)
        for original, copy in zip(case, copies):
            if isinstance(original, torch.Tensor) and not torch.equal(original, copy):
                print(f"✗ Exercise {exercise}: your code changed its input in place; work on a copy "
                      "(for example x = x.clone())")
                return verdict(exercise, False)
    print(f"✓ Exercise {exercise}: correct on {len(cases)} inputs.")
    return verdict(exercise, True)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def compare_tuple(names):
    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            raise Mismatch(f"return a tuple ({', '.join(names)}), got {describe(got)}")
        for name, g, e in zip(names, got, expected):
            compare_tensors(g, e, name=name)
    return compare


def scalar_compare(rel=1e-6, name="your result"):
    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if expected is None:
            if got is not None:
                raise Mismatch(f"{name} should be None here (the window is invalid), got {got!r}")
            return
        if got is None:
            raise Mismatch(f"{name} is None: did you forget to `return` it?")
        if isinstance(got, torch.Tensor):
            got = got.item()
        if not isinstance(got, (int, float)):
            raise Mismatch(f"{name} should be a number, got {describe(got)}")
        if not math.isclose(got, expected, rel_tol=rel, abs_tol=1e-9):
            hint = ""
            if expected and math.isclose(got / expected, 2, rel_tol=1e-6):
                hint = " (twice the right answer: averaging the two ends needs a / 2)"
            elif expected and math.isclose(got / expected, 1000, rel_tol=1e-6):
                hint = " (1000x too large: millijoules or joules?)"
            elif expected and math.isclose(got / expected, 0.5, rel_tol=1e-6):
                hint = " (half the right answer: a factor of 2 missing?)"
            raise Mismatch(f"{name} is {got:.6g}, off by {abs(got - expected):.4g} "
                            f"({100 * abs(got - expected) / max(abs(expected), 1e-12):.2f}%){hint}")
    return compare


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
            print(f"✗ Exercise {exercise}: for {setting!r} you measured {got:.4f}, the same recipe gives "
                  f"{expected:.4f}. Seed with fwdlib.seed_all(0) right before building the model, train with "
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
