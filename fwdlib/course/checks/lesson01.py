"""Lesson 01's checks: FF's goodness, its probability, the negative labels, a measured run."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...algorithms import ff
from ...session import seed_all
from . import sampling
from .contract import Case, Contract, check, check_each
from .engine import Result, accuracy_after, describe, experiment_data, generator, measured
from .inputs import in_place_message, unchanged


def _activities(seed: int, b: int, d: int, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    return F.relu(torch.randn(b, d, generator=generator(seed), dtype=dtype)) * scale


def ex1_1(goodness) -> Result:
    """goodness(h): sum of squares of (already ReLU'd) activities per row -> (B,)."""
    dead = _activities(3, 6, 9)
    dead[[1, 4]] = 0
    cases = [Case((_activities(1, 16, 50),), "a random batch of ReLU activities", grad=("h",)),
             Case((_activities(2, 7, 3),), "a random batch, 7 rows of 3 units", grad=("h",)),
             Case((dead,), "rows of zeros (a dead ReLU layer)", grad=("h",)),
             Case((_activities(4, 1, 20),), "a batch of one", grad=("h",)),
             Case((_activities(5, 5, 1),), "a layer of one unit"),
             Case((_activities(6, 4, 30, scale=1000.0),), "large activities (goodness in the millions)", tol=10),
             Case((_activities(7, 6, 12, dtype=torch.float64),), "float64", grad=("h",)),
             Case((_activities(8, 12, 5).T,), "a non-contiguous (transposed) tensor", grad=("h",))]
    return check(Contract("1.1", ff.goodness, cases, output="goodness", slips=[
        (lambda h: h.sum(1), "you summed the activities; goodness sums their SQUARES"),
        (lambda h: h.pow(2).mean(1), "that is the mean of squares; the kit's goodness is the SUM of squares "
                                     "(the threshold theta is then the layer's width)"),
        (lambda h: h.pow(2).sum(0), "you summed over the batch (dim 0): sum over each row's units (dim 1), "
                                    "one goodness per sample"),
        (lambda h: h.pow(2).sum(1).sqrt(), "that is the L2 norm, the square root of the goodness: goodness is "
                                           "the sum of squares itself")]), goodness)


def _p_positive(g, theta):
    return torch.sigmoid(g - theta)


def ex1_2(p_positive) -> Result:
    """p_positive(g, theta): the probability that the input is positive, sigmoid(g - theta)."""
    far = torch.tensor([0.0, 900.0, 4500.0, 8000.0, 12000.0])
    cases = [Case((torch.rand(20, generator=generator(s)) * 200, 100.0), "random goodness around theta = 100",
                  grad=("g",)) for s in (1, 2)] + \
            [Case((torch.tensor([3.0, 5.0, 8.0]), 5.0), "goodness below, on and above theta", grad=("g",)),
             Case((far, 4500.0), "goodness thousands away from theta", grad=("g",)),
             Case((torch.tensor([7.5]), 2.0), "a batch of one", grad=("g",)),
             Case((torch.tensor([3.2, 3.7, 4.1]), 3.45), "a theta that is not a whole number", grad=("g",)),
             Case((torch.rand(9, dtype=torch.float64, generator=generator(3)) * 10, 4.0), "float64", grad=("g",)),
             Case((torch.rand(6, 4, generator=generator(4))[:, 1] * 50, 25.0), "a non-contiguous tensor (a column)",
                  grad=("g",))]
    return check(Contract("1.2", _p_positive, cases, output="probability",
                          nonfinite="exp(theta - g) overflows far from theta; torch.sigmoid(g - theta) stays "
                                   "finite in value and gradient",
                          slips=[(lambda g, theta: torch.sigmoid(theta - g),
                                  "you computed sigmoid(theta - g): the sign is reversed. Goodness above the "
                                  "threshold must make 'positive' MORE likely"),
                                 (lambda g, theta: torch.sigmoid(g), "the threshold theta is missing: sigmoid(g - theta)"),
                                 (lambda g, theta: g - theta, "that is the logit g - theta; a probability needs the "
                                                              "sigmoid")]), p_positive)


def _sampler_failure(wrong_labels, y: torch.Tensor, c: int) -> str | None:
    """The first property a sampler of wrong labels breaks on labels y, or None."""
    seed_all(0)
    given = y.clone()
    got = wrong_labels(given, c)
    if got is Ellipsis:
        raise NotImplementedError
    if not unchanged(y, given):
        return in_place_message("y", y, given)
    if not isinstance(got, torch.Tensor) or got.shape != y.shape:
        return f"expected a tensor of shape {tuple(y.shape)}, got {describe(got)}"
    if got.dtype != torch.int64:
        return f"labels should be int64 (torch.long), got {got.dtype}"
    if bool(((got < 0) | (got >= c)).any()):
        return f"some labels fall outside 0..{c - 1}"
    same = int((got == y).sum())
    if same:
        return (f"{same} of {len(y)} negative labels equal the true label (a permutation of the batch does this "
                "about 1/C of the time)")
    seed_all(0)
    if not torch.equal(wrong_labels(y.clone(), c), got):
        return ("the same seed gave other labels: draw with torch's random numbers (torch.randint), which "
                "fwdlib.seed_all seeds, so that a run can be repeated")
    if len(y) >= sampling.DRAWS:        # on a small batch another draw may give the same labels by chance
        draws = [got] + [wrong_labels(y.clone(), c) for _ in range(20)]
        if any(torch.equal(a, b) for i, a in enumerate(draws) for b in draws[i + 1:]):
            return ("two of 21 calls gave exactly the same labels: each batch needs fresh negatives (draw from the "
                    "global generator, without a seed, a generator or a counter of your own)")
        if any(bool((d == y).any()) for d in draws):
            return "a later call returned a true label among the negatives: every call must avoid it"
        torch.manual_seed(0)            # torch's stream alone: a NumPy or `random` sampler gives other labels
        if not torch.equal(wrong_labels(y.clone(), c), got):
            return ("your labels do not come from torch's random numbers: draw with torch.randint (on y's device), "
                    "which also works for labels on a GPU")
        seed_all(1)
        if torch.equal(wrong_labels(y.clone(), c), got):
            return ("another seed gave exactly the same labels: they are not drawn at random (or the function "
                    "reseeds itself)")
        p, worst = sampling.uniformity(y, got, c)
        if p < sampling.ALPHA:
            return (f"the wrong labels are not uniform over the other classes: {worst} (chi-square test on "
                    f"{len(y):,} draws, p = {p:.1e}; a right sampler fails it {sampling.ALPHA:.2%} of the time)")
        for lag in sampling.LAGS:
            if sampling.independence(y, got, c, lag) < sampling.ALPHA:
                return (f"the wrong labels follow a pattern along the batch: offsets {lag} rows apart are not "
                        "independent (draw each row's label at random, e.g. with torch.randint)")
    return None


def ex1_3(wrong_labels) -> Result:
    """wrong_labels(y, num_classes): a uniformly random label different from each y."""
    cases = [((torch.tensor([0, 1, 2, 2]), 3), "a small batch, num_classes = 3"),
             ((torch.tensor([4]), 10), "a batch of one, num_classes = 10"),
             ((torch.tensor([0, 1, 1, 0, 1]), 2), "two classes (the only wrong label is the other one)"),
             ((torch.randint(0, 10, (sampling.DRAWS,), generator=generator(1)), 10),
              f"{sampling.DRAWS:,} random labels of 10 classes"),
             ((torch.randint(0, 2, (sampling.DRAWS,), generator=generator(2)), 4),
              f"{sampling.DRAWS:,} labels of classes 0 and 1 out of num_classes = 4 (the wrong labels include 2 and 3)")]
    return check_each("1.3", wrong_labels, cases, _sampler_failure,
                      "never the true label; uniform over the others; no pattern along the batch; repeatable "
                      "with a seed, fresh on each call")


def ex1_5(ff_val_accuracy) -> Result:
    """ff_val_accuracy(epochs, data): validation accuracy of FF (hidden (64, 64)) after `epochs` epochs."""
    return measured("1.5", ff_val_accuracy, lambda e, d: accuracy_after("ff", {"hidden": (64, 64)}, e, d),
                     (1, 3), experiment_data())
