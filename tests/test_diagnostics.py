"""Diagnostics are complete enough to debug with and contain no secret or identifier."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from syrupy.assertion import SnapshotAssertion


async def test_diagnostics(
    hass: HomeAssistant, loaded_demo: Any, hass_client: Any, snapshot: SnapshotAssertion
) -> None:
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded_demo)
    assert result == snapshot
    text = str(result)
    assert "DEMO-E-2019" not in text
    assert result["snapshots"]["meter_0"]["consumption"]["today"] > 0
