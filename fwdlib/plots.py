"""Figures for the notebooks and the benchmark report.

Built on `matplotlib.figure.Figure` (no global pyplot state), so they work headless, in tests
and in notebooks alike; a notebook shows a returned Figure by leaving it as the cell's value.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .utils import atomic_write


def _errors(summaries: list[dict]) -> np.ndarray:
    """(2, n) distances from each median to its interval ends, for errorbar()."""
    return np.array([[s["median"] - s["lo"], s["hi"] - s["median"]] for s in summaries]).T


def distinct(rows: list[dict]) -> list[dict]:
    """One row per trained configuration: a twin shared by two rivals is drawn once."""
    out, seen = [], {}
    for r in rows:
        key = (r["dataset"], r["protocol"], r["algorithm"], repr(sorted(r["config"].items())))
        if key in seen:
            seen[key]["label"] += f", {r['entry'].split('@')[1]}"
            continue
        seen[key] = dict(r, label=r["entry"])
        out.append(seen[key])
    for r in out:
        if "@" in r["label"]:
            name, rivals = r["label"].split("@", 1)
            r["label"] = f"{name} (twin of {rivals})"
    return out


def energy_column(rows: list[dict]) -> tuple[str, str]:
    """Measured energy when every row has it; else CodeCarbon's estimate, labelled."""
    if all(r["energy_wh"]["median"] is not None for r in rows):
        return "energy_wh", "energy (Wh, measured)"
    return "energy_estimated_wh", "energy (Wh, ESTIMATED by CodeCarbon: no hardware counter)"


def accuracy_vs_energy(rows: list[dict]) -> Figure:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    column, label = energy_column(rows)
    for r in distinct(rows):
        e, a = r[column], r["test_acc"]
        if e["median"] is None or a["median"] is None:
            continue
        marker = "s" if "@" in r["entry"] else "o"
        ax.errorbar([e["median"]], [a["median"]], xerr=_errors([e]), yerr=_errors([a]), fmt=marker,
                    capsize=3, label=f"{r['label']} ({r['dataset']})")
    ax.set_xlabel(label)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against energy (median, 95% bootstrap interval)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no run has both accuracy and energy", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def bars(rows: list[dict], columns: list[tuple[str, str]], title: str) -> Figure:
    rows = distinct(rows)
    fig = Figure(figsize=(4 * len(columns), 4))
    axes = np.atleast_1d(fig.subplots(1, len(columns)))
    names = [f"{r['label']}\n{r['dataset']}" for r in rows]
    for ax, (column, label) in zip(axes, columns):
        summaries = [r[column] for r in rows]
        present = [i for i, s in enumerate(summaries) if s["median"] is not None]
        ax.bar(range(len(present)), [summaries[i]["median"] for i in present],
               yerr=_errors([summaries[i] for i in present]) if present else None, capsize=3,
               color=["tab:gray" if "@" in rows[i]["entry"] else "tab:blue" for i in present])
        ax.set_xticks(range(len(present)), [names[i] for i in present], rotation=60, fontsize=7)
        ax.set_ylabel(label)
    fig.suptitle(title + " (grey: BP twins)")
    fig.tight_layout()
    return fig


def learning_curves(records: list[dict], metric: str = "val_acc") -> Figure:
    """Validation curves of each configuration's first successful seed."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    seen = set()
    for r in records:
        key = (r["spec"]["dataset"], tuple(r["entries"]))
        if r["status"] != "ok" or key in seen:
            continue
        seen.add(key)
        values = [h[metric] for h in r["history"]]
        ax.plot(range(1, len(values) + 1), values, marker=".", label=f"{'/'.join(r['entries'])}")
    ax.set_xlabel("epoch (stages in sequence)")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves (one seed each)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def benchmark_figures(rows: list[dict], records: list[dict], out: Path) -> list[Path]:
    column, label = energy_column(rows)
    figures = {
        "accuracy_vs_energy.png": accuracy_vs_energy(rows),
        "time_energy.png": bars(rows, [("train_time_s", "training time (s)"), (column, label)],
                                "Time and energy"),
        "memory.png": bars(rows, [("peak_memory_mib", "peak memory (MiB)")], "Peak memory"),
        "learning_curves.png": learning_curves(records),
    }
    return [save_png(fig, Path(out) / name) for name, fig in figures.items()]


def save_png(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG, atomically (a reader never sees half an image)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write(path, buffer.getvalue())
    return path


# ------------------------------------------------------------------ teaching figures

def image_grid(images: torch.Tensor, titles: list[str] | None = None, cols: int = 8,
               size: float = 1.4) -> Figure:
    """Show (N, C, H, W) images in [0, 1] (use `fwdlib.data.unnormalise` first)."""
    images = images.detach().cpu()
    rows = (len(images) + cols - 1) // cols
    fig = Figure(figsize=(cols * size, rows * size * 1.15))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < len(images):
            img = images[i].permute(1, 2, 0).squeeze(-1).numpy()
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            if titles:
                ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def histograms(groups: dict[str, list[torch.Tensor]], labels: tuple[str, ...], title: str,
               xlabel: str, bins: int = 40, lines: list[float] | None = None) -> Figure:
    """One panel per key of `groups`; each panel overlays histograms of its tensors."""
    fig = Figure(figsize=(4 * len(groups), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(groups)))
    for i, (ax, (name, tensors)) in enumerate(zip(axes, groups.items())):
        for tensor, label in zip(tensors, labels):
            ax.hist(tensor.detach().cpu().numpy(), bins=bins, alpha=0.55, label=label)
        if lines:
            ax.axvline(lines[i], color="k", linestyle="--", linewidth=1)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves(series: dict[str, list[float]], xlabel: str, ylabel: str, title: str = "") -> Figure:
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker=".", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
