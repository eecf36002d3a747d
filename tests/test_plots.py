"""What a student sees: figures become PNG images in a kernel, interactive figures draw at once
and on every change, and the report's bar labels never overlap."""
import IPython
import ipywidgets as widgets
import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fwdlib import plots
from fwdlib.bench import figures


def small_figure() -> Figure:
    fig = Figure(figsize=(2, 1.5))
    fig.subplots().plot([0, 1], [1, 0])
    return fig


@pytest.fixture
def kernel_shell(monkeypatch):
    """An IPython shell that looks like a Jupyter kernel's (it has a kernel attached)."""
    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    yield shell
    shell.display_formatter.formatters["image/png"].pop(Figure, None)


def test_figure_png_is_a_png():
    assert plots.figure_png(small_figure()).startswith(b"\x89PNG\r\n\x1a\n")


def test_a_kernel_shows_a_figure_as_an_image(kernel_shell):
    shown, _ = kernel_shell.display_formatter.format(small_figure())
    assert "image/png" not in shown       # a fresh kernel: only `<Figure size ...>` text
    assert plots.show_figures_in_notebooks()
    shown, _ = kernel_shell.display_formatter.format(small_figure())
    assert shown["image/png"].startswith(b"\x89PNG") and shown["text/plain"].startswith("<Figure size")


def test_outside_a_kernel_nothing_is_registered(monkeypatch):
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not plots.show_figures_in_notebooks()


def test_interactive_figure_draws_at_once_and_on_every_change():
    calls = []

    def draw(width=1, height=2):
        calls.append((width, height))
        return small_figure()

    width = widgets.IntSlider(value=1, min=1, max=5)
    shown = plots.interactive_figure(draw, width=width, height=widgets.IntSlider(value=2, min=1, max=5))
    assert calls == [(1, 2)], "the figure must be drawn with the defaults before anything moves"
    width.value = 3
    assert calls == [(1, 2), (3, 2)]
    sliders, output = shown.children[:2], shown.children[-1]
    assert [s.description for s in sliders] == ["width", "height"]
    assert isinstance(output, widgets.Output)


def bar_rows(n: int) -> list[dict]:
    summary = {"median": 2.0, "lo": 1.5, "hi": 2.5}
    rows = []
    for i in range(n):
        entry = f"bp-mlp-with-a-long-name-{i}@cafo-rand" if i % 2 else f"cafo-dfa-long-variant-{i}"
        rows.append({"entry": entry, "dataset": "fashion_mnist_sample", "protocol": "converge",
                     "algorithm": entry.split("@")[0], "config": {"i": i},
                     "train_time_s": summary, "energy_wh": dict(summary, median=None)})
    return rows


def test_bar_labels_do_not_overlap():
    fig = figures.bars(bar_rows(8), [("train_time_s", "time (s)"), ("energy_wh", "energy (Wh)")], "Time and energy")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    def drawn(ax):         # tick labels beyond the axis limits exist but are not drawn
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        return ([t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]
                + [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
                + [ax.xaxis.label, ax.yaxis.label])

    labels = [t.get_window_extent(renderer) for ax in fig.axes for t in drawn(ax) if t.get_text()]
    assert len(labels) >= 8
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert not a.overlaps(b), "two labels of the time/energy figure overlap"
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count(" not measured") == 8      # a missing value says so instead of a gap


def test_flow_diagrams_show_losses_gradients_detaches_and_what_is_frozen():
    def texts(name):
        fig = plots.flow_diagram(name)
        assert len(plots.figure_png(fig)) > 10_000
        return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "gradient through every layer" in texts("bp") and "detach" not in texts("bp")
    ff_text = texts("ff")
    assert ff_text.count("detach") == 2 and ff_text.count("softplus(θ − g₊)") == 3 and "g = Σh²" in ff_text
    assert texts("cafo-rand").count("random, frozen") == 3 and "e·B1" not in texts("cafo-rand")
    assert all(f"e·B{i}" in texts("cafo-dfa") for i in (1, 2, 3))
    assert all(f"M{i}" in texts("mf") for i in (1, 2, 3))
    with pytest.raises(ValueError, match="no diagram"):
        plots.flow_diagram("sgd")


def test_weights_show_as_images_each_scaled_on_its_own():
    w = torch.tensor([[-2.0, 0.0, 2.0, 4.0], [1.0, 1.0, 1.0, 3.0]])
    images = plots.weights_as_images(w, (1, 2, 2))
    assert images.shape == (2, 1, 2, 2) and images.min() == 0 and images.max() == 1
    assert images[0].flatten().tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert images[1].flatten().tolist() == [0, 0, 0, 1]
    assert plots.weights_as_images(torch.ones(1, 4), (1, 2, 2)).abs().sum() == 0     # a constant row: no NaN


def test_rows_heatmap_labels_every_row():
    fig = plots.rows_heatmap(torch.randn(3, 20), ["a", "b", "c"], "t", "unit")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c"]
