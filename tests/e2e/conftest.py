"""The browser test's prerequisites: Debian's Chromium and the playwright package.

Without either the tests skip, saying what is missing; `.ci/run` (through scripts/setup)
installs both. Playwright never downloads a browser here: it drives /usr/bin/chromium (or
$METERLAKE_CHROMIUM) through `executable_path`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("METERLAKE_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def chromium() -> Path:
    """The Chromium executable to drive; the test skips when it or playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or METERLAKE_CHROMIUM)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the playwright package is not installed (requirements_test.txt)")
    return CHROMIUM
