"""Archive verification: damaged or deleted months are found, rebuilt or reported, never lost.

A demo household with 70 days of history: September (from the 11th), October and November.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
import shutil
from typing import Any

import duckdb
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources.base import FetchResult

from .conftest import DEMO_NOW

METER_DIR = "consumption/supplier=demo/meter=demo_electricity"


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)


@pytest.fixture
async def lake(
    hass: HomeAssistant, freezer: Any, demo_entry: MockConfigEntry, tmp_path: Path
) -> Path:
    """The demo entry with 70 days of history, loaded and settled; its archive root."""
    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    demo_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        demo_entry, options=dict(demo_entry.options) | {"backfill_days": 70}
    )
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await _settle(hass)
    return tmp_path / "lake"


async def _verify(hass: HomeAssistant, entry: MockConfigEntry, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        "verify_archive",
        {"config_entry": entry.entry_id, **data},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    meters: dict[str, Any] = response["meters"]
    return meters


def _months(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {month["month"]: month for month in report["months"]}


def _sum_sql(root: Path, since: datetime | None = None) -> float:
    where = "" if since is None else f" AND start >= TIMESTAMPTZ '{since.isoformat()}'"
    rows = duckdb.sql(
        f"SELECT sum(value) FROM read_parquet('{root}/consumption/**/*.parquet', "
        f"hive_partitioning=1) WHERE meter = 'demo_electricity'{where}"
    ).fetchall()
    return float(rows[0][0])


async def _forget_before(hass: HomeAssistant, entry: MockConfigEntry, cutoff: datetime) -> None:
    """The source no longer serves anything before `cutoff` (supplier history limit)."""
    source = entry.runtime_data.coordinator.source
    fetch = source.async_fetch

    async def limited(meter: Any, start: datetime, end: datetime) -> FetchResult:
        return await fetch(meter, max(start, cutoff), max(end, cutoff))

    source.async_fetch = limited


async def test_a_healthy_archive_reports_every_month_complete(
    hass: HomeAssistant, demo_entry: MockConfigEntry, lake: Path
) -> None:
    report = await _verify(hass, demo_entry, meter="demo_electricity")
    months = _months(report["demo_electricity"])
    assert list(months) == ["2026-09", "2026-10", "2026-11"]
    # 11 Sep 12:00 UTC to 20 Nov 11:00 UTC, every half-hour.
    assert months["2026-09"]["expected"] == months["2026-09"]["rows"] == 19 * 48 + 24
    assert months["2026-10"]["expected"] == months["2026-10"]["rows"] == 31 * 48
    assert months["2026-11"]["expected"] == months["2026-11"]["rows"] == 19 * 48 + 22
    assert report["demo_electricity"]["missing"] == 0
    assert report["demo_electricity"]["lost_months"] == []


async def test_a_garbage_old_month_is_set_aside_and_fetched_again(
    hass: HomeAssistant, demo_entry: MockConfigEntry, lake: Path
) -> None:
    before = await hass.async_add_executor_job(_sum_sql, lake)
    (lake / METER_DIR / "month=2026-09" / "data.parquet").write_bytes(b"not parquet at all")
    report = await _verify(hass, demo_entry)
    electricity = report["demo_electricity"]
    assert electricity["damaged_months"] == ["2026-09"]
    assert electricity["refetched_months"] == ["2026-09"]
    assert _months(electricity)["2026-09"]["unreadable_files"] == ["data.parquet"]
    # The whole month came back from the source (the demo serves all of it, also the days
    # before the first backfill).
    september = _months(electricity)["2026-09"]
    assert september["rows"] == september["expected"] == 30 * 48
    assert electricity["lost_months"] == []
    # The README's DuckDB query works again and sees the same history from the 11th on.
    after = await hass.async_add_executor_job(_sum_sql, lake, datetime(2026, 9, 11, 12, tzinfo=UTC))
    assert after == pytest.approx(before, abs=1e-9)
    assert list((lake / METER_DIR / "month=2026-09").glob("_data.parquet*.corrupt"))


async def test_an_old_damaged_month_is_repaired_at_start_without_an_action(
    hass: HomeAssistant, demo_entry: MockConfigEntry, lake: Path
) -> None:
    before = await hass.async_add_executor_job(_sum_sql, lake)
    (lake / METER_DIR / "month=2026-10" / "data.parquet").write_bytes(b"")
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await _settle(hass)
    assert await hass.async_add_executor_job(_sum_sql, lake) == pytest.approx(before, abs=1e-9)


async def test_a_deleted_month_the_source_no_longer_serves_is_reported_and_protected(
    hass: HomeAssistant, demo_entry: MockConfigEntry, lake: Path
) -> None:
    await _forget_before(hass, demo_entry, datetime(2026, 11, 1, tzinfo=UTC))
    shutil.rmtree(lake / METER_DIR / "month=2026-10")
    report = await _verify(hass, demo_entry, meter="demo_electricity")
    assert report["demo_electricity"]["lost_months"] == ["2026-10"]
    assert _months(report["demo_electricity"])["2026-10"]["gaps"] == 1
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"archive_damaged_{demo_entry.entry_id}")
    assert issue is not None
    assert "2026-10" in issue.translation_placeholders["months"]
    # A rebuild would drop October from the statistics: refused, with the months named.
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "rebuild_statistics",
            {"config_entry": demo_entry.entry_id, "meter": "demo_electricity"},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "rebuild_would_drop_history"
    assert err.value.translation_placeholders["months"] == "2026-10"


async def test_a_lost_first_month_is_noticed_from_the_statistics(
    hass: HomeAssistant, demo_entry: MockConfigEntry, lake: Path
) -> None:
    """Nothing in the archive says September existed; the statistics do."""
    await _forget_before(hass, demo_entry, datetime(2026, 10, 1, tzinfo=UTC))
    shutil.rmtree(lake / METER_DIR / "month=2026-09")
    report = await _verify(hass, demo_entry, meter="demo_electricity")
    assert report["demo_electricity"]["lost_months"] == ["2026-09"]


async def test_the_issue_goes_once_the_months_are_back(
    hass: HomeAssistant, demo_entry: MockConfigEntry, lake: Path
) -> None:
    month = lake / METER_DIR / "month=2026-10"
    backup = lake.parent / "backup"
    shutil.copytree(month, backup)
    await _forget_before(hass, demo_entry, datetime(2026, 11, 1, tzinfo=UTC))
    shutil.rmtree(month)
    await _verify(hass, demo_entry)
    issue_id = f"archive_damaged_{demo_entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    shutil.copytree(backup, month)
    await _verify(hass, demo_entry)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
