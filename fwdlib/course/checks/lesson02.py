"""Lesson 02's checks: RMS normalisation, FF's layer loss, label embedding, one layer's step."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ...algorithms import ff
from .contract import Case, Contract, check, check_each
from .engine import Result, describe, generator
from .inputs import in_place_message, unchanged


def _rows(seed: int, b: int, d: int, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(b, d, generator=generator(seed), dtype=dtype) * scale


def ex2_1(rms_normalise) -> Result:
    """rms_normalise(x): divide each row by its root mean square (add 1e-8 for safety)."""
    zeros = _rows(3, 5, 6)
    zeros[[0, 3]] = 0
    tiny = _rows(9, 3, 4, 1e-9)
    cases = [Case((_rows(s, 8, 30, 5.0),), "a random batch") for s in (1, 2)] + \
            [Case((torch.tensor([[3.0, 4.0], [1.0, 1.0]]),), "two rows of two units"),
             Case((zeros,), "rows of zeros (a dead ReLU layer below)"),
             Case((tiny,), "rows of tiny values (RMS about 1e-9, where the 1e-8 matters)"),
             Case((_rows(4, 1, 9),), "a batch of one"), Case((_rows(5, 6, 1),), "one unit per row"),
             Case((_rows(6, 4, 20, 1e4),), "large magnitudes"),
             Case((_rows(7, 5, 8, dtype=torch.float64),), "float64"),
             Case((_rows(8, 10, 4).T,), "a non-contiguous (transposed) tensor")]
    return check(Contract("2.1", ff.rms_normalise, cases, params=("x",),
                          nonfinite="a row of zeros has RMS 0: add the 1e-8 to the RMS before dividing, so the "
                                   "row stays 0 / 1e-8 = 0",
                          slips=[(lambda x: x / x.norm(dim=1, keepdim=True),
                                  "you divided by the L2 norm; the RMS is the norm divided by sqrt(number of units)"),
                                 (lambda x: x / x.std(1, keepdim=True),
                                  "the standard deviation subtracts the mean first; the RMS does not"),
                                 (lambda x: x / x.pow(2).mean(0, keepdim=True).sqrt(),
                                  "you normalised each column (over the batch, dim 0); normalise each row (dim 1)"),
                                 (lambda x: x / (x.pow(2).mean(1, keepdim=True) + 1e-8).sqrt(),
                                  "you added the 1e-8 inside the square root; the task adds it to the RMS: "
                                  "x / (rms + 1e-8)")]),
                 rms_normalise)


def ex2_2(ff_layer_loss) -> Result:
    """ff_layer_loss(g_pos, g_neg, theta): mean of softplus(theta - g_pos) + softplus(g_neg - theta)."""
    def goodness(seed, n=32, scale=100.0, dtype=torch.float32):
        return torch.rand(n, generator=generator(seed), dtype=dtype) * scale

    grads = ("g_pos", "g_neg")
    cases = [Case((goodness(s), goodness(s + 9), 50.0), "random goodness around theta = 50", grad=grads)
             for s in (1, 2)] + \
            [Case((torch.tensor([6.0, 2.0]), torch.tensor([1.0, 5.0]), 4.0), "two samples", grad=grads),
             Case((torch.tensor([0.0, 9000.0, 4000.0]), torch.tensor([10000.0, 0.0, 6000.0]), 5000.0),
                  "goodness thousands away from theta", grad=grads),
             Case((torch.tensor([5.0, 5.0]), torch.tensor([5.0, 5.0]), 5.0), "goodness exactly on theta"),
             Case((torch.tensor([3.0]), torch.tensor([7.0]), 4.0), "a batch of one", grad=grads),
             Case((torch.tensor([2.1, 2.6]), torch.tensor([2.3, 2.9]), 2.45), "a theta that is not a whole number",
                  grad=grads),
             Case((goodness(3, 7, dtype=torch.float64), goodness(4, 7, dtype=torch.float64), 40.0), "float64",
                  grad=grads),
             Case((goodness(5, 24).view(6, 4)[:, 0], goodness(6, 24).view(6, 4)[:, 1], 60.0),
                  "non-contiguous tensors (columns)", grad=grads)]
    return check(Contract("2.2", ff.ff_layer_loss, cases, output="loss",
                          nonfinite="log(1 + exp(t)) overflows once t passes about 88 in float32; F.softplus "
                                   "computes the same value stably",
                          slips=[(lambda p, n, t: (F.softplus(t - p) + F.softplus(n - t)).sum(),
                                  "you summed over the batch; the loss is the MEAN over samples"),
                                 (lambda p, n, t: (F.softplus(p - t) + F.softplus(t - n)).mean(),
                                  "positives and negatives are swapped: positives are pushed ABOVE theta"),
                                 (lambda p, n, t: F.softplus(t - p).mean(),
                                  "the negatives' term softplus(g_neg - theta) is missing"),
                                 (lambda p, n, t: F.softplus(n - t).mean(),
                                  "the positives' term softplus(theta - g_pos) is missing")]), ff_layer_loss)


def ex2_3(embed_label) -> Result:
    """embed_label(x, labels, num_classes): flatten, write one-hot(labels) into the first C pixels."""
    def images(seed, *shape, dtype=torch.float32):
        return torch.randn(*shape, generator=generator(seed), dtype=dtype)

    def labels(seed, n, c):
        return torch.randint(0, c, (n,), generator=generator(seed))

    cases = [Case((images(0, 2, 1, 2, 3), torch.tensor([2, 0]), 3), "two tiny images"),
             Case((images(1, 5, 1, 28, 28), labels(2, 5, 10), 10), "five Fashion-MNIST-sized images"),
             Case((images(3, 1, 1, 4, 4), torch.tensor([9]), 10), "a batch of one, label 9"),
             Case((images(4, 2, 1, 1, 3), torch.tensor([1, 2]), 3), "as many classes as pixels"),
             Case((images(5, 3, 3, 4, 4, dtype=torch.float64), labels(6, 3, 5), 5), "float64 colour images"),
             Case((images(7, 3, 4, 4, 2).permute(0, 3, 1, 2), labels(8, 3, 4), 4),
                  "a non-contiguous (channels-last) batch")]

    def added(x, labels, c):
        x = x.flatten(1).clone()
        x[:, :c] += F.one_hot(labels, c).to(x.dtype)
        return x

    def last_pixels(x, labels, c):
        x = x.flatten(1).clone()
        x[:, -c:] = F.one_hot(labels, c).to(x.dtype)
        return x

    return check(Contract("2.3", ff.embed_label, cases, params=("x", "labels", "num_classes"), slips=[
        (added, "you added the one-hot to the pixels; overwrite the first C pixels with it"),
        (last_pixels, "you wrote the label into the LAST C pixels; the kit uses the first C"),
        (lambda x, labels, c: x.flatten(1), "the image is flattened but no label was written into it")]), embed_label)


# ------------------------------------------------------------------ 2.5: a whole step, watched call by call
def _ff_layer_step_reference(layer, optimizer, x, y, num_classes, theta, generator):
    pos = ff.rms_normalise(ff.embed_label(x, y, num_classes))
    neg = ff.rms_normalise(ff.embed_label(x, ff.wrong_labels(y, num_classes, generator), num_classes))
    g_pos, g_neg = ff.goodness(F.relu(layer(pos))), ff.goodness(F.relu(layer(neg)))
    loss = ff.ff_layer_loss(g_pos, g_neg, theta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


class _Watched(torch.optim.SGD):
    """SGD that records its calls and the gradient each step saw (backward is recorded by a hook)."""

    def __init__(self, layer: torch.nn.Linear, lr: float):
        super().__init__(layer.parameters(), lr=lr)
        self.layer, self.calls, self.seen = layer, [], []
        layer.weight.register_hook(lambda grad: self.calls.append("backward"))

    def zero_grad(self, set_to_none: bool = True):
        self.calls.append("zero_grad")
        super().zero_grad(set_to_none)

    def step(self, closure=None):
        self.calls.append("step")
        self.seen.append(tuple(None if p.grad is None else p.grad.detach().clone()
                               for p in (self.layer.weight, self.layer.bias)))
        return super().step(closure)


def _gradients(layer, x, y, c, theta, seed):
    """The (weight, bias) gradients of the step's loss: whole, and from each term alone (the other
    detached)."""
    out = []
    for keep in ("both", "pos", "neg"):
        layer = copy.deepcopy(layer)
        layer.weight.grad = None
        pos = ff.rms_normalise(ff.embed_label(x, y, c))
        neg = ff.rms_normalise(ff.embed_label(x, ff.wrong_labels(y, c, generator(seed)), c))
        g_pos, g_neg = ff.goodness(F.relu(layer(pos))), ff.goodness(F.relu(layer(neg)))
        g_pos, g_neg = (g_pos if keep != "neg" else g_pos.detach()), (g_neg if keep != "pos" else g_neg.detach())
        out.append(torch.autograd.grad(ff.ff_layer_loss(g_pos, g_neg, theta), (layer.weight, layer.bias)))
    return out


STALE = 7.0       # the gradient a previous step left behind, which a right step clears
# Two settings whose theta is not the layer's width and whose labels do not reach num_classes - 1,
# so that an answer that ignores theta or num_classes cannot agree with the reference by chance.
SETTINGS = (((6, 1, 4, 4), [0, 1, 2, 0, 1, 2], 4, 3.0, 5), ((5, 1, 3, 3), [3, 0, 1, 3, 2], 5, 12.0, 7))


def _step_failure(ff_layer_step, shape, labels, c, theta, width, lr=0.05) -> str | None:
    x, y = torch.randn(*shape, generator=generator(0)), torch.tensor(labels)
    torch.manual_seed(0)
    base = torch.nn.Linear(x[0].numel(), width)
    runs = {}
    for who, fn in (("reference", _ff_layer_step_reference), ("student", ff_layer_step)):
        layer = copy.deepcopy(base)
        optimizer = _Watched(layer, lr)
        layer.weight.grad, layer.bias.grad = torch.full_like(layer.weight, STALE), torch.full_like(layer.bias, STALE)
        given = x.clone(), y.clone()
        loss = fn(layer, optimizer, *given, c, theta, generator(1))
        for name, before, after in zip(("x", "y"), (x, y), given):
            if not unchanged(before, after):
                return in_place_message(name, before, after)
        runs[who] = (loss, optimizer, (layer.weight.detach().clone(), layer.bias.detach().clone()))
    (loss, optimizer, after), (ref_loss, _, ref_after) = runs["student"], runs["reference"]
    whole, pos_only, neg_only = _gradients(base, x, y, c, theta, 1)
    if loss is None:
        return "return the loss (a scalar tensor) of the step"
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        return f"return the loss as a scalar tensor, got {describe(loss)}"
    if not torch.allclose(loss.detach(), ref_loss.detach(), rtol=1e-5, atol=1e-6):
        return (f"your loss {loss.item():.4g} is not the step's loss: positives carry the true label, negatives "
                "ff.wrong_labels(y, num_classes, generator); both are RMS-normalised before the layer, and the "
                "loss is ff_layer_loss(g_pos, g_neg, theta) with the theta you were given")
    if "step" not in optimizer.calls:
        if not torch.equal(after[0], base.weight.detach()):
            return "the weights changed, but not by the optimizer you were given: step the `optimizer` argument"
        return "the weights did not change: call optimizer.step() after loss.backward()"
    if "backward" not in optimizer.calls[:optimizer.calls.index("step")]:
        return "no gradient was computed before the step: call loss.backward() before optimizer.step()"
    if optimizer.calls.count("step") > 1:
        return f"you called optimizer.step() {optimizer.calls.count('step')} times: one step per call"
    for name, seen, right, pos, neg in zip(("weight", "bias"), optimizer.seen[0], whole, pos_only, neg_only):
        if seen is None or not bool(seen.abs().gt(0).any()):
            return (f"the {name}'s gradient was cleared before the step: optimizer.zero_grad() belongs BEFORE "
                    "loss.backward(), not after it (and it clears every parameter, bias included)")
        if torch.allclose(seen, right + STALE, atol=1e-5):
            return (f"the stale gradient of the previous step was added to the {name}'s: call "
                    "optimizer.zero_grad() before loss.backward() (it clears every parameter, bias included)")
        for part, term in ((pos, "negatives"), (neg, "positives")):
            if torch.allclose(seen, part, atol=1e-6) and not torch.allclose(part, right, atol=1e-6):
                return (f"no gradient came from the {term}' term: their pass ran under torch.no_grad() or was "
                        "detached, so the layer never learns from them")
        if not torch.allclose(seen, right, rtol=1e-5, atol=1e-6):
            return (f"the {name}'s gradient at the step is not the gradient of the loss you return (clipped, scaled "
                    "or from another loss?): step with the plain gradient of that loss")
    for name, mine, right in zip(("weight", "bias"), after, ref_after):
        if not torch.allclose(mine, right, rtol=1e-5, atol=1e-6):
            return (f"the gradients are right but the {name}'s update is not: one optimizer.step() with the "
                    "optimizer you were given")
    return None


def ex2_5(ff_layer_step) -> Result:
    """ff_layer_step(layer, optimizer, x, y, num_classes, theta, generator): one FF step of one
    layer: positives, negatives (ff.wrong_labels with `generator`), the loss, the update; returns the loss."""
    settings = [(setting, f"a Linear({setting[0][1] * setting[0][2] * setting[0][3]}, {setting[4]}) layer, "
                          f"num_classes = {setting[2]}, theta = {setting[3]}") for setting in SETTINGS]
    return check_each("2.5", ff_layer_step, settings, _step_failure,
                      "your step makes the same negatives, loss, gradient and update as ours")
