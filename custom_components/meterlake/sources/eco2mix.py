"""RTE eCO2mix on ODRE (France): the national or one region's electricity mix per quarter-hour.

One grid "meter" per entry. A poll reads the real-time dataset for the window (ODSQL `where` on
`date_heure`, the only reliable key: `date` + `heure` are Paris wall time and break at DST),
paging by `offset` while offset + limit stays within the API's 10,000 cap, or through the
uncapped `/exports/json` endpoint in windows of at most 30 days when the window holds more.

RTE later replaces real-time values by consolidated ones. So the source also reads the
consolidated dataset: for the part of a (backfill) window older than what the real-time dataset
returns, and once a day (the first poll after 04:00 Paris time, and the first poll after start)
for the last 45 days in one export. Those rows carry `consolidated=True`; the archive and
`analytics.grid.dedupe` keep them over real-time rows of the same start.

`complete_until` is the end of the newest quarter-hour whose `consommation` is known, so the
null tail of the newest rows is read again on the next poll. Each poll adds one heartbeat audit
row (endpoint "poll") to the HTTP rows; on failure they travel on the exception's `audit`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
import time
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import aiohttp

from .base import (
    AuditRecord,
    Capabilities,
    Executor,
    FetchResult,
    HttpClient,
    MeterInfo,
    RetryPolicy,
    SourceContext,
    SourceError,
    SourcePayloadError,
    SourceUnavailableError,
)

if TYPE_CHECKING:
    import pandas as pd

SUPPLIER: Final = "eco2mix"
API_BASE: Final = "https://odre.opendatasoft.com/api/explore/v2.1/catalog/datasets"
NATIONAL: Final = "national"
TIME_ZONE: Final = "Europe/Paris"
# Built when the module is imported (Home Assistant imports sources in the executor): reading
# tzdata from disk never happens on the event loop.
PARIS: Final = ZoneInfo(TIME_ZONE)
SLOT: Final = timedelta(minutes=15)

PAGE_LIMIT: Final = 100
OFFSET_CAP: Final = 10_000  # offset + limit may not exceed this on /records
EXPORT_WINDOW: Final = timedelta(days=30)
CONSOLIDATED_LOOKBACK: Final = timedelta(days=45)
REFRESH_HOUR: Final = 4  # Paris time; RTE publishes consolidated data overnight

# INSEE codes of the 12 metropolitan regions eCO2mix covers.
REGIONS: Final[dict[str, str]] = {
    "11": "Île-de-France",
    "24": "Centre-Val de Loire",
    "27": "Bourgogne-Franche-Comté",
    "28": "Normandie",
    "32": "Hauts-de-France",
    "44": "Grand Est",
    "52": "Pays de la Loire",
    "53": "Bretagne",
    "75": "Nouvelle-Aquitaine",
    "76": "Occitanie",
    "84": "Auvergne-Rhône-Alpes",
    "93": "Provence-Alpes-Côte d'Azur",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _check_perimeter(perimeter: str) -> str:
    if perimeter != NATIONAL and perimeter not in REGIONS:
        raise ValueError(f"eco2mix: unknown perimeter {perimeter!r}")
    return perimeter


def dataset(perimeter: str, *, consolidated: bool) -> str:
    """The ODRE dataset id of a perimeter, real-time or consolidated."""
    scope = "national" if _check_perimeter(perimeter) == NATIONAL else "regional"
    return f"eco2mix-{scope}-{'cons-def' if consolidated else 'tr'}"


def grid_meter(perimeter: str) -> MeterInfo:
    """The one grid meter of an entry: MW every quarter-hour, Paris time, no prices."""
    _check_perimeter(perimeter)
    national = perimeter == NATIONAL
    return MeterInfo(
        key="eco2mix_national" if national else f"eco2mix_{perimeter}",
        supplier=SUPPLIER,
        kind="grid",
        unit="MW",
        name="eCO2mix France" if national else f"eCO2mix {REGIONS[perimeter]}",
        currency=None,
        time_zone=TIME_ZONE,
        cadence_minutes=15,
        extra={"perimeter": perimeter},
        has_standing_charge=False,
    )


def iso_z(moment: datetime) -> str:
    """An aware datetime as an ODSQL UTC literal, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def where_clause(perimeter: str, start: datetime, end: datetime) -> str:
    """ODSQL filter on `date_heure` in [start, end), and the region where there is one."""
    clause = f"date_heure >= '{iso_z(start)}' AND date_heure < '{iso_z(end)}'"
    if _check_perimeter(perimeter) != NATIONAL:
        clause += f" AND code_insee_region = '{perimeter}'"
    return clause


def _records_url(name: str) -> str:
    return f"{API_BASE}/{name}/records"


def _exports_url(name: str) -> str:
    return f"{API_BASE}/{name}/exports/json"


def _page(body: Any, endpoint: str) -> tuple[list[Any], int]:
    """(results, total_count) of a /records answer; anything else is a payload error."""
    if isinstance(body, dict):
        results, total = body.get("results"), body.get("total_count")
        if isinstance(results, list) and isinstance(total, int) and not isinstance(total, bool):
            return results, total
    raise SourcePayloadError(f"{SUPPLIER}: {endpoint} returned an unexpected shape")


async def async_check(
    session: aiohttp.ClientSession,
    perimeter: str,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    policy: RetryPolicy | None = None,
) -> None:
    """Read one row of the perimeter's real-time dataset; raise a SourceError if that fails."""
    name = dataset(perimeter, consolidated=False)
    client = HttpClient(
        session, SUPPLIER, policy=policy or RetryPolicy(), sleep=sleep, auth_statuses=frozenset()
    )
    params: dict[str, str | int] = {"limit": 1, "order_by": "date_heure desc"}
    if perimeter != NATIONAL:
        params["where"] = f"code_insee_region = '{perimeter}'"
    endpoint = f"{name}/records"
    _page(
        await client.request("GET", _records_url(name), endpoint=endpoint, params=params), endpoint
    )


@dataclass
class _Reads:
    """Records read by one poll, by origin (kept when a later request fails)."""

    realtime: list[Any] = field(default_factory=list)
    gap: list[Any] = field(default_factory=list)
    refresh: list[Any] = field(default_factory=list)


@dataclass
class _Built:
    grid: pd.DataFrame
    intervals: pd.DataFrame
    rejected: int
    complete_until: datetime | None


class Eco2mixSource:
    """One eCO2mix perimeter as a Source (sources.base.Source) with a single grid meter."""

    supplier = SUPPLIER
    update_interval = timedelta(minutes=15)
    # The coordinator polls at these minutes past the hour: a few minutes after each quarter.
    capabilities = Capabilities(
        overlap=timedelta(hours=3), grid=True, aligned_minutes=(3, 18, 33, 48)
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        perimeter: str,
        executor: Executor,
        keep_raw: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = _utcnow,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._session = session
        self._perimeter = _check_perimeter(perimeter)
        self._meter = grid_meter(perimeter)
        self._executor = executor
        self._keep_raw = keep_raw
        self._sleep = sleep
        self._now = now
        self._policy = policy or RetryPolicy()
        self._refreshed_at: datetime | None = None

    @property
    def meters(self) -> Sequence[MeterInfo]:
        """The perimeter's grid meter."""
        return (self._meter,)

    @property
    def perimeter(self) -> str:
        """`national` or a region's INSEE code."""
        return self._perimeter

    async def async_fetch(self, meter: MeterInfo, start: datetime, end: datetime) -> FetchResult:
        """Grid rows starting in [start, end), plus the daily consolidated refresh when due."""
        if meter.key != self._meter.key:
            raise SourceError(f"{SUPPLIER}: {meter.key} is not this entry's grid meter")
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        client = HttpClient(
            self._session,
            SUPPLIER,
            policy=self._policy,
            sleep=self._sleep,
            keep_raw=self._keep_raw,
            auth_statuses=frozenset(),  # a public API: 401/403 is a refused request
        )
        began, when = time.monotonic(), self._now()
        reads = _Reads()
        try:
            if start < end:
                await self._read_window(client, reads, start, end)
            note = await self._refresh(client, reads, when)
        except SourceError as err:
            failure = await self._failed(err, client, reads, start, end, began, when)
            if failure is err:
                raise
            raise failure from err
        built = await self._build(reads, start, end, when)
        result = FetchResult(
            intervals=built.intervals,
            complete_until=built.complete_until,
            rejected=built.rejected,
            grid=built.grid,
        )
        result.audit.extend(client.audit)
        result.audit.append(_heartbeat(client, when, began, len(built.grid), note))
        result.raw.extend(client.raw)
        return result

    # ---------------------------------------------------------------------------- reading

    async def _read_window(
        self, client: HttpClient, reads: _Reads, start: datetime, end: datetime
    ) -> None:
        """Real time for the window; consolidated for the older part real time lacks."""
        first = await self._read_dataset(
            client, dataset(self._perimeter, consolidated=False), start, end, reads.realtime
        )
        gap_end = end if first is None else min(first, end)
        if gap_end - start >= SLOT:
            await self._read_dataset(
                client, dataset(self._perimeter, consolidated=True), start, gap_end, reads.gap
            )

    async def _read_dataset(
        self, client: HttpClient, name: str, start: datetime, end: datetime, sink: list[Any]
    ) -> datetime | None:
        """Append the records of [start, end) to `sink`; return the first start they hold."""
        endpoint = f"{name}/records"
        offset = 0
        while True:
            params: dict[str, str | int] = {
                "where": where_clause(self._perimeter, start, end),
                "order_by": "date_heure",
                "limit": PAGE_LIMIT,
                "offset": offset,
                "timezone": "UTC",
            }
            body = await client.request("GET", _records_url(name), endpoint=endpoint, params=params)
            results, total = _page(body, endpoint)
            if offset == 0 and total > OFFSET_CAP:
                await self._export(client, name, start, end, sink, window=EXPORT_WINDOW)
                break
            sink.extend(results)
            offset += PAGE_LIMIT
            if not results or offset >= total or offset + PAGE_LIMIT > OFFSET_CAP:
                break
        return _first_start(sink)

    async def _export(
        self,
        client: HttpClient,
        name: str,
        start: datetime,
        end: datetime,
        sink: list[Any],
        *,
        window: timedelta | None,
    ) -> None:
        """Read [start, end) from /exports/json, in windows of at most `window` (None: one)."""
        endpoint = f"{name}/exports"
        low = start
        while low < end:
            high = end if window is None else min(low + window, end)
            params: dict[str, str | int] = {
                "where": where_clause(self._perimeter, low, high),
                "order_by": "date_heure",
                "timezone": "UTC",
            }
            body = await client.request("GET", _exports_url(name), endpoint=endpoint, params=params)
            if not isinstance(body, list):
                raise SourcePayloadError(f"{SUPPLIER}: {endpoint} returned an unexpected shape")
            sink.extend(body)
            low = high

    def _refresh_due(self, now: datetime) -> bool:
        """First poll after start, then the first poll after each 04:00 Paris time."""
        if self._refreshed_at is None:
            return True
        local = now.astimezone(PARIS)
        boundary = local.replace(hour=REFRESH_HOUR, minute=0, second=0, microsecond=0)
        if local < boundary:
            boundary -= timedelta(days=1)
        return self._refreshed_at < boundary

    async def _refresh(self, client: HttpClient, reads: _Reads, now: datetime) -> str | None:
        """The daily consolidated read of the last 45 days; a failure is noted, not raised.

        The window's own rows are already read; the refresh is tried again on the next poll.
        """
        if not self._refresh_due(now):
            return None
        name = dataset(self._perimeter, consolidated=True)
        try:
            await self._export(
                client, name, now - CONSOLIDATED_LOOKBACK, now, reads.refresh, window=None
            )
        except SourceError as err:
            reads.refresh.clear()
            return f"consolidated refresh failed: {err}"
        self._refreshed_at = now
        return None

    # ---------------------------------------------------------------------------- results

    async def _build(self, reads: _Reads, start: datetime, end: datetime, when: datetime) -> _Built:
        return await self._executor(partial(_build, reads, start=start, end=end, ingested=when))

    async def _failed(  # noqa: PLR0917 - private, one call shape
        self,
        err: SourceError,
        client: HttpClient,
        reads: _Reads,
        start: datetime,
        end: datetime,
        began: float,
        when: datetime,
    ) -> SourceError:
        """The error to raise: audit attached; after a spent budget, what was read as partial."""
        failure: SourceError = err
        rows = 0
        if isinstance(err, SourceUnavailableError):
            built = await self._build(reads, start, end, when)
            partial_result = None
            if not built.grid.empty:
                if not _covers_start(reads, start):
                    built.complete_until = None  # the window's start was not read
                partial_result = FetchResult(
                    intervals=built.intervals,
                    complete_until=built.complete_until,
                    rejected=built.rejected,
                    grid=built.grid,
                    raw=list(client.raw),
                )
                rows = len(built.grid)
            failure = SourceUnavailableError(
                f"{SUPPLIER}: {self._perimeter} read incomplete ({err})",
                retry_after=err.retry_after,
                placeholders=err.placeholders,
                partial=partial_result,
            )
        failure.audit = [*client.audit, _heartbeat(client, when, began, rows, str(err))]
        return failure


def _heartbeat(
    client: HttpClient, when: datetime, began: float, rows: int, error: str | None
) -> AuditRecord:
    """The poll's summary row: last HTTP status, grid rows, duration, error."""
    return AuditRecord(
        time=when,
        supplier=SUPPLIER,
        endpoint="poll",
        status=client.audit[-1].status if client.audit else None,
        rows=rows,
        duration_s=time.monotonic() - began,
        error=error,
    )


def _covers_start(reads: _Reads, start: datetime) -> bool:
    """Whether a failed read began at the window's start (else the watermark must stay).

    Only the real-time read counts: a failure during the consolidated head read means the
    head is incomplete, and the refresh never fails a poll.
    """
    first = _first_start(reads.realtime)
    return first is not None and first - start < SLOT


def _first_start(records: Sequence[Any]) -> datetime | None:
    """The earliest `date_heure` among records (they come sorted, but do not trust that)."""
    first: datetime | None = None
    for record in records:
        text = record.get("date_heure") if isinstance(record, dict) else None
        if not isinstance(text, str):
            continue
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if first is None or moment < first:
            first = moment
    return first


def _build(reads: _Reads, *, start: datetime, end: datetime, ingested: datetime) -> _Built:
    """Parse and combine the reads (executor): one row per start, consolidated preferred."""
    import pandas as pd

    from ..analytics import grid, intervals

    realtime, rejected_rt = grid.parse_records(
        reads.realtime, consolidated=False, ingested_at=ingested
    )
    consolidated, rejected_cons = grid.parse_records(
        [*reads.gap, *reads.refresh], consolidated=True, ingested_at=ingested
    )
    frames = [f for f in (realtime, consolidated) if not f.empty]
    combined = grid.dedupe(pd.concat(frames, ignore_index=True)) if frames else grid.empty_grid()
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    window = combined[(combined["start"] >= lo) & (combined["start"] < hi)]
    known = window.loc[window["consommation"].notna(), "end"]
    complete_until = None if known.empty else min(known.max().to_pydatetime(), end)
    return _Built(
        grid=combined,
        intervals=intervals.empty_intervals(),
        rejected=rejected_rt + rejected_cons,
        complete_until=complete_until,
    )


def create_source(context: SourceContext) -> Eco2mixSource:
    """Build the source of a config entry: data {"source": "eco2mix", "perimeter": ...}."""
    from ..const import CONF_KEEP_RAW_DAYS, CONF_PERIMETER

    return Eco2mixSource(
        context.session,
        perimeter=str(context.data.get(CONF_PERIMETER, NATIONAL)),
        executor=context.executor,
        keep_raw=int(context.options.get(CONF_KEEP_RAW_DAYS, 0) or 0) > 0,
    )
