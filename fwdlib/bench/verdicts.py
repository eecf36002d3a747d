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
5%. ESTIMATED energy (a multiple of time) is shown, never tested. A claim of the study is judged
only on a run of the study's own configuration (the paper presets); any other run's row says that
its outcome is about this run only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import stats
from .plan import spec_of
from .presets import PRESETS
from .spec import RunSpec
from .study import STUDY_MEMORY_DELTA, family

# The practical margins: a difference inside them is "no practical difference".
MARGINS = {"accuracy": 0.5, "time": 0.05, "energy": 0.05, "memory": 0.02}
STUDY_PRESETS = ("paper-fmnist", "paper")


@dataclass(frozen=True)
class PairedMetric:
    metric: str          # a METRICS name of the report
    label: str
    kind: str            # which margin applies
    log: bool            # compared as log-ratios (costs) or as differences (accuracy)
    better: str          # "higher" or "lower": which side favours the forward-only rival
    tested: bool = True  # False: shown with its interval, never a comparison of its own


PAIRED = (
    PairedMetric("test_acc", "accuracy difference, pp", "accuracy", False, "higher"),
    PairedMetric("train_time_s", "time ratio", "time", True, "lower"),
    PairedMetric("energy_gpu_wh", "GPU energy ratio (measured)", "energy", True, "lower"),
    PairedMetric("energy_wh", "energy ratio (measured)", "energy", True, "lower"),
    PairedMetric("energy_estimated_wh", "energy ratio (ESTIMATED)", "energy", True, "lower", tested=False),
    PairedMetric("train_memory_mib", "training memory ratio", "memory", True, "lower"),
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
    where either run was contaminated by other work on its machine (`runner.contamination`)."""
    twins = {r["spec"]["seed"]: r for r in twin_runs if r["status"] == "ok"}
    out = {}
    for pm in PAIRED:
        values = []
        for r in rival_runs:
            t = twins.get(r["spec"]["seed"])
            if r["status"] != "ok" or t is None:
                continue
            if pm.kind in ("time", "energy") and (r.get("contaminated") or t.get("contaminated")):
                continue
            mine, theirs = read[pm.metric](r), read[pm.metric](t)
            if mine is not None and theirs:
                values.append(mine / theirs if pm.log else mine - theirs)
        item = {"label": pm.label, "kind": pm.kind, "better": pm.better, "n": len(values), "tested": pm.tested,
                "margin": margin_text(pm.kind, margins), "estimate": None, "lo": None, "hi": None}
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


def study_configuration(spec: RunSpec) -> str | None:
    """None when `spec` is how a paper preset runs its entry (seed, device and execution mode
    aside); otherwise why its outcome is about this run only."""
    if spec.entry.variant:
        return "the kit's variant, not the study's entry"
    reasons = []
    for name in STUDY_PRESETS:
        if spec.dataset not in PRESETS[name].pairs:
            continue
        try:
            theirs = spec_of(PRESETS[name], spec.dataset, spec.entry)
        except ValueError:
            continue
        diffs = spec.replace(seed=0, device="cpu", cuda_graphs=True).differences(theirs)
        if not diffs:
            return None
        names = [d.split(":")[0] for d in diffs]
        reasons.append(f"{name} runs it with other {', '.join(names[:4])}" + (", ..." if len(names) > 4 else ""))
    return reasons[0] if reasons else f"the study did not run on {spec.dataset}"


@dataclass(frozen=True)
class Claim:
    name: str
    metric: str
    source: str                    # where in the paper the claim is made

    def study_way(self, dataset: str, entry, mine, twin) -> tuple[str, str] | None:
        """("rival better" or "twin better", the study's figure) for a rival and its twin's
        published rows, or None when the study published no figure for it."""
        if self.metric == "test_acc":
            diff = mine.acc - twin.acc
            return ("rival better" if diff > 0 else "twin better"), f"{diff:+.2f} pp"
        if self.metric == "train_memory_mib":
            delta = STUDY_MEMORY_DELTA.get((family(dataset), entry.study))
            if delta is None:
                return None
            return ("rival better" if delta < 0 else "twin better"), f"{delta:+.2f}% (NVML device-wide peak)"
        ratio = mine.time_s / twin.time_s if self.metric == "train_time_s" else mine.energy_wh / twin.energy_wh
        return ("rival better" if ratio < 1 else "twin better"), f"x{ratio:.2f}"


ABSTRACT = "Spyra & Dzwinel 2025 (arXiv 2511.01061)"
CLAIMS = (
    Claim("accuracy", "test_acc", f"{ABSTRACT}, abstract: MF 'consistently surpasses an optimally tuned BP "
          "baseline in classification accuracy' on MLPs; per pair: the results table's test accuracy "
          "(mean of 3 runs)"),
    Claim("training time", "train_time_s", f"{ABSTRACT}, abstract: 'up to 34% faster training' (MF); per "
          "pair: the results table's training time"),
    Claim("GPU energy", "energy_gpu_wh", f"{ABSTRACT}, abstract: 'up to 41% less energy consumption' (MF); "
          "per pair: the results table's GPU energy (NVML, 5 Hz)"),
    Claim("training memory", "train_memory_mib", f"{ABSTRACT}, abstract: 'a critical re-evaluation of memory "
          "efficiency in BP-free methods, empirically demonstrating that practical overhead can offset "
          "theoretical gains'; per pair: its peak-memory change against the twin (NVML device-wide 'used', "
          "CUDA context included; here: the training step's tensors)"),
)
CLAIM_RULE = ("supported / contradicted: the paired 95% interval lies wholly beyond the margin in the study's "
              "direction / the other; equivalent: wholly inside the margin; inconclusive: neither. Below "
              f"{stats.MIN_DECISIVE_SEEDS} paired seeds every outcome is exploratory. Judged only on a run of "
              "the study's configuration (presets " + " and ".join(STUDY_PRESETS) + "); on any other run the "
              "outcome is about that run only")


def _claim_outcome(side: str, study_way: str) -> str:
    if side in ("equivalent", "inconclusive"):
        return side
    return "supported" if side == study_way else "contradicted"


def claims(rows: list[dict]) -> list[dict]:
    """Each claim (CLAIMS) for each rival against its twin: what the study says and where, what
    the paired seeds here say, and the outcome (CLAIM_RULE). A claim is one of the report's paired
    comparisons, already decided by `report.group_rows` in the report's one family (Holm over
    every tested comparison), so a comparison has one outcome in every table; a run that is not
    the study's configuration says its outcome is about this run only and decides no claim."""
    out, items = [], []
    for row in rows:
        if not row.get("paired") or row["study"] is None or row.get("twin_study") is None:
            continue
        not_study = study_configuration(row["spec"])
        for claim in CLAIMS:
            way = claim.study_way(row["dataset"], row["spec"].entry, row["study"], row["twin_study"])
            if way is None:
                continue
            items.append(row["paired"][claim.metric])
            out.append({"dataset": row["dataset"], "protocol": row["protocol"], "rival": row["entry"],
                        "twin": row["twin"], "claim": claim.name, "metric": items[-1]["label"],
                        "source": claim.source, "study": f"{way[0].split()[0]} better ({way[1]})",
                        "study_way": way[0], "not_study": not_study})
    for p, c in zip(items, out):
        shown = (f"{p['estimate']:.3g} [{p['lo']:.3g}, {p['hi']:.3g}]" if p["lo"] is not None
                 else "not measured here" if p["estimate"] is None else f"{p['estimate']:.3g} (1 seed)")
        outcome = outcome_text(p, lambda side, way=c["study_way"]: _claim_outcome(side, way))
        if c["not_study"]:
            outcome = f"not the study's configuration ({c['not_study']}); about this run only: {outcome}"
        c.update(here=shown, seeds=p["n"], verdict=outcome, margin=p["margin"],
                 outcome=_claim_outcome(p["outcome"], c["study_way"]) if p["decisive"] else p["outcome"],
                 decisive=p["decisive"] and not c["not_study"])
    return out


def claims_markdown(found: list[dict]) -> str:
    lines = ["| dataset | rival vs twin | claim | the study | here: paired estimate [95% interval] | margin "
             "| seeds | outcome |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c['dataset']} | {c['rival']} vs {c['twin']} | {c['claim']} ({c['metric']}) | {c['study']} | "
              f"{c['here']} | {c['margin']} | {c['seeds']} | {c['verdict']} |" for c in found]
    sources = {c["claim"]: c["source"] for c in found}
    return ("\n".join(lines) + f"\n\nRule: {CLAIM_RULE}. Interval: {METHOD}; {TOST_LEVEL}. Multiple "
            "comparisons: each claim is one of the paired comparisons above, decided once, in the report's one "
            "family (Holm's correction over every tested comparison: family-wise error 5%), so it has the same "
            "outcome in both tables.\n\nWhere each claim is made:\n"
            + "".join(f"- {name}: {src}\n" for name, src in sources.items()))
