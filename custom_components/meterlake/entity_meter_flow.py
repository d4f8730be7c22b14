"""Subentry flow of the Composed meters entry: add or reconfigure a meter from an entity.

A counter sensor (`total`/`total_increasing`: energy, gas, water, heat) or a number that holds
meter readings typed in by hand (an `input_number`). Three steps: the entity, its kind and the
interval cadence (`user`); the unit of its readings when the entity has none (`unit`); how the
consumption between two readings is spread (`spread`). The data is checked with the rules the
source computes with (sources.entity_meter.parse) before it is saved: a unit that is not one of
the kind, a degree-day profile without a temperature sensor, ... is a translated form error.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    EntityWithDeviceFilterSelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
import probatio as vol

from .lake import async_get_lake
from .sources.composed import (
    CONF_CADENCE,
    CONF_KEY,
    CONF_KIND,
    CONF_NAME,
    CONF_TIME_ZONE,
    CONF_UNIT,
    DefinitionError,
    meter_key,
)
from .sources.entity_meter import (
    CADENCES,
    CONF_ENTITY_ID,
    CONF_MAX_GAP_DAYS,
    CONF_PROFILE,
    CONF_ROLLOVER,
    CONF_SOURCE_UNIT,
    CONF_TEMPERATURE_ENTITY,
    CONF_TOLERANCE,
    DEFAULT_MAX_GAP_DAYS,
    DEFAULT_TOLERANCE,
    HOURLY,
    KEY_PREFIX,
    KINDS,
    MAX_GAP_DAYS_LIMIT,
    PROFILE_LINEAR,
    PROFILES,
    EntityDefinition,
    parse,
    target_unit,
)

# Entities whose state can be a meter reading.
ENTITY_DOMAINS: Final = ["sensor", "input_number", "number"]
# The units a reading without one may be in, per kind (all convert to kWh or m³).
UNITS: Final = {
    "electricity": ("Wh", "kWh", "MWh", "GJ"),
    "heat": ("Wh", "kWh", "MWh", "GJ"),
    "gas": ("m³", "ft³", "CCF", "kWh"),
    "water": ("L", "m³", "ft³", "CCF", "gal"),
}
# Translation keys of the select fields (the top-level "selector" section of strings.json).
KIND_SELECTOR: Final = "entity_meter_kind"
CADENCE_SELECTOR: Final = "entity_meter_cadence"
PROFILE_SELECTOR: Final = "entity_meter_profile"
# Every placeholder an error or step text of this flow may use.
PLACEHOLDERS: Final = ("entity", "unit", "kind", "to")


class EntityMeterFlow(ConfigSubentryFlow):
    """Add (source `user`) or reconfigure (source `reconfigure`) one meter from an entity."""

    def __init__(self) -> None:
        """The first steps' answers are kept until the last one saves them."""
        self._first: dict[str, Any] = {}
        self._key = ""
        self._source_unit = ""
        self._placeholders: dict[str, str] = {}

    # -- the subentry as it is --------------------------------------------------------------

    def _current(self) -> dict[str, Any]:
        return {} if self.source == "user" else dict(self._get_reconfigure_subentry().data)

    def _taken_keys(self) -> set[str]:
        """Keys of the entry's other subentries (any type) and of every meter in the lake."""
        own = None if self.source == "user" else self._get_reconfigure_subentry().subentry_id
        keys = {
            str(subentry.data.get(CONF_KEY))
            for subentry_id, subentry in self._get_entry().subentries.items()
            if subentry_id != own
        }
        return keys | {item.meter.key for item in async_get_lake(self.hass)}

    # -- checks -----------------------------------------------------------------------------

    def _check_name(self, name: str) -> dict[str, str]:
        """Sets the key of a new meter; errors on `name` when there is none or it is taken."""
        try:
            key = meter_key(name, prefix=KEY_PREFIX)
        except DefinitionError as err:
            return {CONF_NAME: err.reason}
        if key in self._taken_keys():
            return {CONF_NAME: "name_taken"}
        self._key = key
        return {}

    def _check_unit(self, kind: str, source_unit: str) -> dict[str, str]:
        """Errors when readings in `source_unit` cannot be this kind, or change the meter's unit."""
        try:
            unit = target_unit(kind, source_unit)
        except DefinitionError as err:
            self._placeholders |= err.placeholders
            return {"base": err.reason}
        current = self._current().get(CONF_UNIT)
        if current not in (None, unit):
            # Its statistics are in the old unit: keeping the unit keeps them right; a new meter
            # is the honest way to change it.
            self._placeholders |= {"unit": str(current), "to": unit}
            return {"base": "unit_changed"}
        return {}

    # -- steps ------------------------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The entity, what it measures and the interval cadence (and the name, when adding)."""
        errors: dict[str, str] = {}
        current = self._current()
        if user_input is not None:
            entity_id = str(user_input[CONF_ENTITY_ID])
            kind = str(user_input[CONF_KIND])
            self._placeholders = {"entity": entity_id, "kind": kind}
            state = self.hass.states.get(entity_id)
            if self.source == "user":
                errors = self._check_name(str(user_input[CONF_NAME]).strip())
            else:
                self._key = str(current.get(CONF_KEY) or "")
            if state is None:
                errors[CONF_ENTITY_ID] = "entity_missing"
            elif not errors:
                self._placeholders["entity"] = state.name
                unit = state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)
                self._first = dict(user_input)
                if not unit:
                    return await self.async_step_unit()
                errors = self._check_unit(kind, str(unit))
                if not errors:
                    self._source_unit = str(unit)
                    return await self.async_step_spread()
            current = current | user_input
        return self._form("user", self._user_fields(current), errors)

    async_step_reconfigure = async_step_user

    async def async_step_unit(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The unit of the readings, for an entity that has none (a bare input_number)."""
        errors: dict[str, str] = {}
        kind = str(self._first[CONF_KIND])
        units = UNITS[kind]
        shown = self._current().get(CONF_SOURCE_UNIT)
        if user_input is not None:
            shown = str(user_input[CONF_SOURCE_UNIT])
            errors = self._check_unit(kind, shown)
            if not errors:
                self._source_unit = shown
                return await self.async_step_spread()
        fields = {
            vol.Required(
                CONF_SOURCE_UNIT, default=shown if shown in units else units[0]
            ): SelectSelector(
                SelectSelectorConfig(options=list(units), mode=SelectSelectorMode.DROPDOWN)
            ),
        }
        return self._form("unit", fields, errors)

    async def async_step_spread(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """How consumption between two readings is shared out, and how readings are cleaned."""
        errors: dict[str, str] = {}
        current = self._current()
        unit = target_unit(str(self._first[CONF_KIND]), self._source_unit)
        if user_input is not None:
            self._placeholders = {k: v for k, v in self._placeholders.items() if k == "entity"}
            data = self._data(user_input)
            try:
                definition = parse(data)
            except DefinitionError as err:
                self._placeholders |= err.placeholders
                errors = {"base": err.reason}
            else:
                if self.source == "user" and definition.key in self._taken_keys():
                    # Added elsewhere while this flow was open: ask for another name.
                    self._placeholders = {}
                    return self._form(
                        "user", self._user_fields(self._first), {CONF_NAME: "name_taken"}
                    )
                return self._finish(_saved(definition))
            # Optional fields left empty are shown empty, not as they were saved.
            empty = dict.fromkeys((CONF_TEMPERATURE_ENTITY, CONF_TOLERANCE, CONF_ROLLOVER))
            current = current | empty | user_input
        fields: dict[Any, Any] = {
            vol.Required(CONF_PROFILE, default=current.get(CONF_PROFILE, PROFILE_LINEAR)): _select(
                list(PROFILES), PROFILE_SELECTOR
            ),
            vol.Optional(
                CONF_TEMPERATURE_ENTITY,
                description={"suggested_value": current.get(CONF_TEMPERATURE_ENTITY)},
            ): EntitySelector(
                EntitySelectorConfig(
                    filter=EntityWithDeviceFilterSelectorConfig(
                        domain="sensor", device_class="temperature"
                    )
                )
            ),
            vol.Required(
                CONF_MAX_GAP_DAYS, default=current.get(CONF_MAX_GAP_DAYS, DEFAULT_MAX_GAP_DAYS)
            ): NumberSelector(
                NumberSelectorConfig(
                    min=1, max=MAX_GAP_DAYS_LIMIT, step=1, mode=NumberSelectorMode.BOX
                )
            ),
            vol.Optional(
                CONF_TOLERANCE,
                description={
                    "suggested_value": current.get(CONF_TOLERANCE, DEFAULT_TOLERANCE[unit])
                },
            ): NumberSelector(
                NumberSelectorConfig(
                    min=0, step="any", unit_of_measurement=unit, mode=NumberSelectorMode.BOX
                )
            ),
            vol.Optional(
                CONF_ROLLOVER, description={"suggested_value": current.get(CONF_ROLLOVER)}
            ): NumberSelector(NumberSelectorConfig(min=0, step="any", mode=NumberSelectorMode.BOX)),
        }
        return self._form("spread", fields, errors)

    # -- saving -----------------------------------------------------------------------------

    def _data(self, spread: dict[str, Any]) -> dict[str, Any]:
        """The subentry's data from the three steps' answers (checked by `parse`)."""
        current = self._current()
        if self.source == "user":
            name = self._first[CONF_NAME]
        else:
            name = current.get(CONF_NAME) or self._get_reconfigure_subentry().title
        return {
            CONF_NAME: str(name).strip(),
            CONF_KEY: self._key,
            CONF_ENTITY_ID: str(self._first[CONF_ENTITY_ID]),
            CONF_KIND: str(self._first[CONF_KIND]),
            CONF_SOURCE_UNIT: self._source_unit,
            CONF_CADENCE: self._first[CONF_CADENCE],
            # A meter keeps the zone it was added in: its daily slots stay where they were.
            CONF_TIME_ZONE: current.get(CONF_TIME_ZONE) or self.hass.config.time_zone,
            CONF_PROFILE: spread.get(CONF_PROFILE),
            CONF_TEMPERATURE_ENTITY: spread.get(CONF_TEMPERATURE_ENTITY),
            CONF_MAX_GAP_DAYS: spread.get(CONF_MAX_GAP_DAYS),
            CONF_TOLERANCE: spread.get(CONF_TOLERANCE),
            CONF_ROLLOVER: spread.get(CONF_ROLLOVER),
        }

    def _finish(self, data: dict[str, Any]) -> SubentryFlowResult:
        if self.source == "user":
            return self.async_create_entry(title=data[CONF_NAME], data=data)
        return self.async_update_and_abort(
            self._get_entry(), self._get_reconfigure_subentry(), title=data[CONF_NAME], data=data
        )

    def _user_fields(self, shown: dict[str, Any]) -> dict[Any, Any]:
        """The user step's fields showing `shown` (the name only when adding)."""
        fields: dict[Any, Any] = {}
        if self.source == "user":
            fields[vol.Required(CONF_NAME, default=shown.get(CONF_NAME, ""))] = TextSelector()
        entity = shown.get(CONF_ENTITY_ID)
        return fields | {
            vol.Required(
                CONF_ENTITY_ID, **({} if entity is None else {"default": entity})
            ): EntitySelector(
                EntitySelectorConfig(
                    filter=EntityWithDeviceFilterSelectorConfig(domain=ENTITY_DOMAINS)
                )
            ),
            vol.Required(CONF_KIND, default=shown.get(CONF_KIND, KINDS[0])): _select(
                list(KINDS), KIND_SELECTOR
            ),
            vol.Required(CONF_CADENCE, default=str(shown.get(CONF_CADENCE, HOURLY))): _select(
                [str(cadence) for cadence in CADENCES], CADENCE_SELECTOR
            ),
        }

    def _form(
        self, step_id: str, fields: dict[Any, Any], errors: dict[str, str]
    ) -> SubentryFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=vol.Schema(fields),
            errors=errors,
            description_placeholders=dict.fromkeys(PLACEHOLDERS, "") | self._placeholders,
        )


def _select(options: list[str], translation_key: str) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=options, mode=SelectSelectorMode.DROPDOWN, translation_key=translation_key
        )
    )


def _saved(definition: EntityDefinition) -> dict[str, Any]:
    """What is stored: the parsed definition, so numbers are numbers and defaults are filled."""
    return {
        CONF_NAME: definition.name,
        CONF_KEY: definition.key,
        CONF_ENTITY_ID: definition.entity_id,
        CONF_KIND: definition.kind,
        CONF_SOURCE_UNIT: definition.source_unit,
        CONF_UNIT: definition.unit,
        CONF_CADENCE: definition.cadence_minutes,
        CONF_TIME_ZONE: definition.time_zone,
        CONF_PROFILE: definition.profile,
        CONF_TEMPERATURE_ENTITY: definition.temperature_entity,
        CONF_MAX_GAP_DAYS: definition.max_gap_days,
        CONF_TOLERANCE: definition.tolerance,
        CONF_ROLLOVER: definition.rollover,
    }
