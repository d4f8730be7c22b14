"""Octopus source against hand-made payloads of the API's real shapes (no network)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
import json
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from yarl import URL

from custom_components.meterlake.sources.base import (
    HttpClient,
    MeterInfo,
    SourceAuthError,
    SourceNotFoundError,
    SourcePayloadError,
    SourceUnavailableError,
)
from custom_components.meterlake.sources.octopus import (
    OctopusFetchResult,
    OctopusPartialFetchError,
    OctopusSource,
    async_fetch_account,
    discover_meters,
    meter_config,
    meter_from_config,
    meter_infos,
    normalize_account_number,
    parse_tariff_code,
)

from .conftest import load_fixture_json

API = "https://api.octopus.energy/v1"
KEY = "sk_live_TESTKEY0123456789abcdef"
ACCOUNT = "A-1A2B3C4D"
IMPORT = "octopus_electricity_1012345678901"
EXPORT = "octopus_electricity_1098765432109"
GAS = "octopus_gas_3456789012"
NEW, OLD = "E1S12345678901", "21L4567890"
FIX = "E-1R-OE-FIX-12M-24-03-01-C"
AGILE = "E-1R-AGILE-24-10-01-C"
GAS_TARIFF = "G-1R-VAR-22-11-01-C"
OUTGOING = "E-1R-OUTGOING-FIX-12M-19-05-13-C"

NOW = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
START = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
END = datetime(2026, 3, 29, 3, 0, tzinfo=UTC)


def fx(name: str) -> Any:
    return load_fixture_json(f"octopus/{name}.json")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def consumption_url(kind: str, point: str, serial: str) -> str:
    return f"{API}/{kind}-meter-points/{point}/meters/{serial}/consumption/"


def tariff_url(product: str, code: str, what: str, fuel: str = "electricity") -> str:
    return f"{API}/products/{product}/{fuel}-tariffs/{code}/{what}/"


async def no_sleep(_: float) -> None:
    return None


class Clock:
    """A settable now()."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def calls_to(mock: AiohttpClientMocker, url: str) -> list[URL]:
    """Requests whose URL (without query) is `url`."""
    target = URL(url)
    return [call[1] for call in mock.mock_calls if call[1].with_query(None) == target]


def sequence(*responses: dict[str, Any]) -> Callable[..., Awaitable[AiohttpClientMockResponse]]:
    """A side effect answering each call with the next response (the last one repeats)."""
    remaining = list(responses)

    async def answer(method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        spec = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return AiohttpClientMockResponse(method, url, **spec)

    return answer


def meters_of(account: dict[str, Any], gas_unit: str = "m³") -> list[MeterInfo]:
    discovered = discover_meters(account, now=NOW)
    return meter_infos(discovered, selected={m.key for m in discovered}, gas_units={GAS: gas_unit})


def make_source(hass: HomeAssistant, meters: list[MeterInfo], **kwargs: Any) -> OctopusSource:
    kwargs.setdefault("now", Clock(NOW))
    kwargs.setdefault("sleep", no_sleep)
    return OctopusSource(
        async_get_clientsession(hass),
        api_key=KEY,
        account_number=ACCOUNT,
        meters=meters,
        executor=hass.async_add_executor_job,
        **kwargs,
    )


def mock_account(mock: AiohttpClientMocker, name: str = "account", number: str = ACCOUNT) -> None:
    mock.get(f"{API}/accounts/{number}/", json=fx(name))


def mock_import(mock: AiohttpClientMocker) -> None:
    """Both serials of the import MPAN, their first readings, and both tariffs' prices."""
    new = consumption_url("electricity", "1012345678901", NEW)
    old = consumption_url("electricity", "1012345678901", OLD)
    # Most specific first: the mocker answers with the first registration that matches.
    mock.get(new, params={"page": "3"}, json=fx("elec_new_p3"))
    mock.get(new, params={"page": "2"}, json=fx("elec_new_p2"))
    mock.get(new, params={"page_size": "1"}, json=fx("elec_new_first"))
    mock.get(new, json=fx("elec_new_p1"))
    mock.get(old, params={"page_size": "1"}, json=fx("elec_old_first"))
    mock.get(old, json=fx("elec_old_serial"))
    mock.get(tariff_url("OE-FIX-12M-24-03-01", FIX, "standard-unit-rates"), json=fx("fix_standard"))
    mock.get(tariff_url("OE-FIX-12M-24-03-01", FIX, "standing-charges"), json=fx("fix_standing"))
    mock.get(tariff_url("AGILE-24-10-01", AGILE, "standard-unit-rates"), json=fx("agile_standard"))
    mock.get(tariff_url("AGILE-24-10-01", AGILE, "standing-charges"), json=fx("agile_standing"))


# ------------------------------------------------------------------------------ account, meters


def test_account_number_normalised() -> None:
    assert normalize_account_number("  a-1a2b3c4d \n") == "A-1A2B3C4D"
    assert normalize_account_number("A-1A2B3C4") is None
    assert normalize_account_number("A-1A2B3C4G") is None
    assert normalize_account_number("1A2B3C4D") is None
    assert normalize_account_number("") is None


def test_tariff_code_parsing() -> None:
    agile = parse_tariff_code(AGILE)
    assert agile is not None
    assert (agile.fuel, agile.product, agile.registers) == (
        "electricity",
        "AGILE-24-10-01",
        ("standard",),
    )
    e7 = parse_tariff_code("e-2r-var-22-11-01-g")
    assert e7 is not None and e7.registers == ("day", "night")
    assert e7.rate_urls["night"] == tariff_url(
        "VAR-22-11-01", "E-2R-VAR-22-11-01-G", "night-unit-rates"
    )
    gas = parse_tariff_code(GAS_TARIFF)
    assert gas is not None and gas.standing_charge_url == tariff_url(
        "VAR-22-11-01", GAS_TARIFF, "standing-charges", "gas"
    )
    assert parse_tariff_code("G-1R-LEGACY-GAS-2019-G1") is None


def test_discovery_lists_current_property_meters() -> None:
    found = discover_meters(fx("account"), now=NOW)
    assert [m.key for m in found] == [IMPORT, EXPORT, GAS]
    imp, exp, gas = found
    assert imp.serials == (NEW, OLD) and not imp.is_export and imp.default_unit == "kWh"
    assert imp.label == f"Electricity import · MPAN 1012345678901 · serials {NEW}, {OLD}"
    assert exp.is_export and exp.serials == (NEW,) and exp.point == "1098765432109"
    assert exp.label == f"Electricity export · MPAN 1098765432109 · serial {NEW}"
    assert gas.kind == "gas" and gas.point == "3456789012" and gas.default_unit == "m³"
    # The former home (moved out in 2024) is not offered.
    assert all("1900000000009" not in m.key for m in found)
    # A SMETS1 gas serial defaults to kWh.
    (_, smets1) = discover_meters(fx("account_e7"), now=NOW)
    assert smets1.default_unit == "kWh"


def test_discovery_of_a_closed_account_keeps_its_homes() -> None:
    account = fx("account")
    account["properties"][1]["moved_out_at"] = "2026-01-31T00:00:00Z"
    keys = [m.key for m in discover_meters(account, now=NOW)]
    assert "octopus_electricity_1900000000009" in keys and IMPORT in keys


def test_meter_infos_and_config_round_trip() -> None:
    discovered = discover_meters(fx("account"), now=NOW)
    infos = meter_infos(
        discovered,
        selected={IMPORT, GAS},
        gas_units={GAS: "m3"},
        tariff_overrides={IMPORT: " e-1r-agile-24-10-01-c "},
    )
    assert [m.key for m in infos] == [IMPORT, GAS]
    imp, gas = infos
    assert (imp.supplier, imp.currency, imp.time_zone, imp.cadence_minutes) == (
        "octopus",
        "GBP",
        "Europe/London",
        30,
    )
    assert imp.unit == "kWh" and gas.unit == "m³"
    assert imp.extra == {"point": "1012345678901", "tariff_override": AGILE}
    assert gas.extra == {"point": "3456789012", "tariff_override": None}
    assert "1012345678901" not in imp.name and imp.name.endswith("8901")
    for meter in infos:
        stored = meter_config(meter)
        assert json.loads(json.dumps(stored)) == stored
        assert meter_from_config(stored) == meter
    with pytest.raises(ValueError, match="no confirmed unit"):
        meter_infos(discovered, selected={GAS}, gas_units={})
    with pytest.raises(ValueError):
        meter_infos(discovered, selected={GAS}, gas_units={GAS: "ft³"})
    with pytest.raises(ValueError):
        meter_from_config({"kind": "water", "point": "1"})


# ------------------------------------------------------------------------------ account request


@pytest.mark.parametrize(
    ("response", "error"),
    [
        ({"status": 401}, SourceAuthError),
        ({"status": 403}, SourceAuthError),
        ({"status": 404}, SourceNotFoundError),
        ({"status": 503}, SourceUnavailableError),
        ({"text": "<html>maintenance"}, SourcePayloadError),
        ({"json": {"detail": "no properties"}}, SourcePayloadError),
    ],
)
async def test_fetch_account_errors(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    response: dict[str, Any],
    error: type[Exception],
) -> None:
    aioclient_mock.get(f"{API}/accounts/{ACCOUNT}/", **response)
    client = HttpClient(
        async_get_clientsession(hass), "octopus", redact=(KEY, ACCOUNT), sleep=no_sleep
    )
    with pytest.raises(error) as caught:
        await async_fetch_account(client, KEY, ACCOUNT)
    assert KEY not in str(caught.value) and ACCOUNT not in str(caught.value)


async def test_fetch_account(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    mock_account(aioclient_mock)
    client = HttpClient(async_get_clientsession(hass), "octopus", sleep=no_sleep)
    account = await async_fetch_account(client, KEY, ACCOUNT)
    assert account["number"] == ACCOUNT
    assert [a.endpoint for a in client.audit] == ["account"]
    # HTTP Basic: the key as user name, an empty password; never in the URL.
    _method, url, _data, headers = aioclient_mock.mock_calls[-1]
    expected = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert headers["Authorization"] == expected
    assert KEY not in str(url)


# ------------------------------------------------------------------------------ import meter


async def test_import_replacement_pages_dst_and_tariff_change(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    mock_import(aioclient_mock)
    meters = meters_of(fx("account"))
    source = make_source(hass, meters)
    assert [m.key for m in source.meters] == [IMPORT, EXPORT, GAS]

    result = await source.async_fetch(meters[0], START, END)

    assert isinstance(result, OctopusFetchResult)
    frame = result.intervals
    # 10 half-hours across the spring change; out-of-window rows dropped, the revised 02:30
    # row wins, and the new meter (first reading 2026-03-28 23:30) wins the two shared slots.
    expected = [
        ("2026-03-28 22:00", OLD, 0.30, 0.2457),
        ("2026-03-28 22:30", OLD, 0.25, 0.2457),
        ("2026-03-28 23:00", OLD, 0.20, 0.2457),
        ("2026-03-28 23:30", NEW, 0.15, 0.2457),
        ("2026-03-29 00:00", NEW, 0.12, 0.1512),
        ("2026-03-29 00:30", NEW, 0.10, 0.1470),
        ("2026-03-29 01:00", NEW, 0.11, 0.1386),
        ("2026-03-29 01:30", NEW, 0.09, 0.1260),
        ("2026-03-29 02:00", NEW, 0.08, 0.1155),
        ("2026-03-29 02:30", NEW, 0.55, -0.0210),
    ]
    assert [s.to_pydatetime() for s in frame["start"]] == [t(e[0]) for e in expected]
    assert (frame["end"] - frame["start"] == pd.Timedelta(minutes=30)).all()
    assert frame["serial"].tolist() == [e[1] for e in expected]
    assert frame["value"].tolist() == pytest.approx([e[2] for e in expected])
    assert frame["rate"].tolist() == pytest.approx([e[3] for e in expected])
    assert frame["cost"].tolist() == pytest.approx([e[2] * e[3] for e in expected])
    assert frame["cost"].sum() == pytest.approx(
        0.07371
        + 0.061425
        + 0.04914
        + 0.036855
        + 0.018144
        + 0.0147
        + 0.015246
        + 0.01134
        + 0.00924
        - 0.01155
    )
    assert frame["energy_kwh"].tolist() == pytest.approx(frame["value"].tolist())
    assert set(frame["meter"]) == {IMPORT} and set(frame["currency"]) == {"GBP"}
    assert set(frame["supplier"]) == {"octopus"} and set(frame["unit"]) == {"kWh"}
    assert result.complete_until == END
    assert result.superseded == 2 and result.unrated == 0 and result.rejected == 0
    assert result.silent_serials == ()
    replacement = [a for a in result.audit if a.endpoint == "electricity-replacement"]
    assert [a.rows for a in replacement] == [2]

    # Agreements: both tariffs, the fixed one ending at the change.
    agreements = result.agreements
    assert agreements is not None
    assert agreements["tariff"].tolist() == [FIX, AGILE]
    assert agreements["valid_to"].iloc[0].to_pydatetime() == t("2026-03-29 00:00")
    assert pd.isna(agreements["valid_to"].iloc[1])

    # Rates in GBP, direct debit only for the fixed tariff; Agile up to what is published.
    rates = result.rates
    assert rates is not None
    fixed = rates[rates["tariff"] == FIX]
    assert fixed["rate"].tolist() == pytest.approx([0.2457])
    assert fixed["rate_exc_vat"].tolist() == pytest.approx([0.234])
    assert fixed["payment_method"].tolist() == ["DIRECT_DEBIT"]
    agile = rates[rates["tariff"] == AGILE]
    assert len(agile) == 44 and set(agile["register"]) == {"standard"}
    assert set(rates["supplier"]) == {"octopus"} and set(rates["currency"]) == {"GBP"}
    charges = result.standing_charges
    assert charges is not None
    assert dict(zip(charges["tariff"], charges["charge"], strict=True)) == pytest.approx(
        {FIX: 0.4785, AGILE: 0.4553}
    )

    # Requests: three pages of the new meter, one of the old, each with the documented params.
    pages = calls_to(aioclient_mock, consumption_url("electricity", "1012345678901", NEW))
    first = pages[0].query
    assert first["page_size"] == "25000" and first["order_by"] == "period"
    assert first["period_from"] == "2026-03-28T22:00:00Z"
    assert first["period_to"] == "2026-03-29T03:00:00Z"
    assert [p.query.get("page") for p in pages if p.query.get("page_size") != "1"] == [
        None,
        "2",
        "3",
    ]
    agile_calls = calls_to(
        aioclient_mock, tariff_url("AGILE-24-10-01", AGILE, "standard-unit-rates")
    )
    assert agile_calls[0].query["period_from"] == "2026-03-29T00:00:00Z"
    assert agile_calls[0].query["period_to"] == "2026-03-31T03:00:00Z"
    # Secrets never reach the audit.
    assert all(KEY not in str(a) and "1012345678901" not in str(a) for a in result.audit)


async def test_rates_and_account_are_cached(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    mock_import(aioclient_mock)
    meters = meters_of(fx("account"))
    clock = Clock(NOW)
    source = make_source(hass, meters, now=clock)
    await source.async_fetch(meters[0], START, END)
    agile_url = tariff_url("AGILE-24-10-01", AGILE, "standard-unit-rates")
    fix_url = tariff_url("OE-FIX-12M-24-03-01", FIX, "standard-unit-rates")
    account_url = f"{API}/accounts/{ACCOUNT}/"
    first_new = consumption_url("electricity", "1012345678901", NEW)
    counts = (
        len(calls_to(aioclient_mock, account_url)),
        len(calls_to(aioclient_mock, agile_url)),
        len(calls_to(aioclient_mock, fix_url)),
    )
    assert counts == (1, 1, 1)
    firsts = [u for u in calls_to(aioclient_mock, first_new) if u.query.get("page_size") == "1"]
    assert len(firsts) == 1

    # 20 minutes later: everything from cache. Agile is known until 22:00, before now + 12 h,
    # but was read less than 30 minutes ago; first readings are cached for good.
    clock.now = NOW + timedelta(minutes=20)
    second = await source.async_fetch(meters[0], START, END)
    assert second.intervals["cost"].sum() == pytest.approx(0.27825)
    assert (
        len(calls_to(aioclient_mock, account_url)),
        len(calls_to(aioclient_mock, agile_url)),
        len(calls_to(aioclient_mock, fix_url)),
    ) == (1, 1, 1)
    firsts = [u for u in calls_to(aioclient_mock, first_new) if u.query.get("page_size") == "1"]
    assert len(firsts) == 1

    # 7 hours later: the account is re-read (> 6 h) and Agile too (its newest rate ends at
    # 22:00, inside now + 12 h: the next day may be published); the open fixed rate is not.
    clock.now = NOW + timedelta(hours=7)
    await source.async_fetch(meters[0], START, END)
    assert len(calls_to(aioclient_mock, account_url)) == 2
    agile_calls = calls_to(aioclient_mock, agile_url)
    assert len(agile_calls) == 2
    assert agile_calls[1].query["period_from"] == "2026-03-29T22:00:00Z"
    assert len(calls_to(aioclient_mock, fix_url)) == 1


async def test_changed_agreement_rereads_rates(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    account = fx("account")
    aioclient_mock.get(
        f"{API}/accounts/{ACCOUNT}/",
        side_effect=sequence(
            {"json": account}, {"json": _fixed_until(account, "2026-03-29T01:00:00Z")}
        ),
    )
    mock_import(aioclient_mock)
    meters = meters_of(account)
    clock = Clock(NOW)
    source = make_source(hass, meters, now=clock)
    await source.async_fetch(meters[0], START, END)
    clock.now = NOW + timedelta(hours=7)
    result = await source.async_fetch(meters[0], START, END)
    fix_url = tariff_url("OE-FIX-12M-24-03-01", FIX, "standard-unit-rates")
    assert len(calls_to(aioclient_mock, fix_url)) == 2
    # The fixed tariff now runs until 01:00 UTC, the Agile one from then.
    rates = result.intervals.set_index("start")["rate"]
    assert rates[pd.Timestamp("2026-03-29 00:30", tz="UTC")] == pytest.approx(0.2457)
    assert rates[pd.Timestamp("2026-03-29 01:00", tz="UTC")] == pytest.approx(0.1386)


def _fixed_until(account: dict[str, Any], until: str) -> dict[str, Any]:
    import copy

    changed = copy.deepcopy(account)
    agreements = changed["properties"][1]["electricity_meter_points"][0]["agreements"]
    agreements[0]["valid_to"] = until
    agreements[1]["valid_from"] = until
    return changed


# ------------------------------------------------------------------------------ gas, export, E7


async def test_gas_m3_over_autumn_change(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.get(
        consumption_url("gas", "3456789012", "G4P12345678901"), json=fx("gas_consumption")
    )
    aioclient_mock.get(
        tariff_url("VAR-22-11-01", GAS_TARIFF, "standard-unit-rates", "gas"),
        json=fx("gas_standard"),
    )
    aioclient_mock.get(
        tariff_url("VAR-22-11-01", GAS_TARIFF, "standing-charges", "gas"), json=fx("gas_standing")
    )
    meters = meters_of(fx("account"))
    source = make_source(
        hass, meters, now=Clock(datetime(2026, 10, 26, 9, tzinfo=UTC)), calorific_value=39.2
    )
    start, end = t("2026-10-25 00:00"), t("2026-10-25 02:00")
    result = await source.async_fetch(meters[2], start, end)

    frame = result.intervals
    # 01:00 and 01:30 local happen twice: first BST (an offset, or naive: the first
    # occurrence of a wall time is summer time), then GMT (Z).
    assert [s.to_pydatetime() for s in frame["start"]] == [
        t("2026-10-25 00:00"),
        t("2026-10-25 00:30"),
        t("2026-10-25 01:00"),
        t("2026-10-25 01:30"),
    ]
    m3 = [0.412, 0.388, 0.201, 0.0]
    kwh_per_m3 = 1.02264 * 39.2 / 3.6
    assert frame["value"].tolist() == pytest.approx(m3)
    assert set(frame["unit"]) == {"m³"}
    assert frame["energy_kwh"].tolist() == pytest.approx([v * kwh_per_m3 for v in m3])
    # Priced per kWh at the direct-debit rate of 6.24p; rate shown per m³.
    assert frame["cost"].tolist() == pytest.approx([v * kwh_per_m3 * 0.0624 for v in m3])
    assert frame["rate"].tolist() == pytest.approx([0.0624 * kwh_per_m3] * 4)
    assert result.complete_until == end
    assert result.rates is not None
    # The row that ended on 1 October and the non-direct-debit price are left out.
    assert result.rates["rate"].tolist() == pytest.approx([0.0624])
    assert result.standing_charges is not None
    assert result.standing_charges["charge"].tolist() == pytest.approx([0.3143])


async def test_export_meter(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.get(
        consumption_url("electricity", "1098765432109", NEW), json=fx("export_consumption")
    )
    product = "OUTGOING-FIX-12M-19-05-13"
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standard-unit-rates"), json=fx("outgoing_standard")
    )
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standing-charges"), json=fx("outgoing_standing")
    )
    meters = meters_of(fx("account"))
    assert meters[1].is_export
    source = make_source(hass, meters, now=Clock(datetime(2026, 6, 2, 9, tzinfo=UTC)))
    result = await source.async_fetch(meters[1], t("2026-06-01 11:00"), t("2026-06-01 12:00"))
    frame = result.intervals
    assert [s.to_pydatetime() for s in frame["start"]] == [
        t("2026-06-01 11:00"),
        t("2026-06-01 11:30"),
    ]
    assert frame["value"].tolist() == pytest.approx([1.2, 1.35])
    assert frame["cost"].tolist() == pytest.approx([0.18, 0.2025])
    assert result.complete_until == t("2026-06-01 12:00")
    assert result.standing_charges is not None and result.standing_charges.empty


async def test_a_rate_that_ends_before_it_starts_is_set_aside_with_its_reason(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.get(
        consumption_url("electricity", "1098765432109", NEW), json=fx("export_consumption")
    )
    product = "OUTGOING-FIX-12M-19-05-13"
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standard-unit-rates"),
        json=fx("outgoing_standard_reversed_row"),
    )
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standing-charges"), json=fx("outgoing_standing")
    )
    meters = meters_of(fx("account"))
    source = make_source(hass, meters, now=Clock(datetime(2026, 6, 2, 9, tzinfo=UTC)))
    result = await source.async_fetch(meters[1], t("2026-06-01 11:00"), t("2026-06-01 12:00"))
    # Priced with the valid open rate only; the reversed row is neither used nor archived.
    assert result.intervals["cost"].tolist() == pytest.approx([0.18, 0.2025])
    assert result.rates is not None and result.rates["rate"].tolist() == [0.15]
    (rejected,) = [r for r in result.audit if r.endpoint == "rejected"]
    assert (rejected.rows, rejected.error) == (1, "rate_ends_before_start: 1")


async def test_economy7_day_night_and_legacy_gas_via_product(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    number = "A-00FF00AA"
    mock_account(aioclient_mock, "account_e7", number)
    e7 = "E-2R-VAR-22-11-01-G"
    aioclient_mock.get(
        consumption_url("electricity", "2300000000012", "19K0765432"), json=fx("e7_consumption")
    )
    aioclient_mock.get(tariff_url("VAR-22-11-01", e7, "day-unit-rates"), json=fx("e7_day"))
    aioclient_mock.get(tariff_url("VAR-22-11-01", e7, "night-unit-rates"), json=fx("e7_night"))
    aioclient_mock.get(tariff_url("VAR-22-11-01", e7, "standing-charges"), json=fx("e7_standing"))
    legacy = "G-1R-LEGACY-GAS-2019-G1"
    aioclient_mock.get(
        consumption_url("gas", "9876543210", "E6S09876543210"), json=fx("legacy_gas_consumption")
    )
    aioclient_mock.get(f"{API}/products/LEGACY-GAS-2019/", json=fx("legacy_product"))
    aioclient_mock.get(
        tariff_url("LEGACY-GAS-2019", legacy, "standard-unit-rates", "gas"),
        json=fx("legacy_gas_standard"),
    )
    aioclient_mock.get(
        tariff_url("LEGACY-GAS-2019", legacy, "standing-charges", "gas"),
        json=fx("legacy_gas_standing"),
    )
    discovered = discover_meters(fx("account_e7"), now=NOW)
    meters = meter_infos(
        discovered,
        selected={m.key for m in discovered},
        gas_units={"octopus_gas_9876543210": "kWh"},
        tariff_overrides={"octopus_gas_9876543210": "LEGACY-GAS-2019"},
    )
    source = OctopusSource(
        async_get_clientsession(hass),
        api_key=KEY,
        account_number=number,
        meters=meters,
        executor=hass.async_add_executor_job,
        sleep=no_sleep,
        now=Clock(datetime(2026, 1, 16, 9, tzinfo=UTC)),
    )
    start, end = t("2026-01-15 00:00"), t("2026-01-15 08:00")
    result = await source.async_fetch(meters[0], start, end)
    frame = result.intervals
    # Night 00:30-07:30 (GMT): 00:00 and 07:30 are day slots.
    assert [s.strftime("%H:%M") for s in frame["start"]] == [
        "00:00",
        "00:30",
        "01:00",
        "07:00",
        "07:30",
    ]
    assert frame["rate"].tolist() == pytest.approx([0.2835, 0.1312, 0.1312, 0.1312, 0.2835])
    assert frame["cost"].sum() == pytest.approx(
        0.4 * 0.2835 + (1.1 + 1.3 + 0.9) * 0.1312 + 0.6 * 0.2835
    )
    assert result.rates is not None
    assert sorted(set(result.rates["register"])) == ["day", "night"]
    assert result.complete_until == end

    gas = await source.async_fetch(meters[1], start, t("2026-01-15 01:00"))
    assert gas.unresolved_tariffs == ()
    assert gas.intervals["rate"].tolist() == pytest.approx([0.0712, 0.0712])
    assert gas.intervals["cost"].tolist() == pytest.approx([2.5 * 0.0712, 1.5 * 0.0712])
    assert gas.agreements is not None and gas.agreements["tariff"].tolist() == [legacy]


async def test_unresolvable_tariff_leaves_intervals_unrated(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    number = "A-00FF00AA"
    mock_account(aioclient_mock, "account_e7", number)
    aioclient_mock.get(
        consumption_url("gas", "9876543210", "E6S09876543210"), json=fx("legacy_gas_consumption")
    )
    discovered = discover_meters(fx("account_e7"), now=NOW)
    meters = meter_infos(
        discovered, selected={"octopus_gas_9876543210"}, gas_units={"octopus_gas_9876543210": "kWh"}
    )
    source = OctopusSource(
        async_get_clientsession(hass),
        api_key=KEY,
        account_number=number,
        meters=meters,
        executor=hass.async_add_executor_job,
        sleep=no_sleep,
        now=Clock(datetime(2026, 1, 16, 9, tzinfo=UTC)),
    )
    result = await source.async_fetch(meters[0], t("2026-01-15 00:00"), t("2026-01-15 01:00"))
    assert result.unresolved_tariffs == ("G-1R-LEGACY-GAS-2019-G1",)
    assert result.unrated == 2 and result.intervals["cost"].isna().all()
    assert result.intervals["value"].tolist() == pytest.approx([2.5, 1.5])
    assert result.complete_until == t("2026-01-15 01:00")


# ------------------------------------------------------------------------------ errors


async def test_empty_results(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.get(consumption_url("gas", "3456789012", "G4P12345678901"), json=fx("empty"))
    aioclient_mock.get(
        tariff_url("VAR-22-11-01", GAS_TARIFF, "standard-unit-rates", "gas"),
        json=fx("gas_standard"),
    )
    aioclient_mock.get(
        tariff_url("VAR-22-11-01", GAS_TARIFF, "standing-charges", "gas"), json=fx("gas_standing")
    )
    meters = meters_of(fx("account"))
    source = make_source(hass, meters, now=Clock(datetime(2026, 10, 26, 9, tzinfo=UTC)))
    result = await source.async_fetch(meters[2], t("2026-10-25 00:00"), t("2026-10-25 02:00"))
    assert result.intervals.empty
    assert list(result.intervals.columns)[:4] == ["meter", "serial", "supplier", "kind"]
    assert result.complete_until is None  # nothing stored: the watermark stays
    assert result.silent_serials == ("G4P12345678901",)
    assert result.unrated == 0
    poll = [a for a in result.audit if a.endpoint == "gas-poll"]
    assert poll[0].error == "1 meter(s) returned no data" and poll[0].rows == 0


async def test_429_honours_retry_after(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.get(
        consumption_url("electricity", "1098765432109", NEW),
        side_effect=sequence(
            {"status": 429, "headers": {"Retry-After": "7"}},
            {"json": fx("export_consumption")},
        ),
    )
    product = "OUTGOING-FIX-12M-19-05-13"
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standard-unit-rates"), json=fx("outgoing_standard")
    )
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standing-charges"), json=fx("outgoing_standing")
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    meters = meters_of(fx("account"))
    source = make_source(hass, meters, sleep=sleep, now=Clock(datetime(2026, 6, 2, 9, tzinfo=UTC)))
    result = await source.async_fetch(meters[1], t("2026-06-01 11:00"), t("2026-06-01 12:00"))
    assert slept == [7.0]
    assert result.intervals["value"].tolist() == pytest.approx([1.2, 1.35])
    statuses = [a.status for a in result.audit if a.endpoint == "electricity-consumption"]
    assert statuses == [429, 200]


async def test_500_until_budget_spent(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    url = consumption_url("electricity", "1098765432109", NEW)
    aioclient_mock.get(url, status=500)
    product = "OUTGOING-FIX-12M-19-05-13"
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standard-unit-rates"), json=fx("outgoing_standard")
    )
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standing-charges"), json=fx("outgoing_standing")
    )
    meters = meters_of(fx("account"))
    source = make_source(hass, meters, now=Clock(datetime(2026, 6, 2, 9, tzinfo=UTC)))
    with pytest.raises(SourceUnavailableError) as caught:
        await source.async_fetch(meters[1], t("2026-06-01 11:00"), t("2026-06-01 12:00"))
    assert len(calls_to(aioclient_mock, url)) == 4
    error = caught.value
    assert isinstance(error, OctopusPartialFetchError)
    assert error.partial is not None and error.partial.intervals.empty
    assert error.partial.complete_until is None
    assert KEY not in str(error) and "1098765432109" not in str(error)


async def test_rates_unavailable_keeps_rows_unpriced(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.get(
        consumption_url("electricity", "1098765432109", NEW), json=fx("export_consumption")
    )
    product = "OUTGOING-FIX-12M-19-05-13"
    rates_url = tariff_url(product, OUTGOING, "standard-unit-rates")
    aioclient_mock.get(rates_url, status=502)
    meters = meters_of(fx("account"))
    source = make_source(hass, meters, now=Clock(datetime(2026, 6, 2, 9, tzinfo=UTC)))
    with pytest.raises(OctopusPartialFetchError) as caught:
        await source.async_fetch(meters[1], t("2026-06-01 11:00"), t("2026-06-01 12:00"))
    partial = caught.value.partial
    assert partial is not None
    assert partial.intervals["value"].tolist() == pytest.approx([1.2, 1.35])
    assert partial.intervals["cost"].isna().all() and partial.unrated == 2
    # The rows are kept, but the watermark stays so that the next poll prices them.
    assert partial.complete_until is None
    assert len(calls_to(aioclient_mock, rates_url)) == 4


async def test_empty_window_makes_no_request(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    meters = meters_of(fx("account"))
    source = make_source(hass, meters)
    result = await source.async_fetch(meters[0], END, END)
    assert result.intervals.empty and result.complete_until is None
    assert aioclient_mock.call_count == 0
    with pytest.raises(ValueError, match="timezone-aware"):
        await source.async_fetch(meters[0], datetime(2026, 3, 28), datetime(2026, 3, 29))


async def test_failure_after_pages_keeps_what_was_read(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    new = consumption_url("electricity", "1012345678901", NEW)
    old = consumption_url("electricity", "1012345678901", OLD)
    aioclient_mock.get(new, params={"page": "3"}, status=503)
    aioclient_mock.get(new, params={"page": "2"}, json=fx("elec_new_p2"))
    aioclient_mock.get(new, params={"page_size": "1"}, json=fx("elec_new_first"))
    aioclient_mock.get(new, json=fx("elec_new_p1"))
    aioclient_mock.get(old, params={"page_size": "1"}, json=fx("elec_old_first"))
    aioclient_mock.get(old, json=fx("elec_old_serial"))
    for product, code, name in (
        ("OE-FIX-12M-24-03-01", FIX, "fix"),
        ("AGILE-24-10-01", AGILE, "agile"),
    ):
        aioclient_mock.get(
            tariff_url(product, code, "standard-unit-rates"), json=fx(f"{name}_standard")
        )
        aioclient_mock.get(
            tariff_url(product, code, "standing-charges"), json=fx(f"{name}_standing")
        )
    meters = meters_of(fx("account"))
    source = make_source(hass, meters)
    with pytest.raises(OctopusPartialFetchError) as caught:
        await source.async_fetch(meters[0], START, END)
    partial = caught.value.partial
    assert partial is not None
    # Pages 1 and 2 of the new meter and the old meter are kept, priced; the watermark may move
    # to the end of page 2 (02:30 UTC), not further.
    assert len(partial.intervals) == 9
    assert partial.intervals["value"].sum() == pytest.approx(1.4)
    assert partial.intervals["cost"].sum() == pytest.approx(0.2898)
    assert partial.complete_until == t("2026-03-29 02:30")
    assert len(calls_to(aioclient_mock, new)) == 2 + 1 + 4


async def test_401_mid_life(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    mock_account(aioclient_mock)
    url = consumption_url("electricity", "1098765432109", NEW)
    aioclient_mock.get(
        url, side_effect=sequence({"json": fx("export_consumption")}, {"status": 401})
    )
    product = "OUTGOING-FIX-12M-19-05-13"
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standard-unit-rates"), json=fx("outgoing_standard")
    )
    aioclient_mock.get(
        tariff_url(product, OUTGOING, "standing-charges"), json=fx("outgoing_standing")
    )
    meters = meters_of(fx("account"))
    source = make_source(hass, meters, now=Clock(datetime(2026, 6, 2, 9, tzinfo=UTC)))
    window = (t("2026-06-01 11:00"), t("2026-06-01 12:00"))
    first = await source.async_fetch(meters[1], *window)
    assert len(first.intervals) == 2
    with pytest.raises(SourceAuthError) as caught:
        await source.async_fetch(meters[1], *window)
    assert caught.value.translation_key == "invalid_auth"
    assert len(calls_to(aioclient_mock, url)) == 2  # no retry on 401


async def test_malformed_json(hass: HomeAssistant, aioclient_mock: AiohttpClientMocker) -> None:
    mock_account(aioclient_mock)
    aioclient_mock.get(
        consumption_url("electricity", "1098765432109", NEW), text='{"count": 2, "results": [{'
    )
    meters = meters_of(fx("account"))
    source = make_source(hass, meters)
    with pytest.raises(SourcePayloadError):
        await source.async_fetch(meters[1], t("2026-06-01 11:00"), t("2026-06-01 12:00"))


async def test_raw_payloads_are_scrubbed(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    mock_account(aioclient_mock)
    mock_import(aioclient_mock)
    meters = meters_of(fx("account"))
    source = make_source(hass, meters, keep_raw=True)
    result = await source.async_fetch(meters[0], START, END)
    names = [name for name, _ in result.raw]
    assert "account" not in names and names.count("electricity-consumption") == 4
    text = repr(result.raw)
    for secret in (KEY, ACCOUNT, "1012345678901", NEW, OLD):
        assert secret not in text
    assert "/meters/***/consumption/" in text


async def test_create_source_from_entry_data(hass: HomeAssistant) -> None:
    from custom_components.meterlake.sources.base import SourceContext
    from custom_components.meterlake.sources.octopus import create_source

    meters = meters_of(fx("account"))
    context = SourceContext(
        session=async_get_clientsession(hass),
        executor=hass.async_add_executor_job,
        data={
            "source": "octopus",
            "api_key": KEY,
            "account_number": ACCOUNT,
            "meters": [meter_config(m) for m in meters],
        },
        options={"gas_calorific_value": 39.2, "tariff_overrides": {GAS: "g-1r-var-22-11-01-c"}},
    )
    source = create_source(context)
    assert source.supplier == "octopus" and source.update_interval == timedelta(minutes=30)
    assert [m.key for m in source.meters] == [IMPORT, EXPORT, GAS]
    assert source.meters[2].unit == "m³"
    assert source.meters[2].extra["tariff_override"] == GAS_TARIFF
    assert source.meters[0] == meters[0]
    assert source._calorific_value == 39.2
