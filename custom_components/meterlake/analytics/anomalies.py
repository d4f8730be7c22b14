"""Anomalies in one meter's intervals: pure, vectorised detectors with honest baselines.

A household wants to hear about the heater left on, the kettle that never switched off, the
cistern that runs all night and the meter that went quiet - and nothing else: not the 25-hour
day in October, not the Saturday that is always busier, not the week away and the week of
guests, not the first cold week of autumn. So each detector compares a period with the meter's
own history of the *same kind of period*, and only a difference far outside that history's own
spread is an anomaly:

* high_day: a complete local day (all its slots present, DST days with their 46 or 50
  half-hours, ended before `now`) whose total is above k x the mean of the complete days of the
  `window` days before (at least window - 2 of them; `expected` is that mean). Two checks keep
  a change of level from alarming, so a day is judged once the day after it is complete too:
  when that day is as high (above k x the same mean) the level changed - the heating season
  began, the guests arrived - and neither is a high day; and a high day must also be above k x
  the median of the 28 days before (_GUARD_DAYS), or the first day back from a week away
  (high against that week's mean only) would alarm, and more than _HIGH_Z x their robust
  spread (1.4826 x MAD) above that median, or a bursty meter's (water's) ordinary busy day
  would. "As high" for the day after means above half the threshold's lift over the mean
  (_SETTLE_SHARE): the first cold days of autumn come and go. A heater left on for days is
  base_load's.
* spike: each interval against the same weekday and local wall-clock slot of the previous
  `spike_weeks` weeks (at least two thirds of them known; so DST, weekends and the daily shape
  are part of the baseline): flagged when above median + sensitivity x scale and above
  _SPIKE_MIN_RATIO x the median. The scale is 1.4826 x the MAD, floored at _SPIKE_FLOOR x the
  meter's noise - the larger of the mean absolute change from one week to the next (the whole
  meter) and from one day to the next at that time of day (each change clipped at _SLOT_CLIP x
  the former, so a recurring spike or a weekend does not hide the next), both over the same
  weeks: a flat series has a MAD of ~0 and must not alarm on a small wobble, and a bursty time
  of day (water: a shower or a wash) jumps more than six weeks' MAD shows. An interval is
  judged once the same slot of the next day is known; when that one is high too (above half
  the threshold) the level changed and it is not a spike; so it has when more than
  _SPIKE_DAY_HOURS of that local day are raised (above half the threshold's necessary bound):
  the heating came on, and then only an interval above _SPIKE_MIN_RATIO x the mean of the
  day's raised ones is a spike. Runs of flagged intervals are one anomaly (observed: their
  sum; expected: the sum of their medians).
* base_load: the lowest per-hour rate of each local night (01:00-05:00) against the median of
  the 30 nights before; flagged above base_load_factor x that norm and above it by a margin
  (_BASE_MARGIN x the meter's mean hourly rate of the 30 days before). For water also: a run
  of 24 hours or more in which no interval is 0, where the nights normally fall to 0 - the
  leak whose flow the night minimum would only show as "small". Consecutive nights and the
  runs they overlap are one anomaly. observed/expected are per hour (unit "<unit>/h").
* no_data: a stretch without rows longer than max_delay_hours - between two rows, or from the
  newest row to `now`.
* implausible: rows below zero or above plausibility.max_per_hour scaled by their length;
  consecutive ones are one anomaly. The other detectors never see these rows.

The tuned numbers (spike_sensitivity, base_load_factor, _SPIKE_FLOOR, _SLOT_CLIP, _HIGH_Z,
_SPIKE_DAY_HOURS and the settling rules) were chosen on bench/anomalies.py's labelled
synthetic households; its docstring says how they score. `evaluated_until` is, per detector
that ran and judged something, the end of the newest period it judged (a day, an interval, a
night; no_data: `now`); high_day and spike wait for the day after, so they trail the newest
row by a day.

Everything works on int64 ns since the epoch (UTC) and each meter's local wall-clock time
(intervals.local_wall_ns); loops run per detector and per anomaly found, never per interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from .intervals import (
    NAT,
    NS_PER_DAY,
    NS_PER_HOUR,
    NS_PER_MINUTE,
    aware,
    local_wall_ns,
    localize_wall_ns,
    ns_of,
    utc_ns,
)
from .plausibility import max_per_hour
from .schema import ANOMALY_COLUMNS

type I64 = npt.NDArray[np.int64]
type F64 = npt.NDArray[np.float64]
type Bools = npt.NDArray[np.bool_]

# spike: the value must also be this multiple of the median, and the scale is at least this
# multiple of the meter's week-to-week noise; this share of spike_weeks must be known.
# high_day: a day is also compared with the median and spread of this many days before.
_GUARD_DAYS: Final = 28
_SETTLE_SHARE: Final = 0.5
_HIGH_Z: Final = 5.0
_SPIKE_MIN_RATIO: Final = 2.0
_SPIKE_FLOOR: Final = 3.0
_SPIKE_MIN_SHARE: Final = 2 / 3
_SLOT_CLIP: Final = 4.0
_SPIKE_DAY_HOURS: Final = 6.0
_MAD_SCALE: Final = 1.4826
# base_load: the night, the nights of the norm (and how many must be known), the margin.
_NIGHT_HOURS: Final = (1, 5)
_NORM_NIGHTS: Final = 30
_NORM_MIN_NIGHTS: Final = 15
_BASE_MARGIN: Final = 0.1
_LEAK_HOURS: Final = 24
_WEEK_MINUTES: Final = 7 * 1440


@dataclass(frozen=True, slots=True)
class AnomalySettings:
    """Which detectors run, and their thresholds (defaults tuned on bench/anomalies.py)."""

    high_day: bool = True
    high_day_factor: float = 2.0
    high_day_window_days: int = 7
    spike: bool = True
    spike_weeks: int = 6
    spike_sensitivity: float = 5.5
    base_load: bool = True
    base_load_factor: float = 1.8
    no_data: bool = True
    max_delay_hours: float = 36.0
    implausible: bool = True


@dataclass(frozen=True, slots=True)
class Detection:
    """The anomalies found, and how far each detector that ran has judged.

    anomalies: ANOMALY_COLUMNS, sorted by start then kind. evaluated_until: per detector that
    ran and judged something, the end of the newest period it judged, settled (no_data: now).
    """

    anomalies: pd.DataFrame
    evaluated_until: dict[str, datetime] = field(default_factory=dict)


@dataclass(slots=True)
class _Found:
    """Anomalies of one detector as parallel arrays (ns, floats) and their reasons."""

    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)

    def add(self, start: int, end: int, observed: float, expected: float, reason: str) -> None:
        self.start.append(int(start))
        self.end.append(int(end))
        self.observed.append(float(observed))
        self.expected.append(float(expected))
        self.reason.append(reason)


@dataclass(frozen=True, slots=True)
class _Series:
    """One meter's usable rows, sorted by start, one per start."""

    start: I64
    end: I64
    value: F64
    wall: I64  # local wall-clock time of start, ns


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def detect(
    intervals: pd.DataFrame,
    *,
    meter: str,
    kind: str,
    unit: str,
    tz: str,
    cadence_minutes: int,
    settings: AnomalySettings,
    now: datetime,
    since: datetime | None = None,
) -> Detection:
    """Run the detectors `settings` switches on over one meter's interval rows.

    Only anomalies whose period ends after `since` are reported (the rows before it are there
    for the baselines). `kind` is the meter's kind (plausibility bounds, water leaks).
    """
    if cadence_minutes <= 0:
        raise ValueError("cadence_minutes must be positive")
    now_ns = ns_of(now, name="now")
    start, end, value = _rows(intervals)
    hours = (end - start) / NS_PER_HOUR
    limit = max_per_hour(kind, unit)
    bad = value < 0
    if limit is not None:
        bad |= value > limit * hours
    found: dict[str, _Found] = {}
    until: dict[str, int] = {}
    ctx = _Context(unit=unit, tz=tz, clock=_Clock.over(start, tz))
    if settings.implausible:
        wrong = _Series(start[bad], end[bad], value[bad], start[bad])
        found["implausible"], _ = _implausible(wrong, limit, hours[bad], ctx)
        if len(start):
            until["implausible"] = int(end.max())
    good = ~bad
    series = (
        _Series(start, end, value, ctx.clock.wall(start))
        if not bad.any()
        else _Series(start[good], end[good], value[good], ctx.clock.wall(start[good]))
    )
    cadence = cadence_minutes * NS_PER_MINUTE
    if settings.high_day:
        found["high_day"], judged = _high_day(
            series,
            cadence,
            now_ns,
            ctx,
            factor=settings.high_day_factor,
            window=settings.high_day_window_days,
            settle=True,
        )
        if judged is not None:
            until["high_day"] = judged
    if settings.spike:
        found["spike"], judged = _spike(series, cadence_minutes, settings, ctx)
        if judged is not None:
            until["spike"] = judged
    if settings.base_load:
        found["base_load"], judged = _base_load(series, kind, settings, ctx)
        if judged is not None:
            until["base_load"] = judged
    if settings.no_data:
        found["no_data"] = _no_data(series, now_ns, settings.max_delay_hours, ctx)
        until["no_data"] = now_ns
    since_ns = None if since is None else ns_of(since, name="since")
    frame = _frame(found, meter=meter, unit=unit, now=now, since_ns=since_ns)
    return Detection(
        anomalies=frame, evaluated_until={k: aware(v) for k, v in sorted(until.items())}
    )


def classic_rule(
    intervals: pd.DataFrame,
    *,
    meter: str,
    unit: str,
    tz: str,
    now: datetime,
    factor: float = 2.0,
    window_days: int = 7,
) -> pd.DataFrame:
    """The plain rule: a day above `factor` x the mean of the `window_days` days before.

    Days are whole local days with rows (none judged before window_days - 2 days with rows are
    before it, none that has not ended by `now`); kind "high_day". For comparisons only.
    """
    start, end, value = _rows(intervals)
    ctx = _Context(unit=unit, tz=tz, clock=_Clock.over(start, tz))
    series = _Series(start, end, value, ctx.clock.wall(start))
    found, _ = _high_day(
        series,
        None,
        ns_of(now, name="now"),
        ctx,
        factor=factor,
        window=window_days,
        settle=False,
    )
    return _frame({"high_day": found}, meter=meter, unit=unit, now=now, since_ns=None)


# --------------------------------------------------------------------------------------------
# Input and output
# --------------------------------------------------------------------------------------------


def _rows(intervals: pd.DataFrame) -> tuple[I64, I64, F64]:
    """Start, end (ns) and value of the rows with a value, sorted by start, one per start."""
    if intervals.empty:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float64)
    start = utc_ns(intervals["start"], name="start")
    end = utc_ns(intervals["end"], name="end")
    value = np.asarray(pd.to_numeric(intervals["value"]), dtype=np.float64)
    keep = ~np.isnan(value)
    if not keep.all():
        start, end, value = start[keep], end[keep], value[keep]
    if len(start) > 1 and not bool((start[1:] >= start[:-1]).all()):
        order = np.argsort(start, kind="stable")
        start, end, value = start[order], end[order], value[order]
    last = np.ones(len(start), dtype=bool)
    last[:-1] = start[1:] != start[:-1]  # the later row of a start wins
    if last.all():  # copies of 70k rows are a real share of a detect call
        return start, end, value
    return start[last], end[last], value[last]


@dataclass(frozen=True, slots=True)
class _Clock:
    """A zone's UTC offset per UTC day over a meter's range: wall-clock times by arithmetic.

    pandas converts a few thousand day starts once per detect call instead of every row (and
    every day edge) each time; the instants of a day whose offset differs from the next day's
    (a DST change) are converted exactly. Assumes no zone changes its offset and back within
    one day. Instants outside the range are converted exactly too.
    """

    tz: str
    first: int  # UTC midnight of the first day (ns)
    offsets: I64  # per day from `first`: the offset at its start (ns)
    exact: Bools  # per day: converted exactly (the offset changes within it)

    @classmethod
    def over(cls, start: I64, tz: str) -> _Clock:
        """For `start` (sorted) and two days either side (local days, day edges)."""
        if len(start) == 0 or start[0] == NAT:
            return cls(tz, 0, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
        first = (int(start[0]) // NS_PER_DAY - 2) * NS_PER_DAY
        days = (int(start[-1]) - first) // NS_PER_DAY + 4
        if days > max(len(start), 1000):  # sparse rows: the table would cost more than them
            return cls(tz, 0, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
        edges = first + NS_PER_DAY * np.arange(days + 1, dtype=np.int64)
        offsets = local_wall_ns(edges, tz) - edges
        return cls(tz, first, offsets[:-1], offsets[:-1] != offsets[1:])

    def wall(self, ns: I64) -> I64:
        """local_wall_ns(ns, tz)."""
        n = len(self.offsets)
        if n == 0:
            return local_wall_ns(ns, self.tz)
        day = (ns - self.first) // NS_PER_DAY
        outside = (day < 0) | (day >= n)
        if outside.any():
            day = np.where(outside, 0, day)
        out = ns + self.offsets[day]
        slow = self.exact[day] | outside
        if slow.any():
            out[slow] = local_wall_ns(ns[slow], self.tz)
        return out

    def midnights(self, days: I64) -> I64:
        """localize_wall_ns(days x NS_PER_DAY, tz): the UTC start of local days (distinct).

        A midnight that one offset of the table maps back to is that instant; the skipped or
        repeated ones (and any the table does not cover) go to localize_wall_ns.
        """
        wall = days * NS_PER_DAY
        out = np.full(len(wall), NAT, dtype=np.int64)
        hits = np.zeros(len(wall), dtype=np.int64)
        for offset in np.unique(self.offsets).tolist():
            utc = wall - offset
            ok = self.wall(utc) == wall
            out[ok] = utc[ok]
            hits += ok
        slow = hits != 1
        if slow.any():
            out[slow] = localize_wall_ns(wall[slow], self.tz)
        return out


@dataclass(frozen=True, slots=True)
class _Context:
    unit: str
    tz: str
    clock: _Clock

    def day(self, ns: int) -> str:
        """A local date in words: 'Thu 19 Nov 2026'."""
        stamp = pd.Timestamp(ns, tz="UTC").tz_convert(self.tz)
        return f"{stamp:%a} {stamp.day} {stamp:%b %Y}"

    def moment(self, ns: int) -> str:
        """A local time in words: '03:00 Thu 19 Nov 2026'."""
        stamp = pd.Timestamp(ns, tz="UTC").tz_convert(self.tz)
        return f"{stamp:%H:%M} {self.day(ns)}"


def _num(x: float) -> str:
    """A number for a reason: three significant digits, thousands separated."""
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _ratio_text(observed: float, expected: float) -> str:
    return f"{_num(observed / expected)} \u00d7" if expected else "far above"


def _frame(
    found: dict[str, _Found], *, meter: str, unit: str, now: datetime, since_ns: int | None
) -> pd.DataFrame:
    """ANOMALY_COLUMNS sorted by start then kind, from the detectors' lists.

    Filtered and ordered in numpy and built by one DataFrame call from arrays: with few
    anomalies, pandas' per-column and sorting overhead was a third of a detect call.
    """
    units = {"no_data": "h", "base_load": f"{unit}/h"}
    kinds: list[str] = []
    unit_of: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    observed_of: list[float] = []
    expected_of: list[float] = []
    reasons: list[str] = []
    for kind, rows in found.items():
        n = len(rows.start)
        kinds += [kind] * n
        unit_of += [units.get(kind, unit)] * n
        starts += rows.start
        ends += rows.end
        observed_of += rows.observed
        expected_of += rows.expected
        reasons += rows.reason
    start_ns = np.asarray(starts, dtype=np.int64)
    end_ns = np.asarray(ends, dtype=np.int64)
    kind_of = np.asarray(kinds, dtype=object)
    order = np.arange(len(starts)) if since_ns is None else np.flatnonzero(end_ns > since_ns)
    if len(order) > 1:  # by start, then kind; stable like the lists' order
        rank = {name: i for i, name in enumerate(sorted(found))}
        codes = np.asarray([rank[k] for k in kinds], dtype=np.int64)
        order = order[np.lexsort((codes[order], start_ns[order]))]
    observed = np.asarray(observed_of, dtype=np.float64)[order]
    expected = np.asarray(expected_of, dtype=np.float64)[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected != 0, observed / np.where(expected != 0, expected, 1), np.nan)
    n = len(order)
    columns: dict[str, Any] = {
        "meter": np.full(n, meter, dtype=object),
        "kind": kind_of[order],
        "start": _utc(start_ns[order]),
        "end": _utc(end_ns[order]),
        "observed": observed,
        "expected": expected,
        "ratio": ratio,
        "unit": np.asarray(unit_of, dtype=object)[order],
        "reason": np.asarray(reasons, dtype=object)[order],
        "detected_at": _utc(np.full(n, ns_of(now, name="now"), dtype=np.int64)),
    }
    return pd.DataFrame({name: columns[name] for name in ANOMALY_COLUMNS}, copy=False)


def _utc(ns: I64) -> pd.api.extensions.ExtensionArray:
    """int64 ns as a datetime64[ns, UTC] column."""
    return pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC").array


def _runs(flag: Bools, start: I64, end: I64) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """First and last index of each run of flagged rows that follow each other without a gap."""
    idx = np.flatnonzero(flag)
    if len(idx) == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    new = np.ones(len(idx), dtype=bool)
    new[1:] = (idx[1:] != idx[:-1] + 1) | (start[idx[1:]] != end[idx[:-1]])
    firsts = np.flatnonzero(new)
    lasts = np.append(firsts[1:] - 1, len(idx) - 1)
    return idx[firsts], idx[lasts]


def _sums(values: F64, firsts: npt.NDArray[np.intp], lasts: npt.NDArray[np.intp]) -> F64:
    """Sum of values[first..last] per run (runs in order, not overlapping)."""
    if len(firsts) == 0:
        return np.zeros(0)
    cumulative = np.concatenate(([0.0], np.cumsum(values)))
    return np.asarray(cumulative[lasts + 1] - cumulative[firsts], dtype=np.float64)


def _trailing(dense: F64, known: Bools | None, lo: int, hi: int) -> tuple[F64, I64]:
    """Per position p: sum and count of the known values in dense[p - hi : p - lo].

    known None: all are (no count then: zeros).
    """
    n = len(dense)
    csum = np.zeros(n + 1)
    np.cumsum(dense if known is None else np.where(known, dense, 0.0), out=csum[1:])
    if known is None:
        return _window(csum, n, lo, hi), np.zeros(n, dtype=np.int64)
    ccount = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(known, out=ccount[1:])
    return _window(csum, n, lo, hi), _window(ccount, n, lo, hi)


def _window[T: np.generic](cumulative: npt.NDArray[T], n: int, lo: int, hi: int) -> npt.NDArray[T]:
    """cumulative[p - lo] - cumulative[p - hi] for p in 0..n-1 (index below 0: 0)."""
    out = np.zeros(n, dtype=cumulative.dtype)
    if lo < n:
        out[lo:] = cumulative[: n - lo]
    if hi < n:
        out[hi:] -= cumulative[: n - hi]
    return out


# --------------------------------------------------------------------------------------------
# implausible
# --------------------------------------------------------------------------------------------


def _implausible(s: _Series, limit: float | None, hours: F64, ctx: _Context) -> tuple[_Found, None]:
    found = _Found()
    start, end, value = s.start, s.end, s.value
    firsts, lasts = _runs(np.ones(len(start), dtype=bool), start, end)
    bound = np.zeros(len(start)) if limit is None else limit * hours
    high = value > 0
    for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
        observed = math.fsum(value[a : b + 1].tolist())
        too_high = bool(high[a : b + 1].any())
        expected = math.fsum(bound[a : b + 1].tolist()) if too_high else 0.0
        count = b - a + 1
        what = (
            f"above the {_num(expected)} {ctx.unit} a home can use in that time"
            if too_high
            else "below zero"
        )
        found.add(
            start[a],
            end[b],
            observed,
            expected,
            f"{_num(observed)} {ctx.unit} in {count} interval{'s' if count > 1 else ''} from "
            f"{ctx.moment(int(start[a]))}: {what}",
        )
    return found, None


# --------------------------------------------------------------------------------------------
# high_day
# --------------------------------------------------------------------------------------------


def _high_day(
    s: _Series,
    cadence: int | None,
    now: int,
    ctx: _Context,
    *,
    factor: float,
    window: int,
    settle: bool,
) -> tuple[_Found, int | None]:
    """High days; with cadence None (the classic rule) any day with rows counts as whole."""
    found = _Found()
    if len(s.start) == 0:
        return found, None
    days = s.wall // NS_PER_DAY
    d0 = int(days[0])
    n_days = int(days[-1]) - d0 + 1
    rel = days - d0
    totals = np.asarray(np.bincount(rel, weights=s.value, minlength=n_days), dtype=np.float64)
    counts = np.bincount(rel, minlength=n_days)
    # each day's bounds in UTC (DST days are 23 or 25 hours long)
    edges = ctx.clock.midnights(d0 + np.arange(n_days + 1, dtype=np.int64))
    day_start, day_end = edges[:-1], edges[1:]
    complete = (counts > 0) & (day_end <= now)
    if cadence is not None:
        slots = np.maximum(np.rint((day_end - day_start) / cadence), 1)
        complete &= counts >= slots
    sums, known = _trailing(totals, complete, 0, window)
    mean = sums / np.maximum(known, 1)
    judged = complete & (known >= max(window - 2, 1))
    high = judged & (totals > factor * mean)
    if settle:
        # judged once the day after is complete; when that day is high too (above half the
        # threshold's lift over the mean), the level changed (the heating season began, the
        # guests arrived): not one high day
        after = np.zeros(n_days, dtype=bool)
        after[:-1] = complete[1:]
        judged &= after
        following = np.append(totals[1:], 0.0)
        high &= after & (following <= (1 + _SETTLE_SHARE * (factor - 1)) * mean)
    if settle and high.any():
        # and far outside the spread of the 28 days before: above k x their median (the first
        # day back from a week away is high against that week's mean only) and more than
        # _HIGH_Z robust deviations above it (a bursty meter's ordinary busy day is not)
        median, spread = _robust_before(np.where(complete, totals, np.nan), _GUARD_DAYS, window)
        high &= ~(totals <= factor * median) & ~(totals <= median + _HIGH_Z * spread)
    for d in np.flatnonzero(high).tolist():
        found.add(
            day_start[d],
            day_end[d],
            totals[d],
            mean[d],
            f"{_num(totals[d])} {ctx.unit} on {ctx.day(int(day_start[d]))}, "
            f"{_ratio_text(totals[d], mean[d])} the {_num(mean[d])} {ctx.unit} a day of the "
            f"{window} days before",
        )
    last = np.flatnonzero(judged)
    return found, (int(day_end[last[-1]]) if len(last) else None)


# --------------------------------------------------------------------------------------------
# spike
# --------------------------------------------------------------------------------------------


def _spike(
    s: _Series, cadence_minutes: int, settings: AnomalySettings, ctx: _Context
) -> tuple[_Found, int | None]:
    found = _Found()
    weeks = settings.spike_weeks
    if len(s.start) == 0 or weeks <= 0:
        return found, None
    cadence = cadence_minutes * NS_PER_MINUTE
    period = max(_WEEK_MINUTES // cadence_minutes, 1)  # slots a week
    slot = (s.wall - s.wall[0]) // cadence
    size = int(slot[-1]) + 1
    grid = np.full(size, np.nan)
    grid[slot] = s.value
    known = ~np.isnan(grid)
    # the meter's noise: mean |change from the week before| over the weeks before each slot
    change = np.full(size, np.nan)
    change[period:] = np.abs(grid[period:] - grid[:-period])
    changed = ~np.isnan(change)
    total, count = _trailing(change, changed, 0, weeks * period)
    noise = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    # and the noise of each time of day: mean |change from the day before| at that time over
    # the same weeks (a hot-water hour wobbles more than the rest of the meter)
    per_day = max(1440 // cadence_minutes, 1)
    days = -(-size // per_day)
    daily = np.full(days * per_day, np.nan)
    # (each change clipped to a few times the meter's noise: a spike that recurs at one time
    # of day, or a weekend, must not make every change there look small)
    daily[per_day:size] = np.minimum(
        np.abs(grid[per_day:] - grid[:-per_day]), _SLOT_CLIP * noise[per_day:]
    )
    seen = ~np.isnan(daily)
    table = np.where(seen, daily, 0.0).reshape(days, per_day)
    csum = np.concatenate((np.zeros((1, per_day)), np.cumsum(table, axis=0)))
    ccount = np.concatenate(
        (np.zeros((1, per_day)), np.cumsum(seen.reshape(days, per_day), axis=0))
    )
    row = np.arange(days)
    back = np.maximum(row - 7 * weeks, 0)
    slot_total = (csum[row] - csum[back]).reshape(-1)[:size]
    slot_count = (ccount[row] - ccount[back]).reshape(-1)[:size]
    slot_noise = np.where(slot_count > 0, slot_total / np.maximum(slot_count, 1), 0.0)
    noise = np.maximum(noise, slot_noise)[slot]
    # the same slot of each of the weeks before: how many are known and the lowest, over the
    # dense grid (cheap); the values themselves only for candidates below
    lowest_grid = np.full(size, np.nan)
    count_grid = np.zeros(size, dtype=np.int64)
    for w in range(1, weeks + 1):
        shift = w * period
        if shift < size:
            np.fmin(lowest_grid[shift:], grid[:-shift], out=lowest_grid[shift:])
            count_grid[shift:] += known[:-shift]
    n_valid = count_grid[slot]
    lowest = lowest_grid[slot]
    need = max(math.ceil(_SPIKE_MIN_SHARE * weeks), 1)
    enough = n_valid >= need
    floor = _SPIKE_FLOOR * noise
    sens = settings.spike_sensitivity
    # necessary conditions first (median >= lowest): only candidates get the exact baseline
    candidate = enough & (s.value > lowest + sens * floor) & (s.value > _SPIKE_MIN_RATIO * lowest)
    flag = np.zeros(len(s.start), dtype=bool)
    median = np.zeros(len(s.start))
    # judged (settled) once the same slot of the next day is known: when that one is high too
    # (above half the threshold), the level changed - the heating came on, a leak began - and
    # it is not a spike
    ahead = slot + per_day
    inside = ahead < size
    ahead = np.where(inside, ahead, 0)
    settled = inside & known[ahead]
    enough &= settled
    cand = np.flatnonzero(candidate & settled)
    if len(cand):
        lags = slot[cand, None] - period * np.arange(1, weeks + 1)[None, :]
        history = np.where(lags >= 0, grid[np.maximum(lags, 0)], np.nan)
        med = _nanmedian(history, n_valid[cand])
        mad = _nanmedian(np.abs(history - med[:, None]), n_valid[cand])
        scale = np.maximum(_MAD_SCALE * mad, floor[cand])
        v = s.value[cand]
        following = grid[ahead[cand]]
        flag[cand] = (
            (v > med + sens * scale)
            & (v > _SPIKE_MIN_RATIO * med)
            & ~(following > med + 0.5 * sens * scale)
        )
        median[cand] = med
    if flag.any():
        # a level that changed over the day (the heating came on: every heated hour is high)
        # is no spike: on a day with more raised intervals than _SPIKE_DAY_HOURS, only one
        # far above the day's raised ones (_SPIKE_MIN_RATIO x their mean) still is
        raised = enough & (s.value > lowest + 0.5 * sens * floor)
        day = s.wall // NS_PER_DAY
        day = day - day[0]
        n_raised = np.bincount(day, weights=raised)
        raised_mean = np.bincount(day, weights=np.where(raised, s.value, 0.0)) / np.maximum(
            n_raised, 1
        )
        flag &= (n_raised[day] * cadence_minutes <= _SPIKE_DAY_HOURS * 60) | (
            s.value > _SPIKE_MIN_RATIO * raised_mean[day]
        )
    firsts, lasts = _runs(flag, s.start, s.end)
    observed = _sums(s.value, firsts, lasts)
    expected = _sums(median, firsts, lasts)
    for a, b, obs, exp in zip(
        firsts.tolist(), lasts.tolist(), observed.tolist(), expected.tolist(), strict=True
    ):
        count = b - a + 1
        found.add(
            s.start[a],
            s.end[b],
            obs,
            exp,
            f"{_num(obs)} {ctx.unit} in {count} interval{'s' if count > 1 else ''} from "
            f"{ctx.moment(int(s.start[a]))}, {_ratio_text(obs, exp)} the {_num(exp)} "
            f"{ctx.unit} usual then (same weekday and time, {weeks} weeks before)",
        )
    judged = np.flatnonzero(enough)
    return found, (int(s.end[judged[-1]]) if len(judged) else None)


def _robust_before(
    values: F64, days: int, least: int, *, spread_too: bool = True
) -> tuple[F64, F64]:
    """Per position: median and 1.4826 x MAD of the known values of the `days` before.

    NaN where fewer than `least` of them are known (the spread: also without spread_too).
    """
    n = len(values)
    padded = np.concatenate((np.full(days, np.nan), values[:-1] if n else values))
    windows = np.lib.stride_tricks.sliding_window_view(padded, days)[:n]
    known = (~np.isnan(windows)).sum(axis=1)
    ok = known >= max(least, 1)
    median = np.full(n, np.nan)
    spread = np.full(n, np.nan)
    if ok.any():
        rows = windows[ok]
        med = _nanmedian(rows, known[ok])
        median[ok] = med
        if spread_too:
            spread[ok] = _MAD_SCALE * _nanmedian(np.abs(rows - med[:, None]), known[ok])
    return median, spread


def _nanmedian(rows: F64, n_valid: npt.NDArray[np.intp]) -> F64:
    """Median of each row's non-NaN values (each row has n_valid >= 1 of them)."""
    ordered = np.sort(rows, axis=1)  # NaN last
    lo = ((n_valid - 1) // 2)[:, None]
    hi = (n_valid // 2)[:, None]
    a = np.take_along_axis(ordered, lo, axis=1)[:, 0]
    b = np.take_along_axis(ordered, hi, axis=1)[:, 0]
    return np.asarray((a + b) / 2, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# base_load
# --------------------------------------------------------------------------------------------


def _base_load(
    s: _Series, kind: str, settings: AnomalySettings, ctx: _Context
) -> tuple[_Found, int | None]:
    found = _Found()
    if len(s.start) == 0:
        return found, None
    minutes = (s.end - s.start) / NS_PER_MINUTE
    rate = s.value * 60.0 / minutes  # per hour
    days = s.wall // NS_PER_DAY
    d0 = int(days[0])
    rel = days - d0
    n_days = int(rel[-1]) + 1
    time_of_day = s.wall - days * NS_PER_DAY
    lo, hi = _NIGHT_HOURS
    night = (time_of_day >= lo * NS_PER_HOUR) & (time_of_day < hi * NS_PER_HOUR)
    night &= minutes <= 60
    # per night: lowest rate, minutes covered, first start and last end
    # (local days never go back as starts go forward, so a night's rows are one block)
    lowest = np.full(n_days, np.inf)
    first = np.zeros(n_days, dtype=np.int64)
    last = np.zeros(n_days, dtype=np.int64)
    covered = np.bincount(rel[night], weights=minutes[night], minlength=n_days)
    at = np.flatnonzero(night)
    if len(at):
        heads = np.flatnonzero(np.diff(rel[at], prepend=-1) != 0)
        which = rel[at][heads]
        lowest[which] = np.minimum.reduceat(rate[at], heads)
        first[which] = s.start[at][heads]
        last[which] = np.maximum.reduceat(s.end[at], heads)
    valid = covered >= 0.5 * (hi - lo) * 60
    if not valid.any():
        return found, None
    # the median of the known nights of the 30 before (at least 15): numpy, not pandas rolling
    norm, _ = _robust_before(
        np.where(valid, lowest, np.nan), _NORM_NIGHTS, _NORM_MIN_NIGHTS, spread_too=False
    )
    # the meter's mean hourly rate over the 30 days before: the margin's measure
    totals = np.asarray(np.bincount(rel, weights=s.value, minlength=n_days), dtype=np.float64)
    hours_known = np.bincount(rel, weights=minutes, minlength=n_days) / 60
    total, _ = _trailing(totals, None, 0, _NORM_NIGHTS)
    hours, _ = _trailing(hours_known, None, 0, _NORM_NIGHTS)
    mean_rate = total / np.maximum(hours, 1e-9)
    judged = valid & ~np.isnan(norm)
    margin = _BASE_MARGIN * mean_rate
    high = judged & (lowest > settings.base_load_factor * norm) & (lowest > norm + margin)
    candidates = _Found()
    flagged = np.flatnonzero(high)
    if len(flagged):
        new = np.ones(len(flagged), dtype=bool)
        new[1:] = np.diff(flagged) != 1
        groups = np.cumsum(new) - 1
        for g in range(int(groups[-1]) + 1):
            members = flagged[groups == g]
            top = members[np.argmax(lowest[members])]
            n = len(members)
            candidates.add(
                first[members[0]],
                last[members[-1]],
                lowest[top],
                norm[members[0]],
                f"night-time base load {_num(float(lowest[top]))} {ctx.unit}/h "
                f"(lowest hour, 01:00-05:00) "
                + (
                    f"on the night of {ctx.day(int(first[members[0]]))}"
                    if n == 1
                    else f"over {n} nights from {ctx.day(int(first[members[0]]))}"
                )
                + f", {_ratio_text(float(lowest[top]), float(norm[members[0]]))} "
                f"the {_num(float(norm[members[0]]))} {ctx.unit}/h of the 30 nights before",
            )
    if kind == "water":
        _never_zero(s, rate, norm[rel], ctx, candidates)
    _merge_into(found, candidates)
    done = np.flatnonzero(judged)
    return found, (int(last[done[-1]]) if len(done) else None)


def _never_zero(s: _Series, rate: F64, norm: F64, ctx: _Context, out: _Found) -> None:
    """Water: runs of >= 24 h without a zero interval, where the nights normally reach 0.

    norm: per row, the night norm of its local day (NaN: not enough nights known).
    """
    firsts, lasts = _runs(s.value > 0, s.start, s.end)
    long = (s.end[lasts] - s.start[firsts]) >= _LEAK_HOURS * NS_PER_HOUR
    leak = long & (norm[firsts] == 0)  # NaN compares False
    for a, b in zip(firsts[leak].tolist(), lasts[leak].tolist(), strict=True):
        low = float(rate[a : b + 1].min())
        hours = (int(s.end[b]) - int(s.start[a])) / NS_PER_HOUR
        out.add(
            s.start[a],
            s.end[b],
            low,
            0.0,
            f"water never stopped for {_num(hours)} h from {ctx.moment(int(s.start[a]))} "
            f"(at least {_num(low)} {ctx.unit}/h), where the nights usually reach 0",
        )


def _merge_into(found: _Found, candidates: _Found) -> None:
    """Overlapping base-load periods (nights, never-zero runs) as one: the longest speaks."""
    if not candidates.start:
        return
    lo = np.asarray(candidates.start, dtype=np.int64)
    hi = np.asarray(candidates.end, dtype=np.int64)
    order = np.argsort(lo, kind="stable")
    reach = np.maximum.accumulate(hi[order])
    new = np.ones(len(order), dtype=bool)
    new[1:] = lo[order][1:] > reach[:-1]
    groups = np.cumsum(new) - 1
    spans = (hi - lo)[order]
    for g in range(int(groups[-1]) + 1):
        members = np.flatnonzero(groups == g)
        top = int(order[members[np.argmax(spans[members])]])
        found.add(
            int(lo[order[members[0]]]),
            int(reach[members[-1]]),
            candidates.observed[top],
            candidates.expected[top],
            candidates.reason[top],
        )


# --------------------------------------------------------------------------------------------
# no_data
# --------------------------------------------------------------------------------------------


def _no_data(s: _Series, now: int, max_delay_hours: float, ctx: _Context) -> _Found:
    """Stretches without rows longer than max_delay_hours: between rows, and up to `now`."""
    found = _Found()
    if len(s.start) == 0:
        return found
    limit = max_delay_hours * NS_PER_HOUR
    reach = np.maximum.accumulate(s.end)
    gap_start = np.append(reach[:-1], reach[-1])
    gap_end = np.append(s.start[1:], now)
    long = (gap_end - gap_start) > limit
    for a, b in zip(gap_start[long].tolist(), gap_end[long].tolist(), strict=True):
        hours = (b - a) / NS_PER_HOUR
        found.add(
            a,
            b,
            hours,
            max_delay_hours,
            f"no data for {_num(hours)} h from {ctx.moment(a)} "
            f"(more than the {_num(max_delay_hours)} h allowed)",
        )
    return found
