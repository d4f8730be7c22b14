"""Ready-made DuckDB views over the archive, written as `views.sql` at the archive root.

Every path in the file is relative to the archive root, so the file works wherever the archive
is mounted. Run it with the root as the working directory:

    cd /config/meterlake && duckdb -cmd ".read views.sql" -c "FROM daily_consumption"

or from Python, with DuckDB's `file_search_path` pointing at the root (relative globs are then
resolved there, whatever the process's working directory):

    con = duckdb.connect()
    con.execute("SET file_search_path = '/config/meterlake'")
    con.execute(open("/config/meterlake/views.sql").read())

Local days and months follow the session time zone, which the file's first statement sets to
Europe/London; `SET TimeZone = '<zone>'` afterwards moves them (the views are evaluated when
queried). Views: `intervals`, `half_hourly_consumption`, `daily_consumption`, `monthly_cost`
(dataset consumption), `agreements` and the table macro `active_agreements(ref)` (dataset
agreements), `daily_consumption_by_product` (both). DuckDB refuses a view over a glob that
matches no file, so `write_views` writes the views of the datasets that hold data; the sink
writes the file again when a missing dataset gets its first rows.

Kept free of pandas/pyarrow/duckdb imports: the archive does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
import logging
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .archive import Archive

_LOGGER = logging.getLogger(__name__)

VIEWS_FILE: Final = "views.sql"
DEFAULT_TIME_ZONE: Final = "Europe/London"

_HEADER: Final = f"""\
-- MeterLake views over this archive (written by MeterLake; edits are overwritten).
-- Run from the archive root:  duckdb -c ".read views.sql"
-- or in Python after  SET file_search_path = '<archive root>'.
-- Local days and months follow the session time zone: SET TimeZone = '<zone>' to change it.
SET TimeZone = '{DEFAULT_TIME_ZONE}';
"""

_CONSUMPTION: Final = """
-- The interval table: one row per meter and interval, UTC timestamps, `end` exclusive.
CREATE OR REPLACE VIEW intervals AS
SELECT meter, serial, supplier, kind, start, "end", value, unit, energy_kwh, rate, cost,
       currency, quality, ingested_at
FROM read_parquet('consumption/**/*.parquet', hive_partitioning = true,
                  hive_types_autocast = false, union_by_name = true);

-- Consumption per meter and half-hour slot (slot = start of the half-hour).
CREATE OR REPLACE VIEW half_hourly_consumption AS
SELECT meter, time_bucket(INTERVAL 30 MINUTE, start) AS slot, sum(value) AS value, unit
FROM intervals
GROUP BY meter, slot, unit;

-- Consumption per meter and local day (session time zone).
CREATE OR REPLACE VIEW daily_consumption AS
SELECT meter, CAST(start AS DATE) AS day, sum(value) AS value, unit
FROM intervals
GROUP BY meter, day, unit;

-- Cost per meter and local month (first day of the month), per currency.
CREATE OR REPLACE VIEW monthly_cost AS
SELECT meter, CAST(date_trunc('month', CAST(start AS DATE)) AS DATE) AS month,
       sum(cost) AS cost, currency
FROM intervals
GROUP BY meter, month, currency;
"""

_AGREEMENTS: Final = """
-- Which tariff each meter was on: [valid_from, valid_to), valid_to null = open-ended.
CREATE OR REPLACE VIEW agreements AS
SELECT meter, tariff, product, valid_from, valid_to, source, ingested_at
FROM read_parquet('agreements/*/*.parquet', hive_partitioning = true,
                  hive_types_autocast = false, union_by_name = true);

-- Agreements in force at the moment `ref`:  FROM active_agreements(TIMESTAMPTZ '2025-01-01').
CREATE OR REPLACE MACRO active_agreements(ref) AS TABLE
SELECT * FROM agreements
WHERE valid_from <= ref AND (valid_to IS NULL OR ref < valid_to);
"""

_BOTH: Final = """
-- Each local day's consumption with the agreement in force at the day's start (the latest
-- starting one where several overlap); product and tariff are null without one.
CREATE OR REPLACE VIEW daily_consumption_by_product AS
SELECT d.meter, d.day, a.product, a.tariff, d.value, d.unit
FROM daily_consumption d
LEFT JOIN agreements a
  ON a.meter = d.meter
 AND a.valid_from <= CAST(d.day AS TIMESTAMPTZ)
 AND (a.valid_to IS NULL OR CAST(d.day AS TIMESTAMPTZ) < a.valid_to)
QUALIFY row_number() OVER (
    PARTITION BY d.meter, d.day, d.unit
    ORDER BY a.valid_from DESC NULLS LAST, a.ingested_at DESC NULLS LAST, a.source
) = 1;
"""

# Every view, as written when the archive holds both consumption and agreements.
VIEWS_SQL: Final = _HEADER + _CONSUMPTION + _AGREEMENTS + _BOTH

# Datasets the archive knows views of.
VIEW_DATASETS: Final = ("consumption", "agreements")


def views_sql(datasets: Iterable[str]) -> str:
    """The views of `datasets` (those that hold data); VIEWS_SQL when both are there."""
    present = set(datasets)
    text = _HEADER
    if "consumption" in present:
        text += _CONSUMPTION
    if "agreements" in present:
        text += _AGREEMENTS
    if {"consumption", "agreements"} <= present:
        text += _BOTH
    missing = [name for name in VIEW_DATASETS if name not in present]
    if missing:
        text += f"\n-- Not yet: the views of {', '.join(missing)} (no data there so far).\n"
    return text


def _write(archive: Archive) -> tuple[str, frozenset[str]]:
    present = frozenset(name for name in VIEW_DATASETS if archive.has_data(name))
    return archive.write_text(VIEWS_FILE, views_sql(present)), present


def write_views(archive: Archive) -> str:
    """Write `views.sql` at the archive root (blocking); return its path.

    Holds the views of the datasets that have data; an unchanged file is not rewritten.
    """
    return _write(archive)[0]


# Archive root -> datasets its views.sql covers, as written by this process.
_WRITTEN: dict[str, frozenset[str]] = {}
_WRITTEN_LOCK = threading.Lock()
_FAILED: set[str] = set()  # roots whose last attempt failed (warned once, then debug)


def ensure_views(archive: Archive, wrote: Iterable[str] = ()) -> str | None:
    """Write the views once per process and archive; returns the path when it ran (blocking).

    Again when `wrote` names a dataset the written views lacked (the fetch just gave it rows).
    Best effort: a failure is logged and tried again with the next call, never raised.
    """
    from .archive import ArchiveError

    with _WRITTEN_LOCK:
        covered = _WRITTEN.get(archive.root)
        if covered is not None and set(wrote) <= covered:
            return None
        try:
            path, present = _write(archive)
        except ArchiveError as err:
            log = _LOGGER.debug if archive.root in _FAILED else _LOGGER.warning
            _FAILED.add(archive.root)
            log("Cannot write the archive views (%s): %s", VIEWS_FILE, err)
            return None
        _FAILED.discard(archive.root)
        _WRITTEN[archive.root] = present
        return path
