"""Shared fixtures. Tests that use `hass` get custom integrations enabled automatically."""

from __future__ import annotations

from collections.abc import Generator
import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _custom_integrations(request: pytest.FixtureRequest) -> Generator[None]:
    """Load custom_components/ for every test that runs Home Assistant; leave pure tests alone."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")
    yield


def load_fixture_json(name: str) -> Any:
    """Read a JSON payload from tests/fixtures/."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))
