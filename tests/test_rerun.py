"""No hidden state: running a lesson's cells a second time, in order, in the same kernel, prints what
the first run printed (after the sanitizers nbval uses; cells whose metadata says why their output
varies are left out). A cell that reseeds the lesson's random stream, or that leaves an object
changed for the cells after it, fails here.

Lessons 00-04 run here (05 only measures, and CI's time is kept for it elsewhere); 06 and 07 write
to a fresh folder per run (tests/test_bench.py's run_folder test), so a second Run All starts a new
benchmark by design, and say so.
"""
import copy
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_stored_outputs import sanitized, store_outputs  # noqa: E402

LESSONS = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if p.name[:2] in {"00", "01", "02", "03", "04"}]

pytestmark = pytest.mark.slow


def shown(cell) -> str:
    from nbval.plugin import coalesce_streams

    parts = []
    for output in coalesce_streams(copy.deepcopy(cell.outputs)):
        if output.output_type == "stream":
            parts.append(output.text)
        else:
            parts += [v for k, v in output.get("data", {}).items() if k in ("text/plain", "text/html", "text/markdown")]
    return sanitized("\n".join(parts))


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_cell_reruns_with_the_same_result(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    for name in store_outputs.STUDENT_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in store_outputs.STUDENT_SET.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    with client.setup_kernel():
        for index, cell in code:
            client.execute_cell(cell, index)
        first = {index: shown(cell) for index, cell in code}
        changed = []
        for index, cell in code:
            client.execute_cell(cell, index)
            if not cell.metadata.get("fwdlib", {}).get("varies") and shown(cell) != first[index]:
                changed.append(f"cell {index}: {cell.source.splitlines()[0][:80]}\n  first: {first[index][-300:]!r}"
                               f"\n  again: {shown(cell)[-300:]!r}")
    assert not changed, f"{path.name}: cells that print something else when run again:\n" + "\n".join(changed)


@pytest.mark.parametrize("name", ["06_head_to_head.ipynb", "07_class_study.ipynb"])
def test_full_mode_without_a_gpu_says_what_it_runs(name, tmp_path, monkeypatch):
    """Unticking quick mode on a laptop must not fall back to the quick preset in silence."""
    from nbclient import NotebookClient

    monkeypatch.setenv("FWDLIB_QUICK", "0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    upto = next(i for i, c in enumerate(nb.cells) if "run_folder(" in c.source)   # setup, parameters, imports
    nb.cells = nb.cells[:upto + 1]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    said = "".join(o.get("text", "") for o in nb.cells[upto].outputs)
    assert "Full mode without a CUDA GPU: this lesson runs the 'quick' preset" in said, said
    assert "not the study's paper-fmnist pairs" in said
