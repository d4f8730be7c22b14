"""Damage from outside MeterLake: a broken archive, a full disk, foreign data, bad files.

Each test runs a real Home Assistant with the demo entry (tests/faults/harness.py), damages
what MeterLake reads (the archive, the recorder's statistics, the source's values, its stored
watermarks and options) while it is stopped or running, lets it recover, and checks the
statistics against the archive and the archive against what the demo published:
compare() == (sums wrong, rows lost, duplicates) == (0, 0, 0), plus what the user sees (a
quarantined file, a repair issue). The two-writer test runs plain Python processes on one
archive instead.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
import json
import math
import os
from pathlib import Path
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from custom_components.meterlake.archive import open_archive
from custom_components.meterlake.const import DEFAULT_BACKFILL_DAYS
from custom_components.meterlake.options import DEFAULT_OPTIONS

from . import archive_workers as workers
from .disk import FullDisk, make_disk
from .harness import (
    REPO,
    SLOT,
    TALLY,
    Comparison,
    HomeAssistantFactory,
    HomeAssistantProcess,
    compare,
    epoch,
    hive_read_problems,
    loaded_entity_states,
    metadata_problems,
    meterlake_entry,
    month_dirs,
    read_archive,
    read_audit,
    read_issues,
    read_metadata,
    read_statistics,
    read_storage,
    set_entry_options,
    wait_for_agreement,
    wait_for_statistics,
    write_storage,
)

pytestmark = pytest.mark.faults

ELECTRICITY = "demo_electricity"
GAS = "demo_gas"
# A 62-day backfill always spans three UTC months or more: an old month lies between two others.
DAMAGE_BACKFILL_DAYS = 62
# Tests that need no month boundary or several statistic chunks.
SHORT_BACKFILL_DAYS = 20
START_TIMEOUT = 180.0
RECOVERY_TIMEOUT = 150.0
GARBAGE = b"\x00garbage, not Parquet\xff" * 200
CORRUPT_NAME = "_data.parquet.corrupt"


def _settle_first_start(ha: HomeAssistantProcess) -> None:
    """Start, wait until the statistics caught up with the archive, stop gracefully."""
    ha.start()
    settled = wait_for_statistics(ha, timeout=START_TIMEOUT)
    assert settled.caught_up, f"the first start did not settle: {settled.reason}"
    assert ha.stop() == 0, "the first start did not stop cleanly"


def _record(injected: int, result: Comparison) -> None:
    TALLY.record(injected=injected, rows_lost=result.rows_lost, sums_wrong=result.sums_wrong)


def _entry_id(ha: HomeAssistantProcess) -> str:
    entry_id: str = meterlake_entry(ha.config)["entry_id"]
    return entry_id


# -- 1. archive damage while Home Assistant is stopped ------------------------------------------


def _month_rows(month: Path) -> int:
    import duckdb

    with duckdb.connect() as conn:
        row = conn.execute(
            f"SELECT count(*) FROM read_parquet('{(month / 'data.parquet').as_posix()}')"
        ).fetchone()
    assert row is not None
    return int(row[0])


DAMAGE = [
    pytest.param("garbage-old", id="garbage-in-old-month"),
    pytest.param("zero-bytes-old", id="zero-byte-old-month", marks=pytest.mark.faults_slow),
    pytest.param("deleted-old", id="deleted-old-month", marks=pytest.mark.faults_slow),
    pytest.param("garbage-newest", id="garbage-in-newest-month", marks=pytest.mark.faults_slow),
]


@pytest.mark.parametrize("damage", DAMAGE)
def test_archive_damaged_while_stopped(
    make_home_assistant: HomeAssistantFactory, damage: str
) -> None:
    ha = make_home_assistant(backfill_days=DAMAGE_BACKFILL_DAYS)
    began = time.monotonic()
    _settle_first_start(ha)
    months = month_dirs(ha.archive_root, ELECTRICITY)
    assert len(months) >= 3, f"expected three months or more, archived {months}"
    month = months[-1] if damage.endswith("newest") else months[1]
    rows_before = _month_rows(month)
    data = month / "data.parquet"
    if damage.startswith("garbage"):
        data.write_bytes(GARBAGE)
    elif damage.startswith("zero-bytes"):
        data.write_bytes(b"")
    else:
        shutil.rmtree(month)
    damaged = time.monotonic()

    ha.start()
    settled = wait_for_agreement(ha, timeout=RECOVERY_TIMEOUT)
    stopped = ha.stop()
    archive = read_archive(ha.archive_root)
    result = compare(read_statistics(ha.db), archive, ha.expected_window())
    _record(1, result)
    print(
        f"{damage} of {month.name} ({rows_before} rows): first start {damaged - began:.1f} s; "
        f"restart {settled.reason} after {settled.seconds:.1f} s; {result.report()}"
    )
    assert result == (0, 0, 0), f"after {damage} of {month.name}:\n{result.report()}"
    assert data.exists(), f"{data} was not rebuilt"
    assert _month_rows(month) >= rows_before, f"{month.name} was rebuilt with fewer rows"
    corrupt = month / CORRUPT_NAME
    if damage.startswith("deleted"):
        assert not corrupt.exists()
    else:
        assert corrupt.exists(), f"the unreadable file was not kept as {corrupt.name}"
        assert corrupt.read_bytes() == (b"" if damage.startswith("zero") else GARBAGE)
    assert not hive_read_problems(ha.archive_root), hive_read_problems(ha.archive_root)
    issues = read_issues(ha.config)
    assert f"archive_damaged_{_entry_id(ha)}" not in issues, "the demo serves every month"
    problems = metadata_problems(read_metadata(ha.db), archive)
    assert not problems, "\n".join(problems)
    assert stopped == 0, f"the restarted Home Assistant did not stop cleanly ({stopped})"


# -- 2. a full disk (ENOSPC) --------------------------------------------------------------------

# The demo polls every half hour; a refused write is retried by the next poll, so the tests let
# the coordinators poll every few seconds from the start on (plugin `poll:<seconds>`).
FAST_POLL = 8


@pytest.fixture
def full_disk(tmp_path: Path) -> Generator[FullDisk]:
    """A disk that can fill up: a real tmpfs where one mounts, else ENOSPC injected.

    Requested before make_home_assistant, so Home Assistant stops before the tmpfs goes.
    """
    disk, why = make_disk(tmp_path)
    print(f"full disk: {why}")
    try:
        yield disk
    finally:
        disk.close()


def _statistic_ids(ha: HomeAssistantProcess) -> int:
    """How many `meterlake:` statistics have rows (0 while the database is busy or new)."""
    try:
        return len(read_statistics(ha.db))
    except sqlite3.Error:
        return 0


def _log_count(ha: HomeAssistantProcess, text: str) -> int:
    if not ha.log_path.exists():
        return 0
    return ha.log_path.read_text(encoding="utf-8", errors="replace").count(text)


def _check_recovered_from_full_disk(ha: HomeAssistantProcess) -> None:
    """No repair issue left, no retry pending, no temporary file, every dataset readable."""
    entry_id = _entry_id(ha)
    assert f"archive_unwritable_{entry_id}" not in read_issues(ha.config)
    store = read_storage(ha.config, f"meterlake.{entry_id}")
    assert not (store or {}).get("retry_from"), f"a retry is still pending: {store}"
    temps = sorted(str(p) for p in ha.archive_root.glob("**/.*.tmp"))
    assert not temps, f"temporary files left: {temps}"
    assert not hive_read_problems(ha.archive_root), hive_read_problems(ha.archive_root)


@pytest.mark.faults_slow
def test_disk_full_in_steady_state(
    full_disk: FullDisk, make_home_assistant: HomeAssistantFactory
) -> None:
    disk = full_disk
    ha = make_home_assistant(backfill_days=SHORT_BACKFILL_DAYS, **disk.options())
    disk.attach(ha)
    began = time.monotonic()
    ha.start(f"{disk.fault()};poll:{FAST_POLL}")
    settled = wait_for_statistics(ha, timeout=START_TIMEOUT)
    assert settled.caught_up, f"the start did not settle: {settled.reason}"
    assert not ha.notes("refused"), "a write was refused before the disk filled"

    disk.fill()
    filled = time.monotonic()
    ha.wait_until(
        lambda: len(ha.notes("refused")) >= 2,
        60,
        what="archive writes refused for ENOSPC",
        while_running=True,
    )
    assert _log_count(ha, "Cannot write the archive") >= 1, "the user was not told"
    writable = _log_count(ha, "is writable again")
    refused = len(ha.notes("refused"))
    disk.free()
    freed = time.monotonic()
    ha.wait_until(
        lambda: _log_count(ha, "is writable again") > writable,
        60,
        what="an archive write after the disk was freed",
        while_running=True,
    )
    agreed = wait_for_agreement(ha, timeout=RECOVERY_TIMEOUT)
    stopped = ha.stop()

    result = compare(read_statistics(ha.db), read_archive(ha.archive_root), ha.expected_window())
    _record(1, result)
    print(
        f"{disk.kind} disk full after {filled - began:.1f} s for {freed - filled:.1f} s "
        f"({refused} writes refused); {agreed.reason} {agreed.seconds:.1f} s after; "
        f"{result.report()}"
    )
    assert result == (0, 0, 0), f"after a full disk:\n{result.report()}"
    _check_recovered_from_full_disk(ha)
    assert stopped == 0, f"Home Assistant did not stop cleanly ({stopped})"


@pytest.mark.faults_slow
def test_disk_full_during_backfill(
    full_disk: FullDisk, make_home_assistant: HomeAssistantFactory
) -> None:
    disk = full_disk
    ha = make_home_assistant(backfill_days=DAMAGE_BACKFILL_DAYS, **disk.options())
    disk.attach(ha)
    began = time.monotonic()
    ha.start(f"{disk.fault_during_backfill()};poll:{FAST_POLL}")
    ha.wait_until(
        lambda: ha.started() and len(ha.notes("refused")) >= 1,
        START_TIMEOUT,
        what="the backfill running out of disk",
        while_running=True,
    )
    # The statistics import what the source delivered, the archive holds part of it.
    ha.wait_until(
        lambda: _statistic_ids(ha) >= 5,
        START_TIMEOUT,
        what="statistics of the backfill",
        while_running=True,
    )
    during = compare(read_statistics(ha.db), read_archive(ha.archive_root), ha.expected_window())
    assert during.rows_lost > 0, f"the disk filled after the backfill: {during.report()}"
    refused = len(ha.notes("refused"))
    writable = _log_count(ha, "is writable again")
    disk.free()
    freed = time.monotonic()
    ha.wait_until(
        lambda: _log_count(ha, "is writable again") > writable,
        60,
        what="an archive write after the disk was freed",
        while_running=True,
    )
    agreed = wait_for_agreement(ha, timeout=RECOVERY_TIMEOUT)
    stopped = ha.stop()

    result = compare(read_statistics(ha.db), read_archive(ha.archive_root), ha.expected_window())
    _record(1, result)
    print(
        f"{disk.kind} disk full during the backfill, freed after {freed - began:.1f} s "
        f"({refused} writes refused, {during.rows_lost} slots missing then); {agreed.reason} "
        f"{agreed.seconds:.1f} s after; {result.report()}"
    )
    assert result == (0, 0, 0), f"after a full disk during the backfill:\n{result.report()}"
    _check_recovered_from_full_disk(ha)
    assert stopped == 0, f"Home Assistant did not stop cleanly ({stopped})"


# The backfill action's windows are 30 days, oldest first: 62 days make three, the oldest two
# days long (services.backfill_windows).
ACTION_BACKFILL_DAYS = 62
ACTIONS_FILE = "meterlake_faults.do"


def _do(ha: HomeAssistantProcess, command: str, timeout: float = 120.0) -> str:
    """Have the plugin run `command` (`backfill <days>`, `poll`); its `did` marker line."""
    done = len(ha.notes(f"did {command}:"))
    (ha.config / ACTIONS_FILE).write_text(command, encoding="utf-8")
    ha.wait_until(
        lambda: len(ha.notes(f"did {command}:")) > done,
        timeout,
        what=f"the plugin to run {command!r}",
        while_running=True,
    )
    return ha.notes(f"did {command}:")[-1].split(" did ", 1)[1]


@pytest.mark.faults_slow
def test_disk_full_during_the_backfill_action(
    full_disk: FullDisk, make_home_assistant: HomeAssistantFactory
) -> None:
    """The oldest window is refused, the disk frees, the later windows are stored.

    The backfill moves the watermark to now, so only `retry_from` makes the next poll reach
    back to the refused window.
    """
    disk = full_disk
    ha = make_home_assistant(backfill_days=SHORT_BACKFILL_DAYS, **disk.options())
    disk.attach(ha)
    began = time.monotonic()
    ha.start(f"{disk.fault(free_after=1)};actions")
    settled = wait_for_statistics(ha, timeout=START_TIMEOUT)
    assert settled.caught_up, f"the start did not settle: {settled.reason}"
    window = ha.expected_window(ACTION_BACKFILL_DAYS)

    disk.fill()
    response = _do(ha, f"backfill {ACTION_BACKFILL_DAYS}")
    assert "error" not in response and "failed" not in response, response
    refused = ha.notes("refused")
    assert len(refused) == 1, f"expected the first write refused, then a free disk: {refused}"
    assert ha.notes("freed"), "the disk was not freed"
    behind = compare(read_statistics(ha.db), read_archive(ha.archive_root), window)
    assert behind.rows_lost > 0, f"the refused window is archived already: {behind.report()}"
    key = f"meterlake.{_entry_id(ha)}"
    ha.wait_until(
        lambda: ELECTRICITY in ((read_storage(ha.config, key) or {}).get("retry_from") or {}),
        30,
        what="the refused window in the store's retry_from",
        while_running=True,
    )
    polled = _do(ha, "poll")
    agreed = wait_for_agreement(ha, timeout=RECOVERY_TIMEOUT, backfill_days=ACTION_BACKFILL_DAYS)
    stopped = ha.stop()

    result = compare(read_statistics(ha.db), read_archive(ha.archive_root), window)
    _record(1, result)
    print(
        f"{disk.kind} disk full for the first window of a {ACTION_BACKFILL_DAYS}-day backfill "
        f"({refused[0].split(' refused ', 1)[1]}); {behind.rows_lost} slots missing after it; "
        f"poll {polled}; {agreed.reason} {agreed.seconds:.1f} s after "
        f"({time.monotonic() - began:.1f} s in all); {result.report()}"
    )
    assert result == (0, 0, 0), f"after a backfill on a full disk:\n{result.report()}"
    _check_recovered_from_full_disk(ha)
    assert stopped == 0, f"Home Assistant did not stop cleanly ({stopped})"


# -- 3. a foreign statistic under a meterlake: id -----------------------------------------------

FOREIGN_OBJECT = "demo_electricity_cost"
FOREIGN = f"meterlake:{FOREIGN_OBJECT}"


@pytest.mark.faults_slow
def test_foreign_statistic_is_left_alone(make_home_assistant: HomeAssistantFactory) -> None:
    ha = make_home_assistant(backfill_days=SHORT_BACKFILL_DAYS)
    # Before MeterLake's first start: Home Assistant without the entry, the plugin adds a cost
    # statistic in EUR (the demo's cost is in GBP) under MeterLake's id.
    entries = ha.config / ".storage" / "core.config_entries"
    saved = entries.read_bytes()
    entries.unlink()
    began = time.monotonic()
    ha.start(f"foreign:{FOREIGN_OBJECT}:EUR")
    ha.wait_until(
        lambda: ha.notes("fired"), START_TIMEOUT, what="the foreign statistic", while_running=True
    )
    assert ha.stop() == 0
    entries.write_bytes(saved)
    foreign_rows = read_statistics(ha.db)[FOREIGN]
    assert read_metadata(ha.db)[FOREIGN].unit == "EUR"
    assert [row.sum for row in foreign_rows] == [10.0, 20.0, 30.0]

    ha.start()
    settled = wait_for_agreement(ha, timeout=START_TIMEOUT, skip={FOREIGN})
    stopped = ha.stop()

    stats = read_statistics(ha.db)
    archive = read_archive(ha.archive_root)
    result = compare(stats, archive, ha.expected_window(), skip={FOREIGN})
    _record(1, result)
    print(
        f"foreign {FOREIGN} in EUR; MeterLake start after {time.monotonic() - began:.1f} s, "
        f"{settled.reason} after {settled.seconds:.1f} s; {result.report()}"
    )
    assert result == (0, 0, 0), f"with a foreign statistic:\n{result.report()}"
    assert stats[FOREIGN] == foreign_rows, "MeterLake changed the foreign statistic's rows"
    meta = read_metadata(ha.db)
    assert meta[FOREIGN].unit == "EUR", f"MeterLake changed its unit: {meta[FOREIGN]}"
    assert FOREIGN in archive.hourly, "the archive has the cost MeterLake could not import"
    issue = f"foreign_statistic_{FOREIGN_OBJECT}"
    assert issue in read_issues(ha.config), f"no repair issue {issue}"
    problems = metadata_problems(meta, archive, skip={FOREIGN})
    assert not problems, "\n".join(problems)
    assert _log_count(ha, f"Statistic {FOREIGN} already exists with other metadata") >= 1
    assert stopped == 0, f"Home Assistant did not stop cleanly ({stopped})"


# -- 4. junk values from the source -------------------------------------------------------------

# The most one hour of the demo's electricity holds (kWh): peaks x winter x the night anomaly.
PLAUSIBLE_HOUR_KWH = 25.0


@pytest.mark.faults_slow
def test_junk_values_never_reach_archive_or_statistics(
    make_home_assistant: HomeAssistantFactory,
) -> None:
    ha = make_home_assistant(backfill_days=SHORT_BACKFILL_DAYS)
    now = datetime.now(UTC)
    slot = timedelta(seconds=SLOT)
    # An old slot (fetched once, by the backfill) and a recent one (every poll's overlap).
    old = epoch(now - timedelta(days=10)) // SLOT * SLOT + 3 * SLOT
    recent = epoch(now - timedelta(hours=5)) // SLOT * SLOT
    assert datetime.fromtimestamp(recent, UTC) + slot < now - timedelta(hours=1)
    junk = {ELECTRICITY: {old, recent}}
    began = time.monotonic()
    ha.start(f"junk:{old}=1e12,{recent}=true")
    settled = wait_for_agreement(ha, timeout=START_TIMEOUT, rejected=junk)
    stopped = ha.stop()

    served = [line for line in ha.marker_lines() if " fired junk " in line]
    stats = read_statistics(ha.db)
    archive = read_archive(ha.archive_root)
    result = compare(stats, archive, ha.expected_window(), rejected=junk)
    _record(len(served), result)
    print(
        f"junk at {old}=1e12 and {recent}=true; {settled.reason} after {settled.seconds:.1f} s "
        f"({time.monotonic() - began:.1f} s in all); {result.report()}"
    )
    assert len(served) == 2, f"the junk was not served: {served}"
    assert result == (0, 0, 0), f"with junk values:\n{result.report()}"
    stored = archive.slots[ELECTRICITY]
    assert not {old, recent} & stored, "a junk slot reached the archive"
    for stat_id, rows in stats.items():
        assert all(math.isfinite(row.sum or 0.0) for row in rows), f"{stat_id}: a sum not finite"
    biggest = max(row.state or 0.0 for row in stats[f"meterlake:{ELECTRICITY}_consumption"])
    assert biggest < PLAUSIBLE_HOUR_KWH, f"an hour of {biggest} kWh reached the statistics"
    rejected = [row for row in read_audit(ha.archive_root) if row["endpoint"] == "rejected"]
    reasons = " ".join(str(row["error"]) for row in rejected)
    assert rejected, "no `rejected` row in the audit dataset"
    assert "implausible_value" in reasons, reasons
    assert "boolean_value" in reasons, reasons
    assert stopped == 0, f"Home Assistant did not stop cleanly ({stopped})"


# -- 5. invalid watermark store and options -----------------------------------------------------

FUTURE = "2099-01-01T00:00:00+00:00"
INVALID_OPTIONS = {"backfill_days": "abc", "gas_calorific_value": "abc", "gas_volume_correction": 0}


def _check_loaded(ha: HomeAssistantProcess, since: datetime) -> None:
    """The entry set up: its entities have real states recorded after `since`."""
    states = loaded_entity_states(ha.config, since)
    live = {entity: state for entity, state in states.items() if state != "unavailable"}
    assert live, f"no MeterLake entity has a state since {since} (entry not loaded): {states}"


def _check_invalid_options_issue(ha: HomeAssistantProcess, keys: set[str]) -> None:
    entry_id = _entry_id(ha)
    issue = read_issues(ha.config).get(f"invalid_options_{entry_id}")
    assert issue is not None, "no invalid_options repair issue"
    assert issue["is_persistent"], issue
    named = set(str(issue["translation_placeholders"]["keys"]).split(", "))
    assert named == keys, f"the issue names {named}, expected {keys}"
    options = meterlake_entry(ha.config)["options"]
    assert {key: options[key] for key in keys} == {key: DEFAULT_OPTIONS[key] for key in keys}


@pytest.mark.faults_slow
def test_future_watermarks_and_invalid_options_over_an_archive(
    make_home_assistant: HomeAssistantFactory,
) -> None:
    ha = make_home_assistant(backfill_days=SHORT_BACKFILL_DAYS)
    began = time.monotonic()
    _settle_first_start(ha)
    entry_id = _entry_id(ha)
    key = f"meterlake.{entry_id}"
    before = read_storage(ha.config, key)["watermarks"]
    write_storage(
        ha.config,
        key,
        {"watermarks": dict.fromkeys(before, FUTURE), "retry_from": {GAS: FUTURE}},
    )
    set_entry_options(ha.config, INVALID_OPTIONS)

    relaunch = datetime.now(UTC)
    ha.start()
    settled = wait_for_agreement(ha, timeout=RECOVERY_TIMEOUT)
    stopped = ha.stop()

    result = compare(read_statistics(ha.db), read_archive(ha.archive_root), ha.expected_window())
    _record(2, result)
    print(
        f"watermarks {FUTURE} and options {INVALID_OPTIONS}: {settled.reason} after "
        f"{settled.seconds:.1f} s ({time.monotonic() - began:.1f} s in all); {result.report()}"
    )
    assert result == (0, 0, 0), f"after an invalid store:\n{result.report()}"
    _check_loaded(ha, relaunch)
    _check_invalid_options_issue(ha, set(INVALID_OPTIONS))
    after = read_storage(ha.config, key)
    assert FUTURE not in json.dumps(after), f"a 2099 time survived: {after}"
    for meter, when in after["watermarks"].items():
        moment = datetime.fromisoformat(when)
        assert datetime.fromisoformat(before[meter]) <= moment <= datetime.now(UTC), after
    assert _log_count(ha, "in the watermark store") >= 1, "the dropped store was not logged"
    assert stopped == 0, f"Home Assistant did not stop cleanly ({stopped})"


@pytest.mark.faults_slow
def test_list_store_and_invalid_backfill_on_first_start(
    make_home_assistant: HomeAssistantFactory,
) -> None:
    ha = make_home_assistant(backfill_days="abc")
    key = f"meterlake.{_entry_id(ha)}"
    write_storage(ha.config, key, [FUTURE, {"demo_electricity": FUTURE}])
    began = time.monotonic()
    launch = datetime.now(UTC)
    ha.start()
    # The invalid backfill is reset to the default: a year of history.
    settled = wait_for_agreement(ha, timeout=2 * START_TIMEOUT, backfill_days=DEFAULT_BACKFILL_DAYS)
    stopped = ha.stop()

    stats = read_statistics(ha.db)
    window = ha.expected_window(DEFAULT_BACKFILL_DAYS)
    result = compare(stats, read_archive(ha.archive_root), window)
    _record(2, result)
    print(
        f"list store and backfill 'abc': {settled.reason} after {settled.seconds:.1f} s "
        f"({time.monotonic() - began:.1f} s in all); {result.report()}"
    )
    assert result == (0, 0, 0), f"after a list store:\n{result.report()}"
    _check_loaded(ha, launch)
    _check_invalid_options_issue(ha, {"backfill_days"})
    first = stats[f"meterlake:{ELECTRICITY}_consumption"][0].start
    assert first <= window.latest_start, "the statistics do not reach back a year"
    after = read_storage(ha.config, key)
    assert isinstance(after, dict), f"the store was not rebuilt: {after}"
    assert set(after["watermarks"]) == {ELECTRICITY, GAS}, after
    assert stopped == 0, f"Home Assistant did not stop cleanly ({stopped})"


# -- 6. two writer processes and a reader on one archive ----------------------------------------

WORKERS_TIMEOUT = 180.0


def test_two_writer_processes_and_a_reader(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    go = tmp_path / "go"
    done = tmp_path / "done"
    report = tmp_path / "reader.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST")}
    module = [sys.executable, "-m", "tests.faults.archive_workers"]
    ready = [tmp_path / f"ready-{name}" for name in ("w0", "w1", "reader")]
    procs = [
        subprocess.Popen(
            [*module, "writer", str(root), str(n), str(ready[n]), str(go)],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (0, 1)
    ]
    procs.append(
        subprocess.Popen(
            [*module, "reader", str(root), str(ready[2]), str(go), str(done), str(report)],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    began = time.monotonic()
    try:
        deadline = began + WORKERS_TIMEOUT
        while not all(path.exists() for path in ready):
            dead = [proc.communicate()[1] for proc in procs if proc.poll() is not None]
            assert not dead, dead
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.02)
        go.touch()
        writers = [proc.communicate(timeout=WORKERS_TIMEOUT)[1] for proc in procs[:2]]
        wrote = time.monotonic()
        done.touch()
        reader = procs[2].communicate(timeout=WORKERS_TIMEOUT)[1]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in procs] == [0, 0, 0], [*writers, reader]

    back = open_archive(str(root), config_dir="/").read_intervals(workers.METER)
    starts = [int(ts.timestamp()) for ts in back["start"]]
    allowed = workers.expected()
    lost = sorted(allowed.keys() - set(starts))
    duplicates = len(starts) - len(set(starts))
    wrong = [
        (start, value)
        for start, value in zip(starts, back["value"].tolist(), strict=True)
        if value not in allowed.get(start, set())
    ]
    seen = json.loads(report.read_text(encoding="utf-8"))
    TALLY.record(injected=1, rows_lost=len(lost), sums_wrong=len(wrong))
    print(
        f"two writers: {len(starts)} rows of {len(allowed)} in {wrote - began:.1f} s; lost "
        f"{len(lost)}, duplicates {duplicates}, wrong values {len(wrong)}; reader: {seen}"
    )
    assert (len(lost), duplicates, len(wrong)) == (0, 0, 0), (lost[:5], wrong[:5])
    assert seen["reads"] > 0, seen
    assert seen["errors"] == [], seen["errors"][:3]
    assert seen["duplicates_seen"] == 0, seen
    assert seen["shrank"] == 0, seen
    assert seen["last"] == len(allowed), seen
    hidden = sorted(str(p.relative_to(root)) for p in root.glob("**/.*"))
    assert not hidden, f"lock or temporary files left: {hidden}"
