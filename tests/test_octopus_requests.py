"""Octopus requests: tariffs read once a day, silent serials left alone, adaptive polls, sweeps.

An account with an import meter on Agile (replaced: the old serial stopped on 1 October), an
export meter on a fixed Outgoing tariff and a SMETS2 gas meter in m³ (tests/fixtures/octopus/
requests_*.json). A simulated API (`PublishingApi`) answers the consumption and Agile requests
as Octopus does: each UTC day's half-hours appear at 06:00 the next day, Agile's next day at
16:00; export has rows only from 08:00 to 16:00. Time starts on Friday 2026-11-20 at 12:10 UTC
(GMT: local days are UTC days).
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pandas as pd
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
    AiohttpClientMockResponse,
)
from yarl import URL

from custom_components.meterlake.config_flow import default_options
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sources.base import RetryPolicy
from custom_components.meterlake.sources.octopus import (
    discover_meters,
    meter_config,
    meter_infos,
)
from custom_components.meterlake.sweeps import sweep_time

from .conftest import hourly_statistic, load_fixture_json, settle

API = "https://api.octopus.energy/v1"
KEY = "sk_live_REQUESTS0123456789"
ACCOUNT = "A-CAFE0017"
NOW = datetime(2026, 11, 20, 12, 10, tzinfo=UTC)
IMPORT = "octopus_electricity_1300000000011"
EXPORT = "octopus_electricity_1300000000099"
GAS = "octopus_gas_7700000001"
OLD, NEW, EXPORT_SERIAL, GAS_SERIAL = "19L0000001", "23J0000002", "23J0000003", "E6S00000000004"
RETIRED = datetime(2026, 10, 1, tzinfo=UTC)
AGILE = f"{API}/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-A"
OUTGOING = (
    f"{API}/products/OUTGOING-FIX-12M-19-05-13/electricity-tariffs/E-1R-OUTGOING-FIX-12M-19-05-13-A"
)
GAS_TARIFF = f"{API}/products/VAR-22-11-01/gas-tariffs/G-1R-VAR-22-11-01-A"
SLOT = timedelta(minutes=30)


def consumption_url(kind: str, point: str, serial: str) -> str:
    return f"{API}/{kind}-meter-points/{point}/meters/{serial}/consumption/"


OLD_URL = consumption_url("electricity", "1300000000011", OLD)
NEW_URL = consumption_url("electricity", "1300000000011", NEW)
EXPORT_URL = consumption_url("electricity", "1300000000099", EXPORT_SERIAL)
GAS_URL = consumption_url("gas", "7700000001", GAS_SERIAL)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def page(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(rows), "next": None, "previous": None, "results": rows}


class PublishingApi:
    """Octopus as of the frozen clock; `revised`, `withheld` and `published_at` steer it."""

    def __init__(self) -> None:
        self.revised: dict[tuple[str, datetime], float] = {}
        self.withheld: set[datetime] = set()  # UTC days not published (yet)
        self.failing: set[str] = set()  # serials answered with HTTP 503
        self.publish_hour = 6

    def published_until(self, now: datetime) -> datetime:
        """End of the newest published day: yesterday's midnight once 06:00 has passed."""
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight if now.hour >= self.publish_hour else midnight - timedelta(days=1)

    async def consumption(self, method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        serial = url.path.split("/meters/")[1].strip("/").split("/")[0]
        if serial in self.failing:
            return AiohttpClientMockResponse(method, url, status=503)
        query = url.query
        now = dt_util.utcnow()
        start = _parse(query.get("period_from")) or RETIRED - timedelta(days=60)
        end = min(_parse(query.get("period_to")) or now, self.published_until(now))
        rows = []
        slot = max(start, RETIRED - timedelta(days=60))
        while slot < end:
            day = slot.replace(hour=0, minute=0)
            value = self._value(serial, slot)
            if value is not None and day not in self.withheld:
                value = self.revised.get((serial, slot), value)
                rows.append(
                    {
                        "consumption": value,
                        "interval_start": iso(slot),
                        "interval_end": iso(slot + SLOT),
                    }
                )
            slot += SLOT
        if query.get("page_size") == "1":
            rows = rows[:1]
        return AiohttpClientMockResponse(method, url, json=page(rows))

    @staticmethod
    def _value(serial: str, slot: datetime) -> float | None:
        if serial == OLD:
            return 0.2 if slot < RETIRED else None
        if serial == NEW:
            return 0.25 if slot >= RETIRED else None
        if serial == EXPORT_SERIAL:
            return 0.3 if 8 <= slot.hour < 16 else None  # no row at night
        return 0.05  # gas, m³

    async def agile(self, method: str, url: URL, data: Any) -> AiohttpClientMockResponse:
        now = dt_util.utcnow()
        start = _parse(url.query.get("period_from")) or now
        end = _parse(url.query.get("period_to")) or now
        today_23 = now.replace(hour=23, minute=0, second=0, microsecond=0)
        known = today_23 + timedelta(days=1) if now.hour >= 16 else today_23
        rows, slot = [], start.replace(minute=0 if start.minute < 30 else 30, second=0)
        while slot < min(end, known):
            pence = 10.0 + slot.hour
            rows.append(
                {
                    "value_exc_vat": pence / 1.05,
                    "value_inc_vat": pence,
                    "valid_from": iso(slot),
                    "valid_to": iso(slot + SLOT),
                    "payment_method": None,
                }
            )
            slot += SLOT
        return AiohttpClientMockResponse(method, url, json=page(rows))


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def requests_to(mock: AiohttpClientMocker, url: str) -> list[URL]:
    target = URL(url)
    return [call[1] for call in mock.mock_calls if call[1].with_query(None) == target]


@pytest.fixture(autouse=True)
def _no_backoff() -> Generator[None]:
    with patch(
        "custom_components.meterlake.sources.octopus.RetryPolicy",
        partial(RetryPolicy, base_delay=0.0, max_jitter=0.0),
    ):
        yield


@pytest.fixture
def api(aioclient_mock: AiohttpClientMocker) -> PublishingApi:
    sim = PublishingApi()
    aioclient_mock.get(
        f"{API}/accounts/{ACCOUNT}/", json=load_fixture_json("octopus/requests_account.json")
    )
    for url in (OLD_URL, NEW_URL, EXPORT_URL, GAS_URL):
        aioclient_mock.get(url, side_effect=sim.consumption)
    aioclient_mock.get(f"{AGILE}/standard-unit-rates/", side_effect=sim.agile)
    standing = load_fixture_json("octopus/requests_standing.json")
    aioclient_mock.get(f"{AGILE}/standing-charges/", json=standing)
    aioclient_mock.get(
        f"{OUTGOING}/standard-unit-rates/",
        json=load_fixture_json("octopus/requests_outgoing_rates.json"),
    )
    aioclient_mock.get(f"{OUTGOING}/standing-charges/", json=standing)
    aioclient_mock.get(
        f"{GAS_TARIFF}/standard-unit-rates/",
        json=load_fixture_json("octopus/requests_gas_rates.json"),
    )
    aioclient_mock.get(f"{GAS_TARIFF}/standing-charges/", json=standing)
    return sim


def make_entry(tmp_path: Path, *, backfill_days: int, gas_unit: str = "m³") -> MockConfigEntry:
    account = load_fixture_json("octopus/requests_account.json")
    discovered = discover_meters(account, now=NOW)
    meters = meter_infos(
        discovered, selected={m.key for m in discovered}, gas_units={GAS: gas_unit}
    )
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"Octopus Energy {ACCOUNT}",
        data={
            "source": "octopus",
            "api_key": KEY,
            "account_number": ACCOUNT,
            "meters": [meter_config(m) for m in meters],
        },
        options=default_options()
        | {"archive_root": str(tmp_path / "lake"), "backfill_days": backfill_days},
        unique_id=ACCOUNT,
    )


async def load(
    hass: HomeAssistant, freezer: Any, tmp_path: Path, *, backfill_days: int = 40, **kwargs: Any
) -> MockConfigEntry:
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/London")
    entry = make_entry(tmp_path, backfill_days=backfill_days, **kwargs)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def tick(hass: HomeAssistant, freezer: Any, count: int = 1) -> None:
    """`count` of the coordinator's 30-minute polls."""
    for _ in range(count):
        freezer.tick(SLOT)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)


async def sweep(hass: HomeAssistant, freezer: Any, entry: MockConfigEntry, *, weekly: bool) -> None:
    """Move to the entry's next sweep time (on its gap weekday when `weekly`) and let it run."""
    when = sweep_time(entry.entry_id)
    local = dt_util.as_local(dt_util.utcnow())
    target = local.replace(hour=when.hour, minute=when.minute, second=0, microsecond=0)
    while (
        target <= local
        or (weekly and target.weekday() != when.weekday)
        or (not weekly and target.weekday() == when.weekday)
    ):
        target += timedelta(days=1)
    freezer.move_to(target)
    async_fire_time_changed(hass, target)
    await hass.async_block_till_done(wait_background_tasks=True)
    # The sweep spaces its meters three minutes apart.
    for _ in range(3):
        freezer.tick(timedelta(minutes=3))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    await settle(hass)


def archive_sql(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    root = tmp_path / "lake"
    query = sql.replace(
        "{consumption}", f"read_parquet('{root}/consumption/**/*.parquet', hive_partitioning=1)"
    )
    query = query.replace(
        "{audit}", f"read_parquet('{root}/audit/**/*.parquet', hive_partitioning=1)"
    )
    query = query.replace(
        "{rates}", f"read_parquet('{root}/rates/**/*.parquet', hive_partitioning=1)"
    )
    return duckdb.sql(query).fetchall()


# ------------------------------------------------------------------------------------ tariffs


async def test_fixed_tariffs_are_read_once_a_day_not_every_poll(
    hass: HomeAssistant,
    freezer: Any,
    tmp_path: Path,
    aioclient_mock: AiohttpClientMocker,
    api: PublishingApi,
) -> None:
    await load(hass, freezer, tmp_path)
    assert len(requests_to(aioclient_mock, f"{OUTGOING}/standard-unit-rates/")) == 1
    await tick(hass, freezer, 47)  # the rest of the day: 47 more polls
    assert len(requests_to(aioclient_mock, f"{OUTGOING}/standard-unit-rates/")) == 1
    assert len(requests_to(aioclient_mock, f"{GAS_TARIFF}/standing-charges/")) == 1
    await tick(hass, freezer, 2)  # a day after the first read
    assert len(requests_to(aioclient_mock, f"{OUTGOING}/standard-unit-rates/")) == 2
    assert len(requests_to(aioclient_mock, f"{GAS_TARIFF}/standard-unit-rates/")) == 2


async def test_agile_is_read_again_only_while_the_next_day_is_awaited(
    hass: HomeAssistant,
    freezer: Any,
    tmp_path: Path,
    aioclient_mock: AiohttpClientMocker,
    api: PublishingApi,
) -> None:
    await load(hass, freezer, tmp_path)
    reads = requests_to(aioclient_mock, f"{AGILE}/standard-unit-rates/")
    assert len(reads) == 1
    await tick(hass, freezer, 5)  # to 14:40: 8 hours and more of known rates left
    assert len(requests_to(aioclient_mock, f"{AGILE}/standard-unit-rates/")) == 1
    await tick(hass, freezer, 4)  # to 16:40: read at 15:10, 15:40 (nothing yet), 16:10
    reads = requests_to(aioclient_mock, f"{AGILE}/standard-unit-rates/")
    assert len(reads) == 4
    # The awaited-day reads ask from the end of the known rates, for unit rates only.
    assert reads[1].query["period_from"] == "2026-11-20T23:00:00Z"
    assert len(requests_to(aioclient_mock, f"{AGILE}/standing-charges/")) == 1
    await tick(hass, freezer, 12)  # to the next morning: tomorrow is known, no more reads
    assert len(requests_to(aioclient_mock, f"{AGILE}/standard-unit-rates/")) == 4
    await settle(hass)
    ((until,),) = archive_sql(
        tmp_path, "SELECT max(valid_to) FROM {rates} WHERE tariff = 'E-1R-AGILE-24-10-01-A'"
    )
    assert until == datetime(2026, 11, 21, 23, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------ consumption


async def test_a_replaced_meters_silent_serial_is_asked_once_a_day(
    hass: HomeAssistant,
    freezer: Any,
    tmp_path: Path,
    aioclient_mock: AiohttpClientMocker,
    api: PublishingApi,
) -> None:
    await load(hass, freezer, tmp_path)
    asked = len(requests_to(aioclient_mock, OLD_URL))
    await tick(hass, freezer, 46)
    assert len(requests_to(aioclient_mock, OLD_URL)) == asked
    await tick(hass, freezer, 3)
    assert len(requests_to(aioclient_mock, OLD_URL)) == asked + 1


async def test_consumption_is_asked_for_when_the_next_day_may_be_published(
    hass: HomeAssistant,
    freezer: Any,
    tmp_path: Path,
    aioclient_mock: AiohttpClientMocker,
    api: PublishingApi,
) -> None:
    entry = await load(hass, freezer, tmp_path)
    coordinator = entry.runtime_data.coordinator
    await tick(hass, freezer, 38)  # to 07:10 on 21 November: 20 November arrived at 06:00
    before = len(requests_to(aioclient_mock, NEW_URL))
    await tick(hass, freezer, 48)  # a day, to 07:10 on 22 November
    per_day = len(requests_to(aioclient_mock, NEW_URL)) - before
    assert per_day <= 12  # every tick would be 48
    # 21 November was stored at the first poll after its 06:00 publication.
    assert coordinator.watermark(IMPORT) == datetime(2026, 11, 22, tzinfo=UTC)
    first_after = [
        u
        for u in requests_to(aioclient_mock, NEW_URL)[before:]
        if u.query.get("period_to", "") >= "2026-11-22T06:00:00Z"
    ]
    assert first_after and first_after[0].query["period_to"] <= "2026-11-22T06:40:00Z"


async def test_diagnostics_show_which_meters_were_not_due(
    hass: HomeAssistant, freezer: Any, tmp_path: Path, api: PublishingApi
) -> None:
    from custom_components.meterlake.diagnostics import async_get_config_entry_diagnostics

    entry = await load(hass, freezer, tmp_path)
    await tick(hass, freezer, 37)  # to 06:40 on 21 November: 20 November arrived at 06:00
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    # The next day is not expected before tomorrow morning.
    assert diagnostics["last_poll"]["not_due"] == [True, True, True]
    for expected in diagnostics["next_data_expected"].values():
        assert "2026-11-22T04:00" <= expected <= "2026-11-22T06:00"


# ------------------------------------------------------------------------------ sweeps


async def test_the_daily_sweep_rereads_35_days_with_one_request_per_serial(
    hass: HomeAssistant,
    freezer: Any,
    tmp_path: Path,
    aioclient_mock: AiohttpClientMocker,
    api: PublishingApi,
) -> None:
    entry = await load(hass, freezer, tmp_path)
    counts = {url: len(requests_to(aioclient_mock, url)) for url in (NEW_URL, EXPORT_URL, GAS_URL)}
    await sweep(hass, freezer, entry, weekly=False)
    now = dt_util.utcnow()
    for url, count in counts.items():
        swept = [
            u
            for u in requests_to(aioclient_mock, url)[count:]
            if u.query["period_from"] <= iso(now - timedelta(days=35))
        ]
        assert len(swept) == 1, url
        assert swept[0].query["page_size"] == "25000"


async def test_a_revised_day_replaces_the_stored_values_and_is_audited(
    hass: HomeAssistant, freezer: Any, tmp_path: Path, api: PublishingApi
) -> None:
    await_entry = await load(hass, freezer, tmp_path)
    revised_day = datetime(2026, 11, 1, tzinfo=UTC)  # weeks before: polls no longer read it
    for n in range(10):
        api.revised[NEW, revised_day + n * SLOT] = 0.35
    await sweep(hass, freezer, await_entry, weekly=False)
    ((day_total,),) = archive_sql(
        tmp_path,
        f"SELECT sum(value) FROM {{consumption}} WHERE meter = '{IMPORT}' "
        "AND start >= '2026-11-01' AND start < '2026-11-02'",
    )
    assert day_total == pytest.approx(48 * 0.25 + 10 * 0.10)
    audit = archive_sql(tmp_path, "SELECT rows, error FROM {audit} WHERE endpoint = 'revised'")
    assert audit == [
        (10, "Octopus electricity import …0011 2026-11-01: old 2.500 kWh, new 3.500 kWh")
    ]
    # The statistic re-anchored: its last sum is the archive's total.
    ((total,),) = archive_sql(
        tmp_path, f"SELECT sum(value) FROM {{consumption}} WHERE meter = '{IMPORT}'"
    )
    rows = await hourly_statistic(hass, f"meterlake:{IMPORT}_consumption")
    assert rows[-1]["sum"] == pytest.approx(total, rel=1e-9)


async def test_the_weekly_sweep_fetches_missing_ranges_older_than_the_revision_window(
    hass: HomeAssistant, freezer: Any, tmp_path: Path, api: PublishingApi
) -> None:
    missing_day = datetime(2026, 10, 10, tzinfo=UTC)
    api.withheld.add(missing_day)
    entry = await load(hass, freezer, tmp_path, backfill_days=60)
    query = (
        f"SELECT count(*) FROM {{consumption}} WHERE meter = '{GAS}' "
        "AND start >= '2026-10-10' AND start < '2026-10-11'"
    )
    assert archive_sql(tmp_path, query) == [(0,)]
    api.withheld.clear()  # Octopus publishes it late
    await sweep(hass, freezer, entry, weekly=False)
    assert archive_sql(tmp_path, query) == [(0,)]  # 35 days back do not reach it
    await sweep(hass, freezer, entry, weekly=True)
    assert archive_sql(tmp_path, query) == [(48,)]
    (note,) = archive_sql(
        tmp_path,
        "SELECT error FROM {audit} WHERE endpoint = 'gap-sweep' AND error LIKE 'Octopus gas%'",
    )
    assert note[0].startswith("Octopus gas …0001: 48 missing slots in 1 ranges, 1 fetched")


async def test_export_night_slots_are_quiet_not_gaps(
    hass: HomeAssistant,
    freezer: Any,
    tmp_path: Path,
    aioclient_mock: AiohttpClientMocker,
    api: PublishingApi,
) -> None:
    entry = await load(hass, freezer, tmp_path, backfill_days=20)

    async def backfill(*, force: bool) -> dict[str, Any]:
        response = await hass.services.async_call(
            DOMAIN,
            "backfill",
            {"config_entry": entry.entry_id, "days": 15, "force": force},
            blocking=True,
            return_response=True,
        )
        assert response is not None
        return dict(response["meters"][EXPORT])

    forced = await backfill(force=True)
    # 14 hours a day without export: counted apart, not as missing.
    assert forced["missing_intervals"] == 0
    assert forced["quiet_intervals"] >= 14 * 28
    asked = len(requests_to(aioclient_mock, EXPORT_URL))
    again = await backfill(force=False)
    assert again["windows_fetched"] == 0
    assert len(requests_to(aioclient_mock, EXPORT_URL)) == asked


async def test_backfill_log_lines_name_the_meter(
    hass: HomeAssistant,
    freezer: Any,
    tmp_path: Path,
    api: PublishingApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = await load(hass, freezer, tmp_path, backfill_days=5)
    caplog.set_level("INFO", logger="custom_components.meterlake.services")
    await hass.services.async_call(
        DOMAIN,
        "backfill",
        {"config_entry": entry.entry_id, "days": 5, "force": True},
        blocking=True,
        return_response=True,
    )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Backfill of")]
    assert any("Octopus gas …0001" in line for line in lines)
    assert any("Octopus electricity export …0099" in line for line in lines)
    frame = pd.DataFrame({"line": lines})
    assert frame["line"].nunique() == len(lines)


async def test_a_meter_failing_during_the_sweep_leaves_the_others_swept(
    hass: HomeAssistant,
    freezer: Any,
    tmp_path: Path,
    api: PublishingApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = await load(hass, freezer, tmp_path)
    for n in range(4):
        api.revised[NEW, datetime(2026, 11, 2, tzinfo=UTC) + n * SLOT] = 0.5
    api.failing.add(GAS_SERIAL)
    await sweep(hass, freezer, entry, weekly=False)
    assert any("Sweep of Octopus gas …0001 stopped" in r.getMessage() for r in caplog.records)
    audit = archive_sql(tmp_path, "SELECT rows FROM {audit} WHERE endpoint = 'revised'")
    assert audit == [(4,)]
