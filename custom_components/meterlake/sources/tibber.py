"""Tibber: hourly consumption (and production) history and 15-minute spot prices per home.

Each followed home is an import meter `tibber_<home id>`; a home that produces also gets an
export meter `<import key>_production`. History comes from the `consumption`/`production`
connections, 744 hours a page, paged backwards with `before: <startCursor>`:

* Hours Tibber does not know yet (null consumption) are not stored: no row, never a zero.
* Cursors seen are cached per home (page-oldest time -> startCursor), so a later fetch of an
  older window (the backfill action, 30-day windows) starts near its end instead of at now.
* Throttle: Tibber publishes hourly values with a delay, so a window reaching the present is
  read at most once an hour per meter; a throttled poll returns no rows and complete_until
  None (the watermark stays). Windows ending more than an hour ago (backfill) always go out.

Prices (import meters): today's and tomorrow's quarter-hours, cached per home and refreshed when
nothing is cached, when the cache does not cover now, or when tomorrow is missing after 12:45
local time (Tibber publishes around 13:00 CET) and the last request is 15 minutes old. They come
back as FetchResult.rates/agreements (so analytics.tariffs.rate_at works) and via price_slots().

Every request waits for the process-wide rate limiter (tibber_api.LIMITER).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import partial
from itertools import pairwise
import re
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import aiohttp

from ..analytics.prices import covers, local_day, slot_at
from ..const import CONF_HOMES, CONF_KEEP_RAW_DAYS
from .base import (
    AuditRecord,
    Capabilities,
    Executor,
    FetchResult,
    HttpClient,
    MeterInfo,
    PriceSlot,
    RetryPolicy,
    SourceAuthError,
    SourceContext,
    SourceError,
    SourcePayloadError,
    SourceUnavailableError,
    rejected_audit,
)
from .tibber_api import (
    LIMITER,
    PAGE_HOURS,
    SUPPLIER,
    RateLimiter,
    RetryBudget,
    TibberAccount,
    TibberHome,
    amend_audit,
    async_read_account,
    graphql,
    make_client,
    number,
    parse_time,
    quote,
    viewer_home,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LIMITER",
    "RateLimiter",
    "TibberAccount",
    "TibberHome",
    "TibberSource",
    "async_read_account",
    "create_source",
    "home_config",
    "meter_infos",
    "meter_key",
]

CONF_ACCESS_TOKEN: Final = "access_token"

HISTORY_THROTTLE: Final = timedelta(hours=1)
PRICE_SPACING: Final = timedelta(minutes=15)
TOMORROW_PUBLISHED: Final = time(12, 45)
SLOT: Final = timedelta(minutes=15)
# The one agreement of a Tibber meter: its own spot-price "tariff", open-ended.
AGREEMENT_FROM: Final = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Series:
    """A history connection and the node fields of its quantity, unit and money.

    `fallback_money` is read where `money` is absent or null (consumption: `totalCost`).
    """

    name: str
    value: str
    unit: str
    money: str
    fallback_money: str | None = None


CONSUMPTION: Final = _Series("consumption", "consumption", "consumptionUnit", "cost", "totalCost")
PRODUCTION: Final = _Series("production", "production", "productionUnit", "profit")
# The history is asked for in HOURLY resolution: a node without `to` ends an hour after `from`.
NODE_LENGTH: Final = timedelta(hours=1)


@dataclass(slots=True)
class _Page:
    nodes: list[Mapping[str, Any]]
    oldest: datetime | None
    cursor: str | None
    has_previous: bool


@dataclass(slots=True)
class _Built:
    frame: pd.DataFrame
    # Rows normalize set aside, per reason.
    rejected: dict[str, int]
    unrated: int
    complete_until: datetime | None


# -------------------------------------------------------------------------------- entry data


def meter_key(home_id: str) -> str:
    """`tibber_` + the home id lowercased with everything but [a-z0-9] removed."""
    cleaned = re.sub(r"[^a-z0-9]", "", home_id.lower())
    if not cleaned:
        raise ValueError("tibber: a home id needs letters or digits")
    return f"tibber_{cleaned}"


def home_config(home: TibberHome) -> dict[str, Any]:
    """What a config entry stores per followed home (data["homes"])."""
    return {
        "id": home.id,
        "name": home.name,
        "time_zone": home.time_zone,
        "currency": home.currency,
        "production": home.production,
    }


def meter_infos(homes: Sequence[Mapping[str, Any]]) -> list[MeterInfo]:
    """The meters of the stored homes: one import meter each, plus production where it exists."""
    meters: list[MeterInfo] = []
    for home in homes:
        home_id = str(home["id"])
        key = meter_key(home_id)
        name = str(home.get("name") or home_id)
        currency = str(home["currency"]) if home.get("currency") else None
        zone = str(home.get("time_zone") or "UTC")
        meters.append(_meter(key, name, currency, zone, {"home_id": home_id}))
        if home.get("production"):
            meters.append(
                _meter(
                    f"{key}_production",
                    f"{name} production",
                    currency,
                    zone,
                    {"home_id": home_id, "production": True},
                )
            )
    return meters


def _meter(
    key: str, name: str, currency: str | None, zone: str, extra: dict[str, Any]
) -> MeterInfo:
    return MeterInfo(
        key=key,
        supplier=SUPPLIER,
        kind="electricity",
        unit="kWh",
        name=name,
        is_export=bool(extra.get("production")),
        currency=currency,
        time_zone=zone,
        cadence_minutes=60,
        extra=extra,
        has_standing_charge=False,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


# -------------------------------------------------------------------------------- source


class TibberSource:
    """The followed homes of one Tibber token as a Source (sources.base.Source)."""

    supplier = SUPPLIER
    update_interval = timedelta(minutes=15)
    # Each poll re-reads from watermark - overlap: Tibber revises recent hours now and then.
    capabilities = Capabilities(
        overlap=timedelta(days=2), spot_prices=True, normal_delay=timedelta(hours=6)
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: str,
        homes: Sequence[Mapping[str, Any]],
        executor: Executor,
        keep_raw: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = _utcnow,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._session = session
        self._token = token
        self._meters = tuple(meter_infos(homes))
        self._executor = executor
        self._keep_raw = keep_raw
        self._sleep = sleep
        self._now = now
        self._limiter = limiter or LIMITER
        self._policy = policy
        # (home id, connection) -> {oldest hour of a page: that page's startCursor}
        self._cursors: dict[tuple[str, str], dict[datetime, str]] = {}
        # meter key -> (when, window start) of the last read of a window reaching the present
        self._recent: dict[str, tuple[datetime, datetime]] = {}
        self._prices: dict[str, tuple[PriceSlot, ...]] = {}
        self._price_asked: dict[str, datetime] = {}
        self._zones: dict[str, tzinfo] = {}

    @property
    def meters(self) -> Sequence[MeterInfo]:
        """The import (and production) meters of the followed homes."""
        return self._meters

    def price_slots(self, meter: MeterInfo) -> Sequence[PriceSlot]:
        """The cached quarter-hour prices (today, tomorrow) of the meter's home."""
        if meter.is_export:
            return ()
        return self._prices.get(_home_id(meter), ())

    async def async_fetch(self, meter: MeterInfo, start: datetime, end: datetime) -> FetchResult:
        """Hours of `meter` starting in [start, end), with Tibber's rate and cost; prices too."""
        home_id = _home_id(meter)
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        series = PRODUCTION if meter.is_export else CONSUMPTION
        if start >= end:
            return FetchResult(
                intervals=await self._executor(_empty_intervals), complete_until=None
            )
        now = self._now()
        client = self._client()
        # Retries of transient GraphQL errors: one budget for every request of this poll.
        budget = RetryBudget((self._policy or RetryPolicy()).retries)
        throttled = self._throttled(meter, start, end, now)
        notes = ["throttled: history is read at most hourly"] if throttled else []
        nodes: list[Mapping[str, Any]] = []
        failure: SourceError | None = None
        price_failure: SourceUnavailableError | None = None
        try:
            if not throttled:
                nodes, failure = await self._read_history(
                    client, home_id, series, start, end, budget
                )
            # Prices are their own request, whatever became of the history: a home whose
            # history fails still gets (or keeps) its prices in this poll.
            if not meter.is_export:
                price_failure = await self._poll_prices(client, meter, home_id, now, notes, budget)
        except SourceError as err:
            err.audit = [*client.audit, self._poll_row(series, 0, [*notes, type(err).__name__])]
            raise
        result, rejected = await self._result(
            client, meter, series=series, nodes=nodes, start=start, end=end, now=now
        )
        if failure is not None:
            result.complete_until = None
            notes.append(f"{series.name} read incomplete")
        if price_failure is not None:
            notes.append("prices unavailable")
        result.audit = [*client.audit, self._poll_row(series, len(result.intervals), notes)]
        if (record := rejected_audit(SUPPLIER, rejected, when=self._now())) is not None:
            result.audit.append(record)
        if failure is not None and not isinstance(failure, SourceUnavailableError):
            # Refused for good (a home gone, a malformed answer): the error says what it is.
            failure.audit = list(result.audit)
            raise failure
        if (error := failure or price_failure) is not None:
            assert isinstance(error, SourceUnavailableError)
            unavailable = SourceUnavailableError(
                f"tibber: {series.name} poll incomplete ({error})",
                retry_after=error.retry_after,
                partial=result,
            )
            unavailable.audit = list(result.audit)
            raise unavailable from error
        if not throttled and end >= now - HISTORY_THROTTLE:
            self._recent[meter.key] = (now, start)
        return result

    def _client(self) -> HttpClient:
        return make_client(
            self._session,
            self._token,
            limiter=self._limiter,
            sleep=self._sleep,
            policy=self._policy,
            keep_raw=self._keep_raw,
        )

    def _throttled(self, meter: MeterInfo, start: datetime, end: datetime, now: datetime) -> bool:
        """True for a window reaching the present that was read less than an hour ago.

        Older windows (end more than an hour ago) and windows starting before the one read
        (wider than it) always go to the network.
        """
        last = self._recent.get(meter.key)
        if last is None or end < now - HISTORY_THROTTLE:
            return False
        read_at, read_from = last
        return now - read_at < HISTORY_THROTTLE and start >= read_from

    async def _result(
        self,
        client: HttpClient,
        meter: MeterInfo,
        *,
        series: _Series,
        nodes: Sequence[Mapping[str, Any]],
        start: datetime,
        end: datetime,
        now: datetime,
    ) -> tuple[FetchResult, dict[str, int]]:
        """Interval frame, price frames and scrubbed raw payloads of one poll (in the executor).

        Also the rows normalize set aside, per reason (for the audit).
        """
        built = await self._executor(
            partial(_build, meter=meter, series=series, nodes=nodes, start=start, end=end, now=now)
        )
        slots = tuple(self.price_slots(meter))
        rates, agreements = (
            await self._executor(_price_frames, meter.key, slots) if slots else (None, None)
        )
        result = FetchResult(
            intervals=built.frame,
            complete_until=built.complete_until,
            rates=rates,
            agreements=agreements,
            rejected=sum(built.rejected.values()),
            unrated=built.unrated,
            raw=[(name, _scrub(body, self._token)) for name, body in client.raw],
        )
        return result, built.rejected

    def _poll_row(self, series: _Series, rows: int, notes: Sequence[str]) -> AuditRecord:
        """One summary row per poll, next to the HTTP rows."""
        return AuditRecord(
            time=self._now(),
            supplier=SUPPLIER,
            endpoint=f"{series.name}-poll",
            status=None,
            rows=rows,
            duration_s=0.0,
            error="; ".join(notes) or None,
        )

    # ---------------------------------------------------------------------------- history

    async def _read_history(  # noqa: PLR0917 - private, one call shape
        self,
        client: HttpClient,
        home_id: str,
        series: _Series,
        start: datetime,
        end: datetime,
        budget: RetryBudget,
    ) -> tuple[list[Mapping[str, Any]], SourceError | None]:
        """Pages backwards until one reaches `start`; what was read survives a failure.

        Starts from the nearest cached cursor at or after `end` (the first page then already
        holds the hours just before it), else from the newest hours. Any failure but a refused
        token is returned with the nodes read, so the poll still reads the prices.
        """
        cursors = self._cursors.setdefault((home_id, series.name), {})
        before = min((t for t in cursors if t >= end), default=None)
        cursor = None if before is None else cursors[before]
        nodes: list[Mapping[str, Any]] = []
        previous: datetime | None = None
        while True:
            try:
                page = await self._history_page(client, home_id, series, cursor, budget)
            except SourceAuthError:
                raise
            except SourceError as err:
                return nodes, err
            nodes.extend(page.nodes)
            oldest = page.oldest
            if oldest is not None and page.cursor:
                cursors[oldest] = page.cursor
            if (
                oldest is None
                or oldest <= start
                or not page.has_previous
                or not page.cursor
                or (previous is not None and oldest >= previous)
            ):
                return nodes, None
            previous, cursor = oldest, page.cursor

    async def _history_page(
        self,
        client: HttpClient,
        home_id: str,
        series: _Series,
        cursor: str | None,
        budget: RetryBudget,
    ) -> _Page:
        """One page of the connection; a null connection is an empty last page."""
        data = await graphql(
            client,
            self._token,
            history_query(series.name, home_id, cursor),
            endpoint=series.name,
            limiter=self._limiter,
            budget=budget,
        )
        connection = viewer_home(data, series.name).get(series.name)
        if connection is None:
            amend_audit(client, rows=0)
            return _Page([], None, None, False)
        if not isinstance(connection, Mapping):
            raise SourcePayloadError(f"tibber: {series.name} returned a malformed connection")
        raw_nodes = connection.get("nodes")
        raw_nodes = [] if raw_nodes is None else raw_nodes
        if not isinstance(raw_nodes, list):
            raise SourcePayloadError(f"tibber: {series.name} returned malformed nodes")
        nodes = [node for node in raw_nodes if isinstance(node, Mapping)]
        info = connection.get("pageInfo")
        info = info if isinstance(info, Mapping) else {}
        cursor_text = info.get("startCursor")
        times = [t for node in nodes if (t := parse_time(node.get("from"))) is not None]
        amend_audit(client, rows=len(nodes))
        return _Page(
            nodes=nodes,
            oldest=min(times, default=None),
            cursor=cursor_text if isinstance(cursor_text, str) and cursor_text else None,
            has_previous=info.get("hasPreviousPage") is True,
        )

    # ---------------------------------------------------------------------------- prices

    async def _zone(self, name: str) -> tzinfo:
        """The home's tzinfo, loaded once in the executor (zoneinfo reads files)."""
        zone = self._zones.get(name)
        if zone is None:
            try:
                zone = await self._executor(ZoneInfo, name)
            except KeyError, ValueError:
                zone = UTC
            self._zones[name] = zone
        return zone

    async def _poll_prices(  # noqa: PLR0917 - private, one call shape
        self,
        client: HttpClient,
        meter: MeterInfo,
        home_id: str,
        now: datetime,
        notes: list[str],
        budget: RetryBudget,
    ) -> SourceUnavailableError | None:
        """Refresh prices for a poll; an unavailable API is returned (the rows still count)."""
        try:
            note = await self._refresh_prices(client, meter, home_id, now, budget)
        except SourceAuthError:
            raise
        except SourceUnavailableError as err:
            return err
        except SourceError as err:
            # A refused or malformed price answer must not cost the history already read.
            return SourceUnavailableError(f"tibber: price-info failed ({err})")
        if note is not None:
            notes.append(note)
        return None

    async def _refresh_prices(
        self, client: HttpClient, meter: MeterInfo, home_id: str, now: datetime, budget: RetryBudget
    ) -> str | None:
        """Refresh the home's price cache when due; a note when a failed refresh was survivable.

        A failure while the cache still covers now keeps the cache (tomorrow's prices just come
        later); otherwise it raises.
        """
        zone = await self._zone(meter.time_zone)
        cached = self._prices.get(home_id, ())
        if not prices_due(cached, self._price_asked.get(home_id), now, zone):
            return None
        self._price_asked[home_id] = now
        try:
            slots = await self._read_prices(client, home_id, meter.currency, budget)
        except SourceAuthError:
            raise
        except SourceError as err:
            if slot_at(cached, now) is None:
                raise
            return f"prices kept ({err})"
        self._prices[home_id] = slots
        return None

    async def _read_prices(
        self,
        client: HttpClient,
        home_id: str,
        fallback_currency: str | None,
        budget: RetryBudget,
    ) -> tuple[PriceSlot, ...]:
        """Today's and tomorrow's quarter-hour prices; none without a current subscription."""
        endpoint = "price-info"
        data = await graphql(
            client,
            self._token,
            price_query(home_id),
            endpoint=endpoint,
            limiter=self._limiter,
            budget=budget,
        )
        subscription = viewer_home(data, endpoint).get("currentSubscription")
        info = subscription.get("priceInfo") if isinstance(subscription, Mapping) else None
        if info is None:
            amend_audit(client, rows=0)
            return ()
        if not isinstance(info, Mapping):
            raise SourcePayloadError("tibber: price-info returned a malformed priceInfo")
        current = info.get("current")
        currency = current.get("currency") if isinstance(current, Mapping) else None
        nodes: list[Any] = []
        for day in ("today", "tomorrow"):
            items = info.get(day) or []
            if not isinstance(items, list):
                raise SourcePayloadError(f"tibber: price-info returned a malformed {day}")
            nodes.extend(items)
        slots = price_slots_of(nodes, currency if isinstance(currency, str) else fallback_currency)
        amend_audit(client, rows=len(slots))
        return slots


# -------------------------------------------------------------------------------- helpers


def history_query(connection: str, home_id: str, cursor: str | None) -> str:
    """The history query of one page; the first page has no `before`."""
    series = PRODUCTION if connection == PRODUCTION.name else CONSUMPTION
    before = "" if cursor is None else f", before: {quote(cursor)}"
    money = " ".join(field for field in (series.money, series.fallback_money) if field)
    return (
        f"{{ viewer {{ home(id: {quote(home_id)}) {{ "
        f"{series.name}(resolution: HOURLY, last: {PAGE_HOURS}{before}) {{ "
        "pageInfo { hasPreviousPage startCursor } "
        f"nodes {{ from to {series.value} {series.unit} {money} "
        "unitPrice unitPriceVAT currency } } } } }"
    )


def price_query(home_id: str) -> str:
    """Today's and tomorrow's quarter-hour prices of one home."""
    return (
        f"{{ viewer {{ home(id: {quote(home_id)}) {{ currentSubscription {{ "
        "priceInfo(resolution: QUARTER_HOURLY) { "
        "current { total energy tax startsAt level currency } "
        "today { total startsAt level } tomorrow { total startsAt level } } } } } }"
    )


def prices_due(
    cached: Sequence[PriceSlot], asked_at: datetime | None, now: datetime, zone: tzinfo
) -> bool:
    """Whether the price cache needs a request now.

    Yes when nothing was asked yet or the cache does not cover now; and while tomorrow is
    missing after 12:45 local time, every 15 minutes. Never twice within 15 minutes (a home
    without a subscription has no prices to cover now; backfill windows poll in a burst), so
    at most 4 price requests an hour per home.
    """
    if asked_at is None:
        return True
    if now - asked_at < PRICE_SPACING:
        return False
    if slot_at(cached, now) is None:
        return True
    if now.astimezone(zone).time() < TOMORROW_PUBLISHED:
        return False
    tomorrow_start, tomorrow_end = local_day(now, zone, 1)
    return not covers(cached, tomorrow_start, tomorrow_end)


def price_slots_of(nodes: Sequence[Any], currency: str | None) -> tuple[PriceSlot, ...]:
    """PriceSlots from today/tomorrow nodes, sorted; unusable nodes are skipped.

    A slot ends where the next one starts, but never later than the series' step (the
    smallest distance between starts: 15 minutes), so a gap in the list stays a gap; the
    last slot lasts one step.
    """
    found: dict[datetime, tuple[float, str | None]] = {}
    for node in nodes:
        if not isinstance(node, Mapping):
            continue
        begins = parse_time(node.get("startsAt"))
        total = number(node.get("total"))
        if begins is None or total is None:
            continue
        level = node.get("level")
        found[begins.astimezone(UTC)] = (total, level.lower() if isinstance(level, str) else None)
    starts = sorted(found)
    step = min((b - a for a, b in pairwise(starts)), default=SLOT)
    slots = []
    for index, begins in enumerate(starts):
        following = starts[index + 1] if index + 1 < len(starts) else begins + step
        total, level = found[begins]
        slots.append(PriceSlot(begins, min(following, begins + step), total, level, currency))
    return tuple(slots)


def _home_id(meter: MeterInfo) -> str:
    home_id = meter.extra.get("home_id")
    if meter.supplier != SUPPLIER or not isinstance(home_id, str) or not home_id:
        raise SourceError("tibber: not a Tibber meter")
    return home_id


def _scrub(value: Any, token: str) -> Any:
    """A JSON body with the token replaced by *** wherever it might appear."""
    if isinstance(value, str):
        return value.replace(token, "***") if token else value
    if isinstance(value, list):
        return [_scrub(item, token) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, token) for key, item in value.items()}
    return value


# -------------------------------------------------------------------------------- executor work


def _empty_intervals() -> pd.DataFrame:
    from ..analytics import intervals

    return intervals.empty_intervals()


def _build(
    *,
    meter: MeterInfo,
    series: _Series,
    nodes: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime,
    now: datetime,
) -> _Built:
    """The interval table of the known hours starting in [start, end).

    Null quantities (hours Tibber does not know yet) are skipped, not rejected. A node without
    `to` ends an hour after its `from` (the query asks for HOURLY nodes); one whose `from` cannot
    be read is rejected (unparseable_time, in the poll's `rejected` audit row). Rate is
    unitPrice (incl. VAT); cost is Tibber's own (`cost`, else `totalCost`) when given, else
    value x rate (normalize). Rows are normalized per currency, then de-duplicated across pages.
    """
    import pandas as pd

    from ..analytics import intervals

    groups: dict[str | None, list[dict[str, Any]]] = {}
    for node in nodes:
        value = node.get(series.value)
        if value is None:
            continue
        begins = parse_time(node.get("from"))
        if begins is not None and not start <= begins < end:
            continue
        currency = node.get("currency")
        ends = node.get("to")
        if ends is None and begins is not None:
            ends = (begins + NODE_LENGTH).isoformat()
        money = node.get(series.money)
        if money is None and series.fallback_money is not None:
            money = node.get(series.fallback_money)
        groups.setdefault(currency if isinstance(currency, str) else meter.currency, []).append(
            {
                "start": node.get("from"),
                "end": ends,
                "value": value,
                "rate": node.get("unitPrice"),
                "cost": money,
            }
        )
    frames: list[pd.DataFrame] = []
    rejected: Counter[str] = Counter()
    for currency, rows in groups.items():
        normalized = intervals.normalize(
            rows,
            meter=meter.key,
            supplier=SUPPLIER,
            kind=meter.kind,
            unit=meter.unit,
            currency=currency,
            naive_tz=meter.time_zone,
            ingested_at=now,
        )
        rejected.update(normalized.reason_counts())
        if not normalized.frame.empty:
            frames.append(normalized.frame)
    if not frames:
        return _Built(intervals.empty_intervals(), dict(rejected), 0, None)
    frame = intervals.dedupe(pd.concat(frames, ignore_index=True))
    newest = frame["end"].max().to_pydatetime()
    return _Built(frame, dict(rejected), int(frame["rate"].isna().sum()), min(newest, end))


def _price_frames(key: str, slots: Sequence[PriceSlot]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rates (RATE_COLUMNS) and the one open agreement, so tariffs.rate_at reads spot prices."""
    import pandas as pd

    from ..analytics.schema import AGREEMENT_COLUMNS, RATE_COLUMNS

    count = len(slots)
    rates = pd.DataFrame(
        {
            "supplier": pd.Series([SUPPLIER] * count, dtype=object),
            "tariff": pd.Series([key] * count, dtype=object),
            "register": pd.Series(["standard"] * count, dtype=object),
            "valid_from": _stamps([s.start for s in slots]),
            "valid_to": _stamps([s.end for s in slots]),
            "rate": pd.Series([s.total for s in slots], dtype="float64"),
            "rate_exc_vat": pd.Series([None] * count, dtype="float64"),
            "currency": pd.Series([s.currency for s in slots], dtype=object),
            "payment_method": pd.Series([None] * count, dtype=object),
        },
        columns=list(RATE_COLUMNS),
    )
    agreements = pd.DataFrame(
        {
            "meter": pd.Series([key], dtype=object),
            "tariff": pd.Series([key], dtype=object),
            "valid_from": _stamps([AGREEMENT_FROM]),
            "valid_to": _stamps([None]),
        },
        columns=list(AGREEMENT_COLUMNS),
    )
    return rates, agreements


def _stamps(values: Sequence[datetime | None]) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(pd.Series(list(values), dtype=object), utc=True).astype(
        "datetime64[us, UTC]"
    )


# -------------------------------------------------------------------------------- factory


def create_source(context: SourceContext) -> TibberSource:
    """Build the source of a config entry: data access_token and homes (home_config dicts)."""
    options = context.options
    return TibberSource(
        context.session,
        token=str(context.data[CONF_ACCESS_TOKEN]),
        homes=list(context.data.get(CONF_HOMES) or ()),
        executor=context.executor,
        keep_raw=int(options.get(CONF_KEEP_RAW_DAYS, 0) or 0) > 0,
    )
