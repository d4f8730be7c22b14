"""First-run import of 5 years of hourly consumption + cost into the real recorder (SQLite file).

Three contestants write the same 2 x 43,800 hourly rows (consumption + cost):

- floor:     two bare `async_add_external_statistics` calls with precomputed rows;
- tibber:    Home Assistant core's `TibberDataCoordinator._insert_statistics`, fed by a mocked
             pyTibber home (pyTibber itself is not installed: a stand-in module is registered);
- meterlake: `statistics.async_import_meter` from an interval-table frame.

Every run gets a fresh Home Assistant with a fresh SQLite recorder database in a temporary
directory (the recorder's per-row cost grows with the table, so a shared database would favour
whoever runs first). Rounds alternate the order; each contestant keeps its best wall time, and
process CPU seconds are printed too because the host is shared. Times run until the recorder
has committed.

A loop-lag probe records event-loop stalls and sorts them: a full garbage collection (seen
through gc.callbacks; it stops every thread and its length follows the whole heap), the loop
thread busy running code (its thread CPU time advanced), or the loop waiting for the GIL or a
CPU. A wrapper around the recorder's `import_statistics` times every recorder job. After the
first meterlake run, one incremental poll (3-day overlap window + one new hour) checks that
only the new hour is written.

Run: .venv/bin/python bench/statistics.py [hours] [rounds]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import gc
import json
import logging
from pathlib import Path
import sys
import tempfile
import time
import types
from typing import Any
from unittest.mock import patch

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HOURS = int(sys.argv[1]) if len(sys.argv) > 1 else 5 * 365 * 24
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
METER_KEY = "bench_electricity_1"
type Contestant = Callable[[Any, list[Any]], Awaitable["Run"]]


def _install_fake_pytibber() -> None:
    """pyTibber is not in the venv: any attribute of the stand-in is an exception class."""

    class _Stub(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            made = type(name, (Exception,), {})
            setattr(self, name, made)
            return made

    for name in ("tibber", "tibber.data_api", "tibber.exceptions", "tibber.const"):
        sys.modules.setdefault(name, _Stub(name))
    root = sys.modules["tibber"]
    root.data_api = sys.modules["tibber.data_api"]  # type: ignore[attr-defined]
    root.exceptions = sys.modules["tibber.exceptions"]  # type: ignore[attr-defined]


class FakeTibberHome:
    """What `_insert_statistics` reads from a pyTibber home, with the whole history."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.home_id = "96a14971-525a-4420-aae9-e5aedaa129ff"
        self.name = "Bench home"
        self.currency = "GBP"
        self._rows = rows
        self.hourly_consumption_data = rows[-720:]
        self.hourly_production_data: list[dict[str, Any]] = []

    async def get_historic_data(self, n_data: int, production: bool = False) -> list[Any]:
        return [] if production else self._rows[-n_data:]


@dataclass
class Stalls:
    """Event-loop stalls of one run, in milliseconds, by cause."""

    worst: float = 0.0
    gc: float = 0.0
    loop_busy: float = 0.0
    waiting: float = 0.0
    longest_gc: float = 0.0


class LoopProbe:
    """Sleeps 2 ms at a time and records how late it wakes, and why."""

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float, float]] = []
        self.collections: list[tuple[float, float]] = []
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.collections.append((self._gc_started, time.perf_counter()))

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            cpu = time.thread_time()
            await asyncio.sleep(0.002)
            lag = time.perf_counter() - before - 0.002
            if lag > 0.005:
                self.stalls.append((before + 0.002, lag, time.thread_time() - cpu))

    def start(self) -> None:
        self.stalls, self.collections = [], []
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> Stalls:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        gc.callbacks.remove(self._on_gc)
        out = Stalls()
        for at, lag, busy in self.stalls:
            in_gc = sum(
                max(0.0, min(at + lag, end) - max(at, begin)) for begin, end in self.collections
            )
            ms = lag * 1000
            out.worst = max(out.worst, ms)
            if in_gc >= lag / 2:
                out.gc = max(out.gc, ms)
            elif busy >= lag / 2:
                out.loop_busy = max(out.loop_busy, ms)
            else:
                out.waiting = max(out.waiting, ms)
        out.longest_gc = 1000 * max((end - begin for begin, end in self.collections), default=0)
        return out


@contextmanager
def recorder_jobs() -> Iterator[list[tuple[str, int, float]]]:
    """Time every recorder import job: (statistic_id, rows, seconds)."""
    from homeassistant.components.recorder import statistics as rec_stats

    jobs: list[tuple[str, int, float]] = []
    real = rec_stats.import_statistics

    def timed(instance: Any, metadata: Any, statistics: Any, table: Any) -> bool:
        rows = list(statistics)
        started = time.perf_counter()
        try:
            return bool(real(instance, metadata, rows, table))
        finally:
            jobs.append((metadata["statistic_id"], len(rows), time.perf_counter() - started))

    with patch.object(rec_stats, "import_statistics", timed):
        yield jobs


def make_data(hours: int) -> tuple[pd.DataFrame, list[dict[str, Any]], datetime]:
    """Hourly interval rows of one meter and the same hours as Tibber's API returns them."""
    from custom_components.meterlake.analytics.schema import INTERVAL_COLUMNS

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    start = end - timedelta(hours=hours)
    rng = np.random.default_rng(5)
    starts = pd.date_range(start, periods=hours, freq="h", tz=UTC)
    value = np.round(rng.uniform(0.1, 2.5, hours), 3)
    rate = np.round(rng.uniform(0.05, 0.45, hours), 4)
    frame = pd.DataFrame(
        {
            "meter": METER_KEY,
            "serial": "S1",
            "supplier": "demo",
            "kind": "electricity",
            "start": starts,
            "end": starts + pd.Timedelta(hours=1),
            "value": value,
            "unit": "kWh",
            "energy_kwh": np.nan,
            "rate": rate,
            "cost": value * rate,
            "currency": "GBP",
            "quality": "measured",
            "ingested_at": pd.Timestamp.now(tz=UTC),
        },
        columns=list(INTERVAL_COLUMNS),
    )
    local = starts.tz_convert("Europe/Stockholm")
    tibber_rows = [
        {"from": ts.isoformat(timespec="milliseconds"), "consumption": v, "totalCost": c}
        for ts, v, c in zip(local, value.tolist(), (value * rate).tolist(), strict=True)
    ]
    return frame, tibber_rows, start


@dataclass
class Run:
    """One contestant's run: wall and CPU seconds, stalls, recorder jobs."""

    name: str
    wall: float
    cpu: float
    stalls: Stalls
    jobs: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def longest_job(self) -> float:
        return max((seconds for _id, _rows, seconds in self.jobs), default=0.0)


async def with_recorder(body: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `body(hass)` in a fresh Home Assistant with a fresh SQLite recorder."""
    from homeassistant.components.recorder.models import StatisticData, StatisticMeanType
    from homeassistant.components.recorder.statistics import async_add_external_statistics
    from homeassistant.helpers import recorder as recorder_helper
    from homeassistant.helpers.recorder import get_instance
    from homeassistant.setup import async_setup_component
    from pytest_homeassistant_custom_component.common import async_test_home_assistant

    from custom_components.meterlake.statistics import async_recorder_done

    with tempfile.TemporaryDirectory() as tmp:
        async with async_test_home_assistant(config_dir=tmp) as hass:
            try:
                recorder_helper.async_initialize_recorder(hass)
                db_url = f"sqlite:///{Path(tmp) / 'home-assistant_v2.db'}"
                config = {"recorder": {"db_url": db_url, "commit_interval": 1}}
                assert await async_setup_component(hass, "recorder", config)
                await hass.async_block_till_done()
                await get_instance(hass).async_recorder_ready.wait()
                for name in ("sqlalchemy.engine", "homeassistant.components.recorder"):
                    logging.getLogger(name).setLevel(logging.WARNING)
                # Warm-up (connection, statement caches) on a throwaway statistic.
                warm = datetime(2020, 1, 1, tzinfo=UTC)
                async_add_external_statistics(
                    hass,
                    {
                        "mean_type": StatisticMeanType.NONE,
                        "has_sum": True,
                        "name": "warm",
                        "source": "bench",
                        "statistic_id": "bench:warm_up",
                        "unit_class": None,
                        "unit_of_measurement": "kWh",
                    },
                    [
                        StatisticData(start=warm + timedelta(hours=i), state=1.0, sum=i + 1.0)
                        for i in range(500)
                    ],
                )
                await async_recorder_done(hass)
                return await body(hass)
            finally:
                await hass.async_stop()


async def measure(name: str, hass: Any, work: Callable[[], Awaitable[Any]], jobs: list[Any]) -> Run:
    """Run one contestant until the recorder committed; print and return its figures."""
    from custom_components.meterlake.statistics import async_recorder_done

    # Recorder.async_block_till_done returns early while the recorder still runs the last
    # task it took off the queue; a SynchronizeTask waits for everything queued before it.
    await async_recorder_done(hass)
    jobs.clear()
    probe = LoopProbe()
    probe.start()
    cpu = time.process_time()
    started = time.perf_counter()
    await work()
    await async_recorder_done(hass)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    run = Run(name, wall, cpu, await probe.stop(), list(jobs))
    s = run.stalls
    print(
        f"{name:>10}: {wall:7.2f} s wall {cpu:7.2f} s cpu {len(run.jobs):4d} recorder jobs "
        f"(longest {run.longest_job:5.2f} s) | loop stall {s.worst:5.1f} ms: full GC "
        f"{s.gc:5.1f}, loop busy {s.loop_busy:5.1f}, waiting GIL/CPU {s.waiting:5.1f}"
    )
    return run


async def main() -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    _install_fake_pytibber()

    import homeassistant  # noqa: F401  (first, so it installs probatio as voluptuous itself)
    from homeassistant.components.recorder.models import (
        StatisticData,
        StatisticMeanType,
        StatisticMetaData,
    )
    from homeassistant.components.recorder.statistics import (
        async_add_external_statistics,
        get_last_statistics,
    )
    from homeassistant.components.tibber.coordinator import TibberDataCoordinator
    from homeassistant.helpers.recorder import get_instance

    from custom_components.meterlake import statistics as stats
    from custom_components.meterlake.sources.base import MeterInfo

    frame, tibber_rows, first = make_data(HOURS)
    value = frame["value"].to_numpy()
    cost = frame["cost"].to_numpy()
    starts = [ts.to_pydatetime() for ts in frame["start"]]
    meter = MeterInfo(
        key=METER_KEY,
        supplier="demo",
        kind="electricity",
        unit="kWh",
        name="Bench",
        currency="GBP",
        cadence_minutes=60,
    )

    def precomputed(values: np.ndarray) -> list[StatisticData]:
        return [
            StatisticData(start=s, state=v, sum=t)
            for s, v, t in zip(starts, values.tolist(), np.cumsum(values).tolist(), strict=True)
        ]

    def floor_metadata(unit: str) -> StatisticMetaData:
        return StatisticMetaData(
            mean_type=StatisticMeanType.NONE,
            has_sum=True,
            name=f"floor {unit}",
            source="bench",
            statistic_id=f"bench:floor_{unit.lower()}",
            unit_class="energy" if unit == "kWh" else None,
            unit_of_measurement=unit,
        )

    checks: dict[str, Any] = {}

    async def run_floor(hass: Any, jobs: list[Any]) -> Run:
        rows = (precomputed(value), precomputed(cost))  # before the clock starts

        async def work() -> None:
            for unit, batch in zip(("kWh", "GBP"), rows, strict=True):
                async_add_external_statistics(hass, floor_metadata(unit), batch)

        return await measure("floor", hass, work, jobs)

    async def run_tibber(hass: Any, jobs: list[Any]) -> Run:
        home = FakeTibberHome(tibber_rows)
        connection = types.SimpleNamespace(name="bench", get_homes=lambda: [home])

        async def get_client() -> Any:
            return connection

        coordinator = types.SimpleNamespace(hass=hass, _async_get_client=get_client)

        async def work() -> None:
            await TibberDataCoordinator._insert_statistics(coordinator)  # type: ignore[arg-type]

        return await measure("tibber", hass, work, jobs)

    async def run_meterlake(hass: Any, jobs: list[Any]) -> Run:
        results: list[Any] = []

        async def work() -> None:
            results.append(await stats.async_import_meter(hass, meter, frame))

        run = await measure("meterlake", hass, work, jobs)
        assert results[0].hours_written == HOURS, results[0]
        assert results[0].first_hour == first
        if "poll" not in checks:
            # Incremental poll: a 3-day overlap window plus one new hour.
            new_hour = frame.iloc[[-1]].copy()
            new_hour["start"] += pd.Timedelta(hours=1)
            new_hour["end"] += pd.Timedelta(hours=1)
            new_hour[["value", "cost"]] = [1.234, 1.234 * 0.25]
            window = pd.concat([frame.iloc[-72:], new_hour], ignore_index=True)
            jobs.clear()
            checks["poll"] = await stats.async_import_meter(hass, meter, window)
            checks["poll_rows"] = sum(rows for _id, rows, _s in jobs)
            consumption = stats.statistic_id(meter.key, "consumption")
            last = await get_instance(hass).async_add_executor_job(
                get_last_statistics, hass, 1, consumption, False, {"sum"}
            )
            stored = float(last[consumption][0]["sum"] or 0.0)
            checks["sum_error"] = abs(stored - (float(np.sum(value)) + 1.234))
        return run

    contestants: dict[str, Contestant] = {
        "floor": run_floor,
        "tibber": run_tibber,
        "meterlake": run_meterlake,
    }
    runs: dict[str, list[Run]] = {name: [] for name in contestants}
    print(f"hours: {HOURS} per statistic, {2 * HOURS} rows per run, {ROUNDS} round(s)")
    with recorder_jobs() as jobs:
        for round_ in range(1, ROUNDS + 1):
            order = list(contestants) if round_ % 2 else list(reversed(contestants))
            print(f"round {round_}:")
            for name in order:
                body = contestants[name]

                async def contest(hass: Any, body: Contestant = body) -> Run:
                    return await body(hass, jobs)

                runs[name].append(await with_recorder(contest))

    best = {name: min(found, key=lambda run: run.wall) for name, found in runs.items()}
    ours, tibber, floor = best["meterlake"], best["tibber"], best["floor"]
    our_jobs = [job for run in runs["meterlake"] for job in run.jobs]
    max_job = max(seconds for _id, _rows, seconds in our_jobs)
    worst = max((run.stalls for run in runs["meterlake"]), key=lambda s: s.worst)
    poll, poll_rows, sum_error = checks["poll"], checks["poll_rows"], checks["sum_error"]
    print(
        f"best wall s: meterlake {ours.wall:.2f}, tibber {tibber.wall:.2f}, floor {floor.wall:.2f}"
    )
    print(
        f"vs tibber: {ours.wall / tibber.wall:.3f}x wall, {ours.cpu / tibber.cpu:.3f}x cpu | "
        f"vs floor: {ours.wall / floor.wall:.3f}x wall, {ours.cpu / floor.cpu:.3f}x cpu"
    )
    print(
        f"meterlake: {len(our_jobs)} recorder jobs over {len(runs['meterlake'])} run(s), rows "
        f"per job {min(r for _i, r, _s in our_jobs)}..{max(r for _i, r, _s in our_jobs)}, "
        f"longest {max_job:.2f} s; floor's longest job {floor.longest_job:.2f} s, "
        f"tibber's {tibber.longest_job:.2f} s"
    )
    print(
        f"meterlake loop stall {worst.worst:.1f} ms (full GC {worst.gc:.1f}, loop busy "
        f"{worst.loop_busy:.1f}, waiting {worst.waiting:.1f}); longest full GC in our runs "
        f"{max(run.stalls.longest_gc for run in runs['meterlake']):.1f} ms; worst stall of "
        f"tibber {max(r.stalls.worst for r in runs['tibber']):.1f} ms, floor "
        f"{max(r.stalls.worst for r in runs['floor']):.1f} ms"
    )
    print(
        f"incremental poll (+1 hour, 3-day window): {poll.hours_written} hour per statistic, "
        f"{poll_rows} rows sent, first {poll.first_hour}; final sum error {sum_error:.2e}"
    )
    assert poll.hours_written == 1, poll
    assert poll_rows == 2, poll_rows
    assert sum_error < 1e-6, sum_error
    return {
        "hours": HOURS,
        "meterlake_s": round(ours.wall, 3),
        "tibber_s": round(tibber.wall, 3),
        "floor_s": round(floor.wall, 3),
        "vs_tibber": round(ours.wall / tibber.wall, 3),
        "vs_floor": round(ours.wall / floor.wall, 3),
        "max_stall_ms": round(worst.worst, 1),
        # Our own work on the loop (not a full GC, not waiting for the GIL): what we control.
        "max_loop_busy_ms": round(max(run.stalls.loop_busy for run in runs["meterlake"]), 1),
        "max_job_s": round(max_job, 3),
    }


if __name__ == "__main__":
    summary = asyncio.run(main())
    print(json.dumps(summary))
