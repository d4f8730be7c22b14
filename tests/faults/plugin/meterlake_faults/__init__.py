"""Fault injection into MeterLake, for tests/faults only (copied into a temporary config).

`METERLAKE_FAULT` picks one fault; without it the integration only notes its setup and the
`homeassistant_started` event. Faults fire once per process:

- `stat:<suffix>:<n>`: SIGKILL right after the n-th chunk of rows of a statistic whose id ends in
  `_<suffix>` was handed to the recorder (`statistics.async_add_external_statistics`).
- `stop:<suffix>:<n>`: at the same point, ask Home Assistant to stop gracefully instead.
- `archive:<n>`: SIGKILL right after the n-th consumption partition file was written
  (`archive.Archive._put` returned, i.e. after its os.replace).

Every line of `<config>/meterlake_faults.log` (setup, armed, started, fired) is written with
os.write before anything is killed, so the test knows what happened; the file survives SIGKILL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import importlib
import logging
import os
import signal
import threading
import time
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

DOMAIN = "meterlake_faults"
ENV = "METERLAKE_FAULT"
MARKER = "meterlake_faults.log"
STATISTICS_MODULE = "custom_components.meterlake.statistics"
ARCHIVE_MODULE = "custom_components.meterlake.archive"
CONFIG_SCHEMA = cv.empty_config_schema(DOMAIN)

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed METERLAKE_FAULT."""

    spec: str
    action: str  # "kill" or "stop"
    target: str  # "stat" or "archive"
    suffix: str | None
    count: int


def parse(spec: str) -> Fault:
    """`stat:<suffix>:<n>`, `stop:<suffix>:<n>` or `archive:<n>`."""
    parts = spec.split(":")
    match parts:
        case ["stat" | "stop" as kind, suffix, count] if suffix and count.isdigit():
            action = "kill" if kind == "stat" else "stop"
            return Fault(spec, action, "stat", suffix, int(count))
        case ["archive", count] if count.isdigit():
            return Fault(spec, "kill", "archive", None, int(count))
    raise ValueError(f"{ENV}={spec!r}: expected stat:<suffix>:<n>, stop:<suffix>:<n>, archive:<n>")


class _Note:
    """Appends lines to the marker file with plain os calls (no blocking-I/O warnings)."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __call__(self, text: str) -> None:
        line = f"{time.time():.3f} pid={os.getpid()} {text}\n".encode()
        handle = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(handle, line)
            os.fsync(handle)
        finally:
            os.close(handle)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Note the setup, arm the fault named in the environment (if any)."""
    note = _Note(hass.config.path(MARKER))
    spec = os.environ.get(ENV, "").strip()
    note(f"setup fault={spec or '-'}")

    @callback
    def _started(_event: Event) -> None:
        note("started")

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STARTED, _started)
    if not spec:
        return True
    fault = parse(spec)
    fire = _firing(hass, fault, note)
    if fault.target == "archive":
        module = await hass.async_add_executor_job(importlib.import_module, ARCHIVE_MODULE)
        _wrap_archive(module, fault, fire)
    else:
        module = await hass.async_add_executor_job(importlib.import_module, STATISTICS_MODULE)
        _wrap_statistics(module, fault, fire)
    note(f"armed {fault.spec}")
    _LOGGER.warning("Fault armed: %s", fault.spec)
    return True


def _firing(hass: HomeAssistant, fault: Fault, note: _Note) -> Callable[[str], None]:
    """The action of the fault, run at most once (any thread)."""
    lock = threading.Lock()
    fired = False

    def fire(where: str) -> None:
        nonlocal fired
        with lock:
            if fired:
                return
            fired = True
        note(f"fired {fault.spec} {fault.action} after {where}")
        if fault.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
            return
        _LOGGER.warning("Fault %s: stopping Home Assistant after %s", fault.spec, where)
        hass.loop.call_soon_threadsafe(lambda: hass.async_create_task(hass.async_stop()))

    return fire


def _wrap_statistics(module: Any, fault: Fault, fire: Callable[[str], None]) -> None:
    """Count chunks handed to the recorder per matching statistic; fire after the n-th."""
    original = module.async_add_external_statistics
    ending = f"_{fault.suffix}"
    chunks: dict[str, int] = {}

    @callback
    def async_add_external_statistics(
        hass: HomeAssistant, metadata: Any, statistics: Any, *args: Any, **kwargs: Any
    ) -> None:
        original(hass, metadata, statistics, *args, **kwargs)
        stat_id = str(metadata["statistic_id"])
        if not stat_id.endswith(ending):
            return
        chunks[stat_id] = chunks.get(stat_id, 0) + 1
        if chunks[stat_id] == fault.count:
            rows = list(statistics)
            first = rows[0]["start"].isoformat() if rows else "-"
            fire(f"chunk {fault.count} of {stat_id} ({len(rows)} rows from {first})")

    module.async_add_external_statistics = async_add_external_statistics


def _wrap_archive(module: Any, fault: Fault, fire: Callable[[str], None]) -> None:
    """Count consumption partition files written by the archive; fire after the n-th."""
    original = module.Archive._put
    lock = threading.Lock()
    written = 0

    def _put(self: Any, path: str, body: bytes) -> None:
        nonlocal written
        original(self, path, body)
        normalized = str(path).replace(os.sep, "/")
        if "/consumption/" not in normalized or not normalized.endswith("/data.parquet"):
            return
        with lock:
            written += 1
            count = written
        if count == fault.count:
            fire(f"partition {count}: {normalized}")

    module.Archive._put = _put
