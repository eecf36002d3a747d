"""Lesson 07's checks: how an interval narrows as a class's seeds arrive, and how a class's runs
on machines of different speeds are pooled (paired ratios, never absolute times)."""
from __future__ import annotations

import math

import numpy as np

from ...bench.stats import t_quantile
from .compare import scalar_compare
from .contract import Case, Contract, check
from .engine import Result


def _half_width(n):
    """The 95% interval's half-width per unit of spread: t(0.975, n - 1) / sqrt(n)."""
    return t_quantile(0.975, n - 1) / math.sqrt(n)


def _narrowing(n_from, n_to):
    return _half_width(n_to) / _half_width(n_from)


def ex7_3(narrowing) -> Result:
    """narrowing(n_from, n_to): the half-width at n_to paired seeds over the half-width at n_from,
    at the same spread."""
    # small n first: there t falls fastest, so every slip that leaves t out shows at once
    cases = [Case((3, 8), "from 3 to 8 seeds (the lesson's study)"), Case((2, 3), "from 2 to 3 seeds (t: 12.7 to 4.30)"),
             Case((5, 20), "from 5 to 20 seeds"), Case((2, 100), "from 2 to 100 seeds"),
             Case((30, 120), "from 30 to 120 seeds (t is close to 1.96 already)"),
             Case((10, 5), "from 10 back to 5 seeds (fewer seeds: wider)"), Case((8, 8), "the same number of seeds"),
             Case((3, 4), "one seed more")]

    def without_t(n_from, n_to):
        return math.sqrt(n_from / n_to)

    def t_only(n_from, n_to):
        return t_quantile(0.975, n_to - 1) / t_quantile(0.975, n_from - 1)

    def by_n(n_from, n_to):
        return t_quantile(0.975, n_to - 1) / n_to / (t_quantile(0.975, n_from - 1) / n_from)

    def quantile(p, shift=0):
        return lambda n_from, n_to: (t_quantile(p, n_to - 1 + shift) / math.sqrt(n_to)
                                     / (t_quantile(p, n_from - 1 + shift) / math.sqrt(n_from)))

    return check(Contract("7.3", _narrowing, cases, scalar_compare(name="your ratio"), params=("n_from", "n_to"),
                          output="ratio", slips=[
        (without_t, "that is sqrt(n_from / n_to), the narrowing of sd / sqrt(n) alone (the normal 1.96 at both ends "
                    "cancels to the same): with a handful of seeds t(0.975, n - 1) falls too, from 12.7 at 2 seeds to "
                    "4.30 at 3, so the interval narrows faster than sqrt(n) says"),
        (lambda n_from, n_to: 1 / _narrowing(n_from, n_to),
         "upside down: the ratio is the half-width at n_to over the half-width at n_from (below 1 when seeds are added)"),
        (t_only, "you left out sqrt(n): the half-width is t(0.975, n - 1) * sd / sqrt(n)"),
        (by_n, "you divided by n: the standard error of a mean is sd / sqrt(n), not sd / n"),
        (quantile(0.975, shift=1), "t has n - 1 degrees of freedom (the spread is estimated from the same n values), "
                                   "not n"),
        (quantile(0.95), "a two-sided 95% interval leaves 2.5% on each side: its quantile is t(0.975, n - 1), not "
                         "t(0.95, n - 1)")]), narrowing)


def _runs(*units, twin_first=()):
    """The run records of units (name, machine, rival seconds, twin seconds), each unit's two runs
    in the order they trained: the plan counterbalances, so some units train the twin first."""
    out = []
    for name, machine, rival, twin in units:
        pair = [{"unit": name, "machine": machine, "role": "rival", "seconds": rival},
                {"unit": name, "machine": machine, "role": "twin", "seconds": twin}]
        out += pair[::-1] if name in twin_first else pair
    return out


def _pairs(runs):
    """unit -> (rival seconds, twin seconds)."""
    seconds = {}
    for run in runs:
        seconds.setdefault(run["unit"], {})[run["role"]] = run["seconds"]
    return [(s["rival"], s["twin"]) for s in seconds.values()]


def _pooled(runs):
    """The geometric mean of the per-unit ratios: exp(mean(log(rival / twin)))."""
    return math.exp(float(np.mean([math.log(r / t) for r, t in _pairs(runs)])))


def _class_of_machines():
    """Twenty units on four machines whose speeds differ tenfold, in the order they finished."""
    rng = np.random.default_rng(7)
    speed = {"gpu-server": 1.0, "laptop-1": 6.0, "laptop-2": 9.0, "laptop-3": 11.0}
    ratio = {"gpu-server": 3.8, "laptop-1": 1.3, "laptop-2": 1.2, "laptop-3": 1.25}   # a pair's ratio differs by machine
    machines = ["gpu-server"] * 8 + ["laptop-1"] * 5 + ["laptop-2"] * 4 + ["laptop-3"] * 3
    units = [(f"u{k}", m, round(float(20 * speed[m] * ratio[m] * rng.lognormal(0, 0.05)), 2),
              round(float(20 * speed[m] * rng.lognormal(0, 0.05)), 2)) for k, m in enumerate(machines)]
    order = rng.permutation(len(units))
    return _runs(*(units[i] for i in order), twin_first={f"u{k}" for k in range(0, 20, 3)})


def ex7_4(pooled_ratio) -> Result:
    """pooled_ratio(runs): runs are dicts (unit, machine, role 'rival' or 'twin', seconds); a unit's
    two runs share its machine. The geometric mean over units of rival / twin."""
    interleaved = _runs(("u0", "laptop-1", 61.0, 50.0), ("u1", "laptop-2", 95.0, 70.0))
    interleaved = [interleaved[i] for i in (0, 2, 1, 3)]               # two workers finishing at once
    # machines of different speeds first: there pooling absolute times goes wrong the most
    cases = [Case((_runs(("u0", "gpu-1", 41.0, 10.2), ("u1", "gpu-1", 39.5, 9.8), ("u2", "laptop-1", 112.0, 101.0),
                         ("u3", "laptop-2", 131.0, 118.0), ("u4", "laptop-2", 108.0, 99.0), twin_first={"u1", "u3"}),),
                  "a GPU server and two laptops, ten times slower, some units training the twin first"),
             Case((_runs(("u0", "laptop-1", 52.0, 44.0), ("u1", "laptop-1", 49.5, 47.0),
                         ("u2", "laptop-1", 55.1, 43.2)),), "three units on one laptop"),
             Case((_runs(("u7", "laptop-3", 30.0, 40.0)),), "a single unit"),
             Case((interleaved,), "the runs of two units interleaved (two workers finished at once)"),
             Case((_runs(("u0", "gpu-1", 8.0, 10.0), ("u1", "gpu-1", 7.5, 10.5), ("u2", "laptop-1", 130.0, 100.0),
                         ("u3", "laptop-1", 126.0, 104.0), ("u4", "laptop-2", 150.0, 120.0), twin_first={"u2"}),),
                  "the rival faster than its twin on the server, slower on the laptops"),
             Case((_runs(("a", "pc", 12, 10), ("b", "pc", 30, 20), ("c", "mac", 7, 7)),), "integer seconds"),
             Case((_class_of_machines(),), "twenty units on four machines, in the order they finished")]

    def medians(runs):
        return float(np.median([r for r, _ in _pairs(runs)]) / np.median([t for _, t in _pairs(runs)]))

    def totals(runs):
        return sum(r for r, _ in _pairs(runs)) / sum(t for _, t in _pairs(runs))

    def mean_ratio(runs):
        return float(np.mean([r / t for r, t in _pairs(runs)]))

    def median_ratio(runs):
        return float(np.median([r / t for r, t in _pairs(runs)]))

    def inverted(runs):
        return 1 / _pooled(runs)

    return check(Contract("7.4", _pooled, cases, scalar_compare(name="your ratio"), params=("runs",), output="ratio",
                          slips=[
        (medians, "that is the ratio of the pooled medians of absolute times: a median over a GPU server and a laptop "
                  "describes neither, and it moves with which machine ran more units; divide each unit's rival time "
                  "by ITS twin's (same unit, same machine), then average the log ratios"),
        (totals, "that is the ratio of the total (or mean) times: the slowest machines' units weigh most; each unit "
                 "must count once, by its own rival / twin ratio"),
        (mean_ratio, "that is the arithmetic mean of the per-unit ratios; costs are compared on the log scale: "
                     "exp of the mean of log(rival / twin), the geometric mean"),
        (median_ratio, "that is the median of the per-unit ratios; the report's estimate is the geometric mean: "
                       "exp of the mean of log(rival / twin)"),
        (inverted, "upside down: each ratio is the rival's time over its twin's")]), pooled_ratio)
