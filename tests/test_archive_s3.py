"""Archive on object storage for real: moto's S3 server on 127.0.0.1, pyarrow's S3 client."""

from __future__ import annotations

from collections.abc import Generator
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
import gzip
import io
import json
from typing import Any
import urllib.request
import uuid

import pyarrow.parquet as pq
import pytest

from custom_components.meterlake.archive import (
    Archive,
    ArchiveError,
    CorruptPartitionError,
    open_archive,
)

from .test_archive import INGEST_2, intervals

ACCESS_KEY = "AKIAMOTOTESTKEY00001"
SECRET_KEY = "moto/Secret+Key/NeverInErrors0000000000"


@dataclass
class S3:
    client: Any
    options: dict[str, str]
    bucket: str

    def objects(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def etag(self, key: str) -> str:
        return str(self.client.head_object(Bucket=self.bucket, Key=key)["ETag"])


@pytest.fixture
def s3(socket_enabled: None, monkeypatch: pytest.MonkeyPatch) -> Generator[S3]:
    """A moto S3 server on a free loopback port, torn down after the test."""
    import boto3  # type: ignore[import-untyped]
    from moto.server import ThreadedMotoServer

    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONFIG_FILE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )
        bucket = f"meterlake-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        yield S3(
            client,
            {
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "endpoint_override": f"{host}:{port}",
                "scheme": "http",
                "region": "us-east-1",
                "connect_timeout": "2",
                "request_timeout": "5",
            },
            bucket,
        )
    finally:
        # moto keeps its state per process, not per server: reset it for the next test.
        with contextlib.suppress(OSError):
            urllib.request.urlopen(  # loopback moto server
                urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=5
            ).close()
        server.stop()


@pytest.fixture
def archive(s3: S3, tmp_path: Any) -> Archive:
    return open_archive(
        f"s3://{s3.bucket}/lake", config_dir=str(tmp_path), storage_options=s3.options
    )


METER = "octopus_electricity_1000000000000"
PREFIX = f"lake/consumption/supplier=octopus/meter={METER}"


def test_s3_write_read_back_and_only_touched_objects(s3: S3, archive: Archive) -> None:
    assert archive.root == f"s3://{s3.bucket}/lake"
    frame = intervals(start=datetime(2024, 1, 30, tzinfo=UTC), periods=48 * 5)  # Jan 30 - Feb 3
    summary = archive.write_intervals(frame)
    assert (summary.partitions_written, summary.rows_written, summary.rows_total) == (2, 240, 240)
    assert s3.objects() == [
        f"{PREFIX}/month=2024-01/data.parquet",
        f"{PREFIX}/month=2024-02/data.parquet",
    ]

    back = archive.read_intervals(METER)
    assert len(back) == 240
    assert back["value"].sum() == pytest.approx(frame["value"].sum(), abs=1e-9)
    assert back["cost"].sum() == pytest.approx(frame["cost"].sum(), abs=1e-9)
    assert archive.list_meters() == [METER]

    # The object as any S3 reader sees it: Parquet, zstd, schema version, no partition columns.
    body = s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/month=2024-02/data.parquet")
    parquet = pq.ParquetFile(io.BytesIO(body["Body"].read()))
    assert parquet.metadata.num_rows == 48 * 3
    assert parquet.metadata.metadata[b"meterlake.schema_version"] == b"1"
    assert "meter" not in parquet.schema_arrow.names

    jan_etag = s3.etag(f"{PREFIX}/month=2024-01/data.parquet")
    feb_etag = s3.etag(f"{PREFIX}/month=2024-02/data.parquet")
    update = intervals(start=datetime(2024, 2, 4, tzinfo=UTC), periods=2, ingested_at=INGEST_2)
    summary = archive.write_intervals(update)
    assert (summary.partitions_written, summary.rows_written, summary.rows_total) == (1, 2, 146)
    assert s3.etag(f"{PREFIX}/month=2024-01/data.parquet") == jan_etag
    assert s3.etag(f"{PREFIX}/month=2024-02/data.parquet") != feb_etag
    # No temporary objects on an object store: the single PUT is the commit.
    assert len(s3.objects("lake/")) == 2
    window = archive.read_intervals(
        METER, datetime(2024, 2, 3, 23, tzinfo=UTC), datetime(2024, 2, 4, 1, tzinfo=UTC)
    )
    assert window["value"].tolist() == [*frame["value"].iloc[-2:], *update["value"]]


def test_s3_corrupt_object_is_kept_and_rebuilt(s3: S3, archive: Archive) -> None:
    archive.write_intervals(intervals(periods=48))
    key = f"{PREFIX}/month=2024-01/data.parquet"
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"PAR1 truncated")
    with pytest.raises(CorruptPartitionError):
        archive.read_intervals(METER)

    summary = archive.write_intervals(intervals(periods=4, ingested_at=INGEST_2))
    kept_key = key.replace("/data.parquet", "/_data.parquet.corrupt")
    assert summary.corrupt == (f"{s3.bucket}/{kept_key}",)
    assert summary.corrupt_windows == (
        (METER, datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)),
    )
    assert s3.objects("lake/") == [kept_key, key]
    kept = s3.client.get_object(Bucket=s3.bucket, Key=kept_key)["Body"].read()
    assert kept == b"PAR1 truncated"
    assert len(archive.read_intervals(METER)) == 4


def test_s3_audit_raw_and_purge(s3: S3, archive: Archive) -> None:
    from custom_components.meterlake.sources.base import AuditRecord

    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    archive.write_audit([AuditRecord(when, "octopus", "consumption", 200, 48, 0.3)])
    path = archive.write_raw("octopus", "consumption", {"token": "t0k", "results": [1]}, when)
    assert (
        path
        == f"{s3.bucket}/lake/raw/octopus/2024/01/02/consumption-20240102T030405000000Z.json.gz"
    )
    raw_key = path.split("/", 1)[1]
    body = s3.client.get_object(Bucket=s3.bucket, Key=raw_key)["Body"].read()
    assert json.loads(gzip.decompress(body)) == {"results": [1]}
    assert "lake/audit/supplier=octopus/month=2024-01/data.parquet" in s3.objects()
    kept = archive.write_raw(
        "octopus", "consumption", {"results": [2]}, datetime(2024, 1, 19, tzinfo=UTC)
    )
    assert archive.purge_raw(7, datetime(2024, 1, 20, tzinfo=UTC)) == 1
    # Nothing left of the purged day; pyarrow keeps a zero-byte marker for the month folder.
    assert s3.objects("lake/raw/") == ["lake/raw/octopus/2024/01/", kept.split("/", 1)[1]]
    marker = s3.client.head_object(Bucket=s3.bucket, Key="lake/raw/octopus/2024/01/")
    assert marker["ContentLength"] == 0


def test_s3_errors_name_the_root_without_secrets(s3: S3, tmp_path: Any) -> None:
    missing = open_archive(
        "s3://no-such-bucket/lake", config_dir=str(tmp_path), storage_options=s3.options
    )
    with pytest.raises(ArchiveError) as caught:
        missing.write_intervals(intervals(periods=2))
    assert caught.value.root == "s3://no-such-bucket/lake"
    assert SECRET_KEY not in str(caught.value)
    assert ACCESS_KEY not in str(caught.value)
    assert str(caught.value).startswith("s3://no-such-bucket/lake: ")
    assert "NoSuchBucket" in caught.value.reason or "no-such-bucket" in caught.value.reason


def test_unreachable_endpoint_is_an_archive_error(socket_enabled: None, tmp_path: Any) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Opening proves the store with one request: an unreachable one is refused at once, and
    # no archive exists that could be used.
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            "s3://bucket/lake",
            config_dir=str(tmp_path),
            storage_options={
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "endpoint_override": f"127.0.0.1:{port}",
                "scheme": "http",
                "region": "us-east-1",
                "connect_timeout": "1",
                "request_timeout": "2",
            },
        )
    assert str(caught.value).startswith("s3://bucket/lake: OSError: ")
    assert "NETWORK_CONNECTION" in caught.value.reason
    assert SECRET_KEY not in str(caught.value)
    assert ACCESS_KEY not in str(caught.value)
