"""Meters from entities in Home Assistant: history on day one, live readings, hand readings.

sources.entity_meter counts a meter's readings; this module feeds it (docs/architecture.md,
"Meters from entities"):

* on first use, the readings the archive kept (the `readings` dataset outlives the recorder's
  purge), then the recorder's states since the newest of them (back to `backfill_days` for a
  new meter) and, before the first state, the entity's hourly long-term statistics;
* every state change of the entity as it happens, checked (`reading_of`) and its unit compared
  with the meter's; the window a new reading changes is recomputed a little later, so that a
  counter reporting every few seconds costs one recompute a minute;
* hand readings from the action `meterlake.add_reading`, also in the past (recomputed at once,
  between the reading's neighbours) and for a new meter put in;
* a repair issue when the entity is gone or reports a unit that does not convert.

Every reading not used is counted by reason (diagnostics); none becomes a 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_state_change_event
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util

from .analytics.meter_readings import reading_of
from .const import DOMAIN
from .sources.entity_meter import SUPPLIER, EntityDefinition, EntityMeters, ReadingBook

if TYPE_CHECKING:
    import pandas as pd

    from .coordinator import MeterLakeConfigEntry, MeterLakeCoordinator

_LOGGER = logging.getLogger(__name__)
NS: Final = 1_000_000_000
# Live readings are recomputed this long after the first of a batch.
RECOMPUTE_DELAY: Final = 60.0


def missing_issue_id(entry_id: str, meter_key: str) -> str:
    """Id of the repair issue about a meter whose entity is gone."""
    return f"entity_meter_missing_{entry_id}_{meter_key}"


def unit_issue_id(entry_id: str, meter_key: str) -> str:
    """Id of the repair issue about a meter whose entity reports a unit that does not convert."""
    return f"entity_meter_unit_{entry_id}_{meter_key}"


class EntityMeterFollower:
    """Feeds the entry's meters from entities and recomputes what their readings change."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MeterLakeConfigEntry,
        coordinator: MeterLakeCoordinator,
        meters: EntityMeters,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.meters = meters
        meters.loader = self._async_load
        meters.temperatures = self._async_temperatures
        # meter key -> [start, end) to recompute after the delay
        self.pending: dict[str, tuple[datetime, datetime]] = {}
        self._timer: CALLBACK_TYPE | None = None

    # -- lifetime -------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the entities' states; check they exist once Home Assistant runs."""
        entity_ids = {d.entity_id for d in self.meters.definitions.values()}
        if not entity_ids:
            return
        self.entry.async_on_unload(
            async_track_state_change_event(self.hass, sorted(entity_ids), self._state_changed)
        )

        @callback
        def _started(_hass: HomeAssistant) -> None:
            for definition in self.meters.definitions.values():
                state = self.hass.states.get(definition.entity_id)
                self._note_presence(definition, present=state is not None)

        self.entry.async_on_unload(async_at_started(self.hass, _started))
        self.entry.async_on_unload(self._cancel_timer)

    @callback
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer()
            self._timer = None

    # -- history --------------------------------------------------------------------------------

    async def _async_load(self, definition: EntityDefinition) -> pd.DataFrame | None:
        """Archived readings, then the recorder's states and statistics since the newest."""
        import pandas as pd

        meter = definition.meter_info()
        now = dt_util.utcnow()
        archived = await self.coordinator.archive.async_read_readings(meter)
        since = now - self.coordinator.backfill
        if archived is not None and not archived.empty:
            since = max(since, archived["time"].max().to_pydatetime())
        frames = [] if archived is None else [archived]
        if "recorder" in self.hass.config.components:
            states = await self._async_states(definition, since, None)
            first_state = None if states.empty else states["time"].min().to_pydatetime()
            statistics = await self._async_statistics(definition, since, first_state or now)
            frames += [statistics, states]
        frames = [frame for frame in frames if not frame.empty]
        return pd.concat(frames, ignore_index=True) if frames else None

    async def _async_states(
        self, definition: EntityDefinition, start: datetime, end: datetime | None
    ) -> pd.DataFrame:
        """The entity's recorded states from `start` (to `end`) as readings (checked, counted)."""
        from homeassistant.components.recorder import history
        from homeassistant.helpers.recorder import get_instance

        found = await get_instance(self.hass).async_add_executor_job(
            lambda: history.state_changes_during_period(
                self.hass, start, end, definition.entity_id, include_start_time_state=False
            )
        )
        rows = []
        for state in found.get(definition.entity_id.lower(), []):
            reading = self._check(
                definition, state.state, state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)
            )
            if reading is not None:
                rows.append((state.last_changed, *reading, "state"))
        return _frame(definition, rows)

    async def _async_statistics(
        self, definition: EntityDefinition, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """The entity's hourly long-term statistics in [start, end) as readings at hour ends.

        The hour's last state (`state`) is the counter's reading at the hour's end; without
        one (a statistic imported with sums only), the `sum` is a reading of a counter that
        never resets.
        """
        from homeassistant.components.recorder import statistics
        from homeassistant.helpers.recorder import get_instance

        if end <= start:
            return _frame(definition, [])
        recorder = get_instance(self.hass)
        stat_id = definition.entity_id
        metadata = await recorder.async_add_executor_job(
            lambda: statistics.get_metadata(self.hass, statistic_ids={stat_id})
        )
        if stat_id not in metadata:
            return _frame(definition, [])
        unit = metadata[stat_id][1]["unit_of_measurement"]
        found = await recorder.async_add_executor_job(
            lambda: statistics.statistics_during_period(
                self.hass, start, end, {stat_id}, "hour", None, {"state", "sum"}
            )
        )
        rows = []
        for row in found.get(stat_id, []):
            value = row.get("state")
            if value is None:
                value = row.get("sum")
            reading = self._check(definition, value, unit, count=False)
            if reading is not None:
                when = dt_util.utc_from_timestamp(row["end"])
                rows.append((when, *reading, "statistics"))
        return _frame(definition, rows)

    async def _async_temperatures(
        self, definition: EntityDefinition, start: datetime, end: datetime
    ) -> Mapping[date, float]:
        """Daily mean outdoor temperatures (°C) from the temperature entity's statistics."""
        from homeassistant.components.recorder import statistics
        from homeassistant.helpers.recorder import get_instance

        entity_id = definition.temperature_entity
        if entity_id is None or "recorder" not in self.hass.config.components:
            return {}
        found = await get_instance(self.hass).async_add_executor_job(
            lambda: statistics.statistics_during_period(
                self.hass, start, end, {entity_id}, "day", {"temperature": "°C"}, {"mean"}
            )
        )
        days: dict[date, float] = {}
        for row in found.get(entity_id, []):
            mean = row.get("mean")
            if mean is not None:
                days[dt_util.as_local(dt_util.utc_from_timestamp(row["start"])).date()] = mean
        return days

    # -- live and by hand -----------------------------------------------------------------------

    def _check(
        self, definition: EntityDefinition, value: Any, unit: str | None, *, count: bool = True
    ) -> tuple[float, str] | None:
        """A value as (reading, unit), or None and the reason counted (and a repair for a unit)."""
        from .analytics.compose import convertible

        state = self.meters.states[definition.key]
        reading = reading_of(value)
        if isinstance(reading, str):
            if count:
                state.skip(reading)
            return None
        unit = unit or definition.source_unit
        if unit != definition.source_unit and not convertible(unit, definition.unit):
            state.skip("unit")
            self._note_unit(definition, unit)
            return None
        return reading, unit

    @callback
    def _state_changed(self, event: Event[EventStateChangedData]) -> None:
        new_state = event.data["new_state"]
        entity_id = event.data["entity_id"]
        for definition in self.meters.definitions.values():
            if definition.entity_id != entity_id:
                continue
            self._note_presence(definition, present=new_state is not None)
            if new_state is None:
                continue
            reading = self._check(
                definition, new_state.state, new_state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)
            )
            if reading is None:
                continue
            ir.async_delete_issue(
                self.hass, DOMAIN, unit_issue_id(self.entry.entry_id, definition.key)
            )
            book = self.meters.books[definition.key]
            previous = book.last
            when = new_state.last_changed
            if previous is not None and when == previous[0] and reading[0] == previous[1]:
                continue  # an attribute change: the reading at that moment is known already
            book.add(when, reading[0], reading[1], "state")
            since = when if previous is None else min(previous[0], when)
            self._schedule(definition.key, since, when)

    def _schedule(self, key: str, start: datetime, end: datetime) -> None:
        if (known := self.pending.get(key)) is not None:
            start, end = min(known[0], start), max(known[1], end)
        self.pending[key] = (start, end)
        if self._timer is None:
            self._timer = async_call_later(self.hass, RECOMPUTE_DELAY, self._fire)

    @callback
    def _fire(self, _now: datetime) -> None:
        self._timer = None
        pending, self.pending = self.pending, {}
        self.entry.async_create_background_task(
            self.hass, self._async_recompute_all(pending), f"{DOMAIN} entity meters"
        )

    async def _async_recompute_all(self, pending: Mapping[str, tuple[datetime, datetime]]) -> None:
        for key, (start, end) in pending.items():
            try:
                await self.async_recompute(key, start, end)
            except HomeAssistantError as err:
                _LOGGER.warning("Recomputing %s failed: %s", key, err)

    async def async_recompute(
        self, key: str, start: datetime, end: datetime
    ) -> tuple[datetime, datetime]:
        """Recompute the whole slots around [start, end] (a reading's neighbours); the window."""
        from .analytics.compose import affected_window
        from .coordinator import PollReport

        definition = self.meters.definitions[key]
        now = dt_util.utcnow()
        hi_moment = min(max(end, start + timedelta(seconds=1)), now)
        lo, hi = affected_window(
            int(start.timestamp() * NS),
            max(int(hi_moment.timestamp() * NS), int(start.timestamp() * NS) + 1),
            definition.cadence_minutes,
            tz=definition.time_zone,
        )
        window = (dt_util.utc_from_timestamp(lo / NS), dt_util.utc_from_timestamp(hi / NS))
        meter = definition.meter_info()
        await self.coordinator.async_poll_meter(
            meter, window[0], min(window[1], now), PollReport(started=now)
        )
        await self.coordinator.async_refresh_snapshots()
        return window

    async def async_add_reading(
        self,
        key: str,
        reading: float,
        when: datetime,
        *,
        new_meter: bool = False,
        final_reading: float | None = None,
    ) -> dict[str, Any]:
        """Record a hand reading (or a new meter put in) and recompute around it at once."""
        definition = self.meters.definitions[key]
        book = await self.meters.async_ensure_loaded(key)
        unit = definition.source_unit
        if new_meter:
            if final_reading is not None:
                book.add(when, final_reading, unit, "hand")
            book.add(when, reading, unit, "new_meter")
        else:
            book.add(when, reading, unit, "hand")
        before, after = await self.hass.async_add_executor_job(_neighbours, book, when)
        start = before or when
        end = after or when
        window = await self.async_recompute(key, start, end)
        return {
            "meter": key,
            "recomputed_from": window[0].isoformat(),
            "recomputed_until": window[1].isoformat(),
        }

    # -- repairs --------------------------------------------------------------------------------

    def _note_presence(self, definition: EntityDefinition, *, present: bool) -> None:
        issue_id = missing_issue_id(self.entry.entry_id, definition.key)
        if present:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        self.meters.states[definition.key].skip("entity_missing")
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="entity_meter_missing",
            translation_placeholders={"meter": definition.name, "entity": definition.entity_id},
        )

    def _note_unit(self, definition: EntityDefinition, unit: str) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            unit_issue_id(self.entry.entry_id, definition.key),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="entity_meter_unit",
            translation_placeholders={
                "meter": definition.name,
                "entity": definition.entity_id,
                "unit": unit,
                "expected": definition.source_unit,
            },
        )


def _neighbours(book: ReadingBook, when: datetime) -> tuple[datetime | None, datetime | None]:
    """The readings just before and after `when` (executor: the book merges)."""
    return book.times_before(when), book.times_after(when)


def _frame(
    definition: EntityDefinition, rows: list[tuple[datetime, float, str, str]]
) -> pd.DataFrame:
    """Readings as a table with the READING_COLUMNS."""
    import pandas as pd

    from .analytics.schema import READING_COLUMNS

    now = dt_util.utcnow()
    frame = pd.DataFrame(
        [
            {
                "meter": definition.key,
                "supplier": SUPPLIER,
                "time": when,
                "reading": value,
                "unit": unit,
                "source": source,
                "reset": None,
                "ingested_at": now,
            }
            for when, value, unit, source in rows
        ],
        columns=list(READING_COLUMNS),
    )
    frame["time"] = pd.to_datetime(frame["time"], utc=True).astype("datetime64[ns, UTC]")
    frame["ingested_at"] = pd.to_datetime(frame["ingested_at"], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    return frame
