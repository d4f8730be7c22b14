"""Adaptive polling: a meter is asked again when its next data may have appeared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.meterlake.sources.polling import PublicationSchedule


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_tick_is_due_until_a_publication_was_seen() -> None:
    schedule = PublicationSchedule()
    assert schedule.due(t("2026-11-01 00:00"))
    schedule.observe(t("2026-11-01 00:00"), t("2026-10-31 00:00"))  # the first read: history
    assert schedule.expected is None
    assert schedule.due(t("2026-11-01 00:30"))
    assert not schedule.due(t("2026-11-01 00:10"))


def test_a_daily_batch_is_awaited_from_its_learned_time() -> None:
    schedule = PublicationSchedule()
    schedule.observe(t("2026-11-01 05:30"), t("2026-10-31 00:00"))
    # At 06:00 yesterday's day appears (it was not there at 05:30): lag at least 5.5 h.
    schedule.observe(t("2026-11-01 06:00"), t("2026-11-01 00:00"))
    assert schedule.expected == t("2026-11-02 04:30")
    # Until then polls are 3 hours apart.
    assert not schedule.due(t("2026-11-01 08:30"))
    assert schedule.due(t("2026-11-01 09:00"))
    schedule.observe(t("2026-11-01 09:00"), t("2026-11-01 00:00"))
    assert not schedule.due(t("2026-11-01 11:30"))
    # From 04:30 on the next day: every tick.
    schedule.observe(t("2026-11-02 03:00"), t("2026-11-01 00:00"))
    assert not schedule.due(t("2026-11-02 03:30"))
    assert schedule.due(t("2026-11-02 04:30"))
    schedule.observe(t("2026-11-02 04:30"), t("2026-11-01 00:00"))
    assert schedule.due(t("2026-11-02 05:00"))


def test_a_batch_that_does_not_come_falls_back_to_slow_polls() -> None:
    schedule = PublicationSchedule()
    schedule.observe(t("2026-11-01 05:30"), t("2026-10-31 00:00"))
    schedule.observe(t("2026-11-01 06:00"), t("2026-11-01 00:00"))
    # 12 hours after the expected time without data: back to every 3 hours.
    schedule.observe(t("2026-11-02 17:00"), t("2026-11-01 00:00"))
    assert schedule.interval(t("2026-11-02 17:00")) == timedelta(hours=3)
    assert not schedule.due(t("2026-11-02 17:30"))


def test_data_that_flows_all_day_is_polled_every_tick() -> None:
    schedule = PublicationSchedule()
    now = t("2026-11-01 00:00")
    for step in range(6):
        # Each poll brings the half hours up to an hour ago.
        schedule.observe(
            now + timedelta(minutes=30 * step), now + timedelta(minutes=30 * step - 60)
        )
    assert schedule.due(now + timedelta(minutes=180))


def test_an_older_window_teaches_nothing() -> None:
    schedule = PublicationSchedule()
    schedule.observe(t("2026-11-01 05:30"), t("2026-10-31 00:00"))
    schedule.observe(t("2026-11-01 06:00"), t("2026-11-01 00:00"))
    before = schedule.expected
    schedule.observe(t("2026-11-01 07:00"), t("2026-09-01 00:00"))  # a backfill window
    assert schedule.expected == before
    schedule.observe(t("2026-11-01 06:30"), None)  # a poll that found nothing, out of order
    assert schedule.last_poll == t("2026-11-01 07:00")


def test_a_meter_whose_data_is_old_is_polled_slowly_until_it_reports() -> None:
    schedule = PublicationSchedule()
    schedule.observe(t("2026-11-10 12:00"), t("2026-11-05 00:00"))  # five days behind
    assert not schedule.due(t("2026-11-10 14:30"))
    assert schedule.due(t("2026-11-10 15:00"))
    schedule.observe(t("2026-11-10 12:00"), None)
    never = PublicationSchedule()
    never.observe(t("2026-11-10 12:00"), None)  # no data at all yet: keep asking
    assert never.due(t("2026-11-10 12:30"))
