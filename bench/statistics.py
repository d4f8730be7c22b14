"""First-run import of 5 years of hourly consumption + cost into the real recorder (SQLite file).

Three contestants write the same 2 x 43,800 hourly rows into one Home Assistant, each under its
own statistic ids:

- floor:     two bare `async_add_external_statistics` calls with precomputed rows;
- tibber:    Home Assistant core's `TibberDataCoordinator._insert_statistics`, fed by a mocked
             pyTibber home (pyTibber itself is not installed: a stand-in module is registered);
- meterlake: `statistics.async_import_meter` from an interval-table frame.

Each time runs until the recorder has committed. Two rounds run in opposite orders (fresh
statistic ids each time) and each contestant keeps its best wall time: the host is shared, so
process CPU seconds are printed too. A loop-lag probe measures the longest event-loop stall,
and gc.callbacks tell which stalls were CPython's full garbage collections (they stop every
thread; their length follows the whole heap, not the caller). A wrapper around the recorder's
`import_statistics` times every recorder job. Then one incremental poll (3-day overlap window +
one new hour) checks that only the new hour is written.
Run: .venv/bin/python bench/statistics.py [hours] [rounds]
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    """What `_insert_statistics` reads from a pyTibber home, with `hours` of history."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.home_id = "96a14971-525a-4420-aae9-e5aedaa129ff"
        self.name = "Bench home"
        self.currency = "GBP"
        self._rows = rows
        self.hourly_consumption_data = rows[-720:]
        self.hourly_production_data: list[dict[str, Any]] = []

    async def get_historic_data(self, n_data: int, production: bool = False) -> list[Any]:
        return [] if production else self._rows[-n_data:]


class LoopProbe:
    """Sleeps 2 ms at a time and records how late it wakes; gc.callbacks time full collections.

    `stop` returns the longest stall and the longest one that no garbage collection explains
    (a stall counts as GC when collections cover at least half of it).
    """

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float]] = []
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
            await asyncio.sleep(0.002)
            lag = time.perf_counter() - before - 0.002
            if lag > 0.005:
                self.stalls.append((before + 0.002, lag))

    def start(self) -> None:
        self.stalls, self.collections = [], []
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> tuple[float, float, float]:
        """Longest stall, longest stall not explained by GC, longest full GC (seconds)."""
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        gc.callbacks.remove(self._on_gc)
        worst = max((lag for _at, lag in self.stalls), default=0.0)
        unexplained = 0.0
        for at, lag in self.stalls:
            covered = sum(
                max(0.0, min(at + lag, end) - max(at, begin)) for begin, end in self.collections
            )
            if covered < lag / 2:
                unexplained = max(unexplained, lag)
        longest_gc = max((end - begin for begin, end in self.collections), default=0.0)
        return worst, unexplained, longest_gc


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
            "meter": "bench_electricity_1",
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
class Phase:
    """One contestant's run: wall and CPU seconds, stalls (ms), recorder jobs."""

    wall: float
    cpu: float
    stall_ms: float
    stall_no_gc_ms: float
    gc_ms: float
    jobs: list[tuple[str, int, float]]


async def timed_phase(
    name: str, probe: LoopProbe, work: Callable[[], Any], hass: Any, jobs: list[Any]
) -> Phase:
    """Run one contestant until the recorder committed; print and return its figures."""
    from custom_components.meterlake.statistics import _async_recorder_done

    # Recorder.async_block_till_done returns early while the recorder still runs the last
    # task it took off the queue; a SynchronizeTask waits for everything queued before it.
    await _async_recorder_done(hass)
    jobs.clear()
    probe.start()
    cpu = time.process_time()
    started = time.perf_counter()
    await work()
    await _async_recorder_done(hass)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stall, stall_no_gc, longest_gc = await probe.stop()
    phase = Phase(elapsed, cpu, stall * 1000, stall_no_gc * 1000, longest_gc * 1000, list(jobs))
    longest_job = max((seconds for _id, _rows, seconds in phase.jobs), default=0.0)
    print(
        f"{name:>12}: {elapsed:7.2f} s wall  {cpu:7.2f} s cpu  {len(phase.jobs):3d} recorder jobs "
        f"(longest {longest_job:5.2f} s)  loop stall {phase.stall_ms:5.1f} ms "
        f"(without GC {phase.stall_no_gc_ms:4.1f} ms, longest full GC {phase.gc_ms:5.1f} ms)"
    )
    return phase


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
    from homeassistant.helpers import recorder as recorder_helper
    from homeassistant.helpers.recorder import get_instance
    from homeassistant.setup import async_setup_component
    from pytest_homeassistant_custom_component.common import async_test_home_assistant

    from custom_components.meterlake import statistics as stats
    from custom_components.meterlake.sources.base import MeterInfo

    frame, tibber_rows, first = make_data(HOURS)
    value = frame["value"].to_numpy()
    cost = frame["cost"].to_numpy()
    starts = [ts.to_pydatetime() for ts in frame["start"]]

    def precomputed(values: np.ndarray) -> list[StatisticData]:
        return [
            StatisticData(start=s, state=v, sum=t)
            for s, v, t in zip(
                starts[: len(values)], values.tolist(), np.cumsum(values).tolist(), strict=True
            )
        ]

    def meter_of(round_: int) -> MeterInfo:
        return MeterInfo(
            key=f"bench_electricity_{round_}",
            supplier="demo",
            kind="electricity",
            unit="kWh",
            name="Bench",
            currency="GBP",
            cadence_minutes=60,
        )

    phases: dict[str, list[Phase]] = {"floor": [], "tibber": [], "meterlake": []}
    results: list[Any] = []

    with tempfile.TemporaryDirectory() as tmp:
        async with async_test_home_assistant(config_dir=tmp) as hass:
            recorder_helper.async_initialize_recorder(hass)
            db_url = f"sqlite:///{Path(tmp) / 'home-assistant_v2.db'}"
            assert await async_setup_component(
                hass, "recorder", {"recorder": {"db_url": db_url, "commit_interval": 1}}
            )
            await hass.async_block_till_done()
            instance = get_instance(hass)
            await instance.async_recorder_ready.wait()
            try:
                for name in ("sqlalchemy.engine", "homeassistant.components.recorder"):
                    logging.getLogger(name).setLevel(logging.WARNING)

                def bench_metadata(stat_id: str, unit: str) -> StatisticMetaData:
                    return StatisticMetaData(
                        mean_type=StatisticMeanType.NONE,
                        has_sum=True,
                        name=stat_id,
                        source="bench",
                        statistic_id=stat_id,
                        unit_class="energy" if unit == "kWh" else None,
                        unit_of_measurement=unit,
                    )

                # Warm-up (connection, caches) on a throwaway statistic.
                async_add_external_statistics(
                    hass, bench_metadata("bench:warm_up", "kWh"), precomputed(value[:2000])
                )
                await stats._async_recorder_done(hass)

                probe = LoopProbe()
                print(f"hours: {HOURS} per statistic, {2 * HOURS} rows each, {ROUNDS} rounds")

                def floor(round_: int) -> Callable[[], Any]:
                    rows = (precomputed(value), precomputed(cost))  # before the clock starts

                    async def run() -> None:
                        for unit, batch in zip(("kWh", "GBP"), rows, strict=True):
                            stat_id = f"bench:floor_{round_}_{unit.lower()}"
                            async_add_external_statistics(
                                hass, bench_metadata(stat_id, unit), batch
                            )

                    return run

                def tibber(round_: int) -> Callable[[], Any]:
                    home = FakeTibberHome(tibber_rows)
                    home.home_id = f"{round_:08d}-525a-4420-aae9-e5aedaa129ff"
                    connection = types.SimpleNamespace(name="bench", get_homes=lambda: [home])

                    async def get_client() -> Any:
                        return connection

                    coordinator = types.SimpleNamespace(hass=hass, _async_get_client=get_client)

                    async def run() -> None:
                        await TibberDataCoordinator._insert_statistics(coordinator)  # type: ignore[arg-type]

                    return run

                def meterlake(round_: int) -> Callable[[], Any]:
                    async def run() -> None:
                        results.append(
                            await stats.async_import_meter(hass, meter_of(round_), frame)
                        )

                    return run

                contestants = {"floor": floor, "tibber": tibber, "meterlake": meterlake}
                with recorder_jobs() as jobs:
                    for round_ in range(1, ROUNDS + 1):
                        order = list(contestants) if round_ % 2 else list(reversed(contestants))
                        print(f"round {round_}:")
                        for name in order:
                            work = contestants[name](round_)
                            phases[name].append(await timed_phase(name, probe, work, hass, jobs))

                    # Incremental poll on round 1's meter: a 3-day overlap window plus one new hour.
                    new_hour = frame.iloc[[-1]].copy()
                    new_hour["start"] += pd.Timedelta(hours=1)
                    new_hour["end"] += pd.Timedelta(hours=1)
                    new_hour[["value", "cost"]] = [1.234, 1.234 * 0.25]
                    window = pd.concat([frame.iloc[-72:], new_hour], ignore_index=True)
                    jobs.clear()
                    poll = await stats.async_import_meter(hass, meter_of(1), window)
                    poll_rows = sum(rows for _id, rows, _s in jobs)

                consumption = stats.statistic_id(meter_of(1).key, "consumption")
                last = await instance.async_add_executor_job(
                    get_last_statistics, hass, 1, consumption, False, {"sum"}
                )
                expected = float(np.sum(value)) + 1.234
                sum_error = abs(float(last[consumption][0]["sum"] or 0.0) - expected)
            finally:
                await hass.async_stop()

    for imported in results:
        assert imported.hours_written == HOURS, imported
        assert imported.first_hour == first
    best = {name: min(runs, key=lambda phase: phase.wall) for name, runs in phases.items()}
    ours, floor_best, tibber_best = best["meterlake"], best["floor"], best["tibber"]
    our_jobs = [job for phase in phases["meterlake"] for job in phase.jobs]
    max_job = max(seconds for _id, _rows, seconds in our_jobs)
    max_stall = max(phase.stall_ms for phase in phases["meterlake"])
    print(
        f"best wall s: meterlake {ours.wall:.2f}, tibber {tibber_best.wall:.2f}, "
        f"floor {floor_best.wall:.2f}"
    )
    print(
        f"vs tibber: {ours.wall / tibber_best.wall:.3f}x wall, "
        f"{ours.cpu / tibber_best.cpu:.3f}x cpu   vs floor: {ours.wall / floor_best.wall:.3f}x "
        f"wall, {ours.cpu / floor_best.cpu:.3f}x cpu"
    )
    print(
        f"meterlake recorder jobs: {len(our_jobs)}, rows per job "
        f"{min(r for _i, r, _s in our_jobs)}..{max(r for _i, r, _s in our_jobs)}, "
        f"longest {max_job:.2f} s; floor's longest single job "
        f"{max(s for phase in phases['floor'] for _i, _r, s in phase.jobs):.2f} s"
    )
    print(
        f"loop stall ms (max over rounds): meterlake {max_stall:.1f} "
        f"(without GC {max(p.stall_no_gc_ms for p in phases['meterlake']):.1f}), "
        f"tibber {max(p.stall_ms for p in phases['tibber']):.1f}, "
        f"floor {max(p.stall_ms for p in phases['floor']):.1f}"
    )
    print(
        f"incremental poll: {poll.hours_written} hour(s) per statistic, {poll_rows} rows sent "
        f"(first {poll.first_hour}), final sum error {sum_error:.2e}"
    )
    assert poll.hours_written == 1 and poll_rows == 2, poll
    assert sum_error < 1e-6
    return {
        "hours": HOURS,
        "meterlake_s": round(ours.wall, 3),
        "tibber_s": round(tibber_best.wall, 3),
        "floor_s": round(floor_best.wall, 3),
        "vs_tibber": round(ours.wall / tibber_best.wall, 3),
        "vs_floor": round(ours.wall / floor_best.wall, 3),
        "max_stall_ms": round(max_stall, 1),
        "max_job_s": round(max_job, 3),
    }


if __name__ == "__main__":
    summary = asyncio.run(main())
    print(json.dumps(summary))
