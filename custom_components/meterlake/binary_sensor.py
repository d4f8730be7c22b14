"""Binary sensors: whether tomorrow's spot prices are out (sources with spot prices, e.g. Tibber).

Automations that plan tomorrow (charging, heating) wait for this to turn on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import MeterLakeConfigEntry, MeterLakeCoordinator, MeterSnapshot
from .entity import MeterLakeEntity
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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeterLakeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Tomorrow's prices for each import meter of a spot-price source."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        MeterLakeBinarySensor(coordinator, meter, TOMORROW_PRICES)
        for meter in coordinator.source.meters
        if _has_prices(coordinator, meter)
    )


class MeterLakeBinarySensor(MeterLakeEntity, BinarySensorEntity):
    """A binary sensor whose state comes from the meter's snapshot."""

    entity_description: MeterLakeBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        """The snapshot's value."""
        snapshot = self.snapshot
        return None if snapshot is None else self.entity_description.value_fn(snapshot)
