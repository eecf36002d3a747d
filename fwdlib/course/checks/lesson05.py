"""Lesson 05's checks: energy by the trapezoid rule, from a counter, an MLP's forward FLOPs and the peak of a
checkpointed chain of blocks."""
from __future__ import annotations

import numpy as np

from .compare import scalar_compare
from .contract import Case, Contract, check
from .engine import Result


def _trapezoid(times, watts):
    return sum((t1 - t0) * (w0 + w1) / 2 for t0, t1, w0, w1 in zip(times, times[1:], watts, watts[1:]))


def ex5_1(trapezoid_energy) -> Result:
    """trapezoid_energy(times, watts): joules by the trapezoid rule over (time, power) samples."""
    rng = np.random.default_rng(0)
    uneven = np.cumsum(rng.uniform(0.05, 0.2, 40)).tolist()
    cases = [Case((uneven, rng.uniform(80, 700, 40).tolist()), "40 unevenly spaced samples"),
             Case(([0.0, 1.0, 3.0], [100.0, 200.0, 100.0]), "three samples, uneven spacing"),
             Case(([0.0, 2.5], [10.0, 30.0]), "two samples"),
             Case(([100.0, 100.5, 102.0, 102.25, 103.0, 104.5, 105.0], [50.0, 300.0, 120.0, 80.0, 400.0, 60.0, 90.0]),
                  "seven samples starting at t = 100 s"),
             Case(([0.0, 0.1, 0.2, 0.3], [250.0] * 4), "constant power"),
             Case(([0, 1, 2, 4], [10, 20, 40, 40]), "integer readings"),
             Case(([3.0], [100.0]), "a single sample (no interval: 0 J)")]

    def left_rectangles(times, watts):
        return sum((t1 - t0) * w0 for t0, t1, w0 in zip(times, times[1:], watts))

    def mean_power(times, watts):
        return float(np.mean(watts)) * (times[-1] - times[0])

    twice = scalar_compare(hints=((2, "twice the right answer: averaging the two ends needs a / 2"),
                                  (0.5, "half the right answer: the trapezoid's mean of two ends is (w0 + w1) / 2"),
                                  (-1, "the sign is flipped")))
    return check(Contract("5.1", _trapezoid, cases, twice, params=("times", "watts"), output="energy",
                          slips=[(left_rectangles, "that is the left rectangle rule (each interval at its first "
                                                   "sample's power); the trapezoid averages the two ends"),
                                 (mean_power, "the mean power times the duration weighs every sample equally; with "
                                              "uneven spacing each interval must count by its own length"),
                                 (lambda times, watts: 2 * _trapezoid(times, watts),
                                  "twice the right answer: the trapezoid takes the MEAN of the two ends, "
                                  "(w0 + w1) / 2")]), trapezoid_energy)


def _counter(start, end):
    return (end - start) / 1000 if end >= start else None


def ex5_2(counter_energy) -> Result:
    """counter_energy(start_mj, end_mj): joules from an energy counter in millijoules; None if it went backwards."""
    cases = [Case((1_000, 6_500), "a 5.5 J window"), Case((123_456_789, 123_999_999), "a large reading"),
             Case((5_000, 4_000), "a counter that went backwards (reset)"),
             Case((7_000, 7_000), "two equal readings (the counter had not ticked)"),
             Case((10, 9), "a counter one millijoule back"), Case((0, 1), "one millijoule"),
             Case((2 ** 40, 2 ** 40 + 1_234_567), "readings beyond 2**32 (a counter that ran for days)")]
    units = scalar_compare(hints=((1000, "1000x too large: the counter is in millijoules, the answer in joules"),
                                  (0.001, "1000x too small: millijoules or joules?"), (-1, "the sign is flipped")))
    return check(Contract("5.2", _counter, cases, units, params=("start_mj", "end_mj"), output="energy",
                          slips=[(lambda start, end: (end - start) / 1000 if end > start else None,
                                  "two equal readings are 0 J (the counter had not ticked yet), not None: only a "
                                  "counter that went backwards has no answer")]), counter_energy)


def _flops(batch, sizes):
    return 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def ex5_3(mlp_forward_flops) -> Result:
    """mlp_forward_flops(batch, sizes): FLOPs of the forward GEMMs of an MLP with layer sizes
    `sizes` (input first, output last); a multiply-add counts as 2 FLOPs."""
    cases = [Case((128, [784, 1000, 1000, 10]), "the study's MLP"), Case((7, [10, 20, 30, 5]), "three layers"),
             Case((1, [3, 2]), "one sample, one layer"), Case((1, [2, 3, 4, 5, 6, 7]), "one sample, five layers"),
             Case((3, (4, 5, 6)), "sizes given as a tuple")]
    return check(Contract("5.3", _flops, cases, scalar_compare(rel=0), params=("batch", "sizes"), output="FLOP count",
                          slips=[(lambda batch, sizes: _flops(1, sizes), "that is per sample: multiply by the batch"),
                                 (lambda batch, sizes: _flops(batch, sizes) // 2,
                                  "you counted a multiply-add as one FLOP; it is two"),
                                 (lambda batch, sizes: 2 * batch * sizes[0] * sizes[1],
                                  "only the first layer: sum over every pair of neighbouring sizes")]),
                 mlp_forward_flops)


def _checkpointed_peak(inputs, kept):
    return max(sum(inputs[:k]) + kept[k] for k in range(len(kept)))


def ex5_5(checkpointed_peak) -> Result:
    """checkpointed_peak(inputs, kept): the peak bytes a checkpointed chain of blocks keeps for the
    backward pass, block k keeping inputs[k] bytes (its input) in the forward pass and kept[k]
    (its input among them) while the backward pass reruns it."""
    def chain(seed, n, label):
        rng = np.random.default_rng(seed)
        inputs = rng.integers(1, 1000, n).tolist()
        return Case((inputs, [i + int(extra) for i, extra in zip(inputs, rng.integers(0, 5000, n))]), label)

    cases = [Case(([100, 50, 25], [900, 450, 225]), "three blocks, each keeping 9x its input (a CNN's)"),
             Case(([4, 4, 4], [4, 4, 4]), "blocks that keep only their input (Linear+ReLU: nothing to save)"),
             Case(([10], [70]), "one block (checkpointing it saves nothing)"),
             Case(([1, 1000, 1], [2, 1001, 3000]), "the last block is the largest: its rerun is the peak"),
             Case(([500, 400, 300, 200], [600, 450, 320, 205]), "the peak at the last block, every input below it kept"),
             Case(([5, 5, 5, 5], [5000, 6, 6, 6]), "the first block is by far the largest"),
             chain(1, 8, "eight random blocks"), chain(2, 30, "thirty random blocks")]
    return check(Contract("5.5", _checkpointed_peak, cases, compare=scalar_compare(rel=0, name="your peak"),
                          params=("inputs", "kept"), output="peak bytes", slips=[
        (lambda inputs, kept: sum(kept), "that is plain backprop's peak, every block's bytes kept at the end of "
                                         "the forward pass"),
        (lambda inputs, kept: sum(inputs) + max(kept), "the inputs of the blocks after k are gone by the time the "
                                                       "pass reruns block k: it released each block's bytes once it "
                                                       "went through it"),
        (lambda inputs, kept: max(kept), "the inputs of the blocks before k (0..k-1) are still kept while block k "
                                         "reruns"),
        (lambda inputs, kept: max(sum(inputs[k + 1:]) + kept[k] for k in range(len(kept))),
         "the inputs still kept while block k reruns are those of the blocks BEFORE it (0..k-1): the pass goes "
         "from the last block back, and has released those after k"),
        (lambda inputs, kept: sum(inputs[:-1]) + kept[-1], "the peak need not come at the last block's rerun: "
                                                           "take the largest over every block"),
        (lambda inputs, kept: sum(inputs) + max(k - i for i, k in zip(inputs, kept)),
         "while block k reruns, the inputs of the blocks after it are already released: the inputs before k plus "
         "kept[k], the largest over k"),
        (lambda inputs, kept: max(sum(inputs[:k + 1]) + kept[k] for k in range(len(kept))),
         "block k's input is among its kept[k] bytes: counted twice"),
        (lambda inputs, kept: max(sum(inputs), max(kept)), "while block k reruns, the inputs below it are kept "
                                                           "as well: add them to its bytes")]),
                 checkpointed_peak)
