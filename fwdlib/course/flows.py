"""How each algorithm flows: one diagram per algorithm of its layers, losses, where gradients
reach and DFA's fixed feedback."""
from __future__ import annotations

from matplotlib.figure import Figure

from .. import algorithms as registry
from ..algorithms.bp import BackpropTwin


# Colours of the flow diagrams: forward pass, a loss, where gradients flow, fixed random feedback.
FORWARD, LOSS, GRADIENT, FEEDBACK = "#333333", "#c0392b", "#e67e22", "#8e44ad"

def flows() -> dict[str, dict]:
    """Each algorithm's diagram, as its class declares it (`flow`: the layers as (label, kind: "input",
    "trained", "frozen"), the losses as (label, which layers' parameters it reaches), whether layer
    inputs are detached, DFA's feedback); "bp" is every backprop twin's."""
    found = {name: cls.flow for name, cls in registry.REGISTRY.items() if cls.twin and cls.flow}
    return {"bp": BackpropTwin.flow, **found}


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
    known = flows()
    if algorithm not in known:
        raise ValueError(f"no diagram for {algorithm!r}; choose one of {', '.join(known)}")
    spec = known[algorithm]
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
