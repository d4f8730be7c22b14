"""Seed a Home Assistant config dir for scripts/develop: MeterLake, a demo entry, loopback HTTP.

Links custom_components/meterlake into <config>/custom_components and, unless a MeterLake
entry exists already, writes the demo entry into .storage/core.config_entries using Home
Assistant's own ConfigEntry class, so the storage format always matches the installed core.

`--options '{"backfill_days": 120}'` sets entry options over the defaults, as a user could in
the options flow (the fault suite uses it for a short backfill). Without it: default options.
`--no-entry` links the integration without adding an entry (the browser test adds it from the
UI).

HTTP: since 2026.10 Home Assistant keeps its HTTP settings in `.storage/http` (the `http`
integration's config.py: a confirmed `stable` slot and an unconfirmed `pending` one). An `http:`
block in configuration.yaml is migrated once into `pending`, which the UI must confirm within
5 minutes or Home Assistant restarts (under scripts/develop: exits) and falls back to `stable`,
whose default listens on every interface; the block then stays behind as the repair
`yaml_still_present_after_migration`. So config/configuration.yaml has no `http:` block, and
this script writes the confirmed settings instead: `stable` on 127.0.0.1 and `--http-port`
(default $METERLAKE_HTTP_PORT, else 8123), no `pending`, migration done. It does so on every
run, so the develop server always listens on loopback only (a change made under Settings >
System > Network in this config dir lasts until the next scripts/develop).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
import json
import os
from pathlib import Path
import sys
from types import MappingProxyType
from typing import Any

from homeassistant.components.http.config import (
    HTTP_CONFIG_CREATED_AT,
    HTTP_CONFIG_ERROR,
    HTTP_CONFIG_ERROR_MESSAGE,
    HTTP_STORAGE_SCHEMA,
    KEY_PENDING,
    KEY_STABLE,
    KEY_YAML_MIGRATION_DONE,
    STORAGE_KEY as HTTP_STORAGE_KEY,
    STORAGE_MINOR_VERSION as HTTP_STORAGE_MINOR_VERSION,
    STORAGE_VERSION as HTTP_STORAGE_VERSION,
)
from homeassistant.config_entries import (
    SOURCE_USER,
    STORAGE_KEY,
    STORAGE_VERSION,
    STORAGE_VERSION_MINOR,
    ConfigEntry,
)
from homeassistant.helpers.json import JSONEncoder
from homeassistant.util import dt as dt_util

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from custom_components.meterlake.config_flow import default_options  # noqa: E402

LOOPBACK = "127.0.0.1"
DEFAULT_HTTP_PORT = 8123
PORT_ENV = "METERLAKE_HTTP_PORT"
_META = (HTTP_CONFIG_CREATED_AT, HTTP_CONFIG_ERROR, HTTP_CONFIG_ERROR_MESSAGE)


def seed(
    config_dir: Path,
    options: Mapping[str, Any] | None = None,
    *,
    entry: bool = True,
    http_port: int = DEFAULT_HTTP_PORT,
) -> None:
    """Link the integration, pin HTTP to loopback, add the demo entry once (unless `entry`)."""
    components = config_dir / "custom_components"
    components.mkdir(parents=True, exist_ok=True)
    link = components / "meterlake"
    if not link.exists():
        link.symlink_to(REPO / "custom_components" / "meterlake")
    seed_http(config_dir, http_port)
    if entry:
        seed_demo_entry(config_dir, options)


def seed_http(config_dir: Path, port: int) -> None:
    """Confirmed (`stable`) HTTP settings on loopback and `port`; nothing pending, no YAML.

    Other stable settings already stored are kept; the file is only written when it changes.
    """
    path = config_dir / ".storage" / HTTP_STORAGE_KEY
    stored: dict[str, Any] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8")).get("data") or {}
    old_stable = dict(stored.get(KEY_STABLE) or {})
    settings = {key: value for key, value in old_stable.items() if key not in _META}
    wanted = HTTP_STORAGE_SCHEMA({**settings, "server_host": [LOOPBACK], "server_port": port})
    if (
        wanted == settings
        and stored.get(KEY_PENDING) is None
        and stored.get(KEY_YAML_MIGRATION_DONE)
    ):
        return
    if stored.get(KEY_PENDING) is not None:
        print(f"develop_seed: dropped an unconfirmed HTTP configuration from {path}")
    created = old_stable.get(HTTP_CONFIG_CREATED_AT) if wanted == settings else None
    content = {
        "version": HTTP_STORAGE_VERSION,
        "minor_version": HTTP_STORAGE_MINOR_VERSION,
        "key": HTTP_STORAGE_KEY,
        "data": {
            KEY_STABLE: {
                **wanted,
                HTTP_CONFIG_CREATED_AT: created or dt_util.utcnow().isoformat(),
                HTTP_CONFIG_ERROR: None,
                HTTP_CONFIG_ERROR_MESSAGE: None,
            },
            KEY_PENDING: None,
            KEY_YAML_MIGRATION_DONE: True,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2), encoding="utf-8")
    path.chmod(0o600)  # Home Assistant keeps this store private


def seed_demo_entry(config_dir: Path, options: Mapping[str, Any] | None = None) -> None:
    """Add the demo entry to .storage/core.config_entries unless a MeterLake entry is there."""
    storage = config_dir / ".storage" / STORAGE_KEY
    storage.parent.mkdir(parents=True, exist_ok=True)
    if storage.exists():
        content = json.loads(storage.read_text(encoding="utf-8"))
    else:
        content = {
            "version": STORAGE_VERSION,
            "minor_version": STORAGE_VERSION_MINOR,
            "key": STORAGE_KEY,
            "data": {"entries": []},
        }
    entries = content["data"]["entries"]
    if any(entry["domain"] == "meterlake" for entry in entries):
        return
    entry = ConfigEntry(
        data={"source": "demo"},
        discovery_keys=MappingProxyType({}),
        domain="meterlake",
        minor_version=1,
        options=default_options() | dict(options or {}),
        source=SOURCE_USER,
        subentries_data=None,
        title="MeterLake demo",
        unique_id="demo",
        version=1,
    )
    entries.append(entry.as_dict())
    storage.write_text(json.dumps(content, cls=JSONEncoder, indent=2), encoding="utf-8")


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Seed a config dir with the MeterLake demo entry.")
    parser.add_argument("config_dir", type=Path, help="Home Assistant config directory")
    parser.add_argument(
        "--options",
        type=json.loads,
        default=None,
        help="JSON object of entry options set over the defaults (only for a new entry)",
    )
    parser.add_argument(
        "--no-entry",
        dest="entry",
        action="store_false",
        help="link the integration (and set up HTTP) without adding the demo entry",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=None,
        help=f"port Home Assistant listens on, on {LOOPBACK} only "
        f"(default: ${PORT_ENV}, else {DEFAULT_HTTP_PORT})",
    )
    args = parser.parse_args(argv)
    if args.options is not None and not isinstance(args.options, dict):
        parser.error("--options must be a JSON object")
    if args.http_port is None:
        raw = os.environ.get(PORT_ENV) or str(DEFAULT_HTTP_PORT)
        if not raw.isdigit():
            parser.error(f"{PORT_ENV} must be a port number, not {raw!r}")
        args.http_port = int(raw)
    if not 0 < args.http_port < 65536:
        parser.error(f"no such port: {args.http_port}")
    return args


if __name__ == "__main__":
    arguments = _parse_args(sys.argv[1:])
    seed(
        arguments.config_dir.resolve(),
        arguments.options,
        entry=arguments.entry,
        http_port=arguments.http_port,
    )
