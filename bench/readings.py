"""Benchmark of meters from readings: 27 counters x 4 years of hourly readings -> hourly slots.

Synthetic, seeded data, as a Home Assistant `total_increasing` sensor gives it: a reading a
few seconds to a minute and a half after each hour, in kWh to the Wh, with jitter (a reading a
Wh below the one before), two resets per meter (the counter restarts from 0), readings lost
here and there and a few outages from a few hours to days, some longer than max_gap (6 hours)
and left missing. Every third meter is a five-digit counter that starts near 99999 and wraps
within the first weeks.

* spread_s: clean_readings + spread to hourly slots of all 27 meters (median of --repeat runs);
* vs_naive: the same cleaning and spreading as a per-row pure-Python reference (a loop over
  the readings, a loop over the slots of each pair, dicts for the slots) on the first
  --naive-days days of every meter (with a wrap, a reset and an outage in them), scaled per
  reading, median of --repeat runs that alternate with the vectorised ones (a busy machine
  slows both alike; the garbage collector is off during both, as timeit has it); it agrees
  with the vectorised result on that slice to 1e-9 (slot for slot: start, end, value,
  quality; the cumulative series) and exactly in the resets and gaps it finds;
* peak_rss_mb: resource.getrusage; rows: readings in (slots out are printed above).

Last line: JSON. Usage: .venv/bin/python bench/readings.py [--repeat N] [--naive-days D]
"""

from __future__ import annotations

import argparse
import bisect
from collections.abc import Callable
from datetime import UTC, datetime
import gc
import json
import math
from pathlib import Path
import resource
import sys
import time
from typing import Any

import numpy as np

# Run as a script, bench/ would come first on sys.path and its statistics.py would shadow the
# standard library module of that name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from custom_components.meterlake.analytics import readings as rd  # noqa: E402

TZ = "Europe/London"
METERS = 27
START = datetime(2021, 1, 1, tzinfo=UTC)
DAYS = 4 * 365 + 1
HOURS = DAYS * 24  # 35,064 readings per meter before losses
HOUR = 3_600_000_000_000
T0 = int(START.timestamp()) * 1_000_000_000
MAX_GAP = 6 * HOUR
TOLERANCE = 0.002  # kWh: two Wh of jitter
ROLLOVER = 100_000.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------ data


def meter_readings(seed: int, wraps: bool) -> tuple[np.ndarray, np.ndarray]:
    """One meter's readings (times in ns, counter in kWh), before cleaning."""
    rng = np.random.default_rng(seed)
    times = T0 + HOUR * np.arange(HOURS, dtype=np.int64)
    times += rng.integers(1_000_000_000, 90_000_000_000, HOURS)  # 1 to 90 s after the hour
    used = rng.gamma(2.0, 0.3, HOURS)
    used[0] = 0.0
    # a five-digit counter that wraps within the first weeks; the others start anywhere
    start = 99_700.0 if wraps else float(rng.uniform(0, 5000))
    counter = start + np.cumsum(used)
    # two resets: the counter restarts from 0 (one in the first weeks, after the wrap, and
    # one later)
    for at in (int(rng.integers(700, 1300)), int(rng.integers(10_000, HOURS - 10))):
        counter[at:] -= counter[at - 1] - rng.uniform(0, 0.2)
    if wraps:
        counter = np.where(counter >= ROLLOVER, counter - ROLLOVER, counter)
    counter = np.round(counter, 3)
    # jitter: now and then a reading a Wh below the one before
    jitter = np.flatnonzero(rng.random(HOURS) < 0.002)
    jitter = jitter[jitter > 0]
    counter[jitter] = counter[jitter - 1] - 0.001
    keep = rng.random(HOURS) >= 0.005  # lost readings
    # outages: one in the first weeks longer than max_gap, then a few of 3 hours to 5 days
    for begin, length in [(int(rng.integers(300, 1200)), int(rng.integers(8, 80)))] + [
        (int(rng.integers(1200, HOURS - 200)), int(rng.integers(3, 120))) for _ in range(4)
    ]:
        keep[begin : begin + length] = False
    return times[keep], counter[keep]


def all_meters() -> list[tuple[np.ndarray, np.ndarray, float | None]]:
    out = []
    for meter in range(METERS):
        wraps = meter % 3 == 0
        times, values = meter_readings(1000 + meter, wraps)
        out.append((times, values, ROLLOVER if wraps else None))
    return out


# ----------------------------------------------------------------------------- vectorised


def vectorised(meters: list[tuple[np.ndarray, np.ndarray, float | None]]) -> list[Any]:
    results = []
    for times, values, rollover in meters:
        cleaned = rd.clean_readings(times, values, tolerance=TOLERANCE, rollover=rollover)
        result = rd.spread(
            cleaned.times,
            cleaned.cumulative,
            cadence_minutes=60,
            tz=TZ,
            max_gap_ns=MAX_GAP,
            unknown=cleaned.unknown,
        )
        results.append((cleaned, result))
    return results


# ---------------------------------------------------------------------------------- naive


def naive_clean(
    times: list[int], values: list[float], tolerance: float, rollover: float | None
) -> tuple[list[int], list[float], list[tuple[int, float, float, str]]]:
    """clean_readings, one reading at a time (no new-meter markers): times, cumulative, resets."""
    last: dict[int, float] = {}
    for when, value in zip(times, values, strict=True):
        if math.isfinite(value):
            last[when] = value
    ordered = sorted(last)
    cumulative: list[float] = []
    resets: list[tuple[int, float, float, str]] = []
    level = offset = 0.0
    for i, when in enumerate(ordered):
        value = last[when]
        if i == 0:
            level, offset = value, 0.0
        elif level - value > tolerance:
            previous = cumulative[-1]
            if (
                rollover is not None
                and 0 <= value < rollover
                and level < rollover
                and level - value > rollover / 2
            ):
                offset = previous + (rollover - level)
                resets.append((when, level, value, "wrap"))
            else:
                offset = previous - min(value, 0.0)
                resets.append((when, level, value, "reset"))
            level = value
        elif value < level:
            resets.append((when, level, value, "jitter"))
        else:
            level = value
        total = level + offset
        if cumulative and total < cumulative[-1]:
            total = cumulative[-1]
        cumulative.append(total)
    return ordered, cumulative, resets


def naive_spread(
    times: list[int], cumulative: list[float], step: int, max_gap: int
) -> tuple[list[tuple[int, int, float, str]], list[tuple[int, int]]]:
    """spread on a UTC grid of `step` ns, one pair and one slot at a time: slots, gaps."""
    slots: dict[int, list[float]] = {}
    gaps: list[tuple[int, int]] = []
    for i in range(len(times) - 1):
        a, b = times[i], times[i + 1]
        if b - a > max_gap:
            if gaps and gaps[-1][1] == a:
                gaps[-1] = (gaps[-1][0], b)
            else:
                gaps.append((a, b))
            continue
        difference = cumulative[i + 1] - cumulative[i]
        grid = math.ulp(difference)
        per_ns = difference / grid / (b - a)
        before = 0.0
        k = a // step
        while k * step < b:
            lo, hi = max(k * step, a), min((k + 1) * step, b)
            share = difference if hi == b else round((hi - a) * per_ns) * grid
            slot = slots.setdefault(k, [0.0, 0])
            slot[0] += share - before
            slot[1] += hi - lo
            before = share
            k += 1
    out = []
    for k in sorted(slots):
        value, covered = slots[k]
        if covered != step:
            continue
        start, end = k * step, (k + 1) * step
        near = [nearest(times, start), nearest(times, end)]
        quality = "measured" if all(2 * d < step for d in near) else "interpolated"
        out.append((start, end, value, quality))
    return out, gaps


def nearest(times: list[int], x: int) -> int:
    at = bisect.bisect_left(times, x)
    candidates = [abs(times[j] - x) for j in (at - 1, at) if 0 <= j < len(times)]
    return min(candidates)


def naive_all(meters: list[tuple[np.ndarray, np.ndarray, float | None]]) -> list[Any]:
    out = []
    for times, values, rollover in meters:
        ordered, cumulative, resets = naive_clean(
            times.tolist(), values.tolist(), TOLERANCE, rollover
        )
        slots, gaps = naive_spread(ordered, cumulative, HOUR, MAX_GAP)
        out.append((cumulative, resets, slots, gaps))
    return out


def check(vector: list[Any], naive: list[Any]) -> float:
    """The largest difference between the two; raises if they differ in anything else."""
    worst = 0.0
    for (cleaned, result), (cumulative, resets, slots, gaps) in zip(vector, naive, strict=True):
        assert len(cumulative) == len(cleaned.cumulative)
        got = [(x.time, x.before, x.after, x.kind) for x in cleaned.resets]
        assert got == resets, (got[:3], resets[:3])
        assert result.gaps == gaps
        worst = max(worst, float(np.max(np.abs(cleaned.cumulative - np.asarray(cumulative)))))
        s = result.slots
        assert s.start.tolist() == [row[0] for row in slots]
        assert s.end.tolist() == [row[1] for row in slots]
        assert s.quality.tolist() == [row[3] for row in slots]
        gap = np.abs(s.value - np.asarray([row[2] for row in slots]))
        worst = max(worst, float(gap.max(initial=0.0)))
    assert worst <= 1e-9, worst
    return worst


def timed[T](work: Callable[[], T]) -> tuple[float, T]:
    """Seconds one call takes, and what it made; the garbage collector is off during the call
    (as timeit has it), for the vectorised and the naive side alike.
    """
    gc.collect()
    gc.disable()
    try:
        began = time.perf_counter()
        made = work()
        return time.perf_counter() - began, made
    finally:
        gc.enable()


def median(values: list[float]) -> float:
    return float(np.median(values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--naive-days", type=int, default=60)
    args = parser.parse_args()
    repeat = max(1, args.repeat)
    naive_days = min(max(2, args.naive_days), DAYS)

    meters = all_meters()
    rows = sum(len(times) for times, _, _ in meters)
    print(f"input: {rows:,} readings ({METERS} meters x ~{HOURS:,} hours)")
    print(f"rss after building the inputs: {peak_rss_mb():.0f} MB")

    # the naive reference on the first naive_days days of every meter
    cut = T0 + naive_days * 24 * HOUR
    sliced = [(t[t < cut], v[t < cut], rollover) for t, v, rollover in meters]
    sliced_rows = sum(len(t) for t, _, _ in sliced)

    # Runs of the two alternate, so that whatever else the machine is doing slows both alike
    results = vectorised(meters)
    naive = naive_all(sliced)
    runs: list[float] = []
    naive_runs: list[float] = []
    for _ in range(repeat):
        # (what a run makes is kept until the next one is done, as a caller would keep it)
        seconds, results = timed(lambda: vectorised(meters))
        runs.append(seconds)
        seconds, naive = timed(lambda: naive_all(sliced))
        naive_runs.append(seconds)
    spread_s = median(runs)
    slots = sum(len(result.slots) for _, result in results)
    resets: dict[str, int] = {}
    for cleaned, _ in results:
        for reset in cleaned.resets:
            resets[reset.kind] = resets.get(reset.kind, 0) + 1
    gaps = sum(len(result.gaps) for _, result in results)
    measured = sum(int((result.slots.quality == "measured").sum()) for _, result in results)
    print(
        f"clean + spread: median {spread_s * 1000:.1f} ms, best {min(runs) * 1000:.1f} ms over "
        f"{repeat} runs; {slots:,} hourly slots ({measured:,} measured), {gaps} gaps left "
        f"missing; resets by kind {dict(sorted(resets.items()))}"
    )
    # every pair's shares add up to its difference exactly
    for cleaned, result in results[:3]:
        sums = np.zeros(len(cleaned.times) - 1)
        parts = result.parts()
        np.add.at(sums, parts.pair, parts.value)
        pairs = np.unique(parts.pair)
        assert np.array_equal(sums[pairs], np.diff(cleaned.cumulative)[pairs])

    naive_s = median(naive_runs)
    worst = check(vectorised(sliced), naive)
    naive_scaled = naive_s * rows / sliced_rows
    vs_naive = naive_scaled / spread_s
    print(
        f"naive: median {naive_s * 1000:.0f} ms of {repeat} for {naive_days} days ({sliced_rows:,} "
        f"readings) -> {naive_scaled:.2f} s scaled to {rows:,}; agrees to {worst:.1e} -> "
        f"{vs_naive:.0f}x"
    )
    peak = peak_rss_mb()
    print(f"peak rss: {peak:.0f} MB")
    print(
        json.dumps(
            {
                "rows": rows,
                "spread_s": round(spread_s, 4),
                "vs_naive": round(vs_naive, 1),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
