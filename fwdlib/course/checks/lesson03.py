"""Lesson 03's checks: CaFo's ridge solution, sparsemax, the ensemble, DFA's gradients, a ridge sweep."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...algorithms import cafo
from .compare import PLAIN, Context, as_numbers, compare_tuple
from .contract import Case, Contract, check
from .engine import Mismatch, Result, describe, generator


def _ridge_case(seed, n, d, c, lam, label, transposed=False):
    g = generator(seed)
    h = torch.randn(d, n, dtype=torch.float64, generator=g).T if transposed else \
        torch.randn(n, d, dtype=torch.float64, generator=g)
    return Case((h, torch.randn(n, c, dtype=torch.float64, generator=g), lam), label)


def ex3_1(ridge_solution) -> Result:
    """ridge_solution(H, Y, lam): W = (H^T H + lam I)^-1 H^T Y."""
    cases = [_ridge_case(1, 50, 8, 3, 1.0, "a random problem"), _ridge_case(2, 30, 12, 4, 0.1, "a random problem"),
             _ridge_case(0, 4, 2, 2, 0.5, "a tiny problem"),
             _ridge_case(3, 5, 10, 2, 0.3, "fewer samples than features (lambda makes it solvable)"),
             _ridge_case(4, 20, 4, 2, 0.0, "lambda = 0 on a full-rank H"),
             _ridge_case(5, 15, 5, 1, 2, "one target column and an integer lambda"),
             _ridge_case(6, 12, 3, 2, 1e6, "a very large lambda"),
             _ridge_case(7, 40, 8, 3, 0.7, "a non-contiguous (transposed) H", transposed=True)]
    return check(Contract("3.1", cafo.ridge_solution, cases, params=("H", "Y", "lam"), output="W", slips=[
        (lambda h, y, lam: cafo.ridge_solution(h, y, 0.0),
         "your W is the unregularised least-squares solution: lambda is missing (add lambda times the identity "
         "to H^T H)"),
        (lambda h, y, lam: torch.linalg.solve(h.T @ h + lam, h.T @ y),
         "you added lambda to every entry of H^T H; add it to the diagonal only (lambda times the identity)"),
        (lambda h, y, lam: cafo.ridge_solution(h, y, lam ** 2),
         "you used lambda squared; the penalty adds lambda itself to the diagonal")]), ridge_solution)


def ex3_2(sparsemax) -> Result:
    """sparsemax(z): project each row of z onto the probability simplex."""
    def logits(seed, b, c, scale=2.0, dtype=torch.float32):
        return torch.randn(b, c, generator=generator(seed), dtype=dtype) * scale

    cases = [Case((logits(s, 10, 6),), "random logits") for s in (1, 2)] + \
            [Case((torch.tensor([[1.0, 0.0, -1.0], [0.9, 0.2, -0.5]]),), "two rows of three"),
             Case((torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 0.0, 0.0], [0.5, 0.5, 0.5, -3.0]]),),
                  "ties (equal logits)"),
             Case((torch.tensor([[1.0, 0.0, -1.0, -2.0], [0.5, 0.5, 0.0, -1.0], [3.0, 2.5, 2.0, 1.5]]),),
                  "logits exactly on the support's boundary (1 + k z_(k) = the sum of the k largest)"),
             Case((torch.tensor([[3.0], [-2.0]]),), "one class"),
             Case((logits(3, 1, 7),), "a batch of one"),
             Case((logits(4, 5, 6, 100.0),), "large logits", tol=10),
             Case((logits(5, 6, 5, dtype=torch.float64),), "float64"),
             Case((logits(6, 8, 4).T,), "a non-contiguous (transposed) tensor")]
    return check(Contract("3.2", cafo.sparsemax, cases, params=("z",), slips=[
        (lambda z: z.softmax(1), "that is softmax, not sparsemax: sparsemax subtracts a threshold tau and clips at "
                                 "0, so small logits get exactly 0"),
        (lambda z: z.relu() / z.relu().sum(1, keepdim=True).clamp_min(1e-12),
         "clipping at 0 and renormalising is not the projection: sparsemax subtracts ONE threshold tau from every "
         "logit, then clips"),
        (lambda z: F.one_hot(z.argmax(1), z.shape[1]).to(z.dtype),
         "a one-hot of the argmax is the limit of very large logits, not sparsemax")]), sparsemax)


def _ensemble(block_logits):
    return torch.stack([z.softmax(1) for z in block_logits]).sum(0).argmax(1)


def _compare_classes(got, expected, ctx: Context = PLAIN):
    if got is Ellipsis:
        raise NotImplementedError
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        raise Mismatch(f"return one predicted class per row, a tensor of shape {tuple(expected.shape)}; "
                       f"got {describe(got)}")
    if got.is_floating_point():
        raise Mismatch(f"return class indices (argmax gives int64), got {got.dtype}")
    wrong = (got.long() != expected).nonzero().flatten()
    if len(wrong):
        row = int(wrong[0])
        large = max(float(z.abs().max()) for z in ctx.args[0]) > 80 if ctx.args else False
        raise Mismatch(f"{len(wrong)} of {len(expected)} predicted classes are wrong (the first at row {row}, "
                       f"where you predicted {int(got[row])})"
                       + ("; these logits are large: a softmax written as exp / sum overflows to nan here, "
                          "z.softmax(1) does not" if large else ""))


def ex3_3(ensemble_predict) -> Result:
    """ensemble_predict(block_logits): argmax of the sum over blocks of each block's softmax."""
    def blocks(seed, b, c, k, dtype=torch.float32):
        return [torch.randn(b, c, generator=generator(seed + i), dtype=dtype) * (i + 1) for i in range(k)]

    cases = [Case(([torch.tensor([[4.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.2]]), torch.tensor([[0.0, 1.5, 0.1]])],),
                  "one sure block against two unsure ones"),
             Case(([torch.tensor([[100.0, 0.0, 0.0], [0.0, 0.0, 90.0]]), torch.tensor([[0.0, 10.0, 0.0], [5.0, 0.0, 0.0]]),
                    torch.tensor([[0.0, 10.0, 0.0], [6.0, 0.0, 0.0]])],), "very confident blocks (logits of 100)"),
             Case((blocks(1, 40, 10, 3),), "three blocks, random logits"),
             Case((blocks(5, 40, 10, 3),), "three blocks, random logits"),
             Case(([torch.randn(6, 4, generator=generator(9))],), "a single block"),
             Case((blocks(11, 1, 5, 4),), "a batch of one"),
             Case(([torch.tensor([[30.0, 0.0, 0.0], [0.0, 0.0, 25.0]]), torch.tensor([[0.0, 2.0, 1.9], [2.0, 0.0, 1.0]]),
                    torch.tensor([[0.0, 2.0, 1.8], [2.0, 0.0, 1.2]])],), "blocks on very different scales"),
             Case((blocks(13, 12, 6, 2, dtype=torch.float64),), "float64 logits"),
             Case(([z.T for z in blocks(17, 7, 20, 3)],), "non-contiguous (transposed) logits")]
    return check(Contract("3.3", _ensemble, cases, _compare_classes, params=("block_logits",), slips=[
        (lambda logits: torch.stack(logits).sum(0).argmax(1),
         "you summed the logits (or the log-probabilities, which rank the classes the same way: log_softmax "
         "subtracts one number per row): a block with large logits outvotes the others. Sum each block's softmax "
         "probabilities instead"),
        (lambda logits: logits[-1].argmax(1), "you used the last block only; the ensemble sums every block's "
                                              "probabilities"),
        (lambda logits: torch.stack([z.softmax(1) for z in logits]).prod(0).argmax(1),
         "you multiplied the blocks' probabilities; the ensemble sums them")]), ensemble_predict)


def _dfa_case(seed: int, label: str, channels=(1, 3), side=6, classes=3, batch=4, dtype=torch.float32,
              stale=False, batchnorm=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Conv2d(channels[0], channels[1], 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
    block = torch.nn.Sequential(*layers, *([torch.nn.BatchNorm2d(channels[1])] if batchnorm else [])).to(dtype)
    if stale:                      # gradients the caller keeps there: a DFA step must leave them alone
        for p in block.parameters():
            p.grad = torch.ones_like(p)
    x = torch.randn(batch, channels[0], side, side, generator=generator(seed), dtype=dtype)
    dim = channels[1] * (side // 2) ** 2
    error = torch.randn(batch, classes, generator=generator(seed + 1), dtype=dtype)
    feedback = torch.randn(classes, dim, generator=generator(seed + 2), dtype=dtype)
    return Case((block, x, error, feedback), label)


def _dfa_reference(block, x, error, feedback):
    out = block(x.detach())
    return tuple(torch.autograd.grad(out, list(block.parameters()), (error @ feedback).view_as(out)))


def ex3_5(dfa_block_gradients) -> Result:
    """dfa_block_gradients(block, block_input, error, feedback) -> the gradients of the block's
    parameters when its output receives error @ feedback as its gradient (DFA's local backward)."""
    cases = [_dfa_case(0, "a random block"), _dfa_case(1, "a wider block", channels=(2, 4), side=8, classes=5, batch=6),
             _dfa_case(2, "a batch of one", batch=1), _dfa_case(3, "a float64 block", dtype=torch.float64),
             _dfa_case(4, "a block whose .grad already holds gradients", stale=True),
             _dfa_case(5, "CaFo's own block: Conv, ReLU, MaxPool, then BatchNorm in training mode", batchnorm=True)]
    names = ("conv weight gradient", "conv bias gradient", "BatchNorm weight gradient", "BatchNorm bias gradient")
    return check(Contract("3.5", _dfa_reference, cases, compare_tuple(names),
                          params=("block", "block_input", "error", "feedback"), output="gradients", slips=[
        (lambda block, x, e, b: tuple(-g for g in _dfa_reference(block, x, e, b)),
         "every gradient has the wrong sign: the block's output gradient is e B, not -e B"),
        (lambda block, x, e, b: tuple(g / len(x) for g in _dfa_reference(block, x, e, b)),
         "every gradient is divided by the batch size: e B is the output's gradient as it is"),
        (lambda block, x, e, b: tuple(2 * g for g in _dfa_reference(block, x, e, b)),
         "every gradient is doubled: backward through the block once, with e B as the output's gradient")]),
        dfa_block_gradients)


def _ridge_sweep_reference(h_train, y_train, h_val, y_val, lambdas):
    targets = F.one_hot(y_train, int(y_train.max()) + 1).to(h_train.dtype)
    return [float((h_val @ cafo.ridge_solution(h_train, targets, lam)).argmax(1).eq(y_val).double().mean())
            for lam in lambdas]


def _compare_sweep(got, expected, ctx: Context = PLAIN):
    for k, (g, e) in enumerate(zip(as_numbers(got, len(expected), "one accuracy per lambda"), expected)):
        if not math.isclose(g, e, abs_tol=1e-6):           # float32's mean of 0/1 is right too
            raise Mismatch(f"your accuracy {g:.4f} for the lambda at position {k} is not the validation "
                           "accuracy of that lambda's ridge predictor (one-hot targets from y_train, W from your "
                           "ridge_solution, argmax of H_val W)")


def ex3_6(ridge_sweep) -> Result:
    """ridge_sweep(H_train, y_train, H_val, y_val, lambdas) -> validation accuracy for each lambda."""
    def case(seed, lambdas, label, n=120):
        g = generator(seed)
        h = torch.randn(n, 10, dtype=torch.float64, generator=g)
        y = (h[:, :3].argmax(1) + (torch.rand(n, generator=g) < 0.2).long()) % 3
        cut = 2 * n // 3
        return Case((h[:cut], y[:cut], h[cut:], y[cut:], lambdas), label)

    cases = [case(0, [0.01, 1.0, 100.0, 1e5], "four lambdas"), case(1, [0.01, 1.0, 100.0, 1e5], "four lambdas"),
             case(2, [1e5, 0.1, 10.0], "lambdas not in order"), case(3, [3.0], "a single lambda"),
             case(4, [0.5, 2.0], "a small problem", n=15)]

    def on_train(h, y, hv, yv, lambdas):
        return _ridge_sweep_reference(h, y, h, y, lambdas)

    return check(Contract("3.6", _ridge_sweep_reference, cases, _compare_sweep,
                          params=("H_train", "y_train", "H_val", "y_val", "lambdas"), slips=[
        (on_train, "you measured accuracy on the TRAINING features; choose lambda on the validation split"),
        (lambda h, y, hv, yv, lams: _ridge_sweep_reference(h, y, hv, yv, [0.0] * len(lams)),
         "every accuracy is the unregularised one: pass each lambda to ridge_solution"),
        (lambda h, y, hv, yv, lams: _ridge_sweep_reference(h, y, hv, yv, sorted(lams)),
         "your accuracies are in sorted order of lambda: return them in the order the lambdas were given")]),
        ridge_sweep)
