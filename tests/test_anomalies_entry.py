"""Anomalies on the demo household, end to end: binary sensor, event entity, bus event, action.

The demo's electricity has an unexplained night-time spike every 11th day, 03:00-04:00 local
(2026-11-02, 11-13, 11-24, ...). Setting the demo up with 60 days of history finds the old
ones as history (recorded, shown, not announced); moving on and polling raises the new one
exactly once - not again after a restart, a statistics rebuild or a second poll. A spike is
judged once the same time of the next day is known (a level that stays is no spike), so the
spike of the 24th is raised on the 25th, after 04:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources import demo

from .conftest import DEMO_NOW, settle

UNUSUAL = "binary_sensor.demo_electricity_unusual_consumption"
EVENT = "event.demo_electricity_consumption_anomaly"
SPIKE_11_13 = datetime(2026, 11, 13, 3, 0, tzinfo=UTC)
SPIKE_11_24 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
RAISED = datetime(2026, 11, 25, 6, 10, tzinfo=UTC)


@pytest.fixture
def household(tmp_path: Path) -> MockConfigEntry:
    """The demo entry with 60 days of history: enough for the spike baseline (six weeks)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="MeterLake demo",
        data={"source": "demo"},
        options=default_options() | {"backfill_days": 60, "archive_root": str(tmp_path / "lake")},
        unique_id="demo",
    )


async def set_up(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry
) -> list[Event]:
    """Set the demo up at DEMO_NOW in London; the bus events it raises from then on."""
    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    events = async_capture_events(hass, "meterlake_anomaly")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await detect(hass, freezer)
    return events


async def detect(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Let the detection that changed rows started run (it waits a moment for more)."""
    await settle(hass)
    freezer.tick(timedelta(seconds=3))
    async_fire_time_changed(hass)
    await settle(hass)


async def poll_at(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry, when: datetime
) -> None:
    """Move the clock and poll, as the coordinator's schedule would."""
    freezer.move_to(when)
    await entry.runtime_data.coordinator.async_refresh()
    await detect(hass, freezer)


async def test_history_is_shown_but_not_announced(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, household: MockConfigEntry
) -> None:
    events = await set_up(hass, freezer, household)
    state = hass.states.get(UNUSUAL)
    assert state is not None
    assert state.state == STATE_OFF  # whole days after it were judged normal
    assert state.attributes["kind"] == "spike"
    assert state.attributes["start"] == SPIKE_11_13.isoformat()
    assert state.attributes["end"] == (SPIKE_11_13 + timedelta(hours=1)).isoformat()
    assert state.attributes["observed"] > state.attributes["expected"]
    assert events == []
    assert hass.states.get(EVENT).state == "unknown"


async def test_a_new_spike_is_raised_once_on_the_event_entity_and_the_bus(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, household: MockConfigEntry
) -> None:
    events = await set_up(hass, freezer, household)
    await poll_at(hass, freezer, household, RAISED)
    assert [e.data["kind"] for e in events] == ["spike"]
    data = events[0].data
    assert data["meter"] == "demo_electricity"
    assert data["start"] == SPIKE_11_24.isoformat()
    assert data["end"] == (SPIKE_11_24 + timedelta(hours=1)).isoformat()
    assert data["reason"]
    event = hass.states.get(EVENT)
    assert event.attributes["event_type"] == "spike"
    assert event.attributes["reason"] == data["reason"]
    assert hass.states.get(UNUSUAL).state == STATE_ON
    # the next poll finds the same spike again: nothing new
    await poll_at(hass, freezer, household, RAISED + timedelta(hours=1))
    assert len(events) == 1


async def test_a_raised_anomaly_is_not_raised_again_after_a_restart_or_a_rebuild(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, household: MockConfigEntry
) -> None:
    events = await set_up(hass, freezer, household)
    await poll_at(hass, freezer, household, RAISED)
    assert len(events) == 1
    assert await hass.config_entries.async_reload(household.entry_id)
    await detect(hass, freezer)
    await hass.services.async_call(
        DOMAIN,
        "rebuild_statistics",
        {"config_entry": household.entry_id},
        blocking=True,
        return_response=True,
    )
    await detect(hass, freezer)
    assert len(events) == 1
    assert hass.states.get(UNUSUAL).state == STATE_ON


async def test_the_sensor_turns_off_after_a_normal_day_or_when_acknowledged(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, household: MockConfigEntry
) -> None:
    await set_up(hass, freezer, household)
    await poll_at(hass, freezer, household, RAISED)
    assert hass.states.get(UNUSUAL).state == STATE_ON
    response = await hass.services.async_call(
        DOMAIN,
        "acknowledge_anomaly",
        {"meter": "demo_electricity"},
        blocking=True,
        return_response=True,
    )
    # the new spike and the three of the history (Oct 22, Nov 2, Nov 13)
    assert response == {"meter": "demo_electricity", "acknowledged": 4}
    assert hass.states.get(UNUSUAL).state == STATE_OFF
    assert hass.states.get(UNUSUAL).attributes["acknowledged"] is True


async def test_a_normal_day_after_the_anomaly_turns_the_sensor_off(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, household: MockConfigEntry
) -> None:
    await set_up(hass, freezer, household)
    await poll_at(hass, freezer, household, RAISED)
    # the 25th is judged once the 26th is known
    await poll_at(hass, freezer, household, datetime(2026, 11, 26, 12, 10, tzinfo=UTC))
    assert hass.states.get(UNUSUAL).state == STATE_ON
    await poll_at(hass, freezer, household, datetime(2026, 11, 27, 1, 10, tzinfo=UTC))
    assert hass.states.get(UNUSUAL).state == STATE_OFF


async def test_anomalies_are_archived(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    household: MockConfigEntry,
    tmp_path: Path,
) -> None:
    await set_up(hass, freezer, household)
    rows = duckdb.sql(
        f"select meter, kind, start from read_parquet('{tmp_path}/lake/anomalies/**/*.parquet',"
        " hive_partitioning=true) order by start"
    ).fetchall()
    # every spike night with four weeks of baseline before it: Oct 22, Nov 2, Nov 13
    assert [(meter, kind) for meter, kind, _ in rows] == [("demo_electricity", "spike")] * 3
    assert [start.astimezone(UTC) for _, _, start in rows][-1] == SPIKE_11_13


async def test_a_meter_that_stops_sending_raises_no_data(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    household: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = await set_up(hass, freezer, household)
    # the demo "supplier" publishes nothing after DEMO_NOW
    published = demo.available_until(datetime.fromisoformat(DEMO_NOW))
    monkeypatch.setattr(demo, "available_until", lambda _now: published)
    for hours in range(1, 7):
        freezer.move_to(datetime.fromisoformat(DEMO_NOW) + timedelta(hours=hours))
        async_fire_time_changed(hass)
        await detect(hass, freezer)
    kinds = {(e.data["meter"], e.data["kind"]) for e in events}
    assert ("demo_electricity", "no_data") in kinds


async def test_acknowledging_an_unknown_meter_is_refused(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, household: MockConfigEntry
) -> None:
    await set_up(hass, freezer, household)
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, "acknowledge_anomaly", {"meter": "demo_water"}, blocking=True
        )
    assert raised.value.translation_key == "meter_not_found"


async def test_switching_a_detector_off_in_the_options(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, household: MockConfigEntry
) -> None:
    household = MockConfigEntry(
        domain=DOMAIN,
        title=household.title,
        data=dict(household.data),
        options=dict(household.options)
        | {"anomalies": {"detectors": ["high_day", "base_load", "no_data", "implausible"]}},
        unique_id="demo",
    )
    events = await set_up(hass, freezer, household)
    await poll_at(hass, freezer, household, RAISED)
    assert events == []
    assert hass.states.get(UNUSUAL).state == STATE_OFF
