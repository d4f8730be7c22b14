"""analytics.carbon: overlap-weighted intensity per interval, CO2, hourly sums, gaps reported."""

from __future__ import annotations

import itertools
import math
from typing import Any

from hypothesis import given, settings, strategies as st
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics.carbon import hourly_emissions, interval_emissions

T0 = pd.Timestamp("2026-11-20T00:00Z")
MIN = pd.Timedelta(minutes=1)


def at(minutes: float) -> pd.Timestamp:
    return T0 + minutes * MIN


def meter(
    spans: list[tuple[float, float]], energy: list[float | None], **columns: Any
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start": [at(a) for a, _ in spans],
            "end": [at(b) for _, b in spans],
            "energy_kwh": pd.Series(energy, dtype="float64"),
            **columns,
        }
    )


def slots(values: list[float | None], *, minutes: int = 15, first: float = 0) -> pd.DataFrame:
    starts = [at(first + i * minutes) for i in range(len(values))]
    return pd.DataFrame(
        {
            "start": starts,
            "end": [s + minutes * MIN for s in starts],
            "taux_co2": pd.Series(values, dtype="float64"),
        }
    )


def test_half_hour_over_two_quarter_hours() -> None:
    """0.5 kWh over 50 and 70 g/kWh: mean 60 g/kWh, 0.5 x 60 / 1000 = 0.03 kg."""
    out = interval_emissions(meter([(0, 30)], [0.5]), slots([50, 70]))
    assert out["intensity"].tolist() == [60.0]
    assert out["co2_kg"].tolist() == [pytest.approx(0.03)]
    assert out["covered"].tolist() == [True]


def test_quarter_hours_inside_half_hour_slots() -> None:
    out = interval_emissions(
        meter([(0, 15), (15, 30), (30, 45)], [0.2, 0.3, 0.4]), slots([40, 80], minutes=30)
    )
    assert out["intensity"].tolist() == [40.0, 40.0, 80.0]
    assert out["co2_kg"].tolist() == pytest.approx([0.008, 0.012, 0.032])


def test_misaligned_interval_weights_by_overlap() -> None:
    out = interval_emissions(meter([(10, 40)], [1.0]), slots([50, 70, 90]))
    # 5 min at 50, 15 at 70, 10 at 90.
    assert out["intensity"].iloc[0] == pytest.approx((5 * 50 + 15 * 70 + 10 * 90) / 30)
    assert out["co2_kg"].iloc[0] == pytest.approx((5 * 50 + 15 * 70 + 10 * 90) / 30 / 1000)


def test_an_hour_interval_with_gaps_and_nans() -> None:
    intensity = pd.concat([slots([50, 60]), slots([70], first=45)], ignore_index=True)
    spans = [(0, 30), (0, 60), (30, 45), (45, 60), (60, 75), (-15, 0), (-5, 10)]
    out = interval_emissions(meter(spans, [1.0] * len(spans)), intensity)
    assert out["covered"].tolist() == [True, False, False, True, False, False, False]
    assert out["intensity"].iloc[0] == 55.0 and out["intensity"].iloc[3] == 70.0
    assert out["intensity"].iloc[[1, 2, 4, 5, 6]].isna().all()
    assert out["co2_kg"].iloc[[1, 2, 4, 5, 6]].isna().all()

    with_nan = interval_emissions(meter([(0, 30), (30, 45)], [1.0, 1.0]), slots([50, None, 70]))
    assert with_nan["covered"].tolist() == [False, True]
    assert math.isnan(with_nan["co2_kg"].iloc[0]) and with_nan["co2_kg"].iloc[1] == 0.07


def test_energy_falls_back_to_kwh_value() -> None:
    intervals = meter(
        [(0, 15), (15, 30), (30, 45)],
        [None, None, 0.25],
        value=[0.4, 1.2, 9.9],
        unit=["kWh", "m³", "kWh"],
    )
    out = interval_emissions(intervals, slots([100, 100, 100]))
    assert out["energy_kwh"].iloc[0] == 0.4 and math.isnan(out["energy_kwh"].iloc[1])
    assert out["energy_kwh"].iloc[2] == 0.25  # energy_kwh wins over value
    assert out["co2_kg"].iloc[0] == pytest.approx(0.04)
    assert math.isnan(out["co2_kg"].iloc[1])
    assert out["covered"].tolist() == [True, True, True]  # intensity known; energy is not
    assert out["value"].tolist() == [0.4, 1.2, 9.9]


def test_degenerate_intervals_and_slots() -> None:
    intervals = pd.DataFrame(
        {
            "start": [at(0), at(15), pd.NaT, at(30)],
            "end": [at(0), at(10), at(15), pd.NaT],
            "energy_kwh": [1.0, 1.0, 1.0, 1.0],
        }
    )
    out = interval_emissions(intervals, slots([50, 60, 70]))
    assert not out["covered"].any()
    assert out["intensity"].isna().all()

    messy = pd.DataFrame(
        {
            "start": [at(15), at(0), at(0), pd.NaT, at(30)],
            "end": [at(30), at(20), at(15), at(45), at(30)],  # 00:00 twice; the later is kept
            "taux_co2": [60.0, 999.0, 50.0, 1.0, 2.0],
        }
    )
    out = interval_emissions(meter([(0, 30)], [1.0]), messy)
    assert out["intensity"].iloc[0] == 55.0

    overlapping = pd.DataFrame(
        {"start": [at(0), at(10)], "end": [at(30), at(30)], "taux_co2": [50.0, 80.0]}
    )
    out = interval_emissions(meter([(0, 30)], [1.0]), overlapping)
    assert out["intensity"].iloc[0] == pytest.approx((10 * 50 + 20 * 80) / 30)


def test_no_intensity_at_all_and_no_intervals() -> None:
    none = slots([])
    out = interval_emissions(meter([(0, 30)], [1.0]), none)
    assert out["covered"].tolist() == [False] and math.isnan(out["co2_kg"].iloc[0])
    empty = interval_emissions(meter([], []), slots([50]))
    assert empty.empty
    assert {"intensity", "co2_kg", "covered"} <= set(empty.columns)
    hourly = hourly_emissions(empty)
    assert hourly.empty
    assert list(hourly.columns) == [
        "start",
        "co2_kg",
        "energy_kwh",
        "intervals",
        "missing",
        "complete",
    ]


def test_microsecond_frames_and_index() -> None:
    """Frames in datetime64[us, UTC] (archive reads) with a non-default index."""
    intervals = meter([(0, 30), (30, 60)], [1.0, 2.0]).set_index(pd.Index([7, 3]))
    intervals["start"] = intervals["start"].astype("datetime64[us, UTC]")
    intervals["end"] = intervals["end"].astype("datetime64[us, UTC]")
    intensity = slots([10, 20, 30, 40])
    intensity["start"] = intensity["start"].astype("datetime64[us, UTC]")
    intensity["end"] = intensity["end"].astype("datetime64[us, UTC]")
    out = interval_emissions(intervals, intensity)
    assert out.index.tolist() == [0, 1]
    assert out["co2_kg"].tolist() == pytest.approx([0.015, 0.07])


def test_hourly() -> None:
    intervals = meter(
        [(0, 30), (30, 60), (60, 90), (90, 120), (120, 150), (150, 180)],
        [0.5, 0.5, 1.0, None, 2.0, 2.0],
    )
    intensity = slots([50, 70, 60, 60, 60, 60, 60, 60, 80, 80, None, 80])
    per_interval = interval_emissions(intervals, intensity)
    hourly = hourly_emissions(per_interval)
    assert hourly["start"].tolist() == [at(0), at(60), at(120)]
    assert str(hourly["start"].dtype) == "datetime64[ns, UTC]"
    assert hourly["co2_kg"].tolist() == pytest.approx(
        [0.5 * 60 / 1000 + 0.5 * 60 / 1000, 1.0 * 60 / 1000, 2.0 * 80 / 1000]
    )
    assert hourly["energy_kwh"].tolist() == [1.0, 1.0, 4.0]  # every known energy
    assert hourly["intervals"].tolist() == [2, 2, 2]
    assert hourly["missing"].tolist() == [0, 1, 1]  # no energy at 01:30, no intensity at 02:30
    assert hourly["complete"].tolist() == [True, False, False]

    nothing = hourly_emissions(interval_emissions(meter([(0, 30)], [1.0]), slots([])))
    assert math.isnan(nothing["co2_kg"].iloc[0])  # no covered interval: unknown, not 0
    assert nothing["missing"].tolist() == [1]


def test_hourly_skips_rows_without_start() -> None:
    per_interval = pd.DataFrame(
        {
            "start": [at(0), pd.NaT],
            "end": [at(30), at(60)],
            "energy_kwh": [1.0, 1.0],
            "co2_kg": [0.05, 0.05],
        }
    )
    hourly = hourly_emissions(per_interval)
    assert hourly["intervals"].tolist() == [1]
    assert hourly["co2_kg"].tolist() == [0.05]


def test_large_frames_run_vectorised() -> None:
    """100k half-hours over 200k quarter-hours: exact against a direct computation."""
    n = 100_000
    rng = np.random.default_rng(7)
    taux = rng.uniform(10, 90, 2 * n)
    energy = rng.uniform(0, 2, n)
    starts = pd.date_range(T0, periods=n, freq="30min")
    intervals = pd.DataFrame(
        {"start": starts, "end": starts + pd.Timedelta(minutes=30), "energy_kwh": energy}
    )
    quarters = pd.date_range(T0, periods=2 * n, freq="15min")
    intensity = pd.DataFrame(
        {"start": quarters, "end": quarters + pd.Timedelta(minutes=15), "taux_co2": taux}
    )
    out = interval_emissions(intervals, intensity)
    expected = energy * (taux[0::2] + taux[1::2]) / 2 / 1000
    np.testing.assert_allclose(out["co2_kg"].to_numpy(), expected, rtol=1e-9)
    assert out["covered"].all()
    hourly = hourly_emissions(out)
    assert len(hourly) == n // 2
    assert hourly["co2_kg"].sum() == pytest.approx(expected.sum(), rel=1e-12)


# ------------------------------------------------------------------------------------ properties

cuts = st.lists(st.integers(1, 95), min_size=1, max_size=20, unique=True)


@settings(deadline=None, max_examples=60)
@given(
    c=st.floats(0, 1000, allow_nan=False),
    kwh=st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=20),
    cadence=st.sampled_from([5, 15, 30, 60]),
    slot=st.sampled_from([15, 30, 60]),
)
def test_constant_intensity(c: float, kwh: list[float], cadence: int, slot: int) -> None:
    """A constant intensity c gives c x total kWh / 1000, whatever the two cadences."""
    spans = [(i * cadence, (i + 1) * cadence) for i in range(len(kwh))]
    cover = math.ceil(len(kwh) * cadence / slot) + 1
    out = interval_emissions(meter(spans, kwh), slots([c] * cover, minutes=slot))
    assert out["covered"].all()
    assert out["co2_kg"].sum() == pytest.approx(c * sum(kwh) / 1000, rel=1e-9, abs=1e-9)


@settings(deadline=None, max_examples=60)
@given(
    taux=st.lists(st.floats(0, 1000, allow_nan=False), min_size=8, max_size=8),
    points=cuts,
    energy=st.floats(0.001, 100, allow_nan=False),
)
def test_splitting_never_changes_the_total(
    taux: list[float], points: list[int], energy: float
) -> None:
    """An interval over 2 h of quarter-hour slots, cut anywhere into pieces whose energies
    share the whole in proportion to their durations: the same kilograms."""
    whole = interval_emissions(meter([(0, 120)], [energy]), slots(taux))
    edges = [0, *sorted(p * 1.25 for p in points), 120]
    pieces = [(a, b) for a, b in itertools.pairwise(edges) if b > a]
    shares = [energy * (b - a) / 120 for a, b in pieces]
    split = interval_emissions(meter(pieces, shares), slots(taux))
    assert split["covered"].all()
    assert split["co2_kg"].sum() == pytest.approx(whole["co2_kg"].iloc[0], rel=1e-9, abs=1e-12)
