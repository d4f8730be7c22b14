"""The action `meterlake.import_file`: history from a file into a meter, traceably.

A path Home Assistant allows (`allowlist_external_dirs`; a symlink out of them is refused, as
`is_allowed_path` resolves it) is parsed off the event loop (sources.files: Octopus CSV, a
generic CSV, JSON, JSON Lines, SQLite read-only). Its rows become interval rows of the target
meter with quality `imported` (intervals.normalize sets aside what is not a reading, with a
reason); rows of a length other than the meter's cadence are set aside too. A file never
overrides rows already stored unless `replace` is given, and rows equal to the stored ones are
duplicates either way, so importing a file again changes nothing. The raw file is kept,
gzip-compressed, under `raw/import/` with its SHA-256 in the name; agreements it holds go to
the archive's `agreements` dataset. The rows then take the way a poll's rows take (memory,
archive, statistics re-anchored over the window, the lake's changed-rows signal), without
moving the meter's watermark (docs/architecture.md, "Imported files").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
import gzip
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import probatio as vol

from .const import DOMAIN
from .sources.base import MeterInfo
from .sources.file_meter import CADENCES
from .sources.files import FORMATS

if TYPE_CHECKING:
    import pandas as pd

    from .archive import Archive
    from .coordinator import MeterLakeCoordinator
    from .sources.files import ParsedFile

ATTR_PATH: Final = "path"
ATTR_METER: Final = "meter"
ATTR_FORMAT: Final = "format"
ATTR_MAPPING: Final = "mapping"
ATTR_CADENCE: Final = "cadence_minutes"
ATTR_METER_POINT: Final = "meter_point"
ATTR_REPLACE: Final = "replace"
RAW_FOLDER: Final = "import"
HASH_CHUNK: Final = 1 << 20
MAPPED_COLUMNS: Final = ("start", "end", "value", "unit", "meter")

IMPORT_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_PATH): cv.string,
        vol.Required(ATTR_METER): cv.string,
        vol.Optional(ATTR_FORMAT): vol.In(FORMATS),
        vol.Optional(ATTR_MAPPING): {vol.In(MAPPED_COLUMNS): cv.string},
        vol.Optional(ATTR_CADENCE): vol.All(vol.Coerce(int), vol.In(CADENCES)),
        vol.Optional(ATTR_METER_POINT): cv.string,
        vol.Optional(ATTR_REPLACE, default=False): cv.boolean,
    }
)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A file's rows for one meter, checked and deduplicated (executor)."""

    frame: pd.DataFrame
    rejected: dict[str, int]
    duplicates: int
    agreements: pd.DataFrame


async def async_import_file(call: ServiceCall) -> ServiceResponse:
    """Import one file into one meter; the figures of what happened."""
    hass = call.hass
    path = str(call.data[ATTR_PATH])
    coordinator, meter = _target(hass, str(call.data[ATTR_METER]))
    if not await hass.async_add_executor_job(_allowed, hass, path):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="import_path_not_allowed",
            translation_placeholders={"file": path},
        )
    parsed = await _async_parse(hass, call, path, meter)
    lo, hi = await hass.async_add_executor_job(_window, parsed)
    stored = None if lo is None else await coordinator.async_stored_rows(meter, lo, hi)
    prepared = await hass.async_add_executor_job(
        lambda: _prepare(
            parsed,
            meter,
            stored,
            meter_point=call.data.get(ATTR_METER_POINT),
            replace=bool(call.data.get(ATTR_REPLACE, False)),
            path=path,
        )
    )
    archive = await coordinator.archive.async_open()
    raw = await hass.async_add_executor_job(_keep_raw, archive, path)
    if not prepared.frame.empty:
        await coordinator.async_keep_rows(meter, prepared.frame)
    if not prepared.agreements.empty:
        await coordinator.archive.async_write_agreements(prepared.agreements)
    response: dict[str, Any] = {
        "meter": meter.key,
        "file": Path(path).name,
        "format": parsed.format,
        "rows_read": parsed.rows_read,
        "stored": len(prepared.frame),
        "skipped_duplicates": prepared.duplicates,
        "rejected": dict(sorted(prepared.rejected.items())),
        "agreements": len(prepared.agreements),
        "raw": raw,
    }
    if not prepared.frame.empty:
        response["from"] = prepared.frame["start"].min().isoformat()
        response["until"] = prepared.frame["end"].max().isoformat()
    return response if call.return_response else None


def _window(parsed: ParsedFile) -> tuple[datetime | None, datetime | None]:
    """[first start, last start] of the file's rows, to read what is stored there."""
    from datetime import timedelta

    starts = parsed.rows["start"].dropna()
    if starts.empty:
        return None, None
    return starts.min().to_pydatetime(), starts.max().to_pydatetime() + timedelta(seconds=1)


def _target(hass: HomeAssistant, key: str) -> tuple[MeterLakeCoordinator, MeterInfo]:
    """The loaded meter a file goes into (not a grid series)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is not ConfigEntryState.LOADED:
            continue
        coordinator = entry.runtime_data.coordinator
        for meter in coordinator.source.meters:
            if meter.key == key and meter.kind != "grid":
                return coordinator, meter
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="meter_not_found",
        translation_placeholders={"meter": key},
    )


def _allowed(hass: HomeAssistant, path: str) -> bool:
    """An existing file inside an allowed directory (symlinks resolved)."""
    return hass.config.is_allowed_path(path) and Path(path).is_file()


async def _async_parse(
    hass: HomeAssistant, call: ServiceCall, path: str, meter: MeterInfo
) -> ParsedFile:
    from .sources.files import FileImportError, parse_file

    mapping: Mapping[str, str] | None = call.data.get(ATTR_MAPPING)
    try:
        return await hass.async_add_executor_job(
            lambda: parse_file(
                path,
                format=call.data.get(ATTR_FORMAT),
                mapping=mapping,
                tz=meter.time_zone,
                cadence_minutes=call.data.get(ATTR_CADENCE) or meter.cadence_minutes,
            )
        )
    except FileImportError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=f"import_{err.reason}",
            translation_placeholders=_placeholders(path, err.placeholders),
        ) from err
    except OSError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="import_unreadable",
            translation_placeholders={"file": Path(path).name, "line": str(err)},
        ) from err


def _placeholders(path: str, given: Mapping[str, str]) -> dict[str, str]:
    """Every placeholder an import error's text may use: where in the file, in words."""
    where = given.get("line")
    if where is None and "record" in given:
        where = f"record {given['record']}"
    if where is None and "row" in given:
        where = f"row {given['row']}"
    return {
        "table": "the file",
        "size": "",
        "limit": "",
        "column": "",
        **given,
        "file": Path(path).name,
        "line": where or "?",
    }


def _prepare(
    parsed: ParsedFile,
    meter: MeterInfo,
    stored: pd.DataFrame | None,
    *,
    meter_point: str | None,
    replace: bool,
    path: str,
) -> Prepared:
    """The file's rows as the meter's interval rows, checked and deduplicated (executor)."""
    import numpy as np
    import pandas as pd

    from .analytics.compose import convert
    from .analytics.intervals import dedupe, normalize

    rows = parsed.rows
    rejected = dict(parsed.rejected)
    points = sorted({str(p) for p in rows["meter"].dropna().unique()})
    if meter_point is not None:
        rows = rows[rows["meter"].astype(str) == meter_point]
    elif len(points) > 1:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="import_several_meters",
            translation_placeholders={"file": Path(path).name, "meters": ", ".join(points)},
        )
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=np.float64)
    units = rows["unit"].where(rows["unit"].notna(), meter.unit).astype(str).to_numpy()
    converted = values.copy()
    unknown = np.zeros(len(rows), dtype=bool)
    for unit in pd.unique(units):
        at = units == unit
        if unit == meter.unit:
            continue
        if _converts(unit, meter):
            converted[at] = convert(
                values[at], unit, meter.unit, calorific_value=39.5, volume_correction=1.02264
            )
        else:
            unknown |= at
    if unknown.any():
        rejected["unknown_unit"] = rejected.get("unknown_unit", 0) + int(unknown.sum())
    table = pd.DataFrame(
        {"start": rows["start"].to_numpy(), "end": rows["end"].to_numpy(), "value": converted}
    )[~unknown]
    result = normalize(
        table,
        meter=meter.key,
        supplier=meter.supplier,
        kind=meter.kind,
        unit=meter.unit,
        quality="imported",
        naive_tz=meter.time_zone,
    )
    for reason, count in result.reason_counts().items():
        rejected[reason] = rejected.get(reason, 0) + count
    frame = dedupe(result.frame)
    if meter.cadence_minutes < 1440 and not frame.empty:
        length = (frame["end"] - frame["start"]).dt.total_seconds()
        off = (length != meter.cadence_minutes * 60).to_numpy()
        if off.any():
            rejected["outside_cadence"] = rejected.get("outside_cadence", 0) + int(off.sum())
            frame = frame[~off]
    duplicates = 0
    if stored is not None and not stored.empty and not frame.empty:
        known = stored.set_index("start")["value"]
        at = frame["start"].isin(known.index).to_numpy()
        same = np.zeros(len(frame), dtype=bool)
        if at.any():
            before = known.reindex(frame["start"][at]).to_numpy(dtype=np.float64)
            same[at] = np.isclose(before, frame["value"][at].to_numpy(), rtol=0, atol=1e-12)
        drop = same | (at & (not replace))
        duplicates = int(drop.sum())
        frame = frame[~drop]
    agreements = parsed.agreements
    if not agreements.empty:
        agreements = agreements.assign(
            meter=meter.key if len(points) <= 1 or meter_point is not None else agreements["meter"],
            source="file",
            ingested_at=dt_util.utcnow(),
        )
    return Prepared(frame.reset_index(drop=True), rejected, duplicates, agreements)


def _converts(unit: str, meter: MeterInfo) -> bool:
    """Whether values in `unit` are the meter's quantity (energy, volume; both for gas).

    Volume and energy convert into each other only for gas, where the calorific value links
    them: kWh are no volume of water.
    """
    from .analytics.compose import convertible
    from .analytics.units import energy_unit_factor

    if not convertible(unit, meter.unit):
        return False
    same = (energy_unit_factor(unit) is None) == (energy_unit_factor(meter.unit) is None)
    return same or meter.kind == "gas"


def _keep_raw(archive: Archive, path: str) -> str:
    """Keep the file, gzip-compressed, named by its SHA-256 (once: a second copy is skipped)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    name = f"{digest.hexdigest()}-{Path(path).name}.gz"
    return archive.write_raw_file(
        RAW_FOLDER, name, lambda: gzip.compress(Path(path).read_bytes(), mtime=0)
    )
