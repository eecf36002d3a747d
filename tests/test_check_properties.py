"""Each property a check tests, shown to fail for a class of wrong answers, not one instance:
edge cases, gradients, purity, a second call, seeds and samplers, a forbidden tool, messages.
Hypothesis generates the wrong answers where a class has a parameter (a scale, an offset, a row)."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fwdlib.algorithms import cafo, ff
from fwdlib.course.checks import check
from fwdlib.course.checks import sampling
from fwdlib.course.checks.lesson02 import _ff_layer_step_reference
from fwdlib.course.checks.lesson03 import _dfa_reference
from fwdlib.course.checks.lesson04 import _mf_autograd

CHECKS = settings(max_examples=25, deadline=None, derandomize=True)


def verdict(capsys, fn, student):
    ok = fn(student)
    return bool(ok), capsys.readouterr().out


def refused(capsys, fn, student, *fragments):
    ok, out = verdict(capsys, fn, student)
    assert not ok and "✗" in out, out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} missing from:\n{out}"
    return out


def accepted(capsys, fn, student):
    ok, out = verdict(capsys, fn, student)
    assert ok and "✓" in out, out


# ------------------------------------------------------------------ values on edge cases
def test_an_epsilon_in_the_wrong_place_gives_nan_on_a_row_of_zeros_and_is_told_so(capsys):
    refused(capsys, check.ex2_1, lambda x: x / x.pow(2).mean(1, keepdim=True).sqrt() + 1e-8,
            "nan", "row of zeros", "Failing input (rows of zeros")


def test_a_loss_that_overflows_far_from_theta_is_the_students_overflow_not_the_checks(capsys):
    def naive(p, n, t):
        return (torch.log(1 + torch.exp(t - p)) + torch.log(1 + torch.exp(n - t))).mean()
    out = refused(capsys, check.ex2_2, naive, "inf", "F.softplus", "thousands away from theta")
    assert "could not compare" not in out and "OverflowError" not in out


def test_a_batch_of_one_a_width_of_one_and_non_contiguous_inputs_are_cases(capsys):
    refused(capsys, check.ex1_1, lambda h: (h ** 2).sum(1).squeeze(), "shape ()", "a batch of one")
    refused(capsys, check.ex2_3, lambda x, labels, c: torch.cat(
        [F.one_hot(labels, c).to(x.dtype), x.view(len(x), -1)[:, c:]], 1), "not contiguous", ".reshape")


def test_float64_inputs_keep_their_dtype(capsys):
    refused(capsys, check.ex1_1, lambda h: (h.float() ** 2).sum(1), "for torch.float64 inputs you returned torch.float32")


def test_ties_and_the_support_boundary_of_sparsemax(capsys):
    def strict_support(z):          # a support test with one unit too few: wrong at ties and boundaries
        s, _ = z.sort(1, descending=True)
        k = torch.arange(1, z.shape[1] + 1, dtype=z.dtype)
        support = ((1 + k * s > s.cumsum(1)).sum(1, keepdim=True) - 1).clamp(min=1)
        return (z - (s.cumsum(1).gather(1, support - 1) - 1) / support).clamp(min=0)
    refused(capsys, check.ex3_2, strict_support, "differs")


def test_values_exactly_on_a_decision_boundary(capsys):
    def lenient(lo, hi, m):         # >= where the task says beyond: an end on the margin counts as beyond
        if lo >= m:
            return "rival better"
        if hi <= -m:
            return "twin better"
        return "equivalent" if -m < lo and hi < m else "inconclusive"
    refused(capsys, check.ex6_3, lenient, "exactly at -margin", "strict")

    def fits_or_touches(sd, margin):
        n = 2
        while stats_t(n) * sd / np.sqrt(n) > margin:
            n += 1
        return n
    refused(capsys, check.ex6_6, fits_or_touches, "they are equal: below is strict", "exactly equal to the half-width")


def stats_t(n):
    from fwdlib.bench.stats import t_quantile
    return t_quantile(0.975, n - 1)


def test_statistics_on_even_counts_unsorted_inputs_and_unsorted_dicts(capsys):
    refused(capsys, check.ex6_2, lambda a, b: sorted(a)[len(a) // 2] / sorted(b)[len(b) // 2], "MEAN of the two middle")
    refused(capsys, check.ex6_2, lambda a, b: a[len(a) // 2] / b[len(b) // 2], "not the right answer")
    refused(capsys, check.ex6_5, lambda r, t: [r[s] / t[s] for s in set(r) & set(t)], "not in increasing seed order")
    refused(capsys, check.ex6_5, lambda r, t: [r[s] / t[s] for s in r if s in t], "not in increasing seed order")


# ------------------------------------------------------------------ gradients
def test_a_detached_loss_is_refused_and_the_message_says_detached(capsys):
    refused(capsys, check.ex2_2, lambda p, n, t: ff.ff_layer_loss(p, n, t).detach(),
            "your loss is detached: no gradient reaches `g_pos`, `g_neg`")
    refused(capsys, check.ex4_1, lambda a, m, y: torch.tensor(F.cross_entropy(a @ m.T, y).item()), "detached")


def test_a_loss_blind_to_one_input_or_with_a_wrong_gradient_is_refused(capsys):
    refused(capsys, check.ex2_2, lambda p, n, t: (F.softplus(t - p) + F.softplus(n.detach() - t)).mean(),
            "no gradient reaches `g_neg`")
    refused(capsys, check.ex1_1, lambda h: (h.round(decimals=6) ** 2).sum(1) + (h ** 2).sum(1).detach() * 0,
            "not the right gradient with respect to `h`")


# ------------------------------------------------------------------ purity and a second call
def test_inputs_changed_in_place_are_named(capsys):
    def sorts_in_place(a, b):
        a.sort()
        b.sort()
        return float(np.median(a) / np.median(b))
    refused(capsys, check.ex6_2, sorts_in_place, "changed its input `rival_values` in place", "list(rival_values)")
    refused(capsys, check.ex6_5, lambda r, t: [r.pop(s) / t[s] for s in sorted(set(r) & set(t))], "`rival` in place")
    refused(capsys, check.ex2_1, lambda x: x.div_(x.pow(2).mean(1, keepdim=True).sqrt() + 1e-8), "`x` in place")


def test_gradients_left_in_grad_and_gradients_that_accumulate(capsys):
    def backward_leaves_grads(block, x, e, b):
        out = block(x.detach())
        out.backward((e @ b).view_as(out))
        return tuple(p.grad.clone() for p in block.parameters())
    refused(capsys, check.ex3_5, backward_leaves_grads, "changed the `.grad` of `block`'s parameters")

    def backward_then_clear(block, x, e, b):        # clears the gradients the caller had: not its to clear
        block.zero_grad()
        out = block(x.detach())
        out.backward((e @ b).view_as(out))
        grads = tuple(p.grad.clone() for p in block.parameters())
        block.zero_grad()
        return grads
    refused(capsys, check.ex3_5, backward_then_clear, "changed the `.grad`", "already holds gradients")


def test_hidden_state_shows_as_a_second_call_that_differs(capsys):
    calls = []

    def counts_calls(h):
        calls.append(1)
        return (h ** 2).sum(1) * (1 if len(calls) % 2 else 1.001)
    refused(capsys, check.ex1_1, counts_calls, "a second call on the same input returned a different result")


def test_accumulating_gradients_are_named_when_a_module_is_reused(capsys):
    from fwdlib.course.checks.contract import Case, Contract, check as run

    def reference(block, x):
        return torch.autograd.grad(block(x).sum(), block.weight)[0]

    def accumulates(block, x):
        block(x).sum().backward()
        grad = block.weight.grad
        block.weight.grad = grad          # left behind, on purpose: the next call adds to it
        return grad
    block = torch.nn.Linear(3, 2)
    contract = Contract("9.9", reference, [Case((block, torch.randn(4, 3)), "a layer")], mutable=("block",))
    ok = run(contract, accumulates)
    assert not ok and "twice the first result: gradients accumulate" in capsys.readouterr().out


# ------------------------------------------------------------------ randomness
def test_a_seed_that_is_ignored_and_an_unseeded_generator_are_both_refused(capsys):
    def boot(values, level=0.95, resamples=10_000, seed=0, fixed=None):
        rng = np.random.default_rng(fixed)
        medians = np.median(rng.choice(values, (resamples, len(values))), axis=1)
        return tuple(np.quantile(medians, [(1 - level) / 2, (1 + level) / 2]))
    accepted(capsys, check.ex6_1, lambda v, level=0.95, r=10_000, seed=0: boot(v, level, r, seed, fixed=seed))
    refused(capsys, check.ex6_1, lambda v, level=0.95, r=10_000, seed=0: boot(v, level, r, seed, fixed=0), "ignores `seed`")
    out = refused(capsys, check.ex6_1, lambda v, level=0.95, r=10_000, seed=0: boot(v, level, r, seed, fixed=None))
    assert "a second call on the same input returned a different result" in out \
        or "gave different intervals" in out, out

    def ignores_resamples(v, level=0.95, r=10_000, seed=0):
        return boot(v, level, 10_000, seed, fixed=seed)
    refused(capsys, check.ex6_1, ignores_resamples, "ignores `resamples`")

    def unseeded_by_default(v, level=0.95, r=10_000, seed=None):
        return boot(v, level, r, seed, fixed=seed)
    out = refused(capsys, check.ex6_1, unseeded_by_default)   # which call shows it first is chance: either says so
    assert "different intervals" in out and "seed=0 as the default" in out or "without a fixed seed" in out, out


RIGHT_SAMPLERS = {
    "shift": lambda y, c: (y + torch.randint(1, c, y.shape)) % c,
    "skip the true label": lambda y, c: (lambda r: r + (r >= y).long())(torch.randint(0, c - 1, y.shape)),
    "resample until different": lambda y, c: _until_different(y, c),
}


def _until_different(y, c):
    out = torch.randint(0, c, y.shape)
    while bool((out == y).any()):
        same = out == y
        out[same] = torch.randint(0, c, (int(same.sum()),))
    return out


@pytest.mark.parametrize("name", RIGHT_SAMPLERS)
def test_right_samplers_of_every_shape_are_accepted(capsys, name):
    accepted(capsys, check.ex1_3, RIGHT_SAMPLERS[name])


def test_mildly_biased_and_patterned_samplers_are_refused(capsys):
    def favours_the_next_class(y, c):           # the next class 1.3x as often as each other wrong class
        weights = torch.ones(c - 1)
        weights[0] = 1.3
        return (y + 1 + torch.multinomial(weights, len(y), replacement=True)) % c
    refused(capsys, check.ex1_3, favours_the_next_class, "not uniform", "1.3")

    def random_walk(y, c):                       # random, but each row's offset is the row before's or one more
        steps = torch.randint(0, 2, y.shape).cumsum(0)
        return (y + 1 + steps % (c - 1)) % c
    refused(capsys, check.ex1_3, random_walk, "pattern along the batch")

    def deterministic_every_fifth_call(y, c, calls=[]):   # noqa: B006 - the hidden state is the point
        calls.append(1)
        return (y + 1) % c if len(calls) % 5 == 0 else (y + torch.randint(1, c, y.shape)) % c
    refused(capsys, check.ex1_3, deterministic_every_fifth_call, "calls gave exactly the same labels")

    def seeded_numpy(y, c):                      # uniform and repeatable, but not torch's stream
        return (y + torch.from_numpy(np.random.randint(1, c, len(y)))) % c
    refused(capsys, check.ex1_3, seeded_numpy, "do not come from torch's random numbers")

    def same_every_call(y, c):                   # a generator of its own, seeded alike on every call
        g = torch.Generator().manual_seed(torch.initial_seed())
        return (y + torch.randint(1, c, y.shape, generator=g)) % c
    refused(capsys, check.ex1_3, same_every_call, "calls gave exactly the same labels")

    def every_fourth_pair_copied(y, c):          # rows 2, 3 of every four repeat rows 0, 1 shifted: lag 2
        offsets = torch.randint(0, c - 1, y.shape)
        i = torch.arange(len(y))
        copy = (i % 4 >= 2)
        offsets[copy] = (offsets[i[copy] - 2] + 1) % (c - 1)
        return (y + 1 + offsets) % c
    refused(capsys, check.ex1_3, every_fourth_pair_copied, "offsets 2 rows apart")

    def second_half_copies_the_first(y, c):
        offsets = torch.randint(0, c - 1, y.shape)
        half = len(y) // 2
        offsets[half:2 * half] = (offsets[:half] + 3) % (c - 1)
        return (y + 1 + offsets) % c
    refused(capsys, check.ex1_3, second_half_copies_the_first, f"offsets {sampling.DRAWS // 2} rows apart")

    def global_numpy(y, c):                      # right distribution, but fwdlib.seed_all does not repeat it
        return (y + torch.from_numpy(np.random.default_rng().integers(1, c, len(y)))) % c
    refused(capsys, check.ex1_3, global_numpy, "the same seed gave other labels")


def _table_p_values(rng, weights, runs):
    """p-values of the uniformity test on simulated tables (C = 10, DRAWS labels)."""
    c = 10
    p = np.asarray(weights, dtype=float) / np.sum(weights)
    out = []
    for _ in range(runs):
        y = torch.from_numpy(rng.integers(0, c, sampling.DRAWS))
        offsets = torch.from_numpy(rng.choice(np.arange(1, c), size=sampling.DRAWS, p=p))
        out.append(sampling.uniformity(y, (y + offsets) % c, c)[0])
    return np.array(out)


def test_the_sampler_tests_error_rates_by_simulation():
    """Stated in sampling.py: a right sampler is refused at most 0.1% of the time (0.02% per test),
    a sampler with one wrong class 1.3x as frequent is caught with power above 99%."""
    rng = np.random.default_rng(0)
    null = _table_p_values(rng, [1.0] * 9, 2000)
    # 2000 runs at a 0.02% rate: the expected count is 0.4; 6 or more has probability below 1e-5
    assert (null < sampling.ALPHA).sum() <= 5
    assert 0.4 < np.mean(null < 0.5) < 0.6               # the p-values are uniform, as a calibrated test's are
    biased = _table_p_values(rng, [1.3] + [1.0] * 8, 300)
    assert np.mean(biased < sampling.ALPHA) >= 0.99


# ------------------------------------------------------------------ a forbidden tool
def test_autograd_is_switched_off_in_4_2_and_the_message_says_so(capsys):
    from tests.test_checks import mf_grads
    refused(capsys, check.ex4_2, _mf_autograd, "asks for the closed forms, without autograd", "torch.autograd.grad")

    def with_backward(a_prev, w, b, m, y):
        w, b, m = (t.clone().requires_grad_() for t in (w, b, m))
        with torch.enable_grad():
            F.cross_entropy(F.relu(a_prev @ w.T + b) @ m.T, y).backward()
        return w.grad, b.grad, m.grad
    refused(capsys, check.ex4_2, with_backward, "switches autograd off", "torch.enable_grad")

    def loss_of(a_prev, y):
        return lambda w, b, m: F.cross_entropy(F.relu(a_prev @ w.T + b) @ m.T, y)
    refused(capsys, check.ex4_2, lambda a_prev, w, b, m, y: torch.func.jacfwd(loss_of(a_prev, y), argnums=(0, 1, 2))(
        w, b, m), "switches autograd off", "forward-mode")

    def dual_numbers(a_prev, w, b, m, y):
        import torch.autograd.forward_ad as fwad
        with fwad.dual_level():
            tangent = torch.zeros_like(w)
            tangent.view(-1)[0] = 1
            fwad.unpack_dual(loss_of(a_prev, y)(fwad.make_dual(w, tangent), b, m))
        return mf_grads(a_prev, w, b, m, y)
    refused(capsys, check.ex4_2, dual_numbers, "switches autograd off", "forward-mode")
    assert torch.is_grad_enabled()                        # the check gave grad mode back


# ------------------------------------------------------------------ the audit's misleading messages and refused right answers
def _step_with(order, no_grad_negatives=False):
    def step(layer, optimizer, x, y, c, theta, generator):
        pos = ff.rms_normalise(ff.embed_label(x, y, c))
        neg = ff.rms_normalise(ff.embed_label(x, ff.wrong_labels(y, c, generator), c))
        g_pos = ff.goodness(F.relu(layer(pos)))
        if no_grad_negatives:
            with torch.no_grad():
                g_neg = ff.goodness(F.relu(layer(neg)))
        else:
            g_neg = ff.goodness(F.relu(layer(neg)))
        loss = ff.ff_layer_loss(g_pos, g_neg, theta)
        for call in order:
            {"zero": optimizer.zero_grad, "backward": loss.backward, "step": optimizer.step}[call]()
        return loss
    return step


def test_2_5_names_the_step_order_and_the_missing_gradient_rightly(capsys):
    accepted(capsys, check.ex2_5, _step_with(("zero", "backward", "step")))
    refused(capsys, check.ex2_5, _step_with(("backward", "zero", "step")), "BEFORE loss.backward(), not after")
    refused(capsys, check.ex2_5, _step_with(("zero", "backward", "step"), no_grad_negatives=True),
            "no gradient came from the negatives' term", "torch.no_grad()")
    refused(capsys, check.ex2_5, _step_with(("zero", "step", "backward")), "call loss.backward() before optimizer.step()")
    refused(capsys, check.ex2_5, _step_with(("zero", "backward", "step", "step")), "2 times")
    accepted(capsys, check.ex2_5, _ff_layer_step_reference)


def test_3_3_the_sum_of_log_softmax_is_named_with_the_logits(capsys):
    refused(capsys, check.ex3_3, lambda zs: sum(z.log_softmax(1) for z in zs).argmax(1), "log-probabilities")


def test_a_sign_flip_and_a_square_root_of_the_batch_are_not_called_a_sum_for_a_mean(capsys):
    from tests.test_checks import mf_grads
    out = refused(capsys, check.ex4_2, lambda *case: tuple(-g for g in mf_grads(*case)), "the sign is flipped")
    assert "sum instead of a mean" not in out
    out = refused(capsys, check.ex2_1, lambda x: ff.rms_normalise(x) * len(x) ** 0.5,
                  "scaled by √", "dim 0 of `x`")
    assert "sum instead of a mean" not in out


def test_the_right_answers_the_audit_saw_refused_are_accepted(capsys):
    def in_place(a_prev, w, b, m, y, lr):
        dw, db, dm = _mf_autograd(a_prev, w, b, m, y)
        w -= lr * dw
        b -= lr * db
        m -= lr * dm
        return w, b, m
    accepted(capsys, check.ex4_3, in_place)
    accepted(capsys, check.ex5_1, lambda t, w: np.trapezoid(np.asarray(w, dtype=np.float32), np.asarray(t, dtype=np.float32))
             if hasattr(np, "trapezoid") else np.float32(np.trapz(w, t)))
    accepted(capsys, check.ex5_1, lambda t, w: np.array(sum((t1 - t0) * (w0 + w1) / 2
                                                         for t0, t1, w0, w1 in zip(t, t[1:], w, w[1:]))))


def test_6_1s_prose_and_check_agree_on_the_level(capsys):
    import nbformat
    from pathlib import Path
    nb = nbformat.read(Path(__file__).parents[1] / "solutions" / "06_head_to_head_exercises.ipynb", as_version=4)
    prose = next(c.source for c in nb.cells if c.cell_type == "markdown" and "Exercise 6.1" in c.source)
    assert "(1 - level) / 2" in prose and "1 - (1 - level) / 2" in prose


# ------------------------------------------------------------------ generated wrong answers, and what a message may print
@CHECKS
@given(factor=st.floats(0.2, 5.0).filter(lambda f: abs(f - 1) > 1e-3))
def test_any_rescaled_goodness_or_loss_is_refused(factor):
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        assert not check.ex1_1(lambda h: ff.goodness(h) * factor)
        assert not check.ex2_2(lambda p, n, t: ff.ff_layer_loss(p, n, t) * factor)
        assert not check.ex4_1(lambda a, m, y: F.cross_entropy(a @ m.T, y) * factor)


@CHECKS
@given(row=st.integers(0, 15), offset=st.floats(1e-3, 1e3))
def test_a_change_in_any_single_row_is_refused(row, offset):
    import contextlib
    import io

    def one_row_off(x):
        out = ff.rms_normalise(x).clone()
        out[row % len(out)] += offset
        return out
    with contextlib.redirect_stdout(io.StringIO()):
        assert not check.ex2_1(one_row_off)
        assert not check.ex3_2(lambda z: (lambda p: p.index_put_((torch.tensor([row % len(p)]),), p[row % len(p)] + offset))(
            cafo.sparsemax(z).clone()))


@CHECKS
@given(factor=st.floats(0.5, 2.0).filter(lambda f: abs(f - 1) > 1e-3))
def test_no_message_prints_the_expected_answer(factor):
    import contextlib
    import io
    cases = {check.ex5_1: (lambda t, w: factor * sum((t1 - t0) * (w0 + w1) / 2 for t0, t1, w0, w1 in zip(t, t[1:], w, w[1:])),
                           ([0.0, 1.0, 3.0], [100.0, 200.0, 100.0]), 350.0),
             check.ex5_3: (lambda b, s: round(factor * 2 * b * sum(x * y for x, y in zip(s, s[1:]))), None, None),
             check.ex6_2: (lambda a, b: factor * float(np.median(a) / np.median(b)), None, None)}
    for fn, (student, _, expected) in cases.items():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert not fn(student)
        text = out.getvalue()
        assert "expected" not in text.lower() or "expected a tensor" in text
        numbers = [float(n) for n in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", text.split("Failing input")[0])]
        if expected is not None:
            assert all(abs(n - expected) > 1e-3 * expected for n in numbers), text


def test_a_failing_input_prints_compactly(capsys):
    out = refused(capsys, check.ex6_2, lambda a, b: 1.0)
    inputs = out.split("Failing input")[1]
    assert all(len(d.rstrip("0")) <= 5 for d in re.findall(r"\d+\.(\d+)", inputs))


def test_every_function_check_answers_within_two_seconds_on_the_reference(capsys):
    """Not a speed target (that is make mutants' job), a budget: an order of magnitude of headroom."""
    import time
    from tests.test_checks import mf_grads
    answers = {check.ex1_1: ff.goodness, check.ex2_1: ff.rms_normalise, check.ex2_2: ff.ff_layer_loss,
               check.ex3_2: cafo.sparsemax, check.ex3_5: _dfa_reference, check.ex4_2: mf_grads}
    for fn, answer in answers.items():
        start = time.process_time()
        assert fn(answer)
        assert time.process_time() - start < 20, fn


# ------------------------------------------------------------------ the third review's findings
def test_cafos_own_block_a_fractional_theta_and_a_single_sample_are_cases(capsys):
    def eval_mode(block, x, e, b):              # CaFo's block ends in BatchNorm: eval mode changes its gradient
        was = block.training
        block.eval()
        grads = _dfa_reference(block, x, e, b)
        block.train(was)
        return grads
    refused(capsys, check.ex3_5, eval_mode, "conv weight gradient differs", "BatchNorm")

    def extra_mask(block, x, e, b):
        out = block(x.detach())
        return torch.autograd.grad(out, list(block.parameters()), (e @ b).view_as(out) * (out > 0))
    refused(capsys, check.ex3_5, extra_mask, "differs")
    refused(capsys, check.ex3_5, lambda block, x, e, b: (block.eval(), _dfa_reference(block, x, e, b))[1],
            "changed `block`", "no .eval()")
    refused(capsys, check.ex1_2, lambda g, t: torch.sigmoid(g - int(t)), "not a whole number")
    refused(capsys, check.ex2_2, lambda p, n, t: ff.ff_layer_loss(p, n, round(t)), "not a whole number")
    refused(capsys, check.ex5_1, lambda t, w: None if len(t) < 2 else sum(
        (t1 - t0) * (w0 + w1) / 2 for t0, t1, w0, w1 in zip(t, t[1:], w, w[1:])), "a single sample")


def test_arrays_are_sequences_and_messages_name_the_likely_cause(capsys):
    def boot(v, level=0.95, r=10_000, seed=0):
        medians = np.median(np.random.default_rng(seed).choice(v, (r, len(v))), axis=1)
        return np.quantile(medians, [(1 - level) / 2, (1 + level) / 2])          # an array, not a tuple
    accepted(capsys, check.ex6_1, boot)
    accepted(capsys, check.ex6_5, lambda r, t: np.array([r[s] / t[s] for s in sorted(set(r) & set(t))]))
    from fwdlib.course.checks.lesson03 import _ridge_sweep_reference
    accepted(capsys, check.ex3_6, lambda *args: np.array(_ridge_sweep_reference(*args)))
    refused(capsys, check.ex6_3, lambda lo, hi, m: "rival better" if lo > 0 else "twin better" if hi < 0
            else "equivalent" if -m < lo and hi < m else "inconclusive", "comparing the ends with 0")
    refused(capsys, check.ex3_3, lambda zs: sum(z.exp() / z.exp().sum(1, keepdim=True) for z in zs).argmax(1),
            "exp / sum overflows")
    refused(capsys, check.ex5_2, lambda s, e: None if s < e else (e - s) / 1000, "None where an answer exists")


# ------------------------------------------------------------------ lessons 00 and 07: units, quantiles, pooling
def _quiet(fn, student) -> bool:
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        return bool(fn(student))


@CHECKS
@given(joules_per_kwh=st.floats(1.0, 1e8).filter(lambda c: abs(c / 3.6e6 - 1) > 1e-8))
def test_any_conversion_constant_but_3_6e6_joules_per_kwh_is_refused(joules_per_kwh):
    assert not _quiet(check.ex0_1, lambda e, g: None if e is None else e / joules_per_kwh * g)


@CHECKS
@given(unknown=st.sampled_from([0.0, 0, float("nan"), -1.0, "n/a", ()]))
def test_an_unknown_energy_must_stay_unknown_whatever_stands_in_for_it(unknown):
    assert not _quiet(check.ex0_1, lambda e, g: unknown if e is None else e / 3.6e6 * g)


@CHECKS
@given(p=st.floats(0.6, 0.999).filter(lambda p: abs(p - 0.975) > 1e-4))
def test_any_quantile_but_0_975_is_refused(p):
    from fwdlib.bench.stats import t_quantile
    assert not _quiet(check.ex7_3, lambda a, b: t_quantile(p, b - 1) / np.sqrt(b) / (t_quantile(p, a - 1) / np.sqrt(a)))


@CHECKS
@given(power=st.floats(0.1, 1.5).filter(lambda k: abs(k - 0.5) > 1e-3), shift=st.integers(-1, 2))
def test_any_other_power_of_n_or_degrees_of_freedom_is_refused(power, shift):
    from fwdlib.bench.stats import t_quantile

    def half(n, k, df):
        return t_quantile(0.975, max(n - 1 + df, 1)) / n ** k
    assert not _quiet(check.ex7_3, lambda a, b: half(b, power, 0) / half(a, power, 0))
    if shift:
        assert not _quiet(check.ex7_3, lambda a, b: half(b, 0.5, shift) / half(a, 0.5, shift))


def _unit_ratios(runs):
    pairs = {}
    for run in runs:
        pairs.setdefault(run["unit"], {})[run["role"]] = run["seconds"]
    return [p["rival"] / p["twin"] for p in pairs.values()]


@CHECKS
@given(r=st.floats(-2.0, 2.0).filter(lambda r: abs(r) > 0.05))
def test_any_power_mean_of_the_unit_ratios_but_the_geometric_is_refused(r):
    assert not _quiet(check.ex7_4, lambda runs: float(np.mean(np.array(_unit_ratios(runs)) ** r) ** (1 / r)))


@CHECKS
@given(q=st.floats(0.0, 1.0))
def test_pooling_absolute_times_at_any_quantile_is_refused(q):
    def pooled_quantile(runs):
        rival = [run["seconds"] for run in runs if run["role"] == "rival"]
        twin = [run["seconds"] for run in runs if run["role"] == "twin"]
        return float(np.quantile(rival, q) / np.quantile(twin, q))
    assert not _quiet(check.ex7_4, pooled_quantile)


@CHECKS
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_a_right_pooling_that_reads_the_runs_in_any_order_is_accepted(seed):
    def shuffled_first(runs):
        order = np.random.default_rng(seed).permutation(len(runs))
        return float(np.exp(np.mean(np.log(_unit_ratios([runs[i] for i in order])))))
    assert _quiet(check.ex7_4, shuffled_first)
