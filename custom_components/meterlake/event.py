"""Event entities: "Consumption anomaly" per meter, one event type per kind of anomaly.

Fired once per anomaly when the monitor raises it (anomalies.AnomalyMonitor), with the same data
as the bus event `meterlake_anomaly`, so automations can trigger on either.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .analytics.schema import ANOMALY_KINDS
from .anomalies import FollowsAnomalies
from .coordinator import MeterLakeConfigEntry, MeterLakeCoordinator
from .entity import MeterLakeEntity
from .sources.base import MeterInfo

# Events come from the monitor, not from requests.
PARALLEL_UPDATES = 0

CONSUMPTION_ANOMALY = EventEntityDescription(
    key="consumption_anomaly",
    translation_key="consumption_anomaly",
    event_types=list(ANOMALY_KINDS),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeterLakeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One anomaly event entity per meter the monitor follows."""
    coordinator = entry.runtime_data.coordinator
    monitor = entry.runtime_data.anomalies
    if monitor is None:
        return
    for meter in coordinator.source.meters:
        if meter.key in monitor.meters:
            async_add_entities(
                [ConsumptionAnomalyEvent(coordinator, meter, CONSUMPTION_ANOMALY)],
                config_subentry_id=meter.extra.get("subentry_id"),
            )


class ConsumptionAnomalyEvent(FollowsAnomalies, MeterLakeEntity, EventEntity):
    """Fires `<kind>` with the anomaly's period, figures and reason."""

    def __init__(
        self,
        coordinator: MeterLakeCoordinator,
        meter: MeterInfo,
        description: EventEntityDescription,
    ) -> None:
        super().__init__(coordinator, meter, description)
        self._entry_id = coordinator.config_entry.entry_id

    @callback
    def _anomaly(self, data: dict[str, Any] | None) -> None:
        if data is None:
            return
        attributes = {key: value for key, value in data.items() if key != "kind"}
        self._trigger_event(str(data["kind"]), attributes)
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """An event entity is there whether or not the last poll worked."""
        return True
