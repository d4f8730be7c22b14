"""The automation blueprint that notifies on a MeterLake anomaly (`meterlake_anomaly` events)."""

from __future__ import annotations

from pathlib import Path
import shutil
from typing import Any

from homeassistant.components.automation import DOMAIN as AUTOMATION_DOMAIN
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint import models
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util import yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

BLUEPRINT = (
    Path(__file__).parent.parent
    / "blueprints"
    / "automation"
    / "meterlake"
    / "notify_on_anomaly.yaml"
)
EVENT = "meterlake_anomaly"
ALL_KINDS = ["high_day", "spike", "base_load", "no_data", "implausible"]


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """A config directory of the test's own: the blueprint is copied into it."""
    return hass_tmp_config_dir


def anomaly(kind: str = "spike", meter: str = "entity_water_main", **extra: Any) -> dict[str, Any]:
    """Event data as the integration fires it for one anomaly."""
    return {
        "meter": meter,
        "meter_name": "Water main",
        "kind": kind,
        "start": "2026-11-19T03:00:00+00:00",
        "end": "2026-11-19T03:30:00+00:00",
        "observed": 42.0,
        "expected": 5.0,
        "ratio": 8.4,
        "unit": "L",
        "reason": "42 L in half an hour at 03:00, about 8 times the usual 5 L",
        "entry_id": "01ANOMALYENTRY",
        **extra,
    }


async def setup_blueprint_automation(
    hass: HomeAssistant,
    *,
    kinds: list[str] | None = None,
    meters: list[str] | None = None,
) -> list[ServiceCall]:
    """Install the blueprint, create one automation from it; return the notify calls log."""
    folder = Path(hass.config.path("blueprints", "automation", "meterlake"))
    await hass.async_add_executor_job(lambda: folder.mkdir(parents=True, exist_ok=True))
    await hass.async_add_executor_job(shutil.copy, BLUEPRINT, folder / BLUEPRINT.name)
    calls = async_mock_service(hass, "notify", "test_phone")
    inputs: dict[str, Any] = {"notify_action": "notify.test_phone"}
    if kinds is not None:
        inputs["kinds"] = kinds
    if meters is not None:
        inputs["meters"] = meters
    assert await async_setup_component(
        hass,
        AUTOMATION_DOMAIN,
        {
            AUTOMATION_DOMAIN: {
                "id": "meterlake_anomaly_notification",
                "alias": "MeterLake anomaly notification",
                "use_blueprint": {"path": "meterlake/notify_on_anomaly.yaml", "input": inputs},
            }
        },
    )
    await hass.async_block_till_done()
    # A blueprint that failed validation would leave the automation unavailable, and the
    # tests that expect no notification would pass for the wrong reason.
    state = hass.states.get("automation.meterlake_anomaly_notification")
    assert state is not None
    assert state.state == "on"
    return calls


async def fire(hass: HomeAssistant, data: dict[str, Any]) -> None:
    hass.bus.async_fire(EVENT, data)
    await hass.async_block_till_done()


# -- the file ---------------------------------------------------------------------------------


def test_blueprint_passes_home_assistants_automation_blueprint_validation() -> None:
    blueprint = models.Blueprint(
        yaml_util.load_yaml_dict(BLUEPRINT),
        path=str(BLUEPRINT),
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )

    assert blueprint.name == "Notify on a MeterLake anomaly"
    assert blueprint.domain == "automation"
    assert set(blueprint.inputs) == {"notify_action", "meters", "kinds"}
    metadata = blueprint.metadata
    assert metadata["author"] == "MeterLake"
    assert metadata["source_url"] == (
        "https://github.com/meterlake/meterlake/blob/main/"
        "blueprints/automation/meterlake/notify_on_anomaly.yaml"
    )


def test_blueprint_defaults_watch_every_kind_on_every_meter() -> None:
    blueprint = models.Blueprint(
        yaml_util.load_yaml_dict(BLUEPRINT),
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )

    inputs = blueprint.inputs
    assert inputs["notify_action"]["default"] == "notify.notify"
    assert inputs["meters"]["default"] == []
    assert inputs["kinds"]["default"] == ALL_KINDS
    options = inputs["kinds"]["selector"]["select"]["options"]
    assert [option["value"] for option in options] == ALL_KINDS
    assert all(option["label"] for option in options)


def test_blueprint_triggers_on_the_anomaly_event_in_queued_mode() -> None:
    data = yaml_util.load_yaml_dict(BLUEPRINT)

    assert data["mode"] == "queued"
    assert data["triggers"] == [{"trigger": "event", "event_type": EVENT}]


# -- end to end -------------------------------------------------------------------------------


async def test_anomaly_of_a_chosen_kind_sends_one_notification(hass: HomeAssistant) -> None:
    calls = await setup_blueprint_automation(hass, kinds=["spike", "high_day"], meters=[])

    await fire(hass, anomaly("spike"))

    assert len(calls) == 1
    assert calls[0].data["message"] == anomaly()["reason"]
    assert calls[0].data["title"] == "Water main: unusual consumption"


async def test_anomaly_of_a_kind_not_chosen_sends_nothing(hass: HomeAssistant) -> None:
    calls = await setup_blueprint_automation(hass, kinds=["spike", "high_day"], meters=[])

    await fire(hass, anomaly("no_data", reason="No data for 26 hours"))

    assert calls == []


async def test_anomaly_of_a_meter_not_chosen_sends_nothing(hass: HomeAssistant) -> None:
    calls = await setup_blueprint_automation(
        hass, kinds=["spike", "high_day"], meters=["entity_water"]
    )

    await fire(hass, anomaly("spike", meter="entity_gas_hall", meter_name="Gas"))

    assert calls == []


async def test_anomaly_of_a_chosen_meter_sends_a_notification(hass: HomeAssistant) -> None:
    calls = await setup_blueprint_automation(hass, kinds=["spike"], meters=["entity_water"])

    await fire(hass, anomaly("spike", meter="entity_water"))

    assert len(calls) == 1


async def test_default_inputs_notify_every_kind_of_anomaly(hass: HomeAssistant) -> None:
    calls = await setup_blueprint_automation(hass)

    for kind in ALL_KINDS:
        await fire(hass, anomaly(kind, reason=f"{kind} found"))

    assert [call.data["message"] for call in calls] == [f"{kind} found" for kind in ALL_KINDS]


async def test_other_events_send_nothing(hass: HomeAssistant) -> None:
    calls = await setup_blueprint_automation(hass)

    hass.bus.async_fire("meterlake_reading", anomaly())
    await hass.async_block_till_done()

    assert calls == []
