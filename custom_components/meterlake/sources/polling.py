"""Adaptive polling: ask a supplier again when its next data is due, not every tick.

Octopus publishes smart-meter data in batches (usually the next morning), a day or more late.
Polling every 30 minutes reads the same rows ~40 times a day. A `PublicationSchedule` learns
when a meter's data appears from the polls that brought new rows, and answers whether a poll is
due (docs/architecture.md, "Requests"):

- until it has seen data appear once after a poll that had not seen it, every tick is due
  while the newest data is recent (`stale`, 2 days), slow polls once it is older (a meter
  that stopped reporting, or a first read of a silent meter);
- each appearance teaches two things: how far the data moved on (`step`: a day for a daily
  batch, half an hour for data that flows all day) and its lag, bounded from below by the
  previous poll (the data was not there yet): `previous poll - end of the new data`. With the
  smallest of the last LAGS_KEPT of each, the next batch may appear from
  `newest end + step + lag - MARGIN` on;
- from then on polls are `fast` (every tick, 30 min) for up to `overdue`; before that and after
  (a batch that did not come) they are `slow` (every 3 h), so an irregular publication is still
  picked up within hours and a meter that stopped reporting costs 8 requests a day.

Pure: no I/O, no Home Assistant; the clock is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

LAGS_KEPT: Final = 7
MARGIN: Final = timedelta(hours=1)
# A tick that comes a little early still counts (the coordinator's timer drifts by seconds).
TOLERANCE: Final = timedelta(minutes=2)


@dataclass
class PublicationSchedule:
    """When one meter's next data is due; fed with each fetch's newest interval end."""

    fast: timedelta = timedelta(minutes=30)
    slow: timedelta = timedelta(hours=3)
    overdue: timedelta = timedelta(hours=12)
    stale: timedelta = timedelta(days=2)
    last_poll: datetime | None = None
    newest: datetime | None = None
    lags: deque[timedelta] = field(default_factory=lambda: deque(maxlen=LAGS_KEPT))
    steps: deque[timedelta] = field(default_factory=lambda: deque(maxlen=LAGS_KEPT))

    def observe(self, polled_at: datetime, newest_end: datetime | None) -> None:
        """Note a fetch made at `polled_at` whose data ends at `newest_end` (None: no rows)."""
        if newest_end is not None and (self.newest is None or newest_end > self.newest):
            if self.newest is not None and self.last_poll is not None:
                self.lags.append(max(self.last_poll - newest_end, timedelta(0)))
                self.steps.append(newest_end - self.newest)
            self.newest = newest_end
        if self.last_poll is None or polled_at > self.last_poll:
            self.last_poll = polled_at

    @property
    def expected(self) -> datetime | None:
        """Earliest time the next batch may appear; None until a lag has been learned."""
        if self.newest is None or not self.lags:
            return None
        return self.newest + min(self.steps) + min(self.lags) - MARGIN

    def interval(self, now: datetime) -> timedelta:
        """The time between polls at `now`: fast while a batch is expected, else slow."""
        expected = self.expected
        if expected is None:
            if self.newest is not None and now - self.newest > self.stale:
                return self.slow
            return self.fast
        if expected <= now < expected + self.overdue:
            return self.fast
        return self.slow

    def due(self, now: datetime) -> bool:
        """True when a poll at `now` should ask the supplier."""
        if self.last_poll is None:
            return True
        return now - self.last_poll >= self.interval(now) - TOLERANCE
