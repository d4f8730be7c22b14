"""The whole pipeline through the real coordinator: archive on disk, statistics in the recorder.

The archive is read back with DuckDB and Polars; statistics with the recorder's own API. The
numbers must agree with each other and with the interval table the source produced.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.recorder import get_instance
import polars as pl
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.meterlake import statistics as stats
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources.base import FetchResult, SourceUnavailableError

from .conftest import DEMO_NOW

IDS = (
    "meterlake:demo_electricity_consumption",
    "meterlake:demo_electricity_cost",
    "meterlake:demo_gas_consumption",
    "meterlake:demo_gas_cost",
    "meterlake:demo_gas_energy",
)


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)


async def _last_sums(hass: HomeAssistant) -> dict[str, float]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period, hass, start, None, set(IDS), "hour", None, {"sum"}
    )
    return {stat_id: values[-1]["sum"] for stat_id, values in rows.items()}


def _archive_totals(root: Path) -> dict[str, tuple[int, float, float, float]]:
    query = f"""
        SELECT meter, count(*), sum(value), sum(cost), sum(coalesce(energy_kwh, 0))
        FROM read_parquet('{root}/consumption/**/*.parquet', hive_partitioning=1)
        GROUP BY meter ORDER BY meter
    """
    return {row[0]: tuple(row[1:]) for row in duckdb.sql(query).fetchall()}


async def test_archive_and_statistics_agree_with_the_interval_table(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path
) -> None:
    await _settle(hass)
    root = tmp_path / "lake"
    totals = await hass.async_add_executor_job(_archive_totals, root)
    # 10 days of backfill from 12:00 UTC to 11:00 UTC, half-hourly.
    assert totals["demo_electricity"][0] == 10 * 48 - 2
    assert totals["demo_gas"][0] == 10 * 48 - 2
    # Polars reads the same layout in place.
    scanned = (
        pl.scan_parquet(str(root / "consumption/**/*.parquet"), hive_partitioning=True)
        .group_by("meter")
        .agg(pl.col("value").sum(), pl.len())
        .collect()
    )
    by_meter = {row["meter"]: row for row in scanned.to_dicts()}
    assert by_meter["demo_gas"]["value"] == pytest.approx(totals["demo_gas"][1], abs=1e-9)
    # The interval table in memory has the same rows.
    recent = loaded_demo.runtime_data.coordinator.recent
    elec = recent[recent["meter"] == "demo_electricity"]
    assert elec["value"].sum() == pytest.approx(totals["demo_electricity"][1], abs=1e-9)
    sums = await _last_sums(hass)
    assert sums["meterlake:demo_electricity_consumption"] == pytest.approx(
        totals["demo_electricity"][1], abs=1e-9
    )
    assert sums["meterlake:demo_electricity_cost"] == pytest.approx(
        totals["demo_electricity"][2], abs=1e-9
    )
    assert sums["meterlake:demo_gas_consumption"] == pytest.approx(totals["demo_gas"][1], abs=1e-9)
    assert sums["meterlake:demo_gas_energy"] == pytest.approx(totals["demo_gas"][3], abs=1e-9)
    # Audit rows, one per fetch.
    audit = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{root}/audit/**/*.parquet', hive_partitioning=1)"
    ).fetchall()
    assert audit == [(2,)]


async def test_incremental_poll_extends_archive_and_sums(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path, freezer: Any
) -> None:
    await _settle(hass)
    before = await _last_sums(hass)
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await _settle(hass)
    totals = await hass.async_add_executor_job(_archive_totals, tmp_path / "lake")
    assert totals["demo_electricity"][0] == 10 * 48 - 1
    after = await _last_sums(hass)
    assert after["meterlake:demo_electricity_consumption"] == pytest.approx(
        totals["demo_electricity"][1], abs=1e-9
    )
    assert (
        after["meterlake:demo_electricity_consumption"]
        > before["meterlake:demo_electricity_consumption"]
    )


async def test_unwritable_archive_raises_a_repair_and_keeps_the_watermark(
    hass: HomeAssistant, freezer: Any, demo_entry: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive folder should be")
    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MeterLake demo",
        data={"source": "demo"},
        options=dict(demo_entry.options) | {"archive_root": str(blocker / "lake")},
        unique_id="demo",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"archive_unwritable_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_key == "archive_unwritable"
    assert str(blocker) in issue.translation_placeholders["root"]
    # Sensors still work from memory; the watermark did not move past unarchived rows.
    assert float(hass.states.get("sensor.demo_electricity_consumption_today").state) > 0
    assert coordinator.store.get("demo_electricity") is None
    # The user fixes the folder: the next poll writes, clears the issue and moves the watermark.
    blocker.unlink()
    blocker.mkdir()
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await _settle(hass)
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, f"archive_unwritable_{entry.entry_id}") is None
    )
    assert coordinator.store.get("demo_electricity") == datetime(2026, 11, 20, 11, 30, tzinfo=UTC)
    totals = await hass.async_add_executor_job(_archive_totals, blocker / "lake")
    assert totals["demo_electricity"][0] == 10 * 48 - 1


async def test_removing_the_entry_removes_its_archive_repair(
    hass: HomeAssistant, freezer: Any, demo_entry: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive folder should be")
    freezer.move_to(DEMO_NOW)
    demo_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        demo_entry, options=dict(demo_entry.options) | {"archive_root": str(blocker / "lake")}
    )
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    issue_id = f"archive_unwritable_{demo_entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    await hass.config_entries.async_remove(demo_entry.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_corrupt_partition_is_quarantined_and_rebuilt_from_the_source(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path, freezer: Any
) -> None:
    await _settle(hass)
    month = tmp_path / "lake/consumption/supplier=demo/meter=demo_electricity/month=2026-11"
    (month / "data.parquet").write_bytes(b"PAR1 truncated")
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await _settle(hass)
    assert list(month.glob("*.corrupt"))
    totals = await hass.async_add_executor_job(_archive_totals, tmp_path / "lake")
    # The month was re-fetched from the source, not only the 3-day overlap window: November
    # from the 1st (the demo has data before the backfill horizon) up to 11:30 UTC.
    assert totals["demo_electricity"][0] >= 10 * 48 - 1
    rows = duckdb.sql(f"SELECT min(start) FROM read_parquet('{month}/data.parquet')").fetchall()
    assert rows[0][0] == datetime(2026, 11, 1, tzinfo=UTC)


async def test_partial_fetch_is_kept_before_failing(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path, freezer: Any, monkeypatch: Any
) -> None:
    coordinator = loaded_demo.runtime_data.coordinator
    real_fetch = coordinator.source.async_fetch

    async def half_then_fail(meter: Any, start: datetime, end: datetime) -> FetchResult:
        # The source read up to 11:30 before its retry budget ran out.
        partial = await real_fetch(meter, start, datetime(2026, 11, 20, 11, 30, tzinfo=UTC))
        raise SourceUnavailableError("demo: later pages failed", partial=partial)

    monkeypatch.setattr(coordinator.source, "async_fetch", half_then_fail)
    freezer.tick(timedelta(hours=1, minutes=1))
    async_fire_time_changed(hass)
    await _settle(hass)
    assert not coordinator.last_update_success
    assert coordinator.store.get("demo_electricity") == datetime(2026, 11, 20, 11, 30, tzinfo=UTC)
    totals = await hass.async_add_executor_job(_archive_totals, tmp_path / "lake")
    assert totals["demo_electricity"][0] == 10 * 48 - 1


async def test_new_install_continues_from_an_existing_archive(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path
) -> None:
    await _settle(hass)
    archived = await hass.async_add_executor_job(_archive_totals, tmp_path / "lake")
    options = dict(loaded_demo.options)
    await hass.config_entries.async_remove(loaded_demo.entry_id)
    await _settle(hass)
    # Statistics are gone too, as on a fresh Home Assistant.
    get_instance(hass).async_clear_statistics(list(IDS))
    await async_wait_recording_done(hass)
    fresh = MockConfigEntry(
        domain=DOMAIN,
        title="MeterLake demo",
        data={"source": "demo"},
        options=options | {"backfill_days": 1},
        unique_id="demo",
    )
    fresh.add_to_hass(hass)
    assert await hass.config_entries.async_setup(fresh.entry_id)
    await _settle(hass)
    coordinator = fresh.runtime_data.coordinator
    assert coordinator.store.get("demo_electricity") == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    sums = await _last_sums(hass)
    # The statistics hold the whole archive (10 days), not just the 1-day backfill.
    assert sums["meterlake:demo_electricity_consumption"] == pytest.approx(
        archived["demo_electricity"][1], abs=1e-9
    )
    assert float(hass.states.get("sensor.demo_electricity_consumption_yesterday").state) > 0


async def _rebuild(hass: HomeAssistant, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, "rebuild_statistics", data, blocking=True, return_response=True
    )


async def test_rebuild_statistics_keeps_sums_continuous(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path
) -> None:
    await _settle(hass)
    before = await _last_sums(hass)
    response = await _rebuild(
        hass, config_entry=loaded_demo.entry_id, meter="demo_electricity", start="2026-11-15"
    )
    # 15 Nov 00:00 GMT up to 11:00 UTC on the 20th; nothing changed, so nothing is rewritten.
    assert response["meters"] == {
        "demo_electricity": {"intervals": 5 * 48 + 22, "hours_written": 0}
    }
    await async_wait_recording_done(hass)
    assert await _last_sums(hass) == pytest.approx(before, abs=1e-9)
    # From everything stored, nothing cleared first: a lost statistic is rewritten whole
    # (12:00 ten days ago to 11:00), the intact ones are left as they are.
    await stats.async_clear_statistic(hass, "meterlake:demo_electricity_consumption")
    response = await _rebuild(hass, config_entry=loaded_demo.entry_id)
    assert response["meters"]["demo_electricity"] == {"intervals": 478, "hours_written": 239}
    assert response["meters"]["demo_gas"]["hours_written"] == 0
    await async_wait_recording_done(hass)
    assert await _last_sums(hass) == pytest.approx(before, abs=1e-9)


async def test_rebuild_statistics_rejects_bad_input(hass: HomeAssistant, loaded_demo: Any) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _rebuild(hass, config_entry=loaded_demo.entry_id, meter="nope")
    assert err.value.translation_key == "unknown_meter"
    with pytest.raises(ServiceValidationError) as err:
        await _rebuild(hass, config_entry=loaded_demo.entry_id, start="2027-01-01")
    assert err.value.translation_key == "start_in_future"
    with pytest.raises(ServiceValidationError) as err:
        await _rebuild(hass, config_entry="missing")
    assert err.value.translation_key == "entry_not_found"


async def test_rebuild_statistics_with_nothing_stored(
    hass: HomeAssistant, loaded_demo: Any, monkeypatch: Any
) -> None:
    coordinator = loaded_demo.runtime_data.coordinator

    async def nothing(*args: Any) -> None:
        return None

    monkeypatch.setattr(coordinator, "async_stored_rows", nothing)
    with pytest.raises(ServiceValidationError) as err:
        await _rebuild(hass, config_entry=loaded_demo.entry_id)
    assert err.value.translation_key == "nothing_stored"


async def test_rebuild_without_a_response_runs_in_the_background(
    hass: HomeAssistant, loaded_demo: Any, hass_client: Any
) -> None:
    await _settle(hass)
    before = await _last_sums(hass)
    await stats.async_clear_statistic(hass, "meterlake:demo_gas_cost")
    response = await hass.services.async_call(
        DOMAIN, "rebuild_statistics", {"config_entry": loaded_demo.entry_id}, blocking=True
    )
    assert response is None
    # A second rebuild while the first runs is refused with a translated error.
    with pytest.raises(ServiceValidationError) as err:
        await _rebuild(hass, config_entry=loaded_demo.entry_id)
    assert err.value.translation_key == "rebuild_running"
    await _settle(hass)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_demo)
    rebuild = diagnostics["statistics"]["rebuild"]
    assert rebuild["running"] is False
    assert (rebuild["meters"], rebuild["meters_done"]) == (2, 2)
    assert rebuild["hours_written"] == 239  # the gas cost, rewritten whole
    assert rebuild["failed"] is False
    assert await _last_sums(hass) == pytest.approx(before, abs=1e-9)
