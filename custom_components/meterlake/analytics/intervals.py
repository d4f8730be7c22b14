"""The interval table as pure pandas functions: normalize, dedupe, report, aggregate.

See docs/architecture.md, "The one table".

Every source, the statistics import and the archive read the numbers these functions produce, so
they are exact by design: timestamps are handled as int64 nanoseconds since the Unix epoch (UTC),
sums are compensated (Neumaier) per group or `math.fsum`, and nothing is rounded.

Naive local times (sources that give neither an offset nor `Z`) are read in `naive_tz` with two
deterministic rules for the hours a DST change breaks:

* ambiguous wall times (the repeated hour in autumn): the first occurrence of a given wall time in
  input order is the earlier instant (summer time), every later occurrence the later instant
  (winter time). Input ordered by time - what every source sends - comes out right.
* nonexistent wall times (the skipped hour in spring) are read with the UTC offset in force just
  before the gap (PEP 495 `fold=0`): London 01:30 on the spring day is 01:30 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from .plausibility import ENERGY_BASE, implausible
from .schema import INTERVAL_COLUMNS, QUALITIES

type I64 = npt.NDArray[np.int64]
type F64 = npt.NDArray[np.float64]
type Bools = npt.NDArray[np.bool_]

NAT: Final = np.iinfo(np.int64).min
NS_PER_MINUTE: Final = 60_000_000_000
NS_PER_HOUR: Final = 60 * NS_PER_MINUTE
NS_PER_DAY: Final = 24 * NS_PER_HOUR
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
# An offset or `Z` after a time of day; a bare date such as 2024-01-01 must not match.
_OFFSET_PATTERN: Final = r"[Tt ]\d\d[:.,\d]*(?:[Zz]|[+-]\d\d(?::?\d\d)?)$"
# Groups larger than this are summed with math.fsum one by one instead of the vectorised loop.
_VECTOR_GROUP_LIMIT: Final = 512

REASON_UNPARSEABLE_TIME: Final = "unparseable_time"
REASON_END_NOT_AFTER_START: Final = "end_not_after_start"
REASON_MISSING_VALUE: Final = "missing_value"
REASON_UNPARSEABLE_VALUE: Final = "unparseable_value"
REASON_NON_FINITE_VALUE: Final = "non_finite_value"
REASON_NEGATIVE_VALUE: Final = "negative_value"
REASON_BOOLEAN_VALUE: Final = "boolean_value"
REASON_IMPLAUSIBLE_VALUE: Final = "implausible_value"
REASON_INVALID_QUALITY: Final = "invalid_quality"
OPTIONAL_NUMBERS: Final = ("rate", "cost", "energy_kwh")


# --------------------------------------------------------------------------------------------
# Time helpers (shared with tariffs.py)
# --------------------------------------------------------------------------------------------


def utc_ns(values: pd.Series | pd.Index | Sequence[Any], *, name: str = "timestamp") -> I64:
    """Tz-aware timestamps as int64 ns since the epoch (NAT for null); naive ones are refused.

    Frames between modules carry UTC-aware columns; a naive one is a bug upstream, not a guess.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _i8(pd.DatetimeIndex(series))
    if pd.api.types.is_datetime64_dtype(dtype):
        raise ValueError(f"{name}: timestamps must be tz-aware (UTC), got naive {dtype}")
    out = np.full(len(series), NAT, dtype=np.int64)
    for i, item in enumerate(series.to_numpy(dtype=object)):
        if item is None or item is pd.NaT or (isinstance(item, float) and math.isnan(item)):
            continue
        stamp = pd.Timestamp(item)
        if stamp.tzinfo is None:
            raise ValueError(f"{name}: timestamps must be tz-aware (UTC), got {item!r}")
        out[i] = stamp.tz_convert(UTC).as_unit("ns").value
    return out


def _i8(index: pd.DatetimeIndex) -> I64:
    """A DatetimeIndex (naive or aware) as int64 ns since the epoch (NAT for NaT)."""
    if index.tz is not None:
        index = index.tz_convert(None)
    return np.asarray(index.as_unit("ns").to_numpy(), dtype="M8[ns]").view(np.int64).copy()


def aware(ns: int) -> datetime:
    """One int64 ns instant as an aware UTC datetime (microsecond precision)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def ns_of(moment: datetime, *, name: str = "datetime") -> int:
    """An aware datetime as int64 ns since the epoch."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be tz-aware, got {moment!r}")
    return int(pd.Timestamp(moment).tz_convert(UTC).as_unit("ns").value)


def utc_index(ns: I64) -> pd.DatetimeIndex:
    """int64 ns (NAT = null) as a UTC DatetimeIndex."""
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]")).tz_localize(UTC)


def local_wall_ns(ns: I64, tz: str) -> I64:
    """Wall-clock time in `tz` of UTC instants, as ns since the epoch (NAT preserved)."""
    return _i8(utc_index(ns).tz_convert(tz).tz_localize(None))


def local_days(ns: I64, tz: str) -> I64:
    """Local calendar day in `tz` of UTC instants, as days since 1970-01-01."""
    return local_wall_ns(ns, tz) // NS_PER_DAY


def day_number(day: date) -> int:
    """A date as days since 1970-01-01."""
    return day.toordinal() - _EPOCH_ORDINAL


def day_of(number: int) -> date:
    """Days since 1970-01-01 as a date."""
    return date.fromordinal(int(number) + _EPOCH_ORDINAL)


def localize_wall_ns(wall: I64, tz: str) -> I64:
    """Naive wall times in `tz` (ns) to UTC ns with the module's DST rules (NAT preserved).

    Ambiguous: first occurrence (input order) of a wall time -> earlier instant, later ones ->
    later instant. Nonexistent: read with the offset in force before the gap.
    """
    wall = np.asarray(wall, dtype=np.int64)
    out = np.full(len(wall), NAT, dtype=np.int64)
    valid = wall != NAT
    if not valid.any():
        return out
    walls = wall[valid]
    index = pd.DatetimeIndex(walls.view("M8[ns]"))
    count = len(walls)
    first = _i8(index.tz_localize(tz, ambiguous=np.ones(count, dtype=bool), nonexistent="NaT"))
    second = _i8(index.tz_localize(tz, ambiguous=np.zeros(count, dtype=bool), nonexistent="NaT"))
    result = first.copy()
    gap = first == NAT
    ambiguous = (first != second) & ~gap
    if ambiguous.any():
        amb_walls = walls[ambiguous]
        rank = pd.Series(amb_walls).groupby(amb_walls).cumcount().to_numpy()
        early = np.minimum(first[ambiguous], second[ambiguous])
        late = np.maximum(first[ambiguous], second[ambiguous])
        result[ambiguous] = np.where(rank == 0, early, late)
    if gap.any():
        after = _i8(index[gap].tz_localize(tz, nonexistent="shift_forward"))
        before = after - 1
        offset = local_wall_ns(before, tz) - before
        result[gap] = walls[gap] - offset
    out[valid] = result
    return out


def merge_ranges(starts: I64, ends: I64) -> list[tuple[datetime, datetime]]:
    """Union of [start, end) ranges, merged where they touch or overlap, in time order."""
    if len(starts) == 0:
        return []
    order = np.argsort(starts, kind="stable")
    lo = starts[order]
    hi = np.maximum(ends[order], lo)
    reach = np.maximum.accumulate(hi)
    new = np.ones(len(lo), dtype=bool)
    new[1:] = lo[1:] > reach[:-1]
    firsts = np.flatnonzero(new)
    lasts = np.append(firsts[1:] - 1, len(lo) - 1)
    return [(aware(int(lo[a])), aware(int(reach[b]))) for a, b in zip(firsts, lasts, strict=True)]


# --------------------------------------------------------------------------------------------
# Exact grouped sums
# --------------------------------------------------------------------------------------------


def group_sums(group: npt.NDArray[np.intp], values: F64, n_groups: int) -> tuple[F64, I64]:
    """Compensated sum per group (NaN skipped) and the count of numbers per group.

    `group` is sorted ascending. The result is NaN where a group has no number (unknown, not 0).
    Neumaier summation runs vectorised across groups, one position of every group at a time.
    """
    ok = ~np.isnan(values)
    grp = group[ok]
    vals = values[ok]
    counts = np.bincount(grp, minlength=n_groups).astype(np.int64)
    total = np.zeros(n_groups, dtype=np.float64)
    comp = np.zeros(n_groups, dtype=np.float64)
    if len(vals):
        bounds = np.zeros(n_groups, dtype=np.int64)
        np.cumsum(counts[:-1], out=bounds[1:])
        big = counts > _VECTOR_GROUP_LIMIT
        for g in np.flatnonzero(big):
            total[g] = math.fsum(vals[bounds[g] : bounds[g] + counts[g]].tolist())
        depth = int(counts[~big].max()) if (~big).any() else 0
        for k in range(depth):
            gi = np.flatnonzero((counts > k) & ~big)
            x = vals[bounds[gi] + k]
            acc = total[gi]
            t = acc + x
            comp[gi] += np.where(np.abs(acc) >= np.abs(x), (acc - t) + x, (x - t) + acc)
            total[gi] = t
    sums = total + comp
    sums[counts == 0] = np.nan
    return sums, counts


def _grouping(codes: npt.NDArray[np.intp], key: I64) -> tuple[npt.NDArray[np.intp], Bools]:
    """Order sorting rows by (code, key) and, in that order, where each group begins."""
    if len(codes) > 1 and (
        np.all(np.diff(codes) >= 0) and np.all((np.diff(codes) > 0) | (np.diff(key) >= 0))
    ):
        order = np.arange(len(codes), dtype=np.intp)
    else:
        order = np.lexsort((key, codes)).astype(np.intp)
    c = codes[order]
    k = key[order]
    begins = np.ones(len(c), dtype=bool)
    begins[1:] = (c[1:] != c[:-1]) | (k[1:] != k[:-1])
    return order, begins


def repeat(value: Any, n: int) -> npt.NDArray[Any]:
    """An object array holding one and the same object n times.

    np.full(n, "text", dtype=object) would make n separate str objects (slow, and memory).
    """
    out = np.empty(n, dtype=object)
    out.fill(value)
    return out


def codes_of(values: npt.NDArray[Any]) -> tuple[npt.NDArray[np.intp], npt.NDArray[Any]]:
    """Integer codes of an object array whose order is the values' sort order, and the values.

    Null (None/NaN) gets code -1. Frames are mostly long runs of one key (one meter after
    another), so runs are found first and only their heads hashed; pd.factorize otherwise.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=object)
    change = np.ones(n, dtype=bool)
    change[1:] = values[1:] != values[:-1]
    heads = np.flatnonzero(change)
    if len(heads) <= 4096:
        head_values = values[heads]
        known = sorted({v for v in head_values.tolist() if not pd.isna(v)})
        lookup = {v: i for i, v in enumerate(known)}
        head_codes = np.asarray([lookup.get(v, -1) for v in head_values.tolist()], dtype=np.intp)
        run = np.cumsum(change) - 1
        return head_codes[run], np.asarray(known, dtype=object)
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.intp), np.asarray(uniques, dtype=object)


def _meter_codes(frame: pd.DataFrame) -> tuple[npt.NDArray[np.intp], npt.NDArray[Any]]:
    """Meter keys as integer codes whose order is the keys' sort order."""
    codes, meters = codes_of(frame["meter"].to_numpy(dtype=object))
    if len(codes) and codes.min() < 0:
        raise ValueError("meter must not be null")
    return codes, meters


def _float_column(frame: pd.DataFrame, column: str) -> F64:
    if column not in frame.columns:
        raise ValueError(f"frame has no column {column!r}")
    return np.asarray(pd.to_numeric(frame[column]), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormalizeResult:
    """Valid rows in the interval table's shape, and the rows set aside with their `reason`."""

    frame: pd.DataFrame
    rejected: pd.DataFrame

    def reason_counts(self) -> dict[str, int]:
        """How many rows were set aside for each reason (only reasons that occurred)."""
        if self.rejected.empty:
            return {}
        counts = self.rejected["reason"].value_counts(sort=False)
        return {str(reason): int(count) for reason, count in counts.items()}


def empty_intervals() -> pd.DataFrame:
    """An interval table with no rows and the right dtypes."""
    return _interval_frame({}, 0)


def _interval_frame(columns: Mapping[str, Any], n: int) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name in INTERVAL_COLUMNS:
        if name in ("start", "end", "ingested_at"):
            ns = columns.get(name, np.full(n, NAT, dtype=np.int64))
            data[name] = utc_index(ns).array
        elif name in ("value", "energy_kwh", "rate", "cost"):
            data[name] = np.asarray(columns.get(name, np.full(n, np.nan)), dtype=np.float64)
        else:
            data[name] = np.asarray(columns.get(name, repeat(None, n)), dtype=object)
    return pd.DataFrame(data, columns=list(INTERVAL_COLUMNS))


def _parse_strings(items: npt.NDArray[Any]) -> tuple[I64, I64]:
    """ISO 8601 strings (None for null) -> (UTC ns of those with an offset, wall ns of naive)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(items)
    none = np.full(n, NAT, dtype=np.int64)
    array = pa.array(items, type=pa.string(), from_pandas=True)
    try:
        stamps = pc.cast(array, pa.timestamp("ns", tz="UTC"))
    except pa.ArrowInvalid:
        pass
    else:
        ints = pc.fill_null(stamps.cast(pa.int64()), NAT)
        return np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.int64), none
    has_offset = np.asarray(
        pc.fill_null(pc.match_substring_regex(array, _OFFSET_PATTERN), False).to_numpy(
            zero_copy_only=False
        ),
        dtype=bool,
    )
    # Parse the two kinds apart: given a mix, pandas applies the last offset it saw to the
    # naive strings that follow.
    utc = np.full(n, NAT, dtype=np.int64)
    wall = np.full(n, NAT, dtype=np.int64)
    if has_offset.any():
        parsed = pd.to_datetime(
            pd.Series(items[has_offset], dtype=object), format="ISO8601", utc=True, errors="coerce"
        )
        utc[has_offset] = _i8(pd.DatetimeIndex(parsed))
    naive = ~has_offset & np.asarray(pd.notna(items), dtype=bool)
    if naive.any():
        utc[naive], wall[naive] = _parse_naive_strings(items[naive])
    return utc, wall


def _parse_naive_strings(items: npt.NDArray[Any]) -> tuple[I64, I64]:
    """(UTC, wall) ns of strings the offset pattern saw as naive.

    The odd one with an offset in a form the pattern does not know (e.g. ISO basic format) is
    parsed one by one and goes to UTC.
    """
    none = np.full(len(items), NAT, dtype=np.int64)
    parsed = pd.to_datetime(pd.Series(items, dtype=object), format="ISO8601", errors="coerce")
    if pd.api.types.is_datetime64_dtype(parsed.dtype) and not isinstance(
        parsed.dtype, pd.DatetimeTZDtype
    ):
        return none, _i8(pd.DatetimeIndex(parsed))
    utc = none.copy()
    wall = none.copy()
    for i, item in enumerate(items):
        try:
            stamp = pd.Timestamp(item)
        except ValueError, OverflowError:
            continue
        if stamp.tzinfo is None:  # also NaT, whose value is NAT
            wall[i] = stamp.as_unit("ns").value
        else:
            utc[i] = stamp.tz_convert(UTC).as_unit("ns").value
    return utc, wall


def _parse_times(column: pd.Series, naive_tz: str) -> I64:
    """One start/end column of any accepted form as UTC ns (NAT = missing or unparseable)."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return utc_ns(column)
    if pd.api.types.is_datetime64_dtype(dtype):
        return localize_wall_ns(_i8(pd.DatetimeIndex(column)), naive_tz)
    items = column.to_numpy(dtype=object)
    n = len(items)
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    if inferred in ("string", "empty"):
        utc, wall = _parse_strings(items)
    else:
        utc = np.full(n, NAT, dtype=np.int64)
        wall = np.full(n, NAT, dtype=np.int64)
        positions: list[int] = []
        strings: list[str] = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                positions.append(i)
                strings.append(item)
                continue
            if not isinstance(item, datetime | np.datetime64) or pd.isna(item):
                continue
            try:
                stamp = pd.Timestamp(item).as_unit("ns")
            except ValueError, OverflowError:
                continue
            if stamp.tzinfo is None:
                wall[i] = stamp.value
            else:
                utc[i] = stamp.tz_convert(UTC).value
        if strings:
            s_utc, s_wall = _parse_strings(np.asarray(strings, dtype=object))
            utc[positions] = s_utc
            wall[positions] = s_wall
    if (wall != NAT).any():
        local = localize_wall_ns(wall, naive_tz)
        utc = np.where(wall != NAT, local, utc)
    return utc


def _parse_numbers(column: pd.Series) -> tuple[F64, Bools, Bools, Bools]:
    """(float64 values, missing, unparseable, boolean masks) of a numeric-ish column.

    A boolean (JSON `true`, a bool column) is not a number: NaN, flagged in its own mask and
    not as unparseable, so that `True` never becomes 1.0.
    """
    n = len(column)
    missing = np.asarray(column.isna(), dtype=bool)
    boolean = np.zeros(n, dtype=bool)
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        boolean = ~missing
        values = np.full(n, np.nan)
    elif pd.api.types.is_numeric_dtype(dtype):
        values = np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    else:
        items = column.to_numpy(dtype=object)
        if pd.api.types.infer_dtype(column, skipna=True) in ("boolean", "mixed", "mixed-integer"):
            boolean = np.fromiter(
                (isinstance(item, bool | np.bool_) for item in items), dtype=bool, count=n
            )
            if boolean.any():
                items = items.copy()
                items[boolean] = None
        coerced = pd.to_numeric(pd.Series(items, dtype=object), errors="coerce")
        values = np.asarray(
            pd.Series(coerced).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
        )
    unparseable = np.isnan(values) & ~missing & ~boolean
    return values, missing, unparseable, boolean


def _per_row_strings(source: pd.DataFrame, column: str, default: str | None) -> npt.NDArray[Any]:
    """A per-row string override where present and not null, else the call's default."""
    n = len(source)
    if column not in source.columns:
        return repeat(default, n)
    given = source[column].to_numpy(dtype=object)
    nulls = np.asarray(pd.isna(given), dtype=bool)
    return np.asarray(
        [default if null else str(item) for item, null in zip(given, nulls, strict=True)],
        dtype=object,
    )


def normalize(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    meter: str,
    supplier: str,
    kind: str,
    unit: str,
    serial: str | None = None,
    currency: str | None = None,
    quality: str = "measured",
    naive_tz: str = "Europe/London",
    allow_negative: bool = False,
    ingested_at: datetime | None = None,
) -> NormalizeResult:
    """Turn a source's rows into the interval table, setting aside invalid rows with a reason.

    Input columns: start, end, value, optionally serial, quality, rate, cost, energy_kwh.

    Reasons, first match wins: unparseable_time (also a missing time), end_not_after_start,
    missing_value, boolean_value (a boolean as value, rate, cost or energy_kwh: JSON `true` is
    not 1 kWh), unparseable_value, non_finite_value, negative_value (unless allow_negative),
    implausible_value (|value| above the bound of `kind` in `unit` over the row's length, or
    energy_kwh above the kind's kWh bound; analytics.plausibility), invalid_rate /
    invalid_cost / invalid_energy_kwh (present but not a finite number), invalid_quality.
    A null optional number means unknown (NaN). Where a row gives a rate but no cost,
    cost = value x rate. energy_kwh is the row's own when given, else converted from an
    energy unit; other units leave it NaN for the caller (units.energy_kwh_for).
    Output keeps the input order (dedupe sorts).
    """
    from .units import energy_unit_factor

    source = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows
    n = len(source)
    if n and not {"start", "end", "value"} <= set(source.columns):
        raise ValueError("rows need the columns start, end and value")
    stamp = ingested_at if ingested_at is not None else datetime.now(UTC)
    ingested_ns = ns_of(stamp, name="ingested_at")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}, got {quality!r}")
    empty = pd.Series([], dtype=object)
    start = _parse_times(source["start"] if n else empty, naive_tz)
    end = _parse_times(source["end"] if n else empty, naive_tz)
    value, missing, unparseable, boolean = _parse_numbers(source["value"] if n else empty)
    timed = (start != NAT) & (end != NAT)
    hours = np.where(timed, end - start, 0) / NS_PER_HOUR

    extras: dict[str, F64] = {}
    invalid_extras: list[tuple[Bools, str]] = []
    for name in OPTIONAL_NUMBERS:
        if name in source.columns:
            numbers, _, bad, flags = _parse_numbers(source[name])
            boolean = boolean | flags
            invalid_extras.append((bad | np.isinf(numbers), f"invalid_{name}"))
            extras[name] = numbers
        else:
            extras[name] = np.full(n, np.nan)

    reasons: list[tuple[Bools, str]] = [
        (~timed, REASON_UNPARSEABLE_TIME),
        (end <= start, REASON_END_NOT_AFTER_START),
        (missing, REASON_MISSING_VALUE),
        (boolean, REASON_BOOLEAN_VALUE),
        (unparseable, REASON_UNPARSEABLE_VALUE),
        (np.isinf(value), REASON_NON_FINITE_VALUE),
    ]
    if not allow_negative:
        reasons.append((value < 0, REASON_NEGATIVE_VALUE))
    reasons.append(
        (
            implausible(value, hours, kind=kind, unit=unit)
            | implausible(extras["energy_kwh"], hours, kind=kind, unit=ENERGY_BASE),
            REASON_IMPLAUSIBLE_VALUE,
        )
    )
    reasons.extend(invalid_extras)
    qualities = _per_row_strings(source, "quality", quality)
    quality_codes, quality_names = codes_of(qualities)
    valid_quality = np.asarray([q in QUALITIES for q in quality_names.tolist()], dtype=bool)
    reasons.append((~valid_quality[quality_codes], REASON_INVALID_QUALITY))

    conditions = [mask for mask, _ in reasons]
    reason = np.select(conditions, [label for _, label in reasons], default="")
    good = reason == ""

    rate = extras["rate"]
    cost = np.where(np.isnan(extras["cost"]), value * rate, extras["cost"])
    factor = energy_unit_factor(unit)
    if factor is None:
        converted = np.full(n, np.nan)
    else:
        multiply, number = factor
        converted = value * number if multiply else value / number
    energy = np.where(np.isnan(extras["energy_kwh"]), converted, extras["energy_kwh"])
    kept = int(good.sum())
    frame = _interval_frame(
        {
            "meter": repeat(meter, kept),
            "serial": _per_row_strings(source, "serial", serial)[good],
            "supplier": repeat(supplier, kept),
            "kind": repeat(kind, kept),
            "start": start[good],
            "end": end[good],
            "value": value[good],
            "unit": repeat(unit, kept),
            "energy_kwh": energy[good],
            "rate": rate[good],
            "cost": cost[good],
            "currency": repeat(currency, kept),
            "quality": qualities[good],
            "ingested_at": np.full(kept, ingested_ns, dtype=np.int64),
        },
        kept,
    )
    if n:
        rejected = source.loc[~good].copy()
        rejected["reason"] = reason[~good]
    else:
        rejected = pd.DataFrame({"start": [], "end": [], "value": [], "reason": []})
    return NormalizeResult(frame=frame, rejected=rejected)


# --------------------------------------------------------------------------------------------
# dedupe, continuity
# --------------------------------------------------------------------------------------------


def dedupe(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per (meter, start), so late corrections replace what they correct.

    The newest `ingested_at` wins, then the later row in input order (a null ingested_at counts
    as oldest). Sorted by (meter, start), index reset; always a new frame.
    """
    if frame.empty:
        return frame.reset_index(drop=True)
    codes, _ = _meter_codes(frame)
    start = utc_ns(frame["start"], name="start")
    if "ingested_at" in frame.columns:
        ingested = utc_ns(frame["ingested_at"], name="ingested_at")
    else:
        ingested = np.full(len(frame), NAT, dtype=np.int64)
    dc = np.diff(codes)
    if np.all((dc > 0) | ((dc == 0) & (np.diff(start) > 0))):
        return frame.reset_index(drop=True)
    order = np.lexsort((np.arange(len(frame)), ingested, start, codes))
    c = codes[order]
    s = start[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (c[1:] != c[:-1]) | (s[1:] != s[:-1])
    kept = frame.take(order[last])
    kept.index = pd.RangeIndex(len(kept))
    return kept


@dataclass(frozen=True)
class ContinuityReport:
    """How complete one meter's series is over a window of `cadence_minutes` slots."""

    cadence_minutes: int
    window_start: datetime
    window_end: datetime
    expected: int
    present: int
    duplicates: int
    missing: list[tuple[datetime, datetime]]
    off_grid: int = field(default=0, kw_only=True)

    @property
    def missing_count(self) -> int:
        """Missing slots (not ranges)."""
        return self.expected - self.present


def continuity(
    frame: pd.DataFrame, *, cadence_minutes: int, window_start: datetime, window_end: datetime
) -> ContinuityReport:
    """Expected, present, duplicate and missing slots of one meter over [window_start, window_end).

    Slots are window_start + k x cadence; the last one may run past window_end, and missing
    ranges are clipped to the window. A row counts for the slot it starts at; rows in the window
    that start between slots are counted in `off_grid` (not present). `duplicates` counts rows
    beyond the first for the same start.
    """
    if cadence_minutes <= 0:
        raise ValueError("cadence_minutes must be positive")
    ws = ns_of(window_start, name="window_start")
    we = ns_of(window_end, name="window_end")
    if we < ws:
        raise ValueError("window_end is before window_start")
    if not frame.empty and frame["meter"].nunique(dropna=False) > 1:
        raise ValueError("continuity works on one meter at a time")
    cadence = cadence_minutes * NS_PER_MINUTE
    expected = -(-(we - ws) // cadence)
    start = utc_ns(frame["start"], name="start") if not frame.empty else np.zeros(0, np.int64)
    inside = start[(start >= ws) & (start < we)]
    distinct = np.unique(inside)
    duplicates = len(inside) - len(distinct)
    offset = distinct - ws
    on_grid = offset % cadence == 0
    slots = offset[on_grid] // cadence
    seen = np.zeros(expected, dtype=bool)
    seen[slots] = True
    holes = np.flatnonzero(~seen)
    missing: list[tuple[datetime, datetime]] = []
    if len(holes):
        begins = ws + holes * cadence
        ends = np.minimum(begins + cadence, we)
        missing = merge_ranges(begins, ends)
    return ContinuityReport(
        cadence_minutes=cadence_minutes,
        window_start=aware(ws),
        window_end=aware(we),
        expected=int(expected),
        present=int(seen.sum()),
        duplicates=int(duplicates),
        missing=missing,
        off_grid=int((~on_grid).sum()),
    )


# --------------------------------------------------------------------------------------------
# Aggregates
# --------------------------------------------------------------------------------------------


def infer_cadence_minutes(frame: pd.DataFrame) -> dict[str, int | None]:
    """Per meter, the most common interval length in whole minutes (ties: the shorter)."""
    if frame.empty:
        return {}
    codes, meters = _meter_codes(frame)
    start = utc_ns(frame["start"], name="start")
    end = utc_ns(frame["end"], name="end")
    valid = (start != NAT) & (end != NAT) & (end > start)
    minutes = np.where(valid, (end - start) // NS_PER_MINUTE, 0)
    out: dict[str, int | None] = {}
    if minutes.max(initial=0) <= 1440:
        # one bincount over (meter, minutes) instead of a sort per meter
        table = np.bincount(codes * 1441 + minutes, minlength=len(meters) * 1441)
        table = table.reshape(len(meters), 1441)
        table[:, 0] = 0
        for code, meter in enumerate(meters):
            row = table[code]
            out[str(meter)] = int(np.argmax(row)) if row.any() else None
        return out
    for code, meter in enumerate(meters):
        durations = minutes[(codes == code) & (minutes > 0)]
        if len(durations) == 0:
            out[str(meter)] = None
            continue
        lengths, counts = np.unique(durations, return_counts=True)
        out[str(meter)] = int(lengths[np.argmax(counts)])
    return out


def hourly_buckets(
    frame: pd.DataFrame,
    *,
    columns: Sequence[str] = ("value", "cost"),
    cadence_minutes: int | None = None,
) -> pd.DataFrame:
    """Sum rows into UTC hours by their start: meter, hour, <columns>, count, complete.

    A column's sum skips unknown (NaN) rows and is NaN when the hour has no known value.
    `complete` is count == 60 / cadence, the cadence inferred per meter when not given (a
    cadence that does not divide 60 never completes). Rows longer than an hour are not split.
    """
    names = list(columns)
    if frame.empty:
        return pd.DataFrame(
            {
                "meter": pd.Series([], dtype=object),
                "hour": utc_index(np.zeros(0, dtype=np.int64)).array,
                **{c: pd.Series([], dtype=np.float64) for c in names},
                "count": pd.Series([], dtype=np.int64),
                "complete": pd.Series([], dtype=bool),
            }
        )
    codes, meters = _meter_codes(frame)
    start = utc_ns(frame["start"], name="start")
    hour = (start // NS_PER_HOUR) * NS_PER_HOUR
    order, begins = _grouping(codes, hour)
    group = (np.cumsum(begins) - 1).astype(np.intp)
    n_groups = int(group[-1]) + 1
    firsts = order[begins]
    data: dict[str, Any] = {
        "meter": meters[codes[firsts]],
        "hour": utc_index(hour[firsts]).array,
    }
    for name in names:
        sums, _ = group_sums(group, _float_column(frame, name)[order], n_groups)
        data[name] = sums
    count = np.bincount(group, minlength=n_groups).astype(np.int64)
    data["count"] = count
    if cadence_minutes is not None:
        per_meter = np.full(len(meters), float(cadence_minutes))
    else:
        inferred = infer_cadence_minutes(frame)
        per_meter = np.asarray(
            [np.nan if (m := inferred[str(k)]) is None else float(m) for k in meters]
        )
    expected = 60.0 / per_meter[codes[firsts]]
    data["complete"] = count.astype(np.float64) == expected
    return pd.DataFrame(data)


def local_day_totals(
    frame: pd.DataFrame, tz: str, *, columns: Sequence[str] = ("value", "cost")
) -> pd.DataFrame:
    """Sum rows into local days of `tz` by their start: meter, day (date), <columns>, count.

    Sums skip NaN and are NaN for a day with no known value. DST days simply have 46 or 50
    half-hours (23 or 25 hours) because days are taken from each start's local wall time.
    """
    names = list(columns)
    if frame.empty:
        return pd.DataFrame(
            {
                "meter": pd.Series([], dtype=object),
                "day": pd.Series([], dtype=object),
                **{c: pd.Series([], dtype=np.float64) for c in names},
                "count": pd.Series([], dtype=np.int64),
            }
        )
    codes, meters = _meter_codes(frame)
    days = local_days(utc_ns(frame["start"], name="start"), tz)
    order, begins = _grouping(codes, days)
    group = (np.cumsum(begins) - 1).astype(np.intp)
    n_groups = int(group[-1]) + 1
    firsts = order[begins]
    data: dict[str, Any] = {
        "meter": meters[codes[firsts]],
        "day": np.asarray([day_of(d) for d in days[firsts]], dtype=object),
    }
    for name in names:
        sums, _ = group_sums(group, _float_column(frame, name)[order], n_groups)
        data[name] = sums
    data["count"] = np.bincount(group, minlength=n_groups).astype(np.int64)
    return pd.DataFrame(data)


def period_totals(
    frame: pd.DataFrame,
    tz: str,
    *,
    today: date,
    columns: Sequence[str] = ("value", "cost"),
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per meter, the totals the sensors show: local `today`, `yesterday` and `month`.

    `month` runs from the 1st of today's month through today, inclusive, in `tz`. A total is
    math.fsum of the known values (correctly rounded), None when the period has no row or no
    known value.
    """
    names = list(columns)
    if frame.empty:
        return {}
    codes, meters = _meter_codes(frame)
    days = local_days(utc_ns(frame["start"], name="start"), tz)
    today_n = day_number(today)
    month_n = day_number(today.replace(day=1))
    periods = {
        "today": (today_n, today_n),
        "yesterday": (today_n - 1, today_n - 1),
        "month": (month_n, today_n),
    }
    values = {name: _float_column(frame, name) for name in names}
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for code, meter in enumerate(meters):
        mine = codes == code
        per_period: dict[str, dict[str, float | None]] = {}
        for label, (lo, hi) in periods.items():
            rows = mine & (days >= lo) & (days <= hi)
            totals: dict[str, float | None] = {}
            for name in names:
                picked = values[name][rows]
                picked = picked[~np.isnan(picked)]
                totals[name] = math.fsum(picked.tolist()) if len(picked) else None
            per_period[label] = totals
        out[str(meter)] = per_period
    return out
