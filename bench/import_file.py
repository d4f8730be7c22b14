"""Benchmark of reading a supplier export: 4 years of half-hours of one meter from a file.

Synthetic, seeded data: one electricity meter, 2022-01-01 to 2025-12-31 (London days), a
half-hour value in kWh to the Wh. It is written once to a temporary Octopus dashboard export
(` Consumption (kWh), Start, End`, London times with their offsets, so both sides of every
DST change) and to a temporary SQLite file (meter_points, readings with ISO UTC times,
agreements, products), then each is read as the importer will: sources.files.parse_file, then
analytics.intervals.normalize on the rows.

* <format>_rows_per_s: rows of the file / median seconds of --repeat runs of parse + normalize;
* rows_per_s: the slower of the two formats (goal: >= 500,000);
* peak_rss_mb: resource.getrusage; rows: half-hours in each file.

Last line: JSON. Usage: .venv/bin/python bench/import_file.py [--repeat N]

Figures (2 shared cores, --repeat 7, runs of the old and new code alternated): octopus_csv
442,000-640,000 -> 980,000-1,370,000 rows/s (a plain CSV read by pyarrow.csv); sqlite
368,000-490,000 -> 515,000-776,000 rows/s (readings read by two aggregate queries instead
of a row per value); peak RSS 337 -> 350-369 MB.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
import gc
import json
from pathlib import Path
import resource
import sqlite3
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

# Run as a script, bench/ would come first on sys.path and its statistics.py would shadow the
# standard library module of that name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from custom_components.meterlake.analytics import intervals  # noqa: E402
from custom_components.meterlake.sources import files  # noqa: E402

TZ = "Europe/London"
MPAN = "1012345678901"
HALF_HOUR = 30 * 60 * 1_000_000_000
INGESTED = datetime(2026, 1, 1, tzinfo=UTC)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def half_hours() -> tuple[pd.DatetimeIndex, np.ndarray]:
    first = pd.Timestamp("2022-01-01", tz=TZ).tz_convert("UTC")
    last = pd.Timestamp("2026-01-01", tz=TZ).tz_convert("UTC")
    starts = pd.date_range(first, last, freq="30min", inclusive="left")
    rng = np.random.default_rng(20260110)
    values = np.round(rng.gamma(2.0, 0.12, len(starts)), 3)
    return starts, values


def write_octopus(path: Path, starts: pd.DatetimeIndex, values: np.ndarray) -> None:
    local = starts.tz_convert(TZ)
    ends = (starts + pd.Timedelta(minutes=30)).tz_convert(TZ)

    def iso(index: pd.DatetimeIndex) -> Any:
        text = pd.Series(index.strftime("%Y-%m-%dT%H:%M:%S%z"))
        return text.str[:-2] + ":" + text.str[-2:]

    frame = pd.DataFrame(
        {
            " Consumption (kWh)": [f"{v:.3f}" for v in values],
            " Start": iso(local),
            " End": iso(ends),
        }
    )
    frame.to_csv(path, index=False, sep=",")


def write_sqlite(path: Path, starts: pd.DatetimeIndex, values: np.ndarray) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript(
            """
            CREATE TABLE meter_points (mpan TEXT, serial TEXT);
            CREATE TABLE readings (
                mpan TEXT, interval_start TEXT, interval_end TEXT, consumption_kwh REAL
            );
            CREATE TABLE agreements (mpan TEXT, tariff_code TEXT, valid_from TEXT, valid_to TEXT);
            CREATE TABLE products (code TEXT, display_name TEXT, unit_rate REAL);
            """
        )
        connection.execute("INSERT INTO meter_points VALUES (?, ?)", (MPAN, "21E1234567"))
        begin = starts.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (starts + pd.Timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        connection.executemany(
            "INSERT INTO readings VALUES (?, ?, ?, ?)",
            zip([MPAN] * len(values), begin, end, values.tolist(), strict=True),
        )
        connection.executemany(
            "INSERT INTO agreements VALUES (?, ?, ?, ?)",
            [
                (MPAN, "E-1R-VAR-22-11-01-C", "2022-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
                (MPAN, "E-1R-AGILE-24-10-01-C", "2024-01-01T00:00:00Z", None),
            ],
        )
        connection.executemany(
            "INSERT INTO products VALUES (?, ?, ?)",
            [("VAR-22-11-01", "Flexible Octopus", 0.2457), ("AGILE-24-10-01", "Agile", 0.19)],
        )
    connection.close()


def import_once(path: Path) -> tuple[files.ParsedFile, intervals.NormalizeResult]:
    parsed = files.parse_file(str(path))
    result = intervals.normalize(
        parsed.rows,
        meter=MPAN,
        supplier="octopus",
        kind="electricity",
        unit="kWh",
        naive_tz=TZ,
        ingested_at=INGESTED,
    )
    return parsed, result


def timed[T](work: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    gc.disable()
    try:
        began = time.perf_counter()
        made = work()
        return time.perf_counter() - began, made
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    repeat = max(1, args.repeat)

    starts, values = half_hours()
    rows = len(starts)
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = {
            "octopus_csv": Path(folder) / "consumption.csv",
            "sqlite": Path(folder) / "history.sqlite",
        }
        write_octopus(paths["octopus_csv"], starts, values)
        write_sqlite(paths["sqlite"], starts, values)
        print(
            f"input: {rows:,} half-hours; csv {paths['octopus_csv'].stat().st_size / 1e6:.1f} MB, "
            f"sqlite {paths['sqlite'].stat().st_size / 1e6:.1f} MB"
        )
        runs: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(repeat):  # the two alternate, so a busy machine slows both alike
            for name, path in paths.items():
                seconds, (parsed, result) = timed(lambda path=path: import_once(path))
                runs[name].append(seconds)
                assert parsed.format == name, parsed.format
                assert parsed.rows_read == rows and not parsed.rejected, parsed.rejected
                assert len(result.frame) == rows, result.reason_counts()
                got = intervals.utc_ns(result.frame["start"])
                assert np.array_equal(got, starts.asi8), name
                assert np.array_equal(result.frame["value"].to_numpy(), values), name
        for name, seconds in runs.items():
            median = float(np.median(seconds))
            rates[name] = rows / median
            print(
                f"{name}: parse + normalize median {median * 1000:.1f} ms, best "
                f"{min(seconds) * 1000:.1f} ms over {repeat} runs -> {rates[name]:,.0f} rows/s"
            )
    peak = peak_rss_mb()
    print(f"peak rss: {peak:.0f} MB")
    print(
        json.dumps(
            {
                "rows": rows,
                "rows_per_s": round(min(rates.values())),
                "octopus_csv_rows_per_s": round(rates["octopus_csv"]),
                "sqlite_rows_per_s": round(rates["sqlite"]),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
