"""Archive edge cases: remote roots, bad input, odd files in the tree, failures while listing."""

from __future__ import annotations

from datetime import UTC, datetime
import gzip
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from custom_components.meterlake import archive as archive_mod
from custom_components.meterlake.archive import Archive, ArchiveError, open_archive
from custom_components.meterlake.sources.base import AuditRecord

from .test_archive import INGEST_2, T0, intervals, part

METER = "octopus_electricity_1000000000000"


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive("meterlake", config_dir=str(tmp_path))


class _AnswersInfo:
    """A filesystem that answers the opening's proof (`get_file_info`) and nothing else."""

    def get_file_info(self, path: str) -> pafs.FileInfo:
        return pafs.FileInfo(path, pafs.FileType.NotFound)


class _Recorder:
    """Stands in for a pyarrow filesystem class: records the keyword arguments it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> _AnswersInfo:
        self.calls.append(kwargs)
        return _AnswersInfo()


# -- remote roots -----------------------------------------------------------------------------


def test_s3_uri_without_options_is_opened_from_the_uri(tmp_path: Path) -> None:
    # No storage options: pyarrow reads the query itself (the endpoint it then cannot reach
    # refuses the opening's proof); the display drops the query.
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            "s3://bucket/lake?region=eu-west-2&endpoint_override=127.0.0.1:9&scheme=http",
            config_dir=str(tmp_path),
        )
    assert caught.value.root == "s3://bucket/lake"
    assert "127.0.0.1:9" in caught.value.reason
    assert "NETWORK_CONNECTION" in caught.value.reason


def test_gcs_options_are_typed_and_the_bucket_is_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(pafs, "GcsFileSystem", recorder)
    archive = open_archive(
        "gs://my-bucket/meter/lake/?retry_limit_seconds=2.5",
        config_dir=str(tmp_path),
        storage_options={"anonymous": "Yes", "default_bucket_location": "EU"},
    )
    # Booleans and floats given as text (the options form) reach pyarrow typed.
    assert recorder.calls == [
        {"retry_limit_seconds": 2.5, "anonymous": True, "default_bucket_location": "EU"}
    ]
    assert archive.root == "gs://my-bucket/meter/lake"
    assert archive._base == "my-bucket/meter/lake"
    off = _Recorder()
    monkeypatch.setattr(pafs, "GcsFileSystem", off)
    open_archive("gcs://b/x", config_dir=str(tmp_path), storage_options={"anonymous": "off"})
    assert off.calls == [{"anonymous": False}]


def test_azure_container_and_account_come_from_the_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(pafs, "AzureFileSystem", recorder)
    archive = open_archive(
        "abfss://energy@myaccount.dfs.core.windows.net/lake",
        config_dir=str(tmp_path),
        storage_options={"account_key": "c2VjcmV0a2V5"},
    )
    assert recorder.calls == [{"account_key": "c2VjcmV0a2V5", "account_name": "myaccount"}]
    assert archive._base == "energy/lake"
    # The container is shown (it is no secret); the account key never is.
    assert archive.root == "abfss://energy@myaccount.dfs.core.windows.net/lake"
    # An explicit account name wins; without a container the host is the container.
    explicit = _Recorder()
    monkeypatch.setattr(pafs, "AzureFileSystem", explicit)
    bare = open_archive(
        "az://container/lake",
        config_dir=str(tmp_path),
        storage_options={"account_name": "acct", "sas_token": "sv=2021-08-06&sig=c2ln"},
    )
    # pyarrow wants the SAS token as a query, with its question mark.
    assert explicit.calls == [{"account_name": "acct", "sas_token": "?sv=2021-08-06&sig=c2ln"}]
    assert bare._base == "container/lake"
    assert bare.root == "az://container/lake"


def test_filesystem_construction_errors_are_archive_errors_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET"
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            "s3://bucket/lake",
            config_dir=str(tmp_path),
            storage_options={"secret_key": secret, "connect_timeout": "soon"},
        )
    assert caught.value.root == "s3://bucket/lake"
    assert caught.value.reason == "ValueError: could not convert string to float: 'soon'"

    def refuse(**kwargs: Any) -> None:
        raise RuntimeError(f"invalid credentials {kwargs['secret_key']} " + "x" * 500)

    monkeypatch.setattr(pafs, "S3FileSystem", refuse)
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            "s3://bucket/lake", config_dir=str(tmp_path), storage_options={"secret_key": secret}
        )
    reason = caught.value.reason
    assert secret not in str(caught.value)
    assert reason.startswith("RuntimeError: invalid credentials *** xxx")
    # Long messages are cut to 400 characters after the type name.
    assert reason.endswith("...")
    assert len(reason) == len("RuntimeError: ") + 400


def test_gcs_query_options_without_storage_options_are_refused_by_pyarrow(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as caught:
        open_archive("gs://bucket/lake?anonymous=true", config_dir=str(tmp_path))
    assert caught.value.root == "gs://bucket/lake"
    assert caught.value.reason.startswith("ArrowInvalid: ")
    assert "anonymous" in caught.value.reason


# -- input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("meter", ["", ".", ".."])
def test_empty_or_dot_meter_keys_are_refused(archive: Archive, meter: str) -> None:
    with pytest.raises(ValueError, match="meter must not be empty"):
        archive.write_intervals(intervals(meter, periods=2))
    with pytest.raises(ValueError, match="meter must not be empty"):
        archive.read_intervals(meter)


def test_null_meter_is_refused(tmp_path: Path, archive: Archive) -> None:
    frame = intervals(periods=2)
    frame["meter"] = [METER, None]
    with pytest.raises(ValueError, match="consumption: null meter"):
        archive.write_intervals(frame)
    with pytest.raises(ValueError, match="meter must not be null"):
        archive.read_intervals(None)  # type: ignore[arg-type]
    assert not (tmp_path / "meterlake" / "consumption").exists()  # nothing half-written


def test_null_key_is_refused(tmp_path: Path, archive: Archive) -> None:
    rates = pd.DataFrame(
        {
            "supplier": ["octopus", "octopus"],
            "tariff": ["E-1R-AGILE-24-10-01-C"] * 2,
            "register": ["standard", None],
            "valid_from": pd.to_datetime([T0, T0], utc=True),
            "valid_to": pd.to_datetime([None, None], utc=True),
            "rate": [0.25, 0.3],
            "rate_exc_vat": [0.238, 0.286],
            "currency": ["GBP", "GBP"],
            "payment_method": [None, None],
        }
    )
    with pytest.raises(ValueError, match="rates: null register"):
        archive.write_rates(rates)
    assert not (tmp_path / "meterlake" / "rates").exists()


def test_missing_columns_are_named_once(archive: Archive) -> None:
    frame = intervals(periods=2).drop(columns=["start", "meter"])
    with pytest.raises(ValueError) as caught:
        archive.write_intervals(frame)
    assert str(caught.value) == "consumption: missing columns ['meter', 'start']"


def test_raw_needs_an_aware_time(archive: Archive) -> None:
    with pytest.raises(ValueError, match="when must be timezone-aware"):
        archive.write_raw("octopus", "account", {"a": 1}, datetime(2024, 1, 1))


def test_numbers_in_a_text_column_are_stored_as_text(archive: Archive) -> None:
    # Dtypes match the fast path, but Arrow refuses an int in a string column: the slow path
    # conforms the frame instead of failing.
    frame = intervals(periods=2)
    frame["serial"] = pd.Series([12345, "21L1234567"], dtype=object)
    summary = archive.write_intervals(frame)
    assert summary.rows_written == 2
    assert archive.read_intervals(METER)["serial"].tolist() == ["12345", "21L1234567"]


# -- audit ------------------------------------------------------------------------------------


def test_audit_error_text_is_masked_with_the_storage_secrets(tmp_path: Path) -> None:
    archive = open_archive(
        "meterlake", config_dir=str(tmp_path), storage_options={"secret_key": "s3cr3t-value"}
    )
    archive.write_audit(
        [AuditRecord(T0, "octopus", "account", 403, 0, 0.1, "denied for s3cr3t-value (x)")]
    )
    table = pq.read_table(
        tmp_path / "meterlake" / "audit" / "supplier=octopus" / "month=2024-01" / "data.parquet"
    )
    assert table.column("error").to_pylist() == ["denied for *** (x)"]


# -- odd files in the tree --------------------------------------------------------------------


def test_purge_leaves_files_outside_the_day_layout(tmp_path: Path, archive: Archive) -> None:
    raw = tmp_path / "meterlake" / "raw"
    old = archive.write_raw("octopus", "account", {"a": 1}, datetime(2024, 1, 1, tzinfo=UTC))
    strays = [
        raw / "README.txt",  # too shallow
        raw / "octopus" / "2024" / "13" / "45" / "x.json.gz",  # not a date
        raw / "octopus" / "2024" / "01" / "01" / "deeper" / "y.json.gz",  # too deep
    ]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(gzip.compress(json.dumps({"keep": True}).encode()))
    removed = archive.purge_raw(1, datetime(2024, 3, 1, tzinfo=UTC))
    assert removed == 1
    assert not Path(old).exists()
    assert all(stray.exists() for stray in strays)


def test_read_skips_foreign_directories_and_empty_months(tmp_path: Path, archive: Archive) -> None:
    archive.write_intervals(intervals(periods=4))
    consumption = tmp_path / "meterlake" / "consumption"
    # A stray directory beside the suppliers, a month folder of another name, an empty month.
    (consumption / "_spark_metadata" / f"meter={METER}" / "month=2024-01").mkdir(parents=True)
    (consumption / "supplier=octopus" / f"meter={METER}" / "month=2024-1").mkdir()
    (consumption / "supplier=octopus" / f"meter={METER}" / "month=2024-02").mkdir()
    pq.write_table(
        pa.table({"x": [1]}),
        consumption / "_spark_metadata" / f"meter={METER}" / "month=2024-01" / "data.parquet",
    )
    back = archive.read_intervals(METER)
    assert len(back) == 4
    assert back["value"].tolist() == intervals(periods=4)["value"].tolist()
    assert archive.read_intervals(METER, start=datetime(2024, 2, 1, tzinfo=UTC)).empty


def test_file_written_by_another_tool_is_read_and_merged(tmp_path: Path, archive: Archive) -> None:
    # Another writer's file: nanosecond timestamps, integer values, only some columns.
    path = part(tmp_path, METER, "2024-01")
    path.parent.mkdir(parents=True)
    foreign = pd.DataFrame(
        {
            "start": pd.to_datetime(["2024-01-01T00:00Z", "2024-01-01T00:30Z"]),
            "end": pd.to_datetime(["2024-01-01T00:30Z", "2024-01-01T01:00Z"]),
            "value": [1, 2],
            "unit": ["kWh", "kWh"],
            "ingested_at": pd.to_datetime(["2024-02-01T00:00Z"] * 2),
        }
    )
    foreign.to_parquet(path, index=False)
    back = archive.read_intervals(METER)
    assert back["value"].tolist() == [1.0, 2.0]
    assert back["value"].dtype == "float64"
    assert back["unit"].tolist() == ["kWh", "kWh"]
    assert back["serial"].isna().all() and back["cost"].isna().all()
    assert back["supplier"].tolist() == ["octopus", "octopus"]

    # A newer reading for 00:30 replaces the foreign row; the file is then ours.
    update = intervals(
        start=datetime(2024, 1, 1, 0, 30, tzinfo=UTC), periods=1, ingested_at=INGEST_2
    )
    summary = archive.write_intervals(update)
    assert (summary.rows_written, summary.rows_total) == (1, 2)
    merged = archive.read_intervals(METER)
    assert merged["value"].tolist() == [1.0, update["value"].iloc[0]]
    assert pq.read_schema(path).metadata[b"meterlake.dataset"] == b"consumption"


# -- failures ---------------------------------------------------------------------------------


def test_quarantine_that_cannot_rename_is_an_archive_error(
    tmp_path: Path, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive.write_intervals(intervals(periods=2))
    path = part(tmp_path, METER, "2024-01")
    path.write_bytes(b"not parquet")
    real_replace = os.replace

    def refuse_quarantine(src: Any, dst: Any) -> None:
        if str(dst).endswith(".corrupt"):
            raise PermissionError(13, "Permission denied", str(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_quarantine)
    with pytest.raises(ArchiveError) as caught:
        archive.write_intervals(intervals(periods=2, ingested_at=INGEST_2))
    assert caught.value.reason == f"PermissionError: Permission denied: {path}"
    # The unreadable file was neither moved nor overwritten.
    assert path.read_bytes() == b"not parquet"
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.parquet"]


def test_listing_failure_is_an_archive_error(
    tmp_path: Path, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive.write_intervals(intervals(periods=2))
    consumption = str(tmp_path / "meterlake" / "consumption")

    def unreadable(folder: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(folder))

    monkeypatch.setattr(archive_mod.os, "scandir", unreadable)
    with pytest.raises(ArchiveError) as caught:
        archive.list_meters()
    assert caught.value.root == str(tmp_path / "meterlake")
    assert caught.value.reason == f"PermissionError: Permission denied: {consumption}"
