"""Figures for the notebooks and the benchmark report.

Built on `matplotlib.figure.Figure` (no global pyplot state), so they work headless, in tests
and in notebooks alike; a notebook shows a returned Figure by leaving it as the cell's value.
Importing this module inside a Jupyter kernel registers that image formatter (see
`show_figures_in_notebooks`), so no magic and no pyplot import is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from matplotlib.figure import Figure

from ..bench.figures import figure_png
from .flows import flow_diagram

# The notebooks reach every teaching figure as plots.NAME (flow_diagram lives in flows.py).
__all__ = ["curves", "flow_diagram", "histograms", "image_grid", "interactive_figure", "labelled_bars",
           "intervals_by_seeds", "power_trace", "rows_heatmap", "show_figures_in_notebooks", "stacked_bars", "weights_as_images"]


def show_figures_in_notebooks() -> bool:
    """Make every Figure display as a PNG in a Jupyter kernel: as a cell's value, through
    `display(fig)`, and inside a widget's output.

    Only matplotlib's inline backend registers this formatter, and a fresh kernel loads it
    when pyplot is first imported; a Figure built without pyplot would otherwise print as
    `<Figure size 600x320 with 1 Axes>`. Registering it here makes JupyterLab, classic
    Notebook, VS Code and Colab agree. Returns whether a kernel was found.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:     # not a Jupyter kernel
        return False
    shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)
    return True


def interactive_figure(draw: Callable[..., Figure], **controls):
    """Controls above a figure that `draw(**values)` redraws whenever a control moves.

    The figure is drawn once with the controls' starting values before anything is shown, so
    the output is never empty, and a headless run (nbval, nbconvert) stores that figure in the
    widget's state. Leave the returned widget as the cell's value to show it.
    """
    import ipywidgets as widgets
    from IPython.display import display

    for name, control in controls.items():
        control.description = control.description or name
        control.style = {"description_width": "initial"}
    output = widgets.interactive_output(lambda **values: display(draw(**values)), controls)
    return widgets.VBox([*controls.values(), output])


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


def weights_as_images(weights: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Rows of a weight matrix, or conv filters, as (N, *shape) images in [0, 1] for `image_grid`:
    each scaled on its own from its smallest to its largest weight, so its pattern shows."""
    w = weights.detach().float().cpu().reshape(len(weights), *shape)
    lo = w.flatten(1).amin(1).view(-1, *[1] * len(shape))
    hi = w.flatten(1).amax(1).view(-1, *[1] * len(shape))
    return (w - lo) / (hi - lo).clamp_min(1e-12)


def rows_heatmap(matrix: torch.Tensor, row_labels: list[str], title: str, xlabel: str) -> Figure:
    """A matrix as a heatmap, one labelled row each (e.g. MF's projection rows, one per class)."""
    values = matrix.detach().float().cpu().numpy()
    fig = Figure(figsize=(7, 0.32 * len(row_labels) + 1.2))
    ax = fig.subplots()
    bound = float(np.abs(values).max()) or 1.0
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    return fig


def histograms(groups: dict[str, list[torch.Tensor]], labels: tuple[str, ...], title: str,
               xlabel: str, bins: int = 40, lines: list[float] | None = None) -> Figure:
    """One panel per key of `groups`; each panel overlays histograms of its tensors."""
    fig = Figure(figsize=(max(4 * len(groups), 6.5), 3.2))   # wide enough for a long title
    axes = np.atleast_1d(fig.subplots(1, len(groups)))
    for i, (ax, (name, tensors)) in enumerate(zip(axes, groups.items())):
        values = [t.detach().cpu().numpy() for t in tensors]
        edges = np.histogram_bin_edges(np.concatenate(values), bins=bins)
        for v, label in zip(values, labels):     # one artist per histogram: quick to redraw in a widget
            ax.stairs(np.histogram(v, edges)[0], edges, fill=True, alpha=0.55, label=label)
        if lines:
            ax.axvline(lines[i], color="k", linestyle="--", linewidth=1)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves(series: dict[str, list[float]], xlabel: str, ylabel: str, title: str = "",
           x: list[float] | None = None, log: bool | str = False) -> Figure:
    """One line per series, against 1, 2, 3, ... (epochs) or the given `x`; `log`: True for both
    axes on a log scale, "x" for the x axis only."""
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for name, values in series.items():
        ax.plot(x if x is not None else range(1, len(values) + 1), values, marker=".", label=name)
    if log:
        ax.set_xscale("log")
    if log is True:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def intervals_by_seeds(panels: dict[str, list[dict]], margins: dict[str, tuple[float, float]]) -> Figure:
    """One panel per paired metric: its estimate and 95% interval (`n`, `estimate`, `lo`, `hi`
    of each step) against the number of paired seeds, and the margin's band (lo, hi) shaded."""
    fig = Figure(figsize=(4.2 * len(panels), 3.6))
    for ax, (label, steps) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels.items()):
        n = [s["n"] for s in steps]
        ax.axhspan(*margins[label], color="tab:green", alpha=0.15, label="inside the margin")
        ax.errorbar(n, [s["estimate"] for s in steps], fmt="o", capsize=3, label="estimate, 95% interval",
                    yerr=[[s["estimate"] - s["lo"] for s in steps], [s["hi"] - s["estimate"] for s in steps]])
        ax.set_xlabel("paired seeds so far")
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def labelled_bars(values: dict[str, float], ylabel: str, title: str = "",
                  highlight: str | None = None, ylim: tuple[float, float] | None = None) -> Figure:
    """One bar per name with its value written on it; `highlight` draws one bar in orange."""
    fig = Figure(figsize=(1.2 + 1.1 * len(values), 3.4))
    ax = fig.subplots()
    names = list(values)
    drawn = ax.bar(names, [values[n] for n in names],
                   color=["tab:orange" if n == highlight else "tab:blue" for n in names])
    ax.bar_label(drawn, fmt="%.3g", fontsize=8)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def stacked_bars(parts: dict[str, dict[str, float]], ylabel: str, title: str = "") -> Figure:
    """One bar per name, stacked from its parts (the same parts, in the same order, for all)."""
    names = list(parts)
    fig = Figure(figsize=(1.6 + 1.2 * len(names), 3.8))
    ax = fig.subplots()
    bottom = np.zeros(len(names))
    for part in next(iter(parts.values())):
        heights = np.array([parts[n][part] for n in names])
        ax.bar(names, heights, bottom=bottom, label=part)
        bottom += heights
    for x, total in enumerate(bottom):
        ax.text(x, total, f"{total:.3g}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.12 * bottom.max())           # room for the totals under the title
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def power_trace(watts: Callable[[float], float], seconds: float, intervals: tuple[float, ...]) -> Figure:
    """A power curve and, per sampling interval, the samples and the trapezoids they integrate."""
    fig = Figure(figsize=(8, 3.4))
    ax = fig.subplots()
    t = np.linspace(0, seconds, 4000)
    ax.plot(t, [watts(v) for v in t], color="k", linewidth=0.8, label="true power")
    for interval, colour in zip(intervals, ("tab:red", "tab:blue", "tab:green")):
        ts = np.arange(0, seconds + 1e-9, interval)
        ax.plot(ts, [watts(v) for v in ts], marker="o", markersize=3, color=colour, alpha=0.8,
                label=f"sampled every {interval:g} s (trapezoids)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("power (W)")
    ax.set_title("What a power sampler sees")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    fig.tight_layout()
    return fig


show_figures_in_notebooks()
