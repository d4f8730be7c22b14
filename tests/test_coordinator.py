"""Coordinator and sink behaviour around failures, restarts, options and edge windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import gzip
import json
from pathlib import Path
import shutil
from typing import Any

import duckdb
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.meterlake import statistics as stats
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sensor import consumption_device_class
from custom_components.meterlake.sources import demo
from custom_components.meterlake.sources.base import (
    FetchResult,
    MeterInfo,
    SourcePayloadError,
    parse_retry_after,
)

from .conftest import DEMO_NOW

ELEC, GAS = demo.METERS


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)


async def _tick(hass: HomeAssistant, freezer: Any, minutes: int = 31) -> None:
    freezer.tick(timedelta(minutes=minutes))
    async_fire_time_changed(hass)
    await _settle(hass)


async def _load(hass: HomeAssistant, freezer: Any, options: dict[str, Any]) -> MockConfigEntry:
    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    entry = MockConfigEntry(
        domain=DOMAIN, title="MeterLake demo", data={"source": "demo"}, options=options
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await _settle(hass)
    return entry


async def _last_sum(hass: HomeAssistant, stat_id: str) -> float:
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2026, 1, 1, tzinfo=UTC),
        None,
        {stat_id},
        "hour",
        None,
        {"sum"},
    )
    total: float = rows[stat_id][-1]["sum"]
    return total


def _count(root: Path, meter: str) -> int:
    rows = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{root}/consumption/**/*.parquet', "
        f"hive_partitioning=1) WHERE meter = '{meter}'"
    ).fetchall()
    return int(rows[0][0])


async def test_malformed_payload_fails_the_poll_with_a_translated_error(
    hass: HomeAssistant, loaded_demo: Any, freezer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = loaded_demo.runtime_data.coordinator

    async def malformed(*args: Any) -> FetchResult:
        raise SourcePayloadError("demo: not JSON")

    monkeypatch.setattr(coordinator.source, "async_fetch", malformed)
    await _tick(hass, freezer)
    assert not coordinator.last_update_success
    assert coordinator.last_exception.translation_key == "source_error"
    assert coordinator.store.get("demo_electricity") == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


async def test_restart_without_a_readable_archive_refetches_the_recent_window(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path
) -> None:
    await _settle(hass)
    assert await hass.config_entries.async_unload(loaded_demo.entry_id)
    shutil.rmtree(tmp_path / "lake")
    assert await hass.config_entries.async_setup(loaded_demo.entry_id)
    await _settle(hass)
    # Nothing to prime from: the sensors' 40 days are fetched again and archived.
    rows = await hass.async_add_executor_job(_count, tmp_path / "lake", "demo_electricity")
    assert rows == 40 * 48 - 2
    assert float(hass.states.get("sensor.demo_electricity_consumption_this_month").state) > 0


async def test_raw_responses_are_kept_when_asked(
    hass: HomeAssistant, freezer: Any, demo_entry: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """Raw payloads land gzip-compressed under raw/<supplier>/YYYY/MM/DD/."""
    original = demo.DemoSource.async_fetch

    async def with_raw(self: Any, meter: MeterInfo, start: datetime, end: datetime) -> Any:
        result = await original(self, meter, start, end)
        result.raw.append((f"demo/{meter.kind}", {"rows": len(result.intervals)}))
        return result

    monkeypatch.setattr(demo.DemoSource, "async_fetch", with_raw)
    await _load(hass, freezer, dict(demo_entry.options) | {"keep_raw_days": 2})
    files = sorted((tmp_path / "lake" / "raw" / "demo").rglob("*.json.gz"))
    assert len(files) == 2
    payloads = [json.loads(gzip.decompress(f.read_bytes())) for f in files]
    assert sorted(p["rows"] for p in payloads) == [478, 478]


async def test_standing_charges_in_the_cost_statistic(
    hass: HomeAssistant, freezer: Any, demo_entry: Any, tmp_path: Path
) -> None:
    entry = await _load(hass, freezer, dict(demo_entry.options) | {"standing_charge_in_cost": True})
    stat_id = "meterlake:demo_electricity_cost"
    energy_cost = duckdb.sql(
        f"SELECT sum(cost) FROM read_parquet('{tmp_path}/lake/consumption/**/*.parquet', "
        "hive_partitioning=1) WHERE meter = 'demo_electricity'"
    ).fetchall()[0][0]
    # Ten local midnights (11th to 20th November, GMT) fall inside the imported hours.
    expected = energy_cost + 10 * demo.STANDING_CHARGES[demo.ELECTRICITY_TARIFF_NEW]
    assert await _last_sum(hass, stat_id) == pytest.approx(expected, abs=1e-9)
    # A rebuild keeps the charges in.
    await hass.services.async_call(
        DOMAIN,
        "rebuild_statistics",
        {"config_entry": entry.entry_id},
        blocking=True,
        return_response=True,
    )
    await async_wait_recording_done(hass)
    assert await _last_sum(hass, stat_id) == pytest.approx(expected, abs=1e-9)


async def test_failed_statistics_import_is_retried(
    hass: HomeAssistant, freezer: Any, demo_entry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = stats.async_import_meter
    calls: list[str] = []

    async def flaky(hass: HomeAssistant, meter: MeterInfo, *args: Any, **kwargs: Any) -> Any:
        # The first import of a poll's rows fails (the catch-up's comparisons go through).
        if not kwargs.get("reconcile"):
            calls.append(meter.key)
            if len(calls) == 1:
                raise RuntimeError("database is locked")
        return await real_import(hass, meter, *args, **kwargs)

    monkeypatch.setattr(stats, "async_import_meter", flaky)
    entry = await _load(hass, freezer, dict(demo_entry.options))
    sink = entry.runtime_data.coordinator.statistics
    assert sink.last_error == "database is locked"
    # The failing meter waits for the next poll; the other one is not held back.
    assert set(sink.pending) == {"demo_electricity"}
    assert await stats.async_last_imported_hour(hass, GAS) is not None
    await _tick(hass, freezer)
    assert sink.last_error is None
    assert sink.pending == {}
    assert await stats.async_last_imported_hour(hass, ELEC) == datetime(
        2026, 11, 20, 11, 0, tzinfo=UTC
    )


async def test_edge_windows(hass: HomeAssistant, loaded_demo: Any) -> None:
    coordinator = loaded_demo.runtime_data.coordinator
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    unknown = MeterInfo(key="demo_water", supplier="demo", kind="water", unit="L", name="W")
    # No watermark: nothing can be known to be stored.
    assert not await coordinator.async_is_stored(unknown, now - timedelta(days=1), now)
    # A window entirely after the watermark holds nothing the source has published: stored.
    assert await coordinator.async_is_stored(ELEC, now, now + timedelta(hours=1))
    empty = FetchResult(intervals=coordinator.recent.iloc[0:0], complete_until=None)
    missing = await coordinator.async_missing(ELEC, empty, now, now + timedelta(hours=1))
    assert (missing.gap_slots, missing.quiet_slots) == (0, 0)


def test_consumption_device_classes() -> None:
    def meter(unit: str, kind: str) -> MeterInfo:
        return MeterInfo(key="m", supplier="demo", kind=kind, unit=unit, name="M")

    assert consumption_device_class(meter("kWh", "electricity")) is SensorDeviceClass.ENERGY
    assert consumption_device_class(meter("m³", "gas")) is SensorDeviceClass.GAS
    assert consumption_device_class(meter("L", "water")) is SensorDeviceClass.WATER
    assert consumption_device_class(meter("kg", "heat")) is None


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 20 Nov 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Fri, 20 Nov 2026 11:59:00 GMT", now) == 0.0
    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


async def test_stored_rows_fall_back_to_memory_when_the_archive_cannot_be_read(
    hass: HomeAssistant, loaded_demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = loaded_demo.runtime_data.coordinator

    async def unreadable(*args: Any) -> None:
        return None

    monkeypatch.setattr(coordinator.archive, "async_read", unreadable)
    start = datetime(2026, 11, 19, tzinfo=UTC)
    rows = await coordinator.async_stored_rows(ELEC, start, start + timedelta(hours=2))
    assert rows["start"].tolist() == [start + timedelta(minutes=30 * i) for i in range(4)]
    assert set(rows["meter"]) == {"demo_electricity"}
    assert len(await coordinator.async_stored_rows(GAS, None, None)) == 478
    coordinator.recent = None
    assert await coordinator.async_stored_rows(ELEC, start, None) is None


async def test_fetching_an_old_window_keeps_the_current_rates(
    hass: HomeAssistant, loaded_demo: Any
) -> None:
    from custom_components.meterlake.coordinator import PollReport

    coordinator = loaded_demo.runtime_data.coordinator
    old = datetime(2026, 1, 10, tzinfo=UTC)
    report = PollReport(started=old)
    result = await coordinator.async_poll_meter(ELEC, old, old + timedelta(days=2), report)
    assert len(result.intervals) == 96
    await coordinator.async_refresh_snapshots()
    # 12:10 GMT on the 20th: the day band of the current tariff, as before the old fetch.
    assert float(hass.states.get("sensor.demo_electricity_current_rate").state) == 0.24
    assert float(hass.states.get("sensor.demo_electricity_next_rate").state) == 0.36
