"""Lesson 04's checks: MF's local loss, its gradients, one SGD step, a measured run."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .compare import compare_tuple
from .contract import Case, Contract, check
from .engine import Mismatch, Result, accuracy_after, experiment_data, generator, measured


def _mf_reference_loss(a, m, y):
    return F.cross_entropy(a @ m.T, y)


def ex4_1(mf_local_loss) -> Result:
    """mf_local_loss(a, M, y): cross-entropy of the layer's class scores a M^T."""
    def case(seed, b, h, c, label, scale=1.0, dtype=torch.float32, transposed=False):
        g = generator(seed)
        a = torch.rand(h, b, generator=g, dtype=dtype).T if transposed else torch.rand(b, h, generator=g, dtype=dtype)
        return Case((a * scale, torch.randn(c, h, generator=g, dtype=dtype), torch.randint(0, c, (b,), generator=g)),
                    label, grad=("a", "M"))

    same = case(8, 6, 5, 4, "every sample of one class")
    same = Case((same.args[0], same.args[1], torch.full((6,), 2)), same.label, grad=("a", "M"))
    cases = [case(3, 16, 20, 5, "a random layer"), case(6, 16, 20, 5, "a random layer"),
             case(0, 2, 3, 2, "two samples, two classes"), case(1, 1, 4, 3, "a batch of one"),
             case(2, 8, 6, 4, "large activities (class scores hundreds apart)", scale=300.0), same,
             case(4, 7, 5, 3, "float64", dtype=torch.float64),
             case(5, 9, 6, 4, "a non-contiguous (transposed) a", transposed=True)]
    return check(Contract("4.1", _mf_reference_loss, cases, params=("a", "M", "y"), output="loss",
                          nonfinite="softmax underflows to 0 for scores far apart and log(0) is -inf; "
                                   "F.cross_entropy works on log_softmax, which is stable",
                          slips=[(lambda a, m, y: F.nll_loss(a @ m.T, y),
                                  "nll_loss expects log-probabilities: use cross_entropy on the scores "
                                  "(it applies log_softmax)"),
                                 (lambda a, m, y: F.cross_entropy(a @ m.T, y, reduction="sum"),
                                  "you summed over the batch; the local loss is the MEAN cross-entropy"),
                                 (lambda a, m, y: F.cross_entropy(F.relu(a @ m.T), y),
                                  "the class scores a M^T go to the loss as they are: no ReLU on them")]),
                 mf_local_loss)


def _mf_layer_case(seed: int, label: str, b=8, d_in=6, h=5, c=3, dtype=torch.float32, dead=False, scale=1.0):
    g = generator(seed)
    a_prev, w, bias = (torch.randn(b, d_in, generator=g, dtype=dtype) * scale,
                       torch.randn(h, d_in, generator=g, dtype=dtype), torch.randn(h, generator=g, dtype=dtype))
    if dead:                   # a unit whose pre-activation is exactly 0: the ReLU's mask decides at its edge
        w[0], bias[0] = 0.0, 0.0
    return (a_prev, w, bias, torch.randn(c, h, generator=g, dtype=dtype), torch.randint(0, c, (b,), generator=g)), label


def _mf_autograd(a_prev, w, b, m, y):
    w, b, m = (t.clone().requires_grad_() for t in (w, b, m))
    loss = _mf_reference_loss(F.relu(a_prev @ w.T + b), m, y)
    return torch.autograd.grad(loss, (w, b, m))


def _mf_cases():
    return [_mf_layer_case(1, "a random layer"), _mf_layer_case(2, "a larger layer", b=16, d_in=10, h=7, c=4),
            _mf_layer_case(0, "a tiny layer", b=2, d_in=3, h=2, c=2),
            _mf_layer_case(3, "a unit whose pre-activation is exactly 0", dead=True),
            _mf_layer_case(4, "a batch of one", b=1), _mf_layer_case(5, "float64", dtype=torch.float64),
            _mf_layer_case(6, "more classes than units", h=3, c=6),
            _mf_layer_case(8, "large inputs (class scores hundreds apart: softmax must not overflow)", scale=30.0)]


def ex4_2(mf_gradients) -> Result:
    """mf_gradients(a_prev, W, b, M, y) -> (dW, db, dM), from the closed forms (no autograd)."""
    def no_mask(a_prev, w, b, m, y):
        a = F.relu(a_prev @ w.T + b)
        e = (a @ m.T).softmax(1) - F.one_hot(y, m.shape[0]).to(a.dtype)
        delta = e @ m                                       # the ReLU's mask left out
        return delta.T @ a_prev / len(y), delta.mean(0), e.T @ a / len(y)

    def summed(a_prev, w, b, m, y):
        return tuple(g * len(y) for g in _mf_autograd(a_prev, w, b, m, y))

    cases = [Case(args, label) for args, label in _mf_cases()]
    return check(Contract("4.2", _mf_autograd, cases, compare_tuple(("dW", "db", "dM")),
                          params=("a_prev", "W", "b", "M", "y"), output="gradients", forbid_autograd=True, slips=[
        (no_mask, "the ReLU's mask is missing: delta = (E M) * 1[z > 0]"),
        (summed, "every gradient is B times too large: the loss is a mean, so divide the sums by the batch")]),
        mf_gradients)


def ex4_3(mf_sgd_step) -> Result:
    """mf_sgd_step(a_prev, W, b, M, y, lr) -> (W, b, M) after one plain SGD step on the local loss.
    Updating W, b and M in place (W -= lr * dW) is allowed: a training loop does exactly that."""
    def reference(a_prev, w, b, m, y, lr):
        dw, db, dm = _mf_autograd(a_prev, w, b, m, y)
        return w - lr * dw, b - lr * db, m - lr * dm

    def uphill(a_prev, w, b, m, y, lr):
        dw, db, dm = _mf_autograd(a_prev, w, b, m, y)
        return w + lr * dw, b + lr * db, m + lr * dm

    def only_w(a_prev, w, b, m, y, lr):
        return reference(a_prev, w, b, m, y, lr)[0], b, m

    def two_steps(call):
        """A training loop feeds each step's result to the next: the second step must work on it."""
        (a_prev, w, b, m, y), _ = _mf_layer_case(7, "a random layer")
        first = call((a_prev, w.clone(), b.clone(), m.clone(), y, 0.1))
        if not isinstance(first, (tuple, list)) or len(first) != 3:
            return None                    # the per-input properties name this one
        second = call((a_prev, *(t.detach().clone() if t.requires_grad else t for t in first), y, 0.1))
        expected = reference(a_prev, *reference(a_prev, w, b, m, y, 0.1), y, 0.1)
        try:
            compare_tuple(("W after two steps", "b after two steps", "M after two steps"))(second, expected)
        except Mismatch as err:
            return str(err), "two steps in a row, each on the result of the one before"
        return None

    rates = (0.1, 0.5, 0.3, 0.0, 0.2, 1.0, 0.05, 1e-3)
    cases = [Case((*args, lr), label + (", a step of size 0" if lr == 0 else ""))
             for (args, label), lr in zip(_mf_cases(), rates)]
    return check(Contract("4.3", reference, cases, compare_tuple(("new W", "new b", "new M")),
                          params=("a_prev", "W", "b", "M", "y", "lr"), mutable=("W", "b", "M"),
                          extra=(two_steps,), slips=[
        (uphill, "you stepped UP the gradient: subtract lr times each gradient"),
        (only_w, "only W moved: b and M are updated by the same step"),
        (lambda a_prev, w, b, m, y, lr: reference(a_prev, w, b, m, y, 1.0),
         "the step ignores lr: multiply each gradient by the learning rate")]), mf_sgd_step)


def ex4_5(mf_val_accuracy) -> Result:
    """mf_val_accuracy(width, data): validation accuracy of MF with two layers of `width` after one epoch."""
    return measured("4.5", mf_val_accuracy, lambda w, d: accuracy_after("mf", {"hidden": (w, w)}, 1, d),
                     (16, 64), experiment_data())
