"""The benchmark's report: medians with bootstrap intervals, ratios to the twin, the study beside.

Every metric is summarised over seeds as its median and an interval whose kind depends on the
number of seeds: below BOOTSTRAP_MIN_SEEDS the range [min, max] of the seeds (a percentile
bootstrap of the median of 3 values is exactly that range, and covers the true median only about
75% of the time, so calling it "95%" would overstate it); from BOOTSTRAP_MIN_SEEDS on, a 95%
percentile-bootstrap interval of the median. The report names the kind in every row. A forward-only
algorithm's ratio to its BP twin is median(rival) / median(twin) of the same dataset, protocol
and device. Energy is the hardware-measured total where there is one; otherwise the report says
"not measured" and shows CodeCarbon's estimate, labelled as such.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import figures
from .spec import RunSpec
from .study import Published, differences, study_row
from ..utils import atomic_write, format_settings


def bootstrap_ci(values, *, level: float = 0.95, resamples: int = 10_000, seed: int = 0,
                 statistic=np.median) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over `values` (resampled with replacement)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = rng.choice(values, size=(resamples, len(values)), replace=True)
    stats = statistic(draws, axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


BOOTSTRAP_MIN_SEEDS = 5


def interval_kind(n: int) -> str:
    """What the interval of n seeds is, in the words the report prints."""
    return f"range of {n} seed{'s' if n != 1 else ''}" if n < BOOTSTRAP_MIN_SEEDS else "95% bootstrap CI"


def summarise(values) -> dict:
    """Median and interval (see the module's docstring) of the values that were measured."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return {"median": None, "lo": None, "hi": None, "n": 0, "interval": None}
    lo, hi = (min(values), max(values)) if len(values) < BOOTSTRAP_MIN_SEEDS else bootstrap_ci(values)
    return {"median": float(np.median(values)), "lo": float(lo), "hi": float(hi), "n": len(values),
            "interval": interval_kind(len(values))}


@dataclass(frozen=True)
class Metric:
    """One measured quantity: its name in results and CSV, how to read it from a record, the
    report table's column header, and the study's figure to show beside it (if the study has one)."""
    name: str
    read: Callable[[dict], float | None]
    header: str
    digits: int = 2
    study: tuple[str, Callable[[Published], float]] | None = None


# Add a metric here once: results, report.csv and report.md all follow this list.
METRICS = (
    Metric("test_acc", lambda r: r["test_acc"] * 100, "test acc %", study=("study acc %", lambda s: s.acc)),
    Metric("epochs", lambda r: r["epochs"], "epochs", 1),
    Metric("train_time_s", lambda r: r["train_time_s"], "train time s", study=("study time s", lambda s: s.time_s)),
    Metric("energy_gpu_wh", lambda r: r["energy_gpu_j"] / 3600 if r.get("energy_gpu_j") else None,
           "GPU energy Wh (measured)", 4, study=("study GPU energy Wh", lambda s: s.energy_wh)),
    Metric("energy_wh", lambda r: r["energy_measured_j"] / 3600 if r["energy_measured_j"] else None,
           "all energy Wh (GPU + CPU packages)", 4),
    Metric("energy_above_idle_wh", lambda r: r["energy_idle_subtracted_j"] / 3600
           if r.get("energy_idle_subtracted_j") is not None else None, "energy above idle Wh", 4),
    Metric("energy_estimated_wh", lambda r: r["energy_estimated_j"] / 3600 if r["energy_estimated_j"] else None,
           "ESTIMATED energy Wh (CodeCarbon CPU+RAM model)", 4),
    Metric("train_memory_mib", lambda r: r["train_memory_bytes"] / 2**20 if r.get("train_memory_bytes") else None,
           "training memory MiB", 1),
    Metric("gpu_allocator_peak_mib", lambda r: r["gpu_peak_allocated_bytes"] / 2**20
           if r.get("gpu_peak_allocated_bytes") else None, "GPU allocator peak MiB", 0),
    Metric("co2_g", lambda r: r["co2_kg"] * 1000 if r.get("co2_kg") is not None else None, "CO2 g", 4),
)


# The twin comparisons, paired by seed: (metric, what is compared, pairing, no-difference value,
# which side of it is better for the forward-only rival).
PAIRED = (
    ("test_acc", "accuracy difference, pp", lambda mine, twin: mine - twin, 0.0, "higher"),
    ("train_time_s", "time ratio", lambda mine, twin: mine / twin, 1.0, "lower"),
    ("energy_gpu_wh", "GPU energy ratio (measured)", lambda mine, twin: mine / twin, 1.0, "lower"),
    ("energy_wh", "energy ratio (measured)", lambda mine, twin: mine / twin, 1.0, "lower"),
    ("energy_estimated_wh", "energy ratio (ESTIMATED)", lambda mine, twin: mine / twin, 1.0, "lower"),
    ("train_memory_mib", "training memory ratio", lambda mine, twin: mine / twin, 1.0, "lower"),
)
MIN_VERDICT_SEEDS = 3


def verdict(summary: dict, null: float, better: str) -> str:
    """"rival better" or "twin better" only with at least MIN_VERDICT_SEEDS paired seeds and an
    interval that excludes no difference; otherwise "insufficient evidence", with the reason."""
    n = summary["n"]
    if n < MIN_VERDICT_SEEDS:
        return f"insufficient evidence ({n} paired seed{'s' if n != 1 else ''}, {MIN_VERDICT_SEEDS} needed)"
    if summary["lo"] <= null <= summary["hi"]:
        return "insufficient evidence (the interval includes no difference)"
    return "rival better" if (summary["median"] > null) == (better == "higher") else "twin better"


def paired(rival_runs: list[dict], twin_runs: list[dict]) -> dict:
    """Per metric of PAIRED: the per-seed differences or ratios (rival against twin, the same
    seed), summarised like every metric, with their verdict."""
    read = {m.name: m.read for m in METRICS}
    twins = {r["spec"]["seed"]: r for r in twin_runs if r["status"] == "ok"}
    out = {}
    for name, label, pair, null, better in PAIRED:
        values = []
        for r in rival_runs:
            t = twins.get(r["spec"]["seed"])
            if r["status"] != "ok" or t is None:
                continue
            mine, theirs = read[name](r), read[name](t)
            if mine is not None and theirs:
                values.append(pair(mine, theirs))
        summary = summarise(values)
        out[name] = {**summary, "label": label, "null": null,
                     "verdict": verdict(summary, null, better) if summary["n"] else "not measured"}
    return out


# The study's claims, each read against the paired evidence: (claim, the paired metric that tests it,
# what the study says for a rival and its twin's published rows).
CLAIMS = (
    ("accuracy", "test_acc", lambda mine, twin: "rival better" if mine.acc >= twin.acc else "twin better",
     lambda mine, twin: f"{mine.acc - twin.acc:+.2f} pp"),
    ("training time", "train_time_s", lambda mine, twin: "rival better" if mine.time_s < twin.time_s else "twin better",
     lambda mine, twin: f"x{mine.time_s / twin.time_s:.2f}"),
    ("GPU energy", "energy_gpu_wh", lambda mine, twin: "rival better" if mine.energy_wh < twin.energy_wh else "twin better",
     lambda mine, twin: f"x{mine.energy_wh / twin.energy_wh:.2f}"),
    # No memory column in the study's table: its motivation is that forward-only training needs
    # less memory (its later audit: MF's allocator peak 25-28% below BP's on 3x2000, equal on 2x1000).
    ("training memory", "train_memory_mib", lambda mine, twin: "rival better",
     lambda mine, twin: "its motivation; no figure in its table"),
)
CLAIM_RULE = (f"holds: our paired verdict (at least {MIN_VERDICT_SEEDS} seeds and an interval that excludes "
              "no difference) points the study's way; does not hold: it points the other way; otherwise "
              "insufficient evidence")


def claims(rows: list[dict]) -> list[dict]:
    """Each of the study's claims for each rival against its twin: what the study says, what
    the paired seeds here say, and whether the claim holds (CLAIM_RULE). Reads `group_rows`."""
    out = []
    for row in rows:
        if not row.get("paired") or row["study"] is None or row.get("twin_study") is None:
            continue
        for claim, metric, direction, says in CLAIMS:
            p, study_way = row["paired"][metric], direction(row["study"], row["twin_study"])
            if p["median"] is None:
                found, status = "not measured here", "insufficient evidence (not measured here)"
            else:
                found = f"{p['median']:.3g} [{p['lo']:.3g}, {p['hi']:.3g}] ({p['interval']})"
                status = ("holds" if p["verdict"] == study_way else
                          "does not hold" if p["verdict"] in ("rival better", "twin better") else p["verdict"])
            out.append({"dataset": row["dataset"], "protocol": row["protocol"], "rival": row["entry"],
                        "twin": row["twin"], "claim": claim, "metric": p["label"],
                        "study": f"{'rival' if study_way == 'rival better' else 'twin'} better "
                                 f"({says(row['study'], row['twin_study'])})",
                        "here": found, "seeds": p["n"], "verdict": status})
    return out


def claims_markdown(found: list[dict]) -> str:
    lines = ["| dataset | rival vs twin | claim | the study | here: paired, median [interval] | seeds | verdict |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {c['dataset']} | {c['rival']} vs {c['twin']} | {c['claim']} ({c['metric']}) | {c['study']} | "
              f"{c['here']} | {c['seeds']} | {c['verdict']} |" for c in found]
    return "\n".join(lines) + f"\n\nRule: {CLAIM_RULE}.\n"


MEMORY_METHOD = ("training memory on any device (fwdlib.memory): the peak of tensors saved for backward "
                 "in a training step, plus parameters, gradients, optimizer state and a stage's cached "
                 "features, the largest over the stages")


def group_rows(records: list[dict]) -> list[dict]:
    """One row per (dataset, protocol, device, entry): an entry is `ff` or `bp-mlp@ff`."""
    groups: dict = {}
    for r in records:
        for entry in r["entries"]:
            s = r["spec"]
            key = (s["dataset"], s["protocol"], s["device"], entry)
            groups.setdefault(key, []).append(r)
    rows, runs_of = [], {}
    for (dataset, protocol, device, entry), runs in groups.items():
        runs_of[(dataset, protocol, device, entry)] = runs
        ok = [r for r in runs if r["status"] == "ok"]
        spec = RunSpec.from_record(runs[0]["spec"], entry)
        row = {"dataset": dataset, "protocol": protocol, "device": device, "entry": entry, "spec": spec,
               "algorithm": spec.algorithm, "config": runs[0]["spec"]["config"],
               "seeds_ok": len(ok), "failed": [r.get("reason", "") for r in runs if r["status"] != "ok"],
               "mode": sorted({r.get("execution_mode", "?") for r in ok}),
               "memory_method": MEMORY_METHOD + ("; on CUDA the allocator's peak (max_memory_allocated) "
                                                 "beside it, and NVML's device-wide figure in results.jsonl"
                                                 if any(r.get("gpu_peak_allocated_bytes") for r in ok) else ""),
               "energy_sources": sorted({s for r in ok for s in r.get("energy_sources", [])}),
               "augmentation": runs[0].get("augmentation", "not recorded"),
               "study": study_row(dataset, entry)}
        row["differences"] = differences(spec)
        for m in METRICS:
            row[m.name] = summarise([m.read(r) for r in ok])
        rows.append(row)
    for row in rows:                            # ratios to the twin
        if row["spec"].entry.is_twin:
            continue
        twin = next((t for t in rows if t["spec"].entry.is_twin and t["spec"].entry.rival_entry == row["spec"].entry and
                     (t["dataset"], t["protocol"], t["device"]) == (row["dataset"], row["protocol"], row["device"])),
                    None)
        row["twin"] = twin["entry"] if twin else None
        row["twin_study"] = twin["study"] if twin else None
        for name in (m.name for m in METRICS):
            mine, theirs = row[name]["median"], twin[name]["median"] if twin else None
            row[name]["ratio"] = mine / theirs if mine is not None and theirs else None
        where = (row["dataset"], row["protocol"], row["device"])
        row["paired"] = paired(runs_of[(*where, row["entry"])], runs_of[(*where, twin["entry"])]) if twin else {}
    return sorted(rows, key=lambda r: (r["dataset"], r["protocol"], str(r["spec"].entry.rival_entry),
                                       r["spec"].entry.is_twin))


def _fmt(summary: dict, digits: int = 2) -> str:
    if summary["median"] is None:
        return "not measured"
    text = f"{summary['median']:.{digits}f} [{summary['lo']:.{digits}f}, {summary['hi']:.{digits}f}]"
    if summary.get("ratio") is not None:
        text += f" (x{summary['ratio']:.2f})"
    return text


def markdown(rows: list[dict], title: str) -> str:
    out = [f"# fwdlib benchmark: {title}", "",
           f"Median over seeds [interval]; the interval is the range of the seeds below "
           f"{BOOTSTRAP_MIN_SEEDS} seeds and a 95% percentile-bootstrap interval of the median from "
           f"{BOOTSTRAP_MIN_SEEDS} on (the seeds column says which). (xR) = ratio of medians to the BP "
           "twin. Study: Spyra & Dzwinel 2025, mean of 3 runs on an A100 (full datasets; its "
           "configuration is named).", ""]
    for dataset in sorted({r["dataset"] for r in rows}):
        subset = [r for r in rows if r["dataset"] == dataset]
        headers = ["entry", "seeds"]
        for m in METRICS:
            headers += [m.header] + ([m.study[0]] if m.study else [])
        out += [f"## {dataset}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for r in subset:
            failed = f" ({len(r['failed'])} failed)" if r["failed"] else ""
            kind = f" ({r['test_acc']['interval']})" if r["test_acc"]["interval"] else ""
            cells = [r["entry"], f"{r['seeds_ok']}{failed}{kind}"]
            for m in METRICS:
                cells.append(_fmt(r[m.name], m.digits))
                if m.study:
                    value = m.study[1](r["study"]) if r["study"] else None
                    cells.append("-" if value is None else f"{value:g}"        # as the study printed it
                                 + (f" ({r['study'].config})" if m.name == "test_acc" else ""))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out += ["## Each rival against its twin, paired by seed", "",
            f"Per seed, the rival's value against its twin's of the same seed (accuracy: difference in "
            f"percentage points; time, energy, memory: ratio), summarised as median [interval]. A verdict "
            f"needs at least {MIN_VERDICT_SEEDS} paired seeds and an interval that excludes no difference "
            "(0 pp, ratio 1); otherwise it is 'insufficient evidence'.", "",
            "| dataset | rival vs twin | " + " | ".join(label for _, label, _, _, _ in PAIRED) + " |",
            "|---|---|" + "---|" * len(PAIRED)]
    for r in rows:
        if not r.get("paired"):
            continue
        cells = []
        for name, *_ in PAIRED:
            p = r["paired"][name]
            cells.append("not measured" if p["median"] is None else
                         f"{p['median']:.3g} [{p['lo']:.3g}, {p['hi']:.3g}] ({p['interval']}): {p['verdict']}")
        out.append(f"| {r['dataset']} | {r['entry']} vs {r['twin']} | " + " | ".join(cells) + " |")
    found = claims(rows)
    if found:
        out += ["", "## The study's claims, tested here", "", claims_markdown(found)]
    out += ["", "## Protocol (the same for both members of each pair)", ""]
    for r in rows:
        if not r.get("twin"):
            continue
        spec, rule = r["spec"], r["spec"].rule
        line = (f"- {r['dataset']} / {r['protocol']}, {r['entry']} and {r['twin']}: batch {spec.batch_size}, "
                f"epoch cap {rule.epochs} per stage, stop on {rule.monitor} with patience "
                f"{rule.patience if rule.patience is not None else 'none (matched budget)'} and min_delta "
                f"{rule.min_delta}; augmentation: {r['augmentation']}; execution {', '.join(r['mode'])}; "
                f"device {r['device']}")
        if r["algorithm"] == "ff":
            line += ("; initialisation differs: FF's layers start from Loewe's (normal, std 1/sqrt(fan_out), "
                     "zero bias), its BP twin from PyTorch's default (Kaiming-uniform)")
        out.append(line)
    out += ["", "## How each entry differs from the study's run", "",
            "Every setting the study is known to have run the entry with (its paper and its authors' code) "
            "that this run does not share, as ours (study theirs). An entry named name+variant is the kit's "
            "variant of the study's entry `name`, compared with the same published row.", ""]
    for r in rows:
        out.append(f"- {r['dataset']} / {r['entry']}: " + ("; ".join(r["differences"]) or "none known"))
    out += ["", "## Configurations (tuned values included)", ""]
    for r in rows:
        out.append(f"- {r['dataset']} / {r['entry']}: {format_settings(r['config']) or 'defaults'}")
    out += ["", "## Where the numbers come from", ""]
    sources = sorted({s for r in rows for s in r["energy_sources"]})
    out += [f"- energy: {s}" for s in sources]
    methods = sorted({r["memory_method"] for r in rows if r["memory_method"]})
    out += [f"- memory: {m}" for m in methods]
    out.append("- time and energy: one window, the whole fit() call after an untimed warm-up in the same "
               "execution mode: stage preparation (CaFo's block features, greedy MF's cached activations), "
               "the training epochs and their validation; the test evaluation is outside it")
    failures = [(r["entry"], f) for r in rows for f in r["failed"]]
    if failures:
        out += ["", "## Failed runs", ""] + [f"- {e}: {f}" for e, f in failures]
    return "\n".join(out) + "\n"


def write_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["dataset", "protocol", "device", "entry", "seeds_ok", "interval"]
    for name in (m.name for m in METRICS):
        header += [f"{name}_median", f"{name}_lo", f"{name}_hi", f"{name}_ratio_to_twin"]
    header += ["study_config", "study_acc", "study_time_s", "study_energy_wh", "study_epochs"]
    writer.writerow(header)
    for r in rows:
        line = [r["dataset"], r["protocol"], r["device"], r["entry"], r["seeds_ok"], r["test_acc"]["interval"]]
        for name in (m.name for m in METRICS):
            s = r[name]
            line += [s["median"], s["lo"], s["hi"], s.get("ratio")]
        study = r["study"]
        line += [study.config, study.acc, study.time_s, study.energy_wh, study.epochs] if study else [""] * 5
        writer.writerow(line)
    return buffer.getvalue()


def write_report(records: list[dict], out: Path, title: str = "") -> list[Path]:
    """report.md, report.csv and the figures, each written atomically into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = group_rows(records)
    paths = [out / "report.md", out / "report.csv"]
    atomic_write(paths[0], markdown(rows, title))
    atomic_write(paths[1], write_csv(rows))
    paths += figures.benchmark_figures(rows, records, out)
    return paths
