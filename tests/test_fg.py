"""Forward gradients (fwdlib/algorithms/fg.py) against autograd as the oracle: the slope forward
mode returns is autograd's directional derivative, the estimate is unbiased with the variance its
docstring states, a step runs no backward, and it learns."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch.utils.flop_counter import FlopCounterMode

from fwdlib import algorithms, data
from fwdlib.algorithms.fg import ForwardGradient, activity_gradient, forward_gradient
from fwdlib.course.checks.calls import Forbidden, backward_forbidden
from fwdlib.train import evaluate, fit


def exact_gradients(model: ForwardGradient, x, y) -> dict[str, torch.Tensor]:
    """The gradient fg estimates, by backprop: of the head's loss ("global"), or of the sum of the
    layers' own losses, each on a detached input ("local")."""
    if model.loss == "global":
        loss = F.cross_entropy(model.logits(x), y)
    else:
        a, loss = x.flatten(1), 0.0
        for layer, head in zip(model.hidden, model.heads):
            a = F.relu(layer(a.detach()))
            loss = loss + F.cross_entropy(a @ head.weight.T, y)
    names = [n for n, _ in model.named_parameters()]
    return dict(zip(names, torch.autograd.grad(loss, list(model.parameters()))))


def batch(seed: int, n: int = 12, classes: int = 4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, classes, (n,), generator=g)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), widths=st.lists(st.integers(1, 9), min_size=1, max_size=3))
def test_the_slope_forward_mode_returns_is_autograds_directional_derivative(seed, widths):
    torch.manual_seed(seed)
    model = ForwardGradient((1, 6, 6), 4, hidden=tuple(widths), loss="global")
    x, y = batch(seed)
    exact = exact_gradients(model, x, y)
    torch.manual_seed(seed)
    _, estimate, _ = model.global_step(x, y)
    torch.manual_seed(seed)                       # the same tangent, drawn again
    tangent = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    slope = sum((exact[n] * v).sum() for n, v in tangent.items())
    for name, v in tangent.items():
        torch.testing.assert_close(estimate[name], slope * v, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("loss", ["global", "local"])
def test_the_estimate_is_unbiased(loss):
    """The mean of many forward gradients is the gradient: within 4 standard errors of the mean,
    the standard error measured from the same draws (a biased estimate, say one that forgot the
    tangent's scale or a layer's detach, misses by far more)."""
    torch.manual_seed(0)
    model = ForwardGradient((1, 6, 6), 4, hidden=(5, 4), loss=loss)
    x, y = batch(1)
    exact = exact_gradients(model, x, y)
    step = model.global_step if loss == "global" else model.local_step
    draws = [step(x, y)[1] for _ in range(3000)]
    for name, true in exact.items():
        stacked = torch.stack([d[name] for d in draws])
        error = (stacked.mean(0) - true).abs()
        standard_error = stacked.std(0) / len(draws) ** 0.5
        assert (error <= 4 * standard_error + 1e-6).float().mean() > 0.99, name


def test_the_variance_grows_with_what_one_tangent_perturbs():
    """E|g|^2 = (n + 2)|grad L|^2 for a tangent over n values: Baydin's global estimate over every
    weight against the per-example activities of the local one."""
    torch.manual_seed(0)
    grad = torch.randn(50)

    def loss_of(p):
        return (p["w"] * grad).sum()

    squares = torch.stack([forward_gradient(loss_of, {"w": torch.zeros(50)})[1]["w"].square().sum()
                           for _ in range(20000)])
    assert squares.mean() / grad.square().sum() == pytest.approx(52, rel=0.05)
    _, per_example = activity_gradient(lambda a: (a * grad[:8]).sum(1), torch.zeros(4096, 8))
    ratio = per_example.square().sum(1).mean() / grad[:8].square().sum()
    assert ratio == pytest.approx(10, rel=0.05)


@pytest.mark.parametrize("loss", ["global", "local"])
def test_a_step_runs_no_backward_and_changes_every_parameter(loss):
    torch.manual_seed(0)
    model = ForwardGradient((1, 6, 6), 4, hidden=(8, 8), loss=loss)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x, y = batch(2)
    with backward_forbidden():
        model.train_step(x, y, model.stages()[0])
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())
    with pytest.raises(Forbidden, match="a backward pass"), backward_forbidden():
        F.cross_entropy(model.logits(x), y).backward()          # the guard itself sees a backward


def test_a_step_costs_the_gemms_the_docstring_counts():
    """Counted by torch's FLOP counter: BP 3F - d0 d1, "global" 3F (2 d0 d1 less if a later
    torch skips the zero tangent of the input), "local" sum 2 d(i-1) d(i) + 4 d(i) C (3 d(i) C
    likewise): per example, in multiply-adds; a FLOP is two."""
    widths, classes, n = (784, 300, 200), 10, 64
    x, y = torch.randn(n, 1, 28, 28), torch.randint(0, classes, (n,))
    layers = list(zip(widths[:-1], widths[1:]))
    forward = sum(a * b for a, b in layers) + widths[-1] * classes

    def flops(name, **config):
        model = algorithms.build(name, input_shape=(1, 28, 28), num_classes=classes, hidden=widths[1:], **config)
        with FlopCounterMode(display=False) as counter:
            model.train_step(x, y, model.stages()[0])
        return counter.get_total_flops() / (2 * n)

    assert flops("bp-mlp") == 3 * forward - widths[0] * widths[1]
    assert 3 * forward - 2 * widths[0] * widths[1] <= flops("fg", loss="global") <= 3 * forward
    local = flops("fg", loss="local")
    assert sum(2 * a * b + 3 * b * classes for a, b in layers) <= local <= sum(2 * a * b + 4 * b * classes
                                                                             for a, b in layers)
    assert local < flops("bp-mlp")


def test_a_bad_loss_is_refused():
    with pytest.raises(ValueError, match="unknown loss 'both'"):
        algorithms.build("fg", input_shape=(1, 6, 6), num_classes=4, loss="both")


@pytest.mark.parametrize("loss", ["global", "local"])
def test_forward_gradients_learn_the_sample(loss):
    """Three epochs on the embedded sample lift both above chance (10%), the local losses far
    further than one tangent over every weight."""
    sample = data.load(data.SAMPLE_NAME)
    torch.manual_seed(0)
    model = algorithms.build("fg", input_shape=sample.input_shape, num_classes=10, hidden=(128, 128), loss=loss,
                             lr=1e-3)
    fit(model, sample, epochs=3, batch_size=128, progress=False)
    assert evaluate(model, sample.test) > (0.5 if loss == "local" else 0.18)


@pytest.mark.parametrize("loss", ["global", "local"])
def test_the_memory_meter_counts_the_directions_forward_mode_holds(loss):
    """Nothing is saved for a backward pass, so the step's memory would leave forward mode's own
    cost out: the directions are counted (a whole parameter-sized one for the global loss, one
    layer's activities at a time for the local one), and a backprop twin's saved activations are
    what the global loss trades for its parameter-sized direction."""
    sample = data.load(data.SAMPLE_NAME)
    shape = dict(input_shape=sample.input_shape, num_classes=10, hidden=(64, 48))
    model = algorithms.build("fg", **shape, loss=loss)
    memory = fit(model, sample, epochs=1, batch_size=32, progress=False, measure_memory=True).step_memory
    assert memory.saved_for_backward == 0
    if loss == "global":
        assert memory.tangents == memory.parameters
    else:
        assert memory.tangents == 32 * (64 + 10) * 4           # the widest layer's z and class scores
    twin = fit(algorithms.build("bp-mlp", **shape), sample, epochs=1, batch_size=32, progress=False,
               measure_memory=True).step_memory
    assert twin.tangents == 0 and twin.saved_for_backward > 0
