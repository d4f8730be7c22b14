"""eCO2mix source against payloads of ODRE's real v2.1 shapes (no network, no `hass`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
import json
import math
from typing import Any

import aiohttp
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from yarl import URL

from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS
from custom_components.meterlake.archive import GRID_MIX_FIELDS
from custom_components.meterlake.sources import eco2mix
from custom_components.meterlake.sources.base import (
    RetryPolicy,
    SourceContext,
    SourceError,
    SourceNotFoundError,
    SourcePayloadError,
    SourceRequestError,
    SourceUnavailableError,
)
from custom_components.meterlake.sources.eco2mix import (
    REGIONS,
    Eco2mixSource,
    async_check,
    create_source,
    grid_meter,
)

from .conftest import load_fixture_json

API = "https://odre.opendatasoft.com/api/explore/v2.1/catalog/datasets"
TR = f"{API}/eco2mix-national-tr/records"
TR_EXPORT = f"{API}/eco2mix-national-tr/exports/json"
CONS = f"{API}/eco2mix-national-cons-def/records"
CONS_EXPORT = f"{API}/eco2mix-national-cons-def/exports/json"
REG_TR = f"{API}/eco2mix-regional-tr/records"
REG_CONS_EXPORT = f"{API}/eco2mix-regional-cons-def/exports/json"

NOW = datetime(2026, 11, 20, 9, 33, tzinfo=UTC)  # 10:33 in Paris
START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
NO_JITTER = RetryPolicy(max_jitter=0.0)


def fx(name: str) -> Any:
    return load_fixture_json(f"eco2mix/{name}.json")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


class Clock:
    """A settable now()."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Sleeps:
    """Records the delays HttpClient asks for instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def inline[T](target: Callable[..., T], *args: Any) -> T:
    return target(*args)


@pytest.fixture
async def session(aioclient_mock: AiohttpClientMocker) -> AsyncGenerator[aiohttp.ClientSession]:
    """A session answered by aioclient_mock, without starting Home Assistant."""
    client = aioclient_mock.create_session(asyncio.get_running_loop())
    yield client
    await client.close()


def make(
    session: aiohttp.ClientSession, perimeter: str = "national", **kwargs: Any
) -> Eco2mixSource:
    kwargs.setdefault("now", Clock(NOW))
    kwargs.setdefault("sleep", Sleeps())
    kwargs.setdefault("policy", NO_JITTER)
    return Eco2mixSource(session, perimeter=perimeter, executor=inline, **kwargs)


def calls_to(mock: AiohttpClientMocker, url: str) -> list[URL]:
    target = URL(url)
    return [call[1] for call in mock.mock_calls if call[1].with_query(None) == target]


def sequence(*responses: dict[str, Any]) -> Callable[..., Awaitable[AiohttpClientMockResponse]]:
    """A side effect answering each call with the next response (the last one repeats)."""
    remaining = list(responses)

    async def answer(method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        spec = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return AiohttpClientMockResponse(method, url, **spec)

    return answer


def no_refresh(mock: AiohttpClientMocker, url: str = CONS_EXPORT) -> None:
    """The daily consolidated export answers with nothing."""
    mock.get(url, json=[])


def row_at(grid: pd.DataFrame, start: str) -> pd.Series:
    found = grid[grid["start"] == ts(start)]
    assert len(found) == 1
    return found.iloc[0]


# ------------------------------------------------------------------------------------ basics


def test_regions_meter_and_datasets() -> None:
    assert len(REGIONS) == 12
    assert REGIONS["11"] == "Île-de-France"
    assert REGIONS["93"] == "Provence-Alpes-Côte d'Azur"
    assert sorted(REGIONS) == [
        "11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93"
    ]  # fmt: skip
    meter = grid_meter("national")
    assert (meter.key, meter.supplier, meter.kind, meter.unit, meter.name) == (
        "eco2mix_national",
        "eco2mix",
        "grid",
        "MW",
        "eCO2mix France",
    )
    assert (meter.time_zone, meter.cadence_minutes, meter.currency) == ("Europe/Paris", 15, None)
    assert meter.has_standing_charge is False
    assert dict(meter.extra) == {"perimeter": "national"}
    regional = grid_meter("84")
    assert (regional.key, regional.name) == ("eco2mix_84", "eCO2mix Auvergne-Rhône-Alpes")
    assert dict(regional.extra) == {"perimeter": "84"}
    assert eco2mix.dataset("national", consolidated=False) == "eco2mix-national-tr"
    assert eco2mix.dataset("53", consolidated=True) == "eco2mix-regional-cons-def"
    with pytest.raises(ValueError, match="unknown perimeter"):
        grid_meter("01")  # Guadeloupe: not in eCO2mix


def test_where_clause() -> None:
    end = t("2026-11-20T09:33:12.5")
    assert eco2mix.where_clause("national", START, end) == (
        "date_heure >= '2026-11-20T06:00:00Z' AND date_heure < '2026-11-20T09:33:12Z'"
    )
    paris = START.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert eco2mix.where_clause("11", paris, end).endswith(" AND code_insee_region = '11'")
    assert "'2026-11-20T06:00:00Z'" in eco2mix.where_clause("11", paris, end)


async def test_create_source(session: aiohttp.ClientSession) -> None:
    context = SourceContext(
        session=session,
        executor=inline,
        data={"source": "eco2mix", "perimeter": "75"},
        options={"keep_raw_days": 7},
    )
    source = create_source(context)
    assert source.supplier == "eco2mix"
    assert source.update_interval == timedelta(minutes=15)
    assert source.capabilities.aligned_minutes == (3, 18, 33, 48)
    assert source.capabilities.overlap == timedelta(hours=3)
    assert source.capabilities.grid and not source.capabilities.spot_prices
    assert source.perimeter == "75"
    assert [m.key for m in source.meters] == ["eco2mix_75"]
    assert source._keep_raw is True
    plain = create_source(
        SourceContext(session, inline, {"source": "eco2mix", "perimeter": "national"}, {})
    )
    assert plain._keep_raw is False
    assert plain.meters[0].name == "eCO2mix France"
    assert abs(plain._now() - datetime.now(UTC)) < timedelta(minutes=1)


# ------------------------------------------------------------------------------------ a poll


async def test_poll_national(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(TR, json=fx("national_tr_page"))
    no_refresh(aioclient_mock)
    source = make(session)
    result = await source.async_fetch(source.meters[0], START, NOW)

    (call,) = calls_to(aioclient_mock, TR)
    assert dict(call.query) == {
        "where": "date_heure >= '2026-11-20T06:00:00Z' AND date_heure < '2026-11-20T09:33:00Z'",
        "order_by": "date_heure",
        "limit": "100",
        "offset": "0",
        "timezone": "UTC",
    }
    grid = result.grid
    assert grid is not None
    assert len(grid) == 14
    assert list(grid.columns[:2]) == ["start", "end"]
    assert list(grid.columns[2 : 2 + len(GRID_MIX_FIELDS)]) == list(GRID_MIX_FIELDS)
    assert list(grid.columns[-2:]) == ["consolidated", "ingested_at"]
    assert {"date", "heure", "date_heure", "perimetre", "nature"}.isdisjoint(grid.columns)
    assert {"stockage_batterie", "destockage_batterie", "ech_comm_espagne", "gaz_ccg"} <= set(
        grid.columns
    )
    assert grid["start"].iloc[0] == ts("2026-11-20T06:00")
    assert grid["end"].iloc[-1] == ts("2026-11-20T09:30")
    assert (grid["end"] - grid["start"] == pd.Timedelta(minutes=15)).all()
    assert str(grid["start"].dtype) == "datetime64[ns, UTC]"
    assert not grid["consolidated"].any()
    assert (grid["ingested_at"] == pd.Timestamp(NOW)).all()

    first = row_at(grid, "2026-11-20T06:00")
    assert first["consommation"] == 58000.0
    assert first["nucleaire"] == 44000.0
    assert first["taux_co2"] == 30.0
    assert first["ech_comm_espagne"] == -12.5  # "-12.5"
    assert first["ech_comm_angleterre"] == -1500.0  # "-1500"
    assert row_at(grid, "2026-11-20T06:30")["nucleaire"] == 44194.0  # "44194"
    assert math.isnan(row_at(grid, "2026-11-20T07:00")["fioul"])  # "ND"
    assert math.isnan(row_at(grid, "2026-11-20T07:15")["gaz"])  # ""
    assert row_at(grid, "2026-11-20T08:00")["solaire"] == 239.0  # "239"
    assert math.isnan(row_at(grid, "2026-11-20T08:30")["stockage_batterie"])  # "ND"
    # The null tail is kept as NaN, never 0.
    nine = row_at(grid, "2026-11-20T09:00")
    assert math.isnan(nine["consommation"]) and nine["nucleaire"] == 45164.0
    quarter = row_at(grid, "2026-11-20T09:15")
    assert math.isnan(quarter["consommation"]) and math.isnan(quarter["nucleaire"])
    assert quarter["prevision_j"] == 60099.0
    assert grid["thermique"].isna().all()  # a regional field, absent nationally

    assert result.complete_until == t("2026-11-20T09:00")  # end of 08:45, the newest known
    assert result.rejected == 0
    assert list(result.intervals.columns) == list(INTERVAL_COLUMNS)
    assert result.intervals.empty
    assert str(result.intervals["start"].dtype) == "datetime64[ns, UTC]"
    assert result.raw == []

    endpoints = [(a.endpoint, a.status, a.rows) for a in result.audit]
    assert endpoints == [
        ("eco2mix-national-tr/records", 200, 14),
        ("eco2mix-national-cons-def/exports", 200, 0),
        ("poll", 200, 14),
    ]
    heartbeat = result.audit[-1]
    assert (heartbeat.supplier, heartbeat.time, heartbeat.error) == ("eco2mix", NOW, None)
    assert heartbeat.duration_s >= 0


async def test_poll_regional(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(REG_TR, json=fx("regional_tr_page"))
    no_refresh(aioclient_mock, REG_CONS_EXPORT)
    source = make(session, "11")
    result = await source.async_fetch(source.meters[0], START, NOW)

    (call,) = calls_to(aioclient_mock, REG_TR)
    assert call.query["where"].endswith(" AND code_insee_region = '11'")
    (export,) = calls_to(aioclient_mock, REG_CONS_EXPORT)
    assert export.query["where"] == (
        "date_heure >= '2026-10-06T09:33:00Z' AND date_heure < '2026-11-20T09:33:00Z'"
        " AND code_insee_region = '11'"
    )
    grid = result.grid
    assert grid is not None and len(grid) == 14
    assert {"code_insee_region", "libelle_region"}.isdisjoint(grid.columns)
    assert grid["taux_co2"].isna().all()  # regions publish no intensity
    assert grid["nucleaire"].isna().all()
    first = row_at(grid, "2026-11-20T06:00")
    assert (first["consommation"], first["thermique"], first["bioenergies"]) == (
        8200.0,
        250.0,
        150.0,
    )
    assert first["tco_thermique"] == 3.0
    assert math.isnan(row_at(grid, "2026-11-20T06:45")["thermique"])  # "ND"
    assert math.isnan(row_at(grid, "2026-11-20T07:30")["eolien"])  # "-"
    assert row_at(grid, "2026-11-20T07:45")["solaire"] == 63.0  # "63"
    assert grid["stockage_batterie"].isna().all()  # "ND" all day: still a numeric column
    assert result.complete_until == t("2026-11-20T09:15")


DST_DAYS = {
    "national_dst_spring": ("2026-03-28T23:00", "2026-03-29T22:00", 92),
    "national_dst_autumn": ("2026-10-24T22:00", "2026-10-25T23:00", 100),
}


@pytest.mark.parametrize("fixture", list(DST_DAYS))
async def test_dst_days(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker, fixture: str
) -> None:
    """A Paris day of 23 or 25 hours: `date`+`heure` skip or repeat, `date_heure` does not."""
    start, end, rows = DST_DAYS[fixture]
    payload = fx(fixture)
    local = [(r["date"], r["heure"]) for r in payload["results"]]
    aioclient_mock.get(TR, json=payload)
    no_refresh(aioclient_mock)
    source = make(session, now=Clock(t(end) + timedelta(hours=1)))
    result = await source.async_fetch(source.meters[0], t(start), t(end))
    grid = result.grid
    assert grid is not None and len(grid) == rows
    assert grid["start"].is_unique
    assert grid["start"].iloc[0] == ts(start)
    assert grid["end"].iloc[-1] == ts(end)
    assert (grid["start"].diff().dropna() == pd.Timedelta(minutes=15)).all()
    assert result.complete_until == t(end)
    if rows == 100:
        assert len(set(local)) == 96  # 02:00-02:45 come twice in local time
        assert local[8] == local[12] == ("2026-10-25", "02:00")
    else:
        assert len(set(local)) == 92 and ("2026-03-29", "02:00") not in local


async def test_paged_backfill(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    for offset in (0, 100, 200):
        aioclient_mock.get(
            TR, params={"offset": offset}, json=fx(f"national_backfill_offset{offset}")
        )
    no_refresh(aioclient_mock)
    start, end = t("2026-11-16T00:00"), t("2026-11-18T14:30")
    source = make(session)
    result = await source.async_fetch(source.meters[0], start, end)
    offsets = [int(u.query["offset"]) for u in calls_to(aioclient_mock, TR)]
    assert offsets == [0, 100, 200]
    grid = result.grid
    assert grid is not None and len(grid) == 250
    assert grid["start"].iloc[0] == ts("2026-11-16T00:00")
    assert grid["start"].iloc[-1] == ts("2026-11-18T14:15")
    assert grid["consommation"].iloc[100] == 58000.0 + (100 * 173) % 6000
    assert result.complete_until == end
    assert [a.rows for a in result.audit if a.endpoint.endswith("/records")] == [100, 100, 50]
    assert calls_to(aioclient_mock, CONS) == []  # real time reaches back to the start


async def test_over_cap_reads_exports_by_30_days(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    """120 days hold 11,520 quarter-hours: past the 10,000 offset cap, so /exports/json."""
    exports: list[str] = []

    async def route(method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        where = url.query["where"]
        exports.append(where)
        day = where.split("'")[1][:10]
        return AiohttpClientMockResponse(method, url, json=fx(f"national_export_{day}"))

    aioclient_mock.get(TR, json=fx("national_over_cap_page"))
    aioclient_mock.get(TR_EXPORT, side_effect=route)
    no_refresh(aioclient_mock)
    start, end = t("2026-01-01T00:00"), t("2026-05-01T00:00")
    source = make(session, now=Clock(t("2026-05-01T00:10")))
    result = await source.async_fetch(source.meters[0], start, end)

    assert len(calls_to(aioclient_mock, TR)) == 1  # the first page only tells the count
    assert exports == [
        "date_heure >= '2026-01-01T00:00:00Z' AND date_heure < '2026-01-31T00:00:00Z'",
        "date_heure >= '2026-01-31T00:00:00Z' AND date_heure < '2026-03-02T00:00:00Z'",
        "date_heure >= '2026-03-02T00:00:00Z' AND date_heure < '2026-04-01T00:00:00Z'",
        "date_heure >= '2026-04-01T00:00:00Z' AND date_heure < '2026-05-01T00:00:00Z'",
    ]
    call = calls_to(aioclient_mock, TR_EXPORT)[0]
    assert "limit" not in call.query and "offset" not in call.query
    grid = result.grid
    assert grid is not None and len(grid) == 32  # the export fixtures hold 8 rows each
    assert grid["start"].iloc[8] == ts("2026-01-31T00:00")
    assert grid["consommation"].iloc[8] == 58000.0 + (1000 * 173) % 6000
    assert result.complete_until == t("2026-04-01T02:00")
    export_rows = [a.rows for a in result.audit if a.endpoint == "eco2mix-national-tr/exports"]
    assert export_rows == [8, 8, 8, 8]


async def test_consolidated_fills_what_real_time_lacks(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    """A backfill window older than the real-time dataset: the head comes from cons-def."""
    aioclient_mock.get(TR, json=fx("national_tr_after_gap"))
    aioclient_mock.get(CONS, json=fx("national_cons_gap"))
    no_refresh(aioclient_mock)
    start, end = t("2025-11-13T00:00"), t("2025-11-13T06:00")
    source = make(session)
    result = await source.async_fetch(source.meters[0], start, end)

    (gap,) = calls_to(aioclient_mock, CONS)
    assert gap.query["where"] == (
        "date_heure >= '2025-11-13T00:00:00Z' AND date_heure < '2025-11-13T03:00:00Z'"
    )
    grid = result.grid
    assert grid is not None and len(grid) == 24
    head = grid[grid["start"] < ts("2025-11-13T03:00")]
    assert head["consolidated"].all() and not grid["consolidated"].iloc[12:].any()
    assert row_at(grid, "2025-11-13T00:00")["consommation"] == 58007.0
    # Half-hourly consolidated history: the :15 and :45 rows are kept, empty.
    assert math.isnan(row_at(grid, "2025-11-13T00:15")["consommation"])
    assert head["consommation"].notna().sum() == 6
    assert result.complete_until == end


async def test_nothing_in_either_dataset(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(TR, json={"total_count": 0, "results": []})
    aioclient_mock.get(CONS, json={"total_count": 0, "results": []})
    no_refresh(aioclient_mock)
    source = make(session)
    result = await source.async_fetch(source.meters[0], START, NOW)
    assert result.grid is not None and result.grid.empty
    assert result.complete_until is None
    assert len(calls_to(aioclient_mock, CONS)) == 1
    assert result.audit[-1].rows == 0


async def test_rejected_and_junk_rows(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    payload = fx("national_tr_page")
    payload["results"] = [
        {"date_heure": None, "consommation": 1},
        {"date_heure": "yesterday", "consommation": 2},
        {"date_heure": 1763618400, "consommation": 3},
        "not a record",
        {"date_heure": "2026-11-20T06:00:00", "consommation": 4},  # naive: read as UTC
        *payload["results"],
    ]
    aioclient_mock.get(TR, json=payload)
    no_refresh(aioclient_mock)
    source = make(session)
    result = await source.async_fetch(source.meters[0], START, NOW)
    assert result.rejected == 4
    assert result.grid is not None and len(result.grid) == 14
    assert calls_to(aioclient_mock, CONS) == []


# ------------------------------------------------------------------------------------ refresh


async def test_daily_consolidated_refresh(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(TR, json=fx("national_tr_page"))
    aioclient_mock.get(CONS_EXPORT, json=fx("national_cons_export"))
    clock = Clock(NOW)
    source = make(session, now=clock)
    meter = source.meters[0]

    result = await source.async_fetch(meter, START, NOW)  # first poll after start
    (export,) = calls_to(aioclient_mock, CONS_EXPORT)
    assert export.query["where"] == (
        "date_heure >= '2026-10-06T09:33:00Z' AND date_heure < '2026-11-20T09:33:00Z'"
    )
    grid = result.grid
    assert grid is not None and len(grid) == 14 + 4  # the refresh's October rows come along
    assert int(grid["consolidated"].sum()) == 6
    # Consolidated values replace the real-time ones of the same quarter-hour.
    assert row_at(grid, "2026-11-20T06:00")["consommation"] == 58111.0
    assert row_at(grid, "2026-11-20T06:15")["consommation"] == 58222.0
    assert bool(row_at(grid, "2026-11-20T06:15")["consolidated"])
    assert not row_at(grid, "2026-11-20T06:30")["consolidated"]
    assert result.complete_until == t("2026-11-20T09:00")
    assert [a.rows for a in result.audit] == [14, 6, 18]

    polls = {
        "2026-11-20T09:48": 1,  # same day: no new read
        "2026-11-21T02:50": 1,  # 03:50 in Paris: not yet
        "2026-11-21T03:03": 2,  # 04:03 in Paris: the day's refresh
        "2026-11-21T22:48": 2,  # 23:48 in Paris, same day
        "2026-11-22T03:18": 3,  # next morning
    }
    for now, expected in polls.items():
        clock.now = t(now)
        await source.async_fetch(meter, t(now) - timedelta(hours=3), t(now))
        assert len(calls_to(aioclient_mock, CONS_EXPORT)) == expected, now


async def test_refresh_failure_is_noted_and_retried(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(TR, json=fx("national_tr_page"))
    aioclient_mock.get(
        CONS_EXPORT, side_effect=sequence({"status": 503}, {"json": fx("national_cons_export")})
    )
    sleeps = Sleeps()
    clock = Clock(NOW)
    source = make(session, now=clock, sleep=sleeps, policy=RetryPolicy(retries=0))
    meter = source.meters[0]

    result = await source.async_fetch(meter, START, NOW)
    assert result.grid is not None and len(result.grid) == 14
    assert not result.grid["consolidated"].any()
    heartbeat = result.audit[-1]
    assert heartbeat.endpoint == "poll" and heartbeat.status == 503
    assert heartbeat.error is not None
    assert heartbeat.error.startswith("consolidated refresh failed: eco2mix:")
    assert result.complete_until == t("2026-11-20T09:00")

    clock.now = NOW + timedelta(minutes=15)
    again = await source.async_fetch(meter, START, clock.now)
    assert len(calls_to(aioclient_mock, CONS_EXPORT)) == 2
    assert again.audit[-1].error is None
    assert again.grid is not None and int(again.grid["consolidated"].sum()) == 6


async def test_empty_window_still_refreshes(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(CONS_EXPORT, json=fx("national_cons_export"))
    source = make(session)
    result = await source.async_fetch(source.meters[0], NOW, NOW)
    assert calls_to(aioclient_mock, TR) == []
    assert result.grid is not None and len(result.grid) == 6
    assert result.complete_until is None  # nothing of the (empty) window


# ------------------------------------------------------------------------------------ errors


async def test_429_then_success_honours_retry_after(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(
        TR,
        side_effect=sequence(
            {"status": 429, "headers": {"Retry-After": "7"}, "text": "slow down"},
            {"json": fx("national_tr_page")},
        ),
    )
    no_refresh(aioclient_mock)
    sleeps = Sleeps()
    source = make(session, sleep=sleeps)
    result = await source.async_fetch(source.meters[0], START, NOW)
    assert sleeps.delays == [7.0]
    assert [(a.status, a.error) for a in result.audit[:2]] == [(429, "HTTP 429"), (200, None)]
    assert result.grid is not None and len(result.grid) == 14


async def test_500_exhausted_carries_audit(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(TR, status=500, text="Internal Server Error")
    sleeps = Sleeps()
    source = make(session, sleep=sleeps)
    with pytest.raises(SourceUnavailableError) as caught:
        await source.async_fetch(source.meters[0], START, NOW)
    err = caught.value
    assert sleeps.delays == [2.0, 4.0, 8.0]  # 2 s x 2^n, no jitter in this policy
    assert err.partial is None  # nothing was read
    assert err.translation_key == "cannot_connect"
    assert [(a.endpoint, a.status) for a in err.audit] == [
        ("eco2mix-national-tr/records", 500),
    ] * 4 + [("poll", 500)]
    heartbeat = err.audit[-1]
    assert heartbeat.rows == 0
    assert heartbeat.error == (
        "eco2mix: eco2mix-national-tr/records failed after 4 attempts (HTTP 500)"
    )
    assert "national read incomplete" in str(err)
    assert calls_to(aioclient_mock, CONS_EXPORT) == []


async def test_budget_spent_after_some_pages_keeps_them(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(TR, params={"offset": 0}, json=fx("national_backfill_offset0"))
    aioclient_mock.get(TR, params={"offset": 100}, json=fx("national_backfill_offset100"))
    aioclient_mock.get(
        TR, params={"offset": 200}, status=503, headers={"Retry-After": "30"}, text="busy"
    )
    source = make(session, keep_raw=True)
    start, end = t("2026-11-16T00:00"), t("2026-11-18T14:30")
    with pytest.raises(SourceUnavailableError) as caught:
        await source.async_fetch(source.meters[0], start, end)
    err = caught.value
    assert err.retry_after == 30.0
    partial = err.partial
    assert partial is not None and partial.grid is not None
    assert len(partial.grid) == 200
    assert partial.grid["start"].iloc[-1] == ts("2026-11-18T01:45")
    assert partial.complete_until == t("2026-11-18T02:00")
    assert partial.intervals.empty and partial.audit == []
    assert [name for name, _ in partial.raw] == ["eco2mix-national-tr/records"] * 2
    assert [a.status for a in err.audit] == [200, 200, 503, 503, 503, 503, 503]
    assert (err.audit[-1].endpoint, err.audit[-1].rows) == ("poll", 200)


async def test_gap_failure_keeps_the_watermark(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    """Real time read, the older head failed: the rows are kept, complete_until is None."""
    aioclient_mock.get(TR, json=fx("national_tr_after_gap"))
    aioclient_mock.get(CONS, status=502)
    source = make(session)
    with pytest.raises(SourceUnavailableError) as caught:
        await source.async_fetch(source.meters[0], t("2025-11-13T00:00"), t("2025-11-13T06:00"))
    partial = caught.value.partial
    assert partial is not None and partial.grid is not None and len(partial.grid) == 12
    assert partial.complete_until is None


async def test_first_page_failure_without_start_keeps_nothing(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    """Pages after the first fail and the rows read start late: no watermark move."""
    late = fx("national_tr_after_gap")
    late["total_count"] = 150
    aioclient_mock.get(TR, params={"offset": 0}, json=late)
    aioclient_mock.get(TR, params={"offset": 100}, status=504)
    source = make(session)
    with pytest.raises(SourceUnavailableError) as caught:
        await source.async_fetch(source.meters[0], t("2025-11-13T00:00"), t("2025-11-14T00:00"))
    partial = caught.value.partial
    assert partial is not None and partial.grid is not None and len(partial.grid) == 12
    assert partial.complete_until is None


async def test_400_fails_at_once_with_its_text(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(TR, status=400, text=json.dumps(fx("error_400")))
    sleeps = Sleeps()
    source = make(session, sleep=sleeps)
    with pytest.raises(SourceRequestError) as caught:
        await source.async_fetch(source.meters[0], START, NOW)
    err = caught.value
    assert sleeps.delays == []
    assert len(err.audit) == 2
    http, heartbeat = err.audit
    assert http.status == 400
    assert http.error is not None and http.error.startswith("HTTP 400: ")
    assert "ODSQL query is malformed" in http.error
    assert (heartbeat.endpoint, heartbeat.status) == ("poll", 400)
    assert heartbeat.error is not None and "ODSQLError" in heartbeat.error
    assert err.placeholders == {"status": "400"}


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (TR, {"results": []}),  # no total_count
        (TR, {"total_count": True, "results": []}),
        (TR, {"total_count": 1, "results": "none"}),
        (TR, [{"date_heure": "2026-11-20T06:00:00+00:00"}]),
        (CONS_EXPORT, {"total_count": 0, "results": []}),  # exports answer a bare list
    ],
)
async def test_malformed_payloads(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker, url: str, body: Any
) -> None:
    if url != TR:
        aioclient_mock.get(TR, json=fx("national_tr_page"))
    aioclient_mock.get(url, json=body)
    source = make(session)
    if url == TR:
        with pytest.raises(SourcePayloadError) as caught:
            await source.async_fetch(source.meters[0], START, NOW)
        assert caught.value.audit[-1].endpoint == "poll"
    else:  # a broken refresh is noted, not raised
        result = await source.async_fetch(source.meters[0], START, NOW)
        assert result.audit[-1].error is not None
        assert "unexpected shape" in result.audit[-1].error


async def test_not_found_and_wrong_calls(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(TR, status=404)
    source = make(session)
    with pytest.raises(SourceNotFoundError) as caught:
        await source.async_fetch(source.meters[0], START, NOW)
    assert [a.endpoint for a in caught.value.audit] == ["eco2mix-national-tr/records", "poll"]
    with pytest.raises(SourceError, match="not this entry's grid meter"):
        await source.async_fetch(grid_meter("11"), START, NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        await source.async_fetch(source.meters[0], START.replace(tzinfo=None), NOW)


async def test_keep_raw(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    page = fx("national_tr_page")
    aioclient_mock.get(TR, json=page)
    aioclient_mock.get(CONS_EXPORT, json=fx("national_cons_export"))
    source = make(session, keep_raw=True)
    result = await source.async_fetch(source.meters[0], START, NOW)
    assert [name for name, _ in result.raw] == [
        "eco2mix-national-tr/records",
        "eco2mix-national-cons-def/exports",
    ]
    assert result.raw[0][1] == page
    assert len(result.raw[1][1]) == 6


# ------------------------------------------------------------------------------------ check


async def test_async_check(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    page = fx("national_tr_page")
    page["results"] = page["results"][-1:]
    aioclient_mock.get(TR, json=page)
    aioclient_mock.get(REG_TR, json={"total_count": 0, "results": []})
    await async_check(session, "national")
    await async_check(session, "93")
    national, regional = (c[1] for c in aioclient_mock.mock_calls)
    assert dict(national.query) == {"limit": "1", "order_by": "date_heure desc"}
    assert dict(regional.query) == {
        "limit": "1",
        "order_by": "date_heure desc",
        "where": "code_insee_region = '93'",
    }
    with pytest.raises(ValueError, match="unknown perimeter"):
        await async_check(session, "France")


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            {"status": 400, "text": '{"error_code": "InvalidRESTParameterError"}'},
            SourceRequestError,
        ),
        ({"status": 500}, SourceUnavailableError),
        ({"exc": aiohttp.ClientConnectionError("refused")}, SourceUnavailableError),
        ({"exc": TimeoutError()}, SourceUnavailableError),
        ({"text": "<html>maintenance</html>"}, SourcePayloadError),
        ({"json": {"detail": "?"}}, SourcePayloadError),
    ],
)
async def test_async_check_errors(
    session: aiohttp.ClientSession,
    aioclient_mock: AiohttpClientMocker,
    response: dict[str, Any],
    error: type[Exception],
) -> None:
    aioclient_mock.get(TR, **response)
    sleeps = Sleeps()
    with pytest.raises(error):
        await async_check(session, "national", sleep=sleeps, policy=NO_JITTER)
    assert sleeps.delays == ([2.0, 4.0, 8.0] if error is SourceUnavailableError else [])
