"""The lessons' Colab install cell changes none of Colab's preinstalled packages.

A throwaway venv holds stand-ins for Colab's preinstalled packages at Colab's versions (metadata
only, so nothing large is downloaded: pip sees them as installed), then pip resolves, for real
(--dry-run) against the package index, the setup cell's own `%pip install` line, verbatim: every
installed package pinned as a constraint, and the kit from the course's address at its ref, which
git fetches from a clone of this repository tagged with that ref (git's `url.<base>.insteadOf`:
only the host differs from what Colab runs). Upgrading a preinstalled
package (for example ipywidgets 7.7 to 8, which breaks widget display in Colab) fails the test.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # builds a virtual environment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from links import address  # noqa: E402
# Colab's preinstalled versions of the packages the kit or its dependencies use (a Colab runtime's
# `pip list`, late 2025). Update them when Colab updates its image.
COLAB = {
    "torch": "2.8.0", "torchvision": "0.23.0", "numpy": "2.0.2", "matplotlib": "3.10.0", "tqdm": "4.67.1",
    "ipywidgets": "7.7.1", "widgetsnbextension": "3.6.10", "jupyterlab-widgets": "3.0.15", "ipykernel": "6.17.1",
    "traitlets": "5.7.1", "pandas": "2.2.2", "requests": "2.32.4", "psutil": "5.9.5", "pydantic": "2.11.7",
    "click": "8.2.1", "rich": "13.9.4", "SQLAlchemy": "2.0.43", "PyYAML": "6.0.2", "packaging": "25.0",
    "typer": "0.16.0", "prometheus-client": "0.22.1", "arrow": "1.3.0", "py-cpuinfo": "9.0.0",
}


def stand_in(site: Path, name: str, version: str) -> None:
    """A dist-info with METADATA only: pip counts the package as installed at `version`."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("colab-stand-in\n")
    (info / "RECORD").write_text("")


def test_the_colab_install_changes_no_preinstalled_package(tmp_path):
    env_dir = tmp_path / "colab"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Colab's pip is recent; the venv's bundled one (23.2) cannot even parse a git+file:// requirement
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip>=24"], check=True, timeout=300,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    for name, version in COLAB.items():
        stand_in(site, name, version)
    cell = "".join(next(c for c in json.loads((ROOT / "notebooks/00_setup_and_measuring.ipynb").read_text())["cells"]
                        if "google.colab" in "".join(c["source"]))["source"])
    assert "!pip list --format=freeze > /tmp/colab-preinstalled.txt" in cell
    install = re.search(r"^\s*%pip install (.+)$", cell, re.MULTILINE).group(1)
    args = shlex.split(install)                   # -q -c /tmp/colab-preinstalled.txt "fwdlib @ git+https://..."
    spec = args[-1]
    repo, ref = address()
    assert spec == f"fwdlib @ git+https://github.com/{repo}@{ref}" and args[:2] == ["-q", "-c"]
    clone = tmp_path / "fwdlib-clone"             # the repository as GitHub would serve it: committed files only
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "tag", "-f", ref], check=True, capture_output=True)
    github_is_the_clone = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.file://{clone}.insteadOf",
                           "GIT_CONFIG_VALUE_0": f"https://github.com/{repo}"}
    frozen = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True)
    constraints = tmp_path / "colab-preinstalled.txt"
    constraints.write_text(frozen.stdout)
    report = tmp_path / "report.json"
    done = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--report", str(report),
                           *[str(constraints) if a == "/tmp/colab-preinstalled.txt" else a for a in args[:-1]],
                           spec],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **github_is_the_clone})
    if done.returncode != 0 and ("Could not find a version" in done.stderr or "NewConnectionError" in done.stderr
                                 or "Network is unreachable" in done.stderr):
        pytest.skip(f"the package index is not reachable here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    planned = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    changed = {name: (COLAB[name], planned[key]) for name in COLAB
               if (key := name.lower().replace("_", "-")) in planned}
    assert not changed, f"the install would change Colab's preinstalled packages (Colab's, planned): {changed}"
    assert "fwdlib" in planned and "codecarbon" in planned    # what Colab lacks is installed
