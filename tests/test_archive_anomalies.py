"""Archive dataset `anomalies`: what analytics found unusual in a meter's intervals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from custom_components.meterlake.analytics.schema import ANOMALY_COLUMNS
from custom_components.meterlake.archive import (
    Archive,
    CorruptPartitionError,
    open_archive,
)
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sinks import ArchiveSink

WATER = "entity_water_main"
GAS = "entity_gas_hall"
DETECTED_1 = pd.Timestamp("2024-03-01T06:00:00Z")
DETECTED_2 = pd.Timestamp("2024-03-02T06:00:00Z")


def anomalies(
    meter: str,
    rows: Sequence[tuple[str, str, float]],
    *,
    detected_at: pd.Timestamp = DETECTED_1,
    reason: str = "found",
) -> pd.DataFrame:
    """Rows of the anomalies dataset, one per (kind, start, observed); each lasts an hour."""
    starts = pd.to_datetime([start for _kind, start, _observed in rows], utc=True)
    observed = np.asarray([value for _kind, _start, value in rows], dtype=np.float64)
    return pd.DataFrame(
        {
            "meter": meter,
            "kind": [kind for kind, _start, _observed in rows],
            "start": starts,
            "end": starts + pd.Timedelta(hours=1),
            "observed": observed,
            "expected": 2.0,
            "ratio": observed / 2.0,
            "unit": "kWh",
            "reason": reason,
            "detected_at": detected_at,
        },
        columns=list(ANOMALY_COLUMNS),
    )


def two_months(meter: str) -> pd.DataFrame:
    """Three anomalies: two late in January, one early in February (UTC)."""
    return anomalies(
        meter,
        [
            ("high_day", "2024-01-30T00:00Z", 30.0),
            ("spike", "2024-01-31T03:00Z", 8.0),
            ("no_data", "2024-02-01T00:00Z", 26.0),
        ],
    )


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive("meterlake", config_dir=str(tmp_path))


def partition(tmp_path: Path, meter: str, month: str) -> Path:
    return (
        tmp_path / "meterlake" / "anomalies" / f"meter={meter}" / f"month={month}" / "data.parquet"
    )


def glob(tmp_path: Path) -> str:
    return str(tmp_path / "meterlake" / "anomalies" / "**" / "*.parquet")


def sql(query: str) -> list[tuple[Any, ...]]:
    return duckdb.connect().execute(query).fetchall()


# -- writing and reading back -----------------------------------------------------------------


def test_anomalies_are_partitioned_by_meter_and_utc_month_of_start(
    tmp_path: Path, archive: Archive
) -> None:
    summary = archive.write_anomalies(
        pd.concat([two_months(WATER), two_months(GAS)], ignore_index=True)
    )

    assert (summary.dataset, summary.partitions_written, summary.rows_written) == (
        "anomalies",
        4,
        6,
    )
    files = sorted(
        str(p.relative_to(tmp_path / "meterlake"))
        for p in (tmp_path / "meterlake").rglob("*")
        if p.is_file()
    )
    assert files == [
        f"anomalies/meter={GAS}/month=2024-01/data.parquet",
        f"anomalies/meter={GAS}/month=2024-02/data.parquet",
        f"anomalies/meter={WATER}/month=2024-01/data.parquet",
        f"anomalies/meter={WATER}/month=2024-02/data.parquet",
    ]


def test_month_of_an_anomaly_is_the_utc_month_of_its_start(
    tmp_path: Path, archive: Archive
) -> None:
    # 00:30 on 1 February in Paris is 23:30 on 31 January UTC.
    frame = anomalies(WATER, [("spike", "2024-01-01T00:00Z", 8.0)])
    frame["start"] = pd.to_datetime(["2024-02-01T00:30+01:00"]).tz_convert("Europe/Paris")

    archive.write_anomalies(frame)

    assert partition(tmp_path, WATER, "2024-01").exists()
    assert not partition(tmp_path, WATER, "2024-02").exists()
    assert archive.read_anomalies(WATER)["start"].tolist() == [pd.Timestamp("2024-01-31T23:30Z")]


def test_read_anomalies_returns_each_meters_rows_as_written(archive: Archive) -> None:
    water, gas = two_months(WATER), two_months(GAS)
    archive.write_anomalies(pd.concat([water, gas], ignore_index=True))

    for meter, written in ((WATER, water), (GAS, gas)):
        back = archive.read_anomalies(meter)
        assert list(back.columns) == list(ANOMALY_COLUMNS)
        for column in ("start", "end", "detected_at"):
            assert str(back[column].dtype) == "datetime64[ns, UTC]"
        for column in ("observed", "expected", "ratio"):
            assert back[column].dtype == np.float64
        pd.testing.assert_frame_equal(back, written, check_dtype=False, check_exact=True)


def test_anomaly_files_carry_the_dataset_schema_version_and_stored_columns(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_anomalies(two_months(WATER))

    schema = pq.read_schema(partition(tmp_path, WATER, "2024-01"))
    assert schema.metadata == {
        b"meterlake.schema_version": b"1",
        b"meterlake.dataset": b"anomalies",
    }
    # The meter lives in the path only.
    assert schema.names == [c for c in ANOMALY_COLUMNS if c != "meter"]
    for column in ("start", "end", "detected_at"):
        assert str(schema.field(column).type) == "timestamp[us, tz=UTC]"
    for column in ("observed", "expected", "ratio"):
        assert str(schema.field(column).type) == "double"
    for column in ("kind", "unit", "reason"):
        assert str(schema.field(column).type) == "string"


def test_duckdb_reads_the_anomalies_dataset_with_hive_partitioning(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_anomalies(pd.concat([two_months(WATER), two_months(GAS)], ignore_index=True))

    rows = sql(
        f"""SELECT meter, month, count(*), max(observed)
            FROM read_parquet('{glob(tmp_path)}', hive_partitioning=true)
            GROUP BY ALL ORDER BY meter, month"""
    )
    assert rows == [
        (GAS, "2024-01", 2, 30.0),
        (GAS, "2024-02", 1, 26.0),
        (WATER, "2024-01", 2, 30.0),
        (WATER, "2024-02", 1, 26.0),
    ]
    columns = [
        r[0]
        for r in sql(
            f"DESCRIBE SELECT * FROM read_parquet('{glob(tmp_path)}', hive_partitioning=true)"
        )
    ]
    # Partition columns live in the path only: each comes back once.
    assert sorted(columns) == sorted([*ANOMALY_COLUMNS, "month"])


# -- merge ------------------------------------------------------------------------------------


def test_redetected_anomaly_with_newer_detected_at_replaces_the_stored_one(
    archive: Archive,
) -> None:
    archive.write_anomalies(anomalies(WATER, [("spike", "2024-01-05T03:00Z", 8.0)]))

    summary = archive.write_anomalies(
        anomalies(
            WATER,
            [("spike", "2024-01-05T03:00Z", 9.5)],
            detected_at=DETECTED_2,
            reason="found again",
        )
    )

    back = archive.read_anomalies(WATER)
    assert (summary.rows_written, summary.rows_total) == (1, 1)
    assert back[["observed", "reason"]].values.tolist() == [[9.5, "found again"]]
    assert back["detected_at"].tolist() == [DETECTED_2]


def test_redetected_anomaly_with_older_detected_at_does_not_replace_the_stored_one(
    archive: Archive,
) -> None:
    archive.write_anomalies(
        anomalies(WATER, [("spike", "2024-01-05T03:00Z", 9.5)], detected_at=DETECTED_2)
    )

    summary = archive.write_anomalies(anomalies(WATER, [("spike", "2024-01-05T03:00Z", 8.0)]))

    assert summary.rows_written == 0
    assert archive.read_anomalies(WATER)["observed"].tolist() == [9.5]


def test_anomaly_without_detected_at_is_stamped_with_the_time_of_the_write(
    archive: Archive,
) -> None:
    frame = anomalies(WATER, [("spike", "2024-01-05T03:00Z", 8.0)])
    frame["detected_at"] = pd.NaT
    before = pd.Timestamp.now(tz="UTC")

    archive.write_anomalies(frame)

    (stamp,) = archive.read_anomalies(WATER)["detected_at"].tolist()
    assert before <= stamp <= pd.Timestamp.now(tz="UTC")


def test_two_kinds_at_the_same_start_are_both_kept(archive: Archive) -> None:
    moment = "2024-01-10T00:00Z"
    archive.write_anomalies(anomalies(WATER, [("spike", moment, 8.0)]))
    archive.write_anomalies(anomalies(WATER, [("high_day", moment, 30.0)]))

    back = archive.read_anomalies(WATER)

    # Sorted by start, then kind.
    assert back[["kind", "observed"]].values.tolist() == [["high_day", 30.0], ["spike", 8.0]]
    assert set(back["start"]) == {pd.Timestamp(moment)}


# -- windows and empty results ----------------------------------------------------------------


def test_window_keeps_anomalies_from_start_inclusive_to_end_exclusive(archive: Archive) -> None:
    archive.write_anomalies(two_months(WATER))

    window = archive.read_anomalies(
        WATER, datetime(2024, 1, 31, 3, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    )
    after = archive.read_anomalies(WATER, start=datetime(2024, 1, 31, 4, tzinfo=UTC))

    assert window[["kind", "start"]].values.tolist() == [
        ["spike", pd.Timestamp("2024-01-31T03:00Z")]
    ]
    assert after["kind"].tolist() == ["no_data"]


def test_meter_without_anomalies_reads_an_empty_frame_with_the_columns(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_anomalies(two_months(WATER))

    for back in (
        archive.read_anomalies("nobody"),
        archive.read_anomalies(WATER, datetime(2025, 1, 1, tzinfo=UTC)),
        open_archive("never_written", config_dir=str(tmp_path)).read_anomalies(WATER),
    ):
        assert back.empty
        assert list(back.columns) == list(ANOMALY_COLUMNS)
        assert str(back["start"].dtype) == "datetime64[ns, UTC]"
        assert back["ratio"].dtype == np.float64


def test_writing_no_anomalies_writes_nothing(tmp_path: Path, archive: Archive) -> None:
    summary = archive.write_anomalies(anomalies(WATER, []))

    assert (summary.partitions_written, summary.rows_total) == (0, 0)
    assert not (tmp_path / "meterlake" / "anomalies").exists()


def test_anomaly_without_a_kind_is_refused(archive: Archive) -> None:
    frame = anomalies(WATER, [("spike", "2024-01-05T03:00Z", 8.0)])
    frame["kind"] = None

    with pytest.raises(ValueError, match="null kind"):
        archive.write_anomalies(frame)


# -- corruption -------------------------------------------------------------------------------


def test_corrupt_anomalies_partition_is_quarantined_and_rebuilt_on_write(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_anomalies(two_months(WATER))
    path = partition(tmp_path, WATER, "2024-01")
    path.write_bytes(b"not parquet at all")

    summary = archive.write_anomalies(anomalies(WATER, [("base_load", "2024-01-20T01:00Z", 0.4)]))

    quarantined = path.with_name("_data.parquet.corrupt")
    assert summary.corrupt == (str(quarantined),)
    assert summary.corrupt_windows == (
        (WATER, datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)),
    )
    assert quarantined.read_bytes() == b"not parquet at all"
    # January was rebuilt from the write alone; February is untouched.
    assert archive.read_anomalies(WATER)["kind"].tolist() == ["base_load", "no_data"]


def test_corrupt_anomalies_partition_raises_on_read(tmp_path: Path, archive: Archive) -> None:
    archive.write_anomalies(two_months(WATER))
    path = partition(tmp_path, WATER, "2024-01")
    path.write_bytes(path.read_bytes()[:20])

    with pytest.raises(CorruptPartitionError) as caught:
        archive.read_anomalies(WATER)

    assert caught.value.path == str(path)


def test_read_with_skip_corrupt_leaves_the_corrupt_anomalies_partition_out(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_anomalies(two_months(WATER))
    partition(tmp_path, WATER, "2024-01").write_bytes(b"")

    back = archive.read_anomalies(WATER, skip_corrupt=True)

    assert back["kind"].tolist() == ["no_data"]


# -- the sink ---------------------------------------------------------------------------------


async def test_sink_writes_anomalies_to_the_archive(hass: HomeAssistant, tmp_path: Path) -> None:
    sink = ArchiveSink(hass, "01ANOMALIES", {"archive_root": str(tmp_path / "lake")})

    assert await sink.async_write_anomalies(two_months(WATER))

    archive = await sink.async_open()
    back = await hass.async_add_executor_job(archive.read_anomalies, WATER)
    assert back["kind"].tolist() == ["high_day", "spike", "no_data"]
    assert sink.last_error is None


async def test_sink_writing_no_anomalies_succeeds_without_touching_the_archive(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    sink = ArchiveSink(hass, "01ANOMALIES", {"archive_root": str(tmp_path / "lake")})

    assert await sink.async_write_anomalies(anomalies(WATER, []))

    assert sink.archive is None
    assert not (tmp_path / "lake").exists()


async def test_sink_failing_to_write_anomalies_returns_false_and_raises_a_repair(
    hass: HomeAssistant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = ArchiveSink(hass, "01ANOMALIES", {"archive_root": str(tmp_path / "lake")})
    await sink.async_open()
    # A file where the dataset's folder should be: the partition cannot be created.
    (tmp_path / "lake" / "anomalies").write_text("", encoding="utf-8")

    assert not await sink.async_write_anomalies(two_months(WATER))

    assert sink.last_error is not None
    assert "Cannot write the archive" in caplog.text
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "archive_unwritable_01ANOMALIES")
    assert issue is not None
    assert issue.translation_key == "archive_unwritable"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["root"] == str(tmp_path / "lake")


async def test_sink_that_cannot_open_the_archive_does_not_write_anomalies(
    hass: HomeAssistant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("", encoding="utf-8")
    sink = ArchiveSink(hass, "01ANOMALIES", {"archive_root": str(blocker / "lake")})

    assert not await sink.async_write_anomalies(two_months(WATER))

    assert sink.last_error is not None
    assert "Cannot write the archive" in caplog.text
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "archive_unwritable_01ANOMALIES")
    assert issue is not None
    assert issue.translation_key == "archive_unwritable"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["root"] == str(blocker / "lake")
