"""Seed a Home Assistant config dir with MeterLake and a demo entry (used by scripts/develop).

Links custom_components/meterlake into <config>/custom_components and, unless a MeterLake
entry exists already, writes the demo entry into .storage/core.config_entries using Home
Assistant's own ConfigEntry class, so the storage format always matches the installed core.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
from types import MappingProxyType

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


def seed(config_dir: Path) -> None:
    """Link the integration and add the demo entry once."""
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
        options=default_options(),
        source=SOURCE_USER,
        subentries_data=None,
        title="MeterLake demo",
        unique_id="demo",
        version=1,
    )
    entries.append(entry.as_dict())
    storage.write_text(json.dumps(content, cls=JSONEncoder, indent=2), encoding="utf-8")


if __name__ == "__main__":
    seed(Path(sys.argv[1]).resolve())
