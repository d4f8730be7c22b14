"""One coordinator per config entry: poll the source, merge, hand the rows to every sink, publish.

The coordinator owns the in-memory table of recent intervals (enough for today, yesterday and the
month so far) and the per-meter watermarks. A meter's watermark moves only past rows that every
sink accepted, so a failure anywhere means the next poll fetches those rows again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
import logging
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    CONF_BACKFILL_DAYS,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_OVERLAP,
    DOMAIN,
    RECENT_WINDOW,
)
from .sources.base import (
    AuditRecord,
    FetchResult,
    MeterInfo,
    Source,
    SourceAuthError,
    SourceError,
    SourceUnavailableError,
    floor_to,
)
from .store import WatermarkStore

if TYPE_CHECKING:
    import pandas as pd

_LOGGER = logging.getLogger(__name__)
HOUR = timedelta(hours=1)

type MeterLakeConfigEntry = ConfigEntry[MeterLakeData]


@dataclass(slots=True)
class MeterLakeData:
    """Runtime data of a loaded entry (typed, per the quality scale's runtime-data rule)."""

    coordinator: MeterLakeCoordinator


class Sink(Protocol):
    """Somewhere fetched rows go besides memory: the archive, long-term statistics."""

    async def async_store(self, meter: MeterInfo, result: FetchResult) -> None:
        """Persist one meter's fetch; raise to keep the watermark where it is."""


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """What the sensors of one meter show, computed off the event loop after each poll."""

    meter: MeterInfo
    last_interval_value: float | None = None
    last_interval_start: datetime | None = None
    newest_data: datetime | None = None
    today: float | None = None
    yesterday: float | None = None
    month: float | None = None
    cost_today: float | None = None
    cost_yesterday: float | None = None
    current_rate: float | None = None
    next_rate: float | None = None
    next_rate_start: datetime | None = None
    standing_charge: float | None = None
    missing_7d: int | None = None
    unrated: int = 0
    rejected: int = 0


@dataclass(slots=True)
class MeterTables:
    """Per-meter tariff frames kept from the newest fetch (for current/next rate)."""

    rates: pd.DataFrame | None = None
    standing_charges: pd.DataFrame | None = None
    agreements: pd.DataFrame | None = None
    unrated: int = 0
    rejected: int = 0


@dataclass(slots=True)
class PollReport:
    """What the last poll did, for diagnostics and the backfill action."""

    started: datetime
    rows: dict[str, int] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)


class MeterLakeCoordinator(DataUpdateCoordinator[dict[str, MeterSnapshot]]):
    """Polls one source for all its meters."""

    config_entry: MeterLakeConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        config_entry: MeterLakeConfigEntry,
        source: Source,
        store: WatermarkStore,
        *,
        sinks: Sequence[Sink] = (),
    ) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=config_entry,
            name=f"{DOMAIN} {config_entry.title}",
            update_interval=source.update_interval,
        )
        self.source = source
        self.store = store
        self.sinks: list[Sink] = list(sinks)
        self.recent: pd.DataFrame | None = None
        self.tables: dict[str, MeterTables] = {}
        self.last_report: PollReport | None = None

    @property
    def backfill(self) -> timedelta:
        """How far back a meter's first poll reaches (option `backfill_days`)."""
        days = self.config_entry.options.get(CONF_BACKFILL_DAYS, DEFAULT_BACKFILL_DAYS)
        return timedelta(days=int(days))

    def window_start(self, meter: MeterInfo, now: datetime) -> datetime:
        """Watermark minus the overlap, or the backfill horizon on a first run; whole hours."""
        watermark = self.store.get(meter.key)
        start = now - self.backfill if watermark is None else watermark - DEFAULT_OVERLAP
        if self.recent is None:
            # After a restart the sensors need today, yesterday and the month so far.
            start = min(start, now - RECENT_WINDOW)
        return floor_to(start, HOUR)

    async def _async_update_data(self) -> dict[str, MeterSnapshot]:
        now = dt_util.utcnow()
        report = PollReport(started=now)
        self.last_report = report
        for meter in self.source.meters:
            await self.async_poll_meter(meter, self.window_start(meter, now), now, report)
        return await self.hass.async_add_executor_job(self._snapshots, dt_util.utcnow())

    async def async_poll_meter(
        self, meter: MeterInfo, start: datetime, end: datetime, report: PollReport
    ) -> FetchResult:
        """Fetch [start, end) of one meter, keep it, hand it to the sinks, move the watermark."""
        try:
            result = await self.source.async_fetch(meter, start, end)
        except SourceAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except SourceUnavailableError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err)},
                retry_after=err.retry_after,
            ) from err
        except SourceError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="source_error",
                translation_placeholders={"error": str(err)},
            ) from err
        report.audit.extend(result.audit)
        report.rows[meter.key] = report.rows.get(meter.key, 0) + len(result.intervals)
        self.recent = await self.hass.async_add_executor_job(
            self._merge_recent, result.intervals, dt_util.utcnow()
        )
        self.tables[meter.key] = MeterTables(
            rates=result.rates,
            standing_charges=result.standing_charges,
            agreements=result.agreements,
            unrated=result.unrated,
            rejected=result.rejected,
        )
        for sink in self.sinks:
            await sink.async_store(meter, result)
        if result.complete_until is not None:
            self.store.advance(meter.key, result.complete_until)
        return result

    async def async_refresh_snapshots(self) -> None:
        """Recompute the sensors' values now (after a backfill) and notify the entities."""
        data = await self.hass.async_add_executor_job(self._snapshots, dt_util.utcnow())
        self.async_set_updated_data(data)

    async def async_stored_rows(
        self, meter: MeterInfo, start: datetime, end: datetime
    ) -> pd.DataFrame | None:
        """Stored intervals of `meter` starting in [start, end) (memory for now)."""
        recent = self.recent
        if recent is None:
            return None
        return await self.hass.async_add_executor_job(_rows_between, recent, meter.key, start, end)

    async def async_is_stored(self, meter: MeterInfo, start: datetime, end: datetime) -> bool:
        """True when every published slot of [start, end) is stored, so a backfill may skip it.

        "Published" ends at the watermark: slots the source has not delivered yet are not gaps.
        """
        watermark = self.store.get(meter.key)
        if watermark is None:
            return False
        end = min(end, watermark)
        if end <= start:
            return True
        rows = await self.async_stored_rows(meter, start, end)
        if rows is None or rows.empty:
            return False
        return await self.hass.async_add_executor_job(_missing_slots, rows, meter, start, end) == 0

    async def async_missing(
        self, meter: MeterInfo, result: FetchResult, start: datetime, end: datetime
    ) -> int:
        """Slots of [start, end) the source did not deliver (up to what it has published)."""
        until = min(end, result.complete_until or start)
        if until <= start:
            return 0
        return await self.hass.async_add_executor_job(
            _missing_slots, result.intervals, meter, start, until
        )

    def _merge_recent(self, fresh: pd.DataFrame, now: datetime) -> pd.DataFrame:
        """Fold fresh rows into the recent table (newer rows win) and trim it to the window."""
        import pandas as pd

        from .analytics.intervals import dedupe

        frames = [f for f in (self.recent, fresh) if f is not None and not f.empty]
        if not frames:
            return fresh
        merged = dedupe(pd.concat(frames, ignore_index=True))
        horizon = pd.Timestamp(now - RECENT_WINDOW - timedelta(days=1))
        return merged[merged["start"] >= horizon].reset_index(drop=True)

    def _snapshots(self, now: datetime) -> dict[str, MeterSnapshot]:
        """Sensor values of every meter (runs in the executor)."""
        from .analytics import intervals, tariffs

        time_zone = str(self.hass.config.time_zone)
        today = dt_util.as_local(now).date()
        recent = self.recent
        totals = (
            intervals.period_totals(recent, time_zone, today=today)
            if recent is not None and not recent.empty
            else {}
        )
        snapshots: dict[str, MeterSnapshot] = {}
        for meter in self.source.meters:
            tables = self.tables.get(meter.key, MeterTables())
            rows = None if recent is None else recent[recent["meter"] == meter.key]
            meter_totals = totals.get(meter.key, {})
            values: dict[str, Any] = {
                "today": _total(meter_totals, "today", "value"),
                "yesterday": _total(meter_totals, "yesterday", "value"),
                "month": _total(meter_totals, "month", "value"),
                "cost_today": _total(meter_totals, "today", "cost"),
                "cost_yesterday": _total(meter_totals, "yesterday", "cost"),
                "unrated": tables.unrated,
                "rejected": tables.rejected,
            }
            if rows is not None and not rows.empty:
                last = rows.iloc[-1]
                newest = last["end"].to_pydatetime()
                values |= {
                    "last_interval_value": float(last["value"]),
                    "last_interval_start": last["start"].to_pydatetime(),
                    "newest_data": newest,
                    "missing_7d": intervals.continuity(
                        rows,
                        cadence_minutes=meter.cadence_minutes,
                        window_start=newest - timedelta(days=7),
                        window_end=newest,
                    ).missing_count,
                }
            if tables.rates is not None and tables.agreements is not None:
                values["current_rate"] = tariffs.rate_at(
                    tables.rates, tables.agreements, meter.key, now, payment_method=None
                )
                upcoming = tariffs.next_rate_change(
                    tables.rates, tables.agreements, meter.key, now, payment_method=None
                )
                if upcoming is not None:
                    values["next_rate_start"], values["next_rate"] = upcoming
            if tables.standing_charges is not None and tables.agreements is not None:
                values["standing_charge"] = _standing_charge_today(
                    tables, meter, dt_util.as_local(now).date(), str(meter.time_zone)
                )
            snapshots[meter.key] = MeterSnapshot(meter=meter, **values)
        return snapshots


def _rows_between(frame: pd.DataFrame, meter: str, start: datetime, end: datetime) -> pd.DataFrame:
    import pandas as pd

    mask = (
        (frame["meter"] == meter)
        & (frame["start"] >= pd.Timestamp(start))
        & (frame["start"] < pd.Timestamp(end))
    )
    return frame[mask]


def _missing_slots(rows: pd.DataFrame, meter: MeterInfo, start: datetime, end: datetime) -> int:
    from .analytics.intervals import continuity

    step = timedelta(minutes=meter.cadence_minutes)
    first = floor_to(start, step)
    if first < start:
        first += step
    last = floor_to(end, step)
    if last <= first:
        return 0
    return continuity(
        rows[rows["meter"] == meter.key],
        cadence_minutes=meter.cadence_minutes,
        window_start=first,
        window_end=last,
    ).missing_count


def _total(totals: dict[str, dict[str, float | None]], period: str, column: str) -> float | None:
    return totals.get(period, {}).get(column)


def _standing_charge_today(
    tables: MeterTables, meter: MeterInfo, today: date, time_zone: str
) -> float | None:
    from .analytics import tariffs

    assert tables.agreements is not None
    assert tables.standing_charges is not None
    charges = tariffs.standing_charges_by_day(
        tables.agreements,
        tables.standing_charges,
        tz=time_zone,
        start_day=today,
        end_day=today,
        payment_method=None,
    )
    rows = charges[charges["meter"] == meter.key]
    if rows.empty:
        return None
    return float(rows["charge"].iloc[0])
