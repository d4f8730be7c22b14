"""A gas unit that cannot stay wrong: check it against the annual quantity, and fix it.

Octopus does not say whether a gas meter reports kWh or m³; a wrong choice is off by ~11x
(docs/architecture.md, "Gas units"). Every day (with the sweep) and after setup, the last year
of each gas meter's stored readings is compared with the meter point's `consumption_standard`
(analytics.gas_units.fitting_unit). When the other unit fits, a fixable repair issue says so;
its fix re-reads the stored history in the right unit (the meter's numbers stay, energy and
cost follow), writes it back over the old rows, changes the unit in the entry, and rebuilds the
meter's statistics from the corrected archive.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
import logging
from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import (
    CONF_GAS_CALORIFIC_VALUE,
    CONF_GAS_VOLUME_CORRECTION,
    CONF_METERS,
    DEFAULT_GAS_CALORIFIC_VALUE,
    DEFAULT_GAS_VOLUME_CORRECTION,
    DOMAIN,
)
from .coordinator import MeterLakeConfigEntry
from .sources.base import FetchResult, MeterInfo

if TYPE_CHECKING:
    import pandas as pd

_LOGGER = logging.getLogger(__name__)

GAS_UNIT_PREFIX: Final = "gas_unit_"
YEAR: Final = timedelta(days=365)


def gas_unit_issue_id(entry_id: str, meter_key: str) -> str:
    """Id of the repair issue of one gas meter whose stored unit is off by the factor."""
    return f"{GAS_UNIT_PREFIX}{entry_id}_{meter_key}"


def _gas_settings(entry: MeterLakeConfigEntry) -> tuple[float, float]:
    options = entry.options
    return (
        float(options.get(CONF_GAS_CALORIFIC_VALUE, DEFAULT_GAS_CALORIFIC_VALUE)),
        float(options.get(CONF_GAS_VOLUME_CORRECTION, DEFAULT_GAS_VOLUME_CORRECTION)),
    )


async def async_check_gas_units(hass: HomeAssistant, entry: MeterLakeConfigEntry) -> list[str]:
    """Raise (or clear) the gas unit issue of each gas meter; return the keys found wrong."""
    from .analytics.gas_units import fitting_unit, kwh_per_m3
    from .sources.octopus import OctopusSource

    coordinator = entry.runtime_data.coordinator
    source = coordinator.source
    if not isinstance(source, OctopusSource):
        return []
    calorific, correction = _gas_settings(entry)
    factor = kwh_per_m3(calorific_value=calorific, correction=correction)
    now = dt_util.utcnow()
    wrong: list[str] = []
    for meter in source.meters:
        if meter.kind != "gas":
            continue
        issue_id = gas_unit_issue_id(entry.entry_id, meter.key)
        quantity = source.annual_quantity(meter)
        rows = await coordinator.async_stored_rows(meter, now - YEAR, now)
        total, days = (
            (0.0, 0.0) if rows is None else await hass.async_add_executor_job(_year_of, rows, meter)
        )
        fit = fitting_unit(total, days, quantity, kwh_per_m3=factor)
        if fit is None or fit.unit == meter.unit or quantity is None:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
            continue
        wrong.append(meter.key)
        _LOGGER.warning(
            "%s: a year of readings totals %.0f %s, the meter point's annual quantity is %.0f kWh;"
            " the meter reads %s (see the repair issue)",
            meter.name,
            total * 365 / days,
            meter.unit,
            quantity,
            fit.unit,
        )
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key="gas_unit",
            translation_placeholders={
                "meter": meter.name,
                "stored": meter.unit,
                "suggested": fit.unit,
                "total": f"{total * 365 / days:.0f}",
                "quantity": f"{quantity:.0f}",
            },
            data={"entry_id": entry.entry_id, "meter": meter.key, "unit": fit.unit},
        )
    return wrong


def _year_of(rows: pd.DataFrame, meter: MeterInfo) -> tuple[float, float]:
    """Total of the meter's stored values, and the days its intervals cover."""
    mine = rows[rows["meter"] == meter.key]
    if mine.empty:
        return 0.0, 0.0
    covered = (mine["end"] - mine["start"]).sum().total_seconds() / 86400
    return float(mine["value"].sum()), float(covered)


async def async_convert_gas_unit(
    hass: HomeAssistant, entry: MeterLakeConfigEntry, meter_key: str, unit: str
) -> int:
    """Re-read the meter's stored history in `unit`, store it, switch the entry, rebuild.

    Returns the intervals converted. Raises HomeAssistantError (translated) when the archive
    cannot be read or written: nothing is changed then.
    """
    from . import statistics

    coordinator = entry.runtime_data.coordinator
    meter = next(m for m in coordinator.source.meters if m.key == meter_key)
    converted_meter = replace(meter, unit=unit)
    rows = await coordinator.archive.async_read(meter, None, None)
    if rows is None:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="gas_unit_unreadable")
    calorific, correction = _gas_settings(entry)
    now = dt_util.utcnow()
    converted = await hass.async_add_executor_job(
        _reconverted, rows, meter, unit, (calorific, correction), now
    )
    outcome = await coordinator.archive.async_store(
        converted_meter, FetchResult(intervals=converted, complete_until=None)
    )
    if not outcome.accepted:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="gas_unit_unwritable")
    for suffix in (
        statistics.SUFFIX_CONSUMPTION,
        statistics.SUFFIX_COST,
        statistics.SUFFIX_ENERGY,
    ):
        # The consumption statistic changes unit: it is rebuilt, not continued.
        await statistics.async_clear_statistic(hass, statistics.statistic_id(meter.key, suffix))
    meters = [
        {**stored, "unit": unit} if stored.get("key") == meter_key else dict(stored)
        for stored in entry.data.get(CONF_METERS) or ()
    ]
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_METERS: meters})
    ir.async_delete_issue(hass, DOMAIN, gas_unit_issue_id(entry.entry_id, meter_key))
    _LOGGER.info("%s: %d stored intervals re-read in %s", meter.name, len(converted), unit)
    # The reloaded entry reads its meters (and the recent rows) anew; then the statistics.
    await hass.config_entries.async_reload(entry.entry_id)
    reloaded = hass.config_entries.async_get_entry(entry.entry_id)
    if reloaded is not None and hasattr(reloaded, "runtime_data"):
        fresh = reloaded.runtime_data.coordinator
        target = next(m for m in fresh.source.meters if m.key == meter_key)
        await fresh.async_rebuild_statistics(target, None)
    return len(converted)


def _reconverted(
    rows: pd.DataFrame,
    meter: MeterInfo,
    unit: str,
    gas: tuple[float, float],
    now: datetime,
) -> pd.DataFrame:
    import pandas as pd

    from .analytics.gas_units import reconvert

    mine = rows[rows["meter"] == meter.key]
    out = reconvert(mine, unit, calorific_value=gas[0], correction=gas[1])
    # Newer than every stored row: the archive keeps these over the old ones.
    out["ingested_at"] = pd.Timestamp(now)
    return out.reset_index(drop=True)
