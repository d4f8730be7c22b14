"""Hand-computed cases for analytics.intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
import math

import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import intervals as iv
from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS

INGESTED = datetime(2026, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def norm(rows: object, **kwargs: object) -> iv.NormalizeResult:
    params: dict[str, object] = {
        "meter": "m1",
        "supplier": "octopus",
        "kind": "electricity",
        "unit": "kWh",
        "ingested_at": INGESTED,
    }
    params.update(kwargs)
    return iv.normalize(rows, **params)  # type: ignore[arg-type]


def starts(frame: pd.DataFrame) -> list[datetime]:
    return [ts.to_pydatetime() for ts in frame["start"]]


def half_hours(first: datetime, count: int, values: list[float] | None = None) -> list[dict]:
    return [
        {
            "start": (first + timedelta(minutes=30 * i)).isoformat(),
            "end": (first + timedelta(minutes=30 * (i + 1))).isoformat(),
            "value": 1.0 if values is None else values[i],
        }
        for i in range(count)
    ]


# ---------------------------------------------------------------- normalize


def test_normalize_every_time_form_to_utc() -> None:
    rows = [
        {"start": "2024-07-01T10:00:00+01:00", "end": "2024-07-01T10:30:00+01:00", "value": 1},
        {"start": "2024-07-01T09:30:00Z", "end": "2024-07-01T10:00:00Z", "value": 2},
        # naive summer London = UTC+1, naive winter London = UTC
        {"start": "2024-07-01T12:00:00", "end": "2024-07-01T12:30:00", "value": 3},
        {"start": "2024-01-15T12:00:00", "end": "2024-01-15T12:30:00", "value": 4},
        {"start": utc(2024, 7, 2, 0, 0), "end": utc(2024, 7, 2, 0, 30), "value": 5},
        {
            "start": pd.Timestamp("2024-07-02T02:00", tz="Europe/Paris"),
            "end": pd.Timestamp("2024-07-02T02:30", tz="Europe/Paris"),
            "value": 6,
        },
        {"start": datetime(2024, 7, 3, 8, 0), "end": datetime(2024, 7, 3, 8, 30), "value": 7},
        {"start": "2024-07-04 08:00:00-05:30", "end": "2024-07-04 08:30:00-0530", "value": 8},
    ]
    result = norm(rows)
    assert result.rejected.empty
    assert starts(result.frame) == [
        utc(2024, 7, 1, 9, 0),
        utc(2024, 7, 1, 9, 30),
        utc(2024, 7, 1, 11, 0),
        utc(2024, 1, 15, 12, 0),
        utc(2024, 7, 2, 0, 0),
        utc(2024, 7, 2, 0, 0),
        utc(2024, 7, 3, 7, 0),
        utc(2024, 7, 4, 13, 30),
    ]
    assert (result.frame["end"] - result.frame["start"] == pd.Timedelta(minutes=30)).all()


def test_normalize_output_shape_and_dtypes() -> None:
    result = norm(half_hours(utc(2024, 1, 1), 3), serial="S1", currency="GBP")
    frame = result.frame
    assert tuple(frame.columns) == INTERVAL_COLUMNS
    for column in ("start", "end", "ingested_at"):
        assert isinstance(frame[column].dtype, pd.DatetimeTZDtype)
        assert str(frame[column].dt.tz) == "UTC"
    for column in ("value", "energy_kwh", "rate", "cost"):
        assert frame[column].dtype == np.float64
    assert frame["meter"].tolist() == ["m1"] * 3
    assert frame["serial"].tolist() == ["S1"] * 3
    assert frame["currency"].tolist() == ["GBP"] * 3
    assert frame["quality"].tolist() == ["measured"] * 3
    assert frame["ingested_at"].tolist() == [pd.Timestamp(INGESTED)] * 3
    assert frame["energy_kwh"].tolist() == [1.0, 1.0, 1.0]
    assert frame["rate"].isna().all()
    assert frame["cost"].isna().all()


def test_normalize_from_dataframe_with_datetime64_columns() -> None:
    naive = pd.DataFrame(
        {
            "start": pd.to_datetime(["2024-07-01 00:00", "2024-12-01 00:00"]),
            "end": pd.to_datetime(["2024-07-01 00:30", "2024-12-01 00:30"]),
            "value": [0.25, 0.5],
        }
    )
    result = norm(naive, naive_tz="Europe/Paris")
    assert starts(result.frame) == [utc(2024, 6, 30, 22, 0), utc(2024, 11, 30, 23, 0)]
    aware = naive.assign(
        start=naive["start"].dt.tz_localize("UTC"), end=naive["end"].dt.tz_localize("UTC")
    )
    assert starts(norm(aware).frame) == [utc(2024, 7, 1), utc(2024, 12, 1)]


def test_naive_london_autumn_day_has_50_distinct_half_hours() -> None:
    local = [
        datetime(2024, 10, 27) + timedelta(minutes=30 * i) for i in range(48)
    ]  # wall clock 00:00..23:30
    # the source repeats 01:00 and 01:30 (BST then GMT), in time order
    walls = [*local[:4], local[2], local[3], *local[4:]]
    rows = [
        {"start": w.isoformat(), "end": (w + timedelta(minutes=30)).isoformat(), "value": 1}
        for w in walls
    ]
    # the row 01:30 BST ends at 01:00 GMT on the wall clock
    rows[3]["end"] = "2024-10-27T01:00:00"
    result = norm(rows)
    assert result.rejected.empty
    got = starts(result.frame)
    assert len(got) == 50
    assert got == [utc(2024, 10, 26, 23, 0) + timedelta(minutes=30 * i) for i in range(50)]
    assert (result.frame["end"] - result.frame["start"] == pd.Timedelta(minutes=30)).all()


def test_naive_london_spring_day_and_nonexistent_times() -> None:
    walls = [datetime(2024, 3, 31) + timedelta(minutes=30 * i) for i in range(48)]
    walls = [w for w in walls if not (1 <= w.hour < 2)]  # 01:00-02:00 does not exist
    rows = [
        {"start": w.isoformat(), "end": (w + timedelta(minutes=30)).isoformat(), "value": 1}
        for w in walls
    ]
    rows[1]["end"] = "2024-03-31T02:00:00"  # 00:30 GMT -> 02:00 BST
    result = norm(rows)
    assert result.rejected.empty
    assert starts(result.frame) == [
        utc(2024, 3, 31, 0, 0) + timedelta(minutes=30 * i) for i in range(46)
    ]
    # a wall time in the gap is read with the offset before the gap (GMT)
    gap = norm([{"start": "2024-03-31T01:30:00", "end": "2024-03-31T03:00:00", "value": 1}])
    assert starts(gap.frame) == [utc(2024, 3, 31, 1, 30)]
    assert gap.frame["end"].iloc[0] == pd.Timestamp(utc(2024, 3, 31, 2, 0))
    paris = norm(
        [{"start": "2024-03-31T02:15:00", "end": "2024-03-31T03:30:00", "value": 1}],
        naive_tz="Europe/Paris",
    )
    assert starts(paris.frame) == [utc(2024, 3, 31, 1, 15)]


def test_single_ambiguous_time_is_the_earlier_instant() -> None:
    result = norm([{"start": "2024-10-27T01:30:00", "end": "2024-10-27T02:00:00", "value": 1}])
    assert starts(result.frame) == [utc(2024, 10, 27, 0, 30)]
    assert result.frame["end"].iloc[0] == pd.Timestamp(utc(2024, 10, 27, 2, 0))


def test_invalid_rows_are_set_aside_with_reasons() -> None:
    rows = [
        {"start": "2024-01-01T00:00Z", "end": "2024-01-01T00:30Z", "value": 1.5},
        {"start": "not a time", "end": "2024-01-01T00:30Z", "value": 1},
        {"start": None, "end": "2024-01-01T00:30Z", "value": 1},
        {"start": "2024-01-01T00:30Z", "end": "2024-01-01T00:30Z", "value": 1},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T00:30Z", "value": 1},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": None},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": float("nan")},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": "ND"},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": float("inf")},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": -float("inf")},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": -0.5},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": 1, "rate": "x"},
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": 1, "quality": "?"},
        {"start": "2024-01-01T01:30Z", "end": "2024-01-01T02:00Z", "value": "239"},
    ]
    result = norm(rows)
    assert result.frame["value"].tolist() == [1.5, 239.0]
    assert result.rejected.index.tolist() == list(range(1, 13))
    assert result.rejected["reason"].tolist() == [
        "unparseable_time",
        "unparseable_time",
        "end_not_after_start",
        "end_not_after_start",
        "missing_value",
        "missing_value",
        "unparseable_value",
        "non_finite_value",
        "non_finite_value",
        "negative_value",
        "invalid_rate",
        "invalid_quality",
    ]
    assert result.rejected["start"].iloc[0] == "not a time"  # the input row, untouched
    assert len(result.frame) + len(result.rejected) == len(rows)


def test_negative_values_allowed_for_export_or_corrections() -> None:
    rows = [{"start": "2024-01-01T00:00Z", "end": "2024-01-01T00:30Z", "value": -0.5}]
    result = norm(rows, allow_negative=True)
    assert result.frame["value"].tolist() == [-0.5]
    assert result.rejected.empty


def test_optional_columns_energy_and_cost() -> None:
    rows = [
        {"start": "2024-01-01T00:00Z", "end": "2024-01-01T00:30Z", "value": 1500, "rate": 0.25},
        {
            "start": "2024-01-01T00:30Z",
            "end": "2024-01-01T01:00Z",
            "value": 3,
            "rate": 0.25,
            "cost": 0.8,
            "serial": "NEW",
            "quality": "estimated",
        },
        {"start": "2024-01-01T01:00Z", "end": "2024-01-01T01:30Z", "value": 7, "rate": None},
    ]
    frame = norm(rows, unit="Wh", serial="OLD").frame
    assert frame["energy_kwh"].tolist() == [1.5, 0.003, 0.007]
    assert frame["rate"].tolist()[:2] == [0.25, 0.25]
    assert math.isnan(frame["rate"].iloc[2])
    assert frame["cost"].tolist()[:2] == [375.0, 0.8]  # a given cost is kept as given
    assert math.isnan(frame["cost"].iloc[2])
    assert frame["serial"].tolist() == ["OLD", "NEW", "OLD"]
    assert frame["quality"].tolist() == ["measured", "estimated", "measured"]
    small = {**rows[0], "value": 0.5}  # 1500 MWh or m³ in a half-hour would be implausible
    mwh = norm([small], unit="MWh").frame
    assert mwh["energy_kwh"].tolist() == [500.0]
    gas = norm([small], unit="m³", kind="gas").frame
    assert gas["energy_kwh"].isna().all()
    given = norm([{**small, "energy_kwh": 5.5}], unit="m³", kind="gas").frame
    assert given["energy_kwh"].tolist() == [5.5]


def test_normalize_argument_checks_and_empty_input() -> None:
    with pytest.raises(ValueError, match="start, end and value"):
        norm([{"start": "2024-01-01T00:00Z", "value": 1}])
    with pytest.raises(ValueError, match="tz-aware"):
        norm([], ingested_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="quality"):
        norm([], quality="guess")
    empty = norm([])
    assert tuple(empty.frame.columns) == INTERVAL_COLUMNS
    assert empty.frame.empty
    assert empty.rejected.empty
    assert "reason" in empty.rejected.columns


# ---------------------------------------------------------------- dedupe


def test_dedupe_newest_ingested_wins_then_input_order() -> None:
    early, late = utc(2024, 1, 1), utc(2024, 1, 2)
    first = norm(half_hours(utc(2024, 1, 1), 3, [1, 2, 3]), ingested_at=late).frame
    older = norm(half_hours(utc(2024, 1, 1), 2, [10, 20]), ingested_at=early).frame
    tie = norm(half_hours(utc(2024, 1, 1, 1), 1, [30]), ingested_at=late).frame
    other = norm(half_hours(utc(2023, 1, 1), 1, [99]), meter="a0", ingested_at=early).frame
    merged = pd.concat([first, older, tie, other], ignore_index=True)
    out = iv.dedupe(merged)
    assert out["meter"].tolist() == ["a0", "m1", "m1", "m1"]
    assert out["value"].tolist() == [99, 1, 2, 30]
    assert out.index.tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(iv.dedupe(out), out)
    # a newer correction listed before the older row still wins
    pd.testing.assert_frame_equal(
        iv.dedupe(pd.concat([first, older], ignore_index=True)),
        iv.dedupe(pd.concat([older, first], ignore_index=True)),
    )


# ---------------------------------------------------------------- continuity


def test_continuity_half_hourly_with_gaps_duplicates_and_off_grid() -> None:
    base = utc(2024, 1, 1)
    present = [0, 1, 2, 5, 6, 9]  # missing 3-4, 7-8, 10-11 of 12 slots
    rows = [half_hours(base + timedelta(minutes=30 * i), 1)[0] for i in present]
    rows.append(half_hours(base + timedelta(minutes=30), 1)[0])  # duplicate of slot 1
    rows.append(half_hours(base + timedelta(minutes=45), 1)[0])  # off grid
    rows.append(half_hours(base - timedelta(minutes=30), 1)[0])  # before the window
    frame = norm(rows).frame
    report = iv.continuity(
        frame, cadence_minutes=30, window_start=base, window_end=base + timedelta(hours=6)
    )
    assert report.expected == 12
    assert report.present == 6
    assert report.missing_count == 6
    assert report.duplicates == 1
    assert report.off_grid == 1
    assert report.missing == [
        (utc(2024, 1, 1, 1, 30), utc(2024, 1, 1, 2, 30)),
        (utc(2024, 1, 1, 3, 30), utc(2024, 1, 1, 4, 30)),
        (utc(2024, 1, 1, 5, 0), utc(2024, 1, 1, 6, 0)),
    ]


@pytest.mark.parametrize("cadence", [15, 30, 60])
def test_continuity_cadences(cadence: int) -> None:
    base = utc(2024, 3, 31)
    step = timedelta(minutes=cadence)
    slots = 24 * 60 // cadence
    rows = [
        {"start": base + i * step, "end": base + (i + 1) * step, "value": 1}
        for i in range(slots)
        if i != 5
    ]
    report = iv.continuity(
        norm(rows).frame,
        cadence_minutes=cadence,
        window_start=base,
        window_end=base + timedelta(days=1),
    )
    assert (report.expected, report.present, report.duplicates) == (slots, slots - 1, 0)
    assert report.missing == [(base + 5 * step, base + 6 * step)]


def test_continuity_empty_frame_and_partial_last_slot() -> None:
    base = utc(2024, 1, 1)
    report = iv.continuity(
        iv.empty_intervals(),
        cadence_minutes=60,
        window_start=base,
        window_end=base + timedelta(minutes=150),
    )
    assert report.expected == 3
    assert report.missing == [(base, base + timedelta(minutes=150))]
    with pytest.raises(ValueError, match="one meter"):
        two = pd.concat(
            [norm(half_hours(base, 1)).frame, norm(half_hours(base, 1), meter="m2").frame]
        )
        iv.continuity(two, cadence_minutes=30, window_start=base, window_end=base)


# ---------------------------------------------------------------- hourly buckets


def test_hourly_buckets_sums_counts_and_nan() -> None:
    base = utc(2024, 1, 1)
    rows = half_hours(base, 5, [0.5, 0.25, 1.0, 2.0, 4.0])
    rows[0]["cost"] = 0.125
    rows[2]["cost"] = None
    rows[3]["cost"] = None
    rows[4]["cost"] = 1.0
    frame = norm(rows).frame
    fifteen = norm(
        [
            {
                "start": base + timedelta(minutes=15 * i),
                "end": base + timedelta(minutes=15 * (i + 1)),
                "value": 1,
            }
            for i in range(4)
        ],
        meter="a15",
    ).frame
    out = iv.hourly_buckets(pd.concat([frame, fifteen], ignore_index=True))
    assert list(out.columns) == ["meter", "hour", "value", "cost", "count", "complete"]
    assert out["meter"].tolist() == ["a15", "m1", "m1", "m1"]
    assert [h.to_pydatetime() for h in out["hour"]] == [
        base,
        base,
        base + timedelta(hours=1),
        base + timedelta(hours=2),
    ]
    assert out["value"].tolist() == [4.0, 0.75, 3.0, 4.0]
    costs = out["cost"].tolist()
    assert math.isnan(costs[0])  # the 15-minute meter has no cost at all
    assert costs[1] == 0.125  # one known, one unknown: the known part
    assert math.isnan(costs[2])  # all unknown: unknown, not 0
    assert costs[3] == 1.0
    assert out["count"].tolist() == [4, 2, 2, 1]
    assert out["complete"].tolist() == [True, True, True, False]
    forced = iv.hourly_buckets(frame, cadence_minutes=15)
    assert not forced["complete"].any()
    assert iv.infer_cadence_minutes(frame) == {"m1": 30}


def test_hourly_buckets_empty() -> None:
    out = iv.hourly_buckets(iv.empty_intervals(), columns=("value",))
    assert list(out.columns) == ["meter", "hour", "value", "count", "complete"]
    assert out.empty


# ---------------------------------------------------------------- local days


@pytest.mark.parametrize(
    ("tz", "short_day", "long_day"),
    [
        ("Europe/London", date(2024, 3, 31), date(2024, 10, 27)),
        ("Europe/Paris", date(2024, 3, 31), date(2024, 10, 27)),
        ("Europe/London", date(2025, 3, 30), date(2025, 10, 26)),
    ],
)
def test_local_day_totals_on_dst_days(tz: str, short_day: date, long_day: date) -> None:
    for day, expected in ((short_day, 46), (long_day, 50)):
        first = pd.Timestamp(day - timedelta(days=1)).tz_localize(tz).tz_convert(UTC)
        # the day before, the day, the day after: exactly 48 + expected + 48 half-hours
        rows = half_hours(first.to_pydatetime(), 96 + expected)
        out = iv.local_day_totals(norm(rows).frame, tz)
        assert out["day"].tolist() == [day - timedelta(days=1), day, day + timedelta(days=1)]
        assert out["count"].tolist() == [48, expected, 48]
        assert out["value"].tolist() == [48.0, float(expected), 48.0]
        assert out["cost"].isna().all()


def test_local_day_assignment_by_start_in_zone() -> None:
    rows = [
        {"start": "2024-07-01T22:30:00Z", "end": "2024-07-01T23:00:00Z", "value": 1},  # 23:30 BST
        {"start": "2024-07-01T23:00:00Z", "end": "2024-07-01T23:30:00Z", "value": 2},  # 00:00 BST
    ]
    frame = norm(rows).frame
    london = iv.local_day_totals(frame, "Europe/London", columns=("value",))
    assert london["day"].tolist() == [date(2024, 7, 1), date(2024, 7, 2)]
    assert london["value"].tolist() == [1.0, 2.0]
    utc_days = iv.local_day_totals(frame, "UTC", columns=("value",))
    assert utc_days["day"].tolist() == [date(2024, 7, 1)]
    assert utc_days["value"].tolist() == [3.0]


def test_period_totals() -> None:
    base = utc(2024, 5, 30, 23)  # 2024-05-31 00:00 BST
    rows = half_hours(base, 48 * 3, [0.5] * (48 * 3))  # 31 May, 1 June, 2 June (local)
    for i, row in enumerate(rows):
        row["cost"] = 0.25 if i >= 48 else None
    frame = norm(rows).frame
    other = norm(half_hours(utc(2024, 4, 1), 2), meter="m2").frame
    totals = iv.period_totals(
        pd.concat([frame, other], ignore_index=True), "Europe/London", today=date(2024, 6, 2)
    )
    assert totals["m1"] == {
        "today": {"value": 24.0, "cost": 12.0},
        "yesterday": {"value": 24.0, "cost": 12.0},
        "month": {"value": 48.0, "cost": 24.0},
    }
    june_first = iv.period_totals(frame, "Europe/London", today=date(2024, 6, 1))["m1"]
    assert june_first["yesterday"] == {"value": 24.0, "cost": None}
    assert june_first["month"] == {"value": 24.0, "cost": 12.0}
    assert totals["m2"]["today"] == {"value": None, "cost": None}
    assert iv.period_totals(iv.empty_intervals(), "UTC", today=date(2024, 1, 1)) == {}


def test_mixed_offset_and_naive_strings_in_one_column() -> None:
    # pandas alone would read the naive strings with the offset of the string before them
    rows = [
        {"start": "2024-03-29T00:00:00+01:00", "end": "2024-03-29T00:30:00+01:00", "value": 1},
        {"start": "2024-03-29T00:30:00", "end": "2024-03-29T01:00:00", "value": 2},
        {"start": "20240329T013000Z", "end": "20240329T020000Z", "value": 3},
        {"start": "2024-03-29T02:00:00", "end": "2024-03-29T02:30:00", "value": 4},
    ]
    paris = norm(rows, naive_tz="Europe/Paris")
    assert paris.rejected.empty
    assert starts(paris.frame) == [
        utc(2024, 3, 28, 23, 0),
        utc(2024, 3, 28, 23, 30),
        utc(2024, 3, 29, 1, 30),
        utc(2024, 3, 29, 1, 0),
    ]


def test_codes_of_both_paths_agree_with_factorize() -> None:
    rng = np.random.default_rng(0)
    names = np.asarray(["b", "a", None, "c", float("nan")], dtype=object)
    for size in (10, 20_000):  # few runs (run heads only) and many runs (pd.factorize)
        values = names[rng.integers(0, len(names), size)]
        codes, uniques = iv.codes_of(values)
        assert uniques.tolist() == sorted({v for v in values.tolist() if isinstance(v, str)})
        expected, _ = pd.factorize(values, sort=True)
        assert codes.tolist() == expected.tolist()
    runs = np.asarray(["z"] * 5 + ["a"] * 3 + ["z"] * 2, dtype=object)
    codes, uniques = iv.codes_of(runs)
    assert uniques.tolist() == ["a", "z"]
    assert codes.tolist() == [1] * 5 + [0] * 3 + [1] * 2


def test_dedupe_and_buckets_on_many_interleaved_meters() -> None:
    # 6,000 meters interleaved row by row: the factorize path of the key codes
    base = utc(2024, 1, 1)
    frame = pd.concat(
        [norm(half_hours(base, 2, [1.0, 2.0]), meter=f"m{i:05d}").frame for i in range(3000)]
        + [
            norm(
                half_hours(base, 2, [4.0, 8.0]),
                meter=f"m{i:05d}",
                ingested_at=INGESTED + timedelta(days=1),
            ).frame
            for i in range(3000)
        ],
        ignore_index=True,
    ).sample(frac=1.0, random_state=1)
    out = iv.dedupe(frame)
    assert len(out) == 6000
    assert out["meter"].is_monotonic_increasing
    assert out["value"].tolist() == [4.0, 8.0] * 3000  # the newer ingestion wins
    hourly = iv.hourly_buckets(out, columns=("value",))
    assert hourly["value"].tolist() == [12.0] * 3000
    assert hourly["complete"].all()
    out.loc[0, "value"] = -1.0
    assert (frame["value"] >= 0).all()  # the result is a new frame
