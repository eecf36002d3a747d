"""Lesson 06's checks: the bootstrap interval, the ratio to the twin, the four outcomes, paired
ratios, the seeds a question needs."""
from __future__ import annotations

import math

import numpy as np

from ...bench.stats import seeds_needed
from .engine import Mismatch, Result, describe, run_cases, scalar_compare


def _reference_bootstrap(values, level=0.95, resamples=10_000, seed=0, statistic=np.median):
    """Percentile bootstrap interval of `statistic` (the exercise's answer, not the report's method)."""
    rng = np.random.default_rng(seed)
    draws = statistic(rng.choice(np.asarray(values, dtype=float), size=(resamples, len(values))), axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))


def ex6_1(bootstrap_ci) -> bool:
    """bootstrap_ci(values, level=0.95, resamples=10000, seed=0) -> (lo, hi) of the median."""
    def reference(values, level=0.95):
        interval = _reference_bootstrap(values, level)
        return interval, interval if level == 0.95 else _reference_bootstrap(values), level

    def near(got, interval, width):
        # Resampling schemes differ between correct solutions: allow the Monte Carlo error.
        return all(abs(g - e) <= 0.1 * width + 1e-9 for g, e in zip(got, interval))

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch(f"return a pair (lo, hi), got {describe(got)}")
        lo, hi = (float(v) for v in got)
        if lo > hi:
            raise Mismatch(f"lo {lo:.4g} is above hi {hi:.4g}")
        interval, at95, level = expected
        width = max(interval[1] - interval[0], at95[1] - at95[0], 1e-12)
        if near((lo, hi), interval, width):
            return
        def distance(other):
            return abs(lo - other[0]) + abs(hi - other[1])
        if level != 0.95 and distance(at95) < distance(interval):
            raise Mismatch(f"asked for a {level:.0%} interval you returned about the 95% one: your interval "
                           "ignores `level` (the quantiles are (1 - level) / 2 and 1 - (1 - level) / 2)")
        raise Mismatch(f"your interval ({lo:.4g}, {hi:.4g}) is not the percentile interval of the bootstrap "
                       "medians at the requested level (resample with replacement, take the median of each "
                       "resample, then the (1 - level) / 2 and 1 - (1 - level) / 2 quantiles)")

    rng = np.random.default_rng(3)
    cases = [([3.0, 3.0, 3.0],), ([0.0, 1.0],), (rng.normal(10, 2, 60).tolist(),),
             (rng.exponential(1.0, 40).tolist(),),            # skewed: the mean's interval is elsewhere
             (rng.normal(10, 2, 60).tolist(), 0.5)]           # another level: the quantiles follow it
    return run_cases("6.1", bootstrap_ci, cases, reference, compare,
                slips=[(lambda values, level=0.95, *_: (_reference_bootstrap(values, level, statistic=np.mean),
                                                        _reference_bootstrap(values, statistic=np.mean), level),
                        "your interval is the bootstrap interval of the MEAN; the exercise asks for the MEDIAN "
                        "(np.median of each resample)")])


def ex6_2(ratio_to_twin) -> bool:
    """ratio_to_twin(rival_values, twin_values): median(rival) / median(twin)."""
    cases = [([2.0, 4.0, 9.0], [6.0, 6.0, 7.5]), ([10.0, 12.0, 20.0], [5.0, 7.0, 9.5])]
    return run_cases("6.2", ratio_to_twin, cases, lambda a, b: float(np.median(a) / np.median(b)), scalar_compare(),
                     slips=[(lambda a, b: float(np.mean(a) / np.mean(b)), "that is the ratio of the MEANS; the "
                             "table uses medians"),
                            (lambda a, b: float(np.median(b) / np.median(a)), "upside down: the rival over its twin"),
                            (lambda a, b: float(np.median(np.array(a) / np.array(b))), "that is the median of "
                             "the per-seed ratios; this exercise asks for the ratio of the two medians")])


OUTCOMES = ("rival better", "twin better", "equivalent", "inconclusive")


def _outcome(lo, hi, margin):
    if lo > margin:
        return "rival better"
    if hi < -margin:
        return "twin better"
    if -margin < lo and hi < margin:
        return "equivalent"
    return "inconclusive"


def ex6_3(outcome) -> bool:
    """outcome(lo, hi, margin): the four outcomes of a paired interval (positive favours the rival)."""
    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if got not in OUTCOMES:
            raise Mismatch(f"return one of {', '.join(repr(o) for o in OUTCOMES)}, got {describe(got)}")
        if got != expected:
            raise Mismatch(f"the interval and the margin say {expected!r}, you said {got!r}")

    cases = [(0.6, 0.9, 0.5), (-0.9, -0.7, 0.5), (-0.2, 0.3, 0.5), (0.1, 0.4, 0.5),     # each outcome
             (0.3, 0.9, 0.5), (-0.8, 0.2, 0.5), (-0.7, 0.7, 0.5), (0.02, 0.04, 0.05)]    # straddling, wide, ratios
    return run_cases("6.3", outcome, cases, _outcome, compare, slips=[
        (lambda lo, hi, m: "rival better" if lo > 0 else "twin better" if hi < 0 else "inconclusive",
         "you compared the interval with 0, not with the margin: an interval of small but sure differences "
         "(inside the margin) is 'equivalent', and one that only pokes past the margin is 'inconclusive'"),
        (lambda lo, hi, m: "rival better" if lo > m else "twin better" if hi < -m else "inconclusive",
         "you never answer 'equivalent': an interval wholly inside (-margin, +margin) shows there is no "
         "practical difference (the two one-sided tests)")])


def ex6_5(paired_ratios) -> Result:
    """paired_ratios(rival, twin): per seed present in both (dicts seed -> value), rival / twin,
    in increasing seed order."""
    def reference(rival, twin):
        return [rival[s] / twin[s] for s in sorted(set(rival) & set(twin))]

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            raise Mismatch(f"return one ratio per seed that both ran ({len(expected)}), got {describe(got)}")
        if not all(math.isclose(float(g), e, rel_tol=1e-9) for g, e in zip(got, expected)):
            raise Mismatch(f"your ratios {[round(float(g), 4) for g in got]} are not the per-seed ratios")

    cases = [({0: 10.0, 1: 12.0, 2: 11.0}, {0: 20.0, 1: 18.0, 2: 22.0}), ({3: 5.0, 1: 4.0, 7: 9.0}, {1: 2.0, 3: 5.0})]
    return run_cases("6.5", paired_ratios, cases, reference, compare,
                slips=[(lambda rival, twin: [float(np.median(list(rival.values())) / np.median(list(twin.values())))]
                        * len(set(rival) & set(twin)),
                        "that is the ratio of the medians repeated: pair each seed's rival run with the twin's "
                        "run of the SAME seed")])


def ex6_6(seeds_for) -> Result:
    """seeds_for(sd, margin): the fewest paired seeds n >= 2 with t(0.975, n-1) * sd / sqrt(n) < margin."""
    cases = [(1.0, 1.0), (0.4, 0.5), (0.3, 0.1), (0.05, 0.02), (2.0, 0.5)]

    def wrong_z(sd, margin):
        n = 2
        while 1.96 * sd / math.sqrt(n) >= margin:
            n += 1
        return n

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            raise Mismatch(f"return a whole number of seeds, got {describe(got)}")
        if got != expected:
            raise Mismatch(f"{got} seeds is not the fewest whose interval fits inside the margin; it is {expected}")

    return run_cases("6.6", seeds_for, cases, seeds_needed, compare, slips=[
        (wrong_z, "you used 1.96 (the normal quantile): with a handful of seeds the spread is itself "
                  "estimated, so the interval uses Student's t with n - 1 degrees of freedom (wider)"),
        (lambda sd, margin: seeds_needed(sd, margin / 2), "you made the whole width fit the margin; the half-width (t * sd / sqrt(n)) is what must "
                     "be below it")])
