"""Every check accepts a correct answer and explains several wrong ones."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fwdlib.bench import stats
from fwdlib.course.checks import check
from fwdlib.course.checks.lesson03 import _ridge_sweep_reference


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
        raise NotImplementedError("write your code here")
    for fn, student in ((check.ex1_1, stub), (check.ex6_3, stub), (check.ex5_1, ...), (check.ex0_1, stub),
                        (check.ex7_3, stub), (check.ex7_4, ...)):
        ok, out = run(capsys, fn, student)
        assert not ok and "not attempted yet" in out and "✗" not in out


def test_ex1_1_goodness(capsys):
    expect_pass(capsys, check.ex1_1, lambda h: (h ** 2).sum(1))
    expect_fail(capsys, check.ex1_1, lambda h: (h ** 2).sum(), "shape (", "summed")
    expect_fail(capsys, check.ex1_1, lambda h: None, "forget to `return`")
    expect_fail(capsys, check.ex1_1, lambda h: h.sum(1), "their SQUARES", "Failing input (a random batch")


def test_ex1_2_probability(capsys):
    expect_pass(capsys, check.ex1_2, lambda g, t: 1 / (1 + torch.exp(-(g - t).clamp(-80, 80))))
    expect_fail(capsys, check.ex1_2, lambda g, t: torch.sigmoid(g - t) + 0.1, "same constant")
    # right in value, but its gradient is nan thousands away from theta, where FF's goodness lives
    expect_fail(capsys, check.ex1_2, lambda g, t: 1 / (1 + torch.exp(t - g)), "not finite", "torch.sigmoid")


def test_ex1_3_negative_labels(capsys):
    expect_pass(capsys, check.ex1_3, lambda y, c: (y + torch.randint(1, c, y.shape)) % c)
    expect_fail(capsys, check.ex1_3, lambda y, c: ((y + 1) % c).float(), "int64")
    expect_fail(capsys, check.ex1_3, lambda y, c: y + 1, "outside")

    def reseeded(y, c):
        return (y + torch.randint(1, c, y.shape, generator=torch.Generator().manual_seed(0))) % c
    expect_fail(capsys, check.ex1_3, reseeded, "calls gave exactly the same labels")


def test_ex2_1_normalise(capsys):
    expect_pass(capsys, check.ex2_1, lambda x: x / (x.pow(2).mean(1, keepdim=True).sqrt() + 1e-8))


def test_ex2_2_loss(capsys):
    expect_pass(capsys, check.ex2_2, lambda p, n, t: (F.softplus(t - p) + F.softplus(n - t)).mean())
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


def test_ex3_1_ridge(capsys):
    def good(h, y, lam):
        return torch.linalg.solve(h.T @ h + lam * torch.eye(h.shape[1], dtype=h.dtype), h.T @ y)
    expect_pass(capsys, check.ex3_1, good)
    expect_fail(capsys, check.ex3_1, lambda h, y, lam: good(h, y, lam).T, "transpose")


def test_ex3_2_sparsemax(capsys):
    from fwdlib.algorithms import cafo

    def good(z):
        s, _ = z.sort(1, descending=True)
        k = torch.arange(1, z.shape[1] + 1, dtype=z.dtype)
        support = (1 + k * s > s.cumsum(1)).sum(1, keepdim=True)
        tau = (s.cumsum(1).gather(1, support - 1) - 1) / support
        return (z - tau).clamp(min=0)
    expect_pass(capsys, check.ex3_2, good)
    expect_pass(capsys, check.ex3_2, cafo.sparsemax)


def test_ex3_3_ensemble(capsys):
    expect_pass(capsys, check.ex3_3, lambda zs: sum(z.softmax(1) for z in zs).argmax(1))
    expect_fail(capsys, check.ex3_3, lambda zs: sum(zs).argmax(1), "you summed the logits", "Failing input (")


def mf_grads(a_prev, w, b, m, y):
    z = a_prev @ w.T + b
    a = z.clamp(min=0)
    e = (a @ m.T).softmax(1) - F.one_hot(y, m.shape[0]).float()
    delta = (e @ m) * (z > 0).float()
    return delta.T @ a_prev / len(y), delta.mean(0), e.T @ a / len(y)


def test_ex4_1_local_loss(capsys):
    expect_pass(capsys, check.ex4_1, lambda a, m, y: F.cross_entropy(a @ m.T, y))
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

    expect_pass(capsys, check.ex4_3, good)


def test_ex5_energy_and_flops(capsys):
    def trapezoid(t, w):
        return sum((t[i + 1] - t[i]) * (w[i] + w[i + 1]) / 2 for i in range(len(t) - 1))
    expect_pass(capsys, check.ex5_1, trapezoid)
    expect_fail(capsys, check.ex5_1, lambda t, w: sum(w[:-1]) * (t[-1] - t[0]) / (len(t) - 1), "relative error")
    expect_pass(capsys, check.ex5_2, lambda s, e: (e - s) / 1000 if e >= s else None)
    expect_pass(capsys, check.ex5_3, lambda b, s: 2 * b * sum(x * y for x, y in zip(s, s[1:])))


def test_ex6_statistics(capsys):
    def boot(values, level=0.95, resamples=10_000, seed=0):
        rng = np.random.default_rng(seed + 1)                 # a different but valid scheme
        stats = np.median(rng.choice(values, (resamples, len(values))), axis=1)
        return float(np.quantile(stats, (1 - level) / 2)), float(np.quantile(stats, (1 + level) / 2))
    expect_pass(capsys, check.ex6_1, boot)
    expect_fail(capsys, check.ex6_1, lambda v, **k: (min(v), max(v)) if len(set(v)) > 1 and len(v) > 2 else (v[0], v[-1]),
                "not the percentile interval")
    expect_pass(capsys, check.ex6_2, lambda a, b: float(np.median(a) / np.median(b)))

    def outcome(lo, hi, margin):
        if lo > margin:
            return "rival better"
        if hi < -margin:
            return "twin better"
        return "equivalent" if -margin < lo and hi < margin else "inconclusive"
    expect_pass(capsys, check.ex6_3, outcome)
    expect_fail(capsys, check.ex6_3, lambda lo, hi, m: "yes", "return one of")
    expect_fail(capsys, check.ex6_3, lambda lo, hi, m: "rival better" if (lo + hi) / 2 > m else outcome(lo, hi, m),
                "you said 'rival better'", "inside (-margin, +margin)")   # the centre beyond the margin is not enough


def test_ex6_6_seeds_needed(capsys):
    from fwdlib.bench.stats import t_quantile

    def seeds_for(sd, margin):
        n = 2
        while t_quantile(0.975, n - 1) * sd / np.sqrt(n) >= margin:
            n += 1
        return n
    expect_pass(capsys, check.ex6_6, seeds_for)


def test_ex0_1_co2_from_energy(capsys):
    def co2_grams(energy_j, grid):
        return None if energy_j is None else energy_j / 3.6e6 * grid
    expect_pass(capsys, check.ex0_1, co2_grams)
    expect_pass(capsys, check.ex0_1, lambda e, g: None if e is None else e / 3600 / 1000 * g)        # via Wh
    expect_pass(capsys, check.ex0_1, lambda e, g: None if e is None else np.float64(e) * g / 3_600_000)
    expect_fail(capsys, check.ex0_1, lambda e, g: e / 3.6e6 * g, "raised TypeError", "could not measure (None)")
    expect_fail(capsys, check.ex0_1, lambda e, g: None if e is None else e / 3.6e6 * g / 1000, "grams, not kilograms")
    expect_fail(capsys, check.ex0_1, lambda e, g: None if e is None else e * 3.6e6 * g, "where you must divide")
    expect_fail(capsys, check.ex0_1, lambda e, g: "unknown" if e is None else co2_grams(e, g), "return None")
    # a conversion constant off by one joule in 3.6 million is a wrong constant, not rounding
    expect_fail(capsys, check.ex0_1, lambda e, g: None if e is None else e / 3_600_001 * g, "relative error about 3e-07")


def test_ex7_3_narrowing(capsys):
    import math

    def narrowing(n_from, n_to):
        def half(n):
            return stats.t_quantile(0.975, n - 1) / math.sqrt(n)
        return half(n_to) / half(n_from)
    expect_pass(capsys, check.ex7_3, narrowing)
    expect_pass(capsys, check.ex7_3, lambda a, b: np.float64(stats.t_quantile(0.975, b - 1) * np.sqrt(a))
                / (stats.t_quantile(0.975, a - 1) * np.sqrt(b)))
    expect_fail(capsys, check.ex7_3, lambda a, b: 1.96 / math.sqrt(b) / (1.96 / math.sqrt(a)), "t(0.975, n - 1) falls too")
    expect_fail(capsys, check.ex7_3, lambda a, b: (stats.t_quantile(0.975, b - 1) / math.sqrt(b),
                                                  stats.t_quantile(0.975, a - 1) / math.sqrt(a)), "should be a number")
    expect_fail(capsys, check.ex7_3, lambda a, b: narrowing(a, b) if a < b else 1.0, "from 10 back to 5 seeds")


def _by_unit(runs):
    pairs = {}
    for run in runs:
        pairs.setdefault(run["unit"], {})[run["role"]] = run["seconds"]
    return pairs


def test_ex7_4_pooled_ratio(capsys):
    import math
    import statistics

    def pooled(runs):
        logs = [math.log(p["rival"] / p["twin"]) for p in _by_unit(runs).values()]
        return math.exp(sum(logs) / len(logs))
    expect_pass(capsys, check.ex7_4, pooled)
    expect_pass(capsys, check.ex7_4, lambda runs: statistics.geometric_mean(
        p["rival"] / p["twin"] for p in _by_unit(runs).values()))
    expect_pass(capsys, check.ex7_4, lambda runs: np.exp(np.mean(np.log([p["rival"] / p["twin"]
                                                                         for p in _by_unit(runs).values()]))))

    def adjacent(runs):                 # assumes each unit's rival is listed first, its twin right after it
        logs = [math.log(runs[i]["seconds"] / runs[i + 1]["seconds"]) for i in range(0, len(runs), 2)]
        return math.exp(sum(logs) / len(logs))
    expect_fail(capsys, check.ex7_4, adjacent, "relative error", "training the twin first")

    def per_machine(runs):              # each machine's ratio of medians, then their geometric mean
        machines = {}
        for run in runs:
            machines.setdefault(run["machine"], {}).setdefault(run["role"], []).append(run["seconds"])
        return math.exp(np.mean([math.log(np.median(m["rival"]) / np.median(m["twin"])) for m in machines.values()]))
    expect_fail(capsys, check.ex7_4, per_machine, "not the right answer")

    def sorts_in_place(runs):
        runs.sort(key=lambda run: (run["unit"], run["role"]))
        return pooled(runs)
    expect_fail(capsys, check.ex7_4, sorts_in_place, "changed its input `runs` in place")

    def tags_runs(runs):
        for run in runs:
            run["ratio_seen"] = True
        return pooled(runs)
    expect_fail(capsys, check.ex7_4, tags_runs, "changed its input `runs` in place")


# ------------------------------------------------------------------ quizzes, steps, measured experiments

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
    expect_fail(capsys, check.ex3_5, lambda b, x, e, fb: tuple(g / len(x) for g in _dfa_reference(b, x, e, fb)),
                "divided by the batch size")


def test_ex3_6_ridge_sweep(capsys):
    expect_pass(capsys, check.ex3_6, _ridge_sweep_reference)
    expect_fail(capsys, check.ex3_6, lambda h, y, hv, yv, lams: _ridge_sweep_reference(h, y, hv, yv, [0.0] * len(lams)),
                "pass each lambda")
    expect_fail(capsys, check.ex3_6, lambda h, y, hv, yv, lams: [0.5], "one accuracy per lambda")


def test_ex6_5_paired_ratios(capsys):
    expect_pass(capsys, check.ex6_5, lambda r, t: [r[s] / t[s] for s in sorted(set(r) & set(t))])


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
    expect_fail(capsys, check.ex4_5, lambda width, data: mf_val_accuracy(16, data), "for 64 you measured")
    expect_fail(capsys, check.ex4_5, lambda width, data: 100 * mf_val_accuracy(width, data), "number in [0, 1]")

    def without_seed(width, data):
        model = algorithms.build("mf", input_shape=data.input_shape, num_classes=data.num_classes, hidden=(width, width))
        train.fit(model, data, epochs=1, batch_size=128, progress=False)
        return train.evaluate(model, data.val)
    torch.manual_seed(123)
    expect_fail(capsys, check.ex4_5, without_seed, "Seed with fwdlib.seed_all(0)")


def test_failure_messages_are_short_name_the_labels_and_blame_the_check_for_its_own_errors(capsys):
    ok, out = run(capsys, check.ex3_3, lambda logits: (torch.stack(logits).sum(0).argmax(1) + 1) % 10)
    assert not ok and "predicted classes are wrong" in out and "largest difference" not in out
    assert len(out.splitlines()) <= 10, out                 # lists of tensors shown by their shapes

    def overflowing(start, end):
        return 10 ** 400                                    # the student's overflow, said as such
    ok, out = run(capsys, check.ex5_2, overflowing)
    assert not ok and "is inf where the right answer is a finite number" in out and "could not compare" not in out

    def crashes_the_comparison(h):
        class Weird(torch.Tensor):                          # a tensor subclass whose comparison breaks
            def double(self):
                raise RuntimeError("boom")
        return (h ** 2).sum(1).as_subclass(Weird)
    ok, out = run(capsys, check.ex1_1, crashes_the_comparison)
    assert not ok and "the check could not compare your answer (RuntimeError: boom)" in out


# ------------------------------------------------------------------ every check rejects the wrong answers we know
def _mf_no_mask(a_prev, w, b, m, y):
    a = F.relu(a_prev @ w.T + b)
    e = (a @ m.T).softmax(1) - F.one_hot(y, m.shape[0]).to(a.dtype)
    return (e @ m).T @ a_prev / len(y), (e @ m).mean(0), e.T @ a / len(y)


def _sgd_with(step_lr, moved=("w", "b", "m")):
    def step(a_prev, w, b, m, y, lr):
        dw, db, dm = mf_grads(a_prev, w, b, m, y)
        new = {"w": w - step_lr(lr) * dw, "b": b - step_lr(lr) * db, "m": m - step_lr(lr) * dm}
        return tuple(new[k] if k in moved else old for k, old in zip("wbm", (w, b, m)))
    return step


def _seeds_by_z(sd, margin):
    n = 2
    while 1.96 * sd / np.sqrt(n) >= margin:
        n += 1
    return n


def _seeds_by_half_width(sd, margin):
    n = 2
    while stats.t_quantile(0.975, n - 1) * sd / np.sqrt(n) >= margin:
        n += 1
    return n


def _seeds_by_width(sd, margin):
    n = 2
    while 2 * stats.t_quantile(0.975, n - 1) * sd / np.sqrt(n) >= margin:
        n += 1
    return n


def _t_half(n, p=0.975, df_shift=0):
    return stats.t_quantile(p, n - 1 + df_shift) / np.sqrt(n)


def _pooled_medians(runs):
    pairs = _by_unit(runs).values()
    return float(np.median([p["rival"] for p in pairs]) / np.median([p["twin"] for p in pairs]))


def _ratio_of_totals(runs):
    pairs = _by_unit(runs).values()
    return sum(p["rival"] for p in pairs) / sum(p["twin"] for p in pairs)


def _unit_ratios(runs):
    return [p["rival"] / p["twin"] for p in _by_unit(runs).values()]


def _backprop_then_project(w, x, y, v):
    """The right value, by a backward pass: the task asks for forward mode."""
    return (_autograd_gradient(w, x, y) * v).sum() * v


def _autograd_gradient(w, x, y):
    w = w.detach().clone().requires_grad_()
    return torch.autograd.grad(F.cross_entropy(x @ w.T, y), w)[0]


# exercise -> plausible wrong answers, each with the words of the message that must name its mistake
WRONG_ANSWERS = {
    "0.1": [(lambda e, g: e * g, "convert the joules to kWh first"),
            (lambda e, g: e / 1000 * g, "that gives kJ, not kWh"),
            (lambda e, g: e / 3600 * g, "that gives Wh"),
            (lambda e, g: 0.0 if e is None else e / 3.6e6 * g, "unknown, not 0 J: return None")],
    "1.1": [(lambda h: h.sum(1), "their SQUARES"), (lambda h: h.pow(2).mean(1), "SUM of squares"),
            (lambda h: h.pow(2).sum(0), "over the batch")],
    "1.2": [(lambda g, t: torch.sigmoid(t - g), "sign is reversed"), (lambda g, t: torch.sigmoid(g), "theta is missing"),
            (lambda g, t: g - t, "needs the sigmoid")],
    "1.3": [(lambda y, c: y[torch.randperm(len(y))], "equal the true label"),
            (lambda y, c: (y + 1) % c, "calls gave exactly the same labels"),
            (lambda y, c: (y + 1 + torch.arange(len(y)) % (c - 1)) % c, "calls gave exactly the same labels")],
    "2.1": [(lambda x: x / x.norm(dim=1, keepdim=True), "L2 norm"), (lambda x: x / x.std(1, keepdim=True), "standard deviation"),
            (lambda x: x / x.pow(2).mean(0, keepdim=True).sqrt(), "each column")],
    "2.2": [(lambda p, n, t: (F.softplus(t - p) + F.softplus(n - t)).sum(), "MEAN over samples"),
            (lambda p, n, t: (F.softplus(p - t) + F.softplus(t - n)).mean(), "swapped"),
            (lambda p, n, t: F.softplus(t - p).mean(), "negatives' term")],
    "2.3": [(lambda x, l, c: x.flatten(1), "no label was written"),
            (lambda x, l, c: x.flatten(1) + F.pad(F.one_hot(l, c).to(x.dtype), (0, x[0].numel() - c)), "added the one-hot"),
            (lambda x, l, c: torch.cat([x.flatten(1)[:, :-c], F.one_hot(l, c).to(x.dtype)], 1), "LAST C pixels")],
    "3.1": [(lambda h, y, lam: torch.linalg.solve(h.T @ h, h.T @ y), "lambda is missing"),
            (lambda h, y, lam: torch.linalg.solve(h.T @ h + lam, h.T @ y), "to every entry"),
            (lambda h, y, lam: torch.linalg.solve(h.T @ h + lam ** 2 * torch.eye(h.shape[1], dtype=h.dtype), h.T @ y),
             "lambda squared")],
    "3.2": [(lambda z: z.softmax(1), "that is softmax"), (lambda z: z.relu() / z.relu().sum(1, keepdim=True).clamp_min(1e-12),
                                                          "ONE threshold"),
            (lambda z: F.one_hot(z.argmax(1), z.shape[1]).to(z.dtype), "one-hot of the argmax")],
    "3.3": [(lambda zs: torch.stack(zs).sum(0).argmax(1), "summed the logits"), (lambda zs: zs[-1].argmax(1), "last block only"),
            (lambda zs: sum(z.softmax(1) for z in zs), "one predicted class per row")],
    "3.6": [(lambda h, y, hv, yv, lams: [0.5], "one accuracy per lambda"),
            (lambda h, y, hv, yv, lams: _ridge_sweep_reference(h, y, h, y, lams), "TRAINING features"),
            (lambda h, y, hv, yv, lams: _ridge_sweep_reference(h, y, hv, yv, [0.0] * len(lams)), "pass each lambda")],
    "4.1": [(lambda a, m, y: F.nll_loss(a @ m.T, y), "log-probabilities"),
            (lambda a, m, y: F.cross_entropy(a @ m.T, y, reduction="sum"), "MEAN cross-entropy"),
            (lambda a, m, y: F.cross_entropy(F.relu(a @ m.T), y), "no ReLU")],
    "4.2": [(_mf_no_mask, "mask is missing"), (lambda *case: tuple(g * len(case[-1]) for g in mf_grads(*case)), "B times too large"),
            (lambda *case: mf_grads(*case)[0], "return a tuple")],
    "4.3": [(_sgd_with(lambda lr: -lr), "stepped UP"), (_sgd_with(lambda lr: lr, moved=("w",)), "only W moved"),
            (_sgd_with(lambda lr: 1.0), "ignores lr")],
    "5.1": [(lambda t, w: sum((t1 - t0) * w0 for t0, t1, w0 in zip(t, t[1:], w)), "left rectangle rule"),
            (lambda t, w: float(np.mean(w)) * (t[-1] - t[0]), "mean power times the duration"),
            (lambda t, w: sum((t1 - t0) * (w0 + w1) for t0, t1, w0, w1 in zip(t, t[1:], w, w[1:])), "twice the right answer")],
    "5.2": [(lambda s, e: e - s, "1000x too large"), (lambda s, e: (e - s) / 1000, "should be None"),
            (lambda s, e: (e - s) / 1000 if e > s else None, "two equal readings are 0 J")],
    "5.3": [(lambda b, s: 2 * sum(x * y for x, y in zip(s, s[1:])), "per sample"),
            (lambda b, s: b * sum(x * y for x, y in zip(s, s[1:])), "multiply-add as one FLOP"),
            (lambda b, s: 2 * b * s[0] * s[1], "only the first layer")],
    "6.1": [(lambda v, level=0.95, *_: (lambda d: (float(np.quantile(d, 0.05)), float(np.quantile(d, 0.95))))(
                np.median(np.random.default_rng(0).choice(v, (10_000, len(v))), axis=1)), "at the requested level"),
            (lambda v, level=0.95, *_: (lambda d: (float(np.quantile(d, (1 - level) / 2)), float(np.quantile(d, (1 + level) / 2))))(
                np.random.default_rng(0).choice(v, (10_000, len(v))).mean(1)), "interval of the MEAN"),
            (lambda v, level=0.95, *_: (max(v), min(v)), "above hi")],
    "6.2": [(lambda a, b: float(np.mean(a) / np.mean(b)), "ratio of the MEANS"), (lambda a, b: float(np.median(b) / np.median(a)),
                                                                                "upside down"),
            (lambda a, b: float(np.median(np.array(a) / np.array(b))), "median of the per-seed ratios")],
    "6.3": [(lambda lo, hi, m: "rival better" if lo > 0 else "twin better" if hi < 0 else "inconclusive", "with 0"),
            (lambda lo, hi, m: "rival better" if lo > m else "twin better" if hi < -m else "inconclusive", "never answer 'equivalent'"),
            (lambda lo, hi, m: "rival better" if (lo + hi) / 2 > m else "inconclusive", "reread the four cases")],
    "6.5": [(lambda r, t: [t[s] / r[s] for s in sorted(set(r) & set(t))], "upside down"),
            (lambda r, t: [float(np.median(list(r.values())) / np.median(list(t.values())))] * len(set(r) & set(t)), "SAME seed"),
            (lambda r, t: [r[s] / t[s] for s in sorted(r) if s in t][:1], "one ratio per seed")],
    "6.6": [(_seeds_by_z, "Student's t"), (lambda sd, m: _seeds_by_z(sd, m) + 1, "not below the margin"),
            (lambda sd, m: _seeds_by_half_width(sd, m) + 1, "not the fewest"),
            (lambda sd, m: float(_seeds_by_z(sd, m)), "whole number"),
            (lambda sd, m: _seeds_by_width(sd, m), "whole width")],
    "7.3": [(lambda a, b: np.sqrt(a / b), "t(0.975, n - 1) falls too"),
            (lambda a, b: _t_half(a) / _t_half(b), "upside down"),
            (lambda a, b: stats.t_quantile(0.975, b - 1) / stats.t_quantile(0.975, a - 1), "you left out sqrt(n)"),
            (lambda a, b: _t_half(b) * np.sqrt(b) / b / (_t_half(a) * np.sqrt(a) / a), "not sd / n"),
            (lambda a, b: _t_half(b, df_shift=1) / _t_half(a, df_shift=1), "n - 1 degrees of freedom"),
            (lambda a, b: _t_half(b, p=0.95) / _t_half(a, p=0.95), "its quantile is t(0.975, n - 1)")],
    "7.4": [(_pooled_medians, "ratio of the pooled medians of absolute times"),
            (_ratio_of_totals, "the slowest machines' units weigh most"),
            (lambda runs: float(np.mean(_unit_ratios(runs))), "arithmetic mean of the per-unit ratios"),
            (lambda runs: float(np.median(_unit_ratios(runs))), "median of the per-unit ratios"),
            (lambda runs: float(np.exp(-np.mean(np.log(_unit_ratios(runs))))), "upside down")],
    "5.5": [(lambda inputs, kept: sum(kept), "plain backprop's peak"),
            (lambda inputs, kept: sum(inputs) + max(kept), "released each block's bytes"),
            (lambda inputs, kept: max(sum(inputs[:k + 1]) + kept[k] for k in range(len(kept))), "counted twice"),
            (lambda inputs, kept: sum(inputs[:-1]) + kept[-1], "three blocks, each keeping 9x its input")],
    "8.1": [(lambda w, x, y, v: _autograd_gradient(w, x, y), "equals it only on average over tangents"),
            (lambda w, x, y, v: _autograd_gradient(w, x, y) * v, "the slope is ONE number"),
            (lambda w, x, y, v: (_autograd_gradient(w, x, y) * v).sum() * v / v.norm().clamp_min(1e-12) ** 2,
             "you normalised the tangent"),
            (lambda w, x, y, v: (_autograd_gradient(w, x, y) * v).sum(), "the slope grad L . V alone"),
            (_backprop_then_project, "compute the slope with torch.func.jvp")],
    "8.2": [(lambda a, g: (g.T @ a, g.sum(0)), "divide both by the batch size"),
            (lambda a, g: (a.T @ g / len(g), g.mean(0)), "dW is transposed"),
            (lambda a, g: (g.T @ a / len(g), g.sum(0)), "db is the mean of g_z"),
            (lambda a, g: (g.T @ a / len(g), g.mean(1)), "averages over the batch (dim 0)")],
    "8.3": [(lambda n, e: int(np.ceil((n + 2) / e ** 2)), "the second moment"),
            (lambda n, e: int(np.ceil((n + 1) / e)), "square the relative error"),
            (lambda n, e: int((n + 1) / e ** 2), "round UP"),
            (lambda n, e: int(np.ceil(n / e ** 2)), "(n + 1)|grad L|^2")],
}
# Checks that rerun a training or a step: their wrong answers live in their own tests above.
OWN_TESTS = {"1.5": "test_measured_experiments_are_rerun_by_the_check", "2.5": "test_ex2_5_a_whole_ff_step_for_one_layer",
             "3.5": "test_ex3_5_a_dfa_update_for_one_block", "4.5": "test_measured_experiments_are_rerun_by_the_check"}


@pytest.mark.parametrize("exercise, index", [(e, i) for e, wrongs in WRONG_ANSWERS.items() for i in range(len(wrongs))])
def test_every_known_wrong_answer_is_rejected_with_its_mistake_named(capsys, exercise, index):
    wrong, words = WRONG_ANSWERS[exercise][index]
    expect_fail(capsys, check.__dict__["ex" + exercise.replace(".", "_")], wrong, words)
    assert len(capsys.readouterr().out.splitlines()) <= 10


def test_every_check_has_three_wrong_answers_or_its_own_test():
    from fwdlib.course.checks import EXERCISES
    names = {name[2:].replace("_", ".") for name in EXERCISES}
    assert names == set(WRONG_ANSWERS) | set(OWN_TESTS)
    assert all(len(w) >= 3 for w in WRONG_ANSWERS.values())
    assert all(name in globals() for name in OWN_TESTS.values())


def test_a_check_that_waits_for_an_earlier_exercise_says_which(capsys):
    def sweep_over_an_unsolved_ridge(h, y, hv, yv, lambdas):
        raise NotImplementedError("Exercise 3.1: replace this line with your code")
    ok, out = run(capsys, check.ex3_6, sweep_over_an_unsolved_ridge)
    assert not ok and "finish Exercise 3.1 first" in out and "not attempted" not in out
