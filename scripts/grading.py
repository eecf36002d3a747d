"""Grading one student's submission with nbgrader (used by scripts/gradebook.py).

A submission is what a student hands in, as it comes: the notebooks of release/students/ or of
exercises/ (a Colab badge opens those), under a folder of any name, renamed by a download
("02_..._exercises (1).ipynb") or nested one folder down. Each is matched to its notebook in the
release, given back any autograder test cell it lacks, and graded by its own `nbgrader autograde`
process in a scratch copy of the autograder, whose kernel starts with scripts/sandbox.py.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "fwdlib"
POINTS = 1                   # a checked exercise's
SANDBOX = ROOT / "scripts" / "sandbox.py"
# what downloads and copies append to a notebook's name: "name (1).ipynb", "name-Copy1.ipynb", "name copy.ipynb"
COPY_SUFFIX = re.compile(r"(?: \(\d+\)|-Copy\d*| copy(?: \d+)?)+$", re.IGNORECASE)
CHECKSUM_NOISE = re.compile(r"^.*Attribute 'checksum' for cell ex\d+_\d+ has changed!.*\n", re.MULTILINE)
KERNEL = "fwdlib-grader"
CONFIG = """c = get_config()
c.CourseDirectory.course_id = "fwdlib"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {cell_timeout}
# the student's code runs in this kernel (grading.write_kernel), never in ours; scripts/sandbox.py runs
# before its first cell
c.Execute.kernel_name = "{kernel}"
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.exec_files=[{sandbox!r}]"]
"""


@dataclass(frozen=True)
class Exercise:
    name: str            # "2.1"
    notebook: str        # its notebook's file name
    checked: bool        # has a check: the autograder's points
    written: bool        # has a written answer: graded by hand, its self-check's verdict shown

    @property
    def grade_id(self) -> str:
        return "ex" + self.name.replace(".", "_")


def write_config(course: Path, cell_timeout: int) -> None:
    (course / "nbgrader_config.py").write_text(
        CONFIG.format(root=str(course), cell_timeout=int(cell_timeout), sandbox=str(SANDBOX), kernel=KERNEL))


@functools.cache
def bubblewrap() -> str | None:
    """Debian's bubblewrap, where it can make a sandbox on this machine (user namespaces allowed)."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    probe = subprocess.run([found, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "true"],
                           capture_output=True)
    return found if probe.returncode == 0 else None


def write_kernel(work: Path, folder: Path, hidden: list[Path]) -> Path:
    """The grading kernel's spec under `work`/jupyter (JUPYTER_PATH). With bubblewrap the kernel sees the
    machine read-only, without any capability (root included: no mount, no remount); it runs in
    `folder` (the graded notebook's, as the student's code expects), but what it writes there lands in
    a scratch folder of its own, like its home: nbgrader, which is not sandboxed, never touches a file
    or a link the student's code made. It sees neither `hidden` (the hidden tests, the gradebook, the
    other students, the solutions) nor any process outside, and dies with its parent; interrupts
    come as messages (a signal would stop at bubblewrap)."""
    python = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    wrap = bubblewrap()
    if wrap:
        runtime, scratch, home = work / "runtime", work / "kernel" / "folder", work / "kernel" / "home"
        argv = [wrap, "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/dev/shm", "--proc", "/proc",
                *[a for path in hidden for a in ("--tmpfs", str(path))],
                "--ro-bind", str(runtime), str(runtime),          # the connection file, nothing else of ours
                "--bind", str(scratch), str(folder), "--bind", str(home), str(home), "--chdir", str(folder),
                *[a for k, v in kernel_env(home).items() for a in ("--setenv", k, v)],
                "--cap-drop", "ALL", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session",
                # in its own process namespace the kernel's parent looks gone: bubblewrap watches it instead
                "--unsetenv", "JPY_PARENT_PID", "--", *python]
    else:
        argv = python
    spec = work / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "fwdlib grader", "language": "python",
                                                  "interrupt_mode": "message"}))
    return work / "jupyter"


def nbgrader(course: Path, args: list[str], *, timeout: float, env: dict | None = None,
             log: Path | None = None) -> subprocess.CompletedProcess | None:
    """Run one nbgrader command in its own process group, its output to `log` (a file: a kernel that
    kept a pipe open would hang us; without one, a failure stops us); None when it ran past `timeout`
    (then killed, group and all)."""
    env = {**(env or os.environ), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    must_succeed, log = log is None, log or course / "nbgrader.log"
    with log.open("w") as out:
        # -P: the course folder is not put first on nbgrader's module path (nothing planted there runs)
        process = subprocess.Popen([sys.executable, "-P", "-m", "nbgrader", *args], cwd=course, env=env, text=True,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            process = None
    # the students' copies lack the hidden tests: nbgrader warns of it for every test cell
    output = CHECKSUM_NOISE.sub("", log.read_text(errors="replace"))
    log.write_text(output)
    if process is not None and process.returncode and must_succeed:
        raise SystemExit(f"gradebook: nbgrader {args[0]} failed:\n{output[-3000:]}")
    return process


def nbgrader_id(folder: str, taken: set[str]) -> str:
    """A name nbgrader accepts for a student folder of any name ("José Núñez" -> "Jose_Nunez")."""
    plain = unicodedata.normalize("NFKD", folder).encode("ascii", "ignore").decode()
    base = re.sub(r"[^A-Za-z0-9_.@-]+", "_", plain).strip("._") or "student"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


def release_files_only(folder: str, names: list[str]) -> set[str]:
    """What copying the autograder leaves out: nbgrader's own output folders and anything not a plain file or folder."""
    return {n for n in names if n in ("release", "submitted", "autograded")
            or not stat.S_ISREG(mode := os.lstat(os.path.join(folder, n)).st_mode) and not stat.S_ISDIR(mode)}


def find_notebooks(student_dir: Path, notebooks: set[str]) -> tuple[dict[str, Path], list[str]]:
    """{release notebook: the student's file for it} and notes on what was not graded or was renamed."""
    candidates: dict[str, list[Path]] = {}
    notes = []
    for path in sorted(student_dir.rglob("*.ipynb")):
        if any(part.startswith(".") for part in path.relative_to(student_dir).parts):
            continue                                         # .ipynb_checkpoints and the like
        if path.is_symlink() or not stat.S_ISREG(path.lstat().st_mode):     # a link or a pipe is not a hand-in
            notes.append(f"not graded: {path.relative_to(student_dir)} (not a regular file)")
            continue
        name = COPY_SUFFIX.sub("", path.stem) + ".ipynb"
        if name in notebooks:
            candidates.setdefault(name, []).append(path)
        else:
            notes.append(f"not graded: {path.relative_to(student_dir)} (no notebook of that name in the release)")
    found = {}
    for name, paths in candidates.items():
        found[name] = max(paths, key=lambda p: p.stat().st_mtime)
        for path in paths:
            if path != found[name]:
                notes.append(f"not graded: {path.relative_to(student_dir)} (an older copy of {name})")
        if found[name].relative_to(student_dir).as_posix() != name:
            notes.append(f"graded {found[name].relative_to(student_dir)} as {name}")
    return found, notes


# Code a lab's answer never needs, with which a notebook can fool a test run in its own kernel:
# it does not change the points, it tells the instructor which notebook to read.
REACHING_IN = re.compile(r"input_transformers|ast_transformers|meta_path|path_hooks|_posixsubprocess|"
                         r"sys\.modules\s*\[[^\]]*\]\s*=(?!=)|del\s+sys\.modules|sys\.modules\.(?:pop|update|clear|setdefault)|"
                         r"__builtins__|import builtins|get_ipython\(\)\.(?:run_cell|events|register)|"
                         r"^\s*(?:fwdlib|_?ff|_?kit|check)\b[\w.]*\.\w+\s*=(?!=)", re.MULTILINE)


def reaching_in(notebook: nbformat.NotebookNode, released: nbformat.NotebookNode) -> list[str]:
    """What of REACHING_IN the student's code uses (cells the release does not hold as they are)."""
    given = {c.source for c in released.cells}
    return sorted({m[0].strip() for c in notebook.cells if c.cell_type == "code" and c.source not in given
                   for m in REACHING_IN.finditer(c.source)})


def with_tests(submission: nbformat.NotebookNode, released: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`submission` with every autograder test cell of `released` it lacks put back where it belongs
    (after the cell it follows in the release): a notebook from exercises/ has none, and a student
    may delete one. nbgrader then restores each test's hidden body."""
    for cell in submission.cells:           # nbgrader's metadata is the release's to give: a student's is dropped
        if not isinstance(cell.metadata.get("nbgrader"), dict) or not cell.metadata["nbgrader"].get("grade"):
            cell.metadata.pop("nbgrader", None)
    have = {c.metadata.get("nbgrader", {}).get("grade_id") for c in submission.cells}
    for index, cell in enumerate(released.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not cell.metadata.get("nbgrader", {}).get("grade") or grade_id in have:
            continue
        before = released.cells[index - 1].get("id") if index else None
        at = next((i + 1 for i, c in enumerate(submission.cells) if before and c.get("id") == before),
                  len(submission.cells))
        submission.cells.insert(at, nbformat.from_dict(cell))
    return submission


def kernel_env(home: Path) -> dict[str, str]:
    """Where the grading kernel keeps its files: a scratch home of its own."""
    for sub in ("tmp", "matplotlib", "cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "TMPDIR": str(home / "tmp"), "MPLCONFIGDIR": str(home / "matplotlib"),
            "XDG_CACHE_HOME": str(home / "cache")}


def grader_env(work: Path) -> dict:
    """nbgrader's environment: the student's lab (quick mode, CPU), the kernel's spec, and a home and
    runtime folder of nbgrader's own, apart from the kernel's."""
    import store_outputs
    (work / "runtime").mkdir(parents=True, exist_ok=True)
    (work / "kernel" / "folder").mkdir(parents=True, exist_ok=True)
    # the kernel's connection file goes to the runtime folder (also TMPDIR: jupyter_client may put it
    # there), the one folder of ours the kernel may read
    runtime = str(work / "runtime")
    return {**store_outputs.student_env(), **kernel_env(work / "home"), "JUPYTER_RUNTIME_DIR": runtime, "TMPDIR": runtime}


def cell_message(cell: nbformat.NotebookNode, cell_timeout: int) -> str:
    """What a graded cell said: the check's message, or the error that stopped it."""
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    if any(e.ename in ("CellTimeoutError", "KeyboardInterrupt") for e in errors):
        lines.append(f"stopped: ran past the {cell_timeout} s a cell may take")
    elif errors and errors[0].ename == "TimeoutError":           # the test cell saw its exercise's cell stopped
        lines.append(f"stopped: the exercise's cell ran past the {cell_timeout} s a cell may take (its check was "
                     "not run again)")
    elif errors and not (errors[0].ename == "AssertionError" and lines):
        lines.append(f"{errors[0].ename}: {errors[0].evalue}".strip())
    return " / ".join(lines) or "no message"


def checked(cell: nbformat.NotebookNode | None, exercise: str, score: float, cell_timeout: int) -> tuple[str, str]:
    """(points, message) of a checked exercise. A pass counts when the check said so: every check that
    passes prints its verdict, so a test cell that "passed" silently did not run as written."""
    if cell is None:
        return "0", "its test cell is missing from the graded notebook: read this notebook"
    said = cell_message(cell, cell_timeout)
    if score and not said.startswith(f"✓ Exercise {exercise}"):
        return "0", f"the test did not run as written (no check verdict): read this notebook ({said})"
    return f"{score:g}", said


def results_of(graded: Path, name: str, exercises: list[Exercise], book, student: str,
               cell_timeout: int) -> dict[str, tuple[str, str]]:
    cells = nbformat.read(graded / name, as_version=4).cells
    results = {}
    for e in exercises:
        points, said = "", []
        if e.checked:
            cell = next((c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == e.grade_id), None)
            score = book.find_grade(e.grade_id, Path(name).stem, ASSIGNMENT, student).score
            points, message = checked(cell, e.name, min(score, POINTS), cell_timeout)
            said.append(message)
        if e.written:
            quiz = next((c for c in cells if c.cell_type == "code" and f'check.quiz("{e.name}"' in c.source), None)
            verdict = cell_message(quiz, cell_timeout).split(" / ")[-1] if quiz is not None else "its cell is missing"
            said.append(f"written answer: grade it by hand; self-check: {verdict}")
        results[e.name] = (points, " | ".join(said))
    return results


def grade_student(student_dir: Path, student: str, work: Path, exercises: list[Exercise], timeout: float,
                  cell_timeout: int, released: Path, hidden: list[Path]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """({exercise: (points, message)}, notes) of one student's submission; `student`: its nbgrader id;
    `hidden`: what its kernel must not see."""
    from nbgrader.api import Gradebook

    def everywhere(notebook: str, message: str) -> None:
        for e in (e for e in exercises if e.notebook == notebook):
            results[e.name] = ("0" if e.checked else "", message)

    results = {e.name: ("0" if e.checked else "", "not submitted") for e in exercises}
    found, notes = find_notebooks(student_dir, {e.notebook for e in exercises})
    if work.exists():
        shutil.rmtree(work)
    course = work / "course"
    shutil.copytree(released / "autograder", course, ignore=release_files_only)
    write_config(course, cell_timeout)
    submitted = course / "submitted" / student / ASSIGNMENT
    submitted.mkdir(parents=True)
    for name, path in found.items():
        try:
            notebook = nbformat.read(path, as_version=4)
            nbformat.validate(notebook)
        except Exception as error:          # anything a broken upload raises: the student sees why
            everywhere(name, f"{path.relative_to(student_dir)} is not a readable notebook ({type(error).__name__})")
            continue
        release = nbformat.read(released / "students" / name, as_version=4)
        if suspicious := reaching_in(notebook, release):
            notes.append(f"{name} reaches into the interpreter or the kit ({', '.join(suspicious)}): read it before "
                         "trusting its points")
        nbformat.write(with_tests(notebook, release), submitted / name)
    graded_here = sorted(p.name for p in submitted.iterdir())
    if not graded_here:
        return results, notes
    limit = timeout * len(graded_here)
    graded = course / "autograded" / student / ASSIGNMENT
    env = grader_env(work)
    env["JUPYTER_PATH"] = str(write_kernel(work, graded, hidden))
    done = nbgrader(course, ["autograde", ASSIGNMENT, "--student", student, "--force", "--create"],
                    timeout=limit, env=env, log=work / "autograde.log")
    if done is None:
        for name in graded_here:
            everywhere(name, f"grading stopped: the submission ran past its {limit:g} s limit "
                             f"({timeout:g} s for each of its {len(graded_here)} notebooks)")
        return results, notes
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as book:
        for name in graded_here:
            if (graded / name).exists():
                results.update(results_of(graded, name, [e for e in exercises if e.notebook == name], book, student,
                                          cell_timeout))
            elif "CellTimeoutError" in (work / "autograde.log").read_text():
                everywhere(name, f"grading stopped: a cell ran past its {cell_timeout} s and the kernel did not "
                                 "answer the interrupt")
            else:
                everywhere(name, f"nbgrader could not grade it (see {work / 'autograde.log'})")
    return results, notes
