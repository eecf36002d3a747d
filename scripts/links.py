"""One address for the whole course: the repository (owner/name) and the ref its links install.
`make links REPO=owner/name REF=tag` moves the course to a fork (scripts/make_exercises.py --repo
--ref: it sets the address here, then stamps every file it owns).

The address lives in pyproject.toml, `[tool.fwdlib.course]`, and nowhere else: every Colab badge,
install cell and link to a file of the repository is stamped from it (scripts/make_exercises.py
stamps notebooks/, solutions/, exercises/, README.md and the instructor guide), and the site's
launch buttons are built from it (scripts/build_site.py). A ref is a tag or a commit, never a
moving branch: a lesson opened next term must install the kit it was written for.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fwdlib.files import atomic_write  # noqa: E402

PYPROJECT = ROOT / "pyproject.toml"
SECTION = re.compile(r"^\[tool\.fwdlib\.course\]\n(?:.*\n)*?(?=\[|\Z)", re.MULTILINE)
MOVING = {"main", "master", "head", "develop", "dev", "trunk", "latest", "stable", "gh-pages"}
OWNER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.{1,2}$)(?![^/]*\.git$)[A-Za-z0-9._-]{1,100}")
GIT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")      # no "/": every link splits its path there

# Every form a link to the course takes; group "path" is the file a link points at.
COLAB = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/(?P<path>[^\s)\"'#]+)")
INSTALL = re.compile(r"fwdlib @ git\+https://github\.com/[^\s\"'@]+@[^\s\"']+")
BLOB = re.compile(r"https://github\.com/(?P<repo>[^/\s)]+/[^/\s)]+)/(?:blob|tree)/[^/\s)]+/(?P<path>[^\s)\"'#]*)")


def address(pyproject: Path = PYPROJECT) -> tuple[str, str]:
    """(owner/name, ref) of the course."""
    course = tomllib.loads(pyproject.read_text())["tool"]["fwdlib"]["course"]
    return course["repository"], course["ref"]


def colab_url(path: str) -> str:
    """Open-in-Colab address of a notebook path inside the repository, at the course's ref."""
    repo, ref = address()
    return f"https://colab.research.google.com/github/{repo}/blob/{ref}/{path}"


def install_spec() -> str:
    """The pip requirement the notebooks' Colab cell installs: the kit at the course's ref."""
    repo, ref = address()
    return f"fwdlib @ git+https://github.com/{repo}@{ref}"


def blob_url(path: str) -> str:
    """A file of the repository on GitHub, at the course's ref."""
    repo, ref = address()
    return f"https://github.com/{repo}/blob/{ref}/{path}"


def stamp(text: str, previous: str | None = None) -> str:
    """Point every Colab badge, install spec and link to a repository file of `text` at the address
    (links to files of `previous`, the repository the course moved from, move too; links to other
    repositories are sources the course cites, and stay)."""
    repo, _ = address()
    text = COLAB.sub(lambda m: colab_url(m["path"]), text)
    text = INSTALL.sub(install_spec(), text)
    return BLOB.sub(lambda m: blob_url(m["path"]) if m["repo"] in {repo, previous} else m[0], text)


def neutral(text: str) -> str:
    """`text` with the course's address taken out: what a fork's `make links` changes, and no output depends on."""
    text = COLAB.sub(lambda m: f"COLAB/{m['path']}", text)
    return INSTALL.sub("fwdlib @ COURSE", text)


def problems(repo: str, ref: str) -> list[str]:
    """What is wrong with an address, each with how to fix it."""
    found = []
    if not OWNER_NAME.fullmatch(repo):
        found.append(f"REPO={repo!r} is not a GitHub owner/name (no .git, no URL), for example REPO=my-school/fwdlib")
    if not GIT_REF.fullmatch(ref) or ".." in ref or ref.endswith((".", "/", ".lock")):
        found.append(f"REF={ref!r} is not a git tag or commit name without a slash, for example REF=v1.0 or a "
                     "commit's hash")
    elif ref.lower() in MOVING or ref in local_branches():
        found.append(f"REF={ref!r} is a branch, which moves: a lesson opened later would install other code. "
                     f"Tag the commit to teach (git tag v1.0 && git push origin v1.0) and use REF=v1.0")
    return found


def local_branches() -> set[str]:
    done = subprocess.run(["git", "-C", str(ROOT), "for-each-ref", "--format=%(refname:short)", "refs/heads"],
                          capture_output=True, text=True)
    return set(done.stdout.split()) if done.returncode == 0 else set()


def set_address(repo: str, ref: str, pyproject: Path = PYPROJECT) -> None:
    text = pyproject.read_text()
    section = f'[tool.fwdlib.course]\nrepository = "{repo}"\nref = "{ref}"\n\n'
    if not SECTION.search(text):
        raise SystemExit(f"links: {pyproject} has no [tool.fwdlib.course] section to rewrite")
    atomic_write(pyproject, SECTION.sub(section, text, count=1))
