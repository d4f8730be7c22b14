"""Benchmark of the emissions computation: 5 years of a half-hourly meter x quarter-hour intensity.

analytics.carbon.interval_emissions (overlap-weighted intensity per interval, vectorised) then
hourly_emissions, as the eCO2mix emissions statistic runs them, against a per-row reference
(for each interval, walk the quarter-hours it overlaps) measured on a slice in the same process
and scaled per row. The grid has a hole (a day without intensity) so the uncovered path runs.
Last line: JSON.

Usage: .venv/bin/python bench/emissions.py [--repeat N]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
import json
import math
from pathlib import Path
import resource
import sys
import time

import numpy as np
import pandas as pd

# Run as a script, bench/ would come first on sys.path and its statistics.py would shadow the
# standard library module of that name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from custom_components.meterlake.analytics.carbon import (  # noqa: E402
    hourly_emissions,
    interval_emissions,
)

START = datetime(2021, 1, 1, tzinfo=UTC)
HALF_HOURS = 5 * 365 * 48  # 87,600 meter intervals
QUARTERS = 5 * 365 * 96  # 175,200 intensity slots
NAIVE_SLICE = 3_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def meter_rows(rng: np.random.Generator) -> pd.DataFrame:
    starts = pd.date_range(START, periods=HALF_HOURS, freq="30min", tz="UTC")
    energy = rng.gamma(2.0, 0.15, HALF_HOURS)
    return pd.DataFrame(
        {
            "start": starts,
            "end": starts + pd.Timedelta(minutes=30),
            "value": energy,
            "unit": "kWh",
            "energy_kwh": energy,
        }
    )


def grid_rows(rng: np.random.Generator) -> pd.DataFrame:
    starts = pd.date_range(START, periods=QUARTERS, freq="15min", tz="UTC")
    intensity = rng.uniform(15.0, 90.0, QUARTERS)
    hole = (starts >= pd.Timestamp("2023-06-01", tz="UTC")) & (
        starts < pd.Timestamp("2023-06-02", tz="UTC")
    )
    intensity[hole] = np.nan
    return pd.DataFrame(
        {"start": starts, "end": starts + pd.Timedelta(minutes=15), "taux_co2": intensity}
    )


def naive(meter: pd.DataFrame, grid: pd.DataFrame) -> list[float]:
    """Per row: the quarter-hours an interval overlaps, weighted by overlap; NaN if any is gone."""
    by_start = {
        row.start.to_pydatetime(): (row.end.to_pydatetime(), row.taux_co2)
        for row in grid.itertuples()
    }
    out = []
    quarter = timedelta(minutes=15)
    for row in meter.itertuples():
        start, end = row.start.to_pydatetime(), row.end.to_pydatetime()
        slot, weighted, known = start, 0.0, timedelta(0)
        while slot < end:
            found = by_start.get(slot)
            if found is None or math.isnan(found[1]):
                break
            overlap = min(found[0], end) - slot
            weighted += found[1] * overlap.total_seconds()
            known += overlap
            slot += quarter
        covered = known == end - start
        out.append(
            row.energy_kwh * weighted / (end - start).total_seconds() / 1000
            if covered
            else math.nan
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    meter, grid = meter_rows(rng), grid_rows(rng)

    timings = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        per_interval = interval_emissions(meter, grid)
        hourly = hourly_emissions(per_interval)
        timings.append(time.perf_counter() - began)
    fast = float(np.median(timings))

    picks = np.sort(rng.choice(HALF_HOURS, NAIVE_SLICE, replace=False))
    sample = meter.iloc[picks].reset_index(drop=True)
    began = time.perf_counter()
    reference = naive(sample, grid)
    naive_s = (time.perf_counter() - began) / NAIVE_SLICE * HALF_HOURS
    # The same numbers, or the comparison means nothing. Cumulative integrals over five years
    # cost some relative precision (about 1e-11 here); 1e-9 leaves room, and is far below the
    # precision of the intensities themselves.
    actual = per_interval["co2_kg"].to_numpy()[picks]
    np.testing.assert_allclose(actual, np.array(reference), rtol=1e-9)
    worst = float(np.nanmax(np.abs(actual / np.array(reference) - 1)))

    print(f"meter intervals: {HALF_HOURS:,}, intensity slots: {QUARTERS:,}")
    print(f"vectorised: {fast:.4f} s (median of {args.repeat}), hours out: {len(hourly):,}")
    print(f"per-row reference, scaled: {naive_s:.2f} s")
    print(f"uncovered intervals: {int((~per_interval['covered']).sum())}")
    figures = {
        "rows": HALF_HOURS,
        "emissions_s": round(fast, 4),
        "vs_naive": round(naive_s / fast, 1),
        "max_rel_error": float(f"{worst:.1e}"),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
