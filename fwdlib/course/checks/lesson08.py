"""Lesson 08's checks: a forward gradient by forward mode, the weight gradient from activity
gradients (what Ren et al.'s local losses estimate), and how many tangents an average needs."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.func import jvp

from .calls import Forbidden, StudentError, backward_forbidden
from .compare import compare_tuple, scalar_compare
from .contract import Case, Contract, check
from .engine import Result, generator
from .inputs import fresh


def _loss(w, x, y):
    return F.cross_entropy(x @ w.T, y)


def _forward_gradient(w, x, y, v):
    _, slope = jvp(lambda w: _loss(w, x, y), (w,), (v,))
    return slope * v


def ex8_1(forward_gradient) -> Result:
    """forward_gradient(W, x, y, V): the forward gradient (grad L . V) V of the softmax classifier's
    loss L(W) = cross_entropy(x W^T, y) along the tangent V (the shape of W)."""
    def case(seed, b, d, c, label, dtype=torch.float32, tangent=None, scale=1.0):
        g = generator(seed)
        w = torch.randn(c, d, generator=g, dtype=dtype) * scale
        v = torch.randn(c, d, generator=g, dtype=dtype) if tangent is None else tangent(c, d, dtype)
        return Case((w, torch.randn(b, d, generator=g, dtype=dtype), torch.randint(0, c, (b,), generator=g), v), label)

    def one_hot(c, d, dtype):
        v = torch.zeros(c, d, dtype=dtype)
        v[1, 2] = 1.0
        return v

    cases = [case(1, 8, 5, 3, "a random classifier and tangent"), case(2, 16, 7, 4, "a larger classifier"),
             case(3, 1, 4, 2, "a batch of one"), case(4, 6, 5, 3, "float64", dtype=torch.float64),
             case(5, 6, 5, 3, "a tangent along one weight (the forward gradient is that weight's partial "
                              "derivative, on that weight alone)", tangent=one_hot),
             case(6, 6, 5, 3, "a zero tangent (no direction: no gradient)",
                  tangent=lambda c, d, dtype: torch.zeros(c, d, dtype=dtype)),
             case(7, 10, 6, 5, "large weights (confident, nearly saturated scores)", scale=20.0)]

    def exact(w, x, y, v):
        w = w.clone().requires_grad_()
        return torch.autograd.grad(_loss(w, x, y), w)[0]

    def slope(w, x, y, v):
        return jvp(lambda w: _loss(w, x, y), (w,), (v,))[1]

    def forward_mode_only(call):
        """The task's rule: forward mode, no backward pass (autograd's engine is refused)."""
        try:
            with backward_forbidden():
                call(list(fresh(cases[0].args)))
        except StudentError as err:
            if isinstance(err.__cause__, Forbidden):
                return (f"your function ran {err.__cause__}: compute the slope with torch.func.jvp, one forward "
                        "pass, no backward", cases[0].label)
            raise
        return None

    return check(Contract("8.1", _forward_gradient, cases, params=("W", "x", "y", "V"), output="forward gradient",
                          extra=[forward_mode_only], slips=[
        (slope, "that is the slope grad L . V alone: the forward gradient is the slope times the tangent, "
                "(grad L . V) V, the shape of W"),
        (exact, "that is the exact gradient (by autograd): the forward gradient is its projection on the tangent, "
                "(grad L . V) V, which equals it only on average over tangents"),
        (lambda w, x, y, v: (exact(w, x, y, v) * v),
         "you multiplied the gradient by V element by element: the slope is ONE number, the sum "
         "(grad L * V).sum(), and it scales the whole tangent"),
        (lambda w, x, y, v: _forward_gradient(w, x, y, v) / v.square().sum().clamp_min(1e-24),
         "you normalised the tangent (V / |V|, twice: in the slope and in the direction): with V ~ N(0, I) as it "
         "is, E[(grad L . V) V] = grad L; a unit tangent gives grad L / n on average"),
        (lambda w, x, y, v: _forward_gradient(w, x, y, v) / v.norm().clamp_min(1e-12),
         "you divided by |V|: the forward gradient is (grad L . V) V with V as it is drawn")]),
                 forward_gradient)


def _weight_gradient(a_below, g_z):
    return g_z.T @ a_below / len(g_z), g_z.mean(0)


def ex8_2(weight_gradient) -> Result:
    """weight_gradient(a_below, g_z): (dW, db) of the batch's MEAN loss from each example's gradient
    g_z (B x h) with respect to its pre-activation z = a_below W^T + b (a_below: B x d)."""
    def case(seed, b, d, h, label, dtype=torch.float32, transposed=False):
        g = generator(seed)
        a = (torch.randn(d, b, generator=g, dtype=dtype).T if transposed
             else torch.randn(b, d, generator=g, dtype=dtype))
        return Case((a, torch.randn(b, h, generator=g, dtype=dtype)), label)

    cases = [case(1, 8, 5, 4, "a random layer"), case(2, 3, 6, 7, "more units than examples"),
             case(3, 1, 4, 3, "a batch of one"), case(4, 6, 5, 4, "float64", dtype=torch.float64),
             case(5, 9, 5, 4, "a non-contiguous (transposed) a_below", transposed=True),
             case(6, 16, 5, 5, "as many inputs as units (a transposed dW has dW's shape)")]

    return check(Contract("8.2", _weight_gradient, cases, compare=compare_tuple(("dW", "db")),
                          params=("a_below", "g_z"), output="(dW, db)", slips=[
        (lambda a, g: (g.T @ a, g.sum(0)), "that is the SUM over the batch: the loss is the batch's mean, so divide "
                                           "both by the batch size B"),
        (lambda a, g: ((g.T @ a / len(g)).T, g.mean(0)),
         "dW is transposed: W is h x d (units by inputs), so dW = g_z^T a_below / B"),
        (lambda a, g: (g.T @ a / len(g), g.sum(0)), "db is the mean of g_z over the batch, not its sum"),
        (lambda a, g: (g.T @ a / len(g), g.mean(1)), "db averages over the batch (dim 0): one value per unit")]),
                 weight_gradient)


def _tangents_needed(n, relative_error):
    return math.ceil((n + 1) / relative_error ** 2)


def ex8_3(tangents_needed) -> Result:
    """tangents_needed(n, relative_error): the fewest K such that the average of K independent forward
    gradients over n perturbed values has a root-mean-square error at most relative_error |grad L|."""
    cases = [Case((10, 0.5), "10 values, half the gradient's norm"), Case((1, 1.0), "one value, the norm itself"),
             Case((784, 1.0), "784 values (a first layer's inputs), the norm itself"),
             Case((3, 0.25), "three values, a quarter of the norm"), Case((255, 0.125), "255 values, an eighth"),
             Case((100_000, 0.5), "a hundred thousand weights (a small MLP's), half the norm"),
             Case((5, 0.75), "five values, three quarters of the norm (K is no whole number: round up)"),
             Case((6, 0.75), "six values, three quarters of the norm (12.4...: round UP, not to the nearest)"),
             Case((2, 2.0), "two values, twice the norm (one tangent will do)")]
    return check(Contract("8.3", _tangents_needed, cases, compare=scalar_compare(name="your K"),
                          params=("n", "relative_error"), output="K", slips=[
        (lambda n, e: math.ceil((n + 2) / e ** 2),
         "n + 2 is E|g|^2 / |grad L|^2, the second moment; the error is g - grad L, whose mean square is "
         "(n + 2 - 1)|grad L|^2 = (n + 1)|grad L|^2"),
        (lambda n, e: math.ceil(n / e ** 2), "E|v|^2 = n, but E[(v . g)^2 |v|^2] has an extra 2|g|^2: the "
                                             "error's mean square is (n + 1)|grad L|^2"),
        (lambda n, e: math.ceil((n + 1) / e), "the root-mean-square error falls as 1 / sqrt(K): square the "
                                              "relative error"),
        (lambda n, e: int((n + 1) / e ** 2), "round UP: K must reach the bound, and int() rounds down"),
        (lambda n, e: round((n + 1) / e ** 2), "round UP: K must reach the bound, and round() goes to the nearest"),
        (lambda n, e: (n + 1) / e ** 2, "K counts directions, a whole number: round (n + 1) / relative_error^2 UP"),
        (lambda n, e: math.ceil(math.sqrt(n + 1) / e), "the mean square error (n + 1)|grad L|^2 / K is what K "
                                                       "divides; the root comes after")]),
                 tangents_needed)
