"""Release the exercises to a lab and grade what comes back, with nbgrader (`make assignments`,
`make gradebook SUBMISSIONS=DIR`).

    python scripts/gradebook.py release                 # release/students/ to hand out, release/autograder/ to keep
    python scripts/gradebook.py grade DIR [--timeout S] [--cell-timeout S] [--jobs N]

One source: the student notebooks are exercises/ as scripts/make_exercises.py writes them from
solutions/, and each checked exercise's autograder test is its solution's `assert check.exN_M(...)`
cell, inserted after the exercise as an nbgrader test cell: locked, worth one point, its body
between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` (nbgrader removes it from the students'
copy and puts it back when it grades). A written exercise is graded by hand (the guide's rubric);
the gradebook shows its self-check's verdict beside it.

Grading reads DIR/<student>/<notebook>.ipynb and writes DIR/gradebook.csv: one row per student, one
points column and one message column per exercise (the check's own message). Each student is graded
by its own `nbgrader autograde` process, in a scratch copy of the autograder under DIR/.grading/,
within a time limit for the whole submission and one per cell; the kernel that runs the student's
code starts with scripts/sandbox.py, which lets it write only inside its own folder.

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
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import make_exercises  # noqa: E402
from fwdlib.utils import atomic_write  # noqa: E402

ASSIGNMENT = "fwdlib"
RELEASE = ROOT / "release"
SANDBOX = ROOT / "scripts" / "sandbox.py"
CHECKED = re.compile(r"^assert check\.ex(\d+)_(\d+)\(", re.MULTILINE)
QUIZ = re.compile(r"check\.quiz\(\"(\d+\.\d+)\"")
STUDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
POINTS = 1
TIMEOUT_S, CELL_TIMEOUT_S = 900, 120
CONFIG = """c = get_config()
c.CourseDirectory.course_id = "fwdlib"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {cell_timeout}
# the student's code runs in this kernel, never in ours; scripts/sandbox.py runs before its first cell
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.exec_files=[{sandbox!r}]"]
"""


@dataclass(frozen=True)
class Exercise:
    name: str            # "2.1"
    notebook: str        # its notebook's file name
    checked: bool        # has a check: the autograder's points
    written: bool        # has a written answer: graded by hand, its self-check's verdict shown


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
    """The autograder's test of one exercise: hidden from students, locked, worth POINTS."""
    cell = nbformat.v4.new_code_cell(
        f"# Exercise {exercise}: graded by the autograder (its test is hidden)\n### BEGIN HIDDEN TESTS\n"
        f"from fwdlib.course.checks import check   # the kit's checks, whatever the notebook named `check`\n"
        f"{assertion}\n### END HIDDEN TESTS")
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


def write_config(course: Path, cell_timeout: int) -> None:
    (course / "nbgrader_config.py").write_text(
        CONFIG.format(root=str(course), cell_timeout=int(cell_timeout), sandbox=str(SANDBOX)))


def nbgrader(course: Path, args: list[str], *, timeout: float, env: dict | None = None,
             log: Path | None = None) -> subprocess.CompletedProcess | None:
    """Run one nbgrader command in its own process group; None when it ran past `timeout` (then killed)."""
    env = {**(env or os.environ), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        process = None
    if log is not None:
        log.write_text(output)
    if process is not None and process.returncode and log is None:
        raise SystemExit(f"gradebook: nbgrader {args[0]} failed:\n{output[-3000:]}")
    return process


def cell_message(cell: nbformat.NotebookNode, cell_timeout: int) -> str:
    """What a graded cell said: the check's message, or the error that stopped it."""
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    if any(e.ename in ("CellTimeoutError", "KeyboardInterrupt") for e in errors):
        lines.append(f"stopped: ran past the {cell_timeout} s a cell may take")
    elif errors and not (errors[0].ename == "AssertionError" and lines):
        lines.append(f"{errors[0].ename}: {errors[0].evalue}".strip())
    return " / ".join(lines) or "no message"


def student_env(home: Path) -> dict:
    """The grading kernel's environment: the student's lab (quick mode, CPU) in a scratch home."""
    import store_outputs
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return {**store_outputs.student_env(), "HOME": str(home), "TMPDIR": str(home / "tmp"),
            "MPLCONFIGDIR": str(home / "matplotlib"), "XDG_CACHE_HOME": str(home / "cache")}


def grade_student(student_dir: Path, work: Path, exercises: list[Exercise], timeout: float,
                  cell_timeout: int, released: Path) -> dict[str, tuple[str, str]]:
    """{exercise: (points, message)} of one student's submission."""
    from nbgrader.api import Gradebook

    student = student_dir.name
    notebooks = {e.notebook for e in exercises}
    results = {e.name: ("0" if e.checked else "", "not submitted") for e in exercises}
    if work.exists():
        shutil.rmtree(work)
    course = work / "course"
    shutil.copytree(released / "autograder", course, ignore=shutil.ignore_patterns("release", "submitted", "autograded"))
    write_config(course, cell_timeout)
    submitted = course / "submitted" / student / ASSIGNMENT
    submitted.mkdir(parents=True)
    for path in sorted(student_dir.glob("*.ipynb")):
        if path.name not in notebooks:
            continue
        try:
            nbformat.validate(nbformat.read(path, as_version=4))
        except Exception as error:          # anything a broken upload raises: the student sees why
            for e in exercises:
                if e.notebook == path.name:
                    results[e.name] = ("0" if e.checked else "", f"{path.name} is not a readable notebook ({type(error).__name__})")
            continue
        shutil.copy(path, submitted / path.name)
    if not any(submitted.iterdir()):
        return results
    done = nbgrader(course, ["autograde", ASSIGNMENT, "--student", student, "--force", "--create"],
                    timeout=timeout, env=student_env(work / "home"), log=work / "autograde.log")
    if done is None:
        for e in exercises:
            if (submitted / e.notebook).exists():
                results[e.name] = ("0" if e.checked else "", f"grading stopped: the submission ran past its {timeout:g} s limit")
        return results
    graded = course / "autograded" / student / ASSIGNMENT
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as book:
        for name in sorted(p.name for p in submitted.iterdir()):
            if not (graded / name).exists():
                why = (f"grading stopped: a cell ran past its {cell_timeout} s and the kernel did not answer the interrupt"
                       if "CellTimeoutError" in (work / "autograde.log").read_text() else
                       f"nbgrader could not grade it (see {work / 'autograde.log'})")
                for e in (e for e in exercises if e.notebook == name):
                    results[e.name] = ("0" if e.checked else "", why)
                continue
            cells = nbformat.read(graded / name, as_version=4).cells
            for e in (e for e in exercises if e.notebook == name):
                points, said = "", []
                if e.checked:
                    grade_id = "ex" + e.name.replace(".", "_")
                    cell = next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
                    points = f"{book.find_grade(grade_id, Path(name).stem, ASSIGNMENT, student).score:g}"
                    said.append(cell_message(cell, cell_timeout))
                if e.written:
                    quiz = next((c for c in cells if c.cell_type == "code" and f'check.quiz("{e.name}"' in c.source), None)
                    verdict = cell_message(quiz, cell_timeout).split(" / ")[-1] if quiz is not None else "its cell is missing"
                    said.append(f"written answer: grade it by hand; self-check: {verdict}")
                results[e.name] = (points, " | ".join(said))
    return results


def grade(submissions: Path, timeout: float = TIMEOUT_S, cell_timeout: int = CELL_TIMEOUT_S,
          released: Path = RELEASE, jobs: int = os.cpu_count() or 1) -> Path:
    if not (released / "autograder" / "gradebook.db").exists():
        raise SystemExit(f"gradebook: no autograder in {released}; run `make assignments` first")
    if not submissions.is_dir():
        raise SystemExit(f"gradebook: {submissions} is not a folder; give SUBMISSIONS=DIR with DIR/<student>/<notebook>.ipynb")
    exercises = all_exercises()
    students = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if STUDENT.fullmatch(student_dir.name):
            students.append(student_dir)
        else:
            print(f"gradebook: skipped {student_dir.name!r}: a student folder's name is letters, digits and _.@-")
    # students in parallel, each in its own processes: a lab's forty submissions in minutes, not an hour
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        graded = pool.map(lambda d: grade_student(d, submissions / ".grading" / d.name, exercises, timeout,
                                                  cell_timeout, released), students)
        rows = []
        for student_dir, results in zip(students, graded):
            earned = sum(float(p) for p, _ in results.values() if p)
            rows.append({"student": student_dir.name, "points": f"{earned:g}",
                         "of": str(POINTS * sum(e.checked for e in exercises)),
                         **{k: v for e in exercises for k, v in ((f"{e.name} points", results[e.name][0]),
                                                                  (f"{e.name} message", results[e.name][1]))}})
            print(f"gradebook: {student_dir.name}: {earned:g} of {rows[-1]['of']} points")
    if not rows:
        raise SystemExit(f"gradebook: no student folders in {submissions} (expected DIR/<student>/<notebook>.ipynb)")
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(submissions / "gradebook.csv", table.getvalue())
    print(f"gradebook: {len(rows)} students in {submissions / 'gradebook.csv'}")
    return submissions / "gradebook.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    releasing = commands.add_parser("release", help="write release/students/ and release/autograder/")
    releasing.add_argument("--out", type=Path, default=RELEASE, help="where the release goes (default: release/)")
    grading = commands.add_parser("grade", help="grade DIR/<student>/<notebook>.ipynb into DIR/gradebook.csv")
    grading.add_argument("submissions", type=Path)
    grading.add_argument("--release", type=Path, default=RELEASE, help="what `release` wrote (default: release/)")
    grading.add_argument("--timeout", type=float, default=TIMEOUT_S, help=f"seconds per student (default {TIMEOUT_S})")
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
        grade(args.submissions, args.timeout, args.cell_timeout, args.release, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
