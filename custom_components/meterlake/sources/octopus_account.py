"""Octopus Energy account: number format, the account request, meter discovery, meter storage.

Kept apart from the polling code so the config flow can import it without pandas.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import re
from typing import Any, Final, Literal

import aiohttp

from .base import HttpClient, MeterInfo, SourcePayloadError

SUPPLIER: Final = "octopus"
API_BASE: Final = "https://api.octopus.energy/v1"
CURRENCY: Final = "GBP"
TIME_ZONE: Final = "Europe/London"

# "A-" and eight upper-case hex characters, e.g. A-1A2B3C4D (as printed on bills and the dashboard).
ACCOUNT_NUMBER_RE: Final = re.compile(r"^A-[0-9A-F]{8}$")

UNIT_KWH: Final = "kWh"
UNIT_M3: Final = "m³"
GAS_UNITS: Final = (UNIT_KWH, UNIT_M3)

# SMETS2 gas meters in GB carry serials "G4" + maker letter + 11 digits (G4P..., G4W...) and
# report m³. Anything else (SMETS1 gas) defaults to kWh. Only a default: the config flow always
# asks the user to confirm the unit.
_SMETS2_GAS_SERIAL_RE: Final = re.compile(r"^G4[A-Z][0-9]{11}$")

MeterKind = Literal["electricity", "gas"]


def normalize_account_number(value: str) -> str | None:
    """Return the account number in canonical form, or None when it cannot be one."""
    candidate = value.strip().upper()
    return candidate if ACCOUNT_NUMBER_RE.fullmatch(candidate) else None


def basic_auth(api_key: str) -> dict[str, str]:
    """Octopus takes the API key as the Basic user name with an empty password."""
    return {"Authorization": aiohttp.encode_basic_auth(api_key, "")}


async def async_fetch_account(
    client: HttpClient, api_key: str, account_number: str
) -> dict[str, Any]:
    """GET /accounts/{number}/; raise the base error classes (auth, not found, unavailable...)."""
    body = await client.request(
        "GET",
        f"{API_BASE}/accounts/{account_number}/",
        endpoint="account",
        auth=basic_auth(api_key),
    )
    if not isinstance(body, dict) or not isinstance(body.get("properties"), list):
        raise SourcePayloadError("octopus: account payload has no properties list")
    return body


@dataclass(frozen=True)
class DiscoveredMeter:
    """One meter point found on the account, as the config flow lists it."""

    key: str
    kind: MeterKind
    point: str
    serials: tuple[str, ...]
    is_export: bool
    default_unit: str
    label: str


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 from the API as aware UTC; a naive value is Europe/London per the API docs."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(TIME_ZONE))
    return moment.astimezone(UTC)


def annual_quantity(account: Mapping[str, Any], kind: str, point: str) -> float | None:
    """The meter point's `consumption_standard` (annual quantity, kWh); None when absent or 0."""
    field_name, list_name = (
        ("mpan", "electricity_meter_points")
        if kind == "electricity"
        else ("mprn", "gas_meter_points")
    )
    for prop in account.get("properties") or ():
        if not isinstance(prop, Mapping):
            continue
        for entry in prop.get(list_name) or ():
            if not isinstance(entry, Mapping) or str(entry.get(field_name, "")).strip() != point:
                continue
            value = entry.get("consumption_standard")
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
    return None


async def async_suggest_gas_unit(
    client: HttpClient,
    api_key: str,
    meter: DiscoveredMeter,
    account: Mapping[str, Any],
    *,
    now: datetime,
    kwh_per_m3: float,
) -> str | None:
    """The unit a gas meter's last year of readings fits, against its annual quantity.

    One request per serial (daily totals of the last 365 days). None when the account has no
    annual quantity, the readings are too few, or they fit neither unit clearly
    (analytics.gas_units.fitting_unit): the flow then keeps its serial-based default.
    """
    from urllib.parse import quote

    from ..analytics.gas_units import fitting_unit

    quantity = annual_quantity(account, "gas", meter.point)
    if quantity is None or not meter.serials:
        return None
    start = now - timedelta(days=365)
    per_day: dict[str, float] = {}
    for serial in meter.serials:
        url = (
            f"{API_BASE}/gas-meter-points/{quote(meter.point, safe='')}/meters/"
            f"{quote(serial, safe='')}/consumption/"
        )
        body = await client.request(
            "GET",
            url,
            endpoint="gas-unit-check",
            params={
                "period_from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "period_to": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "group_by": "day",
                "page_size": 400,
            },
            auth=basic_auth(api_key),
        )
        results = body.get("results") if isinstance(body, dict) else None
        for row in results if isinstance(results, list) else ():
            if not isinstance(row, Mapping):
                continue
            value = row.get("consumption")
            day = row.get("interval_start")
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and value >= 0
                and isinstance(day, str)
            ):
                per_day[day[:10]] = per_day.get(day[:10], 0.0) + float(value)
    total, days = sum(per_day.values()), len(per_day)
    fit = fitting_unit(total, days, quantity, kwh_per_m3=kwh_per_m3)
    return None if fit is None else fit.unit


def meter_key(kind: str, point: str) -> str:
    """Stable key of a metering point (docs/architecture.md): survives meter replacements."""
    return f"octopus_{kind}_{point}"


def _serials(point: Mapping[str, Any]) -> tuple[str, ...]:
    seen: list[str] = []
    for meter in point.get("meters") or ():
        if not isinstance(meter, Mapping):
            continue
        serial = str(meter.get("serial_number") or "").strip()
        if serial and serial not in seen:
            seen.append(serial)
    return tuple(seen)


def default_gas_unit(serials: Sequence[str]) -> str:
    """m³ when any serial looks like a SMETS2 gas meter, else kWh (the user confirms)."""
    if any(_SMETS2_GAS_SERIAL_RE.fullmatch(serial.upper()) for serial in serials):
        return UNIT_M3
    return UNIT_KWH


def _label(kind: str, is_export: bool, point: str, serials: Sequence[str]) -> str:
    if kind == "gas":
        head = f"Gas · MPRN {point}"
    else:
        head = f"Electricity {'export' if is_export else 'import'} · MPAN {point}"
    if not serials:
        return f"{head} · no meter"
    word = "serial" if len(serials) == 1 else "serials"
    return f"{head} · {word} {', '.join(serials)}"


def current_properties(
    account: Mapping[str, Any], now: datetime | None = None
) -> list[Mapping[str, Any]]:
    """Properties not moved out of yet; all of them when none is current (closed account).

    A former home's meters are not offered for new polling, but a closed account still lists
    its last homes so that their history can be backfilled.
    """
    moment = now or datetime.now(UTC)
    properties = [p for p in account.get("properties") or () if isinstance(p, Mapping)]
    current = []
    for prop in properties:
        moved_out = parse_time(prop.get("moved_out_at"))
        if moved_out is None or moved_out > moment:
            current.append(prop)
    return current or properties


def discover_meters(
    account: Mapping[str, Any], *, now: datetime | None = None
) -> list[DiscoveredMeter]:
    """Meter points of the current properties: electricity import, export, then gas.

    A point listed twice (on two properties) is merged; serials keep the account's order.
    """
    found: dict[str, DiscoveredMeter] = {}
    for prop in current_properties(account, now):
        for point in prop.get("electricity_meter_points") or ():
            if not isinstance(point, Mapping) or not point.get("mpan"):
                continue
            mpan = str(point["mpan"]).strip()
            export = bool(point.get("is_export"))
            _add(
                found,
                kind="electricity",
                point=mpan,
                serials=_serials(point),
                is_export=export,
                unit=UNIT_KWH,
            )
        for point in prop.get("gas_meter_points") or ():
            if not isinstance(point, Mapping) or not point.get("mprn"):
                continue
            mprn = str(point["mprn"]).strip()
            serials = _serials(point)
            _add(
                found,
                kind="gas",
                point=mprn,
                serials=serials,
                is_export=False,
                unit=default_gas_unit(serials),
            )
    order = {("electricity", False): 0, ("electricity", True): 1, ("gas", False): 2}
    return sorted(found.values(), key=lambda m: (order[m.kind, m.is_export], m.point))


def _add(
    found: dict[str, DiscoveredMeter],
    *,
    kind: MeterKind,
    point: str,
    serials: tuple[str, ...],
    is_export: bool,
    unit: str,
) -> None:
    key = meter_key(kind, point)
    if (previous := found.get(key)) is not None:
        serials = previous.serials + tuple(s for s in serials if s not in previous.serials)
        if kind == "gas":
            unit = default_gas_unit(serials)
    found[key] = DiscoveredMeter(
        key=key,
        kind=kind,
        point=point,
        serials=serials,
        is_export=is_export,
        default_unit=unit,
        label=_label(kind, is_export, point, serials),
    )


def _name(kind: str, is_export: bool, point: str) -> str:
    """Device name without the full MPAN/MPRN (names reach logs and diagnostics): last 4 digits."""
    what = "electricity export" if is_export else "electricity import"
    if kind == "gas":
        what = "gas"
    return f"Octopus {what} …{point[-4:]}"


def normalize_gas_unit(unit: str) -> str:
    """Accept "m3"/"M³" spellings; raise ValueError for anything but kWh or m³."""
    spelled = unit.strip().replace("3", "³").lower()
    for known in GAS_UNITS:
        if spelled == known.lower():
            return known
    raise ValueError(f"unsupported gas unit {unit!r}")


def meter_infos(
    discovered: Sequence[DiscoveredMeter],
    *,
    selected: Collection[str],
    gas_units: Mapping[str, str],
    tariff_overrides: Mapping[str, str] | None = None,
) -> list[MeterInfo]:
    """MeterInfo for each selected meter; a selected gas meter must have a confirmed unit.

    Raises ValueError when a gas meter's unit is missing or unknown: the unit is never guessed.
    """
    overrides = tariff_overrides or {}
    infos: list[MeterInfo] = []
    for meter in discovered:
        if meter.key not in selected:
            continue
        if meter.kind == "gas":
            if meter.key not in gas_units:
                raise ValueError(f"no confirmed unit for gas meter {meter.key}")
            unit = normalize_gas_unit(gas_units[meter.key])
        else:
            unit = UNIT_KWH
        override = (overrides.get(meter.key) or "").strip().upper() or None
        infos.append(
            MeterInfo(
                key=meter.key,
                supplier=SUPPLIER,
                kind=meter.kind,
                unit=unit,
                name=_name(meter.kind, meter.is_export, meter.point),
                serials=meter.serials,
                is_export=meter.is_export,
                currency=CURRENCY,
                time_zone=TIME_ZONE,
                cadence_minutes=30,
                rate_unit=UNIT_KWH,
                extra={"point": meter.point, "tariff_override": override},
            )
        )
    return infos


def meter_config(meter: MeterInfo) -> dict[str, Any]:
    """JSON-serialisable form of a meter for config entry data."""
    return {
        "key": meter.key,
        "kind": meter.kind,
        "unit": meter.unit,
        "name": meter.name,
        "serials": list(meter.serials),
        "is_export": meter.is_export,
        "point": str(meter.extra.get("point") or ""),
        "tariff_override": meter.extra.get("tariff_override"),
    }


def meter_from_config(data: Mapping[str, Any]) -> MeterInfo:
    """Inverse of meter_config; raise ValueError when the stored data is not a valid meter."""
    kind = data.get("kind")
    point = str(data.get("point") or "")
    if kind not in ("electricity", "gas") or not point:
        raise ValueError("stored Octopus meter has no valid kind or point")
    key = meter_key(kind, point)
    if data.get("key") not in (None, key):
        raise ValueError("stored Octopus meter key does not match its point")
    unit = UNIT_KWH if kind == "electricity" else normalize_gas_unit(str(data.get("unit", "")))
    serials = data.get("serials") or []
    if not isinstance(serials, list | tuple) or not all(isinstance(s, str) for s in serials):
        raise ValueError("stored Octopus meter serials are not a list of strings")
    override = data.get("tariff_override")
    is_export = bool(data.get("is_export", False))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        name = _name(kind, is_export, point)
    return MeterInfo(
        key=key,
        supplier=SUPPLIER,
        kind=kind,
        unit=unit,
        name=name,
        serials=tuple(serials),
        is_export=is_export,
        currency=CURRENCY,
        time_zone=TIME_ZONE,
        cadence_minutes=30,
        rate_unit=UNIT_KWH,
        extra={"point": point, "tariff_override": str(override) if override else None},
    )
