"""Lesson 06's checks: the bootstrap interval, the ratio to the twin, a gain that survives, paired ratios."""
from __future__ import annotations

import math

import numpy as np

from ...bench.report import bootstrap_ci
from .engine import Mismatch, Result, describe, run_cases, scalar_compare


def _reference_bootstrap(values, level=0.95, resamples=10_000, seed=0, statistic=np.median):
    return bootstrap_ci(values, level=level, resamples=resamples, seed=seed, statistic=statistic)


def ex6_1(bootstrap_ci) -> bool:
    """bootstrap_ci(values, level=0.95, resamples=10000, seed=0) -> (lo, hi) of the median."""
    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch(f"return a pair (lo, hi), got {describe(got)}")
        lo, hi = (float(v) for v in got)
        if lo > hi:
            raise Mismatch(f"lo {lo:.4g} is above hi {hi:.4g}")
        # Resampling schemes differ between correct solutions: allow the Monte Carlo error.
        width = max(expected[1] - expected[0], 1e-12)
        if abs(lo - expected[0]) > 0.1 * width + 1e-9 or abs(hi - expected[1]) > 0.1 * width + 1e-9:
            raise Mismatch(f"your interval ({lo:.4g}, {hi:.4g}) is not the 95% percentile interval of the "
                            "bootstrap medians (resample with replacement, take the median of each "
                            "resample, then the 2.5% and 97.5% quantiles)")

    rng = np.random.default_rng(3)
    cases = [([3.0, 3.0, 3.0],), ([0.0, 1.0],), (rng.normal(10, 2, 60).tolist(),),
             (rng.exponential(1.0, 40).tolist(),)]          # skewed: the mean's interval is elsewhere
    return run_cases("6.1", bootstrap_ci, cases, _reference_bootstrap, compare,
                slips=[(lambda values, *_: _reference_bootstrap(values, statistic=np.mean),
                        "your interval is the bootstrap interval of the MEAN; the report uses the MEDIAN "
                        "(np.median of each resample)")])


def ex6_2(ratio_to_twin) -> bool:
    """ratio_to_twin(rival_values, twin_values): median(rival) / median(twin)."""
    cases = [([2.0, 4.0, 9.0], [6.0, 6.0, 7.5]), ([10.0, 12.0, 20.0], [5.0, 7.0, 9.5])]
    return run_cases("6.2", ratio_to_twin, cases, lambda a, b: float(np.median(a) / np.median(b)), scalar_compare())


def ex6_3(gain_survives) -> bool:
    """gain_survives(rival, twin, higher_is_better) -> True only when the rival's 95% bootstrap
    interval lies entirely on the better side of the twin's."""
    def reference(rival, twin, higher):
        (rlo, rhi), (tlo, thi) = _reference_bootstrap(rival), _reference_bootstrap(twin)
        return (rlo > thi if higher else rhi < tlo), (rlo, rhi), (tlo, thi), higher

    def compare(got, expected):
        if got is Ellipsis:
            raise NotImplementedError
        answer, rival, twin, higher = expected
        if not isinstance(got, (bool, np.bool_)):
            raise Mismatch(f"return True or False, got {describe(got)}")
        if bool(got) != answer:
            raise Mismatch(f"you answered {bool(got)}, but the intervals say {answer}: rival "
                            f"[{rival[0]:.4g}, {rival[1]:.4g}] against twin [{twin[0]:.4g}, {twin[1]:.4g}], "
                            f"{'higher' if higher else 'lower'} is better")

    cases = [([90.1, 90.3, 90.2], [89.0, 89.2, 89.1], True),     # clear accuracy gain
             ([90.1, 88.0, 91.5], [89.0, 90.5, 89.8], True),     # overlapping: unresolved
             ([10.0, 10.5, 10.2], [20.0, 21.0, 20.5], False),    # time: lower is better
             ([10.0, 10.5, 10.2], [20.0, 21.0, 20.5], True)]     # faster is not "higher"
    return run_cases("6.3", gain_survives, cases, reference, compare)


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
