"""The instructor guide renders as written, repeats the README where it quotes it, and quotes what
each check prints. (Its minutes and sessions are fwdlib/course/timetable.py's: tests/test_timetable.py.)
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "solutions" / "INSTRUCTOR_GUIDE.md").read_text()


def test_the_guide_gives_the_readmes_class_recipe():
    def recipe(text):
        return text.split("<!-- class recipe -->\n")[1].split("```\n")[0]
    assert recipe(GUIDE) == recipe((ROOT / "README.md").read_text())


def test_the_common_mistakes_table_quotes_what_each_check_prints(capsys):
    import numpy as np
    import torch

    from fwdlib.algorithms import ff
    from fwdlib.bench.stats import t_quantile
    from fwdlib.course.checks import check
    from fwdlib.course.checks.lesson04 import _mf_autograd
    from tests.test_check_properties import _step_with
    from tests.test_checks import mf_grads

    def transposed_dm(*case):
        dw, db, dm = mf_grads(*case)
        return dw, db, dm.T

    def biased(y, c):
        weights = torch.ones(c - 1)
        weights[0] = 1.3
        return (y + 1 + torch.multinomial(weights, len(y), replacement=True)) % c

    def backward_into_grad(block, x, e, b):
        out = block(x.detach())
        out.backward((e @ b).view_as(out))
        return tuple(p.grad.clone() for p in block.parameters())

    def upper_median(a, b):
        return sorted(a)[len(a) // 2] / sorted(b)[len(b) // 2]

    def z_seeds(sd, margin):
        n = 2
        while 1.96 * sd / np.sqrt(n) >= margin:
            n += 1
        return n

    slips = {"mean instead of sum of squares": (check.ex1_1, lambda h: h.pow(2).mean(1)),
             "`1 / (1 + exp(theta - g))`": (check.ex1_2, lambda g, t: 1 / (1 + torch.exp(t - g))),
             "shuffling the batch's labels": (check.ex1_3, lambda y, c: y[torch.randperm(len(y))]),
             "one wrong class drawn 1.3x as often": (check.ex1_3, biased),
             "the 1e-8 added after the division": (check.ex2_1, lambda x: x / x.pow(2).mean(1, keepdim=True).sqrt() + 1e-8),
             "`log(1 + exp(...))`": (check.ex2_2, lambda p, n, t: (torch.log(1 + torch.exp(t - p))
                                                                 + torch.log(1 + torch.exp(n - t))).mean()),
             "a detached loss": (check.ex2_2, lambda p, n, t: ff.ff_layer_loss(p, n, t).detach()),
             "`zero_grad` after `backward`": (check.ex2_5, _step_with(("backward", "zero", "step"))),
             "the negatives under `torch.no_grad()`": (check.ex2_5, _step_with(("zero", "backward", "step"), True)),
             "lambda left out": (check.ex3_1, lambda h, y, lam: torch.linalg.solve(h.T @ h, h.T @ y)),
             "softmax": (check.ex3_2, lambda z: z.softmax(1)),
             "summing logits or log-probabilities": (check.ex3_3, lambda zs: sum(z.log_softmax(1) for z in zs).argmax(1)),
             "`backward()` into the block's `.grad`": (check.ex3_5, backward_into_grad),
             "autograd instead of the closed forms": (check.ex4_2, _mf_autograd),
             "a transposed gradient": (check.ex4_2, transposed_dm),
             "forgetting the /2": (check.ex5_1, lambda t, w: sum((t1 - t0) * (w0 + w1) for t0, t1, w0, w1
                                                                 in zip(t, t[1:], w, w[1:]))),
             "millijoules as joules": (check.ex5_2, lambda s, e: e - s if e >= s else None),
             "bootstrap of the mean": (check.ex6_1, lambda v, level=0.95, r=10_000, seed=0: tuple(np.quantile(
                 np.random.default_rng(seed).choice(v, (r, len(v))).mean(1), [(1 - level) / 2, (1 + level) / 2]))),
             "the upper middle value as the median of an even count": (check.ex6_2, upper_median),
             "comparing the interval with 0 instead of the margin": (check.ex6_3, lambda lo, hi, m: "rival better"
                                                                     if lo > 0 else "twin better" if hi < 0
                                                                     else "inconclusive"),
             "a set's order instead of sorted seeds": (check.ex6_5, lambda r, t: [r[s] / t[s] for s in set(r) & set(t)]),
             "1.96 instead of Student's t": (check.ex6_6, z_seeds),
             "joules times grams per kWh": (check.ex0_1, lambda e, g: e * g),
             "dividing by 1000 instead of 3.6e6": (check.ex0_1, lambda e, g: e / 1000 * g),
             "dividing by 3600 (watt-hours)": (check.ex0_1, lambda e, g: e / 3600 * g),
             "0 g for an energy the meter could not measure": (check.ex0_1, lambda e, g: 0.0 if e is None
                                                               else e / 3.6e6 * g),
             "√n alone, or 1.96 instead of Student's t": (check.ex7_3, lambda a, b: (a / b) ** 0.5),
             "t with n degrees of freedom": (check.ex7_3, lambda a, b: t_quantile(0.975, b) / b ** 0.5
                                             / (t_quantile(0.975, a) / a ** 0.5)),
             "the ratio of the pooled medians of absolute times": (check.ex7_4, lambda runs: float(
                 np.median([r["seconds"] for r in runs if r["role"] == "rival"])
                 / np.median([r["seconds"] for r in runs if r["role"] == "twin"]))),
             "the arithmetic mean of the per-unit ratios": (check.ex7_4, lambda runs: float(np.mean(
                 [next(r["seconds"] for r in runs if r["unit"] == u and r["role"] == "rival")
                  / next(r["seconds"] for r in runs if r["unit"] == u and r["role"] == "twin")
                  for u in dict.fromkeys(r["unit"] for r in runs)])))}
    section = GUIDE.split("## Common mistakes")[1].split("\n## ")[0]
    rows = re.findall(r"^\| (\d\.\d) \| (.+?) \| (.+?) \|$", section, re.MULTILINE)
    assert len(rows) == len(slips)
    for exercise, slip, said in rows:
        fn, wrong = slips[slip]
        assert fn.__name__ == "ex" + exercise.replace(".", "_")
        assert not fn(wrong)
        out = capsys.readouterr().out
        for quote in re.findall(r'"(.+?)"', said):
            assert quote in out, (exercise, slip, quote, out)


def test_the_guide_renders_with_every_heading_outside_a_code_block():
    """An unclosed fence once swallowed three sections: render the guide as a reader's viewer does."""
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(GUIDE)
    headings = re.findall(r"^#{1,4} (.+)$", re.sub(r"```.*?```", "", GUIDE, flags=re.S), re.MULTILINE)
    rendered = re.findall(r"<h[1-4]>(.+?)</h[1-4]>", html)
    assert len(rendered) == len(headings) and len(rendered) > 10, (len(rendered), len(headings))
    for code in re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", html, re.S):
        assert not re.search(r"^#{1,4} [A-Z]", code, re.MULTILINE), code[:200]
