"""Secrets out of every text MeterLake writes: logs, repairs, audit rows, diagnostics, actions.

`scrub(text, secrets)` removes what can be recognised by its shape — URL query strings (an
Azure SAS is `?sv=…&sig=…`), credentials inside URLs (`https://user:password@host`),
`AccountKey=…` / `SharedAccessSignature=…` connection-string parts, `key=value` and
`"key": "value"` pairs whose name says token, key, secret, password or signature, and
`Bearer …` headers — and every value in `secrets` (also percent-encoded). The values of the
entries' credentials are registered once per entry (`register_secrets`), so text written by
code that never saw them (a pyarrow error, a library's log line) loses them too. A secret
that is a JSON document (a GCS service account's key) also gives the values of its secret
fields, and a PEM private key also each line of its body (a text may show it escaped);
`forget_secrets` drops a short-lived one (an access token that was replaced).

`ScrubLogFilter` applies it to every log record of MeterLake's loggers (message, arguments and
traceback). Pure apart from the process-wide registry; no Home Assistant import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import json
import logging
from pathlib import Path
import re
import threading
from typing import Any, Final
from urllib.parse import quote

MASK: Final = "***"
LOGGER_PREFIX: Final = "custom_components.meterlake"
# Shorter values are not worth masking (and would mangle ordinary words).
MIN_SECRET_LENGTH: Final = 6

# Names whose values are secrets, in option keys, JSON, query strings and connection strings.
SECRET_NAME: Final = re.compile(
    r"(api_?key|access_?key|secret|token|password|passwd|credential|account_?key|"
    r"account_?number|sas_?token|signature|authori[sz]ation|private_?key|service_account)",
    re.IGNORECASE,
)
_NAME_PART = (
    r"[A-Za-z_-]*(?:api_?key|access_?key|secret|token|password|passwd|pwd|credential|"
    r"account_?key|private_?key|client_?secret|signature)[A-Za-z_-]*|sig|AccountKey|"
    r"SharedAccessSignature|sas_token"
)
# `name=value` (query strings, connection strings, text); value up to a separator.
_PAIR: Final = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_NAME_PART})(\s*=\s*)([^\s&;,'\"<>)\]]+)")
# `"name": "value"` and `'name': 'value'` (JSON, Python reprs).
_QUOTED_PAIR: Final = re.compile(
    rf"(?i)([\"']({_NAME_PART})[\"']\s*:\s*[\"'])([^\"']*)([\"'])",
)
# A URL's query (SAS tokens, signed URLs): everything from `?` to the end of the URL.
_URL_QUERY: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#'\"<>]*)\?[^\s'\"<>]*")
# Credentials inside a URL: scheme://user:password@host.
_URL_USERINFO: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"<>]+:[^/@\s'\"<>]*@")
_BEARER: Final = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")

# Every module of the package, read once at import (in the import executor, not on the loop):
# their loggers get the filter before the modules imported later (lazily) ask for them.
_MODULE_LOGGERS: Final = tuple(
    ".".join((LOGGER_PREFIX, *path.relative_to(Path(__file__).parent).with_suffix("").parts))
    for path in Path(__file__).parent.rglob("*.py")
    if path.name != "__init__.py"
)

# The body lines of a PEM block (base64, 64 characters a line); shorter ones are not masked.
_PEM_LINE: Final = re.compile(r"^[A-Za-z0-9+/=]{16,}$")

_registry: set[str] = set()
_registry_lock = threading.Lock()


def register_secrets(values: Iterable[Any]) -> None:
    """Remember credential values; `scrub` masks them from now on, in every text."""
    found = {str(value).strip() for value in values if isinstance(value, str)}
    with _registry_lock:
        _registry.update(value for value in found if len(value) >= MIN_SECRET_LENGTH)


def forget_secrets(values: Iterable[str]) -> None:
    """Drop values registered before (a replaced access token), so the registry stays small."""
    with _registry_lock:
        _registry.difference_update(str(value).strip() for value in values)


def pem_secret_forms(value: str) -> list[str]:
    """A secret as it may appear in text: itself, JSON-escaped, and a PEM body's lines."""
    forms = [value]
    if "-----BEGIN" in value:
        forms.append(json.dumps(value)[1:-1])
        forms.extend(line.strip() for line in value.splitlines() if _PEM_LINE.match(line.strip()))
    return forms


def known_secrets() -> tuple[str, ...]:
    """The registered values, longest first (a secret containing another is masked whole)."""
    with _registry_lock:
        return tuple(sorted(_registry, key=len, reverse=True))


def secrets_in(*mappings: Mapping[str, Any]) -> list[str]:
    """The values of keys named like credentials, at any depth (entry data and options)."""
    found: list[str] = []

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, secret or bool(SECRET_NAME.search(str(key))))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, secret)
        elif secret and isinstance(value, str):
            found.extend(pem_secret_forms(value))
            if value.lstrip().startswith("{"):
                try:
                    document = json.loads(value)
                except ValueError:
                    return
                if isinstance(document, Mapping):
                    walk(document, False)

    for mapping in mappings:
        walk(mapping, False)
    return found


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without recognisable credentials, registered secrets or `secrets`."""
    if not text:
        return text
    values = sorted(
        {s for s in (*secrets, *known_secrets()) if s and len(s) >= 4}, key=len, reverse=True
    )
    for value in values:
        for form in {value, quote(value, safe=""), quote(value, safe="/")}:
            text = text.replace(form, MASK)
    text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
    text = _URL_QUERY.sub(rf"\1?{MASK}", text)
    text = _QUOTED_PAIR.sub(rf"\1{MASK}\4", text)
    text = _PAIR.sub(rf"\1\2{MASK}", text)
    return _BEARER.sub(rf"\1 {MASK}", text)


def scrub_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Every string in a JSON-like structure scrubbed (keys kept)."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        return {key: scrub_data(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_data(item, secrets) for item in value]
    return value


class ScrubLogFilter(logging.Filter):
    """Scrubs a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; rewrite its text."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging
            return True
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


_FILTER: Final = ScrubLogFilter()


def install_log_filter() -> None:
    """Put the filter on the logger of every MeterLake module (idempotent).

    Logger filters do not reach child loggers, so each module's logger gets it, also those
    of modules not imported yet (a logger made now is the one the module gets later).
    """
    names = [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name == LOGGER_PREFIX or name.startswith(f"{LOGGER_PREFIX}.")
    ]
    for name in {LOGGER_PREFIX, *_MODULE_LOGGERS, *names}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
