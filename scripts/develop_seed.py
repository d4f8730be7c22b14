"""Seed a Home Assistant config dir with MeterLake and a demo entry (used by scripts/develop).

Links custom_components/meterlake into <config>/custom_components and, unless a MeterLake
entry exists already, writes the demo entry into .storage/core.config_entries using Home
Assistant's own ConfigEntry class, so the storage format always matches the installed core.

`--options '{"backfill_days": 120}'` sets entry options over the defaults, as a user could in
the options flow (the fault suite uses it for a short backfill). Without it: default options.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
import json
from pathlib import Path
import sys
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import (
    SOURCE_USER,
    STORAGE_KEY,
    STORAGE_VERSION,
    STORAGE_VERSION_MINOR,
    ConfigEntry,
)
from homeassistant.helpers.json import JSONEncoder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from custom_components.meterlake.config_flow import default_options  # noqa: E402


def seed(config_dir: Path, options: Mapping[str, Any] | None = None) -> None:
    """Link the integration and add the demo entry once (`options` over the defaults)."""
    components = config_dir / "custom_components"
    components.mkdir(parents=True, exist_ok=True)
    link = components / "meterlake"
    if not link.exists():
        link.symlink_to(REPO / "custom_components" / "meterlake")
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
    args = parser.parse_args(argv)
    if args.options is not None and not isinstance(args.options, dict):
        parser.error("--options must be a JSON object")
    return args


if __name__ == "__main__":
    arguments = _parse_args(sys.argv[1:])
    seed(arguments.config_dir.resolve(), arguments.options)
