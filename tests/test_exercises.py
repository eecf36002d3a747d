"""Exercises are generated from their solutions, carry no solution code, and run unsolved."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_exercises  # noqa: E402

pytestmark = pytest.mark.slow   # runs every exercise notebook in a kernel

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))


def exercise_numbers(nb) -> list[str]:
    return [n for cell in nb.cells if cell.cell_type == "markdown"
            for n in re.findall(r"### Exercise (\d+\.\d+)", cell.source)]


def test_generator_check_passes():
    done = subprocess.run([sys.executable, "scripts/make_exercises.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_one_exercise_notebook_per_lesson_with_enough_exercises():
    lessons = sorted(p.name[:2] for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert [p.name[:2] for p in SOLUTIONS] == lessons == ["00", "01", "02", "03", "04", "05", "06", "07", "08"]
    total = 0
    for path in SOLUTIONS:
        numbers = exercise_numbers(nbformat.read(path, as_version=4))
        # lesson 00 (setup and measuring) has two exercises, every other lesson at least three
        assert len(numbers) >= (2 if path.name.startswith("00") else 3)
        assert all(n.split(".")[0] == str(int(path.name[:2])) for n in numbers)
        assert len(set(numbers)) == len(numbers)
        total += len(numbers)
        assert (ROOT / "notebooks" / path.name.replace("_exercises", "")).exists()
    assert total >= 30


def test_written_answers_have_a_self_check_and_hints_come_in_two_levels():
    from fwdlib.course.checks import QUIZZES
    for path in SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        written = [n for c in nb.cells if c.cell_type == "markdown" and "BEGIN SOLUTION" in c.source
                   for n in re.findall(r"### Exercise (\d+\.\d+)", c.source)]
        for number in written:
            assert f'check.quiz("{number}"' in text and number in QUIZZES, f"{path.name}: {number} has no self-check"
        assert "<summary>Hint</summary>" not in text, f"{path.name}: a one-level hint is left"
        hinted = min(3, len(exercise_numbers(nb)))          # lesson 00 has two exercises
        assert text.count("Hint 1: a nudge") == text.count("Hint 2: the formula") >= hinted
    experiments = {n for path in SOLUTIONS for c in nbformat.read(path, as_version=4).cells
                   for n in re.findall(r"### Exercise (\d+\.\d+) · [^*\n]*vary it and explain", c.source)}
    assert len({n.split(".")[0] for n in experiments}) >= 3, experiments


def test_no_solution_code_survives_and_stubs_parse():
    transform = TransformerManager().transform_cell
    for sol_path in SOLUTIONS:
        solution = nbformat.read(sol_path, as_version=4)
        exercise = nbformat.read(ROOT / "exercises" / sol_path.name, as_version=4)
        assert "BEGIN SOLUTION" not in "\n".join(c.source for c in exercise.cells)
        text = "\n".join(c.source for c in exercise.cells if c.cell_type == "code")   # hints may quote code
        assert "BEGIN SOLUTION" not in text and "solution-only" not in str(exercise.metadata)
        hidden = [line.strip() for c in solution.cells
                  for block in re.findall(r"BEGIN SOLUTION[^\n]*\n(.*?)END SOLUTION", c.source, re.S)
                  for line in block.splitlines() if len(line.strip()) > 12 and "#" not in line.strip()[:1]]
        assert hidden, f"{sol_path.name} has no solution blocks"
        shown = "\n".join(re.sub(r"BEGIN SOLUTION.*?END SOLUTION", "", c.source, flags=re.S)
                           for c in solution.cells if c.cell_type == "code")   # e.g. the setup cell
        for line in hidden:
            assert line in shown or line not in text, f"solution code leaked into exercises/{sol_path.name}: {line}"
        for cell in exercise.cells:
            if cell.cell_type == "code":
                ast.parse(transform(cell.source))
            assert not cell.get("outputs")
        badge = exercise.cells[0].source
        assert f"exercises/{sol_path.name}" in badge and "solutions/" not in badge


def test_top_level_blocks_become_placeholders():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("### Exercise 6.9 · Verdict"),
                nbformat.v4.new_code_cell("# BEGIN SOLUTION\nanswer = 42\nother = answer + 1\n# END SOLUTION\nprint(answer)"),
                nbformat.v4.new_markdown_cell("Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->")]
    nb.cells[1].metadata["tags"] = ["needs-student"]
    out = make_exercises.exercise_notebook(nb, "x.ipynb")
    assert out.cells[1].source.startswith("answer = ...  # Exercise 6.9") and "42" not in out.cells[1].source
    assert out.cells[1].metadata["tags"] == ["raises-exception"]
    assert "Because" not in out.cells[2].source and "Write your answer here" in out.cells[2].source


def test_a_stub_is_named_after_its_heading_not_a_hint_that_mentions_another_exercise():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("### Exercise 4.3 · A step\n\n<details>Reuse Exercise 4.2.</details>"),
                nbformat.v4.new_code_cell("def step():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION")]
    out = make_exercises.exercise_notebook(nb, "x.ipynb")
    assert "Exercise 4.3: replace this line" in out.cells[1].source


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_unsolved_exercises_run_top_to_bottom(path, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_quick = os.environ.get("FWDLIB_QUICK")
    os.environ["FWDLIB_QUICK"] = "1"
    try:
        NotebookClient(nb, timeout=300, allow_errors=True, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_quick is None:
            os.environ.pop("FWDLIB_QUICK")
        else:
            os.environ["FWDLIB_QUICK"] = env_quick
    printed = ""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:       # Run All in JupyterLab must not stop: no cell may raise
            assert output.output_type != "error", f"{path.name}: {output.ename}: {output.evalue}"
            printed += output.get("text", "")
        if "check.solved(" in cell.source:
            assert "first (its check has not passed yet)" in "".join(o.get("text", "") for o in cell.outputs)
    checked = {f"{a}.{b}" for c in nb.cells if c.cell_type == "code"
               for a, b in re.findall(r"check\.ex(\d+)_(\d+)\(", c.source)}
    assert checked                                  # every notebook has a checked function
    checked |= {n for c in nb.cells if c.cell_type == "code" for n in re.findall(r'check\.quiz\("(\d+\.\d+)"', c.source)}
    assert len(checked) >= 2
    for number in checked:
        assert f"Exercise {number} not attempted yet" in printed, f"{path.name}: no feedback for {number}"


def test_exercise_notebooks_ask_colab_for_no_gpu():
    for path in (*SOLUTIONS, *EXERCISES):
        meta = nbformat.read(path, as_version=4).metadata
        assert "accelerator" not in meta and "gpuType" not in meta.get("colab", {}), path.name


def test_the_instructor_guide_is_linked_and_holds_every_model_answer():
    from fwdlib.course.checks import QUIZZES
    guide = (ROOT / "solutions" / "INSTRUCTOR_GUIDE.md").read_text()
    assert "(solutions/INSTRUCTOR_GUIDE.md)" in (ROOT / "README.md").read_text()
    for number, (_, _, right, _, _) in QUIZZES.items():
        assert re.search(rf"\*\*{re.escape(number)} [^*]+\*\* \[{right}\]", guide), f"no model answer for {number}"
    for heading in ("## A 90-minute lab", "## Two sessions", "## Common mistakes", "## Running the course",
                    "## Forking the course", "## Lessons: objectives"):
        assert heading in guide
