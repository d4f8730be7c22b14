"""Composed meters as pure functions: virtual (sums and differences), master and preferred.

A composed meter is computed from other meters' intervals, never read from a supplier:

* virtual: base + sum(sign x term) - "everything else" = house - heat pump - EV charger;
* master: one series across meter replacements (period by period, each a sum of registers);
* preferred: the first input that knows a slot wins (smart meter data, else a local sensor).

Everything works on `Slots`: one meter's intervals as parallel numpy arrays on a regular grid,
timestamps as int64 ns since the epoch (UTC). The rules that make the numbers trustworthy:

* missing is never 0. A slot that an input lacks, or knows only as NaN, makes every composed
  slot that needs it unknown (NaN); it fills in when the input arrives, because composition is a
  pure function of its inputs and the caller simply recomputes.
* `affected_window` says which composed slots an input change can reach, so that the caller
  recomputes a window (inputs sliced with `window`) instead of years of history.
* quality is kept honest: a composed slot is as good as its worst input (measured < corrected <
  interpolated < estimated; unknown labels count as estimated), and a preferred slot taken from a
  fallback input is estimated.

numpy, pandas and Home Assistant's unit converters (through analytics.units) are imported inside
the functions, so that the Home Assistant layer can import this module, its dataclasses and its
exceptions without loading them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

type I64 = npt.NDArray[np.int64]
type F64 = npt.NDArray[np.float64]
type Bools = npt.NDArray[np.bool_]
type Idx = npt.NDArray[np.intp]
type Ranks = npt.NDArray[np.int8]
type Objects = npt.NDArray[np.object_]
# (d, start // d) of a grid whose slots are all d long and start on multiples of d; d = 0: not so
type Numbers = tuple[int, I64]

_NS_PER_MINUTE: Final = 60_000_000_000
_NS_PER_DAY: Final = 1440 * _NS_PER_MINUTE
_NAT: Final = -(2**63)
_MIN: Final = -(2**63) + 1  # an open period start: before every slot
_MAX: Final = 2**63 - 1  # an open period end: after every slot
DAILY: Final = 1440

# Worst wins when slots are combined. Labels outside this list count as estimated.
QUALITY_ORDER: Final = ("measured", "corrected", "interpolated", "estimated")
_RANK: Final = {name: rank for rank, name in enumerate(QUALITY_ORDER)}
_ESTIMATED: Final = _RANK["estimated"]

# Volume units gas is metered in; litres and gallons are water and never convert to energy.
_GAS_VOLUMES: Final = frozenset({"m³", "m3", "M3", "ft³", "ft3", "CCF", "ccf", "MCF"})
_MJ_PER_KWH: Final = 3.6


class IncompatibleUnits(ValueError):  # noqa: N818 - the API's names
    """Two units that no conversion links (kWh and L, an unknown unit)."""


class OverlappingPeriods(ValueError):  # noqa: N818 - the API's names
    """Periods of a master meter that claim the same time."""


class MisalignedSlots(ValueError):  # noqa: N818 - the API's names
    """Slots that are not on the grid an operation needs (resample first), or that overlap."""


@dataclass(frozen=True, slots=True)
class Slots:
    """One meter's intervals on a regular grid: what composition works on.

    start is ascending and unique, slots do not overlap, end is exclusive. value and rate are
    NaN where unknown. Results may share arrays with their inputs (a virtual meter's rate is its
    base's rate array): treat the arrays as read-only.

    Two memos are kept beside the arrays, as no constructor argument (dataclasses.replace never
    carries a stale one over): `_rank`, the quality labels as ranks (composition combines ranks,
    not strings), and `_numbers`, the slot numbers of a regular grid (see _slot_numbers).
    """

    start: I64
    end: I64
    value: F64
    rate: F64
    quality: Objects
    _rank: Ranks | None = field(default=None, init=False, repr=False, compare=False)
    _numbers: Numbers | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.start)
        if not (len(self.end) == len(self.value) == len(self.rate) == len(self.quality) == n):
            raise ValueError("Slots arrays must have the same length")

    def __len__(self) -> int:
        return len(self.start)


def _no_floats() -> F64:
    import numpy as np

    return np.zeros(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class VirtualResult:
    """A virtual meter's slots and what clipping at 0 removed.

    clipped: per local day, only days where something was removed (columns day, clipped).
    clipped_by_slot: per slot of `slots`, the amount removed - 0.0 where nothing was, NaN where
    the slot is unknown - for a caller that keeps the accounting per slot and recomputes windows.
    """

    slots: Slots
    clipped: pd.DataFrame
    clipped_by_slot: F64 = field(default_factory=_no_floats)


@dataclass(frozen=True, slots=True)
class Period:
    """Where one set of inputs makes up a master meter: [start, end) in epoch ns, None = open."""

    start: int | None
    end: int | None
    inputs: tuple[Slots, ...]


# --------------------------------------------------------------------------------------------
# Building and taking apart
# --------------------------------------------------------------------------------------------


def empty_slots() -> Slots:
    """Slots with no slot."""
    import numpy as np

    return Slots(
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.float64),
        np.zeros(0, dtype=np.float64),
        np.zeros(0, dtype=object),
    )


def slots_of(
    start: Sequence[int] | I64,
    end: Sequence[int] | I64,
    value: Sequence[float] | F64,
    rate: Sequence[float] | F64 | None = None,
    quality: Sequence[str] | Objects | str = "measured",
) -> Slots:
    """Checked Slots from array-likes: rate defaults to unknown, quality to one label.

    Refuses what would make composition silently wrong: unsorted or repeated starts, an end not
    after its start, overlapping slots.
    """
    import numpy as np

    from .intervals import repeat

    starts = np.asarray(start, dtype=np.int64)
    n = len(starts)
    rates = np.full(n, np.nan) if rate is None else np.asarray(rate, dtype=np.float64)
    labels = repeat(quality, n) if isinstance(quality, str) else np.asarray(quality, dtype=object)
    slots = Slots(
        starts, np.asarray(end, dtype=np.int64), np.asarray(value, dtype=np.float64), rates, labels
    )
    _check_grid(slots.start, slots.end)
    return slots


def _check_grid(start: I64, end: I64) -> None:
    if (end <= start).any():
        raise MisalignedSlots("every slot must end after it starts")
    if (start[1:] <= start[:-1]).any():
        raise MisalignedSlots("slot starts must be ascending and unique")
    if (end[:-1] > start[1:]).any():
        raise MisalignedSlots("slots overlap")


def slots_from_frame(frame: pd.DataFrame) -> Slots:
    """Slots from interval-table rows of ONE meter (start, end, value; rate, quality optional).

    Rows may come unsorted and with repeats of a start (an archive read plus fresh rows): the
    newest `ingested_at` wins, then the later row, as in intervals.dedupe. A missing rate column
    means unknown rates, a missing quality column measured.
    """
    import numpy as np
    import pandas as pd

    from .intervals import repeat, utc_ns

    n = len(frame)
    if n == 0:
        return empty_slots()
    if "meter" in frame.columns:
        meters = frame["meter"].to_numpy(dtype=object)
        if (meters[1:] != meters[:-1]).any():
            raise ValueError("slots_from_frame takes the rows of one meter")
    start = utc_ns(frame["start"], name="start")
    end = utc_ns(frame["end"], name="end")
    if (start == _NAT).any() or (end == _NAT).any():
        raise ValueError("start and end must not be null")
    value = np.asarray(pd.to_numeric(frame["value"]), dtype=np.float64)
    rate = (
        np.asarray(pd.to_numeric(frame["rate"]), dtype=np.float64)
        if "rate" in frame.columns
        else np.full(n, np.nan)
    )
    quality = (
        frame["quality"].to_numpy(dtype=object)
        if "quality" in frame.columns
        else repeat("measured", n)
    )
    if (start[1:] <= start[:-1]).any():
        ingested = (
            utc_ns(frame["ingested_at"], name="ingested_at")
            if "ingested_at" in frame.columns
            else np.zeros(n, dtype=np.int64)
        )
        order = np.lexsort((np.arange(n), ingested, start))
        last = np.ones(n, dtype=bool)
        last[:-1] = start[order][1:] != start[order][:-1]
        keep = order[last]
        start, end, value, rate, quality = (
            start[keep],
            end[keep],
            value[keep],
            rate[keep],
            quality[keep],
        )
    _check_grid(start, end)
    return Slots(start, end, value, rate, quality)


def slots_to_frame(
    slots: Slots,
    *,
    meter: str,
    supplier: str,
    kind: str,
    unit: str,
    currency: str | None,
    ingested_at: datetime,
    calorific_value: float | None = None,
    volume_correction: float | None = None,
    known_only: bool = True,
) -> pd.DataFrame:
    """Composed slots as interval-table rows (schema.INTERVAL_COLUMNS).

    cost = value x rate. energy_kwh follows units.energy_kwh_for: energy units convert, gas
    volumes convert with the calorific value and correction (the units defaults when None),
    anything else is NaN. Unknown slots are left out by default: the interval table has no
    row for what is not known (a NaN row would read as a complete hour with a hole in it).
    """
    import numpy as np

    from .intervals import ns_of, repeat, utc_index
    from .schema import INTERVAL_COLUMNS
    from .units import GAS_CALORIFIC_VALUE, GAS_VOLUME_CORRECTION, energy_kwh_for

    stamp = ns_of(ingested_at, name="ingested_at")
    if known_only:
        known = ~np.isnan(slots.value)
        if not known.all():
            slots = _select(slots, known)
    n = len(slots)
    frame = _frame(
        {
            "meter": repeat(meter, n),
            "serial": repeat(None, n),
            "supplier": repeat(supplier, n),
            "kind": repeat(kind, n),
            "start": utc_index(slots.start).array,
            "end": utc_index(slots.end).array,
            "value": slots.value,
            "unit": repeat(unit, n),
            "energy_kwh": np.full(n, np.nan),
            "rate": slots.rate,
            "cost": slots.value * slots.rate,
            "currency": repeat(currency, n),
            "quality": slots.quality,
            "ingested_at": utc_index(np.full(n, stamp, dtype=np.int64)).array,
        },
        INTERVAL_COLUMNS,
    )
    if n:
        frame["energy_kwh"] = energy_kwh_for(
            frame,
            calorific_value=GAS_CALORIFIC_VALUE if calorific_value is None else calorific_value,
            correction=GAS_VOLUME_CORRECTION if volume_correction is None else volume_correction,
        ).to_numpy()
    return frame


def _frame(data: dict[str, Any], columns: Sequence[str]) -> pd.DataFrame:
    """A DataFrame with `columns` in that order, without pandas' type inference on objects.

    (Inference would look for dates in every object column: slow, and not wanted.)
    """
    import pandas as pd

    return pd.DataFrame(
        {name: pd.Series(data[name], dtype=data[name].dtype, copy=False) for name in columns}
    )


def window(slots: Slots, start: int, end: int) -> Slots:
    """The slots that start in [start, end): views, no copy (what a recompute reads)."""
    import numpy as np

    lo, hi = np.searchsorted(slots.start, [start, end], side="left").tolist()
    if lo == 0 and hi == len(slots):
        return slots
    return _cut(slots, lo, hi)


def splice(slots: Slots, update: Slots, start: int, end: int) -> Slots:
    """`slots` with the slots starting in [start, end) replaced by `update` (a recomputed window).

    Slots of `update` outside [start, end) are refused: they would be duplicates.
    """
    import numpy as np

    if len(update) and (update.start[0] < start or update.start[-1] >= end):
        raise MisalignedSlots("the update has slots outside its window")
    lo, hi = np.searchsorted(slots.start, [start, end], side="left").tolist()
    parts = (_cut(slots, 0, lo), update, _cut(slots, hi, len(slots)))
    return _concat([part for part in parts if len(part)])


def _cut(slots: Slots, lo: int, hi: int) -> Slots:
    part = Slots(
        slots.start[lo:hi],
        slots.end[lo:hi],
        slots.value[lo:hi],
        slots.rate[lo:hi],
        slots.quality[lo:hi],
    )
    _ranked(part, None if slots._rank is None else slots._rank[lo:hi])
    if slots._numbers is not None:
        d, numbers = slots._numbers
        _numbered(part, (d, numbers[lo:hi] if d else numbers))
    return part


def _select(slots: Slots, mask: Bools) -> Slots:
    part = Slots(
        slots.start[mask], slots.end[mask], slots.value[mask], slots.rate[mask], slots.quality[mask]
    )
    return _ranked(part, None if slots._rank is None else slots._rank[mask])


def _concat(parts: Sequence[Slots]) -> Slots:
    import numpy as np

    if not parts:
        return empty_slots()
    if len(parts) == 1:
        return parts[0]
    whole = Slots(
        np.concatenate([p.start for p in parts]),
        np.concatenate([p.end for p in parts]),
        np.concatenate([p.value for p in parts]),
        np.concatenate([p.rate for p in parts]),
        np.concatenate([p.quality for p in parts]),
    )
    ranks = [p._rank for p in parts if p._rank is not None]
    if len(ranks) == len(parts):
        _ranked(whole, np.concatenate(ranks))
    numbers = [p._numbers for p in parts if p._numbers is not None]
    steps = {d for d, _ in numbers}
    if len(numbers) == len(parts) and len(steps) == 1 and 0 not in steps:
        _numbered(whole, (steps.pop(), np.concatenate([k for _, k in numbers])))
    return whole


# --------------------------------------------------------------------------------------------
# Quality
# --------------------------------------------------------------------------------------------


def _rank_of_label(label: Any) -> int:
    """One label's rank: null (None, NaN, NA) counts as measured, an unknown label as estimated."""
    import pandas as pd

    if isinstance(label, str):
        return _RANK.get(label, _ESTIMATED)
    return 0 if bool(pd.isna(label)) else _ESTIMATED


def _ranks(quality: Objects) -> Ranks:
    """Quality labels as ranks (worst = highest); null (None, NaN, NA) counts as measured.

    Label arrays hold few distinct objects (pyarrow deduplicates strings, intervals.repeat and
    this module fill one object in), so slots are first matched to the first label by object
    identity - the pointers, read as integers in one pass - and only the rest by their text.
    """
    import numpy as np
    import pandas as pd

    n = len(quality)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    head = quality[0]
    ranks = np.full(n, _rank_of_label(head), dtype=np.int8)
    pointers = np.frombuffer(quality.tobytes(), dtype=np.uintp)
    others = np.flatnonzero(pointers != pointers[0])
    if len(others) == 0:
        return ranks
    rest = quality[others]
    null = np.asarray(pd.isna(rest), dtype=bool)
    ranks[others[null]] = 0
    others, rest = others[~null], rest[~null]
    if isinstance(head, str):  # the same text in another object is the same label
        differs = np.asarray(rest != head, dtype=bool)
        others, rest = others[differs], rest[differs]
    found = np.full(len(rest), _ESTIMATED, dtype=np.int8)
    for rank, name in enumerate(QUALITY_ORDER):
        found[np.asarray(rest == name, dtype=bool)] = rank
    ranks[others] = found
    return ranks


def _labels(ranks: Ranks) -> Objects:
    """Ranks as labels: one object filled in, the few others set (a take would touch them all)."""
    import numpy as np

    from .intervals import repeat

    labels = repeat(QUALITY_ORDER[0], len(ranks))
    others = np.flatnonzero(ranks)
    if len(others):
        names = np.empty(len(QUALITY_ORDER), dtype=object)
        names[:] = QUALITY_ORDER
        labels[others] = names[ranks[others]]
    return labels


def _ranked(slots: Slots, ranks: Ranks | None) -> Slots:
    """`slots` with its quality ranks memoised (None: unknown yet)."""
    if ranks is not None:
        object.__setattr__(slots, "_rank", ranks)
    return slots


def _rank_of(slots: Slots) -> Ranks:
    """The quality ranks of `slots`, computed once per Slots object."""
    ranks = slots._rank
    if ranks is None:
        ranks = _ranks(slots.quality)
        object.__setattr__(slots, "_rank", ranks)
    return ranks


def _composed(start: I64, end: I64, value: F64, rate: F64, ranks: Ranks) -> Slots:
    """A composition's result, its labels made from its ranks (and the ranks kept)."""
    return _ranked(Slots(start, end, value, rate, _labels(ranks)), ranks)


def _numbered(slots: Slots, numbers: Numbers) -> Slots:
    object.__setattr__(slots, "_numbers", numbers)
    return slots


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------


def _check_cadence(cadence_minutes: int) -> None:
    if isinstance(cadence_minutes, bool) or not isinstance(cadence_minutes, int):
        raise TypeError("cadence_minutes must be an int")
    if cadence_minutes <= 0 or DAILY % cadence_minutes:
        raise ValueError(f"cadence must divide a day (or be {DAILY}), got {cadence_minutes}")


def _midnights(days: I64, tz: str) -> I64:
    """UTC instant at which each local day (days since 1970-01-01 in `tz`) begins.

    A midnight the clocks skip begins the day when they resume (shift_forward); a repeated one
    begins it at its first occurrence.
    """
    import numpy as np
    import pandas as pd

    wall = pd.DatetimeIndex(np.asarray(days * _NS_PER_DAY, dtype=np.int64).view("M8[ns]"))
    local = wall.tz_localize(
        tz, ambiguous=np.ones(len(days), dtype=bool), nonexistent="shift_forward"
    )
    return np.asarray(local.tz_convert(None).as_unit("ns").to_numpy(), dtype="M8[ns]").view(
        np.int64
    )


def _slot_numbers(start: I64, end: I64) -> Numbers:
    """(d, start // d) when every slot is d long and starts on a multiple of d, else (0, -).

    Sub-daily grids are UTC-aligned, so this holds for them (not for local days: 23 to 25 hours).
    The numbers index a lookup table that aligns two grids in a few linear passes, where a
    search would cost a binary search per slot.
    """
    import numpy as np

    none: Numbers = (0, np.zeros(0, dtype=np.int64))
    if len(start) == 0:
        return none
    d = int(end[0] - start[0])
    numbers = start // d
    if not (np.array_equal(numbers * d, start) and (end - start == d).all()):
        return none
    return d, numbers


def _numbers_of(slots: Slots) -> Numbers:
    """The slot numbers of `slots`, worked out once per Slots object."""
    numbers = slots._numbers
    if numbers is None:
        numbers = _slot_numbers(slots.start, slots.end)
        _numbered(slots, numbers)
    return numbers


class _Grid:
    """The slots a composition works on (start, end), with their slot numbers."""

    __slots__ = ("_numbers", "end", "start")

    def __init__(self, start: I64, end: I64, numbers: Numbers | None = None) -> None:
        self.start = start
        self.end = end
        self._numbers = numbers

    @classmethod
    def of(cls, slots: Slots) -> _Grid:
        return cls(slots.start, slots.end, _numbers_of(slots))

    def numbers(self) -> Numbers:
        if self._numbers is None:
            self._numbers = _slot_numbers(self.start, self.end)
        return self._numbers


def _align(grid: _Grid, slots: Slots) -> Idx | None:
    """Where each grid slot sits in `slots` (len(slots) where it has none); None: same grid.

    A slot with the grid slot's start but another end is refused: inputs must share a cadence.
    """
    import numpy as np

    grid_start, grid_end = grid.start, grid.end
    n = len(slots)
    if slots.start is grid_start or (
        n == len(grid_start) and np.array_equal(slots.start, grid_start)
    ):
        if not (slots.end is grid_end or np.array_equal(slots.end, grid_end)):
            raise MisalignedSlots("inputs have slots of different lengths: resample first")
        return None
    if n == 0 or len(grid_start) == 0:
        return np.full(len(grid_start), n, dtype=np.intp)
    d, ours = grid.numbers()
    step, theirs = _numbers_of(slots) if d else (0, ours)
    if d and d == step:
        low = min(int(ours[0]), int(theirs[0]))
        span = max(int(ours[-1]), int(theirs[-1])) - low + 1
        if span <= 4 * (len(ours) + n) + 1024:
            table = np.full(span, n, dtype=np.intp)
            table[theirs - low] = np.arange(n, dtype=np.intp)
            return table[ours - low]
    pos = np.minimum(np.searchsorted(slots.start, grid_start), n - 1).astype(np.intp)
    hit = slots.start[pos] == grid_start
    if (hit & (slots.end[pos] != grid_end)).any():
        raise MisalignedSlots("inputs have slots of different lengths: resample first")
    return np.where(hit, pos, n).astype(np.intp)


def _take_f(values: F64, pos: Idx | None) -> F64:
    """Values at the aligned positions, NaN where the input has no slot."""
    import numpy as np

    if pos is None:
        return values
    padded = np.empty(len(values) + 1, dtype=np.float64)
    padded[:-1] = values
    padded[-1] = np.nan
    return padded[pos]


def _take_r(ranks: Ranks, pos: Idx | None) -> Ranks:
    """Quality ranks at the aligned positions, measured (0) where the input has no slot."""
    import numpy as np

    if pos is None:
        return ranks
    padded = np.zeros(len(ranks) + 1, dtype=np.int8)
    padded[:-1] = ranks
    return padded[pos]


def _union(inputs: Sequence[Slots]) -> _Grid:
    """The union of the inputs' slots (start, end); same starts must have the same end."""
    import numpy as np

    first = inputs[0]
    if all(
        len(s) == len(first) and np.array_equal(s.start, first.start) for s in inputs[1:]
    ) and all(np.array_equal(s.end, first.end) for s in inputs[1:]):
        return _Grid(first.start, first.end)
    start = np.unique(np.concatenate([s.start for s in inputs]))
    end = np.full(len(start), _NAT, dtype=np.int64)
    for s in inputs:
        pos = np.searchsorted(start, s.start)
        prior = end[pos]
        if ((prior != _NAT) & (prior != s.end)).any():
            raise MisalignedSlots("inputs have slots of different lengths: resample first")
        end[pos] = s.end
    if (end[:-1] > start[1:]).any():
        raise MisalignedSlots("inputs' slots overlap each other: resample first")
    return _Grid(start, end)


def _blend(total: F64, cost: F64, mean_rate: F64) -> F64:
    """Cost-weighted rate of summed slots; the plain mean where the total is 0 (cost is 0)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total != 0, cost / total, mean_rate)


# --------------------------------------------------------------------------------------------
# resample
# --------------------------------------------------------------------------------------------


def resample(slots: Slots, cadence_minutes: int, *, tz: str) -> Slots:
    """Sum finer slots into a coarser cadence: 15, 30, 60 ... minutes on UTC, or 1440 = local day.

    Sub-daily slots align on UTC (every cadence that divides a day); daily slots are the local
    days of `tz`, 23 or 25 hours long on DST days. A coarse slot is known only when the fine
    slots inside it cover it completely and are all known - a gap is NaN, never 0. Its rate is
    cost-weighted (sum(value x rate) / sum(value)), NaN when any rate is unknown, the plain mean
    when the values sum to 0; its quality the worst of its slots. Only coarse slots with at least
    one fine slot appear. Slots already on the target grid pass through untouched (the same
    object). A fine slot that crosses a coarse boundary is refused (MisalignedSlots).
    """
    import numpy as np

    from .intervals import local_days

    _check_cadence(cadence_minutes)
    n = len(slots)
    if n == 0:
        return slots
    start, end = slots.start, slots.end
    if cadence_minutes == DAILY:
        days = local_days(start, tz)
        begins = np.ones(n, dtype=bool)
        begins[1:] = days[1:] != days[:-1]
        heads = np.flatnonzero(begins)
        unique_days = days[heads]
        lo_heads = _midnights(unique_days, tz)
        hi_heads = _midnights(unique_days + 1, tz)
        group = np.cumsum(begins) - 1
        lo, hi = lo_heads[group], hi_heads[group]
    else:
        cadence = cadence_minutes * _NS_PER_MINUTE
        lo = start // cadence * cadence
        hi = lo + cadence
        begins = np.ones(n, dtype=bool)
        begins[1:] = lo[1:] != lo[:-1]
        heads = np.flatnonzero(begins)
        lo_heads, hi_heads = lo[heads], hi[heads]
    if len(heads) == n and np.array_equal(start, lo) and np.array_equal(end, hi):
        return slots
    if (end > hi).any():
        raise MisalignedSlots(f"slots cross {cadence_minutes}-minute boundaries: cannot resample")
    if (end[:-1] > start[1:]).any():
        raise MisalignedSlots("slots overlap")
    covered = np.add.reduceat(end - start, heads) == hi_heads - lo_heads
    value = np.add.reduceat(slots.value, heads)
    cost = np.add.reduceat(slots.value * slots.rate, heads)
    counts = np.diff(np.append(heads, n))
    mean_rate = np.add.reduceat(slots.rate, heads) / counts
    rate = _blend(value, cost, mean_rate)
    value = np.where(covered, value, np.nan)
    rate = np.where(covered, rate, np.nan)
    ranks = np.maximum.reduceat(_rank_of(slots), heads).astype(np.int8)
    return _composed(lo_heads, hi_heads, value, rate, ranks)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


def _unit_kind(unit: str) -> tuple[str, tuple[bool, float]] | None:
    """("energy", factor to kWh) or ("volume", factor to m³); None for an unknown unit."""
    from .units import energy_unit_factor, volume_unit_factor

    energy = energy_unit_factor(unit)
    if energy is not None:
        return "energy", energy
    volume = volume_unit_factor(unit)
    if volume is not None:
        return "volume", volume
    return None


def convertible(from_unit: str, to_unit: str) -> bool:
    """Whether `convert` links the two units (energy, volume, gas volume and energy)."""
    a, b = _unit_kind(from_unit), _unit_kind(to_unit)
    if a is None or b is None:
        return False
    if a[0] == b[0]:
        return True
    volume = from_unit if a[0] == "volume" else to_unit
    return volume in _GAS_VOLUMES


def _to_base(values: F64, factor: tuple[bool, float]) -> F64:
    """Values in the base unit (kWh, m³); `values` itself when the factor is 1."""
    multiply, number = factor
    if number == 1.0:
        return values
    return values * number if multiply else values / number


def _from_base(values: F64, factor: tuple[bool, float]) -> F64:
    """Base-unit values in the unit of `factor`; `values` itself when the factor is 1."""
    multiply, number = factor
    if number == 1.0:
        return values
    return values / number if multiply else values * number


def _check_gas(calorific_value: float, volume_correction: float) -> None:
    import math

    if not (math.isfinite(calorific_value) and calorific_value > 0):
        raise ValueError(f"calorific value must be positive, got {calorific_value!r}")
    if not (math.isfinite(volume_correction) and volume_correction > 0):
        raise ValueError(f"volume correction must be positive, got {volume_correction!r}")


def convert(
    values: F64,
    from_unit: str,
    to_unit: str,
    *,
    calorific_value: float,
    volume_correction: float,
) -> F64:
    """Values in `from_unit` as `to_unit` (always a new float64 array).

    Energy units (Wh, kWh, MWh, MJ, GJ ... as Home Assistant knows them) convert among each
    other through kWh, volumes (L, m³, ft³, CCF ...) through m³, with analytics.units' exact
    factors. Gas volumes (m³, ft³, CCF, MCF - not litres) and energy convert with
    kWh = m³ x volume_correction x calorific_value / 3.6, calorific value in MJ/m³. A German bill
    gives energy content (Brennwert, kWh/m³) and z-number: pass calorific_value=Brennwert x 3.6,
    volume_correction=z, it is the same product. The gas figures are checked only when used.
    Anything else raises IncompatibleUnits.
    """
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    a, b = _unit_kind(from_unit), _unit_kind(to_unit)
    if a is None or b is None:
        unknown = from_unit if a is None else to_unit
        raise IncompatibleUnits(f"unknown unit {unknown!r}")
    if a[0] == b[0]:
        out = _from_base(_to_base(arr, a[1]), b[1])
        return out.copy() if out is arr or out is values else out
    if not convertible(from_unit, to_unit):
        raise IncompatibleUnits(f"cannot convert {from_unit} to {to_unit}")
    _check_gas(calorific_value, volume_correction)
    # in place after the first product: the same operations, in the same order, fewer arrays
    if a[0] == "volume":
        kwh = _to_base(arr, a[1]) * volume_correction
        kwh *= calorific_value
        kwh /= _MJ_PER_KWH
        return _from_base(kwh, b[1])
    m3 = _to_base(arr, a[1]) * _MJ_PER_KWH
    m3 /= volume_correction * calorific_value
    return _from_base(m3, b[1])


def convert_slots(
    slots: Slots,
    from_unit: str,
    to_unit: str,
    *,
    calorific_value: float,
    volume_correction: float,
) -> Slots:
    """Slots in another unit: values convert, and rates (price per unit) convert inversely.

    A rate per kWh becomes a rate per Wh by converting it as if it were Wh to kWh, so that
    value x rate (the cost) stays the same.
    """
    if from_unit == to_unit:
        return slots
    gas = {"calorific_value": calorific_value, "volume_correction": volume_correction}
    converted = Slots(
        slots.start,
        slots.end,
        convert(slots.value, from_unit, to_unit, **gas),
        convert(slots.rate, to_unit, from_unit, **gas),
        slots.quality,
    )
    _ranked(converted, _rank_of(slots))
    return _numbered(converted, _numbers_of(slots))


# --------------------------------------------------------------------------------------------
# virtual
# --------------------------------------------------------------------------------------------


@cache
def _no_clipping() -> pd.DataFrame:
    import numpy as np

    return _frame(
        {"day": np.zeros(0, dtype=object), "clipped": np.zeros(0, dtype=np.float64)},
        ("day", "clipped"),
    )


def virtual(base: Slots, terms: Sequence[tuple[int, Slots]], *, tz: str) -> VirtualResult:
    """Base + sum(sign x term) on base's grid; inputs resampled and converted by the caller.

    A slot is known only when the base and every term know it: a missing input makes the result
    missing (never a silent 0), and it fills in when the input arrives. A negative result (a term
    read ahead of the base, a mis-wired sensor) is clipped at 0 and the amount removed is
    accounted per local day of `tz`, so that nothing disappears unseen. rate is the base's rate.
    quality is the base's own label where no term's is worse, else the worst one (estimated
    when any input is estimated). Terms' slots off base's grid are ignored; a term slot that
    starts with a base slot but ends elsewhere is refused (MisalignedSlots): the cadences differ.
    """
    import numpy as np

    from .intervals import local_days

    for sign, _ in terms:
        if sign not in (1, -1):
            raise ValueError(f"a term's sign is 1 or -1, got {sign!r}")
    grid = _Grid.of(base)
    total: F64 | None = None
    base_ranks = _rank_of(base)
    ranks = base_ranks
    for sign, term in terms:
        pos = _align(grid, term)
        values = _take_f(term.value, pos)
        if total is None:  # the first term makes the result array, the others add in place
            total = base.value + values if sign > 0 else base.value - values
        elif sign > 0:
            total += values
        else:
            total -= values
        term_ranks = _take_r(_rank_of(term), pos)
        if term_ranks.any():
            ranks = np.maximum(ranks, term_ranks)
    if total is None:
        total = np.array(base.value, dtype=np.float64, copy=True)
    where = np.flatnonzero(total < 0)
    clipped = _no_clipping().copy()
    by_slot = np.zeros(len(total), dtype=np.float64)
    by_slot[np.isnan(total)] = np.nan
    if len(where):
        amounts = -total[where]
        by_slot[where] = amounts
        total[where] = 0.0
        days = local_days(base.start[where], tz)
        heads = np.flatnonzero(np.append(True, days[1:] != days[:-1]))
        clipped = _frame(
            {
                "day": days[heads].astype("M8[D]").astype(object),
                "clipped": np.add.reduceat(amounts, heads),
            },
            ("day", "clipped"),
        )
    # the base's labels stand (its own words: "corrected" stays) where no term is worse
    labels = base.quality
    worse = np.flatnonzero(ranks > base_ranks) if ranks is not base_ranks else ranks[:0]
    if len(worse):
        labels = labels.copy()
        labels[worse] = _labels(ranks[worse])
    slots = _numbered(
        _ranked(Slots(base.start, base.end, total, base.rate, labels), ranks), grid.numbers()
    )
    return VirtualResult(slots=slots, clipped=clipped, clipped_by_slot=by_slot)


# --------------------------------------------------------------------------------------------
# master, meter_reading
# --------------------------------------------------------------------------------------------


def sum_slots(inputs: Sequence[Slots]) -> Slots:
    """Slotwise sum over the union of the inputs' slots (registers of one meter).

    Unknown where any input lacks the slot or knows it as NaN. rate is cost-weighted (the plain
    mean where the values sum to 0), quality the worst.
    """
    import numpy as np

    if not inputs:
        raise ValueError("nothing to sum")
    if len(inputs) == 1:
        return inputs[0]
    grid = _union(inputs)
    n = len(grid.start)
    total = np.zeros(n)
    cost = np.zeros(n)
    rates = np.zeros(n)
    ranks = np.zeros(n, dtype=np.int8)
    for s in inputs:
        pos = _align(grid, s)
        value = _take_f(s.value, pos)
        rate = _take_f(s.rate, pos)
        total += value
        cost += value * rate
        rates += rate
        ranks = np.maximum(ranks, _take_r(_rank_of(s), pos))
    rate = _blend(total, cost, rates / len(inputs))
    return _composed(grid.start, grid.end, total, rate, ranks)


def master(periods: Sequence[Period]) -> Slots:
    """One series across meter replacements: each period's inputs summed within [start, end).

    A slot belongs to the period its start lies in (put replacement dates on slot boundaries).
    Inside a period the inputs are summed slotwise (missing where any input is missing, see
    sum_slots). Periods must not overlap (OverlappingPeriods); gaps between them are simply
    missing. An empty list, a period without inputs or with end <= start raise ValueError.
    """
    if not periods:
        raise ValueError("a master meter needs at least one period")
    bounds: list[tuple[int, int, Period]] = []
    for period in periods:
        lo = _MIN if period.start is None else int(period.start)
        hi = _MAX if period.end is None else int(period.end)
        if hi <= lo:
            raise ValueError(f"a period must end after it starts: {lo} >= {hi}")
        if not period.inputs:
            raise ValueError("a period needs at least one input")
        bounds.append((lo, hi, period))
    bounds.sort(key=lambda item: item[0])
    for (_, hi, _), (lo, _, _) in pairwise(bounds):
        if hi > lo:
            raise OverlappingPeriods(f"periods overlap: one ends at {hi}, the next starts at {lo}")
    parts = [sum_slots([window(s, lo, hi) for s in period.inputs]) for lo, hi, period in bounds]
    return _concat([part for part in parts if len(part)])


def meter_reading(slots: Slots, *, offset: float = 0.0) -> F64:
    """Cumulative reading (total_increasing) at the end of each slot: offset + running sum.

    Unknown slots add nothing, so NaN never reaches the reading; it stays continuous across a
    master meter's periods because master gives one series. The sum runs left to right from
    `offset`, so a window recomputed from the reading before it (offset=) gives the very same
    floats as a full recompute.
    """
    import math

    import numpy as np

    if not math.isfinite(offset):
        raise ValueError(f"offset must be finite, got {offset!r}")
    unknown = np.isnan(slots.value)
    running = np.where(unknown, 0.0, slots.value) if unknown.any() else slots.value.copy()
    if len(running):
        # (offset + v1) + v2 ...: the same additions, in the same order, as a running total
        running[0] += offset
    np.cumsum(running, out=running)
    return running


# --------------------------------------------------------------------------------------------
# preferred
# --------------------------------------------------------------------------------------------


def preferred(inputs: Sequence[Slots]) -> Slots:
    """Per slot the first input that knows the value; taken from a fallback, it is estimated.

    Grid: the union of the inputs' slots. value and rate come from the winning input, quality
    too when the winner is the first input, else "estimated". Where no input knows the slot the
    value is NaN, with the quality of the first input that has the slot (estimated if that is a
    fallback). When the first input publishes, a recompute replaces the fallback value.
    """
    import numpy as np

    if not inputs:
        raise ValueError("preferred needs at least one input")
    if len(inputs) == 1:
        return inputs[0]
    grid = _union(inputs)
    n = len(grid.start)
    value = np.full(n, np.nan)
    rate = np.full(n, np.nan)
    ranks = np.zeros(n, dtype=np.int8)
    decided = np.zeros(n, dtype=bool)
    present_rank = np.zeros(n, dtype=np.int8)
    seen = np.zeros(n, dtype=bool)
    for position, s in enumerate(inputs):
        pos = _align(grid, s)
        values = _take_f(s.value, pos)
        present = np.ones(n, dtype=bool) if pos is None else pos < len(s)
        own = _take_r(_rank_of(s), pos) if position == 0 else np.full(n, _ESTIMATED, dtype=np.int8)
        wins = ~decided & ~np.isnan(values)
        value[wins] = values[wins]
        rate[wins] = _take_f(s.rate, pos)[wins]
        ranks[wins] = own[wins]
        decided |= wins
        first_seen = present & ~seen
        present_rank[first_seen] = own[first_seen]
        seen |= present
    ranks[~decided] = present_rank[~decided]
    return _composed(grid.start, grid.end, value, rate, ranks)


# --------------------------------------------------------------------------------------------
# Incremental recompute
# --------------------------------------------------------------------------------------------


def affected_window(
    changed_start: int,
    changed_end: int,
    cadence_minutes: int,
    *,
    tz: str,
    whole_local_days: bool = False,
) -> tuple[int, int]:
    """[start, end) of the composed slots an input change in [changed_start, changed_end) reaches.

    Widened to whole composed slots: UTC-aligned for sub-daily cadences, local days of `tz`
    (23 or 25 hours on DST days) for 1440. Every composition here is slotwise, so the caller
    recomputes this window from inputs sliced with `window` and splices it in. With
    whole_local_days the window covers whole local days, which a caller that keeps
    VirtualResult.clipped (per day) or daily totals needs. A meter_reading after the window
    shifts too: recompute it from the reading before the window (offset=).
    """
    import numpy as np

    from .intervals import local_days

    _check_cadence(cadence_minutes)
    if changed_end <= changed_start:
        raise ValueError("the changed range is empty")
    lo, hi = int(changed_start), int(changed_end)
    cadence = cadence_minutes * _NS_PER_MINUTE
    if cadence_minutes < DAILY:
        lo, hi = lo // cadence * cadence, -(-hi // cadence) * cadence
    if cadence_minutes == DAILY or whole_local_days:
        days = local_days(np.asarray([lo, hi - 1], dtype=np.int64), tz)
        bounds = _midnights(np.asarray([days[0], days[1] + 1], dtype=np.int64), tz)
        lo, hi = int(bounds[0]), int(bounds[1])
        if cadence_minutes < DAILY:
            # a local day need not start on the UTC grid (UTC+05:30 and 30-60 minute slots)
            lo, hi = lo // cadence * cadence, -(-hi // cadence) * cadence
    return lo, hi
