"""Statistics for a handful of seeds: intervals that cover what they say, four outcomes, Holm.

A rival and its twin run with the same seeds, so each seed k gives one paired value
d_k = rival_k - twin_k (accuracy, in percentage points) or d_k = log(rival_k / twin_k) (time,
energy, memory: costs multiply, so their ratios are compared on the log scale). Over n seeds,

    Student t:  mean(d) +- t(n-1, 1 - alpha/2) * sd(d) / sqrt(n)

covers the true mean with probability exactly 1 - alpha when d is normal (for ratios: when they
are log-normal), at every n >= 2. Ratios are reported back-transformed (a geometric-mean ratio).
Its limit, measured: on strongly skewed differences (log-normal, sigma 1) the interval of the mean
covers only 82-87% at 3-20 seeds. Accuracy differences, each an average over thousands of test
images, are close to normal; costs are compared as log-ratios for exactly this reason.

One entry's values over seeds are summarised by their median and a distribution-free interval
from order statistics: [X(k), X(n+1-k)] covers the true median with probability
1 - 2 P(Binomial(n, 1/2) < k) for any continuous distribution. At 3 seeds the widest one, the
range, is a 75% interval; it reaches 95% from 6 seeds on. The achieved level is printed.

A comparison has a margin m that counts as "no practical difference". With the 95% interval:
beyond +m or beyond -m is a decided difference, wholly inside (-m, +m) is equivalence (two
one-sided tests at 2.5% each), anything else is inconclusive. With no difference at all, a
decided difference happens at most 5% of the time (tests/test_stats.py simulates it).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..typed import ReadsAsMapping

LEVEL = 0.95
MIN_DECISIVE_SEEDS = 5      # below it every outcome is exploratory


# ------------------------------------------------------------------ Student's t distribution
def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with an integer df, in closed form (Abramowitz & Stegun 26.7.3-4):
    with theta = atan(t / sqrt(df)), P(|T| <= t) is a finite series in cos(theta)^2."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:                                   # odd df
        term, series = 1.0, 1.0 if df > 1 else 0.0
        for j in range(1, (df - 1) // 2):
            term *= c2 * (2 * j) / (2 * j + 1)
            series += term
        inside = 2 / math.pi * (theta + s * math.cos(theta) * series)
    else:                                        # even df
        term, series = 1.0, 1.0
        for j in range(1, df // 2):
            term *= c2 * (2 * j - 1) / (2 * j)
            series += term
        inside = s * series
    return 0.5 + math.copysign(inside / 2, t)


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for a chi-square with an integer df, in closed form: for even df = 2k a Poisson
    sum, e^(-x/2) * sum_{j<k} (x/2)^j / j!; for odd df = 2k+1, erfc(sqrt(x/2)) plus
    e^(-x/2) * sum_{1<=j<=k} (x/2)^(j-1/2) / Gamma(j+1/2). Terms in logs, so a huge x gives 0."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:
        return min(1.0, sum(math.exp(-half + j * math.log(half) - math.lgamma(j + 1)) for j in range(df // 2)))
    return min(1.0, math.erfc(math.sqrt(half)) + sum(
        math.exp(-half + (j - 0.5) * math.log(half) - math.lgamma(j + 0.5)) for j in range(1, df // 2 + 1)))


@functools.lru_cache(maxsize=None)
def t_quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p, by bisection on t_cdf (monotone)."""
    if not 0 < p < 1:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p}")
    lo, hi = -1e7, 1e7
    for _ in range(80):                          # 2e7 / 2^80: far below float resolution
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


# ------------------------------------------------------------------ intervals
def order_statistic_confidence(n: int, k: int) -> float:
    """Coverage of [X(k), X(n+1-k)] for the median of a continuous distribution."""
    below = sum(math.comb(n, j) for j in range(k)) / 2 ** n
    return 1 - 2 * below


def median_interval(values, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(median, lo, hi, achieved confidence): the narrowest order-statistic interval whose
    confidence reaches `level`, or the range [min, max] when n is too small to reach it."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    k = 1
    while k + 1 <= (n + 1) // 2 and order_statistic_confidence(n, k + 1) >= level:
        k += 1
    return float(np.median(x)), float(x[k - 1]), float(x[n - k]), order_statistic_confidence(n, k)


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(mean, lo, hi, sd) of the Student t interval; an interval of one value is undefined (nan)."""
    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(np.mean(x))
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(np.std(x, ddof=1))
    half = t_quantile(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, sd


# ------------------------------------------------------------------ comparisons
@dataclass(frozen=True)
class Comparison:
    """A paired comparison on its analysis scale (pp, or log-ratio), with its margin."""
    n: int
    mean: float
    lo: float
    hi: float
    sd: float
    margin: float
    log: bool

    @property
    def deterministic(self) -> bool:
        """Identical across seeds (to rounding): no spread to test, so compared by value."""
        return self.n >= 2 and self.sd <= 1e-12 * max(1.0, abs(self.mean))

    def shown(self, value: float) -> float:
        return math.exp(value) if self.log else value

    @property
    def estimate(self) -> float:
        return self.shown(self.mean)

    @property
    def interval(self) -> tuple[float, float]:
        return self.shown(self.lo), self.shown(self.hi)

    def p_value(self) -> tuple[str, float | None]:
        """The side the data point to ("above", "below", "equivalent"), and the two-sided-scale
        p-value of that outcome's test (None when deterministic or undefined): decided against
        a margin at level alpha exactly when the (1 - alpha) interval lies beyond it or inside."""
        if self.deterministic:
            side = ("above" if self.mean > self.margin else "below" if self.mean < -self.margin
                    else "equivalent")
            return side, None
        if self.n < 2 or not math.isfinite(self.sd):
            return "inconclusive", None
        se, df = self.sd / math.sqrt(self.n), self.n - 1
        above = 1 - t_cdf((self.mean - self.margin) / se, df)     # H0: difference <= +m
        below = t_cdf((self.mean + self.margin) / se, df)         # H0: difference >= -m
        inside = max(t_cdf((self.mean - self.margin) / se, df),    # TOST: both one-sided tests
                     1 - t_cdf((self.mean + self.margin) / se, df))
        side, p = min((("above", above), ("below", below), ("equivalent", inside)), key=lambda sp: sp[1])
        return side, min(1.0, 2 * p)


def compare(values, margin: float, *, log: bool, level: float = LEVEL) -> Comparison:
    """Paired values (differences, or ratios when `log`) against a margin (pp, or a fraction:
    0.05 means ratios within [1/1.05, 1.05])."""
    x = np.log(np.asarray(values, dtype=float)) if log else np.asarray(values, dtype=float)
    mean, lo, hi, sd = t_interval(x, level)
    return Comparison(len(x), mean, lo, hi, sd, math.log1p(margin) if log else margin, log)


def holm(p_values: list[float | None], alpha: float = 1 - LEVEL) -> list[bool]:
    """Holm's step-down: the i-th smallest of k p-values is rejected while p <= alpha / (k - i)
    (i from 0), stopping at the first that is not. None (nothing to test) is never rejected."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    rejected = [False] * len(p_values)
    for rank, (p, i) in enumerate(tested):
        if p > alpha / (len(tested) - rank):
            break
        rejected[i] = True
    return rejected


POWER = 0.8


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return torch.special.ndtr(torch.from_numpy(x)).numpy()


def decided_probability(n: int, mean: float, sd: float, margin: float, alpha: float = 1 - LEVEL) -> float:
    """P(a comparison of n paired seeds is decided) when the paired values are normal with this
    mean and sd: its (1 - alpha) interval lies wholly above +m, wholly below -m or wholly inside.
    With x = the sample mean ~ N(mean, sd^2 / n) and s^2 ~ sd^2 chi2(n-1) / (n-1) independent, and
    h = t(1 - alpha/2, n-1) s / sqrt(n):
        P(above) = E_s Phi((mean - m - h) / (sd / sqrt n)), P(below) likewise, and
        P(inside) = E_s max(0, Phi((m - h - mean) / se) - Phi((-m + h - mean) / se));
    the expectation over s by quadrature on chi2(n-1)'s density."""
    df, se = n - 1, sd / math.sqrt(n)
    top = df + 12 * math.sqrt(2 * df) + 30
    w = np.linspace(top / 800, top, 800)
    density = np.exp((df / 2 - 1) * np.log(w) - w / 2 - (df / 2) * math.log(2) - math.lgamma(df / 2))
    weight = density / density.sum()
    half = t_quantile(1 - alpha / 2, df) * sd * np.sqrt(w / df) / math.sqrt(n)
    above = _normal_cdf((mean - margin - half) / se)
    below = _normal_cdf((-margin - half - mean) / se)
    inside = np.clip(_normal_cdf((margin - half - mean) / se) - _normal_cdf((-margin + half - mean) / se), 0, 1)
    return float(np.sum(weight * (above + below + inside)))


def seeds_to_decide(mean: float, sd: float, margin: float, alpha: float = 1 - LEVEL, power: float = POWER,
                    floor: int = MIN_DECISIVE_SEEDS, most: int = 1000) -> int | None:
    """The fewest paired seeds n >= floor at which the comparison would be decided (beyond the
    margin or inside it) with probability `power`, if the estimate and spread seen were the truth;
    None when the spread is unknown or zero, or when even `most` seeds would not reach it (an
    estimate on the margin itself is never decided reliably). The probability grows with n, so a
    bisection finds it."""
    if not (math.isfinite(sd) and math.isfinite(mean)) or sd <= 0 or margin <= 0:
        return None
    if decided_probability(most, mean, sd, margin, alpha) < power:
        return None
    lo, hi = floor - 1, most                    # P(decided at lo) < power <= P(decided at hi), or lo below the floor
    if decided_probability(floor, mean, sd, margin, alpha) >= power:
        return floor
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decided_probability(mid, mean, sd, margin, alpha) >= power else (mid, hi)
    return hi


def interval_kind(n: int, confidence: float) -> str:
    """What the interval of n seeds is, in the words the report prints."""
    if n < 2:
        return "1 seed: no interval"
    return f"median, order-statistic interval, {confidence:.1%} confidence"


@dataclass(frozen=True, eq=False)
class Summary(ReadsAsMapping):
    """One metric of one entry over its seeds: the median and its order-statistic interval, with the
    interval's achieved confidence; `ratio`: the median's ratio to the twin's (a rival's row);
    `by_machine`: summarised per machine kind instead (`Row.by_machine`)."""
    median: float | None
    lo: float | None
    hi: float | None
    n: int
    interval: str | None
    confidence: float | None
    ratio: float | None = None
    by_machine: bool = False
    left_out: int = 0                  # runs measured but left out: other work spoiled their time and energy


def summarise(values) -> Summary:
    """Median and order-statistic interval (see the module's docstring) of the values measured."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return Summary(None, None, None, 0, None, None)
    median, lo, hi, confidence = median_interval(values)
    return Summary(median, lo, hi, len(values), interval_kind(len(values), confidence), confidence)
