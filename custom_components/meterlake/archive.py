"""Parquet archive of the interval table and its companions, on local disk or object storage.

Layout (docs/architecture.md, "The archive"): hive partitions, one `data.parquet` per partition,
monthly where the data is periodic. Partition columns live only in the path, so hive readers
(DuckDB, Polars, Spark, pyarrow.dataset) get them back once, not twice.

Every method is blocking and thread-safe: the coordinator calls it through
`hass.async_add_executor_job`. A write merges the partition's file with the incoming rows and
replaces it atomically (temporary file + os.replace locally, a single PUT on object stores), under
a per-partition lock shared by every Archive of the process. On local disks that lock also
holds an flock on a hidden file in the partition folder, so several processes (two Home
Assistant instances, a notebook) can write one archive without losing rows. Object stores have
no such lock: one writer per object-store root (see `Archive`). pandas and pyarrow are imported
inside the functions that need them, so importing this module at start-up costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
import errno
import gzip
import json
import logging
import math
import os
from pathlib import Path, PurePosixPath
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
import uuid

from .analytics.schema import (
    AGREEMENT_ARCHIVE_COLUMNS,
    ANOMALY_COLUMNS,
    AUDIT_COLUMNS,
    INTERVAL_COLUMNS,
    RATE_COLUMNS,
    READING_COLUMNS,
    STANDING_CHARGE_COLUMNS,
)
from .redact import forget_secrets, known_secrets, pem_secret_forms, register_secrets, scrub

if TYPE_CHECKING:
    import pandas as pd

    from .sources.base import AuditRecord

_LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION: Final = "1"
SCHEMA_VERSION_KEY: Final = b"meterlake.schema_version"
DATASET_KEY: Final = b"meterlake.dataset"
DATA_FILE: Final = "data.parquet"
CORRUPT_SUFFIX: Final = ".corrupt"
ZSTD_LEVEL: Final = 9
# Hidden (leading dot, not *.parquet): globbing readers and hive discovery never pick it up.
LOCK_FILE: Final = f".{DATA_FILE}.lock"
# A temporary file of another process is removed only once this old: a younger one may be
# the live write of a process that could not take the file lock.
STALE_TEMP_AGE: Final = timedelta(hours=1)
REMOTE_SCHEMES: Final = frozenset({"s3", "gs", "gcs", "abfs", "abfss", "az"})
AZURE_SCHEMES: Final = frozenset({"abfs", "abfss", "az"})
GCS_SCHEMES: Final = frozenset({"gs", "gcs"})
# A GCS service account's key is exchanged for an access token (OAuth 2.0 JWT bearer grant):
# a JWT signed with its private key, asking for read and write access to Cloud Storage.
GCS_SCOPE: Final = "https://www.googleapis.com/auth/devstorage.read_write"
JWT_BEARER_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GCS_ASSERTION_LIFETIME_S: Final = 3600
GCS_TOKEN_TIMEOUT_S: Final = 30.0
_TOKEN_RESPONSE_LIMIT: Final = 64 * 1024
# The name whose info proves a remote root's credentials (and the form's probe write, with a
# suffix). Hidden: no reader of the archive picks it up.
PROBE_NAME: Final = ".meterlake-probe"

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# eCO2mix fields (docs/apis.md), national and regional; always present in grid_mix files so
# every partition has the same schema. Other numeric fields are kept too, appended in name order.
GRID_MIX_FIELDS: Final = (
    "consommation",
    "prevision_j",
    "prevision_j1",
    "fioul",
    "charbon",
    "gaz",
    "nucleaire",
    "eolien",
    "solaire",
    "hydraulique",
    "pompage",
    "bioenergies",
    "ech_physiques",
    "taux_co2",
    "thermique",
)

# Keys whose values never reach the raw archive, whatever the caller forgot to strip.
_SECRET_KEY = re.compile(
    r"(api_?key|token|authori[sz]ation|password|passwd|secret|account_?number|credential)",
    re.IGNORECASE,
)
# Storage options whose values are secrets (scrubbed from error text).
_SECRET_OPTIONS: Final = frozenset(
    {
        "access_key",
        "secret_key",
        "session_token",
        "account_key",
        "sas_token",
        "client_secret",
        "service_account",
    }
)
# AzureFileSystem keywords a URI's query may carry.
_AZURE_OPTIONS: Final = frozenset(
    {
        "account_name",
        "account_key",
        "sas_token",
        "blob_storage_authority",
        "dfs_storage_authority",
        "blob_storage_scheme",
        "dfs_storage_scheme",
    }
)
_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9_.-]+")
_BOOL_OPTIONS: Final = frozenset(
    {
        "anonymous",
        "allow_bucket_creation",
        "allow_bucket_deletion",
        "background_writes",
        "force_virtual_addressing",
        "check_directory_existence_before_creation",
    }
)
_FLOAT_OPTIONS: Final = frozenset(
    {"connect_timeout", "request_timeout", "retry_limit_seconds", "credential_token_expiration"}
)

# Column kinds of the stored files.
_STR, _TS, _F64, _I64, _I32, _BOOL = "str", "ts", "f64", "i64", "i32", "bool"


class ArchiveError(Exception):
    """The archive could not be read or written. `str()` names the root, never a secret."""

    def __init__(self, root: str, reason: str) -> None:
        super().__init__(f"{root}: {reason}")
        self.root = root
        self.reason = reason


class GcsTokenError(Exception):
    """A service account's key could not be exchanged for an access token (no secret in it)."""


class CorruptPartitionError(ArchiveError):
    """A partition file is not readable Parquet (truncated, overwritten, not ours)."""

    def __init__(self, root: str, reason: str, path: str) -> None:
        super().__init__(root, reason)
        self.path = path


@dataclass(frozen=True, slots=True)
class WriteSummary:
    """What one write did; `corrupt_windows` tells the caller what to re-fetch from the source.

    rows_written: input rows (after de-duplication) that won the merge, i.e. whose values the
    archive now holds. rows_total: rows in the partitions the input touched. corrupt: paths of
    unreadable files kept as `_data.parquet.corrupt`; each partition was rebuilt from the input
    alone. corrupt_windows: (meter, tariff or perimeter; month start; month end) per such
    partition (standing charges: from the Unix epoch to now; audit has none).
    """

    dataset: str
    partitions_written: int
    rows_written: int
    rows_total: int
    corrupt: tuple[str, ...] = ()
    corrupt_windows: tuple[tuple[str, datetime, datetime], ...] = ()
    # Partitions the input touched whose content did not change (a repeated write): not rewritten.
    partitions_unchanged: int = 0


@dataclass(frozen=True, slots=True)
class MonthCheck:
    """One UTC month of a meter's stored history, from `Archive.verify_intervals`."""

    month: str  # "YYYY-MM"
    rows: int  # rows readable in the month's partition(s)
    expected: int  # cadence slots expected in the covered part of the month
    unreadable: tuple[str, ...] = ()  # files found unreadable (quarantined when asked)
    gaps: tuple[tuple[datetime, datetime], ...] = ()  # missing slots [start, end), UTC, merged


@dataclass(frozen=True, slots=True)
class MeterCheck:
    """A meter's stored history, month by month: what is damaged and what is missing."""

    meter: str
    months: tuple[MonthCheck, ...]  # every month from the first expected to the last, in order
    first: datetime | None  # first stored start
    last: datetime | None  # last stored end

    @property
    def damaged_months(self) -> tuple[str, ...]:
        """Months with unreadable files, or without any row between months that have some.

        A month missing before the first or after the last stored month (history asked for
        with `since`/`until`) is only missing, not damaged: it shows in `gaps` and `missing`.
        """
        stored = [bool(m.rows or m.unreadable) for m in self.months]
        return tuple(
            m.month
            for i, m in enumerate(self.months)
            if m.unreadable
            or (m.expected and not stored[i] and any(stored[:i]) and any(stored[i + 1 :]))
        )

    @property
    def missing(self) -> int:
        """Expected slots without a row, month by month (a month never counts below zero)."""
        return sum(max(m.expected - m.rows, 0) for m in self.months)


@dataclass(frozen=True, slots=True)
class _Peek:
    """What verification reads of a partition file: the footer and the `start` column."""

    rows: int
    starts: Any  # numpy int64, microseconds since the epoch, nulls dropped
    last_end: int | None  # largest `end` per the footer statistics, microseconds; None: none


@dataclass(frozen=True, slots=True)
class _Spec:
    """How one dataset is partitioned, keyed and stored."""

    name: str
    partition_by: tuple[str, ...]  # frame columns that become path segments, in order
    month_of: str | None  # timestamp column whose UTC month is the last segment; None: none
    key: tuple[str, ...]  # merge key inside a partition (stored columns)
    columns: tuple[tuple[str, str], ...]  # stored columns and their kinds
    sort_by: tuple[str, ...]
    window_of: str | None  # partition column that names a re-fetch window (meter, tariff)
    versioned: bool = True  # merge keeps the newer `version_column`
    # Boolean columns ranked before the version column in the merge (true wins, null counts as
    # false): grid_mix keeps a consolidated row over a real-time one whatever their ages.
    prefer: tuple[str, ...] = ()
    # Timestamp column whose newer value wins the merge (a null one is stamped with the time of
    # the write); anomalies are versioned by when they were detected.
    version_column: str = "ingested_at"


def _interval_columns() -> tuple[tuple[str, str], ...]:
    kinds = {
        "start": _TS,
        "end": _TS,
        "ingested_at": _TS,
        "value": _F64,
        "energy_kwh": _F64,
        "rate": _F64,
        "cost": _F64,
    }
    return tuple(
        (name, kinds.get(name, _STR))
        for name in INTERVAL_COLUMNS
        if name not in {"meter", "supplier"}
    )


CONSUMPTION = _Spec(
    name="consumption",
    partition_by=("supplier", "meter"),
    month_of="start",
    key=("start",),
    columns=_interval_columns(),
    sort_by=("start",),
    window_of="meter",
)
RATES = _Spec(
    name="rates",
    partition_by=("supplier", "tariff"),
    month_of="valid_from",
    key=("register", "valid_from", "payment_method"),
    columns=(
        *(
            (name, _TS if name.startswith("valid_") else _F64 if name.startswith("rate") else _STR)
            for name in RATE_COLUMNS
            if name not in {"supplier", "tariff"}
        ),
        ("ingested_at", _TS),
    ),
    sort_by=("valid_from", "register", "payment_method"),
    window_of="tariff",
)
STANDING_CHARGES = _Spec(
    name="standing_charges",
    partition_by=("supplier", "tariff"),
    month_of=None,
    key=("valid_from", "payment_method"),
    columns=(
        *(
            (
                name,
                _TS if name.startswith("valid_") else _F64 if name.startswith("charge") else _STR,
            )
            for name in STANDING_CHARGE_COLUMNS
            if name not in {"supplier", "tariff"}
        ),
        ("ingested_at", _TS),
    ),
    sort_by=("valid_from", "payment_method"),
    window_of="tariff",
)
GRID_MIX = _Spec(
    name="grid_mix",
    partition_by=("supplier", "perimeter"),
    month_of="start",
    key=("start",),
    columns=(
        ("start", _TS),
        ("end", _TS),
        *((name, _F64) for name in GRID_MIX_FIELDS),
        ("consolidated", _BOOL),
        ("ingested_at", _TS),
    ),
    sort_by=("start",),
    window_of="perimeter",
    prefer=("consolidated",),
)
READINGS = _Spec(
    name="readings",
    partition_by=("supplier", "meter"),
    month_of="time",
    key=("time", "source"),  # analytics.schema.READING_KEY inside the meter's partitions
    columns=tuple(
        (name, {"time": _TS, "ingested_at": _TS, "reading": _F64}.get(name, _STR))
        for name in READING_COLUMNS
        if name not in {"meter", "supplier"}
    ),
    sort_by=("time", "source"),
    window_of="meter",
)
ANOMALIES = _Spec(
    name="anomalies",
    partition_by=("meter",),  # derived from the meter's intervals, whatever their supplier
    month_of="start",
    key=("kind", "start"),
    columns=tuple(
        (
            name,
            {
                "start": _TS,
                "end": _TS,
                "detected_at": _TS,
                "observed": _F64,
                "expected": _F64,
                "ratio": _F64,
            }.get(name, _STR),
        )
        for name in ANOMALY_COLUMNS
        if name != "meter"
    ),
    sort_by=("start", "kind"),
    window_of="meter",
    version_column="detected_at",  # a re-detected anomaly replaces the stored one
)
AGREEMENTS = _Spec(
    name="agreements",
    partition_by=("meter",),  # which tariff a meter was on, whatever the supplier said so
    month_of=None,  # one small file per meter: agreements change a few times a year
    key=("tariff", "valid_from", "source"),
    columns=tuple(
        (name, _TS if name in {"valid_from", "valid_to", "ingested_at"} else _STR)
        for name in AGREEMENT_ARCHIVE_COLUMNS
        if name != "meter"
    ),
    sort_by=("valid_from", "tariff", "source"),
    window_of="meter",
)
AUDIT = _Spec(
    name="audit",
    partition_by=("supplier",),
    month_of="time",
    key=("time", "endpoint"),
    columns=tuple(
        (
            name,
            {"time": _TS, "status": _I32, "rows": _I64, "duration_s": _F64}.get(name, _STR),
        )
        for name in AUDIT_COLUMNS
        if name != "supplier"
    ),
    sort_by=("time", "endpoint"),
    window_of=None,
    versioned=False,
)

# An Octopus tariff code: fuel letter, register count ("1R", "2R"), product code, region letter.
_TARIFF_CODE = re.compile(r"[A-Z]-\d+R-(?P<product>[A-Z0-9][A-Z0-9-]*?)-[A-Z]")


def product_of(tariff: str) -> str | None:
    """The product code of a tariff code: AGILE-24-10-01 for E-1R-AGILE-24-10-01-C.

    Strips an Octopus tariff code's `<fuel>-<n>R-` prefix and `-<region letter>` suffix. A code
    without them (already a product code, or another supplier's tariff) comes back unchanged,
    trimmed; None for an empty one.
    """
    code = (tariff or "").strip()
    if not code:
        return None
    match = _TARIFF_CODE.fullmatch(code)
    return match["product"] if match else code


# One lock per partition for the whole process, keyed by the resolved location, so two config
# entries (two Archive objects on the same root) serialize too. Bounded by the partition count.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.Lock()
        return lock


# Filesystems without flock (some network mounts) answer with one of these: the archive then
# relies on the in-process lock alone, as before cross-process locking existed.
_NO_FLOCK: Final = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})
_NO_FLOCK_LOGGED = threading.Event()


def _no_flock(path: str, reason: str) -> None:
    if not _NO_FLOCK_LOGGED.is_set():
        _NO_FLOCK_LOGGED.set()
        _LOGGER.debug(
            "No file lock at %s (%s): writes are serialized within this process only",
            path,
            reason,
        )


def _flock(path: str) -> int | None:
    """Hold an exclusive flock on the file `path` (created if absent); return its descriptor.

    None where the filesystem (or the OS) has no flock. The holder deletes the file when it
    releases it (`_funlock`), so a waiter that wakes up on a deleted file retries on the new
    one: only the lock on the file the path names right now counts.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        _no_flock(path, "no fcntl")
        return None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                named = Path(path).stat()
            except FileNotFoundError:
                named = None
        except OSError as err:
            os.close(fd)
            if err.errno in _NO_FLOCK:
                _no_flock(path, os.strerror(err.errno or 0))
                return None
            raise
        except BaseException:
            os.close(fd)
            raise
        if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)  # the previous holder removed it: lock the file the path names now


def _funlock(path: str, fd: int) -> None:
    """Delete the lock file, then release it: partition folders keep only their data."""
    with suppress(OSError):
        Path(path).unlink()
    os.close(fd)


# Tags this process's temporary files: one found while the partition is locked belongs to a
# write of ours that died, and goes at once. A forked child gets a tag of its own.
_PROCESS: Final = {"tag": uuid.uuid4().hex[:16]}


def _new_process_tag() -> None:
    _PROCESS["tag"] = uuid.uuid4().hex[:16]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_process_tag)


def open_archive(
    root: str,
    *,
    config_dir: str,
    storage_options: Mapping[str, str] | None = None,
) -> Archive:
    """Resolve `archive_root` to a filesystem and check it is usable (blocking).

    A relative path lives under `config_dir`; a URI goes to pyarrow.fs (credentials from
    `storage_options`, else the URI's query or the environment; Azure only with an account
    key or a SAS token) and is proven with one request that fails cleanly (`_prove`): an
    Archive on an object store exists only once the store took its credentials. A GCS
    `service_account` (its JSON key) is first exchanged for an access token; the Archive's
    `credentials_expire` says when that token ends (the caller opens a new Archive before).
    """
    root = (root or "").strip() or "meterlake"
    options: dict[str, Any] = dict(storage_options or {})
    secrets = tuple(
        value for key, value in options.items() if key in _SECRET_OPTIONS and len(value) >= 4
    )
    scheme = urlsplit(root).scheme.lower() if "://" in root else ""
    if scheme in {"", "file"}:
        local = Path(urlsplit(root).path if scheme == "file" else root).expanduser()
        if not local.is_absolute():
            local = Path(config_dir) / local
        display = str(local.absolute())
        try:
            local.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ArchiveError(display, _describe(err, secrets)) from err
        return Archive(None, display, display, local=True, secrets=secrets)
    if scheme not in REMOTE_SCHEMES:
        raise ArchiveError(_display_uri(root), f"unsupported URI scheme {scheme!r}")
    display = _display_uri(root)
    query_secret = urlsplit(root).query
    if query_secret:
        secrets = (*secrets, query_secret)
    expires: datetime | None = None
    token = ""
    if scheme in GCS_SCHEMES and "service_account" in options:
        text = str(options.pop("service_account"))
        try:
            info = _service_account(text, options)
            secrets = (*secrets, *pem_secret_forms(str(info["private_key"])))
            token, expires = gcs_access_token(info)
        except Exception as err:
            raise ArchiveError(display, _describe(err, secrets)) from err
        # The token is a credential too: out of every text MeterLake writes while it lives.
        register_secrets([token])
        secrets = (*secrets, token)
        options["access_token"] = token
        options["credential_token_expiration"] = expires
    try:
        try:
            filesystem, base = _remote_filesystem(root, scheme, options)
        except Exception as err:
            raise ArchiveError(display, _describe(err, secrets)) from err
        base = base.rstrip("/")
        _prove(filesystem, base, display, secrets)
    except ArchiveError:
        if token:  # its error text is scrubbed already; nothing will use the token
            forget_secrets([token])
        raise
    archive = Archive(filesystem, base, display, local=False, secrets=secrets)
    archive.credentials_expire = expires
    archive.expiring_secrets = (token,) if token else ()
    return archive


def _service_account(text: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The service account's JSON key, checked as the options form does (storage.py)."""
    from .storage import parse_service_account

    if options.get("anonymous") is True:
        raise ValueError("give anonymous access or a service account, not both")
    info, error = parse_service_account(text)
    if info is None:
        raise ValueError(f"the service account's JSON key cannot be used ({error})")
    return info


def gcs_access_token(
    info: Mapping[str, Any], *, timeout: float = GCS_TOKEN_TIMEOUT_S
) -> tuple[str, datetime]:
    """Exchange a service account's key for an OAuth access token and its expiry (blocking).

    A JWT signed RS256 with the key's private key (iss: the client email, scope: read and
    write Cloud Storage, aud: the key's token URI, one hour) is POSTed to that token URI as
    a JWT bearer grant (RFC 7523); the answer's `access_token` lives `expires_in` seconds.
    A refusal (HTTP 400/401…) or an unreachable endpoint is a GcsTokenError without secrets.
    """
    import jwt

    token_uri = str(info["token_uri"]).strip()
    now = datetime.now(UTC)
    issued = int(now.timestamp())
    claims = {
        "iss": info["client_email"],
        "scope": GCS_SCOPE,
        "aud": token_uri,
        "iat": issued,
        "exp": issued + GCS_ASSERTION_LIFETIME_S,
    }
    key_id = info.get("private_key_id")
    assertion = jwt.encode(
        claims,
        str(info["private_key"]),
        algorithm="RS256",
        headers={"kid": key_id} if isinstance(key_id, str) and key_id else None,
    )
    status, payload = _post_form(
        token_uri, {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}, timeout
    )
    answer: Any = None
    with suppress(ValueError):
        answer = json.loads(payload)
    if status != 200:
        detail = ""
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            detail = f": {answer['error']}"
            if isinstance(answer.get("error_description"), str):
                detail += f" ({answer['error_description'][:200]})"
        reason = f"the token endpoint refused the service account: HTTP {status}{detail}"
        raise GcsTokenError(scrub(reason, [assertion]))
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise GcsTokenError("the token endpoint answered without an access token")
    lifetime = answer.get("expires_in", GCS_ASSERTION_LIFETIME_S)
    try:
        seconds = float(lifetime)
    except TypeError, ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise GcsTokenError("the token endpoint answered without a valid expires_in")
    return token.strip(), now + timedelta(seconds=min(seconds, 24 * 3600.0))


def _post_form(url: str, fields: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    """POST an urlencoded form; (status, body). Not reachable: GcsTokenError (blocking)."""
    from http.client import HTTPException
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    request = Request(
        url,
        data=urlencode(fields).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    try:
        with urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read(_TOKEN_RESPONSE_LIMIT))
    except HTTPError as err:
        try:
            return int(err.code), bytes(err.read(_TOKEN_RESPONSE_LIMIT))
        finally:
            err.close()
    except (OSError, ValueError, HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        raise GcsTokenError(
            f"the token endpoint cannot be reached: {type(reason).__name__}: {reason}"
        ) from None


def _prove(filesystem: Any, base: str, display: str, secrets: Sequence[str]) -> None:
    """Prove the store takes the credentials before anything else calls into it (blocking).

    pyarrow's Azure client aborts the whole process (an uncaught C++ exception) on several
    calls when its credentials fail — a container's info, opening a file, creating a
    container — while `get_file_info` of a path inside a container raises a Python error.
    That call, on a name inside the root, is the proof; only then is an Archive made.
    """
    if not base.strip("/"):
        raise ArchiveError(display, "the URI names no bucket or container")
    try:
        filesystem.get_file_info(f"{base}/{PROBE_NAME}")
    except Exception as err:
        raise ArchiveError(display, _describe(err, secrets)) from err


def _display_uri(uri: str) -> str:
    """Show the URI without credentials or query (an Azure container name is no secret)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.username and parts.scheme.lower() in {"abfs", "abfss", "az"} and not parts.password:
        host = f"{parts.username}@{host}"
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/")


def _remote_filesystem(uri: str, scheme: str, options: dict[str, Any]) -> tuple[Any, str]:
    """Build a pyarrow filesystem for the URI; return it and the root path inside it."""
    from pyarrow import fs as pafs

    parts = urlsplit(uri)
    if scheme in AZURE_SCHEMES:
        return _azure_filesystem(uri, options)
    if not options:
        filesystem, path = pafs.FileSystem.from_uri(uri)
        return filesystem, str(path)
    merged: dict[str, Any] = dict(parse_qsl(parts.query))
    merged.update(options)
    for key, value in list(merged.items()):
        if key in _BOOL_OPTIONS and isinstance(value, str):
            merged[key] = value.strip().lower() in {"1", "true", "yes", "on"}
        elif key in _FLOAT_OPTIONS and isinstance(value, str):
            merged[key] = float(value)
    if scheme == "s3":
        if parts.username and "access_key" not in merged:
            merged["access_key"] = unquote(parts.username)
            merged["secret_key"] = unquote(parts.password or "")
        return pafs.S3FileSystem(**merged), f"{parts.hostname}{parts.path}"
    return pafs.GcsFileSystem(**merged), f"{parts.hostname}{parts.path}"


def _azure_filesystem(uri: str, options: dict[str, Any]) -> tuple[Any, str]:
    """AzureFileSystem with an account key or a SAS token, never Azure's default credentials.

    Roots: `abfs[s]://container@account.dfs.core.windows.net/path` or `az://container/path`.
    Azure's default credentials are refused: pyarrow cannot report their failure without
    aborting the process. A SAS may come in the URI's query (`?sv=…&sig=…`); a sovereign
    cloud's authorities come from the host; an endpoint option (Azurite) wins over both.
    """
    from pyarrow import fs as pafs

    from .storage import azure_account_of, azure_authorities, sas_has_signature, valid_account_key

    parts = urlsplit(uri)
    merged: dict[str, Any] = azure_authorities(uri)
    if sas_has_signature(uri):
        merged["sas_token"] = parts.query
    else:
        merged.update(
            (key, value) for key, value in parse_qsl(parts.query) if key in _AZURE_OPTIONS
        )
    merged.update(options)
    if not merged.get("account_name"):
        account = azure_account_of(uri)
        if account is None:
            raise ValueError("no storage account: give the account name")
        merged["account_name"] = account
    key, sas = merged.get("account_key"), merged.get("sas_token")
    if key and sas:
        raise ValueError("give an account key or a SAS token, not both")
    if not key and not sas:
        raise ValueError("no account key or SAS token (Azure's default credentials are not used)")
    if key and not valid_account_key(str(key)):
        raise ValueError("the account key is not base64")
    if sas and not str(sas).startswith("?"):
        merged["sas_token"] = f"?{sas}"
    container = parts.username if parts.username else parts.hostname or ""
    if not container:
        raise ValueError("the URI names no container")
    return pafs.AzureFileSystem(**merged), f"{container}{parts.path}"


def _describe(err: BaseException, secrets: Sequence[str] = ()) -> str:
    """Make a short, secret-free reason: error type and message, credentials masked."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.strerror}: {err.filename}"
    text = scrub(text, secrets)
    text = " ".join(text.split())
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(err).__name__}: {text}"


def _segment(name: str, value: Any) -> str:
    """`name=value` with the value percent-encoded where a path would break."""
    if value is None or (isinstance(value, float) and value != value):  # noqa: PLR0124
        raise ValueError(f"{name} must not be null")
    text = str(value)
    if not text or text in {".", ".."}:
        raise ValueError(f"{name} must not be empty")
    return f"{name}={quote(text, safe='')}"


def _month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _arrow_schema(spec: _Spec, columns: Sequence[tuple[str, str]]) -> Any:
    import pyarrow as pa

    types = {
        _STR: pa.string(),
        _TS: pa.timestamp("us", tz="UTC"),
        _F64: pa.float64(),
        _I64: pa.int64(),
        _I32: pa.int32(),
        _BOOL: pa.bool_(),
    }
    return pa.schema(
        [pa.field(name, types[kind]) for name, kind in columns],
        metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), DATASET_KEY: spec.name.encode()},
    )


def _conform(frame: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Keep the stored columns only, typed: UTC microsecond timestamps, floats, ints, str."""
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {}
    length = len(frame)
    for name, kind in columns:
        if name not in frame.columns:
            series = pd.Series([None] * length, index=frame.index, dtype=object)
        else:
            series = frame[name]
        if kind == _TS:
            if isinstance(series.dtype, pd.DatetimeTZDtype):
                series = series.dt.tz_convert("UTC")
            elif pd.api.types.is_datetime64_dtype(series.dtype):
                if series.notna().any():
                    raise ValueError(f"{name} must be timezone-aware (UTC)")
                series = series.dt.tz_localize("UTC")
            else:
                series = pd.to_datetime(series, utc=True, format="ISO8601")
            series = series.dt.as_unit("us")
        elif kind == _F64:
            series = pd.to_numeric(series, errors="coerce").astype("float64")
        elif kind in {_I64, _I32}:
            series = pd.to_numeric(series, errors="coerce").astype(
                "Int64" if kind == _I64 else "Int32"
            )
        elif kind == _BOOL:
            series = _booleans(series)
        else:
            values = series.to_numpy(dtype=object, copy=True)
            values[pd.isna(values)] = None
            if pd.api.types.infer_dtype(values, skipna=True) not in {"string", "empty"}:
                values = np.array([v if v is None else str(v) for v in values], dtype=object)
            series = pd.Series(values, index=frame.index, dtype=object)
        out[name] = series
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def _booleans(series: pd.Series) -> pd.Series:
    """A nullable boolean column: null stays null (a grid_mix file from before `consolidated`)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean")
    values = [_flag(v) for v in series.to_numpy(dtype=object)]
    return pd.Series(pd.array(values, dtype="boolean"), index=series.index)


def _flag(value: Any) -> bool | None:
    """One value as a flag: null (None, NaN, NA) stays None; "true"/"1"/"yes" are true."""
    import pandas as pd

    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)


def _strip_secrets(payload: Any, secrets: Sequence[str]) -> Any:
    """Drop keys named like credentials, and mask known secret values, at any depth."""
    if isinstance(payload, Mapping):
        return {
            str(key): _strip_secrets(value, secrets)
            for key, value in payload.items()
            if not _SECRET_KEY.search(str(key).replace("-", "_"))
        }
    if isinstance(payload, (list, tuple)):
        return [_strip_secrets(item, secrets) for item in payload]
    if isinstance(payload, str):
        for secret in (*secrets, *known_secrets()):
            if secret:
                payload = payload.replace(secret, "***")
    return payload


class Archive:
    """One archive root, from `open_archive`. Every method blocks: run it in the executor.

    Writers: on a local disk any number of threads and processes (partition locks, flock).
    On an object store (S3, GCS, Azure) one writing process per root is required: a write is
    a read, a merge and a single PUT with no lock between processes, so two processes writing
    the same partition at once can lose each other's rows. Readers are always safe.
    """

    def __init__(
        self,
        filesystem: Any,
        base: str,
        display: str,
        *,
        local: bool,
        secrets: Sequence[str] = (),
    ) -> None:
        self._fs = filesystem
        self._base = base
        self._local = local
        self._secrets = tuple(secrets)
        self.root = display
        # GCS with a service account: when the access token ends, and the token itself.
        self.credentials_expire: datetime | None = None
        self.expiring_secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Archive({self.root!r})"

    # -- public API -------------------------------------------------------------------------

    def check_writable(self) -> None:
        """Write and delete a small hidden object at the root (the options form's check).

        Object stores only: a local root was created by `open_archive`. The credentials are
        proven already (`open_archive`), so a refusal here is a clean ArchiveError.
        """
        if self._local:
            return
        path = self._join(f"{PROBE_NAME}-{uuid.uuid4().hex}")
        self._guard(self._put_remote, path, b"meterlake")
        self._guard(self._fs.delete_file, path)

    def write_intervals(self, frame: pd.DataFrame) -> WriteSummary:
        """Merge interval-table rows into consumption/supplier=/meter=/month= partitions."""
        return self._write(CONSUMPTION, frame)

    def write_readings(self, frame: pd.DataFrame) -> WriteSummary:
        """Merge counter readings into readings/supplier=/meter=/month= (month of time, UTC).

        `frame` has analytics.schema.READING_COLUMNS. One row per (time, source) in a meter's
        partition: a hand reading and a `new_meter` row at the same moment are both kept; the
        same reading stored again keeps the newer `ingested_at`.
        """
        return self._write(READINGS, frame)

    def write_anomalies(self, frame: pd.DataFrame) -> WriteSummary:
        """Merge anomalies into anomalies/meter=/month= (month of start, UTC).

        `frame` has analytics.schema.ANOMALY_COLUMNS. One row per (kind, start) in a meter's
        partition: two kinds at the same start are both kept; an anomaly detected again
        replaces the stored one when its `detected_at` is newer (a null one counts as now).
        """
        return self._write(ANOMALIES, frame)

    def write_rates(self, frame: pd.DataFrame) -> WriteSummary:
        """Merge unit rates into rates/supplier=/tariff=/month= (month of valid_from, UTC)."""
        return self._write(RATES, frame)

    def write_standing_charges(self, frame: pd.DataFrame) -> WriteSummary:
        """Merge standing charges into one file per supplier and tariff (they change rarely)."""
        return self._write(STANDING_CHARGES, frame)

    def write_agreements(self, frame: pd.DataFrame) -> WriteSummary:
        """Merge agreements into agreements/meter=<meter>/data.parquet (one file per meter).

        `frame` has analytics.schema.AGREEMENT_ARCHIVE_COLUMNS. A missing or null `product` is
        derived from the tariff (`product_of`). One row per (tariff, valid_from, source) in a
        meter's file: the same agreement sent again replaces itself when its `ingested_at` is
        newer (a null one counts as now); a change of tariff adds a row.
        """
        import pandas as pd

        if len(frame) and "tariff" in frame.columns:
            derived = pd.Series(
                [
                    None if pd.isna(tariff) else product_of(str(tariff))
                    for tariff in frame["tariff"].to_numpy(dtype=object)
                ],
                index=frame.index,
                dtype=object,
            )
            if "product" in frame.columns:
                derived = frame["product"].astype(object).where(frame["product"].notna(), derived)
            frame = frame.assign(product=derived)
        return self._write(AGREEMENTS, frame)

    def read_agreements(
        self, meter: str | None = None, *, skip_corrupt: bool = False
    ) -> pd.DataFrame:
        """Agreements of `meter` (every meter when None), by meter, valid_from, tariff, source.

        Columns: analytics.schema.AGREEMENT_ARCHIVE_COLUMNS, timestamps datetime64[ns, UTC];
        an empty frame with those columns when there are none. A corrupt file raises
        CorruptPartitionError unless `skip_corrupt` (then it is logged and left out).
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        spec = AGREEMENTS
        folders: list[tuple[str, str]] = []  # (meter folder, meter)
        if meter is None:
            for folder in self._list_dirs(self._join(spec.name)):
                segment = folder.rsplit("/", 1)[-1]
                if segment.startswith("meter="):
                    folders.append((folder, unquote(segment.split("=", 1)[1])))
        else:
            folders.append((self._join(spec.name, _segment("meter", meter)), meter))
        tables: list[Any] = []
        for folder, name in folders:
            path = self._join(folder, DATA_FILE)
            try:
                part = self._load(spec, path, spec.columns)
            except CorruptPartitionError:
                if not skip_corrupt:
                    raise
                _LOGGER.warning("Skipping unreadable archive partition %s", path)
                continue
            if part is not None:
                tables.append(
                    part.append_column("meter", pa.array([name] * part.num_rows, pa.string()))
                )
        schema = _arrow_schema(spec, (*spec.columns, ("meter", _STR)))
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        order = [("meter", "ascending"), *((name, "ascending") for name in spec.sort_by)]
        table = table.take(pc.sort_indices(table, sort_keys=order))
        return _frame_ns(table.select(list(AGREEMENT_ARCHIVE_COLUMNS)))

    def has_data(self, dataset: str) -> bool:
        """Whether the top-level folder `dataset` ("consumption") holds a data file anywhere."""
        folder = self._join(dataset)
        if self._local:
            top = Path(folder)
            if not top.is_dir():
                return False
            return any(DATA_FILE in filenames for _dirpath, _dirs, filenames in top.walk())
        return any(path.endswith("/" + DATA_FILE) for path in self._list_files(folder))

    def write_text(self, name: str, text: str) -> str:
        """Make the file `name` (relative to the root, e.g. "views.sql") hold `text` (UTF-8).

        Written all or nothing, like a partition; a file that already holds exactly `text` is
        left alone. Returns its path.
        """
        parts = PurePosixPath(name).parts
        if not parts or name.startswith("/") or any(p in {".", ".."} for p in parts):
            raise ValueError(f"invalid archive file name {name!r}")
        path = self._join(*parts)
        body = text.encode()
        with _lock_for(self._lock_key(path)):
            if self._fetch(path) != body:
                self._put(path, body)
        return path

    def write_grid_mix(self, frame: pd.DataFrame, *, perimeter: str) -> WriteSummary:
        """Merge eCO2mix rows (key `start`) into grid_mix/supplier=eco2mix/perimeter=/month=.

        Numeric fields are stored as float64 ("ND" and other text become null); fields beyond
        GRID_MIX_FIELDS are kept, appended in name order. A row with `consolidated` true is
        never replaced by a real-time one, whatever their `ingested_at`; among equals the
        newer wins.
        """
        frame = frame.assign(supplier="eco2mix", perimeter=perimeter)
        known = {name for name, _ in GRID_MIX.columns} | {"supplier", "perimeter", "month"}
        extra = tuple(sorted(str(c) for c in frame.columns if c not in known))
        return self._write(GRID_MIX, frame, extra_floats=extra)

    def write_audit(self, records: Sequence[AuditRecord]) -> WriteSummary:
        """Append poll records to audit/supplier=/month= (a repeated record replaces itself)."""
        import pandas as pd

        frame = pd.DataFrame(
            [
                {
                    "time": r.time,
                    "supplier": r.supplier,
                    "endpoint": r.endpoint,
                    "status": r.status,
                    "rows": r.rows,
                    "duration_s": r.duration_s,
                    "error": None if r.error is None else _describe_text(r.error, self._secrets),
                }
                for r in records
            ],
            columns=list(AUDIT_COLUMNS),
        )
        return self._write(AUDIT, frame)

    def write_raw(
        self,
        supplier: str,
        endpoint: str,
        payload: Any,
        when: datetime,
        *,
        secrets: Sequence[str] = (),
    ) -> str:
        """Store one response as gzip JSON under raw/<supplier>/YYYY/MM/DD/; return its path.

        Keys named like credentials are dropped and `secrets` (plus the storage credentials)
        masked wherever they appear, even if the caller already stripped them.
        """
        if when.tzinfo is None:
            raise ValueError("when must be timezone-aware")
        when = when.astimezone(UTC)
        clean = _strip_secrets(payload, (*self._secrets, *secrets))
        body = gzip.compress(
            json.dumps(clean, separators=(",", ":"), default=str).encode(), mtime=0
        )
        name = _SAFE_SEGMENT.sub("_", endpoint).strip("._") or "response"
        folder = self._join(
            "raw", _SAFE_SEGMENT.sub("_", supplier) or "unknown", when.strftime("%Y/%m/%d")
        )
        stamp = when.strftime("%Y%m%dT%H%M%S%fZ")
        path = self._join(folder, f"{name}-{stamp}.json.gz")
        with _lock_for(self._lock_key(path)):
            counter = 1
            while self._exists(path):
                counter += 1
                path = self._join(folder, f"{name}-{stamp}-{counter}.json.gz")
            self._put(path, body)
        return path

    def write_raw_file(self, folder: str, name: str, body: Callable[[], bytes]) -> str:
        """Keep a file under raw/<folder>/<name> once: an existing one is left as it is.

        `body` is called only when the file is not there yet (an imported file named by its
        checksum: importing it again copies nothing). Returns the path.
        """
        path = self._join("raw", _SAFE_SEGMENT.sub("_", folder), _SAFE_SEGMENT.sub("_", name))
        with _lock_for(self._lock_key(path)):
            if not self._exists(path):
                self._put(path, body())
        return path

    def purge_raw(self, keep_days: int, now: datetime) -> int:
        """Remove raw responses from days before `now - keep_days` (by path date, UTC)."""
        cutoff = (now.astimezone(UTC) - timedelta(days=max(keep_days, 0))).date()
        raw_root = self._join("raw")
        expired: dict[str, int] = {}  # day folder -> files in it
        for path in self._list_files(raw_root):
            parts = PurePosixPath(path[len(raw_root) :].lstrip("/")).parts
            if len(parts) != 5:
                continue
            try:
                day = date(int(parts[1]), int(parts[2]), int(parts[3]))
            except ValueError:
                continue
            if day < cutoff:
                if self._local:
                    self._guard(self._delete, path)
                folder = path.rsplit("/", 1)[0]
                expired[folder] = expired.get(folder, 0) + 1
        if self._local:
            if expired:
                _remove_empty_dirs(raw_root)
        else:
            # One call per day. pyarrow then leaves an empty "<month>/" directory marker
            # object (its emulation of directories); deleting file by file would leave one
            # per day instead. Readers ignore these zero-byte keys.
            for folder in expired:
                self._guard(self._fs.delete_dir, folder)
        return sum(expired.values())

    def read_intervals(
        self,
        meter: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        skip_corrupt: bool = False,
    ) -> pd.DataFrame:
        """Rows of `meter` with start in [start, end), sorted, with the interval-table columns.

        Timestamps come back as datetime64[ns, UTC]. A corrupt partition raises
        CorruptPartitionError unless `skip_corrupt` (then it is logged and left out).
        """
        return self._read_meter(
            CONSUMPTION,
            meter,
            start,
            end,
            order=INTERVAL_COLUMNS,
            moment="start",
            skip_corrupt=skip_corrupt,
        )

    def read_rates(self, supplier: str, tariff: str, end: datetime) -> pd.DataFrame:
        """A tariff's archived unit rates that start before `end`, with RATE_COLUMNS.

        Rate partitions are by `valid_from` (an open-ended rate lives in the month it started),
        so every month up to `end` is read; unreadable partitions are logged and left out.
        """
        import pandas as pd
        import pyarrow as pa

        from .analytics.schema import RATE_COLUMNS

        folder = self._join(RATES.name, _segment("supplier", supplier), _segment("tariff", tariff))
        tables = list(self._month_tables(RATES, folder, None, end, skip_corrupt=True))
        if not tables:
            return pd.DataFrame({name: [] for name in RATE_COLUMNS})
        frame: pd.DataFrame = pa.concat_tables(tables).to_pandas()
        frame["supplier"] = supplier
        frame["tariff"] = tariff
        return frame[list(RATE_COLUMNS)]

    def read_readings(
        self,
        meter: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        skip_corrupt: bool = False,
    ) -> pd.DataFrame:
        """Readings of `meter` with time in [start, end), every supplier, by time then source.

        Columns: analytics.schema.READING_COLUMNS, timestamps datetime64[ns, UTC]; an empty
        frame with those columns when there are none. A corrupt partition raises
        CorruptPartitionError unless `skip_corrupt` (then it is logged and left out).
        """
        return self._read_meter(
            READINGS,
            meter,
            start,
            end,
            order=READING_COLUMNS,
            moment="time",
            skip_corrupt=skip_corrupt,
        )

    def read_anomalies(
        self,
        meter: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        skip_corrupt: bool = False,
    ) -> pd.DataFrame:
        """Anomalies of `meter` with start in [start, end), sorted by start then kind.

        Columns: analytics.schema.ANOMALY_COLUMNS, timestamps datetime64[ns, UTC]; an empty
        frame with those columns when there are none. A corrupt partition raises
        CorruptPartitionError unless `skip_corrupt` (then it is logged and left out).
        """
        return self._read_meter(
            ANOMALIES,
            meter,
            start,
            end,
            order=ANOMALY_COLUMNS,
            moment="start",
            skip_corrupt=skip_corrupt,
        )

    def _read_meter(
        self,
        spec: _Spec,
        meter: str,
        start: datetime | None,
        end: datetime | None,
        *,
        order: Sequence[str],
        moment: str,
        skip_corrupt: bool,
    ) -> pd.DataFrame:
        """A meter's rows of a [supplier/]meter/month dataset, `moment` in [start, end).

        Every supplier's partitions when the spec has a supplier level. Sorted by the spec's
        `sort_by`, columns `order`, timestamps datetime64[ns, UTC].
        """
        import pyarrow as pa

        wanted = _segment("meter", meter)
        by_supplier = "supplier" in spec.partition_by
        folders: list[tuple[str, str | None]] = []  # (meter folder, supplier or None)
        if by_supplier:
            for supplier_dir in self._list_dirs(self._join(spec.name)):
                supplier_seg = supplier_dir.rsplit("/", 1)[-1]
                if supplier_seg.startswith("supplier="):
                    folders.append(
                        (self._join(supplier_dir, wanted), unquote(supplier_seg.split("=", 1)[1]))
                    )
        else:
            folders.append((self._join(spec.name, wanted), None))
        tables: list[Any] = []
        for meter_dir, supplier in folders:
            for part in self._month_tables(spec, meter_dir, start, end, skip_corrupt):
                rows = part.num_rows
                tagged = part
                if supplier is not None:
                    tagged = tagged.append_column("supplier", pa.array([supplier] * rows))
                tables.append(tagged.append_column("meter", pa.array([meter] * rows, pa.string())))
        added = (("supplier", _STR),) if by_supplier else ()
        schema = _arrow_schema(spec, (*spec.columns, *added, ("meter", _STR)))
        table = _in_window(
            pa.concat_tables(tables) if tables else schema.empty_table(),
            start,
            end,
            column=moment,
            sort_by=spec.sort_by,
        ).select(list(order))
        # pandas 2 defaults to nanoseconds: hand back what the rest of the code base makes.
        ns = pa.timestamp("ns", tz="UTC")
        table = table.cast(
            pa.schema(
                [
                    pa.field(f.name, ns if pa.types.is_timestamp(f.type) else f.type)
                    for f in table.schema
                ]
            )
        )
        frame: pd.DataFrame = table.to_pandas()
        return frame

    def read_grid_mix(
        self, perimeter: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame | None:
        """eCO2mix rows of `perimeter` with start in [start, end), sorted; None when there are none.

        Columns: start, end, GRID_MIX_FIELDS, the extra numeric fields (name order),
        `consolidated` (a row stored before that column existed reads as real time) and
        ingested_at; timestamps datetime64[ns, UTC]. Unreadable partitions are logged and left
        out, as a poll re-fetches them; I/O failures raise ArchiveError.
        """
        import pyarrow as pa

        folder = self._join(GRID_MIX.name, "supplier=eco2mix", _segment("perimeter", perimeter))
        tables = list(self._month_tables(GRID_MIX, folder, start, end, skip_corrupt=True))
        if not tables:
            return None
        table = _in_window(pa.concat_tables(tables, promote_options="default"), start, end)
        if table.num_rows == 0:
            return None
        return _grid_frame(table)

    def _month_tables(
        self,
        spec: _Spec,
        folder: str,
        start: datetime | None,
        end: datetime | None,
        skip_corrupt: bool,
    ) -> Iterator[Any]:
        """The month partitions under `folder` that overlap [start, end), as arrow tables.

        A corrupt one raises CorruptPartitionError unless `skip_corrupt` (logged, left out).
        """
        for month_dir in self._list_dirs(folder):
            match = re.fullmatch(r"month=(\d{4})-(\d{2})", month_dir.rsplit("/", 1)[-1])
            if not match:
                continue
            lo, hi = _month_bounds(int(match[1]), int(match[2]))
            if (start is not None and hi <= start) or (end is not None and lo >= end):
                continue
            path = self._join(month_dir, DATA_FILE)
            try:
                part = self._load(spec, path, spec.columns)
            except CorruptPartitionError:
                if not skip_corrupt:
                    raise
                _LOGGER.warning("Skipping unreadable archive partition %s", path)
                continue
            if part is not None:
                yield part

    def list_meters(self) -> list[str]:
        """Meters that have at least one consumption partition, sorted."""
        meters: set[str] = set()
        consumption = self._join("consumption")
        for supplier_dir in self._list_dirs(consumption):
            for meter_dir in self._list_dirs(supplier_dir):
                segment = meter_dir.rsplit("/", 1)[-1]
                if segment.startswith("meter=") and any(
                    path.endswith("/" + DATA_FILE) for path in self._list_files(meter_dir)
                ):
                    meters.add(unquote(segment.split("=", 1)[1]))
        return sorted(meters)

    def interval_months(self, meter: str) -> list[str]:
        """`YYYY-MM` months with a consumption data file of `meter` (any supplier), oldest first.

        A listing only (no file is opened): long reads go month by month over these.
        """
        return sorted(
            {month for month, path in self._meter_files(meter) if path.endswith("/" + DATA_FILE)}
        )

    def verify_intervals(
        self,
        meter: str,
        cadence_minutes: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        quarantine: bool = True,
    ) -> MeterCheck:
        """Check the meter's stored history for unreadable files and missing slots (blocking).

        Walks the meter's month partitions under every supplier and reads each file's footer
        (row count, `end` statistics) and its `start` column only, never the whole table. A
        file that is not Parquet (zero bytes, truncated, garbage) or has no timestamp `start`
        column is unreadable; with `quarantine` it is set aside as `_data.parquet.corrupt`
        (under the partition lock, after a second look at its full bytes), so hive readers
        scan the archive again, and the next poll or a backfill can rebuild the month.

        Slots are `cadence_minutes` long, aligned on the Unix epoch (so on UTC midnight for
        any cadence that divides a day); a slot is present when a row starts in it. Expected
        slots cover [min(since, first stored start), max(until, last stored end)), widened to
        whole slots, plus the whole of any month whose partition holds no readable row
        (unreadable, empty, or already quarantined). Months follow the UTC partitioning, so
        their slot counts do not depend on daylight saving time. With nothing stored and no
        `since`/`until` pair, the check has no months.

        The meter's `readings` partitions (meters read from counters) are checked the same way
        for readability (footer and `time` column): an unreadable one is listed, and
        quarantined when asked, in its month's `unreadable`, so that month counts as damaged.
        Readings add no rows, slots or gaps: they have no cadence.
        """
        import numpy as np

        if cadence_minutes <= 0:
            raise ValueError("cadence_minutes must be positive")
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")
        if since is not None and until is not None and until < since:
            raise ValueError("until must not be before since")
        step = cadence_minutes * 60_000_000  # microseconds

        rows: dict[str, int] = {}  # month -> readable rows
        unreadable: dict[str, list[str]] = {}
        holds_file: set[str] = set()  # months with a data file or a quarantined one
        starts: list[Any] = []
        last_ends: list[int] = []
        for month, path in self._meter_files(meter):
            holds_file.add(month)
            if path.rsplit("/", 1)[-1] != DATA_FILE:
                continue  # quarantined earlier: the month shows as missing
            peek, broken = self._verify_file(path, quarantine=quarantine)
            if broken:
                unreadable.setdefault(month, []).append(path)
            if peek is None:
                continue
            rows[month] = rows.get(month, 0) + peek.rows
            if len(peek.starts):
                starts.append(peek.starts)
                last_ends.append(
                    int(peek.starts.max()) + step if peek.last_end is None else peek.last_end
                )
        reading_months: set[str] = set()  # months with an unreadable readings file
        for month, path in self._meter_files(meter, READINGS):
            if path.rsplit("/", 1)[-1] != DATA_FILE:
                continue  # quarantined earlier: reported when it was found
            _, broken = self._verify_file(path, quarantine=quarantine, peek=_peek_readings)
            if broken:
                unreadable.setdefault(month, []).append(path)
                reading_months.add(month)

        present = np.unique(np.concatenate(starts) // step) if starts else np.empty(0, np.int64)
        first = min(int(s.min()) for s in starts) if starts else None
        last = max(last_ends) if last_ends else None
        lows = [_micros(m) for m in (since,) if m is not None]
        highs = [_micros(m) for m in (until,) if m is not None]
        if first is not None and last is not None:
            lows.append(first)
            highs.append(last)
        for month in sorted(holds_file):
            if rows.get(month, 0) == 0:  # no readable row: the whole month is expected
                lo, hi = _month_bounds(int(month[:4]), int(month[5:]))
                lows.append(_micros(lo))
                highs.append(_micros(hi))
        if lows and highs:
            lo_slot = min(lows) // step
            hi_slot = -(-max(highs) // step)
        elif reading_months:  # only unreadable readings: their months, no slot expected
            first_month = min(reading_months)
            lo_slot = hi_slot = (
                _micros(_month_bounds(int(first_month[:4]), int(first_month[5:]))[0]) // step
            )
        else:
            return MeterCheck(meter, (), None, None)

        checks: list[MonthCheck] = []
        month = min([_month_of(lo_slot * step), *holds_file, *reading_months])
        end_month = max([_month_of(hi_slot * step - 1), *holds_file, *reading_months])
        while month <= end_month:
            month_lo, month_hi = _month_bounds(int(month[:4]), int(month[5:]))
            a = max(-(-_micros(month_lo) // step), lo_slot)  # first slot starting in the month
            b = min(-(-_micros(month_hi) // step), hi_slot)
            have = present[np.searchsorted(present, a) : np.searchsorted(present, b)]
            edges = np.concatenate(([a - 1], have, [b]))
            holes = np.flatnonzero(np.diff(edges) > 1)
            checks.append(
                MonthCheck(
                    month=month,
                    rows=rows.get(month, 0),
                    expected=max(b - a, 0),
                    unreadable=tuple(sorted(unreadable.get(month, ()))),
                    gaps=tuple(
                        (
                            _from_micros((int(edges[i]) + 1) * step),
                            _from_micros(int(edges[i + 1]) * step),
                        )
                        for i in holes
                    ),
                )
            )
            month = _month_of(_micros(month_hi))
        return MeterCheck(
            meter,
            tuple(checks),
            None if first is None else _from_micros(first),
            None if last is None else _from_micros(last),
        )

    def _meter_files(self, meter: str, spec: _Spec = CONSUMPTION) -> Iterator[tuple[str, str]]:
        """(month, path) of the meter's data files and quarantined ones, every supplier."""
        wanted = _segment("meter", meter)
        for supplier_dir in self._list_dirs(self._join(spec.name)):
            if not supplier_dir.rsplit("/", 1)[-1].startswith("supplier="):
                continue
            meter_dir = self._join(supplier_dir, wanted)
            for path in self._list_files(meter_dir):
                match = re.fullmatch(
                    r"month=(\d{4}-(?:0[1-9]|1[0-2]))/(.+)", path[len(meter_dir) :].lstrip("/")
                )
                if match and (
                    match[2] == DATA_FILE
                    or (match[2].startswith(f"_{DATA_FILE}") and match[2].endswith(CORRUPT_SUFFIX))
                ):
                    yield match[1], path

    def _verify_file(
        self, path: str, *, quarantine: bool, peek: Callable[[Any], _Peek] | None = None
    ) -> tuple[_Peek | None, bool]:
        """Peek at one partition file; return (what it holds or None, whether unreadable).

        `peek` reads an open file (default: a consumption file's footer and `start` column).
        """
        try:
            return self._peek(path, peek), False
        except CorruptPartitionError as err:
            if not quarantine:
                return None, True
            reason = err.reason
        with self._partition_lock(path):
            try:  # a writer may have replaced it meanwhile
                return self._peek(path, peek), False
            except CorruptPartitionError as err:
                reason = err.reason
            target = self._quarantine(path)
            if not self._local:  # _quarantine copies on object stores
                self._guard(self._fs.delete_file, path)
        _LOGGER.warning("Archive partition %s is unreadable (%s); kept as %s", path, reason, target)
        return None, True

    def _peek(self, path: str, peek: Callable[[Any], _Peek] | None = None) -> _Peek | None:
        """Footer and `start` column of the file (or what `peek` reads); None if it is gone.

        Reads ranges of the file only. On any failure the whole file is fetched to tell an
        I/O failure (ArchiveError, raised) from damage (CorruptPartitionError).
        """
        import pyarrow as pa

        reader = _peek_parquet if peek is None else peek
        try:
            source = pa.OSFile(path) if self._local else self._fs.open_input_file(path)
            with source:
                return reader(source)
        except Exception:  # judged below, on the whole file
            _LOGGER.debug("Partition %s needs a second look", path)
        data = self._fetch(path)
        if data is None:
            return None
        try:
            return reader(pa.BufferReader(data))
        except Exception as err:
            raise CorruptPartitionError(self.root, _describe(err, self._secrets), path) from err

    # -- writing ----------------------------------------------------------------------------

    def _write(
        self, spec: _Spec, frame: pd.DataFrame, *, extra_floats: tuple[str, ...] = ()
    ) -> WriteSummary:
        """Group the input by partition and merge each group into its file."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if len(frame) == 0:
            return WriteSummary(spec.name, 0, 0, 0)
        missing = [c for c in (*spec.partition_by, *spec.key) if c not in frame.columns]
        missing = [c for c in missing if c != "payment_method"]
        if spec.month_of and spec.month_of not in frame.columns:
            missing.append(spec.month_of)
        if missing:
            raise ValueError(f"{spec.name}: missing columns {list(dict.fromkeys(missing))}")
        columns = (*spec.columns, *((name, _F64) for name in extra_floats))
        table = _fast_arrow(spec, frame, columns)
        if table is None:
            table = _to_arrow(spec, _conform(frame, columns), columns)
        for name in spec.key:
            if name != "payment_method" and table.column(name).null_count:
                raise ValueError(f"{spec.name}: null {name}")
        version = spec.version_column
        if spec.versioned and table.column(version).null_count:
            now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
            filled = pc.fill_null(table.column(version), now)
            table = table.set_column(table.schema.get_field_index(version), version, filled)
        groups: dict[str, Any] = {}
        for name in spec.partition_by:
            values = frame[name]
            if values.isna().any():
                raise ValueError(f"{spec.name}: null {name}")
            groups[name] = pa.array(values.astype(str).to_numpy(dtype=object), pa.string())
        if spec.month_of:
            moment = table.column(spec.month_of)
            groups["year"] = pc.year(moment)
            groups["month"] = pc.month(moment)
        keys = list(groups)
        groups["_row"] = pa.array(np.arange(table.num_rows))
        grouped = pa.table(groups).group_by(keys, use_threads=False).aggregate([("_row", "list")])
        grouped = grouped.sort_by([(name, "ascending") for name in keys])

        written = unchanged = landed = total = 0
        corrupt: list[str] = []
        windows: list[tuple[str, datetime, datetime]] = []
        for group in grouped.to_pylist():
            named = {name: group[name] for name in keys}
            index = group["_row_list"]
            segments = [_segment(name, named[name]) for name in spec.partition_by]
            lo: datetime = EPOCH
            hi: datetime = datetime.now(UTC)
            if spec.month_of:
                year, month = int(named["year"]), int(named["month"])
                segments.append(f"month={year:04d}-{month:02d}")
                lo, hi = _month_bounds(year, month)
            path = self._join(spec.name, *segments, DATA_FILE)
            outcome = self._merge_partition(spec, path, table.take(index))
            landed += outcome.landed
            total += outcome.total
            if outcome.written:
                written += 1
            else:
                unchanged += 1
            if outcome.corrupt is not None:
                corrupt.append(outcome.corrupt)
                if spec.window_of:
                    windows.append((str(named[spec.window_of]), lo, hi))
        return WriteSummary(
            dataset=spec.name,
            partitions_written=written,
            rows_written=landed,
            rows_total=total,
            corrupt=tuple(corrupt),
            corrupt_windows=tuple(windows),
            partitions_unchanged=unchanged,
        )

    def _merge_partition(self, spec: _Spec, path: str, incoming: Any) -> _Outcome:
        """Under the partition lock: read, merge on the key, write back if anything changed."""
        with self._partition_lock(path):
            corrupt_path: str | None = None
            try:
                existing = self._load(spec, path, _columns_of(incoming))
            except CorruptPartitionError as err:
                corrupt_path = self._quarantine(path)
                _LOGGER.warning(
                    "Archive partition %s is unreadable (%s); kept as %s and rebuilt",
                    path,
                    err.reason,
                    corrupt_path,
                )
                existing = None
            if existing is not None and existing.schema != incoming.schema:
                # The file has columns the input lacks (grid_mix extras): keep them.
                incoming = _widen(incoming, existing.schema)
            merged, landed = _merge(spec, existing, incoming)
            if existing is not None and _same_content(existing, merged):
                return _Outcome(False, landed, existing.num_rows, corrupt_path)
            self._put_table(spec, path, merged)
            return _Outcome(True, landed, merged.num_rows, corrupt_path)

    def _put_table(self, spec: _Spec, path: str, table: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        options = _parquet_options(table, _columns_of(table))
        pq.write_table(table.replace_schema_metadata(_metadata(spec)), sink, **options)
        self._put(path, sink.getvalue().to_pybytes())

    def _put(self, path: str, body: bytes) -> None:
        """Make `path` hold `body`, all or nothing."""
        if not self._local:
            self._guard(self._put_remote, path, body)
            return
        final = Path(path)
        # Hidden and not *.parquet: globbing readers and hive discovery never pick it up.
        temp = final.with_name(f".{final.name}.{_PROCESS['tag']}-{uuid.uuid4().hex}.tmp")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            _clear_dead_temps(final)
            with temp.open("xb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)  # noqa: PTH105 - atomic; tests patch os.replace
        except OSError as err:
            temp.unlink(missing_ok=True)
            raise ArchiveError(self.root, _describe(err, self._secrets)) from err

    def _put_remote(self, path: str, body: bytes) -> None:
        # A single PUT: the object appears whole or not at all.
        with self._fs.open_output_stream(path, compression=None) as out:
            out.write(body)

    def _quarantine(self, path: str) -> str:
        """Keep an unreadable partition file for the user as `_data.parquet.corrupt`.

        The leading underscore matters: Spark and pyarrow.dataset read every file of a
        partition directory except those starting with `_` or `.`, so a plain
        `data.parquet.corrupt` would break their scans. An older quarantined file is kept.
        """
        folder, name = path.rsplit("/", 1)
        target = f"{folder}/_{name}{CORRUPT_SUFFIX}"
        if self._exists(target):
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            target = f"{folder}/_{name}.{stamp}{CORRUPT_SUFFIX}"
        if self._local:
            try:
                os.replace(path, target)  # noqa: PTH105 - same call as the atomic write
            except OSError as err:
                raise ArchiveError(self.root, _describe(err, self._secrets)) from err
        else:
            # Copy, then let the rebuilt partition overwrite the original: a move would delete
            # it, and pyarrow then leaves a directory marker object behind.
            self._guard(self._fs.copy_file, path, target)
        return target

    # -- reading ----------------------------------------------------------------------------

    def _load(self, spec: _Spec, path: str, columns: Sequence[tuple[str, str]]) -> Any:
        """Read the partition as an Arrow table of `columns` (+ grid_mix extras); None if absent.

        Bytes are fetched first, so I/O failures (ArchiveError) and unreadable content
        (CorruptPartitionError) are told apart.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = self._fetch(path)
        if data is None:
            return None
        try:
            table = pq.read_table(pa.BufferReader(data))
            known = dict(columns)
            extra = tuple(
                (c, _F64) for c in table.column_names if c not in known and spec is GRID_MIX
            )
            wanted = (*columns, *extra)
            schema = _arrow_schema(spec, wanted)
            if table.schema.equals(schema, check_metadata=False):
                # Our own file: the types are already right, skip the per-column checks.
                return table.replace_schema_metadata(schema.metadata)
            return _to_arrow(spec, _conform(table.to_pandas(), wanted), wanted)
        except Exception as err:  # anything from parsing in-memory bytes means corrupt
            raise CorruptPartitionError(self.root, _describe(err, self._secrets), path) from err

    def _fetch(self, path: str) -> bytes | None:
        if self._local:
            try:
                return Path(path).read_bytes()
            except FileNotFoundError:
                return None
            except OSError as err:
                raise ArchiveError(self.root, _describe(err, self._secrets)) from err
        try:
            with self._fs.open_input_stream(path, compression=None) as stream:
                data: bytes = stream.read()
                return data
        except FileNotFoundError:
            return None
        except Exception as err:
            raise ArchiveError(self.root, _describe(err, self._secrets)) from err

    # -- filesystem helpers -----------------------------------------------------------------

    def _join(self, *parts: str) -> str:
        if parts and parts[0].startswith(self._base):
            return "/".join(parts)
        return "/".join((self._base, *parts))

    def _lock_key(self, path: str) -> str:
        if self._local:
            return os.path.realpath(path)
        return f"{type(self._fs).__name__}:{path}"

    @contextmanager
    def _partition_lock(self, path: str) -> Iterator[None]:
        """Hold the partition of the file `path` for a read-merge-write.

        Within the process: a thread lock shared by every Archive on the same location. On a
        local disk also across processes: an flock on `LOCK_FILE` in the partition folder
        (created for the write, deleted when done). Where the filesystem has no flock, the
        thread lock alone (logged once at debug). Object stores: the thread lock alone.
        """
        key = self._lock_key(path)
        with _lock_for(key):
            if not self._local:
                yield
                return
            lock_path = str(Path(key).with_name(LOCK_FILE))
            try:
                Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
                fd = _flock(lock_path)
            except OSError as err:
                raise ArchiveError(self.root, _describe(err, self._secrets)) from err
            try:
                yield
            finally:
                if fd is not None:
                    _funlock(lock_path, fd)

    def _guard(self, func: Any, *args: Any) -> Any:
        """Run a filesystem call; any failure becomes an ArchiveError without secrets."""
        try:
            return func(*args)
        except Exception as err:
            raise ArchiveError(self.root, _describe(err, self._secrets)) from err

    def _exists(self, path: str) -> bool:
        if self._local:
            return Path(path).exists()
        from pyarrow import fs as pafs

        info = self._guard(self._fs.get_file_info, path)
        return bool(info.type != pafs.FileType.NotFound)

    def _delete(self, path: str) -> None:
        """Remove a local file (remote purges delete whole day folders instead)."""
        Path(path).unlink()

    def _list(self, folder: str, *, recursive: bool) -> list[tuple[str, bool]]:
        """(path, is_file) under `folder`; a missing folder is empty."""
        if self._local:
            if not Path(folder).is_dir():
                return []
            try:
                if not recursive:
                    with os.scandir(folder) as entries:
                        return [(e.path, e.is_file()) for e in entries]
                found: list[tuple[str, bool]] = []
                for dirpath, dirnames, filenames in Path(folder).walk():
                    found.extend((str(dirpath / d), False) for d in dirnames)
                    found.extend((str(dirpath / f), True) for f in filenames)
            except OSError as err:
                raise ArchiveError(self.root, _describe(err, self._secrets)) from err
            return found
        from pyarrow import fs as pafs

        selector = pafs.FileSelector(folder, recursive=recursive, allow_not_found=True)
        infos = self._guard(self._fs.get_file_info, selector)
        return [(info.path, info.type == pafs.FileType.File) for info in infos]

    def _list_dirs(self, folder: str) -> list[str]:
        if self._local:
            return sorted(
                path for path, is_file in self._list(folder, recursive=False) if not is_file
            )
        # Object stores have no directories: derive them from the keys one level down.
        prefix = folder.rstrip("/") + "/"
        names = {
            path[len(prefix) :].split("/", 1)[0]
            for path, _ in self._list(folder, recursive=True)
            if path.startswith(prefix) and "/" in path[len(prefix) :]
        }
        return sorted(prefix + name for name in names)

    def _list_files(self, folder: str) -> list[str]:
        return sorted(path for path, is_file in self._list(folder, recursive=True) if is_file)


def _frame_ns(table: Any) -> pd.DataFrame:
    """An Arrow table as a frame, timestamps as datetime64[ns, UTC] (pandas' default unit)."""
    import pyarrow as pa

    ns = pa.timestamp("ns", tz="UTC")
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, ns if pa.types.is_timestamp(f.type) else f.type)
                for f in table.schema
            ]
        )
    )
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _grid_frame(table: Any) -> pd.DataFrame:
    """A grid_mix Arrow table as the frame the eCO2mix source produces (same column order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    known = {name for name, _ in GRID_MIX.columns}
    extra = sorted(name for name in table.column_names if name not in known)
    order = ["start", "end", *GRID_MIX_FIELDS, *extra, "consolidated", "ingested_at"]
    table = table.select(order)
    flags = pc.fill_null(table.column("consolidated"), pa.scalar(False))
    table = table.set_column(order.index("consolidated"), "consolidated", flags)
    ns = pa.timestamp("ns", tz="UTC")
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, ns if pa.types.is_timestamp(f.type) else f.type)
                for f in table.schema
            ]
        )
    )
    frame: pd.DataFrame = table.to_pandas()
    return frame


@dataclass(frozen=True, slots=True)
class _Outcome:
    written: bool
    landed: int
    total: int
    corrupt: str | None


def _peek_parquet(source: Any) -> _Peek:
    """Row count and `end` statistics from the footer, and the `start` column; raises if bad."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    meta = parquet.metadata
    kind = parquet.schema_arrow.field("start").type  # KeyError without a start column
    if not pa.types.is_timestamp(kind):
        raise TypeError(f"start is {kind}, not a timestamp")
    column = parquet.read(columns=["start"], use_threads=False).column("start")
    micros = pc.cast(pc.drop_null(column), pa.timestamp("us", kind.tz), safe=False)
    starts = pc.cast(micros, pa.int64()).to_numpy()
    last_end: int | None = None
    names = meta.schema.names
    if "end" in names:
        index = names.index("end")
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(index).statistics
            if stats is not None and stats.has_min_max and isinstance(stats.max, datetime):
                moment = stats.max if stats.max.tzinfo else stats.max.replace(tzinfo=UTC)
                end = _micros(moment)
                last_end = end if last_end is None else max(last_end, end)
    return _Peek(meta.num_rows, starts, last_end)


def _peek_readings(source: Any) -> _Peek:
    """Row count from the footer and the `time` column, read to be sure; raises if bad."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    kind = parquet.schema_arrow.field("time").type  # KeyError without a time column
    if not pa.types.is_timestamp(kind):
        raise TypeError(f"time is {kind}, not a timestamp")
    parquet.read(columns=["time"], use_threads=False)
    return _Peek(parquet.metadata.num_rows, np.empty(0, np.int64), None)


def _micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def _from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _month_of(micros: int) -> str:
    """The UTC month ("YYYY-MM") of a moment in microseconds since the epoch."""
    return _from_micros(micros).strftime("%Y-%m")


def _in_window(
    table: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    column: str = "start",
    sort_by: Sequence[str] = ("start",),
) -> Any:
    """Rows whose `column` is in [start, end) (None: open), sorted by `sort_by`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    moment = table.schema.field(column).type
    if start is not None:
        table = table.filter(pc.field(column) >= pa.scalar(start, moment))
    if end is not None:
        table = table.filter(pc.field(column) < pa.scalar(end, moment))
    return table.take(pc.sort_indices(table, sort_keys=[(name, "ascending") for name in sort_by]))


def _merge(spec: _Spec, existing: Any, incoming: Any) -> tuple[Any, int]:
    """Existing plus incoming rows, one per key; returns (rows, incoming rows that landed).

    The spec's `prefer` columns rank first (grid_mix: a consolidated row beats a real-time
    one), then the newer version column wins (`ingested_at`; anomalies: `detected_at`); on a
    tie the incoming row, and among incoming duplicates the later one. That is how a late
    correction replaces a reading and a stale re-fetch does not. Done in Arrow: a sort and a
    group-by instead of pandas frames keeps an hourly poll cheap.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    old = 0 if existing is None else existing.num_rows
    combined = pa.concat_tables([existing, incoming]) if old else incoming
    src = np.concatenate([np.zeros(old, np.int8), np.ones(incoming.num_rows, np.int8)])
    ranked = [*spec.key, *spec.prefer, spec.version_column] if spec.versioned else list(spec.key)
    work = combined.select(ranked)
    for name in spec.prefer:  # a null flag (a file from before the column) counts as False
        work = work.set_column(
            work.schema.get_field_index(name), name, pc.fill_null(work.column(name), False)
        )
    work = work.append_column("_src", pa.array(src))
    work = work.append_column("_pos", pa.array(np.arange(combined.num_rows)))
    order = pc.sort_indices(
        work,
        # Nulls first: a row without a version (ingested_at) is the oldest.
        sort_keys=[(name, "ascending", "at_start") for name in (*ranked, "_src", "_pos")],
    ).to_numpy()
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    best = (
        work.select(list(spec.key))
        .append_column("_rank", pa.array(rank))
        .group_by(list(spec.key), use_threads=False)
        .aggregate([("_rank", "max")])
    )
    winners = order[best.column("_rank_max").to_numpy()]
    landed = int(src[winners].sum())
    result = combined.take(winners)
    result = result.take(
        pc.sort_indices(
            result,
            sort_keys=[(name, "ascending", "at_start") for name in spec.sort_by],
        )
    )
    return result, landed


def _same_content(existing: Any, merged: Any) -> bool:
    """Tell whether the merge changed nothing at all (then the file is not rewritten).

    `ingested_at` counts as content: keeping an older stamp for a re-fetched identical row
    would let a later write stamped in between win the merge, against the newest-wins rule.
    """
    return bool(existing.schema == merged.schema and existing.equals(merged))


def _fast_arrow(spec: _Spec, frame: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> Any:
    """Convert straight to Arrow when the frame already has the right dtypes, else None.

    Sources hand over frames in the interval-table dtypes; skipping _conform's per-column
    pandas work is most of what keeps a two-row hourly poll in a few milliseconds.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    dtypes = frame.dtypes
    for name, kind in columns:
        if name not in dtypes:
            return None
        dtype = dtypes[name]
        if kind == _TS:
            ok = isinstance(dtype, pd.DatetimeTZDtype)
        elif kind == _F64:
            ok = dtype == np.float64
        elif kind == _STR:
            ok = pd.api.types.is_object_dtype(dtype)
        elif kind == _BOOL:
            ok = pd.api.types.is_bool_dtype(dtype)
        else:
            ok = False
        if not ok:
            return None
    schema = _arrow_schema(spec, columns)
    try:
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    except pa.ArrowInvalid, pa.ArrowTypeError:  # e.g. numbers in a string column
        return None
    return table.replace_schema_metadata(schema.metadata)


def _to_arrow(spec: _Spec, frame: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> Any:
    """Convert a conformed frame to an Arrow table with the dataset's fixed schema."""
    import pyarrow as pa

    schema = _arrow_schema(spec, columns)
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    # from_pandas adds a large `pandas` blob to the footer (~1 KB): keep only ours.
    return table.replace_schema_metadata(schema.metadata)


def _columns_of(table: Any) -> tuple[tuple[str, str], ...]:
    """Recover (name, kind) pairs from an Arrow schema built by _arrow_schema."""
    import pyarrow as pa

    kinds = {
        pa.string(): _STR,
        pa.timestamp("us", tz="UTC"): _TS,
        pa.float64(): _F64,
        pa.int64(): _I64,
        pa.int32(): _I32,
        pa.bool_(): _BOOL,
    }
    return tuple((field.name, kinds[field.type]) for field in table.schema)


def _widen(table: Any, schema: Any) -> Any:
    """Give `table` every column of `schema` (nulls where it has none), in schema order."""
    import pyarrow as pa

    arrays = [
        table.column(field.name)
        if field.name in table.column_names
        else pa.nulls(table.num_rows, field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _metadata(spec: _Spec) -> dict[bytes, bytes]:
    return {SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), DATASET_KEY: spec.name.encode()}


def _parquet_options(table: Any, columns: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Zstandard plus the encodings that keep half-hourly data near 15-20 bytes a row.

    Measured in bench/archive.py. Strings and repeated floats (kWh with 3 decimals, tariff
    rates) are dictionary-encoded; floats that hardly repeat (cost, > 90 % distinct) use
    BYTE_STREAM_SPLIT, which zstd compresses better than a dictionary of unique values; regular
    timestamps delta-encode to almost nothing. Statistics only on timestamps: they serve
    predicate pushdown on `start`; on other columns they cost footer bytes for no reader.
    """
    import pyarrow.compute as pc

    rows = table.num_rows
    timestamps = [name for name, kind in columns if kind == _TS]
    scattered = [
        name
        for name, kind in columns
        if kind == _F64
        and rows >= 16
        and pc.count_distinct(table.column(name)).as_py() * 10 > rows * 9
    ]
    encoding = dict.fromkeys(timestamps, "DELTA_BINARY_PACKED")
    encoding.update(dict.fromkeys(scattered, "BYTE_STREAM_SPLIT"))
    return {
        "compression": "zstd",
        "compression_level": ZSTD_LEVEL,
        "use_dictionary": [name for name, _kind in columns if name not in encoding],
        "column_encoding": encoding,
        "coerce_timestamps": "us",
        "write_statistics": timestamps,
    }


def _describe_text(text: str, secrets: Sequence[str]) -> str:
    return scrub(text, secrets)


def _clear_dead_temps(final: Path) -> None:
    """Remove the temporary files of writes to `final` that died before their rename.

    Called under the partition lock. Ours are dead for sure (the lock keeps our other threads
    out); another process's only once older than STALE_TEMP_AGE, as a younger one may be the
    live write of a process without the file lock (no flock there, an older MeterLake). Polars
    directory scans trip over such foreign files, hence the cleanup at all.
    """
    own = f".{final.name}.{_PROCESS['tag']}-"
    cutoff = time.time() - STALE_TEMP_AGE.total_seconds()
    for temp in final.parent.glob(f".{final.name}.*.tmp"):
        with suppress(FileNotFoundError):  # cleared by another process meanwhile
            if temp.name.startswith(own) or temp.stat().st_mtime < cutoff:
                temp.unlink(missing_ok=True)


def _remove_empty_dirs(folder: str) -> None:
    """Drop directories left empty by a purge (local only; object stores have none)."""
    top = Path(folder)
    for dirpath, _dirnames, _filenames in top.walk(top_down=False):
        if dirpath != top:
            with suppress(OSError):
                dirpath.rmdir()
