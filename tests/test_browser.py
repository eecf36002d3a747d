"""The course in a real browser: JupyterLab, headless Chromium, Run All from the menu.

For every lesson in quick mode it checks what a student sees: no error or stderr output, no
cell left unexecuted, images present, widgets drawn as controls (never as `interactive(...)`
text), every interactive figure non-empty at once and still non-empty, and redrawn, after a
slider moves. A full-page screenshot of each lesson is saved (path printed) for a human to look at.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` package (dev extra; it drives
the system browser, so `playwright install` is not needed). Skipped with the reason where either
is missing, except in CI (CI=true), where missing parts fail the test.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import require
from test_notebooks import DRAWS, LESSONS
from test_stored_outputs import store_outputs

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("FWDLIB_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("FWDLIB_SCREENSHOTS", ROOT / "browser-screenshots"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAB_SETTINGS = {   # every cell in the page (so one screenshot shows the lesson); no news pop-up
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}
RUN_TIMEOUT_S = 300

pytestmark = pytest.mark.browser


def missing_parts() -> list[str]:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (Debian: apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on 127.0.0.1 over a private copy of the lessons."""

    def __init__(self, workdir: Path):
        self.token, self.port = secrets.token_hex(16), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (workdir / "notebooks").mkdir()
        for path in LESSONS:
            shutil.copy(path, workdir / "notebooks" / path.name)
        settings = workdir / "settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        env = store_outputs.student_env()      # what a student's lab has: progress bars shown even in CI
        env.update(JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(workdir / "runtime"))
        self.log = open(workdir / "lab.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={workdir}", "--ServerApp.port_retries=0", "--allow-root"],
            cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.api("status")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"JupyterLab did not start; see {workdir / 'lab.log'}")
                time.sleep(0.5)

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response) if response.status != 204 else None

    def shut_down_kernels(self) -> None:
        """One lesson's kernel at a time, as a student closing each notebook would."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def kernel_state(self, notebook: str) -> str | None:
        for session in self.api("sessions"):
            if session["path"].endswith(notebook):
                return session["kernel"]["execution_state"]
        return None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    require(not missing_parts(), "the browser test needs " + " and ".join(missing_parts()))
    from playwright.sync_api import sync_playwright

    lab = Lab(tmp_path_factory.mktemp("lab"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            yield lab, page
            browser.close()
    finally:
        lab.stop()


def accept_kernel_dialog(page) -> None:
    """A "Select Kernel" dialog appears when Run All races the kernel's start: accept it."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and "Kernel" in dialog.first.inner_text():
        dialog.locator(".jp-mod-accept").first.click()


def run_all(lab: Lab, page, name: str) -> None:
    """Open the lesson alone, wait for its kernel, Run All from the menu, wait until it is done."""
    lab.shut_down_kernels()
    page.goto(f"{lab.base}/lab/tree/notebooks/{name}?reset&token={lab.token}")   # reset: this tab only
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    deadline = time.monotonic() + 60
    while lab.kernel_state(name) != "idle":
        accept_kernel_dialog(page)
        assert time.monotonic() < deadline, f"{name}: the kernel did not start"
        time.sleep(0.5)
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    assert "Nbgrader" not in menus, f"the instructor's grading tool shows in the students' lab: {menus}"
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline, idle_since = time.monotonic() + RUN_TIMEOUT_S, None
    while True:
        accept_kernel_dialog(page)
        running = page.locator(".jp-InputPrompt", has_text="[*]").count()
        idle = lab.kernel_state(name) == "idle" and running == 0
        idle_since = (idle_since or time.monotonic()) if idle else None
        if idle_since and time.monotonic() - idle_since > 2:
            return
        assert time.monotonic() < deadline, f"{name}: still running after {RUN_TIMEOUT_S} s"
        time.sleep(0.5)


def screenshot(page, name: str) -> Path:
    """The whole lesson in one image: make the window as tall as the notebook, then shoot."""
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll(
        '.jp-NotebookPanel .jp-WindowedPanel-outer, .jp-NotebookPanel-notebook')].map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 200, 32_000)})
    page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer').forEach(e => e.scrollTop = 0)")
    page.wait_for_timeout(500)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{Path(name).stem}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    return path


def interactive_figures(page):
    """Each output area that `plots.interactive_figure` made, with the sliders beside it."""
    outputs = page.locator(".jp-OutputArea-output .widget-vbox:has(> .widget-output)")
    return [outputs.nth(i) for i in range(outputs.count())]


def image_of(widget) -> str:
    images = widget.locator(".widget-output img")
    return images.first.get_attribute("src") if images.count() else ""


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_in_jupyterlab(browser_page, path):
    lab, page = browser_page
    run_all(lab, page, path.name)
    shot = screenshot(page, path.name)
    print(f"\n{path.name}: screenshot {shot}")

    cells = page.locator(".jp-CodeCell .jp-InputPrompt")
    prompts = [cells.nth(i).inner_text().strip() for i in range(cells.count())]
    assert prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"unexecuted cells: {prompts}"
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert errors.count() == 0, "error or stderr output:\n" + "\n".join(
        errors.nth(i).inner_text()[:300] for i in range(errors.count()))
    text = page.locator(".jp-NotebookPanel").inner_text()
    assert "interactive(children=" not in text and "<Figure size" not in text
    if DRAWS.search(path.read_text()):
        assert page.locator(".jp-OutputArea-output img").count() > 0, "no image rendered"

    widgets = interactive_figures(page)
    assert len(widgets) == path.read_text().count("plots.interactive_figure("), "widgets missing"
    for widget in widgets:
        before = image_of(widget)
        assert before, "an interactive figure is empty"
        slider = widget.locator(".widget-slider .noUi-handle").first
        assert slider.count(), "an interactive figure has no slider"
        slider.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([el, old]) => { const img = el.querySelector('.widget-output img');"
            " return img && img.getAttribute('src') !== old; }",
            arg=[widget.element_handle(), before], timeout=15_000)
        print(f"{path.name}: an interactive figure redrew {time.perf_counter() - start:.2f} s after its slider moved")
        assert image_of(widget), "the figure vanished after the slider moved"


def test_the_instructor_guide_renders_in_the_browser(browser_page, tmp_path):
    """The guide as a reader's Markdown viewer shows it: every section a heading, none swallowed by a
    code block, every table a table; a full-page screenshot for a human to look at."""
    from markdown_it import MarkdownIt

    lab, page = browser_page
    guide = (ROOT / "solutions" / "INSTRUCTOR_GUIDE.md").read_text()
    html = tmp_path / "guide.html"
    html.write_text("<!doctype html><meta charset=utf-8><style>body{font-family:sans-serif;max-width:1100px;"
                    "margin:auto}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
                    "pre{background:#eee}</style>" + MarkdownIt("commonmark").enable("table").render(guide))
    page.goto(html.as_uri())
    sections = [line[3:] for line in re.sub(r"```.*?```", "", guide, flags=re.S).splitlines() if line.startswith("## ")]
    shown = [page.locator("h2").nth(i).inner_text() for i in range(page.locator("h2").count())]
    assert shown == sections and len(shown) >= 8, (shown, sections)
    assert page.locator("pre h2, pre h3").count() == 0
    assert not any(re.search(r"^#{2,3} ", page.locator("pre").nth(i).inner_text(), re.M)
                   for i in range(page.locator("pre").count()))
    assert page.locator("table").count() >= 4, "the sessions and grading tables render as tables"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.screenshot(path=str(SCREENSHOTS / "INSTRUCTOR_GUIDE.png"), full_page=True)
    print(f"\nthe guide: screenshot {SCREENSHOTS / 'INSTRUCTOR_GUIDE.png'}")
