"""Lesson 06's checks: the bootstrap interval, the ratio to the twin, the four outcomes, paired
ratios, the seeds a question needs."""
from __future__ import annotations

import math

import numpy as np

from ...bench.stats import t_quantile
from .compare import PLAIN, Context, as_numbers, scalar_compare
from .contract import Case, Contract, check
from .engine import Mismatch, Result, describe


def _reference_bootstrap(values, level=0.95, resamples=10_000, seed=0, statistic=np.median):
    """Percentile bootstrap interval of `statistic` (the exercise's answer, not the report's method)."""
    rng = np.random.default_rng(seed)
    draws = statistic(rng.choice(np.asarray(values, dtype=float), size=(resamples, len(values))), axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))


def _upper_median(draws, axis):
    return np.sort(draws, axis=axis).take(draws.shape[axis] // 2, axis=axis)


def _pair(got) -> tuple[float, float]:
    lo, hi = as_numbers(got, 2, "a pair (lo, hi)")
    return lo, hi


def _compare_interval(got, expected, ctx: Context = PLAIN):
    """Resampling schemes differ between right answers: endpoints may move by a tenth of the width."""
    lo, hi = _pair(got)
    if lo > hi:
        raise Mismatch(f"lo {lo:.4g} is above hi {hi:.4g}")
    interval, at95, level = expected
    width = max(interval[1] - interval[0], at95[1] - at95[0], 1e-12)
    if all(abs(g - e) <= 0.1 * ctx.tol * width + 1e-9 for g, e in zip((lo, hi), interval)):
        return
    if level != 0.95 and all(abs(g - e) <= 0.1 * width + 1e-9 for g, e in zip((lo, hi), at95)):
        raise Mismatch(f"asked for a {level:.0%} interval you returned about the 95% one: your interval ignores "
                       "`level` (the quantiles are (1 - level) / 2 and 1 - (1 - level) / 2)")
    raise Mismatch(f"your interval ({lo:.4g}, {hi:.4g}) is not the percentile interval of the bootstrap medians at "
                   "the requested level (resample with replacement, take the median of each resample, then the "
                   "(1 - level) / 2 and 1 - (1 - level) / 2 quantiles)")


def _seeded(call):
    """The same seed gives the same interval, other seeds other resamples, and `resamples` is the
    number of resamples (one resample: a single median at both ends). (30 values
    and 100 resamples: the quantiles fall between distinct medians, so each seed moves them.)"""
    values = np.random.default_rng(7).normal(10, 2, 30).tolist()
    for args, label in (((list(values), 0.95, 100, 1), "seed 1"), ((list(values), 0.95, 100), "the default seed")):
        if len({_pair(call(args)) for _ in range(3)}) > 1:
            return (f"three calls with {label} gave different intervals: draw from np.random.default_rng(seed), "
                    "with seed=0 as the default", f"30 values, resamples=100, {label} three times")
    lo, hi = _pair(call((list(values), 0.95, 1, 0)))
    if lo != hi:
        return ("with resamples=1 the interval must be one resample's median at both ends: your function "
                "ignores `resamples`", "30 values, resamples=1")
    intervals = {_pair(call((list(values), 0.95, 100, seed))) for seed in range(1, 6)}
    if len(intervals) < 4:
        return (f"seeds 1 to 5 gave only {len(intervals)} distinct interval{'s' * (len(intervals) > 1)}: your function "
                "ignores `seed` or does not draw with it (np.random.default_rng(seed))",
                "30 values, resamples=100, seeds 1 to 5")
    return None


def ex6_1(bootstrap_ci) -> Result:
    """bootstrap_ci(values, level=0.95, resamples=10000, seed=0) -> (lo, hi) of the median."""
    def reference(values, level=0.95, resamples=10_000):
        interval = _reference_bootstrap(values, level, resamples)
        return interval, interval if level == 0.95 else _reference_bootstrap(values, resamples=resamples), level

    rng = np.random.default_rng(3)
    cases = [Case((rng.normal(10, 2, 60).tolist(),), "60 values"),
             Case((rng.exponential(1.0, 40).tolist(),), "40 skewed values (the mean's interval is elsewhere)"),
             Case((rng.normal(10, 2, 60).tolist(), 0.5), "60 values at level 0.5"),
             Case((rng.normal(10, 2, 40).tolist(), 0.95, 200_000), "40 values with 200,000 resamples (a precise "
                  "interval: a level or a quantile off by a little shows)", tol=0.15),
             Case(([0.0, 1.0], 0.4), "two values (an even count: the median averages the middle two) at level 0.4"),
             Case(([5.0, 1.0, 4.0, 2.0, 3.0, 0.0], 0.6), "six unsorted values at level 0.6"),
             Case(([3.0, 3.0, 3.0],), "ties: three equal values"), Case(([7.0],), "a single value")]
    return check(Contract("6.1", reference, cases, _compare_interval, params=("values", "level"),
                          output="interval", extra=(_seeded,),
                          slips=[(lambda values, level=0.95, *_: (_reference_bootstrap(values, level, statistic=np.mean),
                                                                  _reference_bootstrap(values, statistic=np.mean), level),
                                  "your interval is the bootstrap interval of the MEAN; the exercise asks for the "
                                  "MEDIAN (np.median of each resample)"),
                                 (lambda values, level=0.95, *_: (_reference_bootstrap(values, level, statistic=_upper_median),
                                                                  _reference_bootstrap(values, statistic=_upper_median),
                                                                  level),
                                  "your medians take the upper middle value: for an even count the median is the "
                                  "MEAN of the two middle values (np.median does this)")]), bootstrap_ci)


def _ratio(a, b):
    return float(np.median(a) / np.median(b))


def ex6_2(ratio_to_twin) -> Result:
    """ratio_to_twin(rival_values, twin_values): median(rival) / median(twin)."""
    def upper_median(v):
        return sorted(v)[len(v) // 2]

    def lower_median(v):
        return sorted(v)[(len(v) - 1) // 2]

    middle = ("for an even count the median is the MEAN of the two middle values, not the upper or the lower one "
              "(np.median does this; torch.median returns the lower one)")

    cases = [Case(([2.0, 4.0, 9.0], [6.0, 6.0, 7.5]), "three seeds each"),
             Case(([10.0, 12.0, 20.0], [5.0, 7.0, 9.5]), "three seeds each"),
             Case(([9.0, 2.0, 4.0], [7.5, 6.0, 6.0]), "unsorted values"),
             Case(([1.0, 2.0, 3.0, 10.0], [2.0, 4.0, 4.0, 8.0]), "an even count"),
             Case(([30.0, 10.0, 20.0], [4.0, 1.0, 3.0, 2.0]), "an odd and an even count, unsorted"),
             Case(([5.0], [2.0]), "one seed each")]
    return check(Contract("6.2", _ratio, cases, scalar_compare(), params=("rival_values", "twin_values"),
                          output="ratio", slips=[
        (lambda a, b: float(np.mean(a) / np.mean(b)), "that is the ratio of the MEANS; the table uses medians"),
        (lambda a, b: float(np.median(b) / np.median(a)), "upside down: the rival over its twin"),
        (lambda a, b: float(np.median(np.array(a) / np.array(b))), "that is the median of the per-seed ratios; "
                                                                    "this exercise asks for the ratio of the two medians"),
        (lambda a, b: upper_median(a) / upper_median(b), middle),
        (lambda a, b: lower_median(a) / lower_median(b), middle)]),
        ratio_to_twin)


OUTCOMES = ("rival better", "twin better", "equivalent", "inconclusive")


def _outcome(lo, hi, margin):
    if lo > margin:
        return "rival better"
    if hi < -margin:
        return "twin better"
    if -margin < lo and hi < margin:
        return "equivalent"
    return "inconclusive"


def _place(x, m) -> str:
    return ("below -margin" if x < -m else "exactly at -margin" if x == -m else "inside (-margin, +margin)"
            if x < m else "exactly at +margin" if x == m else "above +margin")


def _compare_outcome(got, expected, ctx: Context = PLAIN):
    """Says where the interval's ends lie, not which outcome that makes."""
    if got is Ellipsis:
        raise NotImplementedError
    if got not in OUTCOMES:
        raise Mismatch(f"return one of {', '.join(repr(o) for o in OUTCOMES)}, got {describe(got)}")
    if got != expected:
        lo, hi, m = ctx.args
        why = ("above, below and inside are strict: an end exactly on a margin is not beyond it"
               if m in (abs(lo), abs(hi)) else "that is what comparing the ends with 0 instead of with the margin "
               "gives" if got == _outcome(lo, hi, 0.0) else "compare each end with +margin and -margin")
        raise Mismatch(f"you said {got!r}, where lo is {_place(lo, m)} and hi is {_place(hi, m)}: reread the four "
                       f"cases ({why})")


def ex6_3(outcome) -> Result:
    """outcome(lo, hi, margin): the four outcomes of a paired interval (positive favours the rival).
    Every pair of ends on a grid around both margins, the margins themselves included."""
    def grid(m):
        points = [-2 * m, -1.1 * m, -m, -0.9 * m, 0.0, 0.9 * m, m, 1.1 * m, 2 * m]
        return [(lo, hi, m) for i, lo in enumerate(points) for hi in points[i:]]

    # the intervals off the margins first: a wrong rule shows there, the strictness of "beyond" after
    points = sorted(grid(0.5) + grid(0.05) + grid(2.0), key=lambda case: case[2] in (abs(case[0]), abs(case[1])))
    cases = [Case((lo, hi, m), "an end exactly on a margin" if m in (abs(lo), abs(hi)) else "an interval and a margin")
             for lo, hi, m in points]
    return check(Contract("6.3", _outcome, cases, _compare_outcome, params=("lo", "hi", "margin"), output="outcome",
                          slips=[
        (lambda lo, hi, m: "rival better" if lo > 0 else "twin better" if hi < 0 else "inconclusive",
         "you compared the interval with 0, not with the margin: an interval of small but sure differences "
         "(inside the margin) is 'equivalent', and one that only pokes past the margin is 'inconclusive'"),
        (lambda lo, hi, m: "rival better" if lo > m else "twin better" if hi < -m else "inconclusive",
         "you never answer 'equivalent': an interval wholly inside (-margin, +margin) shows there is no "
         "practical difference (the two one-sided tests)")]), outcome)


def _paired(rival, twin):
    return [rival[s] / twin[s] for s in sorted(set(rival) & set(twin))]


def _compare_ratios(got, expected, ctx: Context = PLAIN):
    numbers = as_numbers(got, len(expected), "one ratio per seed that both ran")
    if all(math.isclose(g, e, rel_tol=1e-6) for g, e in zip(numbers, expected)):
        return
    if all(math.isclose(g, e, rel_tol=1e-6) for g, e in zip(sorted(numbers), sorted(expected))):
        raise Mismatch("your ratios are the right ones in the wrong order: list them in increasing seed order")
    raise Mismatch(f"your ratios {[float(f'{g:.10g}') for g in numbers]} are not rival[s] / twin[s] of the seeds "
                   "both ran")


def ex6_5(paired_ratios) -> Result:
    """paired_ratios(rival, twin): per seed present in both (dicts seed -> value), rival / twin,
    in increasing seed order."""
    cases = [Case(({0: 10.0, 1: 12.0, 2: 11.0}, {0: 20.0, 1: 18.0, 2: 22.0}), "three seeds in both"),
             Case(({3: 5.0, 1: 4.0, 7: 9.0}, {1: 2.0, 3: 5.0}), "a seed only the rival ran, keys not in order"),
             Case(({8: 2.0, 1: 3.0, 16: 4.0}, {16: 1.0, 8: 4.0, 1: 6.0}),
                  "keys whose set does not iterate in increasing order"),
             Case(({0: 1.0, 2: 2.0}, {1: 3.0, 3: 4.0}), "no seed in both"),
             Case(({42: 7.0}, {42: 3.5, 5: 1.0}), "one seed in both")]

    def in_rival_order(rival, twin):
        return [rival[s] / twin[s] for s in rival if s in twin]

    unsorted = ("your ratios are not in increasing seed order (they follow a dict's or a set's order): sort the "
                "common seeds")

    return check(Contract("6.5", _paired, cases, _compare_ratios, params=("rival", "twin"), output="ratios", slips=[
        (lambda rival, twin: [float(np.median(list(rival.values())) / np.median(list(twin.values())))]
         * len(set(rival) & set(twin)),
         "that is the ratio of the medians repeated: pair each seed's rival run with the twin's run of the SAME seed"),
        (lambda rival, twin: [twin[s] / rival[s] for s in sorted(set(rival) & set(twin))],
         "upside down: each ratio is the rival's value over the twin's"),
        (in_rival_order, unsorted), (lambda rival, twin: [rival[s] / twin[s] for s in set(rival) & set(twin)], unsorted),
        (lambda rival, twin: [rival[s] / twin[s] for s in twin if s in rival], unsorted)]),
        paired_ratios)


def _half_width(sd, n):
    return t_quantile(0.975, n - 1) * sd / math.sqrt(n)


def _seeds(sd, margin):
    n = 2
    while _half_width(sd, n) >= margin:
        n += 1
    return n


def _compare_seeds(got, expected, ctx: Context = PLAIN):
    """Judged by the two properties that define the answer, each computed at the student's n."""
    if got is Ellipsis:
        raise NotImplementedError
    if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
        raise Mismatch(f"return a whole number of seeds, got {describe(got)}")
    sd, margin = ctx.args
    if got < 2:
        raise Mismatch(f"{got} seeds give no interval: n starts at 2 (t has n - 1 degrees of freedom)")
    if _half_width(sd, got) >= margin:
        equal = " (they are equal: below is strict, so n must grow by one more)" \
            if math.isclose(_half_width(sd, got), margin, rel_tol=1e-12) else " (below is strict)"
        raise Mismatch(f"at n = {got} the half-width t * sd / sqrt(n) = {_half_width(sd, got):.4g} is not below the "
                       f"margin {margin:.4g}: the interval does not fit yet{equal}")
    if got > 2 and _half_width(sd, got - 1) < margin:
        raise Mismatch(f"{got} seeds is not the fewest: at n = {got - 1} the half-width is already below the margin")


def ex6_6(seeds_for) -> Result:
    """seeds_for(sd, margin): the fewest paired seeds n >= 2 with t(0.975, n-1) * sd / sqrt(n) < margin."""
    cases = [Case(args, "a spread and a margin") for args in ((1.0, 1.0), (0.4, 0.5), (0.3, 0.1), (0.05, 0.02),
                                                           (2.0, 0.5), (1.0, 0.1))] + \
            [Case((1.0, _half_width(1.0, 5)), "a margin exactly equal to the half-width at n = 5"),
             Case((0.01, 1.0), "a spread far below the margin (n = 2 already fits)"),
             Case((1.0, _half_width(1.0, 2)), "a margin exactly equal to the half-width at n = 2")]

    def wrong_z(sd, margin):
        n = 2
        while 1.96 * sd / math.sqrt(n) >= margin:
            n += 1
        return n

    return check(Contract("6.6", _seeds, cases, _compare_seeds, params=("sd", "margin"), output="number of seeds",
                          same=lambda got, wrong: isinstance(got, (int, np.integer)) and not isinstance(got, bool)
                          and got == wrong,
                          slips=[(wrong_z, "you used 1.96 (the normal quantile): with a handful of seeds the spread "
                                           "is itself estimated, so the interval uses Student's t with n - 1 degrees "
                                           "of freedom (wider)"),
                                 (lambda sd, margin: _seeds(sd, margin / 2),
                                  "you made the whole width fit the margin; the half-width (t * sd / sqrt(n)) is "
                                  "what must be below it")]), seeds_for)
