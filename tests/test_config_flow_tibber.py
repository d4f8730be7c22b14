"""Tibber config flow: token, homes, reauth, reconfigure (also over HA's HTTP API)."""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, patch

import aiohttp
from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.config_flow import SOURCES, default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources import tibber, tibber_api
from custom_components.meterlake.sources.base import SourceContext

API_URL = "https://api.tibber.com/v1-beta/gql"
TOKEN = "5K4MVS-OjfWhK_4yrjOlFe1F6kJXPVf7eQYggo8ebAE"
NEW_TOKEN = "3A77EECF61BD445F47241A5A36202185C35AF3AF58609E19B53F3A8872AD7BE1-1"
USER = "d2c3a7e1-5b0f-4f8e-9c61-3f1e2b7a9c10"
OTHER_USER = "0f9e8d7c-6b5a-4c3d-2e1f-000000000000"
VILLA_ID = "96a14971-525a-4420-aae9-e5aedaa129ff"
CABIN_ID = "68e6938b-91a6-4199-a0d4-f24c22be87bb"


def home(
    home_id: str,
    nickname: str | None,
    address1: str,
    city: str,
    *,
    currency: str = "NOK",
    production: float = 0.0,
) -> dict[str, Any]:
    """A home as Tibber's account query returns it."""
    return {
        "id": home_id,
        "appNickname": nickname,
        "timeZone": "Europe/Oslo",
        "address": {"address1": address1, "postalCode": "0155", "city": city, "country": "NO"},
        "currentSubscription": {
            "status": "running",
            "priceInfo": {"current": {"currency": currency}},
        },
        "production": {"nodes": [{"production": 0.0}, {"production": production}]},
    }


VILLA = home(VILLA_ID, "Villa", "Storgata 1", "Oslo")
# No nickname: the street address names it; it exported electricity this month.
CABIN = home(CABIN_ID, None, "Fjellveien 12", "Geilo", production=4.2)

VILLA_CONFIG = {
    "id": VILLA_ID,
    "name": "Villa",
    "time_zone": "Europe/Oslo",
    "currency": "NOK",
    "production": False,
}
CABIN_CONFIG = {
    "id": CABIN_ID,
    "name": "Fjellveien 12",
    "time_zone": "Europe/Oslo",
    "currency": "NOK",
    "production": True,
}


def viewer(
    user_id: str = USER, name: str | None = "Kari Nordmann", homes: list[Any] | None = None
) -> dict[str, Any]:
    """The answer to the account query."""
    return {
        "data": {
            "viewer": {
                "userId": user_id,
                "name": name,
                "homes": [VILLA, CABIN] if homes is None else homes,
            }
        }
    }


def mock_account(mock: AiohttpClientMocker, **response: Any) -> None:
    mock.clear_requests()
    mock.post(API_URL, **(response or {"json": viewer()}))


@pytest.fixture(autouse=True)
def _no_entry_setup() -> Generator[AsyncMock]:
    """Flows create or reload entries: keep them from polling Tibber."""
    with (
        patch("custom_components.meterlake.async_setup_entry", return_value=True) as setup,
        patch("custom_components.meterlake.async_unload_entry", return_value=True),
    ):
        yield setup


@pytest.fixture(autouse=True)
def _fast_retries() -> Generator[None]:
    """Retries of a failing answer do not wait, and each test has its own rate limiter."""
    with patch(
        "custom_components.meterlake.config_flow.async_read_account",
        partial(tibber_api.async_read_account, sleep=AsyncMock(), limiter=tibber_api.RateLimiter()),
    ):
        yield


def tibber_entry(homes: list[dict[str, Any]], *, token: str = TOKEN) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Tibber (Kari Nordmann)",
        data={"source": "tibber", "access_token": token, "homes": homes},
        options=default_options(),
        unique_id=USER,
        version=1,
        minor_version=1,
    )


async def start_tibber(hass: HomeAssistant) -> Any:
    result: Any = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert "tibber" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "tibber"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tibber"
    return result


def schema_defaults(result: Any) -> dict[str, Any]:
    return {
        str(key): key.default() for key in result["data_schema"].schema if callable(key.default)
    }


def selector_of(result: Any, name: str) -> Any:
    return next(value for key, value in result["data_schema"].schema.items() if key == name)


# ------------------------------------------------------------------------------ user flow


def test_menu_offers_every_source() -> None:
    assert SOURCES == ["demo", "octopus", "tibber", "eco2mix", "composed"]


async def test_tibber_flow_creates_entry(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    result = await start_tibber(hass)
    assert [str(key) for key in result["data_schema"].schema] == ["access_token"]
    assert selector_of(result, "access_token").config["type"] == "password"
    assert result["description_placeholders"] == {
        "token_url": "https://developer.tibber.com/settings/access-token"
    }

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": f"  {TOKEN}\n"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tibber_homes"
    assert result["errors"] == {}
    # One request, the token (stripped) only in the Authorization header.
    assert aioclient_mock.call_count == 1
    _method, _url, body, headers = aioclient_mock.mock_calls[0]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert "viewer { userId name homes" in body["query"]
    assert TOKEN not in json.dumps(body)
    # Every home is offered and preselected.
    assert schema_defaults(result) == {"homes": [VILLA_ID, CABIN_ID]}
    homes = selector_of(result, "homes").config
    assert homes["multiple"] is True
    assert homes["mode"] == "list"
    assert homes["options"] == [
        {"value": VILLA_ID, "label": "Villa"},
        {"value": CABIN_ID, "label": "Fjellveien 12"},
    ]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"homes": [CABIN_ID]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Tibber (Kari Nordmann)"
    assert result["data"] == {"source": "tibber", "access_token": TOKEN, "homes": [CABIN_CONFIG]}
    assert result["options"] == default_options()
    assert result["result"].unique_id == USER

    # What the flow stored is what the source builds its meters from.
    source = tibber.create_source(
        SourceContext(
            session=async_get_clientsession(hass),
            executor=hass.async_add_executor_job,
            data=result["data"],
            options=result["options"],
        )
    )
    cabin = tibber.meter_key(CABIN_ID)
    assert [(m.key, m.is_export) for m in source.meters] == [
        (cabin, False),
        (f"{cabin}_production", True),
    ]


async def test_title_without_a_viewer_name_and_homes_of_one_name(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    twin = home(CABIN_ID, "Villa", "Fjellveien 12", "Geilo")
    mock_account(aioclient_mock, json=viewer(name=None, homes=[VILLA, None, twin]))
    result = await start_tibber(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": TOKEN}
    )
    # Two homes called "Villa" are told apart by their id; the unreadable (null) home is left out.
    assert selector_of(result, "homes").config["options"] == [
        {"value": VILLA_ID, "label": "Villa (96a14971)"},
        {"value": CABIN_ID, "label": "Villa (68e6938b)"},
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"homes": [VILLA_ID, CABIN_ID]}
    )
    assert result["title"] == "Tibber"
    assert [h["id"] for h in result["data"]["homes"]] == [VILLA_ID, CABIN_ID]


INVALID_TOKEN = {
    "errors": [
        {
            "message": "Context creation failed: invalid token",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ],
    "data": None,
}


@pytest.mark.parametrize(
    ("response", "error"),
    [
        ({"status": 401}, "invalid_auth"),
        ({"status": 403}, "invalid_auth"),
        ({"json": INVALID_TOKEN}, "invalid_auth"),
        ({"status": 400, "json": INVALID_TOKEN}, "invalid_auth"),
        ({"status": 500}, "cannot_connect"),
        ({"status": 429}, "cannot_connect"),
        ({"exc": aiohttp.ClientConnectionError("dns")}, "cannot_connect"),
        ({"exc": TimeoutError()}, "cannot_connect"),
        ({"text": "<html>maintenance</html>"}, "cannot_connect"),
        ({"json": {"errors": [{"message": "internal"}], "data": None}}, "cannot_connect"),
        ({"json": {"data": {"viewer": None}}}, "cannot_connect"),
        ({"json": {"data": {"viewer": {"name": "no id", "homes": []}}}}, "cannot_connect"),
    ],
)
async def test_account_errors_are_mapped_and_recoverable(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    caplog: pytest.LogCaptureFixture,
    response: dict[str, Any],
    error: str,
) -> None:
    mock_account(aioclient_mock, **response)
    result = await start_tibber(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": TOKEN}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tibber"
    assert result["errors"] == {"base": error}
    assert TOKEN not in caplog.text
    # The form asks once: no retries while the user waits.
    assert aioclient_mock.call_count == 1

    mock_account(aioclient_mock)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": TOKEN}
    )
    assert result["step_id"] == "tibber_homes"


async def test_unexpected_error_is_logged_as_unknown(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    result = await start_tibber(hass)
    with (
        patch(
            "custom_components.meterlake.config_flow.async_read_account",
            side_effect=RuntimeError("boom"),
        ),
        caplog.at_level(logging.ERROR),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"access_token": TOKEN}
        )
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while reading the Tibber account" in caplog.text
    assert "RuntimeError: boom" in caplog.text


async def test_account_without_homes_is_an_error(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock, json=viewer(homes=[]))
    result = await start_tibber(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": TOKEN}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tibber"
    assert result["errors"] == {"base": "no_homes"}
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_second_entry_for_a_user_aborts(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    tibber_entry([VILLA_CONFIG]).add_to_hass(hass)
    mock_account(aioclient_mock)
    result = await start_tibber(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": NEW_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_selecting_no_home_is_an_error(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    result = await start_tibber(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": TOKEN}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"homes": []})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tibber_homes"
    assert result["errors"] == {"homes": "no_homes_selected"}
    assert schema_defaults(result) == {"homes": []}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"homes": [VILLA_ID]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["homes"] == [VILLA_CONFIG]


async def test_tibber_flow_over_http_api(
    hass: HomeAssistant, hass_client: Any, aioclient_mock: AiohttpClientMocker
) -> None:
    """The frontend's path: both schemas serialize; the homes come back as a JSON list."""
    mock_account(aioclient_mock)
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    resp = await client.post("/api/config/config_entries/flow", json={"handler": DOMAIN})
    assert resp.status == 200
    body = await resp.json()
    assert body["type"] == "menu"
    assert body["menu_options"] == ["demo", "octopus", "tibber", "eco2mix", "composed"]
    url = f"/api/config/config_entries/flow/{body['flow_id']}"

    resp = await client.post(url, json={"next_step_id": "tibber"})
    body = await resp.json()
    assert body["type"] == "form"
    assert body["step_id"] == "tibber"
    (field,) = body["data_schema"]
    assert field["name"] == "access_token"
    assert field["required"] is True
    assert field["selector"]["text"]["type"] == "password"
    assert body["description_placeholders"]["token_url"].startswith("https://developer.tibber")

    mock_account(aioclient_mock, status=401)
    resp = await client.post(url, json={"access_token": "wrong"})
    body = await resp.json()
    assert body["errors"] == {"base": "invalid_auth"}

    mock_account(aioclient_mock)
    resp = await client.post(url, json={"access_token": TOKEN})
    body = await resp.json()
    assert body["type"] == "form"
    assert body["step_id"] == "tibber_homes"
    (field,) = body["data_schema"]
    assert field["name"] == "homes"
    assert field["default"] == [VILLA_ID, CABIN_ID]
    select = field["selector"]["select"]
    assert select["multiple"] is True
    assert select["mode"] == "list"
    assert [o["label"] for o in select["options"]] == ["Villa", "Fjellveien 12"]

    resp = await client.post(url, json={"homes": [VILLA_ID, CABIN_ID]})
    body = await resp.json()
    assert body["type"] == "create_entry"
    assert body["title"] == "Tibber (Kari Nordmann)"
    assert TOKEN not in json.dumps(body)
    await hass.async_block_till_done()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.unique_id == USER
    assert entry.data == {
        "source": "tibber",
        "access_token": TOKEN,
        "homes": [VILLA_CONFIG, CABIN_CONFIG],
    }


# ------------------------------------------------------------------------------ reauth


async def test_reauth_replaces_the_token(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, _no_entry_setup: AsyncMock
) -> None:
    entry = tibber_entry([VILLA_CONFIG])
    entry.add_to_hass(hass)
    result: Any = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm_tibber"
    assert result["description_placeholders"] == {
        "name": "Tibber (Kari Nordmann)",
        "token_url": "https://developer.tibber.com/settings/access-token",
    }
    assert [str(key) for key in result["data_schema"].schema] == ["access_token"]

    mock_account(aioclient_mock, json=INVALID_TOKEN)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": "still-wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data["access_token"] == TOKEN

    mock_account(aioclient_mock)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": f" {NEW_TOKEN} "}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert aioclient_mock.mock_calls[0][3]["Authorization"] == f"Bearer {NEW_TOKEN}"
    assert entry.data == {"source": "tibber", "access_token": NEW_TOKEN, "homes": [VILLA_CONFIG]}
    await hass.async_block_till_done()
    assert _no_entry_setup.call_count == 1  # the entry was reloaded with the new token


async def test_reauth_refuses_a_token_of_another_user(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    entry = tibber_entry([VILLA_CONFIG])
    entry.add_to_hass(hass)
    result: Any = await entry.start_reauth_flow(hass)
    mock_account(aioclient_mock, json=viewer(user_id=OTHER_USER))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": NEW_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "account_mismatch"
    assert entry.data["access_token"] == TOKEN


async def test_reauth_cannot_connect(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    entry = tibber_entry([VILLA_CONFIG])
    entry.add_to_hass(hass)
    result: Any = await entry.start_reauth_flow(hass)
    mock_account(aioclient_mock, status=503)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": NEW_TOKEN}
    )
    assert result["step_id"] == "reauth_confirm_tibber"
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.data["access_token"] == TOKEN


# ------------------------------------------------------------------------------ reconfigure


async def test_reconfigure_changes_homes_and_keeps_the_token(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, _no_entry_setup: AsyncMock
) -> None:
    entry = tibber_entry([CABIN_CONFIG])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock)
    result: Any = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_tibber"
    (key,) = result["data_schema"].schema
    assert str(key) == "access_token"
    assert isinstance(key, vol.Optional)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    # No new token: the stored one reads the account; the current homes are preselected.
    assert aioclient_mock.mock_calls[0][3]["Authorization"] == f"Bearer {TOKEN}"
    assert result["step_id"] == "tibber_homes"
    assert schema_defaults(result) == {"homes": [CABIN_ID]}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"homes": [VILLA_ID, CABIN_ID]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {
        "source": "tibber",
        "access_token": TOKEN,
        "homes": [VILLA_CONFIG, CABIN_CONFIG],
    }
    assert entry.title == "Tibber (Kari Nordmann)"
    await hass.async_block_till_done()
    assert _no_entry_setup.call_count == 1


async def test_reconfigure_with_a_new_token_and_gone_homes(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    gone = VILLA_CONFIG | {"id": "00000000-0000-0000-0000-00000000dead"}
    entry = tibber_entry([gone])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock)
    result: Any = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": f" {NEW_TOKEN} "}
    )
    assert aioclient_mock.mock_calls[0][3]["Authorization"] == f"Bearer {NEW_TOKEN}"
    # The stored home is no longer on the account: every home it lists is preselected.
    assert schema_defaults(result) == {"homes": [VILLA_ID, CABIN_ID]}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"homes": [VILLA_ID]}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {"source": "tibber", "access_token": NEW_TOKEN, "homes": [VILLA_CONFIG]}


async def test_reconfigure_refuses_another_user(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    entry = tibber_entry([VILLA_CONFIG])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock, json=viewer(user_id=OTHER_USER))
    result: Any = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"access_token": NEW_TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "account_mismatch"
    assert entry.data["access_token"] == TOKEN


@pytest.mark.parametrize(
    ("response", "error"),
    [
        ({"status": 401}, "invalid_auth"),
        ({"status": 502}, "cannot_connect"),
        ({"json": viewer(homes=[])}, "no_homes"),
    ],
)
async def test_reconfigure_errors(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, response: dict[str, Any], error: str
) -> None:
    entry = tibber_entry([VILLA_CONFIG])
    entry.add_to_hass(hass)
    mock_account(aioclient_mock, **response)
    result: Any = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_tibber"
    assert result["errors"] == {"base": error}
    assert entry.data["homes"] == [VILLA_CONFIG]


# ------------------------------------------------------------------------------ strings


STRINGS = Path(__file__).parents[1] / "custom_components" / "meterlake" / "strings.json"


def test_strings_describe_every_new_step() -> None:
    strings = json.loads(STRINGS.read_text(encoding="utf-8"))
    config = strings["config"]
    for step in ("tibber", "tibber_homes", "reauth_confirm_tibber", "reconfigure_tibber"):
        texts = config["step"][step]
        assert texts["title"] and texts["description"]
        assert set(texts["data"]) == set(texts["data_description"])
    assert "{token_url}" in config["step"]["tibber"]["description"]
    assert set(config["step"]["user"]["menu_options"]) == set(SOURCES)
    assert {"no_homes", "no_homes_selected", "invalid_auth", "cannot_connect", "unknown"} <= set(
        config["error"]
    )
    assert {"already_configured", "account_mismatch", "reauth_successful"} <= set(config["abort"])
    en = STRINGS.parent / "translations" / "en.json"
    assert en.read_bytes() == STRINGS.read_bytes()
