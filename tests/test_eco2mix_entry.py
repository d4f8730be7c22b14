"""eCO2mix entries through the real coordinator: grid sensors, archive, audit and emissions.

A small fake of the ODRE API answers /records (paged) and /exports/json from a generated grid:
every quarter-hour has its own numbers, so the expectations are computed here from the same
generator, independently of the code under test.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch
from urllib.parse import parse_qs

import duckdb
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.recorder import get_instance
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.components.recorder.common import (  # type: ignore[import-untyped]
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from syrupy.assertion import SnapshotAssertion
from yarl import URL

from custom_components import meterlake
from custom_components.meterlake import statistics as stats
from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.emissions import emissions_issue_id
from custom_components.meterlake.sources.base import RetryPolicy, SourceUnavailableError

from .conftest import DEMO_NOW

API = "https://odre.opendatasoft.com/api/explore/v2.1/catalog/datasets"
NOW = datetime.fromisoformat(DEMO_NOW)
QUARTER = timedelta(minutes=15)
NATIONAL = "eco2mix_national"
# The grid publishes up to the quarter before now; its newest two quarters lack consumption.
PUBLISHED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FIRST = datetime(2026, 11, 1, tzinfo=UTC)


def intensity(slot: datetime) -> float:
    """gCO2/kWh of a quarter-hour: varies within each hour, so averaging matters."""
    index = int((slot - FIRST) / QUARTER)
    return float(20 + (index % 7) * 3)


def record(slot: datetime, *, region: str | None) -> dict[str, Any]:
    index = int((slot - FIRST) / QUARTER)
    tail = slot >= PUBLISHED - 2 * QUARTER
    base: dict[str, Any] = {
        "date_heure": slot.isoformat(),
        "date": slot.date().isoformat(),
        "heure": slot.strftime("%H:%M"),
        "consommation": None if tail else 50000 + index % 100,
        "prevision_j": 51000,
        "nucleaire": None if tail else 40000,
        "eolien": None if tail else 6000,
        "solaire": None if tail else 1000,
        "hydraulique": None if tail else 5000,
        "bioenergies": None if tail else 1000,
        "pompage": None if tail else "-500",
        "ech_physiques": None if tail else -3000,
        "stockage_batterie": "ND",
    }
    if region is None:
        base |= {
            "perimetre": "France",
            "gaz": None if tail else 2000,
            "fioul": None if tail else 0,
            "charbon": None if tail else 0,
            "taux_co2": None if tail else intensity(slot),
        }
    else:
        base |= {"code_insee_region": region, "libelle_region": "Île-de-France"}
        base |= {"thermique": None if tail else 300}
    return base


class Odre:
    """The records and exports endpoints of every eCO2mix dataset, from the generator."""

    def __init__(self, mock: AiohttpClientMocker) -> None:
        self.calls: list[str] = []
        self.fail_with: int | None = None
        for dataset in ("national", "regional"):
            for kind in ("tr", "cons-def"):
                name = f"eco2mix-{dataset}-{kind}"
                mock.get(f"{API}/{name}/records", side_effect=partial(self._answer, name))
                mock.get(f"{API}/{name}/exports/json", side_effect=partial(self._answer, name))

    async def _answer(
        self, name: str, method: str, url: URL, data: Any
    ) -> AiohttpClientMockResponse:
        self.calls.append(f"{name}{url.path.rsplit(name, 1)[1]}")
        if self.fail_with is not None:
            return AiohttpClientMockResponse(method, url, status=self.fail_with, text="oops")
        params = {k: v[0] for k, v in parse_qs(url.query_string).items()}
        where = params.get("where", "")
        region = re.search(r"code_insee_region = '(\d+)'", where)
        low = re.search(r"date_heure >= '([^']+)'", where)
        high = re.search(r"date_heure < '([^']+)'", where)
        start = max(FIRST, datetime.fromisoformat(low.group(1))) if low else FIRST
        end = min(PUBLISHED, datetime.fromisoformat(high.group(1))) if high else PUBLISHED
        rows = []
        if name.endswith("-tr"):  # real time only; the consolidated data lags by months
            slot = start
            while slot < end:
                rows.append(record(slot, region=region.group(1) if region else None))
                slot += QUARTER
        if params.get("order_by", "").endswith("desc"):
            rows.reverse()
        if url.path.endswith("/exports/json"):
            return AiohttpClientMockResponse(method, url, json=rows)
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
        page = {"total_count": len(rows), "results": rows[offset : offset + limit]}
        return AiohttpClientMockResponse(method, url, json=page)


@pytest.fixture(autouse=True)
def _no_backoff() -> Generator[None]:
    with patch(
        "custom_components.meterlake.sources.eco2mix.RetryPolicy",
        partial(RetryPolicy, base_delay=0.0, max_jitter=0.0),
    ):
        yield


def grid_entry(tmp_path: Path, perimeter: str = "national", **options: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="eCO2mix France" if perimeter == "national" else "eCO2mix Île-de-France",
        data={"source": "eco2mix", "perimeter": perimeter},
        options=default_options()
        | {"archive_root": str(tmp_path / "lake"), "backfill_days": 2}
        | options,
        unique_id=f"eco2mix_{perimeter}",
    )


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


@pytest.fixture
async def odre(hass: HomeAssistant, freezer: Any, aioclient_mock: AiohttpClientMocker) -> Odre:
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/Paris")
    return Odre(aioclient_mock)


async def setup_linked(
    hass: HomeAssistant, tmp_path: Path, demo_entry: MockConfigEntry
) -> MockConfigEntry:
    """The demo household, and a national grid entry computing its electricity's emissions."""
    await setup(hass, demo_entry)
    entry = grid_entry(tmp_path / "grid", co2_meter="demo_electricity")
    await setup(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    return entry


async def co2_rows(hass: HomeAssistant) -> list[Any]:
    """The hourly rows of the demo electricity's emissions statistic."""
    stat = "meterlake:demo_electricity_co2"
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
    return list(stats.get(stat, []))


def state_of(hass: HomeAssistant, meter: str, key: str) -> Any:
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{meter}_{key}")
    assert entity_id is not None, f"no entity for {meter}_{key}"
    state = hass.states.get(entity_id)
    assert state is not None
    return state


def value_of(hass: HomeAssistant, meter: str, key: str) -> float:
    return float(state_of(hass, meter, key).state)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    odre: Odre,
    tmp_path: Path,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    entry = grid_entry(tmp_path)
    with patch.object(meterlake, "PLATFORMS", [Platform.SENSOR]):
        await setup(hass, entry)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)


async def test_national_sensors_show_the_newest_known_values(
    hass: HomeAssistant, odre: Odre, tmp_path: Path
) -> None:
    await setup(hass, grid_entry(tmp_path))
    newest = PUBLISHED - 3 * QUARTER  # the two newest quarters have no consumption yet
    expected = record(newest, region=None)
    consumption = state_of(hass, NATIONAL, "grid_consumption")
    assert float(consumption.state) == expected["consommation"]
    assert consumption.attributes["unit_of_measurement"] == "MW"
    assert datetime.fromisoformat(consumption.attributes["slot_start"]) == newest
    assert value_of(hass, NATIONAL, "production_nuclear") == 40000
    assert value_of(hass, NATIONAL, "net_exchange") == -3000
    assert value_of(hass, NATIONAL, "carbon_intensity") == intensity(newest)
    total = 40000 + 6000 + 1000 + 5000 + 1000 + 2000
    assert value_of(hass, NATIONAL, "low_carbon_share") == pytest.approx(
        100 * (total - 2000) / total
    )
    assert value_of(hass, NATIONAL, "renewable_share") == pytest.approx(100 * 13000 / total)
    # A regional entry has no carbon intensity: the entity says so by being unavailable.
    region = grid_entry(tmp_path, "11")
    await setup(hass, region)
    assert state_of(hass, "eco2mix_11", "carbon_intensity").state == STATE_UNAVAILABLE
    assert value_of(hass, "eco2mix_11", "production_thermal") == 300
    assert (
        er.async_get(hass).async_get_entity_id("sensor", DOMAIN, "eco2mix_11_production_gas")
        is None
    )


async def test_archive_holds_the_grid_and_the_heartbeat(
    hass: HomeAssistant, odre: Odre, tmp_path: Path, freezer: Any
) -> None:
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    root = tmp_path / "lake"
    rows = duckdb.sql(
        f"SELECT count(*), count(consommation), min(start), max(start), sum(taux_co2) "
        f"FROM read_parquet('{root}/grid_mix/**/*.parquet', hive_partitioning=1) "
        f"WHERE perimeter = 'national'"
    ).fetchall()[0]
    start = NOW.replace(minute=0) - timedelta(days=2)
    slots = int((PUBLISHED - start) / QUARTER)
    assert rows[0] == slots
    assert rows[1] == slots - 2  # the null tail is kept as null, never 0
    assert (rows[2], rows[3]) == (start, PUBLISHED - QUARTER)
    expected = sum(intensity(start + i * QUARTER) for i in range(slots - 2))
    assert rows[4] == pytest.approx(expected)
    coordinator = entry.runtime_data.coordinator
    # The watermark stops at the newest slot with consumption: the null tail is read again.
    assert coordinator.store.get(NATIONAL) == PUBLISHED - 2 * QUARTER

    # The next aligned poll (12:18) fails after its retries: the heartbeat row says so.
    odre.fail_with = 500
    freezer.move_to(datetime(2026, 11, 20, 12, 18, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not coordinator.last_update_success
    audit = duckdb.sql(
        f"SELECT endpoint, status, error FROM read_parquet('{root}/audit/**/*.parquet', "
        f"hive_partitioning=1) WHERE time >= TIMESTAMPTZ '2026-11-20 12:18:00+00' ORDER BY time"
    ).fetchall()
    # Time is frozen, so the four attempts share one (time, endpoint) key in the archive; the
    # poll report keeps them apart.
    report = coordinator.last_report
    assert [r.status for r in report.audit if r.endpoint != "poll"] == [500] * 4
    assert {row[1] for row in audit if row[0] != "poll"} == {500}
    (poll,) = [row for row in audit if row[0] == "poll"]
    assert poll[1] == 500
    assert "500" in poll[2]
    assert state_of(hass, NATIONAL, "grid_consumption").state == STATE_UNAVAILABLE


async def test_emissions_of_a_linked_meter(
    hass: HomeAssistant, odre: Odre, tmp_path: Path, demo_entry: MockConfigEntry
) -> None:
    """Sum of interval energy times the grid intensity, checked against a hand computation."""
    await setup_linked(hass, tmp_path, demo_entry)

    # The demo's own archive holds its half-hours; each takes the mean of its two quarters.
    demo_rows = duckdb.sql(
        f"SELECT start, value FROM read_parquet('{tmp_path}/lake/consumption/**/*.parquet', "
        f"hive_partitioning=1) WHERE meter = 'demo_electricity' ORDER BY start"
    ).fetchall()
    grid_start = NOW.replace(minute=0) - timedelta(days=2)
    horizon = PUBLISHED - 2 * QUARTER  # the newest known intensity ends here
    by_hour: dict[datetime, list[float | None]] = {}
    for start, value in demo_rows:
        hour = start.replace(minute=0)
        quarters = [start, start + QUARTER]
        if start + 2 * QUARTER > horizon:
            continue
        known = all(grid_start <= q for q in quarters)
        co2 = value * sum(intensity(q) for q in quarters) / 2 / 1000 if known else None
        by_hour.setdefault(hour, []).append(co2)
    complete = {h: sum(v) for h, v in by_hour.items() if None not in v}  # type: ignore[misc]
    assert len(complete) == 48 - 1  # two days of grid data, up to 11:30
    rows = await co2_rows(hass)
    # Hours before the grid data have no intensity: reported, not guessed (no row at all).
    assert [datetime.fromtimestamp(r["start"], UTC) for r in rows] == sorted(complete)
    for row in rows:
        assert row["state"] == pytest.approx(
            complete[datetime.fromtimestamp(row["start"], UTC)], rel=1e-12
        )
    assert rows[-1]["sum"] == pytest.approx(sum(complete.values()), rel=1e-12)

    # Today's emissions (Paris day): the covered half-hours since local midnight.
    midnight = datetime(2026, 11, 19, 23, 0, tzinfo=UTC)
    today = [
        value * sum(intensity(q) for q in (s, s + QUARTER)) / 2 / 1000
        for s, value in demo_rows
        if s >= midnight and s + 2 * QUARTER <= horizon
    ]
    emissions = state_of(hass, NATIONAL, "emissions_today")
    assert float(emissions.state) == pytest.approx(sum(today), rel=1e-9)
    assert emissions.attributes["unit_of_measurement"] == "kg"
    uncovered = [s for s, _v in demo_rows if s >= midnight and s + 2 * QUARTER > horizon]
    assert emissions.attributes["intervals_without_intensity"] == len(uncovered)

    # The README's DuckDB query gives the same emissions from the archive alone.
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    query = readme[readme.index("-- Your emissions per month") : readme.index("ORDER BY month;")]
    query = (
        query.replace("/config/meterlake/consumption", f"{tmp_path}/lake/consumption")
        .replace("/config/meterlake/grid_mix", f"{tmp_path}/grid/lake/grid_mix")
        .replace("octopus_electricity_1000000000000", "demo_electricity")
    )
    covered = [
        value * sum(intensity(q) for q in (s, s + QUARTER)) / 2 / 1000
        for s, value in demo_rows
        if s >= grid_start and s + 2 * QUARTER <= horizon
    ]
    ((_month, kg),) = duckdb.sql(query).fetchall()
    assert kg == pytest.approx(sum(covered), rel=1e-9)


async def test_a_hole_in_the_emissions_statistic_is_repaired_after_a_restart(
    hass: HomeAssistant, odre: Odre, tmp_path: Path, demo_entry: MockConfigEntry
) -> None:
    """A kill during the CO2 import left only its last hours, with sums from 0."""
    entry = await setup_linked(hass, tmp_path, demo_entry)
    before = await co2_rows(hass)
    stat = "meterlake:demo_electricity_co2"
    await stats.async_clear_statistic(hass, stat)
    tail = before[-5:]
    await stats.async_import_hourly(
        hass,
        stat_id=stat,
        name="Demo electricity CO2",
        unit="kg",
        unit_class="mass",
        hours=np.array([round(r["start"]) for r in tail], dtype=np.int64),
        values=np.array([r["state"] for r in tail]),
        known=np.ones(len(tail), dtype=bool),
    )
    await async_wait_recording_done(hass)
    assert len(await co2_rows(hass)) == 5
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    after = await co2_rows(hass)
    assert [r["start"] for r in after] == [r["start"] for r in before]
    assert [r["sum"] for r in after] == pytest.approx([r["sum"] for r in before], abs=1e-9)


async def test_missing_linked_meter_raises_a_repair(
    hass: HomeAssistant, odre: Odre, tmp_path: Path
) -> None:
    entry = grid_entry(tmp_path, co2_meter="octopus_electricity_1012345678901")
    await setup(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, emissions_issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_key == "co2_meter_missing"
    assert state_of(hass, NATIONAL, "emissions_today").state == "unknown"
    # Removing the option (or the entry) clears it.
    hass.config_entries.async_update_entry(entry, options={**entry.options, "co2_meter": None})
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, emissions_issue_id(entry.entry_id)) is None


async def test_backfill_and_rebuild_on_a_grid_entry(
    hass: HomeAssistant, odre: Odre, tmp_path: Path, demo_entry: MockConfigEntry
) -> None:
    """The actions work on a grid meter: grid windows, and the emissions statistic."""
    entry = await setup_linked(hass, tmp_path, demo_entry)

    response = await hass.services.async_call(
        DOMAIN,
        "backfill",
        {"config_entry": entry.entry_id, "days": 5},
        blocking=True,
        return_response=True,
    )
    summary = response["meters"][NATIONAL]  # type: ignore[index]
    assert summary["windows_fetched"] == 1
    assert summary["missing_intervals"] == 0
    root = tmp_path / "grid" / "lake"
    (count,) = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{root}/grid_mix/**/*.parquet', hive_partitioning=1)"
    ).fetchall()[0]
    assert count == int((PUBLISHED - (NOW.replace(minute=0) - timedelta(days=5))) / QUARTER)
    # The backfilled grid reaches the emissions (through the lake's changed-rows signal):
    # five days of hours now.
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    hours = [datetime.fromtimestamp(r["start"], UTC) for r in await co2_rows(hass)]
    assert hours[0] == NOW.replace(minute=0) - timedelta(days=5)
    # Stored now: a second backfill skips the window.
    response = await hass.services.async_call(
        DOMAIN,
        "backfill",
        {"config_entry": entry.entry_id, "days": 5},
        blocking=True,
        return_response=True,
    )
    assert response["meters"][NATIONAL]["windows_skipped"] == 1  # type: ignore[index]

    # Rebuild from scratch: the five days of grid data now give emissions for five days.
    response = await hass.services.async_call(
        DOMAIN,
        "rebuild_statistics",
        {"config_entry": entry.entry_id},
        blocking=True,
        return_response=True,
    )
    rebuilt = response["meters"][NATIONAL]  # type: ignore[index]
    assert rebuilt["intervals"] > 0
    await async_wait_recording_done(hass)
    hours = [datetime.fromtimestamp(r["start"], UTC) for r in await co2_rows(hass)]
    # The demo keeps 10 days; the grid now has 5: every hour of those 5 days up to 11:00.
    assert hours[0] == NOW.replace(minute=0) - timedelta(days=5)
    assert hours[-1] == datetime(2026, 11, 20, 11, 0, tzinfo=UTC) - timedelta(hours=1)
    assert rebuilt["hours_written"] == len(hours)


async def test_grid_entry_without_emissions_rebuilds_nothing(
    hass: HomeAssistant, odre: Odre, tmp_path: Path
) -> None:
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            "rebuild_statistics",
            {"config_entry": entry.entry_id},
            blocking=True,
            return_response=True,
        )


async def test_a_refused_request_is_no_reauth(
    hass: HomeAssistant, odre: Odre, tmp_path: Path, freezer: Any
) -> None:
    """ODRE has no credentials: a 403 fails the poll with its text, and asks for nothing."""
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    odre.fail_with = 403
    freezer.move_to(datetime(2026, 11, 20, 12, 18, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    coordinator = entry.runtime_data.coordinator
    assert not coordinator.last_update_success
    assert not hass.config_entries.flow.async_progress()
    http = [r for r in coordinator.last_report.audit if r.endpoint != "poll"]
    assert [(r.status, r.error) for r in http] == [(403, "HTTP 403: oops")]  # no retry

    # A reauth started anyway (by hand) has nothing to ask.
    result = await entry.start_reauth_flow(hass)
    assert result["type"] == "abort"
    assert result["reason"] == "reauth_not_supported"


async def test_rebuild_needs_the_linked_meter(
    hass: HomeAssistant, odre: Odre, tmp_path: Path, demo_entry: MockConfigEntry
) -> None:
    """Without the meter's entry there is nothing to rebuild from: refuse, keep the statistic."""
    entry = await setup_linked(hass, tmp_path, demo_entry)
    before = await co2_rows(hass)
    assert before
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "rebuild_statistics",
            {"config_entry": entry.entry_id},
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_key == "emissions_meter_missing"
    await async_wait_recording_done(hass)
    assert await co2_rows(hass) == before


async def test_aligned_polls_wait_for_retry_after_and_never_overlap(
    hass: HomeAssistant, odre: Odre, tmp_path: Path, freezer: Any
) -> None:
    entry = grid_entry(tmp_path)
    await setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    # ODRE asks for an hour (a 429 with Retry-After: 3600, as the HTTP client reports it).
    with patch(
        "custom_components.meterlake.sources.eco2mix.HttpClient.request",
        side_effect=SourceUnavailableError("ODRE: busy", retry_after=3600),
    ):
        freezer.move_to(datetime(2026, 11, 20, 12, 18, tzinfo=UTC))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert not coordinator.last_update_success
    assert coordinator.not_before == datetime(2026, 11, 20, 13, 18, tzinfo=UTC)
    calls = len(odre.calls)
    # 12:33 and 12:48: the server asked for an hour; no request.
    for minute in (33, 48):
        freezer.move_to(datetime(2026, 11, 20, 12, minute, tzinfo=UTC))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert len(odre.calls) == calls
    # A tick while a poll is still running starts no second one.
    coordinator.not_before = None
    coordinator.polling = True
    freezer.move_to(datetime(2026, 11, 20, 13, 3, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(odre.calls) == calls
    coordinator.polling = False
    freezer.move_to(datetime(2026, 11, 20, 13, 18, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(odre.calls) > calls
    assert coordinator.last_update_success
    assert coordinator.not_before is None
