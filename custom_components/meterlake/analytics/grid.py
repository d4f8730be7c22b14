"""eCO2mix grid rows as pure pandas: parse ODRE records, pick the latest values, describe the mix.

ODRE sends numbers as JSON numbers, as numeric strings ("239") or as placeholders ("ND", "-",
""), and keys every row on `date_heure` (an instant with its offset). `date` + `heure` are Paris
wall time, which skips or repeats an hour at the DST changes, so they are never a key here.

A grid frame has `start` and `end` (UTC, a quarter-hour apart), every field of
archive.GRID_MIX_FIELDS as float64 (NaN when unknown, never zero), the other numeric fields the
rows carried (name order), `consolidated` (bool) and `ingested_at`. One row per start; where a
consolidated and a real-time row meet, the consolidated one stays (RTE's later, checked values).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
import math
from typing import Any, Final

import numpy as np
import pandas as pd

from ..archive import GRID_MIX_FIELDS

SLOT: Final = timedelta(minutes=15)

# Text fields of the national and regional datasets; `code_insee_region` looks numeric but is a
# code. Everything else that parses as a number is a measurement.
TEXT_FIELDS: Final = frozenset(
    {"perimetre", "nature", "date", "heure", "date_heure", "code_insee_region", "libelle_region"}
)
# What ODRE writes for "no value"; compared after removing blanks, case-insensitively.
PLACEHOLDERS: Final = frozenset({"", "ND", "-", "NA", "N/A"})
_BLANKS: Final = r"[\s\u00a0\u202f]"

# Producing sectors. Pumped storage (`pompage`, <= 0), battery charging and the exchanges are
# flows, not production. `thermique` is the regional datasets' fossil total: it counts only
# where the fossil split (fioul, gaz, charbon) is absent, so nothing is counted twice.
PRODUCTION_FIELDS: Final = (
    "nucleaire",
    "eolien",
    "solaire",
    "hydraulique",
    "gaz",
    "fioul",
    "charbon",
    "bioenergies",
    "thermique",
    "destockage_batterie",
)
FOSSIL_SPLIT: Final = ("fioul", "gaz", "charbon")
LOW_CARBON_FIELDS: Final = ("nucleaire", "eolien", "solaire", "hydraulique", "bioenergies")
RENEWABLE_FIELDS: Final = ("eolien", "solaire", "hydraulique", "bioenergies")

_TIME_COLUMNS: Final = ("start", "end", "ingested_at")
_UTC_NS: Final = "datetime64[ns, UTC]"


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------


def parse_records(
    records: Iterable[Any], *, consolidated: bool, ingested_at: datetime | None = None
) -> tuple[pd.DataFrame, int]:
    """ODRE records as a grid frame, and how many were rejected (no usable `date_heure`).

    A row whose `consommation` is null is kept with NaN: the newest quarter-hours often carry
    forecasts before the measurement, and a zero would read as a blackout. Duplicate starts keep
    the later record.
    """
    items = list(records)
    rows = [r for r in items if isinstance(r, Mapping)]
    rejected = len(items) - len(rows)
    stamp = pd.Timestamp(ingested_at or datetime.now(UTC)).tz_convert(UTC)
    if not rows:
        return empty_grid(), rejected
    raw = pd.DataFrame.from_records(rows)
    start = _starts(raw)
    data: dict[str, Any] = {"start": start, "end": start + pd.Timedelta(SLOT)}
    extra: dict[str, pd.Series] = {}
    for column in raw.columns:
        name = str(column)
        if name in TEXT_FIELDS or name in GRID_MIX_FIELDS:
            continue
        values, numeric = _numbers(raw[column])
        if numeric:
            extra[name] = values
    for name in GRID_MIX_FIELDS:
        data[name] = _numbers(raw[name])[0] if name in raw.columns else np.nan
    data.update(sorted(extra.items()))
    data["consolidated"] = consolidated
    data["ingested_at"] = stamp
    frame = pd.DataFrame(data, index=raw.index)
    known = start.notna()
    rejected += int((~known).sum())
    frame = frame[known].drop_duplicates("start", keep="last")
    return _typed(frame.sort_values("start", kind="stable")), rejected


def empty_grid() -> pd.DataFrame:
    """A grid frame with no rows and the right dtypes."""
    data: dict[str, Any] = {
        "start": pd.Series([], dtype=_UTC_NS),
        "end": pd.Series([], dtype=_UTC_NS),
    }
    data.update({name: pd.Series([], dtype="float64") for name in GRID_MIX_FIELDS})
    data["consolidated"] = pd.Series([], dtype=bool)
    data["ingested_at"] = pd.Series([], dtype=_UTC_NS)
    return pd.DataFrame(data)


def _starts(raw: pd.DataFrame) -> pd.Series:
    """`date_heure` as UTC instants; NaT where it is missing, not text or not a time."""
    if "date_heure" not in raw.columns:
        return pd.Series(pd.NaT, index=raw.index, dtype=_UTC_NS)
    values = raw["date_heure"].astype(object)
    is_text = values.map(lambda v: isinstance(v, str)).astype(bool)
    parsed = pd.to_datetime(values.where(is_text), utc=True, errors="coerce", format="ISO8601")
    return pd.Series(parsed, index=raw.index).astype(_UTC_NS)


def _numbers(values: pd.Series) -> tuple[pd.Series, bool]:
    """A column as float64 (placeholders, junk and infinities -> NaN), and whether it is numeric.

    A column is numeric when one value parses, or when it holds nothing but nulls and
    placeholders (a field that is "ND" all day is still a measurement).
    """
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in {"integer", "floating", "mixed-integer-float", "empty"}:
        return _finite(pd.to_numeric(values, errors="coerce")), True
    objects = values.astype(object)
    is_text = objects.map(lambda v: isinstance(v, str))
    is_number = objects.map(
        lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    )
    cleaned = objects.where(is_text).str.replace(_BLANKS, "", regex=True)
    placeholder = is_text & cleaned.str.upper().isin(PLACEHOLDERS)
    from_text = pd.to_numeric(
        cleaned.where(is_text & ~placeholder).str.replace(",", ".", regex=False), errors="coerce"
    )
    from_numbers = pd.to_numeric(objects.where(is_number), errors="coerce")
    parsed = _finite(from_numbers.where(is_number, from_text))
    junk = (is_text & ~placeholder & from_text.isna()) | (~is_text & ~is_number & objects.notna())
    return parsed, bool(parsed.notna().any() or not junk.any())


def _finite(values: pd.Series) -> pd.Series:
    out = values.astype("float64")
    return out.where(np.isfinite(out))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Index reset; timestamps ns UTC, numbers float64, `consolidated` bool."""
    frame = frame.reset_index(drop=True)
    for name in _TIME_COLUMNS:
        frame[name] = frame[name].astype(_UTC_NS)
    frame["consolidated"] = _flags(frame["consolidated"])
    for name in numeric_columns(frame):
        frame[name] = frame[name].astype("float64")
    return frame


def _flags(values: pd.Series) -> pd.Series:
    """`consolidated` as plain bool; a missing flag means real time."""
    return values.where(values.notna(), False).astype(bool)


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """The measurement columns of a grid frame, in frame order."""
    skip = {*_TIME_COLUMNS, "consolidated"}
    return [str(c) for c in frame.columns if c not in skip]


# --------------------------------------------------------------------------------------------
# combining frames
# --------------------------------------------------------------------------------------------


def dedupe(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per start, sorted: consolidated beats real time, then the newer `ingested_at`.

    Among equals the later row wins, so a frame appended after another replaces its rows.
    """
    if frame.empty:
        return _typed(frame)
    work = frame.assign(
        consolidated=_flags(frame["consolidated"]),
        _pos=np.arange(len(frame)),
    )
    work = work.sort_values(
        ["start", "consolidated", "ingested_at", "_pos"], kind="stable", na_position="first"
    )
    kept = work.drop_duplicates("start", keep="last").drop(columns="_pos")
    return _typed(kept)


def merge_recent(
    old: pd.DataFrame | None,
    new: pd.DataFrame | None,
    horizon: datetime | timedelta,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """A small recent grid frame for the sensors: old and new merged (see `dedupe`).

    `horizon` is either the cutoff (a datetime: rows starting before it are dropped) or a
    duration back from `now`, which defaults to the newest end.
    """
    frames = [f for f in (old, new) if f is not None and not f.empty]
    if not frames:
        return empty_grid()
    combined = dedupe(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
    if isinstance(horizon, datetime):
        cutoff = pd.Timestamp(horizon)
    else:
        reference = pd.Timestamp(now) if now is not None else combined["end"].max()
        cutoff = reference - pd.Timedelta(horizon)
    kept = combined[combined["start"] >= cutoff]
    return kept.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# latest values and the mix
# --------------------------------------------------------------------------------------------


def latest_values(frame: pd.DataFrame) -> dict[str, tuple[datetime, float]]:
    """The newest known value of every numeric field, with the start of its quarter-hour.

    Fields are read one by one: the newest rows often have forecasts but no consumption yet,
    and a field unknown at the newest start still has a value a quarter-hour earlier.
    """
    ordered = frame.sort_values("start", kind="stable")
    starts = ordered["start"]
    out: dict[str, tuple[datetime, float]] = {}
    for name in numeric_columns(ordered):
        values = ordered[name].to_numpy(dtype="float64")
        known = np.flatnonzero(~np.isnan(values))
        if known.size:
            last = int(known[-1])
            stamp = pd.Timestamp(starts.iloc[last]).tz_convert(UTC)
            out[name] = (stamp.to_pydatetime(), float(values[last]))
    return out


def latest_mix(frame: pd.DataFrame) -> tuple[datetime, dict[str, float]] | None:
    """The newest quarter-hour with a positive production total, as {field: known value}.

    The shares need one coherent row, not fields picked from different quarter-hours.
    """
    if frame.empty:
        return None
    ordered = frame.sort_values("start", kind="stable").reset_index(drop=True)
    for position in range(len(ordered) - 1, -1, -1):
        row = _row_values(ordered, position)
        total = production_total(row)
        if total is not None and total > 0:
            stamp = pd.Timestamp(ordered["start"].iloc[position]).tz_convert(UTC)
            return stamp.to_pydatetime(), row
    return None


def _row_values(frame: pd.DataFrame, position: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in numeric_columns(frame):
        value = float(frame[name].iloc[position])
        if not math.isnan(value):
            out[name] = value
    return out


def production_total(row_values: Mapping[str, Any]) -> float | None:
    """Total production in MW: the known fields of PRODUCTION_FIELDS summed; None if none known.

    Nuclear, wind, solar, hydro, gas, oil, coal, bioenergy, battery discharge, and the regional
    `thermique` where no fossil split is given. Pumping, battery charging and exchanges are
    excluded: they move energy, they do not produce it.
    """
    fields = [f for f in PRODUCTION_FIELDS if f != "thermique"]
    if not any(_value(row_values, f) is not None for f in FOSSIL_SPLIT):
        fields.append("thermique")
    known = [v for f in fields if (v := _value(row_values, f)) is not None]
    return math.fsum(known) if known else None


def low_carbon_share(row_values: Mapping[str, Any]) -> float | None:
    """Low-carbon share of production, %: (nuclear + wind + solar + hydro + bioenergy) / total.

    Unknown parts count as zero; None when the total is unknown or not positive.
    """
    return _share(row_values, LOW_CARBON_FIELDS)


def renewable_share(row_values: Mapping[str, Any]) -> float | None:
    """Renewable share of production, %: (wind + solar + hydro + bioenergy) / total.

    Hydro is RTE's `hydraulique`, pumped-storage turbining included. Unknown parts count as
    zero; None when the total is unknown or not positive.
    """
    return _share(row_values, RENEWABLE_FIELDS)


def _share(row_values: Mapping[str, Any], fields: tuple[str, ...]) -> float | None:
    total = production_total(row_values)
    if total is None or total <= 0:
        return None
    part = math.fsum(v for f in fields if (v := _value(row_values, f)) is not None)
    return 100.0 * part / total


def _value(row_values: Mapping[str, Any], name: str) -> float | None:
    """A finite float, or None (missing, null, NaN, placeholder or text)."""
    raw = row_values.get(name)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except TypeError, ValueError:
        return None
    return value if math.isfinite(value) else None
