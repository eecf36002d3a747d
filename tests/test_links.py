"""One address for the whole course (scripts/links.py): a fork moves every link with one command.

The fork test copies the committed tree, runs `make links`' command (make_exercises.py --repo --ref) in the copy with a made-up
fork and ref, and reads every file: no other address of the course is left, links to the sources
the course cites stay as they are, and the stored outputs still count as current.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import links  # noqa: E402
import make_exercises  # noqa: E402

FORK, REF = "someone-else/fwdlib-fork", "autumn-2027.1"
# Repositories the course cites as sources: a fork keeps pointing at them.
CITED = {"Przemyslaw11/BeyondBackpropagation", "loeweX/Forward-Forward", "mlco2/codecarbon",
         "mohammadpz/pytorch_forward_forward", "zalandoresearch/fashion-mnist"}
GITHUB = re.compile(r"github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)")


def committed_tree(into: Path) -> Path:
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for name in filter(None, files):
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, into / name)
    subprocess.run(["git", "init", "-q", str(into)], check=True)
    return into


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    tree = committed_tree(tmp_path_factory.mktemp("fork"))
    done = subprocess.run([sys.executable, "scripts/make_exercises.py", "--repo", FORK, "--ref", REF], cwd=tree,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return tree


def test_a_fork_leaves_no_other_address_of_the_course_anywhere(fork):
    old_repo, old_ref = links.address()
    seen, wrong = 0, []
    for path in sorted(p for p in fork.rglob("*") if p.is_file() and ".git" not in p.parts):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        where = path.relative_to(fork)
        if old_repo in text:
            wrong.append(f"{where}: still names {old_repo}")
        seen += text.count(FORK)
        for repo in GITHUB.findall(text):
            if repo not in CITED | {FORK}:
                wrong.append(f"{where}: github.com/{repo}")
        for ref in re.findall(rf"github\.com/{FORK}(?:/blob/|@)([^/\s\"')\\]+)", text):
            if ref != REF:
                wrong.append(f"{where}: {FORK} at {ref}")
    assert not wrong, "\n".join(wrong)
    notebooks = len(list(fork.glob("*/*.ipynb")))
    assert seen >= 2 * notebooks, f"only {seen} links name the fork"      # each notebook: a badge, an install cell
    assert links.address(fork / "pyproject.toml") == (FORK, REF)
    assert f'ref = "{old_ref}"' not in (fork / "pyproject.toml").read_text()


def test_a_forks_stored_outputs_stay_current_and_its_exercises_fresh(fork):
    """The address is not code an output depends on: `make links` must not make outputs stale."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_stored_outputs.py", "-k", "current_code"],
                          cwd=fork, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-2000:]
    check = subprocess.run([sys.executable, "scripts/make_exercises.py", "--check"], cwd=fork,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and f"{FORK} at {REF}" in check.stdout, check.stdout + check.stderr


def test_a_fork_builds_its_site_from_committed_files_with_its_own_launch_buttons(fork, tmp_path):
    done = subprocess.run([sys.executable, "scripts/build_site.py", "--out", str(tmp_path / "site")], cwd=fork,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lesson = (tmp_path / "site" / "notebooks" / "01_ff_goodness.html").read_text()
    assert f"https://colab.research.google.com/github/{FORK}/blob/{REF}/notebooks/01_ff_goodness.ipynb" in lesson
    assert links.address()[0] not in lesson


@pytest.mark.parametrize("repo, ref, says", [
    ("someone/fwdlib", "main", "is a branch, which moves"),
    ("someone/fwdlib", "HEAD", "is a branch, which moves"),
    ("someone/fwdlib", "v1..2", "not a git tag or commit name"),
    ("someone/fwdlib", "-rf", "not a git tag or commit name"),
    ("https://gitlab.com/someone/fwdlib", "v1.0", "not a GitHub owner/name"),
    ("someone", "v1.0", "not a GitHub owner/name"),
    ("someone/fwdlib.git", "v1.0", "not a GitHub owner/name"),
    ("someone/..", "v1.0", "not a GitHub owner/name"),
    ("someone/fwdlib", "release/2027", "without a slash"),
    ("someone/fwdlib", "refs/tags/v1", "without a slash"),
])
def test_links_refuses_a_moving_or_malformed_address_and_changes_nothing(repo, ref, says, capsys):
    before = (ROOT / "pyproject.toml").read_bytes()
    with pytest.raises(SystemExit) as refused:
        make_exercises.main([f"--repo={repo}", f"--ref={ref}"])
    assert refused.value.code == 2
    assert says in capsys.readouterr().err
    assert (ROOT / "pyproject.toml").read_bytes() == before


def test_links_to_files_of_the_course_move_with_it_and_cited_ones_stay():
    repo, ref = links.address()
    old = "old-school" + "/fwdlib"             # split: the fork test reads this file for addresses too
    text = (f"[code](https://github.com/{old}/blob/v0.1/fwdlib/train.py) "
            f"[study](https://github.com/Przemyslaw11/BeyondBackpropagation/blob/main/src/algorithms/cafo.py)")
    moved = links.stamp(text, previous=old)
    assert f"https://github.com/{repo}/blob/{ref}/fwdlib/train.py" in moved
    assert "Przemyslaw11/BeyondBackpropagation/blob/main/src/algorithms/cafo.py" in moved


def test_a_branch_of_this_repository_counts_as_moving(monkeypatch):
    monkeypatch.setattr(links, "local_branches", lambda: {"autumn-term"})
    assert any("is a branch" in p for p in links.problems("someone/fwdlib", "autumn-term"))
    assert links.problems("someone/fwdlib", "autumn-term-1.0") == []


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,10}/[A-Za-z0-9._-]{1,12}", fullmatch=True)
refs = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True)
paths = st.from_regex(r"(notebooks|solutions|exercises)/[a-z0-9_]{1,12}\.ipynb", fullmatch=True)


@given(names, refs, paths, st.sampled_from(["badge", "install"]))
def test_stamp_points_any_address_at_the_course_and_neutral_hides_it(repo, ref, path, kind):
    link = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{repo}/blob/{ref}/{path})" if kind == "badge"
            else f'%pip install -q "fwdlib @ git+https://github.com/{repo}@{ref}"')
    stamped = links.stamp(f"before {link} after")
    assert stamped == links.stamp(stamped)                                   # stamping twice changes nothing
    assert (links.colab_url(path) if kind == "badge" else links.install_spec()) in stamped
    assert stamped.startswith("before ") and stamped.endswith(" after")
    assert links.neutral(stamped) == links.neutral(f"before {link} after")   # the hash ignores the address
