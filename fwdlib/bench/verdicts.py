"""Verdicts: each rival against its twin, paired by seed, judged against a margin stated up front.

Per seed the rival's value is set against its twin's of the same seed: the accuracy difference in
percentage points, the time, energy and memory ratios (on the log scale). `stats.compare` gives
the Student t interval of those paired values; the outcome reads it against the metric's margin:

    rival better / twin better   the 95% interval lies wholly beyond the margin on that side
    equivalent                   it lies wholly inside (-margin, +margin): two one-sided tests
    inconclusive                 anything else, with the paired seeds at which it would be
                                 decided with 80% probability (stats.seeds_to_decide: a power
                                 calculation at the estimate and spread seen, at Holm's strictest
                                 level for the family, never below the 5-seed floor)

Below stats.MIN_DECISIVE_SEEDS paired seeds every outcome is exploratory. The tested outcomes of
one report are one family, the claims of the study included (each claim is one of these
comparisons, decided once): Holm's correction keeps the report's chance of any false decision at
5%. ESTIMATED energy (a multiple of time) is shown, never tested. The study's claims read these
outcomes (`claims`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..meters.process import contamination
from ..typed import ReadsAsMapping
from . import stats

# The practical margins: a difference inside them is "no practical difference".
MARGINS = {"accuracy": 0.5, "time": 0.05, "energy": 0.05, "memory": 0.02}


@dataclass(frozen=True)
class PairedMetric:
    metric: str          # a METRICS name of the report
    label: str
    kind: str            # which margin applies
    log: bool            # compared as log-ratios (costs) or as differences (accuracy)
    better: str          # "higher" or "lower": which side favours the forward-only rival
    noun: str            # what it is, in a sentence
    tested: bool = True  # False: shown with its interval, never a comparison of its own


PAIRED = (
    PairedMetric("test_acc", "accuracy difference, pp", "accuracy", False, "higher", "accuracy"),
    PairedMetric("train_time_s", "time ratio", "time", True, "lower", "training time"),
    PairedMetric("energy_gpu_wh", "GPU energy ratio (measured)", "energy", True, "lower", "GPU energy"),
    PairedMetric("energy_wh", "energy ratio (measured)", "energy", True, "lower", "energy (GPU + CPU packages)"),
    PairedMetric("energy_estimated_wh", "energy ratio (ESTIMATED)", "energy", True, "lower", "ESTIMATED energy",
                 tested=False),
    PairedMetric("train_memory_mib", "training memory ratio", "memory", True, "lower", "training memory"),
)
METHOD = (f"Student t {stats.LEVEL:.0%} interval of the paired values (accuracy: differences in pp; time, energy, "
          "memory: log-ratios, shown back-transformed as a geometric-mean ratio)")
# Why one 95% interval decides equivalence too: TOST's convention is a 90% interval (5% per one-sided
# test); one interval for every outcome keeps each comparison's chance of a false decision at 5%
# whichever way it is decided, and makes "equivalent" exactly as hard to reach as a difference.
TOST_LEVEL = ("equivalence is the two one-sided tests at 2.5% each (the same 95% interval decides every outcome; "
              "TOST's usual 90% interval, 5% per side, would make equivalence easier to claim than a difference)")
UNTESTED = ("shown, not tested: ESTIMATED energy is CodeCarbon's TDP model, a multiple of time, so testing it "
            "would count the time comparison twice")


def margin_text(kind: str, margins: dict) -> str:
    m = margins[kind]
    return f"{m:g} pp" if kind == "accuracy" else f"{m:.0%}"


def parse_margins(text: str | None) -> dict:
    """`accuracy=1,time=0.1` over the defaults; a clear error for anything else."""
    margins = dict(MARGINS)
    for item in filter(None, (text or "").split(",")):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in MARGINS:
            raise ValueError(f"unknown margin {name!r} in --margins; choose from {', '.join(MARGINS)} "
                             f"(e.g. --margins accuracy=0.5,time=0.05)")
        try:
            margins[name] = float(value)
        except ValueError:
            raise ValueError(f"--margins {name}={value!r} is not a number; accuracy in pp, the others as "
                             "fractions (0.05 = 5%)") from None
        if not 0 < margins[name] < math.inf:
            raise ValueError(f"--margins {name} must be a positive number, got {value}")
    return margins


@dataclass(frozen=True, eq=False)
class Verdict(ReadsAsMapping):
    """One rival against its twin on one metric: the paired values' comparison (`paired`) and,
    once the report's family is decided (`decide`), its outcome."""
    label: str
    kind: str                     # which margin applies
    better: str                   # "higher" or "lower": the side that favours the rival
    n: int                        # paired seeds
    tested: bool
    margin: str                   # the margin in words ("0.5 pp", "5%")
    margin_value: float
    estimate: float | None = None
    lo: float | None = None
    hi: float | None = None
    comparison: stats.Comparison | None = None
    # decided over the report's family (decide): rival better, twin better, equivalent, inconclusive,
    # exploratory, not tested or not measured; where the interval points; Holm's note; in words
    outcome: str | None = None
    side: str | None = None
    decisive: bool = False
    p: float | None = None
    seeds_needed: int | None = None
    holm: str | None = None
    text: str | None = None
    left_out: int = 0             # paired seeds whose time or energy other work spoiled (contamination)

    @classmethod
    def of(cls, comparison: stats.Comparison, better: str, kind: str = "accuracy") -> Verdict:
        """One comparison on its own, ready for `decide` (a simulation of many studies)."""
        lo, hi = comparison.interval
        return cls(kind, kind, better, comparison.n, True, margin_text(kind, {kind: comparison.margin}),
                   comparison.margin, comparison.estimate, None if math.isnan(lo) else lo,
                   None if math.isnan(hi) else hi, comparison)


def paired(rival_runs: list, twin_runs: list, read: dict, margins: dict) -> dict[str, Verdict]:
    """Per PAIRED metric: the per-seed values (rival against the twin's run of the same seed) and
    their comparison with the margin, ready for `decide`. Time and energy leave out the seeds
    where either run was contaminated by other work on its machine (`meters.process.contamination`)."""
    twins = {r["spec"]["seed"]: r for r in twin_runs if r["status"] == "ok"}
    out = {}
    for pm in PAIRED:
        values, spoiled = [], 0
        for r in rival_runs:
            t = twins.get(r["spec"]["seed"])
            if r["status"] != "ok" or t is None:
                continue
            if pm.kind in ("time", "energy") and (contamination(r) or contamination(t)):
                spoiled += 1
                continue
            mine, theirs = read[pm.metric](r), read[pm.metric](t)
            if mine is not None and theirs:
                values.append(mine / theirs if pm.log else mine - theirs)
        item = Verdict(pm.label, pm.kind, pm.better, len(values), pm.tested, margin_text(pm.kind, margins),
                       margins[pm.kind], left_out=spoiled)
        if values:
            c = stats.compare(values, margins[pm.kind], log=pm.log)
            lo, hi = c.interval
            item = item.replace(comparison=c, estimate=c.estimate, lo=None if math.isnan(lo) else lo,
                                hi=None if math.isnan(hi) else hi)
        out[pm.metric] = item
    return out


def _rival_side(side: str, better: str) -> str:
    if side in ("equivalent", "inconclusive"):
        return side
    return "rival better" if (side == "above") == (better == "higher") else "twin better"


def decide(items: list[Verdict], alpha: float = 1 - stats.LEVEL) -> list[Verdict]:
    """Each paired item decided, in the same order: its outcome (rival better, twin better,
    equivalent, inconclusive, exploratory, not tested or not measured), the side its interval
    points to, whether it is decisive, its p, the seeds that would decide it and its text. `items`
    are one family: Holm's correction runs over those that can decide (tested, enough seeds, a
    spread to test)."""
    sided, tests = [], []
    for item in items:
        c = item.comparison
        if c is None or not item.tested:
            sided.append(item)
            tests.append(None)
            continue
        side, p = c.p_value()
        if p is not None and p > alpha:          # the interval lies neither beyond nor inside the margin
            side = "inconclusive"
        sided.append(item.replace(side=_rival_side(side, item.better), p=p))
        tests.append(p if c.n >= stats.MIN_DECISIVE_SEEDS else None)
    rejected, family = stats.holm(tests, alpha), sum(p is not None for p in tests)
    decided = []
    for item, passed in zip(sided, rejected):
        c, holm, decisive = item.comparison, None, False
        # at Holm's first, strictest step: the level a comparison of this family must pass
        needed = (stats.seeds_to_decide(c.mean, c.sd, c.margin, alpha / max(1, family))
                  if c is not None and not c.deterministic and item.tested else None)
        if c is None:
            outcome = "not measured"
        elif not item.tested:
            outcome = "not tested"
        elif c.n < stats.MIN_DECISIVE_SEEDS:
            outcome = "exploratory"
        elif c.deterministic or (passed and item.side != "inconclusive"):
            outcome, decisive = item.side, True
        else:
            outcome = "inconclusive"
            if item.p is not None and item.p <= alpha:      # decisive on its own, not within the family
                holm = f"Holm: p {item.p:.3g} above its threshold in a family of {family}"
        item = item.replace(outcome=outcome, decisive=decisive, seeds_needed=needed, holm=holm)
        decided.append(item.replace(text=outcome_text(item)))
    return decided


def left_out_text(item: Verdict) -> str:
    """Why a comparison has no values: none measured, or every paired seed spoiled by other work."""
    spoiled = item.get("left_out", 0)
    return (f"left out: other work on the machine spoiled {spoiled} paired seed(s) (--rerun-contaminated runs "
            "them again)" if spoiled else "not measured")


def outcome_text(item: Verdict, name=lambda side: side) -> str:
    """The outcome in words; `name` renames a side (the claims table says supported/contradicted)."""
    c, outcome = item.get("comparison"), item["outcome"]
    if c is None:
        return left_out_text(item)
    if outcome == "not tested":
        return UNTESTED
    needed = item["seeds_needed"]
    more = (f"; about {needed} paired seeds would decide it with {stats.POWER:.0%} probability"
            if needed and needed > c.n else "")
    if outcome == "exploratory":
        lean = "no interval from 1 seed" if c.n < 2 else f"the interval says {name(item['side'])}"
        if item["side"] not in (None, "inconclusive"):
            lean += f", and only the {stats.MIN_DECISIVE_SEEDS}-seed floor holds the decision back"
        return f"exploratory ({c.n} of {stats.MIN_DECISIVE_SEEDS} seeds; {lean}){more}"
    if outcome == "inconclusive":
        holm = f" ({item['holm']})" if item["holm"] else ""
        return f"inconclusive{holm}{more}"
    return name(outcome) + (" (identical across seeds: compared by value)" if c.deterministic else "")


def comparisons(rows: list[dict]) -> list[dict]:
    """Every rival against every twin it has: each rival's row, then its rows against its other
    twins (`also`: a checkpointed twin)."""
    return [c for r in rows for c in ((r,) if r.get("paired") else ()) + tuple(r.get("also", ()))]


def where(row: dict, rows: list[dict]) -> str:
    """A pair's dataset, with its protocol and device where the report holds more than one."""
    protocols, devices = {r["protocol"] for r in rows}, {r["device"] for r in rows}
    return ", ".join([row["dataset"]] + ([row["protocol"]] if len(protocols) > 1 else [])
                     + ([row["device"]] if len(devices) > 1 else []))


def value_text(item: Verdict) -> str:
    """An estimate with its interval as the metric reads: +0.29 pp [+0.04, +0.53] or x1.18 [1.05, 1.32];
    a value identical across seeds has no interval."""
    if item["estimate"] is None:
        return left_out_text(item)
    accuracy = item["kind"] == "accuracy"
    fmt = (lambda v: f"{v:+.2f}") if accuracy else (lambda v: f"{v:.3g}")
    text = fmt(item["estimate"]) + " pp" if accuracy else "x" + fmt(item["estimate"])
    c = item.get("comparison")
    if item["lo"] is not None and not (c is not None and c.deterministic):
        text += f" [{fmt(item['lo'])}, {fmt(item['hi'])}]"
    return text
