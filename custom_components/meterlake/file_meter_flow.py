"""Subentry flow of the Composed meters entry: add or reconfigure a file meter.

A file meter holds history that only files have (`meterlake.import_file` fills it): its name,
kind, unit and interval cadence are all there is to say. The data is checked with the rules the
source uses (sources.file_meter.parse); a unit of another kind, or a name taken, is a form error.
On reconfigure the unit cannot change (its statistics are in it).
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers.selector import (
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
from .sources.file_meter import CADENCES, KEY_PREFIX, KINDS, UNITS, parse

KIND_SELECTOR: Final = "entity_meter_kind"
CADENCE_SELECTOR: Final = "file_meter_cadence"


class FileMeterFlow(ConfigSubentryFlow):
    """Add (source `user`) or reconfigure (source `reconfigure`) one file meter."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name, kind, unit and cadence; checked, then saved."""
        current = {} if self.source == "user" else dict(self._get_reconfigure_subentry().data)
        errors: dict[str, str] = {}
        placeholders = {"unit": "", "kind": ""}
        if user_input is not None:
            data = {**current, **user_input}
            data[CONF_CADENCE] = int(data[CONF_CADENCE])
            data.setdefault(CONF_TIME_ZONE, self.hass.config.time_zone)
            if self.source == "user":
                try:
                    data[CONF_KEY] = meter_key(str(data[CONF_NAME]).strip(), prefix=KEY_PREFIX)
                except DefinitionError as err:
                    errors[CONF_NAME] = err.reason
                else:
                    if data[CONF_KEY] in self._taken_keys():
                        errors[CONF_NAME] = "name_taken"
            if not errors:
                try:
                    parse(data)
                except DefinitionError as err:
                    errors["base"] = err.reason
                    placeholders |= err.placeholders
                else:
                    if current and current[CONF_UNIT] != data[CONF_UNIT]:
                        errors["base"] = "unit_changed"
                        placeholders = {"unit": str(current[CONF_UNIT]), "kind": data[CONF_UNIT]}
            if not errors:
                if self.source == "user":
                    return self.async_create_entry(title=str(data[CONF_NAME]), data=data)
                return self.async_update_and_abort(
                    self._get_entry(), self._get_reconfigure_subentry(), data=data
                )
            current = data
        fields: dict[Any, Any] = {}
        if self.source == "user":
            fields[vol.Required(CONF_NAME, default=current.get(CONF_NAME, ""))] = TextSelector()
        fields |= {
            vol.Required(CONF_KIND, default=current.get(CONF_KIND, KINDS[0])): SelectSelector(
                SelectSelectorConfig(
                    options=list(KINDS),
                    translation_key=KIND_SELECTOR,
                    mode=SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Required(CONF_UNIT, default=current.get(CONF_UNIT, "kWh")): SelectSelector(
                SelectSelectorConfig(
                    options=sorted({unit for units in UNITS.values() for unit in units}),
                    mode=SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Required(CONF_CADENCE, default=str(current.get(CONF_CADENCE, 30))): (
                SelectSelector(
                    SelectSelectorConfig(
                        options=[str(c) for c in CADENCES],
                        translation_key=CADENCE_SELECTOR,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                )
            ),
        }
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(fields),
            errors=errors,
            description_placeholders=placeholders,
        )

    async_step_reconfigure = async_step_user

    def _taken_keys(self) -> set[str]:
        """Keys of the entry's subentries (any type) and of every meter in the lake."""
        keys = {str(sub.data.get(CONF_KEY)) for sub in self._get_entry().subentries.values()}
        return keys | {item.meter.key for item in async_get_lake(self.hass)}
