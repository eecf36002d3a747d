"""Write the student notebooks in exercises/ from their one source, solutions/.

    python scripts/make_exercises.py           # regenerate exercises/, restamp repository links
    python scripts/make_exercises.py --check   # exit 1 if anything committed is stale
    python scripts/make_exercises.py --repo owner/name --ref tag    # move the course to a fork (make links)

In a solution notebook:
- code between `# BEGIN SOLUTION` and `# END SOLUTION` becomes, inside a function, a stub
  `raise NotImplementedError("Exercise 2.3: ...")`; at top level, each `name = value` becomes
  `name = ...`;
- Markdown between `<!-- BEGIN SOLUTION -->` and `<!-- END SOLUTION -->` becomes a prompt;
- cells tagged `solution-only` are dropped; cells tagged `exercise-only` are stored as raw cells
  (so they do not run in the solution notebook) and become code or Markdown cells
  (metadata `fwdlib_cell_type`) in the exercise notebook;
- cells tagged `needs-student` (they use a student's result) get nbval's `raises-exception`.
Exercises are stored without outputs (lessons and solutions keep the outputs of `make outputs`)
and the Colab badge points at the exercise file.

It also stamps the course's address (scripts/links.py) into every badge, install cell and link
to a repository file of notebooks/, solutions/, exercises/, README.md and the instructor guide.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from links import address, problems, set_address, stamp  # noqa: E402

CODE_BLOCK = re.compile(r"^([ \t]*)# BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*# END SOLUTION[^\n]*(\n|$)", re.S | re.M)
MARKDOWN_BLOCK = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->", re.S)
EXERCISE_TITLE = re.compile(r"^#+\s*Exercise (\d+\.\d+)", re.MULTILINE)   # a heading, not a hint's mention
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*)\s*=")


def stub(match: re.Match, exercise: str) -> str:
    indent, body = match.group(1), match.group(2)
    if indent:
        return f'{indent}raise NotImplementedError("Exercise {exercise}: replace this line with your code")\n'
    names = [m.group(1) for line in body.splitlines() if (m := ASSIGNMENT.match(line))]
    if not names:
        return f"...  # Exercise {exercise}: your code here\n"
    return "".join(f"{name} = ...  # Exercise {exercise}: your answer\n" for name in dict.fromkeys(names))


def exercise_notebook(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    # the solution's record of its stored outputs does not describe the exercise
    out = nbformat.v4.new_notebook(metadata={k: v for k, v in solution.metadata.items() if k != "fwdlib"})
    exercise = "?"
    for cell in solution.cells:
        tags = set(cell.metadata.get("tags", []))
        if "solution-only" in tags:
            continue
        source = cell.source
        if cell.cell_type == "markdown":
            found = EXERCISE_TITLE.findall(source)
            exercise = found[0] if found else exercise
            source = MARKDOWN_BLOCK.sub("*Write your answer here.*", source)
            source = source.replace(f"solutions/{name}", f"exercises/{name}")
        elif cell.cell_type == "code":
            source = CODE_BLOCK.sub(lambda m: stub(m, exercise), source)
        kind = cell.metadata.get("fwdlib_cell_type", cell.cell_type) if "exercise-only" in tags else cell.cell_type
        new = (nbformat.v4.new_code_cell(source) if kind == "code" else
               nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_raw_cell(source))
        new.id = cell.id
        keep = sorted(tags - {"exercise-only", "needs-student", "nbval-check-output"}
                      | ({"raises-exception"} if "needs-student" in tags else set()))
        if keep:
            new.metadata["tags"] = keep
        out.cells.append(new)
    return out


def strip_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def render(nb: nbformat.NotebookNode, outputs: bool = False, previous: str | None = None) -> str:
    """The notebook as stored: links stamped; outputs only where kept (lessons, solutions: `make outputs`)."""
    for cell in nb.cells:
        cell.source = stamp(cell.source, previous)
    return nbformat.writes(nb if outputs else strip_outputs(nb)) + "\n"


def expected_files(previous: str | None = None) -> dict[Path, str]:
    """Every file this script owns, with the content it should have (`previous`: the repository the
    course moved from, whose links to its files move too)."""
    files = {}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        files[ROOT / "exercises" / path.name] = render(exercise_notebook(solution, path.name), previous=previous)
        files[path] = render(solution, outputs=True, previous=previous)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files[path] = render(nbformat.read(path, as_version=4), outputs=True, previous=previous)
    for text_file in (ROOT / "README.md", ROOT / "solutions" / "INSTRUCTOR_GUIDE.md"):
        files[text_file] = stamp(text_file.read_text(), previous)
    return files


def move(repo: str | None, ref: str | None) -> str | None:
    """Set the course's address to `repo` at `ref` (either kept if None); the repository it moved
    from, or None if nothing moved. SystemExit 2, nothing changed, if the address cannot work."""
    previous, previous_ref = address()
    repo, ref = repo or previous, ref or previous_ref
    found = problems(repo, ref)
    if found:
        print("links: nothing changed:\n  " + "\n  ".join(found), file=sys.stderr)
        raise SystemExit(2)
    if (repo, ref) == (previous, previous_ref):
        return None
    set_address(repo, ref)
    return previous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if any generated file is stale")
    parser.add_argument("--repo", help="move the course to this GitHub owner/name")
    parser.add_argument("--ref", help="the tag or commit every link installs and opens")
    args = parser.parse_args(argv)
    previous = move(args.repo, args.ref) if (args.repo or args.ref) and not args.check else None
    files = expected_files(previous)
    owned = set(files)
    stray = [p for p in (ROOT / "exercises").glob("*.ipynb") if p not in owned]
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"stale: {p.relative_to(ROOT)}")
        for p in stray:
            print(f"no solution for: {p.relative_to(ROOT)}")
        if stale or stray:
            print("run `make exercises` (python scripts/make_exercises.py) and commit the result")
            return 1
        repo, ref = address()
        print(f"exercises and links up to date ({len(files)} files, repository {repo} at {ref})")
        return 0
    (ROOT / "exercises").mkdir(exist_ok=True)
    for p in stale:
        p.write_text(files[p])
        print(f"wrote {p.relative_to(ROOT)}")
    for p in stray:
        p.unlink()
        print(f"removed {p.relative_to(ROOT)} (no solution notebook)")
    repo, ref = address()
    if previous is not None:
        print(f"every badge, install cell, site button and README link now names github.com/{repo} at {ref}; "
              f"commit, then tag that commit and push both: git tag {ref} && git push origin HEAD {ref}")
    else:
        print(f"the course lives at github.com/{repo}; its links open and install {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
