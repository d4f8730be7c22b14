"""Per-meter watermarks: how far each meter's data has been stored, surviving restarts.

The file is validated on load: anything that is not a meter key mapped to a past UTC time (a
list, a string, nulls, a time in the future from a bad clock or a hand edit) is dropped with a
warning, and the coordinator rebuilds what it needs from the archive instead (docs/
architecture.md, "Restarts and faults").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
import logging
from typing import Any, NotRequired, TypedDict

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, STORAGE_VERSION

_LOGGER = logging.getLogger(__name__)

SAVE_DELAY = 5.0
# A watermark this far ahead of the clock is a bad store or a bad clock, never real data.
FUTURE_TOLERANCE = timedelta(days=1)


class _StoredData(TypedDict):
    watermarks: dict[str, str]
    retry_from: NotRequired[dict[str, str]]


class WatermarkStore:
    """Watermarks of one config entry, in `.storage/meterlake.<entry_id>`.

    A watermark is the end of the newest interval that reached every sink (memory, archive,
    statistics); the next poll starts from it minus the overlap window. `retry_from` remembers,
    per meter, the start of the oldest window whose rows the archive did not take (a full disk
    during a backfill): polls reach back to it until a write covering it succeeds.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._store: Store[_StoredData] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}", private=True
        )
        self._watermarks: dict[str, datetime] = {}
        self._retry_from: dict[str, datetime] = {}
        self.dropped: list[str] = []

    async def async_load(self) -> None:
        """Read the stored watermarks (none on a first run); drop what is not valid."""
        try:
            data: Any = await self._store.async_load()
        except Exception as err:  # a file of the wrong shape must not stop setup
            # (unparsable JSON is moved aside by HA's Store itself and reads as None)
            self._drop("the whole store", f"unreadable ({err!r})")
            data = None
        if not data:
            return
        now = dt_util.utcnow()
        if not isinstance(data, Mapping):
            self._drop("the whole store", f"a {type(data).__name__}, not an object")
            return
        self._watermarks = self._parse(data.get("watermarks"), "watermarks", now)
        self._retry_from = self._parse(data.get("retry_from"), "retry_from", now)

    def _parse(self, raw: Any, name: str, now: datetime) -> dict[str, datetime]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self._drop(name, f"a {type(raw).__name__}, not an object")
            return {}
        parsed: dict[str, datetime] = {}
        for meter, value in raw.items():
            when = dt_util.parse_datetime(value) if isinstance(value, str) else None
            if not isinstance(meter, str) or not meter or when is None:
                self._drop(f"{name} of {meter!r}", f"{value!r} is not a time")
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt_util.UTC)
            when = dt_util.as_utc(when)
            if when > now + FUTURE_TOLERANCE:
                self._drop(f"{name} of {meter}", f"{when.isoformat()} is in the future")
                continue
            parsed[meter] = when
        return parsed

    def _drop(self, what: str, why: str) -> None:
        _LOGGER.warning(
            "Ignoring %s in the watermark store %s: %s; it is rebuilt from the archive",
            what,
            self._store.key,
            why,
        )
        self.dropped.append(what)

    def get(self, meter: str) -> datetime | None:
        """The watermark of `meter`, or None before its first stored interval."""
        return self._watermarks.get(meter)

    def advance(self, meter: str, until: datetime) -> bool:
        """Move the watermark forward (never back); True when it moved."""
        current = self._watermarks.get(meter)
        if current is not None and until <= current:
            return False
        self._watermarks[meter] = until
        self._store.async_delay_save(self._data, SAVE_DELAY)
        return True

    def retry_from(self, meter: str) -> datetime | None:
        """Start of the oldest window the archive has not taken yet, None when none."""
        return self._retry_from.get(meter)

    def note_unarchived(self, meter: str, start: datetime) -> None:
        """Rows from `start` on could not be archived: later polls reach back to it."""
        current = self._retry_from.get(meter)
        if current is None or start < current:
            self._retry_from[meter] = start
            self._store.async_delay_save(self._data, SAVE_DELAY)

    def note_archived(self, meter: str, start: datetime) -> None:
        """A write of the rows from `start` on succeeded: forget an older failure it covers."""
        current = self._retry_from.get(meter)
        if current is not None and start <= current:
            del self._retry_from[meter]
            self._store.async_delay_save(self._data, SAVE_DELAY)

    async def async_save(self) -> None:
        """Write now (entry unload), instead of waiting for the delayed save."""
        await self._store.async_save(self._data())

    async def async_remove(self) -> None:
        """Delete the file when the entry is removed."""
        await self._store.async_remove()

    def as_dict(self) -> dict[str, str]:
        """ISO form, for diagnostics."""
        return {meter: when.isoformat() for meter, when in self._watermarks.items()}

    def _data(self) -> _StoredData:
        data: _StoredData = {"watermarks": self.as_dict()}
        if self._retry_from:
            data["retry_from"] = {m: when.isoformat() for m, when in self._retry_from.items()}
        return data
