"""Today's and tomorrow's rate slots of a meter with a unit-rate table, for its entities.

The Current rate sensor lists them (`rates`), the Next rate sensor tells a flat tariff from an
unpublished one, and "Tomorrow's rates available" (Agile) is on when tomorrow is complete. The
list is computed off the event loop (analytics.rate_slots) after each poll and at each local
midnight of the meter, once per meter and day for a given rate table (shared by its entities).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
import threading
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .entity import MeterLakeEntity

if TYPE_CHECKING:
    import pandas as pd

    from .analytics.rate_slots import DayRates
    from .coordinator import MeterLakeCoordinator
    from .sources.base import MeterInfo

_LOGGER = logging.getLogger(__name__)

# Spot prices (Tibber) come in quarter-hours; supplier tariffs (Octopus) in half-hours.
SPOT_STEP: Final = timedelta(minutes=15)
TARIFF_STEP: Final = timedelta(minutes=30)


def slot_step(coordinator: MeterLakeCoordinator) -> timedelta:
    """The slot length of the coordinator's source."""
    return SPOT_STEP if coordinator.source.capabilities.spot_prices else TARIFF_STEP


def has_rate_table(coordinator: MeterLakeCoordinator, meter: MeterInfo) -> bool:
    """A meter whose source keeps a unit-rate table of its own (not grid or composed meters)."""
    return (
        meter.kind != "grid"
        and not coordinator.source.capabilities.derived
        and meter.currency is not None
    )


def rate_frames(
    coordinator: MeterLakeCoordinator, meter: MeterInfo
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The rates and agreements kept from the meter's newest fetch, None before there are any."""
    tables = coordinator.tables.get(meter.key)
    if tables is None or tables.rates is None or tables.agreements is None:
        return None
    return tables.rates, tables.agreements


@dataclass(slots=True)
class _Cached:
    rates: pd.DataFrame
    agreements: pd.DataFrame
    day: str
    found: DayRates


_CACHE: dict[str, _Cached] = {}
_CACHE_LOCK = threading.Lock()


def compute_day_rates(
    frames: tuple[pd.DataFrame, pd.DataFrame],
    meter: MeterInfo,
    now: datetime,
    step: timedelta,
) -> DayRates:
    """The meter's day list at `now` (executor); reused while table and local day stay."""
    from zoneinfo import ZoneInfo

    from .analytics.rate_slots import day_rates
    from .analytics.tariffs import NightWindow

    rates, agreements = frames
    tz = str(meter.time_zone)
    day = f"{now.astimezone(ZoneInfo(tz)).date()}/{step}"
    with _CACHE_LOCK:
        hit = _CACHE.get(meter.key)
    if hit is not None and hit.rates is rates and hit.agreements is agreements and hit.day == day:
        return hit.found
    found = day_rates(rates, agreements, meter.key, now, tz, step=step, night=NightWindow())
    with _CACHE_LOCK:
        _CACHE[meter.key] = _Cached(rates, agreements, day, found)
    return found


class FollowsRateList(MeterLakeEntity):
    """An entity of a meter that shows its day list (today and tomorrow) in some form."""

    day_rates: DayRates | None = None
    _midnight: CALLBACK_TYPE | None = None
    _gone = False

    async def async_added_to_hass(self) -> None:
        """Compute the list once before the first state is written."""
        await super().async_added_to_hass()
        await self._async_refresh(write=False)

    async def async_will_remove_from_hass(self) -> None:
        """Stop the midnight timer; a refresh still running writes nothing."""
        self._gone = True
        self._cancel_midnight()
        await super().async_will_remove_from_hass()

    @callback
    def _cancel_midnight(self) -> None:
        if self._midnight is not None:
            self._midnight()
            self._midnight = None

    @callback
    def _handle_coordinator_update(self) -> None:
        """A poll kept new tables: recompute the list, then write the state."""
        self.hass.async_create_task(self._async_refresh(), eager_start=True)

    async def _async_refresh(self, *, write: bool = True) -> None:
        frames = rate_frames(self.coordinator, self.meter)
        if frames is None:
            self.day_rates = None
        else:
            self.day_rates = await self.hass.async_add_executor_job(
                compute_day_rates, frames, self.meter, dt_util.utcnow(), slot_step(self.coordinator)
            )
        if self._gone:
            return
        self._cancel_midnight()
        if self.day_rates is not None:
            self._midnight = async_track_point_in_utc_time(
                self.hass, self._at_midnight, self.day_rates.next_midnight
            )
        if write:
            self.async_write_ha_state()

    @callback
    def _at_midnight(self, _now: datetime) -> None:
        """Tomorrow became today: the list moves on without waiting for a poll."""
        self._midnight = None
        self.hass.async_create_task(self._async_refresh(), eager_start=True)
