"""The options shared by every source: one set of checks for the form, the repair and setup.

Pure: no I/O and no Home Assistant. `validate_options` checks a submitted form (the options
flow and the invalid-options repair) and returns translated error keys per field;
`sanitize_options` runs the same checks on stored options (hand-edited, or written by an older
version) and puts each value it refuses back to its default, so setup never fails on them.
Whether the archive can actually be opened is checked by the flows, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import ipaddress
import math
from pathlib import PurePath
import re
from types import MappingProxyType
from typing import Any, Final
import unicodedata
from urllib.parse import urlsplit

from .analytics.schema import ANOMALY_KINDS
from .archive import REMOTE_SCHEMES
from .const import (
    CONF_ANOMALIES,
    CONF_ARCHIVE_ENDPOINT,
    CONF_ARCHIVE_ROOT,
    CONF_BACKFILL_DAYS,
    CONF_GAS_CALORIFIC_VALUE,
    CONF_GAS_VOLUME_CORRECTION,
    CONF_KEEP_RAW_DAYS,
    CONF_STANDING_CHARGE_IN_COST,
    DEFAULT_ARCHIVE_ROOT,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_GAS_CALORIFIC_VALUE,
    DEFAULT_GAS_VOLUME_CORRECTION,
    DEFAULT_KEEP_RAW_DAYS,
    DEFAULT_STANDING_CHARGE_IN_COST,
    MAX_BACKFILL_DAYS,
    MAX_KEEP_RAW_DAYS,
)

# Plausible natural-gas calorific values (MJ/m³) and volume corrections; outside is a typo.
CALORIFIC_RANGE: Final = (30.0, 50.0)
CORRECTION_RANGE: Final = (0.9, 1.1)
KEEP_RAW_DAYS_RANGE: Final = (0, MAX_KEEP_RAW_DAYS)
BACKFILL_DAYS_RANGE: Final = (1, MAX_BACKFILL_DAYS)

DEFAULT_OPTIONS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        CONF_ARCHIVE_ROOT: DEFAULT_ARCHIVE_ROOT,
        CONF_KEEP_RAW_DAYS: DEFAULT_KEEP_RAW_DAYS,
        CONF_BACKFILL_DAYS: DEFAULT_BACKFILL_DAYS,
        CONF_GAS_CALORIFIC_VALUE: DEFAULT_GAS_CALORIFIC_VALUE,
        CONF_GAS_VOLUME_CORRECTION: DEFAULT_GAS_VOLUME_CORRECTION,
        CONF_STANDING_CHARGE_IN_COST: DEFAULT_STANDING_CHARGE_IN_COST,
    }
)

# Error keys, translated under options.error and issues.invalid_options.fix_flow.error.
ERROR_ROOT_EMPTY: Final = "archive_root_empty"
ERROR_ROOT_INVALID: Final = "archive_root_invalid"
ERROR_ROOT_NO_BUCKET: Final = "archive_root_no_bucket"
ERROR_ROOT_OUTSIDE_CONFIG: Final = "archive_root_outside_config"
ERROR_ENDPOINT_INVALID: Final = "archive_endpoint_invalid"
ERROR_NOT_WHOLE_DAYS: Final = "not_whole_days"
ERROR_DAYS_OUT_OF_RANGE: Final = "days_out_of_range"
ERROR_CALORIFIC_RANGE: Final = "calorific_value_range"
ERROR_CORRECTION_RANGE: Final = "volume_correction_range"
ERROR_NOT_BOOLEAN: Final = "not_a_boolean"
ERROR_ANOMALY_SETTINGS: Final = "anomaly_settings_invalid"
OPTION_ERRORS: Final = frozenset(
    {
        ERROR_ANOMALY_SETTINGS,
        ERROR_ROOT_EMPTY,
        ERROR_ROOT_INVALID,
        ERROR_ROOT_NO_BUCKET,
        ERROR_ROOT_OUTSIDE_CONFIG,
        ERROR_ENDPOINT_INVALID,
        ERROR_NOT_WHOLE_DAYS,
        ERROR_DAYS_OUT_OF_RANGE,
        ERROR_CALORIFIC_RANGE,
        ERROR_CORRECTION_RANGE,
        ERROR_NOT_BOOLEAN,
    }
)

# The Azure schemes name the container as the URI's user
# (`abfs://container@account.dfs.core.windows.net/prefix`) or its host, as in archive.py.
AZURE_SCHEMES: Final = frozenset({"abfs", "abfss", "az"})
# Line breaks and control characters (NUL included) have no place in a path or URI.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Zl", "Zp"})

# An S3-compatible endpoint: host[:port], optionally as an http(s) URL with a trailing slash.
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ENDPOINT_RE: Final = re.compile(
    rf"(?:https?://)?(?P<host>{_LABEL}(?:\.{_LABEL})*|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])"
    r"(?::(?P<port>[0-9]{1,5}))?/?",
    re.IGNORECASE,
)

type Check = Callable[[Any], tuple[Any, str | None]]


def _as_number(value: Any) -> int | float | None:
    """A finite number from an int, a float or a numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def check_days(value: Any, bounds: tuple[int, int]) -> tuple[Any, str | None]:
    """A whole number of days within `bounds`, as an int."""
    number = _as_number(value)
    if number is None or number != math.floor(number):
        return value, ERROR_NOT_WHOLE_DAYS
    days = int(number)
    if not bounds[0] <= days <= bounds[1]:
        return days, ERROR_DAYS_OUT_OF_RANGE
    return days, None


def check_range(value: Any, bounds: tuple[float, float], error: str) -> tuple[Any, str | None]:
    """A number within `bounds`, as a float."""
    number = _as_number(value)
    if number is None or not bounds[0] <= number <= bounds[1]:
        return value, error
    return float(number), None


def check_archive_root(value: Any) -> tuple[Any, str | None]:
    """A local folder inside the configuration folder, an absolute path or a bucket URI.

    Surrounding spaces are removed. A relative path must not climb out of the configuration
    folder (`../x`); an absolute one (a NAS mount) may go anywhere. Whether the location can be
    opened is for the archive check of the flows.
    """
    if not isinstance(value, str):
        return value, ERROR_ROOT_INVALID
    if any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in value):
        return value, ERROR_ROOT_INVALID
    root = value.strip()
    if not root:
        return root, ERROR_ROOT_EMPTY
    # The same reading as archive.open_archive: a URI only when it has `://`.
    if "://" not in root:
        return root, _local_root_error(root)
    try:
        parts = urlsplit(root)
        bucket = parts.username if parts.scheme.lower() in AZURE_SCHEMES else None
        bucket = bucket or parts.hostname
    except ValueError:  # an unbalanced `[` in the host
        return root, ERROR_ROOT_INVALID
    scheme = parts.scheme.lower()
    if scheme == "file":
        return root, _local_root_error(parts.path)
    if scheme in REMOTE_SCHEMES and not bucket:
        return root, ERROR_ROOT_NO_BUCKET
    # Another scheme is refused by the archive check with the reason.
    return root, None


def _local_root_error(path: str) -> str | None:
    """The error of a relative path that leaves the configuration folder."""
    local = PurePath(path)
    if path.startswith("~") or local.is_absolute():
        return None
    depth = 0
    for part in local.parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            return ERROR_ROOT_OUTSIDE_CONFIG
    return None


def check_endpoint(value: Any) -> tuple[Any, str | None]:
    """Empty (AWS, or a local archive), `host[:port]` or `http(s)://host[:port]`."""
    if value is None:
        return value, None
    if not isinstance(value, str):
        return value, ERROR_ENDPOINT_INVALID
    endpoint = value.strip()
    if not endpoint:
        return endpoint, None
    match = ENDPOINT_RE.fullmatch(endpoint)
    if match is None:
        return value, ERROR_ENDPOINT_INVALID
    if (ipv6 := match.group("ipv6")) is not None:
        try:
            ipaddress.IPv6Address(ipv6)
        except ValueError:
            return value, ERROR_ENDPOINT_INVALID
    if (port := match.group("port")) is not None and not 1 <= int(port) <= 65535:
        return value, ERROR_ENDPOINT_INVALID
    return endpoint, None


def check_boolean(value: Any) -> tuple[Any, str | None]:
    """True or False."""
    if isinstance(value, bool):
        return value, None
    return value, ERROR_NOT_BOOLEAN


# Anomaly detection settings (the options form's section): the bounds of each tunable.
ANOMALY_BOUNDS: Final[Mapping[str, tuple[float, float]]] = MappingProxyType(
    {
        "high_day_factor": (1.1, 20.0),
        "high_day_window_days": (3, 60),
        "spike_sensitivity": (1.0, 50.0),
        "base_load_factor": (1.1, 20.0),
        "max_delay_hours": (0, 2160),
    }
)
WHOLE_ANOMALY_SETTINGS: Final = frozenset({"high_day_window_days", "max_delay_hours"})


def check_anomalies(value: Any) -> tuple[Any, str | None]:
    """The anomaly section: chosen detectors among ANOMALY_KINDS, tunables within bounds.

    Missing tunables are left out (the detectors' defaults apply); max_delay_hours 0 means the
    source's usual delay.
    """
    if not isinstance(value, Mapping):
        return value, ERROR_ANOMALY_SETTINGS
    result: dict[str, Any] = {}
    detectors = value.get("detectors", list(ANOMALY_KINDS))
    if not isinstance(detectors, list | tuple) or not set(detectors) <= set(ANOMALY_KINDS):
        return value, ERROR_ANOMALY_SETTINGS
    result["detectors"] = [kind for kind in ANOMALY_KINDS if kind in detectors]
    for key, (low, high) in ANOMALY_BOUNDS.items():
        if value.get(key) is None:
            continue
        number = _as_number(value[key])
        if number is None or not low <= number <= high:
            return value, ERROR_ANOMALY_SETTINGS
        if key in WHOLE_ANOMALY_SETTINGS:
            if number != math.floor(number):
                return value, ERROR_ANOMALY_SETTINGS
            number = int(number)
        result[key] = number
    return result, None


CHECKS: Final[Mapping[str, Check]] = MappingProxyType(
    {
        CONF_ANOMALIES: check_anomalies,
        CONF_ARCHIVE_ROOT: check_archive_root,
        CONF_KEEP_RAW_DAYS: lambda value: check_days(value, KEEP_RAW_DAYS_RANGE),
        CONF_BACKFILL_DAYS: lambda value: check_days(value, BACKFILL_DAYS_RANGE),
        CONF_GAS_CALORIFIC_VALUE: lambda value: check_range(
            value, CALORIFIC_RANGE, ERROR_CALORIFIC_RANGE
        ),
        CONF_GAS_VOLUME_CORRECTION: lambda value: check_range(
            value, CORRECTION_RANGE, ERROR_CORRECTION_RANGE
        ),
        CONF_STANDING_CHARGE_IN_COST: check_boolean,
        CONF_ARCHIVE_ENDPOINT: check_endpoint,
    }
)


def validate_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalise the shared options present in `options`; errors keyed by field.

    Keys without a check (credentials, source-specific options) are returned as they are.
    """
    result = dict(options)
    errors: dict[str, str] = {}
    for key, check in CHECKS.items():
        if key in result:
            result[key], error = check(result[key])
            if error is not None:
                errors[key] = error
    return result, errors


def sanitize_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The options with each invalid value put back to its default; the keys that were invalid.

    An invalid endpoint has no default: it is removed. Missing keys are left missing (the
    entry uses its defaults for them).
    """
    result, errors = validate_options(options)
    for key in errors:
        if key in DEFAULT_OPTIONS:
            result[key] = DEFAULT_OPTIONS[key]
        else:
            del result[key]
    return result, list(errors)


INVALID_OPTIONS_PREFIX: Final = "invalid_options_"


def invalid_options_issue_id(entry_id: str) -> str:
    """Id of the entry's "options were invalid and replaced by defaults" repair issue."""
    return f"{INVALID_OPTIONS_PREFIX}{entry_id}"
