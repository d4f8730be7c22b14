"""Late data and revisions: what a re-read changed, and which missing slots are gaps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings, strategies as st
import pandas as pd

from custom_components.meterlake.analytics.revisions import (
    DayRevision,
    classify_missing,
    revised_days,
    spans,
)

LONDON = "Europe/London"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def frame(start: str, values: list[float], minutes: int = 30) -> pd.DataFrame:
    starts = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=len(values), freq=f"{minutes}min")
    return pd.DataFrame({"start": starts, "value": values})


def test_unchanged_values_are_no_revision() -> None:
    stored = frame("2026-10-01 00:00", [0.5] * 48)
    assert revised_days(stored, stored.copy(), time_zone=LONDON) == []


def test_changed_slots_are_summed_per_local_day_old_and_new() -> None:
    stored = frame("2026-10-01 00:00", [0.5] * 96)
    fetched = stored.copy()
    # 2026-10-01 23:30 UTC is 00:30 on 2 October in London (BST).
    fetched.loc[fetched["start"] == pd.Timestamp("2026-10-01 23:30", tz="UTC"), "value"] = 0.9
    fetched.loc[fetched["start"] == pd.Timestamp("2026-10-01 10:00", tz="UTC"), "value"] = 0.1
    fetched.loc[fetched["start"] == pd.Timestamp("2026-10-01 10:30", tz="UTC"), "value"] = 0.2
    assert revised_days(stored, fetched, time_zone=LONDON) == [
        DayRevision(date(2026, 10, 1), slots=2, old_total=1.0, new_total=0.30000000000000004),
        DayRevision(date(2026, 10, 2), slots=1, old_total=0.5, new_total=0.9),
    ]


def test_new_slots_and_slots_not_sent_again_are_not_revisions() -> None:
    stored = frame("2026-10-01 00:00", [0.5] * 10)
    fetched = frame("2026-10-01 02:00", [0.5] * 20)  # starts later, reaches further
    assert revised_days(stored, fetched, time_zone=LONDON) == []
    assert revised_days(stored.iloc[0:0], fetched, time_zone=LONDON) == []


def test_differences_below_the_tolerance_are_the_same_reading() -> None:
    stored = frame("2026-10-01 00:00", [0.1 + 0.2] * 4)
    fetched = frame("2026-10-01 00:00", [0.3] * 4)
    assert revised_days(stored, fetched, time_zone=LONDON) == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=120),
    st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=120),
)
def test_revision_totals_are_the_changed_slots_sums(old: list[float], new: list[float]) -> None:
    n = min(len(old), len(new))
    stored, fetched = frame("2026-03-28 12:00", old[:n]), frame("2026-03-28 12:00", new[:n])
    days = revised_days(stored, fetched, time_zone=LONDON)
    changed = [
        (a, b) for a, b in zip(old[:n], new[:n], strict=True) if abs(a - b) > 1e-9 * max(a, b, 1)
    ]
    assert sum(d.slots for d in days) == len(changed)
    assert abs(sum(d.new_total - d.old_total for d in days) - sum(b - a for a, b in changed)) < 1e-9


def test_import_meter_missing_slots_are_all_gaps() -> None:
    starts = frame("2026-06-01 10:00", [1.0, 1.0])["start"]
    missing = classify_missing(
        starts,
        cadence_minutes=30,
        window_start=t("2026-06-01 00:00"),
        window_end=t("2026-06-01 12:00"),
        time_zone=LONDON,
        quiet_days=False,
    )
    assert missing.gap_slots == 22 and missing.quiet_slots == 0
    assert missing.gaps == [
        (t("2026-06-01 00:00"), t("2026-06-01 10:00")),
        (t("2026-06-01 11:00"), t("2026-06-01 12:00")),
    ]


def test_export_meter_night_slots_on_a_day_with_rows_are_quiet() -> None:
    # Export from 05:00 to 19:00 UTC on 1 June; 2 June never published.
    starts = frame("2026-06-01 05:00", [0.3] * 28)["start"]
    missing = classify_missing(
        starts,
        cadence_minutes=30,
        # The local day of 1 June (BST): 31 May 23:00 to 1 June 23:00 UTC, then 2 June.
        window_start=t("2026-05-31 23:00"),
        window_end=t("2026-06-02 23:00"),
        time_zone=LONDON,
        quiet_days=True,
    )
    assert missing.quiet_slots == 48 - 28
    assert missing.gap_slots == 48
    assert missing.gaps == [(t("2026-06-01 23:00"), t("2026-06-02 23:00"))]


def test_a_complete_window_has_nothing_missing() -> None:
    starts = frame("2026-06-01 00:00", [1.0] * 4)["start"]
    missing = classify_missing(
        starts,
        cadence_minutes=30,
        window_start=t("2026-06-01 00:00"),
        window_end=t("2026-06-01 02:00"),
        time_zone=LONDON,
        quiet_days=True,
    )
    assert (missing.gaps, missing.gap_slots, missing.quiet_slots) == ([], 0, 0)
    empty_window = classify_missing(
        starts,
        cadence_minutes=30,
        window_start=t("2026-06-01 00:00"),
        window_end=t("2026-06-01 00:00"),
        time_zone=LONDON,
        quiet_days=True,
    )
    assert empty_window.gap_slots == 0


def test_gap_spans_join_close_gaps_newest_first_capped() -> None:
    gaps = [
        (t("2026-01-01 00:00"), t("2026-01-02 00:00")),
        (t("2026-01-03 00:00"), t("2026-01-03 01:00")),  # a day after: joined
        (t("2026-03-01 00:00"), t("2026-03-01 02:00")),
        (t("2026-05-01 00:00"), t("2026-05-01 00:30")),
    ]
    assert spans(gaps, join_within=timedelta(days=2), limit=2) == [
        (t("2026-05-01 00:00"), t("2026-05-01 00:30")),
        (t("2026-03-01 00:00"), t("2026-03-01 02:00")),
    ]
    assert spans(gaps, join_within=timedelta(days=2), limit=10)[-1] == (
        t("2026-01-01 00:00"),
        t("2026-01-03 01:00"),
    )
