"""The GitHub Actions workflow a forking instructor gets is valid and runs what `make notebooks` runs.

Linted against GitHub's workflow schema (check-jsonschema's vendored copy, so offline). actionlint
would also check expressions, but its PyPI package builds by downloading the binary from GitHub,
which offline CI cannot reach.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINTER = Path(sys.executable).parent / "check-jsonschema"


def test_there_is_a_notebook_workflow():
    assert [p.name for p in WORKFLOWS] == ["notebooks.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid(path):
    if not LINTER.exists():
        pytest.fail(f"{LINTER.name} is not installed: reinstall with pip install -e '.[dev]'")
    done = subprocess.run([str(LINTER), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_workflow_is_caught(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    done = subprocess.run([str(LINTER), "--builtin-schema", "vendor.github-workflows", str(broken)],
                          capture_output=True, text=True)
    assert done.returncode != 0


def test_the_workflow_runs_the_makefiles_notebook_commands():
    text = WORKFLOWS[0].read_text()
    steps = re.findall(r"run: (.+)", text)
    assert steps == ["make install CPU_ONLY=1", "make notebooks"]
    assert "notebooks:" in (ROOT / "Makefile").read_text()
