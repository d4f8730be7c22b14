"""Rows a source sets aside (normalize's quarantine) are counted and audited, never stored.

Payloads: tests/fixtures/octopus/faulty_elec_consumption.json is entry_elec_consumption.json with
`1e12` kWh at 19 Nov 18:00 and `true` at 18:30 UTC; tests/fixtures/tibber/consumption_faulty.json
is consumption_p1.json with `1e12` kWh at 9 Mar 13:00 and `true` at 14:00 UTC.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import numpy as np
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from yarl import URL

from custom_components.meterlake.sources import demo
from custom_components.meterlake.sources.base import (
    REJECTED_ENDPOINT,
    AuditRecord,
    FetchResult,
    rejected_audit,
)
from custom_components.meterlake.sources.octopus import (
    OctopusSource,
    discover_meters,
    meter_infos,
)
from custom_components.meterlake.sources.tibber import LIMITER, RateLimiter, TibberSource

from .conftest import load_fixture_json

WHEN = datetime(2026, 11, 20, 12, 10, tzinfo=UTC)


async def inline(target: Callable[..., Any], *args: Any) -> Any:
    return target(*args)


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def session(aioclient_mock: AiohttpClientMocker) -> AsyncGenerator[aiohttp.ClientSession]:
    client = aioclient_mock.create_session(asyncio.get_running_loop())
    yield client
    await client.close()


def rejected_rows(result: FetchResult) -> list[AuditRecord]:
    return [a for a in result.audit if a.endpoint == REJECTED_ENDPOINT]


def starts(frame: pd.DataFrame) -> list[datetime]:
    return [s.to_pydatetime() for s in frame["start"]]


# ------------------------------------------------------------------------------ the audit row


def test_the_audit_row_counts_rows_per_reason() -> None:
    record = rejected_audit("octopus", {"boolean_value": 1, "implausible_value": 2}, when=WHEN)
    assert record == AuditRecord(
        time=WHEN,
        supplier="octopus",
        endpoint="rejected",
        status=None,
        rows=3,
        duration_s=0.0,
        error="implausible_value: 2; boolean_value: 1",
    )


def test_equal_counts_are_listed_by_name() -> None:
    record = rejected_audit("tibber", {"implausible_value": 1, "boolean_value": 1}, when=WHEN)
    assert record is not None
    assert record.error == "boolean_value: 1; implausible_value: 1"


@pytest.mark.parametrize("reasons", [{}, {"implausible_value": 0}])
def test_a_fetch_without_rejections_has_no_audit_row(reasons: dict[str, int]) -> None:
    assert rejected_audit("octopus", reasons, when=WHEN) is None


# ------------------------------------------------------------------------------ Octopus

OCTOPUS_API = "https://api.octopus.energy/v1"
OCTOPUS_ELEC = "octopus_electricity_1200000000017"
OCTOPUS_CONSUMPTION = (
    f"{OCTOPUS_API}/electricity-meter-points/1200000000017/meters/24E1234567/consumption/"
)
OCTOPUS_TARIFF = f"{OCTOPUS_API}/products/VAR-22-11-01/electricity-tariffs/E-1R-VAR-22-11-01-A"
OCTOPUS_START = datetime(2026, 11, 18, 23, 30, tzinfo=UTC)
OCTOPUS_END = datetime(2026, 11, 20, tzinfo=UTC)


def octopus_fx(name: str) -> Any:
    return load_fixture_json(f"octopus/{name}.json")


async def fetch_octopus(
    session: aiohttp.ClientSession, mock: AiohttpClientMocker, consumption: str
) -> FetchResult:
    mock.get(f"{OCTOPUS_API}/accounts/A-BEEF1234/", json=octopus_fx("entry_account"))
    mock.get(OCTOPUS_CONSUMPTION, json=octopus_fx(consumption))
    mock.get(f"{OCTOPUS_TARIFF}/standard-unit-rates/", json=octopus_fx("entry_elec_rates"))
    mock.get(f"{OCTOPUS_TARIFF}/standing-charges/", json=octopus_fx("entry_elec_standing"))
    meters = meter_infos(
        discover_meters(octopus_fx("entry_account"), now=WHEN),
        selected={OCTOPUS_ELEC},
        gas_units={},
    )
    source = OctopusSource(
        session,
        api_key="sk_live_QUARANTINE0123456789",
        account_number="A-BEEF1234",
        meters=meters,
        executor=inline,
        sleep=no_sleep,
        now=lambda: WHEN,
    )
    return await source.async_fetch(meters[0], OCTOPUS_START, OCTOPUS_END)


async def test_octopus_keeps_absurd_and_boolean_readings_out_of_the_intervals(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    result = await fetch_octopus(session, aioclient_mock, "faulty_elec_consumption")
    assert starts(result.intervals) == [
        datetime(2026, 11, 18, 23, 30, tzinfo=UTC),
        datetime(2026, 11, 19, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 19, 0, 30, tzinfo=UTC),
        datetime(2026, 11, 19, 23, 30, tzinfo=UTC),
    ]
    assert result.intervals["value"].tolist() == pytest.approx([0.5, 0.25, 0.35, 0.4])
    assert result.intervals["value"].sum() == pytest.approx(1.5)


async def test_octopus_counts_the_rows_it_set_aside(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    result = await fetch_octopus(session, aioclient_mock, "faulty_elec_consumption")
    assert result.rejected == 2


async def test_octopus_audits_the_rows_it_set_aside(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    result = await fetch_octopus(session, aioclient_mock, "faulty_elec_consumption")
    assert rejected_rows(result) == [
        AuditRecord(
            time=WHEN,
            supplier="octopus",
            endpoint="rejected",
            status=None,
            rows=2,
            duration_s=0.0,
            error="boolean_value: 1; implausible_value: 1",
        )
    ]


async def test_octopus_fetch_of_clean_payloads_audits_no_rejection(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    result = await fetch_octopus(session, aioclient_mock, "entry_elec_consumption")
    assert result.rejected == 0
    assert rejected_rows(result) == []
    assert len(result.intervals) == 6


# ------------------------------------------------------------------------------ Tibber

TIBBER_API = "https://api.tibber.com/v1-beta/gql"
TIBBER_HOME = "96a14971-525a-4420-aae9-e5aedaa129ff"
TIBBER_NOW = datetime(2026, 3, 10, 10, 20, tzinfo=UTC)
TIBBER_START = datetime(2026, 3, 9, 11, tzinfo=UTC)  # the oldest hour of the page


@pytest.fixture(autouse=True)
def _fresh_limiter() -> Any:
    """The process-wide Tibber limiter starts empty in every test."""
    LIMITER.clear()
    yield
    LIMITER.clear()


async def fetch_tibber(session: aiohttp.ClientSession, mock: AiohttpClientMocker) -> FetchResult:
    async def answer(method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        name = "prices" if "priceInfo" in data["query"] else "consumption_faulty"
        return AiohttpClientMockResponse(method, url, json=load_fixture_json(f"tibber/{name}.json"))

    mock.post(TIBBER_API, side_effect=answer)
    source = TibberSource(
        session,
        token="tibTOKEN-QUARANTINE-0123456789",
        homes=[
            {
                "id": TIBBER_HOME,
                "name": "Villa",
                "time_zone": "Europe/Oslo",
                "currency": "NOK",
                "production": False,
            }
        ],
        executor=inline,
        now=lambda: TIBBER_NOW,
        sleep=no_sleep,
        limiter=RateLimiter(),
    )
    return await source.async_fetch(source.meters[0], TIBBER_START, TIBBER_NOW)


async def test_tibber_keeps_absurd_and_boolean_readings_out_of_the_intervals(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    result = await fetch_tibber(session, aioclient_mock)
    hours = starts(result.intervals)
    assert datetime(2026, 3, 9, 13, tzinfo=UTC) not in hours
    assert datetime(2026, 3, 9, 14, tzinfo=UTC) not in hours
    assert len(hours) == 19  # 21 known hours of the page, less the two set aside
    assert result.intervals["value"].max() < 1


async def test_tibber_counts_and_audits_the_rows_it_set_aside(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    result = await fetch_tibber(session, aioclient_mock)
    assert result.rejected == 2
    assert [(a.supplier, a.rows, a.error) for a in rejected_rows(result)] == [
        ("tibber", 2, "boolean_value: 1; implausible_value: 1")
    ]


# ------------------------------------------------------------------------------ demo


def test_demo_counts_and_audits_the_rows_it_set_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    shaped = demo.electricity_kwh

    def with_a_fault(starts: pd.DatetimeIndex) -> np.ndarray:
        values = np.array(shaped(starts), dtype=np.float64)
        values[0] = 1e12
        return values

    monkeypatch.setattr(demo, "electricity_kwh", with_a_fault)
    source = demo.DemoSource(inline, now=lambda: WHEN)
    start = datetime(2026, 11, 19, tzinfo=UTC)
    result = asyncio.run(source.async_fetch(demo.METERS[0], start, start + timedelta(hours=2)))
    assert starts(result.intervals)[0] == start + timedelta(minutes=30)
    assert result.rejected == 1
    assert [(a.supplier, a.rows, a.error) for a in rejected_rows(result)] == [
        ("demo", 1, "implausible_value: 1")
    ]
