"""scripts/develop's configuration really starts Home Assistant, on loopback, with nothing pending.

Home Assistant runs once in a subprocess on a temporary copy of config/, seeded like
scripts/develop does (scripts/develop_seed.py: the demo entry and the confirmed HTTP settings
in .storage/http). While it runs, the listening sockets of the process are read from /proc;
once the demo sensors have recorded numeric states it is stopped gracefully, so that its
stores are written, and each test reads one fact of that run.

Home Assistant 2026.10 (components/http/config.py) would migrate an `http:` block of
configuration.yaml into `.storage/http` as a *pending* configuration, schedule a revert and a
restart 5 minutes later unless the UI confirms it, and on later starts raise the repair
`yaml_still_present_after_migration`. Without the block and with the stable slot seeded, the
migration is done, nothing is pending, and no http repair exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import pytest_socket

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 240.0
WANTED = ("sensor.demo_electricity_consumption_today", "sensor.demo_gas_newest_data")
TCP_LISTEN = "0A"


@dataclass(frozen=True, slots=True)
class Run:
    """What one run of the develop configuration left behind."""

    port: int
    states: dict[str, str]
    listening: set[tuple[str, int]]
    still_running: bool
    http_store: dict[str, object]
    http_issues: list[str]
    log: str


def _free_port() -> int:
    pytest_socket.enable_socket()
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)


def _demo_states(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute(
                "SELECT m.entity_id, s.state FROM states s "
                "JOIN states_meta m ON s.metadata_id = m.metadata_id "
                "WHERE m.entity_id LIKE 'sensor.demo_%' ORDER BY s.state_id"
            ).fetchall()
    except sqlite3.Error:
        return {}
    return dict(rows)


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table, width in (("tcp", 4), ("tcp6", 16)):
        lines = Path(f"/proc/net/{table}").read_text(encoding="ascii").splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != TCP_LISTEN or inode not in inodes:
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            family = socket.AF_INET if width == 4 else socket.AF_INET6
            found.add((socket.inet_ntop(family, words), int(port, 16)))
    return found


def _http_issues(config: Path) -> list[str]:
    path = config / ".storage" / "repairs.issue_registry"
    if not path.exists():
        return []
    issues = json.loads(path.read_text(encoding="utf-8"))["data"]["issues"]
    return [issue["issue_id"] for issue in issues if issue["domain"] == "http"]


@pytest.fixture(scope="module")
def develop_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Start the develop configuration, wait for the demo's states, stop it; what it left."""
    base = tmp_path_factory.mktemp("develop")
    config = base / "config"
    config.mkdir()
    shutil.copy(REPO / "config" / "configuration.yaml", config / "configuration.yaml")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("METERLAKE_HTTP_PORT", None)
    seed = [sys.executable, str(REPO / "scripts" / "develop_seed.py"), str(config)]
    subprocess.run([*seed, "--http-port", str(port)], check=True, env=env)
    log = (base / "ha.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeassistant", "--config", str(config), "--skip-pip"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=base,
    )
    states: dict[str, str] = {}
    listening: set[tuple[str, int]] = set()
    still_running = False
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            states = _demo_states(config / "home-assistant_v2.db")
            if all(states.get(e) not in (None, "unknown", "unavailable") for e in WANTED):
                break
            time.sleep(1)
        if proc.poll() is None:
            listening = _listening(proc.pid)
            still_running = True
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    store = json.loads((config / ".storage" / "http").read_text(encoding="utf-8"))
    yield Run(
        port=port,
        states=states,
        listening=listening,
        still_running=still_running,
        http_store=store["data"],
        http_issues=_http_issues(config),
        log=(base / "ha.log").read_text(),
    )


@pytest.mark.slow
def test_demo_sensors_record_states(develop_run: Run) -> None:
    assert float(develop_run.states[WANTED[0]]) > 0, develop_run.log[-3000:]
    assert develop_run.states[WANTED[1]].endswith("+00:00")
    assert "Error setting up entry MeterLake demo" not in develop_run.log


@pytest.mark.slow
def test_listens_on_loopback_only(develop_run: Run) -> None:
    assert develop_run.still_running, develop_run.log[-3000:]
    assert develop_run.listening == {("127.0.0.1", develop_run.port)}


@pytest.mark.slow
def test_http_settings_are_confirmed_with_nothing_pending(develop_run: Run) -> None:
    stable = develop_run.http_store["stable"]
    assert isinstance(stable, dict)
    assert (stable["server_host"], stable["server_port"]) == (["127.0.0.1"], develop_run.port)
    assert develop_run.http_store["pending"] is None
    assert develop_run.http_store["yaml_migration_done"] is True


@pytest.mark.slow
def test_no_http_repair_is_raised(develop_run: Run) -> None:
    assert develop_run.http_issues == []
    assert "yaml_still_present_after_migration" not in develop_run.log


def test_develop_configuration_has_no_http_block() -> None:
    yaml = (REPO / "config" / "configuration.yaml").read_text(encoding="utf-8")
    assert not [line for line in yaml.splitlines() if line.startswith("http:")]


def test_seed_confirms_loopback_over_a_pending_http_configuration(tmp_path: Path) -> None:
    # What an `http:` block left in storage: the default stable slot and the YAML pending.
    storage = tmp_path / ".storage"
    storage.mkdir()
    meta = {"created_at": "2026-11-01T00:00:00+00:00", "error": None, "error_message": None}
    old = {
        "version": 2,
        "minor_version": 2,
        "key": "http",
        "data": {
            "stable": {"server_port": 8123, "use_x_frame_options": False, **meta},
            "pending": {"server_host": ["127.0.0.1"], "server_port": 8123, **meta},
            "yaml_migration_done": True,
        },
    }
    (storage / "http").write_text(json.dumps(old), encoding="utf-8")
    seed = [sys.executable, str(REPO / "scripts" / "develop_seed.py"), str(tmp_path)]
    subprocess.run([*seed, "--no-entry", "--http-port", "18123"], check=True)
    data = json.loads((storage / "http").read_text(encoding="utf-8"))["data"]
    assert data["pending"] is None
    assert data["stable"]["server_host"] == ["127.0.0.1"]
    assert data["stable"]["server_port"] == 18123
    assert data["stable"]["use_x_frame_options"] is False  # the user's other settings stay
    assert not (storage / "core.config_entries").exists()
