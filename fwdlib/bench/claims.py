"""The study's claims in its own words, each judged in the scope and size it states.

Every claim row quotes a sentence of arXiv 2511.01061 v1 (the study's LaTeX source: `study`) and
gives its place, and is judged only on the pairs the sentence is about: "up to 34% faster" is the
CIFAR-10 MLP pair's (Section 4.3: "33.81% faster"), not Fashion-MNIST's, where Section 4.3 says MF
is slower (+18%). A pair no sentence speaks of is judged on its row of Appendix A. What the words
say, and what supports them:

    rival better / twin better   the pair's paired comparison (`verdicts`: decided once, in the
                                 report's one Holm family) decided that way; decided the other way
                                 contradicts it; decided inside the margin reads "equivalent"
    not worse                    "competitive": rival better or equivalent supports it
    no practical difference      an Appendix A figure inside the kit's margin (no sentence gives a
                                 direction, and none is read into a figure within the margin)
    overhead offsets the gain    memory (`memory_claim`): the saving measured against the saving
                                 computed from the activations the rival need not keep

The size is the paper's figure for that pair (Appendix A; Tables 1-2 where it prints the pair),
set against the interval here: inside it, or above or below. Only a run of the study's own
configuration (the paper presets) decides a claim; the report says once when it is not one.

Beside v1, each row gives the authors' 2026 revision (`study.REVISION`: one stopping rule for every
algorithm, BP tuned independently, 5-122 seeds): its figure for the pair where it prints one, read
against the same margin, with v1's beside it and, where it reads otherwise, the cause it states.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .study import (CHANGE_FIELDS, study_entry, PAPER_CHANGES, REVISION, REVISION_ABSTRACT, REVISION_SAYS, REVISION_SOURCE,
                    REVISION_STOPPING, family, readme_differences, revised_change)
from .stats import MIN_DECISIVE_SEEDS
from ..typed import ReadsAsMapping
from ..runs.entry import Entry
from .verdicts import PAIRED, comparisons, outcome_text, where, value_text as verdicts_value

ARXIV = "arXiv 2511.01061 v1"
OVERHEAD = ("abstract: 'practical overhead can offset theoretical gains'; Section 5.2: 'the practical overhead "
            "of the algorithms' unique components (e.g., FF's dual data streams, MF's projection matrices) can "
            "counteract the theoretical savings from not storing activations'")


@dataclass(frozen=True)
class Claim:
    rival: str                       # the study's rival entry ("mf", "cafo-rand")
    metric: str                      # a verdicts.PAIRED metric
    says: str                        # rival better, twin better, not worse, no practical difference,
                                     # overhead offsets the gain
    words: str                       # the paper's sentence (or its Appendix A figure)
    place: str                       # where in arXiv 2511.01061 v1
    datasets: tuple[str, ...] = ()   # the scope the sentence states; () every dataset of the rival
    sentence: bool = True            # False: no sentence speaks of the pair, its Appendix A figure does


# The memory claim, as the abstract makes it; each algorithm's row cites what the paper says of it
# (its NVML figures lie mostly inside the 2% margin, so no direction of its own is judged).
OVERHEAD_WORDS = "practical overhead can offset theoretical gains"
ABOVE, BELOW, NONE, NOT_WORSE, OFFSET = ("rival better", "twin better", "no practical difference", "not worse",
                                         "overhead offsets the gain")
# The most specific sentence first: the first that covers a pair is its claim.
CLAIMS = (
    Claim("mf", "train_time_s", ABOVE, "up to 34% faster training", "abstract; Section 4.3: 'MF was 33.81% "
          "faster' (Table 2)", ("cifar10",)),
    Claim("mf", "energy_gpu_wh", ABOVE, "up to 41% less energy consumption", "abstract; Section 4.3: 'consumed "
          "40.78% less energy' (Table 2)", ("cifar10",)),
    Claim("mf", "train_time_s", BELOW, "MF achieved superior accuracy by incurring a minor increase in training "
          "time (+18%) and energy (+10%)", "Section 4.3", ("fashion_mnist",)),
    Claim("mf", "energy_gpu_wh", BELOW, "MF achieved superior accuracy by incurring a minor increase in training "
          "time (+18%) and energy (+10%)", "Section 4.3", ("fashion_mnist",)),
    Claim("mf", "test_acc", ABOVE, "a significant +0.51 percentage point gain on Fashion-MNIST", "Section 4.3",
          ("fashion_mnist",)),
    Claim("mf", "test_acc", ABOVE, "a +1.21 percentage point lead on the more complex CIFAR-10 task",
          "Section 4.3 (Table 2)", ("cifar10",)),
    Claim("mf", "test_acc", ABOVE, "MF ... consistently surpasses an optimally tuned BP baseline in "
          "classification accuracy on its native Multi-Layer Perceptron (MLP) architectures", "abstract"),
    Claim("mf", "train_memory_mib", OFFSET, OVERHEAD_WORDS, "abstract; Section 5.2 on MF: 'Even MF's memory "
          "advantage on larger MLPs was modest at approximately 5%.'", ("cifar10", "cifar100")),
    Claim("mf", "train_memory_mib", OFFSET, OVERHEAD_WORDS, "abstract; Section 5.2"),
    Claim("ff", "test_acc", NOT_WORSE, "The experiments confirmed FF can achieve competitive accuracy on its "
          "native MLP architectures", "Section 4.1"),
    Claim("ff", "train_time_s", BELOW, "its slow, volatile convergence causing up to a 13x longer training time",
          "Section 4.1 (Table 1)"),
    Claim("ff", "energy_gpu_wh", BELOW, "and nearly 10x greater energy use", "Section 4.1 (Table 1)"),
    Claim("ff", "train_memory_mib", OFFSET, OVERHEAD_WORDS, "abstract; Section 4.1 on FF: 'FF also used slightly "
          "more peak memory than BP in the reported tests, refuting a key presumed advantage'"),
    Claim("cafo-rand", "test_acc", BELOW, "a significant 13.23 percentage points drop in accuracy on CIFAR-10",
          "Section 4.2", ("cifar10",)),
    Claim("cafo-rand", "train_time_s", ABOVE, "The CaFo-Rand-CE variant, using fixed random features, offered "
          "modest efficiency gains", "Section 4.2", ("cifar10",)),
    Claim("cafo-rand", "energy_gpu_wh", ABOVE, "The CaFo-Rand-CE variant, using fixed random features, offered "
          "modest efficiency gains", "Section 4.2", ("cifar10",)),
    Claim("cafo-rand", "train_memory_mib", OFFSET, OVERHEAD_WORDS, "abstract; Section 5.2 on CaFo-Rand: 'While "
          "CaFo-Rand showed modest memory savings'"),
    Claim("cafo-dfa", "energy_gpu_wh", BELOW, "consuming over four times more energy than BP on CIFAR-10",
          "Section 4.2", ("cifar10",)),
    Claim("cafo-dfa", "train_memory_mib", OFFSET, OVERHEAD_WORDS, "abstract; Section 5.2 on CaFo-DFA: 'both FF "
          "and CaFo-DFA consumed more memory than their BP baselines in our tests'"),
)
CLAIMED = tuple(pm.metric for pm in PAIRED if pm.metric in CHANGE_FIELDS)
NAMES = {pm.metric: pm.noun for pm in PAIRED}


def paper_figure(metric: str, change) -> float:
    """The paper's change for a pair on the kit's scale: pp for accuracy, a ratio for costs."""
    value = getattr(change, CHANGE_FIELDS[metric])
    return value if metric == "test_acc" else 1 + value / 100


def shown(metric: str, value: float) -> str:
    return f"{value:+.2f} pp" if metric == "test_acc" else f"x{value:.3g}"


def printed(metric: str, change) -> str:
    """The paper's figure as Appendix A prints it, with the kit's scale beside: +18.20% (x1.18)."""
    value = getattr(change, CHANGE_FIELDS[metric])
    return f"{value:+.2f} pp" if metric == "test_acc" else f"{value:+.2f}% (x{1 + value / 100:.3g})"


def figure_side(metric: str, figure: float, margin: float) -> str:
    """Where a figure lies against the kit's margin: the side it favours, or inside it."""
    x, m = (figure, margin) if metric == "test_acc" else (math.log(figure), math.log1p(margin))
    if metric != "test_acc":
        x = -x                       # a cost below the twin's favours the rival
    return ABOVE if x > m else BELOW if x < -m else NONE


def claim_for(dataset: str, rival: str, metric: str, margin: float) -> Claim | None:
    """The paper's claim about one pair and metric: its sentence that covers the pair, else its
    Appendix A figure (read against the margin); None when the paper has neither."""
    found = next((c for c in CLAIMS if c.rival == rival and c.metric == metric
                  and (not c.datasets or family(dataset) in c.datasets)), None)
    change = PAPER_CHANGES.get((family(dataset), rival))
    if found is not None or change is None:
        return found
    figure = paper_figure(metric, change)
    side = OFFSET if metric == "train_memory_mib" else figure_side(metric, figure, margin)
    return Claim(rival, metric, side, f"its row: {NAMES[metric]} {printed(metric, change)} against BP",
                 change.place, sentence=False)


def revision_text(metric: str, claim: Claim, revised: float | None, margin: float, n: int | None,
                  v1: float | None = None) -> str:
    """What the authors' 2026 revision says of the pair (its figure, read against the margin, and
    v1's beside it), whether that changes v1's claim, and the cause the revision gives."""
    if claim.says == OFFSET and revised is None:
        return "no figure for this pair in the revision"
    says, where = REVISION_SAYS.get((claim.rival, "accuracy" if metric == "test_acc" else "cost"), (None, None))
    if revised is None:
        return "no figure for this pair in the revision" + (f"; of {claim.rival} it says: '{says}' (revision, "
                                                            f"{where})" if says else "")
    text = f"{shown(metric, revised)} (n={n or 20})"      # without a table row: MF's accuracy, 20 seeds each
    if claim.says == OFFSET:
        return text + " per-process allocator peak, where v1 read NVML device-wide (not comparable)"
    side = figure_side(metric, revised, margin)
    before = f"v1 {shown(metric, v1)}" if v1 is not None else "v1"
    if (side != BELOW) if claim.says == NOT_WORSE else side == claim.says:
        return text + f": the revision keeps the direction ({before})"
    change = {ABOVE: "the rival better", BELOW: "the twin better", NONE: "no practical difference"}[side]
    text += f": the revision changes this claim, it finds {change} ({before})"
    if claim.rival == "mf" and metric in ("train_time_s", "energy_gpu_wh"):
        return text + f"; '{REVISION_ABSTRACT}' (revision, abstract)"
    return text + (f"; '{says}' (revision, {where})" if says else "")


def _outcome(says: str, outcome: str) -> str:
    """A decided comparison's outcome as the claim's: supported, contradicted or equivalent."""
    if says == NOT_WORSE:
        return "contradicted" if outcome == BELOW else "supported"
    if says == NONE:
        return "supported" if outcome == "equivalent" else "contradicted"
    return "equivalent" if outcome == "equivalent" else "supported" if outcome == says else "contradicted"


def size_text(metric: str, figure: float | None, item: dict) -> str:
    """The paper's figure for the pair against the interval here."""
    if figure is None:
        return "the paper prints no figure"
    if item["lo"] is None:
        return f"{shown(metric, figure)}: no interval here to set it against"
    where = ("inside" if item["lo"] <= figure <= item["hi"] else
             "above" if figure > item["hi"] else "below")
    return f"{shown(metric, figure)} lies {where} the interval here"


def memory_claim(rival: dict, twin: dict, item: dict, margin: float) -> dict:
    """Overhead against theory, on training memory. The theoretical saving is the activation
    memory the rival need not keep: the twin's tensors saved for backward less the rival's, as a
    share of the twin's training memory. The practical saving is the measured one (1 - the paired
    ratio). The gain is offset (the claim supported) when the practical saving falls short of the
    theoretical one by more than the margin, wholly when nothing beyond the margin is left; it is
    kept (contradicted) when the practical saving reaches the theoretical one within the margin.
    A theoretical saving within twice the margin is too small to tell the two apart. Read by value
    only: the kit's accounting is identical across seeds on every device, and a memory that varied
    would need a test of its own in the report's family, so it is left undecided."""
    saved = rival.get("saved_mib", {}).get("median"), twin.get("saved_mib", {}).get("median")
    total, c = twin["train_memory_mib"]["median"], item.get("comparison")
    if None in saved or not total or c is None:
        return {"outcome": "not measured", "decisive": False, "here": "not measured", "verdict": "not measured"}
    theory, extra = (saved[1] - saved[0]) / total, saved[1] - saved[0]
    ratio = item["estimate"]
    here = ((f"theory saves {theory:.1%} (the twin keeps {extra:.3g} MiB more activations)" if extra > 0 else
             f"theory saves nothing (the rival keeps {-extra:.3g} MiB more activations)")
            + f"; measured {verdicts_value(item)}: " + (f"saves {1 - ratio:.1%}" if ratio <= 1
                                                       else f"uses {ratio - 1:.1%} more"))
    undecided = {"decisive": False, "here": here}
    if theory <= 2 * margin:
        why = (f"theory saves {theory:.1%}, within twice the {margin:.0%} margin" if theory > 0 else
               "the rival keeps more activations than its twin")
        return {**undecided, "outcome": "nothing to offset", "verdict": f"nothing to offset: {why}"}
    if c.n < MIN_DECISIVE_SEEDS:
        return {**undecided, "outcome": "exploratory", "verdict": f"exploratory ({c.n} of {MIN_DECISIVE_SEEDS} seeds)"}
    if not c.deterministic:
        return {**undecided, "outcome": "inconclusive",
                "verdict": "not decided: the measured memory varies across seeds (the claim is read by value)"}
    expected, m = math.log(1 - theory), math.log1p(margin)
    if c.mean > expected + m:
        return {"outcome": "supported", "decisive": True, "here": here, "verdict": "supported: the overhead "
                "offsets " + ("the whole gain" if c.mean >= -m else "part of the gain")}
    return {"outcome": "contradicted", "decisive": True, "here": here,
            "verdict": "contradicted: the gain is kept (the measured saving reaches the theoretical one)"}


@dataclass(frozen=True, eq=False)
class Judgement(ReadsAsMapping):
    """One claim of the paper judged on one rival of the report against its twin."""
    dataset: str
    where: str                    # the dataset, with protocol and device where the report holds several
    rival: str
    twin: str
    metric: str
    claim: str                    # what is claimed, in words
    says: str                     # its side: better, worse, competitive, offset, ...
    words: str                    # the paper's own sentence (or its Appendix A row)
    sentence: bool                # a sentence of the paper, not a figure read against the margin
    place: str                    # where in the paper
    figure: float | None          # the paper's figure for the pair
    change: object                # its Appendix A row (study.PAPER_CHANGES), if any
    readme: tuple | None          # the authors' README's other figure, if it differs
    not_study: str | None         # why this run is not the study's configuration (None: it is)
    revision_run: bool            # this run is the revision's configuration
    seeds: int
    revision: str                 # what the 2026 revision says of the pair
    margin: str
    size: str                     # the paper's figure against the interval here
    outcome: str
    decisive: bool
    here: str                     # the measured value here, in words
    verdict: str                  # the outcome in the claim's words, with what would settle it


def judge(rows: list) -> list[Judgement]:
    """Each claim of the paper about each rival of the report against its twin (the rows of
    `report.group_rows`): its words and place, the paper's figure and where it comes from, the
    paired comparison here, the outcome and the size."""
    out = []
    by_entry = {(r["dataset"], r["protocol"], r["device"], r["entry"]): r for r in rows}
    for row in comparisons(rows):
        if row["study"] is None or row.get("twin_study") is None:
            continue
        # against a twin variant (a checkpointed twin) only the memory claim, and none of the paper's figures:
        # they are about its own twin; this row asks whether backprop could have saved the memory itself
        variant = Entry.parse(row["twin"]).twin_variant
        entry = row["spec"].entry
        not_study, revision_run = row["configuration"]["study"], row["configuration"]["revision"] is None
        change = None if variant else PAPER_CHANGES.get((family(row["dataset"]), study_entry(entry)))
        twin_study = study_entry(row["twin"])
        readme = readme_differences(row["dataset"], study_entry(entry), twin_study)
        twin = by_entry[(row["dataset"], row["protocol"], row["device"], row["twin"])]
        revised_n = getattr(REVISION.get((family(row["dataset"]), study_entry(entry))), "seeds", None)
        for metric in CLAIMED:
            item = row["paired"][metric]
            margin = item["margin_value"]               # the margin the comparison was decided against
            claim = claim_for(row["dataset"], study_entry(entry), metric, margin)
            if claim is None or (variant and claim.says != OFFSET):
                continue
            figure = paper_figure(metric, change) if change else None
            found = {"dataset": row["dataset"], "where": where(row, rows), "rival": row["entry"], "twin": row["twin"],
                     "metric": metric, "claim": NAMES[metric], "says": claim.says, "words": claim.words,
                     "sentence": claim.sentence, "place": claim.place, "figure": figure, "change": change,
                     "readme": readme.get(metric), "not_study": not_study, "revision_run": revision_run,
                     "seeds": item["n"],
                     "revision": f"neither version ran a {variant} twin" if variant else
                     revision_text(metric, claim, revised_change(row["dataset"], study_entry(entry), twin_study,
                                                                 metric), margin, revised_n, figure),
                     "margin": item["margin"], "size": size_text(metric, figure, item)}
            if claim.says == OFFSET:
                found.update(memory_claim(row, twin, item, margin))
                found["size"] = (f"the paper's {change.memory_pct:+.2f}% is NVML's device-wide change (CUDA "
                                 "context included): no direction is read from it" if change else "")
                if allocator := row.get("gpu_allocator_peak_mib", {}).get("ratio"):
                    found["here"] += f"; CUDA allocator peak x{allocator:.3g}"
            else:
                decided = item["decisive"]
                found.update(here=verdicts_value(item), outcome=_outcome(claim.says, item["outcome"]) if decided
                             else item["outcome"], decisive=decided,
                             verdict=_verdict(claim.says, item))
            found["decisive"] = found["decisive"] and not not_study
            out.append(Judgement(**found))
    return out


def _verdict(says: str, item: dict) -> str:
    """The comparison's outcome in the claim's words, with what would settle it."""
    return outcome_text(item, lambda side: _outcome(says, side) if side not in ("inconclusive", None) else side)


RULE = ("Each claim is the paper's own sentence about that pair (else its Appendix A figure), judged in the scope it "
        "states: supported when the pair's paired comparison is decided the way the words say, contradicted when "
        "decided the other way, equivalent when decided inside the margin (a direction claimed but no practical "
        "difference found); 'not worse' (competitive) is supported by either the rival better or equivalent; an "
        "Appendix A figure inside the margin claims no practical difference. Each comparison is the one of the table "
        "above, decided once in the report's one family (Holm), so it reads the same in both tables. Memory tests "
        "the paper's own memory claim, " + OVERHEAD + ": the theoretical saving (the activations the rival need not "
        "keep, from the tensors each saves for backward) against the measured one; offset when the measured saving "
        "falls short by more than the margin. Size: the paper's figure for the pair against the interval here")


def quoted(c: dict) -> str:
    return f"'{c['words']}'" if c["sentence"] else c["words"]


def markdown(found: list[dict]) -> str:
    """The claims table, with the rule, the sources and what differs between the paper and the README."""
    reasons = sorted({c["not_study"] for c in found if c["not_study"]})
    mixed = bool(reasons) and not all(c["not_study"] for c in found)
    lines = []
    if reasons:
        lines += [("Rows marked * are" if mixed else "**This run is**") + " not the study's configuration ("
                  + "; ".join(reasons) + "): their outcomes are about this run only; none decides a claim of the "
                  "paper.", ""]
    lines += ["| dataset | rival vs twin | claim | v1: the paper's words (place) | v1's figure | the 2026 revision "
              "| here | outcome | size |", "|---|---|---|---|---|---|---|---|---|"]
    for c in found:
        figure = "-" if c["change"] is None else printed(c["metric"], c["change"])
        if c["readme"]:
            figure += f" (the authors' README gives {c['readme'][0]:+.1f}{' pp' if c['metric'] == 'test_acc' else '%'})"
        flag = "*" if c["not_study"] and mixed else ""
        lines.append(f"| {c['where']} | {c['rival']} vs {c['twin']}{flag} | {c['claim']} ({c['says']}) | "
                     f"{quoted(c)} ({c['place']}) | {figure} | {c['revision']} | {c['here']} | {c['verdict']} | {c['size']} |")
    lines += ["", f"Rule: {RULE}. Every figure is the paper's ({ARXIV}), per pair its Appendix A change against BP; "
              "where the authors' README's absolute figures give another change beyond their rounding, the table "
              "shows both. The 2026 revision (the authors' PPAM 2026 submission, " + "; ".join(REVISION_SOURCE[1:])
              + f") re-measured every pair under one stopping rule ({REVISION_STOPPING}), BP tuned "
              "independently, 5-122 seeds per contrast; its figure is the ratio or difference of the means of its "
              "headline table (MF's accuracy elsewhere: its Section 5.3)."]
    return "\n".join(lines) + "\n"
