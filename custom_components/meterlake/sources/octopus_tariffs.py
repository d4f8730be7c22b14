"""Octopus tariffs: code parsing, product-link fallback, paginated rate reads and the rate cache.

Rates live in plain Python rows until the executor turns them into frames, so this module stays
importable without pandas.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import re
from typing import Any, Final, Literal, NamedTuple

from .base import HttpClient, SourcePayloadError
from .octopus_account import API_BASE, parse_time

TARIFF_CODE_RE: Final = re.compile(r"^([A-Z])-([0-9A-Z]+)-([A-Z0-9-]+)-([A-Z])$")
DIRECT_DEBIT: Final = "DIRECT_DEBIT"
RATE_PAGE_SIZE: Final = 1500
MAX_PAGES: Final = 500

# Tariffs are re-read (docs/architecture.md, "Requests"): when an agreement changes (the source
# drops the cache), once a day (TARIFF_MAX_AGE: an open rate may get an end and a successor), and
# while the newest published rate ends within RATE_HORIZON - an Agile day (to 23:00 UK) is
# published around 16:00 UK the day before, so reads start at 15:00 and repeat at most every
# RATE_MIN_AGE until it appears. Such a read asks for the unit rates only.
TARIFF_MAX_AGE: Final = timedelta(days=1)
RATE_HORIZON: Final = timedelta(hours=8)
RATE_MIN_AGE: Final = timedelta(minutes=30)

Fuel = Literal["electricity", "gas"]
_RATE_RELS: Final = {
    "standard_unit_rates": "standard",
    "day_unit_rates": "day",
    "night_unit_rates": "night",
}
_PRODUCT_BLOCKS: Final[dict[str, Fuel]] = {
    "single_register_electricity_tariffs": "electricity",
    "dual_register_electricity_tariffs": "electricity",
    "single_register_gas_tariffs": "gas",
}


@dataclass(frozen=True)
class TariffRef:
    """Where the rates of one tariff code live: one URL per register plus standing charges."""

    code: str
    fuel: Fuel
    product: str
    rate_urls: Mapping[str, str]
    standing_charge_url: str

    @property
    def registers(self) -> tuple[str, ...]:
        """Registers priced by this tariff ("standard", or "day" and "night")."""
        return tuple(self.rate_urls)


def parse_tariff_code(code: str) -> TariffRef | None:
    """E-1R-AGILE-24-10-01-C -> product AGILE-24-10-01, electricity, one register; else None."""
    match = TARIFF_CODE_RE.fullmatch(code.strip().upper())
    if match is None or match.group(1) not in ("E", "G"):
        return None
    fuel: Fuel = "electricity" if match.group(1) == "E" else "gas"
    product = match.group(3)
    base = f"{API_BASE}/products/{product}/{fuel}-tariffs/{match.group(0)}"
    if match.group(2) == "2R" and fuel == "electricity":
        urls = {"day": f"{base}/day-unit-rates/", "night": f"{base}/night-unit-rates/"}
    else:
        urls = {"standard": f"{base}/standard-unit-rates/"}
    return TariffRef(match.group(0), fuel, product, urls, f"{base}/standing-charges/")


async def async_resolve_via_product(
    client: HttpClient, product: str, tariff_code: str
) -> TariffRef | None:
    """Find a (legacy) tariff code among a product's regional tariffs and use their links.

    Used when an agreement's code does not parse and the meter's tariff override names the
    product. None when the product does not list the code.
    """
    body = await client.request("GET", f"{API_BASE}/products/{product}/", endpoint="product")
    if not isinstance(body, dict):
        raise SourcePayloadError("octopus: product payload is not an object")
    for block_name, fuel in _PRODUCT_BLOCKS.items():
        regions = body.get(block_name)
        if not isinstance(regions, Mapping):
            continue
        for payments in regions.values():
            if not isinstance(payments, Mapping):
                continue
            for tariff in payments.values():
                if isinstance(tariff, Mapping) and tariff.get("code") == tariff_code:
                    return _ref_from_links(tariff_code, fuel, product, tariff.get("links"))
    return None


def _ref_from_links(code: str, fuel: Fuel, product: str, links: Any) -> TariffRef | None:
    urls: dict[str, str] = {}
    standing = ""
    for link in links if isinstance(links, list) else ():
        if not isinstance(link, Mapping) or not isinstance(link.get("href"), str):
            continue
        rel = link.get("rel")
        if rel in _RATE_RELS:
            urls[_RATE_RELS[rel]] = link["href"]
        elif rel == "standing_charges":
            standing = link["href"]
    if not urls or not standing:
        return None
    if "day" in urls and "night" in urls:
        urls.pop("standard", None)
    return TariffRef(code, fuel, product, urls, standing)


async def iter_pages(
    client: HttpClient,
    url: str,
    *,
    endpoint: str,
    params: Mapping[str, str | int] | None,
    auth: Mapping[str, str] | None = None,
) -> AsyncIterator[list[Mapping[str, Any]]]:
    """Yield the `results` of each page, following the absolute `next` URL until it is null."""
    next_url: str | None = url
    next_params = params
    seen: set[str] = set()
    pages = 0
    while next_url is not None:
        body = await client.request(
            "GET", next_url, endpoint=endpoint, params=next_params, auth=auth
        )
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise SourcePayloadError(f"octopus: {endpoint} page has no results list")
        yield [row for row in body["results"] if isinstance(row, Mapping)]
        following = body.get("next")
        if following is not None and not isinstance(following, str):
            raise SourcePayloadError(f"octopus: {endpoint} page has an invalid next link")
        pages += 1
        if following is not None and (following in seen or pages >= MAX_PAGES):
            raise SourcePayloadError(f"octopus: {endpoint} pagination does not end")
        if following is not None:
            seen.add(following)
        next_url, next_params = following, None


@dataclass(frozen=True)
class PriceRow:
    """One unit rate or standing charge in GBP (pence ÷ 100), [valid_from, valid_to)."""

    register: str
    valid_from: datetime
    valid_to: datetime | None
    inc_vat: float
    exc_vat: float
    payment_method: str | None


# Why parse_price set a rate row aside (counted in the fetch's `rejected` audit row).
NO_START: Final = "rate_without_start"
NO_PRICE: Final = "rate_without_price"
ENDS_BEFORE_START: Final = "rate_ends_before_start"


def rate_problem(row: Mapping[str, Any]) -> str | None:
    """Why a rate row of the API cannot be used, or None when it can."""
    valid_from = parse_time(row.get("valid_from"))
    if valid_from is None:
        return NO_START
    inc = row.get("value_inc_vat")
    if not isinstance(inc, int | float) or isinstance(inc, bool):
        return NO_PRICE
    valid_to = parse_time(row.get("valid_to"))
    if valid_to is not None and valid_to <= valid_from:
        return ENDS_BEFORE_START
    return None


def parse_price(row: Mapping[str, Any], register: str) -> PriceRow | None:
    """Parse a rate row of the API; None when rate_problem finds one."""
    valid_from = parse_time(row.get("valid_from"))
    inc = row.get("value_inc_vat")
    if rate_problem(row) is not None or valid_from is None or not isinstance(inc, int | float):
        return None
    exc = row.get("value_exc_vat")
    if not isinstance(exc, int | float) or isinstance(exc, bool):
        exc = inc
    method = row.get("payment_method")
    return PriceRow(
        register=register,
        valid_from=valid_from,
        valid_to=parse_time(row.get("valid_to")),
        inc_vat=float(inc) / 100.0,
        exc_vat=float(exc) / 100.0,
        payment_method=str(method) if method else None,
    )


def filter_payment_method(rows: Iterable[PriceRow]) -> list[PriceRow]:
    """Per register: keep DIRECT_DEBIT or null rows when any exist, else keep what there is."""
    by_register: dict[str, list[PriceRow]] = {}
    for row in rows:
        by_register.setdefault(row.register, []).append(row)
    kept: list[PriceRow] = []
    for group in by_register.values():
        preferred = [r for r in group if r.payment_method in (None, DIRECT_DEBIT)]
        kept.extend(preferred or group)
    return kept


@dataclass
class TariffCache:
    """Rates and standing charges of one tariff read so far, over [covered_from, covered_to)."""

    ref: TariffRef
    covered_from: datetime
    covered_to: datetime
    fetched_at: datetime
    rates: dict[tuple[str, datetime, str | None], PriceRow] = field(default_factory=dict)
    charges: dict[tuple[datetime, str | None], PriceRow] = field(default_factory=dict)

    @property
    def known_until(self) -> datetime | None:
        """End of the newest rate; None while an open-ended rate exists (or none at all)."""
        ends = [row.valid_to for row in self.rates.values()]
        if not ends or any(end is None for end in ends):
            return None
        return max(end for end in ends if end is not None)

    def merge(self, rates: Iterable[PriceRow], charges: Iterable[PriceRow]) -> None:
        """Newer rows replace older ones with the same start (an open rate that got an end)."""
        for row in rates:
            self.rates[row.register, row.valid_from, row.payment_method] = row
        for row in charges:
            self.charges[row.valid_from, row.payment_method] = row


class RefreshSpan(NamedTuple):
    """A read to make: rates over [start, end), standing charges too when `charges`."""

    start: datetime
    end: datetime
    charges: bool = True


def refresh_range(
    entry: TariffCache | None,
    need_from: datetime,
    need_to: datetime,
    now: datetime,
    *,
    max_age: timedelta = TARIFF_MAX_AGE,
) -> RefreshSpan | None:
    """Return the read that brings the cache up to [need_from, need_to), or None.

    Past slots the cache does not cover are read (a backfill, a window after a long pause).
    Slots after now are not published yet unless the cache is due: older than `max_age`, or
    awaiting a publication (the newest rate ends within RATE_HORIZON, read at most every
    RATE_MIN_AGE, unit rates only).
    """
    if entry is None:
        return RefreshSpan(need_from, need_to)
    history = need_from < entry.covered_from
    age = now - entry.fetched_at
    known = entry.known_until
    forward_from: datetime | None = None
    charges = history
    if entry.covered_to < min(need_to, now):
        forward_from, charges = entry.covered_to, True
    if need_to > entry.covered_to or (known is not None and known < need_to):
        if age >= max_age:
            forward_from = min(forward_from or now, now, known or now, entry.covered_to)
            charges = True
        elif (
            known is not None
            and known < need_to
            and known - now <= RATE_HORIZON
            and age >= RATE_MIN_AGE
        ):
            forward_from = min(forward_from or known, known)
    if history and forward_from is not None:
        return RefreshSpan(need_from, max(need_to, entry.covered_to), True)
    if history:
        return RefreshSpan(need_from, entry.covered_from, True)
    if forward_from is not None:
        return RefreshSpan(max(forward_from, need_from), max(need_to, entry.covered_to), charges)
    return None


async def async_read_prices(
    client: HttpClient,
    ref: TariffRef,
    start: datetime,
    end: datetime,
    *,
    charges: bool = True,
    rejected: Counter[str] | None = None,
) -> tuple[list[PriceRow], list[PriceRow]]:
    """Read the unit rates (every register) and standing charges of a tariff over [start, end).

    Rows that cannot be used are counted per reason in `rejected`; `charges=False` skips the
    standing charges (a read that only waits for the next Agile day).
    """
    params: dict[str, str | int] = {
        "period_from": iso_z(start),
        "period_to": iso_z(end),
        "page_size": RATE_PAGE_SIZE,
    }
    reasons = rejected if rejected is not None else Counter()
    rates: list[PriceRow] = []
    for register, url in ref.rate_urls.items():
        async for page in iter_pages(client, url, endpoint=f"{register}-unit-rates", params=params):
            rates.extend(_parsed(page, register, reasons))
    standing: list[PriceRow] = []
    if charges:
        async for page in iter_pages(
            client, ref.standing_charge_url, endpoint="standing-charges", params=params
        ):
            standing.extend(_parsed(page, "standing", reasons))
    return filter_payment_method(rates), filter_payment_method(standing)


def _parsed(
    page: Iterable[Mapping[str, Any]], register: str, reasons: Counter[str]
) -> list[PriceRow]:
    rows = []
    for raw in page:
        if (problem := rate_problem(raw)) is not None:
            reasons[problem] += 1
        elif (row := parse_price(raw, register)) is not None:
            rows.append(row)
    return rows


def iso_z(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, the form the API documents for period_from/period_to."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
