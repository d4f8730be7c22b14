"""Late data and revisions: what a re-read changed, and which missing slots are real gaps.

Suppliers publish late and revise history weeks later (docs/architecture.md, "Late data and
revisions"). The sweep re-reads a window and compares it with what is stored: `revised_days`
sums, per local day, the slots whose value changed (old and new totals), for the `revised`
audit rows. `classify_missing` splits a meter's missing slots into real gaps and quiet slots:
export meters publish no row for slots without export (the night, on some accounts), so a
missing slot on a day that has rows is quiet, not a gap, and a backfill need not fetch it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import numpy as np
import pandas as pd

from .intervals import merge_ranges

# Two values closer than this (relative, or absolute for tiny values) are the same reading.
REVISION_TOLERANCE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class DayRevision:
    """One local day whose stored values a re-read changed."""

    day: date
    slots: int
    old_total: float
    new_total: float


def revised_days(
    stored: pd.DataFrame, fetched: pd.DataFrame, *, time_zone: str
) -> list[DayRevision]:
    """Days (in `time_zone`) where `fetched` changes the `value` of slots `stored` holds.

    Both frames hold one meter's intervals (`start`, `value`). A slot only in `fetched` is new
    data, not a revision; a slot only in `stored` is untouched (the supplier did not send it).
    Totals are over the changed slots only, old and new.
    """
    if stored.empty or fetched.empty:
        return []
    old = stored.drop_duplicates("start", keep="last").set_index("start")["value"]
    new = fetched.drop_duplicates("start", keep="last").set_index("start")["value"]
    both = pd.concat([old.rename("old"), new.rename("new")], axis=1, join="inner").dropna()
    if both.empty:
        return []
    scale = np.maximum(np.abs(both["old"].to_numpy()), np.abs(both["new"].to_numpy()))
    changed = np.abs(both["new"].to_numpy() - both["old"].to_numpy()) > REVISION_TOLERANCE * (
        np.maximum(scale, 1.0)
    )
    if not changed.any():
        return []
    diff = both[changed]
    days = pd.DatetimeIndex(diff.index).tz_convert(time_zone).date
    grouped = diff.groupby(days)
    return [
        DayRevision(
            day=day,
            slots=len(group),
            old_total=float(group["old"].sum()),
            new_total=float(group["new"].sum()),
        )
        for day, group in grouped
    ]


@dataclass(frozen=True, slots=True)
class MissingSlots:
    """A meter's missing slots over a window: real gaps (as ranges) and quiet slots."""

    gaps: list[tuple[datetime, datetime]]
    gap_slots: int
    quiet_slots: int


def classify_missing(
    starts: pd.Series,
    *,
    cadence_minutes: int,
    window_start: datetime,
    window_end: datetime,
    time_zone: str,
    quiet_days: bool,
) -> MissingSlots:
    """Missing slots of [window_start, window_end) given the stored `starts` of one meter.

    With `quiet_days` (an export meter), a missing slot on a local day that has at least one
    stored row is quiet: the supplier answered for that day and published nothing for the slot.
    Every other missing slot is a gap; gaps come back as merged [start, end) ranges.
    """
    step = pd.Timedelta(minutes=cadence_minutes)
    first = pd.Timestamp(window_start)
    slots = pd.date_range(first, pd.Timestamp(window_end), freq=step, inclusive="left")
    if len(slots) == 0:
        return MissingSlots([], 0, 0)
    present = pd.DatetimeIndex(pd.to_datetime(starts, utc=True)).unique()
    missing = slots[~slots.isin(present)]
    if len(missing) == 0:
        return MissingSlots([], 0, 0)
    quiet = np.zeros(len(missing), dtype=bool)
    if quiet_days and len(present):
        busy = set(present.tz_convert(time_zone).date)
        quiet = np.fromiter(
            (day in busy for day in missing.tz_convert(time_zone).date),
            dtype=bool,
            count=len(missing),
        )
    gaps = missing[~quiet].as_unit("ns")
    begins = gaps.tz_convert(None).to_numpy().astype("datetime64[ns]").view(np.int64)
    ranges = merge_ranges(begins, begins + cadence_minutes * 60 * 10**9) if len(gaps) else []
    return MissingSlots(ranges, len(gaps), int(quiet.sum()))


def spans(
    ranges: list[tuple[datetime, datetime]], *, join_within: timedelta, limit: int
) -> list[tuple[datetime, datetime]]:
    """Gap ranges joined when closer than `join_within`, newest first, at most `limit`.

    One request reads a whole span, so close gaps cost one request; the newest matter most
    (the statistics of recent days are looked at most), and the cap keeps a sweep's requests
    within its budget.
    """
    joined: list[tuple[datetime, datetime]] = []
    for begin, end in sorted(ranges):
        if joined and begin - joined[-1][1] <= join_within:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((begin, end))
    return sorted(joined, key=lambda span: span[0], reverse=True)[:limit]
