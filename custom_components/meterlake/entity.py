"""Base entity: one device per meter, names from translation keys."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import MeterLakeCoordinator, MeterSnapshot
from .sources.base import MeterInfo

SUPPLIER_NAMES = {
    "demo": "MeterLake demo",
    "octopus": "Octopus Energy",
    "tibber": "Tibber",
    "eco2mix": "RTE eCO2mix",
}


class MeterLakeEntity(CoordinatorEntity[MeterLakeCoordinator]):
    """An entity of one meter. Unique id: `<meter key>_<description key>`, stable across setups."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: MeterLakeCoordinator,
        meter: MeterInfo,
        description: EntityDescription,
    ) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        self.meter = meter
        self._attr_unique_id = f"{meter.key}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, meter.key)},
            name=meter.name,
            manufacturer=SUPPLIER_NAMES.get(meter.supplier, meter.supplier),
            model=f"{meter.kind.capitalize()} meter" + (" (export)" if meter.is_export else ""),
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def snapshot(self) -> MeterSnapshot | None:
        """Values of this meter from the last successful poll."""
        data = self.coordinator.data
        return None if data is None else data.get(self.meter.key)

    @property
    def available(self) -> bool:
        """Unavailable when the poll (or this meter's part of it) failed, or it is not polled.

        Entities living on cached spot prices stay available while the cache covers now: a
        history outage does not make the price of the current quarter hour unknown.
        """
        snapshot = self.snapshot
        if (
            getattr(self.entity_description, "from_prices", False)
            and snapshot is not None
            and snapshot.prices is not None
        ):
            return snapshot.prices.current is not None
        return (
            super().available
            and snapshot is not None
            and self.meter.key not in self.coordinator.failed
        )
