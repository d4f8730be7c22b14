"""Edge cases of analytics.intervals, analytics.tariffs and analytics.units.

Every case pins a value, an error text or a rejection reason; expected numbers are worked out
by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
import math

import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import intervals as iv, tariffs as tf, units

from .test_intervals import norm, utc


def ns(moment: datetime) -> int:
    return iv.ns_of(moment)


def frame_of(rows: list[tuple[str | None, datetime, datetime, float]]) -> pd.DataFrame:
    """A minimal interval frame: meter, start, end, value (UTC-aware timestamps)."""
    return pd.DataFrame(
        {
            "meter": pd.Series([r[0] for r in rows], dtype=object),
            "start": pd.to_datetime([r[1] for r in rows], utc=True),
            "end": pd.to_datetime([r[2] for r in rows], utc=True),
            "value": [r[3] for r in rows],
        }
    )


# ============================================================================ intervals: time


def test_utc_ns_refuses_naive_datetime64_column() -> None:
    naive = pd.Series(pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:30"]))
    with pytest.raises(ValueError, match=r"start: timestamps must be tz-aware \(UTC\), got naive"):
        iv.utc_ns(naive, name="start")


def test_utc_ns_of_object_values_converts_each_and_keeps_nulls() -> None:
    values = [
        None,
        float("nan"),
        pd.NaT,
        datetime(2024, 7, 1, 12, 0, tzinfo=UTC),
        pd.Timestamp("2024-07-01T13:00", tz="Europe/London"),  # BST: 12:00 UTC
        "2024-07-01T14:00:00+02:00",  # 12:00 UTC
    ]
    out = iv.utc_ns(values)
    noon = ns(utc(2024, 7, 1, 12))
    assert out.tolist() == [iv.NAT, iv.NAT, iv.NAT, noon, noon, noon]


def test_utc_ns_refuses_a_naive_item_among_aware_ones() -> None:
    values = [datetime(2024, 7, 1, tzinfo=UTC), datetime(2024, 7, 1, 1)]
    with pytest.raises(ValueError, match=r"valid_from: timestamps must be tz-aware \(UTC\), got"):
        iv.utc_ns(values, name="valid_from")


def test_localize_wall_ns_of_only_nulls_is_only_nulls() -> None:
    out = iv.localize_wall_ns(np.full(3, iv.NAT, dtype=np.int64), "Europe/London")
    assert out.tolist() == [iv.NAT] * 3


def test_merge_ranges_of_nothing_is_empty() -> None:
    assert iv.merge_ranges(np.zeros(0, np.int64), np.zeros(0, np.int64)) == []


# ============================================================================ intervals: sums


def test_group_sums_sums_a_group_over_the_vector_limit_exactly() -> None:
    # Group 0 has 600 numbers (> _VECTOR_GROUP_LIMIT, summed by math.fsum): 1e16, then 598
    # ones, then -1e16. Exactly 598; a plain running sum gives 0 (1e16 + 1 rounds to 1e16).
    big = [1e16, *([1.0] * 598), -1e16]
    small = [0.1, 0.2, 0.3]  # group 1, vectorised: correctly rounded 0.6
    values = np.asarray(big + small + [np.nan], dtype=np.float64)
    group = np.asarray([0] * 600 + [1] * 3 + [2], dtype=np.intp)
    sums, counts = iv.group_sums(group, values, 3)
    assert float(np.sum(np.asarray(big))) != 598.0  # the naive sum is wrong ...
    assert sums[0] == 598.0  # ... the group's sum is exact
    assert sums[1] == 0.6
    assert math.isnan(sums[2])  # a group of unknowns is unknown, not 0
    assert counts.tolist() == [600, 3, 0]


def test_hourly_buckets_refuses_a_null_meter() -> None:
    frame = frame_of(
        [
            ("m1", utc(2024, 1, 1, 0), utc(2024, 1, 1, 0, 30), 1.0),
            (None, utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 1), 1.0),
        ]
    )
    with pytest.raises(ValueError, match="meter must not be null"):
        iv.hourly_buckets(frame, columns=("value",))


def test_hourly_buckets_names_a_missing_column() -> None:
    frame = frame_of([("m1", utc(2024, 1, 1, 0), utc(2024, 1, 1, 0, 30), 1.0)])
    with pytest.raises(ValueError, match="frame has no column 'cost'"):
        iv.hourly_buckets(frame)  # default columns: value and cost


# ============================================================================ intervals: normalize


def test_normalize_offset_forms_the_pattern_misses_are_still_utc() -> None:
    # "10:00:00 +01:00" (a space before the offset) is not matched by the offset pattern, so
    # it is parsed with the naive strings - one by one, because the batch is then mixed.
    rows = [
        {"start": "2024-07-01T10:00:00 +01:00", "end": "2024-07-01T10:30:00 +01:00", "value": 1},
        {"start": "2024-07-01T12:00:00", "end": "2024-07-01T12:30:00", "value": 2},
        {"start": "not a time", "end": "2024-07-01T13:30:00", "value": 3},
    ]
    result = norm(rows)
    assert [ts.to_pydatetime() for ts in result.frame["start"]] == [
        utc(2024, 7, 1, 9, 0),  # the given offset wins
        utc(2024, 7, 1, 11, 0),  # naive: London summer time
    ]
    assert [ts.to_pydatetime() for ts in result.frame["end"]] == [
        utc(2024, 7, 1, 9, 30),
        utc(2024, 7, 1, 11, 30),
    ]
    assert result.rejected["reason"].tolist() == [iv.REASON_UNPARSEABLE_TIME]
    assert result.rejected["value"].tolist() == [3]


def test_normalize_rejects_times_that_are_neither_text_nor_datetime() -> None:
    # A column mixing datetimes, numbers and out-of-range dates is read item by item: a number
    # is not a time, and year 1 does not fit in int64 nanoseconds.
    rows = [
        {"start": utc(2024, 1, 1, 0), "end": utc(2024, 1, 1, 0, 30), "value": 1.0},
        {"start": 1_704_067_200, "end": utc(2024, 1, 1, 1), "value": 2.0},
        {"start": datetime(1, 1, 1, tzinfo=UTC), "end": utc(2024, 1, 1, 1), "value": 3.0},
        {"start": "2024-01-01T01:00:00Z", "end": utc(2024, 1, 1, 1, 30), "value": 4.0},
    ]
    result = norm(rows)
    assert [ts.to_pydatetime() for ts in result.frame["start"]] == [
        utc(2024, 1, 1, 0),
        utc(2024, 1, 1, 1),
    ]
    assert result.frame["value"].tolist() == [1.0, 4.0]
    assert result.rejected["value"].tolist() == [2.0, 3.0]
    assert result.rejected["reason"].tolist() == [iv.REASON_UNPARSEABLE_TIME] * 2


# ============================================================================ intervals: dedupe


def test_dedupe_without_ingested_at_keeps_the_later_row() -> None:
    frame = frame_of(
        [
            ("m2", utc(2024, 1, 1, 0), utc(2024, 1, 1, 0, 30), 9.0),
            ("m1", utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 1), 1.0),
            ("m1", utc(2024, 1, 1, 0), utc(2024, 1, 1, 0, 30), 2.0),
            ("m1", utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 1), 3.0),  # corrects row 2
        ]
    )
    out = iv.dedupe(frame)
    assert out["meter"].tolist() == ["m1", "m1", "m2"]
    assert [ts.to_pydatetime() for ts in out["start"]] == [
        utc(2024, 1, 1, 0),
        utc(2024, 1, 1, 0, 30),
        utc(2024, 1, 1, 0),
    ]
    assert out["value"].tolist() == [2.0, 3.0, 9.0]
    assert out.index.tolist() == [0, 1, 2]


# ============================================================================ intervals: continuity


def test_continuity_refuses_bad_cadence_and_reversed_window() -> None:
    frame = frame_of([("m1", utc(2024, 1, 1, 0), utc(2024, 1, 1, 0, 30), 1.0)])
    with pytest.raises(ValueError, match="cadence_minutes must be positive"):
        iv.continuity(
            frame, cadence_minutes=0, window_start=utc(2024, 1, 1), window_end=utc(2024, 1, 2)
        )
    with pytest.raises(ValueError, match="window_end is before window_start"):
        iv.continuity(
            frame, cadence_minutes=30, window_start=utc(2024, 1, 2), window_end=utc(2024, 1, 1)
        )


# ============================================================================ intervals: cadence


def test_infer_cadence_of_nothing_is_empty() -> None:
    assert iv.infer_cadence_minutes(iv.empty_intervals()) == {}


def test_infer_cadence_with_rows_longer_than_a_day() -> None:
    day = timedelta(days=1)
    t0 = utc(2024, 1, 1)
    frame = frame_of(
        [
            # billing-period rows: two 2-day periods and one 3-day period -> 2880 minutes
            ("bill", t0, t0 + 2 * day, 10.0),
            ("bill", t0 + 2 * day, t0 + 4 * day, 10.0),
            ("bill", t0 + 4 * day, t0 + 7 * day, 15.0),
            # half-hourly, with one hour-long row -> 30
            ("half", t0, t0 + timedelta(minutes=30), 1.0),
            ("half", t0 + timedelta(minutes=30), t0 + timedelta(minutes=60), 1.0),
            ("half", t0 + timedelta(minutes=60), t0 + timedelta(minutes=120), 1.0),
            # only an empty interval: no cadence
            ("void", t0, t0, 1.0),
        ]
    )
    assert iv.infer_cadence_minutes(frame) == {"bill": 2880, "half": 30, "void": None}


# ============================================================================ tariffs


def test_join_rates_with_minimal_frames_treats_absent_columns_as_unknown() -> None:
    # Agreements without valid_to and rates without valid_to, currency or payment_method:
    # open-ended rows, no currency to copy.
    intervals = norm(
        [
            {"start": "2024-04-01T10:00:00Z", "end": "2024-04-01T10:30:00Z", "value": 2.0},
            {"start": "2024-04-01T10:30:00Z", "end": "2024-04-01T11:00:00Z", "value": 4.0},
        ],
        meter="e1",
    ).frame
    agreements = pd.DataFrame(
        {
            "meter": ["e1"],
            "tariff": ["T"],
            "valid_from": pd.to_datetime([utc(2024, 1, 1)], utc=True),
        }
    )
    rates = pd.DataFrame(
        {
            "tariff": ["T"],
            "register": ["standard"],
            "valid_from": pd.to_datetime([utc(2024, 4, 1, 10, 30)], utc=True),
            "rate": [0.25],
        }
    )
    for join in (tf.join_rates, tf.join_rates_naive):
        out = join(intervals, rates, agreements)
        assert math.isnan(out.frame["rate"].iloc[0])  # before the rate starts
        assert out.frame["rate"].iloc[1] == 0.25
        assert out.frame["cost"].iloc[1] == 1.0
        assert out.frame["currency"].tolist() == [None, None]
        assert out.unrated == 1
        assert out.unrated_ranges == [(utc(2024, 4, 1, 10), utc(2024, 4, 1, 10, 30))]

    # A rates frame without a `rate` column prices nothing.
    no_price = tf.join_rates(intervals, rates.drop(columns="rate"), agreements)
    assert no_price.unrated == 2 and no_price.frame["cost"].isna().all()


def test_null_rate_start_and_null_interval_start_are_never_rated() -> None:
    intervals = pd.DataFrame(
        {
            "meter": ["e1", "e1"],
            "start": pd.to_datetime([utc(2024, 4, 1, 10), None], utc=True),
            "end": pd.to_datetime([utc(2024, 4, 1, 10, 30), None], utc=True),
            "value": [2.0, 3.0],
        }
    )
    agreements = pd.DataFrame(
        {
            "meter": ["e1"],
            "tariff": ["T"],
            "valid_from": pd.to_datetime([utc(2024, 1, 1)], utc=True),
            "valid_to": pd.to_datetime([None], utc=True),
        }
    )
    rates = pd.DataFrame(
        {
            "tariff": ["T", "T"],
            "register": ["standard", "standard"],
            # a row without a start applies nowhere, even though it is the later row
            "valid_from": pd.to_datetime([utc(2024, 1, 1), None], utc=True),
            "valid_to": pd.to_datetime([None, None], utc=True),
            "rate": [0.5, 9.0],
            "currency": ["GBP", "GBP"],
        }
    )
    fast = tf.join_rates(intervals, rates, agreements)
    slow = tf.join_rates_naive(intervals, rates, agreements)
    pd.testing.assert_frame_equal(fast.frame, slow.frame)
    assert fast.frame["rate"].iloc[0] == 0.5
    assert fast.frame["cost"].iloc[0] == 1.0
    assert math.isnan(fast.frame["rate"].iloc[1])
    assert fast.unrated == slow.unrated == 1


def _agile_rates() -> tuple[pd.DataFrame, pd.DataFrame]:
    day = utc(2024, 11, 5)
    rates = pd.DataFrame(
        {
            "tariff": ["AG"] * 3,
            "register": ["standard"] * 3,
            "valid_from": pd.to_datetime(
                [day + timedelta(minutes=30 * i) for i in range(3)], utc=True
            ),
            "valid_to": pd.to_datetime(
                [day + timedelta(minutes=30 * (i + 1)) for i in range(3)], utc=True
            ),
            "rate": [0.25, 0.25, 0.5],
        }
    )
    agreements = pd.DataFrame(
        {
            "meter": ["e1"],
            "tariff": ["AG"],
            "valid_from": pd.to_datetime([utc(2024, 1, 1)], utc=True),
            "valid_to": pd.to_datetime([None], utc=True),
        }
    )
    return rates, agreements


def test_next_rate_change_edges() -> None:
    rates, agreements = _agile_rates()
    now = utc(2024, 11, 5, 0, 10)
    assert tf.next_rate_change(rates, agreements, "e1", now) == (utc(2024, 11, 5, 1), 0.5)
    with pytest.raises(ValueError, match="step must be positive"):
        tf.next_rate_change(rates, agreements, "e1", now, step=timedelta(0))
    # no rate now (before the first published price): nothing to compare with
    assert tf.next_rate_change(rates, agreements, "e1", utc(2024, 11, 4, 23)) is None
    # a horizon that ends before the next slot starts: nothing to scan
    assert tf.next_rate_change(rates, agreements, "e1", now, horizon=timedelta(minutes=5)) is None


def test_day_totals_sum_two_standing_charges_of_one_day() -> None:
    # A tariff change mid-day can list one day twice (one charge per tariff): the day's
    # standing charge is their sum, 0.4 + 0.125, and a day with both unknown stays unknown.
    frame = norm(
        [{"start": "2024-06-10T10:00:00Z", "end": "2024-06-10T10:30:00Z", "value": 2.0}],
        meter="e1",
    ).frame
    frame["cost"] = [0.5]
    standing = pd.DataFrame(
        {
            "meter": ["e1", "e1", "e1", "e1"],
            "day": [date(2024, 6, 10), date(2024, 6, 10), date(2024, 6, 11), date(2024, 6, 11)],
            "tariff": ["A", "B", "A", "B"],
            "charge": [0.4, 0.125, np.nan, np.nan],
            "currency": ["GBP", "GBP", None, None],
        }
    )
    daily, monthly = tf.day_and_month_totals(frame, standing, "Europe/London")
    assert daily["day"].tolist() == [date(2024, 6, 10), date(2024, 6, 11)]
    assert daily["standing_charge"].iloc[0] == 0.525
    assert daily["total"].iloc[0] == 1.025
    assert math.isnan(daily["standing_charge"].iloc[1])
    assert daily["count"].tolist() == [1, 0]
    assert monthly["standing_charge"].tolist() == [0.525]
    assert monthly["total"].tolist() == [1.025]


# ============================================================================ units


def test_energy_kwh_for_a_row_without_unit_is_unknown() -> None:
    frame = pd.DataFrame({"value": [1500.0, 2.0], "unit": ["Wh", None]})
    out = units.energy_kwh_for(frame)
    assert out.iloc[0] == 1.5
    assert math.isnan(out.iloc[1])
