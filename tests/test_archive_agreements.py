"""Archive dataset `agreements`: which tariff a meter was on, over time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pandas as pd
import pyarrow.parquet as pq
import pytest

from custom_components.meterlake.analytics.schema import (
    AGREEMENT_ARCHIVE_COLUMNS,
    AGREEMENT_COLUMNS,
    INTERVAL_COLUMNS,
)
from custom_components.meterlake.archive import Archive, open_archive, product_of
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sinks import ArchiveSink, _write_fetch
from custom_components.meterlake.sources.base import FetchResult, MeterInfo

ELEC = "octopus_electricity_1000000000000"
GAS = "octopus_gas_2000000000"
AGILE = "E-1R-AGILE-24-10-01-C"
FIXED = "E-1R-OE-FIX-12M-24-03-01-C"
GAS_VAR = "G-1R-VAR-22-11-01-C"
CHANGE = pd.Timestamp("2026-03-29T00:00:00Z")
EARLIER = pd.Timestamp("2024-05-01T00:00:00+01:00")
INGESTED_1 = pd.Timestamp("2026-04-01T06:00:00Z")
INGESTED_2 = pd.Timestamp("2026-04-02T06:00:00Z")
NOW = datetime(2026, 4, 3, 6, 0, tzinfo=UTC)


def agreements(
    rows: list[tuple[str, str, pd.Timestamp, pd.Timestamp | None]],
    *,
    source: str = "octopus",
    ingested_at: pd.Timestamp | None = INGESTED_1,
) -> pd.DataFrame:
    """Rows of the agreements dataset: (meter, tariff, valid_from, valid_to)."""
    return pd.DataFrame(
        {
            "meter": [meter for meter, _t, _f, _u in rows],
            "tariff": [tariff for _m, tariff, _f, _u in rows],
            "product": [product_of(tariff) for _m, tariff, _f, _u in rows],
            "valid_from": pd.to_datetime(pd.Series([v for _m, _t, v, _u in rows]), utc=True),
            "valid_to": pd.to_datetime(pd.Series([v for _m, _t, _f, v in rows]), utc=True),
            "source": source,
            "ingested_at": ingested_at,
        },
        columns=list(AGREEMENT_ARCHIVE_COLUMNS),
    )


def history() -> pd.DataFrame:
    """An electricity meter that moved from a fixed tariff to Agile; a gas meter on one tariff."""
    return agreements(
        [
            (ELEC, FIXED, EARLIER, CHANGE),
            (ELEC, AGILE, CHANGE, None),
            (GAS, GAS_VAR, EARLIER, None),
        ]
    )


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive("meterlake", config_dir=str(tmp_path))


def agreement_file(tmp_path: Path, meter: str) -> Path:
    return tmp_path / "meterlake" / "agreements" / f"meter={meter}" / "data.parquet"


def test_product_of_strips_the_tariff_code_and_keeps_a_product_code() -> None:
    assert product_of(AGILE) == "AGILE-24-10-01"
    assert product_of(GAS_VAR) == "VAR-22-11-01"
    assert product_of("E-2R-VAR-22-11-01-A") == "VAR-22-11-01"
    assert product_of("E-1R-OUTGOING-FIX-12M-19-05-13-C") == "OUTGOING-FIX-12M-19-05-13"
    assert product_of("AGILE-24-10-01") == "AGILE-24-10-01"
    assert product_of("OE-FIX-12M-24-03-01") == "OE-FIX-12M-24-03-01"
    assert product_of(" tibber_home_1 ") == "tibber_home_1"
    assert product_of("") is None


def test_one_file_per_meter_with_the_meter_in_the_path_only(
    archive: Archive, tmp_path: Path
) -> None:
    summary = archive.write_agreements(history())

    assert summary.dataset == "agreements"
    assert summary.partitions_written == 2
    assert summary.rows_written == 3
    elec = agreement_file(tmp_path, ELEC)
    assert elec.is_file()
    assert agreement_file(tmp_path, GAS).is_file()
    files = sorted(p.relative_to(tmp_path / "meterlake") for p in tmp_path.rglob("*.parquet"))
    assert [str(p) for p in files] == [
        f"agreements/meter={ELEC}/data.parquet",
        f"agreements/meter={GAS}/data.parquet",
    ]
    table = pq.read_table(elec)
    assert table.column_names == [c for c in AGREEMENT_ARCHIVE_COLUMNS if c != "meter"]
    assert table.schema.metadata[b"meterlake.dataset"] == b"agreements"
    # Sorted by valid_from.
    assert table.column("tariff").to_pylist() == [FIXED, AGILE]


def test_read_back_one_meter_and_all_meters(archive: Archive) -> None:
    archive.write_agreements(history())

    elec = archive.read_agreements(ELEC)
    assert list(elec.columns) == list(AGREEMENT_ARCHIVE_COLUMNS)
    assert elec["tariff"].tolist() == [FIXED, AGILE]
    assert elec["product"].tolist() == ["OE-FIX-12M-24-03-01", "AGILE-24-10-01"]
    assert elec["valid_from"].tolist() == [EARLIER, CHANGE]
    assert elec["valid_to"].iloc[0] == CHANGE
    assert pd.isna(elec["valid_to"].iloc[1])
    assert elec["source"].tolist() == ["octopus", "octopus"]
    for column in ("valid_from", "valid_to", "ingested_at"):
        assert str(elec[column].dtype) == "datetime64[ns, UTC]"

    every = archive.read_agreements()
    assert list(every.columns) == list(AGREEMENT_ARCHIVE_COLUMNS)
    assert list(zip(every["meter"], every["tariff"], strict=True)) == [
        (ELEC, FIXED),
        (ELEC, AGILE),
        (GAS, GAS_VAR),
    ]


def test_reading_without_agreements_gives_the_columns(archive: Archive) -> None:
    for frame in (archive.read_agreements(), archive.read_agreements(ELEC)):
        assert frame.empty
        assert list(frame.columns) == list(AGREEMENT_ARCHIVE_COLUMNS)
        assert str(frame["valid_from"].dtype) == "datetime64[ns, UTC]"


def test_duckdb_reads_the_meter_from_the_path(archive: Archive, tmp_path: Path) -> None:
    archive.write_agreements(history())
    glob = f"{tmp_path}/meterlake/agreements/**/*.parquet"

    rows = (
        duckdb.connect()
        .execute(
            f"SELECT meter, tariff, product, valid_to IS NULL FROM read_parquet('{glob}', "
            "hive_partitioning = true, hive_types_autocast = false) ORDER BY meter, valid_from"
        )
        .fetchall()
    )

    assert rows == [
        (ELEC, FIXED, "OE-FIX-12M-24-03-01", False),
        (ELEC, AGILE, "AGILE-24-10-01", True),
        (GAS, GAS_VAR, "VAR-22-11-01", True),
    ]


def test_a_resent_agreement_replaces_itself(archive: Archive) -> None:
    archive.write_agreements(history())

    # The same agreement again, newer: still one row, with the newer ingested_at.
    summary = archive.write_agreements(
        agreements([(GAS, GAS_VAR, EARLIER, None)], ingested_at=INGESTED_2)
    )
    assert summary.rows_written == 1
    gas = archive.read_agreements(GAS)
    assert len(gas) == 1
    assert gas["ingested_at"].tolist() == [INGESTED_2]

    # An older copy loses.
    summary = archive.write_agreements(
        agreements([(GAS, GAS_VAR, EARLIER, CHANGE)], ingested_at=INGESTED_1)
    )
    assert summary.rows_written == 0
    gas = archive.read_agreements(GAS)
    assert len(gas) == 1
    assert pd.isna(gas["valid_to"].iloc[0])


def test_an_agreement_that_ends_later_replaces_the_open_one(archive: Archive) -> None:
    archive.write_agreements(agreements([(ELEC, FIXED, EARLIER, None)]))

    archive.write_agreements(
        agreements([(ELEC, FIXED, EARLIER, CHANGE), (ELEC, AGILE, CHANGE, None)], ingested_at=None)
    )

    elec = archive.read_agreements(ELEC)
    assert elec["tariff"].tolist() == [FIXED, AGILE]  # the change: both kept
    assert elec["valid_to"].iloc[0] == CHANGE  # the fixed tariff now ends
    assert elec["ingested_at"].notna().all()  # stamped with the time of the write


def test_the_same_agreement_from_two_sources_is_kept_twice(archive: Archive) -> None:
    archive.write_agreements(agreements([(ELEC, AGILE, CHANGE, None)]))
    archive.write_agreements(agreements([(ELEC, AGILE, CHANGE, None)], source="file"))

    assert archive.read_agreements(ELEC)["source"].tolist() == ["file", "octopus"]


def test_product_is_derived_when_missing(archive: Archive) -> None:
    frame = history().drop(columns=["product"])
    archive.write_agreements(frame)
    with_nulls = agreements([(GAS, "G-1R-FIX-12M-25-01-01-B", CHANGE, None)]).assign(product=None)
    archive.write_agreements(with_nulls)

    assert archive.read_agreements()["product"].tolist() == [
        "OE-FIX-12M-24-03-01",
        "AGILE-24-10-01",
        "VAR-22-11-01",
        "FIX-12M-25-01-01",
    ]


def test_agreements_need_a_source(archive: Archive) -> None:
    with pytest.raises(ValueError, match="source"):
        archive.write_agreements(history().drop(columns=["source"]))


def octopus_fetch() -> FetchResult:
    """What the Octopus source hands over: intervals priced through AGREEMENT_COLUMNS rows."""
    start = pd.Timestamp("2026-03-30T00:00:00Z")
    starts = pd.date_range(start, periods=2, freq="30min")
    intervals = pd.DataFrame(
        {
            "meter": ELEC,
            "serial": "21L123",
            "supplier": "octopus",
            "kind": "electricity",
            "start": starts,
            "end": starts + pd.Timedelta(minutes=30),
            "value": [0.5, 0.25],
            "unit": "kWh",
            "energy_kwh": [0.5, 0.25],
            "rate": 0.2,
            "cost": [0.1, 0.05],
            "currency": "GBP",
            "quality": "measured",
            "ingested_at": pd.Timestamp(NOW),
        },
        columns=list(INTERVAL_COLUMNS),
    )
    agreement_rows = pd.DataFrame(
        {
            "meter": [ELEC, ELEC],
            "tariff": [FIXED, AGILE],
            "valid_from": pd.to_datetime([EARLIER, CHANGE], utc=True),
            "valid_to": pd.to_datetime(pd.Series([CHANGE, None]), utc=True),
        },
        columns=list(AGREEMENT_COLUMNS),
    )
    return FetchResult(intervals=intervals, complete_until=None, agreements=agreement_rows)


def octopus_meter() -> MeterInfo:
    return MeterInfo(key=ELEC, supplier="octopus", kind="electricity", unit="kWh", name="Elec")


def test_write_fetch_archives_the_agreements(archive: Archive, tmp_path: Path) -> None:
    _write_fetch(archive, octopus_meter(), octopus_fetch(), 0, NOW)

    assert agreement_file(tmp_path, ELEC).is_file()
    elec = archive.read_agreements(ELEC)
    assert elec["tariff"].tolist() == [FIXED, AGILE]
    assert elec["product"].tolist() == ["OE-FIX-12M-24-03-01", "AGILE-24-10-01"]
    assert elec["source"].tolist() == ["octopus", "octopus"]
    assert elec["ingested_at"].tolist() == [pd.Timestamp(NOW)] * 2
    # The analyst views came with the first write.
    views = (tmp_path / "meterlake" / "views.sql").read_text(encoding="utf-8")
    assert "daily_consumption_by_product" in views


def test_write_fetch_without_agreements_writes_none(archive: Archive, tmp_path: Path) -> None:
    for empty in (None, octopus_fetch().agreements.iloc[0:0]):  # type: ignore[union-attr]
        result = octopus_fetch()
        result.agreements = empty
        _write_fetch(archive, octopus_meter(), result, 0, NOW)

    assert not (tmp_path / "meterlake" / "agreements").exists()
    assert archive.read_agreements().empty


def test_a_repeated_poll_keeps_one_row_per_agreement(archive: Archive) -> None:
    _write_fetch(archive, octopus_meter(), octopus_fetch(), 0, NOW)
    later = datetime(2026, 4, 3, 7, 0, tzinfo=UTC)
    _write_fetch(archive, octopus_meter(), octopus_fetch(), 0, later)

    elec = archive.read_agreements(ELEC)
    assert len(elec) == 2
    assert elec["ingested_at"].tolist() == [pd.Timestamp(later)] * 2


async def test_sink_writes_agreements(hass: HomeAssistant, tmp_path: Path) -> None:
    sink = ArchiveSink(hass, "01AGREEMENTS", {"archive_root": str(tmp_path / "lake")})

    assert await sink.async_write_agreements(history())

    archive = await sink.async_open()
    back = await hass.async_add_executor_job(archive.read_agreements, None)
    assert back["tariff"].tolist() == [FIXED, AGILE, GAS_VAR]
    assert sink.last_error is None


async def test_sink_writing_no_agreements_does_not_touch_the_archive(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    sink = ArchiveSink(hass, "01AGREEMENTS", {"archive_root": str(tmp_path / "lake")})

    assert await sink.async_write_agreements(history().iloc[0:0])

    assert sink.archive is None
    assert not (tmp_path / "lake").exists()


async def test_sink_failing_to_write_agreements_returns_false_and_raises_a_repair(
    hass: HomeAssistant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = ArchiveSink(hass, "01AGREEMENTS", {"archive_root": str(tmp_path / "lake")})
    await sink.async_open()
    # A file where the dataset's folder should be: the partition cannot be created.
    (tmp_path / "lake" / "agreements").write_text("", encoding="utf-8")

    assert not await sink.async_write_agreements(history())

    assert sink.last_error is not None
    assert "Cannot write the archive" in caplog.text
    issue: Any = ir.async_get(hass).async_get_issue(DOMAIN, "archive_unwritable_01AGREEMENTS")
    assert issue is not None
    assert issue.translation_key == "archive_unwritable"


async def test_sink_adds_the_agreement_views_to_an_archive_without_them(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    sink = ArchiveSink(hass, "01AGREEMENTS", {"archive_root": str(tmp_path / "lake")})
    archive = await sink.async_open()
    await hass.async_add_executor_job(
        _write_fetch, archive, octopus_meter(), _without_agreements(octopus_fetch()), 0, NOW
    )
    views = tmp_path / "lake" / "views.sql"
    assert "active_agreements" not in views.read_text(encoding="utf-8")

    assert await sink.async_write_agreements(history())  # e.g. from an imported file

    assert "daily_consumption_by_product" in views.read_text(encoding="utf-8")


def _without_agreements(result: FetchResult) -> FetchResult:
    result.agreements = None
    return result
