"""The course's website (`make site`) as a reader meets it, in Debian's Chromium.

The site is built from the stored notebooks into a scratch folder, served on 127.0.0.1, and every
page is opened: no console error and no failed request (the site loads nothing from elsewhere), every
image loads and is not blank, every internal link and anchor resolves, every notebook page carries a
launch-in-Colab button at the course's address, and the search finds the lessons.
"""
from __future__ import annotations

import functools
import http.server
import re
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

from conftest import require
from test_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, missing_parts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_site  # noqa: E402
from links import blob_url, colab_url  # noqa: E402

pytestmark = pytest.mark.browser
NOTEBOOK_PAGES = [p for p in build_site.PAGES if p.endswith(".ipynb")]
# A blank image has one colour; a figure has many. (The Colab badge, a flat drawing, has a few.)
IMAGE_COLOURS_JS = """img => {
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const x = c.getContext('2d'); x.drawImage(img, 0, 0);
  const d = x.getImageData(0, 0, c.width, c.height).data, seen = new Set();
  for (let i = 0; i < d.length && seen.size < 50; i += 4 * 97) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2] + ',' + d[i+3]);
  return {src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0, colours: seen.size};
}"""


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(not missing_parts(), "the site's test needs " + " and ".join(missing_parts()))
    out = tmp_path_factory.mktemp("site") / "site"
    assert build_site.main(["--out", str(out)]) == 0
    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def visit(browser, url: str):
    """Open `url`; return the page and every console error, page error and failed request it had."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    page.goto(url, wait_until="networkidle")
    return page, problems


def html_pages(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html") if "_static" not in p.parts)


def test_every_page_opens_cleanly_with_its_images_and_links(site, browser):
    out, base = site
    pages = html_pages(out)
    assert {p[:-len(".ipynb")] + ".html" for p in NOTEBOOK_PAGES} <= set(pages)
    assert {"index.html", "solutions/INSTRUCTOR_GUIDE.html", "search.html"} <= set(pages)
    ids = {p: set(re.findall(r'\bid="([^"]+)"', (out / p).read_text())) for p in pages}
    wrong, figures = [], 0
    for name in pages:
        page, problems = visit(browser, base + name)
        wrong += [f"{name}: {p}" for p in problems]
        for image in page.eval_on_selector_all("img", f"imgs => imgs.map({IMAGE_COLOURS_JS})"):
            if not image["loaded"]:
                wrong.append(f"{name}: image {image['src']} did not load")
            elif image["colours"] < 2:
                wrong.append(f"{name}: image {image['src']} is blank")
            figures += image["src"].endswith(".png")
        for href in page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)"):
            target = urllib.parse.urlsplit(href)
            if not href.startswith(base):
                continue
            path = target.path.removeprefix("/") or "index.html"
            path = path + "index.html" if path.endswith("/") else path
            if not (out / path).is_file():
                wrong.append(f"{name}: link to {path}, which does not exist")
            elif target.fragment and path.endswith(".html") and target.fragment not in ids.get(path, set()):
                wrong.append(f"{name}: link to {path}#{target.fragment}, which has no such anchor")
        page.close()
    assert not wrong, "\n".join(wrong)
    assert figures >= 20, f"only {figures} figures on the whole site"


@pytest.mark.parametrize("notebook", NOTEBOOK_PAGES)
def test_each_notebook_page_launches_in_colab_at_the_course_address(site, notebook):
    out, _ = site
    html = (out / notebook.replace(".ipynb", ".html")).read_text()
    colab = set(re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', html))
    assert colab_url(notebook) in colab, f"no launch button for {colab_url(notebook)}: {colab}"
    assert all(link.split("/blob/")[0] == colab_url(notebook).split("/blob/")[0] for link in colab), colab


def test_the_lessons_show_their_figures_and_the_exercises_no_solution(site):
    out, _ = site
    lesson = (out / "notebooks/02_ff_training.html").read_text()
    assert lesson.count("<img") >= 3 and "val_acc" in lesson          # stored figures and printed results
    interactive = (out / "notebooks/01_ff_goodness.html").read_text()
    assert "move the sliders" in interactive
    for notebook in (p for p in NOTEBOOK_PAGES if p.startswith("exercises/")):
        html = (out / notebook.replace(".ipynb", ".html")).read_text()
        assert "NotImplementedError" in html or "= ..." in html or "= <span" in html, notebook
        assert "BEGIN SOLUTION" not in html and not (out / notebook.replace("exercises/", "solutions/")).exists()


def test_staging_keeps_every_code_cell_as_the_repository_has_it(tmp_path):
    """Relinking is for Markdown: `model.blocks[0](image)` is code, not a link."""
    import nbformat
    build_site.stage(tmp_path)
    for notebook in NOTEBOOK_PAGES:
        ours = [c.source for c in nbformat.read(ROOT / notebook, as_version=4).cells if c.cell_type == "code"]
        staged = [c.source for c in nbformat.read(tmp_path / notebook, as_version=4).cells if c.cell_type == "code"]
        assert staged == ours, notebook


def test_the_guide_on_the_site_keeps_its_model_answers_for_instructors(site):
    out, _ = site
    guide = (out / "solutions/INSTRUCTOR_GUIDE.html").read_text()
    source = (ROOT / "solutions/INSTRUCTOR_GUIDE.md").read_text()
    answer = re.search(r"^- \*\*0\.2 [^*]+\*\* \[\w\] (.{40})", source, re.MULTILINE)[1]
    assert answer not in guide and "Not published on the site" in guide
    assert f'href="{blob_url("solutions/INSTRUCTOR_GUIDE.md")}"' in guide          # where they are instead
    assert "Forking the course" in guide and "Grading the written answers" in guide


def test_the_search_finds_the_lessons(site, browser):
    _, base = site
    page, problems = visit(browser, base + "search.html?q=goodness")
    page.wait_for_selector("#search-results li", timeout=20_000)
    found = page.eval_on_selector_all("#search-results li a", "as => as.map(a => a.getAttribute('href'))")
    assert any("01_ff_goodness" in href for href in found), found
    assert not problems, problems


def test_screenshots_of_a_lesson_an_exercise_and_the_guide(site, browser):
    _, base = site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in (("site-lesson", "notebooks/03_cafo_blocks.html"),
                       ("site-exercise", "exercises/02_ff_training_exercises.html"),
                       ("site-guide", "solutions/INSTRUCTOR_GUIDE.html")):
        page, problems = visit(browser, base + path)
        if name == "site-lesson":        # the lesson's first figure, with the code that drew it above
            page.locator("main img[src*='_images/'][src$='.png']").first.scroll_into_view_if_needed()
            page.mouse.wheel(0, 250)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
        assert not problems, problems
        page.close()
