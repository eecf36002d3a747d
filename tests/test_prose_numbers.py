"""No measured number is typed into the course's prose.

A number with a unit of time, energy, size, share or multiple (or a count of a thousand and more)
in the Markdown of a lesson, a solution, an exercise, the README or the guide must be one of:
- written by `make outputs` (the `**Time:**` lines, exercise minutes, the course map's compute
  column and the `<!-- timetable -->` spans, kept current by tests/test_timetable.py);
- a literature figure cited in the same paragraph (arXiv, a section, table or appendix, a year,
  a link, a commit, the authors' README);
- asserted by the same notebook's code (the figure appears in an `assert` line);
- a constant of the code, bound below to the expression it must equal.
Everything else is a number the code computes or a flag changes: print it from a cell instead.
"""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(ROOT.glob("solutions/*.ipynb")) + \
    sorted(ROOT.glob("exercises/*.ipynb"))
DOCUMENTS = [ROOT / "README.md", ROOT / "solutions" / "INSTRUCTOR_GUIDE.md"]
UNITS = r"(?:ns|µs|ms|s|sec|seconds?|min|minutes?|h|hours?|J|kJ|Wh|kWh|W|KB|kB|MB|GB|TB|KiB|MiB|GiB|%|pp|x|×)"
MEASURED = re.compile(r"(?<![\w.$\\-])(?:\d+(?:\.\d+)?\s?" + UNITS + r"(?![\w/])|x\d+(?:\.\d+)?(?![\w.])|\d{1,3}(?:,\d{3})+(?![\d.]))")
CITED = re.compile(r"arXiv|\bSection \d|\bTable \d|\bAppendix [A-Z]|\bet al\.|\b(?:19|20)\d\d\b|https?://|"
                   r"\bcommit [0-9a-f]{7}|\bREADME\b|\bFigure \d")
GENERATED = re.compile(r"<!-- timetable: [\w-]+ -->.*?<!-- /timetable -->|^\*\*Time:\*\*.*$|\*\(about \d+ minutes\)\*|"
                       r"^\| \d\d \| .*$", re.S | re.M)
CODE = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|\]\([^)]*\)|<[^>\n]*>", re.S)


def bound() -> dict[str, str]:
    """Constants of the code the prose may state, each as the text it must read, with its source."""
    import numpy as np

    from fwdlib import gpu_check
    from fwdlib.bench import pool, stats, verdicts
    from fwdlib.course import timetable
    from fwdlib.meters import process

    m, sample = verdicts.MARGINS, ROOT / "fwdlib" / "data" / "_data" / "fashion_mnist_sample.npz"
    with np.load(sample) as arrays:
        train, test = (len(arrays[k]) for k in ("train_y", "test_y"))
    budgets = sorted(gpu_check.T4_BUDGET_S.values())
    return {f"{m['accuracy']:g} pp": "verdicts.MARGINS", f"{m['time']:.0%}": "verdicts.MARGINS",
            f"{m['memory']:.0%}": "verdicts.MARGINS", f"{stats.POWER:.0%}": "stats.POWER",
            f"{stats.LEVEL:.0%}": "stats.LEVEL", f"{(1 - stats.LEVEL) / 2:.1%}": "one side of stats.LEVEL",
            f"{stats.order_statistic_confidence(3, 1):.0%}": "stats.order_statistic_confidence(3, 1)",
            f"{stats.order_statistic_confidence(5, 1):.2%}": "stats.order_statistic_confidence(5, 1)",
            f"{process.FOREIGN_LOAD_LIMIT:g}": "process.FOREIGN_LOAD_LIMIT", f"{pool.GRACE_S} s": "pool.GRACE_S",
            f"{gpu_check.MF_PEAK_FRACTION:.0%}": "gpu_check.MF_PEAK_FRACTION",
            f"{budgets[-1] // 60} minutes": "gpu_check.T4_BUDGET_S", f"{timetable.SLACK_MINUTES} minutes":
            "timetable.SLACK_MINUTES", f"{train:,}": "the sample's training images", f"{test:,}": "its test images",
            f"{sample.stat().st_size / 1e6:.1f} MB": "the sample's file size"}


# Figures that are not measurements: each with why it may stand in prose.
NOT_MEASURED = {
    "97.5%": "the upper end of a 95% bootstrap interval, a definition (exercise 6.1)",
    "90%": "the interval TOST usually uses, named to say the kit does not (exercise 6.3, README)",
    "1.3x": "a wrong answer the common-mistakes table names; tests/test_guide.py runs it",
    "1000x": "quoted from a check's message; tests/test_guide.py checks the quote",
    "1 J": "a unit conversion, 1 J = 1000 mJ (exercise 5.2's hint)",
}


def paragraphs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        asserted = " ".join(line for c in nb.cells if c.cell_type == "code"
                            for line in c.source.splitlines() if line.lstrip().startswith("assert"))
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                yield f"{path.relative_to(ROOT)}[{index}]", cell.source, asserted
    for path in DOCUMENTS:
        yield str(path.relative_to(ROOT)), path.read_text(), ""


def typed_numbers() -> list[str]:
    allowed, found = {**bound(), **NOT_MEASURED}, []
    for place, whole, asserted in paragraphs():
        for text in re.split(r"\n\s*\n", GENERATED.sub("", whole)):
            if CITED.search(text):
                continue
            for match in MEASURED.finditer(CODE.sub(" ", text)):
                figure = re.sub(r"\s+", " ", match.group())
                number = re.search(r"\d[\d,]*(?:\.\d+)?", figure)[0]
                if figure in allowed or re.search(rf"(?<![\d.]){re.escape(number)}(?![\d.])", asserted):
                    continue
                found.append(f"{place}: {figure!r} in: ...{text[max(0, match.start() - 60):match.end() + 40]}...")
    return found


def test_no_measured_number_is_typed_into_the_prose():
    found = typed_numbers()
    assert not found, f"{len(found)} typed numbers:\n" + "\n".join(found)


@pytest.mark.parametrize("text, caught", [("FF took 14.5 ms per step.", True), ("MF used 3.2x the energy.", True),
                                         ("the file is 7.7 MB", True), ("on 54,000 images", True),
                                         ("MF used 3.2x the energy (Section 4.3).", False),
                                         ("**Time:** about 20 minutes.", False), ("`EPOCHS = 20`", False),
                                         ("three seeds", False), ("layer 2 of 3", False)])
def test_the_scan_finds_typed_measurements_and_spares_cited_generated_and_code(text, caught, monkeypatch):
    monkeypatch.setattr(__import__(__name__), "paragraphs", lambda: iter([("x", text, "")]))
    assert bool(typed_numbers()) == caught
