"""Which unit a gas meter reports, and re-converting a history stored in the wrong one.

The Octopus API does not say whether a gas meter reports kWh or m³, and a wrong choice is off
by the conversion factor (~11.2 kWh per m³). The meter point's `consumption_standard` is its
annual quantity in kWh: a year of readings totals about that in kWh, or about a factor less in
m³ (docs/architecture.md, "Gas units"). A household's use varies by far less than the factor
from year to year, so the nearer of the two on a log scale is the unit, when readings cover
enough of the year to tell.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    # Only for reconvert: the config flow uses fitting_unit and must not import pandas.
    import pandas as pd

UNIT_KWH: Final = "kWh"
UNIT_M3: Final = "m³"
# Readings must cover this many days, scaled up to a year, before they can name a unit.
MIN_DAYS: Final = 60
# A unit is only named when it fits at least this much better than the other (log distance):
# halfway between the two on a log scale would be sqrt(11.2) ≈ 3.3x off for both.
MIN_MARGIN: Final = math.log(2.0)


@dataclass(frozen=True, slots=True)
class UnitFit:
    """How a year of readings fits the annual quantity in each unit."""

    unit: str
    annual_total: float
    annual_quantity_kwh: float
    ratio: float  # the year's total in the fitting unit, as kWh, over the annual quantity


def fitting_unit(
    total: float,
    days: float,
    annual_quantity_kwh: float | None,
    *,
    kwh_per_m3: float,
) -> UnitFit | None:
    """The unit in which `total` readings over `days` days match the annual quantity.

    None when it cannot tell: no annual quantity, too few days, no consumption, or a total
    that fits neither unit clearly better than the other.
    """
    if (
        annual_quantity_kwh is None
        or not math.isfinite(annual_quantity_kwh)
        or annual_quantity_kwh <= 0
        or days < MIN_DAYS
        or not math.isfinite(total)
        or total <= 0
        or kwh_per_m3 <= 1
    ):
        return None
    annual = total * 365.0 / days
    as_kwh = abs(math.log(annual / annual_quantity_kwh))
    as_m3 = abs(math.log(annual * kwh_per_m3 / annual_quantity_kwh))
    if abs(as_kwh - as_m3) < MIN_MARGIN:
        return None
    if as_kwh < as_m3:
        return UnitFit(UNIT_KWH, annual, annual_quantity_kwh, annual / annual_quantity_kwh)
    return UnitFit(UNIT_M3, annual, annual_quantity_kwh, annual * kwh_per_m3 / annual_quantity_kwh)


MJ_PER_KWH: Final = 3.6


def kwh_per_m3(*, calorific_value: float, correction: float) -> float:
    """Energy in one m³ of gas, kWh: correction x CV / 3.6 (as units.gas_m3_to_kwh, no pandas)."""
    if calorific_value <= 0 or correction <= 0:
        raise ValueError("calorific value and correction must be positive")
    return correction * calorific_value / MJ_PER_KWH


def reconvert(
    frame: pd.DataFrame, to_unit: str, *, calorific_value: float, correction: float
) -> pd.DataFrame:
    """Gas intervals stored in the other unit, re-read as `to_unit` (interval table columns).

    The meter's numbers (`value`) stay: they were right, only their unit was wrong. `energy_kwh`
    follows the unit, and the cost follows the energy (Octopus prices gas per kWh): the rate
    per kWh is kept and re-expressed per native unit.
    """
    if to_unit not in (UNIT_KWH, UNIT_M3):
        raise ValueError(f"unsupported gas unit {to_unit!r}")
    factor = kwh_per_m3(calorific_value=calorific_value, correction=correction)
    out = frame.copy()
    value = out["value"].astype("float64")
    was_m3 = out["unit"] == UNIT_M3
    rate = out["rate"].astype("float64")
    per_kwh = rate.where(~was_m3, rate / factor)
    if to_unit == UNIT_M3:
        energy = value * factor
        native_rate = per_kwh * factor
    else:
        energy = value
        native_rate = per_kwh
    out["unit"] = to_unit
    out["energy_kwh"] = energy
    out["rate"] = native_rate
    out["cost"] = (energy * per_kwh).where(rate.notna(), out["cost"].astype("float64"))
    return out
