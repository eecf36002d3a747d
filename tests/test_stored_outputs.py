"""Lessons and solutions are stored executed (a reader of the repository sees every output and
figure), their outputs are current, and nbval compares them for real.

`make outputs` (scripts/store_outputs.py) executes each notebook in quick mode on the CPU and
records the hash of what it ran: its own code cells and every file of the fwdlib package. A
notebook whose code, or whose library, changed since fails here until its outputs are stored
again. `make notebooks` executes every notebook again and lets nbval compare every output, numbers
included, after tests/nbval_sanitize.cfg replaced what truly varies; the test marked `course`
proves that an edited stored number makes nbval fail.
"""
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import store_outputs  # noqa: E402
from nbval.plugin import get_sanitize_patterns  # noqa: E402

STORED = store_outputs.LESSONS + store_outputs.SOLUTIONS
SANITIZERS = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text())


def sanitized(text: str) -> str:
    for regex, replace in SANITIZERS:
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_outputs_are_from_the_current_code_and_library(path):
    nb = nbformat.read(path, as_version=4)
    recorded = nb.metadata.get("fwdlib", {}).get("outputs_of")
    assert recorded == store_outputs.code_hash(nb), (
        f"{path.name}: its stored outputs are stale (its code or fwdlib/ changed since they were made): "
        "run `make outputs`")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{path.name}: not every cell was executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


def test_the_hash_covers_the_library_not_only_the_notebook(tmp_path, monkeypatch):
    (tmp_path / "fwdlib").mkdir()
    module = tmp_path / "fwdlib" / "goodness.py"
    module.write_text("THETA = 2.0\n")
    monkeypatch.setattr(store_outputs, "ROOT", tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    before = store_outputs.code_hash(nb)
    module.write_text("THETA = 1.0\n")
    assert store_outputs.code_hash(nb) != before
    module.write_text("THETA = 2.0\n")
    nb.cells[0].source += "\n# edited"
    assert store_outputs.code_hash(nb) != before


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nbval_ignores_only_the_cells_that_say_why_they_vary(path):
    nb = nbformat.read(path, as_version=4)
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        ignored = store_outputs.IGNORED in cell.metadata.get("tags", [])
        why = cell.metadata.get("fwdlib", {}).get("varies", "")
        assert ignored == bool(why), cell.source[:120]
        assert not why or re.search(r"\b(times?|timing|concurren\w*|foreign load|widget)\b", why), why
    ignored = sum(store_outputs.IGNORED in c.metadata.get("tags", []) for c in nb.cells)
    assert ignored <= 2, f"{path.name}: {ignored} cells uncompared; sanitize what varies instead"


def test_the_exercise_notebooks_are_stored_without_outputs():
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.parametrize("varies", [
    "[00:01<00:00,  5.39it/s, val_acc=0.7433", "train 0.5 s (preparation 0.0 s)", "22.91 ms", "97.44 µs per sample",
    "156.2 GFLOP/s = 70% of the peak", "took 2.2x its time", "(greedy took 1.13x the per-batch training time)",
    "<td>0.4 J</td>", "818 MiB peak RSS", "with estimates: 1.4 J", "CO2: 2.65e-07 kg", "ratio 1.9x (best of 5 each)",
    "median 0.96 cores, at most 1.05", "per-batch was faster (greedy took 1.30x the per-batch training time)",
    "sqlite:////tmp/tmpk0/class-study/study.db", "worker vm:885 for 0 s",
    "cafo-dfa   time ratio                     1.39 [1.15, 1.67]       margin 5%     n=3: exploratory",
    "time ratio: at 3 seeds [0.602, 1.62], at 8 seeds [0.894, 1.07] (18% of the width: narrower)",
    "| ff vs bp-mlp@ff | training time (twin better) | 'q' (Section 4.1) | +1233.26% (x13.3) | x7.41 (n=7) | "
    "x2.42 [2.27, 2.58] | exploratory (3 of 5 seeds; the interval says supported) |",
    "FF 2x1000's step against BP's on this device: x1.96 (FLOP floor x1.94, +1%: at its FLOP floor)"])
def test_the_sanitizers_replace_what_varies(varies):
    kept = sanitized(varies)
    assert kept != varies
    for measured in ("5.39", "0.5", "22.91", "97.44", "156.2", "2.2x", "1.13x", "0.4", "818", "1.4", "2.65e-07",
                     "1.9x", "0.96", "1.30x", "tmpk0", "885", "1.39", "1.15", "0.602", "0.894", "2.42", "2.27",
                     "supported", "1.96", "at its FLOP floor"):
        if measured in varies:
            assert measured not in kept, (measured, kept)


@pytest.mark.parametrize("fixed", [
    "test accuracy 0.8233", "val_acc=0.8300, val_loss=0.5137", "3 of 5 seeds", "1,796,010 parameters",
    "✓ Exercise 1.2: right on 8 inputs", "459264000 FLOPs", "2599.9 J", "+206.51% (x3.07)",
    "Accuracy -1.29 pp [-2.88, +0.30]: inconclusive", "| ds | mf vs bp-mlp@mf | accuracy (rival better) | +0.51 pp |",
    "8 units done, 16 runs, from 1 machine(s)", "block 1: 89.4° -> 89.3° (fell); cos = +0.012",
    "t(n-1) of a 95% interval: 2 seeds 12.71, 3 seeds 4.30", "every 0.1 s: 2599.9 J", "sampled every 1 s: error",
    "(`--grace`, 120 s by default)", "MF takes 1002 s against 253 s", "the NVML counter steps every ~100 ms",
    "| 1 | | 2 |", "-1.29 [-2.88, 0.305], n=8: inconclusive"])
def test_the_sanitizers_leave_accuracies_counts_verdicts_and_constants_alone(fixed):
    kept = sanitized(fixed)
    assert re.findall(r"\d+(?:\.\d+)?", kept) == re.findall(r"\d+(?:\.\d+)?", fixed), kept


def test_the_sanitizers_keep_the_fixed_figures_of_a_row_that_also_holds_measured_ones():
    row = ("| ff vs bp-mlp@ff | training time (twin better) | 'q' (Section 4.1) | +1233.26% (x13.3) | x7.41 (n=7) | "
           "x2.42 [2.27, 2.58] | exploratory |")
    kept = sanitized(row)
    assert all(figure in kept for figure in ("+1233.26%", "x13.3", "x7.41", "n=7", "Section 4.1"))
    step = "FF 2x1000's step against BP's on this device: x1.96 (FLOP floor x1.94, +1%: at its FLOP floor)"
    assert "FLOP floor x1.94" in sanitized(step) and "x1.96" not in sanitized(step)


@pytest.mark.course
def test_nbval_fails_on_an_edited_stored_number(tmp_path):
    """Two copies of a stored lesson, one with a test accuracy its training printed changed by one
    digit: nbval passes the first and fails the second, on that cell."""
    source = ROOT / "notebooks" / "04_mf_projection_matrices.ipynb"
    nb = nbformat.read(source, as_version=4)
    edited = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.metadata.get("fwdlib", {}).get("varies"):
            continue
        for output in cell.outputs:
            found = re.search(r"accuracy (0\.\d{3})(\d)", output.get("text", ""))
            if found:
                digit = str((int(found[2]) + 1) % 10)
                output["text"] = output["text"].replace(found[0], f"accuracy {found[1]}{digit}", 1)
                edited = index
                break
        if edited is not None:
            break
    assert edited is not None, "no stored test accuracy to edit"
    nbformat.write(nbformat.read(source, as_version=4), tmp_path / "original.ipynb")
    nbformat.write(nb, tmp_path / "edited.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "--nbval",
         "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
         "original.ipynb", "edited.ipynb"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=store_outputs.student_env())
    failed = re.findall(r"^FAILED (\S+::Cell \d+)", result.stdout, re.MULTILINE)
    code_index = sum(c.cell_type == "code" for c in nb.cells[:edited])     # nbval numbers the code cells
    assert failed == [f"edited.ipynb::Cell {code_index}"], result.stdout[-3000:]


def test_nbval_runs_the_notebooks_in_the_environment_they_were_stored_in():
    """CI=true silences the progress bars a student sees: nbval's kernel must not inherit it."""
    recipe = re.search(r"^notebooks:.*?\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)[1]
    command = next(line for line in recipe.splitlines() if "pytest" in line)
    assert sorted(re.findall(r"-u (\w+)", command)) == sorted(store_outputs.STUDENT_UNSET), command
    assert dict(re.findall(r"\b([A-Z_]+)=(\S*)", command)) == store_outputs.STUDENT_SET, command
    env = store_outputs.student_env({"CI": "true", "MPLBACKEND": "Agg", "FWDLIB_QUICK": "0", "HOME": "/h"})
    assert env == {"HOME": "/h", **store_outputs.STUDENT_SET}


@pytest.mark.course
def test_make_outputs_refuses_a_run_that_other_work_disturbed(tmp_path, monkeypatch):
    """Stored times and the verdicts drawn from them must describe a quiet machine."""
    from fwdlib.meters import process

    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), path)
    readings = iter([1000.0, 1000.0 + 10_000.0])          # the CPUs were busy far beyond the kernel's own use
    monkeypatch.setattr(process, "busy_cpu_seconds", lambda: next(readings))
    with pytest.raises(store_outputs.Disturbed, match="other work used .* CPU cores while it ran"):
        store_outputs.execute(path)
    assert "outputs_of" not in nbformat.read(path, as_version=4).metadata.get("fwdlib", {})


def test_every_notebook_opens_with_the_same_setup_cell_and_its_quick_mode_switch():
    openings = set()
    for path in STORED + sorted((ROOT / "exercises").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        openings.add(next(c for c in nb.cells if c.cell_type == "code").source)
    assert len(openings) == 1
    cell = openings.pop()
    assert 'QUICK_MODE = True  #@param {type:"boolean"}' in cell           # a checkbox on Colab
    assert "fwdlib.use_quick_mode(QUICK_MODE)" in cell
    assert "fwdlib.use_training_threads()" in cell                          # the same threads, busy or quiet
