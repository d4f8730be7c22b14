"""Emissions of metered energy from a grid carbon intensity (eCO2mix `taux_co2`), pure numpy.

Meter intervals and intensity slots rarely share a cadence: a half-hourly meter meets quarter-hour
intensities, a quarter-hour meter may meet half-hourly ones. Each interval takes the mean of the
intensity over its own span, weighted by overlap, computed from cumulative integrals of the
step function the slots draw (two searchsorted calls per interval, no Python loop over rows).

A missing intensity is reported, never guessed: when any part of an interval has no slot, or a
slot with a null intensity, the interval's intensity and CO2 are NaN and `covered` is False.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from .intervals import F64, I64, NAT, NS_PER_HOUR, utc_index, utc_ns

KWH_UNIT: Final = "kWh"


def interval_emissions(intervals: pd.DataFrame, intensity: pd.DataFrame) -> pd.DataFrame:
    """The intervals with `intensity` (gCO2/kWh), `co2_kg` and `covered` added.

    `intervals` needs start, end and energy_kwh; where energy_kwh is null and `unit` is kWh,
    `value` is the energy (the returned `energy_kwh` holds what was used). `intensity` needs
    start, end and taux_co2; slots should not overlap (a later slot cuts an earlier one short).
    co2_kg = energy_kwh x intensity / 1000. An interval without a positive duration is not
    covered.
    """
    out = intervals.reset_index(drop=True).copy()
    energy = _energy(out)
    lo = utc_ns(out["start"], name="start")
    hi = utc_ns(out["end"], name="end")
    valid = (lo != NAT) & (hi != NAT) & (hi > lo)
    lo, hi = np.where(valid, lo, 0), np.where(valid, hi, 0)
    slots = _slots(intensity)
    weighted_lo, known_lo = _integrate(*slots, lo)
    weighted_hi, known_hi = _integrate(*slots, hi)
    span = hi - lo
    covered = valid & (known_hi - known_lo == span)
    mean = np.full(len(out), np.nan)
    np.divide(weighted_hi - weighted_lo, span, out=mean, where=covered)
    out["energy_kwh"] = energy
    out["intensity"] = mean
    out["co2_kg"] = energy * mean / 1000.0
    out["covered"] = covered
    return out


def hourly_emissions(per_interval: pd.DataFrame) -> pd.DataFrame:
    """Sum `interval_emissions` output into UTC hours (by interval start).

    Columns: start (UTC hour), co2_kg (sum over the intervals whose CO2 is known; NaN when
    none is), energy_kwh (sum of the known energies), intervals (count), missing (intervals
    whose CO2 is unknown: no intensity for part of them, or no energy) and complete (no
    missing interval). Meant for one meter's intervals; rows without a start are left out.
    """
    start = utc_ns(per_interval["start"], name="start")
    keep = start != NAT
    hour = start[keep] // NS_PER_HOUR * NS_PER_HOUR
    co2 = per_interval["co2_kg"].to_numpy(dtype=np.float64)[keep]
    energy = per_interval["energy_kwh"].to_numpy(dtype=np.float64)[keep]
    frame = pd.DataFrame(
        {"start": hour, "co2_kg": co2, "energy_kwh": energy, "missing": np.isnan(co2)}
    )
    groups = frame.groupby("start", sort=True)
    out = pd.DataFrame(
        {
            "co2_kg": groups["co2_kg"].sum(min_count=1),
            "energy_kwh": groups["energy_kwh"].sum(min_count=1),
            "intervals": groups.size().astype(np.int64),
            "missing": groups["missing"].sum().astype(np.int64),
        }
    )
    hours: I64 = out.index.to_numpy(dtype=np.int64)
    out.insert(0, "start", utc_index(hours))
    out["complete"] = out["missing"].to_numpy() == 0
    return out.reset_index(drop=True)


def _energy(frame: pd.DataFrame) -> F64:
    """energy_kwh, falling back to `value` for rows measured in kWh."""
    energy = pd.to_numeric(frame["energy_kwh"], errors="coerce").to_numpy(dtype=np.float64)
    if "value" in frame.columns and "unit" in frame.columns:
        value = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=np.float64)
        in_kwh = (frame["unit"] == KWH_UNIT).to_numpy(dtype=bool)
        energy = np.where(np.isnan(energy) & in_kwh, value, energy)
    return energy


def _slots(intensity: pd.DataFrame) -> tuple[I64, I64, F64]:
    """Sorted, disjoint intensity slots: (starts, ends, gCO2/kWh with NaN for unknown)."""
    starts = utc_ns(intensity["start"], name="start")
    ends = utc_ns(intensity["end"], name="end")
    values = pd.to_numeric(intensity["taux_co2"], errors="coerce").to_numpy(dtype=np.float64)
    ok = (starts != NAT) & (ends != NAT) & (ends > starts)
    starts, ends, values = starts[ok], ends[ok], values[ok]
    order = np.lexsort((np.arange(len(starts)), starts))
    starts, ends, values = starts[order], ends[order], values[order]
    last = np.ones(len(starts), dtype=bool)  # one slot per start: the later one
    last[:-1] = starts[1:] != starts[:-1]
    starts, ends, values = starts[last], ends[last], values[last]
    ends = np.minimum(ends, np.append(starts[1:], ends[-1:]))
    return starts, ends, np.where(np.isfinite(values), values, np.nan)


def _integrate(starts: I64, ends: I64, values: F64, t: I64) -> tuple[F64, I64]:
    """The intensity integral and the known nanoseconds from the first slot to each t.

    Zero before the first slot; the known duration is an exact integer, so "fully covered" is
    an equality, not a tolerance.
    """
    if len(starts) == 0:
        return np.zeros(len(t), dtype=np.float64), np.zeros(len(t), dtype=np.int64)
    known = ~np.isnan(values)
    widths = ends - starts
    rates = np.where(known, values, 0.0)
    weighted_before = np.concatenate(([0.0], np.cumsum(widths * rates)))
    known_before = np.concatenate(([0], np.cumsum(np.where(known, widths, 0)))).astype(np.int64)
    slot = np.searchsorted(starts, t, side="right") - 1
    inside = slot >= 0
    k = np.where(inside, slot, 0)
    part = np.clip(np.minimum(t, ends[k]) - starts[k], 0, None)
    weighted = np.where(inside, weighted_before[k] + part * rates[k], 0.0)
    covered = np.where(inside, known_before[k] + np.where(known[k], part, 0), 0)
    return weighted, covered.astype(np.int64)
