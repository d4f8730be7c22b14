"""Property tests (hypothesis) for the analytics core."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
import math
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import numpy as np
import pandas as pd

from custom_components.meterlake.analytics import intervals as iv, tariffs as tf

BASE = datetime(2024, 3, 29, tzinfo=UTC)  # spans the spring change in London and Paris
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# multiples of 1/1024 up to 64: every partial sum of a few thousand of them is exact in binary
dyadic = st.integers(min_value=0, max_value=65536).map(lambda k: k / 1024)
any_value = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


def frame_of(slots: list[tuple[str, int, float, int]]) -> pd.DataFrame:
    """Rows (meter, half-hour slot, value, ingestion day) as an interval table."""
    parts = []
    for meter, slot, value, day in slots:
        start = BASE + timedelta(minutes=30 * slot)
        parts.append(
            iv.normalize(
                [{"start": start, "end": start + timedelta(minutes=30), "value": value}],
                meter=meter,
                supplier="demo",
                kind="electricity",
                unit="kWh",
                ingested_at=BASE + timedelta(days=day),
            ).frame
        )
    if not parts:
        return iv.empty_intervals()
    return pd.concat(parts, ignore_index=True)


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=300),
        dyadic,
        st.integers(min_value=0, max_value=3),
    ),
    max_size=60,
)


@SETTINGS
@given(rows_strategy)
def test_dedupe_is_idempotent_and_keeps_the_newest(
    slots: list[tuple[str, int, float, int]],
) -> None:
    frame = frame_of(slots)
    once = iv.dedupe(frame)
    pd.testing.assert_frame_equal(iv.dedupe(once), once)
    pd.testing.assert_frame_equal(iv.dedupe(pd.concat([once, once], ignore_index=True)), once)
    expected: dict[tuple[str, int], tuple[int, int, float]] = {}
    for position, (meter, slot, value, day) in enumerate(slots):
        key = (meter, slot)
        if key not in expected or (day, position) >= expected[key][:2]:
            expected[key] = (day, position, value)
    keys = sorted(expected)
    assert once["meter"].tolist() == [k[0] for k in keys]
    assert [iv.ns_of(t.to_pydatetime()) for t in once["start"]] == [
        iv.ns_of(BASE + timedelta(minutes=30 * k[1])) for k in keys
    ]
    assert once["value"].tolist() == [expected[k][2] for k in keys]


@SETTINGS
@given(rows_strategy, st.lists(any_value, max_size=60))
def test_hourly_buckets_preserve_the_total(
    slots: list[tuple[str, int, float, int]], noise: list[float]
) -> None:
    frame = frame_of(slots)
    buckets = iv.hourly_buckets(frame, columns=("value",))
    assert int(buckets["count"].sum()) == len(frame)
    # binary-exact values: the bucket sums add up to the row total exactly
    assert math.fsum(buckets["value"].dropna()) == math.fsum(frame["value"])
    for meter in ("a", "b", "c"):
        mine = frame[frame["meter"] == meter]
        assert math.fsum(buckets.loc[buckets["meter"] == meter, "value"]) == math.fsum(
            mine["value"]
        )
    # arbitrary floats: each bucket sum is the exact sum rounded once (+ compensation error),
    # so the total of the buckets is within one ulp of each bucket of the exact total
    if len(frame):
        frame = frame.assign(
            value=(noise * (len(frame) // max(len(noise), 1) + 1))[: len(frame)] or 0.0
        )
        buckets = iv.hourly_buckets(frame, columns=("value",))
        exact = sum((Fraction(v) for v in frame["value"]), Fraction(0))
        bound = sum((Fraction(math.ulp(s)) for s in buckets["value"]), Fraction(0))
        assert abs(sum((Fraction(s) for s in buckets["value"]), Fraction(0)) - exact) <= bound


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=48 * 40), dyadic), max_size=200),
    st.sampled_from(["Europe/London", "Europe/Paris", "UTC", "America/New_York"]),
    st.integers(min_value=0, max_value=40),
)
def test_day_totals_sum_to_the_period_total(
    points: list[tuple[int, float]], tz: str, offset: int
) -> None:
    frame = iv.dedupe(frame_of([("a", slot, value, 0) for slot, value in points]))
    today = BASE.date() + timedelta(days=offset)
    days = iv.local_day_totals(frame, tz, columns=("value",))
    periods = iv.period_totals(frame, tz, today=today, columns=("value",))
    if frame.empty:
        assert periods == {}
        return
    month = [
        v
        for d, v in zip(days["day"], days["value"], strict=True)
        if today.replace(day=1) <= d <= today
    ]
    expected = math.fsum(month) if month else None
    assert periods["a"]["month"]["value"] == expected
    on = dict(zip(days["day"], days["value"], strict=True))
    assert periods["a"]["today"]["value"] == on.get(today)
    assert periods["a"]["yesterday"]["value"] == on.get(today - timedelta(days=1))
    assert int(days["count"].sum()) == len(frame)
    # every day has 46, 48 or 50 half-hours at most, and DST days their own count
    for d, count in zip(days["day"], days["count"], strict=True):
        hours = (
            pd.Timestamp(d + timedelta(days=1)).tz_localize(tz) - pd.Timestamp(d).tz_localize(tz)
        ) / pd.Timedelta(minutes=30)
        assert count <= hours


# ------------------------------------------------------------------ join vs references

HOUR = 3600


def _brute_force(
    intervals: pd.DataFrame,
    rates: pd.DataFrame,
    agreements: pd.DataFrame,
    payment_method: str | None,
    night: tf.NightWindow,
) -> list[float]:
    """The rules of the tariffs module, spelled out by scanning every row."""

    def covering(rows: list[dict[str, Any]], at: pd.Timestamp) -> dict[str, Any] | None:
        best: tuple[pd.Timestamp, int] | None = None
        found = None
        for position, row in rows:
            end = row["valid_to"]
            if row["valid_from"] <= at and (pd.isna(end) or at < end):
                key = (row["valid_from"], position)
                if best is None or key > best:
                    best, found = key, row
        return found

    ag = list(enumerate(agreements.to_dict("records")))
    rr = list(enumerate(rates.to_dict("records")))
    methods: dict[str, set[str]] = {}
    for _, r in rr:
        if r["payment_method"] is not None:
            methods.setdefault(r["tariff"], set()).add(r["payment_method"])
    usable = [
        (p, r)
        for p, r in rr
        if payment_method is None
        or len(methods.get(r["tariff"], set())) <= 1
        or r["payment_method"] in (None, payment_method)
    ]
    out = []
    for row in intervals.to_dict("records"):
        at = row["start"]
        agreement = covering([(p, a) for p, a in ag if a["meter"] == row["meter"]], at)
        rate = math.nan
        if agreement is not None:
            mine = [(p, r) for p, r in usable if r["tariff"] == agreement["tariff"]]
            hit = None
            if any(r["register"] in ("day", "night") for _, r in mine):
                register = "night" if night.contains(at.to_pydatetime()) else "day"
                hit = covering([(p, r) for p, r in mine if r["register"] == register], at)
            if hit is None:
                hit = covering([(p, r) for p, r in mine if r["register"] == "standard"], at)
            if hit is not None:
                rate = hit["rate"]
        out.append(rate)
    return out


def _stamp(hours: int | None) -> pd.Timestamp | None:
    return None if hours is None else pd.Timestamp(BASE + timedelta(hours=hours))


schedule_row = st.fixed_dictionaries(
    {
        "tariff": st.sampled_from(["T1", "T2"]),
        "register": st.sampled_from(["standard", "standard", "day", "night"]),
        "from": st.integers(min_value=-10, max_value=80),
        "length": st.one_of(st.none(), st.integers(min_value=-2, max_value=40)),
        "rate": dyadic,
        "payment_method": st.sampled_from([None, "DIRECT_DEBIT", "NON_DIRECT_DEBIT"]),
    }
)
agreement_row = st.fixed_dictionaries(
    {
        "meter": st.sampled_from(["a", "b"]),
        "tariff": st.sampled_from(["T1", "T2", "T3"]),
        "from": st.integers(min_value=-10, max_value=80),
        "length": st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(schedule_row, max_size=14),
    st.lists(agreement_row, min_size=1, max_size=5),
    rows_strategy,
    st.sampled_from([None, "DIRECT_DEBIT"]),
    st.sampled_from(
        [
            tf.NightWindow(),
            tf.NightWindow(
                start=iv.aware(0).time().replace(hour=22),
                end=iv.aware(0).time().replace(hour=5),
                tz="Europe/London",
            ),
        ]
    ),
)
def test_vectorised_join_equals_references(
    schedule: list[dict[str, Any]],
    contracts: list[dict[str, Any]],
    slots: list[tuple[str, int, float, int]],
    payment_method: str | None,
    night: tf.NightWindow,
) -> None:
    rates = pd.DataFrame(
        {
            "supplier": "demo",
            "tariff": pd.Series([r["tariff"] for r in schedule], dtype=object),
            "register": pd.Series([r["register"] for r in schedule], dtype=object),
            "valid_from": pd.to_datetime(
                pd.Series([_stamp(r["from"]) for r in schedule], dtype=object), utc=True
            ),
            "valid_to": pd.to_datetime(
                pd.Series(
                    [
                        None if r["length"] is None else _stamp(r["from"] + r["length"])
                        for r in schedule
                    ],
                    dtype=object,
                ),
                utc=True,
            ),
            "rate": pd.Series([r["rate"] for r in schedule], dtype=np.float64),
            "rate_exc_vat": np.nan,
            "currency": "GBP",
            "payment_method": pd.Series([r["payment_method"] for r in schedule], dtype=object),
        }
    )
    agreements = pd.DataFrame(
        {
            "meter": pd.Series([c["meter"] for c in contracts], dtype=object),
            "tariff": pd.Series([c["tariff"] for c in contracts], dtype=object),
            "valid_from": pd.to_datetime(
                pd.Series([_stamp(c["from"]) for c in contracts], dtype=object), utc=True
            ),
            "valid_to": pd.to_datetime(
                pd.Series(
                    [
                        None if c["length"] is None else _stamp(c["from"] + c["length"])
                        for c in contracts
                    ],
                    dtype=object,
                ),
                utc=True,
            ),
        }
    )
    intervals = frame_of(slots)
    fast = tf.join_rates(intervals, rates, agreements, payment_method=payment_method, night=night)
    slow = tf.join_rates_naive(
        intervals, rates, agreements, payment_method=payment_method, night=night
    )
    pd.testing.assert_frame_equal(fast.frame, slow.frame)
    assert fast.unrated == slow.unrated
    assert fast.unrated_ranges == slow.unrated_ranges
    assert fast.unrated_by_meter == slow.unrated_by_meter
    if len(intervals) and not rates.empty:
        expected = _brute_force(intervals, rates, agreements, payment_method, night)
        np.testing.assert_array_equal(fast.frame["rate"].to_numpy(), np.asarray(expected))
        np.testing.assert_array_equal(
            fast.frame["cost"].to_numpy(), intervals["value"].to_numpy() * np.asarray(expected)
        )
    assert fast.unrated == int(fast.frame["rate"].isna().sum())
    assert len(fast.frame) == len(intervals)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=48 * 400),
            st.sampled_from(["iso_offset", "z", "naive", "aware_dt", "naive_dt"]),
        ),
        min_size=1,
        max_size=40,
        unique_by=lambda t: t[0],
    ),
    st.sampled_from(["Europe/London", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
)
def test_normalize_reads_every_form_to_the_same_instant(
    points: list[tuple[int, str]], tz: str
) -> None:
    rows = []
    expected = []
    for slot, chosen in points:
        form = chosen
        start = BASE + timedelta(minutes=30 * slot)
        end = start + timedelta(minutes=30)
        local_start = pd.Timestamp(start).tz_convert(tz)
        local_end = pd.Timestamp(end).tz_convert(tz)
        unambiguous = all(_unambiguous(t, tz) for t in (local_start, local_end))
        if form in ("naive", "naive_dt") and not unambiguous:
            form = "iso_offset"
        match form:
            case "iso_offset":
                row = {"start": local_start.isoformat(), "end": local_end.isoformat()}
            case "z":
                row = {
                    "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            case "naive":
                row = {
                    "start": local_start.tz_localize(None).isoformat(),
                    "end": local_end.tz_localize(None).isoformat(),
                }
            case "aware_dt":
                row = {"start": local_start.to_pydatetime(), "end": local_end.to_pydatetime()}
            case _:
                row = {
                    "start": local_start.tz_localize(None).to_pydatetime(),
                    "end": local_end.tz_localize(None).to_pydatetime(),
                }
        rows.append({**row, "value": 1.0})
        expected.append(start)
    result = iv.normalize(
        rows, meter="m", supplier="demo", kind="electricity", unit="kWh", naive_tz=tz
    )
    assert result.rejected.empty
    assert [t.to_pydatetime() for t in result.frame["start"]] == expected
    assert (result.frame["end"] - result.frame["start"] == pd.Timedelta(minutes=30)).all()


def _unambiguous(moment: pd.Timestamp, tz: str) -> bool:
    wall = moment.tz_localize(None)
    try:
        wall.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except Exception:
        return False
    return True


def test_today_is_a_date() -> None:
    assert isinstance(iv.day_of(iv.day_number(date(2024, 2, 29))), date)
    assert iv.day_of(iv.day_number(date(2024, 2, 29))) == date(2024, 2, 29)
