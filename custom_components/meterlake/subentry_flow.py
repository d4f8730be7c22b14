"""Subentry flows of the Composed meters entry: add or reconfigure a composed meter.

A virtual, master or preferred meter. Inputs are chosen among the meters of the lake (every
loaded entry's, and the other composed meters), each labelled with its name, unit and entry.
A definition is checked with the same rules the source computes with (sources.composed.check,
find_cycle) before it is saved: a cycle, units that cannot convert or a missing input is a
translated form error.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers.selector import (
    BooleanSelector,
    DateSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
import probatio as vol

from .const import (
    CONF_GAS_CALORIFIC_VALUE,
    CONF_GAS_VOLUME_CORRECTION,
    DEFAULT_GAS_CALORIFIC_VALUE,
    DEFAULT_GAS_VOLUME_CORRECTION,
)
from .lake import async_get_lake
from .sources.base import MeterInfo
from .sources.composed import (
    CONF_ADD,
    CONF_BASE,
    CONF_CADENCE,
    CONF_CALORIFIC_VALUE,
    CONF_CURRENCY,
    CONF_INPUTS,
    CONF_KEY,
    CONF_KIND,
    CONF_METERS,
    CONF_NAME,
    CONF_PERIODS,
    CONF_READING_OFFSET,
    CONF_SUBTRACT,
    CONF_TIME_ZONE,
    CONF_UNIT,
    CONF_UNTIL,
    CONF_VOLUME_CORRECTION,
    TYPE_MASTER,
    TYPE_VIRTUAL,
    Definition,
    DefinitionError,
    check,
    coarsest_cadence,
    find_cycle,
    meter_key,
    parse,
)

CONF_ANOTHER: Final = "another"


class ComposedMeterFlow(ConfigSubentryFlow):
    """One flow for the three kinds; `_subentry_type` says which."""

    def __init__(self) -> None:
        """Master periods are collected over several steps."""
        self._name = ""
        self._offset = 0.0
        self._periods: list[dict[str, Any]] = []
        # Placeholders of the last error (the unit that cannot convert, say).
        self._placeholders: dict[str, str] = {}

    # -- what the user can pick ---------------------------------------------------------------

    def _available(self) -> dict[str, tuple[MeterInfo, str]]:
        """Meters the definition may use: key -> (meter, entry title); never itself."""
        own = self._own_key()
        found = {
            item.meter.key: (item.meter, item.entry_title)
            for item in async_get_lake(self.hass)
            if item.meter.kind != "grid" and item.meter.key != own
        }
        # Composed meters of this entry that are not loaded (yet) still count.
        for definition in self._siblings():
            if definition.key not in found and definition.key != own:
                found[definition.key] = (definition.meter_info(), self._get_entry().title)
        return found

    def _meter_selector(self, *, multiple: bool) -> SelectSelector:
        options = [
            SelectOptionDict(value=key, label=f"{meter.name} ({meter.unit}, {title})")
            for key, (meter, title) in sorted(
                self._available().items(), key=lambda item: item[1][0].name
            )
        ]
        return SelectSelector(
            SelectSelectorConfig(
                options=options, multiple=multiple, mode=SelectSelectorMode.DROPDOWN
            )
        )

    def _siblings(self) -> list[Definition]:
        """The entry's other composed meters (for names and cycles)."""
        entry = self._get_entry()
        own = None if self.source == "user" else self._reconfigure_id()
        found = []
        for subentry_id, subentry in entry.subentries.items():
            if subentry_id == own:
                continue
            try:
                found.append(parse(subentry.subentry_type, subentry.data, subentry_id))
            except DefinitionError:
                continue
        return found

    def _reconfigure_id(self) -> str:
        return self._get_reconfigure_subentry().subentry_id

    def _current(self) -> dict[str, Any]:
        return {} if self.source == "user" else dict(self._get_reconfigure_subentry().data)

    def _own_key(self) -> str | None:
        return None if self.source == "user" else str(self._current().get(CONF_KEY))

    # -- saving ---------------------------------------------------------------------------------

    def _finish(self, data: dict[str, Any]) -> SubentryFlowResult:
        if self.source == "user":
            return self.async_create_entry(title=data[CONF_NAME], data=data)
        return self.async_update_and_abort(
            self._get_entry(), self._get_reconfigure_subentry(), title=data[CONF_NAME], data=data
        )

    def _validate(self, data: dict[str, Any]) -> dict[str, str]:
        """Form errors (translation keys under `base` or a field) for a complete definition."""
        available = {key: meter for key, (meter, _title) in self._available().items()}
        try:
            definition = parse(self._subentry_type, data)
            if definition.key in {d.key for d in self._siblings()} or (
                self.source == "user" and definition.key in available
            ):
                return {CONF_NAME: "name_taken"}
            check(definition, available)
        except DefinitionError as err:
            self._placeholders = dict(err.placeholders)
            return {"base": err.reason}
        if find_cycle([*self._siblings(), definition]) is not None:
            return {"base": "cycle"}
        if self.source != "user":
            current = self._current()
            if current.get(CONF_UNIT) not in (None, definition.unit):
                # Its statistics (and every meter built on it) are in the old unit: keeping
                # the unit keeps them right; a new meter is the honest way to change it.
                self._placeholders = {"unit": str(current[CONF_UNIT]), "to": definition.unit}
                return {"base": "unit_changed"}
        return {}

    def _describe(self, name: str, inputs: list[str]) -> dict[str, Any] | None:
        """Key, unit, kind, cadence, zone and currency from the first input (the base)."""
        available = self._available()
        if not inputs or inputs[0] not in available:
            return None
        first = available[inputs[0]][0]
        used = [available[key][0] for key in inputs if key in available]
        try:
            key = str(self._current().get(CONF_KEY) or meter_key(name))
        except DefinitionError:
            return None
        options = self._get_entry().options
        return {
            CONF_NAME: name,
            CONF_KEY: key,
            CONF_UNIT: first.unit,
            CONF_KIND: first.kind,
            CONF_CADENCE: coarsest_cadence(used),
            CONF_TIME_ZONE: first.time_zone,
            CONF_CURRENCY: first.currency,
            CONF_CALORIFIC_VALUE: float(
                options.get(CONF_GAS_CALORIFIC_VALUE, DEFAULT_GAS_CALORIFIC_VALUE)
            ),
            CONF_VOLUME_CORRECTION: float(
                options.get(CONF_GAS_VOLUME_CORRECTION, DEFAULT_GAS_VOLUME_CORRECTION)
            ),
        }

    def _undescribed(self, inputs: list[str]) -> str:
        """Why `_describe` gave nothing: no input, a first input gone, or a name without letters."""
        if not inputs:
            return "no_inputs"
        if inputs[0] not in self._available():
            return "input_missing"
        return "name_invalid"

    # -- steps ----------------------------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Route to the kind's form."""
        if self._subentry_type == TYPE_VIRTUAL:
            return await self.async_step_virtual()
        if self._subentry_type == TYPE_MASTER:
            return await self.async_step_master()
        return await self.async_step_preferred()

    async_step_reconfigure = async_step_user

    def _name_field(self, current: dict[str, Any]) -> dict[Any, Any]:
        if self.source != "user":
            return {}
        return {vol.Required(CONF_NAME, default=current.get(CONF_NAME, "")): TextSelector()}

    def _gas_fields(self, current: dict[str, Any]) -> dict[Any, Any]:
        options = self._get_entry().options
        box = NumberSelector(
            NumberSelectorConfig(min=0, max=100, step="any", mode=NumberSelectorMode.BOX)
        )
        return {
            vol.Required(
                CONF_CALORIFIC_VALUE,
                default=current.get(
                    CONF_CALORIFIC_VALUE,
                    options.get(CONF_GAS_CALORIFIC_VALUE, DEFAULT_GAS_CALORIFIC_VALUE),
                ),
            ): box,
            vol.Required(
                CONF_VOLUME_CORRECTION,
                default=current.get(
                    CONF_VOLUME_CORRECTION,
                    options.get(CONF_GAS_VOLUME_CORRECTION, DEFAULT_GAS_VOLUME_CORRECTION),
                ),
            ): box,
        }

    def _name_of(self, user_input: dict[str, Any]) -> str:
        return str(user_input.get(CONF_NAME) or self._current().get(CONF_NAME) or "").strip()

    async def async_step_virtual(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A base meter plus and minus others."""
        errors: dict[str, str] = {}
        current = self._current()
        if user_input is not None:
            add = list(user_input.get(CONF_ADD) or [])
            subtract = list(user_input.get(CONF_SUBTRACT) or [])
            base = str(user_input[CONF_BASE])
            data = self._describe(self._name_of(user_input), [base, *add, *subtract])
            if data is None:
                errors["base"] = self._undescribed([base])
            elif len({base, *add, *subtract}) < 1 + len(add) + len(subtract):
                errors["base"] = "input_twice"
            else:
                data |= {CONF_BASE: base, CONF_ADD: add, CONF_SUBTRACT: subtract}
                data |= _gas_values(user_input)
                errors = self._validate(data)
                if not errors:
                    return self._finish(data)
            current = current | user_input
        schema = vol.Schema(
            {
                **self._name_field(current),
                vol.Required(CONF_BASE, default=current.get(CONF_BASE)): self._meter_selector(
                    multiple=False
                ),
                vol.Optional(CONF_ADD, default=current.get(CONF_ADD, [])): self._meter_selector(
                    multiple=True
                ),
                vol.Optional(
                    CONF_SUBTRACT, default=current.get(CONF_SUBTRACT, [])
                ): self._meter_selector(multiple=True),
                **self._gas_fields(current),
            }
        )
        return self._form("virtual", schema, errors)

    async def async_step_preferred(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Inputs in order of preference: the first that has an interval wins."""
        errors: dict[str, str] = {}
        current = self._current()
        if user_input is not None:
            inputs = list(user_input.get(CONF_INPUTS) or [])
            data = self._describe(self._name_of(user_input), inputs)
            if data is None:
                errors["base"] = self._undescribed(inputs)
            else:
                data |= {CONF_INPUTS: inputs} | _gas_values(user_input)
                errors = self._validate(data)
                if not errors:
                    return self._finish(data)
            current = current | user_input
        schema = vol.Schema(
            {
                **self._name_field(current),
                vol.Required(CONF_INPUTS, default=current.get(CONF_INPUTS, [])): (
                    self._meter_selector(multiple=True)
                ),
                **self._gas_fields(current),
            }
        )
        return self._form("preferred", schema, errors)

    async def async_step_master(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Name and the reading to start from; then the periods, one form each."""
        current = self._current()
        if user_input is not None:
            self._name = self._name_of(user_input)
            self._offset = float(user_input.get(CONF_READING_OFFSET) or 0.0)
            self._periods = []
            return await self.async_step_period()
        return self._form("master", self._master_schema(current), {})

    def _master_schema(self, current: dict[str, Any]) -> vol.Schema:
        return vol.Schema(
            {
                **self._name_field(current),
                vol.Required(
                    CONF_READING_OFFSET, default=current.get(CONF_READING_OFFSET, 0.0)
                ): NumberSelector(
                    NumberSelectorConfig(min=0, step="any", mode=NumberSelectorMode.BOX)
                ),
            }
        )

    async def async_step_period(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """One period: its meters (summed) and the day it ends (empty: still running)."""
        errors: dict[str, str] = {}
        previous = self._current().get(CONF_PERIODS) or []
        index = len(self._periods)
        shown = previous[index] if index < len(previous) else {}
        if user_input is not None:
            meters = list(user_input.get(CONF_METERS) or [])
            until = user_input.get(CONF_UNTIL)
            period = {CONF_METERS: meters, CONF_UNTIL: until or None}
            if not meters:
                errors[CONF_METERS] = "empty_period"
            elif (
                until
                and self._periods
                and self._periods[-1][CONF_UNTIL]
                and (date.fromisoformat(until) <= date.fromisoformat(self._periods[-1][CONF_UNTIL]))
            ):
                errors[CONF_UNTIL] = "periods_overlap"
            elif user_input.get(CONF_ANOTHER) and not until:
                errors[CONF_UNTIL] = "open_period_not_last"
            else:
                self._periods.append(period)
                if user_input.get(CONF_ANOTHER):
                    return await self.async_step_period()
                return self._save_master()
            shown = user_input
        fields: dict[Any, Any] = {
            vol.Required(CONF_METERS, default=shown.get(CONF_METERS, [])): self._meter_selector(
                multiple=True
            ),
            vol.Optional(
                CONF_UNTIL, description={"suggested_value": shown.get(CONF_UNTIL)}
            ): DateSelector(),
            vol.Required(CONF_ANOTHER, default=index + 1 < len(previous)): BooleanSelector(),
        }
        return self.async_show_form(
            step_id="period",
            data_schema=vol.Schema(fields),
            errors=errors,
            description_placeholders={"number": str(index + 1)},
        )

    def _form(self, step_id: str, schema: vol.Schema, errors: dict[str, str]) -> SubentryFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=schema,
            errors=errors,
            description_placeholders=self._error_placeholders(),
        )

    def _error_placeholders(self) -> dict[str, str]:
        """Every placeholder an error text may use, filled or empty."""
        return {"input": "", "unit": "", "to": "", "meter": ""} | self._placeholders

    def _save_master(self) -> SubentryFlowResult:
        inputs = [key for period in self._periods for key in period[CONF_METERS]]
        data = self._describe(self._name, inputs)
        errors: dict[str, str]
        if data is None:
            errors = {"base": self._undescribed(inputs)}
        else:
            data |= {CONF_PERIODS: self._periods, CONF_READING_OFFSET: self._offset}
            errors = self._validate(data)
            if not errors:
                return self._finish(data)
        # Start the periods again, with the error on the first form.
        self._periods = []
        shown = {CONF_NAME: self._name, CONF_READING_OFFSET: self._offset}
        return self._form("master", self._master_schema(shown), errors)


def _gas_values(user_input: dict[str, Any]) -> dict[str, float]:
    """The conversion figures of a submitted form."""
    return {
        CONF_CALORIFIC_VALUE: float(user_input[CONF_CALORIFIC_VALUE]),
        CONF_VOLUME_CORRECTION: float(user_input[CONF_VOLUME_CORRECTION]),
    }
