"""What a student sees in every stored lesson and solution: `make outputs` executes each the way a
student runs it (a fresh kernel, the default inline backend, quick mode, widget state stored), so
its stored outputs are what the student would see (tests/test_stored_outputs.py keeps them current).

It fails on a figure shown as `<Figure size ...>` text, on a notebook that draws figures but stores
no image, on a widget shown as `interactive(children=...)` text, on an interactive widget whose
output area stays empty, and on anything printed to stderr. It also checks, without running them,
that every name a cell uses was defined by that cell or one before it (an import included): a cell
that leans on IPython's built-in `display`, or on a later cell, fails for a reader of the script.
"""
import ast
import builtins
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NOTEBOOKS = LESSONS + sorted((ROOT / "solutions").glob("*.ipynb"))
DRAWS = re.compile(r"\bplots\.\w+\(|\bFigure\(|display\(Image\(")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_stored_notebook_shows_what_it_draws(path):
    problems = shown_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def python_of(cell_source: str) -> ast.Module:
    """A cell's Python, its IPython lines (`!pip`, `%pip`) left out."""
    return ast.parse("\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("!", "%"))
                               else line for line in cell_source.splitlines()))


def bound_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


# read at collection, before any test starts an IPython shell (which adds display and get_ipython)
BUILTINS = frozenset(dir(builtins))


def undefined_names(cells: list[str]) -> list[str]:
    """Each name a cell loads that neither it nor a cell before it binds, nor Python's builtins."""
    known, found = set(BUILTINS), []
    for index, source in enumerate(cells):
        tree = python_of(source)
        known |= bound_names(tree)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        found += [f"cell {index}: {name}" for name in sorted(used - known)]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS + sorted((ROOT / "exercises").glob("*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_cell_defines_or_imports_what_it_uses(path):
    nb = nbformat.read(path, as_version=4)
    assert not undefined_names([c.source for c in nb.cells if c.cell_type == "code"]), path.name


def test_the_name_check_sees_display_without_its_import_and_a_name_defined_later():
    assert undefined_names(["display(1)"]) == ["cell 0: display"]
    assert undefined_names(["print(x)", "x = 1"]) == ["cell 0: x"]
    assert undefined_names(["from IPython.display import display\n!pip list", "display([i for i in range(2)])"]) == []


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
