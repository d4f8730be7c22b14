"""A real Home Assistant process for the fault suite, and readers of what it stored.

`HomeAssistantProcess` runs `python -m homeassistant` on a temporary copy of config/ seeded with
the demo entry (scripts/develop_seed.py) plus the `meterlake_faults` plugin (plugin/), which
kills or stops the process at the point named by METERLAKE_FAULT. The readers open the
recorder's SQLite database read-only and the Parquet archive through DuckDB; `compare` checks the
statistics contract of custom_components/meterlake/statistics.py against the archive.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
import math
import os
from pathlib import Path
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[2]
PLUGIN = Path(__file__).resolve().parent / "plugin" / "meterlake_faults"
FAULT_ENV = "METERLAKE_FAULT"
# Optional: a directory holding another build of custom_components/meterlake to run against.
INTEGRATION_ENV = "METERLAKE_FAULTS_INTEGRATION"
MARKER = "meterlake_faults.log"
DB_NAME = "home-assistant_v2.db"
ARCHIVE_DIR = "meterlake"  # DEFAULT_ARCHIVE_ROOT, relative to the config dir
STATISTIC_PREFIX = "meterlake:"
HOUR = 3600
SLOT = 1800  # the demo's half-hour slots
# Which interval column each statistic sums (statistics.py: _bucket).
SUFFIX_COLUMNS = {"consumption": "value", "cost": "cost", "energy": "energy_kwh"}
# Short enough that a first import takes seconds, long enough for several chunks per statistic:
# 90 days are ~2,160 hourly rows per statistic, five statistics (statistics.py: FIRST_CHUNK_ROWS
# = 500 rows, later chunks sized to ~0.5 s of recorder work, at most twice the previous one).
BACKFILL_DAYS = int(os.environ.get("METERLAKE_FAULTS_BACKFILL_DAYS", "90"))
LOG_TAIL_LINES = 150


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def floor_hour(moment: datetime) -> datetime:
    """`moment` (UTC) down to its hour."""
    return moment.replace(minute=0, second=0, microsecond=0)


def epoch(moment: datetime) -> int:
    """Whole epoch seconds of a tz-aware datetime."""
    return int(moment.timestamp())


def iso(seconds: int) -> str:
    """Epoch seconds as an ISO UTC timestamp (for messages)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat()


class HomeAssistantProcess:
    """One Home Assistant config dir under `base`, started and stopped as a subprocess."""

    def __init__(self, base: Path, *, options: Mapping[str, Any] | None = None) -> None:
        self.base = base
        self.config = base / "config"
        self.log_path = base / "home-assistant.log"
        self.options = dict(options or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.launches: list[datetime] = []
        self.faults: list[str | None] = []
        self._log: TextIO | None = None
        self.port = 0

    # -- set-up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """configuration.yaml (+ the plugin's line), the demo entry, meterlake and the plugin."""
        self.config.mkdir(parents=True, exist_ok=True)
        yaml = (REPO / "config" / "configuration.yaml").read_text(encoding="utf-8")
        yaml += "\n# Fault injection (tests/faults/plugin).\nmeterlake_faults:\n"
        (self.config / "configuration.yaml").write_text(yaml, encoding="utf-8")
        # The HTTP port lives in .storage/http (Home Assistant 2026.10), written by the seed:
        # one free loopback port per harness, kept across its restarts.
        self.port = free_port()
        command = [
            sys.executable,
            str(REPO / "scripts" / "develop_seed.py"),
            str(self.config),
            "--http-port",
            str(self.port),
        ]
        if self.options:
            command += ["--options", json.dumps(self.options)]
        subprocess.run(command, check=True, env=_clean_env())
        link = self.config / "custom_components" / "meterlake"
        if not link.is_symlink() or link.resolve() != REPO / "custom_components" / "meterlake":
            raise AssertionError(f"{link} is not a link to the repository's integration")
        if other := os.environ.get(INTEGRATION_ENV):
            # Another build of the integration (e.g. an older commit, to see a test fail).
            link.unlink()
            link.symlink_to(Path(other).resolve(), target_is_directory=True)
        shutil.copytree(
            PLUGIN,
            self.config / "custom_components" / PLUGIN.name,
            ignore=shutil.ignore_patterns("__pycache__"),
            dirs_exist_ok=True,
        )

    # -- paths ------------------------------------------------------------------------------

    @property
    def db(self) -> Path:
        """The recorder's database."""
        return self.config / DB_NAME

    @property
    def archive_root(self) -> Path:
        """The archive root (option archive_root, default `<config>/meterlake`)."""
        root = Path(str(self.options.get("archive_root") or ARCHIVE_DIR))
        return root if root.is_absolute() else self.config / root

    @property
    def backfill_days(self) -> int:
        """The entry's backfill (option backfill_days)."""
        from custom_components.meterlake.const import DEFAULT_BACKFILL_DAYS

        return int(self.options.get("backfill_days", DEFAULT_BACKFILL_DAYS))

    # -- process ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the current process lives."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status of the last process (negative: killed by that signal)."""
        return None if self.proc is None else self.proc.poll()

    def start(self, fault: str | None = None) -> None:
        """Launch Home Assistant, with METERLAKE_FAULT=`fault` when given."""
        if self.running:
            raise RuntimeError("Home Assistant is already running")
        env = _clean_env()
        env.pop(FAULT_ENV, None)
        if fault:
            env[FAULT_ENV] = fault
        self._close_log()
        self._log = self.log_path.open("a", encoding="utf-8")
        launched = datetime.now(UTC)
        self._log.write(f"\n===== launch {len(self.launches) + 1} at {launched} fault={fault}\n")
        self._log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "homeassistant", "--config", str(self.config), "--skip-pip"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.base,
        )
        self.launches.append(launched)
        self.faults.append(fault)

    def wait_until[T](
        self,
        predicate: Callable[[], T],
        timeout: float,
        *,
        interval: float = 0.5,
        what: str = "condition",
        while_running: bool = False,
    ) -> T:
        """Poll `predicate` until it returns something truthy; AssertionError on timeout.

        With `while_running`, a process that exits first fails at once.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if while_running and not self.running:
                raise AssertionError(
                    f"Home Assistant exited ({self.returncode}) while waiting for {what}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end by itself; its exit status."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"Home Assistant still runs after {timeout:.0f} s") from err
        self._close_log()
        return code

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._close_log()

    def stop(self, timeout: float = 90.0) -> int | None:
        """SIGTERM (Home Assistant's graceful stop) and wait; SIGKILL if it hangs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()
        return self.proc.poll()

    def restart(self, fault: str | None = None) -> None:
        """Stop gracefully if still running, then start again (without a fault by default)."""
        self.stop()
        self.start(fault)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- what the plugin noted --------------------------------------------------------------

    def marker_lines(self) -> list[str]:
        """Lines of the plugin's marker file (setup, armed, started, fired)."""
        path = self.config / MARKER
        if not path.exists():
            return []
        return path.read_text(encoding="utf-8").splitlines()

    def _noted(self, word: str) -> bool:
        return bool(self.notes(word))

    def notes(self, word: str) -> list[str]:
        """Marker lines of the current process with `word` (armed, fired, refused, ...)."""
        if self.proc is None:
            return []
        pid = f"pid={self.proc.pid} "
        return [line for line in self.marker_lines() if pid in line and f" {word}" in line]

    def started(self) -> bool:
        """True once the current process fired homeassistant_started."""
        return self._noted("started")

    def armed(self) -> bool:
        """True once the current process armed its fault."""
        return self._noted("armed")

    def fired(self) -> list[str]:
        """Marker lines of faults that fired (any process)."""
        return [line for line in self.marker_lines() if " fired " in line]

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The end of the Home Assistant log's MeterLake part (launch headers, meterlake lines).

        The whole log (every launch appends to it) stays at `log_path`; the rest of it is mostly
        other integrations failing to import in a bare venv.
        """
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        keep = [line for line in text if line.startswith("=====") or "meterlake" in line.lower()]
        return "\n".join(keep[-lines:])

    def expected_window(self, backfill_days: int | None = None) -> Window:
        """The slots the demo published for this config's backfill, as of the last launch.

        `backfill_days` overrides the option (an invalid option is reset to the default).
        """
        from custom_components.meterlake.sources import demo

        assert self.launches, "never started"
        backfill = timedelta(days=self.backfill_days if backfill_days is None else backfill_days)
        return Window(
            meters=tuple(meter.key for meter in demo.METERS),
            earliest_start=epoch(floor_hour(self.launches[0] - backfill)),
            latest_start=epoch(floor_hour(datetime.now(UTC) - backfill)),
            end=epoch(demo.available_until(self.launches[-1])),
        )


type HomeAssistantFactory = Callable[..., HomeAssistantProcess]
"""The conftest's `make_home_assistant`: (backfill_days=..., **options) -> a prepared process."""


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatRow:
    """One hourly row of a statistic."""

    start: int
    state: float | None
    sum: float | None


type Statistics = dict[str, list[StatRow]]


def read_statistics(db: Path) -> Statistics:
    """Every `meterlake:` statistic's hourly rows, ordered by start (read-only; {} if none)."""
    if not db.exists():
        return {}
    query = (
        "SELECT m.statistic_id, s.start_ts, s.state, s.sum FROM statistics s "
        "JOIN statistics_meta m ON s.metadata_id = m.id "
        "WHERE m.statistic_id LIKE ? ORDER BY m.statistic_id, s.start_ts"
    )
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            rows = conn.execute(query, (f"{STATISTIC_PREFIX}%",)).fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return {}
            raise
    out: Statistics = {}
    for stat_id, start, state, total in rows:
        out.setdefault(stat_id, []).append(StatRow(round(start), state, total))
    return out


@dataclass(frozen=True, slots=True)
class StatMeta:
    """The statistics_meta columns the contract fixes."""

    unit: str | None
    has_sum: bool
    mean_type: int | None


def read_metadata(db: Path) -> dict[str, StatMeta]:
    """statistic_id -> metadata of every `meterlake:` statistic (read-only; {} if none)."""
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute(
            "SELECT statistic_id, unit_of_measurement, has_sum, mean_type FROM statistics_meta "
            "WHERE statistic_id LIKE ?",
            (f"{STATISTIC_PREFIX}%",),
        ).fetchall()
    return {stat_id: StatMeta(unit, bool(has_sum), mean) for stat_id, unit, has_sum, mean in rows}


def metadata_problems(
    meta: Mapping[str, StatMeta], archive: ArchiveSnapshot, skip: Collection[str] = ()
) -> list[str]:
    """Statistics whose unit is not the archive's (meter unit, currency, kWh), or not a sum.

    External statistics of a meter are sums only (StatisticMeanType.NONE == 0). `skip`: ids
    left out (a foreign statistic MeterLake must not touch).
    """
    problems = []
    for stat_id in sorted(archive.units.keys() - set(skip)):
        found = meta.get(stat_id)
        want = archive.units[stat_id]
        if found is None:
            problems.append(f"{stat_id}: no metadata")
        elif (found.unit, found.has_sum, found.mean_type) != (want, True, 0):
            problems.append(
                f"{stat_id}: unit {found.unit!r}, has_sum {found.has_sum}, mean_type "
                f"{found.mean_type}; expected {want!r}, True, 0"
            )
    return problems


# -- archive ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveSnapshot:
    """What the archive's consumption dataset holds.

    `hourly`: statistic id -> {UTC hour: the hour's sum} for hours where every interval has the
    column; `slots`: meter -> interval starts; `duplicates`: (meter, start) pairs stored more
    than once; `units`: statistic id -> its unit (the meter's unit, currency, or kWh).
    """

    hourly: dict[str, dict[int, float]] = field(default_factory=dict)
    slots: dict[str, set[int]] = field(default_factory=dict)
    duplicates: int = 0
    units: dict[str, str] = field(default_factory=dict)

    def totals(self, stat_id: str) -> list[tuple[int, float]]:
        """(hour, running total from 0) of a statistic, in hour order (a left fold)."""
        running = 0.0
        out = []
        for hour, value in sorted(self.hourly.get(stat_id, {}).items()):
            running += value
            out.append((hour, running))
        return out

    def last_hour(self, stat_id: str) -> int | None:
        """The newest hour the statistic should have."""
        hours = self.hourly.get(stat_id)
        return max(hours) if hours else None


def read_archive(root: Path) -> ArchiveSnapshot:
    """Hourly sums per statistic from `<root>/consumption/**/*.parquet` (DuckDB, hive paths)."""
    import duckdb
    from homeassistant.util.unit_conversion import VolumeConverter

    files = sorted((root / "consumption").glob("**/*.parquet"))
    if not files:
        return ArchiveSnapshot()
    source = (
        f"read_parquet('{root.as_posix()}/consumption/**/*.parquet', hive_partitioning = 1, "
        "hive_types_autocast = 0, union_by_name = 1)"
    )

    def known(column: str) -> str:
        return f"({column} IS NOT NULL AND NOT isnan({column}))"

    sums = ", ".join(
        f"sum({column}) FILTER (WHERE {known(column)}), count(*) FILTER (WHERE NOT {known(column)})"
        for column in SUFFIX_COLUMNS.values()
    )
    with duckdb.connect() as conn:
        grouped = conn.execute(
            f"SELECT meter, CAST(floor(epoch(start) / {HOUR}) AS BIGINT) * {HOUR} AS hour, "
            f"any_value(unit), any_value(currency), {sums} FROM {source} "
            "GROUP BY ALL ORDER BY meter, hour"
        ).fetchall()
        starts = conn.execute(
            f"SELECT meter, CAST(epoch(start) AS BIGINT), count(*) FROM {source} GROUP BY ALL"
        ).fetchall()
    snapshot = ArchiveSnapshot()
    for meter, hour, unit, currency, *columns in grouped:
        for index, suffix in enumerate(SUFFIX_COLUMNS):
            total, unknown = columns[2 * index], columns[2 * index + 1]
            if suffix == "energy" and unit not in VolumeConverter.VALID_UNITS:
                continue
            stat_id = f"{STATISTIC_PREFIX}{meter}_{suffix}"
            hours = snapshot.hourly.setdefault(stat_id, {})
            if unknown == 0 and total is not None:
                hours[int(hour)] = float(total)
            stat_unit = {"consumption": unit, "cost": currency, "energy": "kWh"}[suffix]
            if stat_unit is not None:
                snapshot.units.setdefault(stat_id, stat_unit)
    for meter, start, count in starts:
        snapshot.slots.setdefault(meter, set()).add(int(start))
        if count > 1:
            object.__setattr__(snapshot, "duplicates", snapshot.duplicates + 1)
    # A cost or energy column never known anywhere gives no statistic (statistics.py: _plan).
    for stat_id in [s for s, hours in snapshot.hourly.items() if not hours]:
        if not stat_id.endswith("_consumption"):
            del snapshot.hourly[stat_id]
            snapshot.units.pop(stat_id, None)
    return snapshot


# -- comparison ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """The demo slots a run must have archived: every half hour from the backfill start to end.

    The first poll starts at floor_hour(now - backfill) for the `now` of that poll, which lies
    between `earliest_start` and `latest_start`; `end` is what the demo had published when the
    last process started (its first poll fetches at least that far).
    """

    meters: tuple[str, ...]
    earliest_start: int
    latest_start: int
    end: int


class Comparison(tuple[int, int, int]):
    """(sums_wrong, rows_lost, duplicates), with a human-readable `details` list."""

    details: list[str]

    def __new__(cls, sums_wrong: int, rows_lost: int, duplicates: int, details: list[str]) -> Any:
        """Compare equal to the plain triple."""
        self = super().__new__(cls, (sums_wrong, rows_lost, duplicates))
        self.details = details
        return self

    @property
    def sums_wrong(self) -> int:
        """Hours with a wrong sum, missing from the statistics, or not in the archive."""
        return self[0]

    @property
    def rows_lost(self) -> int:
        """Published demo slots of the window missing from the archive."""
        return self[1]

    @property
    def duplicates(self) -> int:
        """(meter, start) pairs stored more than once in the archive."""
        return self[2]

    def report(self) -> str:
        """One line per finding."""
        head = f"sums wrong {self[0]}, rows lost {self[1]}, duplicates {self[2]}"
        return "\n".join([head, *self.details])


def _close(stored: float, expected: float) -> bool:
    return math.isfinite(stored) and abs(stored - expected) <= 1e-9 * max(1.0, abs(expected))


def compare(
    stats: Statistics,
    archive: ArchiveSnapshot,
    window: Window | None = None,
    *,
    skip: Collection[str] = (),
    rejected: Mapping[str, Collection[int]] | None = None,
) -> Comparison:
    """Check the statistics against the archive, and the archive against the demo's window.

    sums_wrong: archive hours whose stored sum differs from the archive's running total by more
    than 1e-9 x max(1, |total|), archive hours missing from the statistics, and statistic hours
    the archive does not have. rows_lost: window slots not in the archive. duplicates: (meter,
    start) pairs stored more than once. `skip`: statistic ids left out on both sides (a foreign
    statistic MeterLake must not touch). `rejected`: meter -> slot starts the source served as
    junk; they belong in no archive, so their absence is no loss.
    """
    details: list[str] = []
    sums_wrong = 0
    for stat_id in sorted((archive.hourly.keys() | stats.keys()) - set(skip)):
        expected = archive.totals(stat_id)
        stored = {row.start: row for row in stats.get(stat_id, [])}
        missing: list[int] = []
        wrong: list[tuple[int, float | None, float]] = []
        for hour, total in expected:
            row = stored.pop(hour, None)
            if row is None:
                missing.append(hour)
            elif row.sum is None or not _close(row.sum, total):
                wrong.append((hour, row.sum, total))
        extra = sorted(stored)
        sums_wrong += len(missing) + len(wrong) + len(extra)
        if missing:
            details.append(
                f"{stat_id}: {len(missing)} of {len(expected)} archive hours missing from the "
                f"statistics ({_ranges(missing)})"
            )
        if wrong:
            hour, got, want = wrong[0]
            details.append(
                f"{stat_id}: {len(wrong)} hours with a wrong sum, first {iso(hour)}: stored "
                f"{got!r}, archive running total {want!r} (off by "
                f"{(got or 0.0) - want:+.6g}); last {iso(wrong[-1][0])} off by "
                f"{(wrong[-1][1] or 0.0) - wrong[-1][2]:+.6g}"
            )
        if extra:
            details.append(
                f"{stat_id}: {len(extra)} statistic hours the archive does not have "
                f"({_ranges(extra)})"
            )
    rows_lost = 0
    if window is not None:
        for meter in window.meters:
            have = archive.slots.get(meter, set())
            start = window.earliest_start
            if have and window.earliest_start <= min(have) <= window.latest_start:
                start = min(have)
            junk = set((rejected or {}).get(meter, ()))
            lost = [
                slot
                for slot in range(start, window.end, SLOT)
                if slot not in have and slot not in junk
            ]
            rows_lost += len(lost)
            if lost:
                details.append(
                    f"{meter}: {len(lost)} of {len(range(start, window.end, SLOT))} published "
                    f"slots missing from the archive ({_ranges(lost, SLOT)})"
                )
    if archive.duplicates:
        details.append(f"archive: {archive.duplicates} (meter, start) pairs stored twice or more")
    return Comparison(sums_wrong, rows_lost, archive.duplicates, details)


def _ranges(points: Iterable[int], step: int = HOUR, limit: int = 4) -> str:
    """`a..b` runs of consecutive points (at most `limit`), for messages."""
    runs: list[list[int]] = []
    for point in sorted(points):
        if runs and point - runs[-1][1] == step:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    text = [iso(a) if a == b else f"{iso(a)}..{iso(b)}" for a, b in runs[:limit]]
    if len(runs) > limit:
        text.append(f"... {len(runs) - limit} more runs")
    return ", ".join(text)


# -- waiting for the statistics -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settled:
    """How waiting for the statistics ended."""

    caught_up: bool
    seconds: float
    reason: str


def _fingerprint(stats: Statistics) -> tuple[tuple[str, int, int | None, float | None], ...]:
    return tuple(
        (stat_id, len(rows), rows[-1].start if rows else None, rows[-1].sum if rows else None)
        for stat_id, rows in sorted(stats.items())
    )


def lagging(stats: Statistics, archive: ArchiveSnapshot, skip: Collection[str] = ()) -> list[str]:
    """Statistics whose newest hour is not the archive's newest hour for them (`skip`: not)."""
    out = []
    for stat_id in sorted(archive.hourly.keys() - set(skip)):
        want = archive.last_hour(stat_id)
        rows = stats.get(stat_id)
        have = rows[-1].start if rows else None
        if have != want:
            got = "nothing" if have is None else iso(have)
            out.append(f"{stat_id} ends at {got}, archive at {iso(want) if want else None}")
    return out


def wait_for_statistics(
    ha: HomeAssistantProcess,
    *,
    timeout: float = 180.0,
    quiet: float = 5.0,
    stuck: float = 20.0,
    interval: float = 1.0,
    skip: Collection[str] = (),
) -> Settled:
    """Wait until the statistics stop changing and end where the archive ends.

    Caught up: Home Assistant has started, nothing changed for `quiet` seconds and every
    statistic's newest hour is the archive's newest hour for it (`skip`: statistics left out).
    Not caught up: nothing changed for `stuck` seconds after the start without that, or
    `timeout` passed. Either way the caller compares what is stored; a process that exits fails
    at once.
    """
    import duckdb

    began = time.monotonic()
    deadline = began + timeout
    fingerprint: Any = None
    changed = began
    started_at: float | None = None
    behind: list[str] = ["not read yet"]
    while True:
        if not ha.running:
            raise AssertionError(
                f"Home Assistant exited ({ha.returncode}) while waiting for statistics"
            )
        now = time.monotonic()
        if started_at is None and ha.started():
            started_at = now
        try:
            stats = read_statistics(ha.db)
            archive = read_archive(ha.archive_root)
        except sqlite3.Error, duckdb.Error, OSError:
            stats, archive = None, None
        if stats is not None and archive is not None:
            current = _fingerprint(stats)
            if current != fingerprint:
                fingerprint, changed = current, now
            behind = lagging(stats, archive, skip)
            if started_at is not None:
                idle = now - max(changed, started_at)
                if idle >= quiet and not behind and archive.hourly:
                    return Settled(True, now - began, "caught up")
                if idle >= stuck:
                    return Settled(
                        False, now - began, f"no change for {idle:.0f} s: " + "; ".join(behind)
                    )
        if now >= deadline:
            return Settled(False, now - began, f"timeout: {'; '.join(behind)}")
        time.sleep(interval)


def wait_for_agreement(
    ha: HomeAssistantProcess,
    *,
    timeout: float = 180.0,
    quiet: float = 4.0,
    interval: float = 1.0,
    skip: Collection[str] = (),
    rejected: Mapping[str, Collection[int]] | None = None,
    backfill_days: int | None = None,
) -> Settled:
    """Wait until the running process's statistics and archive agree with no loss, and stay so.

    Agreement: compare() == (0, 0, 0) against the demo's window, with nothing changing for
    `quiet` seconds after Home Assistant has started. For recoveries that the statistics do not
    show (an archive month rebuilt behind statistics that never changed), which
    wait_for_statistics cannot see. Not agreeing within `timeout` returns the last finding;
    a process that exits fails at once.
    """
    import duckdb

    began = time.monotonic()
    last: Any = None
    agreed_since: float | None = None
    reason = "not read yet"
    while True:
        if not ha.running:
            raise AssertionError(
                f"Home Assistant exited ({ha.returncode}) while waiting for agreement"
            )
        now = time.monotonic()
        try:
            stats = read_statistics(ha.db)
            archive = read_archive(ha.archive_root)
        except sqlite3.Error, duckdb.Error, OSError:
            stats, archive = None, None
            reason = "unreadable"
        if stats is not None and archive is not None and ha.started():
            result = compare(
                stats,
                archive,
                ha.expected_window(backfill_days),
                skip=skip,
                rejected=rejected,
            )
            state = (_fingerprint(stats), {m: len(s) for m, s in archive.slots.items()})
            if result == (0, 0, 0) and archive.hourly:
                if state != last or agreed_since is None:
                    agreed_since = now
                elif now - agreed_since >= quiet:
                    return Settled(True, now - began, "agree")
            else:
                agreed_since = None
                reason = result.report().replace("\n", "; ")
            last = state
        if now - began >= timeout:
            return Settled(False, now - began, f"timeout: {reason}")
        time.sleep(interval)


# -- what Home Assistant keeps in .storage ------------------------------------------------------


def _storage(config: Path, key: str) -> Path:
    return config / ".storage" / key


def read_storage(config: Path, key: str) -> Any:
    """The `data` of a `.storage/<key>` file (None when there is none)."""
    path = _storage(config, key)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def write_storage(config: Path, key: str, data: Any, *, version: int = 1) -> None:
    """Write a `.storage/<key>` file as Home Assistant's Store would (`data` as given)."""
    path = _storage(config, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"version": version, "minor_version": 1, "key": key, "data": data}
    path.write_text(json.dumps(content, indent=2), encoding="utf-8")


def meterlake_entry(config: Path) -> dict[str, Any]:
    """The MeterLake entry of `.storage/core.config_entries` (as stored)."""
    entries = read_storage(config, "core.config_entries")["entries"]
    found = [entry for entry in entries if entry["domain"] == "meterlake"]
    assert len(found) == 1, f"expected one MeterLake entry, found {len(found)}"
    entry: dict[str, Any] = found[0]
    return entry


def set_entry_options(config: Path, changes: Mapping[str, Any]) -> None:
    """Change stored options of the MeterLake entry (as a hand edit would; HA stopped)."""
    path = _storage(config, "core.config_entries")
    content = json.loads(path.read_text(encoding="utf-8"))
    for entry in content["data"]["entries"]:
        if entry["domain"] == "meterlake":
            entry["options"] = {**entry["options"], **changes}
    path.write_text(json.dumps(content, indent=2), encoding="utf-8")


def read_issues(config: Path) -> dict[str, dict[str, Any]]:
    """Repair issues saved in `.storage/repairs.issue_registry`, by issue id (after a stop)."""
    data = read_storage(config, "repairs.issue_registry") or {}
    return {issue["issue_id"]: issue for issue in data.get("issues", [])}


def loaded_entity_states(config: Path, since: datetime) -> dict[str, str]:
    """entity_id -> newest state recorded after `since` of every MeterLake entity.

    Only entities of a loaded entry get states; those of an entry that failed to set up are
    only ever `unavailable`.
    """
    registry = read_storage(config, "core.entity_registry") or {"entities": []}
    ours = {e["entity_id"] for e in registry["entities"] if e.get("platform") == "meterlake"}
    db = config / DB_NAME
    if not ours or not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute(
            "SELECT m.entity_id, s.state FROM states s JOIN states_meta m "
            "ON s.metadata_id = m.metadata_id WHERE s.last_updated_ts >= ? "
            "ORDER BY s.last_updated_ts",
            (since.timestamp(),),
        ).fetchall()
    return {entity: state for entity, state in rows if entity in ours}


# -- the archive on disk ------------------------------------------------------------------------


def month_dirs(root: Path, meter: str) -> list[Path]:
    """The meter's consumption month folders, oldest first."""
    base = root / "consumption" / "supplier=demo" / f"meter={meter}"
    return sorted(path for path in base.glob("month=*") if path.is_dir())


def hive_read_problems(root: Path) -> list[str]:
    """Datasets under `root` that DuckDB cannot read as one hive-partitioned table."""
    import duckdb

    problems = []
    for dataset in sorted(path for path in root.iterdir() if path.is_dir()):
        if dataset.name == "raw" or not any(dataset.glob("**/*.parquet")):
            continue
        try:
            with duckdb.connect() as conn:
                conn.execute(
                    f"SELECT count(*) FROM read_parquet('{dataset.as_posix()}/**/*.parquet', "
                    "hive_partitioning = 1, union_by_name = 1)"
                ).fetchall()
        except duckdb.Error as err:
            problems.append(f"{dataset.name}: {err}")
    return problems


def read_audit(root: Path) -> list[dict[str, Any]]:
    """Rows of the audit dataset (`audit/**/*.parquet`), oldest first."""
    import duckdb

    if not any((root / "audit").glob("**/*.parquet")):
        return []
    with duckdb.connect() as conn:
        cursor = conn.execute(
            f"SELECT * FROM read_parquet('{root.as_posix()}/audit/**/*.parquet', "
            "hive_partitioning = 1, union_by_name = 1) ORDER BY time"
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- the session tally --------------------------------------------------------------------------


@dataclass(slots=True)
class FaultTally:
    """What the fault tests injected and found, for the one-line session summary."""

    tests: int = 0
    injected: int = 0
    rows_lost: int = 0
    sums_wrong: int = 0

    def record(self, *, injected: int, rows_lost: int, sums_wrong: int) -> None:
        """Add one test's numbers."""
        self.tests += 1
        self.injected += injected
        self.rows_lost += rows_lost
        self.sums_wrong += sums_wrong

    def line(self) -> str:
        """`faults: N injected, rows lost X, sums wrong Y`."""
        return (
            f"faults: {self.injected} injected, rows lost {self.rows_lost}, "
            f"sums wrong {self.sums_wrong}"
        )


TALLY = FaultTally()
