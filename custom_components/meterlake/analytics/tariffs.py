"""Prices for the interval table: unit rates, cost, standing charges and day/month totals.

Rules shared by every lookup (agreements, unit rates, standing charges):

* a row covers [valid_from, valid_to); a null valid_to is open-ended;
* where rows of one group overlap, the covering row with the latest valid_from wins, and on
  equal valid_from the later row of the frame - a newer published row replaces an older one
  only where it applies, and the older one applies again after the newer one ends;
* payment_method: when a tariff's rows carry more than one distinct non-null method, only rows
  equal to `payment_method` or null are kept (None keeps all). A single method is kept as it is;
* registers: for an interval whose tariff has day/night rows, the night rate applies when its
  start lies in the NightWindow, else the day rate; a tariff's standard rows apply where no
  day/night row covers (normally: tariffs without day/night rows). Other registers are ignored.

The lookups are vectorised: each group's rows become a sorted, disjoint timeline (directly when
they do not overlap; otherwise by a sweep over the rate rows, never over intervals) and every
interval start is placed with numpy.searchsorted. `join_rates_naive` is the per-row reference.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
import heapq
import math
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from .intervals import (
    NAT,
    NS_PER_DAY,
    aware,
    codes_of,
    day_number,
    day_of,
    group_sums,
    local_day_totals,
    local_wall_ns,
    localize_wall_ns,
    merge_ranges,
    ns_of,
    repeat,
    utc_index,
    utc_ns,
)

type I64 = npt.NDArray[np.int64]
type F64 = npt.NDArray[np.float64]
type Bools = npt.NDArray[np.bool_]
type Idx = npt.NDArray[np.intp]

OPEN: Final = np.iinfo(np.int64).max
REGISTER_STANDARD: Final = "standard"
REGISTER_DAY: Final = "day"
REGISTER_NIGHT: Final = "night"


@dataclass(frozen=True)
class NightWindow:
    """Economy 7 night hours as local clock times in `tz`, [start, end); may wrap midnight.

    start == end means no night at all. The default is the common UK window in GMT, which many
    meters keep all year.
    """

    start: time = time(0, 30)
    end: time = time(7, 30)
    tz: str = "UTC"

    def _bounds(self) -> tuple[int, int]:
        def of(moment: time) -> int:
            seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
            return (seconds * 1_000_000 + moment.microsecond) * 1000

        return of(self.start), of(self.end)

    def contains_ns(self, ns: I64) -> Bools:
        """Whether each UTC instant (int64 ns) lies in the night window."""
        lo, hi = self._bounds()
        clock = local_wall_ns(ns, self.tz) % NS_PER_DAY
        if lo <= hi:
            return np.asarray((clock >= lo) & (clock < hi), dtype=bool)
        return np.asarray((clock >= lo) | (clock < hi), dtype=bool)

    def contains(self, moment: datetime) -> bool:
        """Whether one aware instant lies in the night window (zoneinfo, for the reference)."""
        clock = moment.astimezone(ZoneInfo(self.tz)).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end


@dataclass(frozen=True)
class RateJoin:
    """Intervals with `rate` and `cost` filled, and what no rate covered (never dropped)."""

    frame: pd.DataFrame
    unrated: int
    unrated_ranges: list[tuple[datetime, datetime]]
    unrated_by_meter: dict[str, list[tuple[datetime, datetime]]] = field(
        default_factory=dict, kw_only=True
    )


# --------------------------------------------------------------------------------------------
# Timelines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Timeline:
    """Disjoint [starts, ends) segments in time order, each naming the winning row."""

    starts: I64
    ends: I64
    rows: Idx

    def lookup(self, at: I64) -> Idx:
        """Row covering each instant, -1 where none does."""
        if len(self.starts) == 0:
            return np.full(len(at), -1, dtype=np.intp)
        pos = np.searchsorted(self.starts, at, side="right") - 1
        safe = np.maximum(pos, 0)
        hit = (pos >= 0) & (at < self.ends[safe]) & (at != NAT)
        return np.where(hit, self.rows[safe], -1).astype(np.intp)


def _timeline(valid_from: I64, valid_to: I64, rows: Idx) -> _Timeline:
    """Resolve rows (valid_to NAT = open) into a timeline where the latest valid_from wins."""
    vt = np.where(valid_to == NAT, OPEN, valid_to)
    usable = (valid_from != NAT) & (vt > valid_from)
    vf = valid_from[usable]
    vt = vt[usable]
    rows = rows[usable]
    order = np.lexsort((rows, vf))
    vf, vt, rows = vf[order], vt[order], rows[order]
    if len(vf) <= 1 or (np.all(vt[:-1] <= vf[1:]) and np.all(np.diff(vf) > 0)):
        return _Timeline(vf, vt, rows)
    # Overlaps: sweep the elementary segments between all boundaries, keeping a heap of active
    # rows ordered by (valid_from, frame order); expired rows are dropped when they surface.
    events = np.unique(np.concatenate([vf, vt[vt != OPEN]]))
    heap: list[tuple[int, int, int]] = []
    nxt = 0
    seg_start: list[int] = []
    seg_end: list[int] = []
    seg_row: list[int] = []
    for k, boundary in enumerate(events.tolist()):
        while nxt < len(vf) and vf[nxt] <= boundary:
            heapq.heappush(heap, (-int(vf[nxt]), -int(rows[nxt]), nxt))
            nxt += 1
        while heap and vt[heap[0][2]] <= boundary:
            heapq.heappop(heap)
        if not heap:
            continue
        winner = heap[0][2]
        until = int(events[k + 1]) if k + 1 < len(events) else OPEN
        if seg_row and seg_row[-1] == int(rows[winner]) and seg_end[-1] == boundary:
            seg_end[-1] = until
        else:
            seg_start.append(boundary)
            seg_end.append(until)
            seg_row.append(int(rows[winner]))
    return _Timeline(
        np.asarray(seg_start, dtype=np.int64),
        np.asarray(seg_end, dtype=np.int64),
        np.asarray(seg_row, dtype=np.intp),
    )


def _strings(frame: pd.DataFrame, column: str) -> npt.NDArray[Any]:
    """A column as an object array with None for null (all None when absent)."""
    if column not in frame.columns:
        return repeat(None, len(frame))
    values = frame[column].to_numpy(dtype=object)
    missing = codes_of(values)[0] < 0
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values


def _stamps(frame: pd.DataFrame, column: str) -> I64:
    if column not in frame.columns:
        return np.full(len(frame), NAT, dtype=np.int64)
    return utc_ns(frame[column], name=column)


def _numbers(frame: pd.DataFrame, column: str) -> F64:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return np.asarray(pd.to_numeric(frame[column]), dtype=np.float64)


def payment_filter(
    tariffs: npt.NDArray[Any], methods: npt.NDArray[Any], payment_method: str | None
) -> Bools:
    """Rows to keep: per tariff with several non-null methods, `payment_method` or null."""
    keep = np.ones(len(tariffs), dtype=bool)
    if payment_method is None or len(tariffs) == 0:
        return keep
    method, names = codes_of(np.asarray(methods, dtype=object))
    listed = names.tolist()
    wanted = listed.index(payment_method) if payment_method in listed else -2
    tariff, _ = codes_of(np.asarray(tariffs, dtype=object))
    for code in np.unique(tariff).tolist():
        rows = tariff == code
        if len(np.unique(method[rows & (method >= 0)])) > 1:
            keep[rows] = (method[rows] < 0) | (method[rows] == wanted)
    return keep


# --------------------------------------------------------------------------------------------
# Unit rates
# --------------------------------------------------------------------------------------------


def _unrated_report(
    intervals: pd.DataFrame, unrated: Bools
) -> tuple[list[tuple[datetime, datetime]], dict[str, list[tuple[datetime, datetime]]]]:
    if not unrated.any():
        return [], {}
    start = utc_ns(intervals["start"], name="start")[unrated]
    end = _stamps(intervals, "end")[unrated]
    end = np.where(end == NAT, start, end)
    codes, meters = codes_of(intervals["meter"].to_numpy(dtype=object)[unrated])
    by_meter = {
        str(meter): merge_ranges(start[codes == code], end[codes == code])
        for code, meter in enumerate(meters.tolist())
    }
    return merge_ranges(start, end), by_meter


def _result(intervals: pd.DataFrame, rate: F64, currency: npt.NDArray[Any]) -> RateJoin:
    # A column-by-column copy: DataFrame.copy() would first consolidate blocks, which costs more
    # than the copy itself on frames that come out of pd.concat.
    frame = pd.DataFrame({name: intervals[name].copy() for name in intervals.columns}, copy=False)
    value = np.asarray(pd.to_numeric(frame["value"]), dtype=np.float64)
    frame["rate"] = rate
    frame["cost"] = value * rate
    if "currency" in frame.columns:
        given = frame["currency"].to_numpy(dtype=object)
        codes, _ = codes_of(given)
        missing = codes < 0
        if missing.any():
            filled = given.copy()
            filled[missing] = currency[missing]
            frame["currency"] = filled
    else:
        frame["currency"] = currency
    unrated = np.isnan(rate)
    overall, by_meter = _unrated_report(intervals, unrated)
    return RateJoin(
        frame=frame,
        unrated=int(unrated.sum()),
        unrated_ranges=overall,
        unrated_by_meter=by_meter,
    )


def _codes_in(values: npt.NDArray[Any], names: dict[Any, int]) -> Idx:
    """Codes of `values` in a shared name -> code table (extended as needed; None -> -1)."""
    codes, uniques = codes_of(values)
    table = np.asarray(
        [names.setdefault(u, len(names)) for u in uniques.tolist()] + [-1], dtype=np.intp
    )
    return table[codes]  # code -1 picks the trailing -1


def join_rates(
    intervals: pd.DataFrame,
    rates: pd.DataFrame,
    agreements: pd.DataFrame,
    *,
    payment_method: str | None = "DIRECT_DEBIT",
    night: NightWindow | None = None,
) -> RateJoin:
    """Fill `rate` and `cost = value x rate` (full precision) of every interval by its start.

    The agreement covering the start names the tariff; the tariff's rate row covering the start
    (module rules: latest valid_from, payment_method, registers) gives the rate. join_rates is
    the one authority on rate and cost: the result replaces both columns, NaN where nothing
    covers; a null `currency` is taken from the rate row. Unrated intervals are counted and
    reported as merged [start, end) ranges, overall and per meter. The index is kept.
    """
    night = night or NightWindow()
    n = len(intervals)
    rate = np.full(n, np.nan)
    currency = repeat(None, n)
    if n == 0 or rates.empty or agreements.empty:
        return _result(intervals, rate, currency)
    start = utc_ns(intervals["start"], name="start")
    meter_names: dict[Any, int] = {}
    meters = _codes_in(intervals["meter"].to_numpy(dtype=object), meter_names)
    ag_meter = _codes_in(_strings(agreements, "meter"), meter_names)
    tariff_names: dict[Any, int] = {}
    ag_tariff = _codes_in(_strings(agreements, "tariff"), tariff_names)
    ag_from = _stamps(agreements, "valid_from")
    ag_to = _stamps(agreements, "valid_to")
    tariff_of = np.full(n, -1, dtype=np.intp)
    for meter in np.unique(meters[meters >= 0]).tolist():
        owned = np.flatnonzero(ag_meter == meter)
        if len(owned) == 0:
            continue
        mine = np.flatnonzero(meters == meter)
        hit = _timeline(ag_from[owned], ag_to[owned], owned).lookup(start[mine])
        tariff_of[mine[hit >= 0]] = ag_tariff[hit[hit >= 0]]

    r_tariff = _codes_in(_strings(rates, "tariff"), tariff_names)
    register_names = {REGISTER_STANDARD: 0, REGISTER_DAY: 1, REGISTER_NIGHT: 2}
    r_register = _codes_in(_strings(rates, "register"), register_names)
    standard, day, night_register = 0, 1, 2
    r_from = _stamps(rates, "valid_from")
    r_to = _stamps(rates, "valid_to")
    r_rate = _numbers(rates, "rate")
    r_currency = _strings(rates, "currency")
    keep = payment_filter(r_tariff, _strings(rates, "payment_method"), payment_method)
    for tariff in np.unique(tariff_of[tariff_of >= 0]).tolist():
        mine = np.flatnonzero(tariff_of == tariff)
        at = start[mine]
        found = np.full(len(mine), -1, dtype=np.intp)
        own = keep & (r_tariff == tariff)

        def lookup(register: int, where: Bools, own: Bools = own, at: I64 = at) -> Idx:
            rows = np.flatnonzero(own & (r_register == register))
            return _timeline(r_from[rows], r_to[rows], rows).lookup(at[where])

        if (own & ((r_register == day) | (r_register == night_register))).any():
            nights = night.contains_ns(at)
            found[nights] = lookup(night_register, nights)
            found[~nights] = lookup(day, ~nights)
        need = found < 0
        if need.any() and (own & (r_register == standard)).any():
            found[need] = lookup(standard, need)
        rated = found >= 0
        rate[mine[rated]] = r_rate[found[rated]]
        currency[mine[rated]] = r_currency[found[rated]]
    return _result(intervals, rate, currency)


def _naive_pick(entries: list[tuple[int, int, int, int]], prefix: list[int], at: int) -> int:
    """Row (4th field) of the entry covering `at` with the latest (valid_from, position).

    `entries` are (valid_from, position, valid_to, row) sorted; `prefix` the running maximum of
    valid_to: walking back from the last entry starting at or before `at`, stop once no earlier
    entry reaches `at`.
    """
    i = bisect_right(entries, (at, OPEN, OPEN, OPEN)) - 1
    while i >= 0 and prefix[i] > at:
        valid_from, _, valid_to, row = entries[i]
        if valid_from <= at < valid_to:
            return row
        i -= 1
    return -1


def _naive_index(
    keys: Iterable[tuple[Any, int, int, int]],
) -> dict[Any, tuple[list[tuple[int, int, int, int]], list[int]]]:
    """Group (key, valid_from, valid_to, row) into sorted entries with running max valid_to."""
    grouped: dict[Any, list[tuple[int, int, int, int]]] = {}
    for key, valid_from, valid_to, row in keys:
        if valid_from == NAT:
            continue
        end = OPEN if valid_to == NAT else valid_to
        grouped.setdefault(key, []).append((valid_from, row, end, row))
    out: dict[Any, tuple[list[tuple[int, int, int, int]], list[int]]] = {}
    for key, entries in grouped.items():
        entries.sort()
        prefix: list[int] = []
        reach = NAT
        for entry in entries:
            reach = max(reach, entry[2])
            prefix.append(reach)
        out[key] = (entries, prefix)
    return out


def join_rates_naive(
    intervals: pd.DataFrame,
    rates: pd.DataFrame,
    agreements: pd.DataFrame,
    *,
    payment_method: str | None = "DIRECT_DEBIT",
    night: NightWindow | None = None,
) -> RateJoin:
    """join_rates, one interval at a time in plain Python: the reference for tests and bench."""
    night = night or NightWindow()
    n = len(intervals)
    rate = np.full(n, np.nan)
    currency = repeat(None, n)
    if n == 0 or rates.empty or agreements.empty:
        return _result(intervals, rate, currency)
    agreement_index = _naive_index(
        zip(
            _strings(agreements, "meter").tolist(),
            _stamps(agreements, "valid_from").tolist(),
            _stamps(agreements, "valid_to").tolist(),
            range(len(agreements)),
            strict=True,
        )
    )
    ag_tariff = _strings(agreements, "tariff").tolist()
    tariffs = _strings(rates, "tariff").tolist()
    methods = _strings(rates, "payment_method").tolist()
    registers = _strings(rates, "register").tolist()
    values = _numbers(rates, "rate").tolist()
    currencies = _strings(rates, "currency").tolist()
    several: set[Any] = set()
    seen: dict[Any, set[Any]] = {}
    for tariff, method in zip(tariffs, methods, strict=True):
        if method is not None:
            seen.setdefault(tariff, set()).add(method)
    several = {tariff for tariff, found in seen.items() if len(found) > 1}
    usable = [
        payment_method is None or t not in several or m is None or m == payment_method
        for t, m in zip(tariffs, methods, strict=True)
    ]
    rate_index = _naive_index(
        ((t, r), f, to, row)
        for row, (t, r, f, to, ok) in enumerate(
            zip(
                tariffs,
                registers,
                _stamps(rates, "valid_from").tolist(),
                _stamps(rates, "valid_to").tolist(),
                usable,
                strict=True,
            )
        )
        if ok
    )
    has_day_night = {t for (t, r) in rate_index if r in (REGISTER_DAY, REGISTER_NIGHT)}
    empty: tuple[list[tuple[int, int, int, int]], list[int]] = ([], [])
    starts = utc_ns(intervals["start"], name="start").tolist()
    meters = _strings(intervals, "meter").tolist()
    for i in range(n):
        at = starts[i]
        if at == NAT:
            continue
        agreement = _naive_pick(*agreement_index.get(meters[i], empty), at)
        if agreement < 0:
            continue
        tariff = ag_tariff[agreement]
        row = -1
        if tariff in has_day_night:
            register = REGISTER_NIGHT if night.contains(aware(at)) else REGISTER_DAY
            row = _naive_pick(*rate_index.get((tariff, register), empty), at)
        if row < 0:
            row = _naive_pick(*rate_index.get((tariff, REGISTER_STANDARD), empty), at)
        if row >= 0:
            rate[i] = values[row]
            currency[i] = currencies[row]
    return _result(intervals, rate, currency)


def _slots(meter: str, starts: I64, length: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter": np.full(len(starts), meter, dtype=object),
            "start": utc_index(starts).array,
            "end": utc_index(starts + length).array,
            "value": np.ones(len(starts)),
        }
    )


def rate_at(
    rates: pd.DataFrame,
    agreements: pd.DataFrame,
    meter: str,
    when: datetime,
    *,
    payment_method: str | None = "DIRECT_DEBIT",
    night: NightWindow | None = None,
) -> float | None:
    """The unit rate that applies to `meter` at the instant `when`, None if unknown."""
    at = np.asarray([ns_of(when, name="when")], dtype=np.int64)
    joined = join_rates(
        _slots(meter, at, 1), rates, agreements, payment_method=payment_method, night=night
    )
    value = float(joined.frame["rate"].iloc[0])
    return None if math.isnan(value) else value


def next_rate_change(
    rates: pd.DataFrame,
    agreements: pd.DataFrame,
    meter: str,
    when: datetime,
    *,
    horizon: timedelta = timedelta(days=2),
    step: timedelta = timedelta(minutes=30),
    payment_method: str | None = "DIRECT_DEBIT",
    night: NightWindow | None = None,
) -> tuple[datetime, float] | None:
    """First slot start after `when`'s slot whose rate differs from the rate at `when`.

    Slots are `step` long, aligned on the Unix epoch (UTC), scanned up to `when + horizon`.
    None when the current rate is unknown, when no change comes within the horizon, or when an
    unknown rate (e.g. tomorrow's Agile prices not yet published) comes before any change.
    """
    step_ns = int(step / timedelta(microseconds=1)) * 1000
    if step_ns <= 0:
        raise ValueError("step must be positive")
    current = rate_at(rates, agreements, meter, when, payment_method=payment_method, night=night)
    if current is None:
        return None
    at = ns_of(when, name="when")
    first = (at // step_ns + 1) * step_ns
    last = at + int(horizon / timedelta(microseconds=1)) * 1000
    if last < first:
        return None
    starts = np.arange(first, last + 1, step_ns, dtype=np.int64)
    joined = join_rates(
        _slots(meter, starts, step_ns),
        rates,
        agreements,
        payment_method=payment_method,
        night=night,
    )
    upcoming = joined.frame["rate"].to_numpy(dtype=np.float64)
    changed = np.isnan(upcoming) | (upcoming != current)
    if not changed.any():
        return None
    k = int(np.argmax(changed))
    if math.isnan(upcoming[k]):
        return None
    return aware(int(starts[k])), float(upcoming[k])


# --------------------------------------------------------------------------------------------
# Standing charges and totals
# --------------------------------------------------------------------------------------------


def standing_charges_by_day(
    agreements: pd.DataFrame,
    charges: pd.DataFrame,
    *,
    tz: str,
    start_day: date,
    end_day: date,
    payment_method: str | None = "DIRECT_DEBIT",
) -> pd.DataFrame:
    """One standing charge per meter and local day in [start_day, end_day] that it is on a tariff.

    A day belongs to the agreement covering its local midnight in `tz`, and its charge is the
    tariff's charge row covering that midnight (same rules as unit rates) - whole, never
    prorated. A covered day without a charge row is listed with NaN charge and null currency,
    so a gap in published charges shows. Columns: meter, day, tariff, charge, currency.
    """
    columns = ["meter", "day", "tariff", "charge", "currency"]
    if end_day < start_day or agreements.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}).astype(
            {"charge": np.float64}
        )
    days = np.arange(day_number(start_day), day_number(end_day) + 1, dtype=np.int64)
    midnights = localize_wall_ns(days * NS_PER_DAY, tz)
    ag_meter = _strings(agreements, "meter")
    ag_tariff = _strings(agreements, "tariff")
    ag_from = _stamps(agreements, "valid_from")
    ag_to = _stamps(agreements, "valid_to")
    c_tariff = _strings(charges, "tariff")
    c_from = _stamps(charges, "valid_from")
    c_to = _stamps(charges, "valid_to")
    c_charge = _numbers(charges, "charge")
    c_currency = _strings(charges, "currency")
    keep = payment_filter(c_tariff, _strings(charges, "payment_method"), payment_method)
    timelines: dict[Any, _Timeline] = {}
    parts: list[pd.DataFrame] = []
    for meter in sorted(pd.unique(ag_meter[pd.notna(ag_meter)]).tolist()):
        owned = np.flatnonzero(ag_meter == meter)
        hit = _timeline(ag_from[owned], ag_to[owned], owned).lookup(midnights)
        covered = hit >= 0
        tariff = ag_tariff[hit[covered]]
        charge = np.full(len(tariff), np.nan)
        currency = np.full(len(tariff), None, dtype=object)
        for code in pd.unique(tariff):
            if code not in timelines:
                rows = np.flatnonzero(keep & (c_tariff == code))
                timelines[code] = _timeline(c_from[rows], c_to[rows], rows)
            mine = tariff == code
            found = timelines[code].lookup(midnights[covered][mine])
            ok = found >= 0
            idx = np.flatnonzero(mine)[ok]
            charge[idx] = c_charge[found[ok]]
            currency[idx] = c_currency[found[ok]]
        parts.append(
            pd.DataFrame(
                {
                    "meter": np.full(len(tariff), meter, dtype=object),
                    "day": np.asarray([day_of(d) for d in days[covered]], dtype=object),
                    "tariff": tariff.astype(object),
                    "charge": charge,
                    "currency": currency,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[columns]


TOTAL_COLUMNS: Final = (
    "energy",
    "unit_cost",
    "standing_charge",
    "total",
    "value",
    "count",
    "unrated",
)


def _add_known(a: F64, b: F64) -> F64:
    """Add where NaN means unknown: the known part, NaN only when both are unknown."""
    both = np.isnan(a) & np.isnan(b)
    out = np.nan_to_num(a, nan=0.0) + np.nan_to_num(b, nan=0.0)
    out[both] = np.nan
    return out


def _sum_by_keys(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """One row per distinct key, `column` summed (NaN only when nothing is known)."""
    if not frame.duplicated(subset=keys).any():
        return frame[[*keys, column]].reset_index(drop=True)
    index = pd.MultiIndex.from_frame(frame[keys])
    codes, uniques = pd.factorize(index, sort=True)
    group = np.asarray(codes, dtype=np.intp)
    order = np.argsort(group, kind="stable")
    sums, _ = group_sums(
        group[order], frame[column].to_numpy(dtype=np.float64)[order], len(uniques)
    )
    out = pd.DataFrame(list(uniques), columns=keys).astype(object)
    out[column] = sums
    return out


def day_and_month_totals(
    intervals: pd.DataFrame, standing: pd.DataFrame, tz: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a meter cost per local day in `tz` and per month ("YYYY-MM").

    Columns: energy (kWh, from energy_kwh), unit_cost (sum of cost), standing_charge, total,
    value (native unit), count (intervals) and unrated (intervals without a cost).

    Sums skip unknown (NaN) parts and are NaN only when nothing is known; `unrated` and a NaN
    standing_charge show what is missing. Days with a standing charge and no interval are
    listed too (count 0).
    """
    frame = intervals.copy()
    frame["_unrated"] = np.asarray(
        pd.to_numeric(frame["cost"]).isna() if len(frame) else [], dtype=np.float64
    )
    daily = local_day_totals(frame, tz, columns=("value", "energy_kwh", "cost", "_unrated")).rename(
        columns={"energy_kwh": "energy", "cost": "unit_cost", "_unrated": "unrated"}
    )
    given = (
        standing[["meter", "day", "charge"]]
        if not standing.empty
        else pd.DataFrame({"meter": [], "day": [], "charge": []})
    )
    given = given.astype({"meter": object, "day": object, "charge": np.float64})
    charges = _sum_by_keys(given, ["meter", "day"], "charge")
    merged = daily.merge(charges, on=["meter", "day"], how="outer")
    merged = merged.rename(columns={"charge": "standing_charge"})
    merged["count"] = merged["count"].fillna(0).astype(np.int64)
    merged["unrated"] = merged["unrated"].fillna(0).astype(np.int64)
    merged["standing_charge"] = merged["standing_charge"].astype(np.float64)
    merged["total"] = _add_known(
        merged["unit_cost"].to_numpy(dtype=np.float64),
        merged["standing_charge"].to_numpy(dtype=np.float64),
    )
    merged = merged.sort_values(["meter", "day"], kind="stable").reset_index(drop=True)
    daily_out = merged[["meter", "day", *TOTAL_COLUMNS]]

    months = np.asarray([f"{d.year:04d}-{d.month:02d}" for d in merged["day"]], dtype=object)
    keys = pd.MultiIndex.from_arrays([merged["meter"].to_numpy(dtype=object), months])
    codes, uniques = pd.factorize(keys, sort=True)
    group = np.asarray(codes, dtype=np.intp)
    order = np.argsort(group, kind="stable")
    n_groups = len(uniques)
    data: dict[str, Any] = {
        "meter": np.asarray([u[0] for u in uniques], dtype=object),
        "month": np.asarray([u[1] for u in uniques], dtype=object),
    }
    for name in ("energy", "unit_cost", "standing_charge", "total", "value"):
        sums, _ = group_sums(group[order], merged[name].to_numpy(dtype=np.float64)[order], n_groups)
        data[name] = sums
    for name in ("count", "unrated"):
        data[name] = np.bincount(
            group, weights=merged[name].to_numpy(dtype=np.float64), minlength=n_groups
        ).astype(np.int64)
    monthly = pd.DataFrame(data)[["meter", "month", *TOTAL_COLUMNS]]
    return daily_out, monthly
