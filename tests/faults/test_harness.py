"""The fault suite's own checks: read_archive and compare see every kind of damage.

No Home Assistant here: a small hive-partitioned archive is written with pyarrow, statistics are
built from it the way statistics.py accumulates them, then broken on purpose.
"""

from __future__ import annotations

from datetime import UTC, datetime
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .harness import (
    HOUR,
    SLOT,
    ArchiveSnapshot,
    Statistics,
    StatMeta,
    StatRow,
    Window,
    compare,
    lagging,
    metadata_problems,
    read_archive,
)

pytestmark = pytest.mark.faults

START = int(datetime(2026, 1, 31, 20, tzinfo=UTC).timestamp())  # crosses a month boundary
SLOTS = 16  # eight hours


def _write(root: Path, meter: str, unit: str, starts: list[int], *, cost_gap: int | None) -> None:
    """Half-hour rows of one meter, one file per UTC month (the archive's layout)."""
    by_month: dict[str, list[int]] = {}
    for start in starts:
        month = datetime.fromtimestamp(start, UTC).strftime("%Y-%m")
        by_month.setdefault(month, []).append(start)
    for month, month_starts in by_month.items():
        values = [0.1 + (s - START) / SLOT * 0.01 for s in month_starts]
        pairs = zip(month_starts, values, strict=True)
        table = pa.table(
            {
                "start": pa.array(
                    [datetime.fromtimestamp(s, UTC) for s in month_starts],
                    pa.timestamp("us", tz="UTC"),
                ),
                "value": pa.array(values, pa.float64()),
                "unit": pa.array([unit] * len(month_starts)),
                "currency": pa.array(["GBP"] * len(month_starts)),
                "energy_kwh": pa.array([v * 11.2 for v in values], pa.float64()),
                "cost": pa.array(
                    [None if s == cost_gap else v * 0.25 for s, v in pairs],
                    pa.float64(),
                ),
            }
        )
        folder = root / "consumption" / "supplier=demo" / f"meter={meter}" / f"month={month}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "data.parquet")


@pytest.fixture
def archive_root(tmp_path: Path) -> Path:
    starts = [START + i * SLOT for i in range(SLOTS)]
    # The gas cost of the third hour is unknown for one slot: that hour has no cost row.
    _write(tmp_path, "elec", "kWh", starts, cost_gap=None)
    _write(tmp_path, "gas", "m³", starts, cost_gap=START + 5 * SLOT)
    return tmp_path


def _statistics(archive: ArchiveSnapshot) -> Statistics:
    """What a correct import stores: each known hour with its state and running sum."""
    out: Statistics = {}
    for stat_id, hours in archive.hourly.items():
        running = 0.0
        rows = []
        for hour, value in sorted(hours.items()):
            running += value
            rows.append(StatRow(hour, value, running))
        out[stat_id] = rows
    return out


def _window(archive: ArchiveSnapshot) -> Window:
    return Window(
        meters=("elec", "gas"),
        earliest_start=START,
        latest_start=START,
        end=START + SLOTS * SLOT,
    )


def test_reads_the_archive_as_the_statistics_contract_says(archive_root: Path) -> None:
    archive = read_archive(archive_root)
    assert sorted(archive.hourly) == [
        "meterlake:elec_consumption",
        "meterlake:elec_cost",
        "meterlake:gas_consumption",
        "meterlake:gas_cost",
        "meterlake:gas_energy",
    ]
    assert len(archive.hourly["meterlake:elec_consumption"]) == 8
    # The hour with an unknown cost slot has no cost row, but its consumption is there.
    gap_hour = START + 2 * HOUR
    assert gap_hour not in archive.hourly["meterlake:gas_cost"]
    assert gap_hour in archive.hourly["meterlake:gas_consumption"]
    assert math.isclose(archive.hourly["meterlake:elec_consumption"][START], 0.1 + 0.11)
    assert archive.slots["elec"] == {START + i * SLOT for i in range(SLOTS)}
    assert archive.duplicates == 0


def test_correct_statistics_compare_clean(archive_root: Path) -> None:
    archive = read_archive(archive_root)
    stats = _statistics(archive)
    assert compare(stats, archive, _window(archive)) == (0, 0, 0)
    assert lagging(stats, archive) == []


def test_a_missing_hour_a_wrong_sum_and_an_extra_hour_are_sums_wrong(archive_root: Path) -> None:
    archive = read_archive(archive_root)
    stats = _statistics(archive)
    cost = stats["meterlake:elec_cost"]
    del cost[3]  # a hole, the later sums still right
    energy = stats["meterlake:gas_energy"]
    energy[4] = StatRow(energy[4].start, energy[4].state, (energy[4].sum or 0.0) + 1e-6)
    gas_cost = stats["meterlake:gas_cost"]
    gas_cost.append(StatRow(START + 2 * HOUR, 0.0, gas_cost[-1].sum))  # the unknown hour
    result = compare(stats, archive, _window(archive))
    assert result == (3, 0, 0), result.report()
    assert "1 of 8 archive hours missing" in result.report()


def test_sums_restarted_from_zero_are_wrong(archive_root: Path) -> None:
    """A catch-up that re-anchors at 0 instead of the stored sum: every later hour is off."""
    archive = read_archive(archive_root)
    stats = _statistics(archive)
    rows = stats["meterlake:elec_consumption"]
    offset = rows[4].sum or 0.0
    stats["meterlake:elec_consumption"] = rows[:5] + [
        StatRow(row.start, row.state, (row.sum or 0.0) - offset) for row in rows[5:]
    ]
    assert compare(stats, archive, _window(archive)) == (3, 0, 0)


def test_a_statistic_the_archive_cannot_explain_is_wrong(archive_root: Path) -> None:
    archive = read_archive(archive_root)
    stats = _statistics(archive)
    stats["meterlake:elec_energy"] = [StatRow(START, 1.0, 1.0)]
    assert compare(stats, archive, _window(archive)) == (1, 0, 0)


def test_lost_slots_and_duplicates(archive_root: Path) -> None:
    # One elec slot gone from the archive, one gas slot stored twice (a stray second file).
    folder = archive_root / "consumption" / "supplier=demo" / "meter=elec" / "month=2026-02"
    table = pq.read_table(folder / "data.parquet")
    pq.write_table(table.slice(1), folder / "data.parquet")
    gas = archive_root / "consumption" / "supplier=demo" / "meter=gas" / "month=2026-02"
    pq.write_table(pq.read_table(gas / "data.parquet").slice(0, 1), gas / "stray.parquet")
    archive = read_archive(archive_root)
    stats = _statistics(archive)
    result = compare(stats, archive, _window(archive))
    assert result == (0, 1, 1), result.report()
    # Slots published after the archive's end are lost too; statistics missing entirely lag.
    longer = Window(("elec", "gas"), START, START, START + (SLOTS + 2) * SLOT)
    assert compare(stats, archive, longer).rows_lost == 1 + 2 * 2
    del stats["meterlake:gas_energy"]
    assert lagging(stats, archive) == [
        f"meterlake:gas_energy ends at nothing, archive at "
        f"{datetime.fromtimestamp(START + 7 * HOUR, UTC).isoformat()}"
    ]


def test_an_empty_archive_has_nothing(tmp_path: Path) -> None:
    archive = read_archive(tmp_path)
    assert archive == ArchiveSnapshot()
    window = Window(("elec",), START, START, START + 4 * SLOT)
    assert compare({}, archive, window) == (0, 4, 0)


def test_metadata_must_carry_the_archive_units(archive_root: Path) -> None:
    archive = read_archive(archive_root)
    assert archive.units == {
        "meterlake:elec_consumption": "kWh",
        "meterlake:elec_cost": "GBP",
        "meterlake:gas_consumption": "m³",
        "meterlake:gas_cost": "GBP",
        "meterlake:gas_energy": "kWh",
    }
    meta = {stat_id: StatMeta(unit, True, 0) for stat_id, unit in archive.units.items()}
    assert metadata_problems(meta, archive) == []
    meta["meterlake:gas_energy"] = StatMeta("m³", True, 0)
    meta["meterlake:elec_cost"] = StatMeta("GBP", True, 1)
    del meta["meterlake:gas_cost"]
    assert len(metadata_problems(meta, archive)) == 3


def test_a_skipped_statistic_and_rejected_slots_are_not_findings(archive_root: Path) -> None:
    """A foreign statistic MeterLake must leave alone, and slots the source served as junk."""
    folder = archive_root / "consumption" / "supplier=demo" / "meter=elec" / "month=2026-02"
    table = pq.read_table(folder / "data.parquet")
    pq.write_table(table.slice(1), folder / "data.parquet")  # the first February slot
    archive = read_archive(archive_root)
    stats = _statistics(archive)
    stats["meterlake:elec_cost"] = [StatRow(START - 100 * HOUR, 10.0, 10.0)]  # in EUR, say
    window = _window(archive)
    junk = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
    assert compare(stats, archive, window) == (9, 1, 0)
    result = compare(
        stats, archive, window, skip={"meterlake:elec_cost"}, rejected={"elec": {junk}}
    )
    assert result == (0, 0, 0), result.report()
    # Rejected slots of another meter excuse nothing here.
    other = compare(stats, archive, window, skip={"meterlake:elec_cost"}, rejected={"gas": {junk}})
    assert other.rows_lost == 1
    meta = {stat_id: StatMeta(unit, True, 0) for stat_id, unit in archive.units.items()}
    meta["meterlake:elec_cost"] = StatMeta("EUR", True, 0)
    assert len(metadata_problems(meta, archive)) == 1
    assert metadata_problems(meta, archive, skip={"meterlake:elec_cost"}) == []
    assert lagging(stats, archive, skip={"meterlake:elec_cost"}) == []
