"""Actions `meterlake.get_rates` and `meterlake.cheapest_window`: rate slots for automations.

A meter is named by its key, as for the other actions. Slots are those of
analytics.rate_slots (half-hours, quarter-hours for spot prices), lying wholly in [start, end):
from the rate table kept in memory (the newest poll's rates, through tomorrow where
published), or, when the window starts before what memory covers, from the archive's `rates`
and `agreements` datasets with memory's rows winning where both have a row. A window spans at
most MAX_WINDOW. The cheapest window is searched among the slots wholly in [start, end): with
the default start (now) the half-hour running now is not a candidate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
import logging
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import probatio as vol

from .const import DOMAIN
from .rate_lists import has_rate_table, rate_frames, slot_step

if TYPE_CHECKING:
    import pandas as pd

    from .analytics.rate_slots import RateSlot
    from .archive import Archive
    from .coordinator import MeterLakeCoordinator
    from .sources.base import MeterInfo

_LOGGER = logging.getLogger(__name__)

SERVICE_GET_RATES: Final = "get_rates"
SERVICE_CHEAPEST_WINDOW: Final = "cheapest_window"
ATTR_METER: Final = "meter"
ATTR_START: Final = "start"
ATTR_END: Final = "end"
ATTR_DURATION: Final = "duration"
ATTR_CONTIGUOUS: Final = "contiguous"
# The longest window an action reads (31 days: 1,488 half-hours in a response at most).
MAX_WINDOW: Final = timedelta(days=31)


def duration(value: Any) -> timedelta:
    """A positive duration: "HH:MM[:SS]", a duration selector's dict, or a number of minutes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        found = timedelta(minutes=value)
    else:
        found = cv.time_period(value)
    if found <= timedelta(0):
        raise vol.Invalid("duration must be positive")
    return found


GET_RATES_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_METER): cv.string,
        vol.Optional(ATTR_START): cv.datetime,
        vol.Optional(ATTR_END): cv.datetime,
    }
)
CHEAPEST_WINDOW_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_METER): cv.string,
        vol.Required(ATTR_DURATION): duration,
        vol.Optional(ATTR_START): cv.datetime,
        vol.Optional(ATTR_END): cv.datetime,
        vol.Optional(ATTR_CONTIGUOUS, default=True): cv.boolean,
    }
)


def async_setup_rate_actions(hass: HomeAssistant) -> None:
    """Register both actions once, for all entries (they find the meter they are called for)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_RATES,
        _async_get_rates,
        schema=GET_RATES_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CHEAPEST_WINDOW,
        _async_cheapest_window,
        schema=CHEAPEST_WINDOW_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _target(hass: HomeAssistant, key: str) -> tuple[MeterLakeCoordinator, MeterInfo]:
    """The loaded meter an action names, if it has a unit-rate table."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is not ConfigEntryState.LOADED:
            continue
        coordinator: MeterLakeCoordinator = entry.runtime_data.coordinator
        for meter in coordinator.source.meters:
            if meter.key != key:
                continue
            if not has_rate_table(coordinator, meter):
                raise _invalid("meter_without_rates", meter=meter.name)
            return coordinator, meter
    raise _invalid("meter_not_found", meter=key)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt_util.get_default_time_zone())
    return dt_util.as_utc(value)


def _window(
    call: ServiceCall, meter: MeterInfo, default_start: datetime
) -> tuple[datetime, datetime]:
    """[start, end) of a call: end defaults to the end of tomorrow in the meter's time zone."""
    from .analytics.rate_slots import local_midnight

    start = _aware(call.data.get(ATTR_START)) or default_start
    tz = str(meter.time_zone)
    today = dt_util.utcnow().astimezone(ZoneInfo(tz)).date()
    end = _aware(call.data.get(ATTR_END)) or dt_util.as_utc(
        local_midnight(today + timedelta(days=2), tz)
    )
    if end <= start:
        raise _invalid("rates_end_before_start", start=start.isoformat(), end=end.isoformat())
    if end - start > MAX_WINDOW:
        raise _invalid("rates_window_too_long", days=str(MAX_WINDOW.days))
    return start, end


def _unit(meter: MeterInfo) -> str | None:
    return None if meter.currency is None else f"{meter.currency}/{meter.rate_unit or meter.unit}"


async def async_slots(
    hass: HomeAssistant,
    coordinator: MeterLakeCoordinator,
    meter: MeterInfo,
    start: datetime,
    end: datetime,
) -> tuple[list[RateSlot], str]:
    """Slots of [start, end) and where they came from ("memory" or "archive")."""
    from .analytics.rate_slots import rate_grid, rate_slots
    from .analytics.tariffs import NightWindow

    step = slot_step(coordinator)
    frames = rate_frames(coordinator, meter)

    def compute(rates: pd.DataFrame, agreements: pd.DataFrame) -> list[RateSlot]:
        return rate_slots(rates, agreements, meter.key, start, end, step=step, night=NightWindow())

    slots: list[RateSlot] = []
    if frames is not None:
        slots = await hass.async_add_executor_job(compute, *frames)
    grid = rate_grid(start, end, step)
    if grid and (not slots or slots[0].start > grid[0]):
        from .archive import ArchiveError

        try:
            archive = await coordinator.archive.async_open()
            merged = await hass.async_add_executor_job(_with_archive, archive, meter, frames, end)
        except ArchiveError as err:
            _LOGGER.warning("Cannot read archived rates of %s: %s", meter.key, err)
            merged = None
        if merged is not None:
            return await hass.async_add_executor_job(compute, *merged), "archive"
    return slots, "memory"


def _with_archive(
    archive: Archive,
    meter: MeterInfo,
    frames: tuple[pd.DataFrame, pd.DataFrame] | None,
    end: datetime,
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Archived agreements and rates of the meter, memory's rows after them (executor)."""
    import pandas as pd

    from .analytics.schema import AGREEMENT_COLUMNS, RATE_COLUMNS

    agreements = archive.read_agreements(meter.key, skip_corrupt=True)
    parts = [agreements[list(AGREEMENT_COLUMNS)]]
    if frames is not None:
        parts.append(frames[1][list(AGREEMENT_COLUMNS)])
    all_agreements = pd.concat(parts, ignore_index=True)
    tariffs = sorted(set(all_agreements["tariff"].dropna().tolist()))
    rate_parts = [archive.read_rates(meter.supplier, tariff, end) for tariff in tariffs]
    if frames is not None:
        rate_parts.append(frames[0][list(RATE_COLUMNS)])
    rate_parts = [part for part in rate_parts if not part.empty]
    if all_agreements.empty or not rate_parts:
        return None
    rates = pd.concat(rate_parts, ignore_index=True)
    for column in ("valid_from", "valid_to"):
        rates[column] = pd.to_datetime(rates[column], utc=True)
        all_agreements[column] = pd.to_datetime(all_agreements[column], utc=True)
    return rates, all_agreements


async def _async_get_rates(call: ServiceCall) -> ServiceResponse:
    """The meter's slots of [start, end) (default: today and tomorrow, local days)."""
    from .analytics.rate_slots import local_midnight

    hass = call.hass
    coordinator, meter = _target(hass, str(call.data[ATTR_METER]))
    tz = str(meter.time_zone)
    today = dt_util.utcnow().astimezone(ZoneInfo(tz)).date()
    start, end = _window(call, meter, dt_util.as_utc(local_midnight(today, tz)))
    slots, origin = await async_slots(hass, coordinator, meter, start, end)
    if not slots:
        raise _invalid("rates_not_published", meter=meter.name)
    return {
        "meter": meter.key,
        "unit": _unit(meter),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "source": origin,
        "slots": [slot.as_dict() for slot in slots],
    }


async def _async_cheapest_window(call: ServiceCall) -> ServiceResponse:
    """The cheapest block (or set) of slots lasting `duration` within [start, end)."""
    from .analytics.rate_slots import cheapest, slots_needed

    hass = call.hass
    coordinator, meter = _target(hass, str(call.data[ATTR_METER]))
    start, end = _window(call, meter, dt_util.utcnow())
    wanted: timedelta = call.data[ATTR_DURATION]
    if wanted > end - start:
        raise _invalid(
            "rates_duration_longer_than_window",
            duration=str(wanted),
            window=str(end - start),
        )
    contiguous = bool(call.data[ATTR_CONTIGUOUS])
    slots, origin = await async_slots(hass, coordinator, meter, start, end)
    if not slots:
        raise _invalid("rates_not_published", meter=meter.name)
    step = slot_step(coordinator)
    # Up to 1,488 slots of a 31-day window: a few ms, off the loop all the same.
    found = await hass.async_add_executor_job(
        partial(cheapest, slots, wanted, contiguous=contiguous, step=step)
    )
    if found is None:
        raise _invalid(
            "rates_not_enough",
            needed=str(slots_needed(wanted, step)[0]),
            published=str(len(slots)),
        )
    return {
        "meter": meter.key,
        "unit": _unit(meter),
        "contiguous": contiguous,
        "duration_minutes": wanted / timedelta(minutes=1),
        "slot_minutes": step / timedelta(minutes=1),
        "rounded_up": found.rounded_up,
        "start": found.slots[0].start.isoformat(),
        "end": found.slots[-1].end.isoformat(),
        "average": found.average,
        "source": origin,
        "slots": [slot.as_dict() for slot in found.slots],
    }
