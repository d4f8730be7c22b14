"""Config flow: a menu of sources, one step per source; options shared by every source."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeassistant.config_entries import (
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
)
import probatio as vol

from .const import (
    CONF_ARCHIVE_ROOT,
    CONF_BACKFILL_DAYS,
    CONF_GAS_CALORIFIC_VALUE,
    CONF_GAS_VOLUME_CORRECTION,
    CONF_KEEP_RAW_DAYS,
    CONF_SOURCE,
    CONF_STANDING_CHARGE_IN_COST,
    DEFAULT_ARCHIVE_ROOT,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_GAS_CALORIFIC_VALUE,
    DEFAULT_GAS_VOLUME_CORRECTION,
    DEFAULT_KEEP_RAW_DAYS,
    DEFAULT_STANDING_CHARGE_IN_COST,
    DOMAIN,
    MAX_BACKFILL_DAYS,
    MAX_KEEP_RAW_DAYS,
    SOURCE_DEMO,
)
from .coordinator import MeterLakeConfigEntry

SOURCES = [SOURCE_DEMO]
# Plausible natural-gas calorific values (MJ/m³) and volume corrections; outside is a typo.
CALORIFIC_RANGE = (30.0, 50.0)
CORRECTION_RANGE = (0.9, 1.1)


def default_options() -> dict[str, Any]:
    """Options every new entry starts with."""
    return {
        CONF_ARCHIVE_ROOT: DEFAULT_ARCHIVE_ROOT,
        CONF_KEEP_RAW_DAYS: DEFAULT_KEEP_RAW_DAYS,
        CONF_BACKFILL_DAYS: DEFAULT_BACKFILL_DAYS,
        CONF_GAS_CALORIFIC_VALUE: DEFAULT_GAS_CALORIFIC_VALUE,
        CONF_GAS_VOLUME_CORRECTION: DEFAULT_GAS_VOLUME_CORRECTION,
        CONF_STANDING_CHARGE_IN_COST: DEFAULT_STANDING_CHARGE_IN_COST,
    }


class MeterLakeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a source: pick it from the menu, then its own step tests it before creating."""

    VERSION = 1
    MINOR_VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: MeterLakeConfigEntry) -> MeterLakeOptionsFlow:
        """Options shared by every source."""
        return MeterLakeOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """First step: which source to add."""
        return self.async_show_menu(step_id="user", menu_options=SOURCES)

    async def async_step_demo(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The synthetic household: nothing to ask, one per installation."""
        await self.async_set_unique_id(SOURCE_DEMO)
        self._abort_if_unique_id_configured()
        if user_input is None:
            return self.async_show_form(step_id="demo", data_schema=vol.Schema({}))
        return self.async_create_entry(
            title="MeterLake demo",
            data={CONF_SOURCE: SOURCE_DEMO},
            options=default_options(),
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Route to the source's own reconfigure step."""
        entry = self._get_reconfigure_entry()
        step: Callable[[], Awaitable[ConfigFlowResult]] = getattr(
            self, f"async_step_reconfigure_{entry.data[CONF_SOURCE]}"
        )
        return await step()

    async def async_step_reconfigure_demo(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The demo has no settings of its own: confirm and reload (it regenerates its data)."""
        if user_input is None:
            return self.async_show_form(step_id="reconfigure_demo", data_schema=vol.Schema({}))
        return self.async_update_reload_and_abort(self._get_reconfigure_entry())


def _options_schema(options: dict[str, Any]) -> vol.Schema:
    def box(low: float, high: float, step: float | str) -> NumberSelector:
        return NumberSelector(
            NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
        )

    return vol.Schema(
        {
            vol.Required(
                CONF_ARCHIVE_ROOT, default=options.get(CONF_ARCHIVE_ROOT, DEFAULT_ARCHIVE_ROOT)
            ): TextSelector(),
            vol.Required(
                CONF_KEEP_RAW_DAYS, default=options.get(CONF_KEEP_RAW_DAYS, DEFAULT_KEEP_RAW_DAYS)
            ): box(0, MAX_KEEP_RAW_DAYS, 1),
            vol.Required(
                CONF_BACKFILL_DAYS, default=options.get(CONF_BACKFILL_DAYS, DEFAULT_BACKFILL_DAYS)
            ): box(1, MAX_BACKFILL_DAYS, 1),
            vol.Required(
                CONF_GAS_CALORIFIC_VALUE,
                default=options.get(CONF_GAS_CALORIFIC_VALUE, DEFAULT_GAS_CALORIFIC_VALUE),
            ): box(0, 100, "any"),
            vol.Required(
                CONF_GAS_VOLUME_CORRECTION,
                default=options.get(CONF_GAS_VOLUME_CORRECTION, DEFAULT_GAS_VOLUME_CORRECTION),
            ): box(0, 2, "any"),
            vol.Required(
                CONF_STANDING_CHARGE_IN_COST,
                default=options.get(CONF_STANDING_CHARGE_IN_COST, DEFAULT_STANDING_CHARGE_IN_COST),
            ): BooleanSelector(),
        }
    )


def validate_options(user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalise option values; errors keyed by field, as translation keys.

    Day counts are bounded by their selectors already; gas numbers get a plausibility check.
    """
    errors: dict[str, str] = {}
    options = dict(user_input)
    root = str(options.get(CONF_ARCHIVE_ROOT, "")).strip()
    if not root:
        errors[CONF_ARCHIVE_ROOT] = "archive_root_empty"
    options[CONF_ARCHIVE_ROOT] = root
    for key in (CONF_KEEP_RAW_DAYS, CONF_BACKFILL_DAYS):
        options[key] = int(options[key])
    calorific = float(options[CONF_GAS_CALORIFIC_VALUE])
    if not CALORIFIC_RANGE[0] <= calorific <= CALORIFIC_RANGE[1]:
        errors[CONF_GAS_CALORIFIC_VALUE] = "calorific_value_range"
    correction = float(options[CONF_GAS_VOLUME_CORRECTION])
    if not CORRECTION_RANGE[0] <= correction <= CORRECTION_RANGE[1]:
        errors[CONF_GAS_VOLUME_CORRECTION] = "volume_correction_range"
    options[CONF_GAS_CALORIFIC_VALUE] = calorific
    options[CONF_GAS_VOLUME_CORRECTION] = correction
    return options, errors


class MeterLakeOptionsFlow(OptionsFlowWithReload):
    """Archive, backfill and gas conversion settings; the entry reloads when they change."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every shared option."""
        errors: dict[str, str] = {}
        current = dict(self.config_entry.options)
        if user_input is not None:
            options, errors = validate_options(user_input)
            if not errors:
                return self.async_create_entry(data={**current, **options})
            current |= user_input
        return self.async_show_form(
            step_id="init", data_schema=_options_schema(current), errors=errors
        )
