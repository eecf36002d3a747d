"""Lesson 03's checks: CaFo's ridge solution, sparsemax, the ensemble, DFA's gradients, a ridge sweep."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...algorithms import cafo
from .engine import Mismatch, Result, compare_tuple, describe, generator, run_cases


def ex3_1(ridge_solution) -> bool:
    """ridge_solution(H, Y, lam): W = (H^T H + lam I)^-1 H^T Y."""
    cases = [(torch.randn(n, d, dtype=torch.float64, generator=generator(s)),
              torch.randn(n, c, dtype=torch.float64, generator=generator(s + 1)), lam)
             for s, (n, d, c, lam) in enumerate([(4, 2, 2, 0.5), (50, 8, 3, 1.0), (30, 12, 4, 0.1)])]
    return run_cases("3.1", ridge_solution, cases, cafo.ridge_solution,
                slips=[(lambda h, y, lam: cafo.ridge_solution(h, y, 0.0),
                        "your W is the unregularised least-squares solution: lambda is missing (add lambda times "
                        "the identity to H^T H)"),
                       (lambda h, y, lam: torch.linalg.solve(h.T @ h + lam, h.T @ y),
                        "you added lambda to every entry of H^T H; add it to the diagonal only (lambda times the "
                        "identity)"),
                       (lambda h, y, lam: cafo.ridge_solution(h, y, lam ** 2),
                        "you used lambda squared; the penalty adds lambda itself to the diagonal")])


def ex3_2(sparsemax) -> bool:
    """sparsemax(z): project each row of z onto the probability simplex."""
    cases = [(torch.tensor([[1.0, 0.0, -1.0], [0.9, 0.2, -0.5]]),)] + \
            [(torch.randn(10, 6, generator=generator(s)) * 2,) for s in (1, 2)]
    return run_cases("3.2", sparsemax, cases, cafo.sparsemax,
                slips=[(lambda z: z.softmax(1), "that is softmax, not sparsemax: sparsemax subtracts a threshold tau "
                        "and clips at 0, so small logits get exactly 0"),
                       (lambda z: z.relu() / z.relu().sum(1, keepdim=True).clamp_min(1e-12),
                        "clipping at 0 and renormalising is not the projection: sparsemax subtracts ONE threshold "
                        "tau from every logit, then clips"),
                       (lambda z: F.one_hot(z.argmax(1), z.shape[1]).to(z.dtype),
                        "a one-hot of the argmax is the limit of very large logits, not sparsemax")])


def ex3_3(ensemble_predict) -> bool:
    """ensemble_predict(block_logits): argmax of the sum over blocks of each block's softmax."""
    def reference(logits):
        return torch.stack([z.softmax(1) for z in logits]).sum(0).argmax(1)

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            raise Mismatch(f"return one predicted class per row, a tensor of shape {tuple(expected.shape)}; "
                           f"got {describe(got)}")
        wrong = (got.long() != expected).nonzero().flatten()
        if len(wrong):
            row = int(wrong[0])
            raise Mismatch(f"{len(wrong)} of {len(expected)} predicted classes differ (first at row {row}: "
                           f"yours {int(got[row])}, expected {int(expected[row])})")

    cases = [([torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.5]])],)] + \
            [([torch.randn(40, 10, generator=generator(s + k)) * (k + 1) for k in range(3)],) for s in (1, 5)]
    return run_cases("3.3", ensemble_predict, cases, reference, compare,
                slips=[(lambda logits: torch.stack(logits).sum(0).argmax(1),
                        "you summed the logits: a block with large logits outvotes the others. Sum each "
                        "block's softmax probabilities instead"),
                       (lambda logits: logits[-1].argmax(1), "you used the last block only; the ensemble sums "
                                                             "every block's probabilities")])


def _dfa_case(seed: int, channels=(1, 3), side=6, classes=3, batch=4):
    torch.manual_seed(seed)
    block = torch.nn.Sequential(torch.nn.Conv2d(channels[0], channels[1], 3, padding=1), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2))
    x = torch.randn(batch, channels[0], side, side, generator=generator(seed))
    dim = channels[1] * (side // 2) ** 2
    error = torch.randn(batch, classes, generator=generator(seed + 1))
    feedback = torch.randn(classes, dim, generator=generator(seed + 2))
    return block, x, error, feedback


def _dfa_reference(block, x, error, feedback):
    out = block(x.detach())
    return tuple(torch.autograd.grad(out, list(block.parameters()), (error @ feedback).view_as(out)))


def ex3_5(dfa_block_gradients) -> Result:
    """dfa_block_gradients(block, block_input, error, feedback) -> the gradients of the block's
    parameters when its output receives error @ feedback as its gradient (DFA's local backward)."""
    cases = [_dfa_case(0), _dfa_case(1, channels=(2, 4), side=8, classes=5, batch=6)]
    names = ("conv weight gradient", "conv bias gradient")
    return run_cases("3.5", dfa_block_gradients, cases, _dfa_reference, compare_tuple(names),
                slips=[(lambda block, x, e, b: tuple(-g for g in _dfa_reference(block, x, e, b)),
                        "every gradient has the wrong sign: the block's output gradient is e B, not -e B"),
                       (lambda block, x, e, b: tuple(g / len(x) for g in _dfa_reference(block, x, e, b)),
                        "every gradient is divided by the batch size: e B is the output's gradient as it is"),
                       (lambda block, x, e, b: tuple(2 * g for g in _dfa_reference(block, x, e, b)),
                        "every gradient is doubled: backward through the block once, with e B as the output's "
                        "gradient")])


def _ridge_sweep_reference(h_train, y_train, h_val, y_val, lambdas):
    targets = F.one_hot(y_train, int(y_train.max()) + 1).to(h_train.dtype)
    return [float((h_val @ cafo.ridge_solution(h_train, targets, lam)).argmax(1).eq(y_val).double().mean())
            for lam in lambdas]


def ex3_6(ridge_sweep) -> Result:
    """ridge_sweep(H_train, y_train, H_val, y_val, lambdas) -> validation accuracy for each lambda."""
    def case(seed):
        g = generator(seed)
        h = torch.randn(120, 10, dtype=torch.float64, generator=g)
        y = (h[:, :3].argmax(1) + (torch.rand(120, generator=g) < 0.2).long()) % 3
        return h[:80], y[:80], h[80:], y[80:], [0.01, 1.0, 100.0, 1e5]

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            raise Mismatch(f"return one accuracy per lambda ({len(expected)}), got {describe(got)}")
        for lam, g, e in zip((0.01, 1.0, 100.0, 1e5), got, expected):
            if not math.isclose(float(g), e, abs_tol=1e-9):
                raise Mismatch(f"at lambda={lam} you have accuracy {float(g):.4f}, expected {e:.4f} (one-hot "
                                "targets from y_train, W from your ridge_solution, argmax of H_val W)")

    def on_train(h, y, hv, yv, lambdas):
        return _ridge_sweep_reference(h, y, h, y, lambdas)

    return run_cases("3.6", ridge_sweep, [case(0), case(1)], _ridge_sweep_reference, compare, slips=[
        (on_train, "you measured accuracy on the TRAINING features; choose lambda on the validation split"),
        (lambda h, y, hv, yv, lams: _ridge_sweep_reference(h, y, hv, yv, [0.0] * len(lams)),
         "every accuracy is the unregularised one: pass each lambda to ridge_solution")])
