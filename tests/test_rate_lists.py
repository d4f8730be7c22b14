"""Rate lists for automations on a real Octopus entry (Agile electricity, flat-rate gas).

The `rates` attribute of Current rate, "Tomorrow's rates available", Next rate on a flat
tariff, and the actions get_rates and cheapest_window over the websocket.

Payloads: tests/fixtures/octopus/agile_account.json (entry_account.json with the electricity
meter on E-1R-AGILE-24-10-01-A), the entry_* consumption, gas rates (6 p/kWh flat) and standing
charges; the Agile unit rates are built by `agile_payload` in the API's shape (newest first),
each half-hour priced by `pence` from its UK local time:

    02:00-04:00  5 p     13:00-13:30  1 p     18:00-18:30  2 p
    otherwise    20 + (half-hour of the day mod 5) p

Agile publishes around 16:00 the rates up to 23:00 UK time the next day.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

from homeassistant.components.recorder.history import get_significant_states
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance

# Imported before time is frozen (pandas' first import in an executor under freezegun hangs).
import pandas as pd
import pyarrow  # noqa: F401
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.archive import Archive, ArchiveError, open_archive
from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources.base import RetryPolicy
from custom_components.meterlake.sources.octopus import (
    discover_meters,
    meter_config,
    meter_infos,
)

from .conftest import load_fixture_json, load_household, settle

API = "https://api.octopus.energy/v1"
ACCOUNT = "A-BEEF1234"
ELEC = "octopus_electricity_1200000000017"
GAS = "octopus_gas_9876543210"
ELEC_CONSUMPTION = f"{API}/electricity-meter-points/1200000000017/meters/24E1234567/consumption/"
GAS_CONSUMPTION = f"{API}/gas-meter-points/9876543210/meters/G4P00000000001/consumption/"
AGILE = f"{API}/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-A"
GAS_TARIFF = f"{API}/products/VAR-22-11-01/gas-tariffs/G-1R-VAR-22-11-01-A"
LONDON = ZoneInfo("Europe/London")
HALF_HOUR = timedelta(minutes=30)
# 20 Nov 2026 is in GMT: UK local days are UTC days.
BEFORE_PUBLICATION = "2026-11-20 15:00:00+00:00"
AFTER_PUBLICATION = "2026-11-20 17:10:00+00:00"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fx(name: str) -> Any:
    return load_fixture_json(f"octopus/{name}.json")


def pence(at: datetime) -> float:
    """The test's Agile price (p/kWh incl. VAT) of the half-hour starting at `at`."""
    local = at.astimezone(LONDON)
    k = (local.hour * 60 + local.minute) // 30
    special = {4: 5.0, 5: 5.0, 6: 5.0, 7: 5.0, 26: 1.0, 36: 2.0}
    return special.get(k, 20.0 + k % 5)


def gbp(at: datetime) -> float:
    return pence(at) / 100


def agile_payload(start: datetime, end: datetime) -> dict[str, Any]:
    """Agile unit rates for the half-hours of [start, end), newest first, as the API sends."""
    results = []
    at = start
    while at < end:
        results.append(
            {
                "value_exc_vat": round(pence(at) / 1.05, 4),
                "value_inc_vat": pence(at),
                "valid_from": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "valid_to": (at + HALF_HOUR).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "payment_method": None,
            }
        )
        at += HALF_HOUR
    results.reverse()
    return {"count": len(results), "next": None, "previous": None, "results": results}


def mock_api(
    mock: AiohttpClientMocker, published_until: datetime, *, consumption: bool = True
) -> None:
    """The account, consumption (or none), Agile rates up to `published_until`, gas tariff."""
    mock.clear_requests()
    empty = {"json": fx("empty")}
    mock.get(f"{API}/accounts/{ACCOUNT}/", json=fx("agile_account"))
    mock.get(ELEC_CONSUMPTION, **({"json": fx("entry_elec_consumption")} if consumption else empty))
    mock.get(GAS_CONSUMPTION, **({"json": fx("entry_gas_consumption")} if consumption else empty))
    first = published_until - timedelta(days=8)
    mock.get(f"{AGILE}/standard-unit-rates/", json=agile_payload(first, published_until))
    mock.get(f"{AGILE}/standing-charges/", json=fx("entry_elec_standing"))
    mock.get(f"{GAS_TARIFF}/standard-unit-rates/", json=fx("entry_gas_rates"))
    mock.get(f"{GAS_TARIFF}/standing-charges/", json=fx("entry_gas_standing"))


@pytest.fixture(autouse=True)
def _no_backoff() -> Generator[None]:
    with patch(
        "custom_components.meterlake.sources.octopus.RetryPolicy",
        partial(RetryPolicy, base_delay=0.0, max_jitter=0.0),
    ):
        yield


@pytest.fixture
def agile_entry(tmp_path: Path) -> MockConfigEntry:
    discovered = discover_meters(fx("agile_account"))
    meters = meter_infos(discovered, selected={m.key for m in discovered}, gas_units={GAS: "m³"})
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"Octopus Energy {ACCOUNT}",
        data={
            "source": "octopus",
            "api_key": "sk_live_AGILEKEY0123456789",
            "account_number": ACCOUNT,
            "meters": [meter_config(m) for m in meters],
        },
        options=default_options() | {"archive_root": str(tmp_path / "lake"), "backfill_days": 3},
        unique_id=ACCOUNT,
    )


async def load(
    hass: HomeAssistant,
    freezer: Any,
    mock: AiohttpClientMocker,
    entry: MockConfigEntry,
    *,
    now: str,
    published_until: datetime,
    consumption: bool = True,
) -> MockConfigEntry:
    freezer.move_to(now)
    await hass.config.async_set_time_zone("Europe/London")
    mock_api(mock, published_until, consumption=consumption)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    return entry


@pytest.fixture
async def published(
    hass: HomeAssistant, freezer: Any, aioclient_mock: AiohttpClientMocker, agile_entry: Any
) -> MockConfigEntry:
    """Loaded at 17:10 on 20 Nov, tomorrow's Agile rates out (up to 21 Nov 23:00)."""
    return await load(
        hass,
        freezer,
        aioclient_mock,
        agile_entry,
        now=AFTER_PUBLICATION,
        published_until=utc(2026, 11, 21, 23),
    )


def entity_id(hass: HomeAssistant, platform: str, meter: str, key: str) -> str | None:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{meter}_{key}")


def state_of(hass: HomeAssistant, meter: str, key: str, platform: str = "sensor") -> Any:
    found = entity_id(hass, platform, meter, key)
    assert found is not None, f"no {platform} for {meter}_{key}"
    state = hass.states.get(found)
    assert state is not None
    return state


async def call(hass_ws_client: Any, hass: HomeAssistant, service: str, **data: Any) -> Any:
    """Call an action over the websocket, as the UI or a script does, asking for its response.

    The token is made at the frozen time: one made at the real time would not be valid yet.
    """
    user = await hass.auth.async_create_user("Rates", group_ids=["system-admin"])
    refresh = await hass.auth.async_create_refresh_token(user, "https://example.com/app")
    client = await hass_ws_client(hass, hass.auth.async_create_access_token(refresh))
    await client.send_json_auto_id(
        {
            "type": "call_service",
            "domain": DOMAIN,
            "service": service,
            "service_data": data,
            "return_response": True,
        }
    )
    return await client.receive_json()


def response_of(msg: Any) -> Any:
    assert msg["success"], msg
    return msg["result"]["response"]


def error_key(msg: Any) -> str:
    assert not msg["success"], msg
    assert msg["error"]["code"] == "service_validation_error"
    return str(msg["error"]["translation_key"])


def starts(slots: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(s["start"]) for s in slots]


# ----------------------------------------------------------------------- the rates attribute


async def test_current_rate_lists_today_and_tomorrow_in_half_hours(
    hass: HomeAssistant, published: MockConfigEntry
) -> None:
    rate = state_of(hass, ELEC, "current_rate")
    rates = rate.attributes["rates"]
    # Today: 48 half-hours; tomorrow: published up to 23:00, 46.
    assert len(rates) == 94
    assert starts(rates) == [utc(2026, 11, 20) + i * HALF_HOUR for i in range(94)]
    assert rates[-1]["end"] == "2026-11-21T23:00:00+00:00"
    assert [s["value"] for s in rates] == pytest.approx([gbp(at) for at in starts(rates)])
    # The slot running now (17:00) carries the state.
    (now,) = [s for s in rates if s["start"] == "2026-11-20T17:00:00+00:00"]
    assert float(rate.state) == pytest.approx(now["value"])


async def test_a_flat_tariff_is_listed_in_half_hours_too(
    hass: HomeAssistant, published: MockConfigEntry
) -> None:
    rates = state_of(hass, GAS, "current_rate").attributes["rates"]
    assert len(rates) == 96
    assert [s["value"] for s in rates] == pytest.approx([0.06] * 96)
    assert rates[-1]["end"] == "2026-11-22T00:00:00+00:00"


async def test_the_rates_list_stays_out_of_the_recorder(
    hass: HomeAssistant, published: MockConfigEntry
) -> None:
    await settle(hass)
    found = entity_id(hass, "sensor", ELEC, "current_rate")
    assert found is not None
    assert "rates" in hass.states.get(found).attributes  # type: ignore[union-attr]
    history = await get_instance(hass).async_add_executor_job(
        partial(
            get_significant_states,
            hass,
            utc(2026, 11, 20),
            None,
            [found],
            significant_changes_only=False,
        )
    )
    recorded = history[found]
    assert recorded
    for state in recorded:
        assert "rates" not in state.attributes
        assert state.attributes["unit_of_measurement"] == "GBP/kWh"


# ----------------------------------------------------------------------- tomorrow's rates


async def test_tomorrows_rates_turn_on_once_agile_publishes(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    agile_entry: MockConfigEntry,
) -> None:
    await load(
        hass,
        freezer,
        aioclient_mock,
        agile_entry,
        now=BEFORE_PUBLICATION,
        published_until=utc(2026, 11, 20, 23),
    )
    assert state_of(hass, ELEC, "tomorrow_rates", "binary_sensor").state == STATE_OFF
    assert len(state_of(hass, ELEC, "current_rate").attributes["rates"]) == 46

    # 16:00: Octopus publishes up to tomorrow 23:00; the entry reads its tariffs again.
    freezer.move_to(AFTER_PUBLICATION)
    mock_api(aioclient_mock, utc(2026, 11, 21, 23))
    assert await hass.config_entries.async_reload(agile_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    tomorrow = state_of(hass, ELEC, "tomorrow_rates", "binary_sensor")
    assert tomorrow.state == STATE_ON
    assert tomorrow.attributes["friendly_name"].endswith("Tomorrow's rates available")


async def test_tomorrows_rates_turn_off_at_midnight(
    hass: HomeAssistant, freezer: Any, published: MockConfigEntry
) -> None:
    assert state_of(hass, ELEC, "tomorrow_rates", "binary_sensor").state == STATE_ON
    freezer.move_to("2026-11-21 00:00:01+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert state_of(hass, ELEC, "tomorrow_rates", "binary_sensor").state == STATE_OFF
    rates = state_of(hass, ELEC, "current_rate").attributes["rates"]
    assert rates[0]["start"] == "2026-11-21T00:00:00+00:00"
    assert len(rates) == 46


async def test_only_a_tariff_changing_every_half_hour_gets_tomorrows_rates(
    hass: HomeAssistant, published: MockConfigEntry
) -> None:
    assert entity_id(hass, "binary_sensor", ELEC, "tomorrow_rates") is not None
    assert entity_id(hass, "binary_sensor", GAS, "tomorrow_rates") is None
    assert entity_id(hass, "binary_sensor", ELEC, "tomorrow_prices") is None


# ----------------------------------------------------------------------- next rate


async def test_next_rate_on_a_flat_tariff_is_the_same_rate_without_a_start(
    hass: HomeAssistant, published: MockConfigEntry
) -> None:
    gas = state_of(hass, GAS, "next_rate")
    assert float(gas.state) == pytest.approx(0.06)
    assert gas.attributes["start"] is None
    agile = state_of(hass, ELEC, "next_rate")
    assert agile.attributes["start"] == "2026-11-20T17:30:00+00:00"
    assert float(agile.state) == pytest.approx(gbp(utc(2026, 11, 20, 17, 30)))


async def test_next_rate_stays_unknown_while_the_next_agile_rate_is_unpublished(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    agile_entry: MockConfigEntry,
) -> None:
    # 22:40: only 22:30-23:00 is left, and every later rate is unknown.
    await load(
        hass,
        freezer,
        aioclient_mock,
        agile_entry,
        now="2026-11-20 22:40:00+00:00",
        published_until=utc(2026, 11, 20, 23),
    )
    assert state_of(hass, ELEC, "next_rate").state == "unknown"


# ----------------------------------------------------------------------- DST days


async def test_the_autumn_dst_day_lists_50_half_hours(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    agile_entry: MockConfigEntry,
) -> None:
    # 25 Oct 2026 in London: 24 Oct 23:00 UTC (BST) to 26 Oct 00:00 UTC (GMT); at 17:00
    # the rates are out up to 26 Oct 23:00.
    await load(
        hass,
        freezer,
        aioclient_mock,
        agile_entry,
        now="2026-10-25 17:00:00+00:00",
        published_until=utc(2026, 10, 26, 23),
        consumption=False,
    )
    rates = state_of(hass, ELEC, "current_rate").attributes["rates"]
    today = [s for s in rates if datetime.fromisoformat(s["start"]) < utc(2026, 10, 26)]
    assert len(today) == 50
    assert len(rates) == 50 + 46
    assert rates[0]["start"] == "2026-10-24T23:00:00+00:00"
    # 01:00-02:00 local comes twice: 00:00 and 01:00 UTC, each with its own half-hours.
    assert starts(rates)[2:6] == [utc(2026, 10, 25) + i * HALF_HOUR for i in range(4)]
    assert state_of(hass, ELEC, "tomorrow_rates", "binary_sensor").state == STATE_ON


async def test_the_spring_dst_day_lists_46_half_hours(
    hass: HomeAssistant,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    agile_entry: MockConfigEntry,
) -> None:
    # 29 Mar 2026 in London: 00:00 UTC (GMT) to 23:00 UTC (BST); published to 30 Mar 23:00 BST.
    await load(
        hass,
        freezer,
        aioclient_mock,
        agile_entry,
        now="2026-03-29 17:00:00+00:00",
        published_until=utc(2026, 3, 30, 22),
        consumption=False,
    )
    rates = state_of(hass, ELEC, "current_rate").attributes["rates"]
    today = [s for s in rates if datetime.fromisoformat(s["start"]) < utc(2026, 3, 29, 23)]
    assert len(today) == 46
    assert len(rates) == 46 + 46
    assert state_of(hass, ELEC, "tomorrow_rates", "binary_sensor").state == STATE_ON
    # The spring day's 01:00 local does not exist: 00:30 GMT is followed by 02:00 BST.
    assert starts(rates)[1:3] == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1)]
    assert [s["value"] for s in rates] == pytest.approx([gbp(at) for at in starts(rates)])


# ----------------------------------------------------------------------- get_rates


async def test_get_rates_defaults_to_today_and_tomorrow_from_memory(
    hass: HomeAssistant, hass_ws_client: Any, published: MockConfigEntry
) -> None:
    response = response_of(await call(hass_ws_client, hass, "get_rates", meter=ELEC))
    assert response["source"] == "memory"
    assert response["unit"] == "GBP/kWh"
    assert response["start"] == "2026-11-20T00:00:00+00:00"
    assert response["end"] == "2026-11-22T00:00:00+00:00"
    assert response["slots"] == state_of(hass, ELEC, "current_rate").attributes["rates"]


async def test_get_rates_of_a_window(
    hass: HomeAssistant, hass_ws_client: Any, published: MockConfigEntry
) -> None:
    response = response_of(
        await call(
            hass_ws_client,
            hass,
            "get_rates",
            meter=ELEC,
            start="2026-11-21T01:00:00+00:00",
            end="2026-11-21T03:00:00+00:00",
        )
    )
    assert response["slots"] == [
        {"start": "2026-11-21T01:00:00+00:00", "end": "2026-11-21T01:30:00+00:00", "value": 0.22},
        {"start": "2026-11-21T01:30:00+00:00", "end": "2026-11-21T02:00:00+00:00", "value": 0.23},
        {"start": "2026-11-21T02:00:00+00:00", "end": "2026-11-21T02:30:00+00:00", "value": 0.05},
        {"start": "2026-11-21T02:30:00+00:00", "end": "2026-11-21T03:00:00+00:00", "value": 0.05},
    ]


async def test_get_rates_reads_older_periods_from_the_archive(  # noqa: PLR0917 - pytest fixtures
    hass: HomeAssistant,
    hass_ws_client: Any,
    freezer: Any,
    aioclient_mock: AiohttpClientMocker,
    agile_entry: MockConfigEntry,
    tmp_path: Path,
) -> None:
    # An earlier install archived the Agile rates of 10 Nov.
    archive = open_archive(str(tmp_path / "lake"), config_dir=str(tmp_path))
    rows = [utc(2026, 11, 10) + i * HALF_HOUR for i in range(48)]
    archive.write_rates(
        pd.DataFrame(
            {
                "supplier": "octopus",
                "tariff": "E-1R-AGILE-24-10-01-A",
                "register": "standard",
                "valid_from": pd.to_datetime(rows, utc=True),
                "valid_to": pd.to_datetime([at + HALF_HOUR for at in rows], utc=True),
                "rate": [gbp(at) for at in rows],
                "rate_exc_vat": [gbp(at) / 1.05 for at in rows],
                "currency": "GBP",
                "payment_method": None,
                "ingested_at": pd.to_datetime([utc(2026, 11, 10, 16)] * 48, utc=True),
            }
        )
    )
    await load(
        hass,
        freezer,
        aioclient_mock,
        agile_entry,
        now=AFTER_PUBLICATION,
        published_until=utc(2026, 11, 21, 23),
    )
    response = response_of(
        await call(
            hass_ws_client,
            hass,
            "get_rates",
            meter=ELEC,
            start="2026-11-10T00:00:00+00:00",
            end="2026-11-11T00:00:00+00:00",
        )
    )
    assert response["source"] == "archive"
    assert starts(response["slots"]) == rows
    assert [s["value"] for s in response["slots"]] == pytest.approx([gbp(at) for at in rows])


# ----------------------------------------------------------------------- cheapest_window


async def test_cheapest_contiguous_window_tomorrow(
    hass: HomeAssistant, hass_ws_client: Any, published: MockConfigEntry
) -> None:
    response = response_of(
        await call(
            hass_ws_client,
            hass,
            "cheapest_window",
            meter=ELEC,
            duration="02:00:00",
            start="2026-11-21T00:00:00+00:00",
            end="2026-11-21T23:00:00+00:00",
        )
    )
    assert response["start"] == "2026-11-21T02:00:00+00:00"
    assert response["end"] == "2026-11-21T04:00:00+00:00"
    assert response["average"] == pytest.approx(0.05)
    assert response["contiguous"] is True
    assert response["rounded_up"] is False
    assert len(response["slots"]) == 4


async def test_cheapest_window_defaults_to_now_until_the_last_published_rate(
    hass: HomeAssistant, hass_ws_client: Any, published: MockConfigEntry
) -> None:
    # Now is 17:10: the 18:00 slot (2 p) and its neighbour 18:30 (20 + 37 mod 5 = 22 p) lose
    # to tomorrow's 02:00-04:00 (5 p).
    response = response_of(
        await call(hass_ws_client, hass, "cheapest_window", meter=ELEC, duration={"hours": 1})
    )
    assert response["start"] == "2026-11-21T02:00:00+00:00"
    assert response["end"] == "2026-11-21T03:00:00+00:00"


async def test_cheapest_slots_need_not_be_contiguous(
    hass: HomeAssistant, hass_ws_client: Any, published: MockConfigEntry
) -> None:
    response = response_of(
        await call(
            hass_ws_client,
            hass,
            "cheapest_window",
            meter=ELEC,
            duration=60,
            start="2026-11-21T00:00:00+00:00",
            end="2026-11-21T23:00:00+00:00",
            contiguous=False,
        )
    )
    assert starts(response["slots"]) == [utc(2026, 11, 21, 13), utc(2026, 11, 21, 18)]
    assert response["average"] == pytest.approx(0.015)
    assert response["duration_minutes"] == 60


async def test_a_duration_between_slots_is_rounded_up(
    hass: HomeAssistant, hass_ws_client: Any, published: MockConfigEntry
) -> None:
    response = response_of(
        await call(
            hass_ws_client,
            hass,
            "cheapest_window",
            meter=ELEC,
            duration="01:10:00",
            start="2026-11-21T00:00:00+00:00",
            end="2026-11-21T23:00:00+00:00",
        )
    )
    assert response["rounded_up"] is True
    assert response["duration_minutes"] == 70
    assert len(response["slots"]) == 3
    assert response["start"] == "2026-11-21T02:00:00+00:00"


# ----------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("service", "data", "key"),
    [
        ("get_rates", {"meter": "octopus_electricity_0"}, "meter_not_found"),
        (
            "get_rates",
            {"meter": ELEC, "start": "2026-11-21T00:00:00Z", "end": "2026-11-20T00:00:00Z"},
            "rates_end_before_start",
        ),
        (
            "get_rates",
            {"meter": ELEC, "start": "2026-10-01T00:00:00Z", "end": "2026-11-20T00:00:00Z"},
            "rates_window_too_long",
        ),
        (
            "get_rates",
            {"meter": ELEC, "start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"},
            "rates_not_published",
        ),
        (
            "cheapest_window",
            {
                "meter": ELEC,
                "duration": "03:00:00",
                "start": "2026-11-21T00:00:00Z",
                "end": "2026-11-21T02:00:00Z",
            },
            "rates_duration_longer_than_window",
        ),
        (
            "cheapest_window",
            {
                "meter": ELEC,
                "duration": "02:00:00",
                "start": "2026-11-25T00:00:00Z",
                "end": "2026-11-26T00:00:00Z",
            },
            "rates_not_published",
        ),
        (
            "cheapest_window",
            {
                "meter": ELEC,
                "duration": "02:00:00",
                "start": "2026-11-21T22:00:00Z",
                "end": "2026-11-22T02:00:00Z",
            },
            "rates_not_enough",
        ),
    ],
)
async def test_a_call_that_cannot_be_answered_says_why(  # noqa: PLR0917 - pytest fixtures
    hass: HomeAssistant,
    hass_ws_client: Any,
    published: MockConfigEntry,
    service: str,
    data: dict[str, Any],
    key: str,
) -> None:
    assert error_key(await call(hass_ws_client, hass, service, **data)) == key


async def test_a_duration_must_be_positive(
    hass: HomeAssistant, hass_ws_client: Any, published: MockConfigEntry
) -> None:
    msg = await call(hass_ws_client, hass, "cheapest_window", meter=ELEC, duration=0)
    assert not msg["success"]
    assert msg["error"]["code"] == "invalid_format"


# ----------------------------------------------------------------------- other sources


async def test_a_meter_without_a_tariff_of_its_own_has_no_rates(
    hass: HomeAssistant, hass_ws_client: Any, freezer: Any, tmp_path: Path
) -> None:
    await load_household(hass, freezer, tmp_path, backfill_days=2)
    msg = await call(hass_ws_client, hass, "get_rates", meter="demo_heat_pump")
    assert error_key(msg) == "meter_without_rates"
    assert msg["error"]["translation_placeholders"] == {"meter": "Demo heat pump"}


async def test_times_without_an_offset_are_local(
    hass: HomeAssistant, hass_ws_client: Any, freezer: Any, tmp_path: Path
) -> None:
    await load_household(hass, freezer, tmp_path, backfill_days=2)
    response = response_of(
        await call(
            hass_ws_client,
            hass,
            "get_rates",
            meter="demo_electricity",
            start="2026-11-20 06:00:00",
            end="2026-11-20 08:00:00",
        )
    )
    assert response["start"] == "2026-11-20T06:00:00+00:00"
    assert len(response["slots"]) == 4


async def test_an_unreadable_archive_leaves_what_memory_has(
    hass: HomeAssistant,
    hass_ws_client: Any,
    published: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with patch.object(Archive, "read_agreements", side_effect=ArchiveError("lake", "offline")):
        msg = await call(
            hass_ws_client,
            hass,
            "get_rates",
            meter=ELEC,
            start="2026-11-10T00:00:00+00:00",
            end="2026-11-21T00:00:00+00:00",
        )
    response = response_of(msg)
    assert response["source"] == "memory"
    assert response["slots"][-1]["end"] == "2026-11-21T00:00:00+00:00"
    assert "Cannot read archived rates" in caplog.text


async def test_an_unloaded_entry_stops_following_midnight(
    hass: HomeAssistant, freezer: Any, published: MockConfigEntry
) -> None:
    assert await hass.config_entries.async_unload(published.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    freezer.move_to("2026-11-21 00:00:01+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert state_of(hass, ELEC, "tomorrow_rates", "binary_sensor").state == STATE_UNAVAILABLE
    assert "rates" not in state_of(hass, ELEC, "current_rate").attributes
