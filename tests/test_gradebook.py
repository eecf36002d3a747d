"""The lab's gradebook (scripts/gradebook.py, nbgrader): released from the one source, graded end to
end offline, student code kept in its own process, time and folder.

Four submissions are graded for real: one right everywhere (every notebook), one with wrong,
unsolved and mistaken answers, one whose function never returns, one that tries to delete and
overwrite files outside its folder and to run commands. Then a kernel deaf to the interrupt meets
the cell's time limit, and a slow submission the whole submission's.
"""
import csv
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow     # nbgrader executes notebooks

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import gradebook  # noqa: E402
from conftest import require  # noqa: E402
import grading  # noqa: E402
from fwdlib.course import timetable  # noqa: E402

NOTEBOOK = "02_ff_training_exercises.ipynb"
MARKER = re.compile(r"^[ \t]*# (BEGIN|END) SOLUTION.*\n?", re.MULTILINE)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "release"
    gradebook.release(out)
    return out


def answered(released: Path, name: str, edits: dict[str, str] | None = None, extra: str | None = None) -> nbformat.NotebookNode:
    """The released notebook `name` as a student hands it in: every exercise answered as the solution
    does, except `edits` (a function or answer name: the cell's new source); `extra`: a cell the
    student added after the first exercise."""
    nb = nbformat.read(released / "students" / name, as_version=4)
    solution = {c.id: c for c in nbformat.read(ROOT / "solutions" / name, as_version=4).cells}
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.id in solution and "BEGIN SOLUTION" in solution[cell.id].source:
            cell.source = MARKER.sub("", solution[cell.id].source)
            for key, source in (edits or {}).items():
                if re.search(rf"^(def {key}\(|{key} = )", cell.source, re.MULTILINE):
                    cell.source = source
    if extra is not None:
        at = next(i for i, c in enumerate(nb.cells) if "def rms_normalise" in c.source)
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(extra))
    return nb


def tree_digest(folder: Path, leave_out: set[str]) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not leave_out & set(p.relative_to(folder).parts)}


def test_the_release_is_the_exercises_with_hidden_tests(released):
    exercises = gradebook.all_exercises()
    assert sorted(e.name for e in exercises) == sorted(timetable.EXERCISE_MINUTES)    # every exercise has a column
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        ours = nbformat.read(path, as_version=4)
        student = nbformat.read(released / "students" / path.name, as_version=4)
        tests = [c for c in student.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert [c.source for c in student.cells if c not in tests] == [c.source for c in ours.cells], path.name
        checked = [e for e in exercises if e.notebook == path.name and e.checked]
        assert len(tests) == len(checked) and all("check." not in c.source for c in tests)     # hidden
        assert all(c.metadata["nbgrader"]["locked"] for c in tests)
        source = (released / "autograder" / "source" / "fwdlib" / path.name).read_text()
        assert all(f"check.ex{e.name.replace('.', '_')}(" in source for e in checked)


def test_four_submissions_graded_end_to_end(released, tmp_path):
    subs = tmp_path / "submissions"
    outside = tmp_path / "instructor-notes.txt"
    outside.write_text("do not touch")
    for student in ("ada", "Ben Núñez/submission", "cy", "dee"):
        (subs / student).mkdir(parents=True)
    for path in sorted((released / "students").glob("*.ipynb")):
        nbformat.write(answered(released, path.name), subs / "ada" / path.name)
    from_exercises = answered(released, NOTEBOOK, {
        "rms_normalise": "def rms_normalise(x):\n    return x / x.norm(dim=1, keepdim=True)\n\ncheck.ex2_1(rms_normalise)",
        "embed_label": "def embed_label(x, labels, num_classes):\n"
                       "    raise NotImplementedError(\"Exercise 2.3: replace this line with your code\")\n\n"
                       "check.ex2_3(embed_label)",
        "answer_2_4": 'answer_2_4 = "a"\ncheck.quiz("2.4", answer_2_4)'})
    # opened from exercises/ (a Colab badge's copy: no test cells), downloaded twice, one folder down
    from_exercises.cells = [c for c in from_exercises.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    nbformat.write(from_exercises, subs / "Ben Núñez" / "submission" / NOTEBOOK.replace(".ipynb", " (1).ipynb"))
    nbformat.write(from_exercises, subs / "Ben Núñez" / "notes.ipynb")
    nbformat.write(answered(released, NOTEBOOK, {
        "ff_layer_loss": "def ff_layer_loss(g_pos, g_neg, theta):\n    while True:\n        pass\n\n"
                         "check.ex2_2(ff_layer_loss)"}), subs / "cy" / NOTEBOOK)
    victim = subs / "ada" / NOTEBOOK
    attack = f"""import os, shutil, subprocess
for attempt in (lambda: shutil.rmtree({str(subs / 'ada')!r}),
                lambda: os.remove({str(victim)!r}),
                lambda: open({str(outside)!r}, "w").write("overwritten"),
                lambda: os.rename({str(outside)!r}, {str(outside) + '.moved'!r}),
                lambda: os.system("rm -rf {subs / 'ada'}"),
                lambda: subprocess.run(["rm", "-f", {str(outside)!r}]),
                lambda: os.kill(os.getppid(), 9)):
    try:
        attempt()
        print("not refused")
    except PermissionError as refused:
        print(refused)
open("my-own-notes.txt", "w").write("a submission may write in its own folder")"""
    cheat = ("import fwdlib.course.checks as kit\nkit.check.ex2_2 = lambda *args, **kwargs: True\n"
             "check.ex2_2 = kit.check.ex2_2")
    nbformat.write(answered(released, NOTEBOOK, {"ff_layer_loss": "def ff_layer_loss(g_pos, g_neg, theta):\n"
                                                                   "    return g_pos.sum() * 0\n\n" + cheat},
                            extra=attack), subs / "dee" / NOTEBOOK)
    before = tree_digest(tmp_path, {".grading", "gradebook.csv"})

    done = subprocess.run([sys.executable, "scripts/gradebook.py", "grade", str(subs), "--cell-timeout", "20",
                           "--jobs", "2", "--release", str(released)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree_digest(tmp_path, {".grading", "gradebook.csv"}) == before       # nothing outside its folder touched
    rows = {row["student"]: row for row in csv.DictReader((subs / "gradebook.csv").open(encoding="utf-8-sig"))}
    assert list(rows) == ["Ben Núñez", "ada", "cy", "dee"]
    assert set(rows["ada"]) == {"student", "points", "of", "notes"} | {f"{e} {k}" for e in timetable.EXERCISE_MINUTES
                                                                       for k in ("points", "message")}
    every = len([e for e in gradebook.all_exercises() if e.checked])
    assert rows["ada"]["points"] == rows["ada"]["of"] == str(every)
    assert rows["ada"]["2.4 points"] == "" and "grade it by hand; self-check: ✓" in rows["ada"]["2.4 message"]

    ben = rows["Ben Núñez"]
    assert f"graded submission/{NOTEBOOK.replace('.ipynb', ' (1).ipynb')} as {NOTEBOOK}" in ben["notes"]
    assert "not graded: notes.ipynb" in ben["notes"]
    assert [ben[f"2.{i} points"] for i in (1, 2, 3, 5)] == ["0", "1", "0", "1"] and ben["points"] == "2"
    assert ben["2.1 message"].startswith("✗ Exercise 2.1") and "not attempted yet" in ben["2.3 message"]
    assert "self-check: ✗" in ben["2.4 message"]
    assert ben["1.1 points"] == "0" and ben["1.1 message"] == "not submitted"

    cy = rows["cy"]
    assert cy["2.2 points"] == "0" and "ran past the 20 s a cell may take (its check was not run again)" \
        in cy["2.2 message"]
    assert [cy[f"2.{i} points"] for i in (1, 3, 5)] == ["1", "1", "1"]               # the rest still graded

    assert rows["dee"]["points"] == "3" and rows["dee"]["2.2 points"] == "0"      # the replaced check fooled nobody
    graded = nbformat.read(subs / ".grading/dee/course/autograded/dee/fwdlib" / NOTEBOOK, as_version=4)
    said = next(c for c in graded.cells if "for attempt in" in c.source).outputs[0]["text"].splitlines()
    assert len(said) == 7 and all(line.startswith("grading sandbox:") for line in said), said
    assert (subs / ".grading" / "dee" / "kernel" / "folder" / "my-own-notes.txt").exists() or \
        (grading.bubblewrap() is None and (subs / ".grading/dee/course/autograded/dee/fwdlib/my-own-notes.txt").exists())
    assert "reaches into the interpreter or the kit" in rows["dee"]["notes"]                # and the row says so
    assert rows["ada"]["notes"] == ""


def test_bubblewrap_contains_what_the_audit_hook_cannot_see(released, tmp_path):
    """C code raises no audit event (sqlite3 opens files in C) and `dir_fd` slips past the hook: the
    kernel's bubblewrap sandbox holds them, and hides the hidden tests, the solutions and the others."""
    require(grading.bubblewrap() is not None, "needs Debian's bubblewrap (apt-get install bubblewrap) and user namespaces")
    subs = tmp_path / "submissions"
    for student in ("ada", "mal"):
        (subs / student).mkdir(parents=True)
    nbformat.write(answered(released, NOTEBOOK), subs / "ada" / NOTEBOOK)
    outside = tmp_path / "instructor-notes.txt"
    outside.write_text("do not touch")
    reads = {"hidden tests": released / "autograder" / "source" / "fwdlib" / NOTEBOOK,
             "solutions": ROOT / "solutions" / NOTEBOOK, "another student": subs / "ada" / NOTEBOOK}
    attack = f"""import os, sqlite3
def attempt(name, act):
    try:
        act()
        print(name, "ran")
    except Exception as error:
        print(name, type(error).__name__)
attempt("plant a database", lambda: sqlite3.connect({str(tmp_path / 'planted.db')!r}).execute("create table t(x int)"))
attempt("write through dir_fd", lambda: os.write(os.open("instructor-notes.txt", os.O_WRONLY | os.O_TRUNC,
                                                         dir_fd=os.open({str(tmp_path)!r}, os.O_RDONLY)), b"x"))
""" + "".join(f"attempt({'read ' + what!r}, lambda: open({str(path)!r}).read())\n" for what, path in reads.items())
    nbformat.write(answered(released, NOTEBOOK, extra=attack), subs / "mal" / NOTEBOOK)
    before = tree_digest(tmp_path, {".grading", "gradebook.csv"})
    done = subprocess.run([sys.executable, "scripts/gradebook.py", "grade", str(subs), "--jobs", "2",
                           "--release", str(released)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree_digest(tmp_path, {".grading", "gradebook.csv"}) == before
    graded = nbformat.read(subs / ".grading/mal/course/autograded/mal/fwdlib" / NOTEBOOK, as_version=4)
    said = dict(line.rsplit(" ", 1) for line in next(c for c in graded.cells if "def attempt" in c.source)
                .outputs[0]["text"].splitlines())
    assert said.pop("plant a database") == "OperationalError" and said.pop("write through dir_fd") == "OSError"
    assert said == {f"read {what}": "FileNotFoundError" for what in reads}
    rows = {row["student"]: row for row in csv.DictReader((subs / "gradebook.csv").open(encoding="utf-8-sig"))}
    assert rows["ada"]["points"] == rows["mal"]["points"] == "4"


def test_a_deaf_kernel_meets_the_cell_limit_and_a_slow_submission_the_whole_limit(released, tmp_path):
    subs = tmp_path / "submissions"
    for student in ("eve", "fay"):
        (subs / student).mkdir(parents=True)
    deaf = ("import signal\n\ndef rms_normalise(x):\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "    while True:\n        pass\n\ncheck.ex2_1(rms_normalise)")
    nbformat.write(answered(released, NOTEBOOK, {"rms_normalise": deaf}), subs / "eve" / NOTEBOOK)
    slow = answered(released, NOTEBOOK)
    slow.cells[2:2] = [nbformat.v4.new_code_cell("import time\ntime.sleep(4)") for _ in range(8)]   # each under the cell limit
    nbformat.write(slow, subs / "fay" / NOTEBOOK)
    done = subprocess.run([sys.executable, "scripts/gradebook.py", "grade", str(subs), "--cell-timeout", "6",
                           "--timeout", "25", "--jobs", "2", "--notebooks", "2", "--release", str(released)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    left = subprocess.run(["pgrep", "-f", str(subs)], capture_output=True, text=True).stdout.split()
    assert not left, f"grading processes left running: {left}"
    rows = {row["student"]: row for row in csv.DictReader((subs / "gradebook.csv").open(encoding="utf-8-sig"))}
    assert rows["eve"]["points"] == "0" and "kernel did not answer the interrupt" in rows["eve"]["2.5 message"]
    assert rows["eve"]["of"] == "4" and "1.1 points" not in rows["eve"]            # only notebook 02 was assigned
    assert rows["fay"]["points"] == "0" and "the submission ran past its 25 s limit" in rows["fay"]["2.1 message"]


@pytest.mark.parametrize("argv, says", [
    (["grade", "/nonexistent-folder"], "is not a folder"),
    (["grade", "."], "no student folders"),
    (["grade", ".", "--release", "/nonexistent-release"], "run `make assignments` first"),
])
def test_gradebook_says_what_is_wrong(released, argv, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = argv if "--release" in argv else [*argv, "--release", str(released)]
    with pytest.raises(SystemExit, match=says):
        gradebook.main(argv)
