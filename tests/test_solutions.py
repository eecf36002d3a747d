"""The solutions carry reference outputs that are current, and nbval compares the right cells.

`make outputs` (scripts/store_outputs.py) executes each solution in quick mode on the CPU and
records the hash of the code it ran; a solution whose code changed since fails here until its
outputs are stored again. Lessons and exercises stay without outputs.
"""
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import store_outputs  # noqa: E402

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_stored_outputs_are_from_the_current_code(path):
    nb = nbformat.read(path, as_version=4)
    recorded = nb.metadata.get("fwdlib", {}).get("outputs_of")
    assert recorded == store_outputs.code_hash(nb), (
        f"{path.name}: its stored outputs are stale (its code changed since they were made): run `make outputs`")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{path.name}: not every cell was executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_nbval_compares_every_checks_verdict_and_only_those(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        compared = store_outputs.COMPARED in cell.metadata.get("tags", [])
        assert compared == store_outputs.deterministic(cell), cell.source[:120]
        if compared and not cell.source.strip().startswith("assert"):
            shown = "".join(o.get("text", "") for o in cell.outputs)
            assert "✓" in shown, f"a compared cell stores no verdict: {cell.source[:120]}"


def test_a_changed_cell_makes_the_outputs_stale(tmp_path):
    nb = nbformat.read(SOLUTIONS[0], as_version=4)
    before = store_outputs.code_hash(nb)
    next(c for c in nb.cells if c.cell_type == "code").source += "\n# edited"
    assert store_outputs.code_hash(nb) != before


@pytest.mark.parametrize("folder", ["notebooks", "exercises"])
def test_lessons_and_exercises_are_stored_without_outputs(folder):
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


def test_every_notebook_opens_with_the_same_setup_cell_and_its_quick_mode_switch():
    openings = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        openings.add(next(c for c in nb.cells if c.cell_type == "code").source)
    assert len(openings) == 1
    cell = openings.pop()
    assert 'QUICK_MODE = True  #@param {type:"boolean"}' in cell           # a checkbox on Colab
    assert "fwdlib.use_quick_mode(QUICK_MODE)" in cell
