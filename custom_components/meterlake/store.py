"""Per-meter watermarks: how far each meter's data has been stored, surviving restarts."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, STORAGE_VERSION

SAVE_DELAY = 5.0


class _StoredData(TypedDict):
    watermarks: dict[str, str]


class WatermarkStore:
    """Watermarks of one config entry, in `.storage/meterlake.<entry_id>`.

    A watermark is the end of the newest interval that reached every sink (memory, archive,
    statistics); the next poll starts from it minus the overlap window.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self._store: Store[_StoredData] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}", private=True
        )
        self._watermarks: dict[str, datetime] = {}

    async def async_load(self) -> None:
        """Read the stored watermarks (none on a first run)."""
        data = await self._store.async_load()
        if not data:
            return
        for meter, value in data.get("watermarks", {}).items():
            parsed = dt_util.parse_datetime(value)
            if parsed is not None:
                self._watermarks[meter] = dt_util.as_utc(parsed)

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
        return {"watermarks": self.as_dict()}
