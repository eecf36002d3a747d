"""Build the course's website into site/ (`make site`), offline, from the stored executed notebooks.

    python scripts/build_site.py [--out site]

Sphinx with myst-nb renders the README (the home page), every lesson with the outputs `make
outputs` stored (nothing is executed again), every exercise notebook unsolved, and the instructor
guide; Sphinx's own search indexes them all, and sphinx-book-theme gives each notebook page a
launch-in-Colab button at the course's address (scripts/links.py). The solutions are not
published, nor the guide's model answers: a lab that grades its exercises would be giving away
the answers.

Staging (a scratch copy of the pages) makes the repository a site without editing it:
- a link to a repository file that is not a page (a module, the Makefile) goes to GitHub at the
  course's ref, so it works on the site as it does on GitHub;
- the Colab badge image is a local copy (the site opens offline and loads nothing from elsewhere);
- an interactive figure (sliders that need a running kernel) is shown as the figure it drew when
  the notebook was stored, with a line saying where the sliders work.
"""
from __future__ import annotations

import argparse
import copy
import posixpath
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from links import blob_url  # noqa: E402

CONF = ROOT / "scripts" / "site"
GUIDE = "solutions/INSTRUCTOR_GUIDE.md"
PAGES = ["README.md", GUIDE, *[f"{folder}/{p.name}" for folder in ("notebooks", "exercises")
                                                        for p in sorted((ROOT / folder).glob("*.ipynb"))]]
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "colab-badge.svg"
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
MODEL_ANSWERS = re.compile(r"^## Model answers.*?(?=^## )", re.MULTILINE | re.DOTALL)
SLIDERS_NOTE = ("*(Interactive on a running kernel: open this notebook in JupyterLab or Colab to move the sliders. "
                "Shown: the figure at the sliders' first position.)*")


def site_path(page: str, target: str) -> str | None:
    """The page a relative link of `page` points at, or None when it leaves the site."""
    if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), target))


def relink(page: str, text: str) -> str:
    """Links to repository files that are not pages go to GitHub; the Colab badge image is local."""
    depth = page.count("/")
    text = text.replace(BADGE, "../" * depth + LOCAL_BADGE)

    def one(m: re.Match) -> str:
        target = site_path(page, m[2])
        if target is None or target in PAGES or target == LOCAL_BADGE:
            return m[0]
        return f"{m[1]}{blob_url(target)}{m[3] or ''}{m[4]}"
    return LINK.sub(one, text)


def widget_outputs(state: dict, model_id: str) -> list:
    """The outputs the Output widgets under `model_id` held when the notebook was stored."""
    model = state.get(model_id, {})
    if model.get("model_name") == "OutputModel":
        return copy.deepcopy(model["state"].get("outputs", []))
    children = model.get("state", {}).get("children", [])
    return [o for child in children for o in widget_outputs(state, child.removeprefix("IPY_MODEL_"))]


def still_notebook(nb: nbformat.NotebookNode, page: str) -> nbformat.NotebookNode:
    """`nb` as a static page: links relinked, each interactive figure replaced by what it drew."""
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    nb.metadata.setdefault("language_info", {})["pygments_lexer"] = "ipython3"    # `!pip`, `%pip`: IPython's syntax
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = relink(page, cell.source)
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(output)
                continue
            outputs += [nbformat.from_dict(o) for o in widget_outputs(state, view["model_id"])]
            outputs.append(nbformat.v4.new_output("display_data", data={"text/markdown": SLIDERS_NOTE}))
        cell.outputs = outputs
    return nb


def not_published() -> str:
    return ("## Model answers to the written questions\n\nNot published on the site: they are in the repository's "
            f"[{GUIDE}]({blob_url(GUIDE)}), beside the solutions.\n\n")


def stage(into: Path) -> None:
    """The pages, as the site shows them, in a scratch source folder."""
    for page in PAGES:
        target = into / page
        target.parent.mkdir(parents=True, exist_ok=True)
        if page.endswith(".ipynb"):
            nbformat.write(still_notebook(nbformat.read(ROOT / page, as_version=4), page), target)
        else:
            text = (ROOT / page).read_text()
            text = MODEL_ANSWERS.sub(lambda m: not_published(), text) if page == GUIDE else text
            target.write_text(relink(page, text))
    readme = into / "README.md"
    readme.rename(into / "index.md")
    with (into / "index.md").open("a") as index:
        for caption, folder in (("Lessons", "notebooks"), ("Exercises", "exercises")):
            entries = "\n".join(p[:-len(".ipynb")] for p in PAGES if p.startswith(folder + "/"))
            index.write(f"\n```{{toctree}}\n:hidden:\n:caption: {caption}\n\n{entries}\n```\n")
        index.write("\n```{toctree}\n:hidden:\n:caption: Teaching\n\nsolutions/INSTRUCTOR_GUIDE\n```\n")
    shutil.copy(CONF / LOCAL_BADGE, into / LOCAL_BADGE)


def build(out: Path) -> None:
    """Stage the pages and build the site into `out` (replaced whole only when the build succeeded)."""
    from sphinx.cmd.build import build_main

    out = out.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        source, built = Path(scratch) / "source", Path(scratch) / "html"
        stage(source)
        # -W: a broken reference or a page left out of the navigation fails the build
        code = build_main(["-b", "html", "-q", "-W", "--keep-going", "-c", str(CONF), "-d", str(Path(scratch) / "doctrees"),
                           str(source), str(built)])
        if code:
            raise SystemExit(f"site: Sphinx failed (exit {code}); the warnings above say where. {out} was left as it was.")
        shutil.rmtree(built / ".buildinfo", ignore_errors=True)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(built, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="where the site goes (default: site/)")
    args = parser.parse_args(argv)
    build(args.out)
    pages = sum(1 for _ in args.out.rglob("*.html"))
    print(f"site: {pages} pages in {args.out}; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
