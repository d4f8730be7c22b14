"""Sensors per meter: consumption, cost, rates, standing charge and data freshness.

Sources with spot prices (Tibber) add price level and today's lowest/highest/average price; grid
meters (eCO2mix) get the grid's consumption, production by source, exchanges, shares and carbon
intensity instead, plus today's emissions of a linked meter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfEnergy,
    UnitOfMass,
    UnitOfPower,
    UnitOfVolume,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .const import PERIMETER_NATIONAL
from .coordinator import (
    GridMix,
    GridPart,
    MeterLakeConfigEntry,
    MeterLakeCoordinator,
    MeterSnapshot,
    TariffPart,
)
from .entity import MeterLakeEntity
from .rate_lists import FollowsRateList, has_rate_table
from .sources.base import MeterInfo

if TYPE_CHECKING:
    from .analytics.prices import PriceSummary

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
    # False: unavailable for this meter whatever the data (a region has no carbon intensity).
    available_fn: Callable[[MeterInfo], bool] = lambda meter: True
    # Available while cached spot prices cover now, whatever the last poll did.
    from_prices: bool = False


def _has_currency(meter: MeterInfo) -> bool:
    return meter.currency is not None


def _has_standing_charge(meter: MeterInfo) -> bool:
    return meter.currency is not None and meter.has_standing_charge


def _rate_attributes(snapshot: MeterSnapshot) -> Mapping[str, Any] | None:
    """Spot-price sources: the current slot's level and the price list of today and tomorrow."""
    prices = snapshot.prices
    if prices is None:
        return None
    return {
        "level": prices.current_level,
        "start": None if prices.current_start is None else prices.current_start.isoformat(),
        "prices": list(prices.listed),
    }


def _next_rate_attributes(snapshot: MeterSnapshot) -> Mapping[str, Any]:
    start = None if snapshot.tariff is None else snapshot.tariff.next_rate_start
    attributes: dict[str, Any] = {"start": None if start is None else start.isoformat()}
    if snapshot.prices is not None:
        attributes["level"] = snapshot.prices.next_level
    return attributes


def _price(
    key: str, value_fn: Callable[[PriceSummary], float | None]
) -> MeterLakeSensorDescription:
    return MeterLakeSensorDescription(
        key=key,
        translation_key=key,
        value_fn=lambda s: None if s.prices is None else value_fn(s.prices),
        unit_fn=_rate_unit,
        suggested_display_precision=4,
        from_prices=True,
    )


def _tariff(
    value_fn: Callable[[TariffPart], StateType | datetime],
) -> Callable[[MeterSnapshot], StateType | datetime]:
    """A value of the snapshot's tariff part; None for meters without a tariff of their own."""
    return lambda s: None if s.tariff is None else value_fn(s.tariff)


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
    _consumption("consumption_last_interval", lambda s: s.consumption.last_interval_value),
    _consumption("consumption_today", lambda s: s.consumption.today),
    _consumption("consumption_yesterday", lambda s: s.consumption.yesterday),
    _consumption("consumption_month", lambda s: s.consumption.month),
    _cost("cost_last_interval", lambda s: s.consumption.cost_last_interval),
    _cost("cost_today", lambda s: s.consumption.cost_today),
    _cost("cost_yesterday", lambda s: s.consumption.cost_yesterday),
    MeterLakeSensorDescription(
        key="current_rate",
        translation_key="current_rate",
        value_fn=_tariff(lambda t: t.current_rate),
        unit_fn=_rate_unit,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=4,
        attributes_fn=_rate_attributes,
        exists_fn=_has_currency,
        from_prices=True,
    ),
    MeterLakeSensorDescription(
        key="next_rate",
        translation_key="next_rate",
        value_fn=_tariff(lambda t: t.next_rate),
        unit_fn=_rate_unit,
        suggested_display_precision=4,
        attributes_fn=_next_rate_attributes,
        exists_fn=_has_currency,
        from_prices=True,
    ),
    MeterLakeSensorDescription(
        key="standing_charge",
        translation_key="standing_charge",
        value_fn=_tariff(lambda t: t.standing_charge),
        unit_fn=lambda meter: None if meter.currency is None else f"{meter.currency}/d",
        suggested_display_precision=4,
        exists_fn=_has_standing_charge,
    ),
    MeterLakeSensorDescription(
        key="newest_data",
        translation_key="newest_data",
        value_fn=lambda s: s.consumption.newest_data,
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    MeterLakeSensorDescription(
        key="missing_intervals",
        translation_key="missing_intervals",
        value_fn=lambda s: s.consumption.missing_7d,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    MeterLakeSensorDescription(
        key="unrated_intervals",
        translation_key="unrated_intervals",
        value_fn=_tariff(lambda t: t.unrated),
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        exists_fn=_has_currency,
    ),
)


PRICE_LEVELS = ["very_cheap", "cheap", "normal", "expensive", "very_expensive"]

# Spot-price sources (Tibber), on import meters.
PRICE_SENSORS: tuple[MeterLakeSensorDescription, ...] = (
    MeterLakeSensorDescription(
        key="price_level",
        translation_key="price_level",
        value_fn=lambda s: None if s.prices is None else s.prices.current_level,
        device_class=SensorDeviceClass.ENUM,
        options=PRICE_LEVELS,
        from_prices=True,
    ),
    _price("price_min_today", lambda p: p.today_min),
    _price("price_max_today", lambda p: p.today_max),
    _price("price_average_today", lambda p: p.today_average),
)


def _grid_value(snapshot: MeterSnapshot, field: str) -> float | None:
    found = None if snapshot.grid is None else snapshot.grid.values.get(field)
    return None if found is None else found[1]


def _mix(snapshot: MeterSnapshot) -> GridMix | None:
    return None if snapshot.grid is None else snapshot.grid.mix


def _grid_attributes(field: str) -> Callable[[MeterSnapshot], Mapping[str, Any] | None]:
    """The slot the value belongs to (the newest rows often lack some fields)."""

    def attributes(snapshot: MeterSnapshot) -> Mapping[str, Any] | None:
        found = None if snapshot.grid is None else snapshot.grid.values.get(field)
        return {"slot_start": None if found is None else found[0].isoformat()}

    return attributes


def _is_national(meter: MeterInfo) -> bool:
    return meter.extra.get("perimeter") == PERIMETER_NATIONAL


def _grid_power(
    key: str,
    field: str,
    *,
    exists_fn: Callable[[MeterInfo], bool] = lambda meter: True,
    enabled: bool = True,
) -> MeterLakeSensorDescription:
    return MeterLakeSensorDescription(
        key=key,
        translation_key=key,
        value_fn=lambda s: _grid_value(s, field),
        unit_fn=lambda meter: UnitOfPower.MEGA_WATT,
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        attributes_fn=_grid_attributes(field),
        exists_fn=exists_fn,
        entity_registry_enabled_default=enabled,
    )


def _grid_share(
    key: str, share_fn: Callable[[GridMix], float | None]
) -> MeterLakeSensorDescription:
    return MeterLakeSensorDescription(
        key=key,
        translation_key=key,
        value_fn=lambda s: None if (mix := _mix(s)) is None else share_fn(mix),
        unit_fn=lambda meter: PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        attributes_fn=lambda s: {
            "slot_start": None if (mix := _mix(s)) is None else mix.start.isoformat()
        },
    )


def _regional(meter: MeterInfo) -> bool:
    return not _is_national(meter)


# Grid meters (eCO2mix). A region reports `thermique` instead of the fossil split.
GRID_SENSORS: tuple[MeterLakeSensorDescription, ...] = (
    _grid_power("grid_consumption", "consommation"),
    _grid_power("production_nuclear", "nucleaire"),
    _grid_power("production_wind", "eolien"),
    _grid_power("production_solar", "solaire"),
    _grid_power("production_hydro", "hydraulique"),
    _grid_power("production_bioenergy", "bioenergies"),
    _grid_power("production_gas", "gaz", exists_fn=_is_national),
    _grid_power("production_oil", "fioul", exists_fn=_is_national),
    _grid_power("production_coal", "charbon", exists_fn=_is_national),
    _grid_power("production_thermal", "thermique", exists_fn=_regional),
    _grid_power("pumping", "pompage", enabled=False),
    _grid_power("battery_charging", "stockage_batterie", enabled=False),
    _grid_power("battery_discharging", "destockage_batterie", enabled=False),
    _grid_power("net_exchange", "ech_physiques"),
    _grid_share("low_carbon_share", lambda mix: mix.low_carbon_share),
    _grid_share("renewable_share", lambda mix: mix.renewable_share),
    MeterLakeSensorDescription(
        key="carbon_intensity",
        translation_key="carbon_intensity",
        value_fn=lambda s: _grid_value(s, "taux_co2"),
        unit_fn=lambda meter: "gCO2eq/kWh",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        attributes_fn=_grid_attributes("taux_co2"),
        available_fn=_is_national,
    ),
)


def _emissions_attributes(snapshot: MeterSnapshot) -> Mapping[str, Any]:
    grid = snapshot.grid or GridPart()
    return {"meter": grid.emissions_meter, "intervals_without_intensity": grid.emissions_missing}


EMISSIONS_SENSOR = MeterLakeSensorDescription(
    key="emissions_today",
    translation_key="emissions_today",
    value_fn=lambda s: None if s.grid is None else s.grid.emissions_today,
    unit_fn=lambda meter: UnitOfMass.KILOGRAMS,
    device_class=SensorDeviceClass.WEIGHT,
    suggested_display_precision=3,
    attributes_fn=_emissions_attributes,
)


# Composed meters: no tariff of their own (cost uses the base meter's rate of each interval).
COMPOSED_WITHOUT = frozenset({"current_rate", "next_rate", "standing_charge", "unrated_intervals"})
METER_READING = MeterLakeSensorDescription(
    key="meter_reading",
    translation_key="meter_reading",
    value_fn=lambda s: None if s.composed is None else s.composed.reading,
    unit_fn=lambda meter: meter.unit,
    device_class_fn=consumption_device_class,
    state_class=SensorStateClass.TOTAL_INCREASING,
    suggested_display_precision=3,
)
CLIPPED_TODAY = MeterLakeSensorDescription(
    key="clipped_today",
    translation_key="clipped_today",
    value_fn=lambda s: None if s.composed is None else s.composed.clipped_today,
    unit_fn=lambda meter: meter.unit,
    suggested_display_precision=3,
    entity_category=EntityCategory.DIAGNOSTIC,
)


# The last resets shown as an attribute (diagnostics list them all).
RESETS_SHOWN = 10


def _counter_attributes(snapshot: MeterSnapshot) -> Mapping[str, Any] | None:
    part = snapshot.readings
    if part is None:
        return None
    return {
        "last_reading": part.reading,
        "last_reading_at": None if part.reading_at is None else part.reading_at.isoformat(),
        "resets": [
            {"time": when.isoformat(), "before": before, "after": after, "kind": kind}
            for when, before, after, kind in part.resets[-RESETS_SHOWN:]
        ],
    }


# A meter from an entity: its counter continues across resets and meter replacements.
COUNTER_READING = MeterLakeSensorDescription(
    key="meter_reading",
    translation_key="meter_reading",
    value_fn=lambda s: None if s.readings is None else s.readings.total,
    unit_fn=lambda meter: meter.unit,
    device_class_fn=consumption_device_class,
    state_class=SensorStateClass.TOTAL_INCREASING,
    suggested_display_precision=3,
    attributes_fn=_counter_attributes,
)


def _composed_descriptions(meter: MeterInfo) -> list[MeterLakeSensorDescription]:
    found = [d for d in SENSORS if d.exists_fn(meter) and d.key not in COMPOSED_WITHOUT]
    if meter.extra.get("type") == "entity":
        return [*found, COUNTER_READING]
    found.append(METER_READING)
    if meter.extra.get("type") == "virtual":
        found.append(CLIPPED_TODAY)
    return found


def descriptions_for(
    coordinator: MeterLakeCoordinator, meter: MeterInfo
) -> list[MeterLakeSensorDescription]:
    """The sensors one meter gets, from what its source publishes."""
    capabilities = coordinator.source.capabilities
    if capabilities.derived:
        return _composed_descriptions(meter)
    if meter.kind == "grid":
        found = [d for d in GRID_SENSORS if d.exists_fn(meter)]
        if coordinator.emissions is not None:
            found.append(EMISSIONS_SENSOR)
        return found
    found = [d for d in SENSORS if d.exists_fn(meter)]
    if capabilities.spot_prices:
        if not meter.is_export:
            return [*found, *PRICE_SENSORS]
        # Spot prices are for what you buy; what exported energy earns has no price list.
        return [d for d in found if d.key not in {"current_rate", "next_rate"}]
    return found


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeterLakeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One set of sensors per meter of the entry."""
    coordinator = entry.runtime_data.coordinator
    for meter in coordinator.source.meters:
        # A composed meter belongs to its subentry (deleting it removes its device).
        async_add_entities(
            (
                _sensor_class(coordinator, meter, description)(coordinator, meter, description)
                for description in descriptions_for(coordinator, meter)
            ),
            config_subentry_id=meter.extra.get("subentry_id"),
        )


def _sensor_class(
    coordinator: MeterLakeCoordinator, meter: MeterInfo, description: MeterLakeSensorDescription
) -> type[MeterLakeSensor]:
    """Current and next rate of a meter with a unit-rate table follow its day list."""
    if coordinator.source.capabilities.spot_prices or not has_rate_table(coordinator, meter):
        # Spot prices list themselves (`prices`) and say when the next one starts.
        return MeterLakeSensor
    if description.key == "current_rate":
        return CurrentRateSensor
    if description.key == "next_rate":
        return NextRateSensor
    return MeterLakeSensor


class MeterLakeSensor(MeterLakeEntity, SensorEntity):
    """A sensor whose value comes from the meter's snapshot."""

    entity_description: MeterLakeSensorDescription
    # Up to two days of 15-minute prices or half-hour rates: useful to cards and automations,
    # too big and noisy for the recorder.
    _unrecorded_attributes = frozenset({"prices", "rates"})

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
    def available(self) -> bool:
        """Also unavailable where the value cannot exist (carbon intensity of a region)."""
        return super().available and self.entity_description.available_fn(self.meter)

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


class CurrentRateSensor(FollowsRateList, MeterLakeSensor):
    """The current rate, with today's and tomorrow's published slots as `rates`.

    Each slot is {start, end, value} (ISO 8601, the rate incl. VAT per unit of the sensor);
    half-hours for every tariff, a fixed one too; at most MAX_LISTED_SLOTS (two local days of
    half-hours, the 50-slot DST day included). Not recorded.
    """

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The base attributes plus the day list."""
        attributes = dict(super().extra_state_attributes or {})
        if self.day_rates is not None:
            attributes["rates"] = [slot.as_dict() for slot in self.day_rates.slots]
        return attributes or None


class NextRateSensor(FollowsRateList, MeterLakeSensor):
    """The next different rate; on a flat tariff the current rate with `start` null.

    "Flat": every slot from now to the end of the list (tomorrow) is published, without a
    gap, at the current rate, and tomorrow counts as published (rate_slots.day_rates). A
    rate not yet published (Agile before 16:00 UK time) still leaves the sensor unknown: the
    next rate is then not known, which is not "no change".
    """

    @property
    def native_value(self) -> StateType | datetime:
        """The snapshot's next rate, else the current one when nothing changes."""
        value = super().native_value
        snapshot = self.snapshot
        found = self.day_rates
        if value is not None or snapshot is None or snapshot.tariff is None or found is None:
            return value
        current = snapshot.tariff.current_rate
        if current is None or not found.tomorrow_complete:
            return None
        now = dt_util.utcnow()
        upcoming = [slot for slot in found.slots if slot.end > now]
        flat = all(slot.value == current for slot in upcoming) and all(
            earlier.end == later.start for earlier, later in pairwise(upcoming)
        )
        return current if upcoming and flat else None
