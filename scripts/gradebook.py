"""Release the exercises to a lab and grade what comes back, with nbgrader (`make assignments`,
`make gradebook SUBMISSIONS=DIR`).

    python scripts/gradebook.py release                 # release/students/ to hand out, release/autograder/ to keep
    python scripts/gradebook.py grade DIR [--notebooks 01,02] [--timeout S] [--cell-timeout S] [--jobs N]

One source: the student notebooks are exercises/ as scripts/make_exercises.py writes them from
solutions/, and each checked exercise's autograder test is its solution's `assert check.exN_M(...)`
cell, inserted after the exercise as an nbgrader test cell: locked, worth one point, its body
between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` (nbgrader removes it from the students'
copy and puts it back when it grades). A written exercise is graded by hand (the guide's rubric);
the gradebook shows its self-check's verdict beside it.

Grading reads DIR/<student>/<notebook>.ipynb and writes DIR/gradebook.csv: one row per student, its
notes (files not graded, renamed ones), and one points column and one message column per exercise
(the check's own message, or why it stopped). Each student is graded by its own `nbgrader
autograde` process, several at once, within a time limit per cell and one per notebook handed in;
the kernel that runs the student's code starts with scripts/sandbox.py (scripts/grading.py).

nbgrader rather than otter-grader: nbgrader keeps the tests in the notebook as cell metadata, which
our solutions already carry, and grades with local kernels; otter-grader wants its own question
markup and grades in Docker by default. nbgrader does not replace scripts/make_exercises.py: its
one stub per language cannot say which exercise a stub belongs to, nor drop solution-only cells
or turn exercise-only raw cells into code; so make_exercises writes the students' notebooks and
nbgrader adds the hidden tests, the locking and the grading.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import make_exercises  # noqa: E402
from fwdlib.files import atomic_write  # noqa: E402
from grading import ASSIGNMENT, POINTS, Exercise, bubblewrap, grade_student, nbgrader, nbgrader_id, write_config  # noqa: E402

RELEASE = ROOT / "release"
CHECKED = re.compile(r"^assert check\.ex(\d+)_(\d+)\(", re.MULTILINE)
QUIZ = re.compile(r"check\.quiz\(\"(\d+\.\d+)\"")
TIMEOUT_S, CELL_TIMEOUT_S = 600, 120       # per notebook, per cell


def exercises_of(solution: nbformat.NotebookNode, notebook: str) -> list[Exercise]:
    checked, written = {}, {}
    for cell in solution.cells:
        if "solution-only" in cell.metadata.get("tags", []) and (m := CHECKED.search(cell.source)):
            checked[f"{m[1]}.{m[2]}"] = True
        elif cell.cell_type == "code" and (m := QUIZ.search(cell.source)):
            written[m[1]] = True
    names = dict.fromkeys([*checked, *written])
    order = sorted(names, key=lambda n: tuple(int(part) for part in n.split(".")))
    return [Exercise(n, notebook, n in checked, n in written) for n in order]


def test_cell(exercise: str, assertion: str) -> nbformat.NotebookNode:
    """The autograder's test of one exercise: hidden from students, locked, worth POINTS. It checks with
    the kit's checks as installed, imported afresh (a notebook may have replaced their functions), and
    does not call again a function whose cell just ran past the time limit: it would only hang again."""
    cell = nbformat.v4.new_code_cell(
        f"# Exercise {exercise}: graded by the autograder (its test is hidden)\n### BEGIN HIDDEN TESTS\n"
        f"if isinstance(get_ipython().last_execution_result.error_in_exec, KeyboardInterrupt):\n"
        f"    raise TimeoutError('stopped: the exercise\\'s cell ran past the time limit; its check was not run again')\n"
        f"import sys as _sys\n"
        f"for _name in [m for m in _sys.modules if m.startswith('fwdlib.course.checks')]:\n"
        f"    del _sys.modules[_name]\n"
        f"from fwdlib.course.checks import check as _kit\n"
        f"{assertion.replace('check.', '_kit.', 1)}\n### END HIDDEN TESTS")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": POINTS,
                                 "grade_id": "ex" + exercise.replace(".", "_"), "schema_version": 3}
    return cell


def source_notebook(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The students' notebook (exercises/, one source) with a test cell where each solution-only check was."""
    student = make_exercises.strip_outputs(make_exercises.exercise_notebook(solution, name))
    by_id = {cell.id: cell for cell in student.cells}
    cells = []
    for cell in solution.cells:
        if cell.id in by_id:
            cells.append(by_id[cell.id])
        elif "solution-only" in cell.metadata.get("tags", []) and (m := CHECKED.search(cell.source)):
            cells.append(test_cell(f"{m[1]}.{m[2]}", cell.source.strip()))
    student.cells = cells
    return student


def release(out: Path = RELEASE) -> list[Exercise]:
    """release/students/ (hand these out) and release/autograder/ (keep it: it holds the hidden tests)."""
    course = out / "autograder"
    if out.exists():
        shutil.rmtree(out)
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    exercises = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        exercises += exercises_of(solution, path.name)
        nbformat.write(source_notebook(solution, path.name), course / "source" / ASSIGNMENT / path.name)
    write_config(course, CELL_TIMEOUT_S)
    nbgrader(course, ["generate_assignment", ASSIGNMENT, "--force"], timeout=600)
    shutil.copytree(course / "release" / ASSIGNMENT, out / "students")
    (out / "README.txt").write_text(
        "students/    the exercise notebooks to hand out (the autograder's tests are hidden in them)\n"
        "autograder/  nbgrader's course: the hidden tests and the gradebook database. Keep it to yourself.\n"
        "Grade: make gradebook SUBMISSIONS=DIR, with DIR/<student>/<notebook>.ipynb\n")
    return exercises


def all_exercises() -> list[Exercise]:
    return [e for path in sorted((ROOT / "solutions").glob("*.ipynb"))
            for e in exercises_of(nbformat.read(path, as_version=4), path.name)]


def grade(submissions: Path, timeout: float = TIMEOUT_S, cell_timeout: int = CELL_TIMEOUT_S,
          released: Path = RELEASE, jobs: int = os.cpu_count() or 1, notebooks: list[str] | None = None) -> Path:
    """Grade DIR/<student>/ into DIR/gradebook.csv (`notebooks`: the numbers of those assigned, default all)."""
    if not (released / "autograder" / "gradebook.db").exists():
        raise SystemExit(f"gradebook: no autograder in {released}; run `make assignments` first")
    submissions = submissions.resolve()            # nbgrader runs elsewhere: a relative path would name nothing
    if not submissions.is_dir():
        raise SystemExit(f"gradebook: {submissions} is not a folder; give SUBMISSIONS=DIR with DIR/<student>/<notebook>.ipynb")
    exercises = [e for e in all_exercises() if not notebooks or e.notebook[:2] in notebooks]
    if not exercises:
        raise SystemExit(f"gradebook: no notebook numbered {', '.join(notebooks)}; the release has "
                         f"{', '.join(sorted({e.notebook[:2] for e in all_exercises()}))}")
    folders = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise SystemExit(f"gradebook: no student folders in {submissions} (expected DIR/<student>/<notebook>.ipynb)")
    if (submissions / "gradebook.csv").exists() and not (submissions / "gradebook.csv").is_file():
        raise SystemExit(f"gradebook: {submissions / 'gradebook.csv'} is not a file; rename it, the gradebook goes there")
    hidden = [submissions, released.resolve(), ROOT / "solutions"]
    if bubblewrap() is None:
        print("gradebook: bubblewrap (bwrap) is not available here, so each kernel is held by scripts/sandbox.py "
              "alone, which code written to escape it can get past; install Debian's bubblewrap to isolate it")
    taken: set[str] = set()
    ids = [nbgrader_id(folder.name, taken) for folder in folders]
    # students in parallel, each in its own processes: a lab's forty submissions in minutes, not an hour
    def one(folder: Path, student: str):
        try:
            return grade_student(folder, student, submissions / ".grading" / student, exercises, timeout,
                                 cell_timeout, released, hidden)
        except Exception as error:        # one submission's surprise must not cost the others their grades
            why = f"could not grade this submission ({type(error).__name__}: {error})"
            return {e.name: ("0" if e.checked else "", why) for e in exercises}, [why]

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        graded = list(pool.map(one, folders, ids))
    rows, possible = [], str(POINTS * sum(e.checked for e in exercises))
    for folder, (results, notes) in zip(folders, graded):
        earned = sum(float(p) for p, _ in results.values() if p)
        rows.append({"student": folder.name, "points": f"{earned:g}", "of": possible, "notes": " | ".join(notes),
                     **{k: v for e in exercises for k, v in ((f"{e.name} points", results[e.name][0]),
                                                              (f"{e.name} message", results[e.name][1]))}})
        print(f"gradebook: {folder.name}: {earned:g} of {possible} points" + (f" ({'; '.join(notes)})" if notes else ""))
    rows = [{k: spreadsheet_safe(v) for k, v in row.items()} for row in rows]
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(submissions / "gradebook.csv", "\ufeff" + table.getvalue())     # the BOM: spreadsheets read UTF-8
    print(f"gradebook: {len(rows)} students in {submissions / 'gradebook.csv'}")
    return submissions / "gradebook.csv"


def spreadsheet_safe(value: str, limit: int = 500) -> str:
    """A cell no spreadsheet runs as a formula (a student's code prints into messages), of bounded length."""
    value = value if len(value) <= limit else value[:limit - 1] + "…"
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    releasing = commands.add_parser("release", help="write release/students/ and release/autograder/")
    releasing.add_argument("--out", type=Path, default=RELEASE, help="where the release goes (default: release/)")
    grading = commands.add_parser("grade", help="grade DIR/<student>/<notebook>.ipynb into DIR/gradebook.csv")
    grading.add_argument("submissions", type=Path)
    grading.add_argument("--release", type=Path, default=RELEASE, help="what `release` wrote (default: release/)")
    grading.add_argument("--timeout", type=float, default=TIMEOUT_S,
                         help=f"seconds for each notebook a student handed in (default {TIMEOUT_S})")
    grading.add_argument("--notebooks", type=lambda text: [n.strip().zfill(2) for n in text.split(",") if n.strip()],
                         help="the notebooks assigned, by number, e.g. 01,02 (default: all)")
    grading.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT_S,
                         help=f"seconds per cell (default {CELL_TIMEOUT_S})")
    grading.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                         help="students graded at once (default: one per CPU core)")
    args = parser.parse_args(argv)
    if args.command == "release":
        exercises = release(args.out)
        print(f"assignments: {len({e.notebook for e in exercises})} notebooks, {len(exercises)} exercises: "
              f"{sum(e.checked for e in exercises)} autograded, {sum(e.written for e in exercises)} with a written "
              f"answer to grade by hand; hand out {args.out / 'students'}, keep {args.out / 'autograder'}")
    else:
        if args.timeout <= 0 or args.cell_timeout <= 0 or args.jobs < 1:
            parser.error("--timeout and --cell-timeout are seconds above 0, --jobs a count from 1")
        grade(args.submissions, args.timeout, args.cell_timeout, args.release, args.jobs, args.notebooks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
