"""Hand-computed cases for analytics.tariffs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
import math
from typing import Any

import numpy as np
import pandas as pd

from custom_components.meterlake.analytics import intervals as iv, tariffs as tf
from custom_components.meterlake.analytics.schema import (
    AGREEMENT_COLUMNS,
    RATE_COLUMNS,
    STANDING_CHARGE_COLUMNS,
)

INGESTED = datetime(2026, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def stamps(values: list[datetime | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True)


def rates_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    full = [
        {
            "supplier": "octopus",
            "register": "standard",
            "valid_to": None,
            "rate_exc_vat": None,
            "currency": "GBP",
            "payment_method": None,
            **row,
        }
        for row in rows
    ]
    frame = pd.DataFrame(full, columns=list(RATE_COLUMNS))
    frame["valid_from"] = stamps(frame["valid_from"].tolist())
    frame["valid_to"] = stamps(frame["valid_to"].tolist())
    return frame.astype({"rate": np.float64, "rate_exc_vat": np.float64})


def charges_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    full = [
        {
            "supplier": "octopus",
            "valid_to": None,
            "charge_exc_vat": None,
            "currency": "GBP",
            "payment_method": None,
            **row,
        }
        for row in rows
    ]
    frame = pd.DataFrame(full, columns=list(STANDING_CHARGE_COLUMNS))
    frame["valid_from"] = stamps(frame["valid_from"].tolist())
    frame["valid_to"] = stamps(frame["valid_to"].tolist())
    return frame.astype({"charge": np.float64, "charge_exc_vat": np.float64})


def agreements_frame(rows: list[tuple[str, str, datetime, datetime | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
    frame["valid_from"] = stamps(frame["valid_from"].tolist())
    frame["valid_to"] = stamps(frame["valid_to"].tolist())
    return frame


def half_hourly(
    first: datetime, values: list[float], meter: str = "e1", **kwargs: Any
) -> pd.DataFrame:
    rows = [
        {
            "start": first + timedelta(minutes=30 * i),
            "end": first + timedelta(minutes=30 * (i + 1)),
            "value": v,
        }
        for i, v in enumerate(values)
    ]
    params: dict[str, Any] = {
        "meter": meter,
        "supplier": "octopus",
        "kind": "electricity",
        "unit": "kWh",
        "ingested_at": INGESTED,
    }
    params.update(kwargs)
    return iv.normalize(rows, **params).frame


def both(
    intervals: pd.DataFrame, rates: pd.DataFrame, agreements: pd.DataFrame, **kw: Any
) -> tf.RateJoin:
    """Run the vectorised join and the naive reference and insist they agree."""
    fast = tf.join_rates(intervals, rates, agreements, **kw)
    slow = tf.join_rates_naive(intervals, rates, agreements, **kw)
    pd.testing.assert_frame_equal(fast.frame, slow.frame)
    assert fast.unrated == slow.unrated
    assert fast.unrated_ranges == slow.unrated_ranges
    assert fast.unrated_by_meter == slow.unrated_by_meter
    return fast


def test_tariff_change_mid_day() -> None:
    intervals = half_hourly(utc(2024, 4, 1, 10), [1.0, 2.0, 0.5, 1.5, 1.0, 2.0, 0.5, 1.5])
    agreements = agreements_frame(
        [
            ("e1", "E-1R-OLD-A", utc(2023, 1, 1), utc(2024, 4, 1, 12)),
            ("e1", "E-1R-NEW-A", utc(2024, 4, 1, 12), None),
        ]
    )
    rates = rates_frame(
        [
            {"tariff": "E-1R-OLD-A", "valid_from": utc(2023, 1, 1), "rate": 0.25},
            {"tariff": "E-1R-NEW-A", "valid_from": utc(2024, 1, 1), "rate": 0.125},
        ]
    )
    out = both(intervals, rates, agreements)
    assert out.frame["rate"].tolist() == [0.25] * 4 + [0.125] * 4
    assert out.frame["cost"].tolist() == [0.25, 0.5, 0.125, 0.375, 0.125, 0.25, 0.0625, 0.1875]
    assert out.unrated == 0
    assert out.unrated_ranges == []
    assert out.frame["currency"].tolist() == ["GBP"] * 8


def test_agile_half_hourly_rates_full_precision() -> None:
    day = utc(2024, 11, 5)
    prices = [round(0.1 + 0.0137 * i, 4) for i in range(48)]  # pence-like decimals, not binary
    rates = rates_frame(
        [
            {
                "tariff": "E-1R-AGILE-24-10-01-C",
                "valid_from": day + timedelta(minutes=30 * i),
                "valid_to": day + timedelta(minutes=30 * (i + 1)),
                "rate": p,
            }
            for i, p in enumerate(prices)
        ]
    )
    agreements = agreements_frame([("e1", "E-1R-AGILE-24-10-01-C", utc(2024, 10, 1), None)])
    values = [0.123 + 0.01 * i for i in range(48)]
    out = both(half_hourly(day, values), rates, agreements)
    assert out.frame["rate"].tolist() == prices
    # the product of two floats, never rounded to pence per half-hour
    assert out.frame["cost"].tolist() == [v * p for v, p in zip(values, prices, strict=True)]
    assert prices[1] == 0.1137
    assert out.frame["cost"].iloc[1] == 0.133 * 0.1137  # 0.0151221, not 0.0151 or 0.02
    # the next day has no published prices yet: unrated, kept, reported as one range
    later = half_hourly(day + timedelta(days=1), [1.0, 1.0])
    missing = both(later, rates, agreements)
    assert missing.unrated == 2
    assert len(missing.frame) == 2
    assert missing.frame["rate"].isna().all()
    assert missing.frame["cost"].isna().all()
    assert missing.unrated_ranges == [(utc(2024, 11, 6), utc(2024, 11, 6, 1))]


def test_economy_7_day_night() -> None:
    tariff = "E-2R-VAR-22-11-01-A"
    rates = rates_frame(
        [
            {"tariff": tariff, "register": "day", "valid_from": utc(2024, 1, 1), "rate": 0.5},
            {"tariff": tariff, "register": "night", "valid_from": utc(2024, 1, 1), "rate": 0.25},
        ]
    )
    agreements = agreements_frame([("e1", tariff, utc(2024, 1, 1), None)])
    # summer day: the default window is 00:30-07:30 GMT (UTC), whatever the local clock says
    intervals = half_hourly(utc(2024, 7, 1, 0), [1.0] * 16)
    out = both(intervals, rates, agreements)
    assert out.frame["rate"].tolist() == [0.5] + [0.25] * 14 + [0.5]
    # a window in local time that wraps midnight: 23:00-06:00 Europe/London (BST in July)
    window = tf.NightWindow(start=time(23, 0), end=time(6, 0), tz="Europe/London")
    evening = half_hourly(utc(2024, 7, 1, 21), [1.0] * 4)  # 22:00-24:00 BST
    morning = half_hourly(utc(2024, 7, 2, 4), [1.0] * 4)  # 05:00-07:00 BST
    frame = pd.concat([evening, morning], ignore_index=True)
    local = both(frame, rates, agreements, night=window)
    assert local.frame["rate"].tolist() == [0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.5, 0.5]
    assert window.contains(utc(2024, 7, 1, 22, 0))  # 23:00 BST
    assert not window.contains(utc(2024, 7, 2, 5, 0))  # 06:00 BST
    never = tf.NightWindow(start=time(1, 0), end=time(1, 0))
    assert not never.contains_ns(np.asarray([iv.ns_of(utc(2024, 1, 1, 1))])).any()


def test_open_ended_rate_and_overlaps() -> None:
    tariff = "G-1R-FIX-A"
    rates = rates_frame(
        [
            # the open-ended row is still "current" in the API while a newer row overlaps it
            {"tariff": tariff, "valid_from": utc(2024, 1, 1), "rate": 0.0625},
            {
                "tariff": tariff,
                "valid_from": utc(2024, 2, 1),
                "valid_to": utc(2024, 3, 1),
                "rate": 0.125,
            },
            # same valid_from twice: the later row of the frame wins
            {
                "tariff": tariff,
                "valid_from": utc(2024, 2, 10),
                "valid_to": utc(2024, 2, 11),
                "rate": 1.0,
            },
            {
                "tariff": tariff,
                "valid_from": utc(2024, 2, 10),
                "valid_to": utc(2024, 2, 11),
                "rate": 2.0,
            },
        ]
    )
    agreements = agreements_frame([("g1", tariff, utc(2023, 6, 1), None)])
    frame = pd.concat(
        [
            half_hourly(utc(2024, 1, 15), [4.0], meter="g1", unit="m³", kind="gas"),
            half_hourly(utc(2024, 2, 15), [4.0], meter="g1", unit="m³", kind="gas"),
            half_hourly(utc(2024, 2, 10, 12), [4.0], meter="g1", unit="m³", kind="gas"),
            half_hourly(utc(2024, 3, 15), [4.0], meter="g1", unit="m³", kind="gas"),
            half_hourly(utc(2031, 3, 15), [4.0], meter="g1", unit="m³", kind="gas"),
            half_hourly(utc(2023, 12, 31, 23, 30), [4.0], meter="g1", unit="m³", kind="gas"),
        ],
        ignore_index=True,
    )
    out = both(frame, rates, agreements)
    rate = out.frame["rate"].tolist()
    assert rate[:5] == [0.0625, 0.125, 2.0, 0.0625, 0.0625]
    assert math.isnan(rate[5])  # agreement, but no rate yet on 31 December
    assert out.frame["cost"].tolist()[:5] == [0.25, 0.5, 8.0, 0.25, 0.25]  # per m³ as given
    assert out.unrated == 1
    assert out.unrated_by_meter == {"g1": [(utc(2023, 12, 31, 23, 30), utc(2024, 1, 1))]}


def test_payment_method_filter() -> None:
    rows = [
        {
            "tariff": "T",
            "valid_from": utc(2024, 1, 1),
            "rate": 0.25,
            "payment_method": "DIRECT_DEBIT",
        },
        {
            "tariff": "T",
            "valid_from": utc(2024, 1, 1),
            "rate": 0.5,
            "payment_method": "NON_DIRECT_DEBIT",
        },
        {
            "tariff": "U",
            "valid_from": utc(2024, 1, 1),
            "rate": 0.75,
            "payment_method": "NON_DIRECT_DEBIT",
        },
        {"tariff": "V", "valid_from": utc(2024, 1, 1), "rate": 1.5, "payment_method": "PREPAYMENT"},
        {
            "tariff": "V",
            "valid_from": utc(2024, 1, 1),
            "rate": 1.25,
            "payment_method": "NON_DIRECT_DEBIT",
        },
    ]
    rates = rates_frame(rows)
    agreements = agreements_frame(
        [
            ("a", "T", utc(2024, 1, 1), None),
            ("b", "U", utc(2024, 1, 1), None),
            ("c", "V", utc(2024, 1, 1), None),
        ]
    )
    frame = pd.concat(
        [half_hourly(utc(2024, 5, 1), [1.0], meter=m) for m in ("a", "b", "c")], ignore_index=True
    )
    dd = both(frame, rates, agreements)
    # T: DIRECT_DEBIT chosen; U: its only method is used; V: several methods, none matches
    assert dd.frame["rate"].tolist()[:2] == [0.25, 0.75]
    assert math.isnan(dd.frame["rate"].iloc[2])
    assert dd.unrated_by_meter == {"c": [(utc(2024, 5, 1), utc(2024, 5, 1, 0, 30))]}
    anything = both(frame, rates, agreements, payment_method=None)
    assert anything.frame["rate"].tolist() == [0.5, 0.75, 1.25]  # ties: the later row


def test_unrated_intervals_are_kept_and_merged() -> None:
    agreements = agreements_frame([("e1", "T", utc(2024, 1, 1, 2), utc(2024, 1, 1, 3))])
    rates = rates_frame([{"tariff": "T", "valid_from": utc(2024, 1, 1), "rate": 0.5}])
    frame = pd.concat(
        [
            half_hourly(utc(2024, 1, 1), [1.0] * 8),
            half_hourly(utc(2024, 1, 1), [1.0] * 2, meter="x"),
        ],
        ignore_index=True,
    )
    out = both(frame, rates, agreements)
    assert len(out.frame) == 10
    assert out.frame["rate"].notna().tolist() == [False] * 4 + [True] * 2 + [False] * 4
    assert out.unrated == 8
    assert out.unrated_ranges == [
        (utc(2024, 1, 1, 0), utc(2024, 1, 1, 2)),
        (utc(2024, 1, 1, 3), utc(2024, 1, 1, 4)),
    ]
    assert out.unrated_by_meter == {
        "e1": [(utc(2024, 1, 1, 0), utc(2024, 1, 1, 2)), (utc(2024, 1, 1, 3), utc(2024, 1, 1, 4))],
        "x": [(utc(2024, 1, 1, 0), utc(2024, 1, 1, 1))],
    }
    empty_rates = tf.join_rates(frame, rates.iloc[0:0], agreements)
    assert empty_rates.unrated == 10
    assert len(tf.join_rates(frame.iloc[0:0], rates, agreements).frame) == 0


def test_rate_at_and_next_rate_change() -> None:
    day = utc(2024, 11, 5)
    prices = [0.25, 0.25, 0.25, 0.5, 0.5, 0.125]
    rates = rates_frame(
        [
            {
                "tariff": "AG",
                "valid_from": day + timedelta(minutes=30 * i),
                "valid_to": day + timedelta(minutes=30 * (i + 1)),
                "rate": p,
            }
            for i, p in enumerate(prices)
        ]
    )
    agreements = agreements_frame([("e1", "AG", utc(2024, 1, 1), None)])
    now = day + timedelta(minutes=10)
    assert tf.rate_at(rates, agreements, "e1", now) == 0.25
    assert tf.next_rate_change(rates, agreements, "e1", now) == (day + timedelta(minutes=90), 0.5)
    at_two = day + timedelta(minutes=100)
    assert tf.next_rate_change(rates, agreements, "e1", at_two) == (
        day + timedelta(minutes=150),
        0.125,
    )
    # after the last published price the next rate is unknown
    assert tf.next_rate_change(rates, agreements, "e1", day + timedelta(minutes=155)) is None
    assert tf.rate_at(rates, agreements, "e1", day + timedelta(hours=3)) is None
    assert tf.rate_at(rates, agreements, "other", now) is None
    # a fixed rate never changes within the horizon
    fixed = rates_frame([{"tariff": "AG", "valid_from": utc(2024, 1, 1), "rate": 0.25}])
    assert tf.next_rate_change(fixed, agreements, "e1", now) is None
    # day/night: the change at 07:30 GMT is found with the night window
    e7 = rates_frame(
        [
            {"tariff": "AG", "register": "day", "valid_from": utc(2024, 1, 1), "rate": 0.5},
            {"tariff": "AG", "register": "night", "valid_from": utc(2024, 1, 1), "rate": 0.25},
        ]
    )
    assert tf.rate_at(e7, agreements, "e1", utc(2024, 6, 1, 3)) == 0.25
    assert tf.next_rate_change(e7, agreements, "e1", utc(2024, 6, 1, 3)) == (
        utc(2024, 6, 1, 7, 30),
        0.5,
    )


def test_standing_charges_by_day() -> None:
    agreements = agreements_frame(
        [
            # Octopus agreements start at local midnight: 2024-06-10 00:00 BST
            ("e1", "A", utc(2024, 6, 1, 23), utc(2024, 6, 9, 23)),
            ("e1", "B", utc(2024, 6, 9, 23), None),
            ("g1", "A", utc(2024, 6, 5, 12), None),  # starts mid-day: first day is the 6th
        ]
    )
    charges = charges_frame(
        [
            {
                "tariff": "A",
                "valid_from": utc(2024, 1, 1),
                "charge": 0.5,
                "payment_method": "DIRECT_DEBIT",
            },
            {
                "tariff": "A",
                "valid_from": utc(2024, 1, 1),
                "charge": 0.75,
                "payment_method": "NON_DIRECT_DEBIT",
            },
            {"tariff": "B", "valid_from": utc(2024, 6, 10, 23), "charge": 0.625},
        ]
    )
    out = tf.standing_charges_by_day(
        agreements,
        charges,
        tz="Europe/London",
        start_day=date(2024, 6, 1),
        end_day=date(2024, 6, 12),
    )
    assert list(out.columns) == ["meter", "day", "tariff", "charge", "currency"]
    e1 = out[out["meter"] == "e1"]
    assert e1["day"].tolist() == [date(2024, 6, d) for d in range(2, 13)]
    assert e1["tariff"].tolist() == ["A"] * 8 + ["B"] * 3
    charge = e1["charge"].tolist()
    assert charge[:8] == [0.5] * 8
    assert math.isnan(charge[8])  # B's charge is only published from 11 June: shown as unknown
    assert charge[9:] == [0.625, 0.625]
    assert e1["currency"].tolist()[8] is None
    g1 = out[out["meter"] == "g1"]
    assert g1["day"].tolist() == [date(2024, 6, d) for d in range(6, 13)]
    assert g1["charge"].tolist() == [0.5] * 7
    empty = tf.standing_charges_by_day(
        agreements, charges, tz="UTC", start_day=date(2024, 6, 2), end_day=date(2024, 6, 1)
    )
    assert empty.empty
    assert list(empty.columns) == ["meter", "day", "tariff", "charge", "currency"]


def test_day_and_month_totals() -> None:
    first = utc(2024, 6, 29, 23)  # 30 June 00:00 BST
    values = [0.5] * 96  # 30 June and 1 July, local
    frame = half_hourly(first, values)
    frame["rate"] = 0.25
    frame["cost"] = frame["value"] * frame["rate"]
    frame.loc[95, "cost"] = np.nan  # one interval without a price
    standing = pd.DataFrame(
        {
            "meter": ["e1", "e1", "e1"],
            "day": [date(2024, 6, 30), date(2024, 7, 1), date(2024, 7, 2)],
            "tariff": ["A", "A", "A"],
            "charge": [0.5, 0.5, np.nan],
            "currency": ["GBP", "GBP", None],
        }
    )
    daily, monthly = tf.day_and_month_totals(frame, standing, "Europe/London")
    assert list(daily.columns) == ["meter", "day", *tf.TOTAL_COLUMNS]
    assert daily["day"].tolist() == [date(2024, 6, 30), date(2024, 7, 1), date(2024, 7, 2)]
    assert daily["energy"].tolist()[:2] == [24.0, 24.0]
    assert math.isnan(daily["energy"].iloc[2])
    assert daily["unit_cost"].tolist()[:2] == [6.0, 5.875]
    assert daily["standing_charge"].tolist()[:2] == [0.5, 0.5]
    assert daily["total"].tolist()[:2] == [6.5, 6.375]
    assert math.isnan(daily["total"].iloc[2])  # nothing known on 2 July
    assert daily["count"].tolist() == [48, 48, 0]
    assert daily["unrated"].tolist() == [0, 1, 0]
    assert monthly["month"].tolist() == ["2024-06", "2024-07"]
    assert monthly["energy"].tolist() == [24.0, 24.0]
    assert monthly["total"].tolist() == [6.5, 6.375]
    assert monthly["count"].tolist() == [48, 48]
    assert monthly["unrated"].tolist() == [0, 1]
    no_standing = tf.day_and_month_totals(frame, pd.DataFrame(), "Europe/London")[1]
    assert no_standing["total"].tolist() == [6.0, 5.875]
    assert math.isnan(no_standing["standing_charge"].iloc[0])


def test_join_keeps_input_untouched_and_index() -> None:
    intervals = half_hourly(utc(2024, 4, 1), [1.0, 2.0]).set_axis([10, 20])
    intervals.loc[:, "currency"] = [None, "EUR"]
    before = intervals.copy()
    agreements = agreements_frame([("e1", "T", utc(2024, 1, 1), None)])
    rates = rates_frame([{"tariff": "T", "valid_from": utc(2024, 1, 1), "rate": 0.5}])
    out = both(intervals, rates, agreements)
    assert out.frame.index.tolist() == [10, 20]
    assert out.frame["currency"].tolist() == ["GBP", "EUR"]  # only a null currency is filled
    pd.testing.assert_frame_equal(intervals, before)
    out.frame.loc[10, "value"] = 99.0
    pd.testing.assert_frame_equal(intervals, before)
