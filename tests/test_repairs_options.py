"""Stored options MeterLake cannot use are reset to defaults, and a repair opens the options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.options import DEFAULT_OPTIONS, sanitize_options
from custom_components.meterlake.repairs import async_apply_valid_options

from .conftest import start_fix_flow

ENTRY_ID = "01BADOPTIONS00000000000000"
ISSUE_ID = f"invalid_options_{ENTRY_ID}"
BAD_OPTIONS = {
    "backfill_days": "abc",
    "gas_calorific_value": "abc",
    "gas_volume_correction": 0,
    "keep_raw_days": -4,
}
BAD_KEYS = ["keep_raw_days", "backfill_days", "gas_calorific_value", "gas_volume_correction"]


@pytest.fixture
def bad_entry(hass: HomeAssistant, tmp_path: Path) -> MockConfigEntry:
    """A demo entry whose stored options were edited by hand (added to hass, not set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MeterLake demo",
        data={"source": "demo"},
        options=default_options() | {"archive_root": str(tmp_path / "lake")} | BAD_OPTIONS,
        unique_id="demo",
        entry_id=ENTRY_ID,
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def repaired_entry(hass: HomeAssistant, bad_entry: MockConfigEntry) -> MockConfigEntry:
    """The bad entry after setup's option check, then set up with the sanitized options."""
    await async_apply_valid_options(hass, bad_entry)
    assert await hass.config_entries.async_setup(bad_entry.entry_id)
    await hass.async_block_till_done()
    return bad_entry


def repair_form(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """A complete, valid repair form."""
    return {
        "archive_root": str(tmp_path / "fixed-lake"),
        "keep_raw_days": 2,
        "backfill_days": 10,
        "gas_calorific_value": 39.1,
        "gas_volume_correction": 1.02264,
        "standing_charge_in_cost": False,
    } | changes


# ------------------------------------------------------------------------------ at setup


async def test_invalid_options_are_reset_to_defaults(
    hass: HomeAssistant, bad_entry: MockConfigEntry, tmp_path: Path
) -> None:
    await async_apply_valid_options(hass, bad_entry)
    assert {key: bad_entry.options[key] for key in BAD_OPTIONS} == {
        key: DEFAULT_OPTIONS[key] for key in BAD_OPTIONS
    }
    assert bad_entry.options["archive_root"] == str(tmp_path / "lake")


async def test_invalid_options_raise_a_fixable_issue(
    hass: HomeAssistant, bad_entry: MockConfigEntry
) -> None:
    await async_apply_valid_options(hass, bad_entry)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "invalid_options"
    assert issue.translation_placeholders == {
        "title": "MeterLake demo",
        "keys": ", ".join(BAD_KEYS),
    }


async def test_entry_with_sanitized_options_sets_up(
    hass: HomeAssistant, repaired_entry: MockConfigEntry
) -> None:
    assert repaired_entry.state is ConfigEntryState.LOADED


async def test_warning_names_keys_not_values(
    hass: HomeAssistant, bad_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    hass.config_entries.async_update_entry(
        bad_entry, options={**bad_entry.options, "archive_endpoint": "s3cr3t token:::"}
    )
    await async_apply_valid_options(hass, bad_entry)
    assert "archive_endpoint" in caplog.text
    assert "backfill_days" in caplog.text
    assert "s3cr3t" not in caplog.text
    assert "archive_endpoint" not in bad_entry.options


async def test_the_issue_stays_until_the_user_saves_the_options(
    hass: HomeAssistant, bad_entry: MockConfigEntry, tmp_path: Path
) -> None:
    await async_apply_valid_options(hass, bad_entry)
    # A restart finds valid (reset) options: the user has still not seen them.
    await async_apply_valid_options(hass, bad_entry)
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is not None
    result = await hass.config_entries.options.async_init(bad_entry.entry_id)
    await hass.config_entries.options.async_configure(
        result["flow_id"], repair_form(tmp_path, backfill_days=10)
    )
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is None
    assert bad_entry.options["backfill_days"] == 10


async def test_valid_options_are_left_alone(
    hass: HomeAssistant, demo_entry: MockConfigEntry
) -> None:
    demo_entry.add_to_hass(hass)
    before = dict(demo_entry.options)
    await async_apply_valid_options(hass, demo_entry)
    assert dict(demo_entry.options) == before
    assert not ir.async_get(hass).issues


# ------------------------------------------------------------------------------ the repair


async def test_repair_opens_the_options_prefilled_with_sanitized_values(
    hass: HomeAssistant, hass_client: Any, repaired_entry: MockConfigEntry, tmp_path: Path
) -> None:
    _client, resp = await start_fix_flow(hass, hass_client, ISSUE_ID)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["type"] == "form"
    assert body["step_id"] == "init"
    defaults = {field["name"]: field.get("default") for field in body["data_schema"]}
    assert defaults == {
        "archive_root": str(tmp_path / "lake"),
        "keep_raw_days": 0,
        "backfill_days": 365,
        "gas_calorific_value": 39.5,
        "gas_volume_correction": 1.02264,
        "standing_charge_in_cost": False,
        "archive_endpoint": None,
        "archive_access_key": None,
        "archive_secret_key": None,
        "archive_region": None,
        "archive_account_name": None,
        "archive_account_key": None,
        "archive_sas_token": None,
        "archive_anonymous": None,
        "archive_service_account": None,
        "anomalies": None,
    }
    assert body["description_placeholders"]["keys"] == ", ".join(BAD_KEYS)


async def test_repair_saves_options_reloads_and_clears_issue(
    hass: HomeAssistant, hass_client: Any, repaired_entry: MockConfigEntry, tmp_path: Path
) -> None:
    client, resp = await start_fix_flow(hass, hass_client, ISSUE_ID)
    flow_id = (await resp.json())["flow_id"]
    resp = await client.post(f"/api/repairs/issues/fix/{flow_id}", json=repair_form(tmp_path))
    assert resp.status == 200
    assert (await resp.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert {key: repaired_entry.options[key] for key in repair_form(tmp_path)} == repair_form(
        tmp_path
    )
    assert (tmp_path / "fixed-lake").is_dir()
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is None
    assert repaired_entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"keep_raw_days": 2.5}, {"keep_raw_days": "not_whole_days"}),
        ({"archive_root": "../../elsewhere"}, {"archive_root": "archive_root_outside_config"}),
        ({"archive_root": "s3://"}, {"archive_root": "archive_root_no_bucket"}),
        ({"gas_calorific_value": 3.95}, {"gas_calorific_value": "calorific_value_range"}),
    ],
)
async def test_repair_refuses_invalid_form(
    hass: HomeAssistant,
    hass_client: Any,
    repaired_entry: MockConfigEntry,
    tmp_path: Path,
    *,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    before = dict(repaired_entry.options)
    client, resp = await start_fix_flow(hass, hass_client, ISSUE_ID)
    flow_id = (await resp.json())["flow_id"]
    resp = await client.post(
        f"/api/repairs/issues/fix/{flow_id}", json=repair_form(tmp_path, **changes)
    )
    body = await resp.json()
    assert body["type"] == "form"
    assert body["errors"] == errors
    assert dict(repaired_entry.options) == before
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is not None


async def test_repair_refuses_unusable_archive_then_accepts_a_fix(
    hass: HomeAssistant, hass_client: Any, repaired_entry: MockConfigEntry, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    client, resp = await start_fix_flow(hass, hass_client, ISSUE_ID)
    flow_id = (await resp.json())["flow_id"]
    resp = await client.post(
        f"/api/repairs/issues/fix/{flow_id}",
        json=repair_form(tmp_path, archive_root=str(blocker / "lake")),
    )
    body = await resp.json()
    assert body["errors"] == {"archive_root": "archive_unreachable"}
    assert str(blocker) in body["description_placeholders"]["error"]
    resp = await client.post(f"/api/repairs/issues/fix/{flow_id}", json=repair_form(tmp_path))
    assert (await resp.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert repaired_entry.options["archive_root"] == str(tmp_path / "fixed-lake")


async def test_repair_of_a_removed_entry_aborts(
    hass: HomeAssistant, hass_client: Any, repaired_entry: MockConfigEntry
) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        "invalid_options_01GONE",
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="invalid_options",
        translation_placeholders={"title": "Gone", "keys": "backfill_days"},
    )
    _client, resp = await start_fix_flow(hass, hass_client, "invalid_options_01GONE")
    body = await resp.json()
    assert body["type"] == "abort"
    assert body["reason"] == "entry_not_found"


async def test_fixable_issue_without_a_flow_is_a_bad_request(
    hass: HomeAssistant, hass_client: Any, repaired_entry: MockConfigEntry
) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        "mystery_01ABC",
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="invalid_options",
    )
    _client, resp = await start_fix_flow(hass, hass_client, "mystery_01ABC")
    assert resp.status == 400
    assert "mystery_01ABC" in (await resp.json())["message"]


# ------------------------------------------------------------------------------ pure


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("backfill_days", -1),
        ("backfill_days", 0),
        ("backfill_days", 10**12),
        ("backfill_days", "abc"),
        ("backfill_days", 2.5),
        ("backfill_days", None),
        ("backfill_days", [30]),
        ("keep_raw_days", -4),
        ("keep_raw_days", 99999),
        ("keep_raw_days", "seven"),
        ("keep_raw_days", float("nan")),
        ("gas_calorific_value", "abc"),
        ("gas_calorific_value", 0),
        ("gas_calorific_value", float("inf")),
        ("gas_volume_correction", 0),
        ("gas_volume_correction", "1,02"),
        ("archive_root", "lake\x00"),
        ("archive_root", "lake\nother"),
        ("archive_root", ""),
        ("archive_root", "../../outside"),
        ("archive_root", "s3://"),
        ("archive_root", None),
        ("standing_charge_in_cost", "yes"),
    ],
)
def test_sanitize_puts_back_the_default(key: str, bad: Any) -> None:
    options, invalid = sanitize_options(default_options() | {key: bad})
    assert options == default_options()
    assert invalid == [key]


def test_sanitize_removes_an_invalid_endpoint() -> None:
    options, invalid = sanitize_options(
        default_options() | {"archive_endpoint": "::::", "archive_access_key": "AKIA"}
    )
    assert options == default_options() | {"archive_access_key": "AKIA"}
    assert invalid == ["archive_endpoint"]


def test_sanitize_keeps_valid_and_unchecked_options() -> None:
    stored = default_options() | {
        "archive_root": "s3://bucket/prefix",
        "archive_endpoint": "http://minio.local:9000",
        "tariff_overrides": {"electricity_1": "AGILE-24-10-01"},
        "co2_meter": "demo_electricity",
    }
    assert sanitize_options(stored) == (stored, [])


def test_sanitize_leaves_missing_options_missing() -> None:
    assert sanitize_options({"backfill_days": 10}) == ({"backfill_days": 10}, [])
