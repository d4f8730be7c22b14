"""Actions: backfill (history in windows), rebuild_statistics and verify_archive."""

from __future__ import annotations

from datetime import date, datetime, timedelta
import itertools
import logging
import math
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import probatio as vol

from .const import DOMAIN, MAX_BACKFILL_DAYS
from .coordinator import (
    HOUR,
    MeterLakeConfigEntry,
    MeterLakeCoordinator,
    PollReport,
    archive_unreadable,
)
from .imports import IMPORT_SCHEMA, async_import_file
from .redact import scrub
from .sources.base import MeterInfo, floor_to

_LOGGER = logging.getLogger(__name__)

ATTR_CONFIG_ENTRY = "config_entry"
ATTR_DAYS = "days"
ATTR_FORCE = "force"
ATTR_METER = "meter"
ATTR_START = "start"
SERVICE_REBUILD_STATISTICS = "rebuild_statistics"
SERVICE_BACKFILL = "backfill"
SERVICE_VERIFY_ARCHIVE = "verify_archive"
SERVICE_ADD_READING = "add_reading"
SERVICE_ACKNOWLEDGE_ANOMALY = "acknowledge_anomaly"
SERVICE_IMPORT_FILE = "import_file"
ATTR_READING = "reading"
ATTR_TIME = "time"
ATTR_NEW_METER = "new_meter"
ATTR_FINAL_READING = "final_reading"
# A hand reading may be dated this much ahead (clocks of phones and servers differ).
FUTURE_SLACK = timedelta(minutes=5)
# Gap ranges listed per month in the verify_archive response (the count is always complete).
MAX_LISTED_GAPS = 20
BACKFILL_WINDOW = timedelta(days=30)

REBUILD_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY): cv.string,
        vol.Optional(ATTR_METER): cv.string,
        vol.Optional(ATTR_START): cv.date,
    }
)

VERIFY_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY): cv.string,
        vol.Optional(ATTR_METER): cv.string,
    }
)

ADD_READING_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_METER): cv.string,
        vol.Required(ATTR_READING): vol.Coerce(float),
        vol.Optional(ATTR_TIME): cv.datetime,
        vol.Optional(ATTR_NEW_METER, default=False): cv.boolean,
        vol.Optional(ATTR_FINAL_READING): vol.Coerce(float),
    }
)

ACKNOWLEDGE_SCHEMA = vol.Schema({vol.Required(ATTR_METER): cv.string})

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
    hass.services.async_register(
        DOMAIN,
        SERVICE_VERIFY_ARCHIVE,
        _async_verify_archive,
        schema=VERIFY_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_ADD_READING,
        _async_add_reading,
        schema=ADD_READING_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_IMPORT_FILE,
        async_import_file,
        schema=IMPORT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_ACKNOWLEDGE_ANOMALY,
        _async_acknowledge_anomaly,
        schema=ACKNOWLEDGE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_REBUILD_STATISTICS,
        _async_rebuild_statistics,
        schema=REBUILD_SCHEMA,
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


async def _async_add_reading(call: ServiceCall) -> ServiceResponse:
    """Record a hand reading of a meter from an entity (or a new meter put in); recompute."""
    from .analytics.meter_readings import reading_of

    key = call.data[ATTR_METER]
    follower = None
    for entry in call.hass.config_entries.async_loaded_entries(DOMAIN):
        candidate = entry.runtime_data.entity_meters
        if candidate is not None and key in candidate.meters.definitions:
            follower = candidate
    if follower is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_counter_meter",
            translation_placeholders={"meter": key},
        )
    now = dt_util.utcnow()
    when = call.data.get(ATTR_TIME) or now
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt_util.get_default_time_zone())
    when = dt_util.as_utc(when)
    if when > now + FUTURE_SLACK:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="reading_in_future",
            translation_placeholders={"time": dt_util.as_local(when).isoformat()},
        )
    for name in (ATTR_READING, ATTR_FINAL_READING):
        value = call.data.get(name)
        if value is not None and isinstance(reading_of(value), str):
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="reading_invalid",
                translation_placeholders={"reading": str(value)},
            )
    if ATTR_FINAL_READING in call.data and not call.data[ATTR_NEW_METER]:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="final_reading_without_new_meter"
        )
    response = await follower.async_add_reading(
        key,
        call.data[ATTR_READING],
        when,
        new_meter=call.data[ATTR_NEW_METER],
        final_reading=call.data.get(ATTR_FINAL_READING),
    )
    return response if call.return_response else None


async def _async_acknowledge_anomaly(call: ServiceCall) -> ServiceResponse:
    """Acknowledge a meter's anomalies: its Unusual consumption sensor turns off."""
    key = call.data[ATTR_METER]
    for entry in call.hass.config_entries.async_loaded_entries(DOMAIN):
        monitor = entry.runtime_data.anomalies
        if monitor is not None and key in monitor.meters:
            count = monitor.acknowledge(key)
            return {"meter": key, "acknowledged": count} if call.return_response else None
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="meter_not_found",
        translation_placeholders={"meter": key},
    )


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
    start = floor_to(now - timedelta(days=days), HOUR)
    report = PollReport(started=now)
    summary: dict[str, Any] = {}
    # One statistics import for all windows, not one re-accumulation per window.
    coordinator.statistics.hold()
    try:
        await _backfill_meters(
            coordinator,
            entry.title,
            start=start,
            now=now,
            force=force,
            report=report,
            summary=summary,
        )
    finally:
        coordinator.statistics.release()
    await coordinator.async_refresh_snapshots()
    if summary and all("error" in item for item in summary.values()):
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="backfill_failed",
            translation_placeholders={
                "error": scrub("; ".join(str(item["error"]) for item in summary.values()))
            },
        )
    return {"meters": summary}


async def _backfill_meters(
    coordinator: MeterLakeCoordinator,
    title: str,
    *,
    start: datetime,
    now: datetime,
    force: bool,
    report: PollReport,
    summary: dict[str, Any],
) -> None:
    for meter in coordinator.source.meters:
        fetched = skipped = 0
        missing = quiet = 0
        error: str | None = None
        for window_start, window_end in backfill_windows(start, now):
            if not force and await coordinator.async_is_stored(meter, window_start, window_end):
                skipped += 1
            else:
                try:
                    result = await coordinator.async_poll_meter(
                        meter, window_start, window_end, report
                    )
                except ConfigEntryAuthFailed as err:
                    raise HomeAssistantError(
                        translation_domain=DOMAIN,
                        translation_key="backfill_failed",
                        translation_placeholders={"error": scrub(str(err))},
                    ) from err
                except HomeAssistantError as err:
                    # This meter stops here (what was read is stored); the others go on.
                    error = scrub(str(err))
                    break
                fetched += 1
                slots = await coordinator.async_missing(meter, result, window_start, window_end)
                missing += slots.gap_slots
                quiet += slots.quiet_slots
            _LOGGER.info(
                "Backfill of %s, %s: %s to %s done (%d windows fetched, %d skipped)",
                title,
                meter.name,
                window_start.date(),
                window_end.date(),
                fetched,
                skipped,
            )
        if error is None:
            coordinator.failed.pop(meter.key, None)
        summary[meter.key] = {
            **({"error": error} if error is not None else {}),
            "windows_fetched": fetched,
            "windows_skipped": skipped,
            "rows_fetched": report.rows.get(meter.key, 0),
            "rows_stored": report.stored.get(meter.key, 0),
            "missing_intervals": missing,
            # An export meter's slots without a published row on days that have rows.
            "quiet_intervals": quiet,
        }


def backfill_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """30-day windows ending at `end`, oldest first; the oldest may be a little longer."""
    count = max(1, math.ceil((end - start - HOUR) / BACKFILL_WINDOW))
    bounds = [start] + [end - BACKFILL_WINDOW * k for k in range(count - 1, 0, -1)] + [end]
    return list(itertools.pairwise(bounds))


def _chosen_meters(entry: MeterLakeConfigEntry, wanted: str | None) -> list[MeterInfo]:
    """Every meter of the entry, or the one an action names (translated error if unknown)."""
    meters = list(entry.runtime_data.coordinator.source.meters)
    if wanted is None:
        return meters
    meters = [meter for meter in meters if meter.key == wanted]
    if not meters:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_meter",
            translation_placeholders={"meter": wanted, "title": entry.title},
        )
    return meters


async def _async_verify_archive(call: ServiceCall) -> ServiceResponse:
    """Report the archive per meter and month; unreadable files set aside, months re-fetched."""
    from .archive import ArchiveError

    entry = loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY])
    meters = _chosen_meters(entry, call.data.get(ATTR_METER))
    coordinator = entry.runtime_data.coordinator
    try:
        checks = await coordinator.async_verify_archive(meters)
    except ArchiveError as err:
        raise archive_unreadable(err) from err
    return {
        "meters": {
            key: {
                "missing": check.final.missing,
                "damaged_months": list(check.found.damaged_months),
                "refetched_months": list(check.refetched),
                "lost_months": list(check.lost_months),
                "months": [
                    {
                        "month": month.month,
                        "rows": month.rows,
                        "expected": month.expected,
                        "unreadable_files": [
                            path.rsplit("/", 1)[-1]
                            for before in check.found.months
                            if before.month == month.month
                            for path in before.unreadable
                        ],
                        "gaps": len(month.gaps),
                        "gap_ranges": [
                            [start.isoformat(), end.isoformat()]
                            for start, end in month.gaps[:MAX_LISTED_GAPS]
                        ],
                    }
                    for month in check.final.months
                ],
            }
            for key, check in checks.items()
        }
    }


async def _async_rebuild_statistics(call: ServiceCall) -> ServiceResponse:
    """Recompute statistics from stored intervals, for one meter or all of the entry."""
    entry = loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY])
    meters = _chosen_meters(entry, call.data.get(ATTR_METER))
    start_date: date | None = call.data.get(ATTR_START)
    start = None
    if start_date is not None:
        if start_date > dt_util.now().date():
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="start_in_future",
                translation_placeholders={"start": start_date.isoformat()},
            )
        start = dt_util.as_utc(dt_util.start_of_local_day(start_date))
    coordinator = entry.runtime_data.coordinator
    progress = coordinator.rebuild_progress
    if progress is not None and progress.finished is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="rebuild_running",
            translation_placeholders={"title": entry.title},
        )
    task = entry.async_create_background_task(
        call.hass,
        coordinator.async_rebuild(meters, start),
        f"{DOMAIN} rebuild statistics {entry.entry_id}",
    )
    if not call.return_response:
        # Runs on in the background, meter by meter; progress in the diagnostics and the log.
        return None
    summary: dict[str, Any] = dict(await task)
    if not any(item["intervals"] for item in summary.values()):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="nothing_stored",
            translation_placeholders={"title": entry.title},
        )
    return {"meters": summary}
