"""Foreign statistics under MeterLake's ids: refused with a repair that rebuilds them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from homeassistant.components.recorder.models import StatisticMeanType
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_metadata,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.recorder import get_instance
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.meterlake.const import DOMAIN

from .conftest import DEMO_NOW, hourly_statistic, start_fix_flow

COST = "meterlake:demo_electricity_cost"
ISSUE = "foreign_statistic_demo_electricity_cost"


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)


async def _rows(hass: HomeAssistant, stat_id: str) -> list[dict[str, Any]]:
    return await hourly_statistic(hass, stat_id)


def _archived_cost(root: Path) -> float:
    rows = duckdb.sql(
        f"SELECT sum(cost) FROM read_parquet('{root}/consumption/**/*.parquet', "
        "hive_partitioning=1) WHERE meter = 'demo_electricity'"
    ).fetchall()
    return float(rows[0][0])


@pytest.fixture
async def foreign_cost(hass: HomeAssistant, freezer: Any) -> None:
    """A `meterlake:` cost statistic in euros, written before MeterLake was installed."""
    freezer.move_to(DEMO_NOW)
    async_add_external_statistics(
        hass,
        {
            "mean_type": StatisticMeanType.NONE,
            "has_sum": True,
            "name": "an older tool's cost",
            "source": DOMAIN,
            "statistic_id": COST,
            "unit_class": None,
            "unit_of_measurement": "EUR",
        },
        [{"start": datetime(2026, 1, 1, tzinfo=UTC), "state": 24000.0, "sum": 24000.0}],
    )
    await async_wait_recording_done(hass)


@pytest.mark.usefixtures("foreign_cost")
async def test_foreign_metadata_is_left_alone_and_reported(
    hass: HomeAssistant, loaded_demo: MockConfigEntry
) -> None:
    await _settle(hass)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders["reason"] == "unit 'EUR', expected 'GBP'"
    # Neither the unit nor the sum was touched...
    metadata = await get_instance(hass).async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids={COST})
    )
    assert metadata[COST][1]["unit_of_measurement"] == "EUR"
    assert [row["sum"] for row in await _rows(hass, COST)] == [24000.0]
    # ... and the meter's other statistics were imported as usual.
    assert await _rows(hass, "meterlake:demo_electricity_consumption")


@pytest.mark.usefixtures("foreign_cost")
async def test_the_repair_rebuilds_the_statistic_from_the_archive(
    hass: HomeAssistant, loaded_demo: MockConfigEntry, hass_client: Any, tmp_path: Path
) -> None:
    await _settle(hass)
    client, resp = await start_fix_flow(hass, hass_client, ISSUE)
    flow = await resp.json()
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["statistic_id"] == COST
    resp = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={})
    assert (await resp.json())["type"] == "create_entry"
    await _settle(hass)

    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE) is None
    metadata = await get_instance(hass).async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids={COST})
    )
    assert metadata[COST][1]["unit_of_measurement"] == "GBP"
    rows = await _rows(hass, COST)
    expected = await hass.async_add_executor_job(_archived_cost, tmp_path / "lake")
    assert rows[-1]["sum"] == pytest.approx(expected, abs=1e-9)
    assert rows[0]["start"] > datetime(2026, 1, 1, tzinfo=UTC).timestamp()
