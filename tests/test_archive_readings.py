"""Archive dataset `readings`: counter readings of meters read from HA entities or by hand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from homeassistant.core import HomeAssistant
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from custom_components.meterlake.analytics.intervals import empty_intervals
from custom_components.meterlake.analytics.schema import READING_COLUMNS
from custom_components.meterlake.archive import (
    Archive,
    CorruptPartitionError,
    MonthCheck,
    open_archive,
)
from custom_components.meterlake.sinks import ArchiveSink, _write_fetch
from custom_components.meterlake.sources.base import FetchResult, MeterInfo

from .test_archive import intervals

WATER = "entity_water_main"
GAS = "entity_gas_hall"
INGEST_1 = pd.Timestamp("2024-03-01T00:00:00Z")
INGEST_2 = pd.Timestamp("2024-03-02T00:00:00Z")
NOW = datetime(2024, 3, 5, tzinfo=UTC)


def readings(
    meter: str,
    times: Sequence[str],
    values: Sequence[float],
    *,
    supplier: str = "entity",
    source: str = "state",
    unit: str = "m³",
    reset: str | None = None,
    ingested_at: pd.Timestamp = INGEST_1,
) -> pd.DataFrame:
    """Rows of the readings dataset, one per (time, value)."""
    return pd.DataFrame(
        {
            "meter": meter,
            "supplier": supplier,
            "time": pd.to_datetime(list(times), utc=True),
            "reading": np.asarray(values, dtype=np.float64),
            "unit": unit,
            "source": source,
            "reset": reset,
            "ingested_at": ingested_at,
        },
        columns=list(READING_COLUMNS),
    )


def two_months(meter: str, start_value: float = 100.0) -> pd.DataFrame:
    """Four readings: two late in January, two early in February (UTC)."""
    return readings(
        meter,
        ["2024-01-30T08:00Z", "2024-01-31T23:59Z", "2024-02-01T00:00Z", "2024-02-02T12:00Z"],
        [start_value, start_value + 1.5, start_value + 1.5, start_value + 4.25],
    )


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive("meterlake", config_dir=str(tmp_path))


def partition(tmp_path: Path, meter: str, month: str, supplier: str = "entity") -> Path:
    return (
        tmp_path
        / "meterlake"
        / "readings"
        / f"supplier={supplier}"
        / f"meter={meter}"
        / f"month={month}"
        / "data.parquet"
    )


def glob(tmp_path: Path) -> str:
    return str(tmp_path / "meterlake" / "readings" / "**" / "*.parquet")


def sql(query: str) -> list[tuple[Any, ...]]:
    return duckdb.connect().execute(query).fetchall()


def meter_info(key: str = WATER) -> MeterInfo:
    return MeterInfo(key=key, supplier="entity", kind="water", unit="m³", name="Water")


# -- writing and reading back -----------------------------------------------------------------


def test_readings_are_partitioned_by_supplier_meter_and_utc_month(
    tmp_path: Path, archive: Archive
) -> None:
    summary = archive.write_readings(
        pd.concat([two_months(WATER), two_months(GAS, 50.0)], ignore_index=True)
    )

    assert (summary.dataset, summary.partitions_written, summary.rows_written) == (
        "readings",
        4,
        8,
    )
    files = sorted(
        str(p.relative_to(tmp_path / "meterlake"))
        for p in (tmp_path / "meterlake").rglob("*")
        if p.is_file()
    )
    assert files == [
        f"readings/supplier=entity/meter={GAS}/month=2024-01/data.parquet",
        f"readings/supplier=entity/meter={GAS}/month=2024-02/data.parquet",
        f"readings/supplier=entity/meter={WATER}/month=2024-01/data.parquet",
        f"readings/supplier=entity/meter={WATER}/month=2024-02/data.parquet",
    ]


def test_read_readings_returns_each_meters_rows_as_written(archive: Archive) -> None:
    water, gas = two_months(WATER), two_months(GAS, 50.0)
    archive.write_readings(pd.concat([water, gas], ignore_index=True))

    for meter, written in ((WATER, water), (GAS, gas)):
        back = archive.read_readings(meter)
        assert list(back.columns) == list(READING_COLUMNS)
        assert str(back["time"].dtype) == "datetime64[ns, UTC]"
        assert str(back["ingested_at"].dtype) == "datetime64[ns, UTC]"
        assert back["reading"].dtype == np.float64
        pd.testing.assert_frame_equal(back, written, check_dtype=False, check_exact=True)


def test_duckdb_reads_the_readings_dataset_with_hive_partitioning(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_readings(pd.concat([two_months(WATER), two_months(GAS, 50.0)], ignore_index=True))

    rows = sql(
        f"""SELECT meter, supplier, month, count(*), max(reading)
            FROM read_parquet('{glob(tmp_path)}', hive_partitioning=true)
            GROUP BY ALL ORDER BY meter, month"""
    )
    assert rows == [
        (GAS, "entity", "2024-01", 2, 51.5),
        (GAS, "entity", "2024-02", 2, 54.25),
        (WATER, "entity", "2024-01", 2, 101.5),
        (WATER, "entity", "2024-02", 2, 104.25),
    ]
    columns = [
        r[0]
        for r in sql(
            f"DESCRIBE SELECT * FROM read_parquet('{glob(tmp_path)}', hive_partitioning=true)"
        )
    ]
    # Partition columns live in the path only: each comes back once.
    assert sorted(columns) == sorted([*READING_COLUMNS, "month"])


def test_reading_files_carry_the_dataset_and_schema_version(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_readings(two_months(WATER))

    schema = pq.read_schema(partition(tmp_path, WATER, "2024-01"))
    assert schema.metadata == {b"meterlake.schema_version": b"1", b"meterlake.dataset": b"readings"}
    assert schema.names == ["time", "reading", "unit", "source", "reset", "ingested_at"]
    assert str(schema.field("time").type) == "timestamp[us, tz=UTC]"


def test_month_of_a_reading_is_its_utc_month(tmp_path: Path, archive: Archive) -> None:
    # 00:30 on 1 February in Paris is 23:30 on 31 January UTC.
    frame = readings(WATER, ["2024-01-01T00:00Z"], [1.0])
    frame["time"] = pd.to_datetime(["2024-02-01T00:30+01:00"]).tz_convert("Europe/Paris")

    archive.write_readings(frame)

    assert partition(tmp_path, WATER, "2024-01").exists()
    assert not partition(tmp_path, WATER, "2024-02").exists()
    back = archive.read_readings(WATER)
    assert back["time"].tolist() == [pd.Timestamp("2024-01-31T23:30Z")]


def test_a_meters_readings_are_read_from_every_supplier(archive: Archive) -> None:
    archive.write_readings(readings(WATER, ["2024-01-02T00:00Z"], [5.0], supplier="entity"))
    archive.write_readings(readings(WATER, ["2024-01-01T00:00Z"], [4.0], supplier="hand"))

    back = archive.read_readings(WATER)

    assert back[["supplier", "reading"]].values.tolist() == [["hand", 4.0], ["entity", 5.0]]


# -- merge ------------------------------------------------------------------------------------


def test_rewritten_reading_with_newer_ingested_at_replaces_the_stored_one(
    archive: Archive,
) -> None:
    archive.write_readings(readings(WATER, ["2024-01-05T10:00Z"], [12.0]))

    summary = archive.write_readings(
        readings(WATER, ["2024-01-05T10:00Z"], [12.5], reset="jitter", ingested_at=INGEST_2)
    )

    back = archive.read_readings(WATER)
    assert (summary.rows_written, summary.rows_total) == (1, 1)
    assert back[["reading", "reset"]].values.tolist() == [[12.5, "jitter"]]
    assert back["ingested_at"].tolist() == [INGEST_2]


def test_rewritten_reading_with_older_ingested_at_does_not_replace_the_stored_one(
    archive: Archive,
) -> None:
    archive.write_readings(readings(WATER, ["2024-01-05T10:00Z"], [12.5], ingested_at=INGEST_2))

    summary = archive.write_readings(readings(WATER, ["2024-01-05T10:00Z"], [12.0]))

    assert summary.rows_written == 0
    assert archive.read_readings(WATER)["reading"].tolist() == [12.5]


def test_hand_and_new_meter_readings_at_the_same_time_are_both_kept(archive: Archive) -> None:
    moment = "2024-01-10T09:00Z"
    archive.write_readings(readings(WATER, [moment], [987.0], source="hand"))
    archive.write_readings(readings(WATER, [moment], [0.0], source="new_meter"))

    back = archive.read_readings(WATER)

    assert back[["source", "reading"]].values.tolist() == [["hand", 987.0], ["new_meter", 0.0]]
    assert set(back["time"]) == {pd.Timestamp(moment)}


# -- windows and empty results ----------------------------------------------------------------


def test_window_keeps_readings_from_start_inclusive_to_end_exclusive(archive: Archive) -> None:
    archive.write_readings(two_months(WATER))

    window = archive.read_readings(
        WATER, datetime(2024, 1, 31, 23, 59, tzinfo=UTC), datetime(2024, 2, 2, 12, tzinfo=UTC)
    )

    assert window["time"].tolist() == [
        pd.Timestamp("2024-01-31T23:59Z"),
        pd.Timestamp("2024-02-01T00:00Z"),
    ]


def test_meter_without_readings_reads_an_empty_frame_with_the_columns(archive: Archive) -> None:
    archive.write_readings(two_months(WATER))

    for back in (
        archive.read_readings("nobody"),
        archive.read_readings(WATER, datetime(2025, 1, 1, tzinfo=UTC)),
    ):
        assert back.empty
        assert list(back.columns) == list(READING_COLUMNS)
        assert str(back["time"].dtype) == "datetime64[ns, UTC]"
        assert back["reading"].dtype == np.float64


def test_writing_no_readings_writes_nothing(tmp_path: Path, archive: Archive) -> None:
    summary = archive.write_readings(readings(WATER, [], []))

    assert (summary.partitions_written, summary.rows_total) == (0, 0)
    assert not (tmp_path / "meterlake" / "readings").exists()


# -- corruption and verification --------------------------------------------------------------


def test_corrupt_readings_partition_is_quarantined_and_reported_on_write(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_readings(two_months(WATER))
    path = partition(tmp_path, WATER, "2024-01")
    path.write_bytes(b"not parquet at all")

    summary = archive.write_readings(readings(WATER, ["2024-01-20T00:00Z"], [100.75]))

    quarantined = path.with_name("_data.parquet.corrupt")
    assert summary.corrupt == (str(quarantined),)
    assert summary.corrupt_windows == (
        (WATER, datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)),
    )
    assert quarantined.read_bytes() == b"not parquet at all"
    # January was rebuilt from the write alone; February is untouched.
    assert archive.read_readings(WATER)["reading"].tolist() == [100.75, 101.5, 104.25]


def test_corrupt_readings_partition_raises_on_read(tmp_path: Path, archive: Archive) -> None:
    archive.write_readings(two_months(WATER))
    path = partition(tmp_path, WATER, "2024-01")
    path.write_bytes(path.read_bytes()[:20])

    with pytest.raises(CorruptPartitionError) as caught:
        archive.read_readings(WATER)

    assert caught.value.path == str(path)


def test_read_with_skip_corrupt_leaves_the_corrupt_readings_partition_out(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_readings(two_months(WATER))
    partition(tmp_path, WATER, "2024-01").write_bytes(b"")

    back = archive.read_readings(WATER, skip_corrupt=True)

    assert back["time"].tolist() == [
        pd.Timestamp("2024-02-01T00:00Z"),
        pd.Timestamp("2024-02-02T12:00Z"),
    ]


def test_verification_reports_and_quarantines_an_unreadable_readings_file(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_intervals(
        intervals(WATER, start=datetime(2024, 1, 1, tzinfo=UTC), periods=48 * 60)
    )
    archive.write_readings(two_months(WATER))
    path = partition(tmp_path, WATER, "2024-01")
    path.write_bytes(b"garbage")

    check = archive.verify_intervals(WATER, 30)

    assert check.damaged_months == ("2024-01",)
    january = check.months[0]
    assert (january.month, january.rows, january.unreadable) == (
        "2024-01",
        31 * 48,
        (str(path),),
    )
    assert check.missing == 0
    assert not path.exists()
    assert path.with_name("_data.parquet.corrupt").read_bytes() == b"garbage"
    # The quarantined file was reported once; the next pass finds the archive sound again.
    assert archive.verify_intervals(WATER, 30).damaged_months == ()


def test_verification_without_quarantine_leaves_the_readings_file_in_place(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_intervals(intervals(WATER, periods=48))
    archive.write_readings(two_months(WATER))
    path = partition(tmp_path, WATER, "2024-01")
    path.write_bytes(b"garbage")

    check = archive.verify_intervals(WATER, 30, quarantine=False)

    assert check.damaged_months == ("2024-01",)
    assert path.read_bytes() == b"garbage"


def test_verification_reports_unreadable_readings_of_a_meter_without_consumption(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_readings(two_months(WATER))
    path = partition(tmp_path, WATER, "2024-02")
    path.write_bytes(b"garbage")

    check = archive.verify_intervals(WATER, 30)

    assert check.months == (MonthCheck("2024-02", 0, 0, (str(path),), ()),)
    assert check.damaged_months == ("2024-02",)
    assert check.missing == 0


def test_readable_readings_do_not_change_what_verification_expects(archive: Archive) -> None:
    archive.write_intervals(intervals(WATER, periods=48))
    before = archive.verify_intervals(WATER, 30)

    archive.write_readings(two_months(WATER))

    assert archive.verify_intervals(WATER, 30) == before


# -- the sink ---------------------------------------------------------------------------------


def test_write_fetch_archives_the_results_readings(archive: Archive) -> None:
    result = FetchResult(
        intervals=empty_intervals(), complete_until=NOW, readings=two_months(WATER)
    )

    outcome = _write_fetch(archive, meter_info(), result, 0, NOW)

    assert outcome.accepted
    assert outcome.refetch == []
    assert archive.read_readings(WATER)["reading"].tolist() == [100.0, 101.5, 101.5, 104.25]


def test_write_fetch_refetches_the_month_of_a_corrupt_readings_partition(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_readings(two_months(WATER))
    partition(tmp_path, WATER, "2024-02").write_bytes(b"garbage")
    result = FetchResult(
        intervals=empty_intervals(),
        complete_until=NOW,
        readings=readings(WATER, ["2024-02-10T00:00Z"], [110.0]),
    )

    outcome = _write_fetch(archive, meter_info(), result, 0, NOW)

    assert outcome.refetch == [(datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))]


async def test_sink_reads_a_meters_readings_leaving_corrupt_partitions_out(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    sink = ArchiveSink(hass, "01READINGS", {"archive_root": str(tmp_path / "lake")})
    archive = await sink.async_open()
    await hass.async_add_executor_job(archive.write_readings, two_months(WATER))
    (
        tmp_path / "lake" / "readings" / "supplier=entity" / f"meter={WATER}" / "month=2024-01"
    ).joinpath("data.parquet").write_bytes(b"garbage")

    back = await sink.async_read_readings(meter_info(), datetime(2024, 1, 1, tzinfo=UTC))

    assert back is not None
    assert back["reading"].tolist() == [101.5, 104.25]


async def test_sink_reads_no_readings_when_the_archive_cannot_be_opened(
    hass: HomeAssistant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("", encoding="utf-8")
    sink = ArchiveSink(hass, "01READINGS", {"archive_root": str(blocker)})

    assert await sink.async_read_readings(meter_info()) is None
    assert "Cannot read the archive" in caplog.text
