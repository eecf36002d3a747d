"""Every lesson, run the way a student runs it: a fresh kernel, the default (inline) backend and
quick mode. nbval only checks that cells run; this also checks what the student would see.

It fails on an error, on a figure shown as `<Figure size ...>` text, on a lesson that draws
figures but stores no image, on a widget shown as `interactive(children=...)` text, and on an
interactive widget whose output area stays empty. Each lesson's run time is printed (run with -s
to see them; the course map in README.md states them).
"""
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DRAWS = re.compile(r"\bplots\.\w+\(|\bFigure\(|display\(Image\(")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

pytestmark = pytest.mark.course


def run_as_student(path: Path, workdir: Path) -> tuple[nbformat.NotebookNode, float]:
    """Execute a notebook in a fresh kernel with the student's environment: quick mode on, and
    no MPLBACKEND, so matplotlib picks its default backend as it does in JupyterLab."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["FWDLIB_QUICK"] = "1"
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)          # the kernel inherits this process's environment
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True,
                       resources={"metadata": {"path": str(workdir)}}).execute()
        return nb, time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)


def shown_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What a student would see wrong in an executed notebook, one line each."""
    problems, images = [], 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = data.get("text/plain", "")
            images += "image/png" in data
            if output.output_type == "stream" and output.name == "stderr":
                problems.append(f"cell {index}: prints to stderr: {output.text.strip()[:120]}")
            if text.startswith("<Figure size") and "image/png" not in data:
                problems.append(f"cell {index}: a figure shown as text: {text}")
            if text.startswith("interactive(") and WIDGET_VIEW not in data:
                problems.append(f"cell {index}: a widget shown as text: {text[:60]}")
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for model_id, model in state.items():
        if model.get("model_name") == "OutputModel":
            outputs = model["state"].get("outputs", [])
            images += sum("image/png" in o.get("data", {}) for o in outputs)
            if not outputs:
                problems.append(f"an interactive widget's output is empty (model {model_id})")
    if images == 0 and any(DRAWS.search(c.source) for c in nb.cells if c.cell_type == "code"):
        problems.append("the lesson draws figures but no image/png output was stored")
    return problems


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_shows_what_it_draws(path, tmp_path):
    nb, seconds = run_as_student(path, tmp_path)     # a fresh folder: nothing to resume
    print(f"\n{path.name}: {seconds:.0f} s in quick mode")
    problems = shown_problems(nb)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_checker_sees_a_figure_printed_as_text():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plots.curves({})")
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "<Figure size 600x380 with 1 Axes>"})]
    nb.cells = [cell]
    problems = shown_problems(nb)
    assert any("figure shown as text" in p for p in problems)
    assert any("no image/png" in p for p in problems)


def test_the_checker_sees_an_empty_widget_output():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": {"abc": {"model_name": "OutputModel",
                                                               "state": {"outputs": []}}}}}
    assert shown_problems(nb) == ["an interactive widget's output is empty (model abc)"]
