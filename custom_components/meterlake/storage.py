"""The archive's object-store credentials: which option fields each URI scheme takes.

`storage_options` turns the entry's options into pyarrow.fs keyword arguments for the scheme of
`archive_root` (fields of other schemes are ignored); `check_storage_fields` is the options
form's cross-field check (a field of another scheme, Azure without an account or with both a
key and a SAS token…), returning translated error keys per field. Pure: no I/O.

S3 (`s3://`): endpoint, access key, secret key, region. Azure (`abfs://`, `abfss://`, `az://`):
account name (else from `container@account.dfs.core.windows.net`), account key or SAS token,
and the endpoint for emulators (Azurite) as blob and DFS authority with http/https. GCS
(`gs://`, `gcs://`): anonymous access, a service account's JSON key (passed on as
`service_account`: archive.py exchanges it for an access token) or the environment's
credentials; endpoint.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
import json
import re
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from .const import (
    CONF_ARCHIVE_ACCESS_KEY,
    CONF_ARCHIVE_ACCOUNT_KEY,
    CONF_ARCHIVE_ACCOUNT_NAME,
    CONF_ARCHIVE_ANONYMOUS,
    CONF_ARCHIVE_ENDPOINT,
    CONF_ARCHIVE_REGION,
    CONF_ARCHIVE_ROOT,
    CONF_ARCHIVE_SAS_TOKEN,
    CONF_ARCHIVE_SECRET_KEY,
    CONF_ARCHIVE_SERVICE_ACCOUNT,
)

SCHEME_S3: Final = "s3"
SCHEME_AZURE: Final = "azure"
SCHEME_GCS: Final = "gcs"
SCHEME_LOCAL: Final = "local"
AZURE_URI_SCHEMES: Final = frozenset({"abfs", "abfss", "az"})
GCS_URI_SCHEMES: Final = frozenset({"gs", "gcs"})

# The option fields each kind of store reads; the endpoint is shared by all three.
SCHEME_FIELDS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        SCHEME_S3: frozenset(
            {
                CONF_ARCHIVE_ENDPOINT,
                CONF_ARCHIVE_ACCESS_KEY,
                CONF_ARCHIVE_SECRET_KEY,
                CONF_ARCHIVE_REGION,
            }
        ),
        SCHEME_AZURE: frozenset(
            {
                CONF_ARCHIVE_ENDPOINT,
                CONF_ARCHIVE_ACCOUNT_NAME,
                CONF_ARCHIVE_ACCOUNT_KEY,
                CONF_ARCHIVE_SAS_TOKEN,
            }
        ),
        SCHEME_GCS: frozenset(
            {CONF_ARCHIVE_ENDPOINT, CONF_ARCHIVE_ANONYMOUS, CONF_ARCHIVE_SERVICE_ACCOUNT}
        ),
    }
)
STORAGE_FIELDS: Final = frozenset().union(*SCHEME_FIELDS.values())

# Error keys, translated under options.error and the invalid-options repair's errors.
ERROR_NOT_FOR_SCHEME: Final = "archive_field_not_for_scheme"
ERROR_AZURE_ACCOUNT_MISSING: Final = "azure_account_missing"
ERROR_AZURE_ACCOUNT_INVALID: Final = "azure_account_invalid"
ERROR_AZURE_CREDENTIALS_MISSING: Final = "azure_credentials_missing"
ERROR_AZURE_KEY_AND_SAS: Final = "azure_key_and_sas"
ERROR_AZURE_KEY_INVALID: Final = "azure_account_key_invalid"
ERROR_GCS_JSON_INVALID: Final = "gcs_service_account_invalid"
ERROR_GCS_NOT_SERVICE_ACCOUNT: Final = "gcs_not_service_account"
ERROR_GCS_INCOMPLETE: Final = "gcs_service_account_incomplete"
ERROR_GCS_PRIVATE_KEY: Final = "gcs_private_key_invalid"
ERROR_GCS_ANONYMOUS_AND_KEY: Final = "gcs_anonymous_and_service_account"
STORAGE_ERRORS: Final = frozenset(
    {
        ERROR_NOT_FOR_SCHEME,
        ERROR_AZURE_ACCOUNT_MISSING,
        ERROR_AZURE_ACCOUNT_INVALID,
        ERROR_AZURE_CREDENTIALS_MISSING,
        ERROR_AZURE_KEY_AND_SAS,
        ERROR_AZURE_KEY_INVALID,
        ERROR_GCS_JSON_INVALID,
        ERROR_GCS_NOT_SERVICE_ACCOUNT,
        ERROR_GCS_INCOMPLETE,
        ERROR_GCS_PRIVATE_KEY,
        ERROR_GCS_ANONYMOUS_AND_KEY,
    }
)
# What a service account's JSON key must hold to be exchanged for an access token.
SERVICE_ACCOUNT_FIELDS: Final = ("client_email", "private_key", "token_uri")

# Azure storage account names: 3 to 24 lower-case letters and digits.
ACCOUNT_NAME_RE: Final = re.compile(r"[a-z0-9]{3,24}")
# `account.dfs.core.windows.net`, `account.blob.core.chinacloudapi.cn`, ...
_AZURE_HOST_RE: Final = re.compile(r"(?P<account>[^.]+)\.(?:dfs|blob)\.(?P<suffix>.+)", re.I)
_PUBLIC_SUFFIX: Final = "core.windows.net"


def store_kind(root: str) -> str:
    """`s3`, `azure`, `gcs` or `local` for an archive root (another scheme reads as s3)."""
    if "://" not in root:
        return SCHEME_LOCAL
    scheme = root.split("://", 1)[0].strip().lower()
    if scheme == "file":
        return SCHEME_LOCAL
    if scheme in AZURE_URI_SCHEMES:
        return SCHEME_AZURE
    if scheme in GCS_URI_SCHEMES:
        return SCHEME_GCS
    return SCHEME_S3


def _text(options: Mapping[str, Any], key: str) -> str:
    value = options.get(key)
    return value.strip() if isinstance(value, str) else ""


def _split_endpoint(endpoint: str) -> tuple[str, str | None]:
    """(host[:port], scheme or None) of `http://host:port/` or `host:port`."""
    if "://" in endpoint:
        scheme, _, host = endpoint.partition("://")
        return host.rstrip("/"), scheme.lower()
    return endpoint.rstrip("/"), None


def storage_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """pyarrow.fs keyword arguments for the archive root's scheme, from the entry's options.

    Only the fields of that scheme are read (an S3 key next to an Azure root is ignored). A
    root without a scheme (a local folder, or options without a root) reads the S3 fields.
    """
    kind = store_kind(_text(options, CONF_ARCHIVE_ROOT))
    host, scheme = _split_endpoint(_text(options, CONF_ARCHIVE_ENDPOINT))
    result: dict[str, Any] = {}
    if kind == SCHEME_AZURE:
        for key, target in (
            (CONF_ARCHIVE_ACCOUNT_NAME, "account_name"),
            (CONF_ARCHIVE_ACCOUNT_KEY, "account_key"),
            (CONF_ARCHIVE_SAS_TOKEN, "sas_token"),
        ):
            if value := _text(options, key):
                result[target] = value
        if host:
            result["blob_storage_authority"] = result["dfs_storage_authority"] = host
            result["blob_storage_scheme"] = result["dfs_storage_scheme"] = scheme or "https"
        return result
    if kind == SCHEME_GCS:
        if options.get(CONF_ARCHIVE_ANONYMOUS) is True:
            result["anonymous"] = True
        if service_account := _text(options, CONF_ARCHIVE_SERVICE_ACCOUNT):
            result["service_account"] = service_account
        if host:
            result["endpoint_override"] = host
            if scheme:
                result["scheme"] = scheme
        return result
    for key, target in (
        (CONF_ARCHIVE_ACCESS_KEY, "access_key"),
        (CONF_ARCHIVE_SECRET_KEY, "secret_key"),
        (CONF_ARCHIVE_REGION, "region"),
    ):
        if value := _text(options, key):
            result[target] = value
    if host:
        result["endpoint_override"] = host
        if scheme:
            result["scheme"] = scheme
    return result


def azure_account_of(root: str) -> str | None:
    """The account named by an Azure URI's host (`container@account.dfs.core.windows.net`)."""
    try:
        host = urlsplit(root.strip()).hostname or ""
    except ValueError:
        return None
    match = _AZURE_HOST_RE.fullmatch(host)
    return match.group("account").lower() if match else None


def azure_authorities(root: str) -> dict[str, str]:
    """Blob and DFS authorities of a sovereign cloud named by the URI's host; {} for public."""
    try:
        host = urlsplit(root.strip()).hostname or ""
    except ValueError:
        return {}
    match = _AZURE_HOST_RE.fullmatch(host)
    if match is None or match.group("suffix").lower() == _PUBLIC_SUFFIX:
        return {}
    suffix = match.group("suffix").lower()
    return {"blob_storage_authority": f".blob.{suffix}", "dfs_storage_authority": f".dfs.{suffix}"}


def valid_account_key(key: str) -> bool:
    """An Azure account key is base64 (pyarrow aborts the process on anything else)."""
    try:
        return bool(base64.b64decode(key, validate=True))
    except binascii.Error, ValueError:
        return False


def sas_has_signature(root: str) -> bool:
    """Whether the URI carries a SAS token in its query (`?sv=…&sig=…`)."""
    return "sig=" in root.partition("?")[2].lower()


def parse_service_account(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """A service account's JSON key, checked: (the key, None) or (None, an error key).

    It is a JSON object of `type` service_account with a client email, a token URI (http or
    https) and an RSA private key in PEM that loads. No text of the key is in an error.
    """
    try:
        info = json.loads(text)
    except ValueError:
        return None, ERROR_GCS_JSON_INVALID
    if not isinstance(info, dict):
        return None, ERROR_GCS_JSON_INVALID
    if info.get("type") != "service_account":
        return None, ERROR_GCS_NOT_SERVICE_ACCOUNT
    if not all(
        isinstance(info.get(name), str) and info[name].strip() for name in SERVICE_ACCOUNT_FIELDS
    ):
        return None, ERROR_GCS_INCOMPLETE
    try:
        token_uri = urlsplit(info["token_uri"].strip())
    except ValueError:
        return None, ERROR_GCS_INCOMPLETE
    if token_uri.scheme not in {"http", "https"} or not token_uri.hostname:
        return None, ERROR_GCS_INCOMPLETE
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        # Parsed only (the full RSA check costs ~50 ms on the event loop); a key that does
        # not sign is refused by the token endpoint, a clean error too.
        key = load_pem_private_key(
            info["private_key"].encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
    except ValueError, TypeError:
        return None, ERROR_GCS_PRIVATE_KEY
    if not isinstance(key, RSAPrivateKey):
        return None, ERROR_GCS_PRIVATE_KEY
    return info, None


def check_storage_fields(options: Mapping[str, Any]) -> dict[str, str]:
    """Errors keyed by field: fields of another store, Azure's and GCS's credentials.

    Azure: an account and a valid key or a SAS token; GCS: a service account's JSON key that
    parses (`parse_service_account`), not with anonymous access. A local root ignores the
    credential fields (they are kept for a later object store).
    """
    root = _text(options, CONF_ARCHIVE_ROOT)
    kind = store_kind(root)
    if kind == SCHEME_LOCAL:
        return {}
    errors: dict[str, str] = {}
    for key in sorted(STORAGE_FIELDS - SCHEME_FIELDS[kind]):
        value = options.get(key)
        if (isinstance(value, str) and value.strip()) or value is True:
            errors[key] = ERROR_NOT_FOR_SCHEME
    if kind == SCHEME_GCS:
        if service_account := _text(options, CONF_ARCHIVE_SERVICE_ACCOUNT):
            if options.get(CONF_ARCHIVE_ANONYMOUS) is True:
                errors[CONF_ARCHIVE_SERVICE_ACCOUNT] = ERROR_GCS_ANONYMOUS_AND_KEY
            elif (error := parse_service_account(service_account)[1]) is not None:
                errors[CONF_ARCHIVE_SERVICE_ACCOUNT] = error
        return errors
    if kind != SCHEME_AZURE:
        return errors
    name = _text(options, CONF_ARCHIVE_ACCOUNT_NAME)
    if name and ACCOUNT_NAME_RE.fullmatch(name) is None:
        errors[CONF_ARCHIVE_ACCOUNT_NAME] = ERROR_AZURE_ACCOUNT_INVALID
    elif not name and azure_account_of(root) is None:
        errors[CONF_ARCHIVE_ACCOUNT_NAME] = ERROR_AZURE_ACCOUNT_MISSING
    key = _text(options, CONF_ARCHIVE_ACCOUNT_KEY)
    sas = _text(options, CONF_ARCHIVE_SAS_TOKEN) or sas_has_signature(root)
    if key and sas:
        errors[CONF_ARCHIVE_SAS_TOKEN] = ERROR_AZURE_KEY_AND_SAS
    elif key and not valid_account_key(key):
        errors[CONF_ARCHIVE_ACCOUNT_KEY] = ERROR_AZURE_KEY_INVALID
    elif not key and not sas:
        errors[CONF_ARCHIVE_ACCOUNT_KEY] = ERROR_AZURE_CREDENTIALS_MISSING
    return errors
