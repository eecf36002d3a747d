"""Immediate feedback for the exercises: `check.ex2_3(your_function)`.

Each check runs the student's function on several random inputs (the first one tiny, so a
failure comes with a small example), compares it with a reference, and says precisely what is
wrong: a missing return, a shape or dtype mismatch, the largest difference and where it is, and
common slips (off by a constant, wrong sign, transposed). It never prints the reference's values.
An unsolved exercise (a stub raising NotImplementedError, or a `...` placeholder) prints
"Exercise 2.3 not attempted yet" instead of failing, so exercise notebooks run top to bottom.

Every check returns a `Result` that is truthy when the answer is right (tests assert on it) and
shows nothing in a notebook, so no bare `True`/`False` follows the message. `solved("1.2")` tells
a demo cell whether Exercise 1.2 has passed its check (else it prints "finish Exercise 1.2
first"), and `quiz("1.4", "b")` checks the multiple-choice self-check of a written answer.
"""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from . import algorithms, train
from .algorithms import cafo, ff
from .data import Dataset, first, load
from .report import bootstrap_ci
from .utils import seed_all


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


def _verdict(exercise: str, ok: bool) -> Result:
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


def _slip(got, case, slips, compare) -> str | None:
    """The message of the first known slip (a plausible wrong answer) that `got` matches."""
    for wrong, message in slips:
        try:
            compare(got, wrong(*case))
        except Exception:  # noqa: BLE001 - not this slip
            continue
        return message
    return None


def _run(exercise: str, student, cases, reference, compare=compare_tensors, slips=()) -> Result:
    """Call student(*case) for each case and compare with reference(*case). `slips`: pairs of
    (a wrong reference, the message that names that mistake)."""
    if student is Ellipsis or student is None:
        print(f"Exercise {exercise} not attempted yet")
        return _verdict(exercise, False)
    for number, case in enumerate(cases, 1):
        expected = reference(*case)
        copies = tuple(c.clone() if isinstance(c, torch.Tensor) else c for c in case)
        try:
            got = student(*copies)
            compare(got, expected)
        except NotImplementedError:
            print(f"Exercise {exercise} not attempted yet")
            return _verdict(exercise, False)
        except _Mismatch as err:
            example = ", ".join(_small(c) for c in case)
            named = _slip(got, case, slips, compare)
            print(f"✗ Exercise {exercise}: {named or err}.\n  Failing input #{number}: ({example})")
            return _verdict(exercise, False)
        except Exception as err:  # noqa: BLE001 - the student's bug, reported as feedback
            print(f"✗ Exercise {exercise}: your code raised {type(err).__name__}: {err}\n"
                  f"  on input #{number}: ({', '.join(_small(c) for c in case)})")
            return _verdict(exercise, False)
        for original, copy in zip(case, copies):
            if isinstance(original, torch.Tensor) and not torch.equal(original, copy):
                print(f"✗ Exercise {exercise}: your code changed its input in place; work on a copy "
                      "(for example x = x.clone())")
                return _verdict(exercise, False)
    print(f"✓ Exercise {exercise}: correct on {len(cases)} inputs.")
    return _verdict(exercise, True)


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
    return _run("1.2", p_positive, cases, lambda g, theta: torch.sigmoid(g - theta),
                slips=[(lambda g, theta: torch.sigmoid(theta - g),
                        "you computed sigmoid(theta - g): the sign is reversed. Goodness above the threshold "
                        "must make 'positive' MORE likely")])


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
    return _run("3.1", ridge_solution, cases, cafo.ridge_solution,
                slips=[(lambda h, y, lam: cafo.ridge_solution(h, y, 0.0),
                        "your W is the unregularised least-squares solution: lambda is missing (add lambda times "
                        "the identity to H^T H)")])


def ex3_2(sparsemax) -> bool:
    """sparsemax(z): project each row of z onto the probability simplex."""
    cases = [(torch.tensor([[1.0, 0.0, -1.0], [0.9, 0.2, -0.5]]),)] + \
            [(torch.randn(10, 6, generator=_gen(s)) * 2,) for s in (1, 2)]
    return _run("3.2", sparsemax, cases, cafo.sparsemax,
                slips=[(lambda z: z.softmax(1), "that is softmax, not sparsemax: sparsemax subtracts a threshold tau "
                        "and clips at 0, so small logits get exactly 0")])


def ex3_3(ensemble_predict) -> bool:
    """ensemble_predict(block_logits): argmax of the sum over blocks of each block's softmax."""
    def reference(logits):
        return torch.stack([z.softmax(1) for z in logits]).sum(0).argmax(1)

    cases = [([torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.5]])],)] + \
            [([torch.randn(40, 10, generator=_gen(s + k)) * (k + 1) for k in range(3)],) for s in (1, 5)]
    return _run("3.3", ensemble_predict, cases, reference,
                slips=[(lambda logits: torch.stack(logits).sum(0).argmax(1),
                        "you summed the logits: a block with large logits outvotes the others. Sum each "
                        "block's softmax probabilities instead")])


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

def _reference_bootstrap(values, level=0.95, resamples=10_000, seed=0, statistic=np.median):
    return bootstrap_ci(values, level=level, resamples=resamples, seed=seed, statistic=statistic)


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
    cases = [([3.0, 3.0, 3.0],), ([0.0, 1.0],), (rng.normal(10, 2, 60).tolist(),),
             (rng.exponential(1.0, 40).tolist(),)]          # skewed: the mean's interval is elsewhere
    return _run("6.1", bootstrap_ci, cases, _reference_bootstrap, compare,
                slips=[(lambda values, *_: _reference_bootstrap(values, statistic=np.mean),
                        "your interval is the bootstrap interval of the MEAN; the report uses the MEDIAN "
                        "(np.median of each resample)")])


def ex6_2(ratio_to_twin) -> bool:
    """ratio_to_twin(rival_values, twin_values): median(rival) / median(twin)."""
    cases = [([2.0, 4.0, 9.0], [6.0, 6.0, 7.5]), ([10.0, 12.0, 20.0], [5.0, 7.0, 9.5])]
    return _run("6.2", ratio_to_twin, cases, lambda a, b: float(np.median(a) / np.median(b)), _scalar_compare())


def ex6_3(gain_survives) -> bool:
    """gain_survives(rival, twin, higher_is_better) -> True only when the rival's 95% bootstrap
    interval lies entirely on the better side of the twin's."""
    def reference(rival, twin, higher):
        (rlo, rhi), (tlo, thi) = _reference_bootstrap(rival), _reference_bootstrap(twin)
        return (rlo > thi if higher else rhi < tlo), (rlo, rhi), (tlo, thi), higher

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        answer, rival, twin, higher = expected
        if not isinstance(got, (bool, np.bool_)):
            raise _Mismatch(f"return True or False, got {_describe(got)}")
        if bool(got) != answer:
            raise _Mismatch(f"you answered {bool(got)}, but the intervals say {answer}: rival "
                            f"[{rival[0]:.4g}, {rival[1]:.4g}] against twin [{twin[0]:.4g}, {twin[1]:.4g}], "
                            f"{'higher' if higher else 'lower'} is better")

    cases = [([90.1, 90.3, 90.2], [89.0, 89.2, 89.1], True),     # clear accuracy gain
             ([90.1, 88.0, 91.5], [89.0, 90.5, 89.8], True),     # overlapping: unresolved
             ([10.0, 10.5, 10.2], [20.0, 21.0, 20.5], False),    # time: lower is better
             ([10.0, 10.5, 10.2], [20.0, 21.0, 20.5], True)]     # faster is not "higher"
    return _run("6.3", gain_survives, cases, reference, compare)

# ============================================================================ experiments and steps

def experiment_data(n_train: int = 512, n_val: int = 256) -> Dataset:
    """The first images of the embedded sample: an experiment the check can rerun in a second."""
    return first(load("fashion_mnist_sample", device="cpu"), n_train, n_val)


def _measured(exercise: str, student, reference, settings, data) -> Result:
    """A measurement the student wrote: rerun it for each setting and compare with ours."""
    if student is Ellipsis or student is None:
        print(f"Exercise {exercise} not attempted yet")
        return _verdict(exercise, False)
    for setting in settings:
        expected = reference(setting, data)
        try:
            got = student(setting, data)
        except NotImplementedError:
            print(f"Exercise {exercise} not attempted yet")
            return _verdict(exercise, False)
        except Exception as err:  # noqa: BLE001 - the student's bug, reported as feedback
            print(f"✗ Exercise {exercise}: your code raised {type(err).__name__}: {err} for setting {setting!r}")
            return _verdict(exercise, False)
        if not isinstance(got, (float, int)) or not 0.0 <= got <= 1.0:
            print(f"✗ Exercise {exercise}: return the validation accuracy as a number in [0, 1], got {_describe(got)}")
            return _verdict(exercise, False)
        if not math.isclose(got, expected, abs_tol=1e-6):
            print(f"✗ Exercise {exercise}: for {setting!r} you measured {got:.4f}, the same recipe gives "
                  f"{expected:.4f}. Seed with fwdlib.seed_all(0) right before building the model, train with "
                  "train.fit(model, data, epochs=..., batch_size=128, progress=False) and return "
                  "train.evaluate(model, data.val)")
            return _verdict(exercise, False)
    print(f"✓ Exercise {exercise}: your measurement reproduces for {', '.join(map(repr, settings))}.")
    return _verdict(exercise, True)


def _accuracy_after(name: str, config: dict, epochs: int, data: Dataset) -> float:
    seed_all(0)
    model = algorithms.build(name, input_shape=data.input_shape, num_classes=data.num_classes, **config)
    train.fit(model, data, epochs=epochs, batch_size=128, progress=False)
    return train.evaluate(model, data.val)


def ex1_5(ff_val_accuracy) -> Result:
    """ff_val_accuracy(epochs, data): validation accuracy of FF (hidden (64, 64)) after `epochs` epochs."""
    return _measured("1.5", ff_val_accuracy, lambda e, d: _accuracy_after("ff", {"hidden": (64, 64)}, e, d),
                     (1,), experiment_data())


def ex4_5(mf_val_accuracy) -> Result:
    """mf_val_accuracy(width, data): validation accuracy of MF with two layers of `width` after one epoch."""
    return _measured("4.5", mf_val_accuracy, lambda w, d: _accuracy_after("mf", {"hidden": (w, w)}, 1, d),
                     (16, 64), experiment_data())


def _ff_layer_step_reference(layer, optimizer, x, y, num_classes, theta, generator):
    pos = ff.rms_normalise(ff.embed_label(x, y, num_classes))
    neg = ff.rms_normalise(ff.embed_label(x, ff.wrong_labels(y, num_classes, generator), num_classes))
    g_pos, g_neg = ff.goodness(F.relu(layer(pos))), ff.goodness(F.relu(layer(neg)))
    loss = ff.ff_layer_loss(g_pos, g_neg, theta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def ex2_5(ff_layer_step) -> Result:
    """ff_layer_step(layer, optimizer, x, y, num_classes, theta, generator): one FF step of one
    layer: positives, negatives (ff.wrong_labels with `generator`), the loss, the update; returns the loss."""
    if ff_layer_step is Ellipsis or ff_layer_step is None:
        print("Exercise 2.5 not attempted yet")
        return _verdict("2.5", False)
    x, y = torch.randn(6, 1, 4, 4, generator=_gen(0)), torch.tensor([0, 1, 2, 0, 1, 2])
    runs = {}
    for who, fn in (("reference", _ff_layer_step_reference), ("student", ff_layer_step)):
        torch.manual_seed(0)
        layer = torch.nn.Linear(16, 5)
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.05)
        layer.weight.grad = torch.full_like(layer.weight, 7.0)      # stale gradients a step must clear
        layer.bias.grad = torch.full_like(layer.bias, 7.0)
        before = layer.weight.detach().clone()
        try:
            loss = fn(layer, optimizer, x.clone(), y.clone(), 3, 5.0, _gen(1))
        except NotImplementedError:
            print("Exercise 2.5 not attempted yet")
            return _verdict("2.5", False)
        except Exception as err:  # noqa: BLE001 - the student's bug, reported as feedback
            print(f"✗ Exercise 2.5: your code raised {type(err).__name__}: {err}")
            return _verdict("2.5", False)
        runs[who] = (loss, before, layer.weight.detach().clone())
    loss, before, after = runs["student"]
    ref_loss, _, ref_after = runs["reference"]
    if loss is None:
        message = "return the loss (a scalar tensor) of the step"
    elif not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        message = f"return the loss as a scalar tensor, got {_describe(loss)}"
    elif not torch.allclose(loss.detach(), ref_loss.detach(), rtol=1e-5, atol=1e-6):
        message = (f"your loss {loss.item():.6g} differs from {ref_loss.item():.6g}: positives carry the true label, "
                   "negatives ff.wrong_labels(y, num_classes, generator); both are RMS-normalised before the layer, "
                   "and the loss is ff_layer_loss of the two goodness vectors")
    elif torch.equal(after, before):
        message = "the weights did not change: call optimizer.step() after loss.backward()"
    elif torch.allclose(after, before - 0.05 * 7.0 + (ref_after - before), atol=1e-5):
        message = "the stale gradient was added to yours: call optimizer.zero_grad() before loss.backward()"
    elif not torch.allclose(after, ref_after, rtol=1e-5, atol=1e-6):
        message = "the loss is right but the update is not: zero the gradients, backward the loss, step once"
    else:
        print("✓ Exercise 2.5: your step makes the same negatives, loss and update as ours.")
        return _verdict("2.5", True)
    print(f"✗ Exercise 2.5: {message}.")
    return _verdict("2.5", False)


def _dfa_case(seed: int, channels=(1, 3), side=6, classes=3, batch=4):
    torch.manual_seed(seed)
    block = torch.nn.Sequential(torch.nn.Conv2d(channels[0], channels[1], 3, padding=1), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2))
    x = torch.randn(batch, channels[0], side, side, generator=_gen(seed))
    dim = channels[1] * (side // 2) ** 2
    error = torch.randn(batch, classes, generator=_gen(seed + 1))
    feedback = torch.randn(classes, dim, generator=_gen(seed + 2))
    return block, x, error, feedback


def _dfa_reference(block, x, error, feedback):
    out = block(x.detach())
    return tuple(torch.autograd.grad(out, list(block.parameters()), (error @ feedback).view_as(out)))


def ex3_5(dfa_block_gradients) -> Result:
    """dfa_block_gradients(block, block_input, error, feedback) -> the gradients of the block's
    parameters when its output receives error @ feedback as its gradient (DFA's local backward)."""
    cases = [_dfa_case(0), _dfa_case(1, channels=(2, 4), side=8, classes=5, batch=6)]
    names = ("conv weight gradient", "conv bias gradient")
    return _run("3.5", dfa_block_gradients, cases, _dfa_reference, _compare_tuple(names),
                slips=[(lambda block, x, e, b: tuple(-g for g in _dfa_reference(block, x, e, b)),
                        "every gradient has the wrong sign: the block's output gradient is e B, not -e B")])


def _ridge_sweep_reference(h_train, y_train, h_val, y_val, lambdas):
    targets = F.one_hot(y_train, int(y_train.max()) + 1).to(h_train.dtype)
    return [float((h_val @ cafo.ridge_solution(h_train, targets, lam)).argmax(1).eq(y_val).double().mean())
            for lam in lambdas]


def ex3_6(ridge_sweep) -> Result:
    """ridge_sweep(H_train, y_train, H_val, y_val, lambdas) -> validation accuracy for each lambda."""
    def case(seed):
        g = _gen(seed)
        h = torch.randn(120, 10, dtype=torch.float64, generator=g)
        y = (h[:, :3].argmax(1) + (torch.rand(120, generator=g) < 0.2).long()) % 3
        return h[:80], y[:80], h[80:], y[80:], [0.01, 1.0, 100.0, 1e5]

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            raise _Mismatch(f"return one accuracy per lambda ({len(expected)}), got {_describe(got)}")
        for lam, g, e in zip((0.01, 1.0, 100.0, 1e5), got, expected):
            if not math.isclose(float(g), e, abs_tol=1e-9):
                raise _Mismatch(f"at lambda={lam} you have accuracy {float(g):.4f}, expected {e:.4f} (one-hot "
                                "targets from y_train, W from your ridge_solution, argmax of H_val W)")

    return _run("3.6", ridge_sweep, [case(0), case(1)], _ridge_sweep_reference, compare)


def ex6_5(paired_ratios) -> Result:
    """paired_ratios(rival, twin): per seed present in both (dicts seed -> value), rival / twin,
    in increasing seed order."""
    def reference(rival, twin):
        return [rival[s] / twin[s] for s in sorted(set(rival) & set(twin))]

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            raise _Mismatch(f"return one ratio per seed that both ran ({len(expected)}), got {_describe(got)}")
        if not all(math.isclose(float(g), e, rel_tol=1e-9) for g, e in zip(got, expected)):
            raise _Mismatch(f"your ratios {[round(float(g), 4) for g in got]} are not the per-seed ratios")

    cases = [({0: 10.0, 1: 12.0, 2: 11.0}, {0: 20.0, 1: 18.0, 2: 22.0}), ({3: 5.0, 1: 4.0, 7: 9.0}, {1: 2.0, 3: 5.0})]
    return _run("6.5", paired_ratios, cases, reference, compare,
                slips=[(lambda rival, twin: [float(np.median(list(rival.values())) / np.median(list(twin.values())))]
                        * len(set(rival) & set(twin)),
                        "that is the ratio of the medians repeated: pair each seed's rival run with the twin's "
                        "run of the SAME seed")])


# ============================================================================ self-checks of written answers

# exercise -> (question, {option: text}, right option, why, {wrong option: what it misses})
QUIZZES = {
    "1.4": ("How often does a shuffled label equal the true one, with 10 balanced classes?",
            {"a": "never", "b": "about 10% of the time", "c": "about 50% of the time"}, "b",
            "a random permutation hands each sample another sample's label, which matches its own with probability about 1/C",
            {"a": "a permutation does not avoid equal labels: two samples of the same class swap labels freely",
             "c": "that would need two classes; with C classes a match has probability about 1/C"}),
    "1.5": ("Why did the study's FF need about 90 epochs where its BP twin needed 16?",
            {"a": "each layer learns only from its own local goodness loss, so class information builds up slowly",
             "b": "FF's loss has no minimum, so it never stops on its own",
             "c": "FF sees fewer images per epoch than BP"}, "a",
            "every FF layer improves its own real-versus-fake judgement; no error from the output reaches it",
            {"b": "the softplus loss does have a minimum; early stopping ends the run",
             "c": "both see every training image once per epoch (FF even twice, positive and negative)"}),
    "2.4": ("Without the detach and with all layer losses summed, what trains layer 1?",
            {"a": "layer 1's own loss only", "b": "the losses of layer 1 and of every layer above it",
             "c": "no loss at all"}, "b",
            "the gradient of layer 2's loss would flow through layer 1's output into its weights: backprop again",
            {"a": "that is what the detach guarantees; without it the losses above reach layer 1 too",
             "c": "layer 1's own loss always reaches it"}),
    "3.4": ("Features normalised with batch statistics in training, running statistics at test: what is wrong?",
            {"a": "the predictor sees features with a different scale and offset at test time",
             "b": "the random weights change between training and test", "c": "ridge regression overfits"}, "a",
            "BatchNorm's running mean and variance were never updated, so test features are normalised differently",
            {"b": "the blocks are frozen: their weights do not change",
             "c": "the accuracy drop comes from the shift in the features, not from the predictor's capacity"}),
    "3.6": ("When lambda grows very large, what happens to the ridge predictor?",
            {"a": "W shrinks towards 0 and the scores stop depending on the features: accuracy falls",
             "b": "W grows and overfits the training set", "c": "nothing: lambda only speeds up the solve"}, "a",
            "lambda penalises the size of W; past the scale of H^T H it dominates and W is pulled to 0",
            {"b": "large lambda shrinks W; overfitting is the small-lambda end",
             "c": "lambda changes the solution itself, not only how it is computed"}),
    "4.4": ("Which GEMMs does MF skip that BP needs?",
            {"a": "the forward GEMMs", "b": "the weight-gradient GEMMs", "c": "the input-gradient GEMMs"}, "c",
            "each layer's input is detached, so no gradient flows from a layer to the one below",
            {"a": "MF runs the same forward pass as BP", "b": "MF still needs every weight's gradient"}),
    "4.5": ("Your wider MF layers: what explains the change in validation accuracy you measured?",
            {"a": "a wider layer's projection M_i sees more features, so each local classifier can be more accurate",
             "b": "width does not matter for MF because every layer is trained locally",
             "c": "wider layers make MF's local losses exact"}, "a",
            "a layer's own class scores a_i M_i^T are a linear classifier on its activity: more units, more capacity",
            {"b": "local training does not remove the capacity of each layer's classifier",
             "c": "the summed local losses are exact at any width (the detach makes them so)"}),
    "5.4": ("Which memory figure belongs in a comparison of two algorithms on one GPU?",
            {"a": "NVML's device-wide used memory", "b": "the allocator's peak after resetting it",
             "c": "the process's resident set size"}, "b",
            "torch.cuda.max_memory_allocated measures the algorithm's tensors; NVML adds the context and other processes",
            {"a": "it includes the CUDA context (500-900 MiB) and the caching allocator's spare blocks",
             "c": "RSS counts host memory, not the GPU's"}),
    "6.4": ("Three runs that share one seed: what do they measure?",
            {"a": "seed-to-seed variation", "b": "one outcome, repeated (plus nondeterminism)",
             "c": "nothing: they are invalid"}, "b",
            "the same seed gives the same initialisation and data order, so their spread says nothing about other seeds",
            {"a": "seed-to-seed variation needs different seeds",
             "c": "they are a valid single measurement, just not three independent ones"}),
}


def quiz(exercise: str, answer) -> Result:
    """The multiple-choice self-check of a written answer: pass the option's letter."""
    question, options, right, why, wrong = QUIZZES[exercise]
    print(f"Self-check {exercise}: {question}\n" + "\n".join(f"  ({k}) {v}" for k, v in options.items()))
    if answer is Ellipsis or answer is None:
        print(f"Exercise {exercise} not attempted yet: set your answer to one of {', '.join(options)}")
        return _verdict(f"{exercise} quiz", False)
    answer = str(answer).strip().lower().strip("()")
    if answer not in options:
        print(f"✗ Exercise {exercise}: answer with one of {', '.join(options)}, got {answer!r}")
        return _verdict(f"{exercise} quiz", False)
    if answer != right:
        print(f"✗ Exercise {exercise}: not ({answer}): {wrong[answer]}. Think again.")
        return _verdict(f"{exercise} quiz", False)
    print(f"✓ Exercise {exercise}: ({right}) — {why}.")
    return _verdict(f"{exercise} quiz", True)


check = SimpleNamespace(**{name: fn for name, fn in globals().items() if re.fullmatch(r"ex\d+_\d+", name)},
                        quiz=quiz, solved=solved, experiment_data=experiment_data)
