"""grid_mix in the archive: consolidated rows win the merge, read back with pandas and DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime
import logging
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from custom_components.meterlake.analytics import grid
from custom_components.meterlake.archive import GRID_MIX_FIELDS, Archive, open_archive

from .conftest import load_fixture_json

T0 = pd.Timestamp("2026-11-20T06:00Z")


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive("meterlake", config_dir=str(tmp_path))


def base(tmp_path: Path, perimeter: str = "national") -> Path:
    return tmp_path / "meterlake" / "grid_mix" / "supplier=eco2mix" / f"perimeter={perimeter}"


def rows(
    value: float,
    *,
    consolidated: bool,
    ingested: str,
    start: pd.Timestamp = T0,
    periods: int = 1,
) -> pd.DataFrame:
    starts = pd.date_range(start, periods=periods, freq="15min")
    return pd.DataFrame(
        {
            "start": starts,
            "end": starts + pd.Timedelta(minutes=15),
            "consommation": [value] * periods,
            "consolidated": consolidated,
            "ingested_at": pd.Timestamp(ingested),
        }
    )


def stored(archive: Archive) -> list[tuple[float, bool]]:
    frame = archive.read_grid_mix("national", None, None)
    assert frame is not None
    return list(zip(frame["consommation"], frame["consolidated"], strict=True))


def test_round_trip_and_duckdb(tmp_path: Path, archive: Archive) -> None:
    ingested = datetime(2026, 11, 20, 9, 33, tzinfo=UTC)
    realtime, _ = grid.parse_records(
        load_fixture_json("eco2mix/national_tr_page.json")["results"],
        consolidated=False,
        ingested_at=ingested,
    )
    consolidated, _ = grid.parse_records(
        load_fixture_json("eco2mix/national_cons_export.json"),
        consolidated=True,
        ingested_at=ingested,
    )
    frame = grid.dedupe(pd.concat([realtime, consolidated], ignore_index=True))
    summary = archive.write_grid_mix(frame, perimeter="national")
    assert (summary.partitions_written, summary.rows_written, summary.rows_total) == (2, 18, 18)
    months = sorted(p.name for p in base(tmp_path).iterdir())
    assert months == ["month=2026-10", "month=2026-11"]

    back = archive.read_grid_mix("national", None, None)
    assert back is not None
    pd.testing.assert_frame_equal(back, frame)
    assert str(back["consolidated"].dtype) == "bool"

    root = tmp_path / "meterlake"
    result = duckdb.sql(
        "select perimeter, count(*), count(*) filter (where consolidated), sum(consommation),"
        " min(start), max(taux_co2), max(ech_comm_espagne)"
        f" from read_parquet('{root}/grid_mix/**/*.parquet', hive_partitioning=1)"
        " group by all"
    ).fetchall()
    expected_sum = float(frame["consommation"].sum())
    assert result == [
        (
            "national",
            18,
            6,
            expected_sum,
            datetime(2026, 10, 6, 22, 0, tzinfo=UTC),
            frame["taux_co2"].max(),
            frame["ech_comm_espagne"].max(),
        )
    ]
    (row,) = duckdb.sql(
        "select consommation, consolidated from read_parquet("
        f"'{root}/grid_mix/**/*.parquet', hive_partitioning=1)"
        " where start = '2026-11-20 06:15:00+00'"
    ).fetchall()
    assert row == (58222.0, True)


def test_consolidated_beats_real_time_whatever_ingested_at(archive: Archive) -> None:
    write = archive.write_grid_mix
    assert write(rows(100, consolidated=False, ingested="2026-11-20T10:00Z"), perimeter="national")
    assert stored(archive) == [(100.0, False)]
    # An older consolidated row replaces a newer real-time one.
    summary = write(
        rows(200, consolidated=True, ingested="2026-11-01T00:00Z"), perimeter="national"
    )
    assert summary.rows_written == 1
    assert stored(archive) == [(200.0, True)]
    # Real time never overwrites consolidated, even when ingested later.
    summary = write(
        rows(300, consolidated=False, ingested="2026-12-01T00:00Z"), perimeter="national"
    )
    assert (summary.rows_written, summary.partitions_unchanged) == (0, 1)
    assert stored(archive) == [(200.0, True)]
    # Among consolidated rows the newer wins, and an older one does not.
    write(rows(250, consolidated=True, ingested="2026-11-02T00:00Z"), perimeter="national")
    assert stored(archive) == [(250.0, True)]
    write(rows(260, consolidated=True, ingested="2026-10-01T00:00Z"), perimeter="national")
    assert stored(archive) == [(250.0, True)]


def test_newer_real_time_wins_among_real_time(archive: Archive) -> None:
    later = T0 + pd.Timedelta(minutes=15)
    archive.write_grid_mix(
        rows(1, consolidated=False, ingested="2026-11-20T10:00Z", periods=2), perimeter="national"
    )
    archive.write_grid_mix(
        rows(2, consolidated=False, ingested="2026-11-20T10:15Z", start=later), perimeter="national"
    )
    archive.write_grid_mix(
        rows(3, consolidated=False, ingested="2026-11-20T09:00Z"), perimeter="national"
    )
    assert stored(archive) == [(1.0, False), (2.0, False)]


def test_a_file_from_before_the_flag(tmp_path: Path, archive: Archive) -> None:
    """A partition written without `consolidated` reads as real time and merges as such."""
    folder = base(tmp_path) / "month=2026-11"
    folder.mkdir(parents=True)
    stamp = pa.timestamp("us", tz="UTC")
    old = pa.table(
        {
            "start": pa.array([T0, T0 + pd.Timedelta(minutes=15)], stamp),
            "end": pa.array([T0 + pd.Timedelta(minutes=15), T0 + pd.Timedelta(minutes=30)], stamp),
            **{name: pa.array([1.0, 2.0]) for name in GRID_MIX_FIELDS},
            "ingested_at": pa.array([pd.Timestamp("2026-12-01T00:00Z")] * 2, stamp),
        }
    )
    pq.write_table(old, folder / "data.parquet")
    back = archive.read_grid_mix("national", None, None)
    assert back is not None
    assert back["consolidated"].tolist() == [False, False]
    archive.write_grid_mix(
        rows(5, consolidated=True, ingested="2026-11-01T00:00Z"), perimeter="national"
    )
    archive.write_grid_mix(
        rows(
            6, consolidated=False, ingested="2026-11-21T00:00Z", start=T0 + pd.Timedelta(minutes=15)
        ),
        perimeter="national",
    )
    # The newer stored real-time row (ingested 2026-12-01) beats the incoming real-time one.
    assert stored(archive) == [(5.0, True), (2.0, False)]


def test_flags_of_any_type(archive: Archive) -> None:
    frame = rows(7, consolidated=False, ingested="2026-11-20T10:00Z", periods=6)
    frame["consolidated"] = pd.Series([True, None, "false", 1, np.nan, pd.NA], dtype=object)
    archive.write_grid_mix(frame, perimeter="national")
    back = archive.read_grid_mix("national", None, None)
    assert back is not None
    assert back["consolidated"].tolist() == [True, False, False, True, False, False]
    nullable = frame.assign(consolidated=pd.array([True, False, None, True, None, False]))
    archive.write_grid_mix(
        nullable.assign(ingested_at=pd.Timestamp("2026-11-21T00:00Z")), perimeter="national"
    )
    back = archive.read_grid_mix("national", None, None)
    assert back is not None
    assert back["consolidated"].tolist() == [True, False, False, True, False, False]


def test_read_range_perimeters_and_extras(
    tmp_path: Path, archive: Archive, caplog: pytest.LogCaptureFixture
) -> None:
    assert archive.read_grid_mix("national", None, None) is None
    jan = rows(
        1,
        consolidated=True,
        ingested="2026-02-10T00:00Z",
        start=pd.Timestamp("2026-01-31T23:30Z"),
        periods=4,
    )
    jan["stockage_batterie"] = [-10.0, -11.0, -12.0, -13.0]
    archive.write_grid_mix(jan, perimeter="national")
    mar = rows(
        3,
        consolidated=False,
        ingested="2026-03-10T00:00Z",
        start=pd.Timestamp("2026-03-01T00:00Z"),
        periods=2,
    )
    mar["ech_comm_suisse"] = [-1300.0, -1301.0]
    archive.write_grid_mix(mar, perimeter="national")
    archive.write_grid_mix(mar, perimeter="11")

    everything = archive.read_grid_mix("national", None, None)
    assert everything is not None
    assert len(everything) == 6
    assert list(everything.columns[-4:]) == [
        "ech_comm_suisse",
        "stockage_batterie",
        "consolidated",
        "ingested_at",
    ]
    assert everything["stockage_batterie"].isna().tolist() == [False] * 4 + [True] * 2
    assert everything["ech_comm_suisse"].isna().tolist() == [True] * 4 + [False] * 2
    assert str(everything["start"].dtype) == "datetime64[ns, UTC]"

    feb = archive.read_grid_mix(
        "national", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, 0, 15, tzinfo=UTC)
    )
    assert feb is not None
    assert feb["start"].astype(str).tolist() == [
        "2026-02-01 00:00:00+00:00",
        "2026-02-01 00:15:00+00:00",
        "2026-03-01 00:00:00+00:00",
    ]
    assert (
        archive.read_grid_mix(
            "national", datetime(2026, 2, 5, tzinfo=UTC), datetime(2026, 2, 6, tzinfo=UTC)
        )
        is None
    )
    assert archive.read_grid_mix("national", datetime(2026, 4, 1, tzinfo=UTC), None) is None
    regional = archive.read_grid_mix("11", None, None)
    assert regional is not None and len(regional) == 2
    assert archive.read_grid_mix("53", None, None) is None

    (base(tmp_path) / "month=junk").mkdir()
    (base(tmp_path) / "month=2026-02" / "data.parquet").write_bytes(b"not parquet")
    with caplog.at_level(logging.WARNING):
        skipped = archive.read_grid_mix("national", None, None)
    assert skipped is not None and len(skipped) == 4
    assert "Skipping unreadable archive partition" in caplog.text


def test_existing_test_shape_still_merges(archive: Archive) -> None:
    """Frames without `consolidated` (older callers) still store; the flag reads False."""
    frame: dict[str, Any] = {
        "start": pd.date_range("2026-01-31T23:30Z", periods=2, freq="15min"),
        "consommation": [61000.0, None],
    }
    archive.write_grid_mix(pd.DataFrame(frame), perimeter="national")
    back = archive.read_grid_mix("national", None, None)
    assert back is not None
    assert back["consolidated"].tolist() == [False, False]
    assert back["end"].isna().all()


def test_on_s3(s3: Any, tmp_path: Path) -> None:
    """The reader lists months on an object store too (moto on loopback)."""
    remote = open_archive(
        f"s3://{s3.bucket}/lake", config_dir=str(tmp_path), storage_options=s3.options
    )
    assert remote.read_grid_mix("national", None, None) is None
    realtime = rows(1, consolidated=False, ingested="2026-11-20T10:00Z", periods=3)
    remote.write_grid_mix(realtime, perimeter="national")
    remote.write_grid_mix(
        rows(2, consolidated=True, ingested="2026-11-01T00:00Z"), perimeter="national"
    )
    assert s3.objects("lake/grid_mix") == [
        "lake/grid_mix/supplier=eco2mix/perimeter=national/month=2026-11/data.parquet"
    ]
    back = remote.read_grid_mix("national", None, None)
    assert back is not None
    assert back["consommation"].tolist() == [2.0, 1.0, 1.0]
    assert back["consolidated"].tolist() == [True, False, False]
