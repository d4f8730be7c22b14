"""Unit conversion for the interval table: energy to kWh, volume to m³, gas m³ to kWh.

Factors come from Home Assistant's EnergyConverter and VolumeConverter so that MeterLake and the
Energy dashboard agree. One refinement keeps decimal units exact: where HA's factor is the
reciprocal of a whole number (MWh: 0.001 per kWh) we multiply by that whole number (x 1000)
instead of dividing by 0.001, which in binary floating point is off by an ulp for 1 in 8 values.
"""

from __future__ import annotations

from typing import Final, overload

from homeassistant.util.unit_conversion import EnergyConverter, VolumeConverter
import numpy as np
import numpy.typing as npt
import pandas as pd

GAS_VOLUME_CORRECTION: Final = 1.02264
GAS_CALORIFIC_VALUE: Final = 39.5
MJ_PER_KWH: Final = 3.6

# Spellings sources use for the same unit.
_ALIASES: Final = {"m3": "m³", "M3": "m³", "ft3": "ft³", "l": "L", "ccf": "CCF", "kwh": "kWh"}

type Numbers = float | npt.NDArray[np.float64] | pd.Series


def _canonical(unit: str) -> str:
    return _ALIASES.get(unit, unit)


def _factor(ratios: dict[str | None, float], unit: str, base: str) -> tuple[bool, float] | None:
    """How to go from `unit` to `base`: (True, k) means x k, (False, k) means / k."""
    unit = _canonical(unit)
    if unit not in ratios:
        return None
    ratio = float(ratios[unit]) / float(ratios[base])
    if ratio < 1:
        inverse = 1 / ratio
        whole = round(inverse)
        if whole and abs(inverse - whole) <= 1e-9 * inverse:
            return True, float(whole)
    return False, ratio


def energy_unit_factor(unit: str) -> tuple[bool, float] | None:
    """Conversion of an HA energy unit to kWh as (multiply?, number); None if not energy."""
    return _factor(dict(EnergyConverter._UNIT_CONVERSION), unit, "kWh")


def volume_unit_factor(unit: str) -> tuple[bool, float] | None:
    """Conversion of an HA volume unit to m³ as (multiply?, number); None if not a volume."""
    return _factor(dict(VolumeConverter._UNIT_CONVERSION), unit, "m³")


@overload
def _apply(values: float, factor: tuple[bool, float]) -> float: ...
@overload
def _apply(values: pd.Series, factor: tuple[bool, float]) -> pd.Series: ...
@overload
def _apply(
    values: npt.NDArray[np.float64], factor: tuple[bool, float]
) -> npt.NDArray[np.float64]: ...
def _apply(values: Numbers, factor: tuple[bool, float]) -> Numbers:
    multiply, number = factor
    if isinstance(values, pd.Series):
        floats = values.astype(np.float64)
        return floats * number if multiply else floats / number
    if isinstance(values, np.ndarray):
        arr = np.asarray(values, dtype=np.float64)
        return arr * number if multiply else arr / number
    return float(values) * number if multiply else float(values) / number


def to_kwh[T: (float, npt.NDArray[np.float64], pd.Series)](values: T, unit: str) -> T:
    """Energy in any HA energy unit (Wh, kWh, MWh, MJ, ...) as kWh; ValueError otherwise."""
    factor = energy_unit_factor(unit)
    if factor is None:
        raise ValueError(f"not an energy unit: {unit!r}")
    return _apply(values, factor)


def to_cubic_meters[T: (float, npt.NDArray[np.float64], pd.Series)](values: T, unit: str) -> T:
    """Volume in any HA volume unit (m³, L, ft³, CCF, ...) as m³; ValueError otherwise."""
    factor = volume_unit_factor(unit)
    if factor is None:
        raise ValueError(f"not a volume unit: {unit!r}")
    return _apply(values, factor)


def _check_gas(calorific_value: float, correction: float) -> None:
    if not (calorific_value > 0 and np.isfinite(calorific_value)):
        raise ValueError(f"calorific value must be positive, got {calorific_value!r}")
    if not (correction > 0 and np.isfinite(correction)):
        raise ValueError(f"volume correction must be positive, got {correction!r}")


def gas_m3_to_kwh[T: (float, npt.NDArray[np.float64], pd.Series)](
    m3: T,
    *,
    calorific_value: float = GAS_CALORIFIC_VALUE,
    correction: float = GAS_VOLUME_CORRECTION,
) -> T:
    """Gas energy: kWh = m³ x correction x CV / 3.6 (CV in MJ/m³), left to right as written."""
    _check_gas(calorific_value, correction)
    if isinstance(m3, pd.Series):
        return m3.astype(np.float64) * correction * calorific_value / MJ_PER_KWH
    if isinstance(m3, np.ndarray):
        return np.asarray(m3, dtype=np.float64) * correction * calorific_value / MJ_PER_KWH
    return float(m3) * correction * calorific_value / MJ_PER_KWH


def energy_kwh_for(
    frame: pd.DataFrame,
    *,
    calorific_value: float = GAS_CALORIFIC_VALUE,
    correction: float = GAS_VOLUME_CORRECTION,
) -> pd.Series:
    """energy_kwh for every row of an interval frame, from `value` and `unit`.

    Energy units convert directly. Volume units convert to m³ and then to kWh with the gas
    formula - only for gas: when the frame has a `kind` column, volumes of other kinds (water)
    have no energy and stay NaN. Units that are neither (e.g. MW of a grid series) stay NaN.
    """
    _check_gas(calorific_value, correction)
    values = np.asarray(pd.to_numeric(frame["value"]), dtype=np.float64)
    out = np.full(len(frame), np.nan)
    units = frame["unit"].to_numpy(dtype=object)
    gas = (
        np.asarray(frame["kind"].to_numpy(dtype=object) == "gas", dtype=bool)
        if "kind" in frame.columns
        else np.ones(len(frame), dtype=bool)
    )
    for unit in pd.unique(units):
        if not isinstance(unit, str):
            continue
        rows = units == unit
        energy = energy_unit_factor(unit)
        if energy is not None:
            out[rows] = _apply(values[rows], energy)
            continue
        volume = volume_unit_factor(unit)
        if volume is not None:
            rows &= gas
            m3 = _apply(values[rows], volume)
            out[rows] = gas_m3_to_kwh(m3, calorific_value=calorific_value, correction=correction)
    return pd.Series(out, index=frame.index, name="energy_kwh", dtype=np.float64)
