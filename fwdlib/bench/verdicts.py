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


def paired(rival_runs: list[dict], twin_runs: list[dict], read: dict, margins: dict) -> dict:
    """Per PAIRED metric: the per-seed values (rival against the twin's run of the same seed),
    their comparison with the margin, ready for `decide`. Time and energy leave out the seeds
    where either run was contaminated by other work on its machine (`meters.process.contamination`)."""
    twins = {r["spec"]["seed"]: r for r in twin_runs if r["status"] == "ok"}
    out = {}
    for pm in PAIRED:
        values = []
        for r in rival_runs:
            t = twins.get(r["spec"]["seed"])
            if r["status"] != "ok" or t is None:
                continue
            if pm.kind in ("time", "energy") and (contamination(r) or contamination(t)):
                continue
            mine, theirs = read[pm.metric](r), read[pm.metric](t)
            if mine is not None and theirs:
                values.append(mine / theirs if pm.log else mine - theirs)
        item = {"label": pm.label, "kind": pm.kind, "better": pm.better, "n": len(values), "tested": pm.tested,
                "margin": margin_text(pm.kind, margins), "margin_value": margins[pm.kind], "estimate": None,
                "lo": None, "hi": None}
        if values:
            c = stats.compare(values, margins[pm.kind], log=pm.log)
            lo, hi = c.interval
            item.update(comparison=c, estimate=c.estimate, lo=None if math.isnan(lo) else lo,
                        hi=None if math.isnan(hi) else hi)
        out[pm.metric] = item
    return out


def _rival_side(side: str, better: str) -> str:
    if side in ("equivalent", "inconclusive"):
        return side
    return "rival better" if (side == "above") == (better == "higher") else "twin better"


def decide(items: list[dict], alpha: float = 1 - stats.LEVEL) -> None:
    """Give each paired item its outcome (in place): "outcome" (rival better, twin better,
    equivalent, inconclusive, exploratory, not tested or not measured), "side" (where its interval
    points), "decisive", "p", "seeds_needed" and "text". `items` are one family: Holm's correction
    runs over those that can decide (tested, enough seeds, a spread to test)."""
    tests = []
    for item in items:
        c = item.get("comparison")
        item.update(decisive=False, seeds_needed=None, p=None, side=None, holm=None)
        if c is None or not item.get("tested", True):
            tests.append(None)
            continue
        side, p = c.p_value()
        if p is not None and p > alpha:          # the interval lies neither beyond nor inside the margin
            side = "inconclusive"
        item.update(side=_rival_side(side, item["better"]), p=p)
        tests.append(p if c.n >= stats.MIN_DECISIVE_SEEDS else None)
    rejected, family = stats.holm(tests, alpha), sum(p is not None for p in tests)
    for item, passed in zip(items, rejected):
        c = item.get("comparison")
        if c is not None and not c.deterministic and item.get("tested", True):
            # at Holm's first, strictest step: the level a comparison of this family must pass
            item["seeds_needed"] = stats.seeds_to_decide(c.mean, c.sd, c.margin, alpha / max(1, family))
        if c is None:
            item["outcome"] = "not measured"
        elif not item.get("tested", True):
            item["outcome"] = "not tested"
        elif c.n < stats.MIN_DECISIVE_SEEDS:
            item["outcome"] = "exploratory"
        elif c.deterministic:
            item.update(outcome=item["side"], decisive=True)
        elif passed and item["side"] != "inconclusive":
            item.update(outcome=item["side"], decisive=True)
        else:
            item["outcome"] = "inconclusive"
            if item["p"] is not None and item["p"] <= alpha:      # decisive on its own, not within the family
                item["holm"] = f"Holm: p {item['p']:.3g} above its threshold in a family of {family}"
        item["text"] = outcome_text(item)


def outcome_text(item: dict, name=lambda side: side) -> str:
    """The outcome in words; `name` renames a side (the claims table says supported/contradicted)."""
    c, outcome = item.get("comparison"), item["outcome"]
    if c is None:
        return "not measured"
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


def where(row: dict, rows: list[dict]) -> str:
    """A pair's dataset, with its protocol and device where the report holds more than one."""
    protocols, devices = {r["protocol"] for r in rows}, {r["device"] for r in rows}
    return ", ".join([row["dataset"]] + ([row["protocol"]] if len(protocols) > 1 else [])
                     + ([row["device"]] if len(devices) > 1 else []))


def value_text(item: dict) -> str:
    """An estimate with its interval as the metric reads: +0.29 pp [+0.04, +0.53] or x1.18 [1.05, 1.32];
    a value identical across seeds has no interval."""
    if item["estimate"] is None:
        return "not measured"
    accuracy = item["kind"] == "accuracy"
    fmt = (lambda v: f"{v:+.2f}") if accuracy else (lambda v: f"{v:.3g}")
    text = fmt(item["estimate"]) + " pp" if accuracy else "x" + fmt(item["estimate"])
    c = item.get("comparison")
    if item["lo"] is not None and not (c is not None and c.deterministic):
        text += f" [{fmt(item['lo'])}, {fmt(item['hi'])}]"
    return text
