"""An archive on Google Cloud Storage with a service account's JSON key, as a user sets it up.

pyarrow's GcsFileSystem takes an access token, not a key: MeterLake signs a JWT with the key
and exchanges it at the key's token URI. Here that endpoint and GCS itself are tiny HTTP
servers on 127.0.0.1 (the key's `token_uri` and the archive's endpoint point at them): the
token endpoint checks nothing and answers what the test says; the fake GCS records each
request's Authorization header and answers 404 (no such object), which proves a root.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import timedelta
import http.server
import json
import logging
import threading
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import jwt
import pytest

from custom_components.meterlake.archive import (
    GCS_SCOPE,
    JWT_BEARER_GRANT,
    ArchiveError,
    open_archive,
)
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.diagnostics import async_get_config_entry_diagnostics
from custom_components.meterlake.redact import known_secrets, scrub, secrets_in
from custom_components.meterlake.sinks import ArchiveSink, archive_issue_id
from custom_components.meterlake.storage import STORAGE_ERRORS, storage_options

from .conftest import DEMO_NOW
from .test_strings import COMPONENT

FORM = {
    "keep_raw_days": 0,
    "backfill_days": 10,
    "gas_calorific_value": 39.5,
    "gas_volume_correction": 1.02264,
    "standing_charge_in_cost": False,
}
CLIENT_EMAIL = "meterlake@energy-lake.iam.gserviceaccount.com"
KEY_ID = "0123456789abcdef0123456789abcdef01234567"

# -- throwaway key, fake token endpoint, fake GCS --------------------------------------------


@dataclass(frozen=True)
class Key:
    """An RSA key made for this test run: the PEM a JSON key holds, and its public half."""

    private_pem: str
    public_pem: bytes

    def lines(self) -> list[str]:
        """The PEM body's base64 lines: none may appear in any text."""
        return [line for line in self.private_pem.splitlines() if not line.startswith("-----")]


@pytest.fixture(scope="module")
def key() -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Key(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


Answer = tuple[int, dict[str, Any]]


@dataclass
class Server:
    """A loopback HTTP server: records every request, answers with `answer(request)`."""

    answer: Callable[[dict[str, Any]], Answer]
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def serve(
    socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> Generator[Callable[[Callable[[dict[str, Any]], Answer]], Server]]:
    """Start loopback servers; each is stopped (and its threads joined) after the test."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    running: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(answer: Callable[[dict[str, Any]], Answer]) -> Server:
        server = Server(answer)

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = {
                    "method": self.command,
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "body": self.rfile.read(length).decode() if length else "",
                }
                server.requests.append(request)
                status, payload = server.answer(request)
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def log_message(self, *args: Any) -> None:
                return

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.port = httpd.server_address[1]
        thread = threading.Thread(target=httpd.serve_forever, name="fake-http", daemon=True)
        thread.start()
        running.append((httpd, thread))
        return server

    yield start
    for httpd, thread in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def tokens(*names: str, expires_in: int = 3599) -> Callable[[dict[str, Any]], Answer]:
    """A token endpoint handing out `names` in turn (the last one again when they run out)."""
    handed = iter(names)
    last = names[-1]

    def answer(_request: dict[str, Any]) -> Answer:
        token = next(handed, last)
        return 200, {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}

    return answer


def refusal(status: int) -> Callable[[dict[str, Any]], Answer]:
    return lambda _request: (
        status,
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
    )


def not_found(_request: dict[str, Any]) -> Answer:
    """GCS's answer for an object (and a listing) that does not exist."""
    return 404, {"error": {"code": 404, "message": "No such object"}}


@pytest.fixture
def gcs(serve: Callable[..., Server]) -> Server:
    return serve(not_found)


def service_account(key: Key, token_uri: str, /, **fields: Any) -> str:
    """A service account's JSON key file as Google hands it out (pretty-printed)."""
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "energy-lake",
            "private_key_id": KEY_ID,
            "private_key": key.private_pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "123456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        }
        | fields,
        indent=2,
    )


def gcs_options(key: Key, token: Server, gcs: Server, **fields: Any) -> dict[str, Any]:
    return {
        "archive_root": "gs://energy-lake/meterlake",
        "archive_service_account": service_account(key, f"{token.url}/token"),
        "archive_endpoint": gcs.url,
    } | fields


def bearers(gcs: Server) -> set[str | None]:
    return {request["authorization"] for request in gcs.requests}


def no_key_in(text: str, key: Key) -> bool:
    return key.private_pem not in text and not any(line in text for line in key.lines())


async def submit_options(hass: HomeAssistant, entry: Any, form: dict[str, Any]) -> Any:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    await hass.async_block_till_done()
    return result


# -- the form checks the key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        pytest.param({"archive_service_account": "not json at all"}, "gcs_service_account_invalid"),
        pytest.param({"archive_service_account": "[1, 2]"}, "gcs_service_account_invalid"),
        pytest.param({"type": "authorized_user"}, "gcs_not_service_account"),
        pytest.param({"client_email": ""}, "gcs_service_account_incomplete"),
        pytest.param({"private_key": None}, "gcs_service_account_incomplete"),
        pytest.param({"token_uri": "file:///etc/passwd"}, "gcs_service_account_incomplete"),
        pytest.param(
            {
                "private_key": (
                    "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
                )
            },
            "gcs_private_key_invalid",
        ),
        pytest.param({"archive_anonymous": True}, "gcs_anonymous_and_service_account"),
    ],
)
async def test_form_refuses_a_key_that_cannot_be_used_with_a_translated_error(
    hass: HomeAssistant, loaded_demo: Any, key: Key, fields: dict[str, Any], error: str
) -> None:
    form_fields = {k: v for k, v in fields.items() if k.startswith("archive_")}
    json_fields = {k: v for k, v in fields.items() if not k.startswith("archive_")}
    form = FORM | {
        "archive_root": "gs://energy-lake/meterlake",
        "archive_service_account": service_account(
            key, "https://oauth2.googleapis.com/token", **json_fields
        ),
    }
    before = dict(loaded_demo.options)
    result = await submit_options(hass, loaded_demo, form | form_fields)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"archive_service_account": error}
    assert dict(loaded_demo.options) == before
    for name in ("strings.json", "translations/en.json"):
        strings = json.loads((COMPONENT / name).read_text(encoding="utf-8"))
        assert error in strings["options"]["error"]
        assert error in strings["issues"]["invalid_options"]["fix_flow"]["error"]


async def test_a_key_next_to_another_store_is_refused(
    hass: HomeAssistant, loaded_demo: Any, key: Key
) -> None:
    form = FORM | {
        "archive_root": "s3://bucket/lake",
        "archive_service_account": service_account(key, "https://oauth2.googleapis.com/token"),
    }
    result = await submit_options(hass, loaded_demo, form)
    assert result["errors"] == {"archive_service_account": "archive_field_not_for_scheme"}


def test_every_storage_error_is_translated() -> None:
    for name in ("strings.json", "translations/en.json"):
        strings = json.loads((COMPONENT / name).read_text(encoding="utf-8"))
        fix_flow = strings["issues"]["invalid_options"]["fix_flow"]
        assert set(strings["options"]["error"]) >= STORAGE_ERRORS
        assert set(fix_flow["error"]) >= STORAGE_ERRORS
        assert "archive_service_account" in fix_flow["step"]["init"]["data_description"]


def test_the_key_goes_to_the_gcs_store_only(key: Key) -> None:
    text = service_account(key, "https://oauth2.googleapis.com/token")
    fields = {"archive_service_account": text, "archive_endpoint": "http://127.0.0.1:4443"}
    assert storage_options(fields | {"archive_root": "gs://b/lake"}) == {
        "service_account": text,
        "endpoint_override": "127.0.0.1:4443",
        "scheme": "http",
    }
    assert "service_account" not in storage_options(fields | {"archive_root": "s3://b/lake"})


# -- the token exchange ----------------------------------------------------------------------------


def test_the_key_is_exchanged_for_a_token_that_gcs_receives(
    key: Key, serve: Callable[..., Server], gcs: Server, tmp_path: Any
) -> None:
    token = serve(tokens("ya29.first-access-token-0123456789"))
    options = gcs_options(key, token, gcs)
    before = dt_util.utcnow()
    archive = open_archive(
        options["archive_root"], config_dir=str(tmp_path), storage_options=storage_options(options)
    )

    # One JWT bearer grant, signed RS256 by the service account's key.
    assert len(token.requests) == 1
    request = token.requests[0]
    assert request["method"] == "POST"
    form = {name: values[0] for name, values in parse_qs(request["body"]).items()}
    assert form["grant_type"] == JWT_BEARER_GRANT
    assertion = form["assertion"]
    assert jwt.get_unverified_header(assertion) == {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    claims = jwt.decode(
        assertion, key.public_pem, algorithms=["RS256"], audience=f"{token.url}/token"
    )
    assert claims["iss"] == CLIENT_EMAIL
    assert claims["scope"] == GCS_SCOPE == "https://www.googleapis.com/auth/devstorage.read_write"
    assert claims["aud"] == f"{token.url}/token"
    assert claims["exp"] == claims["iat"] + 3600
    assert abs(claims["iat"] - before.timestamp()) < 60

    # GCS was asked with that token: the proof of the root carried it.
    assert gcs.requests
    assert bearers(gcs) == {"Bearer ya29.first-access-token-0123456789"}
    assert "/storage/v1/b/energy-lake/o/meterlake%2F.meterlake-probe" in gcs.requests[0]["path"]
    assert archive.credentials_expire is not None
    assert (
        timedelta(seconds=3590)
        < archive.credentials_expire - before
        < timedelta(hours=1, seconds=30)
    )
    # The token is scrubbed from every text while it lives.
    assert "ya29.first-access-token-0123456789" in known_secrets()


@pytest.mark.parametrize("status", [400, 401])
def test_a_refused_key_is_a_clean_archive_error(
    key: Key, serve: Callable[..., Server], gcs: Server, tmp_path: Any, status: int
) -> None:
    token = serve(refusal(status))
    options = gcs_options(key, token, gcs)
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            options["archive_root"],
            config_dir=str(tmp_path),
            storage_options=storage_options(options),
        )
    assert caught.value.root == "gs://energy-lake/meterlake"
    assert f"HTTP {status}: invalid_grant (Invalid JWT Signature.)" in caught.value.reason
    assert no_key_in(str(caught.value), key)
    # Nothing reached GCS without a token.
    assert gcs.requests == []


def test_a_token_gcs_refuses_is_a_clean_error_and_leaves_the_scrubber(
    key: Key, serve: Callable[..., Server], tmp_path: Any
) -> None:
    token = serve(tokens("ya29.token-without-bucket-access"))
    forbidden = serve(
        lambda _request: (403, {"error": {"code": 403, "message": "Permission denied"}})
    )
    options = gcs_options(key, token, forbidden)
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            options["archive_root"],
            config_dir=str(tmp_path),
            storage_options=storage_options(options),
        )
    assert bearers(forbidden) == {"Bearer ya29.token-without-bucket-access"}
    assert "ya29.token-without-bucket-access" not in str(caught.value)
    assert no_key_in(str(caught.value), key)
    # No Archive holds it: the token does not stay in the registry (a retry a minute would
    # otherwise grow it without end).
    assert "ya29.token-without-bucket-access" not in known_secrets()


def test_an_unreachable_token_endpoint_is_a_clean_archive_error(
    key: Key, gcs: Server, tmp_path: Any, socket_enabled: None
) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {
        "archive_root": "gs://energy-lake/meterlake",
        "archive_service_account": service_account(key, f"http://127.0.0.1:{port}/token"),
        "archive_endpoint": gcs.url,
    }
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            options["archive_root"],
            config_dir=str(tmp_path),
            storage_options=storage_options(options),
        )
    assert "the token endpoint cannot be reached" in caught.value.reason
    assert no_key_in(str(caught.value), key)


# -- renewal ---------------------------------------------------------------------------------------


async def test_a_token_is_renewed_before_it_expires(
    hass: HomeAssistant, freezer: Any, key: Key, serve: Callable[..., Server], gcs: Server
) -> None:
    freezer.move_to(DEMO_NOW)
    token = serve(tokens("ya29.token-of-the-first-hour", "ya29.token-of-the-second-hour"))
    sink = ArchiveSink(hass, "01GCSENTRY", gcs_options(key, token, gcs))

    first = await sink.async_open()
    assert len(token.requests) == 1
    assert bearers(gcs) == {"Bearer ya29.token-of-the-first-hour"}
    # Within the hour the same archive serves: no new exchange, no new proof.
    freezer.tick(timedelta(minutes=50))
    assert await sink.async_open() is first
    assert len(token.requests) == 1

    # Less than five minutes left: the next open brings a new token to GCS.
    freezer.tick(timedelta(minutes=5))
    gcs.requests.clear()
    second = await sink.async_open()
    assert second is not first
    assert len(token.requests) == 2
    assert bearers(gcs) == {"Bearer ya29.token-of-the-second-hour"}
    assert second.credentials_expire is not None
    assert second.credentials_expire - dt_util.utcnow() > timedelta(minutes=55)
    # The replaced token leaves the scrubber's registry; the live one is in it.
    assert "ya29.token-of-the-first-hour" not in known_secrets()
    assert "ya29.token-of-the-second-hour" in known_secrets()


async def test_a_failed_renewal_keeps_the_token_until_it_ends(
    hass: HomeAssistant,
    *,
    freezer: Any,
    key: Key,
    serve: Callable[..., Server],
    gcs: Server,
    caplog: pytest.LogCaptureFixture,
) -> None:
    freezer.move_to(DEMO_NOW)
    token = serve(tokens("ya29.the-only-token-we-get"))
    sink = ArchiveSink(hass, "01GCSENTRY", gcs_options(key, token, gcs))
    first = await sink.async_open()

    token.answer = refusal(401)
    freezer.tick(timedelta(minutes=57))
    assert await sink.async_open() is first
    assert "Cannot renew the archive's credentials" in caplog.text
    # Once the token has ended, the archive is off: a clean ArchiveError, no crash.
    freezer.tick(timedelta(minutes=5))
    with pytest.raises(ArchiveError) as caught:
        await sink.async_open()
    assert "HTTP 401" in caught.value.reason
    assert sink.archive is None
    assert no_key_in(caplog.text, key)


# -- in the options form and at setup ------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401])
async def test_the_form_shows_a_refused_key_as_a_clean_error(
    hass: HomeAssistant,
    *,
    loaded_demo: Any,
    key: Key,
    serve: Callable[..., Server],
    gcs: Server,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.meterlake")
    token = serve(refusal(status))
    before = dict(loaded_demo.options)
    result = await submit_options(hass, loaded_demo, FORM | gcs_options(key, token, gcs))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"archive_root": "archive_unreachable"}
    reason = result["description_placeholders"]["error"]
    assert f"HTTP {status}" in reason
    assert "invalid_grant" in reason
    assert no_key_in(reason, key)
    assert no_key_in(caplog.text, key)
    assert dict(loaded_demo.options) == before


async def test_an_entry_with_a_refused_key_starts_with_a_repair_and_no_archive(
    hass: HomeAssistant,
    *,
    freezer: Any,
    demo_entry: Any,
    key: Key,
    serve: Callable[..., Server],
    gcs: Server,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.meterlake")
    freezer.move_to(DEMO_NOW)
    token = serve(refusal(401))
    options = dict(demo_entry.options) | gcs_options(key, token, gcs)
    demo_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(demo_entry, options=options)
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()

    # The entry runs (sensors from memory); the archive stays off with a repair saying why.
    assert demo_entry.state is ConfigEntryState.LOADED
    issue = ir.async_get(hass).async_get_issue(DOMAIN, archive_issue_id(demo_entry.entry_id))
    assert issue is not None
    assert issue.translation_key == "archive_unproven"
    placeholders = issue.translation_placeholders or {}
    assert placeholders["root"] == "gs://energy-lake/meterlake"
    assert "HTTP 401" in placeholders["error"]
    assert gcs.requests == []

    # Neither the repair, the log nor the diagnostics hold the key or the JSON.
    diagnostics = await async_get_config_entry_diagnostics(hass, demo_entry)
    for text in (json.dumps(placeholders), caplog.text, json.dumps(diagnostics)):
        assert no_key_in(text, key)
        assert KEY_ID not in text
    assert diagnostics["entry"]["options"]["archive_service_account"] == "***"
    await hass.config_entries.async_unload(demo_entry.entry_id)


def test_the_private_key_is_scrubbed_in_every_form(key: Key) -> None:
    options = {"archive_service_account": service_account(key, "https://oauth2.googleapis.com/t")}
    secrets = secrets_in(options)
    escaped = json.dumps(key.private_pem)
    for text in (
        f"failed with {key.private_pem}",
        f"payload {escaped}",
        f"line {key.lines()[3]} in a trace",
    ):
        assert no_key_in(scrub(text, secrets), key)
        assert escaped[1:-1] not in scrub(text, secrets)


def test_a_key_file_pasted_into_the_masked_one_line_field_stays_valid(key: Key) -> None:
    from custom_components.meterlake.storage import parse_service_account

    pretty = service_account(key, "https://oauth2.example/token")
    assert "\n" in pretty
    # A browser drops the line breaks of text pasted into a one-line (password) field.
    parsed, error = parse_service_account(pretty.replace("\n", ""))
    assert error is None
    assert parsed is not None and parsed["client_email"] == CLIENT_EMAIL
