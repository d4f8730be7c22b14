"""emissions.compute on its own: intensities matched to meter intervals, hourly and today's kg.

Pure (no Home Assistant). Every expected number is worked out by hand in the test: an
interval's CO2 is its energy (kWh) times the mean intensity (g/kWh) of the quarter-hours it
spans, divided by 1000.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.emissions import compute

QUARTER = timedelta(minutes=15)
HALF = timedelta(minutes=30)
TODAY = datetime(2026, 11, 20, tzinfo=UTC)
T10 = datetime(2026, 11, 20, 10, tzinfo=UTC)
T11 = datetime(2026, 11, 20, 11, tzinfo=UTC)
INGESTED = datetime(2026, 11, 20, 12, 3, tzinfo=UTC)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def meter_rows(*intervals: tuple[datetime, timedelta, float]) -> pd.DataFrame:
    """Meter intervals (start, length, kWh) with the interval table's energy columns."""
    return pd.DataFrame(
        {
            "meter": ["m"] * len(intervals),
            "start": pd.to_datetime([s for s, _, _ in intervals], utc=True),
            "end": pd.to_datetime([s + length for s, length, _ in intervals], utc=True),
            "value": [kwh for _, _, kwh in intervals],
            "unit": ["kWh"] * len(intervals),
            "energy_kwh": [kwh for _, _, kwh in intervals],
        }
    )


def grid(
    *slots: tuple[datetime, float | None],
    consolidated: bool = False,
    ingested_at: datetime = INGESTED,
) -> pd.DataFrame:
    """Quarter-hour grid rows (start, taux_co2) as the eCO2mix source and archive give them."""
    return pd.DataFrame(
        {
            "start": pd.to_datetime([s for s, _ in slots], utc=True),
            "end": pd.to_datetime([s + QUARTER for s, _ in slots], utc=True),
            "consommation": [50000.0] * len(slots),
            "taux_co2": pd.Series([np.nan if v is None else v for _, v in slots], dtype="float64"),
            "consolidated": [consolidated] * len(slots),
            "ingested_at": pd.to_datetime([ingested_at] * len(slots), utc=True),
        }
    )


def quarters(start: datetime, *values: float | None) -> list[tuple[datetime, float | None]]:
    return [(start + i * QUARTER, value) for i, value in enumerate(values)]


def assert_no_hours(figures: object) -> None:
    for name in ("hours", "values", "known"):
        array = getattr(figures, name)
        assert isinstance(array, np.ndarray)
        assert array.shape == (0,)
    assert figures.hours.dtype == np.int64  # type: ignore[attr-defined]
    assert figures.values.dtype == np.float64  # type: ignore[attr-defined]
    assert figures.known.dtype == np.bool_  # type: ignore[attr-defined]


@pytest.mark.parametrize("rows", [None, meter_rows()], ids=["none", "empty"])
def test_no_meter_rows_gives_nothing(rows: pd.DataFrame | None) -> None:
    figures = compute(rows, grid(*quarters(T10, 100, 200)), None, TODAY)
    assert_no_hours(figures)
    assert figures.today_kg is None
    assert figures.today_missing == 0
    assert figures.missing_hours == 0


@pytest.mark.parametrize(
    ("archived", "recent"),
    [
        (None, None),
        (grid().iloc[0:0], None),
        (grid(*quarters(T10, 100)).drop(columns="taux_co2"), None),  # a regional frame
        (None, grid(*quarters(T10, 100, 200, 300, 400)).drop(columns="taux_co2")),
        (grid(*quarters(T10, None, None)), grid(*quarters(T10, None, None, None, None))),
    ],
    ids=["none", "empty", "no-taux-archived", "no-taux-recent", "all-nan"],
)
def test_without_a_known_intensity_nothing_is_computed(
    archived: pd.DataFrame | None, recent: pd.DataFrame | None
) -> None:
    yesterday = T10 - timedelta(days=1)
    rows = meter_rows((yesterday, HALF, 5.0), (T10, HALF, 2.0), (T10 + HALF, HALF, 4.0))
    figures = compute(rows, archived, recent, TODAY)
    assert_no_hours(figures)
    assert figures.today_kg is None
    # Only today's intervals count as missing; yesterday's is outside today's figure.
    assert figures.today_missing == 2
    assert figures.missing_hours == 0


def test_hand_computed_hour() -> None:
    """Two half-hours, four quarter-hour intensities."""
    rows = meter_rows((T10, HALF, 2.0), (T10 + HALF, HALF, 4.0))
    figures = compute(rows, grid(*quarters(T10, 100, 300, 50, 150)), None, TODAY)
    # 10:00-10:30: 2 kWh x mean(100, 300) = 400 g; 10:30-11:00: 4 kWh x mean(50, 150) = 400 g.
    assert figures.hours.tolist() == [epoch(T10)]
    assert figures.values.tolist() == [pytest.approx(0.8, rel=1e-12)]
    assert figures.known.tolist() == [True]
    assert figures.today_kg == pytest.approx(0.8, rel=1e-12)
    assert figures.today_missing == 0
    assert figures.missing_hours == 0


def test_hole_in_the_intensity_makes_the_hour_incomplete() -> None:
    """A null quarter inside an hour: that hour is not known; the others and today still add."""
    yesterday = T10 - timedelta(days=1)
    rows = meter_rows(
        (yesterday, HALF, 10.0),
        (T10, HALF, 2.0),
        (T10 + HALF, HALF, 4.0),
        (T11, HALF, 3.0),
        (T11 + HALF, HALF, 1.0),
    )
    archived = grid(*quarters(yesterday, 200, 200))
    recent = grid(*quarters(T10, 100, 300, 50, 150, 80, None, 40, 60))
    figures = compute(rows, archived, recent, TODAY)
    # yesterday: 10 kWh x 200 = 2 kg; 10:00 hour: 0.8 kg as above;
    # 11:00-11:30 has no intensity for 11:15; 11:30-12:00: 1 kWh x mean(40, 60) = 50 g.
    assert figures.hours.tolist() == [epoch(yesterday), epoch(T10), epoch(T11)]
    assert figures.values.tolist() == pytest.approx([2.0, 0.8, 0.05], rel=1e-12)
    assert figures.known.tolist() == [True, True, False]
    assert figures.missing_hours == 1
    assert figures.today_kg == pytest.approx(0.85, rel=1e-12)
    assert figures.today_missing == 1


def test_energy_falls_back_to_the_value_of_kwh_rows() -> None:
    rows = meter_rows((T10, HALF, 2.0))
    rows["energy_kwh"] = np.nan
    # The whole hour's intensities are out (an hour is written once its last quarter is).
    figures = compute(rows, grid(*quarters(T10, 100, 300, 90, 90)), None, TODAY)
    assert figures.values.tolist() == [pytest.approx(0.4, rel=1e-12)]
    assert figures.today_kg == pytest.approx(0.4, rel=1e-12)


def test_consolidated_intensity_wins_over_a_newer_real_time_one() -> None:
    rows = meter_rows((T10, QUARTER, 1.0), (T10 + QUARTER, QUARTER, 1.0))
    archived = grid(
        *quarters(T10, 100, 100), consolidated=True, ingested_at=INGESTED - timedelta(days=30)
    )
    # Real time, fetched later for the same two quarters (and present in both frames).
    recent = grid(*quarters(T10, 500, 700, 90, 90))
    figures = compute(rows, archived, recent, TODAY)
    assert figures.values.tolist() == [pytest.approx(0.2, rel=1e-12)]  # 2 x 1 kWh x 100 g
    # Either order of the frames: the consolidated rows stay.
    swapped = compute(rows, recent, archived, TODAY)
    assert swapped.values.tolist() == [pytest.approx(0.2, rel=1e-12)]


def test_newer_real_time_intensity_wins_over_an_older_one() -> None:
    rows = meter_rows((T10, QUARTER, 1.0))
    archived = grid((T10, 100.0), ingested_at=INGESTED - timedelta(hours=1))
    recent = grid((T10, 300.0), *quarters(T10 + QUARTER, 90, 90, 90))
    assert compute(rows, archived, recent, TODAY).values.tolist() == [pytest.approx(0.3, rel=1e-12)]
    assert compute(rows, recent, archived, TODAY).values.tolist() == [pytest.approx(0.3, rel=1e-12)]


def test_hours_after_the_newest_intensity_wait() -> None:
    """Intervals past the newest known intensity give no hour; they count as missing today."""
    rows = meter_rows(
        (T10, HALF, 2.0), (T10 + HALF, HALF, 4.0), (T11, HALF, 3.0), (T11 + HALF, HALF, 1.0)
    )
    # Published up to 11:00; 11:00 and 11:15 are announced without an intensity yet.
    figures = compute(rows, grid(*quarters(T10, 100, 300, 50, 150, None, None)), None, TODAY)
    assert figures.hours.tolist() == [epoch(T10)]
    assert figures.known.tolist() == [True]
    assert figures.today_kg == pytest.approx(0.8, rel=1e-12)
    assert figures.today_missing == 2
    assert figures.missing_hours == 0


def test_an_hour_cut_by_the_newest_intensity_is_not_complete() -> None:
    """Intensities up to 11:30: the 11:00 hour lacks one of its two half-hours.

    The module says an hour in which any interval lacks an intensity gets no row; compute drops
    the 11:30 interval before grouping by hour, so 11:00 looks complete with half its energy.
    """
    rows = meter_rows((T11, HALF, 1.0), (T11 + HALF, HALF, 2.0))
    figures = compute(rows, grid(*quarters(T11, 100, 200)), None, TODAY)
    assert figures.today_missing == 1
    assert not figures.known.any()
