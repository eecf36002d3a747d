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
    return run_cases("4.1", mf_local_loss, cases, _mf_reference_loss)


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
    return run_cases("4.2", mf_gradients, cases, _mf_autograd, compare_tuple(("dW", "db", "dM")))


def ex4_3(mf_sgd_step) -> bool:
    """mf_sgd_step(a_prev, W, b, M, y, lr) -> (W, b, M) after one plain SGD step on the local loss."""
    def reference(a_prev, w, b, m, y, lr):
        dw, db, dm = _mf_autograd(a_prev, w, b, m, y)
        return w - lr * dw, b - lr * db, m - lr * dm

    cases = [(*_mf_layer_case(s), lr) for s, lr in ((0, 0.1), (1, 0.5))]
    return run_cases("4.3", mf_sgd_step, cases, reference, compare_tuple(("new W", "new b", "new M")))


def ex4_5(mf_val_accuracy) -> Result:
    """mf_val_accuracy(width, data): validation accuracy of MF with two layers of `width` after one epoch."""
    return measured("4.5", mf_val_accuracy, lambda w, d: accuracy_after("mf", {"hidden": (w, w)}, 1, d),
                     (16, 64), experiment_data())
