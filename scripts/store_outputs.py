"""Execute every solution notebook in quick mode on the CPU and store its outputs (`make outputs`).

    python scripts/store_outputs.py [NOTEBOOK ...]

The stored outputs are the reference a self-learner reads on GitHub and what nbval compares
(`make notebooks`): cells whose output is the same on any machine (a check's verdict, a quiz's
feedback) are tagged `nbval-check-output`; timings, energies and accuracies are left to the
notebooks' asserts. Each notebook records the hash of the code it was executed with, so a test
(tests/test_solutions.py) fails when the code changed and the outputs were not regenerated.
exercises/ stay without outputs (scripts/make_exercises.py strips them).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
COMPARED = "nbval-check-output"
# A cell whose only output is a check's verdict or a quiz's feedback: its last line calls the check.
CHECK_CALL = re.compile(r"^(assert )?check\.(ex\d+_\d+|quiz)\(.*\)\s*$")


def code_hash(nb: nbformat.NotebookNode) -> str:
    """The hash of every code cell's source, in order: what the stored outputs were made from."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    return digest.hexdigest()


def deterministic(cell: nbformat.NotebookNode) -> bool:
    lines = [line for line in cell.source.strip().splitlines() if line.strip()]
    return bool(lines) and CHECK_CALL.match(lines[-1]) is not None and "print(" not in cell.source


def tag(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = [t for t in cell.metadata.get("tags", []) if t != COMPARED]
        if deterministic(cell):
            tags.append(COMPARED)
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)


def execute(path: Path) -> nbformat.NotebookNode:
    """Run a notebook top to bottom as CI does: quick mode, the CPU, a scratch working folder."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.update(FWDLIB_QUICK="1", CUDA_VISIBLE_DEVICES="")
    os.environ.pop("MPLBACKEND", None)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                           resources={"metadata": {"path": scratch}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    tag(nb)
    nb.metadata["language_info"] = {"name": "python"}      # not this machine's Python version
    nb.metadata.setdefault("fwdlib", {})["outputs_of"] = code_hash(nb)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every solutions/*.ipynb")
    args = parser.parse_args(argv)
    for path in args.notebooks or sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = execute(path)
        text = nbformat.writes(nb) + "\n"
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(text)                  # atomically: an interrupted run leaves the old file
        os.replace(tmp.name, path)
        compared = sum(COMPARED in c.metadata.get("tags", []) for c in nb.cells)
        print(f"stored {path.relative_to(ROOT)}: {compared} cells compared by nbval")
    return 0


if __name__ == "__main__":
    sys.exit(main())
