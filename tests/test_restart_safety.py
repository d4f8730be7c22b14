"""Restarts and faults inside one Home Assistant: stores, full disks, repairs that clear.

The multi-process faults (SIGKILL, two writers) are in tests/faults/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import errno
import os
from pathlib import Path
from typing import Any

import duckdb
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.meterlake import archive as archive_module
from custom_components.meterlake.const import DOMAIN

from .conftest import DEMO_NOW

WATERMARK = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)


async def _tick(hass: HomeAssistant, freezer: Any, minutes: int = 31) -> None:
    freezer.tick(timedelta(minutes=minutes))
    async_fire_time_changed(hass)
    await _settle(hass)


def _archived_slots(root: Path, meter: str) -> list[datetime]:
    rows = duckdb.sql(
        f"SELECT start FROM read_parquet('{root}/consumption/**/*.parquet', "
        f"hive_partitioning=1) WHERE meter = '{meter}' ORDER BY start"
    ).fetchall()
    return [row[0] for row in rows]


def _write_store(hass_storage: dict[str, Any], entry_id: str, data: Any) -> None:
    """Put a watermark file in .storage as a hand edit or an older version would leave it.

    (The test harness keeps .storage in `hass_storage` instead of files.)
    """
    key = f"meterlake.{entry_id}"
    hass_storage[key] = {"version": 1, "minor_version": 1, "key": key, "data": data}


async def _restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await _settle(hass)


# --- the watermark store ----------------------------------------------------------------------


async def test_a_watermark_in_the_future_is_dropped_and_rebuilt_from_the_archive(
    hass: HomeAssistant,
    loaded_demo: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _settle(hass)
    assert await hass.config_entries.async_unload(loaded_demo.entry_id)
    _write_store(
        hass_storage,
        loaded_demo.entry_id,
        {"watermarks": {"demo_electricity": "2099-01-01T00:00:00+00:00"}},
    )
    assert await hass.config_entries.async_setup(loaded_demo.entry_id)
    await _settle(hass)
    assert "is in the future" in caplog.text
    # Not frozen in 2099: it continues from the newest archived interval, as a poll would.
    assert loaded_demo.runtime_data.coordinator.store.get("demo_electricity") == WATERMARK


@pytest.mark.parametrize(
    "data",
    [
        ["not", "an", "object"],
        "a string",
        {"watermarks": ["a", "list"]},
        {"watermarks": {"demo_electricity": None, "demo_gas": 12}},
        {"watermarks": {"demo_electricity": "yesterday"}},
        {"watermarks": {"demo_electricity": "2026-11-20T11:00:00"}},  # naive: read as UTC
    ],
)
async def test_a_store_of_the_wrong_shape_does_not_stop_setup(
    hass: HomeAssistant,
    loaded_demo: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    data: Any,
) -> None:
    await _settle(hass)
    assert await hass.config_entries.async_unload(loaded_demo.entry_id)
    _write_store(hass_storage, loaded_demo.entry_id, data)
    assert await hass.config_entries.async_setup(loaded_demo.entry_id)
    await _settle(hass)
    assert loaded_demo.state is ConfigEntryState.LOADED
    coordinator = loaded_demo.runtime_data.coordinator
    assert coordinator.store.get("demo_electricity") == WATERMARK
    assert float(hass.states.get("sensor.demo_electricity_consumption_today").state) > 0


async def test_a_store_file_that_is_not_a_store_does_not_stop_setup(
    hass: HomeAssistant,
    loaded_demo: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _settle(hass)
    assert await hass.config_entries.async_unload(loaded_demo.entry_id)
    hass_storage[f"meterlake.{loaded_demo.entry_id}"] = ["a", "list", "for", "a", "file"]
    assert await hass.config_entries.async_setup(loaded_demo.entry_id)
    await _settle(hass)
    assert loaded_demo.state is ConfigEntryState.LOADED
    assert "Ignoring the whole store" in caplog.text
    assert loaded_demo.runtime_data.coordinator.store.get("demo_electricity") == WATERMARK


# --- a full disk --------------------------------------------------------------------------------


class _Disk:
    """os.replace as the archive sees it, failing with ENOSPC while `full`."""

    def __init__(self) -> None:
        self.full = False
        self.refused = 0
        self._replace = os.replace

    def replace(self, src: Any, dst: Any) -> None:
        if self.full:
            self.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        self._replace(src, dst)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> _Disk:
    fake = _Disk()
    monkeypatch.setattr(archive_module.os, "replace", fake.replace)
    return fake


async def test_rows_refused_by_a_full_disk_during_a_backfill_reach_the_archive_later(
    hass: HomeAssistant,
    loaded_demo: MockConfigEntry,
    freezer: Any,
    tmp_path: Path,
    disk: _Disk,
) -> None:
    await _settle(hass)
    lake = tmp_path / "lake"
    disk.full = True
    original_window = archive_module.Archive.write_intervals
    calls = 0

    def first_window_on_full_disk(self: Any, frame: Any) -> Any:
        # The disk frees up after the first (oldest) backfill window.
        nonlocal calls
        calls += 1
        if calls > 1:
            disk.full = False
        return original_window(self, frame)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(archive_module.Archive, "write_intervals", first_window_on_full_disk)
        await hass.services.async_call(
            DOMAIN,
            "backfill",
            {"config_entry": loaded_demo.entry_id, "days": 40, "force": True},
            blocking=True,
            return_response=True,
        )
    assert disk.refused > 0
    # The newer window succeeded, yet the oldest days are still owed to the archive...
    slots = await hass.async_add_executor_job(_archived_slots, lake, "demo_electricity")
    assert slots[0] > datetime(2026, 10, 12, tzinfo=UTC)
    # ... and the next poll fetches them again.
    await _tick(hass, freezer)
    slots = await hass.async_add_executor_job(_archived_slots, lake, "demo_electricity")
    expected_first = datetime(2026, 10, 11, 12, 0, tzinfo=UTC)
    assert slots[0] == expected_first
    step = timedelta(minutes=30)
    assert len(slots) == len(set(slots)) == (slots[-1] - expected_first) // step + 1


async def test_the_archive_repair_clears_when_the_user_points_the_root_elsewhere(
    hass: HomeAssistant, freezer: Any, demo_entry: MockConfigEntry, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive folder should be")
    freezer.move_to(DEMO_NOW)
    demo_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        demo_entry, options=dict(demo_entry.options) | {"archive_root": str(blocker / "lake")}
    )
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await _settle(hass)
    issue_id = f"archive_unwritable_{demo_entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    result = await hass.config_entries.options.async_init(demo_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        dict(demo_entry.options) | {"archive_root": str(tmp_path / "elsewhere")},
    )
    await _settle(hass)
    assert demo_entry.state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


# --- memory: never the whole history at once ---------------------------------------------------


async def test_a_new_install_over_a_long_archive_reads_it_a_month_at_a_time(
    hass: HomeAssistant,
    freezer: Any,
    demo_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Setup reads back the recent window only; the statistics catch-up one month per read."""
    from homeassistant.components.recorder.statistics import get_last_statistics
    from homeassistant.helpers.recorder import get_instance

    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    demo_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        demo_entry, options={**demo_entry.options, "backfill_days": 100}
    )
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await _settle(hass)
    stat_id = "meterlake:demo_electricity_consumption"

    async def last_sum() -> float:
        found = await get_instance(hass).async_add_executor_job(
            get_last_statistics, hass, 1, stat_id, False, {"sum"}
        )
        return float(found[stat_id][0]["sum"])

    before = await last_sum()
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    # A new install: no watermarks, the archive of 100 days is all there is.
    _write_store(hass_storage, demo_entry.entry_id, {"watermarks": {}})
    reads: list[tuple[datetime | None, datetime | None]] = []
    real_read = archive_module.Archive.read_intervals

    def read_intervals(self: Any, meter: str, start: Any = None, end: Any = None, **kw: Any) -> Any:
        reads.append((start, end))
        return real_read(self, meter, start, end, **kw)

    monkeypatch.setattr(archive_module.Archive, "read_intervals", read_intervals)
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await _settle(hass)
    assert demo_entry.runtime_data.coordinator.store.get("demo_electricity") == WATERMARK
    assert reads
    now = datetime.fromisoformat(DEMO_NOW)
    for start, end in reads:
        assert start is not None
        # The recent window (41 days back to now), or one month of the catch-up.
        if end is None:
            assert now - start <= timedelta(days=41, hours=1)
        else:
            assert end - start <= timedelta(days=31)
    # The catch-up found the statistics complete: nothing moved.
    assert await last_sum() == before
