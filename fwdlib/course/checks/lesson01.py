"""Lesson 01's checks: FF's goodness, its probability, the negative labels, a measured run."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...algorithms import ff
from .engine import Mismatch, Result, accuracy_after, describe, experiment_data, generator, measured, run_cases


def ex1_1(goodness) -> bool:
    """goodness(h): sum of squares of (already ReLU'd) activities per row -> (B,)."""
    cases = [(torch.rand(2, 3, generator=generator(0)),)] + \
            [(F.relu(torch.randn(16, 50, generator=generator(s))),) for s in (1, 2)]
    return run_cases("1.1", goodness, cases, ff.goodness, slips=[
        (lambda h: h.sum(1), "you summed the activities; goodness sums their SQUARES"),
        (lambda h: h.pow(2).mean(1), "that is the mean of squares; the kit's goodness is the SUM of squares "
                                     "(the threshold theta is then the layer's width)"),
        (lambda h: h.pow(2).sum(0), "you summed over the batch (dim 0): sum over each row's units (dim 1), "
                                    "one goodness per sample")])


def ex1_2(p_positive) -> bool:
    """p_positive(g, theta): the probability that the input is positive, sigmoid(g - theta)."""
    cases = [(torch.tensor([3.0, 5.0, 8.0]), 5.0)] + \
            [(torch.rand(20, generator=generator(s)) * 200, 100.0) for s in (1, 2)]
    return run_cases("1.2", p_positive, cases, lambda g, theta: torch.sigmoid(g - theta),
                slips=[(lambda g, theta: torch.sigmoid(theta - g),
                        "you computed sigmoid(theta - g): the sign is reversed. Goodness above the threshold "
                        "must make 'positive' MORE likely"),
                       (lambda g, theta: torch.sigmoid(g), "the threshold theta is missing: sigmoid(g - theta)"),
                       (lambda g, theta: g - theta, "that is the logit g - theta; a probability needs the sigmoid")])


def ex1_3(wrong_labels) -> bool:
    """wrong_labels(y, num_classes): a uniformly random label different from each y."""
    def compare(got, y_and_c):
        y, c = y_and_c
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, torch.Tensor) or got.shape != y.shape:
            raise Mismatch(f"expected a tensor of shape {tuple(y.shape)}, got {describe(got)}")
        if got.dtype != torch.int64:
            raise Mismatch(f"labels should be int64 (torch.long), got {got.dtype}")
        if bool(((got < 0) | (got >= c)).any()):
            raise Mismatch(f"some labels fall outside 0..{c - 1}")
        same = int((got == y).sum())
        if same:
            raise Mismatch(f"{same} of {len(y)} negative labels equal the true label "
                            "(a permutation of the batch does this about 1/C of the time)")
        if len(y) < 1000:
            return
        offsets = (got - y) % c
        shifts = torch.bincount(offsets, minlength=c)[1:].double()
        if shifts.min() < 0.5 * shifts.mean() or shifts.max() > 1.5 * shifts.mean():
            raise Mismatch("the wrong labels are not uniform over the other classes "
                            f"(counts of (neg - y) mod C: {shifts.long().tolist()})")
        # Random, not a pattern: neighbouring rows' offsets take every pair of values, and a second
        # call draws afresh (each batch needs new negatives).
        pairs = len(set(zip(offsets[:-1].tolist(), offsets[1:].tolist())))
        if pairs < (c - 1) ** 2:
            raise Mismatch(f"the wrong labels follow a pattern along the batch (only {pairs} of the "
                            f"{(c - 1) ** 2} possible pairs of neighbouring offsets occur): draw them at random, "
                            "e.g. with torch.randint")
        if torch.equal(wrong_labels(y.clone(), c), got):
            raise Mismatch("a second call returned exactly the same negatives: draw fresh random labels on "
                            "every call (do not reseed inside the function)")

    cases = [(torch.tensor([0, 1, 2, 2]), 3), (torch.randint(0, 10, (20_000,), generator=generator(1)), 10)]
    return run_cases("1.3", wrong_labels, cases, lambda y, c: (y, c), compare)


def ex1_5(ff_val_accuracy) -> Result:
    """ff_val_accuracy(epochs, data): validation accuracy of FF (hidden (64, 64)) after `epochs` epochs."""
    return measured("1.5", ff_val_accuracy, lambda e, d: accuracy_after("ff", {"hidden": (64, 64)}, e, d),
                     (1, 3), experiment_data())
