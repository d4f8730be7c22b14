"""A gas unit that cannot stay wrong: the annual quantity exposes it, the repair converts it.

The account of tests/test_octopus_requests.py: the gas meter point's annual quantity is
11000 kWh and its meter sends 0.05 a half-hour (876 a year) - m³, although the entry was set
up in kWh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.meterlake.analytics.gas_units import kwh_per_m3
from custom_components.meterlake.const import DOMAIN

from .conftest import start_fix_flow
from .test_octopus_requests import (
    GAS,
    api,  # noqa: F401 - the simulated API fixture
    archive_sql,
    load,
)

# Every test talks to the simulated Octopus API.
pytestmark = pytest.mark.usefixtures("api")

FACTOR = kwh_per_m3(calorific_value=39.5, correction=1.02264)


def issue_id(entry_id: str) -> str:
    return f"gas_unit_{entry_id}_{GAS}"


async def test_gas_stored_in_the_wrong_unit_raises_a_fixable_issue(
    hass: HomeAssistant, freezer: Any, tmp_path: Path
) -> None:
    entry = await load(hass, freezer, tmp_path, backfill_days=90, gas_unit="kWh")
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id))
    assert issue is not None and issue.is_fixable
    assert issue.translation_placeholders == {
        "meter": "Octopus gas …0001",
        "stored": "kWh",
        "suggested": "m³",
        "total": "876",
        "quantity": "11000",
    }


async def test_gas_in_the_right_unit_raises_nothing(
    hass: HomeAssistant, freezer: Any, tmp_path: Path
) -> None:
    entry = await load(hass, freezer, tmp_path, backfill_days=90, gas_unit="m³")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id)) is None


async def test_a_short_history_raises_nothing_yet(
    hass: HomeAssistant, freezer: Any, tmp_path: Path
) -> None:
    entry = await load(hass, freezer, tmp_path, backfill_days=20, gas_unit="kWh")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id)) is None


async def test_the_fix_converts_the_history_and_rebuilds_the_statistics(
    hass: HomeAssistant, freezer: Any, tmp_path: Path, hass_client: Any
) -> None:
    from homeassistant.components.recorder.statistics import async_list_statistic_ids

    from .conftest import hourly_statistic, settle

    entry = await load(hass, freezer, tmp_path, backfill_days=90, gas_unit="kWh")
    client, resp = await start_fix_flow(
        hass, hass_client, issue_id(entry.entry_id), fresh_token=True
    )
    assert resp.status == 200
    flow = await resp.json()
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["suggested"] == "m³"
    resp = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={})
    assert resp.status == 200
    assert (await resp.json())["type"] == "create_entry"
    await settle(hass)

    stored = next(m for m in entry.data["meters"] if m["key"] == GAS)
    assert stored["unit"] == "m³"
    rows = archive_sql(
        tmp_path,
        f"SELECT count(*), sum(value), sum(energy_kwh), min(unit), max(unit), sum(cost) "
        f"FROM {{consumption}} WHERE meter = '{GAS}'",
    )
    count, value, energy, low_unit, high_unit, cost = rows[0]
    assert count == 4296  # 12:00 on 22 August to midnight on 20 November: 89.5 days
    assert (low_unit, high_unit) == ("m³", "m³")
    assert value == pytest.approx(count * 0.05)
    assert energy == pytest.approx(value * FACTOR, rel=1e-12)
    assert cost == pytest.approx(energy * 0.06, rel=1e-9)  # 6 p/kWh
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id)) is None
    ids = {s["statistic_id"]: s for s in await async_list_statistic_ids(hass)}
    consumption = ids[f"meterlake:{GAS}_consumption"]
    assert consumption["statistics_unit_of_measurement"] == "m³"
    statistic = await hourly_statistic(hass, f"meterlake:{GAS}_consumption")
    assert statistic[-1]["sum"] == pytest.approx(value, rel=1e-9)
    energy_rows = await hourly_statistic(hass, f"meterlake:{GAS}_energy")
    assert energy_rows[-1]["sum"] == pytest.approx(energy, rel=1e-9)
