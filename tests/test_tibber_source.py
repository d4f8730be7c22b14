"""Tibber source against payloads of the API's real shapes (no network, no Home Assistant)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
import copy
from datetime import UTC, datetime, timedelta
from itertools import pairwise
import json
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from yarl import URL

from custom_components.meterlake.analytics import tariffs
from custom_components.meterlake.sources import tibber, tibber_api
from custom_components.meterlake.sources.base import (
    MeterInfo,
    SourceAuthError,
    SourceContext,
    SourceError,
    SourceNotFoundError,
    SourcePayloadError,
    SourceRequestError,
    SourceUnavailableError,
)
from custom_components.meterlake.sources.tibber import (
    LIMITER,
    RateLimiter,
    TibberAccount,
    TibberHome,
    TibberSource,
    async_read_account,
    create_source,
    home_config,
    meter_infos,
    meter_key,
)

from .conftest import load_fixture_json

API = "https://api.tibber.com/v1-beta/gql"
TOKEN = "tibTOKEN-5K4MVS-OjfWhK-secret-0123456789"
HOME_A = "96a14971-525a-4420-aae9-e5aedaa129ff"
HOME_B = "68e6938b-91a6-4199-a0d4-f24c22be87bb"
KEY_A = "tibber_96a14971525a4420aae9e5aedaa129ff"
KEY_B = "tibber_68e6938b91a64199a0d4f24c22be87bb"
PROD_A = f"{KEY_A}_production"

NOW = datetime(2026, 3, 10, 10, 20, tzinfo=UTC)  # 11:20 in Oslo
H0 = datetime(2026, 3, 7, 11, tzinfo=UTC)  # the oldest hour of the fixtures (page 3)
HOMES = [
    {
        "id": HOME_A,
        "name": "Villa",
        "time_zone": "Europe/Oslo",
        "currency": "NOK",
        "production": True,
    },
    {
        "id": HOME_B,
        "name": "Kungsgatan 1",
        "time_zone": "Europe/Stockholm",
        "currency": "SEK",
        "production": False,
    },
]

FIRST_PAGE = "consumption(resolution: HOURLY, last: 744) {"
PRICES = "priceInfo(resolution: QUARTER_HOURLY)"


def fx(name: str) -> Any:
    return load_fixture_json(f"tibber/{name}.json")


def cursor_of(page: str) -> str:
    info = fx(page)["data"]["viewer"]["home"]
    series = "production" if "production" in info else "consumption"
    return str(info[series]["pageInfo"]["startCursor"])


def before(page: str) -> str:
    """The query text asking for the page before `page`."""
    return f"before: {json.dumps(cursor_of(page))}"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hour(h: int) -> datetime:
    return H0 + timedelta(hours=h)


def value_of(h: int) -> float:
    """The fixtures' consumption of hour h (see tests/fixtures/tibber)."""
    return round(0.4 + (h % 6) * 0.1, 3)


def price_of(h: int) -> float:
    return 1.0 + (h % 4) * 0.25


class Clock:
    """A settable now()."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeTime:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def no_sleep(_: float) -> None:
    return None


async def inline(target: Callable[..., Any], *args: Any) -> Any:
    return target(*args)


class Tibber:
    """One mocked GraphQL endpoint answering by what the query text contains.

    Routes are tried in the order they were added; each answers with its responses in turn
    (the last one repeats).
    """

    def __init__(self, mock: AiohttpClientMocker) -> None:
        self.mock = mock
        self.queries: list[str] = []
        self.routes: list[tuple[str, list[dict[str, Any]]]] = []
        mock.post(API, side_effect=self._answer)

    def on(self, contains: str, *responses: dict[str, Any]) -> None:
        self.routes.append((contains, list(responses)))

    def history(self, *pages: str) -> None:
        """Consumption pages: the first one newest (no cursor), each next one before it."""
        for previous, page in pairwise(pages):
            self.on(before(previous), {"json": fx(page)})
        self.on(FIRST_PAGE, {"json": fx(pages[0])})

    def count(self, contains: str) -> int:
        return sum(contains in query for query in self.queries)

    async def _answer(self, method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        query = data["query"]
        self.queries.append(query)
        for contains, responses in self.routes:
            if contains in query:
                spec = responses.pop(0) if len(responses) > 1 else responses[0]
                return AiohttpClientMockResponse(method, url, **spec)
        raise AssertionError(f"unexpected query {query}")


@pytest.fixture(autouse=True)
def _fresh_limiter() -> Any:
    """The process-wide limiter starts empty in every test."""
    LIMITER.clear()
    yield
    LIMITER.clear()


@pytest.fixture
async def session(aioclient_mock: AiohttpClientMocker) -> AsyncGenerator[aiohttp.ClientSession]:
    client = aioclient_mock.create_session(asyncio.get_running_loop())
    yield client
    await client.close()


@pytest.fixture
def api(aioclient_mock: AiohttpClientMocker) -> Tibber:
    return Tibber(aioclient_mock)


def make_source(session: aiohttp.ClientSession, **kwargs: Any) -> TibberSource:
    kwargs.setdefault("now", Clock(NOW))
    kwargs.setdefault("sleep", no_sleep)
    kwargs.setdefault("limiter", RateLimiter())
    return TibberSource(session, token=TOKEN, homes=HOMES, executor=inline, **kwargs)


def meter(source: TibberSource, key: str) -> MeterInfo:
    return next(m for m in source.meters if m.key == key)


def no_token(*things: Any) -> bool:
    return all(TOKEN not in repr(thing) for thing in things)


# ------------------------------------------------------------------------------ entry data


def test_home_config_and_meters() -> None:
    home = TibberHome(HOME_A, "Villa", "Europe/Oslo", "NOK", production=True)
    assert home_config(home) == HOMES[0]
    assert meter_key(HOME_A) == KEY_A
    meters = meter_infos(HOMES)
    assert [m.key for m in meters] == [KEY_A, PROD_A, KEY_B]
    imp, prod, other = meters
    assert (imp.supplier, imp.kind, imp.unit, imp.name) == ("tibber", "electricity", "kWh", "Villa")
    assert (imp.currency, imp.time_zone, imp.cadence_minutes) == ("NOK", "Europe/Oslo", 60)
    assert imp.has_standing_charge is False and imp.is_export is False
    assert imp.extra == {"home_id": HOME_A}
    assert (prod.name, prod.is_export, prod.unit) == ("Villa production", True, "kWh")
    assert prod.extra == {"home_id": HOME_A, "production": True}
    assert (other.name, other.currency, other.time_zone) == (
        "Kungsgatan 1",
        "SEK",
        "Europe/Stockholm",
    )
    bare = meter_infos([{"id": "ABC-1"}])
    assert [(m.key, m.name, m.currency, m.time_zone) for m in bare] == [
        ("tibber_abc1", "ABC-1", None, "UTC")
    ]
    with pytest.raises(ValueError, match="letters or digits"):
        meter_key("--")


def test_create_source_from_entry(session: aiohttp.ClientSession) -> None:
    context = SourceContext(
        session=session,
        executor=inline,
        data={"source": "tibber", "access_token": TOKEN, "homes": HOMES},
        options={"keep_raw_days": 7, "backfill_days": 30},
    )
    source = create_source(context)
    assert [m.key for m in source.meters] == [KEY_A, PROD_A, KEY_B]
    assert source.supplier == "tibber"
    assert source.update_interval == timedelta(minutes=15)
    assert source.capabilities.overlap == timedelta(days=2)
    assert source.capabilities.spot_prices and source.capabilities.aligned_minutes is None
    assert source._keep_raw is True
    # Every source of the process shares one limiter (Tibber limits per IP).
    assert source._limiter is LIMITER and create_source(context)._limiter is LIMITER
    assert (LIMITER.max_requests, LIMITER.window) == (40, 300.0)
    assert create_source(SourceContext(session, inline, context.data, {}))._keep_raw is False
    assert abs(source._now() - datetime.now(UTC)) < timedelta(minutes=1)


# ------------------------------------------------------------------------------ account


async def test_read_account(
    session: aiohttp.ClientSession, api: Tibber, aioclient_mock: AiohttpClientMocker
) -> None:
    api.on("userId", {"json": fx("homes")})
    account = await async_read_account(session, TOKEN)
    assert account == TibberAccount(
        user_id="d2c3a7e1-5b0f-4f8e-9c61-3f1e2b7a9c10",
        name="Kari Nordmann",
        homes=(
            TibberHome(HOME_A, "Villa", "Europe/Oslo", "NOK", production=True),
            TibberHome(HOME_B, "Kungsgatan 1", "Europe/Stockholm", "SEK", production=False),
        ),
    )
    (query,) = api.queries
    assert "production(resolution: DAILY, last: 30) { nodes { production } }" in query
    assert "currentSubscription { status priceInfo { current { currency } } }" in query
    _method, url, _body, headers = aioclient_mock.mock_calls[-1]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(url)
    # The shared limiter counted the request.
    assert LIMITER.in_window == 1


async def test_read_account_without_homes(session: aiohttp.ClientSession, api: Tibber) -> None:
    api.on("userId", {"json": fx("no_homes")})
    account = await async_read_account(session, TOKEN)
    assert account.homes == () and account.name == "Ola Nordmann"


async def test_read_account_skips_junk_homes(session: aiohttp.ClientSession, api: Tibber) -> None:
    body = fx("homes")
    viewer = body["data"]["viewer"]
    viewer["name"] = "  "
    bare_id = "c0ffee00-0000-4000-8000-000000000001"
    bare = {"id": bare_id, "appNickname": " ", "timeZone": None, "address": None}
    bare |= {"currentSubscription": None, "production": None}
    viewer["homes"] = [None, {"appNickname": "no id"}, bare, *viewer["homes"][1:]]
    api.on("userId", {"json": body})
    account = await async_read_account(session, TOKEN)
    assert account.name is None
    assert account.homes == (
        TibberHome(bare_id, bare_id, "UTC", None, production=False),
        TibberHome(HOME_B, "Kungsgatan 1", "Europe/Stockholm", "SEK", production=False),
    )
    viewer["homes"] = None
    assert (await async_read_account(session, TOKEN)).homes == ()


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        ({"status": 401}, SourceAuthError, "HTTP 401"),
        ({"status": 403}, SourceAuthError, "HTTP 403"),
        ({"json": fx("error_invalid_token")}, SourceAuthError, "invalid token"),
        ({"status": 400, "json": fx("error_invalid_token")}, SourceAuthError, "refused"),
        ({"status": 400, "json": fx("error_other")}, SourceRequestError, "HTTP 400"),
        # INTERNAL_SERVER_ERROR is transient: retried, then the API counts as unavailable.
        ({"json": fx("error_other")}, SourceUnavailableError, "4 attempts.*Could not find a home"),
        ({"json": fx("error_validation")}, SourcePayloadError, "Cannot query field"),
        ({"status": 500}, SourceUnavailableError, "4 attempts"),
        ({"text": "<html>maintenance"}, SourcePayloadError, "malformed JSON"),
        ({"json": [1, 2]}, SourcePayloadError, "no JSON object"),
        ({"json": {"data": None}}, SourcePayloadError, "no data"),
        ({"json": {"data": {"viewer": None}}}, SourcePayloadError, "no viewer"),
        ({"json": {"data": {"viewer": {"homes": []}}}}, SourcePayloadError, "no user id"),
        ({"json": {"data": {"viewer": {"userId": "u", "homes": {}}}}}, SourcePayloadError, "home"),
    ],
)
async def test_read_account_errors(
    session: aiohttp.ClientSession,
    api: Tibber,
    response: dict[str, Any],
    error: type[Exception],
    text: str,
) -> None:
    api.on("userId", response)
    with pytest.raises(error, match=text) as caught:
        await async_read_account(session, TOKEN, sleep=no_sleep)
    assert isinstance(caught.value, SourceError)
    assert caught.value.audit and all(a.endpoint == "homes" for a in caught.value.audit)
    assert no_token(caught.value, caught.value.audit)


async def test_graphql_error_text_is_scrubbed(session: aiohttp.ClientSession, api: Tibber) -> None:
    api.on(
        "userId",
        {"json": {"errors": [{"message": f"bad request for {TOKEN}"}, "odd entry"], "data": None}},
    )
    with pytest.raises(SourcePayloadError) as caught:
        await async_read_account(session, TOKEN)
    assert "bad request for ***; odd entry" in str(caught.value)
    (row,) = caught.value.audit
    assert row.status == 200 and row.error is not None and "***" in row.error
    assert no_token(caught.value, row)


async def test_429_then_success_honours_retry_after(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.on("userId", {"status": 429, "headers": {"Retry-After": "7"}}, {"json": fx("homes")})
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter()
    account = await async_read_account(session, TOKEN, sleep=sleep, limiter=limiter)
    assert len(account.homes) == 2
    assert slept == [7.0]
    # The retry is a request too: both went through the limiter.
    assert limiter.in_window == 2 and LIMITER.in_window == 0


# ------------------------------------------------------------------------------ rate limiter


async def test_rate_limiter_waits_for_the_oldest_request() -> None:
    fake = FakeTime()
    limiter = RateLimiter(3, 300.0, clock=fake.clock, sleep=fake.sleep)
    for at in (0.0, 10.0, 20.0):
        fake.now = at
        assert await limiter.acquire() == 0.0
    fake.now = 30.0
    # Full: wait until the request of t=0 leaves the window (t=300).
    assert await limiter.acquire() == 270.0
    assert fake.slept == [270.0] and fake.now == 300.0
    assert limiter.in_window == 3  # t=10, t=20, t=300
    fake.now = 320.0  # t=10 and t=20 have left
    assert limiter.in_window == 1
    limiter.clear()
    assert limiter.in_window == 0


async def test_source_requests_wait_for_the_limiter(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.history("consumption_p1", "consumption_p2")
    api.on(PRICES, {"json": fx("prices")})
    fake = FakeTime()
    source = make_source(session, limiter=RateLimiter(2, 300.0, clock=fake.clock, sleep=fake.sleep))
    await source.async_fetch(meter(source, KEY_A), t("2026-03-08 23:00"), NOW)
    # Three requests (two pages, prices) with room for two: the third waited the window out.
    assert len(api.queries) == 3
    assert fake.slept == [300.0]


# ------------------------------------------------------------------------------ history


async def test_history_pages_values_costs_and_prices(
    session: aiohttp.ClientSession, api: Tibber, aioclient_mock: AiohttpClientMocker
) -> None:
    api.history("consumption_p1", "consumption_p2", "consumption_p3")
    api.on(PRICES, {"json": fx("prices")})
    source = make_source(session)
    start = t("2026-03-08 23:00")  # hour 36, inside page 2
    result = await source.async_fetch(meter(source, KEY_A), start, NOW)

    # Page 1 (no cursor), then page 2 before page 1's startCursor; page 2 reaches the start,
    # so page 3 is never asked for.
    assert api.queries[0].count("before") == 0 and FIRST_PAGE in api.queries[0]
    assert before("consumption_p1") in api.queries[1]
    assert api.count(before("consumption_p2")) == 0
    assert f'home(id: "{HOME_A}")' in api.queries[0]
    assert (
        "nodes { from to consumption consumptionUnit cost totalCost unitPrice unitPriceVAT "
        "currency }" in (api.queries[0])
    )
    assert PRICES in api.queries[2] and len(api.queries) == 3
    for call in aioclient_mock.mock_calls:
        assert call[3]["Authorization"] == f"Bearer {TOKEN}"

    frame = result.intervals
    # Hours 36..68: 33 rows. Hours 69..71 (null consumption, not yet known) are not stored.
    hours = list(range(36, 69))
    assert [s.to_pydatetime() for s in frame["start"]] == [hour(h) for h in hours]
    assert (frame["end"] - frame["start"] == pd.Timedelta(hours=1)).all()
    assert frame["value"].tolist() == pytest.approx([value_of(h) for h in hours])
    assert frame["energy_kwh"].tolist() == pytest.approx(frame["value"].tolist())
    rates = frame["rate"].tolist()
    assert rates[:-1] == pytest.approx([price_of(h) for h in hours[:-1]])
    assert pd.isna(rates[-1])  # hour 68: unitPrice null
    costs = frame["cost"].tolist()
    assert costs[:-1] == pytest.approx([value_of(h) * price_of(h) for h in hours[:-1]])
    # Hour 67: cost null in the payload, value x unitPrice instead; hour 68: unknown.
    assert costs[-2] == pytest.approx(0.5 * 1.75) and pd.isna(costs[-1])
    assert frame["cost"].sum() == pytest.approx(28.15)
    assert set(frame["meter"]) == {KEY_A} and set(frame["supplier"]) == {"tibber"}
    assert set(frame["currency"]) == {"NOK"} and set(frame["quality"]) == {"measured"}
    assert set(frame["unit"]) == {"kWh"} and frame["serial"].isna().all()
    assert str(frame["start"].dtype) == "datetime64[ns, UTC]"
    assert result.complete_until == hour(69)  # end of hour 68, the newest known hour
    assert (result.rejected, result.unrated) == (0, 1)

    # Prices: 192 quarter-hours, and the one agreement that makes them the meter's rates.
    assert result.rates is not None and result.agreements is not None
    assert len(result.rates) == 192
    assert set(result.rates["tariff"]) == {KEY_A} and set(result.rates["register"]) == {"standard"}
    assert result.rates["rate_exc_vat"].isna().all()
    assert result.rates["payment_method"].isna().all()
    assert result.agreements.to_dict("records") == [
        {
            "meter": KEY_A,
            "tariff": KEY_A,
            "valid_from": pd.Timestamp("2000-01-01", tz="UTC"),
            "valid_to": pd.NaT,
        }
    ]
    assert tariffs.rate_at(result.rates, result.agreements, KEY_A, NOW) == pytest.approx(0.95)
    upcoming = tariffs.next_rate_change(
        result.rates, result.agreements, KEY_A, NOW, step=timedelta(minutes=15)
    )
    assert upcoming is not None and upcoming[0] == t("2026-03-10 10:30")
    assert upcoming[1] == pytest.approx(0.96)

    # Audit: one row per request (rows = nodes or slots), one per poll; no token anywhere.
    assert [(a.endpoint, a.status, a.rows) for a in result.audit] == [
        ("consumption", 200, 24),
        ("consumption", 200, 24),
        ("price-info", 200, 192),
        ("consumption-poll", None, 33),
    ]
    assert result.audit[-1].error is None
    assert result.raw == []
    assert no_token(result.audit)


async def test_raw_payloads_when_kept(session: aiohttp.ClientSession, api: Tibber) -> None:
    api.history("consumption_p1")
    api.on(PRICES, {"json": fx("prices")})
    source = make_source(session, keep_raw=True)
    result = await source.async_fetch(meter(source, KEY_A), t("2026-03-10 00:00"), NOW)
    assert [name for name, _ in result.raw] == ["consumption", "price-info"]
    assert result.raw[0][1] == fx("consumption_p1")
    assert no_token(result.raw)


async def test_cached_cursor_shortens_an_older_window(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.history("consumption_p1", "consumption_p2", "consumption_p3")
    api.on(PRICES, {"json": fx("prices")})
    backfill = (hour(0), hour(24))  # exactly page 3

    # A fresh source pages from now: three history requests.
    fresh = make_source(session)
    result = await fresh.async_fetch(meter(fresh, KEY_A), *backfill)
    assert len(result.intervals) == 24
    assert api.count("consumption(") == 3
    assert result.complete_until == hour(24)

    # After the regular poll has seen pages 1 and 2, the same window starts from page 2's
    # cursor (the nearest at or after its end): one request.
    api.queries.clear()
    source = make_source(session)
    await source.async_fetch(meter(source, KEY_A), t("2026-03-08 23:00"), NOW)
    assert api.count("consumption(") == 2
    api.queries.clear()
    result = await source.async_fetch(meter(source, KEY_A), *backfill)
    assert api.queries == [api.queries[0]] and before("consumption_p2") in api.queries[0]
    assert [s.to_pydatetime() for s in result.intervals["start"]] == [hour(h) for h in range(24)]
    assert result.intervals["value"].tolist() == pytest.approx([value_of(h) for h in range(24)])

    # A window ending at page 1's oldest hour starts from page 1's cursor.
    api.queries.clear()
    await source.async_fetch(meter(source, KEY_A), hour(30), hour(48))
    assert len(api.queries) == 1 and before("consumption_p1") in api.queries[0]


async def test_recent_window_is_read_at_most_hourly(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.history("consumption_p1", "consumption_p2", "consumption_p3")
    api.on(PRICES, {"json": fx("prices")})
    clock = Clock(NOW)
    source = make_source(session, now=clock)
    imp = meter(source, KEY_A)
    start = t("2026-03-08 23:00")
    await source.async_fetch(imp, start, NOW)
    assert api.count("consumption(") == 2

    # 15 minutes later, the same or a later start: no history request, nothing to store.
    clock.now = NOW + timedelta(minutes=15)
    result = await source.async_fetch(imp, start + timedelta(hours=1), clock.now)
    assert api.count("consumption(") == 2
    assert result.intervals.empty and result.complete_until is None
    assert list(result.intervals.columns)[:4] == ["meter", "serial", "supplier", "kind"]
    poll = result.audit[-1]
    assert poll.endpoint == "consumption-poll" and poll.error is not None
    assert poll.error.startswith("throttled")
    # The price frames still come (from the cache, no request: tomorrow is known).
    assert result.rates is not None and len(result.rates) == 192
    assert api.count(PRICES) == 1

    # A backfill window (ending long ago) always goes out, and does not reset the throttle.
    result = await source.async_fetch(imp, hour(0), hour(24))
    assert len(result.intervals) == 24 and api.count("consumption(") == 3
    # So does a window that starts before the one read.
    result = await source.async_fetch(imp, start - timedelta(hours=1), clock.now)
    assert api.count("consumption(") == 5 and len(result.intervals) == 34

    # That read counts from now on: 59 minutes later still throttled, 60 minutes later not.
    clock.now = NOW + timedelta(minutes=15 + 59)
    result = await source.async_fetch(imp, start, clock.now)
    assert api.count("consumption(") == 5 and result.complete_until is None
    clock.now = NOW + timedelta(minutes=15 + 60)
    result = await source.async_fetch(imp, start, clock.now)
    assert api.count("consumption(") == 7 and result.complete_until == hour(69)


async def test_production_meter(session: aiohttp.ClientSession, api: Tibber) -> None:
    api.on("production(resolution: HOURLY, last: 744) {", {"json": fx("production_p1")})
    source = make_source(session)
    prod = meter(source, PROD_A)
    result = await source.async_fetch(prod, t("2026-03-09 11:00"), NOW)
    (query,) = api.queries
    assert "nodes { from to production productionUnit profit unitPrice unitPriceVAT currency }" in (
        query
    )
    frame = result.intervals
    # Hours 48..69 known (22 rows), 70 and 71 not yet. Sun from 08 to 18 local time.
    assert len(frame) == 22 and set(frame["meter"]) == {PROD_A}
    assert result.complete_until == hour(70)
    by_start = frame.set_index("start")
    noon = pd.Timestamp("2026-03-09 12:00", tz="UTC")  # 13:00 in Oslo: the peak, 3 kWh
    assert by_start.loc[noon, "value"] == pytest.approx(3.0)
    assert by_start.loc[noon, "cost"] == pytest.approx(2.4)  # Tibber's profit
    assert by_start.loc[noon, "rate"] == pytest.approx(0.8)
    # 2.5 + 3 + 2.5 + 2 + 1.5 + 1 + 0.5 on the 9th (12..18 h), 0.5 + 1 on the 10th (8, 9 h)
    assert frame["value"].sum() == pytest.approx(14.5)
    assert frame["cost"].sum() == pytest.approx(14.5 * 0.8)
    # No prices for a production meter.
    assert result.rates is None and result.agreements is None
    assert source.price_slots(prod) == ()
    assert [a.endpoint for a in result.audit] == ["production", "production-poll"]


# ------------------------------------------------------------------------------ prices


async def test_price_refresh_schedule(session: aiohttp.ClientSession, api: Tibber) -> None:
    api.history("consumption_p1")
    api.on(
        PRICES,
        *[{"json": fx("prices_no_tomorrow")}] * 5,
        {"json": fx("prices")},
    )
    clock = Clock(NOW)
    source = make_source(session, now=clock)
    imp = meter(source, KEY_A)
    asked: list[datetime] = []

    async def poll(at: datetime) -> None:
        clock.now = at
        before_count = api.count(PRICES)
        await source.async_fetch(imp, t("2026-03-10 00:00"), at)
        if api.count(PRICES) > before_count:
            asked.append(at)

    assert source.price_slots(imp) == ()
    # Nothing cached: asked at once. 11:20 local, before 12:45: tomorrow is not expected yet.
    for minutes in range(0, 85, 5):
        await poll(NOW + timedelta(minutes=minutes))
    assert asked == [NOW]
    slots = source.price_slots(imp)
    assert len(slots) == 96 and slots[0].start == t("2026-03-09 23:00")
    assert (slots[0].end, slots[0].total, slots[0].level) == (
        t("2026-03-09 23:15"),
        0.5,
        "very_cheap",
    )
    assert slots[0].currency == "NOK"

    # From 12:45 local, every 15 minutes until tomorrow is out (the 6th answer has it): at
    # most 4 requests in any hour.
    asked.clear()
    for minutes in range(85, 200, 5):
        await poll(NOW + timedelta(minutes=minutes))
    assert asked == [NOW + timedelta(minutes=m) for m in (85, 100, 115, 130, 145)]
    assert len(source.price_slots(imp)) == 192

    # Tomorrow known: no more requests today, nor after midnight (the cache covers it) ...
    asked.clear()
    for at in (t("2026-03-10 20:00"), t("2026-03-10 23:30"), t("2026-03-11 10:00")):
        await poll(at)
    assert asked == []
    # ... until 12:45 on the next day, when the day after is due.
    await poll(t("2026-03-11 11:45"))
    assert asked == [t("2026-03-11 11:45")]
    # A cache that does not cover now (Tibber still answers with the 10th and 11th) is
    # refreshed on each poll, but never twice within 15 minutes.
    for at in ("09:00", "09:05", "09:10", "09:15", "09:20", "09:30"):
        await poll(t(f"2026-03-12 {at}"))
    assert asked[-3:] == [t("2026-03-12 09:00"), t("2026-03-12 09:15"), t("2026-03-12 09:30")]
    # Home B was never polled.
    assert source.price_slots(meter(source, KEY_B)) == ()


@pytest.mark.parametrize(
    ("name", "case"),
    [
        # today 2026-03-28 (96), tomorrow 2026-03-29: 23 hours, 92 quarter-hours
        ("prices_dst_spring", (t("2026-03-28 10:00"), "2026-03-29", 92, 96 + 92)),
        # today 2026-10-25: 25 hours, 100 quarter-hours; tomorrow 96
        ("prices_dst_autumn", (t("2026-10-25 10:00"), "2026-10-25", 100, 100 + 96)),
    ],
)
async def test_price_slots_on_dst_days(
    session: aiohttp.ClientSession, api: Tibber, name: str, case: tuple[datetime, str, int, int]
) -> None:
    now, day, in_day, count = case
    api.on(PRICES, {"json": fx(name)})
    api.history("consumption_p1")
    source = make_source(session, now=Clock(now))
    imp = meter(source, KEY_A)
    result = await source.async_fetch(imp, now - timedelta(hours=1), now)
    slots = source.price_slots(imp)
    assert len(slots) == count
    # Every slot is a quarter of an hour of real time and ends where the next starts.
    assert all(s.end - s.start == timedelta(minutes=15) for s in slots)
    assert all(a.end == b.start for a, b in pairwise(slots))
    oslo = ZoneInfo("Europe/Oslo")
    assert sum(s.start.astimezone(oslo).date().isoformat() == day for s in slots) == in_day
    assert result.rates is not None and len(result.rates) == count
    assert result.intervals.empty  # the history page holds nothing of that hour


async def test_price_failure_keeps_a_cache_that_covers_now(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.history("consumption_p1")
    api.on(PRICES, {"json": fx("prices_no_tomorrow")}, {"status": 503})
    clock = Clock(NOW)
    source = make_source(session, now=clock)
    imp = meter(source, KEY_A)
    await source.async_fetch(imp, t("2026-03-10 00:00"), NOW)
    # 12:50 local: tomorrow is due, the request fails, today's prices stay.
    clock.now = t("2026-03-10 11:50")
    result = await source.async_fetch(imp, t("2026-03-10 00:00"), clock.now)
    assert api.count(PRICES) == 1 + 4
    assert len(source.price_slots(imp)) == 96
    assert result.rates is not None and len(result.rates) == 96
    poll = result.audit[-1]
    assert poll.error is not None and "prices kept" in poll.error

    # Once the cache no longer covers now, a failed refresh fails the poll, keeping the rows.
    clock.now = t("2026-03-11 08:00")
    with pytest.raises(SourceUnavailableError) as caught:
        await source.async_fetch(imp, t("2026-03-10 00:00"), clock.now)
    partial = caught.value.partial
    assert partial is not None and len(partial.intervals) == 8  # hours 61..68 of the 10th
    assert partial.complete_until == hour(69)  # the history itself was read completely
    assert caught.value.audit == partial.audit
    assert partial.audit[-1].error == "prices unavailable"
    assert no_token(caught.value, partial.audit)


async def test_home_without_subscription_has_no_prices(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.history("consumption_p1")
    api.on(PRICES, {"json": {"data": {"viewer": {"home": {"currentSubscription": None}}}}})
    source = make_source(session)
    result = await source.async_fetch(meter(source, KEY_A), t("2026-03-10 00:00"), NOW)
    assert source.price_slots(meter(source, KEY_A)) == ()
    assert result.rates is None and result.agreements is None
    assert result.audit[-2].rows == 0


@pytest.mark.parametrize(
    ("info", "error"),
    [
        ({"today": {"total": 1}}, "malformed today"),
        ("not a mapping", "malformed priceInfo"),
    ],
)
async def test_malformed_price_info(
    session: aiohttp.ClientSession, api: Tibber, info: Any, error: str
) -> None:
    api.history("consumption_p1")
    api.on(
        PRICES,
        {"json": {"data": {"viewer": {"home": {"currentSubscription": {"priceInfo": info}}}}}},
    )
    source = make_source(session)
    with pytest.raises(SourceUnavailableError, match=error) as caught:
        await source.async_fetch(meter(source, KEY_A), t("2026-03-10 00:00"), NOW)
    assert [a.endpoint for a in caught.value.audit][-1] == "consumption-poll"
    # A bad price answer does not cost the history already read: it comes back as partial.
    partial = caught.value.partial
    assert partial is not None
    assert len(partial.intervals) == 8  # 00:00 to 07:00 UTC; 08:00 on are null
    assert partial.complete_until == t("2026-03-10 08:00")


async def test_price_nodes_are_checked(session: aiohttp.ClientSession, api: Tibber) -> None:
    body = fx("prices")
    info = body["data"]["viewer"]["home"]["currentSubscription"]["priceInfo"]
    info["current"] = None
    info["today"][0] = None
    info["today"][1]["total"] = None
    info["today"][2]["startsAt"] = "yesterday"
    info["today"][3]["level"] = None
    info["today"][4]["startsAt"] = None
    info["today"][5]["startsAt"] = "2026-03-10T01:15:00.000"  # no offset: not trusted
    info["tomorrow"] = None
    api.history("consumption_p1")
    api.on(PRICES, {"json": body})
    source = make_source(session)
    imp = meter(source, KEY_A)
    await source.async_fetch(imp, t("2026-03-10 00:00"), NOW)
    slots = source.price_slots(imp)
    assert len(slots) == 91
    assert slots[0].level is None and slots[0].start == t("2026-03-09 23:45")
    # The slot before a gap ends after one step, not where the next slot starts.
    assert (slots[0].end, slots[1].start) == (t("2026-03-10 00:00"), t("2026-03-10 00:30"))
    assert slots[0].currency == "NOK"  # the home's currency when `current` is missing


# ------------------------------------------------------------------------------ failures


async def test_failure_after_a_page_keeps_it(session: aiohttp.ClientSession, api: Tibber) -> None:
    api.on(before("consumption_p1"), {"status": 503})
    api.on(FIRST_PAGE, {"json": fx("consumption_p1")})
    api.on(PRICES, {"json": fx("prices")})
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    source = make_source(session, sleep=sleep)
    imp = meter(source, KEY_A)
    with pytest.raises(SourceUnavailableError) as caught:
        await source.async_fetch(imp, t("2026-03-08 23:00"), NOW)
    error = caught.value
    assert api.count(before("consumption_p1")) == 4 and len(slept) == 3
    # The prices are their own request: the history outage does not leave them stale.
    assert api.count(PRICES) == 1
    assert len(source.price_slots(imp)) == 192
    partial = error.partial
    assert partial is not None
    # Page 1's known hours (48..68) are kept; the watermark may not move past the gap.
    assert len(partial.intervals) == 21 and partial.complete_until is None
    assert [a.status for a in error.audit] == [200, 503, 503, 503, 503, 200, None]
    assert partial.audit[-1].error == "consumption read incomplete"
    assert no_token(error, error.audit)

    # Nothing was throttled by the failed poll: the next one reads again.
    api.routes[0] = (before("consumption_p1"), [{"json": fx("consumption_p2")}])
    result = await source.async_fetch(meter(source, KEY_A), t("2026-03-08 23:00"), NOW)
    assert len(result.intervals) == 33


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        ({"json": fx("error_invalid_token")}, SourceAuthError, "invalid token"),
        ({"status": 401}, SourceAuthError, "HTTP 401"),
        ({"json": fx("error_validation")}, SourcePayloadError, "Cannot query field"),
        ({"json": {"data": {"viewer": {"home": None}}}}, SourceNotFoundError, "not found"),
        ({"json": {"data": {"viewer": []}}}, SourcePayloadError, "no viewer"),
        ({"json": {"data": {"viewer": {"home": []}}}}, SourcePayloadError, "malformed home"),
        (
            {"json": {"data": {"viewer": {"home": {"consumption": 3}}}}},
            SourcePayloadError,
            "connection",
        ),
        (
            {"json": {"data": {"viewer": {"home": {"consumption": {"nodes": {}}}}}}},
            SourcePayloadError,
            "malformed nodes",
        ),
    ],
)
async def test_history_errors_carry_the_audit(
    session: aiohttp.ClientSession,
    api: Tibber,
    response: dict[str, Any],
    error: type[SourceError],
    text: str,
) -> None:
    api.on(FIRST_PAGE, response)
    api.on(PRICES, {"json": fx("prices")})
    source = make_source(session)
    imp = meter(source, KEY_A)
    with pytest.raises(error, match=text) as caught:
        await source.async_fetch(imp, t("2026-03-08 23:00"), NOW)
    audit = caught.value.audit
    if error is SourceAuthError:
        # A refused token stops the poll: the same token would be refused for the prices.
        assert [a.endpoint for a in audit] == ["consumption", "consumption-poll"]
        assert audit[-1].error == "SourceAuthError"
    else:
        # Refused for good: no retry; the prices are still read in the same poll.
        assert [a.endpoint for a in audit] == ["consumption", "price-info", "consumption-poll"]
        assert audit[-1].error == "consumption read incomplete"
        assert len(source.price_slots(imp)) == 192
    assert no_token(caught.value, audit)


async def test_odd_history_pages(session: aiohttp.ClientSession, api: Tibber) -> None:
    # A null connection: no rows. A page without pageInfo: the last page.
    api.on(FIRST_PAGE, {"json": {"data": {"viewer": {"home": {"consumption": None}}}}})
    source = make_source(session)
    imp = meter(source, KEY_A)
    api.on(PRICES, {"json": fx("prices")})
    result = await source.async_fetch(imp, t("2026-03-08 23:00"), NOW)
    assert result.intervals.empty and result.complete_until is None

    page = fx("consumption_p1")
    connection = page["data"]["viewer"]["home"]["consumption"]
    del connection["pageInfo"]
    connection["nodes"][0]["from"] = "not a time"  # rejected by normalize, and counted
    connection["nodes"][1]["currency"] = None  # the meter's currency
    connection["nodes"].append("junk")
    api.routes[0] = (FIRST_PAGE, [{"json": page}])
    source = make_source(session)
    result = await source.async_fetch(imp, t("2026-03-08 23:00"), NOW)
    assert len(api.queries) - 2 == 2  # one page, one price request
    assert result.rejected == 1 and len(result.intervals) == 20
    assert set(result.intervals["currency"]) == {"NOK"}

    # Only unknown values in the window: nothing stored, no watermark.
    api.routes[0] = (FIRST_PAGE, [{"json": fx("consumption_p1")}])
    source = make_source(session)
    result = await source.async_fetch(imp, hour(69), NOW)
    assert result.intervals.empty and result.complete_until is None and result.rejected == 0


async def test_paging_stops_when_the_server_repeats_a_page(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.on(before("consumption_p1"), {"json": fx("consumption_p1")})
    api.on(FIRST_PAGE, {"json": fx("consumption_p1")})
    api.on(PRICES, {"json": fx("prices")})
    source = make_source(session)
    result = await source.async_fetch(meter(source, KEY_A), hour(0), NOW)
    assert api.count("consumption(") == 2
    assert len(result.intervals) == 21


async def test_bad_calls(session: aiohttp.ClientSession, api: Tibber) -> None:
    source = make_source(session)
    imp = meter(source, KEY_A)
    result = await source.async_fetch(imp, NOW, NOW)
    assert result.intervals.empty and result.complete_until is None and api.queries == []
    with pytest.raises(ValueError, match="timezone-aware"):
        await source.async_fetch(imp, datetime(2026, 3, 9), datetime(2026, 3, 10))
    stranger = MeterInfo("octopus_gas_1", "octopus", "gas", "m³", "Gas")
    with pytest.raises(SourceError, match="not a Tibber meter"):
        await source.async_fetch(stranger, t("2026-03-09 00:00"), NOW)


async def test_unknown_time_zone_falls_back_to_utc(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    homes = copy.deepcopy(HOMES[:1])
    homes[0]["time_zone"] = "Mars/Olympus_Mons"
    api.history("consumption_p1")
    api.on(PRICES, {"json": fx("prices")})
    source = TibberSource(
        session, token=TOKEN, homes=homes, executor=inline, now=Clock(NOW), limiter=RateLimiter()
    )
    await source.async_fetch(meter(source, KEY_A), t("2026-03-10 00:00"), NOW)
    assert source._zones == {"Mars/Olympus_Mons": UTC}
    assert len(source.price_slots(meter(source, KEY_A))) == 192


def test_module_layout() -> None:
    # The GraphQL client lives in tibber_api; tibber re-exports what the HA layer calls.
    assert tibber.async_read_account is tibber_api.async_read_account
    assert tibber.LIMITER is tibber_api.LIMITER


@pytest.mark.parametrize("cached", [False, True])
async def test_a_refused_token_on_prices_is_an_auth_error(
    session: aiohttp.ClientSession, api: Tibber, cached: bool
) -> None:
    """Whatever the price cache holds, a refused token means reauth, not a price hiccup."""
    clock = Clock(NOW)
    source = make_source(session, now=clock)
    imp = meter(source, KEY_A)
    if cached:
        api.history("consumption_p1")
        api.on(PRICES, {"json": fx("prices_no_tomorrow")}, {"json": fx("error_invalid_token")})
        await source.async_fetch(imp, t("2026-03-10 00:00"), NOW)
        clock.now = NOW.replace(hour=12)  # 13:00 in Oslo: tomorrow's prices are due
    else:
        api.history("consumption_p1")
        api.on(PRICES, {"json": fx("error_invalid_token")})
    with pytest.raises(SourceAuthError):
        await source.async_fetch(imp, t("2026-03-10 00:00"), clock.now)


# ------------------------------------------------------------------------------ real payloads


async def test_hourly_nodes_without_to_end_an_hour_later(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    """Real consumption nodes: no `to`, `totalCost` instead of `cost`, one without `from`."""
    api.on(FIRST_PAGE, {"json": fx("consumption_no_to")})
    api.on(PRICES, {"json": fx("prices")})
    source = make_source(session)
    result = await source.async_fetch(meter(source, KEY_A), hour(0), NOW)

    page = fx("consumption_no_to")["data"]["viewer"]["home"]["consumption"]["nodes"]
    kept = [node for node in page if node["from"] is not None]
    frame = result.intervals
    assert [s.isoformat() for s in frame["start"]] == [
        datetime.fromisoformat(node["from"]).astimezone(UTC).isoformat() for node in kept
    ]
    assert (frame["end"] - frame["start"] == pd.Timedelta(hours=1)).all()
    assert frame["value"].tolist() == pytest.approx([node["consumption"] for node in kept])
    assert frame["cost"].tolist() == pytest.approx([node["totalCost"] for node in kept])
    assert result.complete_until == datetime.fromisoformat(kept[-1]["from"]) + timedelta(hours=1)


async def test_a_node_that_cannot_be_placed_is_rejected_with_its_reason(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.on(FIRST_PAGE, {"json": fx("consumption_no_to")})
    api.on(PRICES, {"json": fx("prices")})
    source = make_source(session)
    result = await source.async_fetch(meter(source, KEY_A), hour(0), NOW)
    assert result.rejected == 1
    (row,) = [a for a in result.audit if a.endpoint == "rejected"]
    assert (row.supplier, row.rows, row.error) == ("tibber", 1, "unparseable_time: 1")


async def test_a_transient_graphql_error_is_retried(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    """HTTP 200 with an INTERNAL_SERVER_ERROR: asked again after the policy's delay."""
    api.on(FIRST_PAGE, {"json": fx("error_timeout")}, {"json": fx("consumption_p1")})
    api.on(PRICES, {"json": fx("prices")})
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter()
    source = make_source(session, sleep=sleep, limiter=limiter)
    result = await source.async_fetch(meter(source, KEY_A), t("2026-03-10 00:00"), NOW)
    assert len(result.intervals) == 8
    assert len(slept) == 1 and 2.0 <= slept[0] <= 3.0
    assert [(a.endpoint, a.status) for a in result.audit] == [
        ("consumption", 200),
        ("consumption", 200),
        ("price-info", 200),
        ("consumption-poll", None),
    ]
    assert "timed out (INTERNAL_SERVER_ERROR)" in str(result.audit[0].error)
    assert result.audit[1].error is None and result.audit[-1].error is None
    # The retry waited for the rate limiter like any request.
    assert limiter.in_window == 3


async def test_transient_graphql_errors_stop_at_the_poll_budget_and_prices_still_come(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    """A home whose history keeps failing: 3 retries in the poll, then its prices anyway."""
    api.on(FIRST_PAGE, {"json": fx("error_timeout")})
    api.on(PRICES, {"json": fx("prices")})
    source = make_source(session)
    imp = meter(source, KEY_A)
    with pytest.raises(SourceUnavailableError, match="4 attempts") as caught:
        await source.async_fetch(imp, t("2026-03-10 00:00"), NOW)
    assert api.count(FIRST_PAGE) == 4 and api.count(PRICES) == 1
    assert len(source.price_slots(imp)) == 192
    partial = caught.value.partial
    assert partial is not None and partial.complete_until is None
    assert partial.rates is not None and len(partial.rates) == 192
    assert [a.endpoint for a in caught.value.audit] == [
        *["consumption"] * 4,
        "price-info",
        "consumption-poll",
    ]
    assert no_token(caught.value, caught.value.audit)


async def test_the_retry_budget_is_shared_by_the_requests_of_a_poll(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    """History spent the retries: a transient price error gets its one attempt, no more."""
    api.on(FIRST_PAGE, {"json": fx("error_timeout")})
    api.on(PRICES, {"json": fx("error_timeout")})
    source = make_source(session)
    with pytest.raises(SourceUnavailableError):
        await source.async_fetch(meter(source, KEY_A), t("2026-03-10 00:00"), NOW)
    assert api.count(FIRST_PAGE) == 4 and api.count(PRICES) == 1


async def test_a_graphql_error_that_is_not_transient_is_not_retried(
    session: aiohttp.ClientSession, api: Tibber
) -> None:
    api.on(FIRST_PAGE, {"json": fx("error_validation")})
    api.on(PRICES, {"json": fx("prices")})
    source = make_source(session)
    with pytest.raises(SourcePayloadError):
        await source.async_fetch(meter(source, KEY_A), t("2026-03-10 00:00"), NOW)
    assert api.count(FIRST_PAGE) == 1
