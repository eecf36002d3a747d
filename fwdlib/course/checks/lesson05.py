"""Lesson 05's checks: energy by the trapezoid rule, from a counter, and an MLP's forward FLOPs."""
from __future__ import annotations


import numpy as np

from .engine import run_cases, scalar_compare


def ex5_1(trapezoid_energy) -> bool:
    """trapezoid_energy(times, watts): joules by the trapezoid rule over (time, power) samples."""
    def reference(times, watts):
        return sum((t1 - t0) * (w0 + w1) / 2 for t0, t1, w0, w1 in zip(times, times[1:], watts, watts[1:]))

    rng = np.random.default_rng(0)
    uneven = np.cumsum(rng.uniform(0.05, 0.2, 40)).tolist()
    cases = [([0.0, 1.0, 3.0], [100.0, 200.0, 100.0]), (uneven, rng.uniform(80, 700, 40).tolist())]
    def left_rectangles(times, watts):
        return sum((t1 - t0) * w0 for t0, t1, w0 in zip(times, times[1:], watts))

    def mean_power(times, watts):
        return float(np.mean(watts)) * (times[-1] - times[0])

    return run_cases("5.1", trapezoid_energy, cases, reference, scalar_compare(), slips=[
        (left_rectangles, "that is the left rectangle rule (each interval at its first sample's power); the "
                          "trapezoid averages the two ends"),
        (mean_power, "the mean power times the duration weighs every sample equally; with uneven spacing each "
                     "interval must count by its own length"),
        (lambda times, watts: sum((t1 - t0) * (w0 + w1) for t0, t1, w0, w1 in zip(times, times[1:], watts, watts[1:])),
         "twice the right answer: the trapezoid takes the MEAN of the two ends, (w0 + w1) / 2")])


def ex5_2(counter_energy) -> bool:
    """counter_energy(start_mj, end_mj): joules from an energy counter in millijoules; None if it went backwards."""
    cases = [(1_000, 6_500), (123_456_789, 123_999_999), (5_000, 4_000), (7_000, 7_000)]
    return run_cases("5.2", counter_energy, cases,
                lambda start, end: (end - start) / 1000 if end >= start else None, scalar_compare(),
                slips=[(lambda start, end: (end - start) / 1000 if end > start else None,
                        "two equal readings are 0 J (the counter had not ticked yet), not None: only a "
                        "counter that went backwards has no answer")])


def ex5_3(mlp_forward_flops) -> bool:
    """mlp_forward_flops(batch, sizes): FLOPs of the forward GEMMs of an MLP with layer sizes
    `sizes` (input first, output last); a multiply-add counts as 2 FLOPs."""
    def reference(batch, sizes):
        return 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    cases = [(1, [3, 2]), (128, [784, 1000, 1000, 10]), (7, [10, 20, 30, 5])]
    return run_cases("5.3", mlp_forward_flops, cases, reference, scalar_compare(), slips=[
        (lambda batch, sizes: reference(1, sizes), "that is per sample: multiply by the batch"),
        (lambda batch, sizes: reference(batch, sizes) // 2, "you counted a multiply-add as one FLOP; it is two"),
        (lambda batch, sizes: 2 * batch * sizes[0] * sizes[1], "only the first layer: sum over every pair of "
                                                                "neighbouring sizes")])
