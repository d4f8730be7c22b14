"""Actions: `meterlake.backfill` fetches history in windows for one entry."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import probatio as vol

from .const import DOMAIN, MAX_BACKFILL_DAYS
from .coordinator import MeterLakeConfigEntry, PollReport

_LOGGER = logging.getLogger(__name__)

ATTR_CONFIG_ENTRY = "config_entry"
ATTR_DAYS = "days"
ATTR_FORCE = "force"
SERVICE_BACKFILL = "backfill"
BACKFILL_WINDOW = timedelta(days=30)

BACKFILL_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY): cv.string,
        vol.Required(ATTR_DAYS): vol.All(vol.Coerce(int)),
        vol.Optional(ATTR_FORCE, default=False): cv.boolean,
    }
)


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions once, for all entries."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_BACKFILL,
        _async_backfill,
        schema=BACKFILL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


def loaded_entry(hass: HomeAssistant, entry_id: str) -> MeterLakeConfigEntry:
    """The MeterLake entry an action names; translated errors when it is unknown or unloaded."""
    entry: MeterLakeConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry


async def _async_backfill(call: ServiceCall) -> ServiceResponse:
    """Fetch `days` of history per meter in 30-day windows, oldest first."""
    entry = loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY])
    days: int = call.data[ATTR_DAYS]
    if not 1 <= days <= MAX_BACKFILL_DAYS:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="days_out_of_range",
            translation_placeholders={"days": str(days), "max": str(MAX_BACKFILL_DAYS)},
        )
    force: bool = call.data[ATTR_FORCE]
    coordinator = entry.runtime_data.coordinator
    now = dt_util.utcnow()
    start = now - timedelta(days=days)
    report = PollReport(started=now)
    summary: dict[str, Any] = {}
    for meter in coordinator.source.meters:
        fetched = skipped = 0
        missing = 0
        window_start = start
        while window_start < now:
            window_end = min(window_start + BACKFILL_WINDOW, now)
            if not force and await coordinator.async_is_stored(meter, window_start, window_end):
                skipped += 1
            else:
                try:
                    result = await coordinator.async_poll_meter(
                        meter, window_start, window_end, report
                    )
                except HomeAssistantError as err:
                    raise HomeAssistantError(
                        translation_domain=DOMAIN,
                        translation_key="backfill_failed",
                        translation_placeholders={"error": str(err)},
                    ) from err
                fetched += 1
                missing += await coordinator.async_missing(meter, result, window_start, window_end)
            _LOGGER.info(
                "Backfill of %s: %s to %s done (%d windows fetched, %d skipped)",
                entry.title,
                window_start.date(),
                window_end.date(),
                fetched,
                skipped,
            )
            window_start = window_end
        rows = report.rows.get(meter.key, 0)
        summary[meter.key] = {
            "windows_fetched": fetched,
            "windows_skipped": skipped,
            "rows_fetched": rows,
            "rows_stored": rows,
            "missing_intervals": missing,
        }
    await coordinator.async_refresh_snapshots()
    return {"meters": summary}
