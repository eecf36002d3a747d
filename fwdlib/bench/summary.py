"""The report's opening: at most 40 lines a reader can act on, before the tables.

One line per pair, one plain sentence per metric in it (estimate, interval, outcome, and what
would settle it when nothing is settled yet); one line saying whether the run is the study's
configuration, instead of a qualifier in every row; how many runs other work contaminated; the
claims' outcomes counted. `make bench` prints it with the report's path.
"""
from __future__ import annotations

from pathlib import Path

from ..meters.process import FOREIGN_CPU_FLOOR_S, FOREIGN_LOAD_LIMIT, contamination
from . import stats, verdicts
from .claims import OFFSET
from .plan import REVISION_PRESETS, STUDY_PRESETS

MAX_LINES = 40
TABLES = "## The tables"          # where the summary ends in report.md


def pair_line(row: dict, rows: list[dict]) -> str:
    """One pair: a sentence per tested metric that was measured."""
    sentences, n = [], max((p["n"] for p in row["paired"].values()), default=0)
    for pm in verdicts.PAIRED:
        item = row["paired"][pm.metric]
        if pm.tested and item["estimate"] is None and item["left_out"]:
            sentences.append(f"{pm.noun[0].upper()}{pm.noun[1:]} {item['text']}.")
        if not pm.tested or item["estimate"] is None:
            continue
        sentences.append(f"{pm.noun[0].upper()}{pm.noun[1:]} {verdicts.value_text(item)}: {item['text']}.")
    return (f"- **{row['entry']} vs {row['twin']}** ({verdicts.where(row, rows)}, {n} paired seed{'s' * (n != 1)}): "
            + " ".join(sentences))


def configuration_line(found: list[dict]) -> str:
    """Whether the run is the study's configuration, said once for every claim row."""
    outside = [c for c in found if c["not_study"]]
    if found and all(c["revision_run"] for c in found if "+" not in c["rival"]):
        return ("This run is the 2026 revision's stopping rule on the study's pairs (presets " + " / ".join(
            REVISION_PRESETS) + "; v1's tuning): set it against the claims table's revision column; it decides "
            "no claim of v1.")
    if found and not outside:
        return ("This run is the study's configuration (presets " + " / ".join(STUDY_PRESETS) + "): its outcomes "
                "judge the paper's claims.")
    if outside and len(outside) < len(found):
        return "Part of this run is the study's configuration; the claims table marks the rest (about this run only)."
    why = "; ".join(sorted({c["not_study"] for c in outside})) or "the paper has no figure for any pair of it"
    return f"This run is not the study's configuration ({why}): every outcome below is about this run only."


def machines_line(rows: list[dict]) -> list[str]:
    """How many machines, of which kinds, made the report's runs."""
    kinds = sorted({k for r in rows for k in r["machines"]})
    hosts = {h for r in rows for h in r["hosts"]}
    if not kinds:
        return []
    return [f"Runs from {len(hosts)} machine(s) of {len(kinds)} kind(s): " + "; ".join(kinds) + ".", ""]


def runs_line(records: list[dict]) -> str:
    ok = [r for r in records if r["status"] == "ok"]
    spoiled = [r for r in ok if contamination(r)]
    loads = sorted(r["foreign_load"] for r in ok if r.get("foreign_load") is not None)
    unknown = len(ok) - len(loads)
    text = f"{len(records)} runs, {len(ok)} finished, {len(records) - len(ok)} failed. "
    if loads:
        text += (f"Other work on the machine's CPUs during a run: median {loads[len(loads) // 2]:.2f} cores, "
                 f"at most {loads[-1]:.2f}. ")
    rule = (f"foreign load above {FOREIGN_LOAD_LIMIT} cores for at least {FOREIGN_CPU_FLOOR_S} CPU-seconds")
    if spoiled:
        text += (f"{len(spoiled)} contaminated by other work on the machine ({rule}): left out of time and "
                 "energy; rerun them with --rerun-contaminated.")
    else:
        text += f"None contaminated by other work ({rule})."
    short = sum((r.get("foreign_load") or 0) > FOREIGN_LOAD_LIMIT and not contamination(r) for r in ok)
    if short:
        text += f" {short} run(s) above that load were too short to judge (10 ms ticks)."
    if unknown:
        text += f" {unknown} run(s) recorded no load (from before runs measured it)."
    return text


def claims_line(found: list[dict]) -> str:
    """The claims' outcomes counted: those about the study's configuration, which decide."""
    if not found:
        return "The paper makes no claim about these pairs."
    judged = [c for c in found if not c["not_study"]]
    counts: dict[str, int] = {}
    for c in judged:
        key = c["outcome"] if c["decisive"] or c["outcome"] == "nothing to offset" else "not decided"
        counts[key] = counts.get(key, 0) + 1
    text = (f"The paper's claims: {len(found)} rows (its sentence about the pair, or its Appendix A row, with "
            f"the place), {len(judged)} of them on the study's configuration")
    text += (": " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) + "." if judged
             else "; none is decided by this run.")
    # the study's entries only (a kit variant repeats its entry's claims), memory aside (not comparable)
    revised = [c for c in found if "+" not in c["rival"] and c["says"] != OFFSET
               and not c["revision"].startswith("no figure")]
    if revised:
        changed = sum("the revision changes this claim" in c["revision"] for c in revised)
        text += (f" The authors' 2026 revision gives figures for {len(revised)} of these claims: it changes "
                 f"{changed} of them (the table's revision column).")
    return text


def summary(rows: list[dict], records: list[dict], found: list[dict], title: str) -> list[str]:
    """The summary's lines (at most MAX_LINES)."""
    family = sum(p["p"] is not None and p["comparison"].n >= stats.MIN_DECISIVE_SEEDS
                 for r in verdicts.comparisons(rows) for p in r["paired"].values())
    margins = {p["kind"]: p["margin"] for r in verdicts.comparisons(rows) for p in r["paired"].values()}
    head = [f"# fwdlib benchmark: {title}", "", "## Summary", "", configuration_line(found), "",
            *machines_line(rows), *([runs_line(records), ""] if records else []),
            "Paired by seed: the rival against its twin, 95% interval; margins " + ", ".join(
                f"{k} {v}" for k, v in margins.items()) + ("; " + (f"one Holm family of {family} tested comparisons "
                "(the claims' included)." if family else f"nothing is tested yet: no pair has {stats.MIN_DECISIVE_SEEDS} "
                "paired seeds.")), ""]
    pairs = [pair_line(r, rows) for r in verdicts.comparisons(rows)]
    tail = ["", claims_line(found), "", "Figures: `paired_<metric>.png` (each pair's estimate and interval, the "
            "margin shaded, the paper's figure marked). The tables follow.", ""]
    room = MAX_LINES - len(head) - len(tail)
    if len(pairs) > room:
        pairs = pairs[:room - 1] + [f"- ... and {len(pairs) - room + 1} more pairs: see the paired table below."]
    return head + pairs + tail


def summary_of(out: Path) -> str:
    """The summary of the report in `out`."""
    text = (Path(out) / "report.md").read_text()
    return text.split(TABLES, 1)[0].rstrip() + "\n"


def printout(out: Path) -> str:
    """What a finished benchmark prints (`make bench`, --report-only, a pooled worker): the
    summary and where the whole report is."""
    return summary_of(out) + f"full report: {Path(out) / 'report.md'} (tables, report.csv and figures beside it)"
