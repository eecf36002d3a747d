"""Is a sampler of wrong labels right? Two chi-square tests on one large draw, and its seeds.

For true labels y uniform over C classes and the student's negatives n:
- uniformity: the table of counts (y, n), n != y, against (count of y) / (C - 1) in each cell:
  Pearson's X^2 with C (C - 2) degrees of freedom;
- independence along the batch: for each lag in LAGS (neighbours 1, 2 and 3 rows apart, and the
  two halves of the batch row by row), the table of offset pairs ((n_i - y_i) mod C,
  (n_i+lag - y_i+lag) mod C) against uniform over the (C - 1)^2 pairs: (C - 1)^2 - 1 degrees of
  freedom.
Each of the five tests rejects at p < ALPHA = 0.0002, so a right sampler is refused at most 0.1% of
the time (Bonferroni). With DRAWS = 50,000 labels over 10 classes, a sampler that draws, for every
true label, one wrong class 1.3x as often as each other one gives a noncentrality of about 0.0083
per draw (416 in all) on 80 degrees of freedom, where the test's critical value is about 133: it is
caught with power above 99.9%. tests/test_check_properties.py measures both rates by simulation.
"""
from __future__ import annotations

import torch

from ...bench.stats import chi2_sf

ALPHA = 0.0002
DRAWS = 50_000
LAGS = (1, 2, 3, DRAWS // 2)


def pearson(counts: torch.Tensor, expected: torch.Tensor) -> tuple[float, int]:
    """X^2 = sum (observed - expected)^2 / expected over the cells, and the cells' count."""
    counts, expected = counts.double().flatten(), expected.double().flatten()
    return float(((counts - expected) ** 2 / expected).sum()), counts.numel()


def uniformity(y: torch.Tensor, negatives: torch.Tensor, num_classes: int) -> tuple[float, str]:
    """The p-value of 'each wrong label is uniform over the other classes', and the worst cell."""
    c = num_classes
    table = torch.bincount(y * c + negatives, minlength=c * c).view(c, c).double()
    present = table.sum(1) > 0                              # true labels the batch holds
    others = ~torch.eye(c, dtype=torch.bool) & present[:, None]
    expected = table.sum(1, keepdim=True).expand(c, c) / (c - 1)
    statistic, _ = pearson(table[others], expected[others])
    ratio = torch.where(others, table / expected.clamp_min(1e-12), torch.ones(()))
    true, wrong = divmod(int((ratio - 1).abs().argmax()), c)
    worst = f"given true label {true}, label {wrong} came {ratio[true, wrong].item():.2f}x as often as uniform"
    return chi2_sf(statistic, int(present.sum()) * (c - 2)), worst


def independence(y: torch.Tensor, negatives: torch.Tensor, num_classes: int, lag: int) -> float:
    """The p-value of 'offsets `lag` rows apart are independent and uniform' (no pattern along the batch)."""
    c = num_classes
    offsets = (negatives - y) % c - 1                       # 0 .. C-2 for a right answer
    pairs = torch.bincount(offsets[:-lag] * (c - 1) + offsets[lag:], minlength=(c - 1) ** 2)
    expected = torch.full(((c - 1) ** 2,), (len(y) - lag) / (c - 1) ** 2)
    statistic, cells = pearson(pairs, expected)
    return chi2_sf(statistic, cells - 1)
