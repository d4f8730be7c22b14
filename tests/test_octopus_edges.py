"""Octopus edge cases: odd account shapes, missing meters, failing side requests, stale caches,
tariff overrides, product links, pagination and the rate-cache window (no network)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.sources.base import (
    HttpClient,
    SourceError,
    SourceNotFoundError,
    SourcePayloadError,
)
from custom_components.meterlake.sources.octopus import (
    OctopusPartialFetchError,
    OctopusSource,
    discover_meters,
    meter_from_config,
    meter_infos,
)
from custom_components.meterlake.sources.octopus_account import parse_time
from custom_components.meterlake.sources.octopus_tariffs import (
    PriceRow,
    RefreshSpan,
    TariffCache,
    async_resolve_via_product,
    iter_pages,
    parse_price,
    parse_tariff_code,
    refresh_range,
)

from .test_octopus_source import (
    ACCOUNT,
    AGILE,
    API,
    END,
    EXPORT,
    FIX,
    KEY,
    NEW,
    NOW,
    OLD,
    OUTGOING,
    START,
    Clock,
    calls_to,
    consumption_url,
    fx,
    make_source,
    meters_of,
    mock_account,
    mock_import,
    no_sleep,
    sequence,
    t,
    tariff_url,
)

IMPORT_POINT = "1012345678901"
EXPORT_POINT = "1098765432109"
OUTGOING_PRODUCT = "OUTGOING-FIX-12M-19-05-13"
EXPORT_NOW = datetime(2026, 6, 2, 9, tzinfo=UTC)
EXPORT_WINDOW = (t("2026-06-01 11:00"), t("2026-06-01 12:00"))
E7_NUMBER = "A-00FF00AA"
LEGACY_GAS = "octopus_gas_9876543210"
LEGACY_CODE = "G-1R-LEGACY-GAS-2019-G1"


def mock_outgoing(mock: AiohttpClientMocker) -> None:
    mock.get(
        tariff_url(OUTGOING_PRODUCT, OUTGOING, "standard-unit-rates"), json=fx("outgoing_standard")
    )
    mock.get(
        tariff_url(OUTGOING_PRODUCT, OUTGOING, "standing-charges"), json=fx("outgoing_standing")
    )


def mock_export_consumption(mock: AiohttpClientMocker) -> None:
    mock.get(consumption_url("electricity", EXPORT_POINT, NEW), json=fx("export_consumption"))


def client(hass: HomeAssistant) -> HttpClient:
    return HttpClient(async_get_clientsession(hass), "octopus", sleep=no_sleep)


def e7_source(hass: HomeAssistant, override: str | None) -> tuple[OctopusSource, Any]:
    """The legacy gas meter of the E7 account, with an optional tariff override."""
    discovered = discover_meters(fx("account_e7"), now=NOW)
    meters = meter_infos(
        discovered,
        selected={LEGACY_GAS},
        gas_units={LEGACY_GAS: "kWh"},
        tariff_overrides={LEGACY_GAS: override} if override else None,
    )
    source = OctopusSource(
        async_get_clientsession(hass),
        api_key=KEY,
        account_number=E7_NUMBER,
        meters=meters,
        executor=hass.async_add_executor_job,
        sleep=no_sleep,
        now=Clock(datetime(2026, 1, 16, 9, tzinfo=UTC)),
    )
    return source, meters[0]


# ================================================================================ account helpers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-29T00:00:00Z", datetime(2026, 3, 29, tzinfo=UTC)),
        ("2026-07-01T00:30:00+02:00", datetime(2026, 6, 30, 22, 30, tzinfo=UTC)),
        # naive: Europe/London, summer (BST) and winter (GMT)
        ("2026-07-01T00:00:00", datetime(2026, 6, 30, 23, 0, tzinfo=UTC)),
        ("2026-01-15T00:00:00", datetime(2026, 1, 15, 0, 0, tzinfo=UTC)),
        ("soon", None),
        ("2026-13-01T00:00:00Z", None),
        ("", None),
        (None, None),
        (1_774_742_400, None),
    ],
)
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_discovery_ignores_junk_and_merges_a_point_listed_twice() -> None:
    found = discover_meters(fx("edge_account_junk"), now=NOW)
    assert [m.key for m in found] == [
        "octopus_electricity_1200000000001",
        "octopus_electricity_1200000000002",
        "octopus_gas_5500000001",
    ]
    merged, bare, gas = found
    # Serials of both properties, in the account's order, each once; blank ones dropped.
    assert merged.serials == ("S1", "S2")
    assert merged.label == "Electricity import · MPAN 1200000000001 · serials S1, S2"
    assert bare.serials == ()
    assert bare.label == "Electricity import · MPAN 1200000000002 · no meter"
    # The SMETS1 serial alone would mean kWh; with the SMETS2 serial of the second listing
    # the default becomes m³.
    assert gas.serials == ("E6S01234567890", "G4P98765432101")
    assert gas.default_unit == "m³"


def test_meter_from_config_rejects_bad_data_and_names_nameless_meters() -> None:
    stored = {"kind": "electricity", "point": "1200000000001", "serials": ["S1"]}
    meter = meter_from_config(stored)
    assert meter.name == "Octopus electricity import …0001"
    assert meter.key == "octopus_electricity_1200000000001"
    export = meter_from_config(stored | {"is_export": True, "name": ""})
    assert export.name == "Octopus electricity export …0001"
    gas = meter_from_config({"kind": "gas", "point": "5500000001", "unit": "m3"})
    assert (gas.name, gas.unit, gas.serials) == ("Octopus gas …0001", "m³", ())
    with pytest.raises(ValueError, match="key does not match its point"):
        meter_from_config(stored | {"key": "octopus_electricity_9999999999999"})
    with pytest.raises(ValueError, match="serials are not a list of strings"):
        meter_from_config(stored | {"serials": "S1"})
    with pytest.raises(ValueError, match="serials are not a list of strings"):
        meter_from_config(stored | {"serials": ["S1", 2]})


# ================================================================================ tariff helpers


def test_parse_price_needs_a_start_and_a_number() -> None:
    base = {"valid_from": "2025-01-01T00:00:00Z", "valid_to": None, "value_inc_vat": 21.0}
    row = parse_price(base | {"value_exc_vat": 20.0, "payment_method": "DIRECT_DEBIT"}, "day")
    assert row == PriceRow("day", t("2025-01-01 00:00"), None, 0.21, 0.2, "DIRECT_DEBIT")
    # No (numeric) exc-VAT price: the inc-VAT one stands in; an empty method is no method.
    assert parse_price(base | {"value_exc_vat": "?", "payment_method": ""}, "standard") == PriceRow(
        "standard", t("2025-01-01 00:00"), None, 0.21, 0.21, None
    )
    assert parse_price(base | {"value_exc_vat": False}, "standard").exc_vat == 0.21  # type: ignore[union-attr]
    assert parse_price(base | {"valid_from": None}, "standard") is None
    assert parse_price(base | {"value_inc_vat": "21.0"}, "standard") is None
    assert parse_price(base | {"value_inc_vat": True}, "standard") is None


def _cache(
    covered: tuple[str, str], fetched: str, rates: list[tuple[str, str | None]]
) -> TariffCache:
    ref = parse_tariff_code(AGILE)
    assert ref is not None
    cache = TariffCache(ref, t(covered[0]), t(covered[1]), t(fetched))
    cache.merge(
        [
            PriceRow("standard", t(a), None if b is None else t(b), 0.2, 0.19, None)
            for a, b in rates
        ],
        [],
    )
    return cache


def test_refresh_range_reads_only_what_the_cache_lacks() -> None:
    now = t("2026-01-25 12:00")
    # Open-ended rate, read an hour ago: only coverage of the past decides.
    entry = _cache(
        ("2026-01-10 00:00", "2026-01-20 00:00"), "2026-01-25 11:00", [("2026-01-01 00:00", None)]
    )
    assert refresh_range(None, t("2026-01-05 00:00"), t("2026-01-06 00:00"), now) == (
        RefreshSpan(t("2026-01-05 00:00"), t("2026-01-06 00:00"), charges=True)
    )
    # history only: read up to where the cache starts
    assert refresh_range(entry, t("2026-01-05 00:00"), t("2026-01-15 00:00"), now) == (
        RefreshSpan(t("2026-01-05 00:00"), t("2026-01-10 00:00"), charges=True)
    )
    # past slots after the cache's end: from where the cache ends
    assert refresh_range(entry, t("2026-01-12 00:00"), t("2026-01-25 00:00"), now) == (
        RefreshSpan(t("2026-01-20 00:00"), t("2026-01-25 00:00"), charges=True)
    )
    # both sides: one read over the whole span
    assert refresh_range(entry, t("2026-01-05 00:00"), t("2026-01-25 00:00"), now) == (
        RefreshSpan(t("2026-01-05 00:00"), t("2026-01-25 00:00"), charges=True)
    )
    assert refresh_range(entry, t("2026-01-12 00:00"), t("2026-01-18 00:00"), now) is None


def test_refresh_range_leaves_the_future_of_an_open_rate_to_the_daily_read() -> None:
    now = t("2026-01-25 12:00")
    entry = _cache(
        ("2026-01-20 00:00", "2026-01-27 00:00"), "2026-01-25 11:00", [("2026-01-01 00:00", None)]
    )
    # Each poll's horizon moves 30 minutes on: nothing new can be known before the daily read.
    assert refresh_range(entry, t("2026-01-22 12:00"), t("2026-01-27 12:00"), now) is None
    # A day after the last read: from now on, rates and standing charges.
    day_later = t("2026-01-26 11:00")
    assert refresh_range(entry, t("2026-01-23 11:00"), t("2026-01-28 11:00"), day_later) == (
        RefreshSpan(day_later, t("2026-01-28 11:00"), charges=True)
    )
    # The rules before: every poll reads forward again.
    assert refresh_range(
        entry, t("2026-01-22 12:00"), t("2026-01-27 12:00"), now, max_age=timedelta(0)
    ) == RefreshSpan(now, t("2026-01-27 12:00"), charges=True)


def test_refresh_range_waits_for_the_next_agile_day() -> None:
    # Agile known until 23:00 UTC (GMT); the next day is published around 16:00.
    agile = _cache(
        ("2026-01-22 00:00", "2026-01-25 23:00"),
        "2026-01-25 10:00",
        [("2026-01-25 22:30", "2026-01-25 23:00")],
    )
    need_from, need_to = t("2026-01-22 12:00"), t("2026-01-27 12:00")
    # 12:00: 11 hours of known rates left - not yet.
    assert refresh_range(agile, need_from, need_to, t("2026-01-25 12:00")) is None
    # 15:00: within 8 hours of the end - unit rates from the end on, no standing charges.
    assert refresh_range(agile, need_from, need_to, t("2026-01-25 15:00")) == (
        RefreshSpan(t("2026-01-25 23:00"), need_to, charges=False)
    )
    # Read 10 minutes ago: wait for the next half hour.
    recent = replace(agile, fetched_at=t("2026-01-25 15:20"))
    assert refresh_range(recent, need_from, need_to, t("2026-01-25 15:30")) is None
    # Past the cache's start too: both, over the whole span, standing charges included.
    assert refresh_range(
        agile, t("2026-01-21 00:00"), t("2026-01-26 00:00"), t("2026-01-25 15:00")
    ) == RefreshSpan(t("2026-01-21 00:00"), t("2026-01-26 00:00"), charges=True)


async def test_product_payload_shapes(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    product = f"{API}/products/DUAL-22/"
    code = "E-2R-DUAL-22-A1"
    base = f"{API}/products/DUAL-22/electricity-tariffs/{code}"
    links = [
        "not a link",
        {"rel": "standing_charges"},  # no href
        {"rel": "self", "href": f"{product}"},
        {"rel": "standard_unit_rates", "href": f"{base}/standard-unit-rates/"},
        {"rel": "day_unit_rates", "href": f"{base}/day-unit-rates/"},
        {"rel": "night_unit_rates", "href": f"{base}/night-unit-rates/"},
        {"rel": "standing_charges", "href": f"{base}/standing-charges/"},
    ]
    good = {
        "single_register_electricity_tariffs": ["not", "a", "mapping"],
        "dual_register_electricity_tariffs": {
            "_B": "not a mapping",
            "_A": {"direct_debit_monthly": {"code": code, "links": links}},
        },
    }
    aioclient_mock.get(
        product,
        side_effect=sequence(
            {"json": ["not", "an", "object"]},
            {"json": good},
            {"json": {"dual_register_electricity_tariffs": {"_A": {"x": {"code": code}}}}},
            {"json": good},
        ),
    )
    http = client(hass)
    with pytest.raises(SourcePayloadError, match="product payload is not an object"):
        await async_resolve_via_product(http, "DUAL-22", code)

    ref = await async_resolve_via_product(http, "DUAL-22", code)
    assert ref is not None
    # day and night replace the standard rate of a dual-register tariff
    assert (ref.code, ref.fuel, ref.product, ref.registers) == (
        code,
        "electricity",
        "DUAL-22",
        ("day", "night"),
    )
    assert ref.rate_urls == {
        "day": f"{base}/day-unit-rates/",
        "night": f"{base}/night-unit-rates/",
    }
    assert ref.standing_charge_url == f"{base}/standing-charges/"
    # listed, but without links: no way to read its prices
    assert await async_resolve_via_product(http, "DUAL-22", code) is None
    # not listed at all
    assert await async_resolve_via_product(http, "DUAL-22", "E-2R-DUAL-22-Z9") is None


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"json": {"results": "none"}}, "standing-charges page has no results list"),
        ({"json": ["a list"]}, "standing-charges page has no results list"),
        ({"json": {"results": [], "next": 2}}, "standing-charges page has an invalid next link"),
        (
            {"json": {"results": [{"p": 2}], "next": "PAGE2"}},
            "standing-charges pagination does not end",
        ),
    ],
)
async def test_pagination_errors(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    second: dict[str, Any],
    message: str,
) -> None:
    url = f"{API}/products/X/electricity-tariffs/E-1R-X-A/standing-charges/"
    page2 = f"{url}?page=2"
    body = second["json"]
    if isinstance(body, dict) and body.get("next") == "PAGE2":
        body = body | {"next": page2}  # page 2 links to itself
    aioclient_mock.get(url, params={"page": "2"}, json=body)
    aioclient_mock.get(url, json={"results": [{"p": 1}, "junk"], "next": page2})
    pages: list[list[Any]] = []
    with pytest.raises(SourcePayloadError, match=message):
        async for page in iter_pages(
            client(hass), url, endpoint="standing-charges", params={"page_size": 1500}
        ):
            pages.append(page)
    # What came before the bad page was handed out (non-mapping rows left out).
    assert pages[0] == [{"p": 1}]


# ================================================================================ source: meters


async def test_fetch_refuses_a_meter_that_is_not_octopus(hass: HomeAssistant) -> None:
    meters = meters_of(fx("account"))
    source = make_source(hass, meters)
    for other in (replace(meters[0], supplier="tibber"), replace(meters[0], extra={})):
        with pytest.raises(SourceError, match="octopus: not an Octopus meter"):
            await source.async_fetch(other, START, END)


async def test_serials_not_found(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.get(consumption_url("electricity", IMPORT_POINT, NEW), status=404)
    aioclient_mock.get(consumption_url("electricity", IMPORT_POINT, OLD), status=404)
    meters = meters_of(fx("account"))
    source = make_source(hass, meters)
    with pytest.raises(SourceNotFoundError, match="no meter of this electricity point was found"):
        await source.async_fetch(meters[0], START, END)


async def test_one_serial_not_found_leaves_the_other(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    mock_outgoing(aioclient_mock)
    aioclient_mock.get(consumption_url("electricity", EXPORT_POINT, "GONE1234"), status=404)
    mock_export_consumption(aioclient_mock)
    meters = meters_of(fx("account"))
    export = replace(meters[1], serials=("GONE1234", NEW))
    source = make_source(hass, [export], now=Clock(EXPORT_NOW))
    result = await source.async_fetch(export, *EXPORT_WINDOW)
    assert result.intervals["value"].tolist() == pytest.approx([1.2, 1.35])
    assert result.intervals["cost"].tolist() == pytest.approx([0.18, 0.2025])
    assert result.silent_serials == ("GONE1234",)
    assert result.complete_until == EXPORT_WINDOW[1]


async def test_failed_serial_that_delivered_nothing_keeps_the_watermark(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    # Registered first, so it answers before mock_import's pages: the new meter is down.
    new = consumption_url("electricity", IMPORT_POINT, NEW)
    aioclient_mock.get(new, status=503)
    mock_import(aioclient_mock)
    meters = meters_of(fx("account"))
    source = make_source(hass, meters)
    with pytest.raises(OctopusPartialFetchError) as caught:
        await source.async_fetch(meters[0], START, END)
    partial = caught.value.partial
    assert partial is not None
    # The old meter's five slots in the window are kept and priced: 22:00-23:30 on the fixed
    # tariff (24.57p), 00:00 on Agile (0 kWh).
    assert partial.intervals["serial"].tolist() == [OLD] * 5
    assert partial.intervals["value"].tolist() == pytest.approx([0.3, 0.25, 0.2, 0.4, 0.0])
    assert partial.intervals["cost"].sum() == pytest.approx(1.15 * 0.2457)
    # ... but the new meter read nothing: no contiguous range is known to be complete.
    assert partial.complete_until is None
    assert len(calls_to(aioclient_mock, new)) == 4


async def test_install_order_asks_only_serials_with_rows_in_the_window(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    third = consumption_url("electricity", IMPORT_POINT, "THIRD0001")
    aioclient_mock.get(third, json=fx("empty"))
    mock_import(aioclient_mock)
    meters = meters_of(fx("account"))
    meter = replace(meters[0], serials=(NEW, OLD, "THIRD0001"))
    source = make_source(hass, [meter])
    result = await source.async_fetch(meter, START, END)
    assert result.superseded == 2
    assert result.silent_serials == ("THIRD0001",)
    at = result.intervals.set_index("start")
    assert at.loc[pd.Timestamp("2026-03-28 23:30", tz="UTC"), "serial"] == NEW
    assert at.loc[pd.Timestamp("2026-03-29 00:00", tz="UTC"), "value"] == pytest.approx(0.12)
    first_readings = [u for u in calls_to(aioclient_mock, third) if u.query.get("page_size") == "1"]
    assert first_readings == []
    assert len(calls_to(aioclient_mock, third)) == 1


@pytest.mark.parametrize(
    ("answer", "asked_again"),
    [({"status": 503}, True), ({"json": {"count": 0, "next": None, "results": []}}, False)],
)
async def test_unknown_first_reading_falls_back_to_the_window(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    answer: dict[str, Any],
    asked_again: bool,
) -> None:
    mock_account(aioclient_mock)
    new = consumption_url("electricity", IMPORT_POINT, NEW)
    old = consumption_url("electricity", IMPORT_POINT, OLD)
    aioclient_mock.get(new, params={"page_size": "1"}, **answer)
    aioclient_mock.get(old, params={"page_size": "1"}, **answer)
    mock_import(aioclient_mock)
    meters = meters_of(fx("account"))
    clock = Clock(NOW)
    source = make_source(hass, meters, now=clock)
    result = await source.async_fetch(meters[0], START, END)
    # First rows in the window: old meter 22:00, new meter 23:30 -> the new one is later and
    # wins the two shared slots, as it does with the first-ever readings.
    assert result.superseded == 2
    at = result.intervals.set_index("start")
    assert at.loc[pd.Timestamp("2026-03-28 23:30", tz="UTC"), "value"] == pytest.approx(0.15)
    assert at.loc[pd.Timestamp("2026-03-29 00:00", tz="UTC"), "value"] == pytest.approx(0.12)
    assert result.intervals["cost"].sum() == pytest.approx(0.27825)

    def first_reading_calls() -> int:
        return len([u for u in calls_to(aioclient_mock, new) if u.query.get("page_size") == "1"])

    before = first_reading_calls()
    clock.now = NOW + timedelta(minutes=20)
    await source.async_fetch(meters[0], START, END)
    # A failure is not remembered (asked again next poll); "no reading at all" is.
    assert (first_reading_calls() > before) is asked_again


# ================================================================================ source: account


async def test_account_unreadable_on_first_poll_keeps_rows_unpriced(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(f"{API}/accounts/{ACCOUNT}/", status=503)
    mock_export_consumption(aioclient_mock)
    meters = meters_of(fx("account"))
    source = make_source(hass, meters, now=Clock(EXPORT_NOW))
    with pytest.raises(OctopusPartialFetchError) as caught:
        await source.async_fetch(meters[1], *EXPORT_WINDOW)
    partial = caught.value.partial
    assert partial is not None
    assert partial.intervals["value"].tolist() == pytest.approx([1.2, 1.35])
    assert partial.unrated == 2 and partial.intervals["cost"].isna().all()
    assert partial.complete_until is None
    assert KEY not in str(caught.value) and ACCOUNT not in str(caught.value)
    assert [a.status for a in partial.audit if a.endpoint == "account"] == [503] * 4


async def test_stale_account_is_used_when_the_reread_fails(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    account_url = f"{API}/accounts/{ACCOUNT}/"
    aioclient_mock.get(account_url, side_effect=sequence({"json": fx("account")}, {"status": 503}))
    mock_export_consumption(aioclient_mock)
    mock_outgoing(aioclient_mock)
    meters = meters_of(fx("account"))
    clock = Clock(EXPORT_NOW)
    source = make_source(hass, meters, now=clock)
    await source.async_fetch(meters[1], *EXPORT_WINDOW)
    clock.now = EXPORT_NOW + timedelta(hours=7)  # older than 6 h: re-read, which fails
    result = await source.async_fetch(meters[1], *EXPORT_WINDOW)
    assert result.intervals["cost"].tolist() == pytest.approx([0.18, 0.2025])
    assert result.complete_until == EXPORT_WINDOW[1]
    assert len(calls_to(aioclient_mock, account_url)) == 1 + 4
    assert [a.status for a in result.audit if a.endpoint == "account"] == [503] * 4


async def test_junk_agreements_are_skipped(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    account = fx("edge_account_junk")
    aioclient_mock.get(f"{API}/accounts/{ACCOUNT}/", json=account)
    aioclient_mock.get(
        consumption_url("electricity", "1200000000001", "S1"), json=fx("export_consumption")
    )
    aioclient_mock.get(consumption_url("electricity", "1200000000001", "S2"), json=fx("empty"))
    mock_outgoing(aioclient_mock)
    discovered = discover_meters(account, now=NOW)
    meters = meter_infos(discovered, selected={"octopus_electricity_1200000000001"}, gas_units={})
    source = make_source(hass, meters, now=Clock(EXPORT_NOW))
    result = await source.async_fetch(meters[0], *EXPORT_WINDOW)
    # Of four entries only the well-formed one counts (its code trimmed and upper-cased).
    assert result.agreements is not None
    assert result.agreements["tariff"].tolist() == [OUTGOING]
    assert result.intervals["cost"].tolist() == pytest.approx([0.18, 0.2025])
    assert result.unresolved_tariffs == () and result.unrated == 0
    assert result.silent_serials == ("S2",)


# ================================================================================ source: tariffs


async def test_override_prices_a_point_without_agreements(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    account = copy.deepcopy(fx("account"))
    account["properties"][1]["electricity_meter_points"][1]["agreements"] = []
    aioclient_mock.get(f"{API}/accounts/{ACCOUNT}/", json=account)
    mock_export_consumption(aioclient_mock)
    mock_outgoing(aioclient_mock)
    discovered = discover_meters(account, now=NOW)
    meters = meter_infos(
        discovered, selected={EXPORT}, gas_units={}, tariff_overrides={EXPORT: OUTGOING.lower()}
    )
    source = make_source(hass, meters, now=Clock(EXPORT_NOW))
    result = await source.async_fetch(meters[0], *EXPORT_WINDOW)
    agreements = result.agreements
    assert agreements is not None
    assert agreements["tariff"].tolist() == [OUTGOING]
    assert agreements["valid_from"].iloc[0].to_pydatetime() == EXPORT_WINDOW[0]
    assert pd.isna(agreements["valid_to"].iloc[0])
    assert result.intervals["cost"].tolist() == pytest.approx([0.18, 0.2025])


async def test_agreements_outside_the_window_are_not_read(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    mock_import(aioclient_mock)
    meters = meters_of(fx("account"))
    source = make_source(hass, meters)
    # After the fixed tariff ended at 00:00 UTC: only Agile applies and only it is read.
    result = await source.async_fetch(meters[0], t("2026-03-29 01:00"), t("2026-03-29 02:00"))
    assert result.agreements is not None
    assert result.agreements["tariff"].tolist() == [AGILE]
    assert result.intervals["value"].tolist() == pytest.approx([0.11, 0.09])
    assert result.intervals["rate"].tolist() == pytest.approx([0.1386, 0.1260])
    fix_url = tariff_url("OE-FIX-12M-24-03-01", FIX, "standard-unit-rates")
    assert calls_to(aioclient_mock, fix_url) == []
    assert result.silent_serials == (OLD,)  # its rows end before the window
    assert result.superseded == 0


async def test_parseable_override_prices_an_unparseable_agreement(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    code = "G-1R-OE-FIX-12M-25-01-01-G"
    product = "OE-FIX-12M-25-01-01"
    mock_account(aioclient_mock, "account_e7", E7_NUMBER)
    aioclient_mock.get(
        consumption_url("gas", "9876543210", "E6S09876543210"), json=fx("legacy_gas_consumption")
    )
    aioclient_mock.get(
        tariff_url(product, code, "standard-unit-rates", "gas"),
        json=fx("edge_gas_override_standard"),
    )
    aioclient_mock.get(
        tariff_url(product, code, "standing-charges", "gas"),
        json=fx("edge_gas_override_standing"),
    )
    source, meter = e7_source(hass, code.lower())
    result = await source.async_fetch(meter, t("2026-01-15 00:00"), t("2026-01-15 01:00"))
    assert result.unresolved_tariffs == ()
    assert result.agreements is not None and result.agreements["tariff"].tolist() == [code]
    # Only the well-formed price row counts: 5.25p -> 0.0525 GBP/kWh.
    assert result.intervals["rate"].tolist() == pytest.approx([0.0525, 0.0525])
    assert result.intervals["cost"].tolist() == pytest.approx([2.5 * 0.0525, 1.5 * 0.0525])
    assert result.rates is not None
    assert result.rates["rate"].tolist() == pytest.approx([0.0525])
    assert result.rates["rate_exc_vat"].tolist() == pytest.approx([0.05])
    assert result.standing_charges is not None
    # no exc-VAT figure published: the inc-VAT one stands in
    assert result.standing_charges["charge"].tolist() == pytest.approx([0.30])
    assert result.standing_charges["charge_exc_vat"].tolist() == pytest.approx([0.30])
    assert calls_to(aioclient_mock, f"{API}/products/LEGACY-GAS-2019/") == []


async def test_unknown_override_product_is_asked_once(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock, "account_e7", E7_NUMBER)
    aioclient_mock.get(
        consumption_url("gas", "9876543210", "E6S09876543210"), json=fx("legacy_gas_consumption")
    )
    product_url = f"{API}/products/NO-SUCH-PRODUCT/"
    aioclient_mock.get(product_url, status=404)
    source, meter = e7_source(hass, "no-such-product")
    window = (t("2026-01-15 00:00"), t("2026-01-15 01:00"))
    for _ in range(2):
        result = await source.async_fetch(meter, *window)
        assert result.unresolved_tariffs == (LEGACY_CODE,)
        assert result.unrated == 2 and result.intervals["cost"].isna().all()
        assert result.complete_until == window[1]
    poll = [a for a in result.audit if a.endpoint == "gas-poll"]
    assert poll[0].error == "1 tariff(s) unresolved"
    assert len(calls_to(aioclient_mock, product_url)) == 1


async def test_stale_rates_are_kept_when_a_refresh_fails(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    agile_url = tariff_url("AGILE-24-10-01", AGILE, "standard-unit-rates")
    aioclient_mock.get(
        agile_url, side_effect=sequence({"json": fx("agile_standard")}, {"status": 503})
    )
    mock_import(aioclient_mock)
    meters = meters_of(fx("account"))
    clock = Clock(NOW)
    source = make_source(hass, meters, now=clock)
    first = await source.async_fetch(meters[0], START, END)
    # 7 h later Agile is re-read (its newest price ends within now + 12 h) and that fails: the
    # cached prices still cover the window, so the poll succeeds with them.
    clock.now = NOW + timedelta(hours=7)
    second = await source.async_fetch(meters[0], START, END)
    assert second.intervals["rate"].tolist() == pytest.approx(first.intervals["rate"].tolist())
    assert second.intervals["cost"].sum() == pytest.approx(0.27825)
    assert second.complete_until == END
    assert len(calls_to(aioclient_mock, agile_url)) == 1 + 4


async def test_default_clock_stamps_rows_with_the_current_time(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    mock_export_consumption(aioclient_mock)
    mock_outgoing(aioclient_mock)
    meters = meters_of(fx("account"))
    source = OctopusSource(
        async_get_clientsession(hass),
        api_key=KEY,
        account_number=ACCOUNT,
        meters=meters,
        executor=hass.async_add_executor_job,
        sleep=no_sleep,
    )
    before = datetime.now(UTC)
    result = await source.async_fetch(meters[1], *EXPORT_WINDOW)
    after = datetime.now(UTC)
    stamps = {ts.to_pydatetime() for ts in result.intervals["ingested_at"]}
    assert len(stamps) == 1
    assert before <= stamps.pop() <= after
    poll = [a for a in result.audit if a.endpoint == "electricity-poll"]
    assert before <= poll[0].time <= after
