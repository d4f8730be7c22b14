"""The shared options form refuses impossible values with translated field errors.

Through the options flow, over the HTTP API the frontend uses, and the pure checks behind both
(custom_components/meterlake/options.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest

from custom_components.meterlake.options import (
    BACKFILL_DAYS_RANGE,
    KEEP_RAW_DAYS_RANGE,
    OPTION_ERRORS,
    check_archive_root,
    check_days,
    check_endpoint,
    validate_options,
)

COMPONENT = Path(__file__).parent.parent / "custom_components" / "meterlake"

VALID_OPTIONS = {
    "archive_root": "unused-in-these-tests",
    "keep_raw_days": 7,
    "backfill_days": 30,
    "gas_calorific_value": 39.2,
    "gas_volume_correction": 1.02264,
    "standing_charge_in_cost": False,
}


@pytest.fixture
async def loaded_demo(hass: HomeAssistant, demo_entry: Any) -> Any:
    """The demo entry set up at the real time (a frozen clock would expire the HTTP token)."""
    demo_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    return demo_entry


IMPOSSIBLE_VALUES = [
    ("archive_root", "s3://", "archive_root_no_bucket"),
    ("archive_root", "s3:///prefix", "archive_root_no_bucket"),
    ("archive_root", "gs://", "archive_root_no_bucket"),
    ("archive_root", "abfs://", "archive_root_no_bucket"),
    ("archive_root", "az://", "archive_root_no_bucket"),
    ("archive_endpoint", "::::", "archive_endpoint_invalid"),
    ("archive_endpoint", "minio local:9000", "archive_endpoint_invalid"),
    ("archive_endpoint", "minio.local:9000/bucket", "archive_endpoint_invalid"),
    ("archive_endpoint", "ftp://minio.local", "archive_endpoint_invalid"),
    ("archive_endpoint", "minio.local:70000", "archive_endpoint_invalid"),
    ("archive_root", "lake\nother", "archive_root_invalid"),
    ("archive_root", "lake\tother", "archive_root_invalid"),
    ("archive_root", "lake\x00other", "archive_root_invalid"),
    ("archive_root", "lake\x1b[0m", "archive_root_invalid"),
    ("archive_root", "../..", "archive_root_outside_config"),
    ("archive_root", "a/../../x", "archive_root_outside_config"),
    ("keep_raw_days", 2.5, "not_whole_days"),
    ("backfill_days", 30.5, "not_whole_days"),
    ("gas_calorific_value", 11.2, "calorific_value_range"),
    ("gas_volume_correction", 0, "volume_correction_range"),
]


async def test_valid_options_are_saved(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path
) -> None:
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        VALID_OPTIONS
        | {"archive_root": str(tmp_path / "lake2"), "archive_endpoint": " minio.local:9000 "},
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_demo.options["backfill_days"] == 30
    assert loaded_demo.options["archive_endpoint"] == "minio.local:9000"


@pytest.mark.parametrize(("field", "value", "error"), IMPOSSIBLE_VALUES)
async def test_options_form_refuses_impossible_value(
    hass: HomeAssistant, loaded_demo: Any, field: str, value: Any, error: str
) -> None:
    before = dict(loaded_demo.options)
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {field: value}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    assert dict(loaded_demo.options) == before


async def test_absolute_root_outside_config_folder_is_allowed(
    hass: HomeAssistant, loaded_demo: Any, tmp_path: Path
) -> None:
    nas = tmp_path / "mnt" / "nas" / "meterlake"
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {"archive_root": str(nas)}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_demo.options["archive_root"] == str(nas)


async def test_home_folder_of_unknown_user_is_unreachable(
    hass: HomeAssistant, loaded_demo: Any
) -> None:
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {"archive_root": "~meterlake-no-such-user/lake"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"archive_root": "archive_unreachable"}
    assert result["description_placeholders"]["error"]


async def test_refused_form_shows_the_typed_values_again(
    hass: HomeAssistant, loaded_demo: Any
) -> None:
    result = await hass.config_entries.options.async_init(loaded_demo.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], VALID_OPTIONS | {"archive_root": "../outside", "backfill_days": 12}
    )
    defaults = {
        str(key): key.default() for key in result["data_schema"].schema if callable(key.default)
    }
    assert defaults["archive_root"] == "../outside"
    assert defaults["backfill_days"] == 12


# ------------------------------------------------------------------------------ HTTP API


async def _options_over_http(
    hass: HomeAssistant, hass_client: Any, entry_id: str, user_input: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Start the options flow and submit one form as the frontend does; (status, body)."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    resp = await client.post("/api/config/config_entries/options/flow", json={"handler": entry_id})
    assert resp.status == 200
    body = await resp.json()
    assert body["step_id"] == "init"
    resp = await client.post(
        f"/api/config/config_entries/options/flow/{body['flow_id']}", json=user_input
    )
    return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("keep_raw_days", 2.5, "not_whole_days"),
        # The number selector lets NaN through (it is neither below nor above its bounds).
        ("backfill_days", "nan", "not_whole_days"),
        ("archive_root", "lake\u0000", "archive_root_invalid"),
        ("archive_root", "s3://", "archive_root_no_bucket"),
        ("archive_endpoint", "::::", "archive_endpoint_invalid"),
        ("archive_root", "../../etc", "archive_root_outside_config"),
    ],
)
async def test_options_form_over_http_shows_field_error(
    hass: HomeAssistant, hass_client: Any, loaded_demo: Any, *, field: str, value: Any, error: str
) -> None:
    before = dict(loaded_demo.options)
    status, body = await _options_over_http(
        hass, hass_client, loaded_demo.entry_id, VALID_OPTIONS | {field: value}
    )
    assert status == 200
    assert body["type"] == "form"
    assert body["errors"] == {field: error}
    assert dict(loaded_demo.options) == before


async def test_options_over_http_out_of_range_days_are_refused(
    hass: HomeAssistant, hass_client: Any, loaded_demo: Any
) -> None:
    before = dict(loaded_demo.options)
    status, body = await _options_over_http(
        hass, hass_client, loaded_demo.entry_id, VALID_OPTIONS | {"backfill_days": 99999}
    )
    assert status == 400
    assert "backfill_days" in body["errors"]
    assert dict(loaded_demo.options) == before


async def test_options_over_http_saves_valid_form(
    hass: HomeAssistant, hass_client: Any, loaded_demo: Any, tmp_path: Path
) -> None:
    status, body = await _options_over_http(
        hass,
        hass_client,
        loaded_demo.entry_id,
        VALID_OPTIONS | {"archive_root": str(tmp_path / "lake3"), "backfill_days": 20.0},
    )
    await hass.async_block_till_done()
    assert status == 200
    assert body["type"] == "create_entry"
    assert loaded_demo.options["backfill_days"] == 20
    assert isinstance(loaded_demo.options["backfill_days"], int)


# ------------------------------------------------------------------------------ pure checks


@pytest.mark.parametrize(("field", "value", "error"), IMPOSSIBLE_VALUES)
def test_validate_options_names_the_field(field: str, value: Any, error: str) -> None:
    _options, errors = validate_options(VALID_OPTIONS | {field: value})
    assert errors == {field: error}


@pytest.mark.parametrize(
    ("value", "bounds"),
    [(-1, KEEP_RAW_DAYS_RANGE), (3651, KEEP_RAW_DAYS_RANGE), (0, BACKFILL_DAYS_RANGE)],
)
def test_days_out_of_range(value: int, bounds: tuple[int, int]) -> None:
    assert check_days(value, bounds) == (value, "days_out_of_range")


@pytest.mark.parametrize(
    "value", ["abc", None, True, float("nan"), float("inf"), "1e999", 2.5, "2.5", [3]]
)
def test_days_not_whole(value: Any) -> None:
    assert check_days(value, BACKFILL_DAYS_RANGE)[1] == "not_whole_days"


@pytest.mark.parametrize(("value", "days"), [(30, 30), (30.0, 30), ("30", 30), (" 30.0 ", 30)])
def test_days_normalised_to_int(value: Any, days: int) -> None:
    assert check_days(value, BACKFILL_DAYS_RANGE) == (days, None)


@pytest.mark.parametrize(
    "root",
    [
        "meterlake",
        "./lake",
        "a/../b",
        "/media/nas/meterlake",
        "~/meterlake",
        "file:///media/nas/lake",
        "s3://bucket",
        "s3://bucket/prefix?region=eu-west-2",
        "gs://bucket/prefix",
        "abfs://container@account.dfs.core.windows.net/prefix",
        "az://container/prefix",
    ],
)
def test_archive_root_accepted(root: str) -> None:
    assert check_archive_root(f"  {root} ") == (root, None)


@pytest.mark.parametrize(
    ("root", "error"),
    [
        ("   ", "archive_root_empty"),
        (42, "archive_root_invalid"),
        ("s3://[bucket", "archive_root_invalid"),
        ("lake\u2028x", "archive_root_invalid"),
        ("..", "archive_root_outside_config"),
        ("lake/./../../x", "archive_root_outside_config"),
    ],
)
def test_archive_root_refused(root: Any, error: str) -> None:
    assert check_archive_root(root)[1] == error


@pytest.mark.parametrize(
    "endpoint",
    [
        "",
        "minio.local",
        "minio.local:9000",
        "192.168.1.20:9000",
        "http://192.168.1.20:9000",
        "HTTPS://s3.example.com/",
        "[::1]:9000",
        "http://[fd00::1]",
    ],
)
def test_endpoint_accepted(endpoint: str) -> None:
    assert check_endpoint(endpoint) == (endpoint, None)


def test_endpoint_absent_is_accepted() -> None:
    assert check_endpoint(None) == (None, None)


@pytest.mark.parametrize(
    "endpoint", ["[zz::1]:9000", "[1:::2]:9000", "host:0", 9000, "-bad-.local", "h\x00st"]
)
def test_endpoint_refused(endpoint: Any) -> None:
    assert check_endpoint(endpoint)[1] == "archive_endpoint_invalid"


@pytest.mark.parametrize("name", ["strings.json", "translations/en.json"])
def test_every_option_error_is_translated(name: str) -> None:
    strings = json.loads((COMPONENT / name).read_text(encoding="utf-8"))
    fix_flow = strings["issues"]["invalid_options"]["fix_flow"]
    assert set(strings["options"]["error"]) >= OPTION_ERRORS
    assert set(fix_flow["error"]) >= OPTION_ERRORS | {"archive_unreachable"}
    assert fix_flow["step"]["init"]["data"] == strings["options"]["step"]["init"]["data"]


@pytest.mark.parametrize(
    "stored",
    [
        "spike",
        {"detectors": "spike"},
        {"detectors": ["spike", "teleportation"]},
        {"high_day_factor": "lots"},
        {"high_day_window_days": 7.5},
        {"spike_sensitivity": 0.1},
        {"max_delay_hours": 1e9},
    ],
)
def test_hand_edited_anomaly_settings_are_put_back_to_the_defaults(stored: Any) -> None:
    from custom_components.meterlake.options import sanitize_options

    options, invalid = sanitize_options({"anomalies": stored})
    assert invalid == ["anomalies"]
    assert "anomalies" not in options


def test_anomaly_settings_are_normalised() -> None:
    from custom_components.meterlake.options import validate_options

    options, errors = validate_options(
        {"anomalies": {"detectors": ["spike", "high_day"], "high_day_window_days": 14.0}}
    )
    assert errors == {}
    assert options["anomalies"] == {"detectors": ["high_day", "spike"], "high_day_window_days": 14}
