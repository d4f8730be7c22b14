"""The DuckDB views MeterLake writes at the archive root (`views.sql`), against hand-made data.

Three London days, 31 July to 2 August 2025 (BST, UTC+1: each local day starts at 23:00 UTC
the day before), for two meters:

- electricity: half-hours of 0.1 kWh on 31 July, 0.2 on 1 August, 0.3 on 2 August; tariff
  AGILE until 1 August 00:00 local (0.25 GBP/kWh), FIXED from then (0.15 GBP/kWh);
- gas: quarter-hours of 0.5 m³ (1.0 per half-hour), 0.05 GBP each, one open-ended tariff.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
import os
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from custom_components.meterlake import views
from custom_components.meterlake.analytics.schema import (
    AGREEMENT_ARCHIVE_COLUMNS,
    INTERVAL_COLUMNS,
)
from custom_components.meterlake.archive import Archive, open_archive, product_of
from custom_components.meterlake.views import (
    VIEWS_FILE,
    VIEWS_SQL,
    ensure_views,
    views_sql,
    write_views,
)

ELEC = "octopus_electricity_1000000000000"
GAS = "octopus_gas_2000000000"
AGILE = "E-1R-AGILE-24-10-01-C"
FIXED = "E-1R-OE-FIX-12M-25-07-01-C"
GAS_VAR = "G-1R-VAR-22-11-01-C"
FIRST = pd.Timestamp("2025-07-30T23:00:00Z")  # 31 July 00:00 in London
CHANGE = pd.Timestamp("2025-07-31T23:00:00Z")  # 1 August 00:00 in London
LAST = pd.Timestamp("2025-08-02T23:00:00Z")  # 3 August 00:00 in London, exclusive
DAYS = (date(2025, 7, 31), date(2025, 8, 1), date(2025, 8, 2))
ELEC_SLOT = {DAYS[0]: 0.1, DAYS[1]: 0.2, DAYS[2]: 0.3}  # kWh per half-hour, by local day
ELEC_RATE = {DAYS[0]: 0.25, DAYS[1]: 0.15, DAYS[2]: 0.15}
NOW = pd.Timestamp("2025-08-03T06:00:00Z")


def interval_rows(
    meter: str, supplier: str, kind: str, unit: str, minutes: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in pd.date_range(FIRST, LAST, freq=f"{minutes}min", inclusive="left"):
        day = start.tz_convert("Europe/London").date()
        if meter == ELEC:
            value, cost = ELEC_SLOT[day], ELEC_SLOT[day] * ELEC_RATE[day]
        else:
            value, cost = 0.5, 0.05
        rows.append(
            {
                "meter": meter,
                "serial": "S1",
                "supplier": supplier,
                "kind": kind,
                "start": start,
                "end": start + pd.Timedelta(minutes=minutes),
                "value": value,
                "unit": unit,
                "energy_kwh": value,
                "rate": cost / value,
                "cost": cost,
                "currency": "GBP",
                "quality": "measured",
                "ingested_at": NOW,
            }
        )
    return rows


def consumption() -> pd.DataFrame:
    rows = interval_rows(ELEC, "octopus", "electricity", "kWh", 30)
    rows += interval_rows(GAS, "octopus", "gas", "m³", 15)
    return pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS))


def agreement_rows() -> pd.DataFrame:
    rows = [
        (ELEC, AGILE, pd.Timestamp("2025-01-01T00:00:00Z"), CHANGE),
        (ELEC, FIXED, CHANGE, None),
        (GAS, GAS_VAR, pd.Timestamp("2024-01-01T00:00:00Z"), None),
    ]
    return pd.DataFrame(
        {
            "meter": [r[0] for r in rows],
            "tariff": [r[1] for r in rows],
            "product": [product_of(r[1]) for r in rows],
            "valid_from": pd.to_datetime([r[2] for r in rows], utc=True),
            "valid_to": pd.to_datetime(pd.Series([r[3] for r in rows]), utc=True),
            "source": "octopus",
            "ingested_at": NOW,
        },
        columns=list(AGREEMENT_ARCHIVE_COLUMNS),
    )


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    archive = open_archive("lake", config_dir=str(tmp_path))
    archive.write_intervals(consumption())
    archive.write_agreements(agreement_rows())
    return archive


def connect(root: str | Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views.sql run the documented way (file_search_path)."""
    con = duckdb.connect()
    con.execute(f"SET file_search_path = '{root}'")
    con.execute(Path(root, VIEWS_FILE).read_text(encoding="utf-8"))
    return con


@pytest.fixture
def con(archive: Archive) -> Iterator[duckdb.DuckDBPyConnection]:
    write_views(archive)
    connection = connect(archive.root)
    yield connection
    connection.close()


def test_views_file_is_written_at_the_root(archive: Archive, tmp_path: Path) -> None:
    path = write_views(archive)

    assert path == str(tmp_path / "lake" / "views.sql")
    assert Path(path).read_text(encoding="utf-8") == VIEWS_SQL
    assert VIEWS_SQL.splitlines()[4] == "SET TimeZone = 'Europe/London';"


def test_an_unchanged_views_file_is_not_rewritten(archive: Archive) -> None:
    path = Path(write_views(archive))
    before = path.stat()
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))

    write_views(archive)

    after = path.stat()
    assert after.st_ino == before.st_ino
    assert after.st_mtime_ns == 1_000_000_000


def test_views_run_from_the_root_as_the_working_directory(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_views(archive)
    monkeypatch.chdir(archive.root)
    con = duckdb.connect()
    con.execute(Path(VIEWS_FILE).read_text(encoding="utf-8"))

    assert con.execute("SELECT count(*) FROM intervals").fetchall() == [(144 + 288,)]


def test_intervals_has_the_interval_table_columns(con: duckdb.DuckDBPyConnection) -> None:
    relation = con.sql("SELECT * FROM intervals")
    assert relation.columns == list(INTERVAL_COLUMNS)
    counts = con.sql("SELECT meter, supplier, count(*) FROM intervals GROUP BY ALL ORDER BY 1")
    assert counts.fetchall() == [(ELEC, "octopus", 144), (GAS, "octopus", 288)]
    types = dict(zip(relation.columns, [str(t) for t in relation.types], strict=True))
    assert types["meter"] == "VARCHAR"
    assert types["start"] == "TIMESTAMP WITH TIME ZONE"


def test_half_hourly_consumption(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.sql(
        "SELECT meter, count(*), min(slot), max(slot), min(value), max(value), any_value(unit) "
        "FROM half_hourly_consumption GROUP BY meter ORDER BY meter"
    ).fetchall()
    last_slot = (LAST - pd.Timedelta(minutes=30)).to_pydatetime()
    assert [row[:4] for row in rows] == [
        (ELEC, 144, FIRST.to_pydatetime(), last_slot),
        (GAS, 144, FIRST.to_pydatetime(), last_slot),
    ]
    assert rows[0][4:] == (pytest.approx(0.1), pytest.approx(0.3), "kWh")
    assert rows[1][4:] == (pytest.approx(1.0), pytest.approx(1.0), "m³")  # two quarter-hours
    # The first half-hour of 1 August (local) is 23:00 UTC on 31 July, at the FIXED volume.
    values = con.execute(
        "SELECT value FROM half_hourly_consumption WHERE meter = $meter AND slot = $slot",
        {"meter": ELEC, "slot": CHANGE.to_pydatetime()},
    ).fetchall()
    assert values == [(pytest.approx(0.2),)]


def test_daily_consumption_follows_london_days(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.sql(
        "SELECT meter, day, value, unit FROM daily_consumption ORDER BY meter, day"
    ).fetchall()

    assert [row[:2] for row in rows] == [(m, d) for m in (ELEC, GAS) for d in DAYS]
    assert [row[2] for row in rows] == pytest.approx([4.8, 9.6, 14.4, 48.0, 48.0, 48.0])
    assert {row[3] for row in rows[:3]} == {"kWh"}
    assert {row[3] for row in rows[3:]} == {"m³"}


def test_daily_consumption_moves_with_the_session_time_zone(
    con: duckdb.DuckDBPyConnection,
) -> None:
    con.execute("SET TimeZone = 'UTC'")
    rows = con.sql(
        "SELECT day, value FROM daily_consumption WHERE meter = $meter ORDER BY day",
        params={"meter": ELEC},
    ).fetchall()
    # In UTC, 30 July holds the first local hour (two half-hours at 0.1).
    assert [row[0] for row in rows] == [date(2025, 7, 30), *DAYS]
    assert [row[1] for row in rows] == pytest.approx([0.2, 4.6 + 0.4, 9.2 + 0.6, 13.8])


def test_active_agreements_before_and_after_the_change(
    con: duckdb.DuckDBPyConnection,
) -> None:
    def active(ref: str) -> list[tuple[Any, ...]]:
        return con.sql(
            f"SELECT meter, tariff, product FROM active_agreements(TIMESTAMPTZ '{ref}') "
            "ORDER BY meter"
        ).fetchall()

    before = [(ELEC, AGILE, "AGILE-24-10-01"), (GAS, GAS_VAR, "VAR-22-11-01")]
    after = [(ELEC, FIXED, "OE-FIX-12M-25-07-01"), (GAS, GAS_VAR, "VAR-22-11-01")]
    assert active("2025-07-31 12:00:00+00") == before
    assert active("2025-07-31 23:59:59+01") == before
    assert active("2025-08-01 00:00:00+01") == after  # valid_to is exclusive
    assert active("2026-01-01 00:00:00+00") == after
    assert active("2023-06-01 00:00:00+00") == []
    assert con.sql("SELECT * FROM active_agreements(TIMESTAMPTZ '2025-08-01')").columns == list(
        AGREEMENT_ARCHIVE_COLUMNS
    )


def test_daily_consumption_by_product_across_the_change(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = con.sql(
        "SELECT meter, day, product, tariff, value FROM daily_consumption_by_product "
        "ORDER BY meter, day"
    ).fetchall()

    assert [row[:4] for row in rows] == [
        (ELEC, DAYS[0], "AGILE-24-10-01", AGILE),
        (ELEC, DAYS[1], "OE-FIX-12M-25-07-01", FIXED),
        (ELEC, DAYS[2], "OE-FIX-12M-25-07-01", FIXED),
        (GAS, DAYS[0], "VAR-22-11-01", GAS_VAR),
        (GAS, DAYS[1], "VAR-22-11-01", GAS_VAR),
        (GAS, DAYS[2], "VAR-22-11-01", GAS_VAR),
    ]
    assert [row[4] for row in rows] == pytest.approx([4.8, 9.6, 14.4, 48.0, 48.0, 48.0])
    per_product = con.sql(
        "SELECT product, sum(value) FROM daily_consumption_by_product "
        "WHERE meter = $meter GROUP BY product ORDER BY product",
        params={"meter": ELEC},
    ).fetchall()
    assert per_product == [
        ("AGILE-24-10-01", pytest.approx(4.8)),
        ("OE-FIX-12M-25-07-01", pytest.approx(24.0)),
    ]


def test_daily_consumption_by_product_without_an_agreement(
    archive: Archive, tmp_path: Path
) -> None:
    # A day before every agreement of a meter: listed, product and tariff null.
    early = consumption()
    early = early[early["meter"] == GAS].head(4).copy()
    early["start"] -= pd.Timedelta(days=800)
    early["end"] -= pd.Timedelta(days=800)
    archive.write_intervals(early)
    write_views(archive)

    con = connect(archive.root)
    rows = con.sql(
        "SELECT day, product, tariff, value FROM daily_consumption_by_product "
        "WHERE meter = $meter ORDER BY day LIMIT 1",
        params={"meter": GAS},
    ).fetchall()
    assert rows == [(date(2023, 5, 23), None, None, pytest.approx(2.0))]  # 22 May, 23:00 UTC


def test_monthly_cost(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.sql("SELECT meter, month, cost, currency FROM monthly_cost ORDER BY 1, 2").fetchall()

    assert [row[:2] for row in rows] == [
        (ELEC, date(2025, 7, 1)),
        (ELEC, date(2025, 8, 1)),
        (GAS, date(2025, 7, 1)),
        (GAS, date(2025, 8, 1)),
    ]
    # July (local): one day; August: two. Gas: 96 quarter-hours a day at 0.05.
    assert [row[2] for row in rows] == pytest.approx(
        [48 * 0.1 * 0.25, 48 * (0.2 + 0.3) * 0.15, 96 * 0.05, 2 * 96 * 0.05]
    )
    assert {row[3] for row in rows} == {"GBP"}


def test_views_of_missing_datasets_are_left_out(tmp_path: Path) -> None:
    archive = open_archive("lake", config_dir=str(tmp_path))
    path = Path(write_views(archive))
    text = path.read_text(encoding="utf-8")
    assert "CREATE" not in text
    duckdb.connect().execute(text)  # runs, sets the time zone only

    archive.write_intervals(consumption())
    write_views(archive)
    text = path.read_text(encoding="utf-8")
    assert "VIEW daily_consumption AS" in text
    assert "active_agreements" not in text
    con = connect(archive.root)
    assert con.execute("SELECT count(*) FROM daily_consumption").fetchall() == [(6,)]

    archive.write_agreements(agreement_rows())
    write_views(archive)
    assert path.read_text(encoding="utf-8") == VIEWS_SQL


def test_views_sql_composes_by_dataset() -> None:
    assert views_sql(["consumption", "agreements"]) == VIEWS_SQL
    only_agreements = views_sql(["agreements"])
    assert "MACRO active_agreements" in only_agreements
    assert "read_parquet('consumption" not in only_agreements


def test_ensure_views_writes_once_and_again_for_a_new_dataset(tmp_path: Path) -> None:
    archive = open_archive("lake", config_dir=str(tmp_path))
    archive.write_intervals(consumption())

    assert ensure_views(archive, {"consumption"}) is not None
    assert ensure_views(archive, {"consumption"}) is None  # this session: done
    assert ensure_views(archive) is None
    archive.write_agreements(agreement_rows())
    assert ensure_views(archive, {"agreements"}) is not None  # the views lacked it
    assert Path(archive.root, VIEWS_FILE).read_text(encoding="utf-8") == VIEWS_SQL
    assert ensure_views(archive, {"consumption", "agreements"}) is None


def test_ensure_views_logs_a_failure_and_tries_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = open_archive("lake", config_dir=str(tmp_path))
    Path(archive.root, VIEWS_FILE).mkdir()  # a folder where the file should be

    assert ensure_views(archive) is None
    assert "Cannot write the archive views" in caplog.text

    Path(archive.root, VIEWS_FILE).rmdir()
    assert ensure_views(archive) is not None


def test_write_text_refuses_paths_outside_the_root(archive: Archive) -> None:
    for name in ("", "/etc/x", "../x", "a/../../x"):
        with pytest.raises(ValueError, match="invalid archive file name"):
            archive.write_text(name, "x")
    assert archive.write_text("notes/readme.txt", "hello").endswith("/notes/readme.txt")


def test_write_views_time_zone_is_the_documented_default() -> None:
    assert views.DEFAULT_TIME_ZONE == "Europe/London"
    assert datetime(2025, 7, 31, 23, tzinfo=UTC) == CHANGE.to_pydatetime()
