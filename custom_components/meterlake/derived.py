"""Composed meters in Home Assistant: recompute on the lake's signal, report what is missing.

The Composed meters entry has a coordinator like every entry; this module makes it react to
the lake instead of (only) polling: when rows of an input change anywhere in its history (late
data, a revision, a backfill, a rebuild), each composed meter that reads it recomputes exactly
the window those rows reach, which stores, archives and re-anchors its statistics and in turn
signals the meters downstream (docs/architecture.md, "Derived meters").
"""

from __future__ import annotations

import asyncio
from datetime import datetime
import logging
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .lake import async_get_lake, async_listen_registry, async_listen_rows_changed

if TYPE_CHECKING:
    from .coordinator import MeterLakeConfigEntry, MeterLakeCoordinator
    from .sources.composed import ComposedSource

_LOGGER = logging.getLogger(__name__)
NS = 1_000_000_000


def input_issue_id(entry_id: str, meter_key: str) -> str:
    """Id of the repair issue about a composed meter whose input is gone."""
    return f"composed_input_missing_{entry_id}_{meter_key}"


class ComposedUpdater:
    """Recomputes composed meters for the windows their inputs changed in."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MeterLakeConfigEntry,
        coordinator: MeterLakeCoordinator,
        source: ComposedSource,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.source = source
        # meter key -> [start, end) still to recompute
        self.pending: dict[str, tuple[datetime, datetime]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Listen to the lake; once HA runs, missing inputs are errors (not a load order)."""

        async def _begin(_hass: HomeAssistant) -> None:
            self.source.started = True
            self._check_inputs()
            await self.coordinator.async_request_refresh()
            await self.source.async_update_readings()
            await self.coordinator.async_refresh_snapshots()

        self.entry.async_on_unload(async_at_started(self.hass, _begin))
        self.entry.async_on_unload(async_listen_rows_changed(self.hass, self._changed))
        self.entry.async_on_unload(async_listen_registry(self.hass, self._registry))

    @callback
    def _changed(self, key: str, start: datetime, end: datetime) -> None:
        from .analytics.compose import affected_window

        for meter in self.source.dependents(key):
            lo, hi = affected_window(
                int(start.timestamp()) * NS,
                int(end.timestamp()) * NS,
                meter.cadence_minutes,
                tz=meter.time_zone,
            )
            window = (dt_util.utc_from_timestamp(lo / NS), dt_util.utc_from_timestamp(hi / NS))
            if (known := self.pending.get(meter.key)) is not None:
                window = (min(known[0], window[0]), max(known[1], window[1]))
            self.pending[meter.key] = window
        self._kick()

    @callback
    def _registry(self, _key: str | None) -> None:
        """An entry loaded or unloaded meters: inputs may have appeared or gone."""
        if self.source.started:
            self._check_inputs()
            self.entry.async_create_background_task(
                self.hass,
                self.coordinator.async_request_refresh(),
                f"{DOMAIN} composed refresh {self.entry.entry_id}",
            )

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = self.entry.async_create_background_task(
                self.hass, self._drain(), f"{DOMAIN} composed {self.entry.entry_id}"
            )

    async def _drain(self) -> None:
        from .coordinator import PollReport

        changed = False
        while self.pending:
            key, (start, end) = next(iter(self.pending.items()))
            del self.pending[key]
            meter = next((m for m in self.source.meters if m.key == key), None)
            if meter is None:
                continue
            now = dt_util.utcnow()
            end = min(end, now)
            if end <= start:
                continue
            try:
                await self.coordinator.async_poll_meter(meter, start, end, PollReport(started=now))
            except HomeAssistantError as err:
                _LOGGER.warning("Recomputing %s failed: %s", meter.key, err)
                continue
            changed = True
        if changed:
            await self.source.async_update_readings()
            await self.coordinator.async_refresh_snapshots()

    def _check_inputs(self) -> None:
        """A repair issue per composed meter whose input no loaded entry offers any more."""
        lake = async_get_lake(self.hass)
        for meter in self.source.meters:
            definition = self.source.definitions.get(meter.key)
            if definition is None:
                continue  # a meter from an entity: entity_meters reports a missing entity
            missing = [key for key in definition.sources if lake.get(key) is None]
            issue_id = input_issue_id(self.entry.entry_id, meter.key)
            if not missing:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
                continue
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="composed_input_missing",
                translation_placeholders={"meter": meter.name, "inputs": ", ".join(missing)},
            )
