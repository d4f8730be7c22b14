"""Binary sensors: tomorrow's prices or rates are out; unusual consumption (every meter).

Automations that plan tomorrow (charging, heating) wait for the first to turn on: spot prices
(Tibber), or the half-hour rates of a tariff that changes every slot (Octopus Agile, told from
the data: analytics.rate_slots.changes_every_slot). The second is on while a meter's newest
anomaly is active (anomalies.AnomalyMonitor).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .anomalies import AnomalyMonitor, FollowsAnomalies
from .coordinator import MeterLakeConfigEntry, MeterLakeCoordinator, MeterSnapshot
from .entity import MeterLakeEntity
from .rate_lists import FollowsRateList, has_rate_table, rate_frames
from .sources.base import MeterInfo

# Read-only from the coordinator's snapshot: no request per entity.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class MeterLakeBinarySensorDescription(BinarySensorEntityDescription):
    """How one binary sensor reads its state from a meter's snapshot."""

    value_fn: Callable[[MeterSnapshot], bool | None]
    # Available while cached spot prices cover now, whatever the last poll did.
    from_prices: bool = False


TOMORROW_PRICES = MeterLakeBinarySensorDescription(
    key="tomorrow_prices",
    translation_key="tomorrow_prices",
    value_fn=lambda s: None if s.prices is None else s.prices.tomorrow_available,
    from_prices=True,
)


def _has_prices(coordinator: MeterLakeCoordinator, meter: MeterInfo) -> bool:
    return coordinator.source.capabilities.spot_prices and not meter.is_export


TOMORROW_RATES = MeterLakeBinarySensorDescription(
    key="tomorrow_rates",
    translation_key="tomorrow_rates",
    value_fn=lambda s: None,
)


async def _changes_every_slot(
    hass: HomeAssistant, coordinator: MeterLakeCoordinator, meter: MeterInfo
) -> bool:
    """A supplier tariff with a rate per half-hour (Agile), from the rates of the first poll.

    Decided when the entry loads: a change of tariff takes effect at the next reload (the
    agreements change, and Home Assistant reloads the entry on the next start anyway).
    """
    if coordinator.source.capabilities.spot_prices or not has_rate_table(coordinator, meter):
        return False
    frames = rate_frames(coordinator, meter)
    if frames is None:
        return False
    from .analytics.rate_slots import changes_every_slot

    return await hass.async_add_executor_job(
        changes_every_slot, frames[0], frames[1], meter.key, dt_util.utcnow()
    )


UNUSUAL_CONSUMPTION = MeterLakeBinarySensorDescription(
    key="unusual_consumption",
    translation_key="unusual_consumption",
    device_class=BinarySensorDeviceClass.PROBLEM,
    value_fn=lambda s: None,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeterLakeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Tomorrow's prices (spot-price import meters) or rates (Agile meters); anomalies."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        MeterLakeBinarySensor(coordinator, meter, TOMORROW_PRICES)
        for meter in coordinator.source.meters
        if _has_prices(coordinator, meter)
    )
    async_add_entities(
        [
            TomorrowRatesSensor(coordinator, meter, TOMORROW_RATES)
            for meter in coordinator.source.meters
            if await _changes_every_slot(hass, coordinator, meter)
        ]
    )
    monitor = entry.runtime_data.anomalies
    if monitor is None:
        return
    for meter in coordinator.source.meters:
        if meter.key in monitor.meters:
            # A composed meter belongs to its subentry (deleting it removes its device).
            async_add_entities(
                [UnusualConsumptionSensor(coordinator, meter, UNUSUAL_CONSUMPTION, monitor)],
                config_subentry_id=meter.extra.get("subentry_id"),
            )


class MeterLakeBinarySensor(MeterLakeEntity, BinarySensorEntity):
    """A binary sensor whose state comes from the meter's snapshot."""

    entity_description: MeterLakeBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        """The snapshot's value."""
        snapshot = self.snapshot
        return None if snapshot is None else self.entity_description.value_fn(snapshot)


class TomorrowRatesSensor(FollowsRateList, MeterLakeBinarySensor):
    """On when tomorrow's rates are out (analytics.rate_slots.day_rates).

    Every half-hour of tomorrow (the meter's local day) up to 23:00 has a rate: the GB
    day-ahead day that Agile publishes around 16:00 UK time.
    """

    @property
    def is_on(self) -> bool | None:
        """Whether tomorrow's list is complete; unknown before the first rate table."""
        return None if self.day_rates is None else self.day_rates.tomorrow_complete


class UnusualConsumptionSensor(FollowsAnomalies, MeterLakeBinarySensor):
    """On while the meter's newest anomaly is active; its attributes explain that anomaly."""

    def __init__(
        self,
        coordinator: MeterLakeCoordinator,
        meter: MeterInfo,
        description: MeterLakeBinarySensorDescription,
        monitor: AnomalyMonitor,
    ) -> None:
        super().__init__(coordinator, meter, description)
        self._monitor = monitor
        self._entry_id = coordinator.config_entry.entry_id

    @callback
    def _anomaly(self, data: dict[str, Any] | None) -> None:
        self.async_write_ha_state()

    @property
    def is_on(self) -> bool:
        """An active anomaly."""
        return self._monitor.active(self.meter.key) is not None

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The newest anomaly: kind, period, observed, expected, ratio, unit, reason."""
        newest = self._monitor.newest(self.meter.key)
        return None if newest is None else newest.as_dict()
