"""Benchmark the Parquet archive: 5 years x 4 meters half-hourly, then hourly incremental polls.

Run: .venv/bin/python bench/archive.py [--keep DIR]
Targets (issue #6): <= 40 bytes per row on disk; incremental update < 50 ms per meter.
Prints figures, then one line of JSON.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
import json
from pathlib import Path
import sys
import tempfile
import time

import duckdb
import numpy as np
import pandas as pd
import polars as pl

# bench/ is sys.path[0] and holds modules named like the standard library (statistics.py):
# import nothing from the stdlib after this line; put the repository first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS
from custom_components.meterlake.archive import open_archive

YEARS = 5
SLOTS = YEARS * 365 * 48  # 87,600 half-hours per meter
START = datetime(2021, 1, 1, tzinfo=UTC)
GAS_KWH_PER_M3 = 1.02264 * 39.5 / 3.6
METERS = (
    # key, kind, unit, tariff shape
    ("octopus_electricity_1000000000001", "electricity", "kWh", "agile"),
    ("octopus_electricity_1000000000002", "electricity", "kWh", "fixed"),
    ("octopus_gas_1234567890", "gas", "m³", "gas"),
    ("tibber_home_0001", "electricity", "kWh", "hourly"),
)


def meter_frame(
    spec: tuple[str, str, str, str], starts: pd.DatetimeIndex, seed: int
) -> pd.DataFrame:
    """Realistic rows: 3-decimal readings, rates as tariffs publish them, unrounded cost."""
    meter, kind, unit, tariff = spec
    rng = np.random.default_rng(seed)
    n = len(starts)
    hour = starts.hour.to_numpy()
    daily = 0.6 + 0.8 * np.exp(-(((hour - 18) / 3.0) ** 2)) + 0.3 * np.exp(-(((hour - 8) / 2) ** 2))
    if kind == "gas":
        value = np.round(rng.gamma(1.5, 0.08, n) * daily, 3)  # m³
        energy = value * GAS_KWH_PER_M3
        rate = np.full(n, 0.0617)  # per kWh; cost uses energy below
        cost = energy * rate
    else:
        value = np.round(rng.gamma(1.3, 0.22, n) * daily, 3)
        energy = value
        if tariff == "agile":
            pence = np.round(
                np.clip(rng.normal(22, 7, n) + 12 * (hour >= 16) * (hour < 19), -5, 100), 2
            )
            rate = pence / 100 * 1.05
        elif tariff == "hourly":
            # Nordic spot: one price per hour in SEK, shared by both half-hours.
            hourly = np.round(rng.lognormal(0.0, 0.5, (n + 1) // 2), 4)
            rate = np.repeat(hourly, 2)[:n]
        else:
            rate = np.full(n, 0.2450)
        cost = value * rate
    currency = "SEK" if meter.startswith("tibber") else "GBP"
    return pd.DataFrame(
        {
            "meter": meter,
            "serial": None if meter.startswith("tibber") else "21L" + meter[-7:],
            "supplier": meter.split("_", 1)[0],
            "kind": kind,
            "start": starts,
            "end": starts + pd.Timedelta(minutes=30),
            "value": value,
            "unit": unit,
            "energy_kwh": energy,
            "rate": rate,
            "cost": cost,
            "currency": currency,
            "quality": np.where(rng.random(n) < 0.01, "estimated", "measured"),
            # Rows arrive a day or two late, one backfill per day of data.
            "ingested_at": starts.floor("D") + pd.Timedelta(days=1, hours=9),
        },
        columns=list(INTERVAL_COLUMNS),
    )


def disk_usage(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*.parquet") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", help="write the archive here instead of a temporary dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        run(base)


def run(base: Path) -> None:
    starts = pd.date_range(START, periods=SLOTS, freq="30min")
    frames = [meter_frame(spec, starts, i) for i, spec in enumerate(METERS)]
    frame = pd.concat(frames, ignore_index=True)
    rows = len(frame)
    archive = open_archive("meterlake", config_dir=str(base))
    root = Path(archive.root)

    began = time.perf_counter()
    summary = archive.write_intervals(frame)
    initial_s = time.perf_counter() - began
    size, files = disk_usage(root / "consumption")
    assert summary.rows_total == rows, summary
    print(f"rows                 {rows:,} ({len(METERS)} meters x {SLOTS:,} half-hours)")
    print(f"initial write        {initial_s:.2f} s, {rows / initial_s:,.0f} rows/s")
    print(f"partitions           {summary.partitions_written} files")
    print(f"bytes on disk        {size:,} ({size / 2**20:.2f} MiB), {files} files")
    print(f"bytes per row        {size / rows:.2f}")

    # Hourly polls: each brings 2 new half-hours per meter into the current month; then the
    # overlap window the coordinator re-reads (48 h, same values, fresh ingested_at).
    last = starts[-1] + pd.Timedelta(minutes=30)
    per_meter: list[float] = []
    overlap_ms: list[float] = []
    added = frame.iloc[:0]
    for poll in range(6):
        slot = pd.date_range(last + pd.Timedelta(hours=poll), periods=2, freq="30min")
        for i, spec in enumerate(METERS):
            new = meter_frame(spec, slot, 100 + poll * 10 + i)
            t0 = time.perf_counter()
            result = archive.write_intervals(new)
            per_meter.append((time.perf_counter() - t0) * 1000)
            assert result.partitions_written == 1 and result.rows_written == 2, result
            added = pd.concat([added, new], ignore_index=True)
    for i in range(len(METERS)):
        window = frames[i][frames[i]["start"] >= last - pd.Timedelta(hours=48)]
        refetch = window.assign(ingested_at=pd.Timestamp.now(tz="UTC"))
        t0 = time.perf_counter()
        result = archive.write_intervals(refetch)
        overlap_ms.append((time.perf_counter() - t0) * 1000)
        assert result.partitions_written == 1 and result.rows_written == len(window), result
    incremental_ms = float(np.median(per_meter))
    print(
        f"incremental update   median {incremental_ms:.1f} ms per meter "
        f"(p90 {np.percentile(per_meter, 90):.1f}, max {max(per_meter):.1f}; "
        f"{len(per_meter)} writes)"
    )
    print(f"overlap re-fetch     median {np.median(overlap_ms):.1f} ms per meter (48 h)")

    pattern = str(root / "consumption" / "**" / "*.parquet")
    query = (
        "SELECT meter, count(*) AS n, sum(value) AS value, sum(cost) AS cost "
        f"FROM read_parquet('{pattern}', hive_partitioning=1) GROUP BY meter ORDER BY meter"
    )
    con = duckdb.connect()
    scans = []
    result_rows: list[tuple[object, ...]] = []
    for _ in range(3):
        t0 = time.perf_counter()
        result_rows = con.execute(query).fetchall()
        scans.append((time.perf_counter() - t0) * 1000)
    duckdb_ms = min(scans)
    total_rows = sum(int(str(r[1])) for r in result_rows)
    assert total_rows == rows + 6 * 2 * len(METERS), total_rows
    totals = pd.concat([frame, added]).groupby("meter")[["value", "cost"]].sum()
    expected: dict[str, dict[str, float]] = totals.to_dict("index")  # type: ignore[assignment]
    for key, _n, value, cost in result_rows:
        assert abs(float(str(value)) - expected[str(key)]["value"]) < 1e-6
        assert abs(float(str(cost)) - expected[str(key)]["cost"]) < 1e-6
    print(f"duckdb full scan     {duckdb_ms:.1f} ms (first {scans[0]:.1f}) sum value/cost by meter")
    t0 = time.perf_counter()
    polars_sum = (
        pl.scan_parquet(pattern, hive_partitioning=True)
        .group_by("meter")
        .agg(pl.col("value").sum(), pl.col("cost").sum())
        .collect()
    )
    polars_ms = (time.perf_counter() - t0) * 1000
    assert polars_sum.height == len(METERS)
    print(f"polars full scan     {polars_ms:.1f} ms")
    t0 = time.perf_counter()
    back = archive.read_intervals(METERS[0][0], datetime(2025, 1, 1, tzinfo=UTC))
    read_ms = (time.perf_counter() - t0) * 1000
    print(f"read_intervals       {read_ms:.1f} ms for {len(back):,} rows (one meter, one year)")

    print(
        json.dumps(
            {
                "rows": rows,
                "initial_s": round(initial_s, 3),
                "bytes_per_row": round(size / rows, 2),
                "incremental_ms_per_meter": round(incremental_ms, 2),
                "duckdb_scan_ms": round(duckdb_ms, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
