"""The lake: one installation-wide registry of every meter of every entry, and its rows.

Entries publish to the lake; derived meters (composed meters, emissions) read from it. No
entry imports another entry's coordinator: the lake holds each meter's *provider* behind a
small protocol (stored rows and a watermark), and a dispatcher signal tells readers which rows
changed (docs/architecture.md, "The lake").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
import logging
from typing import TYPE_CHECKING, Protocol

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN

if TYPE_CHECKING:
    import pandas as pd

    from .sources.base import MeterInfo

_LOGGER = logging.getLogger(__name__)

DATA_LAKE: HassKey[Lake] = HassKey(f"{DOMAIN}_lake")
# (meter key, start, end): rows of the meter starting in [start, end) were stored or replaced.
SIGNAL_ROWS_CHANGED = f"{DOMAIN}_rows_changed"
# (meter key | None): the registry changed (an entry loaded or unloaded its meters).
SIGNAL_REGISTRY_CHANGED = f"{DOMAIN}_registry_changed"


class RowProvider(Protocol):
    """What an entry offers the lake for each of its meters (the coordinator, in practice)."""

    async def async_stored_rows(
        self, meter: MeterInfo, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        """Stored intervals of `meter` starting in [start, end) (memory, else the archive)."""

    def watermark(self, meter_key: str) -> datetime | None:
        """End of the newest interval of the meter that every sink took."""


@dataclass(frozen=True, slots=True)
class LakeMeter:
    """One registered meter: what it is, which entry owns it, where its rows come from."""

    meter: MeterInfo
    entry_id: str
    entry_title: str
    provider: RowProvider


class Lake:
    """Registry of every loaded meter, its rows and its watermark; one per installation."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass
        self._meters: dict[str, LakeMeter] = {}

    def register(
        self, entry_id: str, entry_title: str, meters: list[MeterInfo], provider: RowProvider
    ) -> None:
        """Add an entry's meters (setup); readers hear about it through the registry signal."""
        for meter in meters:
            known = self._meters.get(meter.key)
            if known is not None and known.entry_id != entry_id:
                _LOGGER.warning(
                    "Meter %s is offered by two entries (%s and %s); keeping the first",
                    meter.key,
                    known.entry_title,
                    entry_title,
                )
                continue
            self._meters[meter.key] = LakeMeter(meter, entry_id, entry_title, provider)
        async_dispatcher_send(self.hass, SIGNAL_REGISTRY_CHANGED, None)

    def unregister(self, entry_id: str) -> None:
        """Remove an entry's meters (unload)."""
        gone = [key for key, item in self._meters.items() if item.entry_id == entry_id]
        for key in gone:
            del self._meters[key]
        if gone:
            async_dispatcher_send(self.hass, SIGNAL_REGISTRY_CHANGED, None)

    def get(self, key: str) -> LakeMeter | None:
        """A registered meter, None when no loaded entry offers it."""
        return self._meters.get(key)

    def __iter__(self) -> Iterator[LakeMeter]:
        """Every registered meter, in registration order."""
        return iter(list(self._meters.values()))

    def watermark(self, key: str) -> datetime | None:
        """How far the meter's rows are complete, None when unknown or unregistered."""
        item = self._meters.get(key)
        return None if item is None else item.provider.watermark(key)

    async def async_rows(
        self, key: str, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        """Rows of a registered meter starting in [start, end); None when unregistered."""
        item = self._meters.get(key)
        if item is None:
            return None
        return await item.provider.async_stored_rows(item.meter, start, end)

    @callback
    def rows_changed(self, key: str, start: datetime, end: datetime) -> None:
        """Tell every reader that rows of `key` in [start, end) were stored or replaced."""
        async_dispatcher_send(self.hass, SIGNAL_ROWS_CHANGED, key, start, end)


def async_get_lake(hass: HomeAssistant) -> Lake:
    """The installation's lake (made on first use; async_setup makes it at start)."""
    lake = hass.data.get(DATA_LAKE)
    if lake is None:
        lake = hass.data[DATA_LAKE] = Lake(hass)
    return lake


def async_listen_rows_changed(
    hass: HomeAssistant, target: Callable[[str, datetime, datetime], None]
) -> Callable[[], None]:
    """Subscribe to changed rows of any meter; returns the unsubscribe callable."""
    return async_dispatcher_connect(hass, SIGNAL_ROWS_CHANGED, target)


def async_listen_registry(
    hass: HomeAssistant, target: Callable[[str | None], None]
) -> Callable[[], None]:
    """Subscribe to registry changes (meters appearing or going)."""
    return async_dispatcher_connect(hass, SIGNAL_REGISTRY_CHANGED, target)
