"""Execute every lesson and solution in quick mode on the CPU, store its outputs, and write every
minute and second the course states from one source (`make outputs`).

    python scripts/store_outputs.py [NOTEBOOK ...]    # default: notebooks/ and solutions/
    python scripts/store_outputs.py --text-only       # rewrite the stated times, execute nothing

The stored outputs are what a reader of the repository sees and what nbval compares (`make
notebooks`): every output, numbers included, except what tests/nbval_sanitize.cfg replaces (times,
paths, process ids) and the few cells whose metadata `fwdlib.varies` says why their whole output
varies (they get nbval's `nbval-ignore-output`). Each notebook records the hash of the code it
was executed with, its own cells and the fwdlib package, so tests/test_stored_outputs.py fails
when either changed and the outputs were not stored again; a lesson also records its compute
time, from which the lesson headers, the README's course map and the instructor guide's totals
are written (fwdlib/course/timetable.py holds every other minute). exercises/ stay without
outputs (scripts/make_exercises.py strips them).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fwdlib.course import timetable  # noqa: E402
from fwdlib.meters.process import FOREIGN_LOAD_LIMIT, CpuWindow  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import links  # noqa: E402

IGNORED = "nbval-ignore-output"
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
HEADER = re.compile(r"^\*\*Time:\*\* .*$", re.MULTILINE)
# A student's kernel: quick mode, the CPU, matplotlib's default backend, and no CI flag (CI
# silences the progress bars a student sees). The Makefile's `notebooks` recipe says the same.
STUDENT_SET = {"FWDLIB_QUICK": "1", "CUDA_VISIBLE_DEVICES": ""}
STUDENT_UNSET = ("MPLBACKEND", "CI")


def student_env(env=None) -> dict:
    """`env` (default: this process's) as a student's kernel has it."""
    env = dict(os.environ if env is None else env)
    for name in STUDENT_UNSET:
        env.pop(name, None)
    return {**env, **STUDENT_SET}
EXERCISE_HEADING = re.compile(r"^(### Exercise (\d+\.\d+) · .*?) \*\(about \d+ minutes\)\*", re.MULTILINE)
GENERATED = re.compile(r"(<!-- timetable: ([\w-]+) -->\n)(?:.*?\n)??(<!-- /timetable -->)", re.S)
MAP_ROW = re.compile(r"^(\| (\d\d) \| .*\| )(?:\d+ s|-)( \| [^|]*\|)$", re.MULTILINE)


def package_files() -> list[Path]:
    return sorted(p for p in (ROOT / "fwdlib").rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def code_hash(nb: nbformat.NotebookNode) -> str:
    """What the stored outputs were made from: every code cell, in order, and the fwdlib package.
    The course's address is left out: a fork's `make links` changes no output."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(links.neutral(cell.source).encode() + b"\0")
    for path in package_files():
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def tag(nb: nbformat.NotebookNode) -> None:
    """nbval compares every cell but those whose metadata says why their whole output varies."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = [t for t in cell.metadata.get("tags", []) if t != IGNORED]
        if cell.metadata.get("fwdlib", {}).get("varies"):
            tags.append(IGNORED)
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)


class Disturbed(RuntimeError):
    """Other work ran beside a notebook: its stored times and verdicts would describe a busy machine."""


def execute(path: Path, refuse_disturbed: bool = True) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook top to bottom as a student does (a fresh kernel, quick mode, the CPU, the
    default matplotlib backend) in a scratch folder; return it and its wall time. Refuse it when
    other work used the CPUs meanwhile (more than the benchmark's foreign-load limit): its stored
    times, and every sentence computed from them, would describe a busy machine."""
    from nbclient import NotebookClient
    from nbval.plugin import coalesce_streams

    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(student_env(saved))
    try:
        with tempfile.TemporaryDirectory() as scratch, CpuWindow() as window:   # its own CPU counts the kernels'
            start = time.perf_counter()
            NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False, store_widget_state=True,
                           resources={"metadata": {"path": scratch}}).execute()
            seconds = time.perf_counter() - start
        foreign = window.result["foreign_load"]
        if refuse_disturbed and foreign is not None and foreign > FOREIGN_LOAD_LIMIT:
            raise Disturbed(f"{path.name}: other work used {foreign:.2f} CPU cores while it ran (limit "
                            f"{FOREIGN_LOAD_LIMIT}); its outputs were not stored. Stop that work and run "
                            "`make outputs` again.")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for cell in nb.cells:
        if cell.cell_type == "code":       # a progress bar's redraws stored once, as the reader sees it
            cell.outputs = coalesce_streams(copy.deepcopy(cell.outputs))
    tag(nb)
    nb.metadata["language_info"] = {"name": "python"}      # not this machine's Python version
    nb.metadata.setdefault("fwdlib", {}).update(outputs_of=code_hash(nb), compute_s=round(seconds, 1),
                                                cpus=os.cpu_count())
    return nb, seconds


def write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)                      # an interrupted run leaves the old file
    os.replace(tmp.name, path)


def compute_seconds() -> dict[str, tuple[int, int]]:
    """Each lesson's stored compute time, to the nearest 5 s (at least 5), and the cores it was measured on."""
    found = {}
    for path in LESSONS:
        meta = nbformat.read(path, as_version=4).metadata.get("fwdlib", {})
        if "compute_s" in meta:
            found[path.name[:2]] = (max(5, 5 * round(meta["compute_s"] / 5)), meta["cpus"])
    return found


def lesson_header(number: str, seconds: int, cpus: int) -> str:
    return (f"**Time:** about {timetable.LESSON_MINUTES[number]} minutes to read and run. Compute: about "
            f"{seconds} s in quick mode on {cpus} CPU cores (measured when these outputs were stored by "
            f"`make outputs`, kernel start included); full mode uses the full datasets and is meant for a GPU "
            f"(Colab: *Runtime > Change runtime type*).")


def exercise_header(number: str) -> str:
    count = sum(n.startswith(f"{int(number)}.") for n in timetable.EXERCISE_MINUTES)
    return f"**Time:** about {timetable.exercise_minutes_of(number)} minutes ({count} exercises)."


def stamp_notebook(nb: nbformat.NotebookNode, name: str, computes: dict) -> None:
    """Write the notebook's header line and its exercises' minutes from the timetable."""
    number = name[:2]
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        if name.endswith("_exercises.ipynb"):
            cell.source = HEADER.sub(exercise_header(number), cell.source, count=1)
        elif number in computes:
            cell.source = HEADER.sub(lesson_header(number, *computes[number]), cell.source, count=1)
        cell.source = EXERCISE_HEADING.sub(
            lambda m: f"{m[1]} *(about {timetable.EXERCISE_MINUTES[m[2]]} minutes)*", cell.source)


def generated(name: str, computes: dict) -> str:
    """The text between `<!-- timetable: name -->` and `<!-- /timetable -->` in README or guide."""
    lesson_total = sum(timetable.LESSON_MINUTES.values())
    exercise_total = sum(timetable.EXERCISE_MINUTES.values())
    compute_total = sum(seconds for seconds, _ in computes.values())
    cpus = max((c for _, c in computes.values()), default=os.cpu_count())
    if name == "totals":
        return (f"The whole course is about {lesson_total} minutes of lessons and {exercise_total} of "
                f"exercises ({len(timetable.EXERCISE_MINUTES)} exercises), so no 90-minute session covers "
                f"it: choose.")
    if name == "compute":
        return (f"The lessons' compute adds up to about {math.ceil(compute_total / 60)} minutes in quick "
                f"mode on {cpus} CPU cores (each lesson's time is measured when `make outputs` stores its "
                f"outputs).")
    for index, session in enumerate(timetable.SESSIONS, 1):
        if name == f"session-{index}":
            return "\n".join([f"Before: {timetable.homework(session.before)}.", "",
                              timetable.session_table(session), "",
                              f"After: {timetable.homework(session.after)}."])
    raise ValueError(f"no generated text named {name!r}: use totals, compute or plan-N")


def stamp_text(text: str, computes: dict) -> str:
    text = GENERATED.sub(lambda m: m[1] + generated(m[2], computes) + "\n" + m[3], text)
    return MAP_ROW.sub(lambda m: m[1] + (f"{computes[m[2]][0]} s" if m[2] in computes else "-") + m[3], text)


def stamp_all(write: bool = True) -> list[Path]:
    """Rewrite every stated time from the timetable and the stored compute times; return the files
    that were (or, with write=False, would be) changed."""
    computes, changed = compute_seconds(), []
    for path in LESSONS + SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        stamp_notebook(nb, path.name, computes)
        if nbformat.writes(nb) != before:
            changed.append(path)
            if write:
                write_atomically(path, nbformat.writes(nb) + "\n")
    for path in (ROOT / "README.md", ROOT / "solutions" / "INSTRUCTOR_GUIDE.md"):
        text = path.read_text()
        if stamp_text(text, computes) != text:
            changed.append(path)
            if write:
                write_atomically(path, stamp_text(text, computes))
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every lesson and solution")
    parser.add_argument("--text-only", action="store_true", help="rewrite the stated times; execute nothing")
    args = parser.parse_args(argv)
    if problems := timetable.problems():
        print("the timetable's sessions do not work:\n  " + "\n  ".join(problems))
        return 1
    for path in [] if args.text_only else [p.resolve() for p in args.notebooks] or LESSONS + SOLUTIONS:
        try:
            nb, seconds = execute(path)
        except Disturbed as why:
            print(why)
            return 1
        write_atomically(path, nbformat.writes(nb) + "\n")
        ignored = sum(IGNORED in c.metadata.get("tags", []) for c in nb.cells)
        print(f"stored {path.relative_to(ROOT)} ({seconds:.0f} s): nbval compares every cell but {ignored}")
    for path in stamp_all():
        print(f"wrote the stated times in {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
