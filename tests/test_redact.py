"""The one scrubber every MeterLake text goes through (custom_components/meterlake/redact.py)."""

from __future__ import annotations

from collections.abc import Generator
import logging

import pytest

from custom_components.meterlake import redact
from custom_components.meterlake.redact import (
    install_log_filter,
    register_secrets,
    scrub,
    scrub_data,
    secrets_in,
)

SIG = "k3Y%2Fs1gn%2Bature%3D"


@pytest.fixture(autouse=True)
def _empty_registry() -> Generator[None]:
    saved = set(redact._registry)
    redact._registry.clear()
    yield
    redact._registry.clear()
    redact._registry.update(saved)


def test_a_sas_query_is_cut_from_urls() -> None:
    text = (
        "GetProperties failed for 'https://acct.blob.core.windows.net/c/x?se=2099-01-01&"
        f"sig={SIG}&sp=rl&sv=2021-08-06'. Azure Error: [AuthorizationFailure] 403"
    )
    assert scrub(text) == (
        "GetProperties failed for 'https://acct.blob.core.windows.net/c/x?***'. "
        "Azure Error: [AuthorizationFailure] 403"
    )


def test_a_bare_sas_token_loses_its_signature() -> None:
    assert scrub(f"token sv=2021-08-06&sp=rl&sig={SIG} refused") == (
        "token sv=2021-08-06&sp=rl&sig=*** refused"
    )


def test_connection_string_keys_are_masked() -> None:
    text = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=QUJDRA==;EndpointSuffix=x"
    assert scrub(text) == (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=x"
    )


def test_credentials_in_a_url_are_masked() -> None:
    assert scrub("Cannot connect to https://sk_live_abc:@api.octopus.energy/v1/") == (
        "Cannot connect to https://***@api.octopus.energy/v1/"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api_key=sk_live_1234 rejected", "api_key=*** rejected"),
        ("password = hunter22", "password = ***"),
        ('{"access_token": "tib-1234", "home": "x"}', '{"access_token": "***", "home": "x"}'),
        ("{'secret_key': 'abc/def'}", "{'secret_key': '***'}"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "Authorization: Bearer ***"),
    ],
)
def test_named_secrets_and_bearer_tokens_are_masked(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_known_values_are_masked_raw_and_percent_encoded() -> None:
    secret = "moto/Secret+Key=="
    text = f"key {secret} or {secret.replace('/', '%2F').replace('+', '%2B').replace('=', '%3D')}"
    assert scrub(text, [secret]) == "key *** or ***"


def test_registered_secrets_are_masked_in_every_later_text() -> None:
    register_secrets(secrets_in({"api_key": "sk_live_REGISTERED", "meters": []}))
    assert scrub("the key sk_live_REGISTERED was refused") == "the key *** was refused"


def test_secrets_in_finds_credential_values_at_any_depth_only() -> None:
    found = secrets_in(
        {"access_token": "tok-123456", "homes": [{"id": "home-1", "name": "Villa"}]},
        {"archive_sas_token": "sv=x&sig=y", "archive_root": "abfs://c/lake", "nested": {}},
        {"archive_account_key": "QUJD", "archive_secret_key": "s3cr3t", "backfill_days": 30},
    )
    assert sorted(found) == ["QUJD", "s3cr3t", "sv=x&sig=y", "tok-123456"]


def test_ordinary_text_is_left_alone() -> None:
    text = "Archive partition consumption/supplier=octopus/meter=x/month=2026-11 written: 48 rows"
    assert scrub(text) == text


def test_scrub_data_scrubs_every_string_and_keeps_the_shape() -> None:
    data = {"errors": [f"url https://h/p?sig={SIG}", 3], "ok": True, "n": None}
    assert scrub_data(data) == {"errors": ["url https://h/p?***", 3], "ok": True, "n": None}


def test_log_records_of_meterlake_loggers_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("custom_components.meterlake.test_redact_module")
    install_log_filter()
    register_secrets(["tok-VERY-SECRET"])
    error = RuntimeError(f"refused https://h/p?sig={SIG} with tok-VERY-SECRET")
    logger.error("Poll failed for %s", "https://x/y?sv=1&sig=abc", exc_info=error)
    assert "sig=" not in caplog.text
    assert "tok-VERY-SECRET" not in caplog.text
    assert "Poll failed for https://x/y?***" in caplog.text
    assert "RuntimeError: refused https://h/p?*** with ***" in caplog.text
