"""Meters from Home Assistant entities, end to end with the real recorder and archive.

A meter from an entity is a subentry of the Composed meters entry. What is checked is what a
user and a data engineer see: the statistic `meterlake:<key>_consumption` (its hourly sums
against the readings' differences, to 1e-9), the archive's `readings` and `consumption`
datasets read back with DuckDB, the meter's sensors, repair issues and diagnostics.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder.models import StatisticMeanType
from homeassistant.components.recorder.statistics import (
    async_import_statistics,
)
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.diagnostics import async_get_config_entry_diagnostics

from .conftest import hourly_statistic, settle

NOW = datetime(2026, 11, 20, 12, 10, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
KWH = {"unit_of_measurement": "kWh", "state_class": "total_increasing", "device_class": "energy"}


def meter_subentry(
    name: str, entity_id: str, kind: str, source_unit: str, **more: Any
) -> ConfigSubentryData:
    """The data the subentry flow saves for a meter from an entity."""
    from homeassistant.util import slugify

    unit = "m³" if source_unit in {"L", "m³", "ft³", "CCF", "gal"} else "kWh"
    data = {
        "name": name,
        "key": "entity_" + slugify(name),
        "entity_id": entity_id,
        "kind": kind,
        "source_unit": source_unit,
        "unit": unit,
        "cadence_minutes": 60,
        "time_zone": "Europe/London",
        "profile": "linear",
        "temperature_entity": None,
        "max_gap_days": 31,
        "tolerance": None,
        "rollover": None,
    } | more
    return ConfigSubentryData(data=data, subentry_type="entity", title=name, unique_id=None)


async def add_composed_entry(
    hass: HomeAssistant, tmp_path: Path, *subentries: ConfigSubentryData, backfill_days: int = 30
) -> MockConfigEntry:
    """The Composed meters entry with the given meters, set up."""
    hass.config.config_dir = str(tmp_path / "config")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Composed meters",
        data={"source": "composed"},
        options={"backfill_days": backfill_days, "archive_root": str(tmp_path / "lake")},
        unique_id="composed",
        subentries_data=list(subentries),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    return entry


async def hourly_sums(hass: HomeAssistant, stat_id: str) -> dict[datetime, float]:
    """The statistic's sum per hour start."""
    rows = await hourly_statistic(hass, stat_id)
    return {datetime.fromtimestamp(r["start"], UTC): r["sum"] for r in rows}


async def set_reading(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    entity_id: str,
    when: datetime,
    value: Any,
    *,
    attributes: dict[str, Any],
) -> None:
    """The entity reports `value` at `when` (the recorder records it then)."""
    freezer.move_to(when)
    hass.states.async_set(entity_id, str(value), attributes)
    await hass.async_block_till_done()


@pytest.fixture
async def london(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    freezer.move_to(NOW)
    await hass.config.async_set_time_zone("Europe/London")


# --------------------------------------------------------------------------------------------
# A pulse counter followed live
# --------------------------------------------------------------------------------------------


async def test_live_readings_become_hourly_statistics_equal_to_the_readings(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    start = NOW.replace(minute=0) - timedelta(hours=1)
    await set_reading(hass, freezer, "sensor.pulse", start, 100.0, attributes=KWH)
    entry = await add_composed_entry(
        hass, tmp_path, meter_subentry("Pulse", "sensor.pulse", "electricity", "kWh")
    )
    assert entry.state is ConfigEntryState.LOADED
    readings = [100.0]
    for hour in range(1, 7):
        value = 100.0 + hour * 1.25 + (hour % 3) * 0.1
        readings.append(value)
        await set_reading(
            hass, freezer, "sensor.pulse", start + timedelta(hours=hour), value, attributes=KWH
        )
    freezer.tick(timedelta(seconds=61))
    async_fire_time_changed(hass)
    await settle(hass)
    sums = await hourly_sums(hass, "meterlake:entity_pulse_consumption")
    assert sorted(sums) == [start + timedelta(hours=h) for h in range(6)]
    for hour in range(6):
        assert sums[start + timedelta(hours=hour)] == pytest.approx(
            readings[hour + 1] - readings[0], abs=1e-9
        )


async def test_an_energy_sensor_in_wh_counts_in_kwh(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    wh = KWH | {"unit_of_measurement": "Wh"}
    start = NOW.replace(minute=0)
    await set_reading(hass, freezer, "sensor.p1", start, 5_000_000, attributes=wh)
    await add_composed_entry(hass, tmp_path, meter_subentry("P1", "sensor.p1", "electricity", "Wh"))
    await set_reading(
        hass, freezer, "sensor.p1", start + timedelta(hours=1), 5_001_234, attributes=wh
    )
    await set_reading(
        hass, freezer, "sensor.p1", start + timedelta(hours=2), 5_002_000, attributes=wh
    )
    freezer.tick(timedelta(seconds=61))
    async_fire_time_changed(hass)
    await settle(hass)
    sums = await hourly_sums(hass, "meterlake:entity_p1_consumption")
    assert sums == {start: pytest.approx(1.234, abs=1e-9), start + timedelta(hours=1): 2.0}
    assert hass.states.get("sensor.p1_meter_reading").attributes["unit_of_measurement"] == "kWh"


async def test_a_pulse_counter_reset_continues_the_sum_and_an_outage_is_interpolated(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    start = NOW.replace(minute=0) - timedelta(days=5)
    hour = timedelta(hours=1)
    await set_reading(hass, freezer, "sensor.pulse", start, 50.0, attributes=KWH)
    await set_reading(hass, freezer, "sensor.pulse", start + hour, 51.0, attributes=KWH)
    # the counter restarted (a power cut of the pulse reader): 0.5 used since it restarted
    await set_reading(hass, freezer, "sensor.pulse", start + 2 * hour, 0.5, attributes=KWH)
    await set_reading(hass, freezer, "sensor.pulse", start + 3 * hour, 1.5, attributes=KWH)
    # three days without a reading, then on again
    back = start + 3 * hour + timedelta(days=3)
    await set_reading(hass, freezer, "sensor.pulse", back, 73.5, attributes=KWH)
    freezer.move_to(back + timedelta(minutes=10))
    entry = await add_composed_entry(
        hass, tmp_path, meter_subentry("Pulse", "sensor.pulse", "electricity", "kWh")
    )
    sums = await hourly_sums(hass, "meterlake:entity_pulse_consumption")
    hours = sorted(sums)
    assert hours[0] == start
    assert hours[-1] == back - hour
    assert len(hours) == 3 + 72
    # 1 + 0.5 (after the reset) + 1 + 72 (the outage, spread evenly)
    assert sums[back - hour] == pytest.approx(74.5, abs=1e-9)
    assert sums[start + hour] == pytest.approx(1.5, abs=1e-9)
    rows = duckdb.sql(
        f"select quality, count(*) from read_parquet('{tmp_path}/lake/consumption/**/*.parquet')"
        " group by quality order by quality"
    ).fetchall()
    assert rows == [("interpolated", 72), ("measured", 3)]
    resets = hass.states.get("sensor.pulse_meter_reading").attributes["resets"]
    assert [(r["before"], r["after"], r["kind"]) for r in resets] == [(51.0, 0.5, "reset")]
    archived = duckdb.sql(
        f"select reading, reset from read_parquet('{tmp_path}/lake/readings/**/*.parquet')"
        " where reset is not null"
    ).fetchall()
    assert archived == [(0.5, "reset")]
    assert entry.state is ConfigEntryState.LOADED


async def test_history_is_imported_from_the_entitys_statistics_on_setup(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    first = NOW.replace(minute=0) - timedelta(days=20)
    states = [1000.0 + 0.5 * h + (h % 7) * 0.01 for h in range(24 * 10)]
    async_import_statistics(
        hass,
        {
            "source": "recorder",
            "statistic_id": "sensor.gas_meter",
            "name": None,
            "unit_of_measurement": "m³",
            "unit_class": "volume",
            "has_sum": True,
            "mean_type": StatisticMeanType.NONE,
        },
        [
            {"start": first + timedelta(hours=h), "state": value, "sum": value - 1000.0}
            for h, value in enumerate(states)
        ],
    )
    await settle(hass)
    await add_composed_entry(
        hass, tmp_path, meter_subentry("Gas", "sensor.gas_meter", "gas", "m³"), backfill_days=30
    )
    sums = await hourly_sums(hass, "meterlake:entity_gas_consumption")
    # a statistic's state is the reading at its hour's end: 239 hours between 240 readings
    assert len(sums) == len(states) - 1
    last = max(sums)
    assert last == first + timedelta(hours=len(states) - 1)
    assert sums[last] == pytest.approx(states[-1] - states[0], abs=1e-9)


# --------------------------------------------------------------------------------------------
# Hand readings
# --------------------------------------------------------------------------------------------


async def test_a_water_meter_read_by_hand_for_four_years_with_a_replacement(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    hass.states.async_set("input_number.water", "0", {"unit_of_measurement": "m³"})
    await add_composed_entry(
        hass,
        tmp_path,
        meter_subentry(
            "Water", "input_number.water", "water", "m³", cadence_minutes=1440, max_gap_days=45
        ),
        backfill_days=5 * 365,
    )

    # a reading about every 30 days for four years, at local midnight (the daily slots' edges,
    # so that the statistic meets each reading exactly); the meter was replaced in year three
    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), LONDON)

    start = date(2022, 11, 1)
    old = [(midnight(start + timedelta(days=30 * n + n % 3)), 312.0 + 11.5 * n) for n in range(26)]
    replaced = old[-1][0] + timedelta(days=12)
    new = [
        (midnight(replaced.date() + timedelta(days=30 * n + 17)), 0.25 + 9.75 * (n + 1))
        for n in range(22)
    ]
    assert new[-1][0] < NOW
    for when, reading in old + new:
        await hass.services.async_call(
            DOMAIN,
            "add_reading",
            {"meter": "entity_water", "reading": reading, "time": when},
            blocking=True,
        )
    await hass.services.async_call(
        DOMAIN,
        "add_reading",
        {
            "meter": "entity_water",
            "reading": 0.25,
            "final_reading": 612.5,
            "new_meter": True,
            "time": replaced,
        },
        blocking=True,
    )
    await settle(hass)
    used = (612.5 - old[0][1]) + (new[-1][1] - 0.25)
    sums = await hourly_sums(hass, "meterlake:entity_water_consumption")
    assert max(sums.values()) == pytest.approx(used, abs=1e-9)
    markers = duckdb.sql(
        f"select reading, reset from read_parquet('{tmp_path}/lake/readings/**/*.parquet')"
        " where source = 'new_meter'"
    ).fetchall()
    assert markers == [(0.25, "new_meter")]


async def test_a_hand_reading_in_the_past_re_spreads_only_around_it(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    hass.states.async_set("input_number.gas", "0", {"unit_of_measurement": "m³"})
    await add_composed_entry(
        hass,
        tmp_path,
        meter_subentry("Gas", "input_number.gas", "gas", "m³", cadence_minutes=1440),
        backfill_days=90,
    )
    days = [
        datetime.combine(date(2026, 9, 1) + timedelta(days=d), time(), LONDON) for d in (0, 20, 40)
    ]
    for when, reading in zip(days, (100.0, 120.0, 140.0), strict=True):
        await hass.services.async_call(
            DOMAIN,
            "add_reading",
            {"meter": "entity_gas", "reading": reading, "time": when},
            blocking=True,
        )
    await settle(hass)
    before = await hourly_sums(hass, "meterlake:entity_gas_consumption")
    response = await hass.services.async_call(
        DOMAIN,
        "add_reading",
        {"meter": "entity_gas", "reading": 116.0, "time": days[0] + timedelta(days=10)},
        blocking=True,
        return_response=True,
    )
    await settle(hass)
    after = await hourly_sums(hass, "meterlake:entity_gas_consumption")
    assert response is not None
    assert response["recomputed_from"] == days[0].astimezone(UTC).isoformat()
    assert response["recomputed_until"] == days[1].astimezone(UTC).isoformat()
    # the first ten days used 16 m³ rather than 10, the next ten 4; the sum meets each reading
    tenth = max(hour for hour in after if hour < days[0] + timedelta(days=10))
    assert after[tenth] == pytest.approx(16.0, abs=1e-9)
    assert before[tenth] == pytest.approx(10.0, abs=1e-9)
    assert max(after.values()) == pytest.approx(40.0, abs=1e-9) == max(before.values())


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


async def test_states_that_are_no_readings_are_skipped_and_counted(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    tmp_path: Path,
    london: None,
) -> None:
    start = NOW.replace(minute=0)
    await set_reading(hass, freezer, "sensor.pulse", start, 10.0, attributes=KWH)
    entry = await add_composed_entry(
        hass, tmp_path, meter_subentry("Pulse", "sensor.pulse", "electricity", "kWh")
    )
    for minutes, value in ((10, "unavailable"), (20, "unknown"), (30, "lots"), (40, -3)):
        await set_reading(
            hass, freezer, "sensor.pulse", start + timedelta(minutes=minutes), value, attributes=KWH
        )
    await set_reading(
        hass, freezer, "sensor.pulse", start + timedelta(hours=1), 11.0, attributes=KWH
    )
    freezer.tick(timedelta(seconds=61))
    async_fire_time_changed(hass)
    await settle(hass)
    assert await hourly_sums(hass, "meterlake:entity_pulse_consumption") == {
        start: pytest.approx(1.0, abs=1e-9)
    }
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    meter = diagnostics["composed"]["meter_0"]
    assert meter["readings_skipped"] == {"negative": 1, "not_numeric": 1, "unavailable": 2}


async def test_a_unit_that_does_not_convert_is_skipped_with_a_repair(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    start = NOW.replace(minute=0)
    await set_reading(hass, freezer, "sensor.pulse", start, 10.0, attributes=KWH)
    entry = await add_composed_entry(
        hass, tmp_path, meter_subentry("Pulse", "sensor.pulse", "electricity", "kWh")
    )
    watts = KWH | {"unit_of_measurement": "W"}
    await set_reading(
        hass, freezer, "sensor.pulse", start + timedelta(hours=1), 2500, attributes=watts
    )
    issue_id = f"entity_meter_unit_{entry.entry_id}_entity_pulse"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "meter": "Pulse",
        "entity": "sensor.pulse",
        "unit": "W",
        "expected": "kWh",
    }
    # a unit that converts reads on, and the issue goes
    await set_reading(
        hass,
        freezer,
        "sensor.pulse",
        start + timedelta(hours=2),
        12500,
        attributes=KWH | {"unit_of_measurement": "Wh"},
    )
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    freezer.tick(timedelta(seconds=61))
    async_fire_time_changed(hass)
    await settle(hass)
    sums = await hourly_sums(hass, "meterlake:entity_pulse_consumption")
    assert sums[start + timedelta(hours=1)] == pytest.approx(2.5, abs=1e-9)


async def test_a_deleted_entity_raises_a_repair_until_it_is_back(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    await set_reading(hass, freezer, "sensor.pulse", NOW, 10.0, attributes=KWH)
    entry = await add_composed_entry(
        hass, tmp_path, meter_subentry("Pulse", "sensor.pulse", "electricity", "kWh")
    )
    issue_id = f"entity_meter_missing_{entry.entry_id}_entity_pulse"
    hass.states.async_remove("sensor.pulse")
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    await set_reading(hass, freezer, "sensor.pulse", NOW + timedelta(hours=1), 11.0, attributes=KWH)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


@pytest.mark.parametrize(
    "case",
    [
        ({"meter": "entity_nope", "reading": 1.0}, "not_a_counter_meter"),
        (
            {"meter": "entity_pulse", "reading": 1.0, "time": NOW + timedelta(days=1)},
            "reading_in_future",
        ),
        ({"meter": "entity_pulse", "reading": -1.0}, "reading_invalid"),
        (
            {"meter": "entity_pulse", "reading": 1.0, "final_reading": 3.0},
            "final_reading_without_new_meter",
        ),
    ],
)
@pytest.mark.usefixtures("london")
async def test_add_reading_refuses_bad_input_with_a_translated_error(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    tmp_path: Path,
    case: tuple[dict[str, Any], str],
) -> None:
    data, key = case
    await set_reading(hass, freezer, "sensor.pulse", NOW, 10.0, attributes=KWH)
    await add_composed_entry(
        hass, tmp_path, meter_subentry("Pulse", "sensor.pulse", "electricity", "kWh")
    )
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(DOMAIN, "add_reading", data, blocking=True)
    assert raised.value.translation_key == key


async def test_hand_readings_outlive_a_restart_in_the_archive(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    hass.states.async_set("input_number.water", "0", {"unit_of_measurement": "L"})
    entry = await add_composed_entry(
        hass,
        tmp_path,
        meter_subentry("Water", "input_number.water", "water", "L", cadence_minutes=1440),
        backfill_days=90,
    )
    days = [
        datetime.combine(date(2026, 10, 1) + timedelta(days=d), time(), LONDON) for d in (0, 10)
    ]
    for when, litres in zip(days, (120_000.0, 121_500.0), strict=True):
        await hass.services.async_call(
            DOMAIN,
            "add_reading",
            {"meter": "entity_water", "reading": litres, "time": when},
            blocking=True,
        )
    await settle(hass)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await settle(hass)
    # the next reading pairs with the archived one: 2 m³ over the next ten days
    await hass.services.async_call(
        DOMAIN,
        "add_reading",
        {"meter": "entity_water", "reading": 123_500.0, "time": days[1] + timedelta(days=10)},
        blocking=True,
    )
    await settle(hass)
    sums = await hourly_sums(hass, "meterlake:entity_water_consumption")
    tenth = max(hour for hour in sums if hour < days[1])
    assert sums[tenth] == pytest.approx(1.5, abs=1e-9)
    assert max(sums.values()) == pytest.approx(3.5, abs=1e-9)


async def test_degree_days_from_a_temperature_sensor_give_colder_days_more(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    first = datetime.combine(date(2026, 11, 1), time(), LONDON)
    # 5.5 °C on the first five days (10 degrees below 15.5), 13.5 °C on the next five (2)
    async_import_statistics(
        hass,
        {
            "source": "recorder",
            "statistic_id": "sensor.outdoor",
            "name": None,
            "unit_of_measurement": "°C",
            "unit_class": "temperature",
            "has_sum": False,
            "mean_type": StatisticMeanType.ARITHMETIC,
        },
        [
            {
                "start": first + timedelta(hours=h),
                "mean": 5.5 if h < 120 else 13.5,
                "min": 0.0,
                "max": 20.0,
            }
            for h in range(240)
        ],
    )
    await settle(hass)
    hass.states.async_set("input_number.heat", "0", {"unit_of_measurement": "kWh"})
    await add_composed_entry(
        hass,
        tmp_path,
        meter_subentry(
            "Heat",
            "input_number.heat",
            "heat",
            "kWh",
            cadence_minutes=1440,
            profile="degree_days",
            temperature_entity="sensor.outdoor",
        ),
        backfill_days=60,
    )
    for when, reading in ((first, 1000.0), (first + timedelta(days=10), 1600.0)):
        await hass.services.async_call(
            DOMAIN,
            "add_reading",
            {"meter": "entity_heat", "reading": reading, "time": when},
            blocking=True,
        )
    await settle(hass)
    sums = await hourly_sums(hass, "meterlake:entity_heat_consumption")
    ordered = [sums[hour] for hour in sorted(sums)]
    daily = [b - a for a, b in zip([0.0, *ordered], ordered, strict=False)]
    # 600 kWh shared 10 : 2 per day: 100 on each cold day, 20 on each mild one
    assert daily[:10] == pytest.approx([100.0] * 5 + [20.0] * 5, abs=1e-9)
    assert max(ordered) == pytest.approx(600.0, abs=1e-9)


async def test_a_meter_from_an_entity_is_an_input_of_composed_meters(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, tmp_path: Path, london: None
) -> None:
    start = NOW.replace(minute=0)
    await set_reading(hass, freezer, "sensor.house", start, 500.0, attributes=KWH)
    await set_reading(hass, freezer, "sensor.heat_pump", start, 20.0, attributes=KWH)
    everything_else = ConfigSubentryData(
        data={
            "name": "Everything else",
            "key": "composed_everything_else",
            "unit": "kWh",
            "kind": "electricity",
            "cadence_minutes": 60,
            "time_zone": "Europe/London",
            "currency": None,
            "base": "entity_house",
            "add": [],
            "subtract": ["entity_heat_pump"],
        },
        subentry_type="virtual",
        title="Everything else",
        unique_id=None,
    )
    await add_composed_entry(
        hass,
        tmp_path,
        meter_subentry("House", "sensor.house", "electricity", "kWh"),
        meter_subentry("Heat pump", "sensor.heat_pump", "electricity", "kWh"),
        everything_else,
    )
    for hour, (house, heat_pump) in enumerate(((503.0, 21.5), (507.5, 24.0)), start=1):
        when = start + timedelta(hours=hour)
        await set_reading(hass, freezer, "sensor.house", when, house, attributes=KWH)
        await set_reading(hass, freezer, "sensor.heat_pump", when, heat_pump, attributes=KWH)
    freezer.tick(timedelta(seconds=61))
    async_fire_time_changed(hass)
    await settle(hass)
    sums = await hourly_sums(hass, "meterlake:composed_everything_else_consumption")
    assert sums == {
        start: pytest.approx(3.0 - 1.5, abs=1e-9),
        start + timedelta(hours=1): pytest.approx(1.5 + 4.5 - 2.5, abs=1e-9),
    }
