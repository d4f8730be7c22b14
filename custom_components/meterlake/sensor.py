"""Sensors per meter: consumption, cost, rates, standing charge and data freshness."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfEnergy, UnitOfVolume
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import MeterLakeConfigEntry, MeterLakeCoordinator, MeterSnapshot
from .entity import MeterLakeEntity
from .sources.base import MeterInfo

# Read-only from the coordinator's snapshot: no request per entity.
PARALLEL_UPDATES = 0

CONSUMPTION_DEVICE_CLASSES: dict[str, SensorDeviceClass] = {
    UnitOfEnergy.WATT_HOUR: SensorDeviceClass.ENERGY,
    UnitOfEnergy.KILO_WATT_HOUR: SensorDeviceClass.ENERGY,
    UnitOfEnergy.MEGA_WATT_HOUR: SensorDeviceClass.ENERGY,
}


def consumption_device_class(meter: MeterInfo) -> SensorDeviceClass | None:
    """Energy for kWh meters; gas or water for volume meters."""
    if meter.unit in CONSUMPTION_DEVICE_CLASSES:
        return CONSUMPTION_DEVICE_CLASSES[meter.unit]
    if meter.unit in {UnitOfVolume.CUBIC_METERS, UnitOfVolume.CUBIC_FEET, UnitOfVolume.LITERS}:
        return SensorDeviceClass.WATER if meter.kind == "water" else SensorDeviceClass.GAS
    return None


def _rate_unit(meter: MeterInfo) -> str | None:
    if meter.currency is None:
        return None
    return f"{meter.currency}/{meter.rate_unit or meter.unit}"


@dataclass(frozen=True, kw_only=True)
class MeterLakeSensorDescription(SensorEntityDescription):
    """How one sensor reads its value and unit from a meter and its snapshot."""

    value_fn: Callable[[MeterSnapshot], StateType | datetime]
    unit_fn: Callable[[MeterInfo], str | None] = lambda meter: None
    device_class_fn: Callable[[MeterInfo], SensorDeviceClass | None] | None = None
    attributes_fn: Callable[[MeterSnapshot], Mapping[str, Any] | None] | None = None
    exists_fn: Callable[[MeterInfo], bool] = lambda meter: True


def _has_currency(meter: MeterInfo) -> bool:
    return meter.currency is not None


def _consumption(
    key: str, value_fn: Callable[[MeterSnapshot], float | None]
) -> MeterLakeSensorDescription:
    return MeterLakeSensorDescription(
        key=key,
        translation_key=key,
        value_fn=value_fn,
        unit_fn=lambda meter: meter.unit,
        device_class_fn=consumption_device_class,
        suggested_display_precision=3,
    )


def _cost(
    key: str, value_fn: Callable[[MeterSnapshot], float | None]
) -> MeterLakeSensorDescription:
    return MeterLakeSensorDescription(
        key=key,
        translation_key=key,
        value_fn=value_fn,
        unit_fn=lambda meter: meter.currency,
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        exists_fn=_has_currency,
    )


SENSORS: tuple[MeterLakeSensorDescription, ...] = (
    _consumption("consumption_last_interval", lambda s: s.last_interval_value),
    _consumption("consumption_today", lambda s: s.today),
    _consumption("consumption_yesterday", lambda s: s.yesterday),
    _consumption("consumption_month", lambda s: s.month),
    _cost("cost_today", lambda s: s.cost_today),
    _cost("cost_yesterday", lambda s: s.cost_yesterday),
    MeterLakeSensorDescription(
        key="current_rate",
        translation_key="current_rate",
        value_fn=lambda s: s.current_rate,
        unit_fn=_rate_unit,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=4,
        exists_fn=_has_currency,
    ),
    MeterLakeSensorDescription(
        key="next_rate",
        translation_key="next_rate",
        value_fn=lambda s: s.next_rate,
        unit_fn=_rate_unit,
        suggested_display_precision=4,
        attributes_fn=lambda s: {
            "start": None if s.next_rate_start is None else s.next_rate_start.isoformat()
        },
        exists_fn=_has_currency,
    ),
    MeterLakeSensorDescription(
        key="standing_charge",
        translation_key="standing_charge",
        value_fn=lambda s: s.standing_charge,
        unit_fn=lambda meter: None if meter.currency is None else f"{meter.currency}/d",
        suggested_display_precision=4,
        exists_fn=_has_currency,
    ),
    MeterLakeSensorDescription(
        key="newest_data",
        translation_key="newest_data",
        value_fn=lambda s: s.newest_data,
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    MeterLakeSensorDescription(
        key="missing_intervals",
        translation_key="missing_intervals",
        value_fn=lambda s: s.missing_7d,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    MeterLakeSensorDescription(
        key="unrated_intervals",
        translation_key="unrated_intervals",
        value_fn=lambda s: s.unrated,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        exists_fn=_has_currency,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeterLakeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One set of sensors per meter of the entry."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        MeterLakeSensor(coordinator, meter, description)
        for meter in coordinator.source.meters
        for description in SENSORS
        if description.exists_fn(meter)
    )


class MeterLakeSensor(MeterLakeEntity, SensorEntity):
    """A sensor whose value comes from the meter's snapshot."""

    entity_description: MeterLakeSensorDescription

    def __init__(
        self,
        coordinator: MeterLakeCoordinator,
        meter: MeterInfo,
        description: MeterLakeSensorDescription,
    ) -> None:
        super().__init__(coordinator, meter, description)
        self._attr_native_unit_of_measurement = description.unit_fn(meter)
        if description.device_class_fn is not None:
            self._attr_device_class = description.device_class_fn(meter)

    @property
    def native_value(self) -> StateType | datetime:
        """The snapshot's value."""
        snapshot = self.snapshot
        return None if snapshot is None else self.entity_description.value_fn(snapshot)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """Extra context, e.g. when the next rate starts."""
        snapshot = self.snapshot
        if snapshot is None or self.entity_description.attributes_fn is None:
            return None
        return self.entity_description.attributes_fn(snapshot)
