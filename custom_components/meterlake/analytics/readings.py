"""Meters from meter readings: a cumulative counter cleaned, then spread over interval slots.

A reading meter has no intervals of its own, only a counter at moments: a Home Assistant
`total_increasing` sensor, a pulse counter, or hand readings typed in once a month. Two pure
steps turn it into the interval table's slots:

* `clean_readings` makes the counter one continuous, never decreasing cumulative series. Jitter
  (a reading a hair below the one before) is held at the previous value, so it never becomes a
  negative consumption; a counter that wraps at its rollover continues with + rollover; any
  other drop is a reset or a new meter, and the series continues from where it was, as Home
  Assistant's statistics do for a `total_increasing` sensor (the counter restarted from 0).
  A new meter the caller knows of (`new_meter`) starts at its known reading.
* `spread` shares the consumption between two readings out over the slots between them, in
  proportion to time or to a profile (`Weights`: monthly factors learned from the meter's own
  history, or heating degree-days). The shares of one reading pair add up to the pair's
  difference EXACTLY, in any summation order that runs left to right and with math.fsum: the
  cumulative allocations are rounded onto the grid of the difference's last bit before they are
  differenced, so every partial sum is a float and the total telescopes. Readings further apart
  than `max_gap_ns` are not spread at all: their slots stay missing, never invented.

A reading added later (a hand reading typed in for the past) changes only the slots between its
two neighbours: `respread_window` names that window, so that a caller recomputes it alone.

Times are int64 ns since the epoch (UTC), as in analytics.compose; slots come out as
compose.Slots and go into the interval table with compose.slots_to_frame. numpy and pandas are
imported inside the functions, so that the Home Assistant layer can import this module and its
dataclasses without loading them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Final, Literal

from .compose import Slots

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

type I64 = npt.NDArray[np.int64]
type F64 = npt.NDArray[np.float64]
type Bools = npt.NDArray[np.bool_]
type ResetKind = Literal["jitter", "wrap", "reset", "new_meter"]

_NS_PER_MINUTE: Final = 60_000_000_000
_NS_PER_HOUR: Final = 60 * _NS_PER_MINUTE
_NS_PER_DAY: Final = 1440 * _NS_PER_MINUTE
DAILY: Final = 1440
# The first stretch of readings searched for a drop; it grows while none is found (see _scan).
_FIRST_CHUNK: Final = 256


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reset:
    """A reading that did not simply go up, and how it was read.

    kind: "jitter" (a drop within the tolerance: the reading is held at `before`), "wrap" (the
    counter passed its rollover), "reset" (any other drop: the counter restarted from 0) or
    "new_meter" (a new meter the caller declared, starting at `after`; `before` is the old
    meter's last reading, NaN when there was none).
    """

    time: int
    before: float
    after: float
    kind: ResetKind


@dataclass(frozen=True, slots=True)
class Cleaned:
    """A counter as one continuous series, and what was done to make it so.

    times: the reading times, ascending and unique, with a point for each declared new meter
    that no reading marks. cumulative: never decreasing; equal to the readings themselves as
    long as nothing was reset. unknown[i]: the consumption between reading i-1 and reading i
    is not known (a new meter was declared and the old meter's last reading is missing) - pass
    it to `spread`, which leaves that stretch missing. resets: in time order.
    """

    times: I64
    cumulative: F64
    unknown: Bools
    resets: list[Reset]


@dataclass(frozen=True, slots=True)
class Parts:
    """The shares of reading pairs in slots, in time order: what a Spread is made of.

    Per share of one reading pair in one slot: the pair (index i of its first reading: times[i]
    to times[i + 1]), the slot (index into Spread.slots, -1 for a slot left out), the stretch
    of time it covers [start, end) and its value. The values of pair i add up to
    cumulative[i + 1] - cumulative[i] exactly; a slot's value is the sum of its shares.
    """

    pair: I64
    slot: I64
    start: I64
    end: I64
    value: F64


@dataclass(frozen=True, slots=True)
class Spread:
    """Consumption spread over slots.

    slots: the slots that reading pairs cover completely (a slot at the edge of a gap, or before
    the first reading, is left out: part of it is not known), rate unknown (NaN), quality
    "measured" or "interpolated". gaps: (start, end) of the stretches between readings left
    missing - further apart than max_gap_ns, or unknown (Cleaned.unknown) - touching ones
    merged. parts(): the exact shares the slots are made of, worked out when asked for (most
    callers want the slots only).
    """

    slots: Slots
    gaps: list[tuple[int, int]] = field(default_factory=list)
    _source: _Source | None = field(default=None, repr=False, compare=False)

    def parts(self) -> Parts:
        """Each reading pair's share of each slot it overlaps (see Parts)."""
        import numpy as np

        source = self._source
        if source is None:
            none = np.zeros(0, dtype=np.int64)
            return Parts(none, none, none, none, np.zeros(0, dtype=np.float64))
        pairs = np.flatnonzero(source.eligible)
        pair, slot, start, end, value = _parts(source.times, source.shares, pairs, source.grid)
        numbers = source.grid.first(self.slots.start)
        at = np.minimum(np.searchsorted(numbers, slot), max(len(numbers) - 1, 0))
        index = np.where(numbers[at] == slot, at, -1) if len(numbers) else np.full_like(slot, -1)
        return Parts(pair, index, start, end, value)


@dataclass(frozen=True, slots=True)
class _Source:
    """What Spread.parts works from: the readings, their shares, the pairs spread, the grid."""

    times: I64
    shares: _Shares
    eligible: Bools
    grid: _Grid


@dataclass(frozen=True, slots=True)
class Weights:
    """A consumption profile: a relative rate weight[j] over [edges[j], edges[j + 1]).

    The weight is a rate (per unit of time), so a 23-hour DST day of the same weight gets 23/24
    of a 24-hour one. NaN is an unknown weight. A reading pair that the profile does not cover
    completely with known weights, or whose weights are all 0, is spread in proportion to time:
    a profile only shapes what it knows about.
    """

    edges: I64
    weight: F64

    def __post_init__(self) -> None:
        import numpy as np

        edges = np.asarray(self.edges, dtype=np.int64)
        weight = np.asarray(self.weight, dtype=np.float64)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "weight", weight)
        if len(edges) != len(weight) + 1 and len(edges) + len(weight) > 0:
            raise ValueError("Weights need one edge more than weights")
        if (edges[1:] <= edges[:-1]).any():
            raise ValueError("Weights edges must be strictly ascending")
        known = weight[~np.isnan(weight)]
        if not (np.isfinite(known).all() and (known >= 0).all()):
            raise ValueError("weights must be finite and not negative (NaN for unknown)")


@dataclass(frozen=True, slots=True)
class MonthlyProfile:
    """Factors per calendar month (January first, mean 1 over the months seen) in `tz`."""

    factors: tuple[float, ...]
    tz: str

    def weights(self, start_ns: int, end_ns: int) -> Weights:
        """The profile as Weights over whole local months covering [start_ns, end_ns]."""
        import numpy as np

        months, edges = _month_edges(np.asarray([start_ns, end_ns], dtype=np.int64), self.tz)
        factors = np.asarray(self.factors, dtype=np.float64)
        return Weights(edges, factors[months % 12])


# --------------------------------------------------------------------------------------------
# clean_readings
# --------------------------------------------------------------------------------------------


def clean_readings(
    times_ns: Sequence[int] | I64,
    values: Sequence[float] | F64,
    *,
    tolerance: float,
    rollover: float | None = None,
    new_meter: Sequence[tuple[int, float]] = (),
) -> Cleaned:
    """Counter readings as one continuous, never decreasing cumulative series.

    Readings are sorted by time; of several at one time the last given wins (a correction),
    and a reading that is not a finite number is no reading. A reading is compared with the
    level the counter has reached since it last started (the highest reading since), so that a
    slow creep downwards is seen as a drop in the end and a jitter does not count twice:

    * a drop of at most `tolerance`: jitter. The reading is held at the level (no consumption,
      never a negative one), and the next reading counts from the level.
    * with `rollover` (the counter's modulus: 100000 for a five-digit counter that goes 99999,
      0, 1), a drop of more than half the rollover to a reading in [0, rollover) is a wrap: the
      counter moved less than half a turn forward rather than more than half back, and the
      series continues with + rollover.
    * any other drop is a reset (or a meter nobody said was new): the counter restarted from 0,
      so the consumption up to the reading is the reading itself, as Home Assistant counts a
      `total_increasing` sensor.

    `new_meter` declares (time, first reading) of meters put in: readings up to that time are the
    old meter's (a reading at that very time is its last one), later ones the new meter's,
    counted from the first reading. Without a last reading of the old meter at that time, the
    consumption since its reading before is not known: the declared reading becomes a point of
    the series and `unknown` marks the stretch before it.

    The series starts at the first reading, so it equals the readings until a reset. A reset
    anywhere is one new offset from there on: the readings after it keep their differences.
    """
    import numpy as np

    t = np.asarray(times_ns, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or v.shape != t.shape:
        raise ValueError("times_ns and values must be 1-d and of the same length")
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if rollover is not None and not (np.isfinite(rollover) and rollover > 0):
        raise ValueError(f"rollover must be a positive number, got {rollover!r}")
    finite = np.isfinite(v)
    if not finite.all():
        t, v = t[finite], v[finite]
    t, v = _last_per_time(t, v)
    marker_t, marker_r = _markers(new_meter)

    # A declared new meter is a point of its own where no reading is; on a reading, the new
    # meter starts with the reading after it, counting from its first reading.
    at = np.searchsorted(t, marker_t)
    on_reading = t[np.minimum(at, len(t) - 1)] == marker_t if len(t) else at < 0
    inserted = ~on_reading
    if inserted.any():
        t = np.insert(t, at[inserted], marker_t[inserted])
        v = np.insert(v, at[inserted], marker_r[inserted])
    n = len(t)
    at = at + np.cumsum(inserted) - inserted  # positions in the series with the points
    heads: dict[int, tuple[float, bool]] = {0: (-np.inf, False)}
    declared: list[tuple[int, int, float]] = []  # (time, index of the old meter's last, first)
    for pos, first, own, when in zip(
        at.tolist(), marker_r.tolist(), inserted.tolist(), marker_t.tolist(), strict=True
    ):
        start = pos if own else pos + 1
        if start < n:
            # a point of its own reads `first` itself; after a reading the level starts at it
            heads[start] = (-np.inf, True) if own else (first, False)
        declared.append((when, start - 1, first))

    # The level (the highest reading since the counter last started) and where it starts
    # afresh: (position, level before a drop or None, the start of a declared new meter)
    level = np.empty(n, dtype=np.float64)
    segments: list[tuple[int, float | None, tuple[float, bool]]] = []
    starts = sorted(heads)
    for number, s in enumerate(starts):
        e = starts[number + 1] if number + 1 < len(starts) else n
        if s == e:  # no reading at all
            break
        drops = _scan(v, level, s, e, tolerance=tolerance, init=heads[s][0])
        if not drops or drops[0][0] != s:
            segments.append((s, None, heads[s]))
        segments.extend((at, before, heads[s]) for at, before in drops)

    # readings held at the level, and the old meters' last levels, before the level becomes
    # the cumulative series (in place: no copy)
    held = np.flatnonzero(v < level)
    events: list[tuple[int, float, float, ResetKind]] = [
        (when, before, after, "jitter")
        for when, before, after in zip(
            t[held].tolist(), level[held].tolist(), v[held].tolist(), strict=True
        )
    ]
    events.extend(
        (when, float(level[last]) if last >= 0 else float("nan"), first, "new_meter")
        for when, last, first in declared
    )
    cumulative = level
    unknown = np.zeros(n, dtype=bool)
    for index, (a, before, (init, own)) in enumerate(segments):
        if a == 0:
            continue  # the series starts at the first reading
        b = segments[index + 1][0] if index + 1 < len(segments) else n
        reading = float(v[a])
        previous = float(cumulative[a - 1])
        if before is not None:
            if (
                rollover is not None
                and 0 <= reading < rollover
                and before < rollover
                and before - reading > rollover / 2
            ):
                offset = previous + (rollover - before)
                events.append((int(t[a]), before, reading, "wrap"))
            else:
                offset = previous - min(reading, 0.0)
                events.append((int(t[a]), before, reading, "reset"))
        elif own:
            offset = previous - reading
            unknown[a] = True
        else:
            offset = previous - init
        part = cumulative[a:b]
        part += offset
        # rounding of offset + level must not take the series back by an ulp
        np.maximum(part, previous, out=part)
    events.sort(key=lambda item: item[0])
    resets = [Reset(when, before, after, kind) for when, before, after, kind in events]
    return Cleaned(times=t, cumulative=cumulative, unknown=unknown, resets=resets)


def _last_per_time(t: I64, v: F64) -> tuple[I64, F64]:
    """Readings sorted by time, the last given of several at one time kept."""
    import numpy as np

    if len(t) > 1 and not (t[1:] > t[:-1]).all():
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        last = np.ones(len(t), dtype=bool)
        last[:-1] = t[1:] != t[:-1]
        t, v = t[last], v[last]
    return t, v


def _markers(new_meter: Sequence[tuple[int, float]]) -> tuple[I64, F64]:
    """Declared new meters as sorted arrays (time, first reading); the last of one time wins."""
    import numpy as np

    times = np.asarray([int(when) for when, _ in new_meter], dtype=np.int64)
    firsts = np.asarray([float(first) for _, first in new_meter], dtype=np.float64)
    if not np.isfinite(firsts).all():
        raise ValueError("a new meter's first reading must be a finite number")
    return _last_per_time(times, firsts)


def _scan(
    v: F64, level: F64, s: int, e: int, *, tolerance: float, init: float
) -> list[tuple[int, float]]:
    """Drops beyond the tolerance in v[s:e] (position, level before it); fills level[s:e].

    The level is the running maximum since the last drop (from `init` at s). It is worked out
    a stretch at a time, carried from one stretch to the next; a stretch with a drop is cut
    there and the search goes on from the drop. Stretches grow while there is no drop, so a
    series of few resets costs a few passes of numpy, and one with many is not quadratic.
    """
    import numpy as np

    drops: list[tuple[int, float]] = []
    carried = init
    width = _FIRST_CHUNK
    while s < e:
        hi = min(e, s + width)
        chunk = v[s:hi]
        running = level[s:hi]  # the level, right up to a drop (after one it is redone)
        np.maximum.accumulate(chunk, out=running)
        if carried > chunk[0]:  # (else every running maximum is past it already)
            np.maximum(running, carried, out=running)
        # a reading below the level before it by more than the tolerance: the first one
        if carried - chunk[0] > tolerance:
            dropped = 0
        else:
            below = running[:-1] - chunk[1:] > tolerance
            first = int(below.argmax()) if len(below) else 0
            dropped = first + 1 if len(below) and below[first] else -1
        if dropped >= 0:
            cut = s + dropped
            drops.append((cut, float(running[dropped - 1]) if dropped else carried))
            # the drop starts afresh: its own reading is the level
            level[cut] = v[cut]
            width = max(64, 4 * (dropped + 1))
            carried = float(v[cut])
            s = cut + 1
            continue
        carried = float(running[-1])
        s = hi
        width *= 8
    return drops


# --------------------------------------------------------------------------------------------
# spread
# --------------------------------------------------------------------------------------------


def spread(
    times_ns: Sequence[int] | I64,
    cumulative: Sequence[float] | F64,
    *,
    cadence_minutes: int,
    tz: str,
    max_gap_ns: int,
    weights: Weights | None = None,
    unknown: Sequence[bool] | Bools | None = None,
) -> Spread:
    """The consumption between consecutive readings, shared out over cadence slots.

    Slots: cadence_minutes that divide a day on the UTC grid (60 = hours), or 1440 = the local
    days of `tz` (23 or 25 hours on DST days). The difference of a reading pair goes to the
    slots the pair overlaps in proportion to the overlap (linear in time), or to the profile's
    weight over it (`weights`, see Weights). A slot with a reading inside gets a share of both
    pairs.

    Exactness: a pair's shares add up to its difference d = cumulative[i+1] - cumulative[i]
    exactly (==), summed left to right or with math.fsum. The cumulative share at the end of
    each slot is rounded onto the grid of d's last bit (np.spacing(d)), where every number up to
    d is a float and so is the difference of any two: the shares are those differences, every
    partial sum is a cumulative share and the last one is d itself. The price is at most half
    an ulp of d per slot - the error any float arithmetic makes anyway.

    A slot's value is its shares (Spread.parts) summed left to right.

    Missing stays missing: pairs further apart than max_gap_ns, or marked `unknown` (unknown[i]:
    the stretch from reading i-1 to i), give no shares; a slot that pairs do not cover
    completely is left out (its shares are in Spread.parts, with slot -1).

    Quality: "measured" where a reading lies at each of the slot's two boundaries, give or take
    less than half the slot - readings bound the slot, at or just within its boundaries, so
    that only a sliver at its edges is interpolated (a counter read a few seconds after the
    hour measures its hours, and so do readings every few minutes); "interpolated" otherwise
    (a slot inside a longer pair, or one whose readings are near its middle).

    times_ns must be ascending and unique and cumulative never decreasing (clean_readings makes
    both so).
    """
    import numpy as np

    from .compose import empty_slots

    _check_cadence(cadence_minutes)
    if isinstance(max_gap_ns, bool) or not isinstance(max_gap_ns, int) or max_gap_ns <= 0:
        raise ValueError(f"max_gap_ns must be a positive int, got {max_gap_ns!r}")
    t, _, span, difference, eligible = _pairs(times_ns, cumulative, max_gap_ns, unknown)
    heads, tails = _runs(eligible)
    gaps = _gaps(t, heads, tails)
    if not len(heads):
        return Spread(empty_slots(), gaps)
    grid = _Grid.of(cadence_minutes, tz, int(t[heads[0]]), int(t[tails[-1]]))
    shares = _Shares(t, span, difference, eligible, weights)
    source = _Source(t, shares, eligible, grid)
    bounds, across = _inside_runs(t, heads, tails, grid)
    if len(bounds) == 0:
        return Spread(empty_slots(), gaps, source)
    # Per slot boundary: the pair it lies in (at a reading: the one starting there), that
    # pair's share up to it, and how near the nearest reading is. Consecutive boundaries make
    # the slots; those `across` a gap, from one run's last boundary to the next run's first,
    # are worked out too (views are cheaper than picking) and dropped at the end.
    edge = grid.at(bounds)
    pair = grid.pairs_at(t, bounds)
    last = len(t) - 1
    if pair[-1] == last:  # on the last reading: its share is that of the pair ending there
        pair[-1] -= 1
        share, since, length_of_pair = shares.at(edge, pair)
        pair[-1] += 1
        since[-1] = 0
    else:
        share, since, length_of_pair = shares.at(edge, pair)
    on_reading = since == 0
    at = np.flatnonzero(on_reading)
    # A slot runs from its start in pair a, from share `before`, to its end in pair b (at a
    # reading: the pair ending there), up to share `upto`
    a = pair[:-1]
    b = pair[1:] - on_reading[1:]
    b[across] = a[across]
    before, upto = share[:-1], share[1:]
    if len(at):
        before, upto = before.copy(), upto.copy()
        before[at[at < len(before)]] = 0.0
        closing = at[at > 0]
        upto[closing - 1] = shares.difference[pair[closing] - 1]
    # (d_a - before) + the pairs in between + upto; one pair: upto - before. Exact in each
    # pair, summed left to right as the parts are (Spread.parts)
    value = shares.difference[a] - before
    one = _add_between(value, shares.difference, a, b)
    value += upto
    value[one] = upto[one] - before[one]
    # a reading at each boundary, give or take less than half the slot (in integer ns)
    near = np.minimum(since, length_of_pair - since)
    start, end = edge[:-1], edge[1:]
    length = grid.length(start, end)
    if isinstance(length, int):
        good = near < (length + 1) // 2  # 2 x near < length, for whole numbers
        measured = good[:-1] & good[1:]
    else:
        near *= 2
        measured = (near[:-1] < length) & (near[1:] < length)
    if len(across):
        start, end, value, measured = _without(across, start, end, value, measured)
    slots = Slots(start, end, value, np.full(len(start), np.nan), _qualities(measured))
    return Spread(slots, gaps, source)


def respread_window(times_ns: Sequence[int] | I64, new_reading_time: int) -> tuple[int, int]:
    """[start, end) of the time a reading at new_reading_time changes: its two neighbours.

    `times_ns` are the readings without the new one (ascending; the new time may be among them,
    a corrected reading). Spread is pairwise, so only the slots that overlap [start, end) change:
    widen it to whole slots with compose.affected_window(start, end, cadence, tz=tz), spread
    the readings from the last one at or before that window's start through the first one at or
    after its end, take the slots in the window (compose.window) and compose.splice them in.
    The new reading's neighbours stand in for a missing side: before the first reading the
    window starts at the new one, after the last it ends there.

    This holds for the spread of a given cumulative series. Cleaning is not pairwise: a new
    reading that starts or ends a reset, or lifts the level that later readings are held at,
    changes the cumulative series after it - clean again, and spread from there.
    """
    import numpy as np

    t = np.asarray(times_ns, dtype=np.int64)
    when = int(new_reading_time)
    lo = int(np.searchsorted(t, when, side="left"))
    hi = int(np.searchsorted(t, when, side="right"))
    start = int(t[lo - 1]) if lo > 0 else when
    end = int(t[hi]) if hi < len(t) else when
    return start, end


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


def monthly_weights(
    times_ns: Sequence[int] | I64,
    cumulative: Sequence[float] | F64,
    tz: str,
    *,
    max_gap_ns: int | None = None,
    unknown: Sequence[bool] | Bools | None = None,
) -> MonthlyProfile:
    """Monthly factors learned from the meter's own readings: how much more it uses in January.

    The readings are spread linearly over local calendar months of `tz`; per calendar month
    (all Januaries together) the consumption per hour of the time the readings cover, divided
    by the mean of those rates over the months seen. A month never seen, or a meter that used
    nothing, gets 1 (no shape). A first estimate: pairs that straddle months blur the factors
    towards 1 a little, which errs on the side of the linear spread.
    """
    import numpy as np

    gap = (2**63 - 1) if max_gap_ns is None else max_gap_ns
    t, _, span, difference, eligible = _pairs(times_ns, cumulative, gap, unknown)
    pairs = np.flatnonzero(eligible)
    ones = (1.0,) * 12
    if len(pairs) == 0:
        return MonthlyProfile(ones, tz)
    months, edges = _month_edges(np.asarray([t[pairs[0]], t[pairs[-1] + 1]]), tz)
    shares = _Shares(t, span, difference, eligible, None)
    _, slot, start, end, value = _parts(t, shares, pairs, _Grid(0, edges))
    month_of_year = months[slot] % 12
    used = np.bincount(month_of_year, weights=value, minlength=12)
    hours = np.bincount(month_of_year, weights=(end - start) / _NS_PER_HOUR, minlength=12)
    seen = hours > 0
    rate = np.zeros(12)
    rate[seen] = used[seen] / hours[seen]
    mean = float(rate[seen].mean())
    if mean <= 0:
        return MonthlyProfile(ones, tz)
    factors = np.ones(12)
    factors[seen] = rate[seen] / mean
    return MonthlyProfile(tuple(factors.tolist()), tz)


def degree_day_weights(
    temperatures: Mapping[date, float],
    *,
    tz: str,
    base: float = 15.5,
    baseload: float = 0.0,
) -> Weights:
    """Weights from daily mean temperatures: heating degrees below `base`, plus a baseload.

    A local day of `tz` weighs max(base - temperature, 0) + baseload: a heating meter uses in
    proportion to how far the day is below the base temperature (15.5 °C, the UK's customary
    base), and `baseload` stands for what it uses whatever the weather (hot water). Days without
    a temperature, or with one that is not a number, are unknown: a reading pair over such a day
    is spread linearly. Over a pair of warm days only (all weights 0) the spread is linear too.
    """
    import numpy as np

    from .intervals import day_number, localize_wall_ns

    if not (np.isfinite(base) and np.isfinite(baseload) and baseload >= 0):
        raise ValueError("base must be a number and baseload a number >= 0")
    if not temperatures:
        return Weights(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
    numbers = np.asarray([day_number(day) for day in temperatures], dtype=np.int64)
    degrees = np.asarray(list(temperatures.values()), dtype=np.float64)
    first = int(numbers.min())
    weight = np.full(int(numbers.max()) - first + 1, np.nan)
    weight[numbers - first] = np.maximum(base - degrees, 0.0) + baseload
    weight[~np.isfinite(weight)] = np.nan
    days = np.arange(first, first + len(weight) + 1, dtype=np.int64)
    return Weights(localize_wall_ns(days * _NS_PER_DAY, tz), weight)


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


def _check_cadence(cadence_minutes: int) -> None:
    if isinstance(cadence_minutes, bool) or not isinstance(cadence_minutes, int):
        raise TypeError("cadence_minutes must be an int")
    if cadence_minutes <= 0 or DAILY % cadence_minutes:
        raise ValueError(f"cadence must divide a day (or be {DAILY}), got {cadence_minutes}")


class _Grid:
    """Slot boundaries: k x step on UTC (step > 0), or the edges array (step 0), slot k = k-th.

    first(x) is the slot an instant lies in, last(x) the one the instant just before x lies in
    (where a pair ending at x ends), at(k) the start of slot k (the end of slot k - 1).
    """

    __slots__ = ("_edges", "_step")

    def __init__(self, step: int, edges: I64 | None = None) -> None:
        self._step = step
        self._edges = edges

    @classmethod
    def of(cls, cadence_minutes: int, tz: str, lo: int, hi: int) -> _Grid:
        """The slots of a cadence; local days from the one `lo` lies in through `hi`'s."""
        import numpy as np

        from .intervals import local_days, localize_wall_ns

        if cadence_minutes < DAILY:
            return cls(cadence_minutes * _NS_PER_MINUTE)
        days = local_days(np.asarray([lo, hi], dtype=np.int64), tz)
        numbers = np.arange(int(days[0]), int(days[1]) + 2, dtype=np.int64)
        return cls(0, localize_wall_ns(numbers * _NS_PER_DAY, tz))

    def first(self, x: I64) -> I64:
        import numpy as np

        if self._step:
            return x // self._step
        assert self._edges is not None
        return np.searchsorted(self._edges, x, side="right").astype(np.int64) - 1

    def last(self, x: I64) -> I64:
        import numpy as np

        if self._step:
            return (x - 1) // self._step
        assert self._edges is not None
        return np.searchsorted(self._edges, x, side="left").astype(np.int64) - 1

    def at(self, k: I64) -> I64:
        if self._step:
            return k * self._step
        assert self._edges is not None
        return self._edges[k]

    def length(self, start: I64, end: I64) -> I64 | int:
        """The slots' lengths: one number on the UTC grid."""
        return self._step or end - start

    def pairs_at(self, t: I64, numbers: I64) -> I64:
        """Per slot boundary (ascending numbers), the last reading at or before it.

        On the UTC grid each reading's first boundary at or after it is ceil(t / step), and a
        boundary's reading is the last one whose first boundary is not after it: a step
        function, made in one np.repeat over the boundaries - cheaper than a binary search
        for each. Local days, or readings spread over far more slots than there are (a meter
        read once in years), search.
        """
        import numpy as np

        step = self._step
        if step and len(numbers):
            first = -(-t // step)
            low, high = int(first[0]), int(numbers[-1])
            if high - low <= 4 * (len(t) + len(numbers)) + 1024:
                first = np.minimum(first, high + 1)
                counts = np.diff(first, append=high + 1)
                table = np.repeat(np.arange(len(t), dtype=np.int64), counts)
                return table[numbers - low]
        return np.searchsorted(t, self.at(numbers), side="right") - 1


class _Shares:
    """Each pair's difference, and its cumulative share up to any instant within it.

    The share of pair i up to x is a whole number of ulps of d = cumulative[i + 1] -
    cumulative[i] (np.spacing(d), a power of two): rint(elapsed x u / length) with u = d / ulp
    the whole number of ulps in d, elapsed the time since the pair's start, length the pair's.
    elapsed < length keeps it below u (at the pair's end the share is d itself, which callers
    take from `difference`), and it never goes down as x goes on. Where a profile (Weights)
    shapes the pair, rint(fraction x u) with the profile's fraction.
    """

    __slots__ = ("_long", "_per_ns", "_span", "_start", "_weights", "difference", "ulp")

    def __init__(
        self, t: I64, span: I64, difference: F64, eligible: Bools, weights: Weights | None
    ) -> None:
        self._start = t[:-1]
        self._span = span
        self.difference = difference
        self.ulp = _ulp(difference)
        self._per_ns = difference / self.ulp
        self._per_ns /= span
        # past 2**53 ns (104 days) the time is rounded as a float, and the product may reach u
        self._long = bool(len(span)) and int(span.max()) >= 2**53
        self._weights = None
        if weights is not None and len(weights.weight):
            self._weights = _Profile(weights, t[:-1], t[1:], eligible)

    def at(self, x: I64, pair: I64) -> tuple[F64, I64, I64]:
        """The share of each `pair` up to the instant x within it, since and length in ns.

        The time since the pair's start and the pair's length tell how near x is to a reading.
        """
        import numpy as np

        since = x - self._start[pair]
        units = np.rint(since.astype(np.float64) * self._per_ns[pair])
        if self._long:
            np.minimum(units, self.difference[pair] / self.ulp[pair], out=units)
        if self._weights is not None:
            some, fraction = self._weights.shape(x, pair)
            mine = pair[some]
            units[some] = np.rint(fraction * (self.difference[mine] / self.ulp[mine]))
        units *= self.ulp[pair]
        return units, since, self._span[pair]


def _parts(t: I64, shares: _Shares, pairs: I64, grid: _Grid) -> tuple[I64, I64, I64, I64, F64]:
    """Each pair's difference shared out over the slots it overlaps: pair, slot, start, end, value.

    A pair's parts are its slots' stretches: from the slot's start (the pair's start for the
    first) to the slot's end (the pair's end for the last), worth the difference of the pair's
    cumulative shares at the two (exact: both are on the grid of the difference's ulp).
    """
    import numpy as np

    lo, hi = t[pairs], t[pairs + 1]
    k0 = grid.first(lo)
    count = grid.last(hi) - k0 + 1
    total = int(count.sum())
    ends = np.cumsum(count)
    heads = ends - count
    slot = np.repeat(k0 - heads, count)
    slot += np.arange(total, dtype=np.int64)
    start = grid.at(slot)
    end = grid.at(slot + 1)
    start[heads] = lo
    end[ends - 1] = hi
    owner = np.repeat(pairs, count)
    share, _, _ = shares.at(end, owner)
    share[ends - 1] = shares.difference[pairs]  # the whole difference at the pair's end
    value = share.copy()
    value[1:] -= share[:-1]
    value[heads] = share[heads]
    return owner, slot, start, end, value


def _runs(eligible: Bools) -> tuple[I64, I64]:
    """Runs of consecutive spread pairs: pairs heads[j] .. tails[j] - 1, readings to tails[j]."""
    import numpy as np

    flags = np.empty(len(eligible) + 2, dtype=bool)
    flags[0] = flags[-1] = False
    flags[1:-1] = eligible
    edges = np.flatnonzero(flags[1:] != flags[:-1])
    return edges[0::2], edges[1::2]


def _inside_runs(t: I64, heads: I64, tails: I64, grid: _Grid) -> tuple[I64, I64]:
    """The slots that runs of consecutive spread pairs cover completely, by their boundaries.

    Returns the numbers of the slot boundaries, run after run (a run's slots k .. m have the
    boundaries k .. m + 1), and the positions of the runs' last boundaries but the last: from
    there to the next boundary is no slot but the way across a gap.
    """
    import numpy as np

    first = grid.first(t[heads] - 1) + 1  # the first slot starting at or after the run's start
    last = grid.last(t[tails] + 1) - 1  # the last slot ending at or before the run's end
    keep = last >= first
    first, last = first[keep], last[keep]
    count = last - first + 2  # boundaries
    total = int(count.sum())
    closing = np.cumsum(count) - 1
    bounds = np.repeat(first - (closing + 1 - count), count)
    bounds += np.arange(total, dtype=np.int64)
    return bounds, closing[:-1]


def _without[T: np.generic](across: I64, *arrays: npt.NDArray[T]) -> list[npt.NDArray[T]]:
    """The arrays without their entries at the positions `across` (ascending).

    A few gaps are cut out by joining the stretches between them (one copy), many by a mask.
    """
    import numpy as np

    if len(across) > 64:
        keep = np.ones(len(arrays[0]), dtype=bool)
        keep[across] = False
        return [array[keep] for array in arrays]
    cuts = across.tolist()
    lows = [0, *(cut + 1 for cut in cuts)]
    highs = [*cuts, len(arrays[0])]
    return [
        np.concatenate([array[lo:hi] for lo, hi in zip(lows, highs, strict=True)])
        for array in arrays
    ]


def _add_between(value: F64, difference: F64, a: I64, b: I64) -> I64:
    """Add to `value` the differences of the pairs after a and before b, left to right.

    Usually there are none or one (a reading or two in a slot): one pass per place over the
    slots with that many. Many readings in a slot (every minute into hours) are summed by
    np.add.reduceat instead. Returns where a and b are one pair.
    """
    import numpy as np

    apart = b - a
    one = np.flatnonzero(apart == 0)
    deepest = int(apart.max()) - 1
    if deepest <= 8:
        for place in range(1, deepest + 1):
            some = np.flatnonzero(apart > place)
            value[some] += difference[a[some] + place]
        return one
    some = np.flatnonzero(apart > 1)
    bounds = np.empty(2 * len(some), dtype=np.int64)
    bounds[0::2] = a[some] + 1
    bounds[1::2] = b[some]
    value[some] += np.add.reduceat(difference, bounds)[0::2]
    return one


def _ulp(x: F64) -> F64:
    """np.spacing of numbers >= 0: the power of two of their exponent, less 52, from the bits.

    (np.spacing itself is a few times slower.) Numbers too small for that - below 2**-970,
    where the spacing is no longer 2**(exponent - 52) - go to np.spacing.
    """
    import numpy as np

    exponent = x.view(np.int64) & 0x7FF0000000000000
    ulp = (exponent - (52 << 52)).view(np.float64)
    tiny = exponent <= (52 << 52)
    if tiny.any():
        ulp[tiny] = np.spacing(x[tiny])
    return ulp


class _Profile:
    """A Weights profile read as each pair's share of its weight up to an instant.

    The profile's integral is a running sum of weight x hours at its edges, read at any instant
    by adding the part of the piece it lies in. Read with the same operations at a pair's start,
    within it and at its end, it never goes down, so the shares never do, and at the pair's end
    it is the pair's own total: the fraction is 1 exactly there. A pair that the profile does not
    cover completely with known weights, or whose weight is 0, keeps its linear share.
    """

    __slots__ = ("_edges", "_integral", "_last", "_rate", "_start", "_whole", "shaped")

    def __init__(self, weights: Weights, lo: I64, hi: I64, eligible: Bools) -> None:
        import numpy as np

        edges, weight = weights.edges, weights.weight
        unknown = np.isnan(weight)
        self._edges = edges
        self._rate = np.where(unknown, 0.0, weight)
        self._integral = np.zeros(len(edges), dtype=np.float64)
        np.cumsum(self._rate * (np.diff(edges) / _NS_PER_HOUR), out=self._integral[1:])
        self._last = len(weight) - 1
        bad = np.zeros(len(edges), dtype=np.int64)
        np.cumsum(unknown, out=bad[1:])
        first = np.clip(np.searchsorted(edges, lo, side="right") - 1, 0, self._last)
        final = np.clip(np.searchsorted(edges, hi, side="left") - 1, 0, self._last)
        self._start = self._read(lo)
        self._whole = self._read(hi) - self._start
        self.shaped = (
            eligible
            & (lo >= edges[0])
            & (hi <= edges[-1])
            & (bad[final + 1] == bad[first])
            & (self._whole > 0)
        )

    def _read(self, x: I64) -> F64:
        import numpy as np

        piece = np.clip(np.searchsorted(self._edges, x, side="right") - 1, 0, self._last)
        offset = (x - self._edges[piece]) / _NS_PER_HOUR
        return self._integral[piece] + self._rate[piece] * offset

    def shape(self, x: I64, pair: I64) -> tuple[I64, F64]:
        """Where in `pair` the profile shapes the pair, and its fraction of it up to x there."""
        import numpy as np

        some = np.flatnonzero(self.shaped[pair])
        mine = pair[some]
        share = (self._read(x[some]) - self._start[mine]) / self._whole[mine]
        return some, np.clip(share, 0.0, 1.0)


def _month_edges(span: I64, tz: str) -> tuple[I64, I64]:
    """Local months of `tz` from the one span[0] lies in through span[-1]'s, and their edges.

    Months are counted from January 1970 (month % 12 = 0 is January); edges has one more entry
    than months: the start of the month after the last.
    """
    import numpy as np

    from .intervals import local_wall_ns, localize_wall_ns

    wall = local_wall_ns(np.asarray([span[0], span[-1]], dtype=np.int64), tz)
    first, last = wall.view("M8[ns]").astype("M8[M]").astype(np.int64).tolist()
    months = np.arange(first, last + 2, dtype=np.int64)
    starts = months.astype("M8[M]").astype("M8[ns]").view(np.int64)
    return months[:-1], localize_wall_ns(starts, tz)


def _pairs(
    times_ns: Sequence[int] | I64,
    cumulative: Sequence[float] | F64,
    max_gap_ns: int,
    unknown: Sequence[bool] | Bools | None,
) -> tuple[I64, F64, I64, F64, Bools]:
    """Checked readings, and per consecutive pair: length, difference, whether it is spread.

    A pair is spread when its readings are close enough (max_gap_ns) and it is not unknown.
    """
    import numpy as np

    t = np.asarray(times_ns, dtype=np.int64)
    c = np.asarray(cumulative, dtype=np.float64)
    if t.ndim != 1 or c.shape != t.shape:
        raise ValueError("times_ns and cumulative must be 1-d and of the same length")
    span = t[1:] - t[:-1]
    if len(span) and span.min() <= 0:
        raise ValueError("reading times must be ascending and unique")
    if not np.isfinite(c).all():
        raise ValueError("cumulative readings must be finite")
    difference = c[1:] - c[:-1]
    if len(difference) and difference.min() < 0:
        raise ValueError("cumulative readings must never decrease: clean_readings first")
    eligible = span <= max_gap_ns
    if unknown is not None:
        flags = np.asarray(unknown, dtype=bool)
        if flags.shape != t.shape:
            raise ValueError("unknown must have one flag per reading")
        eligible &= ~flags[1:]
    return t, c, span, difference, eligible


def _gaps(t: I64, heads: I64, tails: I64) -> list[tuple[int, int]]:
    """The stretches between readings that are not spread: between the runs of spread pairs.

    Before the first run and after the last, when the readings go on there; with no run at
    all, from the first reading to the last (when there are two).
    """
    if len(t) < 2:
        return []
    starts = [int(t[tail]) for tail in tails.tolist()]
    ends = [int(t[head]) for head in heads.tolist()]
    if not len(heads) or heads[0] > 0:
        starts.insert(0, int(t[0]))
    else:
        ends.pop(0)
    if len(ends) < len(starts):
        ends.append(int(t[-1]))
    return [(lo, hi) for lo, hi in zip(starts, ends, strict=True) if hi > lo]


def _qualities(measured: Bools) -> npt.NDArray[np.object_]:
    """Quality labels: one object per label (as compose and intervals.repeat make them)."""
    from .intervals import repeat

    n = len(measured)
    many = int(measured.sum()) * 2 >= n
    labels = repeat("measured" if many else "interpolated", n)
    if many:
        labels[~measured] = "interpolated"
    else:
        labels[measured] = "measured"
    return labels
