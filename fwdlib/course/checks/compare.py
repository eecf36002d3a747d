"""How a student's answer is set against the reference's: tensors, tuples of them, numbers.

A mismatch names the property that failed and the student's own value, never the expected value
of a scored input: feedback says what is wrong, it is not an answer key. Each comparison takes
the `Context` of the input it runs on (what that input is, the sizes a missing factor can be).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from .engine import Mismatch, describe


@dataclass(frozen=True)
class Context:
    """What a comparison knows of its input: the input itself, the sizes in it ("dim 0 of `x`" -> 8),
    a tolerance multiplier for inputs of large magnitude, and what to say when the answer is not finite."""
    args: tuple = ()
    sizes: dict = field(default_factory=dict)
    tol: float = 1.0
    nonfinite: str = "a step in between is not finite here (exp of a large number, a log, sqrt or division at 0?)"


PLAIN = Context()


def about(relative: float) -> str:
    """A relative error to one significant digit: enough to judge, too coarse to reconstruct."""
    if relative > 1:
        return "more than 100%"
    return f"about {float(f'{relative:.0e}'):.0%}" if relative >= 0.01 else f"about {relative:.0e}"


def shown(value: float, relative: float) -> str:
    """The student's value with the digits that show how it differs (a close miss needs more)."""
    return f"{value:.10g}" if relative < 1e-3 else f"{value:.4g}"


def factor_named(k: float, sizes: dict) -> str | None:
    """'1/√8 (8 = dim 0 of `x`)' when k is a size of the input, its inverse or a square root of either."""
    for label, n in sizes.items():
        if n < 2:
            continue
        for value, text in ((n, f"{n}"), (1 / n, f"1/{n}"), (n ** 0.5, f"√{n}"), (n ** -0.5, f"1/√{n}")):
            if math.isclose(k, value, rel_tol=1e-3):
                mean = " (a sum instead of a mean, or the reverse?)" if text in (f"{n}", f"1/{n}") else ""
                return f"every entry is scaled by {text}, where {n} is {label}{mean}"
    return None


def _hints(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float, ctx: Context) -> list[str]:
    offset = got - expected
    constant = offset.flatten()[0]
    if offset.numel() > 1 and constant.abs() > atol and bool(((offset - constant).abs() <= 0.01 * constant.abs()).all()):
        return ["every entry is off by the same constant"]
    if torch.allclose(got, -expected, rtol=rtol, atol=atol):
        return ["the sign is flipped"]
    if got.dim() == 2 and got.shape[0] == got.shape[1] and torch.allclose(got.T, expected, rtol=rtol, atol=atol):
        return ["it is the transpose of the right answer"]
    nonzero = expected.abs() > 1e-12
    if int(nonzero.sum()) >= 2 and not bool((got[~nonzero].abs() > atol).any()):
        ratio = got[nonzero] / expected[nonzero]
        k = ratio[0].item()
        if torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-3) and abs(k - 1) > 1e-3 and k > 0:
            named = factor_named(k, ctx.sizes)
            return [named or f"every entry is scaled by the same factor {k:.4g} (a missing or extra factor)"]
    return []


def compare_tensors(got, expected: torch.Tensor, ctx: Context = PLAIN, *, name: str = "your result",
                    rtol: float = 1e-4, atol: float = 1e-5) -> None:
    if got is None:
        raise Mismatch(f"{name} is None: did you forget to `return` it?")
    if got is Ellipsis:
        raise NotImplementedError
    if isinstance(got, np.ndarray):
        raise Mismatch(f"{name} should be a torch tensor, got a NumPy array (keep the computation in torch)")
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
    got_f, exp_f = got.detach().cpu().double(), expected.detach().cpu().double()
    bad = ~torch.isfinite(got_f) & torch.isfinite(exp_f)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        kind = "nan" if bool(got_f[where].isnan()) else "inf"
        raise Mismatch(f"{name} is {kind} at index {where} where the right answer is a finite number: "
                       f"{ctx.nonfinite}")
    if expected.dtype == torch.float64 and got.dtype == torch.float64:
        rtol, atol = 1e-9, 1e-11             # float64 in, float64 out: a float32 detour shows
    rtol, atol = rtol * ctx.tol, atol * ctx.tol
    if torch.allclose(got_f, exp_f, rtol=rtol, atol=atol, equal_nan=True):
        return
    diff = (got_f - exp_f).abs().nan_to_num(math.inf)
    where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape)) if diff.dim() else ()
    relative = diff[where].item() / max(exp_f[where].abs().item(), atol)
    hints = _hints(got_f, exp_f, rtol, atol, ctx)
    if expected.dtype == torch.float64 and relative < 1e-5:
        hints.append("an error this small in float64 is usually a float32 tensor or step in between "
                     "(torch.eye(D) without dtype=, a .float()), which rounds at about 1e-7")
    raise Mismatch(f"{name} differs from the right answer at index {where} (your value there: "
                   f"{shown(got_f[where].item(), relative)}, relative error {about(relative)})"
                   + (f"; hint: {'; '.join(hints)}" if hints else ""))


def compare_tuple(names):
    def compare(got, expected, ctx: Context = PLAIN):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            raise Mismatch(f"return a tuple ({', '.join(names[:len(expected)])}), got {describe(got)}")
        for name, g, e in zip(names, got, expected):
            compare_tensors(g, e, ctx, name=name)
    return compare


def as_number(got, name: str = "your result") -> float:
    """A real number from an int, a float, a NumPy scalar or a one-element array or tensor."""
    if got is None:
        raise Mismatch(f"{name} is None: did you forget to `return` it?")
    if isinstance(got, torch.Tensor) and got.numel() == 1 or isinstance(got, np.ndarray) and got.size == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        raise Mismatch(f"{name} should be a number, got {describe(got)}")
    try:
        return float(got)
    except OverflowError:
        return math.inf if got > 0 else -math.inf


def as_numbers(got, count: int, what: str) -> list[float]:
    """`count` real numbers from a list, a tuple, or a 1-D NumPy array or tensor; `what` says what
    to return ("one ratio per seed that both ran") when it is something else."""
    if got is Ellipsis:
        raise NotImplementedError
    items = list(got) if isinstance(got, (list, tuple)) else \
        got.tolist() if isinstance(got, (np.ndarray, torch.Tensor)) and got.ndim == 1 else None
    if items is None or len(items) != count:
        raise Mismatch(f"return {what} ({count}), got {describe(got)}")
    return [as_number(item, f"item {k} of your answer") for k, item in enumerate(items)]


SIGN = ((-1, "the sign is flipped"),)


def scalar_compare(rel=1e-6, name="your result", hints=SIGN):
    """Numbers compared to a relative tolerance; `hints` are (ratio of yours to the right answer,
    what that ratio means in this exercise)."""
    def compare(got, expected, ctx: Context = PLAIN):
        if got is Ellipsis:
            raise NotImplementedError
        if expected is None:
            if got is not None:
                raise Mismatch(f"{name} should be None here (the window is invalid), got {describe(got)}")
            return
        if got is None:
            raise Mismatch(f"{name} is None where an answer exists: did you forget to `return` it, or return "
                           "None for a case that has a value?")
        value = as_number(got, name)
        if not math.isfinite(value):
            raise Mismatch(f"{name} is {value} where the right answer is a finite number: {ctx.nonfinite}")
        if math.isclose(value, expected, rel_tol=rel, abs_tol=1e-9):
            return
        hint = next((f" ({text})" for factor, text in hints
                     if expected and math.isclose(value / expected, factor, rel_tol=1e-6)), "")
        relative = abs(value - expected) / max(abs(expected), 1e-12)
        raise Mismatch(f"{name} {shown(value, relative)} is not the right answer (relative error "
                       f"{about(relative)}){hint}")
    return compare
