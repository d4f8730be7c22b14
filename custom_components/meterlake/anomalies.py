"""Anomalies in Home Assistant: detect when rows arrive, raise each anomaly once, keep them.

The detectors are pure (analytics.anomalies); this module decides when they run and what a
finding means for the user (docs/architecture.md, "Anomalies"):

* detection runs for a meter when its rows change (a poll, a late revision, a recompute) over
  the changed window plus the history its baselines need, and hourly for `no_data`;
* an anomaly is identified by (meter, kind, start of its period). The first time it is seen it
  is *raised*: the event entity fires, the bus event `meterlake_anomaly` carries the same data,
  and it is archived (`anomalies` dataset). Raised anomalies are stored
  (`.storage/meterlake.anomalies.<entry>`), so a restart, a backfill or a statistics rebuild
  that finds the same period again raises nothing. On a meter's first detection (its history
  after setup) anomalies are recorded without events: they are old news. So are anomalies
  whose period ended more than STALE_AFTER ago (a backfill deep in the past);
* the "Unusual consumption" binary sensor is on while the newest anomaly is active: until the
  detector has judged a whole local day after it without finding another one, or the user
  acknowledges it (`meterlake.acknowledge_anomaly`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import CONF_ANOMALIES, DOMAIN, STORAGE_VERSION
from .lake import async_listen_rows_changed
from .sources.base import MeterInfo

if TYPE_CHECKING:
    import pandas as pd

    from .analytics.anomalies import AnomalySettings, Detection
    from .coordinator import MeterLakeConfigEntry, MeterLakeCoordinator

_LOGGER = logging.getLogger(__name__)
EVENT_ANOMALY: Final = "meterlake_anomaly"
# Baselines look this far back from the changed window (spike: weeks; base load: 30 nights).
HISTORY: Final = timedelta(days=63)
# An anomaly about a period that ended longer ago than this is recorded, never announced.
STALE_AFTER: Final = timedelta(days=7)
# Anomalies kept in the store per meter (the archive keeps them all).
KEPT: Final = 200
NO_DATA_EVERY: Final = timedelta(hours=1)
# Detection waits this long after rows change, so that a burst of windows runs once.
DEBOUNCE: Final = 2.0


def signal_anomaly(entry_id: str, meter_key: str) -> str:
    """Dispatcher signal: the meter's anomalies changed (payload: the raised anomaly or None)."""
    return f"{DOMAIN}_anomaly_{entry_id}_{meter_key}"


@dataclass(slots=True)
class Anomaly:
    """One anomaly as stored and shown."""

    kind: str
    start: datetime
    end: datetime
    observed: float | None
    expected: float | None
    ratio: float | None
    unit: str
    reason: str
    detected_at: datetime
    acknowledged: bool = False

    @property
    def key(self) -> tuple[str, datetime]:
        """What identifies it: its kind and the start of its period."""
        return self.kind, self.start

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (store, attributes, events)."""
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "observed": self.observed,
            "expected": self.expected,
            "ratio": self.ratio,
            "unit": self.unit,
            "reason": self.reason,
            "detected_at": self.detected_at.isoformat(),
            "acknowledged": self.acknowledged,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Anomaly:
        """Back from the store."""
        return cls(
            kind=str(data["kind"]),
            start=_parse(data["start"]),
            end=_parse(data["end"]),
            observed=_number(data.get("observed")),
            expected=_number(data.get("expected")),
            ratio=_number(data.get("ratio")),
            unit=str(data.get("unit") or ""),
            reason=str(data.get("reason") or ""),
            detected_at=_parse(data["detected_at"]),
            acknowledged=bool(data.get("acknowledged", False)),
        )


@dataclass(slots=True)
class MeterAnomalies:
    """What is known of one meter's anomalies."""

    anomalies: list[Anomaly] = field(default_factory=list)
    # Per detector: the end of the newest period it judged.
    evaluated_until: dict[str, datetime] = field(default_factory=dict)
    # False until the first detection ran (its findings are history, not news).
    seen: bool = False

    @property
    def newest(self) -> Anomaly | None:
        """The anomaly whose period started last."""
        return max(self.anomalies, key=lambda a: (a.start, a.kind), default=None)

    def active(self, tz: str) -> Anomaly | None:
        """The newest anomaly, while no whole day after it was judged normal or it was acked."""
        newest = self.newest
        if newest is None or newest.acknowledged:
            return None
        judged = self.evaluated_until.get(newest.kind)
        if judged is not None and judged >= _day_after(newest.end, tz):
            return None
        return newest


def _day_after(moment: datetime, tz: str) -> datetime:
    """The end of the whole local day that follows the one `moment` falls in."""
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(tz))
    day = local.date() + timedelta(days=2 if local.time() != local.time().min else 1)
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))


def settings_for(
    meter: MeterInfo, options: Mapping[str, Any], normal_delay: timedelta
) -> AnomalySettings:
    """The detectors' settings of a meter from the entry's options (absent: the defaults)."""
    from dataclasses import replace

    from .analytics.anomalies import AnomalySettings
    from .analytics.schema import ANOMALY_KINDS

    chosen: Mapping[str, Any] = options.get(CONF_ANOMALIES) or {}
    detectors = set(chosen.get("detectors", ANOMALY_KINDS))
    settings = AnomalySettings()
    delay_hours = float(chosen.get("max_delay_hours") or 0)
    if delay_hours <= 0:
        delay_hours = normal_delay.total_seconds() / 3600
    return replace(
        settings,
        **{kind: kind in detectors for kind in ANOMALY_KINDS},
        high_day_factor=float(chosen.get("high_day_factor", settings.high_day_factor)),
        high_day_window_days=int(chosen.get("high_day_window_days", settings.high_day_window_days)),
        spike_sensitivity=float(chosen.get("spike_sensitivity", settings.spike_sensitivity)),
        base_load_factor=float(chosen.get("base_load_factor", settings.base_load_factor)),
        max_delay_hours=delay_hours,
    )


class AnomalyMonitor:
    """Runs the detectors on an entry's meters and raises what they find, once."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MeterLakeConfigEntry,
        coordinator: MeterLakeCoordinator,
        delay_of: Callable[[MeterInfo], timedelta],
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self._delay_of = delay_of
        self.meters = {
            meter.key: meter
            for meter in coordinator.source.meters
            if meter.kind != "grid" and not meter.is_export
        }
        self.state: dict[str, MeterAnomalies] = {key: MeterAnomalies() for key in self.meters}
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.anomalies.{entry.entry_id}"
        )
        # meter key -> [start, end) of changed rows not yet examined
        self.pending: dict[str, tuple[datetime, datetime]] = {}
        self._task: asyncio.Task[None] | None = None
        self._timer: CALLBACK_TYPE | None = None
        self._lock = asyncio.Lock()

    # -- lifetime -------------------------------------------------------------------------------

    async def async_load(self) -> None:
        """Raised anomalies and judged periods from the store (a broken store: start afresh)."""
        stored = await self._store.async_load() or {}
        for key, data in (stored.get("meters") or {}).items():
            if key not in self.state or not isinstance(data, Mapping):
                continue
            try:
                self.state[key] = MeterAnomalies(
                    anomalies=[Anomaly.from_dict(item) for item in data.get("anomalies") or ()],
                    evaluated_until={
                        str(kind): _parse(moment)
                        for kind, moment in (data.get("evaluated_until") or {}).items()
                    },
                    seen=bool(data.get("seen", False)),
                )
            except (KeyError, TypeError, ValueError) as err:
                _LOGGER.warning(
                    "Stored anomalies of %s are unreadable (%s): starting afresh", key, err
                )

    def start(self) -> None:
        """Listen to changed rows; look for missing data every hour."""
        self.entry.async_on_unload(async_listen_rows_changed(self.hass, self._changed))

        @callback
        def _hourly(_now: datetime) -> None:
            now = dt_util.utcnow()
            for key in self.meters:
                self._note(key, now, now)

        self.entry.async_on_unload(async_track_time_interval(self.hass, _hourly, NO_DATA_EVERY))
        self.entry.async_on_unload(self._cancel)

    @callback
    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer()
            self._timer = None

    @callback
    def _changed(self, key: str, start: datetime, end: datetime) -> None:
        if key in self.meters:
            self._note(key, start, end)

    @callback
    def _note(self, key: str, start: datetime, end: datetime) -> None:
        from homeassistant.helpers.event import async_call_later

        if (known := self.pending.get(key)) is not None:
            start, end = min(known[0], start), max(known[1], end)
        self.pending[key] = (start, end)
        if self._timer is None:
            self._timer = async_call_later(self.hass, DEBOUNCE, self._fire)

    @callback
    def _fire(self, _now: datetime) -> None:
        self._timer = None
        self.entry.async_create_background_task(
            self.hass, self.async_run_pending(), f"{DOMAIN} anomalies {self.entry.entry_id}"
        )

    async def async_run_pending(self) -> None:
        """Examine every meter whose rows changed."""
        async with self._lock:
            while self.pending:
                key, (start, end) = self.pending.popitem()
                try:
                    await self._async_examine(self.meters[key], start, end)
                except Exception:
                    _LOGGER.exception("Anomaly detection failed for %s", key)

    # -- detection ------------------------------------------------------------------------------

    async def _async_examine(self, meter: MeterInfo, start: datetime, end: datetime) -> None:
        from .analytics.anomalies import detect

        now = dt_util.utcnow()
        rows = await self.coordinator.async_stored_rows(meter, start - HISTORY, None)
        settings = settings_for(meter, self.entry.options, self._delay_of(meter))
        state = self.state[meter.key]
        detection: Detection = await self.hass.async_add_executor_job(
            lambda: detect(
                _rows_or_empty(rows),
                meter=meter.key,
                kind=meter.kind,
                unit=meter.unit,
                tz=meter.time_zone,
                cadence_minutes=meter.cadence_minutes,
                settings=settings,
                now=now,
                since=start - timedelta(days=2),
            )
        )
        announced = state.seen
        known = {a.key: a for a in state.anomalies}
        fresh: list[Anomaly] = []
        for found in _anomalies_of(detection.anomalies):
            previous = known.get(found.key)
            if previous is not None:
                # the same period judged again (late data): keep what was said, and the ack
                found.acknowledged = previous.acknowledged
                found.detected_at = previous.detected_at
                state.anomalies.remove(previous)
            else:
                fresh.append(found)
            state.anomalies.append(found)
            known[found.key] = found
        for kind, moment in detection.evaluated_until.items():
            if kind not in state.evaluated_until or moment > state.evaluated_until[kind]:
                state.evaluated_until[kind] = moment
        state.seen = True
        state.anomalies.sort(key=lambda a: (a.start, a.kind))
        del state.anomalies[:-KEPT]
        if not detection.anomalies.empty:
            await self.coordinator.archive.async_write_anomalies(detection.anomalies)
        self._save()
        for anomaly in fresh:
            if announced and anomaly.end > now - STALE_AFTER:
                self._raise(meter, anomaly)
        async_dispatcher_send(self.hass, signal_anomaly(self.entry.entry_id, meter.key), None)

    def _raise(self, meter: MeterInfo, anomaly: Anomaly) -> None:
        """Tell automations: the event entity, then the bus event with the same data."""
        data = {
            "entry_id": self.entry.entry_id,
            "meter": meter.key,
            "meter_name": meter.name,
            **anomaly.as_dict(),
        }
        del data["acknowledged"]
        _LOGGER.info("%s: %s anomaly %s", meter.key, anomaly.kind, anomaly.reason)
        async_dispatcher_send(self.hass, signal_anomaly(self.entry.entry_id, meter.key), data)
        self.hass.bus.async_fire(EVENT_ANOMALY, data)

    # -- the user's side ------------------------------------------------------------------------

    def active(self, key: str) -> Anomaly | None:
        """The meter's active anomaly (the binary sensor is on), None when none."""
        meter = self.meters.get(key)
        if meter is None:
            return None
        return self.state[key].active(meter.time_zone)

    def newest(self, key: str) -> Anomaly | None:
        """The meter's newest anomaly, active or not."""
        state = self.state.get(key)
        return None if state is None else state.newest

    def acknowledge(self, key: str) -> int:
        """Acknowledge every anomaly of the meter; how many were not acknowledged yet."""
        count = 0
        for anomaly in self.state[key].anomalies:
            if not anomaly.acknowledged:
                anomaly.acknowledged = True
                count += 1
        self._save()
        async_dispatcher_send(self.hass, signal_anomaly(self.entry.entry_id, key), None)
        return count

    def _save(self) -> None:
        self._store.async_delay_save(self._data, 1.0)

    async def async_save(self) -> None:
        """Write the store now (unload)."""
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        return {
            "meters": {
                key: {
                    "anomalies": [a.as_dict() for a in state.anomalies],
                    "evaluated_until": {
                        kind: moment.isoformat() for kind, moment in state.evaluated_until.items()
                    },
                    "seen": state.seen,
                }
                for key, state in self.state.items()
            }
        }


def async_listen_anomalies(
    hass: HomeAssistant, entry_id: str, meter_key: str, target: Callable[[Any], None]
) -> Callable[[], None]:
    """Subscribe to a meter's anomaly changes (payload: a raised anomaly's data, or None)."""
    return async_dispatcher_connect(hass, signal_anomaly(entry_id, meter_key), target)


class FollowsAnomalies(Entity):
    """An entity of one meter that is told when the meter's anomalies change."""

    # Set by the entity's constructor (MeterLakeEntity).
    meter: MeterInfo
    _entry_id: str

    async def async_added_to_hass(self) -> None:
        """Follow the meter's anomalies."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_listen_anomalies(self.hass, self._entry_id, self.meter.key, self._anomaly)
        )

    @callback
    def _anomaly(self, data: dict[str, Any] | None) -> None:
        """The anomalies changed; `data` is a newly raised one's, else None."""
        raise NotImplementedError


def _rows_or_empty(rows: pd.DataFrame | None) -> pd.DataFrame:
    from .analytics.intervals import empty_intervals

    return empty_intervals() if rows is None else rows


def _anomalies_of(frame: pd.DataFrame) -> list[Anomaly]:
    """The rows of a detection as Anomaly objects."""
    import pandas as pd

    return [
        Anomaly(
            kind=str(row["kind"]),
            start=pd.Timestamp(row["start"]).to_pydatetime(),
            end=pd.Timestamp(row["end"]).to_pydatetime(),
            observed=_number(row["observed"]),
            expected=_number(row["expected"]),
            ratio=_number(row["ratio"]),
            unit=str(row["unit"]),
            reason=str(row["reason"]),
            detected_at=pd.Timestamp(row["detected_at"]).to_pydatetime(),
        )
        for row in frame.to_dict("records")
    ]


def _number(value: Any) -> float | None:
    import math

    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _parse(value: Any) -> datetime:
    parsed = dt_util.parse_datetime(str(value))
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"not a time: {value!r}")
    return dt_util.as_utc(parsed)
