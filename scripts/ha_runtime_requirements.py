"""Print the Python requirements of the Home Assistant components a real session loads.

`pytest-homeassistant-custom-component` installs Home Assistant without the requirements of its
components: the tests need none of them. A Home Assistant that serves the frontend does:
onboarding sets up its default integrations, and the frontend's service list imports the base
entity components (helpers/service.py). Without their packages the frontend stays on
"Loading..." (scripts/develop, tests/e2e). The pins come from the installed Home Assistant's
own manifests, so they always match its version.

Usage: python scripts/ha_runtime_requirements.py  (one requirement per line)
"""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant import components

# What a browser session touches: the develop config's components, onboarding's default
# integrations, and the base components the frontend's service descriptions import.
ROOTS = (
    "frontend",
    "onboarding",
    "config",
    "energy",
    "history",
    "logbook",
    "recorder",
    "repairs",
    "google_translate",
    "met",
    "radio_browser",
    "shopping_list",
    "ai_task",
    "alarm_control_panel",
    "assist_satellite",
    "calendar",
    "camera",
    "climate",
    "cover",
    "fan",
    "humidifier",
    "light",
    "lock",
    "media_player",
    "notify",
    "remote",
    "siren",
    "todo",
    "update",
    "vacuum",
    "water_heater",
    # Entity platforms bootstrap sets up on every start.
    "infrared",
    "radio_frequency",
)


def requirements(roots: tuple[str, ...]) -> list[str]:
    """Requirements of `roots` and every dependency they pull in, sorted, without repeats."""
    base = Path(components.__path__[0])
    seen: set[str] = set()
    found: set[str] = set()
    todo = list(roots)
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = base / domain / "manifest.json"
        if not manifest.exists():
            continue
        data = json.loads(manifest.read_text(encoding="utf-8"))
        found.update(data.get("requirements", ()))
        todo.extend(data.get("dependencies", ()))
        todo.extend(data.get("after_dependencies", ()))
    return sorted(found, key=str.lower)


if __name__ == "__main__":
    print("\n".join(requirements(ROOTS)))
