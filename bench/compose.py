"""Benchmark of composed meters: 12 half-hourly physical meters x 4 years through 15 composed ones.

6 master meters (each an old and a new physical meter split at a replacement date) and 9 virtual
meters in chains up to 3 virtual levels above the masters (virtual of virtual of virtual of
master of physical), one of them in m³ with a kWh input converted with the gas formula and
converted back to kWh further down the chain. Every composed meter also gets its cumulative
reading. Synthetic, seeded data: the house meter measures the heat pump and the EV charger too,
the gas meter the boiler; every meter has its own 1 % error, absent and unknown slots and a few
estimated ones, so "everything else" and the fireplace dip below 0 now and then and are clipped.

* full_s: full recompute of all 15 composed meters and their readings from the 12 physical
  ones (median of --repeat runs; inputs in new Slots objects each run, so nothing worked out
  on an earlier run is reused);
* incremental_ms: one new half-hour appended to one physical input, then affected_window (whole
  local days, for the clip accounting), the inputs sliced to it, the whole chain recomputed for
  that window, readings continued from the stored ones (median). Checked against a full
  recompute, slot for slot; splicing the window into full in-memory series is timed apart;
* vs_naive: the same composition as a per-row pure-Python reference (dicts keyed by slot start,
  reading the same Slots) on --naive-days whole local days around a replacement date, scaled
  per input row, median of 5, in the same run; both agree to 1e-9. Per-row Python gets slower
  per row as the data grows (on all 1461 days it is ~1.5x the 60-day figure), so the scaled
  slice understates it;
* peak_rss_mb: resource.getrusage.

Last line: JSON. Usage: .venv/bin/python bench/compose.py [--repeat N] [--naive-days D]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
import json
import math
from pathlib import Path
import resource
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

# Run as a script, bench/ would come first on sys.path and its statistics.py would shadow the
# standard library module of that name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from custom_components.meterlake.analytics import compose as c  # noqa: E402

TZ = "Europe/London"
START = datetime(2021, 1, 1, tzinfo=UTC)
DAYS = 4 * 365 + 1
SLOTS = DAYS * 48  # 70,128 half-hours per physical meter
HALF_HOUR = 1_800_000_000_000
T0 = int(START.timestamp()) * 1_000_000_000
CV, Z = 39.5, 1.02264
GAS = {"calorific_value": CV, "volume_correction": Z}

# physical meter -> (what it measures, rate per unit); each master is an old and a new meter
PHYSICAL = {
    "house_old": ("house", 0.25),
    "house_new": ("house", 0.27),
    "heat_pump_old": ("heat_pump", 0.25),
    "heat_pump_new": ("heat_pump", 0.27),
    "ev_old": ("ev", 0.25),
    "ev_new": ("ev", 0.27),
    "gas_old": ("gas", 0.7),  # m³
    "gas_new": ("gas", 0.72),  # m³
    "boiler_old": ("boiler", 0.07),  # kWh of heat
    "boiler_new": ("boiler", 0.07),
    "solar_old": ("solar", 0.0),
    "solar_new": ("solar", 0.0),
}
MASTERS = {  # master -> (old, new, replacement day)
    "house": ("house_old", "house_new", 150),
    "heat_pump": ("heat_pump_old", "heat_pump_new", 400),
    "ev": ("ev_old", "ev_new", 650),
    "gas": ("gas_old", "gas_new", 900),
    "boiler": ("boiler_old", "boiler_new", 1100),
    "solar": ("solar_old", "solar_new", 1300),
}
# virtual -> (base, [(sign, term, conversion)]); conversion: None, "kwh_to_m3", "m3_to_kwh"
VIRTUALS: dict[str, tuple[str, list[tuple[int, str, str | None]]]] = {
    "everything_else": ("house", [(-1, "heat_pump", None), (-1, "ev", None)]),
    "fireplace_m3": ("gas", [(-1, "boiler", "kwh_to_m3")]),
    "house_total": ("house", [(1, "solar", None)]),
    "house_no_heat": ("house_total", [(-1, "heat_pump", None)]),
    "house_base": ("house_no_heat", [(-1, "ev", None)]),
    "other_energy": ("everything_else", [(1, "fireplace_m3", "m3_to_kwh")]),
    "all_but_transport": ("other_energy", [(1, "boiler", None), (1, "heat_pump", None)]),
    "flexible": ("heat_pump", [(1, "ev", None)]),
    "house_not_flexible": ("house", [(-1, "flexible", None)]),
}
COMPOSED = [*MASTERS, *VIRTUALS]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------ data


def physical_inputs(seed: int) -> dict[str, c.Slots]:
    """SLOTS + 1 half-hours per meter; the house's new meter lacks the last (it arrives late).

    The house meter measures the heat pump and the EV charger too, the gas meter the boiler and
    a fireplace; each meter reads its share with its own 1 % error and 1 Wh (1 L) resolution,
    so "everything else" and the fireplace dip below 0 now and then and are clipped.
    """
    rng = np.random.default_rng(seed)
    n = SLOTS + 1
    start = T0 + HALF_HOUR * np.arange(n, dtype=np.int64)
    other = rng.gamma(2.0, 0.2, n)
    heat_pump = rng.gamma(2.0, 0.15, n)
    ev = np.where(np.repeat(rng.random(n // 6 + 1) < 0.04, 6)[:n], 3.5, 0.0)  # sessions
    boiler = rng.gamma(2.0, 0.2, n)
    fireplace = np.where(rng.random(n) < 0.03, 0.1, 0.0)
    truth = {
        "house": other + heat_pump + ev,
        "heat_pump": heat_pump,
        "ev": ev,
        "boiler": boiler,
        "gas": boiler * 3.6 / (Z * CV) + fireplace,
        "solar": rng.gamma(1.0, 0.3, n),
    }
    out = {}
    for name, (measures, rate) in PHYSICAL.items():
        value = np.round(truth[measures] * rng.normal(1.0, 0.01, n), 3)
        value[rng.random(n) < 0.0002] = np.nan  # known to be unknown
        rates = np.round(rate + rng.normal(0, 0.01, n), 4)
        # one label object per label, as pyarrow's deduplicated strings and normalize give
        quality = np.empty(n, dtype=object)
        quality.fill("measured")
        quality[rng.random(n) < 0.001] = "estimated"
        keep = rng.random(n) >= 0.0005  # absent slots
        keep[-1] = name != "house_new"
        out[name] = c.Slots(
            start[keep], start[keep] + HALF_HOUR, value[keep], rates[keep], quality[keep]
        )
    return out


def fresh(physical: dict[str, c.Slots]) -> dict[str, c.Slots]:
    """The same arrays in new Slots objects: no memo (quality ranks, slot numbers) carried over."""
    return {
        name: c.Slots(s.start, s.end, s.value, s.rate, s.quality) for name, s in physical.items()
    }


def replacement(day: int) -> int:
    return T0 + day * 48 * HALF_HOUR


# ----------------------------------------------------------------------------- vectorised


@dataclass
class Composed:
    slots: dict[str, c.Slots]
    clipped: dict[str, Any]
    reading: dict[str, np.ndarray]


def term_slots(name: str, conversion: str | None, slots: dict[str, c.Slots]) -> c.Slots:
    if conversion == "kwh_to_m3":
        return c.convert_slots(slots[name], "kWh", "m³", **GAS)
    if conversion == "m3_to_kwh":
        return c.convert_slots(slots[name], "m³", "kWh", **GAS)
    return slots[name]


def compose_all(
    physical: dict[str, c.Slots],
    *,
    cut: Callable[[c.Slots], c.Slots] = lambda s: s,
    offsets: dict[str, float] | None = None,
) -> Composed:
    """All 15 composed meters from the physical ones (each passed through `cut` first)."""
    slots: dict[str, c.Slots] = {}
    clipped: dict[str, Any] = {}
    for name, (old, new, day) in MASTERS.items():
        split = replacement(day)
        slots[name] = c.master(
            [
                c.Period(None, split, (cut(physical[old]),)),
                c.Period(split, None, (cut(physical[new]),)),
            ]
        )
    for name, (base, terms) in VIRTUALS.items():
        result = c.virtual(
            slots[base],
            [(sign, term_slots(term, conv, slots)) for sign, term, conv in terms],
            tz=TZ,
        )
        slots[name] = result.slots
        clipped[name] = result.clipped
    offsets = offsets or {}
    reading = {name: c.meter_reading(s, offset=offsets.get(name, 0.0)) for name, s in slots.items()}
    return Composed(slots, clipped, reading)


def incremental(
    physical: dict[str, c.Slots], stored: Composed, new_row: c.Slots
) -> tuple[dict[str, c.Slots], Composed, tuple[int, int]]:
    """Append one half-hour to house_new and recompute the affected window of all 15 meters.

    Readings continue from the stored reading before the window. What comes back is the window
    only: the rows the Home Assistant layer writes (merge() puts it into full series).
    """
    physical = dict(physical)
    physical["house_new"] = c.splice(
        physical["house_new"], new_row, int(new_row.start[0]), int(new_row.end[0])
    )
    lo, hi = c.affected_window(
        int(new_row.start[0]), int(new_row.end[0]), 30, tz=TZ, whole_local_days=True
    )
    offsets = {}
    for name in COMPOSED:
        at = int(np.searchsorted(stored.slots[name].start, lo))
        offsets[name] = float(stored.reading[name][at - 1]) if at else 0.0
    part = compose_all(physical, cut=lambda s: c.window(s, lo, hi), offsets=offsets)
    return physical, part, (lo, hi)


def merge(stored: Composed, part: Composed, lo: int, hi: int) -> Composed:
    """The recomputed window spliced into the stored full series (readings after it shifted)."""
    slots = {}
    reading = {}
    for name in COMPOSED:
        before = stored.slots[name]
        a, b = np.searchsorted(before.start, [lo, hi]).tolist()
        slots[name] = c.splice(before, part.slots[name], lo, hi)
        tail = stored.reading[name][b:]
        if len(tail):  # readings after the window move by what the window changed
            last = part.reading[name][-1] if len(part.reading[name]) else stored.reading[name][a]
            tail = tail + (last - stored.reading[name][b - 1])
        reading[name] = np.concatenate([stored.reading[name][:a], part.reading[name], tail])
    return Composed(slots, part.clipped, reading)


# ---------------------------------------------------------------------------------- naive


RANK = {"measured": 0, "corrected": 1, "interpolated": 2, "estimated": 3}
NAMES = ["measured", "corrected", "interpolated", "estimated"]


def naive_all(inputs: dict[str, c.Slots], offsets: dict[str, float]) -> dict[str, Any]:
    """The composition spelled out row by row with dicts, floats and zoneinfo.

    It reads the same Slots as the vectorised code, as Python rows.
    """
    zone = ZoneInfo(TZ)
    tables = {
        name: {
            row[0]: row
            for row in zip(
                s.start.tolist(),
                s.end.tolist(),
                s.value.tolist(),
                s.rate.tolist(),
                s.quality.tolist(),
                strict=True,
            )
        }
        for name, s in inputs.items()
    }
    series: dict[str, dict[int, tuple[int, int, float, float, str]]] = {}
    for name, (old, new, day) in MASTERS.items():
        split = replacement(day)
        out = {}
        for start in sorted(set(tables[old]) | set(tables[new])):
            row = tables[old].get(start) if start < split else tables[new].get(start)
            if row is not None:
                out[start] = row
        series[name] = out
    clipped_days: dict[str, dict[date, float]] = {}
    for name, (base, terms) in VIRTUALS.items():
        out = {}
        per_day: dict[date, float] = {}
        for start, (_, end, value, rate, quality) in series[base].items():
            total = value
            worst = RANK.get(quality, 3)
            for sign, term, conv in terms:
                row = series[term].get(start)
                if row is None:
                    total = math.nan
                    continue
                if row[1] != end:
                    raise ValueError(f"{term}: slot of another length at {start}")
                amount = row[2]
                if conv == "kwh_to_m3":
                    amount = amount * 3.6 / (Z * CV)
                elif conv == "m3_to_kwh":
                    amount = amount * Z * CV / 3.6
                total = total + amount if sign > 0 else total - amount
                worst = max(worst, RANK.get(row[4], 3))
            if total < 0:
                day = datetime.fromtimestamp(start / 1e9, zone).date()
                per_day[day] = per_day.get(day, 0.0) - total
                total = 0.0
            out[start] = (start, end, total, rate, NAMES[worst])
        series[name] = out
        clipped_days[name] = per_day
    readings = {}
    for name, table in series.items():
        running = offsets[name]
        mine = []
        for start in sorted(table):
            value = table[start][2]
            if not math.isnan(value):
                running += value
            mine.append(running)
        readings[name] = mine
    return {"series": series, "clipped": clipped_days, "reading": readings}


def check_naive(full: Composed, naive: dict[str, Any], lo: int, hi: int) -> float:
    """Largest relative difference between the vectorised and the naive numbers (must be 1e-9)."""
    worst = 0.0
    for name in COMPOSED:
        vec = c.window(full.slots[name], lo, hi)
        ref = naive["series"][name]
        assert vec.start.tolist() == sorted(ref), name
        values = np.asarray([ref[s][2] for s in vec.start.tolist()])
        rates = np.asarray([ref[s][3] for s in vec.start.tolist()])
        np.testing.assert_allclose(vec.value, values, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(vec.rate, rates, rtol=1e-9, err_msg=name)
        assert vec.quality.tolist() == [ref[s][4] for s in vec.start.tolist()], name
        a, b = np.searchsorted(full.slots[name].start, [lo, hi]).tolist()
        readings = full.reading[name][a:b]
        np.testing.assert_allclose(readings, naive["reading"][name], rtol=1e-9, err_msg=name)
        known = ~np.isnan(values)
        if known.any():
            rel = np.abs(vec.value[known] - values[known]) / np.maximum(
                np.abs(values[known]), 1e-12
            )
            worst = max(worst, float(rel.max()))
        if name in VIRTUALS:
            frame = full.clipped[name]
            days = set(naive["clipped"][name])
            lo_day = datetime.fromtimestamp(lo / 1e9, ZoneInfo(TZ)).date()
            hi_day = datetime.fromtimestamp(hi // 10**9 - 1, ZoneInfo(TZ)).date()
            inside = frame[(frame["day"] >= lo_day) & (frame["day"] <= hi_day)]
            assert set(inside["day"]) == days, name
            for day, amount in zip(inside["day"], inside["clipped"], strict=True):
                assert math.isclose(amount, naive["clipped"][name][day], rel_tol=1e-9), name
    return worst


# ----------------------------------------------------------------------------------- main


def local_midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(TZ)).timestamp()) * 10**9


def median(values: list[float]) -> float:
    return float(np.median(values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--naive-days", type=int, default=60)
    args = parser.parse_args()
    naive_days = min(max(2, args.naive_days), DAYS)
    repeat = max(1, args.repeat)

    everything = physical_inputs(seed=11)
    # the stored state: every input but house_new's last half-hour, composed in full
    new_start = T0 + SLOTS * HALF_HOUR
    source = dict(everything)
    rows = sum(len(s) for s in source.values())
    print(f"input: {rows:,} rows ({len(PHYSICAL)} physical meters x ~{SLOTS:,} half-hours)")
    print(f"rss after building the inputs: {peak_rss_mb():.0f} MB")

    runs = []
    full = compose_all(fresh(source))
    for _ in range(repeat):
        inputs = fresh(source)  # as read anew: nothing worked out on an earlier run is reused
        began = time.perf_counter()
        full = compose_all(inputs)
        runs.append(time.perf_counter() - began)
    full_s = median(runs)
    out_rows = sum(len(s) for s in full.slots.values())
    unknown = sum(int(np.isnan(s.value).sum()) for s in full.slots.values())
    clipped_days = sum(len(f) for f in full.clipped.values())
    print(
        f"full recompute: median {full_s * 1000:.1f} ms, best {min(runs) * 1000:.1f} ms over "
        f"{repeat} runs; {out_rows:,} composed slots ({unknown:,} unknown), "
        f"{clipped_days:,} day rows with clipping"
    )

    # one new half-hour for house_new (the others published it already)
    rng = np.random.default_rng(5)
    new_row = c.slots_of([new_start], [new_start + HALF_HOUR], [float(rng.gamma(2.0, 0.4))], [0.27])
    inc_runs = []
    merge_runs = []
    for _ in range(max(repeat, 20)):
        inputs = fresh(source)
        began = time.perf_counter()
        after, part, (lo, hi) = incremental(inputs, full, new_row)
        inc_runs.append(time.perf_counter() - began)
        began = time.perf_counter()
        updated = merge(full, part, lo, hi)
        merge_runs.append(time.perf_counter() - began)
    incremental_ms = median(inc_runs) * 1000
    # the incremental result is the full recompute, slot for slot and reading for reading
    reference = compose_all(after)
    for name in COMPOSED:
        got, want = updated.slots[name], reference.slots[name]
        assert np.array_equal(got.start, want.start), name
        assert np.array_equal(got.value, want.value, equal_nan=True), name
        assert np.array_equal(got.rate, want.rate, equal_nan=True), name
        assert got.quality.tolist()[-200:] == want.quality.tolist()[-200:], name
        assert np.array_equal(updated.reading[name], reference.reading[name]), name
        if name in VIRTUALS:
            days = reference.clipped[name]
            lo_day = datetime.fromtimestamp(lo / 1e9, ZoneInfo(TZ)).date()
            assert (
                days[days["day"] >= lo_day]["clipped"].tolist()
                == updated.clipped[name]["clipped"].tolist()
            ), name
    filled = int((~np.isnan(updated.slots["everything_else"].value[-1:])).sum())
    print(
        f"incremental: median {incremental_ms:.2f} ms over {len(inc_runs)} runs, window "
        f"{(hi - lo) // HALF_HOUR} half-hours; last 'everything else' slot known: {bool(filled)}"
    )
    print(
        f"  + splicing the window into 15 full in-memory series: median "
        f"{median(merge_runs) * 1000:.2f} ms (not in incremental_ms: the window's rows are what "
        "gets written)"
    )

    # naive reference on whole local days around the house meter's replacement
    first_day = date(2021, 1, 1) + timedelta(
        days=max(0, min(MASTERS["house"][2] - naive_days // 2, DAYS - naive_days))
    )
    lo, hi = (local_midnight(first_day), local_midnight(first_day + timedelta(days=naive_days)))
    sliced = {name: c.window(s, lo, hi) for name, s in source.items()}
    offsets = {}
    for name in COMPOSED:
        at = int(np.searchsorted(full.slots[name].start, lo))
        offsets[name] = float(full.reading[name][at - 1]) if at else 0.0
    naive_runs = []
    for _ in range(5):
        began = time.perf_counter()
        naive = naive_all(sliced, offsets)
        naive_runs.append(time.perf_counter() - began)
    naive_s = median(naive_runs)
    worst = check_naive(full, naive, lo, hi)
    naive_slots = sum(len(r) for r in sliced.values())
    naive_scaled = naive_s * rows / naive_slots
    vs_naive = naive_scaled / full_s
    print(
        f"naive: median {naive_s * 1000:.0f} ms of 5 for {naive_days} days "
        f"({naive_slots:,} input rows) -> "
        f"{naive_scaled:.2f} s scaled to {rows:,}; agrees to {worst:.1e} -> {vs_naive:.0f}x"
    )
    peak = peak_rss_mb()
    print(f"peak rss: {peak:.0f} MB")
    print(
        json.dumps(
            {
                "rows": rows,
                "full_s": round(full_s, 4),
                "incremental_ms": round(incremental_ms, 2),
                "vs_naive": round(vs_naive, 1),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
