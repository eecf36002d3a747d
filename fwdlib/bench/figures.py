"""The benchmark report's figures: accuracy against energy, bars with intervals, learning curves,
a paired forest per metric; written as PNG atomically."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..files import atomic_write
from .claims import paper_figure
from ..runs.entry import Entry
from .study import CHANGE_FIELDS, PAPER_CHANGES, family, study_entry
from .verdicts import MARGINS, PAIRED, comparisons, where


def _errors(summaries: list[dict]) -> np.ndarray:
    """(2, n) distances from each median to its interval ends, for errorbar()."""
    return np.array([[s["median"] - s["lo"], s["hi"] - s["median"]] for s in summaries]).T


def distinct(rows: list[dict]) -> list[dict]:
    """One row per trained configuration: a twin shared by two rivals is drawn once."""
    out, seen = [], {}
    for r in rows:
        key = (r["dataset"], r["protocol"], r["algorithm"], repr(sorted(r["config"].items())))
        if key in seen:
            seen[key]["rivals"].append(str(Entry.parse(r["entry"]).rival_entry))
            continue
        seen[key] = dict(r, rivals=[str(Entry.parse(r["entry"]).rival_entry)])
        out.append(seen[key])
    for r in out:
        entry = Entry.parse(r["entry"])
        r["label"] = f"{entry.twin_name} (twin of {', '.join(r['rivals'])})" if entry.is_twin else r["entry"]
    return out


def energy_column(rows: list[dict]) -> tuple[str, str]:
    """Measured energy when every row has it; else CodeCarbon's estimate, labelled."""
    if all(r["energy_wh"]["median"] is not None for r in rows):
        return "energy_wh", "energy (Wh, measured)"
    return "energy_estimated_wh", "energy (Wh, ESTIMATED by CodeCarbon: no hardware counter)"


def accuracy_vs_energy(rows: list[dict]) -> Figure:
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    column, label = energy_column(rows)
    for r in distinct(rows):
        e, a = r[column], r["test_acc"]
        if e["median"] is None or a["median"] is None:
            continue
        marker = "s" if Entry.parse(r["entry"]).is_twin else "o"
        ax.errorbar([e["median"]], [a["median"]], xerr=_errors([e]), yerr=_errors([a]), fmt=marker,
                    capsize=3, label=f"{r['label']} ({r['dataset']})")
    ax.set_xlabel(label)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against energy (median and interval over seeds)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    else:
        ax.text(0.5, 0.5, "no run has both accuracy and energy", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def bars(rows: list[dict], columns: list[tuple[str, str]], title: str) -> Figure:
    """Horizontal bars (one row per configuration, names on the left, read once for all
    panels) so that long names never overlap."""
    rows = distinct(rows)
    fig = Figure(figsize=(3.2 + 3.6 * len(columns), 1.2 + 0.42 * len(rows)))
    axes = np.atleast_1d(fig.subplots(1, len(columns), sharey=True))
    positions = np.arange(len(rows))[::-1]
    for ax, (column, label) in zip(axes, columns):
        summaries = [r[column] for r in rows]
        present = [i for i, s in enumerate(summaries) if s["median"] is not None]
        ax.barh(positions[present], [summaries[i]["median"] for i in present],
                xerr=_errors([summaries[i] for i in present]) if present else None, capsize=3,
                color=["tab:gray" if Entry.parse(rows[i]["entry"]).is_twin else "tab:blue" for i in present])
        for i in set(range(len(rows))) - set(present):
            ax.text(0, positions[i], " not measured", va="center", fontsize=8, color="tab:red")
        if not present:
            ax.set_xticks([])
        ax.set_xlabel(label)
    axes[0].set_yticks(positions, [f"{r['label']} ({r['dataset']})" for r in rows], fontsize=8)
    fig.suptitle(f"{title} (median and interval over seeds; grey: BP twins)")
    fig.tight_layout()
    return fig


def learning_curves(records: list[dict], metric: str = "val_acc") -> Figure:
    """Validation curves of each configuration's first successful seed."""
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    seen = set()
    for r in records:
        key = (r["spec"]["dataset"], tuple(r["entries"]))
        if r["status"] != "ok" or key in seen:
            continue
        seen.add(key)
        values = [float("nan") if h.get(metric) is None else h[metric] for h in r["history"]]   # a gap
        ax.plot(range(1, len(values) + 1), values, marker=".", label=f"{'/'.join(r['entries'])}")
    ax.set_xlabel("epoch (stages in sequence)")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves (one seed each)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def measured_pairs(rows: list[dict], metric: str) -> list[dict]:
    """The rivals' rows whose paired comparison on `metric` has an estimate."""
    return [r for r in comparisons(rows) if r["paired"][metric]["estimate"] is not None]


def paired_forest(rows: list[dict], pm, margin: float) -> Figure:
    """One paired metric: each pair's estimate with its 95% interval, the margin shaded around no
    difference, the paper's figure for the pair marked (Appendix A), the outcome written beside."""
    pairs = measured_pairs(rows, pm.metric)
    fig = Figure(figsize=(9, 2.0 + 0.45 * max(len(pairs), 1)))
    ax = fig.subplots()
    none = 1.0 if pm.log else 0.0
    band = (1 / (1 + margin), 1 + margin) if pm.log else (-margin, margin)
    ax.axvspan(*band, color="tab:green", alpha=0.15, label="margin (no practical difference)")
    ax.axvline(none, color="gray", lw=0.8)
    y = np.arange(len(pairs))[::-1]
    for i, r in zip(y, pairs):
        item = r["paired"][pm.metric]
        lo, hi = (item["lo"], item["hi"]) if item["lo"] is not None else (item["estimate"], item["estimate"])
        ax.errorbar([item["estimate"]], [i], xerr=[[item["estimate"] - lo], [hi - item["estimate"]]], fmt="o",
                    color="tab:blue", capsize=3, label="here: estimate, 95% interval" if i == y[0] else None)
        ax.annotate(item["outcome"], (1.02, i), xycoords=("axes fraction", "data"), fontsize=8, va="center")
        plain = not Entry.parse(r["twin"]).twin_variant          # the paper's figures are against its own twin
        change = PAPER_CHANGES.get((family(r["dataset"]), study_entry(r["spec"].entry))) if plain else None
        if change is not None and pm.metric in CHANGE_FIELDS and pm.kind != "memory":   # NVML's: no direction
            ax.plot([paper_figure(pm.metric, change)], [i], "x", color="tab:red", ms=8,
                    label="the paper's figure (Appendix A)" if i == y[0] else None)
    ax.set_yticks(y, [f"{r['entry']} vs {r['twin']} ({where(r, rows)})" for r in pairs], fontsize=8)
    if pm.log:
        ax.set_xscale("log")
        # ratios as 0.5, 1, 2, not 5x10^-1; between decades only the 2s and 5s, so labels never collide
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:g}" if round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""))
    ax.set_xlabel(f"{pm.label} (rival / twin)" if pm.log else pm.label)
    ax.set_title(f"{pm.noun[0].upper()}{pm.noun[1:]}: each rival against its twin, paired by seed")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.45 / (1 + 0.3 * len(pairs))), ncol=3)
    fig.tight_layout()
    return fig


def benchmark_figures(rows: list[dict], records: list[dict], out: Path, margins: dict | None = None) -> list[Path]:
    column, label = energy_column(rows)
    margins = margins or MARGINS
    figures = {
        "accuracy_vs_energy.png": accuracy_vs_energy(rows),
        "time_energy.png": bars(rows, [("train_time_s", "training time (s)"), (column, label)],
                                "Time and energy"),
        "memory.png": bars(rows, [("train_memory_mib", "training memory (MiB)")], "Training memory"),
        "learning_curves.png": learning_curves(records),
        **{f"paired_{pm.metric}.png": paired_forest(rows, pm, margins[pm.kind]) for pm in PAIRED
           if measured_pairs(rows, pm.metric)},
    }
    return [save_png(fig, Path(out) / name) for name, fig in figures.items()]


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, trimmed to what is drawn."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def save_png(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG, atomically (a reader never sees half an image)."""
    atomic_write(path, figure_png(fig))
    return path
