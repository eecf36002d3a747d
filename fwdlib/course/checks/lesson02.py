"""Lesson 02's checks: RMS normalisation, FF's layer loss, label embedding, one layer's step."""
from __future__ import annotations


import torch
import torch.nn.functional as F

from ...algorithms import ff
from .engine import Result, describe, generator, not_attempted, run_cases, verdict


def ex2_1(rms_normalise) -> bool:
    """rms_normalise(x): divide each row by its root mean square (add 1e-8 for safety)."""
    cases = [(torch.tensor([[3.0, 4.0], [1.0, 1.0]]),)] + \
            [(torch.randn(8, 30, generator=generator(s)) * 5,) for s in (1, 2)]
    return run_cases("2.1", rms_normalise, cases, ff.rms_normalise, slips=[
        (lambda x: x / x.norm(dim=1, keepdim=True), "you divided by the L2 norm; the RMS is the norm divided by "
                                                    "sqrt(number of units)"),
        (lambda x: x / x.std(1, keepdim=True), "the standard deviation subtracts the mean first; the RMS does not"),
        (lambda x: x / x.pow(2).mean(0, keepdim=True).sqrt(), "you normalised each column (over the batch, dim 0); "
                                                               "normalise each row (dim 1)")])


def ex2_2(ff_layer_loss) -> bool:
    """ff_layer_loss(g_pos, g_neg, theta): mean of softplus(theta - g_pos) + softplus(g_neg - theta)."""
    cases = [(torch.tensor([6.0, 2.0]), torch.tensor([1.0, 5.0]), 4.0)] + \
            [(torch.rand(32, generator=generator(s)) * 100, torch.rand(32, generator=generator(s + 9)) * 100, 50.0)
             for s in (1, 2)]
    return run_cases("2.2", ff_layer_loss, cases, ff.ff_layer_loss, slips=[
        (lambda p, n, t: (F.softplus(t - p) + F.softplus(n - t)).sum(), "you summed over the batch; the loss is "
                                                                        "the MEAN over samples"),
        (lambda p, n, t: (F.softplus(p - t) + F.softplus(t - n)).mean(), "positives and negatives are swapped: "
                                                                        "positives are pushed ABOVE theta"),
        (lambda p, n, t: F.softplus(t - p).mean(), "the negatives' term softplus(g_neg - theta) is missing")])


def ex2_3(embed_label) -> bool:
    """embed_label(x, labels, num_classes): flatten, write one-hot(labels) into the first C pixels."""
    cases = [(torch.randn(2, 1, 2, 3, generator=generator(0)), torch.tensor([2, 0]), 3),
             (torch.randn(5, 1, 28, 28, generator=generator(1)), torch.randint(0, 10, (5,), generator=generator(2)), 10)]
    def added(x, labels, c):
        x = x.flatten(1).clone()
        x[:, :c] += F.one_hot(labels, c).to(x.dtype)
        return x

    def last_pixels(x, labels, c):
        x = x.flatten(1).clone()
        x[:, -c:] = F.one_hot(labels, c).to(x.dtype)
        return x

    return run_cases("2.3", embed_label, cases, ff.embed_label, slips=[
        (added, "you added the one-hot to the pixels; overwrite the first C pixels with it"),
        (last_pixels, "you wrote the label into the LAST C pixels; the kit uses the first C"),
        (lambda x, labels, c: x.flatten(1), "the image is flattened but no label was written into it")])


def _ff_layer_step_reference(layer, optimizer, x, y, num_classes, theta, generator):
    pos = ff.rms_normalise(ff.embed_label(x, y, num_classes))
    neg = ff.rms_normalise(ff.embed_label(x, ff.wrong_labels(y, num_classes, generator), num_classes))
    g_pos, g_neg = ff.goodness(F.relu(layer(pos))), ff.goodness(F.relu(layer(neg)))
    loss = ff.ff_layer_loss(g_pos, g_neg, theta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def ex2_5(ff_layer_step) -> Result:
    """ff_layer_step(layer, optimizer, x, y, num_classes, theta, generator): one FF step of one
    layer: positives, negatives (ff.wrong_labels with `generator`), the loss, the update; returns the loss."""
    if ff_layer_step is Ellipsis or ff_layer_step is None:
        print("Exercise 2.5 not attempted yet")
        return verdict("2.5", False)
    x, y = torch.randn(6, 1, 4, 4, generator=generator(0)), torch.tensor([0, 1, 2, 0, 1, 2])
    runs = {}
    for who, fn in (("reference", _ff_layer_step_reference), ("student", ff_layer_step)):
        torch.manual_seed(0)
        layer = torch.nn.Linear(16, 5)
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.05)
        layer.weight.grad = torch.full_like(layer.weight, 7.0)      # stale gradients a step must clear
        layer.bias.grad = torch.full_like(layer.bias, 7.0)
        before = layer.weight.detach().clone()
        try:
            loss = fn(layer, optimizer, x.clone(), y.clone(), 3, 5.0, generator(1))
        except NotImplementedError as err:
            print(not_attempted("2.5", err))
            return verdict("2.5", False)
        except Exception as err:  # noqa: BLE001 - the student's bug, reported as feedback
            print(f"✗ Exercise 2.5: your code raised {type(err).__name__}: {err}")
            return verdict("2.5", False)
        runs[who] = (loss, before, layer.weight.detach().clone())
    loss, before, after = runs["student"]
    ref_loss, _, ref_after = runs["reference"]
    if loss is None:
        message = "return the loss (a scalar tensor) of the step"
    elif not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        message = f"return the loss as a scalar tensor, got {describe(loss)}"
    elif not torch.allclose(loss.detach(), ref_loss.detach(), rtol=1e-5, atol=1e-6):
        message = (f"your loss {loss.item():.6g} differs from {ref_loss.item():.6g}: positives carry the true label, "
                   "negatives ff.wrong_labels(y, num_classes, generator); both are RMS-normalised before the layer, "
                   "and the loss is ff_layer_loss of the two goodness vectors")
    elif torch.equal(after, before):
        message = "the weights did not change: call optimizer.step() after loss.backward()"
    elif torch.allclose(after, before - 0.05 * 7.0 + (ref_after - before), atol=1e-5):
        message = "the stale gradient was added to yours: call optimizer.zero_grad() before loss.backward()"
    elif not torch.allclose(after, ref_after, rtol=1e-5, atol=1e-6):
        message = "the loss is right but the update is not: zero the gradients, backward the loss, step once"
    else:
        print("✓ Exercise 2.5: your step makes the same negatives, loss and update as ours.")
        return verdict("2.5", True)
    print(f"✗ Exercise 2.5: {message}.")
    return verdict("2.5", False)
