"""Sphinx configuration of the course's website (scripts/build_site.py stages the pages and builds it).

Sphinx with myst-nb rather than Jupyter Book: Jupyter Book 1 is this same stack behind a wrapper
and is in maintenance, Jupyter Book 2 runs on Node.js; Sphinx is Python only, builds offline, and
its search needs no server. myst-nb renders the stored outputs as they are (no execution),
sphinx-book-theme gives each notebook its launch-in-Colab button, and sphinx-mathjax-offline
serves MathJax from the site itself.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from links import address  # noqa: E402

REPO, REF = address()

project = "fwdlib"
author = "the fwdlib authors"
html_title = "fwdlib: deep learning without backpropagation"
extensions = ["myst_nb", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3            # the README's and guide's links to a section resolve
nb_execution_mode = "off"           # the outputs `make outputs` stored, as they are
nb_ipywidgets_js = {}               # interactive figures are staged as still images: no widget code to fetch
html_theme = "sphinx_book_theme"
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "repository_branch": REF,
    "path_to_docs": "",
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
}
html_show_sourcelink = False
html_favicon = "favicon.svg"
html_context = {"default_mode": "light"}   # the theme reads it on every page; unset, it logs an error
suppress_warnings = ["myst.header"]   # an exercise is an H3 under the notebook's H1, as in JupyterLab
