"""Hand-computed cases for analytics.units."""

from __future__ import annotations

from fractions import Fraction
import math

from homeassistant.util.unit_conversion import VolumeConverter
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import units


def within_ulps(got: float, exact: Fraction, ulps: int) -> bool:
    return abs(Fraction(got) - exact) <= ulps * Fraction(math.ulp(float(exact)))


def test_gas_m3_to_kwh_hand_computed() -> None:
    # 100 m³ x 1.02264 x 39.5 MJ/m³ / 3.6 = 1122.0633... kWh
    exact = Fraction(100) * Fraction("1.02264") * Fraction("39.5") / Fraction("3.6")
    got = units.gas_m3_to_kwh(100.0)
    assert within_ulps(got, exact, 2)
    assert round(got, 6) == 1122.063333
    assert units.gas_m3_to_kwh(100.0) == 100.0 * 1.02264 * 39.5 / 3.6
    # German convention: Brennwert 11.2 kWh/m³ -> 40.32 MJ/m³, Zustandszahl 0.95
    german = units.gas_m3_to_kwh(10.0, calorific_value=11.2 * 3.6, correction=0.95)
    assert within_ulps(german, Fraction(10) * Fraction("0.95") * Fraction("11.2"), 4)
    assert units.GAS_VOLUME_CORRECTION == 1.02264
    assert units.GAS_CALORIFIC_VALUE == 39.5


def test_gas_m3_to_kwh_vectorised_and_checked() -> None:
    values = np.asarray([0.0, 1.0, 2.5])
    arr = units.gas_m3_to_kwh(values)
    assert isinstance(arr, np.ndarray)
    assert arr.tolist() == [units.gas_m3_to_kwh(v) for v in values.tolist()]
    series = units.gas_m3_to_kwh(pd.Series(values, index=[5, 6, 7]))
    assert isinstance(series, pd.Series)
    assert series.index.tolist() == [5, 6, 7]
    assert series.tolist() == arr.tolist()
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="calorific"):
            units.gas_m3_to_kwh(1.0, calorific_value=bad)
        with pytest.raises(ValueError, match="correction"):
            units.gas_m3_to_kwh(1.0, correction=bad)


def test_to_kwh_is_exact_for_decimal_units() -> None:
    assert units.to_kwh(1500.0, "Wh") == 1.5
    assert units.to_kwh(2.0, "kWh") == 2.0
    # 0.043 MWh is 43 kWh; HA's own factor (divide by 0.001) gives 42.99999999999999
    assert units.to_kwh(0.043, "MWh") == 43.0
    assert 0.043 / 0.001 != 43.0
    values = np.arange(1, 10001) / 1000
    assert (units.to_kwh(values, "MWh") == values * 1000).all()
    assert (units.to_kwh(values, "Wh") == values / 1000).all()
    assert units.to_kwh(3.6, "MJ") == 1.0
    assert units.to_kwh(pd.Series([1000.0]), "Wh").tolist() == [1.0]
    with pytest.raises(ValueError, match="energy unit"):
        units.to_kwh(1.0, "m³")


def test_to_cubic_meters() -> None:
    assert units.to_cubic_meters(1500.0, "L") == 1.5
    assert units.to_cubic_meters(1.5, "m³") == 1.5
    assert units.to_cubic_meters(1.5, "m3") == 1.5
    # 1 ft³ = 0.3048³ m³ exactly; HA's rounded factor lands a few ulps off, and we agree
    # with HA (the Energy dashboard) rather than with the definition
    for unit, exact in (("ft³", Fraction("0.3048") ** 3), ("CCF", 100 * Fraction("0.3048") ** 3)):
        got = units.to_cubic_meters(1.0, unit)
        assert got == VolumeConverter.convert(1.0, unit, "m³")
        assert within_ulps(got, exact, 4)
    assert units.to_cubic_meters(np.asarray([35.0]), "ft³").tolist() == [
        VolumeConverter.convert(35.0, "ft³", "m³")
    ]
    with pytest.raises(ValueError, match="volume unit"):
        units.to_cubic_meters(1.0, "kWh")


def test_energy_kwh_for_frame_of_mixed_units() -> None:
    frame = pd.DataFrame(
        {
            "value": [2000.0, 1.5, 100.0, 1000.0, 35.0, 500.0, 1.0],
            "unit": ["Wh", "kWh", "m³", "L", "ft³", "L", "MW"],
            "kind": ["electricity", "electricity", "gas", "gas", "gas", "water", "grid"],
        },
        index=[10, 11, 12, 13, 14, 15, 16],
    )
    out = units.energy_kwh_for(frame)
    assert out.index.tolist() == frame.index.tolist()
    assert out.iloc[0] == 2.0
    assert out.iloc[1] == 1.5
    assert out.iloc[2] == units.gas_m3_to_kwh(100.0)
    assert out.iloc[3] == units.gas_m3_to_kwh(1.0)
    assert out.iloc[4] == units.gas_m3_to_kwh(units.to_cubic_meters(35.0, "ft³"))
    assert math.isnan(out.iloc[5])  # water has no energy
    assert math.isnan(out.iloc[6])  # a power figure is not an energy
    custom = units.energy_kwh_for(frame.iloc[[2]], calorific_value=40.0, correction=1.0)
    assert custom.tolist() == [100.0 * 1.0 * 40.0 / 3.6]
