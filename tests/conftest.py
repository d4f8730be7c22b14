"""Shared fixtures. Tests that use `hass` get custom integrations enabled automatically."""

from __future__ import annotations

from collections.abc import Generator
import json
import logging
from pathlib import Path
from typing import Any

# Imported before any test freezes time: a first import of pandas/pyarrow in a worker thread
# under freezegun can hang.
import numpy  # noqa: F401
import pandas  # noqa: F401
import pyarrow
import pyarrow.parquet  # noqa: F401
import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# The Home Assistant test plugin turns SQL echo on; the recorder thread would flood the output.
logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def _custom_integrations(request: pytest.FixtureRequest) -> Generator[None]:
    """Load custom_components/ for every test that runs Home Assistant; leave pure tests alone.

    MeterLake depends on the recorder, so those tests get the real one (SQLite in memory),
    started before `hass` as the recorder fixtures require.
    """
    if "hass" in request.fixturenames:
        request.getfixturevalue("recorder_mock")
        request.getfixturevalue("enable_custom_integrations")
    yield


def load_fixture_json(name: str) -> Any:
    """Read a JSON payload from tests/fixtures/."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


DEMO_NOW = "2026-11-20 12:10:00+00:00"


@pytest.fixture
def demo_entry(tmp_path: Path) -> Any:
    """A demo config entry with default options (not yet added to hass)."""
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from custom_components.meterlake.config_flow import default_options
    from custom_components.meterlake.const import DOMAIN

    return MockConfigEntry(
        domain=DOMAIN,
        title="MeterLake demo",
        data={"source": "demo"},
        options=default_options() | {"backfill_days": 10, "archive_root": str(tmp_path / "lake")},
        unique_id="demo",
        entry_id="01DEMOENTRY0000000000000000",
    )


@pytest.fixture
async def loaded_demo(hass: Any, freezer: Any, demo_entry: Any) -> Any:
    """The demo entry set up at a fixed moment in Europe/London."""
    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    demo_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    return demo_entry


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create entities that are disabled by default as enabled (for snapshot_platform)."""
    from unittest.mock import PropertyMock, patch

    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
def snapshot(snapshot: Any) -> Any:
    """Home Assistant's syrupy extension: registry ids and times are masked, states are dicts."""
    from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension

    return snapshot.use_extension(HomeAssistantSnapshotExtension)


# The moto S3 server fixture of the archive tests, shared with the pipeline tests.
from .test_archive_s3 import s3  # noqa: E402, F401


async def start_fix_flow(
    hass: Any, hass_client: Any, issue_id: str, *, fresh_token: bool = False
) -> tuple[Any, Any]:
    """Start a repair issue's fix flow over the repairs HTTP API, as the UI does.

    `fresh_token`: sign in at the frozen time (a token made before time was moved back would
    not be valid yet).
    """
    from homeassistant.setup import async_setup_component

    from custom_components.meterlake.const import DOMAIN

    assert await async_setup_component(hass, "repairs", {})
    await hass.async_block_till_done()
    if fresh_token:
        user = await hass.auth.async_create_system_user("fix flow", group_ids=["system-admin"])
        refresh = await hass.auth.async_create_refresh_token(user)
        client = await hass_client(hass.auth.async_create_access_token(refresh))
    else:
        client = await hass_client()
    resp = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    return client, resp


async def load_household(hass: Any, freezer: Any, tmp_path: Path, *, backfill_days: int) -> Any:
    """The demo with its sub-meters, loaded at DEMO_NOW (config dir and archive in tmp_path)."""
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.components.recorder.common import (
        async_wait_recording_done,
    )

    from custom_components.meterlake.const import DOMAIN

    freezer.move_to(DEMO_NOW)
    hass.config.config_dir = str(tmp_path / "config")
    await hass.config.async_set_time_zone("Europe/London")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MeterLake demo",
        data={"source": "demo", "submeters": True},
        options={"backfill_days": backfill_days, "archive_root": str(tmp_path / "lake")},
        unique_id="demo",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry


async def settle(hass: Any) -> None:
    """Let background work, the recorder and what they trigger finish (twice over)."""
    from pytest_homeassistant_custom_component.components.recorder.common import (
        async_wait_recording_done,
    )

    for _ in range(2):
        await hass.async_block_till_done(wait_background_tasks=True)
        await async_wait_recording_done(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def subentry_id_of(entry: Any, title: str) -> str:
    """The id of the entry's one subentry titled `title`."""
    (found,) = [sid for sid, sub in entry.subentries.items() if sub.title == title]
    return str(found)


def shown(result: Any) -> dict[str, Any]:
    """What each field of a form shows: its default, else its suggested value."""
    import probatio as vol

    values: dict[str, Any] = {}
    for key in result["data_schema"].schema:
        if key.default is not vol.UNDEFINED:
            values[str(key)] = key.default()
        elif key.description and "suggested_value" in key.description:
            values[str(key)] = key.description["suggested_value"]
    return values


async def hourly_statistic(hass: Any, stat_id: str) -> list[dict[str, Any]]:
    """Every hourly row (start, sum) of a statistic, oldest first, from the real recorder."""
    from datetime import UTC, datetime

    from homeassistant.components.recorder.statistics import statistics_during_period
    from homeassistant.helpers.recorder import get_instance

    found = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2020, 1, 1, tzinfo=UTC),
        None,
        {stat_id},
        "hour",
        None,
        {"sum"},
    )
    return list(found.get(stat_id, []))


@pytest.fixture(scope="session")
def azurite() -> Generator[Any]:
    """Azurite's blob service for the session (tests/azurite.py); skipped without node/npm."""
    from .azurite import run_azurite

    yield from run_azurite()
