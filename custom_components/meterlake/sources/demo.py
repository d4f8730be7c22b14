"""A deterministic synthetic household, so MeterLake can be tried without any account.

Every value is a pure function of the slot's start time: re-fetching a window returns the same
numbers, whatever the window, which makes the demo usable in tests and for idempotence checks.
It has half-hourly electricity (kWh) with daily and seasonal shape, half-hourly gas (m³), a
time-of-use tariff with 30-minute rates that changes once, a daily standing charge, one
electricity meter replacement and a few injected anomalies; entries made by the flow also have
sub-meters for composed meters (SUBMETERS). Data lags an hour behind now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from .base import (
    AuditRecord,
    Capabilities,
    Executor,
    FetchResult,
    MeterInfo,
    SourceContext,
    floor_to,
    rejected_audit,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SUPPLIER: Final = "demo"
CURRENCY: Final = "GBP"
TIME_ZONE: Final = "Europe/London"
SLOT: Final = timedelta(minutes=30)
LAG: Final = timedelta(hours=1)

ELECTRICITY: Final = "demo_electricity"
GAS: Final = "demo_gas"
OLD_ELECTRICITY_SERIAL: Final = "DEMO-E-2019"
NEW_ELECTRICITY_SERIAL: Final = "DEMO-E-2026"
GAS_SERIAL: Final = "DEMO-G-2021"
# The electricity meter was replaced here; the new meter's rows take over from this slot.
REPLACED_AT: Final = datetime(2026, 5, 12, 10, 30, tzinfo=UTC)

ELECTRICITY_TARIFF_OLD: Final = "DEMO-TOU-25-01"
ELECTRICITY_TARIFF_NEW: Final = "DEMO-TOU-26-07"
GAS_TARIFF: Final = "DEMO-GAS-25-01"
# A supplier changes tariffs at local midnight: 2026-07-01 00:00 in London (BST) is 23:00 UTC.
TARIFF_CHANGE: Final = datetime(2026, 7, 1, tzinfo=ZoneInfo(TIME_ZONE)).astimezone(UTC)
EPOCH: Final = datetime(2020, 1, 1, tzinfo=UTC)

# Unit rates (GBP per kWh, VAT included) by local hour band, for the two tariff generations.
TOU_BANDS: Final = {
    ELECTRICITY_TARIFF_OLD: {"night": 0.12, "day": 0.26, "peak": 0.38},
    ELECTRICITY_TARIFF_NEW: {"night": 0.10, "day": 0.24, "peak": 0.36},
}
GAS_RATE_PER_M3: Final = 0.7134  # GBP per m³ (≈ 6.36 p/kWh at 11.22 kWh/m³)
STANDING_CHARGES: Final = {
    ELECTRICITY_TARIFF_OLD: 0.5543,
    ELECTRICITY_TARIFF_NEW: 0.6012,
    GAS_TARIFF: 0.3107,
}
ANOMALY_EVERY_DAYS: Final = 11
ANOMALY_FACTOR: Final = 8.0

METERS: Final = (
    MeterInfo(
        key=ELECTRICITY,
        supplier=SUPPLIER,
        kind="electricity",
        unit="kWh",
        name="Demo electricity",
        serials=(OLD_ELECTRICITY_SERIAL, NEW_ELECTRICITY_SERIAL),
        currency=CURRENCY,
        time_zone=TIME_ZONE,
    ),
    MeterInfo(
        key=GAS,
        supplier=SUPPLIER,
        kind="gas",
        unit="m³",
        name="Demo gas",
        serials=(GAS_SERIAL,),
        currency=CURRENCY,
        time_zone=TIME_ZONE,
    ),
)


# Sub-meters, for trying composed meters without an account (entries made by the flow have
# them; `submeters` in the entry data). A heat pump and an EV charger inside the house total, a
# gas boiler metered in kWh (80 % of the gas), and an old two-register (day/night) meter that a
# single smart meter replaced: day + night before the replacement and smart after add up to the
# house total.
CONF_SUBMETERS: Final = "submeters"
HEAT_PUMP: Final = "demo_heat_pump"
EV_CHARGER: Final = "demo_ev_charger"
BOILER: Final = "demo_boiler"
DAY_REGISTER: Final = "demo_register_day"
NIGHT_REGISTER: Final = "demo_register_night"
SMART_METER: Final = "demo_smart_meter"
REGISTERS_REPLACED_AT: Final = datetime(2026, 11, 15, tzinfo=UTC)
BOILER_SHARE: Final = 0.8


def _submeter(key: str, name: str, kind: str = "electricity") -> MeterInfo:
    return MeterInfo(
        key=key,
        supplier=SUPPLIER,
        kind=kind,
        unit="kWh",
        name=name,
        time_zone=TIME_ZONE,
        has_standing_charge=False,
    )


SUBMETERS: Final = (
    _submeter(HEAT_PUMP, "Demo heat pump"),
    _submeter(EV_CHARGER, "Demo EV charger"),
    _submeter(BOILER, "Demo gas boiler", "gas"),
    _submeter(DAY_REGISTER, "Demo old meter, day register"),
    _submeter(NIGHT_REGISTER, "Demo old meter, night register"),
    _submeter(SMART_METER, "Demo smart meter"),
)


def submeter_kwh(
    key: str, starts: pd.DatetimeIndex, *, kwh_per_m3: float
) -> tuple[np.ndarray, np.ndarray]:
    """(values, published) of a sub-meter's slots; unpublished slots have no row."""
    import numpy as np
    import pandas as pd

    house = electricity_kwh(starts)
    hours = _local_hours(starts)
    everywhere = np.ones(len(starts), dtype=bool)
    if key == HEAT_PUMP:
        heating = np.clip(_season(starts) + 0.2, 0.0, 1.0)
        return np.round(house * 0.35 * heating, 3), everywhere
    if key == EV_CHARGER:
        local = starts.tz_convert(TIME_ZONE)
        days = (local.normalize().tz_localize(None) - EPOCH.replace(tzinfo=None)).days.to_numpy()
        charging = (days % 3 == 0) & (hours >= 1) & (hours < 5)
        return np.where(charging, np.round(house * 0.3, 3), 0.0), everywhere
    if key == BOILER:
        return np.round(gas_m3(starts) * kwh_per_m3 * BOILER_SHARE, 3), everywhere
    old = np.asarray(starts < pd.Timestamp(REGISTERS_REPLACED_AT))
    night = hours < 7
    if key == DAY_REGISTER:
        return np.where(night, 0.0, house), old
    if key == NIGHT_REGISTER:
        return np.where(night, house, 0.0), old
    return house, ~old


def _noise(slots: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) noise that depends only on the slot number (a multiplicative hash)."""
    import numpy as np

    mixed = (slots.astype(np.uint64) * np.uint64(2654435761) + np.uint64(salt)) % np.uint64(2**32)
    mixed = (mixed ^ (mixed >> np.uint64(13))) * np.uint64(1274126177) % np.uint64(2**32)
    noise: np.ndarray = mixed.astype(np.float64) / 2.0**32
    return noise


def _local_hours(starts: pd.DatetimeIndex) -> np.ndarray:
    local = starts.tz_convert(TIME_ZONE)
    return (local.hour + local.minute / 60.0).to_numpy()


def _season(starts: pd.DatetimeIndex) -> np.ndarray:
    """1 in mid-January, -1 in mid-July."""
    import numpy as np

    day_of_year = starts.dayofyear.to_numpy()
    return np.cos(2 * np.pi * (day_of_year - 15) / 365.25)


def electricity_kwh(starts: pd.DatetimeIndex) -> np.ndarray:
    """Half-hourly household electricity: base load, morning and evening peaks, winter uplift."""
    import numpy as np

    hours = _local_hours(starts)
    morning = np.exp(-(((hours - 7.75) / 1.1) ** 2)) * 0.35
    evening = np.exp(-(((hours - 18.5) / 2.0) ** 2)) * 0.55
    base = 0.09 + 0.03 * (hours < 6)
    season = 1.0 + 0.3 * _season(starts)
    slots = _slot_numbers(starts)
    value = (base + morning + evening) * season + 0.06 * _noise(slots, 17)
    spikes = _anomalies(starts)
    value = np.where(spikes, value * ANOMALY_FACTOR, value)
    return np.round(value, 3)


def gas_m3(starts: pd.DatetimeIndex) -> np.ndarray:
    """Half-hourly gas volume: hot water all year, space heating in the cold half of the year."""
    import numpy as np

    hours = _local_hours(starts)
    heating = np.clip(_season(starts) + 0.2, 0.0, None)
    schedule = ((hours >= 6) & (hours < 9)) | ((hours >= 16.5) & (hours < 22))
    hot_water = 0.015 * ((hours >= 6.5) & (hours < 8))
    slots = _slot_numbers(starts)
    value = 0.004 + hot_water + heating * schedule * (0.11 + 0.04 * _noise(slots, 91))
    return np.round(value, 3)


def _slot_numbers(starts: pd.DatetimeIndex) -> np.ndarray:
    import numpy as np

    seconds = (starts - EPOCH).total_seconds().to_numpy()
    return (seconds // SLOT.total_seconds()).astype(np.int64)


def _anomalies(starts: pd.DatetimeIndex) -> np.ndarray:
    """Every 11th day since the epoch, 03:00-04:00 local: an unexplained night-time spike."""
    local = starts.tz_convert(TIME_ZONE)
    days = (local.normalize().tz_localize(None) - EPOCH.replace(tzinfo=None)).days.to_numpy()
    spikes: np.ndarray = (days % ANOMALY_EVERY_DAYS == 0) & (local.hour.to_numpy() == 3)
    return spikes


def electricity_rate(starts: pd.DatetimeIndex) -> np.ndarray:
    """The time-of-use unit rate of each slot (GBP/kWh): night 00-07, peak 16-19, else day."""
    import numpy as np
    import pandas as pd

    hours = _local_hours(starts)
    band = np.where(hours < 7, "night", np.where((hours >= 16) & (hours < 19), "peak", "day"))
    old = starts < pd.Timestamp(TARIFF_CHANGE)
    rates = np.empty(len(starts), dtype=np.float64)
    for tariff, mask in ((ELECTRICITY_TARIFF_OLD, old), (ELECTRICITY_TARIFF_NEW, ~old)):
        for name, value in TOU_BANDS[tariff].items():
            rates[mask & (band == name)] = value
    return rates


def available_until(now: datetime) -> datetime:
    """End of the newest slot the demo 'supplier' has published at `now`."""
    return floor_to(now - LAG, SLOT)


class DemoSource:
    """The demo household as a Source."""

    supplier = SUPPLIER
    update_interval = timedelta(minutes=30)
    capabilities = Capabilities(overlap=timedelta(days=3), normal_delay=timedelta(hours=3))

    def __init__(
        self,
        executor: Executor,
        *,
        calorific_value: float = 39.5,
        volume_correction: float = 1.02264,
        now: Callable[[], datetime] | None = None,
        submeters: bool = False,
    ) -> None:
        self._executor = executor
        self._calorific_value = calorific_value
        self._volume_correction = volume_correction
        self._now = now or (lambda: datetime.now(UTC))
        self._meters = (*METERS, *SUBMETERS) if submeters else METERS

    @property
    def meters(self) -> Sequence[MeterInfo]:
        """Electricity and gas, and the sub-meters when the entry has them."""
        return self._meters

    async def async_fetch(self, meter: MeterInfo, start: datetime, end: datetime) -> FetchResult:
        """Generate the slots of [start, end) that the supplier has published by now."""
        started = datetime.now(UTC)
        until = min(end, available_until(self._now()))
        result, rejected = await self._executor(self._build, meter, start, until)
        result.audit.append(
            AuditRecord(
                time=started,
                supplier=SUPPLIER,
                endpoint=f"demo/{meter.kind}",
                status=200,
                rows=len(result.intervals),
                duration_s=(datetime.now(UTC) - started).total_seconds(),
            )
        )
        if (record := rejected_audit(SUPPLIER, rejected, when=started)) is not None:
            result.audit.append(record)
        return result

    def _build(
        self, meter: MeterInfo, start: datetime, until: datetime
    ) -> tuple[FetchResult, dict[str, int]]:
        """The poll's result, and the rows normalize set aside per reason."""
        import pandas as pd

        from ..analytics import intervals, tariffs, units

        first = floor_to(start, SLOT)
        if first < start:
            first += SLOT
        starts = pd.date_range(first, until, freq=SLOT, inclusive="left", tz=UTC)
        if meter in SUBMETERS:
            return self._build_submeter(meter, starts, start, until)
        if meter.kind == "electricity":
            values = electricity_kwh(starts)
            serial = [
                NEW_ELECTRICITY_SERIAL if s >= REPLACED_AT else OLD_ELECTRICITY_SERIAL
                for s in starts
            ]
        else:
            values = gas_m3(starts)
            serial = [GAS_SERIAL] * len(starts)
        rows = pd.DataFrame(
            {"start": starts, "end": starts + SLOT, "value": values, "serial": serial}
        )
        normalized = intervals.normalize(
            rows,
            meter=meter.key,
            supplier=SUPPLIER,
            kind=meter.kind,
            unit=meter.unit,
            currency=CURRENCY,
        )
        frame = normalized.frame
        if meter.unit == "m³":
            frame["energy_kwh"] = units.gas_m3_to_kwh(
                frame["value"],
                calorific_value=self._calorific_value,
                correction=self._volume_correction,
            )
        rates, charges, agreements = tariff_frames(meter, start, until)
        joined = tariffs.join_rates(frame, rates, agreements, payment_method=None)
        result = FetchResult(
            intervals=joined.frame,
            complete_until=until if until > start else None,
            rates=rates,
            standing_charges=charges,
            agreements=agreements,
            rejected=len(normalized.rejected),
            unrated=joined.unrated,
        )
        return result, normalized.reason_counts()

    def _build_submeter(
        self, meter: MeterInfo, starts: pd.DatetimeIndex, start: datetime, until: datetime
    ) -> tuple[FetchResult, dict[str, int]]:
        """A sub-meter's slots: kWh, no tariff (its cost comes from the house meter)."""
        import pandas as pd

        from ..analytics import intervals

        kwh_per_m3 = self._volume_correction * self._calorific_value / 3.6
        values, published = submeter_kwh(meter.key, starts, kwh_per_m3=kwh_per_m3)
        rows = pd.DataFrame(
            {
                "start": starts[published],
                "end": starts[published] + SLOT,
                "value": values[published],
            }
        )
        normalized = intervals.normalize(
            rows, meter=meter.key, supplier=SUPPLIER, kind=meter.kind, unit=meter.unit
        )
        result = FetchResult(
            intervals=normalized.frame,
            complete_until=until if until > start else None,
            rejected=len(normalized.rejected),
        )
        return result, normalized.reason_counts()


def tariff_frames(
    meter: MeterInfo, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rates (30-minute rows for electricity, one open row for gas), charges and agreements.

    Rates reach a day past `end` so current and next rate are known, as with a real supplier.
    """
    import pandas as pd

    if meter.kind == "electricity":
        first = floor_to(start, SLOT)
        starts = pd.date_range(first, end + timedelta(days=1), freq=SLOT, inclusive="left", tz=UTC)
        tariff = [
            ELECTRICITY_TARIFF_OLD if s < TARIFF_CHANGE else ELECTRICITY_TARIFF_NEW for s in starts
        ]
        rate = electricity_rate(starts)
        rates = pd.DataFrame(
            {
                "supplier": SUPPLIER,
                "tariff": tariff,
                "register": "standard",
                "valid_from": starts,
                "valid_to": starts + SLOT,
                "rate": rate,
                "rate_exc_vat": rate / 1.05,
                "currency": CURRENCY,
                "payment_method": None,
            }
        )
        agreements = pd.DataFrame(
            {
                "meter": [meter.key, meter.key],
                "tariff": [ELECTRICITY_TARIFF_OLD, ELECTRICITY_TARIFF_NEW],
                "valid_from": _utc([EPOCH, TARIFF_CHANGE]),
                "valid_to": _utc([TARIFF_CHANGE, None]),
            }
        )
        charge_tariffs = [ELECTRICITY_TARIFF_OLD, ELECTRICITY_TARIFF_NEW]
        charge_from: list[datetime | None] = [EPOCH, TARIFF_CHANGE]
        charge_to: list[datetime | None] = [TARIFF_CHANGE, None]
    else:
        rates = pd.DataFrame(
            {
                "supplier": [SUPPLIER],
                "tariff": [GAS_TARIFF],
                "register": ["standard"],
                "valid_from": _utc([EPOCH]),
                "valid_to": _utc([None]),
                "rate": [GAS_RATE_PER_M3],
                "rate_exc_vat": [GAS_RATE_PER_M3 / 1.05],
                "currency": [CURRENCY],
                "payment_method": [None],
            }
        )
        agreements = pd.DataFrame(
            {
                "meter": [meter.key],
                "tariff": [GAS_TARIFF],
                "valid_from": _utc([EPOCH]),
                "valid_to": _utc([None]),
            }
        )
        charge_tariffs = [GAS_TARIFF]
        charge_from = [EPOCH]
        charge_to = [None]
    charge = [STANDING_CHARGES[t] for t in charge_tariffs]
    charges = pd.DataFrame(
        {
            "supplier": SUPPLIER,
            "tariff": charge_tariffs,
            "valid_from": _utc(charge_from),
            "valid_to": _utc(charge_to),
            "charge": charge,
            "charge_exc_vat": [c / 1.05 for c in charge],
            "currency": CURRENCY,
            "payment_method": None,
        }
    )
    return rates, charges, agreements


def create_source(context: SourceContext) -> DemoSource:
    """Build the demo source for a config entry."""
    return DemoSource(
        context.executor,
        calorific_value=float(context.options.get("gas_calorific_value", 39.5)),
        volume_correction=float(context.options.get("gas_volume_correction", 1.02264)),
        submeters=bool(context.data.get(CONF_SUBMETERS, False)),
    )


def _utc(values: Sequence[datetime | None]) -> pd.Series:
    """A UTC timestamp column; None becomes NaT (an open end)."""
    import pandas as pd

    return pd.Series(list(values), dtype="datetime64[ns, UTC]")
