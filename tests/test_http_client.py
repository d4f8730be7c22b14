"""The shared HTTP client: long Retry-After waits, and public APIs without credentials."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import aiohttp
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (  # type: ignore[import-untyped]
    AiohttpClientMocker,
)

from custom_components.meterlake.sources.base import (
    MAX_RETRY_WAIT,
    HttpClient,
    SourceAuthError,
    SourceNotFoundError,
    SourceRequestError,
    SourceUnavailableError,
)

URL = "https://api.example.test/data"


@pytest.fixture
async def session(aioclient_mock: AiohttpClientMocker) -> AsyncGenerator[aiohttp.ClientSession]:
    client = aioclient_mock.create_session(asyncio.get_running_loop())
    yield client
    await client.close()


def client(session: aiohttp.ClientSession, slept: list[float], **kwargs: object) -> HttpClient:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return HttpClient(session, "test", sleep=sleep, **kwargs)  # type: ignore[arg-type]


async def test_a_long_retry_after_fails_the_poll_instead_of_waiting(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(URL, status=429, headers={"Retry-After": "3600"})
    slept: list[float] = []
    http = client(session, slept)
    with pytest.raises(SourceUnavailableError, match="after 1 attempts") as caught:
        await http.request("GET", URL, endpoint="data")
    assert caught.value.retry_after == 3600
    assert slept == []
    assert aioclient_mock.call_count == 1


async def test_a_short_retry_after_is_waited_for(
    session: aiohttp.ClientSession, aioclient_mock: AiohttpClientMocker
) -> None:
    aioclient_mock.get(URL, status=429, headers={"Retry-After": str(int(MAX_RETRY_WAIT))})
    slept: list[float] = []
    with pytest.raises(SourceUnavailableError, match="after 4 attempts"):
        await client(session, slept).request("GET", URL, endpoint="data")
    assert slept == [MAX_RETRY_WAIT] * 3


@pytest.mark.parametrize(
    ("status", "auth_statuses", "error"),
    [
        (401, None, SourceAuthError),
        (403, None, SourceAuthError),
        (401, frozenset(), SourceRequestError),
        (403, frozenset(), SourceRequestError),
        (404, frozenset(), SourceNotFoundError),
        (400, frozenset(), SourceRequestError),
    ],
)
async def test_refusals_keep_the_server_text_in_the_audit(
    session: aiohttp.ClientSession,
    aioclient_mock: AiohttpClientMocker,
    status: int,
    auth_statuses: frozenset[int] | None,
    error: type[Exception],
) -> None:
    """A public API (no credentials) has no auth statuses: a 401/403 is a refused request."""
    aioclient_mock.get(URL, status=status, text="quota exceeded for key SECRET123")
    kwargs = {} if auth_statuses is None else {"auth_statuses": auth_statuses}
    http = client(session, [], redact=("SECRET123",), **kwargs)
    with pytest.raises(error):
        await http.request("GET", URL, endpoint="data")
    (record,) = http.audit
    assert record.status == status
    assert record.error == f"HTTP {status}: quota exceeded for key ***"
