"""A Tibber entry through the real coordinator: sensors, prices, archive and statistics.

The GraphQL endpoint is the mocked one of test_tibber_source (fixtures in tests/fixtures/tibber);
the expected numbers are computed here from the fixture nodes, not copied from the code.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import duckdb
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_ON, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.recorder import get_instance
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
)
from syrupy.assertion import SnapshotAssertion

from custom_components import meterlake
from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources.tibber import LIMITER, meter_key

from .test_tibber_source import (
    HOME_B,
    HOMES,
    KEY_A,
    KEY_B,
    NOW,
    PRICES,
    PROD_A,
    TOKEN,
    Tibber,
    fx,
)

OSLO = ZoneInfo("Europe/Oslo")
USER_ID = "d2c3a7e1-5b0f-4f8e-9c61-3f1e2b7a9c10"


@pytest.fixture(autouse=True)
def _fresh_limiter() -> Generator[None]:
    LIMITER.clear()
    yield
    LIMITER.clear()


def serve(mock: AiohttpClientMocker) -> Tibber:
    """Consumption in three pages, one production page, today's and tomorrow's prices."""
    api = Tibber(mock)
    api.on("production(", {"json": fx("production_p1")})
    api.history("consumption_p1", "consumption_p2", "consumption_p3")
    api.on(PRICES, {"json": fx("prices")})
    return api


def nodes(series: str, *pages: str) -> list[dict[str, Any]]:
    found = []
    for page in pages:
        found.extend(fx(page)["data"]["viewer"]["home"][series]["nodes"])
    return found


def consumption_nodes() -> list[dict[str, Any]]:
    return nodes("consumption", "consumption_p1", "consumption_p2", "consumption_p3")


def node_cost(node: dict[str, Any]) -> float | None:
    if node["cost"] is not None:
        return float(node["cost"])
    if node["unitPrice"] is None:
        return None
    return float(node["consumption"]) * float(node["unitPrice"])


@pytest.fixture
def tibber_entry(tmp_path: Path) -> MockConfigEntry:
    return make_tibber_entry(tmp_path)


def make_tibber_entry(
    tmp_path: Path, homes: list[dict[str, Any]] | None = None, **options: Any
) -> MockConfigEntry:
    """The entry the flow creates for the fixture user (home A by default)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Tibber (Kari Nordmann)",
        data={"source": "tibber", "access_token": TOKEN, "homes": homes or [HOMES[0]]},
        options=default_options()
        | {"archive_root": str(tmp_path / "lake"), "backfill_days": 4}
        | options,
        unique_id=USER_ID,
    )


@pytest.fixture
async def loaded(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    tibber_entry: MockConfigEntry,
) -> MockConfigEntry:
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/Oslo")
    serve(aioclient_mock)
    tibber_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(tibber_entry.entry_id)
    await hass.async_block_till_done()
    assert tibber_entry.state is ConfigEntryState.LOADED
    return tibber_entry


def state_of(hass: HomeAssistant, meter: str, key: str, platform: str = "sensor") -> Any:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{meter}_{key}")
    assert entity_id is not None, f"no entity for {meter}_{key}"
    state = hass.states.get(entity_id)
    assert state is not None
    return state


def value_of(hass: HomeAssistant, meter: str, key: str) -> float:
    return float(state_of(hass, meter, key).state)


@pytest.mark.parametrize("platform", [Platform.SENSOR, Platform.BINARY_SENSOR])
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(  # noqa: PLR0917 - pytest fixtures
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    tibber_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/Oslo")
    serve(aioclient_mock)
    tibber_entry.add_to_hass(hass)
    with patch.object(meterlake, "PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(tibber_entry.entry_id)
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, tibber_entry.entry_id)


async def test_consumption_and_cost_from_tibber(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    known = [n for n in consumption_nodes() if n["consumption"] is not None]
    today = datetime(2026, 3, 10, tzinfo=OSLO)
    yesterday = today - timedelta(days=1)

    def day(node: dict[str, Any], start: datetime) -> bool:
        begins = datetime.fromisoformat(node["from"])
        return start <= begins < start + timedelta(days=1)

    today_nodes = [n for n in known if day(n, today)]
    yesterday_nodes = [n for n in known if day(n, yesterday)]
    assert today_nodes and yesterday_nodes
    assert value_of(hass, KEY_A, "consumption_today") == pytest.approx(
        sum(n["consumption"] for n in today_nodes)
    )
    assert value_of(hass, KEY_A, "consumption_yesterday") == pytest.approx(
        sum(n["consumption"] for n in yesterday_nodes)
    )
    newest = max(known, key=lambda n: n["from"])
    assert value_of(hass, KEY_A, "consumption_last_interval") == pytest.approx(
        newest["consumption"]
    )
    # The newest hour has neither cost nor unit price yet: its cost is unknown, not zero.
    assert node_cost(newest) is None
    assert state_of(hass, KEY_A, "cost_last_interval").state == "unknown"
    today_costs = [c for c in map(node_cost, today_nodes) if c is not None]
    assert len(today_costs) == len(today_nodes) - 1
    assert value_of(hass, KEY_A, "cost_today") == pytest.approx(sum(today_costs))
    cost = state_of(hass, KEY_A, "cost_today")
    assert cost.attributes["unit_of_measurement"] == "NOK"
    # Tibber publishes no standing charge: no sensor that would stay unknown for ever.
    registry = er.async_get(hass)
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{KEY_A}_standing_charge") is None
    # The production meter is an export meter with its own device and no prices.
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{PROD_A}_price_level") is None
    production = [n for n in nodes("production", "production_p1") if n["production"] is not None]
    produced_today = [n for n in production if day(n, today)]
    assert value_of(hass, PROD_A, "consumption_today") == pytest.approx(
        sum(n["production"] for n in produced_today)
    )


async def test_prices_move_on_each_quarter_without_a_request(
    hass: HomeAssistant, loaded: MockConfigEntry, freezer: Any, aioclient_mock: AiohttpClientMocker
) -> None:
    price_info = fx("prices")["data"]["viewer"]["home"]["currentSubscription"]["priceInfo"]
    today = price_info["today"]
    # 10:20 UTC = 11:20 in Oslo: the slot of 11:15 local.
    current = next(s for s in today if s["startsAt"].startswith("2026-03-10T11:15"))
    rate = state_of(hass, KEY_A, "current_rate")
    assert float(rate.state) == pytest.approx(current["total"])
    assert rate.attributes["unit_of_measurement"] == "NOK/kWh"
    assert rate.attributes["level"] == current["level"].lower()
    assert len(rate.attributes["prices"]) == len(today) + len(price_info["tomorrow"]) == 192
    assert state_of(hass, KEY_A, "price_level").state == current["level"].lower()
    totals = [s["total"] for s in today]
    assert value_of(hass, KEY_A, "price_min_today") == pytest.approx(min(totals))
    assert value_of(hass, KEY_A, "price_max_today") == pytest.approx(max(totals))
    assert value_of(hass, KEY_A, "price_average_today") == pytest.approx(sum(totals) / len(totals))
    following = today[today.index(current) + 1]
    next_rate = state_of(hass, KEY_A, "next_rate")
    assert float(next_rate.state) == pytest.approx(following["total"])
    assert datetime.fromisoformat(next_rate.attributes["start"]) == datetime.fromisoformat(
        following["startsAt"]
    )
    assert state_of(hass, KEY_A, "tomorrow_prices", "binary_sensor").state == STATE_ON

    calls = len(aioclient_mock.mock_calls)
    freezer.move_to(datetime(2026, 3, 10, 10, 30, 1, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert float(state_of(hass, KEY_A, "current_rate").state) == pytest.approx(following["total"])
    assert len(aioclient_mock.mock_calls) == calls


async def test_archive_and_statistics_hold_tibber_numbers(
    hass: HomeAssistant, loaded: MockConfigEntry, tmp_path: Path
) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    root = tmp_path / "lake"
    horizon = NOW - timedelta(days=4)
    known = [
        n
        for n in consumption_nodes()
        if n["consumption"] is not None and datetime.fromisoformat(n["from"]) >= horizon
    ]
    rows = duckdb.sql(
        f"SELECT count(*), sum(value), sum(cost), min(rate), max(rate) "
        f"FROM read_parquet('{root}/consumption/**/*.parquet', hive_partitioning=1) "
        f"WHERE meter = '{KEY_A}'"
    ).fetchall()[0]
    costs = [node_cost(n) for n in known]
    assert rows[0] == len(known)
    assert rows[1] == pytest.approx(sum(n["consumption"] for n in known))
    assert rows[2] == pytest.approx(sum(c for c in costs if c is not None))
    prices = [n["unitPrice"] for n in known if n["unitPrice"] is not None]
    assert (rows[3], rows[4]) == (pytest.approx(min(prices)), pytest.approx(max(prices)))
    # The 15-minute prices are in the rates dataset, under the home's tariff.
    rates = duckdb.sql(
        f"SELECT tariff, count(*), min(valid_from), max(valid_to) "
        f"FROM read_parquet('{root}/rates/**/*.parquet', hive_partitioning=1) GROUP BY tariff"
    ).fetchall()
    assert [(r[0], r[1]) for r in rates] == [(KEY_A, 192)]
    assert rates[0][3] - rates[0][2] == timedelta(days=2)

    stat = f"meterlake:{KEY_A}_consumption"
    stats = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2026, 1, 1, tzinfo=UTC),
        None,
        {stat, f"meterlake:{KEY_A}_cost", f"meterlake:{PROD_A}_consumption"},
        "hour",
        None,
        {"sum", "state"},
    )
    assert len(stats[stat]) == len(known)
    assert stats[stat][-1]["sum"] == pytest.approx(rows[1])
    assert f"meterlake:{PROD_A}_consumption" in stats


async def test_refused_token_starts_reauth(
    hass: HomeAssistant, loaded: MockConfigEntry, freezer: Any, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.clear_requests()
    api = Tibber(aioclient_mock)
    api.on("", {"status": 401, "text": "unauthorized"})
    # The recent window is read at most hourly: the first poll after an hour asks Tibber.
    freezer.tick(timedelta(minutes=61))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    flows = list(loaded.async_get_active_flows(hass, {SOURCE_REAUTH}))
    assert len(flows) == 1
    assert state_of(hass, KEY_A, "consumption_today").state == STATE_UNAVAILABLE


async def test_price_ticks_neither_hide_a_failure_nor_delay_polls(
    hass: HomeAssistant, loaded: MockConfigEntry, freezer: Any, aioclient_mock: AiohttpClientMocker
) -> None:
    coordinator = loaded.runtime_data.coordinator
    # A failing poll an hour later (the history is due again).
    aioclient_mock.clear_requests()
    Tibber(aioclient_mock).on("", {"status": 500})
    with patch("custom_components.meterlake.sources.base.RetryPolicy.delay", return_value=0):
        freezer.tick(timedelta(minutes=61))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert not coordinator.last_update_success
    assert state_of(hass, KEY_A, "consumption_today").state == STATE_UNAVAILABLE
    due = coordinator._unsub_refresh  # the poll timer after the failure
    # The next quarter hour moves the prices on, but the failure stays visible and the poll
    # timer stays where it was.
    freezer.move_to(datetime(2026, 3, 10, 11, 30, 1, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not coordinator.last_update_success
    assert state_of(hass, KEY_A, "consumption_today").state == STATE_UNAVAILABLE
    assert coordinator._unsub_refresh is due


async def test_a_home_gone_from_the_account_does_not_stop_the_others(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    tmp_path: Path,
) -> None:
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/Oslo")
    gone = {
        "id": "0000dead-0000-4000-8000-00000000beef",
        "name": "Hytta",
        "time_zone": "Europe/Oslo",
        "currency": "NOK",
        "production": False,
    }
    api = Tibber(aioclient_mock)
    api.on(gone["id"], {"json": {"data": {"viewer": {"home": None}}}})
    api.on("production(", {"json": fx("production_p1")})
    api.history("consumption_p1", "consumption_p2", "consumption_p3")
    api.on(PRICES, {"json": fx("prices")})
    entry = make_tibber_entry(tmp_path, [gone, HOMES[0]])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    gone_key = meter_key(gone["id"])
    assert entry.runtime_data.coordinator.failed.keys() == {gone_key}
    assert state_of(hass, gone_key, "consumption_today").state == STATE_UNAVAILABLE
    assert float(state_of(hass, KEY_A, "consumption_today").state) > 0

    # The backfill action goes on past the failing home, and says which one failed.
    response = await hass.services.async_call(
        DOMAIN,
        "backfill",
        {"config_entry": entry.entry_id, "days": 20, "force": True},
        blocking=True,
        return_response=True,
    )
    meters = response["meters"]  # type: ignore[index]
    assert "not found" in meters[gone_key]["error"]
    assert "error" not in meters[KEY_A]
    assert meters[KEY_A]["windows_fetched"] == 1
    # Diagnostics name the failing meter by its index in `meters`, the key redacted.
    from custom_components.meterlake.diagnostics import (
        async_get_config_entry_diagnostics,
    )

    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert list(diagnostics["failed_meters"]) == ["meter_0"]
    assert diagnostics["watermarks"]["meter_0"] is None
    assert diagnostics["watermarks"]["meter_1"] is not None

    # The home answers again (here with the other home's pages): its entities come back.
    api.routes.pop(0)
    freezer.tick(timedelta(minutes=61))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.runtime_data.coordinator.failed == {}
    assert state_of(hass, gone_key, "consumption_today").state != STATE_UNAVAILABLE


async def test_prices_stay_available_through_a_history_outage(
    hass: HomeAssistant, loaded: MockConfigEntry, freezer: Any, aioclient_mock: AiohttpClientMocker
) -> None:
    """The quarter hour's price is cached and valid: a failing history read does not hide it."""
    aioclient_mock.clear_requests()
    api = Tibber(aioclient_mock)
    api.on("consumption(", {"status": 500})
    api.on("production(", {"status": 500})
    api.on(PRICES, {"json": fx("prices")})
    with patch("custom_components.meterlake.sources.base.RetryPolicy.delay", return_value=0):
        freezer.tick(timedelta(minutes=61))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert not loaded.runtime_data.coordinator.last_update_success
    assert state_of(hass, KEY_A, "consumption_today").state == STATE_UNAVAILABLE
    # 12:21 in Oslo: the 12:15 slot (0.50 + 0.01 x 49), from the cache.
    assert float(state_of(hass, KEY_A, "current_rate").state) == pytest.approx(0.99)
    assert state_of(hass, KEY_A, "price_level").state == "normal"
    assert state_of(hass, KEY_A, "tomorrow_prices", "binary_sensor").state == STATE_ON
    # The next quarter hour moves the price on, the history still failing.
    freezer.move_to(datetime(2026, 3, 10, 11, 30, 1, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert float(state_of(hass, KEY_A, "current_rate").state) == pytest.approx(1.0)
    assert state_of(hass, KEY_A, "consumption_today").state == STATE_UNAVAILABLE


async def test_a_refused_token_stops_the_backfill(
    hass: HomeAssistant, loaded: MockConfigEntry, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.clear_requests()
    Tibber(aioclient_mock).on("", {"status": 401, "text": "unauthorized"})
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "backfill",
            {"config_entry": loaded.entry_id, "days": 20, "force": True},
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_key == "backfill_failed"
    assert aioclient_mock.call_count == 1  # the same token for every home: no more asking


# ------------------------------------------------------------------- a home whose history fails


HISTORY_B = f'home(id: "{HOME_B}") {{ consumption('


@pytest.fixture
async def failing_home(
    hass: HomeAssistant, freezer: Any, aioclient_mock: AiohttpClientMocker, tmp_path: Path
) -> tuple[MockConfigEntry, Tibber]:
    """Two homes; home B's history answers HTTP 200 with a transient GraphQL error."""
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/Oslo")
    api = Tibber(aioclient_mock)
    api.on(HISTORY_B, {"json": fx("error_timeout")})
    api.on("production(", {"json": fx("production_p1")})
    api.history("consumption_p1", "consumption_p2", "consumption_p3")
    api.on(PRICES, {"json": fx("prices")})
    entry = make_tibber_entry(tmp_path, [HOMES[0], HOMES[1]])
    entry.add_to_hass(hass)
    with patch("custom_components.meterlake.sources.base.RetryPolicy.delay", return_value=0):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    return entry, api


async def next_poll(hass: HomeAssistant, freezer: Any) -> None:
    """The next scheduled poll (Tibber polls every 15 minutes), retries without waiting."""
    with patch("custom_components.meterlake.sources.base.RetryPolicy.delay", return_value=0):
        freezer.tick(timedelta(minutes=15, seconds=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)


def failing_issue(hass: HomeAssistant, entry: MockConfigEntry, meter: str) -> Any:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"meter_failing_{entry.entry_id}_{meter}")


async def test_a_home_whose_history_fails_gets_its_prices_in_the_same_poll(
    hass: HomeAssistant, failing_home: tuple[MockConfigEntry, Tibber]
) -> None:
    entry, api = failing_home
    assert entry.state is ConfigEntryState.LOADED
    # The history was asked for 4 times (3 retries), the prices once: on the first load.
    assert api.count(HISTORY_B) == 4
    assert state_of(hass, KEY_B, "consumption_today").state == STATE_UNAVAILABLE
    # 11:20 in Oslo: the 11:15 slot of the fixture prices (0.50 + 0.01 x 45).
    assert float(state_of(hass, KEY_B, "current_rate").state) == pytest.approx(0.95)
    assert float(state_of(hass, KEY_A, "consumption_today").state) > 0


async def test_a_home_failing_polls_in_a_row_raises_a_repair_issue(
    hass: HomeAssistant, failing_home: tuple[MockConfigEntry, Tibber], freezer: Any
) -> None:
    entry, _api = failing_home
    await next_poll(hass, freezer)
    # Two failed polls: a hiccup, not yet worth an issue.
    assert failing_issue(hass, entry, KEY_B) is None
    await next_poll(hass, freezer)
    issue = failing_issue(hass, entry, KEY_B)
    assert issue is not None
    assert issue.translation_key == "meter_failing"
    assert issue.translation_placeholders["meter"] == "Kungsgatan 1"
    assert issue.translation_placeholders["polls"] == "3"
    assert "timed out" in issue.translation_placeholders["error"]
    assert TOKEN not in str(issue.translation_placeholders)
    # The working home has none.
    assert failing_issue(hass, entry, KEY_A) is None


async def test_the_repair_issue_clears_when_the_home_answers_again(
    hass: HomeAssistant, failing_home: tuple[MockConfigEntry, Tibber], freezer: Any
) -> None:
    entry, api = failing_home
    for _ in range(2):
        await next_poll(hass, freezer)
    assert failing_issue(hass, entry, KEY_B) is not None
    # Home B answers again (with the fixture pages of home A).
    api.routes.pop(0)
    await next_poll(hass, freezer)
    assert failing_issue(hass, entry, KEY_B) is None
    assert state_of(hass, KEY_B, "consumption_today").state != STATE_UNAVAILABLE
