"""The processes of the two-writer fault test: two writers and a reader on one archive.

    python -m tests.faults.archive_workers writer <root> <0|1> <ready> <go>
    python -m tests.faults.archive_workers reader <root> <ready> <go> <done> <report.json>

Writer 0 covers January and February 2024 of one meter, writer 1 February and March: in
February both write the same slots (the same keys, their own values), so every February write
of one merges into the partition the other is replacing. Each batch touches both of a writer's
months. Each writer opens the archive as a notebook would (`open_archive`, no Home Assistant).
The reader scans the archive with DuckDB's hive reader until `<done>` exists and reports what
it saw: failed reads, a key seen twice, a total that shrank.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
import time
from typing import Any

METER = "demo_electricity"
SUPPLIER = "demo"
MONTHS = {0: ("2024-01", "2024-02"), 1: ("2024-02", "2024-03")}
BATCHES = 24
SLOTS_PER_BATCH = 12
HALF_HOUR = 1800


def _month_start(month: str) -> int:
    from datetime import UTC, datetime

    year, number = (int(part) for part in month.split("-"))
    return int(datetime(year, number, 1, tzinfo=UTC).timestamp())


def slots(writer: int, batch: int) -> list[int]:
    """Slot starts (epoch seconds) of one batch of one writer, in both of its months."""
    first = batch * SLOTS_PER_BATCH
    return [
        _month_start(month) + HALF_HOUR * index
        for month in MONTHS[writer]
        for index in range(first, first + SLOTS_PER_BATCH)
    ]


def value_of(writer: int) -> float:
    """Each writer's value for every row it writes."""
    return float(writer + 1)


def expected() -> dict[int, set[float]]:
    """Slot start -> the values the archive may hold there (both writers' in February)."""
    out: dict[int, set[float]] = {}
    for writer in MONTHS:
        for batch in range(BATCHES):
            for start in slots(writer, batch):
                out.setdefault(start, set()).add(value_of(writer))
    return out


def _wait(path: Path) -> None:
    while not path.exists():
        time.sleep(0.001)


def write(root: str, writer: int, ready: Path, go: Path) -> None:
    """Write BATCHES batches into the archive at `root` once `go` exists."""
    import pandas as pd

    from custom_components.meterlake.archive import open_archive

    archive = open_archive(root, config_dir="/")
    frames = []
    for batch in range(BATCHES):
        starts = pd.to_datetime(slots(writer, batch), unit="s", utc=True)
        frames.append(
            pd.DataFrame(
                {
                    "meter": METER,
                    "supplier": SUPPLIER,
                    "kind": "electricity",
                    "start": starts,
                    "end": starts + pd.Timedelta(minutes=30),
                    "value": value_of(writer),
                    "unit": "kWh",
                    "quality": "measured",
                }
            )
        )
    ready.touch()
    _wait(go)
    for frame in frames:
        archive.write_intervals(frame.assign(ingested_at=pd.Timestamp.now(tz="UTC")))


def read(root: str, ready: Path, go: Path, done: Path, report: Path) -> None:
    """Scan the archive until `done` exists (and once more after), then write the report."""
    import duckdb

    query = (
        f"SELECT count(*), count(DISTINCT start) FROM read_parquet("
        f"'{Path(root).as_posix()}/consumption/**/*.parquet', hive_partitioning = 1)"
    )
    seen: dict[str, Any] = {"reads": 0, "errors": [], "duplicates_seen": 0, "shrank": 0}
    last = 0
    connection = duckdb.connect()
    ready.touch()
    _wait(go)
    finished = False
    while not finished:
        finished = done.exists()  # one full read after the writers ended
        time.sleep(0.002)
        if not any(Path(root).glob("consumption/**/*.parquet")):
            continue
        try:
            rows, distinct = connection.execute(query).fetchone() or (0, 0)
        except duckdb.Error as err:
            seen["errors"].append(str(err))
            continue
        seen["reads"] += 1
        if rows != distinct:
            seen["duplicates_seen"] += 1
        if rows < last:
            seen["shrank"] += 1
        last = rows
    seen["last"] = last
    report.write_text(json.dumps(seen), encoding="utf-8")


def main(argv: list[str]) -> None:
    """Run one worker."""
    match argv:
        case ["writer", root, writer, ready, go]:
            write(root, int(writer), Path(ready), Path(go))
        case ["reader", root, ready, go, done, report]:
            read(root, Path(ready), Path(go), Path(done), Path(report))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
