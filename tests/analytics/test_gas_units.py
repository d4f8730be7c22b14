"""Which unit a gas meter reports, from a year of readings and the annual quantity."""

from __future__ import annotations

from hypothesis import given, strategies as st
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics.gas_units import (
    UNIT_KWH,
    UNIT_M3,
    fitting_unit,
    kwh_per_m3,
    reconvert,
)
from custom_components.meterlake.analytics.units import gas_m3_to_kwh

FACTOR = kwh_per_m3(calorific_value=39.5, correction=1.02264)


def test_the_factor_is_the_unit_converters() -> None:
    assert pytest.approx(gas_m3_to_kwh(1.0, calorific_value=39.5, correction=1.02264)) == FACTOR
    with pytest.raises(ValueError, match="positive"):
        kwh_per_m3(calorific_value=0, correction=1.0)


def test_a_year_near_the_annual_quantity_is_kwh() -> None:
    fit = fitting_unit(10500.0, 365, 11000.0, kwh_per_m3=FACTOR)
    assert fit is not None and fit.unit == UNIT_KWH
    assert fit.ratio == pytest.approx(10500 / 11000)


def test_a_year_a_factor_below_the_annual_quantity_is_m3() -> None:
    fit = fitting_unit(1000.0, 365, 11000.0, kwh_per_m3=FACTOR)
    assert fit is not None and fit.unit == UNIT_M3
    assert fit.ratio == pytest.approx(1000 * FACTOR / 11000)


def test_part_of_a_year_is_scaled_up() -> None:
    fit = fitting_unit(250.0, 91, 11000.0, kwh_per_m3=FACTOR)
    assert fit is not None and fit.unit == UNIT_M3
    assert fit.annual_total == pytest.approx(250 * 365 / 91)


@pytest.mark.parametrize(
    ("total", "days", "quantity"),
    [
        (1000.0, 365, None),  # no annual quantity
        (1000.0, 365, 0.0),
        (1000.0, 30, 11000.0),  # too few days
        (0.0, 365, 11000.0),  # no consumption
        (float("nan"), 365, 11000.0),
        (3300.0, 365, 11000.0),  # halfway on a log scale: neither fits clearly
    ],
)
def test_no_unit_when_the_readings_cannot_tell(
    total: float, days: int, quantity: float | None
) -> None:
    assert fitting_unit(total, days, quantity, kwh_per_m3=FACTOR) is None


@given(st.floats(2000, 40000), st.floats(0.6, 1.6))
def test_the_unit_is_found_either_way_within_a_normal_year(quantity: float, year: float) -> None:
    # A household uses 0.6x to 1.6x its annual quantity in a year: both units are told apart.
    kwh = fitting_unit(quantity * year, 365, quantity, kwh_per_m3=FACTOR)
    m3 = fitting_unit(quantity * year / FACTOR, 365, quantity, kwh_per_m3=FACTOR)
    assert kwh is not None and kwh.unit == UNIT_KWH
    assert m3 is not None and m3.unit == UNIT_M3


def rows(unit: str, values: list[float], rate: float | None) -> pd.DataFrame:
    value = pd.Series(values, dtype="float64")
    energy = value * FACTOR if unit == UNIT_M3 else value
    per_kwh = np.nan if rate is None else rate
    native = per_kwh * FACTOR if unit == UNIT_M3 else per_kwh
    return pd.DataFrame(
        {
            "value": value,
            "unit": unit,
            "energy_kwh": energy,
            "rate": native,
            "cost": energy * per_kwh,
        }
    )


def test_kwh_history_reread_as_m3_keeps_the_numbers_and_prices_the_energy() -> None:
    wrong = rows(UNIT_KWH, [0.1, 0.2], rate=0.06)
    fixed = reconvert(wrong, UNIT_M3, calorific_value=39.5, correction=1.02264)
    expected = rows(UNIT_M3, [0.1, 0.2], rate=0.06)
    pd.testing.assert_frame_equal(fixed, expected)


def test_m3_history_reread_as_kwh() -> None:
    wrong = rows(UNIT_M3, [1.5, 2.5], rate=0.06)
    fixed = reconvert(wrong, UNIT_KWH, calorific_value=39.5, correction=1.02264)
    pd.testing.assert_frame_equal(fixed, rows(UNIT_KWH, [1.5, 2.5], rate=0.06))


def test_unpriced_rows_keep_no_cost() -> None:
    fixed = reconvert(
        rows(UNIT_KWH, [0.1], rate=None), UNIT_M3, calorific_value=39.5, correction=1.0
    )
    assert np.isnan(fixed["cost"].iloc[0])


def test_an_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported gas unit"):
        reconvert(rows(UNIT_KWH, [0.1], rate=None), "ft³", calorific_value=39.5, correction=1.0)
