"""Edges of the eCO2mix / Tibber layer through Home Assistant: archive priming, memory fallback,
emissions runs, archive failures and diagnostics.

The fake ODRE and Tibber servers come from test_eco2mix_entry and test_tibber_entry; expected
numbers are computed here from their generators and fixtures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, patch

import duckdb
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.recorder import get_instance
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (  # type: ignore[import-untyped]
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.components.recorder.common import (  # type: ignore[import-untyped]
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.analytics.grid import empty_grid
from custom_components.meterlake.analytics.intervals import empty_intervals
from custom_components.meterlake.archive import Archive, ArchiveError
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.emissions import DAILY_RECHECK, RECHECK, emissions_issue_id
from custom_components.meterlake.lake import async_get_lake
from custom_components.meterlake.sinks import ArchiveSink, archive_issue_id
from custom_components.meterlake.sources.base import AuditRecord, FetchResult, MeterInfo
from custom_components.meterlake.sources.eco2mix import Eco2mixSource
from custom_components.meterlake.store import WatermarkStore

from . import test_eco2mix_entry
from .test_eco2mix_entry import (
    NATIONAL,
    NOW,
    PUBLISHED,
    QUARTER,
    Odre,
    _no_backoff,  # noqa: F401 - autouse: no retry delays against the fake ODRE
    co2_rows,
    grid_entry,
    intensity,
    odre,  # noqa: F401 - fixture
    record,
    setup,
    setup_linked,
    state_of,
    value_of,
)
from .test_tibber_entry import (
    USER_ID,
    _fresh_limiter,  # noqa: F401 - autouse: the Tibber rate limiter starts empty
    consumption_nodes,
    loaded,  # noqa: F401 - fixture
    make_tibber_entry,
    node_cost,
    serve,
    state_of as tibber_state_of,
    tibber_entry,  # noqa: F401 - fixture
)
from .test_tibber_source import HOME_A, HOMES, KEY_A, NOW as TIBBER_NOW, TOKEN, fx

DEMO_METER = "demo_electricity"
# The newest grid slot with a consumption (the two after it are announced without one).
NEWEST = PUBLISHED - 3 * QUARTER
# The demo supplier publishes up to an hour before now, in half-hours.
DEMO_UNTIL = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
POLL_18 = datetime(2026, 11, 20, 12, 18, tzinfo=UTC)


async def co2_hours(hass: HomeAssistant) -> dict[datetime, float | None]:
    """The emissions statistic's hourly states, by hour start."""
    return {datetime.fromtimestamp(r["start"], UTC): r["state"] for r in await co2_rows(hass)}


def demo_half_hours(tmp_path: Path) -> list[tuple[datetime, float]]:
    """The demo meter's archived half-hours (start, kWh)."""
    relation = duckdb.sql(
        f"SELECT start, value FROM read_parquet('{tmp_path}/lake/consumption/**/*.parquet', "
        f"hive_partitioning=1) WHERE meter = '{DEMO_METER}' ORDER BY start"
    )
    assert relation is not None
    return relation.fetchall()


@pytest.mark.usefixtures("odre")
async def test_new_install_over_an_existing_grid_archive(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """No watermark but grid rows in the archive: continue from them, show them at once."""
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await WatermarkStore(hass, entry.entry_id).async_remove()

    fetched: list[datetime] = []

    async def nothing_new(
        _source: Eco2mixSource, meter: MeterInfo, start: datetime, end: datetime
    ) -> FetchResult:
        fetched.append(end)
        return FetchResult(intervals=empty_intervals(), complete_until=None, grid=empty_grid())

    with patch.object(Eco2mixSource, "async_fetch", nothing_new):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert fetched == [NOW]  # the first poll ran, and brought nothing
    coordinator = entry.runtime_data.coordinator
    # The watermark is where a poll would have left it: the newest quarter with a consumption
    # (the null tail is read again).
    assert coordinator.store.get(NATIONAL) == PUBLISHED - 2 * QUARTER
    # The sensors show the archived grid although the source gave nothing.
    expected = record(NEWEST, region=None)
    consumption = state_of(hass, NATIONAL, "grid_consumption")
    assert float(consumption.state) == expected["consommation"]
    assert datetime.fromisoformat(consumption.attributes["slot_start"]) == NEWEST
    assert value_of(hass, NATIONAL, "carbon_intensity") == intensity(NEWEST)
    assert value_of(hass, NATIONAL, "production_nuclear") == 40000
    assert coordinator.grid_recent is not None
    assert coordinator.grid_recent["start"].max() == pd.Timestamp(PUBLISHED - QUARTER)


@pytest.mark.usefixtures("odre")
async def test_restart_of_a_grid_entry_fetches_from_its_watermark(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """Grid meters never fill `recent`, so window_start treats every restart as memory-less."""
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    watermark = entry.runtime_data.coordinator.store.get(NATIONAL)
    assert watermark == PUBLISHED - 2 * QUARTER
    assert await hass.config_entries.async_unload(entry.entry_id)

    starts: list[datetime] = []
    fetch = Eco2mixSource.async_fetch

    async def recording(
        source: Eco2mixSource, meter: MeterInfo, start: datetime, end: datetime
    ) -> FetchResult:
        starts.append(start)
        return await fetch(source, meter, start, end)

    with patch.object(Eco2mixSource, "async_fetch", recording):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    # Watermark 11:30 minus the 3 h overlap, in whole hours.
    assert starts == [datetime(2026, 11, 20, 8, 0, tzinfo=UTC)]


@pytest.mark.usefixtures("odre")
async def test_grid_rows_from_memory_when_the_archive_cannot_be_read(
    hass: HomeAssistant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    (meter,) = coordinator.source.meters
    root = str(tmp_path / "lake")
    start, end = PUBLISHED - timedelta(hours=2), PUBLISHED - timedelta(hours=1)
    with patch.object(
        Archive, "read_grid_mix", side_effect=ArchiveError(root, "permission denied")
    ):
        assert await coordinator.archive.async_read_grid(meter, start, end) is None
        assert f"Cannot read the archive: {root}: permission denied" in caplog.text

        rows = await coordinator.async_stored_rows(meter, start, end)
        assert rows is not None
        slots = [start + i * QUARTER for i in range(4)]
        assert [t.to_pydatetime() for t in rows["start"]] == slots
        assert rows["taux_co2"].tolist() == [intensity(s) for s in slots]
        assert set(rows["meter"]) == {NATIONAL}
        assert rows.index.tolist() == [0, 1, 2, 3]

        tail = await coordinator.async_stored_rows(meter, start, None)
        assert tail is not None
        assert tail["start"].min() == pd.Timestamp(start)
        assert tail["start"].max() == pd.Timestamp(PUBLISHED - QUARTER)
        assert len(tail) == int((PUBLISHED - start) / QUARTER)

        head = await coordinator.async_stored_rows(meter, None, end)
        everything = await coordinator.async_stored_rows(meter, None, None)
        assert head is not None
        assert everything is not None
        assert len(everything) == len(coordinator.grid_recent)
        assert len(head) == len(everything) - len(tail) + 4
        assert head["start"].max() == pd.Timestamp(end - QUARTER)
        # Memory holds the window, so a backfill would skip it.
        assert await coordinator.async_is_stored(meter, start, end)

        coordinator.grid_recent = None  # nothing in memory either
        assert await coordinator.async_stored_rows(meter, start, end) is None
        assert not await coordinator.async_is_stored(meter, start, end)


@pytest.mark.usefixtures("odre")
async def test_grid_meters_have_no_statistics_of_their_own(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    (meter,) = coordinator.source.meters
    assert coordinator.emissions is None
    assert await coordinator.async_rebuild_statistics(meter, None) == (0, 0)
    assert await coordinator.async_rebuild_statistics(meter, NOW - timedelta(days=1)) == (0, 0)
    # The catch-up after start skips the grid meter although it has a watermark.
    assert coordinator.store.get(NATIONAL) is not None
    with patch.object(coordinator.archive, "async_read", AsyncMock()) as read:
        await coordinator.async_catch_up_statistics()
    read.assert_not_called()
    assert coordinator.statistics.pending == {}


@pytest.mark.usefixtures("odre")
async def test_second_aligned_poll_recomputes_the_emissions(
    hass: HomeAssistant,
    tmp_path: Path,
    demo_entry: MockConfigEntry,
    freezer: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RTE revises its real-time intensities; the :18 poll re-reads them and rewrites hours."""
    entry = await setup_linked(hass, tmp_path, demo_entry)
    tracker = entry.runtime_data.coordinator.emissions
    assert tracker is not None
    before = await co2_hours(hass)
    last = max(before)
    assert last == DEMO_UNTIL - timedelta(hours=1)

    # What the emissions read of the demo's electricity, through the lake.
    lake = async_get_lake(hass)
    read_from: list[datetime | None] = []
    lake_rows: Callable[..., Awaitable[pd.DataFrame | None]] = lake.async_rows

    async def recording(
        key: str, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        if key == "demo_electricity":
            read_from.append(start)
        return await lake_rows(key, start, end)

    def revised(slot: datetime) -> float:
        return intensity(slot) + 10

    monkeypatch.setattr(test_eco2mix_entry, "intensity", revised)
    monkeypatch.setattr(lake, "async_rows", recording)
    freezer.move_to(POLL_18)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)

    # One run, over the last stored hour minus the recheck window.
    assert read_from == [last - RECHECK]
    # The poll re-read from the watermark (11:30) minus its 3 h overlap, whole hours: 08:00.
    revised_from = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    after = await co2_hours(hass)
    assert set(after) == set(before)
    changed = sorted(h for h in after if after[h] != before[h])
    assert changed == [revised_from + timedelta(hours=i) for i in range(3)]
    assert tracker.hours_written == len(changed)

    def mean(start: datetime) -> float:
        return (
            sum(revised(q) if q >= revised_from else intensity(q) for q in (start, start + QUARTER))
            / 2
        )

    half_hours = demo_half_hours(tmp_path)
    for hour in changed:
        kg = sum(v * mean(s) / 1000 for s, v in half_hours if s.replace(minute=0) == hour)
        assert after[hour] == pytest.approx(kg, rel=1e-12)
    midnight = datetime(2026, 11, 19, 23, 0, tzinfo=UTC)
    today = sum(v * mean(s) / 1000 for s, v in half_hours if s >= midnight)
    assert value_of(hass, NATIONAL, "emissions_today") == pytest.approx(today, rel=1e-9)


@pytest.mark.usefixtures("odre")
async def test_schedule_during_a_run_starts_no_second_one(
    hass: HomeAssistant, tmp_path: Path, demo_entry: MockConfigEntry
) -> None:
    entry = await setup_linked(hass, tmp_path, demo_entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    tracker = entry.runtime_data.coordinator.emissions
    assert tracker is not None
    gate = asyncio.Event()
    with patch.object(tracker, "async_update", AsyncMock(side_effect=gate.wait)) as update:
        tracker.schedule()
        running = tracker._task
        tracker.schedule()
        await asyncio.sleep(0)
        assert update.call_count == 1
        assert tracker._task is running
        assert running is not None
        assert not running.done()
        gate.set()
        await hass.async_block_till_done(wait_background_tasks=True)
        assert running.done()
        tracker.schedule()  # finished: the next poll starts a new run
        await hass.async_block_till_done(wait_background_tasks=True)
        assert update.call_count == 2
        assert tracker._task is not running


@pytest.mark.usefixtures("odre")
async def test_linked_meter_counts_only_in_a_loaded_entry(
    hass: HomeAssistant, tmp_path: Path, demo_entry: MockConfigEntry
) -> None:
    entry = await setup_linked(hass, tmp_path, demo_entry)
    tracker = entry.runtime_data.coordinator.emissions
    assert tracker is not None
    issue_id = emissions_issue_id(entry.entry_id)
    found = tracker.find_meter()
    assert found is not None
    assert found.meter.key == DEMO_METER
    assert found.entry_id == demo_entry.entry_id
    today = value_of(hass, NATIONAL, "emissions_today")
    assert today > 0
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None

    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    await hass.async_block_till_done()
    assert tracker.find_meter() is None
    await tracker.async_update()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"meter": DEMO_METER, "entry": entry.title}
    assert state_of(hass, NATIONAL, "emissions_today").state == "unknown"

    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    await tracker.async_update()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert value_of(hass, NATIONAL, "emissions_today") == pytest.approx(today, rel=1e-12)


async def test_audit_of_a_failed_poll_on_an_unwritable_archive(
    hass: HomeAssistant,
    odre: Odre,  # noqa: F811 - fixture
    tmp_path: Path,
    freezer: Any,
) -> None:
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    root = str(tmp_path / "lake")
    odre.fail_with = 500
    freezer.move_to(POLL_18)
    with patch.object(
        Archive, "write_audit", side_effect=ArchiveError(root, "read-only file system")
    ) as write_audit:
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert not coordinator.last_update_success
    ((records,), _) = write_audit.call_args
    assert {r.status for r in records} == {500}
    issue = ir.async_get(hass).async_get_issue(DOMAIN, archive_issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_key == "archive_unwritable"
    assert issue.translation_placeholders == {"root": root, "error": "read-only file system"}
    assert coordinator.archive.last_error == "read-only file system"


async def test_audit_rows_without_an_archive(hass: HomeAssistant, tmp_path: Path) -> None:
    """Nothing to write opens nothing; something to write on a file path raises the repair."""
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("", encoding="utf-8")
    sink = ArchiveSink(hass, "01AUDITENTRY", {"archive_root": str(blocker)})
    await sink.async_write_audit([])
    assert sink.archive is None
    assert ir.async_get(hass).async_get_issue(DOMAIN, sink.issue_id) is None

    audit = AuditRecord(
        time=NOW, supplier="eco2mix", endpoint="poll", status=500, rows=0, duration_s=0.1
    )
    await sink.async_write_audit([audit])
    assert sink.archive is None
    issue = ir.async_get(hass).async_get_issue(DOMAIN, sink.issue_id)
    assert issue is not None
    assert issue.translation_key == "archive_unwritable"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["root"] == str(blocker)
    assert sink.last_error == issue.translation_placeholders["error"]


async def test_diagnostics_of_a_tibber_entry(
    hass: HomeAssistant,
    loaded: MockConfigEntry,  # noqa: F811 - fixture
    hass_client: Any,
) -> None:
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    text = str(result)
    for secret in (TOKEN, HOME_A, KEY_A, USER_ID, HOMES[0]["name"], "Kari Nordmann"):
        assert str(secret) not in text
    assert result["entry"]["data"]["homes"] == "**REDACTED**"
    assert result["entry"]["data"]["access_token"] == "**REDACTED**"
    with_prices = [s for s in result["snapshots"].values() if s["prices"] is not None]
    assert len(with_prices) == 1  # the production meter has no prices
    prices = with_prices[0]["prices"]
    price_info = fx("prices")["data"]["viewer"]["home"]["currentSubscription"]["priceInfo"]
    today = price_info["today"]
    assert prices["listed"] == len(today) + len(price_info["tomorrow"]) == 192
    current = next(s for s in today if s["startsAt"].startswith("2026-03-10T11:15"))
    assert prices["current"] == pytest.approx(current["total"])
    assert datetime.fromisoformat(prices["current_start"]) == datetime.fromisoformat(
        current["startsAt"]
    )
    assert prices["current_level"] == current["level"].lower()
    assert prices["today_min"] == pytest.approx(min(s["total"] for s in today))
    assert prices["tomorrow_available"] is True
    assert with_prices[0]["tariff"]["current_rate"] == pytest.approx(current["total"])
    assert with_prices[0]["grid"] is None
    assert with_prices[0]["composed"] is None


@pytest.mark.usefixtures("odre")
async def test_diagnostics_of_a_linked_eco2mix_entry(
    hass: HomeAssistant,
    tmp_path: Path,
    demo_entry: MockConfigEntry,
    hass_client: Any,
) -> None:
    entry = await setup_linked(hass, tmp_path, demo_entry)
    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert DEMO_METER not in str(result)
    assert result["entry"]["options"]["co2_meter"] == "**REDACTED**"
    snapshot = result["snapshots"]["meter_0"]
    expected = record(NEWEST, region=None)
    assert snapshot["tariff"] is None
    grid = snapshot["grid"]["values"]
    assert grid["consommation"] == {"start": NEWEST.isoformat(), "value": expected["consommation"]}
    assert grid["taux_co2"] == {"start": NEWEST.isoformat(), "value": intensity(NEWEST)}
    # Announced slots carry the forecast only: their newest start is the newest published one.
    assert grid["prevision_j"]["start"] == (PUBLISHED - QUARTER).isoformat()
    assert list(grid) == sorted(grid)
    mix = snapshot["grid"]["mix"]
    assert mix["start"] == NEWEST.isoformat()
    assert list(mix["values"]) == sorted(mix["values"])
    assert mix["values"]["nucleaire"] == 40000
    assert mix["values"]["gaz"] == 2000
    assert snapshot["grid"]["emissions_meter"] == "**REDACTED**"
    assert snapshot["grid"]["emissions_today"] == pytest.approx(
        value_of(hass, NATIONAL, "emissions_today"), rel=1e-6
    )
    assert snapshot["grid"]["emissions_missing"] == 0
    assert snapshot["prices"] is None


async def test_spot_prices_of_a_home_without_currency(
    hass: HomeAssistant, freezer: Any, aioclient_mock: AiohttpClientMocker, tmp_path: Path
) -> None:
    """Price sensors exist for every import meter; without a currency they have no unit."""
    freezer.move_to(TIBBER_NOW)
    await hass.config.async_set_time_zone("Europe/Oslo")
    serve(aioclient_mock)
    entry = make_tibber_entry(tmp_path, [HOMES[0] | {"currency": None}])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    today = fx("prices")["data"]["viewer"]["home"]["currentSubscription"]["priceInfo"]["today"]
    totals = [s["total"] for s in today]
    for key, expected in (
        ("price_min_today", min(totals)),
        ("price_max_today", max(totals)),
        ("price_average_today", sum(totals) / len(totals)),
    ):
        state = tibber_state_of(hass, KEY_A, key)
        assert float(state.state) == pytest.approx(expected)
        assert "unit_of_measurement" not in state.attributes
    registry = er.async_get(hass)
    for key in ("current_rate", "next_rate", "cost_today"):
        assert registry.async_get_entity_id("sensor", DOMAIN, f"{KEY_A}_{key}") is None


@pytest.mark.usefixtures("odre")
async def test_missing_slots_count_whole_quarter_hours_only(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """A window inside one quarter-hour has no slot to miss; one that spans a slot does."""
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    (meter,) = coordinator.source.meters
    nothing = FetchResult(intervals=empty_intervals(), complete_until=PUBLISHED, grid=empty_grid())
    start = PUBLISHED - timedelta(hours=2, minutes=-5)  # 10:05

    async def missing(minutes: int) -> int:
        found = await coordinator.async_missing(
            meter, nothing, start, start + timedelta(minutes=minutes)
        )
        return found.gap_slots

    assert await missing(5) == 0
    assert await missing(25) == 1
    assert await missing(60) == 3


async def test_tibber_cost_with_the_standing_charge_option(
    hass: HomeAssistant, freezer: Any, aioclient_mock: AiohttpClientMocker, tmp_path: Path
) -> None:
    """Tibber publishes no standing charge: with the option on, cost is the intervals' cost."""
    freezer.move_to(TIBBER_NOW)
    await hass.config.async_set_time_zone("Europe/Oslo")
    serve(aioclient_mock)
    entry = make_tibber_entry(tmp_path, standing_charge_in_cost=True)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    assert entry.runtime_data.coordinator.statistics.last_error is None
    horizon = TIBBER_NOW - timedelta(days=4)
    costs = [
        cost
        for node in consumption_nodes()
        if node["consumption"] is not None and datetime.fromisoformat(node["from"]) >= horizon
        if (cost := node_cost(node)) is not None
    ]
    stat = f"meterlake:{KEY_A}_cost"
    stats = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2026, 1, 1, tzinfo=UTC),
        None,
        {stat},
        "hour",
        None,
        {"sum", "state"},
    )
    assert len(stats[stat]) == len(costs)
    assert stats[stat][-1]["sum"] == pytest.approx(sum(costs))


async def test_catch_up_after_a_complete_import_sends_nothing(
    hass: HomeAssistant, loaded_demo: MockConfigEntry
) -> None:
    """Every statistic equals the archive: the catch-up compares and writes no row."""
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    coordinator = loaded_demo.runtime_data.coordinator
    with patch("custom_components.meterlake.statistics.async_add_external_statistics") as written:
        await coordinator.async_catch_up_statistics()
    written.assert_not_called()
    assert coordinator.statistics.pending == {}


@pytest.mark.usefixtures("odre")
async def test_first_run_of_a_day_rechecks_the_consolidated_window(
    hass: HomeAssistant, tmp_path: Path, demo_entry: MockConfigEntry
) -> None:
    """Once a day the emissions reach back as far as RTE's consolidated refresh (45 days)."""
    entry = await setup_linked(hass, tmp_path, demo_entry)
    tracker = entry.runtime_data.coordinator.emissions
    assert tracker is not None
    last = max(await co2_hours(hass))
    demo_coordinator = demo_entry.runtime_data.coordinator
    read_from: list[datetime | None] = []
    stored_rows = demo_coordinator.async_stored_rows

    async def recording(
        meter: MeterInfo, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        read_from.append(start)
        return await stored_rows(meter, start, end)

    with patch.object(demo_coordinator, "async_stored_rows", recording):
        tracker._deep_checked = (NOW - timedelta(days=1)).date()  # a run of yesterday
        await tracker.async_update()
        await tracker.async_update()  # the same day again: the short window
    assert read_from == [last - DAILY_RECHECK, last - RECHECK]


@pytest.mark.usefixtures("odre")
async def test_no_emissions_run_starts_for_an_unloaded_entry(
    hass: HomeAssistant, tmp_path: Path, demo_entry: MockConfigEntry
) -> None:
    """A poll finishing after unload must not leave a task behind on the unloaded entry."""
    entry = await setup_linked(hass, tmp_path, demo_entry)
    tracker = entry.runtime_data.coordinator.emissions
    assert tracker is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    with patch.object(tracker, "async_update", AsyncMock()) as update:
        tracker.schedule()
        await hass.async_block_till_done(wait_background_tasks=True)
    update.assert_not_called()
