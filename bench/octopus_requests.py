"""Requests an Octopus account costs per day, and how soon published data is stored.

A simulated Octopus API (in process, no network) serves one account for 7 days: electricity
import on Agile with a replaced meter (the old serial stopped reporting 40 days before), export
on a fixed Outgoing tariff, and gas in m³ on a variable tariff. Each local day's half-hours are
published the next morning at a time of their own (import and export around 06:00 UK, gas
around 09:30, each +- 1.5 h, seeded); Agile's next day appears at 16:00 UK. The real
OctopusSource is driven as the coordinator drives it: a tick every 30 minutes (each meter
fetched from its watermark minus the 3-day overlap when the source says it is due), and with
the new rules the daily sweep (35 days, one request per serial, at 13:00).

* requests_per_day: HTTP requests per simulated day with the new rules (goal <= 100);
* delay_p95_min: 95th percentile, over every meter-day published during the run, of the
  minutes from its publication to the poll that stored it (goal <= 60);
* vs_before: requests with the rules before (every tick, every serial, every tariff forward
  read, no sweep) over requests with the new rules, in the same run;
* before_requests_per_day, before_delay_p95_min: the same figures for the rules before.

Last line: JSON. Usage: .venv/bin/python bench/octopus_requests.py [--days N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import random
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

# Run as a script, bench/ would come first on sys.path and its statistics.py would shadow the
# standard library module of that name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from custom_components.meterlake.sources.base import MeterInfo  # noqa: E402
from custom_components.meterlake.sources.octopus import (  # noqa: E402
    EVERY_TICK,
    OctopusSource,
    RequestRules,
    discover_meters,
    meter_infos,
)

UK = ZoneInfo("Europe/London")
API = "https://api.octopus.energy/v1"
ACCOUNT = "A-0BE0C0DE"
KEY = "sk_live_BENCH"
IMPORT, EXPORT, GAS = "1200000000017", "1200000000099", "8800000001"
OLD, NEW, EXPORT_SERIAL, GAS_SERIAL = "19L0000001", "23J0000002", "23J0000002", "E6S00000000003"
AGILE, OUTGOING = "E-1R-AGILE-24-10-01-C", "E-1R-OUTGOING-FIX-12M-19-05-13-C"
GAS_TARIFF = "G-1R-VAR-22-11-01-C"
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
TICK = timedelta(minutes=30)
OVERLAP = timedelta(days=3)
BACKFILL = timedelta(days=7)
SWEEP = timedelta(days=35)


def account() -> dict[str, Any]:
    agreement = [{"tariff_code": AGILE, "valid_from": "2025-01-01T00:00:00Z", "valid_to": None}]
    return {
        "number": ACCOUNT,
        "properties": [
            {
                "id": 1,
                "moved_in_at": "2024-05-01T00:00:00+01:00",
                "moved_out_at": None,
                "electricity_meter_points": [
                    {
                        "mpan": IMPORT,
                        "consumption_standard": 3100,
                        "is_export": False,
                        "meters": [{"serial_number": OLD}, {"serial_number": NEW}],
                        "agreements": agreement,
                    },
                    {
                        "mpan": EXPORT,
                        "consumption_standard": 0,
                        "is_export": True,
                        "meters": [{"serial_number": EXPORT_SERIAL}],
                        "agreements": [
                            {"tariff_code": OUTGOING, "valid_from": "2024-05-01T00:00:00Z"}
                        ],
                    },
                ],
                "gas_meter_points": [
                    {
                        "mprn": GAS,
                        "consumption_standard": 11000,
                        "meters": [{"serial_number": GAS_SERIAL}],
                        "agreements": [
                            {"tariff_code": GAS_TARIFF, "valid_from": "2024-05-01T00:00:00Z"}
                        ],
                    }
                ],
            }
        ],
    }


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class SimulatedApi:
    """Octopus as of `now`: consumption published per local day, Agile per afternoon."""

    def __init__(self, seed: int) -> None:
        self.now = START
        self.requests: Counter[str] = Counter()
        rng = random.Random(seed)
        self.published: dict[tuple[str, datetime], datetime] = {}
        first_day = (START - timedelta(days=60)).astimezone(UK).date()
        for offset in range(80):
            day = first_day + timedelta(days=offset)
            morning = datetime(day.year, day.month, day.day, tzinfo=UK) + timedelta(days=1)
            for serial, hour in ((NEW, 6.0), (EXPORT_SERIAL + "x", 6.0), (GAS_SERIAL, 9.5)):
                at = morning + timedelta(hours=hour + rng.uniform(-1.5, 1.5))
                self.published[serial, morning - timedelta(days=1)] = at.astimezone(UTC)

    def day_published(self, serial: str, day_start: datetime) -> datetime:
        return self.published[serial, day_start]

    def body(self, url: str, params: dict[str, str]) -> Any:
        path = urlsplit(url).path
        self.requests[_kind(path)] += 1
        if path.endswith(f"/accounts/{ACCOUNT}/"):
            return account()
        if "/consumption/" in path:
            return self._consumption(path, params)
        if path.endswith("-unit-rates/"):
            return self._rates(path, params)
        if path.endswith("/standing-charges/"):
            return _page([_price("2024-05-01T00:00:00Z", None, 60.0)])
        raise AssertionError(f"unexpected request {url}")

    def _consumption(self, path: str, params: dict[str, str]) -> Any:
        point = path.split("-meter-points/")[1].split("/", maxsplit=1)[0]
        serial = path.split("/meters/")[1].split("/", maxsplit=1)[0]
        start = parse(params["period_from"]) if "period_from" in params else START - SWEEP * 3
        end = parse(params["period_to"]) if "period_to" in params else self.now
        rows = []
        key = EXPORT_SERIAL + "x" if point == EXPORT else serial
        retired = START - timedelta(days=40)
        slot = max(start, START - timedelta(days=60)).replace(minute=0, second=0)
        while slot < end:
            day_start = datetime.combine(slot.astimezone(UK).date(), datetime.min.time(), UK)
            visible = (key, day_start) in self.published and (
                self.published[key, day_start] <= self.now
            )
            live = serial != OLD or slot < retired
            old_gone = serial == NEW and slot < retired
            night = point == EXPORT and not 7 <= slot.astimezone(UK).hour < 17
            if visible and live and not old_gone and not night and slot >= start:
                rows.append(
                    {
                        "consumption": 0.25,
                        "interval_start": iso(slot),
                        "interval_end": iso(slot + TICK),
                    }
                )
            slot += TICK
        if params.get("page_size") == "1":
            rows = rows[:1]
        return _page(rows)

    def _rates(self, path: str, params: dict[str, str]) -> Any:
        start, end = parse(params["period_from"]), parse(params["period_to"])
        if AGILE not in path:
            return _page([_price("2024-05-01T00:00:00Z", None, 24.5)])
        # Agile: known up to 23:00 UK tomorrow once 16:00 UK today has passed.
        local = self.now.astimezone(UK)
        today_23 = datetime(local.year, local.month, local.day, 23, tzinfo=UK)
        known = today_23 + timedelta(days=1) if local.hour >= 16 else today_23
        rows, slot = [], max(start, START - SWEEP * 3).replace(minute=0, second=0)
        while slot < min(end, known.astimezone(UTC)):
            rows.append(_price(iso(slot), iso(slot + TICK), 10 + (slot.hour % 24)))
            slot += TICK
        return _page(rows)


def _kind(path: str) -> str:
    if "/accounts/" in path:
        return "account"
    if "/consumption/" in path:
        return "consumption"
    return "tariff"


def _price(valid_from: str, valid_to: str | None, pence: float) -> dict[str, Any]:
    return {
        "value_exc_vat": pence / 1.05,
        "value_inc_vat": pence,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "payment_method": None,
    }


def _page(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(rows), "next": None, "previous": None, "results": rows}


class _Response:
    def __init__(self, body: Any) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self._text = json.dumps(body)

    async def text(self) -> str:
        return self._text

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


class FakeSession:
    """What HttpClient uses of an aiohttp session, answered by the simulated API."""

    def __init__(self, api: SimulatedApi) -> None:
        self.api = api

    def request(self, method: str, url: str, *, params: Any = None, **_: Any) -> _Response:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        query |= {k: str(v) for k, v in (params or {}).items()}
        return _Response(self.api.body(url, query))


async def _inline(target: Callable[..., Any], *args: Any) -> Any:
    return target(*args)


async def simulate(days: int, seed: int, rules: RequestRules, *, sweep: bool) -> dict[str, float]:
    api = SimulatedApi(seed)
    clock = lambda: api.now  # noqa: E731

    async def no_sleep(_: float) -> None:
        return None

    discovered = discover_meters(account(), now=START)
    meters: list[MeterInfo] = meter_infos(
        discovered, selected={m.key for m in discovered}, gas_units={f"octopus_gas_{GAS}": "m³"}
    )
    source = OctopusSource(
        FakeSession(api),  # type: ignore[arg-type]
        api_key=KEY,
        account_number=ACCOUNT,
        meters=meters,
        executor=_inline,  # type: ignore[arg-type]
        sleep=no_sleep,
        now=clock,
        rules=rules,
    )
    watermark: dict[str, datetime] = {}
    seen: dict[tuple[str, datetime], datetime] = {}
    ticks = days * 48
    for tick in range(ticks):
        api.now = START + tick * TICK
        local = api.now.astimezone(UK)
        for meter in meters:
            if sweep and local.hour == 13 and local.minute == 0:
                result = await source.async_fetch(meter, api.now - SWEEP, api.now)
            elif source.poll_due(meter, api.now):
                mark = watermark.get(meter.key, api.now - BACKFILL)
                start = (mark - OVERLAP).replace(minute=0, second=0, microsecond=0)
                result = await source.async_fetch(meter, start, api.now)
            else:
                continue
            if result.complete_until is not None:
                watermark[meter.key] = max(watermark.get(meter.key, START), result.complete_until)
            for day in result.intervals["start"].dt.tz_convert(UK).dt.normalize().unique():
                seen.setdefault((meter.key, day.to_pydatetime()), api.now)
    delays = []
    for meter in meters:
        serial = EXPORT_SERIAL + "x" if meter.is_export else meter.serials[-1]
        for (key, day), first in seen.items():
            if key != meter.key or (serial, day) not in api.published:
                continue
            published = api.day_published(serial, day)
            if START <= published <= START + timedelta(days=days) - timedelta(hours=2):
                delays.append((first - published).total_seconds() / 60)
    delays.sort()
    p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else float("nan")
    total = sum(api.requests.values())
    print(
        f"{'new rules' if rules.adaptive else 'rules before'}: {total} requests in {days} days"
        f" ({dict(api.requests)}), {len(delays)} meter-days published, delay p95 {p95:.0f} min"
        f", max {max(delays, default=float('nan')):.0f} min"
    )
    return {"requests_per_day": total / days, "delay_p95_min": p95}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    after = await simulate(args.days, args.seed, RequestRules(), sweep=True)
    before = await simulate(args.days, args.seed, EVERY_TICK, sweep=False)
    print(
        json.dumps(
            {
                "requests_per_day": round(after["requests_per_day"], 1),
                "delay_p95_min": round(after["delay_p95_min"], 1),
                "vs_before": round(before["requests_per_day"] / after["requests_per_day"], 2),
                "before_requests_per_day": round(before["requests_per_day"], 1),
                "before_delay_p95_min": round(before["delay_p95_min"], 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
