"""Figures for the notebooks and the benchmark report.

Built on `matplotlib.figure.Figure` (no global pyplot state), so they work headless, in tests
and in notebooks alike; a notebook shows a returned Figure by leaving it as the cell's value.
Importing this module inside a Jupyter kernel registers that image formatter (see
`show_figures_in_notebooks`), so no magic and no pyplot import is needed.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

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
    fig = Figure(figsize=(10, 4.5))
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
                color=["tab:gray" if "@" in rows[i]["entry"] else "tab:blue" for i in present])
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
        values = [h[metric] for h in r["history"]]
        ax.plot(range(1, len(values) + 1), values, marker=".", label=f"{'/'.join(r['entries'])}")
    ax.set_xlabel("epoch (stages in sequence)")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves (one seed each)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def benchmark_figures(rows: list[dict], records: list[dict], out: Path) -> list[Path]:
    column, label = energy_column(rows)
    figures = {
        "accuracy_vs_energy.png": accuracy_vs_energy(rows),
        "time_energy.png": bars(rows, [("train_time_s", "training time (s)"), (column, label)],
                                "Time and energy"),
        "memory.png": bars(rows, [("train_memory_mib", "training memory (MiB)")], "Training memory"),
        "learning_curves.png": learning_curves(records),
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


# ============================================================================ how each algorithm flows

# Colours of the flow diagrams: forward pass, a loss, where gradients flow, fixed random feedback.
FORWARD, LOSS, GRADIENT, FEEDBACK = "#333333", "#c0392b", "#e67e22", "#8e44ad"

# Per algorithm: the layers (label, kind: "input", "trained", "frozen"), the losses (label, which
# layers' parameters it reaches), whether layer inputs are detached, and DFA's feedback.
FLOWS = {
    "bp": {"title": "Backprop (BP): one loss, gradients through every layer",
           "layers": [("x", "input"), ("Linear+ReLU 1", "trained"), ("Linear+ReLU 2", "trained"), ("head", "trained")],
           "losses": [("cross-entropy", (1, 2, 3))], "detach": False},
    "ff": {"title": "Forward-Forward (FF): a goodness loss per layer, inputs detached",
           "layers": [("x with label\n(pos & neg)", "input"), ("layer 1", "trained"), ("layer 2", "trained"),
                      ("layer 3", "trained")],
           "losses": [("softplus(θ − g₊)\n+ softplus(g₋ − θ)", (i,)) for i in (1, 2, 3)], "detach": True,
           "goodness": True, "detach_label": "✂ detach,\nRMS-normalise"},
    "cafo-rand": {"title": "CaFo-Rand: random frozen blocks, one trained predictor per block",
                  "layers": [("image", "input"), ("block 1", "frozen"), ("block 2", "frozen"), ("block 3", "frozen")],
                  "predictors": True, "detach": True},
    "cafo-dfa": {"title": "CaFo-DFA: blocks first trained by fixed random feedback, then frozen",
                 "layers": [("image", "input"), ("block 1", "trained"), ("block 2", "trained"), ("block 3", "trained")],
                 "predictors": True, "detach": True, "feedback": True},
    "mf": {"title": "Mono-Forward (MF): each layer's own projection M_i and cross-entropy",
           "layers": [("x", "input"), ("layer 1", "trained"), ("layer 2", "trained"), ("layer 3", "trained")],
           "losses": [("CE(a₁M₁ᵀ, y)", (1,)), ("CE(a₂M₂ᵀ, y)", (2,)), ("CE(a₃M₃ᵀ, y)", (3,))],
           "detach": True, "projections": True},
}


def _box(ax, x, y, text, face, edge="#333333", hatch=None, w=1.5, h=0.7):
    from matplotlib.patches import FancyBboxPatch
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.03", fc=face, ec=edge,
                                hatch=hatch, lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=7.5)


def _arrow(ax, start, end, color, style="-", text=None, rad=0.0):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color=color, lw=1.4, ls=style,
                                                          connectionstyle=f"arc3,rad={rad}"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, color=color, fontsize=7, ha="center")


def flow_diagram(algorithm: str) -> Figure:
    """How `algorithm` ("bp", "ff", "cafo-rand", "cafo-dfa", "mf") learns: layers as boxes, the
    forward pass (black), where each loss sits (red), where its gradient flows (orange, dashed)
    and where it stops (a detach, ✂), what is random or frozen (hatched), and DFA's fixed random
    feedback (purple)."""
    if algorithm not in FLOWS:
        raise ValueError(f"no diagram for {algorithm!r}; choose one of {', '.join(FLOWS)}")
    spec = FLOWS[algorithm]
    layers = spec["layers"]
    low = -2.7 if spec.get("predictors") else -0.8
    fig = Figure(figsize=(9, 1.1 * (2.4 - low)))
    ax = fig.subplots()
    ax.set_xlim(-1, 2.4 * len(layers) + (0.9 if spec.get("feedback") else -0.6))
    ax.set_ylim(low, 2.4)
    ax.axis("off")
    ax.set_title(spec["title"], fontsize=10)
    xs = [2.4 * i for i in range(len(layers))]
    for i, ((label, kind), x) in enumerate(zip(layers, xs)):
        face = {"input": "#eeeeee", "trained": "#d6eaf8", "frozen": "#dddddd"}[kind]
        _box(ax, x, 0, label + ("\n(random, frozen)" if kind == "frozen" else ""), face,
             hatch="//" if kind == "frozen" else None)
        if i:
            _arrow(ax, (xs[i - 1] + 0.78, 0), (x - 0.78, 0), FORWARD)
            if spec.get("detach") and i > 1:
                ax.text((xs[i - 1] + x) / 2, -0.25, spec.get("detach_label", "✂ detach"), fontsize=7,
                        ha="center", va="top", color=GRADIENT)
    if spec.get("predictors"):                    # CaFo: a predictor and its loss under every block
        for i, x in enumerate(xs[1:], 1):
            _box(ax, x, -1.35, f"predictor {i}\n(trained)", "#d5f5e3")
            _arrow(ax, (x, -0.37), (x, -0.98), FORWARD)
            _box(ax, x, -2.3, "CE loss", "#fadbd8", edge=LOSS, w=1.0, h=0.45)
            _arrow(ax, (x - 0.2, -1.72), (x - 0.2, -2.05), FORWARD)
            _arrow(ax, (x + 0.3, -2.05), (x + 0.3, -1.72), GRADIENT, "--")
        ax.text(xs[-1] + 0.85, -0.65, "prediction:\nΣ softmax(predictor i)", fontsize=7, ha="left")
    if spec.get("feedback"):                      # DFA: the output error reaches every block through B_i
        _box(ax, xs[-1] + 1.6, 1.55, "e = softmax - y", "#f4ecf7", edge=FEEDBACK, w=1.3, h=0.45)
        for i, x in enumerate(xs[1:], 1):
            _arrow(ax, (xs[-1] + 1.0, 1.55), (x, 0.37), FEEDBACK, "--", f"e·B{i}", rad=0.15)
        ax.text(xs[1] - 0.9, 1.95, "B_i: fixed random matrices (DFA stage); then the blocks freeze", fontsize=7,
                color=FEEDBACK)
    for label, reached in spec.get("losses", []):
        if len(reached) == 1:                     # a local loss above its layer
            x = xs[reached[0]]
            if spec.get("projections"):
                _box(ax, x, 1.05, f"M{reached[0]}", "#d6eaf8", w=0.6, h=0.4)
                _arrow(ax, (x, 0.37), (x, 0.85), FORWARD)
            y = 1.85 if spec.get("projections") else 1.35
            _box(ax, x, y, label, "#fadbd8", edge=LOSS, w=1.6, h=0.55)
            if spec.get("goodness"):
                _arrow(ax, (x - 0.4, 0.37), (x - 0.4, y - 0.3), FORWARD, None)
                ax.text(x - 0.35, 0.7, "g = Σh²", fontsize=7)
            _arrow(ax, (x + 0.5, y - 0.3), (x + 0.5, 0.37), GRADIENT, "--")
        else:                                      # one loss at the end, gradients through all
            x = xs[-1]
            _box(ax, x, 1.35, label, "#fadbd8", edge=LOSS, w=1.4, h=0.5)
            _arrow(ax, (x, 0.37), (x, 1.1), FORWARD)
            _arrow(ax, (x - 0.7, 1.35), (xs[reached[0]], 0.4), GRADIENT, "--", "gradient through every layer", rad=0.2)
    fig.tight_layout()
    return fig
