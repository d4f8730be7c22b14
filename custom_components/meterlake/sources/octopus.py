"""Octopus Energy (UK): consumption per meter point, agreements, unit rates, standing charges, cost.

One `async_fetch` reads every serial of a meter point (replacements), keeps the row of the meter
installed later where two report the same slot, converts m³ gas to kWh, and prices each interval
through the agreements in force. What counts as "installed later": the serial whose first-ever
reading (one request, `order_by=period&page_size=1`, cached) is later; when that is unknown, the
first reading inside the window; ties go to the serial listed later on the account.

Failures keep what was fetched: when a page, a serial or a tariff read fails after the retry budget
is spent, `OctopusPartialFetchError` (a SourceUnavailableError, so callers that ignore it still
back off) carries a `partial` FetchResult with every row already read. Its `complete_until` is the
end of the contiguous range read from the window start; None when that range is empty or when
the rates could not be read (the watermark then stays, so the next poll prices the rows again).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Final

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
    SourceNotFoundError,
    SourceUnavailableError,
    rejected_audit,
)
from .octopus_account import (
    ACCOUNT_NUMBER_RE,
    API_BASE,
    CURRENCY,
    SUPPLIER,
    UNIT_M3,
    DiscoveredMeter,
    annual_quantity,
    async_fetch_account,
    basic_auth,
    default_gas_unit,
    discover_meters,
    meter_config,
    meter_from_config,
    meter_infos,
    normalize_account_number,
    parse_time,
)
from .octopus_tariffs import (
    TARIFF_CODE_RE,
    TARIFF_MAX_AGE,
    TariffCache,
    TariffRef,
    async_read_prices,
    async_resolve_via_product,
    iso_z,
    iter_pages,
    parse_tariff_code,
    refresh_range,
)
from .polling import PublicationSchedule

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ACCOUNT_NUMBER_RE",
    "TARIFF_CODE_RE",
    "DiscoveredMeter",
    "OctopusFetchResult",
    "OctopusPartialFetchError",
    "OctopusSource",
    "RequestRules",
    "async_fetch_account",
    "create_source",
    "default_gas_unit",
    "discover_meters",
    "meter_config",
    "meter_from_config",
    "meter_infos",
    "normalize_account_number",
    "parse_tariff_code",
]

CONF_API_KEY: Final = "api_key"
CONF_ACCOUNT_NUMBER: Final = "account_number"
CONF_METERS: Final = "meters"
# Options: {meter key: tariff code or product code}, on top of each stored meter's override.
CONF_TARIFF_OVERRIDES: Final = "tariff_overrides"

CONSUMPTION_PAGE_SIZE: Final = 25000
ACCOUNT_MAX_AGE: Final = timedelta(hours=6)
# Rates are read up to this far past the window's end, for the current and next rate.
RATE_LOOKAHEAD: Final = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class RequestRules:
    """How sparingly the source asks (docs/architecture.md, "Requests").

    `tariff_max_age`: a tariff's rates and a product look-up are re-read after this long (and
    when agreements change, or while the next Agile day is awaited). `adaptive`: scheduled polls
    follow each meter's PublicationSchedule instead of every tick. `skip_silent_serials`: a
    serial that returned nothing while its successor reported is asked again once a day only.
    """

    tariff_max_age: timedelta = TARIFF_MAX_AGE
    adaptive: bool = True
    skip_silent_serials: bool = True


# The rules before adaptive polling (every tick, every serial, every tariff): bench baseline.
EVERY_TICK: Final = RequestRules(
    tariff_max_age=timedelta(0), adaptive=False, skip_silent_serials=False
)
SILENT_RECHECK: Final = timedelta(days=1)


@dataclass(slots=True)
class OctopusFetchResult(FetchResult):
    """FetchResult plus what a replacement or an unpriced tariff left behind.

    `superseded`: rows of an earlier-installed meter dropped because a later one reported the
    same slot. `silent_serials`: serials that returned no row in the window (noted, no error);
    `skipped_serials`: serials not asked because they stayed silent after their successor
    started (RequestRules.skip_silent_serials).
    `unresolved_tariffs`: agreement codes no rate could be found for (their intervals are
    counted in `unrated`).
    """

    superseded: int = 0
    silent_serials: tuple[str, ...] = ()
    skipped_serials: tuple[str, ...] = ()
    unresolved_tariffs: tuple[str, ...] = ()


class OctopusPartialFetchError(SourceUnavailableError):
    """The retry budget ran out part-way; `partial` holds everything read before that."""

    def __init__(
        self,
        message: str,
        *,
        partial: OctopusFetchResult | None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.partial = partial


@dataclass
class _SerialRead:
    serial: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    failed: bool = False
    not_found: bool = False
    skipped: bool = False


@dataclass
class _Silence:
    """A serial that returned nothing from `since` on while another serial reported."""

    since: datetime
    checked_at: datetime


@dataclass
class _Agreement:
    tariff: str
    valid_from: datetime
    valid_to: datetime | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OctopusSource:
    """The meters of one Octopus account as a Source (sources.base.Source)."""

    supplier = SUPPLIER
    update_interval = timedelta(minutes=30)
    # Each poll re-reads from watermark - overlap: late and corrected readings arrive.
    # The daily sweep re-reads 35 days (late data, revisions); the weekly one every missing
    # range of 13 months.
    capabilities = Capabilities(
        overlap=timedelta(days=3),
        normal_delay=timedelta(hours=48),
        adaptive=True,
        revision_window=timedelta(days=35),
        gap_window=timedelta(days=396),
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        account_number: str,
        meters: Sequence[MeterInfo],
        executor: Executor,
        calorific_value: float = 39.5,
        volume_correction: float = 1.02264,
        keep_raw: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = _utcnow,
        policy: RetryPolicy | None = None,
        rules: RequestRules | None = None,
    ) -> None:
        self._session = session
        self._api_key = api_key
        self._account_number = account_number
        self._meters = tuple(meters)
        self._executor = executor
        self._calorific_value = calorific_value
        self._volume_correction = volume_correction
        self._keep_raw = keep_raw
        self._sleep = sleep
        self._now = now
        self._policy = policy or RetryPolicy()
        self._rules = rules or RequestRules()
        self._schedules: dict[str, PublicationSchedule] = {}
        self._silence: dict[tuple[str, str], _Silence] = {}
        self._account: dict[str, Any] | None = None
        self._account_at: datetime | None = None
        self._agreements_seen: dict[str, tuple[tuple[str, datetime, datetime | None], ...]] = {}
        # Product look-ups of legacy codes: (ref, when read), re-read like a tariff's rates.
        self._refs: dict[str, tuple[TariffRef | None, datetime]] = {}
        self._tariffs: dict[str, TariffCache] = {}
        self._first_reading: dict[tuple[str, str], datetime | None] = {}
        secrets = [api_key, account_number]
        for meter in self._meters:
            secrets.append(str(meter.extra.get("point") or ""))
            secrets.extend(meter.serials)
        # Longest first, so a serial that contains another is replaced whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    @property
    def meters(self) -> Sequence[MeterInfo]:
        """The selected meter points of the account."""
        return self._meters

    def poll_due(self, meter: MeterInfo, now: datetime) -> bool:
        """Whether a scheduled poll at `now` should ask for `meter` (adaptive polling)."""
        if not self._rules.adaptive:
            return True
        return self._schedule(meter).due(now)

    def next_data_expected(self, meter: MeterInfo) -> datetime | None:
        """When the meter's next batch may appear, as learned so far (diagnostics)."""
        return self._schedule(meter).expected

    def annual_quantity(self, meter: MeterInfo) -> float | None:
        """The meter point's annual quantity (kWh) from the last account read; None if unknown."""
        if self._account is None:
            return None
        return annual_quantity(self._account, meter.kind, str(meter.extra.get("point") or ""))

    def _schedule(self, meter: MeterInfo) -> PublicationSchedule:
        return self._schedules.setdefault(meter.key, PublicationSchedule())

    def _client(self, *, keep_raw: bool = False) -> HttpClient:
        return HttpClient(
            self._session,
            SUPPLIER,
            policy=self._policy,
            redact=self._secrets,
            sleep=self._sleep,
            keep_raw=keep_raw and self._keep_raw,
        )

    async def async_fetch(
        self, meter: MeterInfo, start: datetime, end: datetime
    ) -> OctopusFetchResult:
        """Fetch, de-duplicate and price the intervals of `meter` that start in [start, end)."""
        if meter.supplier != SUPPLIER or not meter.extra.get("point"):
            raise SourceError("octopus: not an Octopus meter")
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if start >= end:
            return OctopusFetchResult(
                intervals=await self._executor(_empty_intervals), complete_until=None
            )
        client = self._client(keep_raw=True)
        ingested = self._now()
        reads, failure = await self._read_consumption(client, meter, start, end)
        skipped = tuple(r.serial for r in reads if r.skipped)
        reads = [r for r in reads if not r.skipped]
        prepared = await self._executor(
            partial(
                _prepare,
                meter=meter,
                reads=reads,
                start=start,
                end=end,
                ingested=ingested,
                calorific_value=self._calorific_value,
                correction=self._volume_correction,
            )
        )
        self._note_silence(meter, reads, prepared.last_end, start, ingested)
        self._schedule(meter).observe(ingested, max(prepared.last_end.values(), default=None))
        superseded = 0
        if prepared.overlapping:
            ranks = await self._install_order(client, meter, prepared.first_in_window)
            prepared, superseded = await self._executor(_resolve_replacement, prepared, ranks)

        tariff_error: SourceUnavailableError | None = None
        agreements: list[_Agreement] = []
        unresolved: list[str] = []
        rate_rejections: Counter[str] = Counter()
        try:
            agreements, unresolved = await self._agreements(
                client, meter, start, end, rate_rejections
            )
        except SourceUnavailableError as err:
            tariff_error = err
        priced = await self._executor(
            partial(
                _price,
                meter=meter,
                frame=prepared.frame,
                agreements=agreements,
                # Copies: another fetch may refresh a cache while this one runs in a thread.
                caches=[
                    replace(c, rates=dict(c.rates), charges=dict(c.charges))
                    for c in self._tariffs.values()
                ],
                start=start,
                end=end,
                calorific_value=self._calorific_value,
                correction=self._volume_correction,
            )
        )
        result = OctopusFetchResult(
            intervals=priced.frame,
            complete_until=None,
            rates=priced.rates,
            standing_charges=priced.standing_charges,
            agreements=priced.agreements,
            rejected=sum(prepared.rejected.values()),
            unrated=priced.unrated,
            superseded=superseded,
            silent_serials=tuple(
                r.serial for r in reads if not r.failed and r.serial not in prepared.last_end
            ),
            skipped_serials=skipped,
            unresolved_tariffs=tuple(unresolved),
        )
        result.complete_until = _complete_until(reads, prepared.last_end, failure, start, end)
        self._finish_audit(client, result, meter, Counter(prepared.rejected) + rate_rejections)
        if tariff_error is not None:
            result.complete_until = None
        if (error := failure or tariff_error) is not None:
            raise OctopusPartialFetchError(
                f"octopus: {meter.kind} read incomplete ({error})",
                partial=result,
                retry_after=error.retry_after,
            ) from error
        return result

    # ---------------------------------------------------------------------------- consumption

    async def _read_consumption(
        self, client: HttpClient, meter: MeterInfo, start: datetime, end: datetime
    ) -> tuple[list[_SerialRead], SourceUnavailableError | None]:
        """Every page of every serial; a serial's failure is kept and the others still read."""
        failure: SourceUnavailableError | None = None
        reads: list[_SerialRead] = []
        params: dict[str, str | int] = {
            "period_from": iso_z(start),
            "period_to": iso_z(end),
            "page_size": CONSUMPTION_PAGE_SIZE,
            "order_by": "period",
        }
        for serial in meter.serials:
            read = _SerialRead(serial)
            reads.append(read)
            if self._is_silent(meter, serial, start):
                read.skipped = True
                continue
            try:
                async for page in iter_pages(
                    client,
                    _consumption_url(meter, serial),
                    endpoint=f"{meter.kind}-consumption",
                    params=params,
                    auth=basic_auth(self._api_key),
                ):
                    read.rows.extend(
                        {
                            "start": row.get("interval_start"),
                            "end": row.get("interval_end"),
                            "value": row.get("consumption"),
                            "serial": serial,
                        }
                        for row in page
                    )
            except SourceNotFoundError:
                read.not_found = True
            except SourceUnavailableError as err:
                read.failed = True
                failure = failure or err
        asked = [r for r in reads if not r.skipped]
        if asked and all(r.not_found for r in asked):
            raise SourceNotFoundError(f"octopus: no meter of this {meter.kind} point was found")
        return reads, failure

    def _is_silent(self, meter: MeterInfo, serial: str, start: datetime) -> bool:
        """A serial silent since before `start`, checked within a day: not asked again."""
        if not self._rules.skip_silent_serials:
            return False
        silence = self._silence.get((str(meter.extra["point"]), serial))
        return (
            silence is not None
            and start >= silence.since
            and self._now() - silence.checked_at < SILENT_RECHECK
        )

    def _note_silence(
        self,
        meter: MeterInfo,
        reads: Sequence[_SerialRead],
        last_end: Mapping[str, datetime],
        start: datetime,
        now: datetime,
    ) -> None:
        """Remember serials that returned nothing while another serial of the point reported."""
        point = str(meter.extra["point"])
        for read in reads:
            key = (point, read.serial)
            if read.serial in last_end:
                self._silence.pop(key, None)
            elif not read.failed and last_end:
                self._silence[key] = _Silence(since=start, checked_at=now)

    async def _install_order(
        self, client: HttpClient, meter: MeterInfo, first_in_window: Mapping[str, datetime]
    ) -> dict[str, tuple[datetime, int]]:
        """Rank of each serial (higher = installed later) from its first-ever reading."""
        ranks: dict[str, tuple[datetime, int]] = {}
        point = str(meter.extra["point"])
        for position, serial in enumerate(meter.serials):
            if serial not in first_in_window:
                continue
            key = (point, serial)
            if key not in self._first_reading:
                try:
                    body = await client.request(
                        "GET",
                        _consumption_url(meter, serial),
                        endpoint=f"{meter.kind}-first-reading",
                        params={"page_size": 1, "order_by": "period"},
                        auth=basic_auth(self._api_key),
                    )
                except SourceUnavailableError, SourceNotFoundError:
                    pass  # not cached: asked again next time
                else:
                    self._first_reading[key] = _first_start(body)
            first = self._first_reading.get(key) or first_in_window[serial]
            ranks[serial] = (first, position)
        return ranks

    # ---------------------------------------------------------------------------- tariffs

    async def _account_payload(self, client: HttpClient) -> dict[str, Any]:
        """The account, re-read when older than ACCOUNT_MAX_AGE; a stale copy on failure."""
        now = self._now()
        fresh = self._account_at is not None and now - self._account_at < ACCOUNT_MAX_AGE
        if self._account is not None and fresh:
            return self._account
        # Its own client: the account (addresses, MPANs) never goes to the raw archive.
        account_client = self._client()
        try:
            account = await async_fetch_account(account_client, self._api_key, self._account_number)
        except SourceUnavailableError:
            if self._account is None:
                raise
            return self._account
        finally:
            client.audit.extend(account_client.audit)
        self._account, self._account_at = account, now
        return account

    async def _agreements(
        self,
        client: HttpClient,
        meter: MeterInfo,
        start: datetime,
        end: datetime,
        rejected: Counter[str],
    ) -> tuple[list[_Agreement], list[str]]:
        """Agreements overlapping the window (+ lookahead), with their rates cached and fresh."""
        account = await self._account_payload(client)
        horizon = end + RATE_LOOKAHEAD
        raw = _point_agreements(account, meter)
        snapshot = tuple((a.tariff, a.valid_from, a.valid_to) for a in raw)
        previous = self._agreements_seen.get(meter.key)
        if previous is not None and previous != snapshot:
            # An agreement changed (new tariff, or an end date set): read its rates again.
            for code in {s[0] for s in set(previous) ^ set(snapshot)}:
                self._tariffs.pop(code, None)
                self._refs.pop(code, None)
        self._agreements_seen[meter.key] = snapshot

        override = meter.extra.get("tariff_override") or None
        if not raw and override and parse_tariff_code(override) is not None:
            raw = [_Agreement(override, start, None)]
        used: list[_Agreement] = []
        unresolved: list[str] = []
        for agreement in raw:
            if agreement.valid_from >= horizon or (
                agreement.valid_to is not None and agreement.valid_to <= start
            ):
                continue
            ref = await self._resolve(client, agreement.tariff, override)
            if ref is None:
                unresolved.append(agreement.tariff)
                used.append(agreement)
                continue
            used.append(_Agreement(ref.code, agreement.valid_from, agreement.valid_to))
            need_from = max(start, agreement.valid_from)
            need_to = min(horizon, agreement.valid_to or horizon)
            await self._refresh_rates(client, ref, need_from, need_to, rejected)
        return used, unresolved

    async def _resolve(
        self, client: HttpClient, code: str, override: str | None
    ) -> TariffRef | None:
        """Tariff code -> rate URLs: parse it, else the override (tariff code or product)."""
        if (ref := parse_tariff_code(code)) is not None:
            return ref
        if override is None:
            return None
        if (ref := parse_tariff_code(override)) is not None:
            return ref
        now = self._now()
        cached = self._refs.get(code)
        if cached is not None and now - cached[1] < self._rules.tariff_max_age:
            return cached[0]
        try:
            ref = await async_resolve_via_product(client, override, code)
        except SourceNotFoundError:
            ref = None
        except SourceUnavailableError:
            if cached is None:
                raise
            return cached[0]  # the stale look-up until the product answers again
        self._refs[code] = (ref, now)
        return ref

    async def _refresh_rates(
        self,
        client: HttpClient,
        ref: TariffRef,
        need_from: datetime,
        need_to: datetime,
        rejected: Counter[str],
    ) -> None:
        """Read what the cache of `ref` lacks for [need_from, need_to); keep stale on failure."""
        entry = self._tariffs.get(ref.code)
        now = self._now()
        span = refresh_range(entry, need_from, need_to, now, max_age=self._rules.tariff_max_age)
        if span is None:
            return
        try:
            rates, charges = await async_read_prices(
                client, ref, span.start, span.end, charges=span.charges, rejected=rejected
            )
        except SourceUnavailableError:
            if entry is None or entry.covered_from > need_from:
                raise
            return
        if entry is None:
            entry = TariffCache(ref, span.start, span.end, now)
            self._tariffs[ref.code] = entry
        entry.merge(rates, charges)
        entry.covered_from = min(entry.covered_from, span.start)
        entry.covered_to = max(entry.covered_to, span.end)
        if span.end > now:
            # A read of the future: the daily and publication clocks restart.
            entry.fetched_at = now

    # ---------------------------------------------------------------------------- audit

    def _finish_audit(
        self,
        client: HttpClient,
        result: OctopusFetchResult,
        meter: MeterInfo,
        rejected: Mapping[str, int],
    ) -> None:
        """HTTP audit rows, one poll summary row, the set-aside rows, scrubbed raw payloads."""
        result.audit.extend(client.audit)
        notes = []
        if result.superseded:
            notes.append(f"{result.superseded} rows of an earlier meter superseded")
        if result.silent_serials:
            notes.append(f"{len(result.silent_serials)} meter(s) returned no data")
        if result.skipped_serials:
            notes.append(f"{len(result.skipped_serials)} silent meter(s) not asked")
        if result.unresolved_tariffs:
            notes.append(f"{len(result.unresolved_tariffs)} tariff(s) unresolved")
        result.audit.append(
            AuditRecord(
                time=self._now(),
                supplier=SUPPLIER,
                endpoint=f"{meter.kind}-poll",
                status=None,
                rows=len(result.intervals),
                duration_s=0.0,
                error="; ".join(notes) or None,
            )
        )
        if result.superseded:
            result.audit.append(
                AuditRecord(
                    time=self._now(),
                    supplier=SUPPLIER,
                    endpoint=f"{meter.kind}-replacement",
                    status=None,
                    rows=result.superseded,
                    duration_s=0.0,
                )
            )
        if (record := rejected_audit(SUPPLIER, rejected, when=self._now())) is not None:
            result.audit.append(record)
        result.raw.extend((name, _scrub(body, self._secrets)) for name, body in client.raw)


# -------------------------------------------------------------------------------- helpers


def _consumption_url(meter: MeterInfo, serial: str) -> str:
    from urllib.parse import quote

    point = quote(str(meter.extra["point"]), safe="")
    kind = "electricity" if meter.kind == "electricity" else "gas"
    return f"{API_BASE}/{kind}-meter-points/{point}/meters/{quote(serial, safe='')}/consumption/"


def _first_start(body: Any) -> datetime | None:
    """interval_start of the first row of a consumption page, if any."""
    results = body.get("results") if isinstance(body, dict) else None
    if isinstance(results, list) and results and isinstance(results[0], Mapping):
        return parse_time(results[0].get("interval_start"))
    return None


def _point_agreements(account: Mapping[str, Any], meter: MeterInfo) -> list[_Agreement]:
    """Agreements of the meter's point on every property (a former home keeps its history)."""
    point = str(meter.extra["point"])
    field_name, list_name = (
        ("mpan", "electricity_meter_points")
        if meter.kind == "electricity"
        else ("mprn", "gas_meter_points")
    )
    found: dict[tuple[str, datetime], _Agreement] = {}
    for prop in account.get("properties") or ():
        if not isinstance(prop, Mapping):
            continue
        for entry in prop.get(list_name) or ():
            if not isinstance(entry, Mapping) or str(entry.get(field_name, "")).strip() != point:
                continue
            for item in entry.get("agreements") or ():
                if not isinstance(item, Mapping) or not isinstance(item.get("tariff_code"), str):
                    continue
                valid_from = parse_time(item.get("valid_from"))
                if valid_from is None:
                    continue
                code = item["tariff_code"].strip().upper()
                found[code, valid_from] = _Agreement(
                    code, valid_from, parse_time(item.get("valid_to"))
                )
    return sorted(found.values(), key=lambda a: a.valid_from)


def _scrub(value: Any, secrets: Sequence[str]) -> Any:
    """A JSON body with every secret (key, account, MPAN/MPRN, serials) replaced by ***."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    return value


def _complete_until(
    reads: Sequence[_SerialRead],
    last_end: Mapping[str, datetime],
    failure: SourceUnavailableError | None,
    start: datetime,
    end: datetime,
) -> datetime | None:
    """End of the range read without a gap from `start`.

    All serials read: the end of the newest stored interval (never past `end`). A serial failed:
    the end of what it delivered before failing, at most the newest stored interval; None when
    it delivered nothing.
    """
    newest = max(last_end.values(), default=None)
    if newest is None:
        return None
    if failure is None:
        return min(newest, end)
    limits = [last_end.get(r.serial) for r in reads if r.failed]
    if any(limit is None for limit in limits):
        return None
    reached = min(limit for limit in limits if limit is not None)
    return min(reached, newest, end) if reached > start else None


# -------------------------------------------------------------------------------- executor work


@dataclass
class _Prepared:
    frame: pd.DataFrame
    # Rows normalize set aside, per reason.
    rejected: dict[str, int]
    overlapping: bool
    first_in_window: dict[str, datetime]
    last_end: dict[str, datetime]


@dataclass
class _Priced:
    frame: pd.DataFrame
    rates: pd.DataFrame
    standing_charges: pd.DataFrame
    agreements: pd.DataFrame
    unrated: int


def _prepare(
    *,
    meter: MeterInfo,
    reads: Sequence[_SerialRead],
    start: datetime,
    end: datetime,
    ingested: datetime,
    calorific_value: float,
    correction: float,
) -> _Prepared:
    """Normalize every serial's rows, keep the window, dedupe per serial, add gas kWh."""
    import pandas as pd

    from ..analytics import intervals, units

    frames: list[pd.DataFrame] = []
    reasons: Counter[str] = Counter()
    for read in reads:
        if not read.rows:
            continue
        result = intervals.normalize(
            read.rows,
            meter=meter.key,
            supplier=SUPPLIER,
            kind=meter.kind,
            unit=meter.unit,
            serial=read.serial,
            currency=CURRENCY,
            naive_tz=meter.time_zone,
            ingested_at=ingested,
        )
        reasons.update(result.reason_counts())
        frame = result.frame
        inside = (frame["start"] >= pd.Timestamp(start)) & (frame["start"] < pd.Timestamp(end))
        frames.append(intervals.dedupe(frame[inside]))
    if not frames:
        return _Prepared(intervals.empty_intervals(), dict(reasons), False, {}, {})
    frame = pd.concat(frames, ignore_index=True)
    if meter.unit == UNIT_M3:
        frame["energy_kwh"] = units.gas_m3_to_kwh(
            frame["value"], calorific_value=calorific_value, correction=correction
        )
    by_serial = frame.groupby("serial", sort=False)
    first = {str(s): g["start"].min().to_pydatetime() for s, g in by_serial}
    last = {str(s): g["end"].max().to_pydatetime() for s, g in by_serial}
    overlapping = bool(frame["start"].duplicated().any())
    if not overlapping:
        frame = intervals.dedupe(frame)
    return _Prepared(frame, dict(reasons), overlapping, first, last)


def _empty_intervals() -> pd.DataFrame:
    from ..analytics import intervals

    return intervals.empty_intervals()


def _resolve_replacement(
    prepared: _Prepared, ranks: Mapping[str, tuple[datetime, int]]
) -> tuple[_Prepared, int]:
    """Per slot keep the row of the serial installed later; count the rows dropped."""
    from ..analytics import intervals

    frame = prepared.frame
    order = frame["serial"].map(lambda s: ranks.get(str(s), (datetime.min.replace(tzinfo=UTC), -1)))
    ranked = frame.assign(_rank=order.map(lambda r: (r[0].timestamp(), r[1])))
    ranked = ranked.sort_values(["start", "_rank"], kind="stable")
    keep = ~ranked["start"].duplicated(keep="last")
    superseded = int((~keep).sum())
    kept = intervals.dedupe(ranked[keep].drop(columns="_rank"))
    prepared.frame = kept
    prepared.overlapping = False
    return prepared, superseded


def _price(
    *,
    meter: MeterInfo,
    frame: pd.DataFrame,
    agreements: Sequence[_Agreement],
    caches: Sequence[TariffCache],
    start: datetime,
    end: datetime,
    calorific_value: float,
    correction: float,
) -> _Priced:
    """Agreements, rates and standing charges as frames over the window; join them for cost.

    Octopus prices gas per kWh: for a meter read in m³ the cost is energy_kwh x the kWh rate, and
    the interval's `rate` is per m³ (per native unit, as the interval table defines it). The
    rates frame keeps the tariff's own per-kWh prices.
    """
    import pandas as pd

    from ..analytics import tariffs, units

    horizon = end + RATE_LOOKAHEAD
    codes = {a.tariff for a in agreements}
    agreement_frame = pd.DataFrame(
        {
            "meter": pd.Series([meter.key] * len(agreements), dtype=object),
            "tariff": pd.Series([a.tariff for a in agreements], dtype=object),
            "valid_from": _stamps([a.valid_from for a in agreements]),
            "valid_to": _stamps([a.valid_to for a in agreements]),
        }
    )
    rate_rows: list[dict[str, Any]] = []
    charge_rows: list[dict[str, Any]] = []
    for cache in caches:
        if cache.ref.code not in codes:
            continue
        for row in sorted(cache.rates.values(), key=lambda r: (r.register, r.valid_from)):
            if _overlaps(row.valid_from, row.valid_to, start, horizon):
                rate_rows.append(
                    {
                        "supplier": SUPPLIER,
                        "tariff": cache.ref.code,
                        "register": row.register,
                        "valid_from": row.valid_from,
                        "valid_to": row.valid_to,
                        "rate": row.inc_vat,
                        "rate_exc_vat": row.exc_vat,
                        "currency": CURRENCY,
                        "payment_method": row.payment_method,
                    }
                )
        for row in sorted(cache.charges.values(), key=lambda r: r.valid_from):
            if _overlaps(row.valid_from, row.valid_to, start, horizon):
                charge_rows.append(
                    {
                        "supplier": SUPPLIER,
                        "tariff": cache.ref.code,
                        "valid_from": row.valid_from,
                        "valid_to": row.valid_to,
                        "charge": row.inc_vat,
                        "charge_exc_vat": row.exc_vat,
                        "currency": CURRENCY,
                        "payment_method": row.payment_method,
                    }
                )
    rates = _price_frame(rate_rows, RATE_FIELDS)
    charges = _price_frame(charge_rows, CHARGE_FIELDS)
    joined = tariffs.join_rates(
        frame, rates, agreement_frame, payment_method="DIRECT_DEBIT", night=tariffs.NightWindow()
    )
    priced = joined.frame
    if meter.unit == UNIT_M3 and not priced.empty:
        per_kwh = priced["rate"]
        priced["cost"] = priced["energy_kwh"] * per_kwh
        priced["rate"] = per_kwh * units.gas_m3_to_kwh(
            1.0, calorific_value=calorific_value, correction=correction
        )
    return _Priced(priced, rates, charges, agreement_frame, int(joined.unrated))


def _overlaps(
    valid_from: datetime, valid_to: datetime | None, start: datetime, end: datetime
) -> bool:
    return valid_from < end and (valid_to is None or valid_to > start)


def _stamps(values: Sequence[datetime | None]) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(pd.Series(list(values), dtype=object), utc=True).astype(
        "datetime64[us, UTC]"
    )


RATE_FIELDS: Final = ("rate", "rate_exc_vat")
CHARGE_FIELDS: Final = ("charge", "charge_exc_vat")


def _price_frame(rows: list[dict[str, Any]], numbers: tuple[str, str]) -> pd.DataFrame:
    import pandas as pd

    from ..analytics.schema import RATE_COLUMNS, STANDING_CHARGE_COLUMNS

    columns = RATE_COLUMNS if numbers == RATE_FIELDS else STANDING_CHARGE_COLUMNS
    data: dict[str, Any] = {}
    for name in columns:
        values = [row[name] for row in rows]
        if name in ("valid_from", "valid_to"):
            data[name] = _stamps(values)
        elif name in numbers:
            data[name] = pd.Series(values, dtype="float64")
        else:
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=list(columns))


# -------------------------------------------------------------------------------- factory


def create_source(context: SourceContext) -> OctopusSource:
    """Build the source of a config entry: data api_key, account_number, meters (meter_config)."""
    from ..const import (
        CONF_GAS_CALORIFIC_VALUE,
        CONF_GAS_VOLUME_CORRECTION,
        CONF_KEEP_RAW_DAYS,
        DEFAULT_GAS_CALORIFIC_VALUE,
        DEFAULT_GAS_VOLUME_CORRECTION,
    )

    overrides = context.options.get(CONF_TARIFF_OVERRIDES) or {}
    meters = []
    for stored in context.data.get(CONF_METERS) or ():
        meter = meter_from_config(stored)
        if meter.key in overrides:
            code = str(overrides[meter.key] or "").strip().upper() or None
            meter = replace(meter, extra=dict(meter.extra) | {"tariff_override": code})
        meters.append(meter)
    options = context.options
    return OctopusSource(
        context.session,
        api_key=str(context.data[CONF_API_KEY]),
        account_number=str(context.data[CONF_ACCOUNT_NUMBER]),
        meters=meters,
        executor=context.executor,
        calorific_value=float(options.get(CONF_GAS_CALORIFIC_VALUE, DEFAULT_GAS_CALORIFIC_VALUE)),
        volume_correction=float(
            options.get(CONF_GAS_VOLUME_CORRECTION, DEFAULT_GAS_VOLUME_CORRECTION)
        ),
        keep_raw=int(options.get(CONF_KEEP_RAW_DAYS, 0) or 0) > 0,
    )
