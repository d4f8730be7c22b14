"""Repairs: the fix flows of MeterLake's fixable issues, and the invalid-options issue.

`async_create_fix_flow` finds the flow of an issue by the start of its id in `FIX_FLOWS`
(`invalid_options_<entry_id>` -> `InvalidOptionsRepairFlow`). To add one, register a factory
that takes the rest of the id (usually the entry id) and the issue's data:

    FIX_FLOWS["archive_unwritable_"] = lambda entry_id, data: ArchiveRepairFlow(entry_id)
"""

from __future__ import annotations

from collections.abc import Callable
import logging
from typing import Any, Final

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .config_flow import _options_schema, async_validate_options_form
from .const import DOMAIN
from .gas_unit_check import GAS_UNIT_PREFIX
from .options import INVALID_OPTIONS_PREFIX, invalid_options_issue_id, sanitize_options
from .sinks import FOREIGN_STATISTIC_PREFIX
from .sources.base import MeterInfo

_LOGGER = logging.getLogger(__name__)


type IssueData = dict[str, str | int | float | None] | None
type FixFlowFactory = Callable[[str, IssueData], RepairsFlow]


async def async_apply_valid_options(hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
    """Put the entry's invalid shared options back to their defaults before setup reads them.

    Options written by hand or by an older version must not keep the entry from starting. The
    entry's options are replaced by the sanitized ones and a fixable repair issue names the
    keys (never the values: some are secrets); the repair opens the options form. The issue
    persists until the options are saved again (repair or options flow).
    """
    options, invalid = sanitize_options(entry.options)
    if options != dict(entry.options):
        hass.config_entries.async_update_entry(entry, options=options)
    issue_id = invalid_options_issue_id(entry.entry_id)
    if not invalid:
        # An issue raised before stays until the user has reviewed the options (the repair
        # or the options form), also across restarts.
        return
    keys = ", ".join(invalid)
    _LOGGER.warning(
        "Invalid options of %s replaced by their defaults: %s; review them in the repair",
        entry.title,
        keys,
    )
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=True,
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="invalid_options",
        translation_placeholders={"title": entry.title, "keys": keys},
        data={"entry_id": entry.entry_id},
    )


class InvalidOptionsRepairFlow(RepairsFlow):
    """The shared options form, prefilled with the sanitized options; saving reloads the entry."""

    def __init__(self, entry_id: str) -> None:
        """The entry whose options were replaced."""
        self._entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Show and check the options as the options flow does, then save them and reload.

        The repairs manager starts the flow with `{"issue_id": ...}` as input; only a submitted
        form (its schema admits no `issue_id`) is checked and saved.
        """
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or entry.domain != DOMAIN:
            return self.async_abort(reason="entry_not_found")
        current = dict(entry.options)
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None and "issue_id" not in user_input:
            options, errors, placeholders = await async_validate_options_form(
                self.hass, current, user_input
            )
            if not errors:
                self.hass.config_entries.async_update_entry(entry, options=options)
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_create_entry(data={})
            current = options | user_input
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        keys = str((issue.translation_placeholders or {}).get("keys", "")) if issue else ""
        return self.async_show_form(
            step_id="init",
            data_schema=_options_schema(current),
            errors=errors,
            description_placeholders={"title": entry.title, "keys": keys, **placeholders},
        )


class MeterRepairFlow(RepairsFlow):
    """A fix flow about one meter of a loaded entry: confirm, then act.

    The issue's data names the entry and the meter; the flow aborts (translated) when the
    entry is gone or not loaded or no longer follows the meter, and shows the issue's
    placeholders on its confirm step.
    """

    def __init__(self, data: IssueData) -> None:
        """Entry and meter come from the issue's data."""
        self.found = data or {}
        self._entry_id = str(self.found.get("entry_id") or "")
        self._meter = str(self.found.get("meter") or "")

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Confirm first: the fix changes stored data."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Check the entry and meter, show the confirm form, then run the fix."""
        from .coordinator import MeterLakeConfigEntry

        entry: MeterLakeConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        if entry is None or entry.domain != DOMAIN:
            return self.async_abort(reason="entry_not_found")
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        meters = entry.runtime_data.coordinator.source.meters
        meter = next((m for m in meters if m.key == self._meter), None)
        if meter is None:
            return self.async_abort(reason="meter_gone")
        if user_input is None:
            issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
            placeholders = dict((issue.translation_placeholders or {}) if issue else {})
            return self.async_show_form(
                step_id="confirm", description_placeholders=placeholders | self.placeholders()
            )
        return await self.async_fix(entry, meter)

    def placeholders(self) -> dict[str, str]:
        """Extra placeholders of the confirm step."""
        return {}

    async def async_fix(self, entry: Any, meter: MeterInfo) -> RepairsFlowResult:
        """Do the fix (the user confirmed)."""
        raise NotImplementedError


class ForeignStatisticRepairFlow(MeterRepairFlow):
    """Clear a statistic that holds foreign metadata under our id and rebuild it.

    The recorder had a `meterlake:` statistic MeterLake did not write (another unit, another
    currency, a mean); continuing its sum would mix two series, so the import refused it. On
    confirmation the statistic is cleared and re-imported from the archive.
    """

    def placeholders(self) -> dict[str, str]:
        """The statistic the confirm step names."""
        return {"statistic_id": str(self.found.get("statistic_id") or "")}

    async def async_fix(self, entry: Any, meter: MeterInfo) -> RepairsFlowResult:
        """Clear the statistic, rebuild the meter from the archive, close the issue."""
        from . import statistics

        await statistics.async_clear_statistic(self.hass, self.placeholders()["statistic_id"])
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        await entry.runtime_data.coordinator.async_rebuild_statistics(meter, None)
        return self.async_create_entry(data={})


class GasUnitRepairFlow(MeterRepairFlow):
    """Re-read a gas meter's stored history in the unit its annual quantity says it reads.

    The issue (gas_unit_check.async_check_gas_units) carries the entry, the meter and the unit
    that fits; on confirmation the history is converted, the entry's unit changed and the
    statistics rebuilt (gas_unit_check.async_convert_gas_unit).
    """

    async def async_fix(self, entry: Any, meter: MeterInfo) -> RepairsFlowResult:
        """Convert the history, switch the unit, rebuild the statistics, close the issue."""
        from homeassistant.exceptions import HomeAssistantError

        from .gas_unit_check import async_convert_gas_unit

        try:
            await async_convert_gas_unit(
                self.hass, entry, meter.key, str(self.found.get("unit") or "")
            )
        except HomeAssistantError as err:
            return self.async_abort(
                reason="conversion_failed", description_placeholders={"error": str(err)}
            )
        return self.async_create_entry(data={})


FIX_FLOWS: Final[dict[str, FixFlowFactory]] = {
    INVALID_OPTIONS_PREFIX: lambda entry_id, _data: InvalidOptionsRepairFlow(entry_id),
    FOREIGN_STATISTIC_PREFIX: lambda _rest, data: ForeignStatisticRepairFlow(data),
    GAS_UNIT_PREFIX: lambda _rest, data: GasUnitRepairFlow(data),
}


async def async_create_fix_flow(hass: HomeAssistant, issue_id: str, data: IssueData) -> RepairsFlow:
    """The fix flow of a fixable issue, chosen by the longest registered prefix of its id."""
    for prefix in sorted(FIX_FLOWS, key=len, reverse=True):
        if issue_id.startswith(prefix):
            return FIX_FLOWS[prefix](issue_id.removeprefix(prefix), data)
    # The repairs API answers 400 with this message rather than failing with a traceback.
    raise data_entry_flow.UnknownStep(f"MeterLake has no fix flow for issue {issue_id}")
