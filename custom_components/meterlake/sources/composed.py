"""Composed meters: virtual, master and preferred meters computed from meters of the lake.

A composed meter is a source like any other for the coordinator (memory, archive, statistics,
sensors), but its `async_fetch` reads its inputs from the lake instead of a supplier and runs
analytics.compose on them. Each meter is one config subentry of the Composed meters entry; its
definition (inputs, periods, conversion figures) is parsed and checked here, without Home
Assistant, so the config flow and the source share one set of rules (docs/architecture.md,
"Derived meters").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
import re
from typing import TYPE_CHECKING, Any, Final, Protocol

from .base import (
    AuditRecord,
    Capabilities,
    Executor,
    FetchResult,
    MeterInfo,
    SourceContext,
    SourceError,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from ..analytics.compose import Slots
    from .entity_meter import EntityMeters
    from .file_meter import FileMeters

SUPPLIER: Final = "composed"
KEY_PREFIX: Final = "composed_"
TYPE_VIRTUAL: Final = "virtual"
TYPE_MASTER: Final = "master"
TYPE_PREFERRED: Final = "preferred"
TYPES: Final = (TYPE_VIRTUAL, TYPE_MASTER, TYPE_PREFERRED)
DAILY: Final = 1440
# Inputs are read this much before a window, so a daily slot's local day is always whole.
READ_MARGIN: Final = timedelta(days=1, hours=2)

# Subentry data keys.
CONF_NAME: Final = "name"
CONF_KEY: Final = "key"
CONF_BASE: Final = "base"
CONF_ADD: Final = "add"
CONF_SUBTRACT: Final = "subtract"
CONF_PERIODS: Final = "periods"
CONF_METERS: Final = "meters"
CONF_UNTIL: Final = "until"
CONF_INPUTS: Final = "inputs"
CONF_READING_OFFSET: Final = "reading_offset"
CONF_CALORIFIC_VALUE: Final = "calorific_value"
CONF_VOLUME_CORRECTION: Final = "volume_correction"
CONF_UNIT: Final = "unit"
CONF_KIND: Final = "kind"
CONF_CADENCE: Final = "cadence_minutes"
CONF_TIME_ZONE: Final = "time_zone"
CONF_CURRENCY: Final = "currency"
CONF_SUBENTRY_ID: Final = "subentry_id"
CONF_TYPE: Final = "type"


class LakeReader(Protocol):
    """What a composed source needs of the lake (lake.Lake in production)."""

    def get(self, key: str) -> Any:
        """The registered meter (an object with `.meter`), None when not loaded."""

    def watermark(self, key: str) -> datetime | None:
        """How far the meter's rows are complete."""

    async def async_rows(
        self, key: str, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        """Stored rows of a meter starting in [start, end)."""


class DefinitionError(ValueError):
    """A composed meter that cannot be computed; `reason` is a translation key."""

    def __init__(self, reason: str, **placeholders: str) -> None:
        super().__init__(f"{reason}: {placeholders}")
        self.reason = reason
        self.placeholders = placeholders


class InputMissingError(SourceError):
    """An input of a composed meter is not in the lake (its entry unloaded or removed)."""

    translation_key = "composed_input_missing"


@dataclass(frozen=True, slots=True)
class Definition:
    """One composed meter as configured (a subentry's data, parsed)."""

    type: str
    key: str
    name: str
    unit: str
    kind: str
    cadence_minutes: int
    time_zone: str
    currency: str | None = None
    base: str | None = None
    add: tuple[str, ...] = ()
    subtract: tuple[str, ...] = ()
    # (meters, until): each period runs from the previous one's `until` (local midnight).
    periods: tuple[tuple[tuple[str, ...], date | None], ...] = ()
    inputs: tuple[str, ...] = ()
    reading_offset: float = 0.0
    calorific_value: float = 39.5
    volume_correction: float = 1.02264
    subentry_id: str | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        """Every input meter key, each once, in order."""
        keys: list[str] = []
        if self.base is not None:
            keys.append(self.base)
        keys += [*self.add, *self.subtract, *self.inputs]
        for meters, _until in self.periods:
            keys += meters
        return tuple(dict.fromkeys(keys))

    def meter_info(self) -> MeterInfo:
        """The composed meter as the coordinator and the sensors see it."""
        return MeterInfo(
            key=self.key,
            supplier=SUPPLIER,
            kind=self.kind,
            unit=self.unit,
            name=self.name,
            currency=self.currency,
            time_zone=self.time_zone,
            cadence_minutes=self.cadence_minutes,
            has_standing_charge=False,
            extra={CONF_TYPE: self.type, CONF_SUBENTRY_ID: self.subentry_id},
        )


def meter_key(name: str, prefix: str = KEY_PREFIX) -> str:
    """`composed_<slug of name>` (or `prefix`): lower-case letters, digits, single underscores.

    Letters are transliterated first (Ölheizung -> olheizung, 熱ポンプ -> re_honhu), so a name
    in any script gives a key; a name with no letter or digit at all is refused.
    """
    from unicodedata import normalize

    from homeassistant.util import slugify

    if not re.search(r"\w", normalize("NFKC", name).replace("_", "")):
        raise DefinitionError("name_invalid")
    slug = re.sub(r"[^a-z0-9]+", "_", slugify(name, separator="_")).strip("_")
    if not slug:
        raise DefinitionError("name_invalid")
    return prefix + slug


def parse(
    subentry_type: str, data: Mapping[str, Any], subentry_id: str | None = None
) -> Definition:
    """A subentry's data as a Definition; DefinitionError when it is not one."""
    if subentry_type not in TYPES:
        raise DefinitionError("unknown_type", type=subentry_type)
    try:
        periods = tuple(
            (
                tuple(str(key) for key in period[CONF_METERS]),
                None if not period.get(CONF_UNTIL) else date.fromisoformat(period[CONF_UNTIL]),
            )
            for period in data.get(CONF_PERIODS) or ()
        )
        definition = Definition(
            type=subentry_type,
            key=str(data[CONF_KEY]),
            name=str(data[CONF_NAME]),
            unit=str(data[CONF_UNIT]),
            kind=str(data[CONF_KIND]),
            cadence_minutes=int(data[CONF_CADENCE]),
            time_zone=str(data[CONF_TIME_ZONE]),
            currency=None if data.get(CONF_CURRENCY) is None else str(data[CONF_CURRENCY]),
            base=None if data.get(CONF_BASE) is None else str(data[CONF_BASE]),
            add=tuple(str(key) for key in data.get(CONF_ADD) or ()),
            subtract=tuple(str(key) for key in data.get(CONF_SUBTRACT) or ()),
            periods=periods,
            inputs=tuple(str(key) for key in data.get(CONF_INPUTS) or ()),
            reading_offset=float(data.get(CONF_READING_OFFSET) or 0.0),
            calorific_value=float(data.get(CONF_CALORIFIC_VALUE) or 39.5),
            volume_correction=float(data.get(CONF_VOLUME_CORRECTION) or 1.02264),
            subentry_id=subentry_id,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DefinitionError("definition_invalid", error=str(err)) from err
    return definition


def check(definition: Definition, meters: Mapping[str, MeterInfo]) -> None:
    """Refuse what cannot be computed: no input, a missing input, units that do not convert.

    `meters` are the meters the definition may use (the lake's, plus other composed meters).
    """
    from ..analytics.compose import convertible

    if definition.type == TYPE_VIRTUAL and definition.base is None:
        raise DefinitionError("no_base")
    if definition.type == TYPE_MASTER:
        if not definition.periods:
            raise DefinitionError("no_periods")
        ends = [until for _meters, until in definition.periods]
        if any(until is None for until in ends[:-1]):
            raise DefinitionError("open_period_not_last")
        dated = [until for until in ends if until is not None]
        if dated != sorted(dated) or len(set(dated)) != len(dated):
            raise DefinitionError("periods_overlap")
        if any(not meters_ for meters_, _until in definition.periods):
            raise DefinitionError("empty_period")
    if definition.type == TYPE_PREFERRED and not definition.inputs:
        raise DefinitionError("no_inputs")
    for key in definition.sources:
        if key == definition.key:
            raise DefinitionError("cycle", meter=definition.name)
        meter = meters.get(key)
        if meter is None:
            raise DefinitionError("input_missing", input=key)
        if not convertible(meter.unit, definition.unit):
            raise DefinitionError("units", input=meter.name, unit=meter.unit, to=definition.unit)


def find_cycle(definitions: Sequence[Definition]) -> str | None:
    """The name of a composed meter that depends on itself through others, None when none."""
    by_key = {d.key: d for d in definitions}

    def reaches(start: str, key: str, seen: frozenset[str]) -> bool:
        found = by_key.get(key)
        if found is None:
            return False
        for source in found.sources:
            if source == start or (source not in seen and reaches(start, source, seen | {source})):
                return True
        return False

    for definition in definitions:
        if reaches(definition.key, definition.key, frozenset()):
            return definition.name
    return None


def coarsest_cadence(inputs: Sequence[MeterInfo]) -> int:
    """The composed meter's cadence: the coarsest of its inputs (finer ones are summed)."""
    return max((meter.cadence_minutes for meter in inputs), default=30)


# How long per-slot clipping is kept in memory (diagnostics show days, sensors today).
CLIPPED_KEPT: Final = timedelta(days=45)


@dataclass(slots=True)
class Clipped:
    """Amount removed by clipping at 0, per slot, per virtual meter; summed per local day.

    Kept per slot so that a recompute of part of a day (a late half-hour) replaces exactly
    those slots and the day's total stays whole.
    """

    by_slot: dict[str, dict[datetime, float]] = field(default_factory=dict)
    time_zones: dict[str, str] = field(default_factory=dict)

    def record(self, key: str, time_zone: str, slots: Mapping[datetime, float]) -> None:
        """Replace the computed slots' amounts (0 where nothing was clipped)."""
        kept = self.by_slot.setdefault(key, {})
        kept.update(slots)
        self.time_zones[key] = time_zone
        if kept:
            horizon = max(kept) - CLIPPED_KEPT
            for start in [s for s in kept if s < horizon]:
                del kept[start]

    def by_day(self, key: str) -> dict[date, float]:
        """Clipped per local day (every day with a computed slot)."""
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.time_zones.get(key, "UTC"))
        days: dict[date, float] = {}
        for start, amount in self.by_slot.get(key, {}).items():
            day = start.astimezone(zone).date()
            days[day] = days.get(day, 0.0) + amount
        return days

    def on(self, key: str, day: date) -> float | None:
        """Clipped on one local day (0.0 when nothing was), None before any computation."""
        if key not in self.by_slot:
            return None
        return self.by_day(key).get(day, 0.0)


class ComposedSource:
    """The composed meters of the installation, computed from the lake."""

    supplier = SUPPLIER
    # A fallback: changed rows of an input recompute at once (the lake's signal).
    update_interval = timedelta(minutes=30)
    capabilities = Capabilities(
        overlap=timedelta(days=3), derived=True, normal_delay=timedelta(hours=48)
    )

    def __init__(
        self,
        executor: Executor,
        lake: LakeReader,
        definitions: Sequence[Definition],
        entities: EntityMeters | None = None,
        files: FileMeters | None = None,
    ):
        from .entity_meter import EntityMeters
        from .file_meter import FileMeters

        self._executor = executor
        self._lake = lake
        self.definitions = {d.key: d for d in definitions}
        # Meters from Home Assistant entities (subentries of type `entity`), counted beside.
        self.entities = entities if entities is not None else EntityMeters(executor, ())
        # Meters whose rows come only from imported files (subentries of type `file`).
        self.files = files if files is not None else FileMeters(())
        self._meters = (
            *(d.meter_info() for d in definitions),
            *self.entities.meters,
            *self.files.meters,
        )
        self.clipped = Clipped()
        # True once Home Assistant has started: before, a missing input may still be loading.
        self.started = False
        # Subentries whose data could not be parsed: subentry id -> reason.
        self.broken: dict[str, str] = {}
        # Cumulative readings (offset + every stored interval), per composed meter.
        self.readings: dict[str, float] = {}

    @property
    def meters(self) -> Sequence[MeterInfo]:
        """One meter per subentry."""
        return self._meters

    def dependents(self, key: str) -> list[MeterInfo]:
        """The composed meters that read `key` directly."""
        return [
            meter
            for meter in self._meters
            if meter.key in self.definitions and key in self.definitions[meter.key].sources
        ]

    async def async_update_readings(self) -> None:
        """Recount each meter's reading from everything stored (after a change).

        The reading is the offset (a master meter's starting reading, else 0) plus every stored
        interval: a counter that never jumps when an input is replaced or corrected.
        """
        for key, definition in self.definitions.items():
            rows = await self._lake.async_rows(key, None, None)
            if rows is None:
                continue
            total: float = await self._executor(_total, rows)
            self.readings[key] = definition.reading_offset + total

    async def async_fetch(self, meter: MeterInfo, start: datetime, end: datetime) -> FetchResult:
        """Compute the composed slots starting in [start, end) from the inputs' stored rows."""
        if meter.key in self.entities.definitions:
            return await self.entities.async_fetch(meter, start, end)
        if meter.key in self.files.definitions:
            return await self.files.async_fetch(meter, start, end)
        started = datetime.now(UTC)
        definition = self.definitions[meter.key]
        inputs: dict[str, tuple[MeterInfo, pd.DataFrame | None]] = {}
        for key in definition.sources:
            item = self._lake.get(key)
            if item is None:
                if not self.started:
                    # Its entry may simply load after this one: nothing yet, no error.
                    return FetchResult(intervals=_empty(), complete_until=None)
                raise InputMissingError(
                    f"{meter.name}: input {key} is not loaded",
                    placeholders={"meter": meter.name, "input": key},
                )
            rows = await self._lake.async_rows(key, start - READ_MARGIN, end)
            inputs[key] = (item.meter, rows)
        intervals, clipped = await self._executor(compute, definition, inputs, start, end, started)
        if clipped is not None:
            self.clipped.record(meter.key, definition.time_zone, clipped)
        marks = [self._lake.watermark(key) for key in definition.sources]
        complete = None if any(m is None for m in marks) else min(m for m in marks if m)
        if complete is not None:
            complete = min(complete, end)
        return FetchResult(
            intervals=intervals,
            complete_until=complete,
            audit=[
                AuditRecord(
                    time=started,
                    supplier=SUPPLIER,
                    endpoint=f"composed/{definition.type}",
                    status=None,
                    rows=len(intervals),
                    duration_s=(datetime.now(UTC) - started).total_seconds(),
                )
            ],
        )


def _total(rows: pd.DataFrame) -> float:
    """Sum of the known values, left to right (the reading's running sum)."""
    from ..analytics.compose import meter_reading, slots_from_frame

    if rows.empty:
        return 0.0
    return float(meter_reading(slots_from_frame(rows))[-1])


def _empty() -> pd.DataFrame:
    from ..analytics.intervals import empty_intervals

    return empty_intervals()


def _slots(definition: Definition, meter: MeterInfo, rows: pd.DataFrame | None) -> Slots:
    """An input's rows as slots at the composed meter's cadence and unit."""
    from ..analytics import compose

    slots = compose.slots_from_frame(rows) if rows is not None else compose.empty_slots()
    slots = compose.convert_slots(
        slots,
        meter.unit,
        definition.unit,
        calorific_value=definition.calorific_value,
        volume_correction=definition.volume_correction,
    )
    if meter.cadence_minutes != definition.cadence_minutes:
        slots = compose.resample(slots, definition.cadence_minutes, tz=definition.time_zone)
    return slots


def _local_midnight_ns(day: date, tz: str) -> int:
    """Epoch ns of `day`'s local midnight in `tz`."""
    from zoneinfo import ZoneInfo

    moment = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return int(moment.timestamp()) * 1_000_000_000


def compute(
    definition: Definition,
    inputs: Mapping[str, tuple[MeterInfo, pd.DataFrame | None]],
    start: datetime,
    end: datetime,
    now: datetime,
) -> tuple[pd.DataFrame, dict[datetime, float] | None]:
    """The composed interval-table rows starting in [start, end), and clipping per slot (executor).

    Slots the inputs do not all know are left out (missing, never 0); a later computation adds
    them when the inputs arrive.
    """
    import pandas as pd

    from ..analytics import compose

    slots = {key: _slots(definition, meter, rows) for key, (meter, rows) in inputs.items()}
    clipped: dict[datetime, float] | None = None
    if definition.type == TYPE_VIRTUAL:
        assert definition.base is not None
        terms = [(1, slots[key]) for key in definition.add] + [
            (-1, slots[key]) for key in definition.subtract
        ]
        result = compose.virtual(slots[definition.base], terms, tz=definition.time_zone)
        out = result.slots
        clipped = _clipped_slots(out, result.clipped_by_slot, start, end)
    elif definition.type == TYPE_MASTER:
        periods = []
        begin: int | None = None
        for meters, until in definition.periods:
            stop = None if until is None else _local_midnight_ns(until, definition.time_zone)
            periods.append(compose.Period(begin, stop, tuple(slots[key] for key in meters)))
            begin = stop
        out = compose.master(periods)
    else:
        out = compose.preferred([slots[key] for key in definition.inputs])
    frame = compose.slots_to_frame(
        out,
        meter=definition.key,
        supplier=SUPPLIER,
        kind=definition.kind,
        unit=definition.unit,
        currency=definition.currency,
        ingested_at=now,
        calorific_value=definition.calorific_value,
        volume_correction=definition.volume_correction,
    )
    inside = (frame["start"] >= pd.Timestamp(start)) & (frame["start"] < pd.Timestamp(end))
    return frame[inside].reset_index(drop=True), clipped


def _clipped_slots(
    slots: Slots, removed: npt.NDArray[np.float64], start: datetime, end: datetime
) -> dict[datetime, float]:
    """What clipping at 0 removed in each known slot of [start, end) (0.0 where nothing)."""
    import numpy as np

    lo, hi = int(start.timestamp()) * 1_000_000_000, int(end.timestamp()) * 1_000_000_000
    keep = (slots.start >= lo) & (slots.start < hi) & np.isfinite(removed)
    return {
        datetime.fromtimestamp(int(moment) / 1e9, UTC): float(amount)
        for moment, amount in zip(slots.start[keep], removed[keep], strict=True)
    }


def create_source(context: SourceContext) -> ComposedSource:
    """Build the composed source from the entry's subentries (their data parsed)."""
    if context.lake is None:
        raise SourceError("composed meters need the lake")
    from . import entity_meter, file_meter

    definitions: list[Definition] = []
    entities: list[entity_meter.EntityDefinition] = []
    files: list[file_meter.FileDefinition] = []
    broken: dict[str, str] = {}
    for subentry_id, subentry_type, data in context.subentries:
        try:
            if subentry_type == entity_meter.TYPE_ENTITY:
                entities.append(entity_meter.parse(data, subentry_id))
            elif subentry_type == file_meter.TYPE_FILE:
                files.append(file_meter.parse(data, subentry_id))
            else:
                definitions.append(parse(subentry_type, data, subentry_id))
        except DefinitionError as err:
            # One unusable subentry (a hand edit) must not take the others down.
            broken[subentry_id] = err.reason
    source = ComposedSource(
        context.executor,
        context.lake,
        definitions,
        entity_meter.EntityMeters(context.executor, entities),
        file_meter.FileMeters(files),
    )
    source.broken = broken
    return source
