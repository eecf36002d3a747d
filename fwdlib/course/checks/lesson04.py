"""Lesson 04's checks: MF's local loss, its gradients, one SGD step, a measured run."""
from __future__ import annotations


import torch
import torch.nn.functional as F

from .engine import Result, accuracy_after, compare_tuple, experiment_data, generator, measured, run_cases


def _mf_reference_loss(a, m, y):
    return F.cross_entropy(a @ m.T, y)


def ex4_1(mf_local_loss) -> bool:
    """mf_local_loss(a, M, y): cross-entropy of the layer's class scores a M^T."""
    cases = [(torch.rand(2, 3, generator=generator(0)), torch.randn(2, 3, generator=generator(1)), torch.tensor([0, 1]))] + \
            [(torch.rand(16, 20, generator=generator(s)), torch.randn(5, 20, generator=generator(s + 1)),
              torch.randint(0, 5, (16,), generator=generator(s + 2))) for s in (3, 6)]
    return run_cases("4.1", mf_local_loss, cases, _mf_reference_loss, slips=[
        (lambda a, m, y: F.nll_loss(a @ m.T, y), "nll_loss expects log-probabilities: use cross_entropy on the "
                                                 "scores (it applies log_softmax)"),
        (lambda a, m, y: F.cross_entropy(a @ m.T, y, reduction="sum"), "you summed over the batch; the local loss "
                                                                       "is the MEAN cross-entropy"),
        (lambda a, m, y: F.cross_entropy(F.relu(a @ m.T), y), "the class scores a M^T go to the loss as they are: "
                                                              "no ReLU on them")])


def _mf_layer_case(seed: int, b=8, d_in=6, h=5, c=3):
    g = generator(seed)
    return (torch.randn(b, d_in, generator=g), torch.randn(h, d_in, generator=g),
            torch.randn(h, generator=g), torch.randn(c, h, generator=g), torch.randint(0, c, (b,), generator=g))


def _mf_autograd(a_prev, w, b, m, y):
    w, b, m = (t.clone().requires_grad_() for t in (w, b, m))
    loss = _mf_reference_loss(F.relu(a_prev @ w.T + b), m, y)
    return torch.autograd.grad(loss, (w, b, m))


def ex4_2(mf_gradients) -> bool:
    """mf_gradients(a_prev, W, b, M, y) -> (dW, db, dM), from the closed forms (no autograd)."""
    cases = [_mf_layer_case(0, b=2, d_in=3, h=2, c=2), _mf_layer_case(1), _mf_layer_case(2, b=16, d_in=10, h=7, c=4)]
    def no_mask(a_prev, w, b, m, y):
        a = F.relu(a_prev @ w.T + b)
        e = (a @ m.T).softmax(1) - F.one_hot(y, m.shape[0]).to(a.dtype)
        delta = e @ m                                       # the ReLU's mask left out
        return delta.T @ a_prev / len(y), delta.mean(0), e.T @ a / len(y)

    def summed(a_prev, w, b, m, y):
        return tuple(g * len(y) for g in _mf_autograd(a_prev, w, b, m, y))

    return run_cases("4.2", mf_gradients, cases, _mf_autograd, compare_tuple(("dW", "db", "dM")), slips=[
        (no_mask, "the ReLU's mask is missing: delta = (E M) * 1[z > 0]"),
        (summed, "every gradient is B times too large: the loss is a mean, so divide the sums by the batch")])


def ex4_3(mf_sgd_step) -> bool:
    """mf_sgd_step(a_prev, W, b, M, y, lr) -> (W, b, M) after one plain SGD step on the local loss."""
    def reference(a_prev, w, b, m, y, lr):
        dw, db, dm = _mf_autograd(a_prev, w, b, m, y)
        return w - lr * dw, b - lr * db, m - lr * dm

    cases = [(*_mf_layer_case(s), lr) for s, lr in ((0, 0.1), (1, 0.5))]
    def uphill(a_prev, w, b, m, y, lr):
        dw, db, dm = _mf_autograd(a_prev, w, b, m, y)
        return w + lr * dw, b + lr * db, m + lr * dm

    def only_w(a_prev, w, b, m, y, lr):
        return reference(a_prev, w, b, m, y, lr)[0], b, m

    return run_cases("4.3", mf_sgd_step, cases, reference, compare_tuple(("new W", "new b", "new M")), slips=[
        (uphill, "you stepped UP the gradient: subtract lr times each gradient"),
        (only_w, "only W moved: b and M are updated by the same step"),
        (lambda a_prev, w, b, m, y, lr: reference(a_prev, w, b, m, y, 1.0),
         "the step ignores lr: multiply each gradient by the learning rate")])


def ex4_5(mf_val_accuracy) -> Result:
    """mf_val_accuracy(width, data): validation accuracy of MF with two layers of `width` after one epoch."""
    return measured("4.5", mf_val_accuracy, lambda w, d: accuracy_after("mf", {"hidden": (w, w)}, 1, d),
                     (16, 64), experiment_data())
