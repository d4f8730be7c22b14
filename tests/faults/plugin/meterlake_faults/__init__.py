"""Fault injection into MeterLake, for tests/faults only (copied into a temporary config).

`METERLAKE_FAULT` names one fault, or several separated by `;`; without it the integration only
notes its setup and the `homeassistant_started` event. Kill and stop faults fire once per
process:

- `stat:<suffix>:<n>`: SIGKILL right after the n-th chunk of rows of a statistic whose id ends in
  `_<suffix>` was handed to the recorder (`statistics.async_add_external_statistics`).
- `stop:<suffix>:<n>`: at the same point, ask Home Assistant to stop gracefully instead.
- `archive:<n>`: SIGKILL right after the n-th consumption partition file was written
  (`archive.Archive._put` returned, i.e. after its os.replace).

Faults that change what MeterLake sees rather than end the process:

- `enospc:<n>[:<k>]`: a full disk. While the file `<config>/meterlake_faults.disk_full`
  exists, every archive write fails where the rename of its temporary file would (the archive
  module's `os.replace` raises OSError(ENOSPC); other modules' `os` is untouched). The n-th
  write of the process creates that file (n = 0: never, the test creates it); the test deletes
  it to free the disk, or the plugin does after `k` refused writes. Each refused write is noted
  (`refused ...`).
- `enospc:watch[:<k>]`: the disk is really full (a tmpfs): only note the writes it refused;
  after `k` of them, free it: delete the file whose path the flag file holds (the filler), and
  the flag.
- `poll:<seconds>`: from `homeassistant_started` on, MeterLake's coordinators poll every
  `<seconds>` instead of every half hour (a full disk must not wait 30 minutes to be retried).
- `actions`: from `homeassistant_started` on, run what the test writes into
  `<config>/meterlake_faults.do` (the file is consumed): `backfill <days>` calls the
  `meterlake.backfill` action for the entry, `poll` refreshes its coordinator now (the poll
  that would come half an hour later). Each is noted when done (`did ...`).
- `junk:<epoch>=<value>[,<epoch>=<value>...]`: the demo's electricity slot starting at that
  epoch second is served as `<value>` (a number, or `true`) every time it is fetched.
- `foreign:<object_id>:<unit>`: at `homeassistant_started`, three hourly rows of a statistic
  `meterlake:<object_id>` in `<unit>` that MeterLake did not write are added through the
  recorder (`async_add_external_statistics`), then noted once the recorder committed them.

Every line of `<config>/meterlake_faults.log` (setup, armed, started, fired, refused) is written
with os.write before anything is killed, so the test knows what happened; the file survives
SIGKILL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import errno
import importlib
import logging
import os
from pathlib import Path
import signal
import threading
import time
from types import ModuleType
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

DOMAIN = "meterlake_faults"
ENV = "METERLAKE_FAULT"
MARKER = "meterlake_faults.log"
DISK_FULL = "meterlake_faults.disk_full"
ACTIONS = "meterlake_faults.do"
STATISTICS_MODULE = "custom_components.meterlake.statistics"
ARCHIVE_MODULE = "custom_components.meterlake.archive"
DEMO_MODULE = "custom_components.meterlake.sources.demo"
CONFIG_SCHEMA = cv.empty_config_schema(DOMAIN)

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed fault of METERLAKE_FAULT.

    `action`: "kill" or "stop" (targets "stat" and "archive"), "enospc", "poll", "actions",
    "junk" or "foreign". `count`: the chunk or write number (enospc: the write that fills the
    disk, 0: none, -1: watch only), or the poll interval in seconds. `args`: enospc's limit
    of refused writes (if any), junk slots as `<epoch>=<value>`, or (object id, unit) of a
    foreign statistic.
    """

    spec: str
    action: str
    target: str
    suffix: str | None
    count: int
    args: tuple[str, ...] = ()


def parse(spec: str) -> Fault:
    """One fault: see the module docstring for the forms."""
    parts = spec.split(":")
    match parts:
        case ["stat" | "stop" as kind, suffix, count] if suffix and count.isdigit():
            action = "kill" if kind == "stat" else "stop"
            return Fault(spec, action, "stat", suffix, int(count))
        case ["archive", count] if count.isdigit():
            return Fault(spec, "kill", "archive", None, int(count))
        case ["enospc", "watch", *limit] if _limit(limit):
            return Fault(spec, "enospc", "archive", None, -1, tuple(limit))
        case ["enospc", count, *limit] if count.isdigit() and _limit(limit):
            return Fault(spec, "enospc", "archive", None, int(count), tuple(limit))
        case ["actions"]:
            return Fault(spec, "actions", "coordinator", None, 0)
        case ["poll", seconds] if seconds.isdigit() and int(seconds) > 0:
            return Fault(spec, "poll", "coordinator", None, int(seconds))
        case ["junk", slots] if slots and all(_junk_slot(s) for s in slots.split(",")):
            return Fault(spec, "junk", "demo", None, 0, tuple(slots.split(",")))
        case ["foreign", object_id, unit] if object_id and unit:
            return Fault(spec, "foreign", "recorder", None, 0, (object_id, unit))
    raise ValueError(
        f"{ENV}={spec!r}: expected stat:<suffix>:<n>, stop:<suffix>:<n>, archive:<n>, "
        "enospc:<n>[:<k>], enospc:watch[:<k>], poll:<seconds>, actions, "
        "junk:<epoch>=<value>,... or foreign:<object_id>:<unit>"
    )


def parse_all(specs: str) -> list[Fault]:
    """Every fault of a `;`-separated METERLAKE_FAULT."""
    return [parse(spec.strip()) for spec in specs.split(";") if spec.strip()]


def _limit(parts: list[str]) -> bool:
    """No limit, or one positive count."""
    return not parts or (len(parts) == 1 and parts[0].isdigit() and int(parts[0]) > 0)


def _junk_slot(text: str) -> bool:
    epoch, _, value = text.partition("=")
    return epoch.isdigit() and _junk_value(value) is not None


def _junk_value(text: str) -> float | bool | None:
    if text.lower() == "true":
        return True
    try:
        return float(text)
    except ValueError:
        return None


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
    """Note the setup, arm the faults named in the environment (if any)."""
    note = _Note(hass.config.path(MARKER))
    spec = os.environ.get(ENV, "").strip()
    note(f"setup fault={spec or '-'}")

    @callback
    def _started(_event: Event) -> None:
        note("started")

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STARTED, _started)
    for fault in parse_all(spec):
        await _async_arm(hass, fault, note)
        note(f"armed {fault.spec}")
        _LOGGER.warning("Fault armed: %s", fault.spec)
    return True


async def _async_arm(hass: HomeAssistant, fault: Fault, note: _Note) -> None:
    async def load(name: str) -> ModuleType:
        # In Home Assistant's import executor (one thread), after any import of the
        # integration it runs: a second thread importing a submodule while the loader imports
        # the package deadlocks on the two module locks.
        module: ModuleType = await hass.async_add_import_executor_job(importlib.import_module, name)
        return module

    if fault.action in {"kill", "stop"}:
        fire = _firing(hass, fault, note)
        if fault.target == "archive":
            _wrap_archive(await load(ARCHIVE_MODULE), fault, fire)
        else:
            _wrap_statistics(await load(STATISTICS_MODULE), fault, fire)
    elif fault.action == "enospc":
        _fill_disk(await load(ARCHIVE_MODULE), fault, hass.config.path(DISK_FULL), note)
    elif fault.action == "junk":
        _serve_junk(await load(DEMO_MODULE), fault, note)
    elif fault.action == "poll":
        _at_started(hass, lambda: _async_poll_faster(hass, fault, note))
    elif fault.action == "actions":
        _at_started(hass, lambda: _async_run_actions(hass, note))
    elif fault.action == "foreign":
        _at_started(hass, lambda: _async_add_foreign(hass, fault, note))


def _at_started(hass: HomeAssistant, job: Callable[[], Any]) -> None:
    """Run the coroutine function `job` once Home Assistant has started."""

    @callback
    def _run(_event: Event) -> None:
        # A background task: stopping Home Assistant cancels it instead of waiting for it.
        hass.async_create_background_task(job(), f"{DOMAIN} at start")

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STARTED, _run)


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


class _FullDiskOs:
    """The `os` module as the archive module sees it, with a disk that may be full.

    Only the rename of a temporary file (`*.tmp` -> data file) fails: that is where a write's
    bytes become the partition, and a quarantine rename (no new bytes) still works.
    """

    def __init__(self, real: ModuleType, refuse: Callable[[str, str], bool]) -> None:
        self._real = real
        self._refuse = refuse

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def replace(self, src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        """os.replace, or OSError(ENOSPC) while the disk is full."""
        if str(src).endswith(".tmp") and self._refuse(str(src), str(dst)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        self._real.replace(src, dst, *args, **kwargs)


def _fill_disk(module: Any, fault: Fault, flag: str, note: _Note) -> None:
    """Refuse archive writes while `flag` exists; note every write refused for ENOSPC."""
    lock = threading.Lock()
    writes = 0
    refused = 0
    limit = int(fault.args[0]) if fault.args else 0

    def count_refusal() -> None:
        """After `limit` refused writes, free the disk: the filler the flag names, the flag."""
        nonlocal refused
        with lock:
            refused += 1
            free = refused == limit
        if not free:
            return
        path = Path(flag)
        named = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        if named:
            Path(named).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        note(f"freed {fault.spec}: the disk has room again after {limit} ENOSPC")

    def refuse(_src: str, dst: str) -> bool:
        nonlocal writes
        with lock:
            writes += 1
            count = writes
        if count == fault.count:
            Path(flag).touch()
            note(f"fired {fault.spec} disk full from write {count}: {dst}")
        return Path(flag).exists()

    if fault.count >= 0:
        module.os = _FullDiskOs(os, refuse)
    original = module.Archive._put

    def _put(self: Any, path: str, body: bytes) -> None:
        try:
            original(self, path, body)
        except module.ArchiveError as err:
            cause = err.__cause__
            if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
                note(f"refused {fault.spec} {str(path).replace(os.sep, '/')}")
                count_refusal()
            raise

    module.Archive._put = _put


def _serve_junk(module: Any, fault: Fault, note: _Note) -> None:
    """Serve the junk values for their slots of the demo electricity, every time."""
    slots: dict[int, float | bool] = {}
    for item in fault.args:
        epoch, _, text = item.partition("=")
        value = _junk_value(text)
        assert value is not None
        slots[int(epoch)] = value
    original = module.electricity_kwh
    served: set[int] = set()
    lock = threading.Lock()

    def electricity_kwh(starts: Any) -> Any:
        values = original(starts)
        hits = [(i, int(ts.timestamp())) for i, ts in enumerate(starts)]
        hits = [(i, epoch) for i, epoch in hits if epoch in slots]
        if not hits:
            return values
        if any(isinstance(slots[epoch], bool) for _, epoch in hits):
            values = values.astype(object)
        for index, epoch in hits:
            values[index] = slots[epoch]
            with lock:
                first = epoch not in served
                served.add(epoch)
            if first:
                moment = datetime.fromtimestamp(epoch, UTC).isoformat()
                note(f"fired junk {epoch}={slots[epoch]!r} served for {moment}")
        return values

    module.electricity_kwh = electricity_kwh


async def _async_poll_faster(hass: HomeAssistant, fault: Fault, note: _Note) -> None:
    """Make every loaded MeterLake coordinator poll every `fault.count` seconds from now."""
    from homeassistant.config_entries import ConfigEntryState

    interval = timedelta(seconds=fault.count)
    for entry in hass.config_entries.async_entries("meterlake"):
        if entry.state is not ConfigEntryState.LOADED:
            continue
        coordinator = entry.runtime_data.coordinator
        coordinator.update_interval = interval
        # The refresh reschedules the next poll with the new interval.
        await coordinator.async_request_refresh()
        note(f"polling {entry.entry_id} every {fault.count} s")


async def _async_run_actions(hass: HomeAssistant, note: _Note) -> None:
    """Run the commands the test writes into ACTIONS, one file at a time, until stopped."""
    import asyncio
    import json

    from homeassistant.config_entries import ConfigEntryState

    path = Path(hass.config.path(ACTIONS))
    while not hass.is_stopping:
        await asyncio.sleep(0.2)
        if not await hass.async_add_executor_job(path.exists):
            continue
        command = (await hass.async_add_executor_job(path.read_text)).split()
        await hass.async_add_executor_job(path.unlink)
        entries = [
            entry
            for entry in hass.config_entries.async_entries("meterlake")
            if entry.state is ConfigEntryState.LOADED
        ]
        try:
            match command:
                case ["backfill", days] if entries:
                    response = await hass.services.async_call(
                        "meterlake",
                        "backfill",
                        {"config_entry": entries[0].entry_id, "days": int(days)},
                        blocking=True,
                        return_response=True,
                    )
                    done = json.dumps(response, default=str)
                case ["poll"] if entries:
                    coordinator = entries[0].runtime_data.coordinator
                    await coordinator.async_refresh()
                    done = f"success {coordinator.last_update_success}"
                case _:
                    done = "unknown command or no loaded entry"
        except Exception as err:  # the test reads what went wrong
            done = f"failed: {err!r}"
        note(f"did {' '.join(command)}: {done}")


async def _async_add_foreign(hass: HomeAssistant, fault: Fault, note: _Note) -> None:
    """Three hourly rows of a `meterlake:` statistic in another unit, committed."""
    from homeassistant.components.recorder import get_instance
    from homeassistant.components.recorder.models import (
        StatisticData,
        StatisticMeanType,
        StatisticMetaData,
    )
    from homeassistant.components.recorder.statistics import async_add_external_statistics

    object_id, unit = fault.args
    stat_id = f"meterlake:{object_id}"
    metadata = StatisticMetaData(
        mean_type=StatisticMeanType.NONE,
        has_sum=True,
        name="Not MeterLake's",
        source="meterlake",
        statistic_id=stat_id,
        unit_class=None,
        unit_of_measurement=unit,
    )
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=200)
    rows = [
        StatisticData(start=first + timedelta(hours=k), state=10.0, sum=10.0 * (k + 1))
        for k in range(3)
    ]
    async_add_external_statistics(hass, metadata, rows)
    await get_instance(hass).async_block_till_done()
    note(f"fired {fault.spec} {stat_id} in {unit}: {len(rows)} rows from {first.isoformat()}")
