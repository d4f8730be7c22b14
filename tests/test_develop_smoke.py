"""scripts/develop's configuration really starts Home Assistant with the demo entry loaded.

Runs Home Assistant in a subprocess on a temporary copy of config/ (loopback only, no pip), then
reads the recorder's SQLite database: the demo sensors must have recorded numeric states.
"""

from __future__ import annotations

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

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 240.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


@pytest.mark.slow
@pytest.mark.usefixtures("socket_enabled")
def test_develop_config_starts_home_assistant(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(REPO / "config" / "configuration.yaml", config / "configuration.yaml")
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "develop_seed.py"), str(config)], check=True
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["METERLAKE_HTTP_PORT"] = str(_free_port())
    log = (tmp_path / "ha.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeassistant", "--config", str(config), "--skip-pip"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    states: dict[str, str] = {}
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            states = _demo_states(config / "home-assistant_v2.db")
            wanted = ("sensor.demo_electricity_consumption_today", "sensor.demo_gas_newest_data")
            if all(states.get(e) not in (None, "unknown", "unavailable") for e in wanted):
                break
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    output = (tmp_path / "ha.log").read_text()
    assert float(states["sensor.demo_electricity_consumption_today"]) > 0, output[-3000:]
    assert states["sensor.demo_gas_newest_data"].endswith("+00:00")
    assert "Error setting up entry MeterLake demo" not in output
