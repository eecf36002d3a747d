"""No measured number is typed into the course's prose.

A number with a unit of time, energy, size, share or multiple (or a count of a thousand and more)
in the Markdown of a lesson, a solution, an exercise, the README or the guide must be one of:
- written by `make outputs` (the `**Time:**` lines, exercise minutes, the course map's compute
  column and the `<!-- timetable -->` spans, kept current by tests/test_timetable.py);
- a literature figure cited in its sentence or the one before or after (arXiv, a section, table or appendix, a year,
  a link, a commit, the authors' README);
- asserted by the same notebook's code (a figure of two or more digits in an `assert` line);
- a constant of the code, bound below to the expression it must equal, in the files that state it.
Multiples written in words ("twice as fast", "three times the energy", "twelvefold") count too.
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
UNITS = (r"(?:(?:ns|µs|ms|s|sec|seconds?|milliseconds?|min|minutes?|h|hours?|mJ|J|kJ|Wh|kWh|W|KB|kB|MB|GB|TB|KiB|MiB|"
         r"GiB|%|pp|x|×)(?![\w/])|\s?\\times|\s?[kMGT]?FLOP/s)")
NUMBER = r"[+-]?\d+(?:\.\d+)?(?:[-–]\d+(?:\.\d+)?)?"
MEASURED = re.compile(rf"(?<![\w.\\])(?:{NUMBER}\s?{UNITS}|x\d+(?:\.\d+)?(?![\w.])|\d{{1,3}}(?:,\d{{3}})+(?![\d.]))")
IN_WORDS = re.compile(r"\b(?:twice|half|thrice|(?:two|three|four|five|six|seven|eight|nine|ten|\d+(?:\.\d+)?) times|"
                      r"\w+fold|\d+-fold)\b(?= (?:as |the (?:energy|time|memory|speed)|more|less|longer|shorter|faster|slower|"
                      r"larger|smaller|fewer|BP's|its|their|energy|time|memory))", re.I)
CITED = re.compile(r"arXiv|\bSections? \d|\bTable \d|\bAppendix [A-Z]|\bet al\.|\b(?:19|20)\d\d\b|https?://|"
                   r"\bcommit [0-9a-f]{7}|\bauthors' README\b|\bFigure \d")
SENTENCE = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*] |\d+\. |\|))|(?<=[.!?:;])\s+(?=[A-Z*\"'(\[`])")
GENERATED = re.compile(r"<!-- timetable: [\w-]+ -->.*?<!-- /timetable -->|^\*\*Time:\*\*.*$|\*\(about \d+ minutes\)\*|"
                       r"^\| \d\d \| .*$", re.S | re.M)
CODE = re.compile(r"```.*?```|`[^`\n]*`|\]\([^)]*\)|<[^>\n]*>", re.S)


STATS = ("README.md", "notebooks/06", "notebooks/07", "solutions/06", "exercises/06", "solutions/07", "exercises/07")
GUIDE = ("solutions/INSTRUCTOR_GUIDE.md",)


def bound() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Constants of the code the prose may state: each as the text it must read, where it comes
    from, and the files (prefixes) allowed to state it."""
    import numpy as np

    from fwdlib import gpu_check
    from fwdlib import coordination
    from fwdlib.bench import stats, verdicts
    from fwdlib.course import timetable
    from fwdlib.meters import process

    m, sample = verdicts.MARGINS, ROOT / "fwdlib" / "data" / "_data" / "fashion_mnist_sample.npz"
    with np.load(sample) as arrays:
        train, test = (len(arrays[k]) for k in ("train_y", "test_y"))
    budgets = sorted(gpu_check.T4_BUDGET_S.values())
    return {f"{m['accuracy']:g} pp": ("verdicts.MARGINS", STATS), f"{m['time']:.0%}": ("verdicts.MARGINS", STATS),
            f"{m['memory']:.0%}": ("verdicts.MARGINS", STATS), f"{stats.POWER:.0%}": ("stats.POWER", STATS),
            f"{stats.LEVEL:.0%}": ("stats.LEVEL", STATS), f"{(1 - stats.LEVEL) / 2:.1%}": ("one side of stats.LEVEL", STATS),
            f"{stats.order_statistic_confidence(3, 1):.0%}": ("stats.order_statistic_confidence(3, 1)", STATS),
            f"{stats.order_statistic_confidence(5, 1):.2%}": ("stats.order_statistic_confidence(5, 1)", STATS),
            f"{process.FOREIGN_LOAD_LIMIT:g}": ("process.FOREIGN_LOAD_LIMIT", STATS),
            f"{coordination.GRACE_S} s": ("coordination.GRACE_S", ("solutions/07", "exercises/07", *GUIDE)),
            f"{gpu_check.MF_PEAK_FRACTION:.0%}": ("gpu_check.MF_PEAK_FRACTION", ("README.md",)),
            f"{budgets[-1] // 60} minutes": ("gpu_check.T4_BUDGET_S", ("README.md",)),
            f"{timetable.SLACK_MINUTES} minutes": ("timetable.SLACK_MINUTES", GUIDE),
            f"{train:,}": ("the sample's training images", ("README.md", *GUIDE)),
            f"{test:,}": ("its test images", ("README.md", *GUIDE)),
            f"{sample.stat().st_size / 1e6:.1f} MB": ("the sample's file size", ("README.md", *GUIDE))}


# Figures that are not measurements: each with why it may stand in prose, and where.
NOT_MEASURED = {
    "97.5%": ("the upper end of a 95% bootstrap interval, a definition (exercise 6.1)", ("solutions/06", "exercises/06")),
    "90%": ("the interval TOST usually uses, named to say the kit does not", ("solutions/06", "exercises/06", "README.md")),
    "1.3x": ("a wrong answer the common-mistakes table names; tests/test_guide.py runs it", GUIDE),
    "1000x": ("quoted from a check's message; tests/test_guide.py checks the quote", GUIDE),
    "1 J": ("a unit conversion, 1 J = 1000 mJ (exercise 5.2's hint)", ("solutions/05", "exercises/05")),
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
        sentences = SENTENCE.split(GENERATED.sub("", whole))
        for index, text in enumerate(sentences):
            if CITED.search(" ".join(sentences[max(index - 1, 0):index + 2])):   # cited here or beside it
                continue
            prose = CODE.sub(" ", text)
            for match in [*MEASURED.finditer(prose), *IN_WORDS.finditer(prose)]:
                figure = re.sub(r"\s+", " ", match.group())
                number = (re.search(r"\d[\d,]*(?:\.\d+)?", figure) or [""])[0]
                if figure in allowed and place.split("[")[0].startswith(allowed[figure][1]):
                    continue
                if len(number.replace(".", "").replace(",", "")) >= 2 and \
                        re.search(rf"(?<![\d.]){re.escape(number)}(?![\d.])", asserted):
                    continue
                found.append(f"{place}: {figure!r} in: ...{prose[max(0, match.start() - 60):match.end() + 40]}...")
    return found


def test_no_measured_number_is_typed_into_the_prose():
    found = typed_numbers()
    assert not found, f"{len(found)} typed numbers:\n" + "\n".join(found)


@pytest.mark.parametrize("text, caught", [
    ("FF took 14.5 ms per step.", True), ("MF used 3.2x the energy.", True), ("the file is 7.7 MB", True),
    ("on 54,000 images", True), ("MF was twice as fast as BP.", True), ("it took 14 milliseconds", True),
    ("it drew 35 mJ", True), ("at 161.2 GFLOP/s", True), ("a gap of -1.29 pp", True), ("three times slower", True),
    ("3.2-3.8x the energy", True), ("MF used $3.2\\times$ the energy.", True),
    ("FF took 14.5 ms. The README has more.", True),
    ("MF used 3.2x the energy (Section 4.3).", False), ("**Time:** about 20 minutes.", False),
    ("`EPOCHS = 20`", False), ("three seeds", False), ("layer 2 of 3", False),
    ("a difference of twice the margin", False), ("$B \\times C$ floats", False)])
def test_the_scan_finds_typed_measurements_and_spares_cited_generated_and_code(text, caught, monkeypatch):
    monkeypatch.setattr(__import__(__name__), "paragraphs", lambda: iter([("x", text, "")]))
    assert bool(typed_numbers()) == caught
