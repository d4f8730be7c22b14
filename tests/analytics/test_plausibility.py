"""What normalize refuses as a number: booleans, and values no home can record (plausibility)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import intervals as iv
from custom_components.meterlake.analytics.plausibility import MAX_PER_HOUR, max_per_hour

START = datetime(2026, 1, 15, tzinfo=UTC)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (kind, unit) pairs with a bound, and how long their rows may be.
BOUNDED = [
    ("electricity", "kWh"),
    ("electricity", "Wh"),
    ("electricity", "MWh"),
    ("gas", "kWh"),
    ("gas", "m³"),
    ("gas", "ft³"),
    ("heat", "kWh"),
    ("heat", "GJ"),
    ("water", "m³"),
    ("water", "L"),
]
MINUTES = [15, 30, 60, 1440]


def row(value: Any, *, minutes: int = 30, **extra: Any) -> dict[str, Any]:
    return {
        "start": START,
        "end": START + timedelta(minutes=minutes),
        "value": value,
        **extra,
    }


def norm(
    rows: Any, *, kind: str = "electricity", unit: str = "kWh", **kwargs: Any
) -> iv.NormalizeResult:
    return iv.normalize(
        rows,
        meter="m1",
        supplier="octopus",
        kind=kind,
        unit=unit,
        ingested_at=START,
        **kwargs,
    )


def reasons(result: iv.NormalizeResult) -> list[str]:
    return result.rejected["reason"].tolist()


# ---------------------------------------------------------------- the bounds


def test_bounds_per_hour_of_a_home() -> None:
    assert dict(MAX_PER_HOUR) == {
        ("electricity", "kWh"): 2_000.0,
        ("gas", "kWh"): 2_000.0,
        ("heat", "kWh"): 2_000.0,
        ("gas", "m³"): 200.0,
        ("water", "m³"): 10.0,
    }


@pytest.mark.parametrize(
    ("kind", "unit", "bound"),
    [
        ("electricity", "kWh", 2_000.0),
        ("electricity", "Wh", 2_000_000.0),
        ("electricity", "MWh", 2.0),
        ("electricity", "MJ", 7_200.0),
        ("gas", "m³", 200.0),
        ("gas", "m3", 200.0),
        ("water", "m³", 10.0),
        ("water", "L", 10_000.0),
    ],
)
def test_bounds_convert_to_the_meters_unit(kind: str, unit: str, bound: float) -> None:
    assert max_per_hour(kind, unit) == pytest.approx(bound, rel=1e-12)


@pytest.mark.parametrize(
    ("kind", "unit"),
    [("grid", "MW"), ("grid", "kWh"), ("water", "kWh"), ("electricity", "m³"), ("solar", "kWh")],
)
def test_unknown_kinds_and_units_have_no_bound(kind: str, unit: str) -> None:
    assert max_per_hour(kind, unit) is None
    result = norm([row(1e12)], kind=kind, unit=unit)
    assert result.rejected.empty
    assert result.frame["value"].tolist() == [1e12]


# ---------------------------------------------------------------- implausible values


def test_a_trillion_kwh_in_a_half_hour_is_set_aside() -> None:
    result = norm([row(0.5), row(1e12)])
    assert result.frame["value"].tolist() == [0.5]
    assert reasons(result) == ["implausible_value"]
    assert result.rejected["value"].tolist() == [1e12]  # the input row, as given


def test_a_half_hour_may_hold_half_the_hourly_bound() -> None:
    result = norm([row(1_000.0), row(math.nextafter(1_000.0, math.inf))])
    assert result.frame["value"].tolist() == [1_000.0]
    assert reasons(result) == ["implausible_value"]


@pytest.mark.parametrize(("minutes", "limit"), [(15, 500.0), (60, 2_000.0), (1440, 48_000.0)])
def test_the_bound_scales_with_the_interval(minutes: int, limit: float) -> None:
    result = norm([row(limit, minutes=minutes), row(limit * 1.001, minutes=minutes)])
    assert result.frame["value"].tolist() == [limit]
    assert reasons(result) == ["implausible_value"]


def test_water_in_litres_is_held_to_ten_cubic_metres_an_hour() -> None:
    result = norm([row(10_000, minutes=60), row(10_001, minutes=60)], kind="water", unit="L")
    assert result.frame["value"].tolist() == [10_000.0]
    assert reasons(result) == ["implausible_value"]


def test_gas_in_cubic_metres_is_held_to_two_hundred_an_hour() -> None:
    result = norm([row(100.0), row(100.5)], kind="gas", unit="m³")
    assert result.frame["value"].tolist() == [100.0]
    assert reasons(result) == ["implausible_value"]


def test_a_negative_correction_is_held_to_the_same_bound() -> None:
    result = norm([row(-5.0), row(-1e12)], allow_negative=True)
    assert result.frame["value"].tolist() == [-5.0]
    assert reasons(result) == ["implausible_value"]


def test_an_absurd_energy_kwh_of_a_gas_row_is_set_aside() -> None:
    result = norm([row(1.2, energy_kwh=1e12)], kind="gas", unit="m³")
    assert result.frame.empty
    assert reasons(result) == ["implausible_value"]


@SETTINGS
@given(
    pair=st.sampled_from(BOUNDED),
    minutes=st.sampled_from(MINUTES),
    share=st.floats(min_value=0.0, max_value=1.0),
)
def test_values_within_the_bound_are_never_rejected(
    pair: tuple[str, str], minutes: int, share: float
) -> None:
    kind, unit = pair
    bound = max_per_hour(kind, unit)
    assert bound is not None
    value = bound * (minutes / 60) * share
    result = norm([row(value, minutes=minutes)], kind=kind, unit=unit)
    assert result.rejected.empty
    assert result.frame["value"].tolist() == [value]


@SETTINGS
@given(
    pair=st.sampled_from(BOUNDED),
    minutes=st.sampled_from(MINUTES),
    excess=st.floats(min_value=0.0, max_value=1e300),
)
def test_values_above_the_bound_are_always_rejected(
    pair: tuple[str, str], minutes: int, excess: float
) -> None:
    kind, unit = pair
    bound = max_per_hour(kind, unit)
    assert bound is not None
    limit = bound * (minutes / 60)
    value = max(limit + excess, math.nextafter(limit, math.inf))
    result = norm([row(value, minutes=minutes)], kind=kind, unit=unit)
    assert result.frame.empty
    assert reasons(result) == ["implausible_value"]


# ---------------------------------------------------------------- booleans


@pytest.mark.parametrize("flag", [True, False, np.bool_(True)])
def test_a_boolean_value_is_not_a_number(flag: Any) -> None:
    result = norm([row(0.5), row(flag)])
    assert result.frame["value"].tolist() == [0.5]
    assert reasons(result) == ["boolean_value"]


def test_a_column_of_booleans_is_set_aside_row_by_row() -> None:
    frame = pd.DataFrame([row(True), row(False)])
    assert frame["value"].dtype == bool
    result = norm(frame)
    assert result.frame.empty
    assert reasons(result) == ["boolean_value", "boolean_value"]


@pytest.mark.parametrize("column", ["rate", "cost", "energy_kwh"])
def test_a_boolean_rate_cost_or_energy_is_not_a_number(column: str) -> None:
    result = norm([row(0.5) | {column: 0.2}, row(0.5) | {column: True}])
    assert len(result.frame) == 1
    assert reasons(result) == ["boolean_value"]


def test_reason_counts_sum_the_set_aside_rows() -> None:
    result = norm([row(0.5), row(1e12), row(True), row(None), row(2e12)])
    assert result.reason_counts() == {
        "implausible_value": 2,
        "boolean_value": 1,
        "missing_value": 1,
    }
    assert norm([row(0.5)]).reason_counts() == {}
