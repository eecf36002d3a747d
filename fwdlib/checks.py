"""Immediate feedback for the exercises: `check.ex2_3(your_function)`.

Each check runs the student's function on several random inputs (the first one tiny, so a
failure comes with a small example), compares it with a reference, and says precisely what is
wrong: a missing return, a shape or dtype mismatch, the largest difference and where it is, and
common slips (off by a constant, wrong sign, transposed). It never prints the reference's values.
An unsolved exercise (a stub raising NotImplementedError, or a `...` placeholder) prints
"Exercise 2.3 not attempted yet" instead of failing, so exercise notebooks run top to bottom.

Every check returns True or False, so tests can assert on it.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from .algorithms import cafo, ff
from .report import bootstrap_ci


class _Mismatch(Exception):
    """Raised by comparisons with a message for the student."""


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def _small(value) -> str:
    """A short rendering of an input, for the failing example."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 24:
            return repr(value.detach().cpu().numpy().round(4).tolist())
        return f"<tensor {tuple(value.shape)}>"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"<{type(value).__name__} of {len(value)}>"
    return repr(value)


def compare_tensors(got, expected: torch.Tensor, *, name: str = "your result", rtol=1e-4, atol=1e-5) -> None:
    if got is None:
        raise _Mismatch(f"{name} is None: did you forget to `return` it?")
    if got is Ellipsis:
        raise NotImplementedError
    if not isinstance(got, torch.Tensor):
        raise _Mismatch(f"{name} should be a torch tensor, got {_describe(got)}")
    if got.shape != expected.shape:
        hint = ""
        if got.shape == expected.shape[::-1] and got.dim() == 2:
            hint = " (transposed?)"
        elif got.numel() == expected.numel():
            hint = " (same number of elements: a reshape or a missing/extra dimension?)"
        elif got.dim() == expected.dim() - 1 or got.dim() == 0:
            hint = " (summed or averaged over one dimension too many?)"
        raise _Mismatch(f"{name} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}{hint}")
    if got.dtype != expected.dtype and not (got.is_floating_point() and expected.is_floating_point()):
        raise _Mismatch(f"{name} has dtype {got.dtype}, expected {expected.dtype}")
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
    raise _Mismatch(f"{name} differs from the right answer: largest difference {diff.max().item():.4g} "
                    f"at index {where} (your value there: {got_f[where].item():.6g})"
                    + (f"; hint: {'; '.join(hints)}" if hints else ""))


def _run(exercise: str, student, cases, reference, compare=compare_tensors) -> bool:
    """Call student(*case) for each case and compare with reference(*case)."""
    if student is Ellipsis or student is None:
        print(f"Exercise {exercise} not attempted yet")
        return False
    for number, case in enumerate(cases, 1):
        expected = reference(*case)
        copies = tuple(c.clone() if isinstance(c, torch.Tensor) else c for c in case)
        try:
            got = student(*copies)
            compare(got, expected)
        except NotImplementedError:
            print(f"Exercise {exercise} not attempted yet")
            return False
        except _Mismatch as err:
            example = ", ".join(_small(c) for c in case)
            print(f"✗ Exercise {exercise}: {err}.\n  Failing input #{number}: ({example})")
            return False
        except Exception as err:  # noqa: BLE001 - the student's bug, reported as feedback
            print(f"✗ Exercise {exercise}: your code raised {type(err).__name__}: {err}\n"
                  f"  on input #{number}: ({', '.join(_small(c) for c in case)})")
            return False
        for original, copy in zip(case, copies):
            if isinstance(original, torch.Tensor) and not torch.equal(original, copy):
                print(f"✗ Exercise {exercise}: your code changed its input in place; work on a copy "
                      "(for example x = x.clone())")
                return False
    print(f"✓ Exercise {exercise}: correct on {len(cases)} inputs.")
    return True


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ============================================================================ lesson 01

def ex1_1(goodness) -> bool:
    """goodness(h): sum of squares of (already ReLU'd) activities per row -> (B,)."""
    cases = [(torch.rand(2, 3, generator=_gen(0)),)] + \
            [(F.relu(torch.randn(16, 50, generator=_gen(s))),) for s in (1, 2)]
    return _run("1.1", goodness, cases, ff.goodness)


def ex1_2(p_positive) -> bool:
    """p_positive(g, theta): the probability that the input is positive, sigmoid(g - theta)."""
    cases = [(torch.tensor([3.0, 5.0, 8.0]), 5.0)] + \
            [(torch.rand(20, generator=_gen(s)) * 200, 100.0) for s in (1, 2)]
    return _run("1.2", p_positive, cases, lambda g, theta: torch.sigmoid(g - theta))


def ex1_3(wrong_labels) -> bool:
    """wrong_labels(y, num_classes): a uniformly random label different from each y."""
    def compare(got, y_and_c):
        y, c = y_and_c
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, torch.Tensor) or got.shape != y.shape:
            raise _Mismatch(f"expected a tensor of shape {tuple(y.shape)}, got {_describe(got)}")
        if got.dtype != torch.int64:
            raise _Mismatch(f"labels should be int64 (torch.long), got {got.dtype}")
        if bool(((got < 0) | (got >= c)).any()):
            raise _Mismatch(f"some labels fall outside 0..{c - 1}")
        same = int((got == y).sum())
        if same:
            raise _Mismatch(f"{same} of {len(y)} negative labels equal the true label "
                            "(a permutation of the batch does this about 1/C of the time)")
        shifts = torch.bincount((got - y) % c, minlength=c)[1:].double()
        if len(y) >= 1000 and (shifts.min() < 0.5 * shifts.mean() or shifts.max() > 1.5 * shifts.mean()):
            raise _Mismatch("the wrong labels are not uniform over the other classes "
                            f"(counts of (neg - y) mod C: {shifts.long().tolist()})")

    cases = [(torch.tensor([0, 1, 2, 2]), 3), (torch.randint(0, 10, (20_000,), generator=_gen(1)), 10)]
    return _run("1.3", wrong_labels, cases, lambda y, c: (y, c), compare)


# ============================================================================ lesson 02

def ex2_1(rms_normalise) -> bool:
    """rms_normalise(x): divide each row by its root mean square (add 1e-8 for safety)."""
    cases = [(torch.tensor([[3.0, 4.0], [1.0, 1.0]]),)] + \
            [(torch.randn(8, 30, generator=_gen(s)) * 5,) for s in (1, 2)]
    return _run("2.1", rms_normalise, cases, ff.rms_normalise)


def ex2_2(ff_layer_loss) -> bool:
    """ff_layer_loss(g_pos, g_neg, theta): mean of softplus(theta - g_pos) + softplus(g_neg - theta)."""
    cases = [(torch.tensor([6.0, 2.0]), torch.tensor([1.0, 5.0]), 4.0)] + \
            [(torch.rand(32, generator=_gen(s)) * 100, torch.rand(32, generator=_gen(s + 9)) * 100, 50.0)
             for s in (1, 2)]
    return _run("2.2", ff_layer_loss, cases, ff.ff_layer_loss)


def ex2_3(embed_label) -> bool:
    """embed_label(x, labels, num_classes): flatten, write one-hot(labels) into the first C pixels."""
    cases = [(torch.randn(2, 1, 2, 3, generator=_gen(0)), torch.tensor([2, 0]), 3),
             (torch.randn(5, 1, 28, 28, generator=_gen(1)), torch.randint(0, 10, (5,), generator=_gen(2)), 10)]
    return _run("2.3", embed_label, cases, ff.embed_label)


# ============================================================================ lesson 03

def ex3_1(ridge_solution) -> bool:
    """ridge_solution(H, Y, lam): W = (H^T H + lam I)^-1 H^T Y."""
    cases = [(torch.randn(n, d, dtype=torch.float64, generator=_gen(s)),
              torch.randn(n, c, dtype=torch.float64, generator=_gen(s + 1)), lam)
             for s, (n, d, c, lam) in enumerate([(4, 2, 2, 0.5), (50, 8, 3, 1.0), (30, 12, 4, 0.1)])]
    return _run("3.1", ridge_solution, cases, cafo.ridge_solution)


def ex3_2(sparsemax) -> bool:
    """sparsemax(z): project each row of z onto the probability simplex."""
    cases = [(torch.tensor([[1.0, 0.0, -1.0], [0.9, 0.2, -0.5]]),)] + \
            [(torch.randn(10, 6, generator=_gen(s)) * 2,) for s in (1, 2)]
    return _run("3.2", sparsemax, cases, cafo.sparsemax)


def ex3_3(ensemble_predict) -> bool:
    """ensemble_predict(block_logits): argmax of the sum over blocks of each block's softmax."""
    def reference(logits):
        return torch.stack([z.softmax(1) for z in logits]).sum(0).argmax(1)

    cases = [([torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.5]])],)] + \
            [([torch.randn(40, 10, generator=_gen(s + k)) * (k + 1) for k in range(3)],) for s in (1, 5)]
    return _run("3.3", ensemble_predict, cases, reference)


# ============================================================================ lesson 04

def _mf_reference_loss(a, m, y):
    return F.cross_entropy(a @ m.T, y)


def ex4_1(mf_local_loss) -> bool:
    """mf_local_loss(a, M, y): cross-entropy of the layer's class scores a M^T."""
    cases = [(torch.rand(2, 3, generator=_gen(0)), torch.randn(2, 3, generator=_gen(1)), torch.tensor([0, 1]))] + \
            [(torch.rand(16, 20, generator=_gen(s)), torch.randn(5, 20, generator=_gen(s + 1)),
              torch.randint(0, 5, (16,), generator=_gen(s + 2))) for s in (3, 6)]
    return _run("4.1", mf_local_loss, cases, _mf_reference_loss)


def _mf_layer_case(seed: int, b=8, d_in=6, h=5, c=3):
    g = _gen(seed)
    return (torch.randn(b, d_in, generator=g), torch.randn(h, d_in, generator=g),
            torch.randn(h, generator=g), torch.randn(c, h, generator=g), torch.randint(0, c, (b,), generator=g))


def _mf_autograd(a_prev, w, b, m, y):
    w, b, m = (t.clone().requires_grad_() for t in (w, b, m))
    loss = _mf_reference_loss(F.relu(a_prev @ w.T + b), m, y)
    return torch.autograd.grad(loss, (w, b, m))


def _compare_tuple(names):
    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            raise _Mismatch(f"return a tuple ({', '.join(names)}), got {_describe(got)}")
        for name, g, e in zip(names, got, expected):
            compare_tensors(g, e, name=name)
    return compare


def ex4_2(mf_gradients) -> bool:
    """mf_gradients(a_prev, W, b, M, y) -> (dW, db, dM), from the closed forms (no autograd)."""
    cases = [_mf_layer_case(0, b=2, d_in=3, h=2, c=2), _mf_layer_case(1), _mf_layer_case(2, b=16, d_in=10, h=7, c=4)]
    return _run("4.2", mf_gradients, cases, _mf_autograd, _compare_tuple(("dW", "db", "dM")))


def ex4_3(mf_sgd_step) -> bool:
    """mf_sgd_step(a_prev, W, b, M, y, lr) -> (W, b, M) after one plain SGD step on the local loss."""
    def reference(a_prev, w, b, m, y, lr):
        dw, db, dm = _mf_autograd(a_prev, w, b, m, y)
        return w - lr * dw, b - lr * db, m - lr * dm

    cases = [(*_mf_layer_case(s), lr) for s, lr in ((0, 0.1), (1, 0.5))]
    return _run("4.3", mf_sgd_step, cases, reference, _compare_tuple(("new W", "new b", "new M")))


# ============================================================================ lesson 05

def _scalar_compare(rel=1e-6, name="your result"):
    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if expected is None:
            if got is not None:
                raise _Mismatch(f"{name} should be None here (the window is invalid), got {got!r}")
            return
        if got is None:
            raise _Mismatch(f"{name} is None: did you forget to `return` it?")
        if isinstance(got, torch.Tensor):
            got = got.item()
        if not isinstance(got, (int, float)):
            raise _Mismatch(f"{name} should be a number, got {_describe(got)}")
        if not math.isclose(got, expected, rel_tol=rel, abs_tol=1e-9):
            hint = ""
            if expected and math.isclose(got / expected, 2, rel_tol=1e-6):
                hint = " (twice the right answer: averaging the two ends needs a / 2)"
            elif expected and math.isclose(got / expected, 1000, rel_tol=1e-6):
                hint = " (1000x too large: millijoules or joules?)"
            elif expected and math.isclose(got / expected, 0.5, rel_tol=1e-6):
                hint = " (half the right answer: a factor of 2 missing?)"
            raise _Mismatch(f"{name} is {got:.6g}, off by {abs(got - expected):.4g} "
                            f"({100 * abs(got - expected) / max(abs(expected), 1e-12):.2f}%){hint}")
    return compare


def ex5_1(trapezoid_energy) -> bool:
    """trapezoid_energy(times, watts): joules by the trapezoid rule over (time, power) samples."""
    def reference(times, watts):
        return sum((t1 - t0) * (w0 + w1) / 2 for t0, t1, w0, w1 in zip(times, times[1:], watts, watts[1:]))

    rng = np.random.default_rng(0)
    uneven = np.cumsum(rng.uniform(0.05, 0.2, 40)).tolist()
    cases = [([0.0, 1.0, 3.0], [100.0, 200.0, 100.0]), (uneven, rng.uniform(80, 700, 40).tolist())]
    return _run("5.1", trapezoid_energy, cases, reference, _scalar_compare())


def ex5_2(counter_energy) -> bool:
    """counter_energy(start_mj, end_mj): joules from an energy counter in millijoules; None if it went backwards."""
    cases = [(1_000, 6_500), (123_456_789, 123_999_999), (5_000, 4_000)]
    return _run("5.2", counter_energy, cases,
                lambda start, end: (end - start) / 1000 if end >= start else None, _scalar_compare())


def ex5_3(mlp_forward_flops) -> bool:
    """mlp_forward_flops(batch, sizes): FLOPs of the forward GEMMs of an MLP with layer sizes
    `sizes` (input first, output last); a multiply-add counts as 2 FLOPs."""
    def reference(batch, sizes):
        return 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    cases = [(1, [3, 2]), (128, [784, 1000, 1000, 10]), (7, [10, 20, 30, 5])]
    return _run("5.3", mlp_forward_flops, cases, reference, _scalar_compare())


# ============================================================================ lesson 06

def _reference_bootstrap(values, level=0.95, resamples=10_000, seed=0):
    return bootstrap_ci(values, level=level, resamples=resamples, seed=seed)


def ex6_1(bootstrap_ci) -> bool:
    """bootstrap_ci(values, level=0.95, resamples=10000, seed=0) -> (lo, hi) of the median."""
    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise _Mismatch(f"return a pair (lo, hi), got {_describe(got)}")
        lo, hi = (float(v) for v in got)
        if lo > hi:
            raise _Mismatch(f"lo {lo:.4g} is above hi {hi:.4g}")
        # Resampling schemes differ between correct solutions: allow the Monte Carlo error.
        width = max(expected[1] - expected[0], 1e-12)
        if abs(lo - expected[0]) > 0.1 * width + 1e-9 or abs(hi - expected[1]) > 0.1 * width + 1e-9:
            raise _Mismatch(f"your interval ({lo:.4g}, {hi:.4g}) is not the 95% percentile interval of the "
                            "bootstrap medians (resample with replacement, take the median of each "
                            "resample, then the 2.5% and 97.5% quantiles)")

    rng = np.random.default_rng(3)
    cases = [([3.0, 3.0, 3.0],), ([0.0, 1.0],), (rng.normal(10, 2, 60).tolist(),)]
    return _run("6.1", bootstrap_ci, cases, _reference_bootstrap, compare)


def ex6_2(ratio_to_twin) -> bool:
    """ratio_to_twin(rival_values, twin_values): median(rival) / median(twin)."""
    cases = [([2.0, 4.0, 9.0], [6.0, 6.0, 7.5]), ([10.0, 12.0, 20.0], [5.0, 7.0, 9.5])]
    return _run("6.2", ratio_to_twin, cases, lambda a, b: float(np.median(a) / np.median(b)), _scalar_compare())


def ex6_3(gain_survives) -> bool:
    """gain_survives(rival, twin, higher_is_better) -> True only when the rival's 95% bootstrap
    interval lies entirely on the better side of the twin's."""
    def reference(rival, twin, higher):
        (rlo, rhi), (tlo, thi) = _reference_bootstrap(rival), _reference_bootstrap(twin)
        return rlo > thi if higher else rhi < tlo

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (bool, np.bool_)):
            raise _Mismatch(f"return True or False, got {_describe(got)}")
        if bool(got) != expected:
            raise _Mismatch(f"you answered {bool(got)}, but the intervals say {expected}")

    cases = [([90.1, 90.3, 90.2], [89.0, 89.2, 89.1], True),     # clear accuracy gain
             ([90.1, 88.0, 91.5], [89.0, 90.5, 89.8], True),     # overlapping: unresolved
             ([10.0, 10.5, 10.2], [20.0, 21.0, 20.5], False),    # time: lower is better
             ([10.0, 10.5, 10.2], [20.0, 21.0, 20.5], True)]     # faster is not "higher"
    return _run("6.3", gain_survives, cases, reference, compare)


check = SimpleNamespace(**{name: fn for name, fn in globals().items() if name.startswith("ex")})
