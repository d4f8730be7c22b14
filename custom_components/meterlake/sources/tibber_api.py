"""Tibber's GraphQL API: requests, error mapping, the shared rate limiter and the account read.

Every request goes through `graphql()`: it waits for the process-wide RateLimiter, sends the
token only in the Authorization header (HttpClient's `auth=`, never logged or stored) and turns
GraphQL `errors` - which Tibber sends with HTTP 200 (or 400) - into source errors.

A GraphQL error whose code says the server failed for now (TRANSIENT_CODES: Apollo's
INTERNAL_SERVER_ERROR, which Tibber answers when a backend times out, and the timeout, overload
and rate-limit codes) is retried like a 5xx: after the policy's delay, through the rate limiter,
and only while the poll's RetryBudget lasts (the policy's retry count, shared by every request
of one poll). When it is spent the error is a SourceUnavailableError, so what the poll read so
far is kept and the coordinator retries later. Every attempt is its own audit row.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
import json
import time
from typing import Any, Final

import aiohttp

from .base import (
    HttpClient,
    RetryPolicy,
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
    SourcePayloadError,
    SourceRequestError,
    SourceUnavailableError,
)

API_URL: Final = "https://api.tibber.com/v1-beta/gql"
SUPPLIER: Final = "tibber"
# Hours per history page (31 days): the most Tibber returns in one connection page.
PAGE_HOURS: Final = 744
# Tibber reports about 100 requests per 5 minutes per IP; stay well below, shared by all entries.
MAX_REQUESTS: Final = 40
WINDOW_SECONDS: Final = 300.0
AUTH_CODES: Final = frozenset({"UNAUTHENTICATED", "UNAUTHORIZED", "FORBIDDEN"})
# GraphQL error codes (`extensions.code`) that say "not now" rather than "never": retried.
TRANSIENT_CODES: Final = frozenset(
    {
        "INTERNAL_SERVER_ERROR",
        "SERVICE_UNAVAILABLE",
        "TIMEOUT",
        "GATEWAY_TIMEOUT",
        "TOO_MANY_REQUESTS",
        "RATE_LIMITED",
    }
)

ACCOUNT_QUERY: Final = (
    "{ viewer { userId name homes { id appNickname timeZone "
    "address { address1 postalCode city country } "
    "currentSubscription { status priceInfo { current { currency } } } "
    "production(resolution: DAILY, last: 30) { nodes { production } } } } }"
)


@dataclass(frozen=True, slots=True)
class TibberHome:
    """One home of the account, as the config flow offers it."""

    id: str
    name: str
    time_zone: str
    currency: str | None
    production: bool


@dataclass(frozen=True, slots=True)
class TibberAccount:
    """The token's user and homes (an empty tuple when the account has none)."""

    user_id: str
    name: str | None
    homes: tuple[TibberHome, ...]


class RateLimiter:
    """At most `max_requests` per rolling `window` seconds; callers wait for a free place.

    One instance (LIMITER) serves every Tibber entry and the config flow of the process, since
    Tibber limits per IP. No lock: the check and the booking run without an await between them,
    and a waiter that wakes to a full window simply waits again.
    """

    def __init__(
        self,
        max_requests: int = MAX_REQUESTS,
        window: float = WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.max_requests = max_requests
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()

    @property
    def in_window(self) -> int:
        """Requests booked in the current window."""
        self._expire(self._clock())
        return len(self._sent)

    def clear(self) -> None:
        """Forget every booked request (tests)."""
        self._sent.clear()

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    async def acquire(self) -> float:
        """Book one request, first waiting until the oldest leaves the window; seconds waited."""
        waited = 0.0
        while True:
            now = self._clock()
            self._expire(now)
            if len(self._sent) < self.max_requests:
                self._sent.append(now)
                return waited
            delay = self._sent[0] + self.window - now
            await self._sleep(delay)
            waited += delay


LIMITER: Final = RateLimiter()


@dataclass(slots=True)
class RetryBudget:
    """Retries of transient GraphQL errors one poll may still spend (all its requests share it)."""

    left: int

    def spend(self) -> bool:
        """Take one retry; False when none is left."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def make_client(
    session: aiohttp.ClientSession,
    token: str,
    *,
    limiter: RateLimiter,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    policy: RetryPolicy | None = None,
    keep_raw: bool = False,
) -> HttpClient:
    """An HttpClient whose retries also wait for the rate limiter (they are requests too)."""

    async def pause(seconds: float) -> None:
        await sleep(seconds)
        await limiter.acquire()

    return HttpClient(
        session,
        SUPPLIER,
        policy=policy or RetryPolicy(),
        redact=(token,),
        sleep=pause,
        keep_raw=keep_raw,
    )


async def graphql(
    client: HttpClient,
    token: str,
    query: str,
    *,
    endpoint: str,
    limiter: RateLimiter,
    budget: RetryBudget | None = None,
) -> dict[str, Any]:
    """POST one query and return its `data`; GraphQL errors raise (auth, payload, unavailable).

    Transient GraphQL errors are retried while `budget` lasts (default: the client policy's
    retries for this one request); each retry waits the policy's delay and the rate limiter.
    """
    budget = budget if budget is not None else RetryBudget(client.policy.retries)
    await limiter.acquire()
    attempt = 0
    while True:
        body = await _post(client, token, query, endpoint)
        errors = body.get("errors")
        if not errors:
            break
        error, transient = _graphql_error(client, errors, endpoint)
        amend_audit(client, error=str(error))
        if not transient:
            raise error
        if not budget.spend():
            raise SourceUnavailableError(
                f"tibber: {endpoint} failed after {attempt + 1} attempts ({error})"
            ) from error
        # client.sleep is make_client's pause: the delay, then a place in the rate limiter.
        await client.sleep(client.policy.delay(attempt, None))
        attempt += 1
    data = body.get("data")
    if not isinstance(data, dict):
        raise SourcePayloadError(f"tibber: {endpoint} returned no data")
    return data


async def _post(client: HttpClient, token: str, query: str, endpoint: str) -> dict[str, Any]:
    """One POST (with HttpClient's own retries of HTTP failures); the decoded JSON object."""
    try:
        body = await client.request(
            "POST",
            API_URL,
            endpoint=endpoint,
            json_body={"query": query},
            auth={"Authorization": f"Bearer {token}"},
        )
    except SourceRequestError as err:
        # Tibber answers a bad token with HTTP 400 and an UNAUTHENTICATED error.
        if _is_auth_text(str(err)):
            raise SourceAuthError(f"tibber: the access token was refused ({endpoint})") from err
        raise
    if not isinstance(body, dict):
        raise SourcePayloadError(f"tibber: {endpoint} returned no JSON object")
    return body


def amend_audit(client: HttpClient, **changes: Any) -> None:
    """Correct the last audit row (GraphQL answers count rows and fail inside HTTP 200)."""
    if client.audit:
        client.audit[-1] = replace(client.audit[-1], **changes)


def _is_auth_text(text: str) -> bool:
    """Whether an error text says the token is not accepted."""
    lowered = text.lower()
    if any(code.lower() in lowered for code in AUTH_CODES):
        return True
    return "token" in lowered and any(w in lowered for w in ("invalid", "expired", "revoked"))


def _graphql_error(client: HttpClient, errors: Any, endpoint: str) -> tuple[SourceError, bool]:
    """The source error for a GraphQL `errors` array (text scrubbed), and whether to retry.

    Transient only when every error carries a code of TRANSIENT_CODES: one error that is not
    (a bad query, a refused token) would only come back.
    """
    messages: list[str] = []
    auth = False
    transient = True
    for item in errors if isinstance(errors, list) else [errors]:
        if not isinstance(item, Mapping):
            messages.append(str(item))
            transient = False
            continue
        message = str(item.get("message") or "unknown error")
        extensions = item.get("extensions")
        code = extensions.get("code") if isinstance(extensions, Mapping) else None
        auth = auth or code in AUTH_CODES or _is_auth_text(message)
        transient = transient and code in TRANSIENT_CODES
        messages.append(message if code is None else f"{message} ({code})")
    text = client.scrub("; ".join(messages))[:300]
    if auth:
        return SourceAuthError(f"tibber: the access token was refused ({endpoint}): {text}"), False
    return SourcePayloadError(f"tibber: {endpoint} failed: {text}"), transient


def viewer_home(data: Mapping[str, Any], endpoint: str) -> Mapping[str, Any]:
    """data.viewer.home of a per-home query; a missing home is SourceNotFoundError."""
    viewer = data.get("viewer")
    if not isinstance(viewer, Mapping):
        raise SourcePayloadError(f"tibber: {endpoint} returned no viewer")
    home = viewer.get("home")
    if home is None:
        raise SourceNotFoundError("tibber: the home was not found on this account")
    if not isinstance(home, Mapping):
        raise SourcePayloadError(f"tibber: {endpoint} returned a malformed home")
    return home


def quote(value: str) -> str:
    """A GraphQL string literal (JSON escaping is valid GraphQL escaping)."""
    return json.dumps(value)


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from Tibber's ISO text ("2026-03-10T00:00:00.000+01:00"), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def number(value: Any) -> float | None:
    """A JSON number as float; None for null, booleans and anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# -------------------------------------------------------------------------------- account


async def async_read_account(
    session: aiohttp.ClientSession,
    token: str,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy | None = None,
) -> TibberAccount:
    """The token's user id, name and homes in one request (config flow and reauth).

    The config flow passes a policy without retries, so the form answers within seconds.

    Raises SourceAuthError (token refused), SourceUnavailableError (network, 5xx, 429 after
    retries) or SourcePayloadError (malformed answer, other GraphQL errors); each carries the
    request's audit rows in `err.audit`.
    """
    client = make_client(session, token, limiter=limiter or LIMITER, sleep=sleep, policy=policy)
    try:
        data = await graphql(
            client, token, ACCOUNT_QUERY, endpoint="homes", limiter=limiter or LIMITER
        )
        account = parse_account(data)
    except SourceError as err:
        err.audit = list(client.audit)
        raise
    amend_audit(client, rows=len(account.homes))
    return account


def parse_account(data: Mapping[str, Any]) -> TibberAccount:
    """TibberAccount from the `data` of ACCOUNT_QUERY; unusable home entries are skipped."""
    viewer = data.get("viewer")
    if not isinstance(viewer, Mapping):
        raise SourcePayloadError("tibber: homes returned no viewer")
    user_id = viewer.get("userId")
    if not isinstance(user_id, str) or not user_id.strip():
        raise SourcePayloadError("tibber: homes returned no user id")
    homes = viewer.get("homes")
    if homes is None:
        homes = []
    if not isinstance(homes, list):
        raise SourcePayloadError("tibber: homes returned a malformed home list")
    name = viewer.get("name")
    parsed = (_parse_home(item) for item in homes)
    return TibberAccount(
        user_id=user_id.strip(),
        name=(name.strip() or None) if isinstance(name, str) else None,
        homes=tuple(home for home in parsed if home is not None),
    )


def _parse_home(item: Any) -> TibberHome | None:
    """One home; None for null entries (homes the token cannot read) and entries without id."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
        return None
    home_id = str(item["id"])
    address = item.get("address")
    address1 = address.get("address1") if isinstance(address, Mapping) else None
    name = next(
        (
            v.strip()
            for v in (item.get("appNickname"), address1)
            if isinstance(v, str) and v.strip()
        ),
        home_id,
    )
    zone = item.get("timeZone")
    return TibberHome(
        id=home_id,
        name=name,
        time_zone=zone.strip() if isinstance(zone, str) and zone.strip() else "UTC",
        currency=_currency(item.get("currentSubscription")),
        production=_produces(item.get("production")),
    )


def _currency(subscription: Any) -> str | None:
    """currentSubscription.priceInfo.current.currency, None without a subscription."""
    node: Any = subscription
    for key in ("priceInfo", "current", "currency"):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, str) and node else None


def _produces(production: Any) -> bool:
    """Whether any of the last 30 days has production above zero."""
    nodes = production.get("nodes") if isinstance(production, Mapping) else None
    if not isinstance(nodes, list):
        return False
    return any(
        (value := number(node.get("production"))) is not None and value > 0
        for node in nodes
        if isinstance(node, Mapping)
    )
