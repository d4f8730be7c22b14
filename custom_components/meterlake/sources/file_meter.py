"""File meters: meters whose intervals come only from imported files (`meterlake.import_file`).

A file meter is a subentry (type `file`) of the Composed meters entry: history of a meter no
longer served by any API (an old supplier's CSV, an earlier tool's database). Its rows reach the
archive, the statistics and the lake through the import action; a poll has nothing to fetch
(docs/architecture.md, "Imported files").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from .base import FetchResult, MeterInfo
from .composed import (
    CONF_CADENCE,
    CONF_KEY,
    CONF_KIND,
    CONF_NAME,
    CONF_SUBENTRY_ID,
    CONF_TIME_ZONE,
    CONF_TYPE,
    CONF_UNIT,
    DefinitionError,
)

SUPPLIER: Final = "file"
KEY_PREFIX: Final = "file_"
TYPE_FILE: Final = "file"
KINDS: Final = ("electricity", "gas", "water", "heat")
UNITS: Final = {
    "electricity": ("kWh",),
    "gas": ("kWh", "m³"),
    "water": ("m³",),
    "heat": ("kWh",),
}
CADENCES: Final = (15, 30, 60, 1440)


@dataclass(frozen=True, slots=True)
class FileDefinition:
    """One file meter as configured (a subentry's data, parsed)."""

    key: str
    name: str
    kind: str
    unit: str
    cadence_minutes: int
    time_zone: str
    subentry_id: str | None = None

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
            extra={CONF_TYPE: TYPE_FILE, CONF_SUBENTRY_ID: self.subentry_id},
        )


def parse(data: Mapping[str, Any], subentry_id: str | None = None) -> FileDefinition:
    """A subentry's data as a FileDefinition; DefinitionError when it is not one."""
    try:
        definition = FileDefinition(
            key=str(data[CONF_KEY]),
            name=str(data[CONF_NAME]),
            kind=str(data[CONF_KIND]),
            unit=str(data[CONF_UNIT]),
            cadence_minutes=int(data[CONF_CADENCE]),
            time_zone=str(data[CONF_TIME_ZONE]),
            subentry_id=subentry_id,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DefinitionError("definition_invalid", error=str(err)) from err
    if not definition.key.startswith(KEY_PREFIX):
        raise DefinitionError("definition_invalid", error=f"key {definition.key!r}")
    if definition.kind not in KINDS:
        raise DefinitionError("kind_invalid", kind=definition.kind)
    if definition.unit not in UNITS[definition.kind]:
        raise DefinitionError("unit_unsupported", unit=definition.unit, kind=definition.kind)
    if definition.cadence_minutes not in CADENCES:
        raise DefinitionError("cadence_invalid")
    return definition


class FileMeters:
    """The file meters of the Composed meters entry: nothing to poll, rows come by import."""

    def __init__(self, definitions: Sequence[FileDefinition]) -> None:
        self.definitions = {d.key: d for d in definitions}

    @property
    def meters(self) -> list[MeterInfo]:
        """One meter per subentry."""
        return [d.meter_info() for d in self.definitions.values()]

    async def async_fetch(self, meter: MeterInfo, start: datetime, end: datetime) -> FetchResult:
        """No rows: the archive already holds every imported one."""
        from ..analytics.intervals import empty_intervals

        return FetchResult(intervals=empty_intervals(), complete_until=None)
