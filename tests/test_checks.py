"""Every check accepts a correct answer and explains several wrong ones."""
import numpy as np
import torch
import torch.nn.functional as F

from fwdlib.course.checks import check


def run(capsys, fn, student):
    ok = fn(student)
    return ok, capsys.readouterr().out


def expect_fail(capsys, fn, student, *fragments):
    ok, out = run(capsys, fn, student)
    assert not ok and "✗" in out, out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} missing from feedback:\n{out}"


def expect_pass(capsys, fn, student):
    ok, out = run(capsys, fn, student)
    assert ok and "✓" in out, out


def test_not_attempted_is_friendly(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1.1: write your code here")
    for fn, student in ((check.ex1_1, stub), (check.ex6_3, stub), (check.ex5_1, ...)):
        ok, out = run(capsys, fn, student)
        assert not ok and "not attempted yet" in out and "✗" not in out


def test_ex1_1_goodness(capsys):
    expect_pass(capsys, check.ex1_1, lambda h: (h ** 2).sum(1))
    expect_fail(capsys, check.ex1_1, lambda h: (h ** 2).mean(1), "scaled by")
    expect_fail(capsys, check.ex1_1, lambda h: (h ** 2).sum(0), "shape")
    expect_fail(capsys, check.ex1_1, lambda h: (h ** 2).sum(), "shape (", "summed")
    expect_fail(capsys, check.ex1_1, lambda h: None, "forget to `return`")
    expect_fail(capsys, check.ex1_1, lambda h: h.sum(1), "largest difference", "Failing input #1")


def test_ex1_2_probability(capsys):
    expect_pass(capsys, check.ex1_2, lambda g, t: 1 / (1 + torch.exp(t - g)))
    expect_fail(capsys, check.ex1_2, lambda g, t: torch.sigmoid(t - g), "sign is reversed")
    expect_fail(capsys, check.ex1_2, lambda g, t: torch.sigmoid(g - t) + 0.1, "same constant")


def test_ex1_3_negative_labels(capsys):
    expect_pass(capsys, check.ex1_3, lambda y, c: (y + torch.randint(1, c, y.shape)) % c)
    expect_fail(capsys, check.ex1_3, lambda y, c: y[torch.randperm(len(y))], "equal the true label")
    expect_fail(capsys, check.ex1_3, lambda y, c: (y + 1) % c, "not uniform")
    expect_fail(capsys, check.ex1_3, lambda y, c: ((y + 1) % c).float(), "int64")
    expect_fail(capsys, check.ex1_3, lambda y, c: y + 1, "outside")
    # a deterministic cycle is uniform over the other classes, but it is a pattern, not random
    expect_fail(capsys, check.ex1_3, lambda y, c: (y + 1 + torch.arange(len(y)) % (c - 1)) % c, "pattern")

    def reseeded(y, c):
        return (y + torch.randint(1, c, y.shape, generator=torch.Generator().manual_seed(0))) % c
    expect_fail(capsys, check.ex1_3, reseeded, "second call")


def test_ex2_1_normalise(capsys):
    expect_pass(capsys, check.ex2_1, lambda x: x / (x.pow(2).mean(1, keepdim=True).sqrt() + 1e-8))
    expect_fail(capsys, check.ex2_1, lambda x: x / x.norm(dim=1, keepdim=True), "largest difference")
    expect_fail(capsys, check.ex2_1, lambda x: x / x.pow(2).mean(0, keepdim=True).sqrt(), "largest difference")


def test_ex2_2_loss(capsys):
    expect_pass(capsys, check.ex2_2, lambda p, n, t: (F.softplus(t - p) + F.softplus(n - t)).mean())
    expect_fail(capsys, check.ex2_2, lambda p, n, t: (F.softplus(p - t) + F.softplus(t - n)).mean(), "differs")
    expect_fail(capsys, check.ex2_2, lambda p, n, t: F.softplus(t - p) + F.softplus(n - t), "shape")


def test_ex2_3_embed(capsys):
    def good(x, labels, c):
        x = x.flatten(1).clone()
        x[:, :c] = F.one_hot(labels, c).float()
        return x

    def in_place(x, labels, c):
        flat = x.view(len(x), -1)
        flat[:, :c] = F.one_hot(labels, c).float()
        return flat

    expect_pass(capsys, check.ex2_3, good)
    expect_fail(capsys, check.ex2_3, in_place, "in place")
    expect_fail(capsys, check.ex2_3, lambda x, l, c: x.flatten(1), "largest difference")


def test_ex3_1_ridge(capsys):
    def good(h, y, lam):
        return torch.linalg.solve(h.T @ h + lam * torch.eye(h.shape[1], dtype=h.dtype), h.T @ y)
    expect_pass(capsys, check.ex3_1, good)
    expect_fail(capsys, check.ex3_1, lambda h, y, lam: torch.linalg.solve(h.T @ h, h.T @ y), "lambda is missing")
    expect_fail(capsys, check.ex3_1, lambda h, y, lam: good(h, y, lam).T, "transpose")


def test_ex3_2_sparsemax(capsys):
    def good(z):
        s, _ = z.sort(1, descending=True)
        k = torch.arange(1, z.shape[1] + 1, dtype=z.dtype)
        support = (1 + k * s > s.cumsum(1)).sum(1, keepdim=True)
        tau = (s.cumsum(1).gather(1, support - 1) - 1) / support
        return (z - tau).clamp(min=0)
    expect_pass(capsys, check.ex3_2, good)
    expect_fail(capsys, check.ex3_2, lambda z: z.softmax(1), "not sparsemax")


def test_ex3_3_ensemble(capsys):
    expect_pass(capsys, check.ex3_3, lambda zs: sum(z.softmax(1) for z in zs).argmax(1))
    expect_fail(capsys, check.ex3_3, lambda zs: sum(zs).argmax(1), "you summed the logits", "Failing input #1")
    expect_fail(capsys, check.ex3_3, lambda zs: sum(z.softmax(1) for z in zs), "shape")


def mf_grads(a_prev, w, b, m, y):
    z = a_prev @ w.T + b
    a = z.clamp(min=0)
    e = (a @ m.T).softmax(1) - F.one_hot(y, m.shape[0]).float()
    delta = (e @ m) * (z > 0).float()
    return delta.T @ a_prev / len(y), delta.mean(0), e.T @ a / len(y)


def test_ex4_1_local_loss(capsys):
    expect_pass(capsys, check.ex4_1, lambda a, m, y: F.cross_entropy(a @ m.T, y))
    expect_fail(capsys, check.ex4_1, lambda a, m, y: F.cross_entropy(a @ m.T, y, reduction="sum"), "scaled by")
    expect_fail(capsys, check.ex4_1, lambda a, m, y: F.cross_entropy(a @ m, y), "raised RuntimeError")


def test_ex4_2_closed_form_gradients(capsys):
    expect_pass(capsys, check.ex4_2, mf_grads)

    def no_mask(a_prev, w, b, m, y):
        dw, db, dm = mf_grads(a_prev, w, b, m, y)
        z = a_prev @ w.T + b
        e = ((z.clamp(min=0) @ m.T).softmax(1) - F.one_hot(y, m.shape[0]).float())
        return (e @ m).T @ a_prev / len(y), db, dm

    def transposed_dm(*args):
        dw, db, dm = mf_grads(*args)
        return dw, db, dm.T

    expect_fail(capsys, check.ex4_2, no_mask, "dW differs")
    expect_fail(capsys, check.ex4_2, transposed_dm, "dM", "transpose")
    expect_fail(capsys, check.ex4_2, lambda *a: mf_grads(*a)[0], "return a tuple")


def test_ex4_3_sgd_step(capsys):
    def good(a_prev, w, b, m, y, lr):
        dw, db, dm = mf_grads(a_prev, w, b, m, y)
        return w - lr * dw, b - lr * db, m - lr * dm

    def ascent(a_prev, w, b, m, y, lr):
        dw, db, dm = mf_grads(a_prev, w, b, m, y)
        return w + lr * dw, b + lr * db, m + lr * dm

    expect_pass(capsys, check.ex4_3, good)
    expect_fail(capsys, check.ex4_3, ascent, "new W differs")


def test_ex5_energy_and_flops(capsys):
    def trapezoid(t, w):
        return sum((t[i + 1] - t[i]) * (w[i] + w[i + 1]) / 2 for i in range(len(t) - 1))
    expect_pass(capsys, check.ex5_1, trapezoid)
    expect_fail(capsys, check.ex5_1, lambda t, w: sum((t[i + 1] - t[i]) * (w[i] + w[i + 1]) for i in range(len(t) - 1)),
                "twice the right answer")
    expect_fail(capsys, check.ex5_1, lambda t, w: sum(w[:-1]) * (t[-1] - t[0]) / (len(t) - 1), "off by")
    expect_pass(capsys, check.ex5_2, lambda s, e: (e - s) / 1000 if e >= s else None)
    expect_fail(capsys, check.ex5_2, lambda s, e: e - s, "1000x too large")
    expect_fail(capsys, check.ex5_2, lambda s, e: (e - s) / 1000, "should be None")
    expect_fail(capsys, check.ex5_2, lambda s, e: (e - s) / 1000 if e > s else None, "two equal readings are 0 J")
    expect_pass(capsys, check.ex5_3, lambda b, s: 2 * b * sum(x * y for x, y in zip(s, s[1:])))
    expect_fail(capsys, check.ex5_3, lambda b, s: b * sum(x * y for x, y in zip(s, s[1:])), "half the right answer")


def test_ex6_statistics(capsys):
    def boot(values, level=0.95, resamples=10_000, seed=0):
        rng = np.random.default_rng(seed + 1)                 # a different but valid scheme
        stats = np.median(rng.choice(values, (resamples, len(values))), axis=1)
        return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))
    expect_pass(capsys, check.ex6_1, boot)
    expect_fail(capsys, check.ex6_1, lambda v, **k: (min(v), max(v)) if len(set(v)) > 1 and len(v) > 2 else (v[0], v[-1]),
                "not the 95% percentile interval")
    expect_fail(capsys, check.ex6_1, lambda v, **k: (max(v), min(v)), "above hi")
    expect_pass(capsys, check.ex6_2, lambda a, b: float(np.median(a) / np.median(b)))
    expect_fail(capsys, check.ex6_2, lambda a, b: float(np.mean(a) / np.mean(b)), "off by")

    def outcome(lo, hi, margin):
        if lo > margin:
            return "rival better"
        if hi < -margin:
            return "twin better"
        return "equivalent" if -margin < lo and hi < margin else "inconclusive"
    expect_pass(capsys, check.ex6_3, outcome)
    expect_fail(capsys, check.ex6_3, lambda lo, hi, m: "yes", "return one of")
    expect_fail(capsys, check.ex6_3, lambda lo, hi, m: "rival better" if (lo + hi) / 2 > m else outcome(lo, hi, m),
                "the interval and the margin say 'inconclusive'")        # the centre beyond the margin is not enough
    expect_fail(capsys, check.ex6_3, lambda lo, hi, m: "rival better" if lo > 0 else "twin better" if hi < 0
                else "inconclusive", "compared the interval with 0")
    expect_fail(capsys, check.ex6_3, lambda lo, hi, m: "rival better" if lo > m else "twin better" if hi < -m
                else "inconclusive", "never answer 'equivalent'")


def test_ex6_6_seeds_needed(capsys):
    from fwdlib.bench.stats import t_quantile

    def seeds_for(sd, margin):
        n = 2
        while t_quantile(0.975, n - 1) * sd / np.sqrt(n) >= margin:
            n += 1
        return n
    expect_pass(capsys, check.ex6_6, seeds_for)
    expect_fail(capsys, check.ex6_6, lambda sd, m: seeds_for(sd, m) + 1, "not the fewest")
    expect_fail(capsys, check.ex6_6, lambda sd, m: float(seeds_for(sd, m)), "whole number")

    def with_z(sd, margin):
        n = 2
        while 1.96 * sd / np.sqrt(n) >= margin:
            n += 1
        return n
    expect_fail(capsys, check.ex6_6, with_z, "Student's t")


# ------------------------------------------------------------------ named slips, quizzes, new exercises

def test_the_likeliest_slips_get_their_own_message(capsys):
    from fwdlib.algorithms import cafo
    expect_fail(capsys, check.ex1_2, lambda g, theta: torch.sigmoid(theta - g), "sign is reversed")
    expect_fail(capsys, check.ex3_1, lambda h, y, lam: torch.linalg.solve(h.T @ h, h.T @ y), "lambda is missing")
    expect_fail(capsys, check.ex3_2, lambda z: z.softmax(1), "that is softmax, not sparsemax")
    expect_fail(capsys, check.ex3_3, lambda logits: torch.stack(logits).sum(0).argmax(1), "you summed the logits")

    def mean_bootstrap(values, level=0.95, resamples=10_000, seed=0):
        rng = np.random.default_rng(seed)
        means = rng.choice(values, size=(resamples, len(values))).mean(1)
        return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))
    expect_fail(capsys, check.ex6_1, mean_bootstrap, "interval of the MEAN")
    expect_pass(capsys, check.ex3_2, cafo.sparsemax)


def test_a_check_shows_nothing_after_its_message_and_demo_cells_wait_for_it(capsys):
    result = check.ex1_1(lambda h: h.sum(1))
    assert not result and result == False and repr(result) == "Result(False)"   # noqa: E712
    assert result._ipython_display_() is None                 # IPython shows no bare False
    assert not check.solved("1.1") and "finish Exercise 1.1 first" in capsys.readouterr().out
    assert check.ex1_1(lambda h: (h ** 2).sum(1)) and check.solved("1.1")
    check.ex1_1(lambda h: h.sum(1))                            # a later wrong answer takes it back
    assert not check.solved("1.1")


def test_quizzes_accept_the_right_option_and_explain_each_wrong_one(capsys):
    from fwdlib.course.checks import QUIZZES
    assert len(QUIZZES) >= 9
    for exercise, (question, options, right, why, wrong) in QUIZZES.items():
        assert check.quiz(exercise, right) and why in capsys.readouterr().out
        for option in options:
            if option != right:
                assert not check.quiz(exercise, f"({option.upper()})")
                assert wrong[option] in capsys.readouterr().out
        assert not check.quiz(exercise, ...) and "not attempted yet" in capsys.readouterr().out
        assert not check.quiz(exercise, "z") and "answer with one of" in capsys.readouterr().out


def test_ex2_5_a_whole_ff_step_for_one_layer(capsys):
    from fwdlib.algorithms import ff
    from fwdlib.course.checks.lesson02 import _ff_layer_step_reference
    expect_pass(capsys, check.ex2_5, _ff_layer_step_reference)

    def no_zero_grad(layer, optimizer, x, y, c, theta, generator):
        pos = ff.rms_normalise(ff.embed_label(x, y, c))
        neg = ff.rms_normalise(ff.embed_label(x, ff.wrong_labels(y, c, generator), c))
        loss = ff.ff_layer_loss(ff.goodness(F.relu(layer(pos))), ff.goodness(F.relu(layer(neg))), theta)
        loss.backward()
        optimizer.step()
        return loss

    def true_labels_as_negatives(layer, optimizer, x, y, c, theta, generator):
        pos = ff.rms_normalise(ff.embed_label(x, y, c))
        loss = ff.ff_layer_loss(ff.goodness(F.relu(layer(pos))), ff.goodness(F.relu(layer(pos))), theta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    def no_step(layer, optimizer, x, y, c, theta, generator):
        pos = ff.rms_normalise(ff.embed_label(x, y, c))
        neg = ff.rms_normalise(ff.embed_label(x, ff.wrong_labels(y, c, generator), c))
        return ff.ff_layer_loss(ff.goodness(F.relu(layer(pos))), ff.goodness(F.relu(layer(neg))), theta)

    expect_fail(capsys, check.ex2_5, no_zero_grad, "optimizer.zero_grad()")
    expect_fail(capsys, check.ex2_5, true_labels_as_negatives, "negatives ff.wrong_labels")
    expect_fail(capsys, check.ex2_5, no_step, "optimizer.step()")


def test_ex3_5_a_dfa_update_for_one_block(capsys):
    from fwdlib.course.checks.lesson03 import _dfa_reference
    expect_pass(capsys, check.ex3_5, _dfa_reference)
    expect_fail(capsys, check.ex3_5, lambda b, x, e, fb: tuple(-g for g in _dfa_reference(b, x, e, fb)), "wrong sign")

    def true_gradient_of_sum(block, x, error, feedback):     # ignores the feedback: not DFA
        return tuple(torch.autograd.grad(block(x).sum(), list(block.parameters())))
    expect_fail(capsys, check.ex3_5, true_gradient_of_sum, "conv weight gradient differs")


def test_ex3_6_ridge_sweep(capsys):
    from fwdlib.course.checks.lesson03 import _ridge_sweep_reference
    expect_pass(capsys, check.ex3_6, _ridge_sweep_reference)
    expect_fail(capsys, check.ex3_6, lambda h, y, hv, yv, lams: _ridge_sweep_reference(h, y, hv, yv, [0.0] * len(lams)),
                "at lambda=")
    expect_fail(capsys, check.ex3_6, lambda h, y, hv, yv, lams: [0.5], "one accuracy per lambda")


def test_ex6_5_paired_ratios(capsys):
    expect_pass(capsys, check.ex6_5, lambda r, t: [r[s] / t[s] for s in sorted(set(r) & set(t))])
    expect_fail(capsys, check.ex6_5, lambda r, t: [float(np.median(list(r.values())) / np.median(list(t.values())))]
                * len(set(r) & set(t)), "SAME seed")
    expect_fail(capsys, check.ex6_5, lambda r, t: [t[s] / r[s] for s in sorted(set(r) & set(t))], "not the per-seed")


def test_measured_experiments_are_rerun_by_the_check(capsys):
    import fwdlib
    from fwdlib import algorithms, train

    def ff_val_accuracy(epochs, data):
        fwdlib.seed_all(0)
        model = algorithms.build("ff", input_shape=data.input_shape, num_classes=data.num_classes, hidden=(64, 64))
        train.fit(model, data, epochs=epochs, batch_size=128, progress=False)
        return train.evaluate(model, data.val)
    expect_pass(capsys, check.ex1_5, ff_val_accuracy)
    expect_fail(capsys, check.ex1_5, lambda epochs, data: 0.5, "same recipe gives")
    expect_fail(capsys, check.ex1_5, lambda epochs, data: 73.0, "number in [0, 1]")
    expect_fail(capsys, check.ex1_5, lambda epochs, data: ff_val_accuracy(1, data), "for 3 you measured")

    def mf_val_accuracy(width, data):
        fwdlib.seed_all(0)
        model = algorithms.build("mf", input_shape=data.input_shape, num_classes=data.num_classes, hidden=(width, width))
        train.fit(model, data, epochs=1, batch_size=128, progress=False)
        return train.evaluate(model, data.val)
    expect_pass(capsys, check.ex4_5, mf_val_accuracy)


def test_failure_messages_are_short_name_the_labels_and_blame_the_check_for_its_own_errors(capsys):
    ok, out = run(capsys, check.ex3_3, lambda logits: (torch.stack(logits).sum(0).argmax(1) + 1) % 10)
    assert not ok and "predicted classes differ" in out and "largest difference" not in out
    assert len(out.splitlines()) <= 10, out                 # lists of tensors shown by their shapes

    def overflowing(start, end):
        return 10 ** 400                                    # an int too large for a float: the check's problem
    ok, out = run(capsys, check.ex5_2, overflowing)
    assert not ok and "the check could not compare your answer (OverflowError" in out and "your code raised" not in out
