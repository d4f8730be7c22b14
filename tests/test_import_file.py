"""Importing files with `meterlake.import_file`, end to end: real archive, recorder and DuckDB.

The fixture files (tests/fixtures/files/, made by make_fixtures.py) go into a file meter of the
Composed meters entry, or into the demo's electricity meter. What is checked is what a user and
an analyst see: the action's response, the archive's rows (read with DuckDB), the statistic,
the raw copy, and the translated errors that leave everything stored as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
import shutil
from typing import Any

import duckdb
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN

from .conftest import DEMO_NOW, hourly_statistic, settle

FILES = Path(__file__).parent / "fixtures" / "files"
HALF_HOUR = timedelta(minutes=30)
OCTOPUS_ROWS = 142  # 28-30 March 2026 in London, the 29th with 46 half-hours


def file_meter(name: str = "Old house", **more: Any) -> ConfigSubentryData:
    """A file meter as its subentry flow saves it."""
    data = {
        "name": name,
        "key": "file_" + name.lower().replace(" ", "_"),
        "kind": "electricity",
        "unit": "kWh",
        "cadence_minutes": 30,
        "time_zone": "Europe/London",
    } | more
    return ConfigSubentryData(data=data, subentry_type="file", title=name, unique_id=None)


@pytest.fixture
def imports(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A folder Home Assistant allows, holding copies of the fixture files."""
    folder = tmp_path / "imports"
    shutil.copytree(FILES, folder)
    hass.config.allowlist_external_dirs = {str(folder)}
    return folder


@pytest.fixture
async def composed(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, imports: Path
) -> MockConfigEntry:
    """The Composed meters entry with the file meters `file_old_house` (electricity, half-hours)
    and `file_garden_water` (m³, hourly), loaded."""
    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    hass.config.config_dir = str(tmp_path / "config")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Composed meters",
        data={"source": "composed"},
        options=default_options() | {"archive_root": str(tmp_path / "lake")},
        unique_id="composed",
        subentries_data=[
            file_meter(),
            file_meter("Garden water", kind="water", unit="m³", cadence_minutes=60),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    return entry


async def import_file(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "import_file", data, blocking=True, return_response=True
    )
    await settle(hass)
    assert isinstance(response, dict)
    return response


def archived(lake: Path, meter: str) -> list[tuple[Any, ...]]:
    return duckdb.sql(
        f"select start, value, quality from read_parquet('{lake}/consumption/**/*.parquet',"
        f" hive_partitioning = true) where meter = '{meter}' order by start"
    ).fetchall()


async def statistic_sum(hass: HomeAssistant, stat_id: str) -> float:
    return float((await hourly_statistic(hass, stat_id))[-1]["sum"])


async def test_an_octopus_export_fills_a_file_meter(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    response = await import_file(
        hass, path=str(imports / "octopus_export.csv"), meter="file_old_house"
    )
    assert response["format"] == "octopus_csv"
    assert response["rows_read"] == OCTOPUS_ROWS
    assert response["stored"] == OCTOPUS_ROWS
    assert response["rejected"] == {}
    rows = archived(tmp_path / "lake", "file_old_house")
    assert len(rows) == OCTOPUS_ROWS
    assert {quality for _, _, quality in rows} == {"imported"}
    total = sum(value for _, value, _ in rows)
    assert await statistic_sum(hass, "meterlake:file_old_house_consumption") == pytest.approx(
        total, abs=1e-9
    )


async def test_importing_the_same_file_again_changes_nothing(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    path = str(imports / "octopus_export.csv")
    first = await import_file(hass, path=path, meter="file_old_house")
    again = await import_file(hass, path=path, meter="file_old_house")
    assert again["stored"] == 0
    assert again["skipped_duplicates"] == OCTOPUS_ROWS
    assert again["raw"] == first["raw"]
    raw = list((tmp_path / "lake" / "raw" / "import").iterdir())
    assert [p.name for p in raw] == [Path(first["raw"]).name]
    assert len(archived(tmp_path / "lake", "file_old_house")) == OCTOPUS_ROWS


async def test_an_sqlite_history_brings_its_agreements(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    response = await import_file(hass, path=str(imports / "history.sqlite"), meter="file_old_house")
    assert response["format"] == "sqlite"
    assert response["stored"] == 48
    assert response["agreements"] == 2
    agreements = duckdb.sql(
        "select meter, product, source from read_parquet("
        f"'{tmp_path}/lake/agreements/**/*.parquet', hive_partitioning = true) order by valid_from"
    ).fetchall()
    assert agreements == [
        ("file_old_house", "VAR-22-11-01", "file"),
        ("file_old_house", "AGILE-24-10-01", "file"),
    ]


async def test_a_generic_csv_in_litres_per_mapping(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    csv = imports / "water.csv"
    csv.write_text(
        "From,Volume (L)\n2026-11-19 10:00,120\n2026-11-19 11:00,80\n2026-11-19 12:00,-5\n",
        encoding="utf-8",
    )
    response = await import_file(
        hass,
        path=str(csv),
        meter="file_garden_water",
        format="csv",
        mapping={"start": "From", "value": "Volume (L)"},
        cadence_minutes=60,
    )
    assert response["rejected"] == {"negative_value": 1}
    rows = archived(tmp_path / "lake", "file_garden_water")
    assert [value for _, value, _ in rows] == [pytest.approx(0.12), pytest.approx(0.08)]


# --------------------------------------------------------------------------------------------
# Into a supplier's meter
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def demo(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, imports: Path
) -> MockConfigEntry:
    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MeterLake demo",
        data={"source": "demo"},
        options=default_options() | {"backfill_days": 3, "archive_root": str(tmp_path / "lake")},
        unique_id="demo",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    return entry


def _demo_csv(folder: Path) -> Path:
    """Two half-hours the demo has delivered, and one before its history."""
    path = folder / "old_bill.csv"
    path.write_text(
        " Consumption (kWh), Start, End\n"
        "9.000, 2026-11-18T10:00:00+00:00, 2026-11-18T10:30:00+00:00\n"
        "9.000, 2026-11-18T10:30:00+00:00, 2026-11-18T11:00:00+00:00\n"
        "1.500, 2026-11-01T10:00:00+00:00, 2026-11-01T10:30:00+00:00\n",
        encoding="utf-8",
    )
    return path


async def test_a_file_fills_history_but_never_overrides_the_supplier(
    hass: HomeAssistant, demo: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    before = {start: value for start, value, _ in archived(tmp_path / "lake", "demo_electricity")}
    response = await import_file(hass, path=str(_demo_csv(imports)), meter="demo_electricity")
    assert response["stored"] == 1
    assert response["skipped_duplicates"] == 2
    after = {
        start: (value, quality)
        for start, value, quality in archived(tmp_path / "lake", "demo_electricity")
    }
    assert after[datetime(2026, 11, 1, 10, tzinfo=UTC)] == (1.5, "imported")
    for start, value in before.items():
        assert after[start][0] == value


async def test_replace_lets_the_file_win(
    hass: HomeAssistant, demo: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    response = await import_file(
        hass, path=str(_demo_csv(imports)), meter="demo_electricity", replace=True
    )
    assert response["stored"] == 3
    after = {start: value for start, value, _ in archived(tmp_path / "lake", "demo_electricity")}
    assert after[datetime(2026, 11, 18, 10, tzinfo=UTC)] == 9.0


# --------------------------------------------------------------------------------------------
# Refused
# --------------------------------------------------------------------------------------------


async def test_a_path_outside_the_allowed_folders_is_refused(
    hass: HomeAssistant, composed: MockConfigEntry, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.csv"
    shutil.copy(FILES / "octopus_export.csv", outside)
    with pytest.raises(ServiceValidationError) as raised:
        await import_file(hass, path=str(outside), meter="file_old_house")
    assert raised.value.translation_key == "import_path_not_allowed"


async def test_a_symlink_out_of_the_allowed_folders_is_refused(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.csv"
    shutil.copy(FILES / "octopus_export.csv", outside)
    (imports / "link.csv").symlink_to(outside)
    with pytest.raises(ServiceValidationError) as raised:
        await import_file(hass, path=str(imports / "link.csv"), meter="file_old_house")
    assert raised.value.translation_key == "import_path_not_allowed"


@pytest.mark.parametrize(
    "case",
    [
        ("truncated.csv", "import_truncated"),
        ("not_a_list.json", "import_json_not_a_list"),
        ("bad_line.jsonl", "import_json_bad_line"),
        ("corrupt.sqlite", "import_sqlite_unreadable"),
        ("mixed_units.csv", "import_mixed_units"),
    ],
)
async def test_a_broken_file_is_refused_and_nothing_changes(
    hass: HomeAssistant,
    composed: MockConfigEntry,
    imports: Path,
    tmp_path: Path,
    case: tuple[str, str],
) -> None:
    name, key = case
    await import_file(hass, path=str(imports / "readings.json"), meter="file_old_house")
    before = archived(tmp_path / "lake", "file_old_house")
    with pytest.raises(ServiceValidationError) as raised:
        await import_file(hass, path=str(imports / name), meter="file_old_house")
    assert raised.value.translation_key == key
    assert raised.value.translation_placeholders["file"] == name
    assert archived(tmp_path / "lake", "file_old_house") == before


async def test_an_unknown_meter_is_refused(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path
) -> None:
    with pytest.raises(ServiceValidationError) as raised:
        await import_file(hass, path=str(imports / "readings.json"), meter="file_nowhere")
    assert raised.value.translation_key == "meter_not_found"


# --------------------------------------------------------------------------------------------
# Analyst views over what was imported
# --------------------------------------------------------------------------------------------


def _two_day_history(folder: Path) -> Path:
    """Two London days of half-hours (0.5 kWh each on day one, 0.25 on day two) and an
    agreement change at the midnight between them, as an older tool's SQLite database."""
    import sqlite3

    path = folder / "two_days.sqlite"
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript(
            "CREATE TABLE readings (mpan TEXT, interval_start TEXT, interval_end TEXT,"
            " consumption_kwh REAL);"
            "CREATE TABLE agreements (mpan TEXT, tariff_code TEXT, valid_from TEXT, valid_to TEXT);"
        )
        start = datetime(2026, 2, 1, tzinfo=UTC)  # London is on UTC in February
        connection.executemany(
            "INSERT INTO readings VALUES (?, ?, ?, ?)",
            [
                (
                    "1012345678901",
                    (start + i * HALF_HOUR).isoformat(),
                    (start + (i + 1) * HALF_HOUR).isoformat(),
                    0.5 if i < 48 else 0.25,
                )
                for i in range(96)
            ],
        )
        connection.executemany(
            "INSERT INTO agreements VALUES (?, ?, ?, ?)",
            [
                (
                    "1012345678901",
                    "E-1R-VAR-22-11-01-C",
                    "2025-06-01T00:00:00Z",
                    "2026-02-02T00:00:00Z",
                ),
                ("1012345678901", "E-1R-AGILE-24-10-01-C", "2026-02-02T00:00:00Z", None),
            ],
        )
    connection.close()
    return path


async def test_the_views_answer_over_an_imported_history(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    path = _two_day_history(imports)
    response = await import_file(hass, path=str(path), meter="file_old_house")
    assert response["stored"] == 96
    lake = tmp_path / "lake"
    con = duckdb.connect()
    con.execute(f"SET file_search_path = '{lake}'")
    con.execute((lake / "views.sql").read_text(encoding="utf-8"))
    daily = con.execute(
        "select day::varchar, product, value from daily_consumption_by_product"
        " where meter = 'file_old_house' order by day"
    ).fetchall()
    assert daily == [("2026-02-01", "VAR-22-11-01", 24.0), ("2026-02-02", "AGILE-24-10-01", 12.0)]
    half_hours = con.execute(
        "select count(*), sum(value) from half_hourly_consumption where meter = 'file_old_house'"
    ).fetchone()
    assert half_hours == (96, 36.0)
    active = con.execute(
        "select product from active_agreements(TIMESTAMPTZ '2026-02-01 12:00:00+00')"
        " where meter = 'file_old_house'"
    ).fetchall()
    assert active == [("VAR-22-11-01",)]


async def test_a_file_with_several_meters_asks_which_one(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    path = imports / "two_meters.csv"
    path.write_text(
        "start,end,value,mpan\n"
        "2026-11-01T10:00:00Z,2026-11-01T10:30:00Z,0.5,111\n"
        "2026-11-01T10:00:00Z,2026-11-01T10:30:00Z,0.7,222\n",
        encoding="utf-8",
    )
    with pytest.raises(ServiceValidationError) as raised:
        await import_file(hass, path=str(path), meter="file_old_house")
    assert raised.value.translation_key == "import_several_meters"
    assert raised.value.translation_placeholders["meters"] == "111, 222"
    response = await import_file(hass, path=str(path), meter="file_old_house", meter_point="222")
    assert response["stored"] == 1
    assert [value for _, value, _ in archived(tmp_path / "lake", "file_old_house")] == [0.7]


async def test_values_of_another_quantity_are_set_aside(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path
) -> None:
    # kWh into a water meter (m³): energy is no volume, whatever the units convert to for gas
    path = imports / "kwh_hours.csv"
    path.write_text(
        " Consumption (kWh), Start, End\n"
        "1.000, 2026-11-01T10:00:00+00:00, 2026-11-01T11:00:00+00:00\n",
        encoding="utf-8",
    )
    response = await import_file(hass, path=str(path), meter="file_garden_water")
    assert response["stored"] == 0
    assert response["rejected"] == {"unknown_unit": 1}


async def test_rows_of_another_interval_length_are_set_aside(
    hass: HomeAssistant, composed: MockConfigEntry, imports: Path
) -> None:
    path = imports / "hours.csv"
    path.write_text(
        " Consumption (kWh), Start, End\n"
        "1.000, 2026-11-01T10:00:00+00:00, 2026-11-01T11:00:00+00:00\n"
        "0.500, 2026-11-01T11:00:00+00:00, 2026-11-01T11:30:00+00:00\n",
        encoding="utf-8",
    )
    response = await import_file(hass, path=str(path), meter="file_old_house")
    assert response["stored"] == 1
    assert response["rejected"] == {"outside_cadence": 1}


async def test_the_statistic_is_re_anchored_over_the_imported_window(
    hass: HomeAssistant, demo: MockConfigEntry, imports: Path, tmp_path: Path
) -> None:
    await import_file(hass, path=str(_demo_csv(imports)), meter="demo_electricity")
    total = sum(value for _, value, _ in archived(tmp_path / "lake", "demo_electricity"))
    # the half-hour of 1 November comes before the demo's own history: every later sum moves
    assert await statistic_sum(hass, "meterlake:demo_electricity_consumption") == pytest.approx(
        total, rel=1e-9
    )
