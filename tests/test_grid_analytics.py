"""analytics.grid: ODRE records to grid frames, latest values, production and shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math
from typing import Any

from hypothesis import given, strategies as st
import numpy as np
import pandas as pd
import pytest

from custom_components.meterlake.analytics import grid
from custom_components.meterlake.archive import GRID_MIX_FIELDS

from .conftest import load_fixture_json

INGESTED = datetime(2026, 11, 20, 9, 33, tzinfo=UTC)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def parse(records: list[Any], *, consolidated: bool = False) -> pd.DataFrame:
    frame, _ = grid.parse_records(records, consolidated=consolidated, ingested_at=INGESTED)
    return frame


def record(start: str, **fields: Any) -> dict[str, Any]:
    return {"date_heure": start, **fields}


# ------------------------------------------------------------------------------------ parsing


def test_parse_fixture_national() -> None:
    results = load_fixture_json("eco2mix/national_tr_page.json")["results"]
    frame, rejected = grid.parse_records(results, consolidated=False, ingested_at=INGESTED)
    assert rejected == 0
    assert len(frame) == 14
    expected = [
        "start",
        "end",
        *GRID_MIX_FIELDS,
        "bioenergies_biogaz",
        "bioenergies_biomasse",
        "bioenergies_dechets",
        "destockage_batterie",
        "ech_comm_allemagne_belgique",
        "ech_comm_angleterre",
        "ech_comm_espagne",
        "ech_comm_italie",
        "ech_comm_suisse",
        "eolien_offshore",
        "eolien_terrestre",
        "fioul_autres",
        "fioul_cogen",
        "fioul_tac",
        "gaz_autres",
        "gaz_ccg",
        "gaz_cogen",
        "gaz_tac",
        "hydraulique_fil_eau_eclusee",
        "hydraulique_lacs",
        "hydraulique_step_turbinage",
        "stockage_batterie",
        "consolidated",
        "ingested_at",
    ]
    assert list(frame.columns) == expected
    numeric = frame.drop(columns=["start", "end", "consolidated", "ingested_at"])
    assert (numeric.dtypes == np.float64).all()
    assert frame["consommation"].isna().tolist() == [False] * 12 + [True] * 2
    assert frame["ech_comm_angleterre"].iloc[3] == -1503.0


def test_numbers_strings_and_placeholders() -> None:
    frame = parse(
        [
            record(
                "2026-11-20T06:00:00+00:00",
                consommation="239",
                nucleaire="-12.5",
                eolien=" 1 234",
                solaire="12,5",
                hydraulique="1\u202f050",
                gaz="ND",
                fioul="",
                charbon="-",
                bioenergies=None,
                pompage="nd",
                taux_co2=31,
                ech_physiques="inf",
            ),
        ]
    )
    row = frame.iloc[0]
    assert row["consommation"] == 239.0
    assert row["nucleaire"] == -12.5
    assert row["eolien"] == 1234.0
    assert row["solaire"] == 12.5
    assert row["hydraulique"] == 1050.0
    for name in ("gaz", "fioul", "charbon", "bioenergies", "pompage", "ech_physiques"):
        assert math.isnan(row[name]), name
    assert row["taux_co2"] == 31.0


def test_which_unknown_fields_are_numeric() -> None:
    frame = parse(
        [
            record(
                "2026-11-20T06:00:00+00:00",
                code_insee_region="11",
                libelle_region="Île-de-France",
                nature="Données temps réel",
                date="2026-11-20",
                heure="07:00",
                stockage_batterie="ND",  # only placeholders: numeric, all NaN
                tco_solaire=1.5,
                mixed_field="12",
                label="texte",  # text: left out
                nested={"a": 1},  # neither: left out
                flag=True,  # a JSON boolean is no measurement
                nothing=None,  # null all along: numeric
                some_junk="oops",
            ),
            record(
                "2026-11-20T06:15:00+00:00",
                stockage_batterie="ND",
                tco_solaire="2.5",
                mixed_field=7,
                label="autre",
                nested={"a": 2},
                flag=False,
                nothing=None,
                some_junk="17",
            ),
        ]
    )
    extras = [c for c in frame.columns if c not in {"start", "end", "consolidated", "ingested_at"}]
    extras = extras[len(GRID_MIX_FIELDS) :]
    assert extras == ["mixed_field", "nothing", "some_junk", "stockage_batterie", "tco_solaire"]
    assert frame["mixed_field"].tolist() == [12.0, 7.0]
    assert frame["tco_solaire"].tolist() == [1.5, 2.5]
    assert frame["stockage_batterie"].isna().all() and frame["nothing"].isna().all()
    assert math.isnan(frame["some_junk"].iloc[0]) and frame["some_junk"].iloc[1] == 17.0


def test_times_rejects_and_duplicates() -> None:
    frame, rejected = grid.parse_records(
        [
            record("2026-11-20T07:15:00+01:00", consommation=1),  # Paris offset: 06:15Z
            record("2026-11-20T06:00:00Z", consommation=2),
            record("2026-11-20T06:00:00+00:00", consommation=3),  # same start: the later wins
            record("not a time", consommation=4),
            record(None, consommation=5),
            {"consommation": 6},
            record(20261120, consommation=7),
            "junk",
            None,
        ],
        consolidated=True,
        ingested_at=INGESTED,
    )
    assert rejected == 6
    assert frame["start"].tolist() == [
        pd.Timestamp("2026-11-20T06:00Z"),
        pd.Timestamp("2026-11-20T06:15Z"),
    ]
    assert frame["consommation"].tolist() == [3.0, 1.0]
    assert frame["consolidated"].all()
    assert (frame["ingested_at"] == pd.Timestamp(INGESTED)).all()
    assert str(frame["ingested_at"].dtype) == "datetime64[ns, UTC]"


def test_no_time_column_and_empty_input() -> None:
    frame, rejected = grid.parse_records([{"consommation": 1}], consolidated=False)
    assert (len(frame), rejected) == (0, 1)
    empty, rejected = grid.parse_records([], consolidated=False)
    assert (len(empty), rejected) == (0, 0)
    assert list(empty.columns) == ["start", "end", *GRID_MIX_FIELDS, "consolidated", "ingested_at"]
    assert str(empty["start"].dtype) == "datetime64[ns, UTC]"
    assert str(empty["consolidated"].dtype) == "bool"


def test_default_ingested_at_is_now() -> None:
    frame, _ = grid.parse_records([record("2026-11-20T06:00:00Z")], consolidated=False)
    assert abs(frame["ingested_at"].iloc[0] - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=1)


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(-(10**6), 10**6),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from(["ND", "", "-", "239", "-12.5", " 1 234", "x"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_known_field_is_always_float(values: list[Any]) -> None:
    records = [
        record(f"2026-11-20T{6 + i // 4:02d}:{15 * (i % 4):02d}:00Z", consommation=v)
        for i, v in enumerate(values)
    ]
    frame = parse(records)
    assert frame["consommation"].dtype == np.float64
    assert len(frame) == len(values)
    assert np.isfinite(frame["consommation"].dropna()).all()


# ------------------------------------------------------------------------------------ combining


def frame_of(values: dict[str, float], *, consolidated: bool, ingested: str) -> pd.DataFrame:
    frame, _ = grid.parse_records(
        [record(start, consommation=v) for start, v in values.items()],
        consolidated=consolidated,
        ingested_at=t(ingested),
    )
    return frame


def test_dedupe_prefers_consolidated_then_newer() -> None:
    realtime_new = frame_of(
        {"2026-11-20T06:00:00Z": 1, "2026-11-20T06:15:00Z": 2},
        consolidated=False,
        ingested="2026-11-21T00:00",
    )
    consolidated_old = frame_of(
        {"2026-11-20T06:00:00Z": 10}, consolidated=True, ingested="2026-11-01T00:00"
    )
    realtime_old = frame_of(
        {"2026-11-20T06:15:00Z": 20}, consolidated=False, ingested="2026-11-20T00:00"
    )
    combined = grid.dedupe(pd.concat([consolidated_old, realtime_new, realtime_old]))
    assert combined["consommation"].tolist() == [10.0, 2.0]
    assert combined["consolidated"].tolist() == [True, False]
    assert grid.dedupe(grid.empty_grid()).empty


def test_dedupe_nulls() -> None:
    a = frame_of({"2026-11-20T06:00:00Z": 1}, consolidated=False, ingested="2026-11-20T00:00")
    b = a.assign(consommation=2.0, ingested_at=pd.NaT, consolidated=None)
    assert grid.dedupe(pd.concat([a, b]))["consommation"].tolist() == [1.0]
    c = a.assign(consommation=3.0)  # equal rank: the later row wins
    assert grid.dedupe(pd.concat([a, c]))["consommation"].tolist() == [3.0]


def test_merge_recent() -> None:
    old = frame_of(
        {f"2026-11-20T{h:02d}:00:00Z": h for h in range(10)},
        consolidated=False,
        ingested="2026-11-20T10:00",
    )
    new = frame_of(
        {"2026-11-20T09:00:00Z": 99, "2026-11-20T10:00:00Z": 100},
        consolidated=False,
        ingested="2026-11-20T10:05",
    )
    merged = grid.merge_recent(old, new, timedelta(hours=3))
    assert merged["consommation"].tolist() == [8.0, 99.0, 100.0]  # newest end 10:15
    merged = grid.merge_recent(old, new, timedelta(hours=3), now=t("2026-11-20T12:00"))
    assert merged["consommation"].tolist() == [99.0, 100.0]
    cutoff = grid.merge_recent(old, new, t("2026-11-20T07:00"))
    assert cutoff["consommation"].tolist() == [7.0, 8.0, 99.0, 100.0]
    only_new = grid.merge_recent(None, new, timedelta(days=1))
    assert len(only_new) == 2
    assert grid.merge_recent(None, None, timedelta(days=1)).empty
    assert grid.merge_recent(grid.empty_grid(), None, timedelta(days=1)).empty
    stale = new.assign(
        consommation=-1.0, consolidated=True, ingested_at=pd.Timestamp("2020-01-01T00:00Z")
    )
    merged = grid.merge_recent(new, stale, timedelta(days=1))
    assert merged["consommation"].tolist() == [-1.0, -1.0]  # consolidated wins whatever its age


def test_merge_recent_with_different_extras() -> None:
    old, _ = grid.parse_records(
        [record("2026-11-20T06:00:00Z", stockage_batterie=-5)], consolidated=False
    )
    new, _ = grid.parse_records(
        [record("2026-11-20T06:15:00Z", ech_comm_suisse="-1300")], consolidated=False
    )
    merged = grid.merge_recent(old, new, timedelta(days=1))
    assert merged["stockage_batterie"].isna().tolist() == [False, True]
    assert merged["ech_comm_suisse"].isna().tolist() == [True, False]
    assert merged["consolidated"].dtype == bool


# ------------------------------------------------------------------------------------ latest


def test_latest_values_per_field() -> None:
    results = load_fixture_json("eco2mix/national_tr_page.json")["results"]
    frame = parse(results)
    latest = grid.latest_values(frame.iloc[::-1])  # any order
    assert latest["consommation"] == (t("2026-11-20T08:45"), 58000.0 + (11 * 173) % 6000)
    assert latest["nucleaire"] == (t("2026-11-20T09:00"), 45164.0)
    assert latest["prevision_j"] == (t("2026-11-20T09:15"), 60099.0)
    assert latest["stockage_batterie"][0] == t("2026-11-20T09:00")  # 08:30 was "ND"
    assert "thermique" not in latest  # never known
    assert "consolidated" not in latest and "start" not in latest
    assert latest["nucleaire"][0].tzinfo is not None
    assert grid.latest_values(grid.empty_grid()) == {}


def test_latest_mix() -> None:
    frame = parse(load_fixture_json("eco2mix/national_tr_page.json")["results"])
    stamp, row = grid.latest_mix(frame) or (None, {})
    assert stamp == t("2026-11-20T09:00")  # 09:15 has no production yet
    assert row["nucleaire"] == 45164.0 and "consommation" not in row
    assert grid.latest_mix(grid.empty_grid()) is None
    assert grid.latest_mix(frame[frame["start"] > pd.Timestamp("2026-11-20T09:05Z")]) is None


# ------------------------------------------------------------------------------------ mix


NATIONAL_ROW = {
    "nucleaire": 45000.0,
    "eolien": 6000.0,
    "solaire": 1000.0,
    "hydraulique": 7000.0,
    "gaz": 3000.0,
    "fioul": 100.0,
    "charbon": 0.0,
    "bioenergies": 1000.0,
    "destockage_batterie": 20.0,
    "stockage_batterie": -30.0,  # a flow: left out
    "pompage": -500.0,  # left out
    "ech_physiques": -4000.0,  # left out
    "consommation": 55000.0,  # not production
}


def test_production_total_and_shares() -> None:
    assert grid.production_total(NATIONAL_ROW) == 63120.0
    assert grid.low_carbon_share(NATIONAL_ROW) == pytest.approx(100 * 60000 / 63120)
    assert grid.renewable_share(NATIONAL_ROW) == pytest.approx(100 * 15000 / 63120)


def test_regional_thermique_counts_without_fossil_split() -> None:
    regional = {
        "thermique": 300.0,
        "eolien": 50.0,
        "solaire": "ND",
        "hydraulique": 5,
        "bioenergies": 145.0,
    }
    assert grid.production_total(regional) == 500.0
    assert grid.low_carbon_share(regional) == pytest.approx(40.0)
    assert grid.renewable_share(regional) == pytest.approx(40.0)
    both = {"thermique": 300.0, "gaz": 200.0, "nucleaire": 500.0}
    assert grid.production_total(both) == 700.0  # thermique would count gas twice


@pytest.mark.parametrize(
    "row",
    [
        {},
        {"consommation": 55000.0},
        {"nucleaire": None, "eolien": float("nan"), "solaire": "ND", "gaz": True},
        {"nucleaire": 0.0, "eolien": 0.0},
        {"nucleaire": 10.0, "solaire": -20.0},
        {"nucleaire": float("inf")},
    ],
)
def test_unknown_or_zero_production(row: dict[str, Any]) -> None:
    assert grid.low_carbon_share(row) is None
    assert grid.renewable_share(row) is None


def test_production_total_unknown() -> None:
    assert grid.production_total({}) is None
    assert grid.production_total({"nucleaire": [1, 2]}) is None
    assert grid.production_total({"nucleaire": 0.0}) == 0.0


def test_shares_from_a_series() -> None:
    """A frame row works as well as a dict (NaN counts as unknown)."""
    row = pd.Series({"nucleaire": 100.0, "gaz": np.nan, "eolien": 100.0})
    assert grid.production_total(row.to_dict()) == 200.0
    assert grid.renewable_share(row.to_dict()) == 50.0
