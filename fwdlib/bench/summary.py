"""The report's opening: at most 40 lines a reader can act on, before the tables.

One line per pair, one plain sentence per metric in it (estimate, interval, outcome, and what
would settle it when nothing is settled yet); one line saying whether the run is the study's
configuration, instead of a qualifier in every row; how many runs other work contaminated; the
claims' outcomes counted. `make bench` prints it with the report's path.
"""
from __future__ import annotations

from pathlib import Path

from ..meters.process import FOREIGN_LOAD_LIMIT, contamination
from . import stats, verdicts
from .claims import STUDY_PRESETS

MAX_LINES = 40
TABLES = "## The tables"          # where the summary ends in report.md


def pair_line(row: dict) -> str:
    """One pair: a sentence per tested metric that was measured."""
    sentences, n = [], max((p["n"] for p in row["paired"].values()), default=0)
    for pm in verdicts.PAIRED:
        item = row["paired"][pm.metric]
        if not pm.tested or item["estimate"] is None:
            continue
        sentences.append(f"{pm.noun.capitalize()} {verdicts.value_text(item)}: {item['text']}.")
    return (f"- **{row['entry']} vs {row['twin']}** ({row['dataset']}, {n} paired seed{'s' * (n != 1)}): "
            + " ".join(sentences))


def configuration_line(found: list[dict]) -> str:
    """Whether the run is the study's configuration, said once for every claim row."""
    outside = [c for c in found if c["not_study"]]
    if found and not outside:
        return ("This run is the study's configuration (presets " + " / ".join(STUDY_PRESETS) + "): its outcomes "
                "judge the paper's claims.")
    if outside and len(outside) < len(found):
        return "Part of this run is the study's configuration; the claims table marks the rest (about this run only)."
    why = "; ".join(sorted({c["not_study"] for c in outside})) or "the paper has no figure for any pair of it"
    return f"This run is not the study's configuration ({why}): every outcome below is about this run only."


def runs_line(records: list[dict]) -> str:
    ok = [r for r in records if r["status"] == "ok"]
    spoiled = [r for r in ok if contamination(r)]
    loads = sorted(r["foreign_load"] for r in ok if r.get("foreign_load") is not None)
    unknown = len(ok) - len(loads)
    text = f"{len(records)} runs, {len(ok)} finished, {len(records) - len(ok)} failed. "
    if loads:
        text += (f"Other work on the machine's CPUs during a run: median {loads[len(loads) // 2]:.2f} cores, "
                 f"at most {loads[-1]:.2f}. ")
    if spoiled:
        text += (f"{len(spoiled)} contaminated by other work on the machine (foreign load above "
                 f"{FOREIGN_LOAD_LIMIT} cores): left out of time and energy; rerun them with --rerun-contaminated.")
    else:
        text += f"None contaminated by other work (foreign load at most {FOREIGN_LOAD_LIMIT} cores)"
        text += f"; {unknown} did not record it." if unknown else "."
    return text


def claims_line(found: list[dict]) -> str:
    if not found:
        return "The paper makes no claim about these pairs."
    counts: dict[str, int] = {}
    for c in found:
        counts[c["outcome"] if c["decisive"] else "not decided"] = counts.get(
            c["outcome"] if c["decisive"] else "not decided", 0) + 1
    return (f"The paper's claims ({len(found)}, each quoted with its place): "
            + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) + ".")


def summary(rows: list[dict], records: list[dict], found: list[dict], title: str) -> list[str]:
    """The summary's lines (at most MAX_LINES)."""
    family = sum(p["p"] is not None and p["comparison"].n >= stats.MIN_DECISIVE_SEEDS
                 for r in rows for p in r.get("paired", {}).values())
    margins = {p["kind"]: p["margin"] for r in rows for p in r.get("paired", {}).values()}
    head = [f"# fwdlib benchmark: {title}", "", "## Summary", "", configuration_line(found), "",
            *([runs_line(records), ""] if records else []),
            "Paired by seed: the rival against its twin, 95% interval; margins " + ", ".join(
                f"{k} {v}" for k, v in margins.items()) + ("; " + (f"one Holm family of {family} tested comparisons "
                "(the claims' included)." if family else f"nothing is tested yet: no pair has {stats.MIN_DECISIVE_SEEDS} "
                "paired seeds.")), ""]
    pairs = [pair_line(r) for r in rows if r.get("paired")]
    tail = ["", claims_line(found), "", "Figures: `paired_<metric>.png` (each pair's estimate and interval, the "
            "margin shaded, the paper's figure marked). The tables follow.", ""]
    room = MAX_LINES - len(head) - len(tail)
    if len(pairs) > room:
        pairs = pairs[:room - 1] + [f"- ... and {len(pairs) - room + 1} more pairs: see the paired table below."]
    return head + pairs + tail


def summary_of(out: Path) -> str:
    """The summary of the report in `out` (what `make bench` prints)."""
    text = (Path(out) / "report.md").read_text()
    return text.split(TABLES, 1)[0].rstrip() + "\n"
