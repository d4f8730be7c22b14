"""sources.files: supplier exports and older tools' files read into frames."""

from __future__ import annotations

from pathlib import Path
import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.sources import files
from custom_components.meterlake.sources.files import FileImportError, detect_format, parse_file

FIXTURES = Path(__file__).parent / "fixtures" / "files"


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def reason_of(path: str, **kwargs: object) -> FileImportError:
    with pytest.raises(FileImportError) as caught:
        parse_file(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("octopus_export.csv", "octopus_csv"),
        ("generic_semicolon.csv", "csv"),
        ("mixed_units.csv", "csv"),
        ("readings.json", "json"),
        ("not_a_list.json", "json"),
        ("readings.jsonl", "jsonl"),
        ("history.sqlite", "sqlite"),
        ("corrupt.sqlite", "sqlite"),
    ],
)
def test_detect_format(name: str, expected: str) -> None:
    assert detect_format(fixture(name)) == expected


def test_detect_format_refuses_binary(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(FileImportError) as caught:
        detect_format(str(path))
    assert caught.value.reason == "unknown_format"
    assert caught.value.placeholders == {"file": "blob.bin"}


def test_octopus_export_spring_day_has_46_half_hours() -> None:
    parsed = parse_file(fixture("octopus_export.csv"))
    rows = parsed.rows
    assert parsed.format == "octopus_csv"
    assert list(rows.columns) == ["meter", "start", "end", "value", "unit"]
    assert str(rows["start"].dtype) == "datetime64[ns, UTC]"
    assert parsed.rows_read == len(rows) == 48 + 46 + 48
    assert parsed.rejected == {}
    assert rows["meter"].isna().all()
    assert (rows["unit"] == "kWh").all()
    local_days = rows["start"].dt.tz_convert("Europe/London").dt.date.astype(str)
    assert local_days.value_counts().sort_index().tolist() == [48, 46, 48]
    # 00:30 GMT -> 02:00 BST is the last half-hour before the change
    assert rows.loc[49, "start"] == utc("2026-03-29T00:30Z")
    assert rows.loc[49, "end"] == utc("2026-03-29T01:00Z")
    assert rows.loc[50, "start"] == utc("2026-03-29T01:00Z")
    assert ((rows["end"] - rows["start"]) == pd.Timedelta(minutes=30)).all()
    assert rows["value"].head(3).tolist() == [0.1, 0.15, 0.2]
    assert parsed.agreements.empty
    assert list(parsed.agreements.columns) == [
        "meter",
        "tariff",
        "valid_from",
        "valid_to",
        "product",
    ]
    assert parsed.products.empty


def test_semicolon_csv_decimal_comma_naive_local_hours() -> None:
    parsed = parse_file(fixture("generic_semicolon.csv"), cadence_minutes=60)
    rows = parsed.rows
    assert parsed.format == "csv"
    assert len(rows) == parsed.rows_read == 25
    assert (rows["unit"] == "m³").all()
    assert rows["value"].head(3).tolist() == [0.0, 0.125, 0.25]
    # London wall times on the autumn change: 00:00 BST, 01:00 BST, 01:00 GMT, 02:00 GMT
    assert rows["start"].head(4).tolist() == [
        utc("2026-10-24T23:00Z"),
        utc("2026-10-25T00:00Z"),
        utc("2026-10-25T01:00Z"),
        utc("2026-10-25T02:00Z"),
    ]
    assert ((rows["end"] - rows["start"]) == pd.Timedelta(hours=1)).all()


def test_csv_without_end_needs_a_cadence() -> None:
    error = reason_of(fixture("generic_semicolon.csv"))
    assert error.reason == "cadence_required"
    assert error.placeholders == {"file": "generic_semicolon.csv"}


def test_csv_mapping_names_the_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "custom.csv",
        "Beginn,Zaehler,Menge,Einheit\n2026-01-10T00:00:00Z,A1,1.5,kWh\n"
        "2026-01-10T01:00:00Z,A1,2.5,kWh\n",
    )
    mapping = {"start": "Beginn", "meter": "Zaehler", "value": "Menge", "unit": "Einheit"}
    rows = parse_file(path, mapping=mapping, cadence_minutes=60).rows
    assert rows["meter"].tolist() == ["A1", "A1"]
    assert rows["value"].tolist() == [1.5, 2.5]
    assert rows["end"].tolist() == [utc("2026-01-10T01:00Z"), utc("2026-01-10T02:00Z")]


def test_csv_mapping_to_a_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, "custom.csv", "a,b\n2026-01-10T00:00:00Z,1\n")
    error = reason_of(path, mapping={"start": "a", "value": "nope"}, cadence_minutes=60)
    assert error.reason == "column_missing"
    assert error.placeholders == {"file": "custom.csv", "column": "nope"}


def test_csv_guesses_columns_and_unit_from_header(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "guess.csv",
        "MPAN\tInterval Start\tInterval End\tConsumption (kWh)\n"
        "1012345678901\t2026-01-10T00:00:00Z\t2026-01-10T00:30:00Z\t0.25\n",
    )
    rows = parse_file(path).rows
    assert rows.to_dict("records") == [
        {
            "meter": "1012345678901",
            "start": utc("2026-01-10T00:00Z"),
            "end": utc("2026-01-10T00:30Z"),
            "value": 0.25,
            "unit": "kWh",
        }
    ]


def test_csv_without_recognisable_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.csv", "alpha,beta\n1,2\n")
    assert reason_of(path).reason == "columns_not_found"


def test_short_last_line_is_a_missing_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "short.csv",
        "start,end,value\n2026-01-10T00:00:00Z,2026-01-10T00:30:00Z,0.1\n2026-01-10T00:30:00Z,2026",
    )
    parsed = parse_file(path)
    assert parsed.rows_read == 2
    assert len(parsed.rows) == 1
    assert parsed.rejected == {"missing_value": 1}


def test_unreadable_times_are_rejected_and_counted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "times.csv",
        "start,end,value\n2026-01-10T00:00:00Z,2026-01-10T00:30:00Z,0.1\nsoon,later,0.2\n",
    )
    parsed = parse_file(path)
    assert len(parsed.rows) == 1
    assert parsed.rejected == {"unparseable_time": 1}


def test_rows_of_another_cadence_are_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cadence.csv",
        "start,end,value\n2026-01-10T00:00:00Z,2026-01-10T00:30:00Z,0.1\n"
        "2026-01-10T00:30:00Z,2026-01-10T01:30:00Z,0.2\n",
    )
    parsed = parse_file(path, cadence_minutes=30)
    assert len(parsed.rows) == 1
    assert parsed.rejected == {"outside_cadence": 1}


def test_unknown_units_are_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "units.csv",
        "start,end,value,unit\n2026-01-10T00:00:00Z,2026-01-10T00:30:00Z,0.1,kwh\n"
        "2026-01-10T00:30:00Z,2026-01-10T01:00:00Z,0.2,furlongs\n",
    )
    parsed = parse_file(path)
    assert parsed.rows["unit"].tolist() == ["kWh"]
    assert parsed.rejected == {"unknown_unit": 1}


def test_non_numbers_stay_as_nan_for_normalize(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nan.csv",
        "start,end,value\n2026-01-10T00:00:00Z,2026-01-10T00:30:00Z,n/a\n",
    )
    parsed = parse_file(path)
    assert np.isnan(parsed.rows["value"].iloc[0])
    assert parsed.rejected == {}


def test_json_list_with_meter_point() -> None:
    parsed = parse_file(fixture("readings.json"))
    rows = parsed.rows
    assert parsed.format == "json"
    assert parsed.rows_read == 4
    assert rows["meter"].tolist() == ["1012345678901"] * 4
    assert rows["start"].iloc[1] == utc("2026-01-10T00:30Z")
    assert rows["end"].iloc[3] == utc("2026-01-10T02:00Z")
    assert rows["value"].tolist() == [0.1, 0.15, 0.2, 0.25]
    assert rows["unit"].isna().all()


def test_json_results_object_as_octopus_api(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "api.json",
        '{"count": 1, "results": [{"consumption": 0.5, '
        '"interval_start": "2026-01-10T00:00:00+00:00", '
        '"interval_end": "2026-01-10T00:30:00+00:00"}]}',
    )
    rows = parse_file(path).rows
    assert rows["value"].tolist() == [0.5]
    assert rows["start"].tolist() == [utc("2026-01-10T00:00Z")]


def test_json_boolean_value_is_not_a_number(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bool.json",
        '[{"start": "2026-01-10T00:00:00Z", "end": "2026-01-10T00:30:00Z", "value": true}]',
    )
    assert np.isnan(parse_file(path).rows["value"].iloc[0])


def test_jsonl_with_serial_and_unit_from_key() -> None:
    parsed = parse_file(fixture("readings.jsonl"))
    rows = parsed.rows
    assert parsed.format == "jsonl"
    assert rows["meter"].tolist() == ["21E1234567"] * 3
    assert rows["value"].tolist() == [0.15, 0.2, 0.25]
    assert (rows["unit"] == "kWh").all()
    assert rows["start"].iloc[2] == utc("2026-01-10T01:00Z")


def test_sqlite_history() -> None:
    parsed = parse_file(fixture("history.sqlite"))
    rows = parsed.rows
    assert parsed.format == "sqlite"
    assert parsed.rows_read == len(rows) == 48
    assert (rows["meter"] == "1012345678901").all()
    assert (rows["unit"] == "kWh").all()
    assert rows["start"].iloc[0] == utc("2026-01-10T00:00Z")
    assert rows["end"].iloc[47] == utc("2026-01-11T00:00Z")
    assert rows["value"].iloc[:3].tolist() == [0.1, 0.15, 0.2]


def test_sqlite_agreements_change_mid_history() -> None:
    agreements = parse_file(fixture("history.sqlite")).agreements
    assert agreements.to_dict("records") == [
        {
            "meter": "1012345678901",
            "tariff": "E-1R-VAR-22-11-01-C",
            "valid_from": utc("2025-05-31T23:00Z"),
            "valid_to": utc("2026-01-10T12:00Z"),
            "product": "VAR-22-11-01",
        },
        {
            "meter": "1012345678901",
            "tariff": "E-1R-AGILE-24-10-01-C",
            "valid_from": utc("2026-01-10T12:00Z"),
            "valid_to": pd.NaT,
            "product": "AGILE-24-10-01",
        },
    ]
    assert str(agreements["valid_to"].dtype) == "datetime64[ns, UTC]"


def test_sqlite_products_with_rates() -> None:
    products = parse_file(fixture("history.sqlite")).products
    assert products.to_dict("records") == [
        {"code": "VAR-22-11-01", "name": "Flexible Octopus", "unit_rate": 0.2457},
        {"code": "AGILE-24-10-01", "name": "Agile Octopus", "unit_rate": 0.1932},
    ]


def test_sqlite_is_opened_read_only(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    shutil.copy2(fixture("history.sqlite"), path)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    parse_file(str(path))
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]  # no journal, no wal


def test_sqlite_hostile_table_name_is_read_as_data(tmp_path: Path) -> None:
    path = tmp_path / "hostile.sqlite"
    name = 'readings"; DROP TABLE meter_points; --'
    quoted = files.quote_identifier(name)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE meter_points (mpan TEXT, serial TEXT)")
        connection.execute("INSERT INTO meter_points VALUES ('M1', 'S1')")
        connection.execute(f'CREATE TABLE {quoted} ("serial""x" TEXT, start TEXT, value REAL)')
        connection.execute(f"INSERT INTO {quoted} VALUES ('S1', '2026-01-10T00:00:00Z', 1.25)")
    connection.close()
    parsed = parse_file(str(path), cadence_minutes=30)
    assert parsed.rows["value"].tolist() == [1.25]
    assert parsed.rows["meter"].tolist() == ["M1"]  # the only meter point
    connection = sqlite3.connect(path)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert tables == {"meter_points", name}


def test_sqlite_serial_joined_to_meter_point(tmp_path: Path) -> None:
    path = tmp_path / "serials.sqlite"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE meters (mpan TEXT, serial TEXT)")
        connection.executemany("INSERT INTO meters VALUES (?, ?)", [("M1", "S1"), ("M2", "S2")])
        connection.execute("CREATE TABLE consumption (serial TEXT, start INTEGER, kwh REAL)")
        connection.executemany(
            "INSERT INTO consumption VALUES (?, ?, ?)",
            [("S1", 1768003200, 0.5), ("S2", 1768003200, 0.75)],
        )
    connection.close()
    rows = parse_file(str(path), cadence_minutes=30).rows
    assert rows["meter"].tolist() == ["M1", "M2"]
    assert rows["start"].tolist() == [utc("2026-01-10T00:00Z")] * 2  # Unix seconds


def test_sqlite_without_readings(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    connection.close()
    assert reason_of(str(path)).reason == "sqlite_no_readings"


def test_corrupt_sqlite() -> None:
    error = reason_of(fixture("corrupt.sqlite"))
    assert error.reason == "sqlite_unreadable"
    assert error.placeholders["file"] == "corrupt.sqlite"


def test_not_sqlite_read_as_sqlite() -> None:
    error = reason_of(fixture("readings.json"), format="sqlite")
    assert error.reason == "sqlite_unreadable"


def test_truncated_csv_ends_mid_quote() -> None:
    error = reason_of(fixture("truncated.csv"))
    assert error.reason == "truncated"
    assert error.placeholders == {"file": "truncated.csv", "line": "3"}


def test_json_not_a_list() -> None:
    error = reason_of(fixture("not_a_list.json"))
    assert error.reason == "json_not_a_list"
    assert error.placeholders == {"file": "not_a_list.json"}


def test_json_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.json", '[\n{"start": 1},\n{oops\n')
    error = reason_of(path)
    assert error.reason == "json_invalid"
    assert error.placeholders == {"file": "broken.json", "line": "3"}


def test_jsonl_bad_line() -> None:
    error = reason_of(fixture("bad_line.jsonl"))
    assert error.reason == "json_bad_line"
    assert error.placeholders == {"file": "bad_line.jsonl", "line": "2"}


def test_mixed_units_without_meter_column() -> None:
    error = reason_of(fixture("mixed_units.csv"))
    assert error.reason == "mixed_units"
    assert error.placeholders == {"file": "mixed_units.csv", "line": "4"}


def test_mixed_units_told_apart_by_meter(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "two.csv",
        "meter,start,end,value,unit\nE,2026-01-10T00:00:00Z,2026-01-10T00:30:00Z,0.1,kWh\n"
        "G,2026-01-10T00:00:00Z,2026-01-10T00:30:00Z,0.2,m3\n",
    )
    assert parse_file(path).rows["unit"].tolist() == ["kWh", "m³"]


def test_undecodable_text(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(
        b"start,end,value\n2026-01-10T00:00:00Z,2026-01-10T00:30:00Z,0.1\n"
        b"2026-01-10T00:30:00Z,2026-01-10T01:00:00Z,0.2 \xe9\n"
    )
    error = reason_of(str(path), format="csv")
    assert error.reason == "unreadable"
    assert error.placeholders == {"file": "latin.csv", "line": "3"}


def test_too_large() -> None:
    error = reason_of(fixture("octopus_export.csv"), max_bytes=1000)
    assert error.reason == "too_large"
    assert error.placeholders == {
        "file": "octopus_export.csv",
        "size": str(Path(fixture("octopus_export.csv")).stat().st_size),
        "limit": "1000",
    }


def test_fixtures_are_what_the_generator_writes(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.HERE = tmp_path
    module.main()
    for made in tmp_path.iterdir():
        if made.suffix != ".sqlite":  # SQLite headers carry the library's version
            assert made.read_bytes() == (FIXTURES / made.name).read_bytes(), made.name
