"""Archive verification: a cheap pass that finds damaged, deleted and missing history."""

from __future__ import annotations

from datetime import UTC, datetime
import io
from pathlib import Path
import shutil

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from custom_components.meterlake.archive import (
    Archive,
    MeterCheck,
    MonthCheck,
    open_archive,
)

from .test_archive import glob, intervals, part
from .test_archive_s3 import S3

METER = "octopus_electricity_1000000000000"
HALF_HOURS = {  # 30-minute slots of UTC months of 2024 (a leap year): 48 a day, DST or not
    "2024-01": 31 * 48,
    "2024-02": 29 * 48,
    "2024-03": 31 * 48,  # Europe changes to summer time on the 31st: still 1488 in UTC
    "2024-04": 30 * 48,
    "2024-05": 31 * 48,
    "2024-06": 30 * 48,
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def whole(month: str) -> tuple[datetime, datetime]:
    year, number = int(month[:4]), int(month[5:])
    return utc(year, number, 1), utc(year + number // 12, number % 12 + 1, 1)


def months(archive: Archive, first: str, last: str) -> None:
    """Store every half-hour of the months first..last."""
    start, end = whole(first)[0], whole(last)[1]
    archive.write_intervals(
        intervals(start=start, periods=int((end - start).total_seconds()) // 1800)
    )


def healthy(month: str) -> MonthCheck:
    return MonthCheck(month, HALF_HOURS[month], HALF_HOURS[month], (), ())


def hive_count(tmp_path: Path) -> int:
    return int(
        duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{glob(tmp_path)}', hive_partitioning=1)"
        ).fetchall()[0][0]
    )


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive("meterlake", config_dir=str(tmp_path))


@pytest.fixture
def damaged(tmp_path: Path, archive: Archive) -> Archive:
    """January to June stored; then January garbage, March zero bytes, May deleted."""
    months(archive, "2024-01", "2024-06")
    part(tmp_path, METER, "2024-01").write_bytes(b"this is not parquet at all")
    part(tmp_path, METER, "2024-03").write_bytes(b"")
    shutil.rmtree(part(tmp_path, METER, "2024-05").parent)
    return archive


def test_healthy_archive_reports_nothing_missing(archive: Archive) -> None:
    months(archive, "2024-02", "2024-04")

    check = archive.verify_intervals(METER, 30)

    assert check == MeterCheck(
        METER,
        (healthy("2024-02"), healthy("2024-03"), healthy("2024-04")),
        first=utc(2024, 2, 1),
        last=utc(2024, 5, 1),
    )
    assert check.missing == 0
    assert check.damaged_months == ()


def test_garbage_zero_byte_and_deleted_months_are_reported(
    tmp_path: Path, damaged: Archive
) -> None:
    check = damaged.verify_intervals(METER, 30)

    jan, mar = str(part(tmp_path, METER, "2024-01")), str(part(tmp_path, METER, "2024-03"))
    assert check.months == (
        MonthCheck("2024-01", 0, 1488, (jan,), (whole("2024-01"),)),
        healthy("2024-02"),
        MonthCheck("2024-03", 0, 1488, (mar,), (whole("2024-03"),)),
        healthy("2024-04"),
        MonthCheck("2024-05", 0, 1488, (), (whole("2024-05"),)),
        healthy("2024-06"),
    )
    assert check.damaged_months == ("2024-01", "2024-03", "2024-05")
    assert check.missing == 3 * 1488
    assert (check.first, check.last) == (utc(2024, 2, 1), utc(2024, 7, 1))


def test_unreadable_files_are_quarantined_and_hive_readers_work_again(
    tmp_path: Path, damaged: Archive
) -> None:
    with pytest.raises(duckdb.Error):
        hive_count(tmp_path)

    damaged.verify_intervals(METER, 30)

    for month, content in (("2024-01", b"this is not parquet at all"), ("2024-03", b"")):
        folder = part(tmp_path, METER, month).parent
        assert sorted(p.name for p in folder.iterdir()) == ["_data.parquet.corrupt"]
        assert (folder / "_data.parquet.corrupt").read_bytes() == content
    assert hive_count(tmp_path) == HALF_HOURS["2024-02"] + 2 * HALF_HOURS["2024-04"]
    assert len(damaged.read_intervals(METER)) == hive_count(tmp_path)


def test_without_quarantine_unreadable_files_stay_where_they_are(
    tmp_path: Path, damaged: Archive
) -> None:
    check = damaged.verify_intervals(METER, 30, quarantine=False)

    assert check.damaged_months == ("2024-01", "2024-03", "2024-05")
    assert part(tmp_path, METER, "2024-01").read_bytes() == b"this is not parquet at all"
    assert part(tmp_path, METER, "2024-03").read_bytes() == b""
    assert not list(part(tmp_path, METER, "2024-01").parent.glob("*.corrupt"))


def test_quarantined_months_stay_missing_on_the_next_pass(damaged: Archive) -> None:
    damaged.verify_intervals(METER, 30)

    again = damaged.verify_intervals(METER, 30)

    # Nothing left to set aside, but the history is still not there.
    assert [m.month for m in again.months] == list(HALF_HOURS)
    assert [m.unreadable for m in again.months] == [()] * 6
    assert again.missing == 3 * 1488
    assert [m.gaps for m in again.months if m.rows == 0] == [
        (whole("2024-01"),),
        (whole("2024-03"),),
        (whole("2024-05"),),
    ]
    assert again.damaged_months == ("2024-03", "2024-05")  # January is before the first row


def test_file_without_a_start_column_is_unreadable(tmp_path: Path, archive: Archive) -> None:
    months(archive, "2024-02", "2024-03")
    foreign = part(tmp_path, METER, "2024-02")
    pq.write_table(pa.table({"when": [1, 2, 3], "value": [0.1, 0.2, 0.3]}), foreign)

    check = archive.verify_intervals(METER, 30)

    assert check.months[0] == MonthCheck("2024-02", 0, 1392, (str(foreign),), (whole("2024-02"),))
    assert check.damaged_months == ("2024-02",)
    assert not foreign.exists()
    assert foreign.with_name("_data.parquet.corrupt").exists()


def test_three_missing_half_hours_are_one_gap(archive: Archive) -> None:
    rows = intervals(start=utc(2024, 2, 1), periods=HALF_HOURS["2024-02"])
    hole = (rows["start"] >= pd.Timestamp("2024-02-10T12:00Z")) & (
        rows["start"] < pd.Timestamp("2024-02-10T13:30Z")
    )
    archive.write_intervals(rows[~hole])

    check = archive.verify_intervals(METER, 30)

    assert check.months == (
        MonthCheck("2024-02", 1389, 1392, (), ((utc(2024, 2, 10, 12), utc(2024, 2, 10, 13, 30)),)),
    )
    assert check.missing == 3
    assert check.damaged_months == ()


def test_since_before_the_first_row_makes_the_leading_slots_a_gap(archive: Archive) -> None:
    months(archive, "2024-02", "2024-02")

    check = archive.verify_intervals(METER, 30, since=utc(2024, 1, 31, 22))

    assert check.months == (
        MonthCheck("2024-01", 0, 4, (), ((utc(2024, 1, 31, 22), utc(2024, 2, 1)),)),
        healthy("2024-02"),
    )
    assert check.missing == 4
    assert check.damaged_months == ()  # history asked for, never stored: missing, not damaged
    assert check.first == utc(2024, 2, 1)  # what is stored


def test_until_after_the_last_row_makes_the_trailing_slots_a_gap(archive: Archive) -> None:
    months(archive, "2024-02", "2024-02")

    check = archive.verify_intervals(METER, 30, until=utc(2024, 3, 1, 2))

    assert check.months[-1] == MonthCheck(
        "2024-03", 0, 4, (), ((utc(2024, 3, 1), utc(2024, 3, 1, 2)),)
    )
    assert check.missing == 4
    assert check.last == utc(2024, 3, 1)


def test_meter_without_history_has_no_months(archive: Archive) -> None:
    months(archive, "2024-02", "2024-02")

    assert archive.verify_intervals("octopus_gas_1234567890", 30) == MeterCheck(
        "octopus_gas_1234567890", (), None, None
    )


def test_verification_on_s3_finds_and_quarantines_a_garbage_object(s3: S3, tmp_path: Path) -> None:
    archive = open_archive(
        f"s3://{s3.bucket}/lake", config_dir=str(tmp_path), storage_options=s3.options
    )
    months(archive, "2024-02", "2024-04")
    prefix = f"lake/consumption/supplier=octopus/meter={METER}"
    s3.client.put_object(Bucket=s3.bucket, Key=f"{prefix}/month=2024-03/data.parquet", Body=b"PAR1")

    check = archive.verify_intervals(METER, 30)

    assert check.months == (
        healthy("2024-02"),
        MonthCheck(
            "2024-03",
            0,
            1488,
            (f"{s3.bucket}/{prefix}/month=2024-03/data.parquet",),
            (whole("2024-03"),),
        ),
        healthy("2024-04"),
    )
    assert check.damaged_months == ("2024-03",)
    # Moved aside. pyarrow leaves a zero-byte "month=2024-03/" folder marker behind when it
    # deletes an object: no reader takes that for data.
    kept = f"{prefix}/month=2024-03/_data.parquet.corrupt"
    left = s3.objects(f"{prefix}/month=2024-03/")
    assert [key for key in left if not key.endswith("/")] == [kept]
    assert s3.client.get_object(Bucket=s3.bucket, Key=kept)["Body"].read() == b"PAR1"
    assert len(archive.read_intervals(METER)) == HALF_HOURS["2024-02"] + HALF_HOURS["2024-04"]
    # The healthy objects were read, not rewritten or moved.
    feb = s3.client.get_object(Bucket=s3.bucket, Key=f"{prefix}/month=2024-02/data.parquet")
    assert pq.ParquetFile(io.BytesIO(feb["Body"].read())).metadata.num_rows == 1392
