"""Fixtures of the fault suite: a real Home Assistant process with the demo entry and the plugin.

Run with `.venv/bin/python -m pytest tests/faults` (`-m "faults and not faults_slow"` for the
quick ones). Each test's config dir and Home Assistant log stay under pytest's tmp_path; a
failing test shows the end of the log. The session ends with one line:
`faults: N injected, rows lost X, sums wrong Y`.
"""

from __future__ import annotations

from collections.abc import Generator
import gc
from pathlib import Path
from typing import Any

import pytest

from .harness import BACKFILL_DAYS, TALLY, HomeAssistantFactory, HomeAssistantProcess

_PROCESS = pytest.StashKey[HomeAssistantProcess]()


@pytest.fixture(autouse=True, scope="module")
def garbage_collection() -> None:
    """The Home Assistant test plugin's fixture, without its gc.freeze().

    Frozen objects are never freed, so DuckDB's bindings (nanobind) report them as leaked when
    the interpreter exits; these tests run no event loop of their own to protect.
    """
    gc.collect()


@pytest.fixture
def make_home_assistant(
    request: pytest.FixtureRequest, tmp_path: Path, socket_enabled: None
) -> Generator[HomeAssistantFactory]:
    """Prepared (not yet started) Home Assistants with the demo entry, stopped at the end.

    `make_home_assistant(backfill_days=..., **options)`: entry options over the suite's
    (a short backfill, no standing charge in the cost). `socket_enabled`: the Home Assistant
    test plugin blocks sockets; the harness needs a free port and the subprocess its own.
    """
    made: list[HomeAssistantProcess] = []

    def make(*, backfill_days: Any = BACKFILL_DAYS, **options: Any) -> HomeAssistantProcess:
        process = HomeAssistantProcess(
            tmp_path / ("ha" if not made else f"ha{len(made) + 1}"),
            options={
                "backfill_days": backfill_days,
                "standing_charge_in_cost": False,
                **options,
            },
        )
        process.prepare()
        request.node.stash[_PROCESS] = process
        made.append(process)
        return process

    try:
        yield make
    finally:
        for process in made:
            process.stop()


@pytest.fixture
def home_assistant(make_home_assistant: HomeAssistantFactory) -> HomeAssistantProcess:
    """A prepared (not yet started) Home Assistant with the demo entry's short backfill."""
    return make_home_assistant()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the end of the Home Assistant log (and the fault markers) to a failed test."""
    report = yield
    process = item.stash.get(_PROCESS, None)
    if process is not None and report.failed:
        markers = "\n".join(process.marker_lines()) or "(none)"
        report.sections.append(
            (
                f"Home Assistant log ({process.log_path})",
                f"fault plugin markers:\n{markers}\n\nMeterLake lines of the log:\n"
                f"{process.log_tail()}",
            )
        )
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line for the whole session, once any fault test ran."""
    if TALLY.tests:
        terminalreporter.write_line(TALLY.line())
