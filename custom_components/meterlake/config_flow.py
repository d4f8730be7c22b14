"""Config flow: a menu of sources, one step per source; reauth, reconfigure, shared options.

Octopus: `octopus` (API key + account number, tested against the account endpoint) ->
`octopus_meters` (which meter points to follow, and the unit of each gas meter, which the REST
API does not give). Reauth asks a new key for the same account; reconfigure re-reads the account
and lets the user change the meters. Octopus options add a second step, `tariffs`, with an
optional tariff or product code per meter.

Tibber: `tibber` (access token, tested by reading the account; its user id is the unique id) ->
`tibber_homes` (which homes to follow). Reauth (`reauth_confirm_tibber`) takes a new token of
the same user; reconfigure re-reads the account and lets the user change the homes.

eCO2mix: `eco2mix` (national or one of the 12 regions; the public endpoint is tried once).
Reconfigure only confirms and reloads: the perimeter is the entry's identity. eCO2mix options
add a second step, `co2`, naming the electricity meter of another entry whose emissions the
entry computes (national perimeter only: the regional datasets carry no carbon intensity).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
import logging
import re
from typing import Any, Final, Literal

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_ACCESS_TOKEN, CONF_API_KEY
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import issue_registry as ir
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
from homeassistant.util import dt as dt_util
import probatio as vol

from .analytics.schema import ANOMALY_KINDS
from .const import (
    ARCHIVE_CREDENTIAL_KEYS,
    ARCHIVE_SECRET_KEYS,
    CONF_ACCOUNT_NUMBER,
    CONF_ANOMALIES,
    CONF_ARCHIVE_ANONYMOUS,
    CONF_ARCHIVE_ROOT,
    CONF_BACKFILL_DAYS,
    CONF_CO2_METER,
    CONF_GAS_CALORIFIC_VALUE,
    CONF_GAS_VOLUME_CORRECTION,
    CONF_HOMES,
    CONF_KEEP_RAW_DAYS,
    CONF_METERS,
    CONF_PERIMETER,
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
    PERIMETER_NATIONAL,
    SOURCE_COMPOSED,
    SOURCE_DEMO,
    SOURCE_ECO2MIX,
    SOURCE_OCTOPUS,
    SOURCE_TIBBER,
)
from .coordinator import MeterLakeConfigEntry
from .emissions import linkable_meters
from .options import (
    ANOMALY_BOUNDS,
    DEFAULT_OPTIONS,
    invalid_options_issue_id,
    validate_options,
)
from .redact import scrub
from .sources.base import (
    HttpClient,
    RetryPolicy,
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
)
from .sources.composed import TYPE_MASTER, TYPE_PREFERRED, TYPE_VIRTUAL
from .sources.eco2mix import REGIONS, async_check
from .sources.octopus import (
    TARIFF_CODE_RE,
    DiscoveredMeter,
    async_fetch_account,
    discover_meters,
    meter_config,
    meter_infos,
    normalize_account_number,
)
from .sources.octopus_account import (
    GAS_UNITS,
    SUPPLIER as OCTOPUS_SUPPLIER,
    async_suggest_gas_unit,
)
from .sources.tibber import TibberAccount, TibberHome, async_read_account, home_config
from .storage import check_storage_fields, storage_options
from .subentry_flow import ComposedMeterFlow

_LOGGER = logging.getLogger(__name__)

SOURCES = [SOURCE_DEMO, SOURCE_OCTOPUS, SOURCE_TIBBER, SOURCE_ECO2MIX, SOURCE_COMPOSED]

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
TIBBER_TOKEN_URL: Final = "https://developer.tibber.com/settings/access-token"
ECO2MIX_NATIONAL_NAME: Final = "France"
# The co2 step's empty choice: no meter, no emissions computed (label translated through the
# selector's translation key; the English label is the fallback).
NO_CO2_METER: Final = "none"
NO_CO2_METER_LABEL: Final = "None"


def default_options() -> dict[str, Any]:
    """Options every new entry starts with."""
    return dict(DEFAULT_OPTIONS)


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
        self._access_token = ""
        self._tibber_account: TibberAccount | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: MeterLakeConfigEntry) -> MeterLakeOptionsFlow:
        """Options shared by every source."""
        if config_entry.data.get(CONF_SOURCE) == SOURCE_COMPOSED:
            # Its update listener reloads it (subentries change it too).
            return ComposedOptionsFlow()
        return MeterLakeOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry[Any]
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Composed, entity and file meters are subentries of the Composed meters entry."""
        # Imported here: this method is the flow's only use of them.
        from .entity_meter_flow import EntityMeterFlow
        from .file_meter_flow import FileMeterFlow
        from .sources.entity_meter import TYPE_ENTITY
        from .sources.file_meter import TYPE_FILE

        if config_entry.data.get(CONF_SOURCE) != SOURCE_COMPOSED:
            return {}
        types: dict[str, type[ConfigSubentryFlow]] = dict.fromkeys(
            (TYPE_VIRTUAL, TYPE_MASTER, TYPE_PREFERRED), ComposedMeterFlow
        )
        return types | {TYPE_ENTITY: EntityMeterFlow, TYPE_FILE: FileMeterFlow}

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
            # New demo entries have the sub-meters that composed meters are tried with.
            data={CONF_SOURCE: SOURCE_DEMO, "submeters": True},
            options=default_options(),
        )

    async def async_step_composed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Composed meters: one entry per installation; each meter is one of its subentries."""
        await self.async_set_unique_id(SOURCE_COMPOSED)
        self._abort_if_unique_id_configured()
        if user_input is None:
            return self.async_show_form(step_id="composed", data_schema=vol.Schema({}))
        return self.async_create_entry(
            title="Composed meters",
            data={CONF_SOURCE: SOURCE_COMPOSED},
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
        """The supplier refused the stored credentials (the coordinator raised auth failed).

        Octopus asks for a new API key (`reauth_confirm`), Tibber for a new token.
        """
        source = entry_data.get(CONF_SOURCE)
        if source == SOURCE_TIBBER:
            return await self.async_step_reauth_confirm_tibber()
        if source == SOURCE_OCTOPUS:
            return await self.async_step_reauth_confirm()
        # The demo and eCO2mix have no credentials to renew.
        return self.async_abort(reason="reauth_not_supported")

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
            meter.key: stored_units.get(meter.key)
            or await self._async_gas_unit_default(api_key, meter, account)
            for meter in discovered
            if meter.kind == "gas"
        }
        return await self.async_step_octopus_meters()

    async def _async_gas_unit_default(
        self, api_key: str, meter: DiscoveredMeter, account: Mapping[str, Any]
    ) -> str:
        """The unit the last year of readings fits against the annual quantity, else by serial.

        The user still confirms it in the form; a failed read just keeps the serial's default.
        """
        from .analytics.gas_units import kwh_per_m3

        client = HttpClient(
            async_get_clientsession(self.hass),
            OCTOPUS_SUPPLIER,
            policy=FLOW_RETRY_POLICY,
            redact=(api_key, meter.point, *meter.serials),
        )
        try:
            suggested = await async_suggest_gas_unit(
                client,
                api_key,
                meter,
                account,
                now=dt_util.utcnow(),
                kwh_per_m3=kwh_per_m3(
                    calorific_value=DEFAULT_GAS_CALORIFIC_VALUE,
                    correction=DEFAULT_GAS_VOLUME_CORRECTION,
                ),
            )
        except SourceError:
            suggested = None
        return suggested or meter.default_unit

    # ------------------------------------------------------------------------------ Tibber

    async def async_step_tibber(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Access token; the account is read with it before going on to the homes."""
        errors: dict[str, str] = {}
        if user_input is not None:
            token = str(user_input[CONF_ACCESS_TOKEN]).strip()
            account, error = await self._async_read_tibber(token)
            if account is None:
                errors["base"] = error
            else:
                await self.async_set_unique_id(account.user_id)
                self._abort_if_unique_id_configured()
                if not account.homes:
                    errors["base"] = "no_homes"
                else:
                    return await self._async_start_homes(token, account)
        return self.async_show_form(
            step_id="tibber",
            data_schema=vol.Schema({vol.Required(CONF_ACCESS_TOKEN): _password()}),
            errors=errors,
            description_placeholders={"token_url": TIBBER_TOKEN_URL},
        )

    async def async_step_tibber_homes(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Which homes of the account to follow; at least one."""
        account = self._tibber_account
        assert account is not None  # only reached after the account was read
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = {str(home_id) for home_id in user_input.get(CONF_HOMES) or ()}
            if not chosen:
                errors[CONF_HOMES] = "no_homes_selected"
            else:
                data = {
                    CONF_SOURCE: SOURCE_TIBBER,
                    CONF_ACCESS_TOKEN: self._access_token,
                    CONF_HOMES: [home_config(home) for home in account.homes if home.id in chosen],
                }
                if self.source == SOURCE_RECONFIGURE:
                    return self.async_update_reload_and_abort(
                        self._get_reconfigure_entry(), data=data
                    )
                return self.async_create_entry(
                    title=f"Tibber ({account.name})" if account.name else "Tibber",
                    data=data,
                    options=default_options(),
                )
            self._selected_default = []
        return self.async_show_form(
            step_id="tibber_homes",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_HOMES, default=list(self._selected_default)): SelectSelector(
                        SelectSelectorConfig(
                            options=_home_labels(account.homes),
                            multiple=True,
                            mode=SelectSelectorMode.LIST,
                        )
                    )
                }
            ),
            errors=errors,
        )

    async def async_step_reauth_confirm_tibber(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new access token of the same Tibber user, tested before it replaces the old one."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            token = str(user_input[CONF_ACCESS_TOKEN]).strip()
            account, error = await self._async_read_tibber(token)
            if account is None:
                errors["base"] = error
            else:
                await self.async_set_unique_id(account.user_id)
                self._abort_if_unique_id_mismatch(reason="account_mismatch")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_ACCESS_TOKEN: token}
                )
        return self.async_show_form(
            step_id="reauth_confirm_tibber",
            data_schema=vol.Schema({vol.Required(CONF_ACCESS_TOKEN): _password()}),
            errors=errors,
            # HA adds the entry title as {name}.
            description_placeholders={"token_url": TIBBER_TOKEN_URL},
        )

    async def async_step_reconfigure_tibber(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Read the account again (stored token, or a new one of the same user); then the homes."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            token = str(user_input.get(CONF_ACCESS_TOKEN) or "").strip() or str(
                entry.data[CONF_ACCESS_TOKEN]
            )
            account, error = await self._async_read_tibber(token)
            if account is None:
                errors["base"] = error
            else:
                await self.async_set_unique_id(account.user_id)
                self._abort_if_unique_id_mismatch(reason="account_mismatch")
                if not account.homes:
                    errors["base"] = "no_homes"
                else:
                    stored = [str(home["id"]) for home in entry.data.get(CONF_HOMES) or ()]
                    return await self._async_start_homes(token, account, selected=stored)
        return self.async_show_form(
            step_id="reconfigure_tibber",
            data_schema=vol.Schema({vol.Optional(CONF_ACCESS_TOKEN): _password()}),
            errors=errors,
            description_placeholders={"token_url": TIBBER_TOKEN_URL},
        )

    async def _async_read_tibber(self, token: str) -> tuple[TibberAccount | None, str]:
        """The account (user id, name, homes), or None and the error key the form shows."""
        try:
            return (
                await async_read_account(
                    async_get_clientsession(self.hass), token, policy=FLOW_RETRY_POLICY
                ),
                "",
            )
        except SourceAuthError:
            return None, "invalid_auth"
        except SourceError:
            # Network, timeout, 5xx, 429, a malformed payload, a GraphQL error.
            return None, "cannot_connect"
        except Exception:
            _LOGGER.exception("Unexpected error while reading the Tibber account")
            return None, "unknown"

    async def _async_start_homes(
        self, token: str, account: TibberAccount, *, selected: Sequence[str] = ()
    ) -> ConfigFlowResult:
        """Keep what was read and go to the homes (defaults: `selected` still listed, else all)."""
        ids = [home.id for home in account.homes]
        self._access_token, self._tibber_account = token, account
        self._selected_default = [home_id for home_id in ids if home_id in selected] or ids
        return await self.async_step_tibber_homes()

    # ------------------------------------------------------------------------------ eCO2mix

    async def async_step_eco2mix(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """France or one region; the public endpoint is tried once before the entry is made."""
        errors: dict[str, str] = {}
        if user_input is not None:
            perimeter = str(user_input[CONF_PERIMETER])
            await self.async_set_unique_id(f"{SOURCE_ECO2MIX}_{perimeter}")
            self._abort_if_unique_id_configured()
            error = await self._async_check_eco2mix(perimeter)
            if error is None:
                return self.async_create_entry(
                    title=f"eCO2mix {perimeter_name(perimeter)}",
                    data={CONF_SOURCE: SOURCE_ECO2MIX, CONF_PERIMETER: perimeter},
                    options=default_options(),
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="eco2mix",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_PERIMETER,
                        default=(user_input or {}).get(CONF_PERIMETER, PERIMETER_NATIONAL),
                    ): SelectSelector(
                        SelectSelectorConfig(
                            options=[
                                SelectOptionDict(
                                    value=PERIMETER_NATIONAL, label=ECO2MIX_NATIONAL_NAME
                                ),
                                *(
                                    SelectOptionDict(value=code, label=name)
                                    for code, name in sorted(
                                        REGIONS.items(), key=lambda item: item[1]
                                    )
                                ),
                            ],
                            mode=SelectSelectorMode.DROPDOWN,
                        )
                    )
                }
            ),
            errors=errors,
        )

    async def async_step_reconfigure_eco2mix(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The perimeter is the entry's identity: nothing to change, confirm and reload."""
        entry = self._get_reconfigure_entry()
        if user_input is None:
            return self.async_show_form(
                step_id="reconfigure_eco2mix",
                data_schema=vol.Schema({}),
                description_placeholders={
                    "perimeter": perimeter_name(str(entry.data[CONF_PERIMETER]))
                },
            )
        return self.async_update_reload_and_abort(entry)

    async def _async_check_eco2mix(self, perimeter: str) -> str | None:
        """None when the perimeter's dataset answers, else the error key the form shows."""
        try:
            await async_check(
                async_get_clientsession(self.hass), perimeter, policy=FLOW_RETRY_POLICY
            )
        except SourceError:
            return "cannot_connect"
        except Exception:
            _LOGGER.exception("Unexpected error while trying the eCO2mix endpoint")
            return "unknown"
        return None

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

    async def async_step_reconfigure_composed(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Each composed meter is reconfigured as its subentry: confirm and recompute all."""
        if user_input is None:
            return self.async_show_form(step_id="reconfigure_composed", data_schema=vol.Schema({}))
        return self.async_update_reload_and_abort(self._get_reconfigure_entry())


def _password() -> TextSelector:
    return TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


def _home_labels(homes: Sequence[TibberHome]) -> list[SelectOptionDict]:
    """One option per home, labelled with its name (nickname or street address).

    Two homes of the same name are told apart by the start of their id.
    """
    names = [home.name for home in homes]
    return [
        SelectOptionDict(
            value=home.id,
            label=f"{home.name} ({home.id[:8]})" if names.count(home.name) > 1 else home.name,
        )
        for home in homes
    ]


def perimeter_name(perimeter: str) -> str:
    """`France` for the national perimeter, else the region's name (its code if unknown)."""
    if perimeter == PERIMETER_NATIONAL:
        return ECO2MIX_NATIONAL_NAME
    return REGIONS.get(perimeter, perimeter)


def co2_meter_options(hass: HomeAssistant) -> list[SelectOptionDict]:
    """The meters an eCO2mix entry can compute the emissions of, labelled with their entry."""
    return [
        SelectOptionDict(value=item.meter.key, label=f"{item.meter.name} ({item.entry_title})")
        for item in linkable_meters(hass)
    ]


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
                    BooleanSelector()
                    if key == CONF_ARCHIVE_ANONYMOUS
                    # Secrets are masked, the JSON key too: pasted into one line it loses only
                    # the line breaks between its fields, which JSON does not need (the private
                    # key's own line breaks are written \n inside its string).
                    else TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
                    if key in ARCHIVE_SECRET_KEYS
                    else TextSelector()
                )
                for key in ARCHIVE_CREDENTIAL_KEYS
            },
            vol.Optional(CONF_ANOMALIES): section(
                _anomaly_schema(options.get(CONF_ANOMALIES) or {}), {"collapsed": True}
            ),
        }
    )


def _anomaly_schema(current: Mapping[str, Any]) -> vol.Schema:
    """The anomaly detectors to run and their tunables (defaults: the detectors' own)."""
    from .analytics.anomalies import AnomalySettings

    defaults = AnomalySettings()

    def box(key: str, step: float | Literal["any"], default: float) -> Any:
        low, high = ANOMALY_BOUNDS[key]
        return {
            vol.Required(key, default=current.get(key, default)): NumberSelector(
                NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
            )
        }

    return vol.Schema(
        {
            vol.Required(
                "detectors", default=list(current.get("detectors", ANOMALY_KINDS))
            ): SelectSelector(
                SelectSelectorConfig(
                    options=list(ANOMALY_KINDS),
                    multiple=True,
                    translation_key="anomaly_detectors",
                )
            ),
            **box("high_day_factor", "any", defaults.high_day_factor),
            **box("high_day_window_days", 1, defaults.high_day_window_days),
            **box("spike_sensitivity", "any", defaults.spike_sensitivity),
            **box("base_load_factor", "any", defaults.base_load_factor),
            **box("max_delay_hours", 1, 0),
        }
    )


async def async_check_archive(hass: HomeAssistant, options: Mapping[str, Any]) -> str | None:
    """Open the archive root as the entry will, with real I/O; the reason when it cannot be used.

    Opening proves an object store's credentials with a call that fails cleanly
    (`open_archive`); then a small hidden object is written and deleted, so a read-only key
    or token is refused here rather than at the first poll. The reason has no secrets.
    """
    from .archive import ArchiveError, open_archive

    secrets = [str(options.get(key) or "") for key in ARCHIVE_SECRET_KEYS]

    def check() -> None:
        archive = open_archive(
            str(options[CONF_ARCHIVE_ROOT]),
            config_dir=hass.config.config_dir,
            storage_options=storage_options(options),
        )
        archive.check_writable()

    try:
        await hass.async_add_executor_job(check)
    except ArchiveError as err:
        return scrub(str(err), secrets)
    except (OSError, RuntimeError, ValueError) as err:
        # Path oddities open_archive does not wrap, e.g. `~nobody/lake` (no such user).
        return scrub(str(err) or type(err).__name__, secrets)
    return None


async def async_validate_options_form(
    hass: HomeAssistant, stored: Mapping[str, Any], user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Check a submitted shared-options form (options flow and repair) as the entry will use it.

    Returns the options to save (the stored ones updated with the form's values; a credential
    field left empty removes the stored one), the errors keyed by field, and the form's
    description placeholders ({error}: why the archive cannot be used).
    """
    options, errors = validate_options(user_input)
    merged = {key: value for key, value in stored.items() if key not in ARCHIVE_CREDENTIAL_KEYS}
    merged |= options
    if merged.get(CONF_ARCHIVE_ANONYMOUS) is not True:
        merged.pop(CONF_ARCHIVE_ANONYMOUS, None)
    if not errors:
        # Each store takes its own fields; one of another store is refused, not ignored.
        errors = check_storage_fields(merged)
    placeholders = {"error": ""}
    if not errors and (problem := await async_check_archive(hass, merged)) is not None:
        errors[CONF_ARCHIVE_ROOT] = "archive_unreachable"
        placeholders["error"] = problem
    return merged, errors, placeholders


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
            options, errors, placeholders = await async_validate_options_form(
                self.hass, current, user_input
            )
            if not errors:
                self._options = options
                # The user has reviewed the options: an "options were reset" repair is done.
                ir.async_delete_issue(
                    self.hass, DOMAIN, invalid_options_issue_id(self.config_entry.entry_id)
                )
                if self.config_entry.data.get(CONF_SOURCE) == SOURCE_OCTOPUS:
                    return await self.async_step_tariffs()
                if self.config_entry.data.get(CONF_SOURCE) == SOURCE_ECO2MIX:
                    return await self.async_step_co2()
                return self.async_create_entry(data=self._options)
            # Shown again as typed (credentials included: an empty one stays empty).
            current = options | user_input
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

    async def async_step_co2(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """eCO2mix: the electricity meter (of another entry) whose emissions to compute; or none.

        Only the national dataset publishes a carbon intensity, so a regional entry takes none.
        """
        perimeter = str(self.config_entry.data[CONF_PERIMETER])
        errors: dict[str, str] = {}
        if user_input is not None:
            meter = str(user_input.get(CONF_CO2_METER) or "")
            if meter == NO_CO2_METER:
                meter = ""
            if meter and perimeter != PERIMETER_NATIONAL:
                errors[CONF_CO2_METER] = "co2_national_only"
            else:
                options = dict(self._options)
                options.pop(CONF_CO2_METER, None)
                if meter:
                    options[CONF_CO2_METER] = meter
                return self.async_create_entry(data=options)
            current = meter or NO_CO2_METER
        else:
            current = str(self._options.get(CONF_CO2_METER) or NO_CO2_METER)
        meters = co2_meter_options(self.hass)
        if current != NO_CO2_METER and current not in {option["value"] for option in meters}:
            # The meter's entry is not loaded now: keep it choosable rather than drop it unseen.
            meters.append(SelectOptionDict(value=current, label=current))
        return self.async_show_form(
            step_id="co2",
            data_schema=vol.Schema(
                {
                    # Suggested, not a default: leaving the field empty means no meter.
                    vol.Optional(
                        CONF_CO2_METER, description={"suggested_value": current}
                    ): SelectSelector(
                        SelectSelectorConfig(
                            options=[
                                SelectOptionDict(value=NO_CO2_METER, label=NO_CO2_METER_LABEL),
                                *meters,
                            ],
                            mode=SelectSelectorMode.DROPDOWN,
                            translation_key=CONF_CO2_METER,
                        )
                    )
                }
            ),
            errors=errors,
            description_placeholders={"perimeter": perimeter_name(perimeter)},
        )


class ComposedOptionsFlow(MeterLakeOptionsFlow):
    """The shared options of the Composed meters entry, reloaded by its update listener."""

    automatic_reload = False
