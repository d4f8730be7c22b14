"""Plausibility bounds: the most one home's meter can record in an hour, per kind and unit.

A reading above its bound is a fault (an overflow, a unit mix-up, a placeholder such as 1e12),
not consumption: `intervals.normalize` sets it aside with the reason `implausible_value` before
it reaches a total, a statistic or the archive. The bounds are generous - a large house with
heat pump, EV chargers and a sauna stays far below them - so a real reading is never refused.

Bounds are given per hour in a base unit (kWh for energy, m³ for volume), converted to the
row's unit with Home Assistant's unit converters (analytics.units) and scaled by the interval's
length. A kind without a bound (grid series) or a unit that is neither energy nor volume has
no bound; nor has a kind measured in a dimension the table does not name (water in kWh).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from .units import energy_unit_factor, volume_unit_factor

ENERGY_BASE: Final = "kWh"
VOLUME_BASE: Final = "m³"

# (kind, base unit) -> the most a home records in one hour, in that base unit.
MAX_PER_HOUR: Final[Mapping[tuple[str, str], float]] = MappingProxyType(
    {
        ("electricity", ENERGY_BASE): 2_000.0,
        ("gas", ENERGY_BASE): 2_000.0,
        ("heat", ENERGY_BASE): 2_000.0,
        ("gas", VOLUME_BASE): 200.0,
        ("water", VOLUME_BASE): 10.0,
    }
)


def max_per_hour(kind: str, unit: str) -> float | None:
    """The bound of one hour of `kind` in `unit` (e.g. 2,000,000 for electricity in Wh).

    None when the table has no bound for the kind in the unit's dimension, or the unit is
    neither an energy nor a volume unit.
    """
    for base, factor in (
        (ENERGY_BASE, energy_unit_factor(unit)),
        (VOLUME_BASE, volume_unit_factor(unit)),
    ):
        if factor is None:
            continue
        bound = MAX_PER_HOUR.get((kind, base))
        if bound is None:
            return None
        # factor turns `unit` into the base: x number when multiply, else / number.
        multiply, number = factor
        return bound / number if multiply else bound * number
    return None


def implausible(
    values: npt.NDArray[np.float64], hours: npt.NDArray[np.float64], *, kind: str, unit: str
) -> npt.NDArray[np.bool_]:
    """Where |value| exceeds the bound of `kind`/`unit` over its interval of `hours` hours.

    The magnitude counts, so a negative correction or export row is held to the same bound.
    NaN (unknown) is never implausible; no bound, nothing is.
    """
    values = np.asarray(values, dtype=np.float64)
    bound = max_per_hour(kind, unit)
    if bound is None:
        return np.zeros(len(values), dtype=bool)
    limit = bound * np.asarray(hours, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.abs(values) > limit, dtype=bool)
