"""Every check accepts a correct answer and explains several wrong ones."""
import numpy as np
import torch
import torch.nn.functional as F

from fwdlib.checks import check


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
    expect_fail(capsys, check.ex1_2, lambda g, t: torch.sigmoid(t - g), "largest difference")
    expect_fail(capsys, check.ex1_2, lambda g, t: torch.sigmoid(g - t) + 0.1, "same constant")


def test_ex1_3_negative_labels(capsys):
    expect_pass(capsys, check.ex1_3, lambda y, c: (y + torch.randint(1, c, y.shape)) % c)
    expect_fail(capsys, check.ex1_3, lambda y, c: y[torch.randperm(len(y))], "equal the true label")
    expect_fail(capsys, check.ex1_3, lambda y, c: (y + 1) % c, "not uniform")
    expect_fail(capsys, check.ex1_3, lambda y, c: ((y + 1) % c).float(), "int64")
    expect_fail(capsys, check.ex1_3, lambda y, c: y + 1, "outside")


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
    expect_fail(capsys, check.ex3_1, lambda h, y, lam: torch.linalg.solve(h.T @ h, h.T @ y), "largest difference")
    expect_fail(capsys, check.ex3_1, lambda h, y, lam: good(h, y, lam).T, "transpose")


def test_ex3_2_sparsemax(capsys):
    def good(z):
        s, _ = z.sort(1, descending=True)
        k = torch.arange(1, z.shape[1] + 1, dtype=z.dtype)
        support = (1 + k * s > s.cumsum(1)).sum(1, keepdim=True)
        tau = (s.cumsum(1).gather(1, support - 1) - 1) / support
        return (z - tau).clamp(min=0)
    expect_pass(capsys, check.ex3_2, good)
    expect_fail(capsys, check.ex3_2, lambda z: z.softmax(1), "largest difference")


def test_ex3_3_ensemble(capsys):
    expect_pass(capsys, check.ex3_3, lambda zs: sum(z.softmax(1) for z in zs).argmax(1))
    expect_fail(capsys, check.ex3_3, lambda zs: sum(zs).argmax(1), "largest difference", "Failing input #1")
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

    def survives(rival, twin, higher):
        (rlo, rhi), (tlo, thi) = boot(rival), boot(twin)
        return bool(rlo > thi) if higher else bool(rhi < tlo)
    expect_pass(capsys, check.ex6_3, survives)
    expect_fail(capsys, check.ex6_3, lambda r, t, h: bool(np.median(r) > np.median(t)), "intervals say")
    expect_fail(capsys, check.ex6_3, lambda r, t, h: "yes", "True or False")
