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
