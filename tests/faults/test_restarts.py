"""Restart Home Assistant in the middle of the first import: nothing lost, no sum wrong.

Each test starts a real Home Assistant with the demo entry (electricity in kWh with a tariff:
`_consumption` and `_cost`; gas in m³: `_consumption`, `_cost` and `_energy`), lets the fault
plugin kill or stop it during the first import, starts it again without the fault, waits until
the statistics settle and checks them against the archive, and the archive against what the
demo published: compare() == (sums wrong, rows lost, duplicates) == (0, 0, 0).
"""

from __future__ import annotations

import signal
import time

import pytest

from .harness import (
    TALLY,
    HomeAssistantProcess,
    compare,
    metadata_problems,
    read_archive,
    read_metadata,
    read_statistics,
    wait_for_statistics,
)

pytestmark = pytest.mark.faults

# First start: Home Assistant boots, backfills the demo (archive, then statistics) and dies.
FAULT_TIMEOUT = 240.0
# Restart: boot, catch up, import; the wait returns early once statistics stop changing.
SETTLE_TIMEOUT = 240.0


FAULTS = [
    pytest.param("archive:1", "kill", id="kill-after-first-archive-partition"),
    pytest.param(
        "stat:consumption:1",
        "kill",
        id="kill-during-consumption",
        marks=pytest.mark.faults_slow,
    ),
    pytest.param("stat:cost:3", "kill", id="kill-during-cost"),
    pytest.param("stat:energy:3", "kill", id="kill-during-energy", marks=pytest.mark.faults_slow),
    pytest.param(
        "stop:cost:3", "stop", id="graceful-stop-during-cost", marks=pytest.mark.faults_slow
    ),
]


@pytest.mark.parametrize(("fault", "how"), FAULTS)
def test_restart_mid_first_import(
    home_assistant: HomeAssistantProcess, fault: str, how: str
) -> None:
    ha = home_assistant
    began = time.monotonic()
    ha.start(fault)
    code = ha.wait_exit(FAULT_TIMEOUT)
    fired = ha.fired()
    injected = len(fired)
    died = time.monotonic()
    if not fired:
        TALLY.record(injected=0, rows_lost=0, sums_wrong=0)
        pytest.fail(f"{fault} never fired; Home Assistant exited with {code}")
    if how == "kill":
        assert code == -signal.SIGKILL, f"expected SIGKILL, exit status {code}"
    else:
        assert code == 0, f"expected a clean stop, exit status {code}"

    ha.restart()
    try:
        settled = wait_for_statistics(ha, timeout=SETTLE_TIMEOUT)
        outcome = f"settled ({settled.reason}) in {settled.seconds:.1f} s"
    except AssertionError as err:  # the restarted process died: still check what it left
        outcome = str(err)
    stopped = ha.stop()

    archive = read_archive(ha.archive_root)
    result = compare(read_statistics(ha.db), archive, ha.expected_window())
    TALLY.record(injected=injected, rows_lost=result.rows_lost, sums_wrong=result.sums_wrong)
    print(
        f"{fault}: fired {fired[0].split(' fired ', 1)[1]!r}; died after {died - began:.1f} s; "
        f"restart {outcome}; {result.report()}"
    )
    assert result == (0, 0, 0), f"after {fault} and a restart ({outcome}):\n{result.report()}"
    problems = metadata_problems(read_metadata(ha.db), archive)
    assert not problems, "\n".join(problems)
    assert stopped == 0, f"the restarted Home Assistant did not stop cleanly ({stopped})"
