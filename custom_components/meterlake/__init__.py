"""MeterLake: energy data from suppliers, grid operators and meters, as one table.

Setup builds the entry's source from its module under `sources/`, loads the watermarks, runs a
first poll and forwards the platforms. Actions are registered once, in async_setup.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import async_track_time_change, async_track_utc_time_change
from homeassistant.helpers.importlib import async_import_module
from homeassistant.helpers.typing import ConfigType

from .anomalies import AnomalyMonitor
from .const import (
    CONF_CO2_METER,
    CONF_PERIMETER,
    CONF_SOURCE,
    DOMAIN,
    PERIMETER_NATIONAL,
    SOURCE_ECO2MIX,
)
from .coordinator import (
    MeterLakeConfigEntry,
    MeterLakeCoordinator,
    MeterLakeData,
    archive_damaged_issue_id,
)
from .derived import ComposedUpdater
from .emissions import EmissionsTracker, emissions_issue_id
from .entity_meters import EntityMeterFollower
from .gas_unit_check import async_check_gas_units
from .lake import async_get_lake
from .options import invalid_options_issue_id
from .rate_actions import async_setup_rate_actions
from .redact import install_log_filter, register_secrets, secrets_in
from .repairs import async_apply_valid_options
from .services import async_setup_services
from .sinks import ArchiveSink, StatisticsSink, archive_issue_id
from .sources.base import MeterInfo, Source, SourceContext
from .sources.composed import ComposedSource
from .store import WatermarkStore
from .sweeps import HistorySweep

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]
# Spot prices change every quarter hour: the price sensors move on without a request.
PRICE_MINUTES = (0, 15, 30, 45)
# Local time of the daily archive verification and statistics check (a quiet hour).
DAILY_CHECK = (3, 17)
DAILY_MINUTES = 1440
FILE_METER_DELAY = timedelta(days=365 * 100)
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Make the lake; register the actions (they validate the entry they are called for)."""
    async_get_lake(hass)
    async_setup_services(hass)
    async_setup_rate_actions(hass)
    install_log_filter()
    return True


async def async_create_source(hass: HomeAssistant, entry: MeterLakeConfigEntry) -> Source:
    """Import `sources/<source>.py` off the event loop and let it build the entry's source."""
    name = entry.data[CONF_SOURCE]
    module = await async_import_module(hass, f"{__name__}.sources.{name}")
    context = SourceContext(
        session=async_get_clientsession(hass),
        executor=hass.async_add_executor_job,
        data=entry.data,
        options=entry.options,
        lake=async_get_lake(hass),
        subentries=[
            (subentry_id, subentry.subentry_type, subentry.data)
            for subentry_id, subentry in entry.subentries.items()
        ],
    )
    source: Source = module.create_source(context)
    return source


async def async_setup_entry(hass: HomeAssistant, entry: MeterLakeConfigEntry) -> bool:
    """Set up one source: first poll, then the platforms."""
    # Options written by hand or an older version must not keep the entry from starting.
    await async_apply_valid_options(hass, entry)
    try:
        source = await async_create_source(hass, entry)
    except ModuleNotFoundError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="unknown_source",
            translation_placeholders={"source": str(entry.data.get(CONF_SOURCE))},
        ) from err
    # Every text MeterLake writes loses the entry's credentials (redact.py).
    register_secrets(secrets_in(entry.data, entry.options))
    install_log_filter()
    store = WatermarkStore(hass, entry.entry_id)
    await store.async_load()
    statistics = StatisticsSink(hass, entry.options)
    archive = ArchiveSink(hass, entry.entry_id, entry.options)
    # An object store's credentials are proven before anything calls into it.
    await archive.async_prove()
    coordinator = MeterLakeCoordinator(
        hass,
        entry,
        source,
        store,
        archive=archive,
        statistics=statistics,
    )
    follower = None
    if isinstance(source, ComposedSource):
        # Before the first poll: it reads the meters' history from the archive and recorder.
        follower = EntityMeterFollower(hass, entry, coordinator, source.entities)
    # Before the first poll too: its rows are the meters' history (recorded, not announced).
    monitor = AnomalyMonitor(hass, entry, coordinator, partial(normal_delay, source))
    await monitor.async_load()
    monitor.start()
    aligned = source.capabilities.aligned_minutes
    if aligned:
        # Poll a few minutes after each quarter hour, when the new slot is published.
        coordinator.update_interval = None
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = MeterLakeData(
        coordinator=coordinator, entity_meters=follower, anomalies=monitor
    )
    lake = async_get_lake(hass)
    lake.register(entry.entry_id, entry.title, list(source.meters), coordinator)
    entry.async_on_unload(lambda: lake.unregister(entry.entry_id))
    # Once HA runs, and daily: verify the archive, then repair each statistic against it.
    statistics.start(entry, coordinator.async_check_history)
    entry.async_on_unload(statistics.stop)

    @callback
    def _daily_check(_now: datetime) -> None:
        entry.async_create_background_task(
            hass, coordinator.async_check_history(), f"{DOMAIN} daily check {entry.entry_id}"
        )

    entry.async_on_unload(
        async_track_time_change(hass, _daily_check, hour=DAILY_CHECK[0], minute=DAILY_CHECK[1])
    )
    _async_schedule(hass, entry, coordinator, aligned)
    capabilities = source.capabilities
    if capabilities.revision_window is not None or capabilities.gap_window is not None:
        HistorySweep(hass, entry, coordinator).start()
    # Gas read in the wrong unit is off by ~11x: checked now and after every daily sweep.
    entry.async_create_background_task(
        hass, async_check_gas_units(hass, entry), f"{DOMAIN} gas unit check {entry.entry_id}"
    )
    co2_meter = entry.options.get(CONF_CO2_METER)
    if (
        co2_meter
        and entry.data[CONF_SOURCE] == SOURCE_ECO2MIX
        and entry.data.get(CONF_PERIMETER) == PERIMETER_NATIONAL
    ):
        coordinator.emissions = EmissionsTracker(hass, entry, coordinator, str(co2_meter))
        coordinator.emissions.start()
    else:
        ir.async_delete_issue(hass, DOMAIN, emissions_issue_id(entry.entry_id))
    if isinstance(source, ComposedSource):
        ComposedUpdater(hass, entry, coordinator, source).start()
        assert follower is not None
        follower.start()
        # Adding, changing or deleting a composed meter (a subentry) rebuilds the source.
        entry.async_on_unload(entry.add_update_listener(_async_reload))
    _async_remove_stale_devices(hass, entry, {meter.key for meter in source.meters})
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


def normal_delay(source: Source, meter: MeterInfo) -> timedelta:
    """How late a meter's newest interval normally is (older: the `no_data` anomaly).

    A meter read by hand once a day or less is late by as much as its longest gap; one
    following a live entity should move within hours.
    """
    if isinstance(source, ComposedSource) and meter.key in source.files.definitions:
        return FILE_METER_DELAY  # history only: never "late"
    if isinstance(source, ComposedSource) and meter.key in source.entities.definitions:
        definition = source.entities.definitions[meter.key]
        if definition.cadence_minutes >= DAILY_MINUTES:
            return timedelta(days=definition.max_gap_days)
        return timedelta(hours=6)
    return source.capabilities.normal_delay


async def _async_reload(hass: HomeAssistant, entry: MeterLakeConfigEntry) -> None:
    """Reload after the entry or one of its subentries changed."""
    hass.config_entries.async_schedule_reload(entry.entry_id)


def _async_schedule(
    hass: HomeAssistant,
    entry: MeterLakeConfigEntry,
    coordinator: MeterLakeCoordinator,
    aligned: tuple[int, ...] | None,
) -> None:
    """Clock-aligned work: aligned polls, and price sensors moving on each quarter hour."""
    if aligned:

        @callback
        def _poll(now: datetime) -> None:
            # An entry task: unloading the entry cancels a poll that is still running.
            if hass.is_stopping or (coordinator.not_before and now < coordinator.not_before):
                return
            if coordinator.polling:
                return
            entry.async_create_background_task(
                hass, coordinator.async_refresh(), f"{DOMAIN} aligned poll {entry.entry_id}"
            )

        entry.async_on_unload(
            async_track_utc_time_change(hass, _poll, minute=list(aligned), second=0)
        )
    if coordinator.source.capabilities.spot_prices:

        @callback
        def _prices(_now: datetime) -> None:
            if coordinator.data is not None:
                entry.async_create_background_task(
                    hass, coordinator.async_refresh_snapshots(), f"{DOMAIN} prices"
                )

        entry.async_on_unload(
            async_track_utc_time_change(hass, _prices, minute=list(PRICE_MINUTES), second=1)
        )


def _async_remove_stale_devices(
    hass: HomeAssistant, entry: MeterLakeConfigEntry, meter_keys: set[str]
) -> None:
    """Drop devices of meters the entry no longer follows (deselected in reconfigure).

    Their archive and statistics stay: they are the user's history.
    """
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not any(domain == DOMAIN and key in meter_keys for domain, key in device.identifiers):
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: MeterLakeConfigEntry) -> bool:
    """Unload the platforms and write the watermarks; the coordinator stops with the entry."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.coordinator.store.async_save()
        if entry.runtime_data.anomalies is not None:
            await entry.runtime_data.anomalies.async_save()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: MeterLakeConfigEntry) -> None:
    """Forget the watermarks and repairs of a removed entry.

    The archive and statistics stay: they are the user's data.
    """
    await WatermarkStore(hass, entry.entry_id).async_remove()
    ir.async_delete_issue(hass, DOMAIN, archive_issue_id(entry.entry_id))
    ir.async_delete_issue(hass, DOMAIN, archive_damaged_issue_id(entry.entry_id))
    ir.async_delete_issue(hass, DOMAIN, emissions_issue_id(entry.entry_id))
    ir.async_delete_issue(hass, DOMAIN, invalid_options_issue_id(entry.entry_id))
