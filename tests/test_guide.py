"""The instructor guide's lab plans add up: each slot holds what the kit estimates it needs.

A lesson's minutes come from its "Time: about N minutes" line, an exercise's from its heading
("about N minutes"); each plan's slots must be contiguous, fill the session, and hold their items.
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "solutions" / "INSTRUCTOR_GUIDE.md").read_text()


def lesson_minutes() -> dict[str, int]:
    return {p.name[:2]: int(re.search(r"\*\*Time:\*\* about (\d+) minutes", p.read_text())[1])
            for p in (ROOT / "notebooks").glob("*.ipynb")}


def exercise_minutes() -> dict[str, int]:
    found = {}
    for p in (ROOT / "solutions").glob("*.ipynb"):
        found.update(re.findall(r"### Exercise (\d+\.\d+) · .*?\(about (\d+) minutes\)", p.read_text()))
    return {k: int(v) for k, v in found.items()}


def plan(title: str) -> list[tuple[int, int, str, int]]:
    section = GUIDE.split(title)[1].split("\n### ")[0]
    rows = re.findall(r"^\| (\d+)-(\d+) \| (.+?) \| (\d+) \|$", section, re.MULTILINE)
    return [(int(a), int(b), what, int(est)) for a, b, what, est in rows]


def needed(what: str) -> int:
    if what.startswith("lesson "):
        return lesson_minutes()[what.split()[1]]
    if what.startswith("exercises "):
        return sum(exercise_minutes()[n] for n in re.findall(r"\d+\.\d+", what))
    return int(re.search(r"(\d+)", what)[1]) if what[0].isdigit() else None


def test_the_plans_add_up_from_the_kits_estimates():
    for title in ("### A 90-minute lab", "### Two sessions"):
        rows = plan(title)
        assert rows, title
        assert rows[0][0] == 0 and rows[-1][1] == 90, (title, rows)
        for (a, b, what, estimate), (c, *_) in zip(rows, rows[1:] + [(90,)]):
            assert b == c, f"{title}: slot {a}-{b} is not followed by one starting at {b}"
            need = needed(what)
            if need is not None:
                assert estimate == need, f"{title}: '{what}' needs {need} minutes by the kit's estimates, not {estimate}"
            assert estimate <= b - a, f"{title}: '{what}' ({estimate} min) does not fit in {a}-{b}"


def test_the_totals_the_guide_states_are_the_kits():
    assert f"about {sum(lesson_minutes().values())} minutes of lessons" in GUIDE
    assert f"{sum(exercise_minutes().values())} of exercises" in GUIDE


def test_the_readme_counts_the_exercises():
    assert f"{len(exercise_minutes())} exercises, hints in two levels" in (ROOT / "README.md").read_text()


def test_the_course_map_states_each_lessons_own_compute_time():
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        seconds = re.search(r"Compute: about (\d+) s", path.read_text())[1]
        row = next(line for line in readme.splitlines() if line.startswith(f"| {path.name[:2]} | ["))
        assert f"| {seconds} s |" in row, (path.name, seconds, row[-60:])


def test_the_guide_gives_the_readmes_class_recipe():
    def recipe(text):
        return text.split("<!-- class recipe -->\n")[1].split("```\n")[0]
    assert recipe(GUIDE) == recipe((ROOT / "README.md").read_text())


def test_the_common_mistakes_table_quotes_what_each_check_prints(capsys):
    import numpy as np
    import torch

    from fwdlib.algorithms import ff
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
             "1.96 instead of Student's t": (check.ex6_6, z_seeds)}
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
