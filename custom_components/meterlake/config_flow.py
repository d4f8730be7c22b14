"""Config flow: a menu of sources, one step per source; reauth, reconfigure, shared options.

Octopus: `octopus` (API key + account number, tested against the account endpoint) ->
`octopus_meters` (which meter points to follow, and the unit of each gas meter, which the REST
API does not give). Reauth asks a new key for the same account; reconfigure re-reads the account
and lets the user change the meters. Octopus options add a second step, `tariffs`, with an
optional tariff or product code per meter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
import logging
import re
from typing import Any, Final, Literal

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio as vol

from .const import (
    ARCHIVE_CREDENTIAL_KEYS,
    CONF_ACCOUNT_NUMBER,
    CONF_ARCHIVE_ROOT,
    CONF_ARCHIVE_SECRET_KEY,
    CONF_BACKFILL_DAYS,
    CONF_GAS_CALORIFIC_VALUE,
    CONF_GAS_VOLUME_CORRECTION,
    CONF_KEEP_RAW_DAYS,
    CONF_METERS,
    CONF_SOURCE,
    CONF_STANDING_CHARGE_IN_COST,
    CONF_TARIFF_OVERRIDES,
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
    SOURCE_OCTOPUS,
)
from .coordinator import MeterLakeConfigEntry
from .sources.base import (
    HttpClient,
    RetryPolicy,
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
)
from .sources.octopus import (
    TARIFF_CODE_RE,
    DiscoveredMeter,
    async_fetch_account,
    discover_meters,
    meter_config,
    meter_infos,
    normalize_account_number,
)
from .sources.octopus_account import GAS_UNITS, SUPPLIER as OCTOPUS_SUPPLIER

_LOGGER = logging.getLogger(__name__)

SOURCES = [SOURCE_DEMO, SOURCE_OCTOPUS]
# Plausible natural-gas calorific values (MJ/m³) and volume corrections; outside is a typo.
CALORIFIC_RANGE = (30.0, 50.0)
CORRECTION_RANGE = (0.9, 1.1)

# The flow asks once and answers the user: no retries, a shorter timeout than polling's 30 s.
FLOW_RETRY_POLICY: Final = RetryPolicy(retries=0, timeout=15.0)
OCTOPUS_API_ACCESS_URL: Final = (
    "https://octopus.energy/dashboard/new/accounts/personal-details/api-access"
)
# Octopus meters form: one unit field per gas meter point, named after its MPRN.
GAS_UNIT_PREFIX: Final = "gas_unit_"
# A product code as Octopus writes it: upper-case words of letters and digits joined by dashes,
# at least two of them (AGILE-24-10-01, OE-FIX-12M-24-03-01, VAR-22-11-01).
PRODUCT_CODE_RE: Final = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)+$")
TARIFF_FUEL_LETTERS: Final = {"electricity": "E", "gas": "G"}


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

    def __init__(self) -> None:
        """Nothing read yet; the Octopus steps fill these in as the user goes."""
        self._api_key = ""
        self._account_number = ""
        self._discovered: list[DiscoveredMeter] = []
        self._selected_default: list[str] = []
        self._gas_unit_default: dict[str, str] = {}

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

    # ------------------------------------------------------------------------------ Octopus

    async def async_step_octopus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """API key and account number; checked against the account endpoint before going on."""
        errors: dict[str, str] = {}
        if user_input is not None:
            account_number = normalize_account_number(str(user_input[CONF_ACCOUNT_NUMBER]))
            api_key = str(user_input[CONF_API_KEY]).strip()
            if account_number is None:
                errors[CONF_ACCOUNT_NUMBER] = "invalid_account_number"
            else:
                await self.async_set_unique_id(account_number)
                self._abort_if_unique_id_configured()
                account, error = await self._async_read_account(api_key, account_number)
                if account is None:
                    errors["base"] = error
                else:
                    return await self._async_start_meters(api_key, account_number, account)
        return self.async_show_form(
            step_id="octopus",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_API_KEY): _password(),
                        vol.Required(CONF_ACCOUNT_NUMBER): TextSelector(),
                    }
                ),
                user_input,
            ),
            errors=errors,
            description_placeholders={"api_access_url": OCTOPUS_API_ACCESS_URL},
        )

    async def async_step_octopus_meters(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Which meter points to follow, and the unit of each gas meter (the user confirms it)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            selected = [str(key) for key in user_input.get(CONF_METERS) or ()]
            gas_units = {
                meter.key: str(user_input[GAS_UNIT_PREFIX + meter.point])
                for meter in self._discovered
                if meter.kind == "gas"
            }
            if not selected:
                errors[CONF_METERS] = "no_meters_selected"
            else:
                infos = meter_infos(self._discovered, selected=selected, gas_units=gas_units)
                data = {
                    CONF_SOURCE: SOURCE_OCTOPUS,
                    CONF_API_KEY: self._api_key,
                    CONF_ACCOUNT_NUMBER: self._account_number,
                    CONF_METERS: [meter_config(meter) for meter in infos],
                }
                if self.source == SOURCE_RECONFIGURE:
                    return self.async_update_reload_and_abort(
                        self._get_reconfigure_entry(), data=data
                    )
                return self.async_create_entry(
                    title=f"Octopus Energy {self._account_number}",
                    data=data,
                    options=default_options(),
                )
            self._selected_default = selected
            self._gas_unit_default |= gas_units
        return self.async_show_form(
            step_id="octopus_meters",
            data_schema=_meters_schema(
                self._discovered, self._selected_default, self._gas_unit_default
            ),
            errors=errors,
            description_placeholders={"account": self._account_number},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The supplier refused the stored credentials (the coordinator raised auth failed)."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new API key for the same account, tested before it replaces the old one."""
        entry = self._get_reauth_entry()
        account_number = str(entry.data[CONF_ACCOUNT_NUMBER])
        errors: dict[str, str] = {}
        if user_input is not None:
            api_key = str(user_input[CONF_API_KEY]).strip()
            account, error = await self._async_read_account(api_key, account_number)
            if account is not None:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_API_KEY: api_key}
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_API_KEY): _password()}),
            errors=errors,
            description_placeholders={
                "account": account_number,
                "api_access_url": OCTOPUS_API_ACCESS_URL,
            },
        )

    async def async_step_reconfigure_octopus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Same account (its number is the unique id), optionally a new key; then the meters."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            account_number = normalize_account_number(str(user_input[CONF_ACCOUNT_NUMBER]))
            api_key = str(user_input.get(CONF_API_KEY) or "").strip() or str(
                entry.data[CONF_API_KEY]
            )
            if account_number is None:
                errors[CONF_ACCOUNT_NUMBER] = "invalid_account_number"
            else:
                await self.async_set_unique_id(account_number)
                self._abort_if_unique_id_mismatch(reason="account_mismatch")
                account, error = await self._async_read_account(api_key, account_number)
                if account is None:
                    errors["base"] = error
                else:
                    stored = [m for m in entry.data.get(CONF_METERS) or () if "key" in m]
                    return await self._async_start_meters(
                        api_key,
                        account_number,
                        account,
                        selected=[str(m["key"]) for m in stored],
                        gas_units={
                            str(m["key"]): str(m["unit"]) for m in stored if m.get("kind") == "gas"
                        },
                    )
        return self.async_show_form(
            step_id="reconfigure_octopus",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_ACCOUNT_NUMBER,
                        default=(user_input or entry.data)[CONF_ACCOUNT_NUMBER],
                    ): TextSelector(),
                    vol.Optional(CONF_API_KEY): _password(),
                }
            ),
            errors=errors,
            description_placeholders={"api_access_url": OCTOPUS_API_ACCESS_URL},
        )

    async def _async_read_account(
        self, api_key: str, account_number: str
    ) -> tuple[dict[str, Any] | None, str]:
        """The account payload, or None and the error key the form shows."""
        client = HttpClient(
            async_get_clientsession(self.hass),
            OCTOPUS_SUPPLIER,
            policy=FLOW_RETRY_POLICY,
            redact=(api_key, account_number),
        )
        try:
            return await async_fetch_account(client, api_key, account_number), ""
        except SourceAuthError:
            return None, "invalid_auth"
        except SourceNotFoundError:
            return None, "account_not_found"
        except SourceError:
            # Network, timeout, 5xx, 429, a malformed payload, another 4xx.
            return None, "cannot_connect"
        except Exception:
            _LOGGER.exception("Unexpected error while reading the Octopus account")
            return None, "unknown"

    async def _async_start_meters(
        self,
        api_key: str,
        account_number: str,
        account: Mapping[str, Any],
        *,
        selected: Sequence[str] = (),
        gas_units: Mapping[str, str] | None = None,
    ) -> ConfigFlowResult:
        """Keep what was read and go to the meter selection (defaults: `selected`, else all)."""
        discovered = discover_meters(account)
        if not discovered:
            return self.async_abort(reason="no_meters")
        keys = [meter.key for meter in discovered]
        self._api_key, self._account_number, self._discovered = api_key, account_number, discovered
        self._selected_default = [key for key in keys if key in selected] or keys
        stored_units = gas_units or {}
        self._gas_unit_default = {
            meter.key: stored_units.get(meter.key, meter.default_unit)
            for meter in discovered
            if meter.kind == "gas"
        }
        return await self.async_step_octopus_meters()

    # ------------------------------------------------------------------------------ reconfigure

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


def _password() -> TextSelector:
    return TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


def _meters_schema(
    discovered: Sequence[DiscoveredMeter],
    selected: Sequence[str],
    gas_units: Mapping[str, str],
) -> vol.Schema:
    """Multi-select of every meter point (labels with MPAN/MPRN and serials), then gas units."""
    fields: dict[Any, Any] = {
        vol.Required(CONF_METERS, default=list(selected)): SelectSelector(
            SelectSelectorConfig(
                options=[SelectOptionDict(value=m.key, label=m.label) for m in discovered],
                multiple=True,
                mode=SelectSelectorMode.LIST,
            )
        )
    }
    for meter in discovered:
        if meter.kind == "gas":
            fields[
                vol.Required(
                    GAS_UNIT_PREFIX + meter.point,
                    default=gas_units.get(meter.key, meter.default_unit),
                )
            ] = SelectSelector(
                SelectSelectorConfig(options=list(GAS_UNITS), mode=SelectSelectorMode.LIST)
            )
    return vol.Schema(fields)


def _options_schema(options: dict[str, Any]) -> vol.Schema:
    def box(low: float, high: float, step: float | Literal["any"]) -> NumberSelector:
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
            **{
                vol.Optional(key, description={"suggested_value": options.get(key)}): (
                    TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
                    if key == CONF_ARCHIVE_SECRET_KEY
                    else TextSelector()
                )
                for key in ARCHIVE_CREDENTIAL_KEYS
            },
        }
    )


async def async_check_archive(hass: HomeAssistant, options: Mapping[str, Any]) -> str | None:
    """Open the archive root as the entry will; the reason when it cannot be used."""
    from .archive import ArchiveError, open_archive
    from .sinks import storage_options

    try:
        await hass.async_add_executor_job(
            lambda: open_archive(
                str(options[CONF_ARCHIVE_ROOT]),
                config_dir=hass.config.config_dir,
                storage_options=storage_options(options),
            )
        )
    except ArchiveError as err:
        return str(err)
    return None


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


def valid_tariff_override(code: str, kind: str) -> bool:
    """A tariff code of the meter's fuel (E-1R-AGILE-24-10-01-C) or a product code."""
    if (match := TARIFF_CODE_RE.fullmatch(code)) is not None:
        return match.group(1) == TARIFF_FUEL_LETTERS.get(kind)
    return PRODUCT_CODE_RE.fullmatch(code) is not None


def validate_tariff_overrides(
    meters: Sequence[Mapping[str, Any]], user_input: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """{meter key: upper-case code} for the non-empty fields; errors keyed by meter key."""
    overrides: dict[str, str] = {}
    errors: dict[str, str] = {}
    for meter in meters:
        key = str(meter["key"])
        code = str(user_input.get(key) or "").strip().upper()
        if not code:
            continue
        if valid_tariff_override(code, str(meter.get("kind"))):
            overrides[key] = code
        else:
            errors[key] = "invalid_tariff_code"
    return overrides, errors


class MeterLakeOptionsFlow(OptionsFlowWithReload):
    """Archive, backfill and gas conversion settings; the entry reloads when they change.

    Octopus entries go on to a second step with a tariff override per meter.
    """

    def __init__(self) -> None:
        """Shared options are kept here between the steps."""
        self._options: dict[str, Any] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every shared option."""
        errors: dict[str, str] = {}
        current = dict(self.config_entry.options)
        placeholders = {"error": ""}
        if user_input is not None:
            options, errors = validate_options(user_input)
            # A field left empty removes the stored credential.
            for key in ARCHIVE_CREDENTIAL_KEYS:
                current.pop(key, None)
            if not errors:
                problem = await async_check_archive(self.hass, options)
                if problem is not None:
                    errors[CONF_ARCHIVE_ROOT] = "archive_unreachable"
                    placeholders["error"] = problem
            if not errors:
                self._options = {**current, **options}
                if self.config_entry.data.get(CONF_SOURCE) == SOURCE_OCTOPUS:
                    return await self.async_step_tariffs()
                return self.async_create_entry(data=self._options)
            current |= user_input
        return self.async_show_form(
            step_id="init",
            data_schema=_options_schema(current),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_tariffs(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Octopus: an optional tariff or product code per configured meter; empty = none."""
        meters = [m for m in self.config_entry.data.get(CONF_METERS) or () if "key" in m]
        errors: dict[str, str] = {}
        if user_input is not None:
            overrides, errors = validate_tariff_overrides(meters, user_input)
            if not errors:
                return self.async_create_entry(
                    data={**self._options, CONF_TARIFF_OVERRIDES: overrides}
                )
            suggested: Mapping[str, Any] = user_input
        else:
            suggested = self._options.get(CONF_TARIFF_OVERRIDES) or {}
        schema = vol.Schema({vol.Optional(str(m["key"])): TextSelector() for m in meters})
        return self.async_show_form(
            step_id="tariffs",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={
                "meters": "\n".join(f"- `{m['key']}`: {m.get('name', '')}" for m in meters)
            },
        )
