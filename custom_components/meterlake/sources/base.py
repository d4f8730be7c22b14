"""What every source shares: meter descriptions, fetch results, errors and the HTTP retry policy.

A source turns one supplier's API into the interval table (docs/architecture.md). It knows
nothing of Home Assistant entities: it gets an aiohttp session and an executor callable from the
coordinator, and returns pandas frames. Errors carry a translation key so the HA layer can raise
them as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
import random
import time
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import aiohttp

from ..const import DEFAULT_OVERLAP
from ..redact import scrub

if TYPE_CHECKING:
    import pandas as pd

REQUEST_TIMEOUT = 30.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})
# A server asking to wait longer than this is not waited for inside a poll: the poll fails with
# the server's Retry-After, and the coordinator schedules the next one accordingly.
MAX_RETRY_WAIT = 120.0


class Executor(Protocol):
    """Runs blocking work off the event loop (hass.async_add_executor_job in production)."""

    def __call__[T](self, target: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run target(*args) in a worker thread."""


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """One metering point: the stable `meter` key of the interval table and what it measures."""

    key: str
    supplier: str
    kind: str
    unit: str
    name: str
    serials: tuple[str, ...] = ()
    is_export: bool = False
    currency: str | None = None
    time_zone: str = "UTC"
    cadence_minutes: int = 30
    # The unit the tariff prices (Octopus prices gas per kWh even when the meter reads m³);
    # None means the meter's own unit.
    rate_unit: str | None = None
    # Opaque, source-specific details (e.g. MPAN, tariff override). Never logged.
    extra: Mapping[str, Any] = field(default_factory=dict)
    # False where the supplier's API publishes no standing charge (Tibber).
    has_standing_charge: bool = True


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """One published spot-price slot (Tibber's 15-minute price info), price incl. VAT."""

    start: datetime
    end: datetime
    total: float
    level: str | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One HTTP call (or one synthetic poll), for the archive's `audit` dataset."""

    time: datetime
    supplier: str
    endpoint: str
    status: int | None
    rows: int
    duration_s: float
    error: str | None = None


# The audit row of a fetch that set rows aside (normalize's quarantine), next to its HTTP rows.
REJECTED_ENDPOINT = "rejected"


def rejected_audit(
    supplier: str, reasons: Mapping[str, int], *, when: datetime
) -> AuditRecord | None:
    """The one audit row of a fetch's set-aside rows; None when it set none aside.

    `reasons` counts rows per reason (analytics.intervals.NormalizeResult.reason_counts, summed
    over the fetch's normalize calls). rows = the total; error = "reason: count; ..." with the
    most frequent reason first (ties by name), e.g. "implausible_value: 2; boolean_value: 1".
    """
    counts = sorted(
        ((reason, count) for reason, count in reasons.items() if count > 0),
        key=lambda item: (-item[1], item[0]),
    )
    if not counts:
        return None
    return AuditRecord(
        time=when,
        supplier=supplier,
        endpoint=REJECTED_ENDPOINT,
        status=None,
        rows=sum(count for _, count in counts),
        duration_s=0.0,
        error="; ".join(f"{reason}: {count}" for reason, count in counts),
    )


@dataclass(slots=True)
class FetchResult:
    """What one poll of one meter produced.

    `intervals` has the interval table's columns (analytics.schema.INTERVAL_COLUMNS) with `rate`
    and `cost` filled where a rate applies. `rates` and `standing_charges` have the columns of
    analytics.schema.RATE_COLUMNS and STANDING_CHARGE_COLUMNS; `agreements` maps the meter to
    tariffs over time (AGREEMENT_COLUMNS). `rejected` counts rows set aside by normalize (the
    `audit` then holds one `rejected_audit` row with the reasons), `unrated` intervals no rate
    covered. `complete_until` is the end of what the source delivered without error: the
    watermark may move up to there and no further.
    """

    intervals: pd.DataFrame
    complete_until: datetime | None
    rates: pd.DataFrame | None = None
    standing_charges: pd.DataFrame | None = None
    agreements: pd.DataFrame | None = None
    rejected: int = 0
    unrated: int = 0
    audit: list[AuditRecord] = field(default_factory=list)
    raw: list[tuple[str, Any]] = field(default_factory=list)
    # Grid data (eCO2mix) for the archive's `grid_mix` dataset: `start`, `end`, the numeric
    # fields of archive.GRID_MIX_FIELDS (float64, null when unknown) and `consolidated` (bool).
    # Sources that describe the grid return it with an empty `intervals` frame.
    grid: pd.DataFrame | None = None
    # Readings of a meter read from a counter (archive dataset `readings`,
    # analytics.schema.READING_COLUMNS): every reading the fetch's window holds, so a failed
    # write is retried with the window.
    readings: pd.DataFrame | None = None


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the coordinator hands a source module's `create_source(context)` factory."""

    session: aiohttp.ClientSession
    executor: Executor
    data: Mapping[str, Any]
    options: Mapping[str, Any]
    # Derived sources (composed meters) read the lake (sources.composed.LakeReader) and are
    # configured by the entry's subentries: (subentry id, subentry type, data).
    lake: Any = None
    subentries: Sequence[tuple[str, str, Mapping[str, Any]]] = ()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a source offers beyond fetching intervals, declared once by the source.

    The coordinator, setup and the platforms read these instead of probing the source:
    `overlap` is how far before the watermark each poll re-reads; `spot_prices` means the
    source publishes price slots (it is then a SpotPriceSource: price sensors, the
    tomorrow-prices binary sensor, refreshes each quarter hour); `grid` means it describes
    the grid (its meters are of kind `grid`, with grid rows); `aligned_minutes` are the
    minutes past the hour (UTC) polls run at instead of a fixed interval; `derived` means it
    reads the lake (composed meters) and has no tariff of its own. `adaptive` means it is an
    AdaptiveSource: scheduled polls ask it which meters are due. `revision_window` (e.g. 35
    days) is re-read once a day and `gap_window` (e.g. 13 months) searched for missing ranges
    once a week, by the sweep (docs/architecture.md, "Late data and revisions").
    """

    overlap: timedelta = DEFAULT_OVERLAP
    spot_prices: bool = False
    grid: bool = False
    aligned_minutes: tuple[int, ...] | None = None
    derived: bool = False
    # How late the newest interval normally is: older than this, a meter has stopped sending
    # (the `no_data` anomaly).
    normal_delay: timedelta = timedelta(hours=36)
    adaptive: bool = False
    revision_window: timedelta | None = None
    gap_window: timedelta | None = None


class Source(Protocol):
    """A supplier or grid operator, as the coordinator sees it.

    `capabilities` declares what the source offers besides `async_fetch` (see Capabilities);
    nothing is looked up with getattr. A source with `spot_prices` is a SpotPriceSource.
    """

    supplier: str
    update_interval: timedelta
    capabilities: Capabilities

    @property
    def meters(self) -> Sequence[MeterInfo]:
        """The meters this entry follows."""

    async def async_fetch(self, meter: MeterInfo, start: datetime, end: datetime) -> FetchResult:
        """Fetch intervals of `meter` that start in [start, end), with rates and cost."""


class SpotPriceSource(Source, Protocol):
    """A source that publishes spot prices (`capabilities.spot_prices`, e.g. Tibber)."""

    def price_slots(self, meter: MeterInfo) -> Sequence[PriceSlot]:
        """Published price slots of `meter` (today and, once out, tomorrow); () if none."""


def has_spot_prices(source: Source) -> TypeGuard[SpotPriceSource]:
    """True when the source declares spot prices, and so has `price_slots`."""
    return source.capabilities.spot_prices


class AdaptiveSource(Source, Protocol):
    """A source that knows when each meter's next data is due (`capabilities.adaptive`)."""

    def poll_due(self, meter: MeterInfo, now: datetime) -> bool:
        """Whether a scheduled poll at `now` should fetch `meter`."""

    def next_data_expected(self, meter: MeterInfo) -> datetime | None:
        """When the meter's next data may appear, as learned so far; None if unknown."""


def polls_adaptively(source: Source) -> TypeGuard[AdaptiveSource]:
    """True when the source declares adaptive polling, and so has `poll_due`."""
    return source.capabilities.adaptive


class SourceError(Exception):
    """Base class of every source error. `translation_key` names the message in strings.json."""

    translation_key = "source_error"

    def __init__(self, message: str, *, placeholders: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.placeholders: dict[str, str] = dict(placeholders or {})
        # The HTTP calls (and heartbeat) of the failed poll: the coordinator archives them.
        self.audit: list[AuditRecord] = []


class SourceAuthError(SourceError):
    """Credentials were refused (401/403): the user must re-authenticate."""

    translation_key = "invalid_auth"


class SourceNotFoundError(SourceError):
    """The resource does not exist (404): a wrong account or meter."""

    translation_key = "not_found"


class SourceRequestError(SourceError):
    """The server refused the request as malformed (400 and other 4xx): no retry."""

    translation_key = "request_rejected"


class SourcePayloadError(SourceError):
    """The server answered, but not with what the API promises (malformed JSON, wrong shape)."""

    translation_key = "malformed_response"


class SourceUnavailableError(SourceError):
    """Network errors, timeouts or 5xx/429 until the retry budget was spent."""

    translation_key = "cannot_connect"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        placeholders: Mapping[str, str] | None = None,
        partial: FetchResult | None = None,
    ) -> None:
        super().__init__(message, placeholders=placeholders)
        self.retry_after = retry_after
        # What was read before the budget ran out; the coordinator stores it before failing.
        self.partial = partial


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """30 s per request; at most 3 retries; 2 s x 2^attempt + jitter or Retry-After (HTTP)."""

    retries: int = 3
    base_delay: float = 2.0
    max_jitter: float = 1.0
    timeout: float = REQUEST_TIMEOUT

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        if retry_after is not None:
            return retry_after
        return self.base_delay * 2.0**attempt + random.uniform(0, self.max_jitter)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except TypeError, ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(slots=True)
class HttpClient:
    """JSON over HTTP with the shared retry policy, recording one audit row per attempt.

    `redact` lists strings (keys, tokens, account numbers) that never reach error text.
    """

    session: aiohttp.ClientSession
    supplier: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    redact: tuple[str, ...] = ()
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    audit: list[AuditRecord] = field(default_factory=list)
    raw: list[tuple[str, Any]] = field(default_factory=list)
    keep_raw: bool = False
    # Statuses that mean "credentials refused" (reauth). Empty for a public API (eCO2mix): a
    # 401/403 there is a refused request like any other 4xx.
    auth_statuses: frozenset[int] = AUTH_STATUSES

    def scrub(self, text: str) -> str:
        """Remove every secret from `text` (these and any recognisable credential)."""
        return scrub(text, self.redact)

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: Mapping[str, str] | None = None,
    ) -> Any:
        """Send a request and return its decoded JSON body, retrying per the policy.

        `auth` holds authorization headers (kept apart so they are never logged or stored).
        """
        if auth:
            headers = {**(headers or {}), **auth}
        last_error = "no attempt"
        retry_after: float | None = None
        tried = 0
        for attempt in range(self.policy.retries + 1):
            tried = attempt + 1
            if attempt:
                await self.sleep(self.policy.delay(attempt - 1, retry_after))
            started = time.monotonic()
            when = datetime.now(UTC)
            retry_after = None
            try:
                async with self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
                ) as resp:
                    status = resp.status
                    text = await resp.text()
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as err:
                last_error = self.scrub(f"{type(err).__name__}: {err}")
                self._record(when, endpoint, None, 0, started, last_error)
                continue
            if status in RETRY_STATUSES:
                last_error = f"HTTP {status}"
                self._record(when, endpoint, status, 0, started, last_error)
                if retry_after is not None and retry_after > MAX_RETRY_WAIT:
                    break
                continue
            # Every refused request keeps the server's words in the audit (scrubbed).
            detail = self.scrub(text[:200]) if status >= 400 else ""
            if status in self.auth_statuses:
                self._record(when, endpoint, status, 0, started, f"HTTP {status}: {detail}")
                raise SourceAuthError(f"{self.supplier}: HTTP {status} on {endpoint}")
            if status == 404:
                self._record(when, endpoint, status, 0, started, f"HTTP 404: {detail}")
                raise SourceNotFoundError(f"{self.supplier}: {endpoint} not found")
            if status >= 400:
                self._record(when, endpoint, status, 0, started, f"HTTP {status}: {detail}")
                raise SourceRequestError(
                    f"{self.supplier}: HTTP {status} on {endpoint}: {detail}",
                    placeholders={"status": str(status)},
                )
            try:
                body = json.loads(text)
            except ValueError as err:
                self._record(when, endpoint, status, 0, started, "malformed JSON")
                raise SourcePayloadError(
                    f"{self.supplier}: {endpoint} returned malformed JSON"
                ) from err
            self._record(when, endpoint, status, _count_rows(body), started, None)
            if self.keep_raw:
                self.raw.append((endpoint, body))
            return body
        raise SourceUnavailableError(
            f"{self.supplier}: {endpoint} failed after {tried} attempts ({last_error})",
            retry_after=retry_after,
        )

    def _record(  # noqa: PLR0917 - private, one call shape
        self,
        when: datetime,
        endpoint: str,
        status: int | None,
        rows: int,
        started: float,
        error: str | None,
    ) -> None:
        self.audit.append(
            AuditRecord(
                time=when,
                supplier=self.supplier,
                endpoint=endpoint,
                status=status,
                rows=rows,
                duration_s=time.monotonic() - started,
                error=error,
            )
        )


def _count_rows(body: Any) -> int:
    """Rows in a typical payload: a bare list (exports), a paged `results` list, else 0."""
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict):
        results = body.get("results")
        if isinstance(results, list):
            return len(results)
    return 0


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """Floor an aware datetime to a multiple of `step` since the Unix epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // step) * step
