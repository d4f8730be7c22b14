"""Several processes writing one local archive: no lost rows, no one else's live temp deleted."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path
import subprocess
import sys
import threading
import time

import duckdb
import pandas as pd
import pytest

from custom_components.meterlake.archive import Archive, open_archive

from .test_archive import intervals

METER = "octopus_electricity_1000000000000"
REPO = Path(__file__).resolve().parents[1]
BATCHES = 40
PER_MONTH = BATCHES * 2 * 2  # 2 writers, 2 rows per month in each batch

# One writer process: waits for the go file, then writes BATCHES small batches. Batch b of
# writer w holds 2 half-hours in January and the same 2 in February, disjoint from every other
# batch: writer w owns the slots whose index is w modulo 2. Every batch touches both partitions.
WRITER = """
import sys, time, types
from pathlib import Path

import pandas as pd

# The archive needs no Home Assistant (a notebook imports it alone): skip the integration's
# __init__, whose Home Assistant imports would take most of each writer's start-up.
package = types.ModuleType("custom_components.meterlake")
package.__path__ = ["custom_components/meterlake"]
sys.modules["custom_components.meterlake"] = package

from custom_components.meterlake.archive import open_archive

root, meter, writer, batches, ready, go = sys.argv[1:]
writer, batches = int(writer), int(batches)
archive = open_archive(root, config_dir="/")
frames = []
for batch in range(batches):
    starts = pd.DatetimeIndex(
        [
            pd.Timestamp(f"2024-{month:02d}-01T00:00Z") + pd.Timedelta(minutes=30 * slot)
            for month in (1, 2)
            for slot in ((batch * 2 + i) * 2 + writer for i in range(2))
        ]
    )
    frames.append(
        pd.DataFrame(
            {
                "meter": meter,
                "supplier": "octopus",
                "start": starts,
                "end": starts + pd.Timedelta(minutes=30),
                "value": float(writer + 1),
                "ingested_at": pd.Timestamp("2024-03-01T00:00Z"),
            }
        )
    )
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.001)
for frame in frames:
    archive.write_intervals(frame)
"""


def _expected_starts() -> list[pd.Timestamp]:
    return sorted(
        pd.Timestamp(f"2024-{month:02d}-01T00:00Z") + pd.Timedelta(minutes=30 * slot)
        for month in (1, 2)
        for slot in range(PER_MONTH)
    )


def _run_writers(root: Path, tmp_path: Path, count: int = 2) -> None:
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(count)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", WRITER, str(root), METER]
    procs = [
        subprocess.Popen(
            [*args, str(n), str(BATCHES), str(ready[n]), str(go)],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all(path.exists() for path in ready):
            dead = [proc for proc in procs if proc.poll() is not None]
            assert not dead, [proc.communicate()[1] for proc in dead]
            assert time.monotonic() < deadline, "writers did not start"
            time.sleep(0.01)
        go.touch()  # both processes are past their imports: they write at the same time
        errors = [proc.communicate(timeout=300)[1] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in procs] == [0] * count, errors


def test_two_processes_writing_the_same_partitions_lose_no_row(tmp_path: Path) -> None:
    root = tmp_path / "meterlake"
    _run_writers(root, tmp_path)

    back = open_archive(str(root), config_dir="/").read_intervals(METER)
    assert back["start"].tolist() == _expected_starts()  # all 320 rows, once each, in order
    # Each row holds its own writer's value: writer w wrote the slots with index w modulo 2
    # (counted from January 1st; January has an even number of half-hours).
    slots = (back["start"] - pd.Timestamp("2024-01-01T00:00Z")) // pd.Timedelta(minutes=30)
    assert (back["value"] == slots % 2 + 1).all()
    # What any other reader sees: one data file per month, no lock or temporary file left.
    meter_dir = root / "consumption" / "supplier=octopus" / f"meter={METER}"
    assert sorted(str(p.relative_to(meter_dir)) for p in meter_dir.rglob("*")) == [
        "month=2024-01",
        "month=2024-01/data.parquet",
        "month=2024-02",
        "month=2024-02/data.parquet",
    ]
    rows = duckdb.sql(
        f"""SELECT month, count(*), count(DISTINCT start)
            FROM read_parquet('{root}/consumption/**/*.parquet', hive_partitioning=1)
            GROUP BY month ORDER BY month"""
    ).fetchall()
    assert rows == [("2024-01", PER_MONTH, PER_MONTH), ("2024-02", PER_MONTH, PER_MONTH)]


def _partition(root: Path, month: str) -> Path:
    return root / "consumption" / "supplier=octopus" / f"meter={METER}" / f"month={month}"


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive("meterlake", config_dir=str(tmp_path))


def test_fresh_temporary_file_of_another_process_survives_a_write(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_intervals(intervals(periods=4))
    folder = _partition(tmp_path / "meterlake", "2024-01")
    # Another process is writing this partition right now (and took no lock, e.g. an older
    # MeterLake): its temporary file must still be there for its rename.
    foreign = folder / ".data.parquet.0123456789abcdef0123456789abcdef.tmp"
    foreign.write_bytes(b"half-written parquet")

    archive.write_intervals(intervals(periods=8, seed=2))

    assert foreign.read_bytes() == b"half-written parquet"
    assert len(archive.read_intervals(METER)) == 8


def test_temporary_file_older_than_an_hour_is_removed_by_a_write(
    tmp_path: Path, archive: Archive
) -> None:
    archive.write_intervals(intervals(periods=4))
    folder = _partition(tmp_path / "meterlake", "2024-01")
    dead = folder / ".data.parquet.0123456789abcdef0123456789abcdef.tmp"
    dead.write_bytes(b"left by a write that died")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(dead, (two_hours_ago, two_hours_ago))

    archive.write_intervals(intervals(periods=8, seed=2))

    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet"]
    assert len(archive.read_intervals(METER)) == 8


def test_lock_file_is_gone_after_a_write_and_invisible_to_globs_during_it(
    tmp_path: Path, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "meterlake"
    archive.write_intervals(intervals(periods=4))
    seen: list[list[str]] = []
    real_replace = os.replace

    def look_then_replace(src: str, dst: str) -> None:
        # Mid-write, while the lock is held: the partition folder as a reader sees it.
        seen.append(sorted(p.name for p in Path(dst).parent.iterdir()))
        seen.append(
            [
                str(r[0])
                for r in duckdb.sql(
                    f"SELECT count(*) FROM read_parquet('{root}/consumption/**/*.parquet')"
                ).fetchall()
            ]
        )
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", look_then_replace)
    archive.write_intervals(intervals(periods=8, seed=2))
    monkeypatch.undo()

    names, count = seen
    assert ".data.parquet.lock" in names  # hidden: no glob or hive discovery takes it
    assert [name for name in names if not name.startswith(".")] == ["data.parquet"]
    assert count == ["4"]
    assert sorted(p.name for p in _partition(root, "2024-01").iterdir()) == ["data.parquet"]


def test_filesystem_without_flock_still_writes_and_says_so_once(
    tmp_path: Path,
    archive: Archive,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from custom_components.meterlake import archive as archive_mod

    def no_locks(_fd: int, _op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    # A fresh process: nothing logged yet.
    monkeypatch.setattr(archive_mod, "_NO_FLOCK_LOGGED", threading.Event())
    with caplog.at_level(logging.DEBUG, logger="custom_components.meterlake.archive"):
        archive.write_intervals(intervals(periods=4))
        archive.write_intervals(intervals(start=pd.Timestamp("2024-02-01T00:00Z"), periods=4))

    assert len(archive.read_intervals(METER)) == 8
    notes = [r for r in caplog.records if "No file lock" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.DEBUG
    assert "No locks available" in notes[0].getMessage()
