"""Packaging as Python users expect: one version, a license, console scripts, agreeing dependency lists."""
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import fwdlib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def test_requirements_txt_is_the_runtime_dependencies_plus_the_lab_extra():
    declared = set(PYPROJECT["dependencies"]) | set(PYPROJECT["optional-dependencies"]["lab"])
    required = requirement_lines((ROOT / "requirements.txt").read_text())
    assert required == declared
    # the course in JupyterLab, and the notebook CI an instructor runs with pytest --nbval
    assert {re.split("[<>=]", r)[0] for r in required} >= {"jupyterlab", "pytest", "nbval"}
    dev_tools = {"pytest", "nbval", "playwright", "psycopg[binary]"}
    assert not {re.split("[<>=]", r)[0] for r in PYPROJECT["dependencies"]} & dev_tools
    assert all("==" not in r for r in (*PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"]["dev"]))


def test_one_version_a_license_and_console_scripts():
    assert "version" in PYPROJECT["dynamic"] and "version" not in PYPROJECT
    assert metadata.version("fwdlib") == fwdlib.__version__
    assert PYPROJECT["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    # started by fwdlib.launch, so that a Ctrl-C while torch imports ends them with one line
    assert PYPROJECT["scripts"] == {"fwdlib": "fwdlib.launch:fwdlib",
                                    **{f"fwdlib-{name}": f"fwdlib.launch:{name}" for name in ("bench", "tune", "speed")}}
    for script, flag in (("fwdlib-bench", "--preset"), ("fwdlib-tune", "--algorithm"), ("fwdlib-speed", "--only"),
                         ("fwdlib", "gpu-check")):
        path = shutil.which(script, path=str(Path(sys.executable).parent))
        if path is None:
            pytest.fail(f"{script} is not installed: reinstall with pip install -e '.[dev]'")
        done = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and flag in done.stdout, (script, done.stderr)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_cpu_only_switch_reaches_pips_command_line(tmp_path):
    def dry_run(*args):
        return subprocess.run(["make", "-n", "install", f"VENV={tmp_path / 'venv'}", *args], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    cpu = dry_run("CPU_ONLY=1")
    assert re.search(r"pip install -q --index-url https://download.pytorch.org/whl/cpu \"torch>=2.2\" "
                     r"\"torchvision>=0.17\"", cpu), cpu
    assert 'pip install -q -e ".[dev]"' in cpu
    default = dry_run()
    assert "download.pytorch.org" not in default and 'pip install -q -e ".[dev]"' in default
