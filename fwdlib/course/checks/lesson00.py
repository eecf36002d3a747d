"""Lesson 00's check: CO2 computed offline from a measured energy and a grid's carbon intensity."""
from __future__ import annotations

from .compare import PLAIN, Context, scalar_compare
from .contract import Case, Contract, check
from .engine import Mismatch, Result, describe

J_PER_KWH = 3.6e6          # 1 kWh = 1000 W x 3600 s


def _co2(energy_j, grid_g_per_kwh):
    return None if energy_j is None else energy_j / J_PER_KWH * grid_g_per_kwh


# (your answer / the right one, what that factor means): a unit slip is a constant factor, so
# naming the factor names the slip on any input, even one the slips below were not tried on.
_FACTORS = ((J_PER_KWH, "3.6 million times too large: the grid factor is per kWh, so convert the joules to kWh "
                        "first (1 kWh = 3.6e6 J)"),
            (J_PER_KWH / 1000, "3600x too large: dividing by 1000 gives kJ, not kWh (1 kWh = 1000 W x 3600 s = 3.6e6 J)"),
            (1000, "1000x too large: joules / 3600 are watt-hours, and the grid factor is per KILOwatt-hour"),
            (1 / 1000, "1000x too small: return grams, not kilograms"),
            (J_PER_KWH ** 2, "you multiplied by 3.6e6 where you must divide: joules are many, kWh few"),
            (-1, "the sign is flipped"))
_numbers = scalar_compare(rel=1e-9, name="your CO2", hints=_FACTORS)   # 3.6e6 +- 1 is off by 3e-7: it shows


def _compare_co2(got, expected, ctx: Context = PLAIN):
    """None where the energy is unknown, before the numbers (scalar_compare's None speaks of windows)."""
    if got is Ellipsis:
        raise NotImplementedError
    if expected is None and got is not None:
        raise Mismatch(f"the energy is unavailable (None) and you returned {describe(got)}: an unknown energy has "
                       "an unknown CO2, so return None (a 0 would be added up as if the run had emitted nothing)")
    _numbers(got, expected, ctx)


def ex0_1(co2_grams) -> Result:
    """co2_grams(energy_j, grid_g_per_kwh): grams of CO2 of `energy_j` joules on a grid emitting
    `grid_g_per_kwh` grams per kWh; None when the energy is unavailable (None)."""
    cases = [Case((3.6e6, 661.926), "one kilowatt-hour on Poland's grid (CodeCarbon's 2023 figure)"),
             Case((17.28 * 3600, 661.926), "the revision's MF run on CIFAR-10, 17.28 Wh, on Poland's grid"),
             Case((1234.5, 56.039), "a minute of a laptop on France's grid"),
             Case((5.0e9, 380.95), "five gigajoules (a GPU node for weeks) on Germany's grid"),
             Case((250, 700), "integer readings"),
             Case((0.0, 661.926), "no energy: 0 J"),
             Case((7200.0, 0.0), "a grid that emits nothing"),
             Case((None, 661.926), "an energy the meter could not measure (None)")]

    def per_joule(energy_j, grid):
        return energy_j * grid

    def per_kilojoule(energy_j, grid):
        return energy_j / 1000 * grid

    def per_watt_hour(energy_j, grid):
        return energy_j / 3600 * grid

    def zero_when_unknown(energy_j, grid):
        return 0.0 if energy_j is None else _co2(energy_j, grid)

    return check(Contract("0.1", _co2, cases, _compare_co2, params=("energy_j", "grid_g_per_kwh"), output="CO2",
                          slips=[(per_joule, "you multiplied joules by grams per kWh: convert the joules to kWh "
                                             "first (1 kWh = 3.6e6 J)"),
                                 (per_kilojoule, "you divided by 1000: that gives kJ, not kWh; 1 kWh = 1000 W x "
                                                 "3600 s = 3.6e6 J"),
                                 (per_watt_hour, "you divided by 3600: that gives Wh, and the grid factor is per "
                                                 "kWh (divide by 3.6e6)"),
                                 (zero_when_unknown, "an unavailable energy is unknown, not 0 J: return None")]),
                 co2_grams)
