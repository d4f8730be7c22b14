"""Supplier exports and older tools' files read into frames, without Home Assistant.

Pure I/O and parsing, blocking: the caller runs `parse_file` in an executor and passes
`ParsedFile.rows` through `analytics.intervals.normalize`, which sets aside what is wrong with
a row's values. This module only rejects what the format itself makes unusable (a short line,
a time it cannot read, a row of another cadence or of an unknown unit) and counts those in
`ParsedFile.rejected`; rejected rows are left out of `rows`.

Formats (FORMATS):

* octopus_csv - the Octopus dashboard export: ` Consumption (kWh), Start, End`, times with
  offsets, kWh, no meter column;
* csv - any CSV with a start column, a value column and optionally end, unit and meter columns,
  named by `mapping` or guessed from common names; `,`, `;` or tab (sniffed from the header);
  a decimal comma is read when the delimiter is `;`;
* json - a list of records, or an object with such a list under "results" (Octopus's API);
* jsonl - one record per line;
* sqlite - a database of an older tool, opened read-only and immutable; tables and columns
  are discovered from sqlite_master and PRAGMA table_info, read with a plain SELECT of quoted
  identifiers; no SQL text found in the file is ever executed.

Times with an offset or `Z` are read as such; naive times are wall times in `tz`
(intervals.localize_wall_ns: the repeated autumn hour in input order, the skipped spring hour
with the offset before the gap). Numbers as times are Unix seconds (milliseconds above 1e11).

Errors are FileImportError with a translation key as `reason`: unknown_format, too_large,
unreadable, truncated, bad_line, empty_file, columns_not_found, column_missing,
cadence_required, json_invalid, json_not_a_list, json_bad_line, sqlite_unreadable,
sqlite_no_readings, mixed_units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
import json
from pathlib import Path
import re
import sqlite3
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import pyarrow as pa

FORMATS: Final = ("octopus_csv", "csv", "json", "jsonl", "sqlite")
MAX_BYTES: Final = 512 * 1024 * 1024

SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_HEAD_BYTES: Final = 64 * 1024
# Readings read from SQLite as one string: between values char(31), for a value that is not
# text char(30) (a text of just that character is read row by row).
_SEPARATOR: Final = "\x1f"
_NOT_TEXT: Final = "\x1e"
_NAT: Final = -(2**63)
_NS_PER_S: Final = 1_000_000_000
_NS_PER_MINUTE: Final = 60 * _NS_PER_S
# An offset or `Z` after a time of day (as in analytics.intervals); a bare date must not match.
_OFFSET_PATTERN: Final = r"[Tt ]\d\d[:.,\d]*(?:[Zz]|[+-]\d\d(?::?\d\d)?)$"
_EPOCH_MS_ABOVE: Final = 1e11

REJECT_UNPARSEABLE_TIME: Final = "unparseable_time"
REJECT_MISSING_VALUE: Final = "missing_value"
REJECT_OUTSIDE_CADENCE: Final = "outside_cadence"
REJECT_UNKNOWN_UNIT: Final = "unknown_unit"

ROW_COLUMNS: Final = ("meter", "start", "end", "value", "unit")
AGREEMENT_FILE_COLUMNS: Final = ("meter", "tariff", "valid_from", "valid_to", "product")

# Column names, normalized (lower case, runs of non-alphanumerics as "_", a trailing unit in
# brackets dropped), by role, best first.
_CANDIDATES: Final[dict[str, tuple[str, ...]]] = {
    "start": (
        "interval_start",
        "start",
        "start_time",
        "period_start",
        "from",
        "timestamp",
        "time",
        "datetime",
        "date_time",
        "read_at",
    ),
    "end": ("interval_end", "end", "end_time", "period_end", "to"),
    "value": (
        "consumption",
        "value",
        "consumption_kwh",
        "kwh",
        "reading",
        "usage",
        "energy",
        "energy_kwh",
    ),
    "unit": ("unit", "units", "uom"),
    "meter": (
        "meter",
        "meter_point",
        "mpan",
        "mprn",
        "meter_id",
        "meter_point_id",
        "serial_number",
        "serial",
    ),
}
_TARIFF_NAMES: Final = ("tariff_code", "tariff")
_PRODUCT_NAMES: Final = ("product_code", "product")
_FROM_NAMES: Final = ("valid_from", "from", "start", "starts_at", "agreement_from")
_TO_NAMES: Final = ("valid_to", "to", "end", "ends_at", "agreement_to")
_POINT_NAMES: Final = ("mpan", "mprn", "meter_point", "meter_point_id", "meter", "meter_id")
_SERIAL_NAMES: Final = ("serial", "serial_number", "meter_serial")
_CODE_NAMES: Final = ("code", "product_code")
_NAME_NAMES: Final = ("display_name", "name", "full_name", "title")
# Octopus tariff codes: E-1R-<product>-<region>, E-2R-... for two registers, G-... for gas.
_TARIFF_CODE: Final = re.compile(r"^[EG]-\dR-(.+)-[A-P]$")

# Units a file may name, by how they are spelled; values are the canonical spelling.
_UNITS: Final = {
    "kwh": "kWh",
    "wh": "Wh",
    "mwh": "MWh",
    "gj": "GJ",
    "mj": "MJ",
    "m³": "m³",
    "m3": "m³",
    "l": "L",
    "ft³": "ft³",
    "ft3": "ft³",
    "ccf": "CCF",
    "gal": "gal",
}


class FileImportError(ValueError):
    """A file that cannot be imported; `reason` is a translation key, placeholders its values."""

    def __init__(self, reason: str, **placeholders: str) -> None:
        super().__init__(
            reason + "".join(f" {key}={value}" for key, value in sorted(placeholders.items()))
        )
        self.reason = reason
        self.placeholders: dict[str, str] = dict(placeholders)


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """What a file holds: intervals (`rows`), agreements and products, and what was rejected.

    rows: meter (str or None), start, end (datetime64[ns, UTC]), value (float64, NaN where not a
    number), unit (str or None). agreements: meter, tariff, valid_from, valid_to (UTC; valid_to
    NaT = open-ended), product. products: code, name and any rate or charge columns.
    """

    format: str
    rows: pd.DataFrame
    agreements: pd.DataFrame
    products: pd.DataFrame
    rows_read: int
    rejected: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _name(path: str) -> str:
    return Path(path).name


def _head(path: str) -> bytes:
    try:
        with Path(path).open("rb") as handle:
            return handle.read(_HEAD_BYTES)
    except OSError as err:
        raise FileImportError("unreadable", file=_name(path), line="1") from err


def _decode_head(head: bytes) -> str | None:
    """The head of a text file as text (a character cut at the end forgiven); None if binary."""
    if b"\x00" in head:
        return None
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8-sig")
        except UnicodeDecodeError:
            continue
    return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _sniff_delimiter(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _is_jsonl(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        first = json.loads(lines[0])
    except ValueError:
        return False
    return isinstance(first, dict)


def detect_format(path: str) -> str:
    """The format of a file from its first bytes (FORMATS); FileImportError otherwise."""
    head = _head(path)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    text = _decode_head(head)
    stripped = text.lstrip() if text is not None else ""
    if not stripped:
        raise FileImportError("unknown_format", file=_name(path))
    if stripped[0] == "[":
        return "json"
    if stripped[0] == "{":
        return "jsonl" if _is_jsonl(stripped) else "json"
    header = _first_line(stripped)
    fields = [part.strip().lower() for part in header.split(_sniff_delimiter(header))]
    if {"consumption (kwh)", "start", "end"} <= set(fields):
        return "octopus_csv"
    if len(fields) >= 2 and all(fields):
        return "csv"
    raise FileImportError("unknown_format", file=_name(path))


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def _normalized(column: str) -> str:
    base = re.sub(r"\s*[\(\[][^\)\]]*[\)\]]\s*$", "", column.strip())
    return re.sub(r"[^0-9a-z³]+", "_", base.lower()).strip("_")


def _bracket_unit(column: str) -> str | None:
    """A unit named in a column's header: `Consumption (kWh)`, `consumption_kwh`."""
    found = re.search(r"[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*$", column.strip())
    if found:
        return _UNITS.get(found.group(1).lower())
    last = _normalized(column).rsplit("_", 1)[-1]
    return _UNITS.get(last) if last in ("kwh", "wh", "mwh", "m3", "m³") else None


def _find(columns: Iterable[str], names: Sequence[str]) -> str | None:
    by_name: dict[str, str] = {}
    for column in columns:
        by_name.setdefault(_normalized(column), column)
    for name in names:
        if name in by_name:
            return by_name[name]
    return None


def _pick_columns(
    columns: Sequence[str], mapping: Mapping[str, str] | None, placeholders: dict[str, str]
) -> dict[str, str]:
    """Which column plays which role (start, value and optionally end, unit, meter)."""
    picked: dict[str, str] = {}
    if mapping:
        known = set(columns)
        for role, column in mapping.items():
            if role not in _CANDIDATES:
                continue
            if column not in known:
                raise FileImportError("column_missing", column=str(column), **placeholders)
            picked[role] = column
    else:
        for role, names in _CANDIDATES.items():
            found = _find([c for c in columns if c not in picked.values()], names)
            if found is not None:
                picked[role] = found
    if "start" not in picked or "value" not in picked:
        raise FileImportError("columns_not_found", **placeholders)
    return picked


def _check_size(path: str, max_bytes: int) -> None:
    try:
        size = Path(path).stat().st_size
    except OSError as err:
        raise FileImportError("unreadable", file=_name(path), line="1") from err
    if size > max_bytes:
        raise FileImportError("too_large", file=_name(path), size=str(size), limit=str(max_bytes))


def _times(column: pd.Series | pa.Array, tz: str) -> npt.NDArray[np.int64]:
    """A column of times (strings, numbers or datetimes) as UTC ns; _NAT where unreadable.

    An Arrow array is a column of strings or nulls (_arrow_csv, _sqlite_columns).
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from ..analytics.intervals import localize_wall_ns

    if isinstance(column, pa.Array):
        return _text_times(column, tz)
    n = len(column)
    out = np.full(n, _NAT, dtype=np.int64)
    if not n:
        return out
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _ns(pd.DatetimeIndex(column).tz_convert("UTC"))
    if pd.api.types.is_datetime64_dtype(dtype):
        return localize_wall_ns(_ns(pd.DatetimeIndex(column)), tz)
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    if inferred in ("string", "empty"):
        strings = np.ones(n, dtype=bool)
        texts = pa.array(column.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    else:
        items = column.to_numpy(dtype=object)
        if inferred in ("integer", "floating", "mixed-integer-float"):
            numbers = np.asarray(column.notna(), dtype=bool)
        else:
            numbers = np.fromiter(
                (isinstance(x, int | float) and not isinstance(x, bool) for x in items),
                dtype=bool,
                count=n,
            )
        if numbers.any():
            seconds = pd.to_numeric(pd.Series(items[numbers], dtype=object), errors="coerce")
            raw = seconds.to_numpy(dtype=np.float64, na_value=np.nan)
            scaled = np.where(np.abs(raw) > _EPOCH_MS_ABOVE, raw * 1e6, raw * 1e9)
            finite = np.isfinite(scaled)
            picked = np.full(len(raw), _NAT, dtype=np.int64)
            picked[finite] = np.round(scaled[finite]).astype(np.int64)
            out[numbers] = picked
        strings = np.fromiter((isinstance(x, str) for x in items), dtype=bool, count=n)
        if not strings.any():
            return out
        texts = pa.array(items[strings], type=pa.string())
    out[strings] = _text_times(texts, tz)
    return out


def _text_times(texts: pa.Array, tz: str) -> npt.NDArray[np.int64]:
    """Arrow strings (or nulls) as UTC ns: all at once by Arrow, else _slow_times."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pc.utf8_trim_whitespace(texts)
    try:
        stamps = pc.cast(texts, pa.timestamp("ns", tz="UTC"))
    except pa.ArrowInvalid:
        return _slow_times(texts, tz)
    ints = pc.fill_null(stamps.cast(pa.int64()), _NAT)
    return np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.int64)


def _slow_times(texts: Any, tz: str) -> npt.NDArray[np.int64]:
    """Strings Arrow could not read all at once: offsets and naive local times apart."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    from ..analytics.intervals import localize_wall_ns

    items = np.asarray(texts.to_pylist(), dtype=object)
    n = len(items)
    out = np.full(n, _NAT, dtype=np.int64)
    has_offset = np.asarray(
        pc.fill_null(pc.match_substring_regex(texts, _OFFSET_PATTERN), False).to_numpy(
            zero_copy_only=False
        ),
        dtype=bool,
    )
    if has_offset.any():
        parsed = pd.to_datetime(
            pd.Series(items[has_offset], dtype=object), format="ISO8601", utc=True, errors="coerce"
        )
        out[has_offset] = _ns(pd.DatetimeIndex(parsed))
    naive = ~has_offset & np.asarray(pd.notna(items), dtype=bool)
    if naive.any():
        series = pd.Series(items[naive], dtype=object)
        walls = _ns(pd.DatetimeIndex(pd.to_datetime(series, format="ISO8601", errors="coerce")))
        failed = walls == _NAT
        if failed.any():  # e.g. 29/03/2026 01:00 in a UK export
            again = pd.to_datetime(series[failed], format="mixed", dayfirst=True, errors="coerce")
            if not isinstance(again.dtype, pd.DatetimeTZDtype):
                walls[failed] = _ns(pd.DatetimeIndex(again))
        out[naive] = localize_wall_ns(walls, tz)
    return out


def _ns(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    import numpy as np

    if index.tz is not None:
        index = index.tz_convert(None)
    return np.asarray(index.as_unit("ns").to_numpy(), dtype="M8[ns]").view(np.int64).copy()


def _utc(ns: npt.NDArray[np.int64]) -> Any:
    import numpy as np
    import pandas as pd

    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]")).tz_localize("UTC")


def _series(strings: pa.Array) -> pd.Series:
    """Arrow strings as the object Series pandas reads (NaN for null)."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    encoded = _encoded(strings)
    words = np.asarray([*encoded.dictionary.to_pylist(), np.nan], dtype=object)
    index = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    return pd.Series(words[np.asarray(index, dtype=np.intp)], dtype=object)


def _encoded(strings: pa.Array) -> Any:
    """Arrow strings as a dictionary array (as they are if already one)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return strings if pa.types.is_dictionary(strings.type) else pc.dictionary_encode(strings)


def _strings(column: pd.Series | pa.Array | None, n: int) -> npt.NDArray[Any]:
    """Stripped strings, None for null or blank."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if column is None:
        return np.full(n, None, dtype=object)
    if isinstance(column, pa.Array):
        import pyarrow.compute as pc

        encoded = _encoded(column)
        words = [str(item).strip() or None for item in encoded.dictionary.to_pylist()]
        index = pc.fill_null(encoded.indices, len(words)).to_numpy()
        return np.asarray([*words, None], dtype=object)[np.asarray(index, dtype=np.intp)]
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    cleaned = [str(item).strip() or None for item in uniques.tolist()]
    return np.asarray([*cleaned, None], dtype=object)[np.asarray(codes)]


def _numbers(column: pd.Series | pa.Array, decimal_comma: bool) -> npt.NDArray[np.float64]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(column, pa.Array):  # strings (or nulls): as an object column of them
        import pyarrow.compute as pc

        texts = pc.utf8_trim_whitespace(column)
        if decimal_comma:
            texts = pc.replace_substring(texts, ",", ".")
        try:
            floats = pc.cast(texts, pa.float64())
        except pa.ArrowInvalid:
            column = _series(column)
        else:
            return np.asarray(
                pc.fill_null(floats, np.nan).to_numpy(zero_copy_only=False), dtype=np.float64
            )
    if pd.api.types.is_bool_dtype(column.dtype):
        return np.full(len(column), np.nan)
    if pd.api.types.is_numeric_dtype(column.dtype):
        return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    items = column.to_numpy(dtype=object)
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    if inferred == "string":
        import pyarrow as pa
        import pyarrow.compute as pc

        texts = pc.utf8_trim_whitespace(pa.array(items, type=pa.string(), from_pandas=True))
        if decimal_comma:
            texts = pc.replace_substring(texts, ",", ".")
        try:
            floats = pc.cast(texts, pa.float64())
        except pa.ArrowInvalid:
            pass
        else:
            return np.asarray(
                pc.fill_null(floats, np.nan).to_numpy(zero_copy_only=False), dtype=np.float64
            )
    if inferred in ("boolean", "mixed", "mixed-integer"):
        flags = np.fromiter((isinstance(x, bool) for x in items), dtype=bool, count=len(items))
        if flags.any():  # JSON true is not 1 kWh
            items = items.copy()
            items[flags] = None
    series = pd.Series(items, dtype=object)
    if decimal_comma:
        series = series.astype("string").str.replace(",", ".", regex=False).astype(object)
    coerced = pd.to_numeric(series, errors="coerce")
    return np.asarray(
        pd.Series(coerced).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
    )


def _canonical_units(
    units: npt.NDArray[Any],
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_], int]:
    """(canonical spellings, unknown mask, how many units) of unit strings (None = not given)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(units, use_na_sentinel=True)
    spelled = [_UNITS.get(str(unit).lower().replace(" ", "")) for unit in uniques.tolist()]
    known = np.asarray([*(unit is not None for unit in spelled), True], dtype=bool)
    canonical = np.asarray([*spelled, None], dtype=object)
    index = np.asarray(codes)
    return canonical[index], ~known[index], len({u for u in spelled if u is not None})


@dataclass
class _Rows:
    """Rows being built, with each one's line (or record) number for messages."""

    meter: npt.NDArray[Any]
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    unit: npt.NDArray[Any]
    line: npt.NDArray[np.int64]
    has_meter: bool
    rejected: dict[str, int] = field(default_factory=dict)

    def drop(self, mask: npt.NDArray[np.bool_], reason: str) -> None:
        count = int(mask.sum())
        if not count:
            return
        self.rejected[reason] = self.rejected.get(reason, 0) + count
        keep = ~mask
        self.meter = self.meter[keep]
        self.start = self.start[keep]
        self.end = self.end[keep]
        self.value = self.value[keep]
        self.unit = self.unit[keep]
        self.line = self.line[keep]

    def frame(self) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        return pd.DataFrame(
            {
                "meter": self.meter,
                "start": _utc(self.start),
                "end": _utc(self.end),
                "value": np.asarray(self.value, dtype=np.float64),
                "unit": self.unit,
            },
            columns=list(ROW_COLUMNS),
        )


def _rows_from_table(
    table: pd.DataFrame | Mapping[str, Any],
    picked: Mapping[str, str],
    *,
    tz: str,
    cadence_minutes: int | None,
    lines: npt.NDArray[np.int64],
    default_unit: str | None,
    decimal_comma: bool,
    placeholders: dict[str, str],
    where: str = "line",
) -> _Rows:
    """Column roles -> rows; format-level rejects counted and dropped; mixed units refused.

    `table`: a frame, or columns by name (Series, or Arrow strings); one line each.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    n = len(lines)
    start = _times(table[picked["start"]], tz)
    values = table[picked["value"]]
    value = _numbers(values, decimal_comma)
    if isinstance(values, pa.Array):
        missing = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    else:
        missing = np.asarray(values.isna(), dtype=bool)
    unread = np.flatnonzero(np.isnan(value) & ~missing)
    if len(unread) and (isinstance(values, pa.Array) or values.dtype == object):
        if isinstance(values, pa.Array):
            items = values.take(unread).to_pylist()
        else:
            items = values.iloc[unread].tolist()
        blank = [isinstance(x, str) and not x.strip() for x in items]
        missing[unread[np.asarray(blank, dtype=bool)]] = True
    if "end" in picked:
        end = _times(table[picked["end"]], tz)
    elif cadence_minutes is None:
        raise FileImportError("cadence_required", **placeholders)
    else:
        end = np.where(start == _NAT, _NAT, start + cadence_minutes * _NS_PER_MINUTE)
    unit = _strings(table[picked["unit"]] if "unit" in picked else None, n)
    if default_unit is not None:
        unit[np.asarray(pd.isna(unit), dtype=bool)] = default_unit
    rows = _Rows(
        meter=_strings(table[picked["meter"]] if "meter" in picked else None, n),
        start=start,
        end=end,
        value=value,
        unit=unit,
        line=lines,
        has_meter="meter" in picked,
    )
    rows.drop(missing, REJECT_MISSING_VALUE)
    rows.drop((rows.start == _NAT) | (rows.end == _NAT), REJECT_UNPARSEABLE_TIME)
    if cadence_minutes is not None and "end" in picked:
        rows.drop(rows.end - rows.start != cadence_minutes * _NS_PER_MINUTE, REJECT_OUTSIDE_CADENCE)
    canonical, unknown, count = _canonical_units(rows.unit)
    rows.unit = canonical
    rows.drop(unknown, REJECT_UNKNOWN_UNIT)
    if count > 1:
        _refuse_mixed_units(rows, placeholders, where)
    return rows


def _refuse_mixed_units(rows: _Rows, placeholders: dict[str, str], where: str) -> None:
    """Two units for one meter (or in a file without a meter column): FileImportError."""
    import numpy as np
    import pandas as pd

    given = ~np.asarray(pd.isna(rows.unit), dtype=bool)
    if not given.any():
        return
    frame = pd.DataFrame(
        {
            "meter": rows.meter[given] if rows.has_meter else np.full(int(given.sum()), ""),
            "unit": rows.unit[given],
            "line": rows.line[given],
        }
    )
    frame["meter"] = frame["meter"].fillna("")
    first_unit = frame.groupby("meter", sort=False)["unit"].transform("first")
    other = frame["unit"] != first_unit
    if other.any():
        line = int(frame.loc[other, "line"].min())
        raise FileImportError("mixed_units", **placeholders, **{where: str(line)})


def _empty_agreements() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "meter": pd.Series([], dtype=object),
            "tariff": pd.Series([], dtype=object),
            "valid_from": pd.Series([], dtype="datetime64[ns, UTC]"),
            "valid_to": pd.Series([], dtype="datetime64[ns, UTC]"),
            "product": pd.Series([], dtype=object),
        }
    )


def _empty_products() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({"code": pd.Series([], dtype=object), "name": pd.Series([], dtype=object)})


def _result(fmt: str, rows: _Rows, rows_read: int, **frames: pd.DataFrame) -> ParsedFile:
    return ParsedFile(
        format=fmt,
        rows=rows.frame(),
        agreements=frames.get("agreements", _empty_agreements()),
        products=frames.get("products", _empty_products()),
        rows_read=rows_read,
        rejected=dict(rows.rejected),
    )


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def _undecodable_line(path: str) -> int:
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return data.count(b"\n", 0, err.start) + 1
    return 1


def _open_quote_line(path: str) -> int:
    """The line where a quote opens that the file never closes."""
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    opened = -1
    for match in re.finditer('"', text):
        opened = match.start() if opened < 0 else -1
    return text.count("\n", 0, max(opened, 0)) + 1


def _read_csv(path: str, sep: str) -> pd.DataFrame:
    import pandas as pd

    placeholders = {"file": _name(path)}
    try:
        return pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            skipinitialspace=True,
            encoding="utf-8-sig",
            engine="c",
        )
    except UnicodeDecodeError as err:
        raise FileImportError(
            "unreadable", line=str(_undecodable_line(path)), **placeholders
        ) from err
    except pd.errors.EmptyDataError as err:
        raise FileImportError("empty_file", **placeholders) from err
    except pd.errors.ParserError as err:
        message = str(err)
        if "EOF inside string" in message:
            raise FileImportError(
                "truncated", line=str(_open_quote_line(path)), **placeholders
            ) from err
        found = re.search(r"line (\d+)", message)
        raise FileImportError(
            "bad_line", line=found.group(1) if found else "1", **placeholders
        ) from err


def _arrow_csv(path: str, sep: str) -> tuple[dict[str, Any], Any] | None:
    """(columns by name as Arrow strings, line numbers) of a plain CSV, as pandas reads it.

    Plain: the header on the first line, no quote or NUL, every line with as many fields as the
    header, names neither blank nor repeated, valid UTF-8. Leading spaces and tabs of a field
    are dropped and an empty field is null (skipinitialspace, na_values [""]); rows that are
    all null are left out. None for anything else: _read_csv reads it, and says what is wrong.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    first, _, _ = data.partition(b"\n")
    if b'"' in data or b"\x00" in data or not first.strip():
        return None
    try:
        raw = first.rstrip(b"\r").decode("utf-8").split(sep)
    except UnicodeDecodeError:
        return None
    names = [name.lstrip(" \t") for name in raw]
    final = [name.strip() for name in names]
    if len(raw) < 2 or not all(names) or len(set(names)) != len(names):
        return None
    if len(set(final)) != len(final):
        return None
    invalid = 0

    def handler(_row: Any) -> str:
        nonlocal invalid
        invalid += 1
        return "skip"

    try:
        read = pcsv.read_csv(
            pa.BufferReader(data),
            read_options=pcsv.ReadOptions(column_names=raw, skip_rows=1),
            parse_options=pcsv.ParseOptions(
                delimiter=sep, invalid_row_handler=handler, ignore_empty_lines=False
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(raw, pa.string()),
                strings_can_be_null=False,
                null_values=[],
            ),
        )
    except pa.ArrowException:
        return None
    if invalid:
        return None
    columns: list[Any] = []
    blank = None
    for name in raw:
        column = pc.utf8_ltrim(read.column(name).combine_chunks(), characters=" \t")
        empty = pc.equal(column, "")
        column = pc.if_else(empty, pa.scalar(None, pa.string()), column)
        blank = empty if blank is None else pc.and_(blank, empty)
        columns.append(column)
    numbers = 2 + np.arange(read.num_rows, dtype=np.int64)
    if blank is not None and pc.any(blank).as_py():
        keep = pc.invert(blank)
        columns = [column.filter(keep) for column in columns]
        numbers = numbers[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    return dict(zip(final, columns, strict=True)), numbers


def _csv_table(path: str) -> tuple[pd.DataFrame | dict[str, Any], list[str], str, Any]:
    """(table without blank lines, its column names, delimiter, line numbers of its rows)."""
    import numpy as np

    text = _decode_head(_head(path))
    if text is None:
        raise FileImportError("unreadable", file=_name(path), line=str(_undecodable_line(path)))
    lines = text.splitlines()
    header_line = next((i + 1 for i, line in enumerate(lines) if line.strip()), 1)
    sep = _sniff_delimiter(lines[header_line - 1] if lines else "")
    plain = _arrow_csv(path, sep) if header_line == 1 else None
    if plain is not None:
        columns, numbers = plain
        return columns, list(columns), sep, numbers
    table = _read_csv(path, sep)
    table.columns = [str(c).strip() for c in table.columns]
    blank = np.zeros(len(table), dtype=bool)
    if len(table.columns):
        maybe = np.flatnonzero(np.asarray(table.iloc[:, 0].isna(), dtype=bool))
        blank[maybe] = np.asarray(table.iloc[maybe].isna().all(axis=1), dtype=bool)
    numbers = header_line + 1 + np.arange(len(table), dtype=np.int64)
    if blank.any():
        table = table.loc[~blank].reset_index(drop=True)
        numbers = numbers[~blank]
    return table, list(table.columns), sep, numbers


def _parse_octopus_csv(path: str, tz: str, cadence_minutes: int | None) -> ParsedFile:
    table, names, sep, numbers = _csv_table(path)
    placeholders = {"file": _name(path)}
    picked = {
        "value": _find(names, ("consumption",)),
        "start": _find(names, ("start",)),
        "end": _find(names, ("end",)),
    }
    if any(column is None for column in picked.values()):
        raise FileImportError("columns_not_found", **placeholders)
    rows = _rows_from_table(
        table,
        {role: str(column) for role, column in picked.items()},
        tz=tz,
        cadence_minutes=cadence_minutes,
        lines=numbers,
        default_unit="kWh",
        decimal_comma=sep == ";",
        placeholders=placeholders,
    )
    return _result("octopus_csv", rows, len(numbers))


def _parse_csv(
    path: str, mapping: Mapping[str, str] | None, tz: str, cadence_minutes: int | None
) -> ParsedFile:
    table, names, sep, numbers = _csv_table(path)
    placeholders = {"file": _name(path)}
    picked = _pick_columns(names, mapping, placeholders)
    unit = None if "unit" in picked else _bracket_unit(picked["value"])
    rows = _rows_from_table(
        table,
        picked,
        tz=tz,
        cadence_minutes=cadence_minutes,
        lines=numbers,
        default_unit=unit,
        decimal_comma=sep == ";",
        placeholders=placeholders,
    )
    return _result("csv", rows, len(numbers))


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _read_text(path: str) -> str:
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FileImportError("unreadable", file=_name(path), line=str(line)) from err


def _records_rows(
    path: str,
    fmt: str,
    *,
    records: list[dict[str, Any]],
    numbers: Any,
    mapping: Mapping[str, str] | None,
    tz: str,
    cadence_minutes: int | None,
    where: str,
) -> ParsedFile:
    import pandas as pd

    placeholders = {"file": _name(path)}
    table = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    if not records:
        return _result(fmt, _empty_rows(), 0)
    table.columns = [str(c) for c in table.columns]
    picked = _pick_columns(list(table.columns), mapping, placeholders)
    unit = None if "unit" in picked else _bracket_unit(picked["value"])
    rows = _rows_from_table(
        table,
        picked,
        tz=tz,
        cadence_minutes=cadence_minutes,
        lines=numbers,
        default_unit=unit,
        decimal_comma=False,
        placeholders=placeholders,
        where=where,
    )
    return _result(fmt, rows, len(table))


def _empty_rows() -> _Rows:
    import numpy as np

    return _Rows(
        meter=np.empty(0, dtype=object),
        start=np.empty(0, dtype=np.int64),
        end=np.empty(0, dtype=np.int64),
        value=np.empty(0, dtype=np.float64),
        unit=np.empty(0, dtype=object),
        line=np.empty(0, dtype=np.int64),
        has_meter=False,
    )


def _parse_json(
    path: str, mapping: Mapping[str, str] | None, tz: str, cadence_minutes: int | None
) -> ParsedFile:
    import numpy as np

    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise FileImportError("json_invalid", file=_name(path), line=str(err.lineno)) from err
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = data["results"]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise FileImportError("json_not_a_list", file=_name(path))
    numbers = np.arange(1, len(data) + 1, dtype=np.int64)
    return _records_rows(
        path,
        "json",
        records=data,
        numbers=numbers,
        mapping=mapping,
        tz=tz,
        cadence_minutes=cadence_minutes,
        where="record",
    )


def _parse_jsonl(
    path: str, mapping: Mapping[str, str] | None, tz: str, cadence_minutes: int | None
) -> ParsedFile:
    import numpy as np

    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise FileImportError("json_bad_line", file=_name(path), line=str(number)) from err
        if not isinstance(record, dict):
            raise FileImportError("json_bad_line", file=_name(path), line=str(number))
        records.append(record)
        numbers.append(number)
    lines = np.asarray(numbers, dtype=np.int64)
    return _records_rows(
        path,
        "jsonl",
        records=records,
        numbers=lines,
        mapping=mapping,
        tz=tz,
        cadence_minutes=cadence_minutes,
        where="line",
    )


# --------------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------------


def quote_identifier(name: str) -> str:
    """An SQL identifier in double quotes, inner quotes doubled: read as a name, never as SQL."""
    return '"' + name.replace('"', '""') + '"'


def _select(
    connection: sqlite3.Connection, table: str, columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    names = ", ".join(quote_identifier(column) for column in columns)
    cursor = connection.execute(f"SELECT {names} FROM {quote_identifier(table)}")
    return cursor.fetchall()


def _frame(connection: sqlite3.Connection, table: str, columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    rows = _select(connection, table, columns)
    if not rows:
        return pd.DataFrame({column: pd.Series([], dtype=object) for column in columns})
    data = list(zip(*rows, strict=True))
    return pd.DataFrame({str(i): _column(data[i]) for i in range(len(columns))}).set_axis(
        list(columns), axis=1
    )


def _column(items: tuple[Any, ...]) -> pd.Series:
    """One column of SQLite values as a Series (through Arrow when its values share a type)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    try:
        array = pa.array(items)
    except pa.ArrowException, OverflowError:
        return pd.Series(np.asarray(items, dtype=object).reshape(-1), dtype=object)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return pd.Series(array.to_numpy(zero_copy_only=False), dtype=object)
    if pa.types.is_integer(array.type) and not array.null_count:
        return pd.Series(np.asarray(array.to_numpy(), dtype=np.int64))
    if pa.types.is_floating(array.type) or pa.types.is_integer(array.type):
        return pd.Series(
            np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        )
    return pd.Series(np.asarray(array.to_pylist(), dtype=object).reshape(-1), dtype=object)


def _sqlite_columns(
    connection: sqlite3.Connection, table: str, roles: Mapping[str, str]
) -> dict[str, Any] | None:
    """The readings' columns without a Python object per value, or None: read rows instead.

    Only when every row holds text in each column but the value's. Columns other than the
    times that hold one text throughout are found by aggregates (no NULL; the least and the
    greatest the same text). The others are read in one scan as one string: each row's texts
    (anything else as _NOT_TEXT) and quote(value) (which reads back as the same double; -0.0
    spelled apart), all with _SEPARATOR between them, split by Arrow. A separator inside a
    text shows in the count, a value of another type (quoted text, NULL, a blob) in the cast.
    Only our own SQL, with quoted identifiers.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    value = roles["value"]
    times = {roles.get("start"), roles.get("end")}
    texts = [column for column in dict.fromkeys(roles.values()) if column != value]
    others = [column for column in texts if column not in times]
    source = quote_identifier(table)
    out: dict[str, Any] = {}
    try:
        if others:
            checks = ["COUNT(*)"]
            for column in others:
                name = quote_identifier(column)
                checks += [
                    f"COUNT({name})",
                    f"MIN({name} COLLATE BINARY)",
                    f"MAX({name} COLLATE BINARY)",
                ]
            summary = connection.execute(f"SELECT {', '.join(checks)} FROM {source}").fetchone()
            for i, column in enumerate(others):
                count, least, most = summary[1 + 3 * i : 4 + 3 * i]
                if count == summary[0] and isinstance(least, str) and least == most:
                    out[column] = least
        varying = [column for column in texts if column not in out]
        number = quote_identifier(value)
        fields = [
            *(
                f"CASE WHEN typeof({name}) = 'text' THEN {name} ELSE char(30) END"
                for name in map(quote_identifier, varying)
            ),
            f"CASE WHEN {number} = 0 AND atan2({number}, -1.0) < 0 THEN '-0.0' "
            f"ELSE quote({number}) END",
        ]
        joined = " || char(31) || ".join(fields)
        n, text = connection.execute(
            f"SELECT COUNT(*), group_concat({joined}, char(31)) FROM {source}"
        ).fetchone()
    except sqlite3.Error:  # e.g. no atan2, or a string too long: rows one by one
        return None
    if not n or not isinstance(text, str):
        return None
    pieces = pc.split_pattern(pa.array([text], type=pa.string()), _SEPARATOR).flatten()
    width = len(fields)
    if len(pieces) != n * width:  # each row gave `width` pieces, more if a text has separators
        return None
    for column, constant in list(out.items()):
        out[column] = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32)), pa.array([constant], type=pa.string())
        )
    for i, column in enumerate([*varying, value]):
        strings = pieces.take(np.arange(i, n * width, width)) if width > 1 else pieces
        if column == value:
            try:
                floats = pc.cast(strings, pa.float64())
            except pa.ArrowInvalid:
                return None
            out[column] = pd.Series(np.asarray(floats.to_numpy(), dtype=np.float64))
            continue
        if pc.any(pc.equal(strings, _NOT_TEXT)).as_py():
            return None
        out[column] = strings if column in times else pc.dictionary_encode(strings)
    return out


@dataclass
class _Tables:
    readings: tuple[str, dict[str, str]] | None = None
    agreements: tuple[str, dict[str, str]] | None = None
    products: tuple[str, dict[str, str]] | None = None
    points: tuple[str, dict[str, str]] | None = None


def _discover(columns_of: Mapping[str, list[str]]) -> _Tables:
    """Which table holds readings, agreements, products and meter points, by their columns."""
    found = _Tables()
    readings: list[tuple[int, str, dict[str, str]]] = []
    for table, columns in columns_of.items():
        start = _find(columns, _CANDIDATES["start"])
        value = _find(columns, _CANDIDATES["value"])
        point = _find(columns, _POINT_NAMES)
        serial = _find(columns, _SERIAL_NAMES)
        tariff = _find(columns, _TARIFF_NAMES)
        product = _find(columns, _PRODUCT_NAMES)
        valid_from = _find(columns, _FROM_NAMES)
        code = _find(columns, _CODE_NAMES)
        name = _find(columns, _NAME_NAMES)
        if start is not None and value is not None:
            roles = {"start": start, "value": value}
            for role in ("end", "unit"):
                column = _find(columns, _CANDIDATES[role])
                if column is not None and column not in roles.values():
                    roles[role] = column
            if point is not None:
                roles["meter"] = point
            elif serial is not None:
                roles["serial"] = serial
            preference = 0 if re.search("reading|consumption|interval", table, re.I) else 1
            readings.append((preference, table, roles))
        elif (
            (point or serial) is not None
            and (tariff or product) is not None
            and valid_from is not None
        ):
            roles = {"meter": str(point or serial), "valid_from": valid_from}
            if tariff is not None:
                roles["tariff"] = tariff
            if product is not None and product != tariff:
                roles["product"] = product
            valid_to = _find(columns, _TO_NAMES)
            if valid_to is not None:
                roles["valid_to"] = valid_to
            found.agreements = found.agreements or (table, roles)
        elif code is not None and name is not None and code != name:
            roles = {"code": code, "name": name}
            for column in columns:
                if re.search("rate|charge|price", column, re.I) and column not in (code, name):
                    roles[column] = column
            found.products = found.products or (table, roles)
        elif point is not None and serial is not None:
            found.points = found.points or (table, {"meter": point, "serial": serial})
    if readings:
        readings.sort(key=lambda item: item[0])
        found.readings = (readings[0][1], readings[0][2])
    return found


def _connect(path: str) -> sqlite3.Connection:
    uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _parse_sqlite(path: str, tz: str, cadence_minutes: int | None) -> ParsedFile:
    if not _head(path).startswith(SQLITE_MAGIC):
        raise FileImportError("sqlite_unreadable", file=_name(path))
    table = ""
    try:
        connection = _connect(path)
    except sqlite3.Error as err:
        raise FileImportError("sqlite_unreadable", file=_name(path)) from err
    try:
        master = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='table'"
        ).fetchall()
        columns_of: dict[str, list[str]] = {}
        for name, _sql in master:
            table = str(name)
            if table.startswith("sqlite_"):
                continue
            info = connection.execute(f"PRAGMA table_info({quote_identifier(table)})").fetchall()
            columns_of[table] = [str(row[1]) for row in info]
        table = ""
        found = _discover(columns_of)
        if found.readings is None:
            raise FileImportError("sqlite_no_readings", file=_name(path))
        table = found.readings[0]
        return _sqlite_contents(connection, path, found, tz, cadence_minutes)
    except sqlite3.Error as err:
        placeholders = {"file": _name(path)}
        if table:
            placeholders["table"] = table
        raise FileImportError("sqlite_unreadable", **placeholders) from err
    finally:
        connection.close()


def _sqlite_contents(
    connection: sqlite3.Connection,
    path: str,
    found: _Tables,
    tz: str,
    cadence_minutes: int | None,
) -> ParsedFile:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    assert found.readings is not None
    table, roles = found.readings
    placeholders = {"file": _name(path), "table": table}
    readings = _sqlite_columns(connection, table, roles)
    if readings is None:
        frame = _frame(connection, table, list(roles.values()))
        readings = {str(column): frame[column] for column in frame.columns}
    n = len(next(iter(readings.values())))
    picked = {role: column for role, column in roles.items() if role != "serial"}
    points = None
    if found.points is not None:
        points_table, point_roles = found.points
        points = _frame(connection, points_table, [point_roles["meter"], point_roles["serial"]])
        points.columns = ["meter", "serial"]
    if "meter" not in picked and points is not None:
        if "serial" in roles:
            by_serial = dict(
                zip(points["serial"].astype(str), points["meter"].astype(str), strict=True)
            )
            serials = readings[roles["serial"]]
            if isinstance(serials, pa.Array):
                serials = _series(serials)
            serials = serials.astype(str)
            readings["__meter"] = serials.map(by_serial).fillna(serials)
            picked["meter"] = "__meter"
        elif len(points) == 1:
            readings["__meter"] = pd.Series(
                np.full(n, str(points["meter"].iloc[0]), dtype=object), dtype=object
            )
            picked["meter"] = "__meter"
    elif "meter" not in picked and "serial" in roles:
        picked["meter"] = roles["serial"]
    unit = None if "unit" in picked else _bracket_unit(picked["value"])
    rows = _rows_from_table(
        readings,
        picked,
        tz=tz,
        cadence_minutes=cadence_minutes,
        lines=np.arange(1, n + 1, dtype=np.int64),
        default_unit=unit,
        decimal_comma=False,
        placeholders=placeholders,
        where="row",
    )
    frames: dict[str, pd.DataFrame] = {}
    if found.agreements is not None:
        frames["agreements"] = _agreements(connection, *found.agreements, tz=tz)
    if found.products is not None:
        frames["products"] = _products(connection, *found.products)
    return _result("sqlite", rows, n, **frames)


def _agreements(
    connection: sqlite3.Connection, table: str, roles: dict[str, str], *, tz: str
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    raw = _frame(connection, table, list(roles.values()))
    raw.columns = list(roles)
    n = len(raw)
    tariff = _strings(raw.get("tariff"), n)
    product = _strings(raw.get("product"), n)
    for i, code in enumerate(tariff.tolist()):
        if product[i] is None and code is not None:
            match = _TARIFF_CODE.match(code)
            product[i] = match.group(1) if match else None
    tariff = np.where(pd.isna(tariff), product, tariff)
    valid_to = _times(raw["valid_to"], tz) if "valid_to" in raw else np.full(n, _NAT, np.int64)
    return pd.DataFrame(
        {
            "meter": _strings(raw["meter"], n),
            "tariff": tariff,
            "valid_from": _utc(_times(raw["valid_from"], tz)),
            "valid_to": _utc(valid_to),
            "product": product,
        },
        columns=list(AGREEMENT_FILE_COLUMNS),
    )


def _products(connection: sqlite3.Connection, table: str, roles: dict[str, str]) -> pd.DataFrame:
    import pandas as pd

    raw = _frame(connection, table, list(roles.values()))
    raw.columns = list(roles)
    n = len(raw)
    out = pd.DataFrame({"code": _strings(raw["code"], n), "name": _strings(raw["name"], n)})
    for column in roles:
        if column not in ("code", "name"):
            out[column] = _numbers(raw[column], decimal_comma=False)
    return out


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse_file(
    path: str,
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    tz: str = "Europe/London",
    cadence_minutes: int | None = None,
    max_bytes: int = MAX_BYTES,
) -> ParsedFile:
    """Read one file (blocking). `format` None: detect_format; `mapping` for csv, json, jsonl."""
    path = str(path)
    _check_size(path, max_bytes)
    fmt = format if format is not None else detect_format(path)
    if fmt not in FORMATS:
        raise FileImportError("unknown_format", file=_name(path))
    if cadence_minutes is not None and cadence_minutes <= 0:
        raise ValueError("cadence_minutes must be positive")
    try:
        if fmt == "octopus_csv":
            return _parse_octopus_csv(path, tz, cadence_minutes)
        if fmt == "csv":
            return _parse_csv(path, mapping, tz, cadence_minutes)
        if fmt == "json":
            return _parse_json(path, mapping, tz, cadence_minutes)
        if fmt == "jsonl":
            return _parse_jsonl(path, mapping, tz, cadence_minutes)
        return _parse_sqlite(path, tz, cadence_minutes)
    except OSError as err:
        raise FileImportError("unreadable", file=_name(path), line="1") from err
