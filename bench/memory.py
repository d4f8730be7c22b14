"""MeterLake's memory on a big archive: 20 meters x 5 years of half-hours, first statistics import.

A Home Assistant test instance with a real SQLite recorder (file) starts in a temporary
directory, not yet "started". The archive is written first (the bench's own set-up, not
measured), then:

1. RSS is read (pandas and pyarrow already imported, as in a test process): the baseline;
2. MeterLake's entry is set up (a stand-in source with 20 meters that fetches nothing new,
   so the setup primes its memory from the archive): `setup_mb` = RSS after - baseline;
3. Home Assistant is started: the entry's first history check runs (archive verification,
   then the statistics catch-up, 3 statistics per meter x 43,800 hours into an empty
   recorder). A sampling thread reads RSS every 5 ms until every statistic is committed:
   `catch_up_peak_mb` = peak RSS - baseline.

Goals (issue 19): setup_mb <= 60, catch_up_peak_mb <= 150. The sums are checked at the end
(each imported statistic's last sum equals the archive's total).

Writing 2 x 43,800 rows per meter into SQLite takes the recorder minutes per meter on a small
host, so the third argument may stop the measurement once that many meters are imported (the
entry is then unloaded, which ends the catch-up): the catch-up goes meter by meter and month by
month, so its memory does not grow with the meters that follow. The JSON says how many were
measured (`catch_up_meters`).

Run: .venv/bin/python bench/memory.py [meters] [years] [catch-up meters]
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import gc
import json
import logging
import os
from pathlib import Path
import sys
import tempfile
import threading
import time
import types
from typing import Any

import numpy as np
import pandas as pd

# A test process has pyarrow loaded before MeterLake's setup: so does the baseline here.
import pyarrow.parquet  # noqa: F401

# bench/ is sys.path[0] and holds modules named like the standard library (statistics.py):
# import nothing from the stdlib after this line; put the repository first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METERS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
YEARS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
CATCH_UP_METERS = int(sys.argv[3]) if len(sys.argv) > 3 else METERS
SLOTS = YEARS * 365 * 48
START = datetime(2021, 1, 1, tzinfo=UTC)
SOURCE_MODULE = "custom_components.meterlake.sources.memory_bench"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident set size of this process, MB."""
    return int(Path("/proc/self/statm").read_bytes().split()[1]) * PAGE / 2**20


class PeakSampler:
    """A thread that reads RSS every few milliseconds and keeps the highest value."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.every)

    def __enter__(self) -> PeakSampler:
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def meter_key(index: int) -> str:
    return f"bench_electricity_{index:02d}"


def meter_frame(index: int, starts: pd.DatetimeIndex) -> pd.DataFrame:
    """One meter's half-hours: 3-decimal readings, an hourly spot-like rate, cost."""
    from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS

    rng = np.random.default_rng(index)
    n = len(starts)
    value = np.round(rng.gamma(1.3, 0.22, n), 3)
    rate = np.round(rng.uniform(0.05, 0.45, n), 4)
    return pd.DataFrame(
        {
            "meter": meter_key(index),
            "serial": f"S{index:02d}",
            "supplier": "bench",
            "kind": "electricity",
            "start": starts,
            "end": starts + pd.Timedelta(minutes=30),
            "value": value,
            "unit": "kWh",
            "energy_kwh": value,
            "rate": rate,
            "cost": value * rate,
            "currency": "GBP",
            "quality": "measured",
            "ingested_at": pd.Timestamp(START),
        },
        columns=list(INTERVAL_COLUMNS),
    )


def write_archive(root: Path) -> dict[str, tuple[float, float]]:
    """The archive of every meter; (total kWh, total cost) per meter for the final check."""
    from custom_components.meterlake.archive import open_archive

    archive = open_archive(str(root), config_dir=str(root.parent))
    starts = pd.date_range(START, periods=SLOTS, freq="30min", tz=UTC)
    totals: dict[str, tuple[float, float]] = {}
    for index in range(METERS):
        frame = meter_frame(index, starts)
        archive.write_intervals(frame)
        totals[meter_key(index)] = (float(frame["value"].sum()), float(frame["cost"].sum()))
    return totals


def install_source() -> None:
    """`sources/memory_bench`: the meters of the archive; polls deliver nothing new."""
    from custom_components.meterlake.sources.base import (
        Capabilities,
        FetchResult,
        MeterInfo,
        SourceContext,
    )

    meters = tuple(
        MeterInfo(
            key=meter_key(index),
            supplier="bench",
            kind="electricity",
            unit="kWh",
            name=f"Bench {index:02d}",
            currency="GBP",
            has_standing_charge=False,
        )
        for index in range(METERS)
    )

    class BenchSource:
        supplier = "bench"
        update_interval = timedelta(days=1)
        capabilities = Capabilities()

        def __init__(self, context: SourceContext) -> None:
            self._executor = context.executor

        @property
        def meters(self) -> tuple[MeterInfo, ...]:
            return meters

        async def async_fetch(self, meter: MeterInfo, start: datetime, end: datetime) -> Any:
            from custom_components.meterlake.analytics.intervals import empty_intervals

            return FetchResult(intervals=await self._executor(empty_intervals), complete_until=None)

    module = types.ModuleType(SOURCE_MODULE)
    module.create_source = BenchSource  # type: ignore[attr-defined]
    sys.modules[SOURCE_MODULE] = module


async def last_sums(hass: Any) -> dict[str, float]:
    from homeassistant.components.recorder.statistics import get_last_statistics
    from homeassistant.helpers.recorder import get_instance

    out: dict[str, float] = {}
    for index in range(CATCH_UP_METERS):
        for suffix in ("consumption", "cost"):
            stat_id = f"meterlake:{meter_key(index)}_{suffix}"
            found = await get_instance(hass).async_add_executor_job(
                get_last_statistics, hass, 1, stat_id, False, {"sum"}
            )
            rows = found.get(stat_id) or [{"sum": None}]
            out[stat_id] = float(rows[0]["sum"] or 0.0)
    return out


async def main() -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    import homeassistant  # noqa: F401  (first, so it installs probatio as voluptuous itself)
    from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
    from homeassistant.core import CoreState
    from homeassistant.helpers import recorder as recorder_helper
    from homeassistant.helpers.recorder import get_instance
    from homeassistant.setup import async_setup_component
    from pytest_homeassistant_custom_component.common import (
        MockConfigEntry,
        async_test_home_assistant,
    )

    from custom_components.meterlake.config_flow import default_options
    from custom_components.meterlake.const import DOMAIN
    from custom_components.meterlake.statistics import async_recorder_done

    install_source()
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        began = time.perf_counter()
        totals = write_archive(lake)
        print(
            f"archive: {METERS} meters x {YEARS} years of half-hours "
            f"({METERS * SLOTS:,} rows) written in {time.perf_counter() - began:.1f} s"
        )
        async with async_test_home_assistant(
            config_dir=tmp, initial_state=CoreState.not_running
        ) as hass:
            try:
                # The test instance blocks custom integrations until this key is gone.
                from homeassistant import loader

                hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
                recorder_helper.async_initialize_recorder(hass)
                db_url = f"sqlite:///{Path(tmp) / 'home-assistant_v2.db'}"
                config = {"recorder": {"db_url": db_url, "commit_interval": 1}}
                assert await async_setup_component(hass, "recorder", config)
                await hass.async_block_till_done()
                for name in ("sqlalchemy.engine", "homeassistant.components.recorder"):
                    logging.getLogger(name).setLevel(logging.WARNING)
                # Everything Home Assistant loads around an entry (http, repairs, energy…) is
                # loaded before the baseline, so setup_mb is MeterLake's own share.
                for component in ("homeassistant", "persistent_notification", "repairs"):
                    assert await async_setup_component(hass, component, {})
                await hass.async_block_till_done()
                gc.collect()
                baseline = rss_mb()
                print(f"RSS before MeterLake's setup: {baseline:.0f} MB")

                entry = MockConfigEntry(
                    domain=DOMAIN,
                    title="Memory bench",
                    data={"source": "memory_bench"},
                    options=default_options() | {"archive_root": str(lake)},
                    unique_id="memory_bench",
                )
                entry.add_to_hass(hass)
                with PeakSampler() as setup_peak:
                    began = time.perf_counter()
                    assert await hass.config_entries.async_setup(entry.entry_id)
                    await hass.async_block_till_done()
                    gc.collect()
                    after_setup = rss_mb()
                setup_s = time.perf_counter() - began
                print(
                    f"after setup: {after_setup:.0f} MB (+{after_setup - baseline:.0f}), "
                    f"peak during setup +{setup_peak.peak - baseline:.0f} MB, {setup_s:.1f} s"
                )

                sink = entry.runtime_data.coordinator.statistics
                imported = asyncio.Event()
                real_import = sink.async_import_history
                done: list[str] = []

                async def counted(meter: Any, *args: Any, **kwargs: Any) -> Any:
                    result = await real_import(meter, *args, **kwargs)
                    done.append(meter.key)
                    print(f"  {meter.key} imported: RSS {rss_mb():.0f} MB")
                    if len(done) >= CATCH_UP_METERS:
                        imported.set()
                    return result

                sink.async_import_history = counted  # type: ignore[method-assign]
                with PeakSampler() as catch_up_peak:
                    began = time.perf_counter()
                    hass.set_state(CoreState.running)
                    hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
                    await get_instance(hass).async_recorder_ready.wait()
                    await imported.wait()
                    await async_recorder_done(hass)
                    catch_up_s = time.perf_counter() - began
                # Ends the catch-up of the meters not measured.
                await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_block_till_done()
                gc.collect()
                settled = rss_mb()
                print(
                    f"first statistics catch-up of {len(done)} of {METERS} meters: "
                    f"{catch_up_s:.1f} s, peak "
                    f"{catch_up_peak.peak:.0f} MB (+{catch_up_peak.peak - baseline:.0f}), "
                    f"after it {settled:.0f} MB (+{settled - baseline:.0f})"
                )
                sums = await last_sums(hass)
                worst = 0.0
                for key, (kwh, cost) in list(totals.items())[:CATCH_UP_METERS]:
                    for suffix, total in (("consumption", kwh), ("cost", cost)):
                        stored = sums[f"meterlake:{key}_{suffix}"]
                        worst = max(worst, abs(stored - total) / max(1.0, abs(total)))
                print(f"largest relative sum error over {len(sums)} statistics: {worst:.1e}")
                assert worst < 1e-9, worst
            finally:
                await hass.async_stop()
    return {
        "meters": METERS,
        "years": YEARS,
        "baseline_mb": round(baseline),
        "setup_mb": round(after_setup - baseline, 1),
        "setup_peak_mb": round(setup_peak.peak - baseline, 1),
        "catch_up_peak_mb": round(catch_up_peak.peak - baseline, 1),
        "after_catch_up_mb": round(settled - baseline, 1),
        "catch_up_meters": CATCH_UP_METERS,
        "catch_up_s": round(catch_up_s, 1),
    }


if __name__ == "__main__":
    summary = asyncio.run(main())
    print(json.dumps(summary))
