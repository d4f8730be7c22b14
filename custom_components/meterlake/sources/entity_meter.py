"""Meters from Home Assistant entities: the definition of a meter whose readings come from HA.

A meter from an entity is a subentry (type `entity`) of the Composed meters entry: a counter
sensor (`total`/`total_increasing`) or a number that holds meter readings (an `input_number`
typed in by hand). Its readings are kept (archive dataset `readings`) and spread into
interval rows by analytics.meter_readings; sources.composed computes it beside the composed
meters (docs/architecture.md, "Meters from entities"). This module parses and checks a
subentry's data, without Home Assistant, so the subentry flow and the source share one set
of rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
import threading
from typing import TYPE_CHECKING, Any, Final

from ..analytics.readings import Reset
from .base import AuditRecord, Executor, FetchResult, MeterInfo
from .composed import (
    CONF_CADENCE,
    CONF_KEY,
    CONF_KIND,
    CONF_NAME,
    CONF_SUBENTRY_ID,
    CONF_TIME_ZONE,
    CONF_TYPE,
    DefinitionError,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..analytics.meter_readings import Counted

SUPPLIER: Final = "entity"
KEY_PREFIX: Final = "entity_"
TYPE_ENTITY: Final = "entity"

CONF_ENTITY_ID: Final = "entity_id"
CONF_SOURCE_UNIT: Final = "source_unit"
CONF_PROFILE: Final = "profile"
CONF_TEMPERATURE_ENTITY: Final = "temperature_entity"
CONF_MAX_GAP_DAYS: Final = "max_gap_days"
CONF_TOLERANCE: Final = "tolerance"
CONF_ROLLOVER: Final = "rollover"

KINDS: Final = ("electricity", "gas", "water", "heat")
HOURLY: Final = 60
DAILY: Final = 1440
CADENCES: Final = (HOURLY, DAILY)
PROFILE_LINEAR: Final = "linear"
PROFILE_MONTHLY: Final = "monthly"
PROFILE_DEGREE_DAYS: Final = "degree_days"
PROFILES: Final = (PROFILE_LINEAR, PROFILE_MONTHLY, PROFILE_DEGREE_DAYS)
DEFAULT_MAX_GAP_DAYS: Final = 31
MAX_GAP_DAYS_LIMIT: Final = 366
# Backward jitter held as no consumption (not a reset), per target unit: a tenth of a kWh,
# ten litres. Hand readings a digit off and P1 readers that wobble stay below it.
DEFAULT_TOLERANCE: Final = {"kWh": 0.1, "m³": 0.01}


def target_unit(kind: str, source_unit: str) -> str:
    """The unit the meter's intervals are in: kWh for energy, m³ for volume.

    Electricity and heat are energy (Wh, kWh, MWh, GJ, ...), water is a volume (L, m³, ft³,
    CCF, gal), gas is either. DefinitionError("unit_unsupported") for anything else.
    """
    from ..analytics.units import energy_unit_factor, volume_unit_factor

    if kind not in KINDS:
        raise DefinitionError("kind_invalid", kind=str(kind))
    energy = energy_unit_factor(source_unit) is not None
    volume = volume_unit_factor(source_unit) is not None
    if energy and kind in ("electricity", "heat", "gas"):
        return "kWh"
    if volume and kind in ("water", "gas"):
        return "m³"
    raise DefinitionError("unit_unsupported", unit=str(source_unit), kind=kind)


@dataclass(frozen=True, slots=True)
class EntityDefinition:
    """One meter from an entity as configured (a subentry's data, parsed)."""

    key: str
    name: str
    entity_id: str
    kind: str
    source_unit: str
    unit: str
    cadence_minutes: int
    time_zone: str
    profile: str = PROFILE_LINEAR
    temperature_entity: str | None = None
    max_gap_days: int = DEFAULT_MAX_GAP_DAYS
    tolerance: float = 0.1
    rollover: float | None = None
    subentry_id: str | None = None

    @property
    def max_gap_ns(self) -> int:
        """Readings further apart than this are not spread (the gap stays missing)."""
        return self.max_gap_days * 86_400 * 1_000_000_000

    def meter_info(self) -> MeterInfo:
        """The meter as the coordinator and the sensors see it."""
        return MeterInfo(
            key=self.key,
            supplier=SUPPLIER,
            kind=self.kind,
            unit=self.unit,
            name=self.name,
            time_zone=self.time_zone,
            cadence_minutes=self.cadence_minutes,
            has_standing_charge=False,
            extra={
                CONF_TYPE: TYPE_ENTITY,
                CONF_SUBENTRY_ID: self.subentry_id,
                CONF_ENTITY_ID: self.entity_id,
            },
        )


def parse(data: Mapping[str, Any], subentry_id: str | None = None) -> EntityDefinition:
    """A subentry's data as an EntityDefinition; DefinitionError when it is not one."""
    try:
        kind = str(data[CONF_KIND])
        source_unit = str(data[CONF_SOURCE_UNIT])
        unit = target_unit(kind, source_unit)
        cadence = int(data[CONF_CADENCE])
        profile = str(data.get(CONF_PROFILE) or PROFILE_LINEAR)
        max_gap = int(data.get(CONF_MAX_GAP_DAYS) or DEFAULT_MAX_GAP_DAYS)
        tolerance = data.get(CONF_TOLERANCE)
        rollover = data.get(CONF_ROLLOVER)
        temperature = data.get(CONF_TEMPERATURE_ENTITY) or None
        definition = EntityDefinition(
            key=str(data[CONF_KEY]),
            name=str(data[CONF_NAME]),
            entity_id=str(data[CONF_ENTITY_ID]),
            kind=kind,
            source_unit=source_unit,
            unit=unit,
            cadence_minutes=cadence,
            time_zone=str(data[CONF_TIME_ZONE]),
            profile=profile,
            temperature_entity=None if temperature is None else str(temperature),
            max_gap_days=max_gap,
            tolerance=DEFAULT_TOLERANCE[unit] if tolerance is None else float(tolerance),
            rollover=None if not rollover else float(rollover),
            subentry_id=subentry_id,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DefinitionError("definition_invalid", error=str(err)) from err
    check(definition)
    return definition


def check(definition: EntityDefinition) -> None:
    """Refuse settings the meter cannot be computed with (translation keys as reasons)."""
    import math

    if not definition.key.startswith(KEY_PREFIX):
        raise DefinitionError("definition_invalid", error=f"key {definition.key!r}")
    if definition.cadence_minutes not in CADENCES:
        raise DefinitionError("cadence_invalid")
    if definition.profile not in PROFILES:
        raise DefinitionError("profile_invalid")
    if definition.profile == PROFILE_DEGREE_DAYS:
        if definition.temperature_entity is None:
            raise DefinitionError("temperature_missing")
        if definition.kind not in ("gas", "heat"):
            raise DefinitionError("degree_days_kind")
    if not 1 <= definition.max_gap_days <= MAX_GAP_DAYS_LIMIT:
        raise DefinitionError("max_gap_invalid")
    if not (math.isfinite(definition.tolerance) and definition.tolerance >= 0):
        raise DefinitionError("tolerance_invalid")
    if definition.rollover is not None and not (
        math.isfinite(definition.rollover) and definition.rollover > 0
    ):
        raise DefinitionError("rollover_invalid")


# --------------------------------------------------------------------------------------------
# Readings kept and counted
# --------------------------------------------------------------------------------------------


class ReadingBook:
    """Every reading of one meter seen so far: from the archive, the recorder, live, by hand.

    New readings wait in a list (a state change costs an append on the event loop); `merged`
    folds them into the table in the executor. Live states are kept at most one per
    thin_bucket_ns (the last of each stretch: see analytics.meter_readings.thin).
    """

    def __init__(self, definition: EntityDefinition) -> None:
        self.definition = definition
        self.table: pd.DataFrame | None = None
        self._pending: list[dict[str, Any]] = []
        self._tables: list[pd.DataFrame] = []
        # Two executor threads may merge at once (a poll and a recompute).
        self._lock = threading.Lock()
        self.loaded = False
        # The newest reading's time and value as read (the live listener compares with it).
        self.last: tuple[datetime, float, str] | None = None

    def add(self, when: datetime, reading: float, unit: str, source: str) -> None:
        """Note one reading (the time is made UTC)."""
        when = when.astimezone(UTC)
        self._pending.append(
            {
                "meter": self.definition.key,
                "supplier": SUPPLIER,
                "time": when,
                "reading": float(reading),
                "unit": unit,
                "source": source,
                "reset": None,
                "ingested_at": datetime.now(UTC),
            }
        )
        if source != "new_meter" and (self.last is None or when >= self.last[0]):
            self.last = (when, float(reading), unit)

    def add_table(self, table: pd.DataFrame | None) -> None:
        """Note readings of a table with the READING_COLUMNS (archived, or from the recorder)."""
        if table is None or table.empty:
            return
        self._tables.append(table)
        newest = table[table["source"] != "new_meter"]
        if not newest.empty:
            row = newest.loc[newest["time"].idxmax()]
            when = row["time"].to_pydatetime()
            if self.last is None or when >= self.last[0]:
                self.last = (when, float(row["reading"]), str(row["unit"]))

    def times_before(self, when: datetime) -> datetime | None:
        """The newest reading strictly before `when` (for the window a new reading changes)."""
        import pandas as pd

        table = self.merged()
        earlier = table[table["time"] < pd.Timestamp(when)]
        return None if earlier.empty else earlier["time"].max().to_pydatetime()

    def times_after(self, when: datetime) -> datetime | None:
        """The oldest reading strictly after `when`."""
        import pandas as pd

        table = self.merged()
        later = table[table["time"] > pd.Timestamp(when)]
        return None if later.empty else later["time"].min().to_pydatetime()

    def merged(self) -> pd.DataFrame:
        """All readings: one per (time, source), the newest given winning; sorted (executor)."""
        with self._lock:
            return self._merge()

    def _merge(self) -> pd.DataFrame:
        import pandas as pd

        from ..analytics.meter_readings import thin, thin_bucket_ns
        from ..analytics.schema import READING_COLUMNS

        if not self._pending and not self._tables and self.table is not None:
            return self.table
        # Taken before they are read: a reading added meanwhile (event loop) goes in next time.
        pending, self._pending = self._pending, []
        tables, self._tables = self._tables, []
        parts = [_typed(t) for t in (*tables, pd.DataFrame(pending, columns=READING_COLUMNS))]
        if self.table is not None:
            parts.insert(0, self.table)
        parts = [part for part in parts if not part.empty] or parts[:1]
        table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        table = table.drop_duplicates(subset=["time", "source"], keep="last")
        table = table.sort_values(["time", "source"], kind="stable").reset_index(drop=True)
        self.table = thin(table, thin_bucket_ns(self.definition.cadence_minutes))
        return self.table


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """A readings table with the READING_COLUMNS and their types (concat keeps them)."""
    import pandas as pd

    from ..analytics.schema import READING_COLUMNS

    out = table.reindex(columns=list(READING_COLUMNS))
    for column in ("time", "ingested_at"):
        out[column] = pd.to_datetime(out[column], utc=True).astype("datetime64[ns, UTC]")
    out["reading"] = pd.to_numeric(out["reading"], errors="coerce").astype("float64")
    for column in ("meter", "supplier", "unit", "source", "reset"):
        out[column] = out[column].astype(object)
    return out


type Loader = Callable[[EntityDefinition], Awaitable["pd.DataFrame | None"]]
type TemperatureReader = Callable[
    [EntityDefinition, datetime, datetime], Awaitable[Mapping[date, float]]
]


@dataclass(slots=True)
class MeterState:
    """What the sensors and diagnostics show of a meter from an entity."""

    reading: float | None = None
    reading_at: datetime | None = None
    total: float | None = None
    resets: list[Reset] = field(default_factory=list)
    # Readings not used, by reason (unavailable, not_numeric, negative, unit, ...).
    skipped: dict[str, int] = field(default_factory=dict)
    # Readings a hair below the one before, held (not resets).
    jitter: int = 0

    def skip(self, reason: str) -> None:
        """Count one reading set aside."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


class EntityMeters:
    """The meters from entities of the Composed meters entry: their readings, counted.

    The HA layer (entity_meters.EntityMeterFollower) gives it a loader (archive and recorder
    history), a reader of daily mean temperatures, and the live readings.
    """

    def __init__(self, executor: Executor, definitions: Sequence[EntityDefinition]) -> None:
        self._executor = executor
        self.definitions = {d.key: d for d in definitions}
        self.books = {d.key: ReadingBook(d) for d in definitions}
        self.states = {d.key: MeterState() for d in definitions}
        self.loader: Loader | None = None
        self.temperatures: TemperatureReader | None = None

    @property
    def meters(self) -> list[MeterInfo]:
        """One meter per subentry."""
        return [d.meter_info() for d in self.definitions.values()]

    async def async_ensure_loaded(self, key: str) -> ReadingBook:
        """The meter's book, its history read in on first use."""
        book = self.books[key]
        if not book.loaded and self.loader is not None:
            book.add_table(await self.loader(book.definition))
            book.loaded = True
        return book

    async def async_fetch(self, meter: MeterInfo, start: datetime, end: datetime) -> FetchResult:
        """Interval rows starting in [start, end) from every reading, and those readings."""
        started = datetime.now(UTC)
        definition = self.definitions[meter.key]
        book = await self.async_ensure_loaded(meter.key)
        temperatures: Mapping[date, float] | None = None
        if definition.profile == PROFILE_DEGREE_DAYS and self.temperatures is not None:
            temperatures = await self.temperatures(definition, start - _DEGREE_DAY_MARGIN, end)
        counted = await self._executor(_count, book, definition, start, end, temperatures)
        state = self.states[meter.key]
        state.reading, state.reading_at, state.total = (
            counted.reading,
            counted.reading_at,
            counted.total,
        )
        state.resets = [r for r in counted.resets if r.kind != "jitter"]
        state.jitter = len(counted.resets) - len(state.resets)
        for reason, number in counted.set_aside.items():
            state.skipped[reason] = number
        complete = None
        if not counted.intervals.empty:
            complete = min(counted.intervals["end"].max().to_pydatetime(), end)
        return FetchResult(
            intervals=counted.intervals,
            complete_until=complete,
            readings=counted.readings,
            audit=[
                AuditRecord(
                    time=started,
                    supplier=SUPPLIER,
                    endpoint="entity/readings",
                    status=None,
                    rows=len(counted.intervals),
                    duration_s=(datetime.now(UTC) - started).total_seconds(),
                )
            ],
        )


# Degree-day weights of the pair that reaches into a window start from far before it.
_DEGREE_DAY_MARGIN: Final = timedelta(days=MAX_GAP_DAYS_LIMIT)


def _count(
    book: ReadingBook,
    definition: EntityDefinition,
    start: datetime,
    end: datetime,
    temperatures: Mapping[date, float] | None,
) -> Counted:
    """Count the meter's readings (executor): intervals in the window, readings in it."""
    import pandas as pd

    from ..analytics.meter_readings import CounterSettings, count

    table = book.merged()
    settings = CounterSettings(
        meter=definition.key,
        supplier=SUPPLIER,
        kind=definition.kind,
        unit=definition.unit,
        cadence_minutes=definition.cadence_minutes,
        tz=definition.time_zone,
        max_gap_ns=definition.max_gap_ns,
        tolerance=definition.tolerance,
        rollover=definition.rollover,
        profile=definition.profile,
    )
    counted = count(
        table, settings, start=start, end=end, now=datetime.now(UTC), temperatures=temperatures
    )
    stamps = counted.readings["time"]
    inside = (stamps >= pd.Timestamp(start)) & (stamps < pd.Timestamp(end))
    return replace(counted, readings=counted.readings[inside].reset_index(drop=True))
