"""Benchmark of the analytics core: 5 years x 4 meters of half-hourly rows through the pipeline.

normalize (from ISO 8601 strings with offsets, as Octopus sends them) -> dedupe (unsorted input,
so the sort path runs) -> join_rates (Agile 30-minute rates, Economy 7 day/night with two payment
methods, a fixed tariff with an overlapping open-ended row, gas per m³) -> hourly buckets ->
local-day totals in Europe/London. The naive per-row join runs on a random 5,000-row slice in
the same process and is scaled per row. Last line: JSON.

Usage: .venv/bin/python bench/analytics.py [--repeat N]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import resource
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

# Run as a script, bench/ would come first on sys.path and its statistics.py would shadow the
# standard library module of that name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from custom_components.meterlake.analytics import (  # noqa: E402
    intervals as iv,
    tariffs as tf,
    units,
)
from custom_components.meterlake.analytics.schema import RATE_COLUMNS  # noqa: E402

START = datetime(2021, 1, 1, tzinfo=UTC)
SLOTS = 5 * 365 * 48  # 87,600 half-hours per meter, 350,400 rows for 4 meters
NAIVE_SLICE = 5_000
METERS = {
    "octopus_electricity_agile": ("electricity", "kWh"),
    "octopus_electricity_e7": ("electricity", "kWh"),
    "octopus_electricity_fixed": ("electricity", "kWh"),
    "octopus_gas_m3": ("gas", "m³"),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def source_rows(seed: int) -> dict[str, pd.DataFrame]:
    """What a source hands to normalize: ISO strings with the London offset, float values."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range(START, periods=SLOTS, freq="30min", tz="UTC").tz_convert("Europe/London")
    ends = starts + pd.Timedelta(minutes=30)

    def iso(index: pd.DatetimeIndex) -> np.ndarray:
        text = pd.Series(index.strftime("%Y-%m-%dT%H:%M:%S%z"))
        text = text.str[:-2] + ":" + text.str[-2:]
        return text.str.replace("+00:00", "Z", regex=False).to_numpy(dtype=object)

    start_text, end_text = iso(starts), iso(ends)
    frames = {}
    for meter, (kind, _) in METERS.items():
        scale = 0.05 if kind == "gas" else 0.4
        frames[meter] = pd.DataFrame(
            {
                "start": start_text,
                "end": end_text,
                "value": np.round(rng.gamma(2.0, scale, SLOTS), 3),
            }
        )
    return frames


def price_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rates and agreements for the four meters (Agile: 30-minute rows from day 200 on)."""
    rows: list[dict[str, Any]] = []

    def add(
        tariff: str,
        register: str,
        start: datetime,
        end: datetime | None,
        rate: float,
        *,
        method: str | None = None,
    ) -> None:
        rows.append(
            {
                "supplier": "octopus",
                "tariff": tariff,
                "register": register,
                "valid_from": start,
                "valid_to": end,
                "rate": rate,
                "rate_exc_vat": rate / 1.05,
                "currency": "GBP",
                "payment_method": method,
            }
        )

    rng = np.random.default_rng(7)
    agile_from = START + timedelta(days=200)
    slots = pd.date_range(agile_from, START + timedelta(days=5 * 365), freq="30min", tz="UTC")
    agile = pd.DataFrame(
        {
            "supplier": "octopus",
            "tariff": "E-1R-AGILE-24-10-01-C",
            "register": "standard",
            "valid_from": slots[:-1],
            "valid_to": slots[1:],
            "rate": np.round(rng.normal(0.22, 0.08, len(slots) - 1), 4),
            "rate_exc_vat": np.nan,
            "currency": "GBP",
            "payment_method": None,
        }
    )
    add("E-1R-VAR-20-01-01-C", "standard", START - timedelta(days=400), None, 0.1873)
    for quarter in range(21):
        begin = START + timedelta(days=91 * quarter)
        end = begin + timedelta(days=91)
        add("E-2R-VAR-22-11-01-C", "day", begin, end, 0.30 + 0.01 * quarter, method="DIRECT_DEBIT")
        add(
            "E-2R-VAR-22-11-01-C",
            "day",
            begin,
            end,
            0.32 + 0.01 * quarter,
            method="NON_DIRECT_DEBIT",
        )
        add(
            "E-2R-VAR-22-11-01-C",
            "night",
            begin,
            end,
            0.12 + 0.005 * quarter,
            method="DIRECT_DEBIT",
        )
        add(
            "E-2R-VAR-22-11-01-C",
            "night",
            begin,
            end,
            0.13 + 0.005 * quarter,
            method="NON_DIRECT_DEBIT",
        )
    add("E-1R-FIX-12M-C", "standard", START - timedelta(days=30), None, 0.2471)
    for half in range(10):
        begin = START + timedelta(days=182 * half)
        add("E-1R-FIX-12M-C", "standard", begin, begin + timedelta(days=120), 0.25 + 0.002 * half)
    add("G-1R-VAR-22-11-01-C", "standard", START - timedelta(days=30), None, 0.0712)
    rates = pd.concat([agile, pd.DataFrame(rows)], ignore_index=True)[list(RATE_COLUMNS)]
    for column in ("valid_from", "valid_to"):
        rates[column] = pd.to_datetime(rates[column], utc=True)
    agreements = pd.DataFrame(
        [
            (
                "octopus_electricity_agile",
                "E-1R-VAR-20-01-01-C",
                START - timedelta(days=400),
                agile_from,
            ),
            ("octopus_electricity_agile", "E-1R-AGILE-24-10-01-C", agile_from, None),
            ("octopus_electricity_e7", "E-2R-VAR-22-11-01-C", START - timedelta(days=10), None),
            ("octopus_electricity_fixed", "E-1R-FIX-12M-C", START - timedelta(days=10), None),
            ("octopus_gas_m3", "G-1R-VAR-22-11-01-C", START - timedelta(days=10), None),
        ],
        columns=["meter", "tariff", "valid_from", "valid_to"],
    )
    for column in ("valid_from", "valid_to"):
        agreements[column] = pd.to_datetime(agreements[column], utc=True)
    return rates, agreements


def pipeline(
    inputs: dict[str, pd.DataFrame], rates: pd.DataFrame, agreements: pd.DataFrame
) -> tuple[dict[str, float], dict[str, Any]]:
    timings: dict[str, float] = {}
    mark = time.perf_counter()
    frames = []
    for meter in (
        "octopus_gas_m3",
        "octopus_electricity_fixed",
        "octopus_electricity_agile",
        "octopus_electricity_e7",
    ):  # not in key order: dedupe has to sort
        kind, unit = METERS[meter]
        result = iv.normalize(
            inputs[meter],
            meter=meter,
            supplier="octopus",
            kind=kind,
            unit=unit,
            currency="GBP",
            ingested_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        if kind == "gas":
            result.frame["energy_kwh"] = units.gas_m3_to_kwh(result.frame["value"])
        frames.append(result.frame)
    frame = pd.concat(frames, ignore_index=True)
    now = time.perf_counter()
    timings["normalize"], mark = now - mark, now
    frame = iv.dedupe(frame)
    now = time.perf_counter()
    timings["dedupe"], mark = now - mark, now
    joined = tf.join_rates(frame, rates, agreements, payment_method="DIRECT_DEBIT")
    now = time.perf_counter()
    timings["join_rates"], mark = now - mark, now
    hourly = iv.hourly_buckets(joined.frame, columns=("value", "cost"))
    now = time.perf_counter()
    timings["hourly_buckets"], mark = now - mark, now
    daily = iv.local_day_totals(joined.frame, "Europe/London", columns=("value", "cost"))
    now = time.perf_counter()
    timings["local_day_totals"] = now - mark
    timings["total"] = sum(timings.values())
    out = {"joined": joined, "hourly": hourly, "daily": daily}
    return timings, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    inputs = source_rows(seed=1)
    rates, agreements = price_tables()
    rows = sum(len(f) for f in inputs.values())
    print(f"input: {rows:,} rows ({len(METERS)} meters x {SLOTS:,}), {len(rates):,} rate rows")
    print(f"rss after building inputs: {peak_rss_mb():.0f} MB")

    runs = []
    result: dict[str, Any] = {}
    for _ in range(max(1, args.repeat)):
        timings, result = pipeline(inputs, rates, agreements)
        runs.append(timings)
    totals = sorted(r["total"] for r in runs)
    median = totals[len(totals) // 2]
    best = totals[0]
    for stage in ("normalize", "dedupe", "join_rates", "hourly_buckets", "local_day_totals"):
        stage_times = sorted(r[stage] for r in runs)
        print(f"  {stage:<17} median {stage_times[len(stage_times) // 2] * 1000:7.1f} ms")
    print(
        f"pipeline: median {median:.3f} s, best {best:.3f} s over {len(runs)} runs "
        f"-> {rows / median:,.0f} rows/s"
    )

    joined = result["joined"]
    hourly = result["hourly"]
    daily = result["daily"]
    print(f"unrated: {joined.unrated:,} intervals in {len(joined.unrated_ranges)} ranges")
    print(
        f"hourly rows: {len(hourly):,} ({int(hourly['complete'].sum()):,} complete); "
        f"day rows: {len(daily):,}"
    )
    assert len(joined.frame) == rows
    assert int(hourly["count"].sum()) == rows
    assert int(daily["count"].sum()) == rows

    # The naive per-row reference on a random slice, scaled per row, against the vectorised
    # join of the full table; the slice must agree row for row.
    frame = joined.frame
    pick = np.sort(np.random.default_rng(3).choice(len(frame), NAIVE_SLICE, replace=False))
    sample = frame.iloc[pick].reset_index(drop=True)
    mark = time.perf_counter()
    naive = tf.join_rates_naive(sample, rates, agreements, payment_method="DIRECT_DEBIT")
    naive_s = time.perf_counter() - mark
    np.testing.assert_array_equal(naive.frame["cost"].to_numpy(), sample["cost"].to_numpy())
    join_times = sorted(r["join_rates"] for r in runs)
    join_s = join_times[len(join_times) // 2]
    naive_scaled = naive_s * rows / NAIVE_SLICE
    vs_naive = naive_scaled / join_s
    print(
        f"naive join: {naive_s:.3f} s for {NAIVE_SLICE:,} rows -> {naive_scaled:.1f} s scaled "
        f"to {rows:,}; vectorised join {join_s * 1000:.1f} ms -> {vs_naive:.0f}x"
    )
    print(f"naive scaled vs whole pipeline: {naive_scaled / median:.1f}x")
    peak = peak_rss_mb()
    print(f"peak rss: {peak:.0f} MB")
    print(
        json.dumps(
            {
                "rows": rows,
                "pipeline_s": round(median, 4),
                "vs_naive": round(vs_naive, 1),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
