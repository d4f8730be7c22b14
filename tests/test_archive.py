"""Archive on local disk: layout, schema, merge, atomicity, corruption, locking, raw and audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import errno
import gzip
import json
import os
from pathlib import Path
import tempfile
import threading
from typing import Any

import duckdb
from hypothesis import HealthCheck, example, given, settings, strategies as st
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pa_dataset
import pyarrow.parquet as pq
import pytest

from custom_components.meterlake import archive as archive_mod
from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS
from custom_components.meterlake.archive import (
    Archive,
    ArchiveError,
    CorruptPartitionError,
    open_archive,
)
from custom_components.meterlake.sources.base import AuditRecord

T0 = datetime(2024, 1, 1, tzinfo=UTC)
INGEST_1 = pd.Timestamp("2024-03-01T00:00:00Z")
INGEST_2 = pd.Timestamp("2024-03-02T00:00:00Z")


def intervals(
    meter: str = "octopus_electricity_1000000000000",
    *,
    start: datetime = T0,
    periods: int = 96,
    supplier: str = "octopus",
    seed: int = 1,
    ingested_at: pd.Timestamp = INGEST_1,
    quality: str = "measured",
) -> pd.DataFrame:
    """Half-hourly rows with 3-decimal kWh, a rate in GBP and the cost."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range(start, periods=periods, freq="30min")
    value = np.round(rng.gamma(1.2, 0.25, periods), 3)
    rate = np.round(rng.normal(24, 6, periods), 2) / 100
    return pd.DataFrame(
        {
            "meter": meter,
            "serial": "21L1234567",
            "supplier": supplier,
            "kind": "electricity",
            "start": starts,
            "end": starts + pd.Timedelta(minutes=30),
            "value": value,
            "unit": "kWh",
            "energy_kwh": value,
            "rate": rate,
            "cost": value * rate,
            "currency": "GBP",
            "quality": quality,
            "ingested_at": ingested_at,
        },
        columns=list(INTERVAL_COLUMNS),
    )


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive("meterlake", config_dir=str(tmp_path))


def part(tmp_path: Path, meter: str, month: str, supplier: str = "octopus") -> Path:
    return (
        tmp_path
        / "meterlake"
        / "consumption"
        / f"supplier={supplier}"
        / f"meter={meter}"
        / f"month={month}"
        / "data.parquet"
    )


def sql(query: str) -> list[tuple[Any, ...]]:
    return duckdb.connect().execute(query).fetchall()


def glob(tmp_path: Path) -> str:
    return str(tmp_path / "meterlake" / "consumption" / "**" / "*.parquet")


# -- roots ------------------------------------------------------------------------------------


def test_roots_relative_absolute_and_display(tmp_path: Path) -> None:
    rel = open_archive("", config_dir=str(tmp_path))
    assert rel.root == str(tmp_path / "meterlake")
    assert (tmp_path / "meterlake").is_dir()
    absolute = open_archive(str(tmp_path / "elsewhere"), config_dir="/nonexistent")
    assert absolute.root == str(tmp_path / "elsewhere")
    # Nothing listens on the endpoint: the opening's proof fails, naming the root only.
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            "s3://AKIAEXAMPLE:topsecret@bucket/prefix?region=eu-west-2",
            config_dir=str(tmp_path),
            storage_options={"region": "eu-west-2", "endpoint_override": "127.0.0.1:9"},
        )
    assert caught.value.root == "s3://bucket/prefix"
    assert "topsecret" not in str(caught.value)
    assert "AKIA" not in str(caught.value)
    with pytest.raises(ArchiveError, match="unsupported URI scheme"):
        open_archive("ftp://user:pw@host/x", config_dir=str(tmp_path))


# -- layout, schema, readers ------------------------------------------------------------------


def test_write_layout_and_readers_agree(tmp_path: Path, archive: Archive) -> None:
    elec = intervals(start=datetime(2024, 1, 30, tzinfo=UTC), periods=192)  # Jan 30 - Feb 2
    gas = intervals("octopus_gas_1234567890", periods=48, seed=2)
    gas["kind"], gas["unit"] = "gas", "m³"
    tib = intervals("tibber_home_1", supplier="tibber", periods=24, seed=3)
    frame = pd.concat([elec, gas, tib], ignore_index=True)

    summary = archive.write_intervals(frame)

    assert summary.dataset == "consumption"
    assert summary.partitions_written == 4
    assert summary.rows_written == 264
    assert summary.rows_total == 264
    assert summary.corrupt == ()
    files = sorted(
        str(p.relative_to(tmp_path / "meterlake"))
        for p in (tmp_path / "meterlake").rglob("*")
        if p.is_file()
    )
    assert files == [
        "consumption/supplier=octopus/meter=octopus_electricity_1000000000000/month=2024-01/data.parquet",
        "consumption/supplier=octopus/meter=octopus_electricity_1000000000000/month=2024-02/data.parquet",
        "consumption/supplier=octopus/meter=octopus_gas_1234567890/month=2024-01/data.parquet",
        "consumption/supplier=tibber/meter=tibber_home_1/month=2024-01/data.parquet",
    ]
    assert archive.list_meters() == [
        "octopus_electricity_1000000000000",
        "octopus_gas_1234567890",
        "tibber_home_1",
    ]

    expected = frame.groupby("meter").agg(
        rows=("value", "size"), value=("value", "sum"), cost=("cost", "sum")
    )
    con = duckdb.connect()
    got = con.execute(
        f"""SELECT meter, supplier, count(*) AS rows, sum(value) AS value, sum(cost) AS cost,
                   count(DISTINCT start) AS starts
            FROM read_parquet('{glob(tmp_path)}', hive_partitioning=1)
            GROUP BY ALL ORDER BY meter"""
    ).fetchall()
    assert [(r[0], r[1], r[2], r[5]) for r in got] == [
        ("octopus_electricity_1000000000000", "octopus", 192, 192),
        ("octopus_gas_1234567890", "octopus", 48, 48),
        ("tibber_home_1", "tibber", 24, 24),
    ]
    for meter, _supplier, rows, value, cost, _starts in got:
        assert rows == expected.loc[meter, "rows"]
        assert value == pytest.approx(expected.loc[meter, "value"], abs=1e-9)
        assert cost == pytest.approx(expected.loc[meter, "cost"], abs=1e-9)
    # No duplicate columns: the partition columns live in the path only.
    names = [
        r[0]
        for r in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{glob(tmp_path)}', hive_partitioning=1)"
        ).fetchall()
    ]
    assert sorted(names) == sorted([*INTERVAL_COLUMNS, "month"])

    lazy = pl.scan_parquet(glob(tmp_path), hive_partitioning=True)
    assert set(lazy.collect_schema().names()) == {*INTERVAL_COLUMNS, "month"}
    by_meter = (
        lazy.group_by("meter", "supplier")
        .agg(pl.len().alias("rows"), pl.col("value").sum(), pl.col("cost").sum())
        .sort("meter")
        .collect()
    )
    assert by_meter["rows"].to_list() == [192, 48, 24]
    assert by_meter["supplier"].to_list() == ["octopus", "octopus", "tibber"]
    for row in by_meter.iter_rows(named=True):
        assert row["value"] == pytest.approx(expected.loc[row["meter"], "value"], abs=1e-9)
        assert row["cost"] == pytest.approx(expected.loc[row["meter"], "cost"], abs=1e-9)

    back = archive.read_intervals("octopus_electricity_1000000000000")
    assert list(back.columns) == list(INTERVAL_COLUMNS)
    pd.testing.assert_frame_equal(
        back, elec.reset_index(drop=True), check_dtype=False, check_exact=True
    )
    assert str(back["start"].dtype) == "datetime64[ns, UTC]"
    window = archive.read_intervals(
        "octopus_electricity_1000000000000",
        datetime(2024, 1, 31, 23, tzinfo=UTC),
        datetime(2024, 2, 1, 1, tzinfo=UTC),
    )
    assert window["start"].tolist() == [
        pd.Timestamp("2024-01-31T23:00Z"),
        pd.Timestamp("2024-01-31T23:30Z"),
        pd.Timestamp("2024-02-01T00:00Z"),
        pd.Timestamp("2024-02-01T00:30Z"),
    ]


def test_month_is_taken_from_utc_start(tmp_path: Path, archive: Archive) -> None:
    frame = intervals(periods=2)
    # 00:30 on 1 February in Paris is 23:30 on 31 January UTC.
    frame["start"] = pd.to_datetime(["2024-02-01T00:00+01:00", "2024-02-01T01:00+01:00"])
    frame["end"] = frame["start"] + pd.Timedelta(minutes=30)
    archive.write_intervals(frame)
    jan = pq.read_table(part(tmp_path, "octopus_electricity_1000000000000", "2024-01"))
    feb = pq.read_table(part(tmp_path, "octopus_electricity_1000000000000", "2024-02"))
    assert jan.column("start").to_pylist() == [datetime(2024, 1, 31, 23, tzinfo=UTC)]
    assert feb.column("start").to_pylist() == [datetime(2024, 2, 1, 0, tzinfo=UTC)]


def test_naive_timestamps_are_refused(archive: Archive) -> None:
    frame = intervals(periods=2)
    frame["start"] = frame["start"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="timezone-aware"):
        archive.write_intervals(frame)


def test_file_schema_metadata_and_encoding(tmp_path: Path, archive: Archive) -> None:
    archive.write_intervals(intervals(periods=1488))  # a full 31-day month
    path = part(tmp_path, "octopus_electricity_1000000000000", "2024-01")
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    assert schema.names == [c for c in INTERVAL_COLUMNS if c not in {"meter", "supplier"}]
    for name in ("start", "end", "ingested_at"):
        assert schema.field(name).type == pa.timestamp("us", tz="UTC")
    for name in ("value", "energy_kwh", "rate", "cost"):
        assert schema.field(name).type == pa.float64()
    assert schema.field("serial").type == pa.string()
    meta = parquet.metadata.metadata
    assert meta[b"meterlake.schema_version"] == b"1"
    assert meta[b"meterlake.dataset"] == b"consumption"
    assert b"pandas" not in meta
    group = parquet.metadata.row_group(0)
    assert {group.column(i).compression for i in range(group.num_columns)} == {"ZSTD"}
    encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(12)}
    assert "DELTA_BINARY_PACKED" in encodings["start"]
    assert "RLE_DICTIONARY" in encodings["unit"]
    assert "BYTE_STREAM_SPLIT" in encodings["cost"]
    assert parquet.metadata.num_rows == 1488
    # Half-hourly data stays small: the target is 40 bytes a row.
    assert path.stat().st_size / 1488 < 40


# -- merge ------------------------------------------------------------------------------------


def test_merge_newer_wins_older_loses_tie_goes_to_incoming(
    tmp_path: Path, archive: Archive
) -> None:
    meter = "octopus_electricity_1000000000000"
    archive.write_intervals(intervals(periods=4))

    correction = intervals(periods=1, ingested_at=INGEST_2, quality="corrected")
    correction["value"] = 9.875
    summary = archive.write_intervals(correction)
    assert (summary.partitions_written, summary.rows_written, summary.rows_total) == (1, 1, 4)

    stale = intervals(periods=2, ingested_at=pd.Timestamp("2024-02-01T00:00Z"))
    stale["value"] = 0.001
    summary = archive.write_intervals(stale)
    assert (summary.partitions_written, summary.rows_written, summary.rows_total) == (0, 0, 4)
    assert summary.partitions_unchanged == 1

    tie = intervals(start=T0 + timedelta(minutes=30), periods=1)
    tie["value"] = 5.5
    summary = archive.write_intervals(tie)
    assert (summary.partitions_written, summary.rows_written, summary.rows_total) == (1, 1, 4)

    back = archive.read_intervals(meter)
    original = intervals(periods=4)
    assert back["value"].tolist() == [9.875, 5.5, *original["value"].iloc[2:].tolist()]
    assert back["quality"].tolist() == ["corrected", "measured", "measured", "measured"]
    assert back["ingested_at"].tolist() == [INGEST_2, INGEST_1, INGEST_1, INGEST_1]
    assert back["start"].is_monotonic_increasing


def test_duplicates_in_input_keep_latest_and_missing_ingested_at_is_now(
    archive: Archive,
) -> None:
    frame = pd.concat([intervals(periods=2), intervals(periods=2)], ignore_index=True)
    frame.loc[2, "value"] = 1.25  # second copy of the first slot, same ingested_at: later wins
    frame["ingested_at"] = pd.NaT
    before = datetime.now(UTC)
    summary = archive.write_intervals(frame)
    assert (summary.rows_written, summary.rows_total) == (2, 2)
    back = archive.read_intervals("octopus_electricity_1000000000000")
    assert back["value"].iloc[0] == 1.25
    assert (back["ingested_at"] >= pd.Timestamp(before).floor("us")).all()


def test_only_touched_partitions_are_rewritten(tmp_path: Path, archive: Archive) -> None:
    meter = "octopus_electricity_1000000000000"
    archive.write_intervals(intervals(periods=48 * 91))  # January to March
    months = ("2024-01", "2024-02", "2024-03")
    before = {m: part(tmp_path, meter, m).stat() for m in months}

    # The same write repeated (a retry): nothing changes on disk.
    summary = archive.write_intervals(intervals(periods=48 * 91))
    assert (summary.partitions_written, summary.partitions_unchanged) == (0, 3)
    assert {m: part(tmp_path, meter, m).stat().st_mtime_ns for m in months} == {
        m: s.st_mtime_ns for m, s in before.items()
    }

    update = intervals(start=datetime(2024, 2, 10, tzinfo=UTC), periods=2, ingested_at=INGEST_2)
    update["value"] = [3.0, 4.0]
    summary = archive.write_intervals(update)
    assert summary.partitions_written == 1
    after = {m: part(tmp_path, meter, m).stat() for m in months}
    assert after["2024-01"].st_mtime_ns == before["2024-01"].st_mtime_ns
    assert after["2024-01"].st_ino == before["2024-01"].st_ino
    assert after["2024-03"].st_mtime_ns == before["2024-03"].st_mtime_ns
    assert after["2024-02"].st_ino != before["2024-02"].st_ino  # replaced by rename
    feb = archive.read_intervals(meter, datetime(2024, 2, 10, tzinfo=UTC))
    assert feb["value"].iloc[:2].tolist() == [3.0, 4.0]


# -- corruption, crash safety, errors ---------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_partition_is_kept_reported_and_rebuilt(
    tmp_path: Path, archive: Archive, damage: str
) -> None:
    meter = "octopus_electricity_1000000000000"
    archive.write_intervals(intervals(periods=48 * 40))  # January + 9 days of February
    path = part(tmp_path, meter, "2024-01")
    good = path.read_bytes()
    bad = {"truncate": good[: len(good) // 2], "garbage": b"not parquet at all", "empty": b""}
    path.write_bytes(bad[damage])

    with pytest.raises(CorruptPartitionError) as caught:
        archive.read_intervals(meter)
    assert caught.value.path == str(path)
    skipped = archive.read_intervals(meter, skip_corrupt=True)
    assert len(skipped) == 48 * 9

    refetch = intervals(start=datetime(2024, 1, 20, tzinfo=UTC), periods=48, ingested_at=INGEST_2)
    summary = archive.write_intervals(refetch)

    quarantined = path.with_name("_data.parquet.corrupt")
    assert summary.corrupt == (str(quarantined),)
    assert summary.corrupt_windows == (
        (meter, datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)),
    )
    assert (summary.partitions_written, summary.rows_written, summary.rows_total) == (1, 48, 48)
    assert quarantined.read_bytes() == bad[damage]
    assert pq.read_table(path).num_rows == 48
    # Readers that take whole directories skip it (leading underscore), globs on *.parquet too.
    whole = pa_dataset.dataset(tmp_path / "meterlake" / "consumption", partitioning="hive")
    assert whole.to_table().num_rows == 48 + 48 * 9
    assert len(archive.read_intervals(meter)) == 48 + 48 * 9

    # A second corruption does not overwrite the first quarantined file.
    path.write_bytes(b"again")
    summary = archive.write_intervals(refetch)
    assert len(summary.corrupt) == 1
    assert summary.corrupt[0].endswith(".corrupt")
    assert summary.corrupt[0] != str(quarantined)
    assert Path(summary.corrupt[0]).name.startswith("_data.parquet.")
    assert Path(summary.corrupt[0]).read_bytes() == b"again"
    assert quarantined.read_bytes() == bad[damage]


class _Killed(BaseException):
    """Stands for the process dying: nothing after it runs, no cleanup."""


def test_crash_before_rename_leaves_previous_file(
    tmp_path: Path, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    meter = "octopus_electricity_1000000000000"
    archive.write_intervals(intervals(periods=48))
    path = part(tmp_path, meter, "2024-01")
    previous = path.read_bytes()

    calls: list[tuple[str, str]] = []

    def die(src: Any, dst: Any) -> None:
        calls.append((str(src), str(dst)))
        assert Path(src).stat().st_size > 0  # the temporary file was fully written
        raise _Killed

    monkeypatch.setattr(os, "replace", die)
    update = intervals(periods=48, ingested_at=INGEST_2)
    update["value"] = 7.0
    with pytest.raises(_Killed):
        archive.write_intervals(update)
    monkeypatch.undo()

    assert calls and calls[0][1] == str(path)
    leftover = Path(calls[0][0])
    assert leftover.exists()  # a killed process leaves its temp file...
    assert leftover.name.startswith(".")
    assert not leftover.name.endswith(".parquet")
    assert path.read_bytes() == previous  # ...and the old file intact
    assert sorted(p.name for p in path.parent.glob("*.parquet")) == ["data.parquet"]
    rows = sql(
        f"SELECT count(*), max(value) FROM read_parquet('{glob(tmp_path)}', hive_partitioning=1)"
    )[0]
    assert rows == (48, intervals(periods=48)["value"].max())
    assert (
        pl.scan_parquet(glob(tmp_path), hive_partitioning=True).select(pl.len()).collect().item()
        == 48
    )
    assert (
        archive.read_intervals(meter)["value"].tolist() == intervals(periods=48)["value"].tolist()
    )

    # The next poll succeeds and clears the dead write's temporary file.
    summary = archive.write_intervals(update)
    assert summary.partitions_written == 1
    assert (archive.read_intervals(meter)["value"] == 7.0).all()
    assert not leftover.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.parquet"]


def test_failed_rename_raises_archive_error_and_cleans_up(
    tmp_path: Path, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive.write_intervals(intervals(periods=4))
    path = part(tmp_path, "octopus_electricity_1000000000000", "2024-01")
    previous = path.read_bytes()

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ArchiveError) as caught:
        archive.write_intervals(intervals(periods=4, ingested_at=INGEST_2, seed=9))
    monkeypatch.undo()
    assert caught.value.root == str(tmp_path / "meterlake")
    assert "No space left on device" in caught.value.reason
    assert str(caught.value).startswith(str(tmp_path / "meterlake") + ": OSError")
    assert path.read_bytes() == previous
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.parquet"]


def test_unwritable_location_raises_archive_error(tmp_path: Path) -> None:
    # A file where the dataset directory should be: fails even for root, unlike chmod.
    archive = open_archive(str(tmp_path / "arch"), config_dir=str(tmp_path))
    (tmp_path / "arch" / "consumption").write_text("in the way")
    with pytest.raises(ArchiveError) as caught:
        archive.write_intervals(intervals(periods=2))
    assert caught.value.root == str(tmp_path / "arch")
    assert "Error" in caught.value.reason
    (tmp_path / "blocked").write_text("file")
    with pytest.raises(ArchiveError):
        open_archive(str(tmp_path / "blocked" / "sub"), config_dir=str(tmp_path))


def test_error_text_never_contains_storage_secrets() -> None:
    err = OSError("AWS Error for key AKIAEXAMPLE secret wJalrXUtnFEMI at s3://AKIA:pw@b/x")
    text = archive_mod._describe(err, ("AKIAEXAMPLE", "wJalrXUtnFEMI"))
    assert "AKIAEXAMPLE" not in text
    assert "wJalrXUtnFEMI" not in text
    assert ":pw@" not in text
    assert text.startswith("OSError: AWS Error for key *** secret ***")


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_writes_to_one_partition_serialize(tmp_path: Path) -> None:
    meter = "octopus_electricity_1000000000000"
    # Two Archive objects on the same root (two config entries) share the partition locks.
    archives = [open_archive(str(tmp_path / "meterlake"), config_dir="/") for _ in range(2)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for k in range(3):
                rows = intervals(start=T0 + timedelta(hours=n * 3 + k), periods=2, seed=n)
                archives[n % 2].write_intervals(rows)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    back = archives[0].read_intervals(meter)
    assert len(back) == 8 * 3 * 2
    assert back["start"].is_unique
    assert back["start"].is_monotonic_increasing
    assert sorted(p.name for p in part(tmp_path, meter, "2024-01").parent.iterdir()) == [
        "data.parquet"
    ]


# -- other datasets ---------------------------------------------------------------------------


def test_rates_and_standing_charges(tmp_path: Path, archive: Archive) -> None:
    valid_from = pd.date_range("2024-01-31T22:00Z", periods=6, freq="30min")
    rates = pd.DataFrame(
        {
            "supplier": "octopus",
            "tariff": "E-1R-AGILE-24-10-01-C",
            "register": "standard",
            "valid_from": valid_from,
            "valid_to": valid_from + pd.Timedelta(minutes=30),
            "rate": [0.21, 0.22, 0.23, 0.24, 0.25, 0.26],
            "rate_exc_vat": [0.2, 0.21, 0.22, 0.23, 0.24, 0.25],
            "currency": "GBP",
            "payment_method": None,
        }
    )
    summary = archive.write_rates(rates)
    assert (summary.partitions_written, summary.rows_written) == (2, 6)
    base = tmp_path / "meterlake" / "rates" / "supplier=octopus" / "tariff=E-1R-AGILE-24-10-01-C"
    assert pq.read_table(base / "month=2024-01" / "data.parquet").num_rows == 4
    # Same key with a null payment method: replaced, not duplicated.
    again = rates.iloc[:1].assign(rate=0.99)
    summary = archive.write_rates(again)
    assert (summary.partitions_written, summary.rows_total) == (1, 4)
    jan = pq.read_table(base / "month=2024-01" / "data.parquet").to_pandas()
    assert jan["rate"].tolist() == [0.99, 0.22, 0.23, 0.24]
    con = sql(
        f"SELECT tariff, count(*) FROM read_parquet('{tmp_path}/meterlake/rates/**/*.parquet',"
        " hive_partitioning=1) GROUP BY ALL"
    )
    assert con == [("E-1R-AGILE-24-10-01-C", 6)]

    charges = pd.DataFrame(
        {
            "supplier": "octopus",
            "tariff": ["E-1R-AGILE-24-10-01-C", "E-1R-AGILE-24-10-01-C", "G-1R-VAR-22-11-01-C"],
            "valid_from": pd.to_datetime(
                ["2023-04-01T00:00Z", "2024-04-01T00:00Z", "2024-04-01T00:00Z"]
            ),
            "valid_to": pd.to_datetime(pd.Series(["2024-04-01T00:00Z", None, None]), utc=True),
            "charge": [0.45, 0.48, 0.31],
            "charge_exc_vat": [0.43, 0.46, 0.29],
            "currency": "GBP",
            "payment_method": "DIRECT_DEBIT",
        }
    )
    summary = archive.write_standing_charges(charges)
    assert (summary.partitions_written, summary.rows_total) == (2, 3)
    sc = tmp_path / "meterlake" / "standing_charges" / "supplier=octopus"
    assert sorted(p.name for p in sc.iterdir()) == [
        "tariff=E-1R-AGILE-24-10-01-C",
        "tariff=G-1R-VAR-22-11-01-C",
    ]
    table = pq.read_table(sc / "tariff=E-1R-AGILE-24-10-01-C" / "data.parquet")
    assert table.column("charge").to_pylist() == [0.45, 0.48]
    assert table.column("valid_to").to_pylist() == [datetime(2024, 4, 1, tzinfo=UTC), None]


def test_grid_mix(tmp_path: Path, archive: Archive) -> None:
    start = pd.date_range("2026-01-31T23:30Z", periods=4, freq="15min")
    frame = pd.DataFrame(
        {
            "start": start,
            "consommation": [61000.0, 60500.0, None, None],
            "nucleaire": ["45000", "44900", "ND", "44800"],  # strings and ND, as ODRE sends
            "taux_co2": [32.0, 31.0, 30.0, 29.0],
            "stockage_batterie": [1.0, 2.0, 3.0, 4.0],  # a field we do not know yet
        }
    )
    summary = archive.write_grid_mix(frame, perimeter="national")
    assert (summary.partitions_written, summary.rows_total) == (2, 4)
    base = tmp_path / "meterlake" / "grid_mix" / "supplier=eco2mix" / "perimeter=national"
    feb = pq.read_table(base / "month=2026-02" / "data.parquet")
    assert feb.column("nucleaire").to_pylist() == [None, 44800.0]
    assert feb.column("stockage_batterie").to_pylist() == [3.0, 4.0]
    jan = pq.read_table(base / "month=2026-01" / "data.parquet")
    assert jan.column("nucleaire").to_pylist() == [45000.0, 44900.0]
    assert jan.column("thermique").null_count == 2  # a known field this frame lacks
    # A consolidated row later replaces the real-time one; extra columns survive the merge.
    later = pd.DataFrame({"start": start[2:3], "consommation": [59999.0]})
    archive.write_grid_mix(later, perimeter="national")
    feb = pq.read_table(base / "month=2026-02" / "data.parquet")
    assert feb.column("consommation").to_pylist() == [59999.0, None]
    assert feb.column("stockage_batterie").to_pylist() == [None, 4.0]
    total = sql(
        f"SELECT perimeter, sum(taux_co2) FROM read_parquet('{base}/**/*.parquet',"
        " hive_partitioning=1, union_by_name=true) GROUP BY ALL"
    )
    assert total == [("national", 32.0 + 31.0 + 29.0)]


def test_audit_appends(tmp_path: Path, archive: Archive) -> None:
    first = [
        AuditRecord(T0, "octopus", "consumption", 200, 96, 0.42),
        AuditRecord(
            T0 + timedelta(seconds=1), "octopus", "standard-unit-rates", 503, 0, 1.5, "HTTP 503"
        ),
    ]
    assert archive.write_audit(first).rows_total == 2
    second = [
        AuditRecord(
            T0 + timedelta(minutes=30), "octopus", "consumption", None, 0, 30.0, "TimeoutError"
        )
    ]
    summary = archive.write_audit([*second, first[0]])  # a repeated record is not duplicated
    assert (summary.rows_written, summary.rows_total) == (2, 3)
    table = pq.read_table(
        tmp_path / "meterlake" / "audit" / "supplier=octopus" / "month=2024-01" / "data.parquet"
    )
    assert table.column("endpoint").to_pylist() == [
        "consumption",
        "standard-unit-rates",
        "consumption",
    ]
    assert table.column("status").to_pylist() == [200, 503, None]
    assert table.column("error").to_pylist() == [None, "HTTP 503", "TimeoutError"]
    assert table.schema.field("status").type == pa.int32()
    assert archive.write_audit([]).partitions_written == 0


# -- raw --------------------------------------------------------------------------------------


def test_raw_strips_credentials_and_purges(tmp_path: Path, archive: Archive) -> None:
    payload = {
        "number": "A-1B2C3D4E",
        "api_key": "sk_live_xyz",
        "Authorization": "Basic abc",
        "properties": [
            {"id": 1, "account_number": "A-1B2C3D4E", "nested": {"access_token": "tok", "ok": 2}}
        ],
        "note": "account A-1B2C3D4E moved",
        "results": [{"consumption": 0.123, "interval_start": "2024-01-01T00:00:00Z"}],
    }
    when = datetime(2024, 1, 5, 10, 30, 15, 123456, tzinfo=UTC)
    path = archive.write_raw("octopus", "accounts/detail", payload, when, secrets=("A-1B2C3D4E",))
    expected = tmp_path / "meterlake" / "raw" / "octopus" / "2024" / "01" / "05"
    assert path == str(expected / "accounts_detail-20240105T103015123456Z.json.gz")
    stored = json.loads(gzip.decompress(Path(path).read_bytes()))
    assert stored == {
        "number": "***",
        "properties": [{"id": 1, "nested": {"ok": 2}}],
        "note": "account *** moved",
        "results": [{"consumption": 0.123, "interval_start": "2024-01-01T00:00:00Z"}],
    }
    second = archive.write_raw("octopus", "accounts/detail", {"a": 1}, when)
    assert second.endswith("-20240105T103015123456Z-2.json.gz")
    for day in (1, 2, 3, 4):
        archive.write_raw("tibber", "gql", {"day": day}, datetime(2024, 1, day, 12, tzinfo=UTC))

    removed = archive.purge_raw(2, datetime(2024, 1, 5, 8, tzinfo=UTC))
    assert removed == 2  # 1 and 2 January; the 3rd is the first day kept
    left = sorted(
        str(p.relative_to(tmp_path / "meterlake" / "raw"))
        for p in (tmp_path / "meterlake" / "raw").rglob("*.gz")
    )
    assert left == [
        "octopus/2024/01/05/accounts_detail-20240105T103015123456Z-2.json.gz",
        "octopus/2024/01/05/accounts_detail-20240105T103015123456Z.json.gz",
        "tibber/2024/01/03/gql-20240103T120000000000Z.json.gz",
        "tibber/2024/01/04/gql-20240104T120000000000Z.json.gz",
    ]
    assert not (tmp_path / "meterlake" / "raw" / "tibber" / "2024" / "01" / "01").exists()
    assert archive.purge_raw(0, datetime(2024, 2, 1, tzinfo=UTC)) == 4
    assert archive.purge_raw(30, datetime(2024, 2, 1, tzinfo=UTC)) == 0


def test_empty_archive_reads_empty_frame(archive: Archive) -> None:
    back = archive.read_intervals("nobody")
    assert list(back.columns) == list(INTERVAL_COLUMNS)
    assert len(back) == 0
    assert str(back["start"].dtype) == "datetime64[ns, UTC]"
    assert back["value"].dtype == np.float64
    assert archive.list_meters() == []
    summary = archive.write_intervals(intervals(periods=0))
    assert (summary.partitions_written, summary.rows_total) == (0, 0)


def test_odd_meter_keys_are_encoded_in_paths(tmp_path: Path, archive: Archive) -> None:
    archive.write_intervals(intervals("home/1=a b", periods=2))
    assert archive.list_meters() == ["home/1=a b"]
    assert len(archive.read_intervals("home/1=a b")) == 2
    dirs = [p.name for p in (tmp_path / "meterlake" / "consumption" / "supplier=octopus").iterdir()]
    assert dirs == ["meter=home%2F1%3Da%20b"]
    assert os.sep not in dirs[0]


def test_loose_frames_are_conformed(archive: Archive) -> None:
    """Frames not in the interval-table dtypes still land typed: ISO strings, ints, Float64."""
    frame = pd.DataFrame(
        {
            "meter": ["m"] * 3,
            "supplier": "demo",
            "serial": [123, None, "S-1"],
            "start": [
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:30:00+00:00",
                "2024-01-01T02:00+01:00",
            ],
            "value": pd.array([1.5, None, 2], dtype="Float64"),
            "rate": ["0.25", "ND", None],
            "ingested_at": pd.Timestamp("2024-01-02T00:00:00.0000019Z"),  # below a microsecond
        }
    )
    summary = archive.write_intervals(frame)
    assert (summary.rows_written, summary.rows_total) == (3, 3)
    back = archive.read_intervals("m")
    assert back["start"].tolist() == [
        pd.Timestamp("2024-01-01T00:00Z"),
        pd.Timestamp("2024-01-01T00:30Z"),
        pd.Timestamp("2024-01-01T01:00Z"),
    ]
    assert back["serial"].tolist() == ["123", None, "S-1"]
    assert back["value"].iloc[0] == 1.5
    assert np.isnan(back["value"].iloc[1])
    assert back["value"].iloc[2] == 2.0
    assert back["rate"].iloc[0] == 0.25
    assert back["rate"].iloc[1:].isna().all()
    assert back["ingested_at"].tolist() == [pd.Timestamp("2024-01-02T00:00:00.000001Z")] * 3
    assert back["unit"].isna().all()  # absent columns are stored as nulls


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 5),  # half-hour slot
                st.integers(0, 3),  # ingested_at, in days
                st.integers(0, 9999),  # value in Wh
            ),
            min_size=1,
            max_size=8,
        ),
        min_size=1,
        max_size=5,
    )
)
@example(batches=[[(1, 0, 1)], [(1, 1, 1)], [(1, 0, 0)]])  # identical newer row, then stale
def test_merge_matches_a_simple_model(batches: list[list[tuple[int, int, int]]]) -> None:
    """Whatever the order of writes: per slot the newest ingested_at wins, ties go to the last."""
    model: dict[int, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        archive = open_archive("a", config_dir=tmp)
        for batch in batches:
            frame = intervals("m", periods=1).iloc[[0] * len(batch)].reset_index(drop=True)
            frame["start"] = [T0 + timedelta(minutes=30 * slot) for slot, _, _ in batch]
            frame["end"] = frame["start"] + pd.Timedelta(minutes=30)
            frame["ingested_at"] = [INGEST_1 + pd.Timedelta(days=d) for _, d, _ in batch]
            frame["value"] = [wh / 1000 for _, _, wh in batch]
            for slot, day, wh in batch:
                if slot not in model or day >= model[slot][0]:
                    model[slot] = (day, wh)
            archive.write_intervals(frame)
        back = archive.read_intervals("m")
    assert back["start"].tolist() == [
        pd.Timestamp(T0 + timedelta(minutes=30 * slot)) for slot in sorted(model)
    ]
    assert back["value"].tolist() == [model[slot][1] / 1000 for slot in sorted(model)]
    assert back["ingested_at"].tolist() == [
        INGEST_1 + pd.Timedelta(days=model[slot][0]) for slot in sorted(model)
    ]


def test_import_stays_light() -> None:
    """The HA layer imports archive.py at start-up: pandas and pyarrow must wait until used."""
    import subprocess
    import sys

    code = (
        "import sys; import custom_components.meterlake.archive; "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"
