"""Diagnostics for a config entry, with every secret and meter identifier redacted."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .analytics.prices import PriceSummary
from .coordinator import (
    GridMix,
    GridPart,
    MeterLakeConfigEntry,
    MeterLakeCoordinator,
    MeterSnapshot,
    RebuildProgress,
)
from .redact import scrub_data, secrets_in
from .sources.base import polls_adaptively
from .sources.composed import ComposedSource

TO_REDACT = {
    "key",  # meter keys embed the MPAN/MPRN
    "title",  # Octopus titles carry the account number
    "archive_root",
    "archive_access_key",
    "archive_secret_key",
    "archive_endpoint",
    "archive_account_key",
    "archive_sas_token",
    "archive_account_name",
    "api_key",
    "access_token",
    "account_number",
    "token",
    "password",
    "secret_key",
    "access_key",
    "mpan",
    "mprn",
    "point",
    "serials",
    "serial",
    "unique_id",
    "user_id",
    "address",
    "postcode",
    "homes",  # Tibber home ids and names (often the street address)
    "home_id",
    "co2_meter",  # a meter key (MPAN)
    "emissions_meter",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: MeterLakeConfigEntry
) -> dict[str, Any]:
    """Entry settings, meters, watermarks, the last poll and the sensor values."""
    coordinator = entry.runtime_data.coordinator
    report = coordinator.last_report
    meters = [
        {
            "key": meter.key,
            "kind": meter.kind,
            "unit": meter.unit,
            "is_export": meter.is_export,
            "currency": meter.currency,
            "serials": list(meter.serials),
        }
        for meter in coordinator.source.meters
    ]
    data = coordinator.data or {}
    snapshots = {
        f"meter_{index}": _snapshot_dict(data[meter.key])
        for index, meter in enumerate(coordinator.source.meters)
        if meter.key in data
    }
    redacted = async_redact_data(
        {
            "entry": {
                "title": entry.title,
                "data": dict(entry.data),
                "options": dict(entry.options),
                "unique_id": entry.unique_id,
            },
            "meters": meters,
            # Meter keys are redacted: every per-meter field is indexed like `meters`.
            "watermarks": {
                f"meter_{index}": None
                if (mark := coordinator.store.get(meter.key)) is None
                else mark.isoformat()
                for index, meter in enumerate(coordinator.source.meters)
            },
            "last_poll": None
            if report is None
            else {
                "started": report.started.isoformat(),
                "rows": [report.rows.get(meter.key, 0) for meter in coordinator.source.meters],
                # Adaptive polling: meters not asked because no new data was due yet.
                "not_due": [meter.key in report.skipped for meter in coordinator.source.meters],
                "requests": [
                    {
                        "endpoint": record.endpoint,
                        "status": record.status,
                        "rows": record.rows,
                        "duration_s": round(record.duration_s, 3),
                        "error": record.error,
                    }
                    for record in report.audit
                ],
            },
            "snapshots": snapshots,
            "next_data_expected": _next_data_expected(coordinator),
            "archive": {
                "kind": _root_kind(coordinator.archive.root_option),
                "last_error": coordinator.archive.last_error,
            },
            "statistics": {
                "queued_meters": len(coordinator.statistics.pending),
                "last_error": coordinator.statistics.last_error,
                "failed_meters": len(coordinator.statistics.failures),
                "rebuild": _rebuild_dict(coordinator.rebuild_progress),
            },
            "last_update_success": coordinator.last_update_success,
            "failed_meters": {
                f"meter_{index}": coordinator.failed[meter.key].replace(meter.key, "***")
                for index, meter in enumerate(coordinator.source.meters)
                if meter.key in coordinator.failed
            },
            "composed": _composed_dict(coordinator),
            "anomalies": _anomalies_dict(entry),
            "lost_archive_months": {
                f"meter_{index}": coordinator.lost_months[meter.key]
                for index, meter in enumerate(coordinator.source.meters)
                if meter.key in coordinator.lost_months
            },
        },
        TO_REDACT,
    )
    # Keys are redacted above; error texts and other values lose any credential they carry.
    scrubbed: dict[str, Any] = scrub_data(redacted, secrets_in(entry.data, entry.options))
    return scrubbed


def _snapshot_dict(snapshot: MeterSnapshot) -> dict[str, Any]:
    """Entity values of one meter, part by part (None where the meter has no such part)."""
    return {
        field.name: None if (part := getattr(snapshot, field.name)) is None else _part_dict(part)
        for field in fields(snapshot)
        if field.name != "meter"
    }


def _part_dict(part: Any) -> dict[str, Any]:
    """One part of a snapshot, JSON-friendly: times as ISO strings, collections summarised."""
    values: dict[str, Any] = {}
    for field in fields(part):
        name = field.name
        value = getattr(part, name)
        if isinstance(part, PriceSummary) and name == "listed":
            value = len(value)
        elif isinstance(part, GridPart) and name == "values":
            value = {
                key: {"start": start.isoformat(), "value": number}
                for key, (start, number) in sorted(value.items())
            }
        elif isinstance(value, GridMix):
            value = {
                "start": value.start.isoformat(),
                "values": dict(sorted(value.values.items())),
                "low_carbon_share": value.low_carbon_share,
                "renewable_share": value.renewable_share,
            }
        values[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return values


def _composed_dict(coordinator: MeterLakeCoordinator) -> dict[str, Any] | None:
    """Composed meters: their kind, inputs (indexed) and what clipping at 0 removed per day."""
    source = coordinator.source
    if not isinstance(source, ComposedSource):
        return None
    out: dict[str, Any] = {}
    for index, meter in enumerate(source.meters):
        if meter.key in source.entities.definitions:
            out[f"meter_{index}"] = _entity_meter_dict(source, meter.key)
            continue
        definition = source.definitions[meter.key]
        clipped = source.clipped.by_day(meter.key)
        out[f"meter_{index}"] = {
            "type": definition.type,
            "inputs": len(definition.sources),
            "cadence_minutes": definition.cadence_minutes,
            "clipped_by_day": {
                day.isoformat(): amount for day, amount in sorted(clipped.items()) if amount
            },
        }
    if source.broken:
        out["broken_subentries"] = sorted(source.broken.values())
    return out


def _entity_meter_dict(source: ComposedSource, key: str) -> dict[str, Any]:
    """A meter from an entity: how it is counted, readings set aside by reason, every reset."""
    definition = source.entities.definitions[key]
    state = source.entities.states[key]
    resets = [r for r in state.resets if r.kind != "jitter"]
    return {
        "type": "entity",
        "source_unit": definition.source_unit,
        "unit": definition.unit,
        "cadence_minutes": definition.cadence_minutes,
        "profile": definition.profile,
        "max_gap_days": definition.max_gap_days,
        "tolerance": definition.tolerance,
        "rollover": definition.rollover,
        "readings_skipped": dict(sorted(state.skipped.items())),
        "resets": [
            {
                "time": datetime.fromtimestamp(r.time / 1e9, UTC).isoformat(),
                "before": r.before,
                "after": r.after,
                "kind": r.kind,
            }
            for r in resets
        ],
        "jitter_held": state.jitter,
    }


def _anomalies_dict(entry: MeterLakeConfigEntry) -> dict[str, Any] | None:
    """Per meter (indexed): anomalies kept by kind, the active one's kind, how far judged."""
    monitor = entry.runtime_data.anomalies
    if monitor is None:
        return None
    out: dict[str, Any] = {}
    for index, meter in enumerate(entry.runtime_data.coordinator.source.meters):
        state = monitor.state.get(meter.key)
        if state is None:
            continue
        kinds: dict[str, int] = {}
        for anomaly in state.anomalies:
            kinds[anomaly.kind] = kinds.get(anomaly.kind, 0) + 1
        active = monitor.active(meter.key)
        out[f"meter_{index}"] = {
            "by_kind": dict(sorted(kinds.items())),
            "active": None if active is None else active.kind,
            "evaluated_until": {
                kind: moment.isoformat() for kind, moment in sorted(state.evaluated_until.items())
            },
        }
    return out


def _rebuild_dict(progress: RebuildProgress | None) -> dict[str, Any] | None:
    """Progress of a statistics rebuild, counted (meter keys are redacted elsewhere)."""
    if progress is None:
        return None
    return {
        "started": progress.started.isoformat(),
        "meters": len(progress.meters),
        "meters_done": len(progress.done),
        "running": progress.finished is None,
        "finished": None if progress.finished is None else progress.finished.isoformat(),
        "hours_written": sum(item["hours_written"] for item in progress.done.values()),
        "failed": progress.error is not None,
    }


def _root_kind(root: str) -> str:
    """`local`, or the URI scheme (`s3`, `gs`, `abfs`): never the path or its credentials."""
    return root.split("://", 1)[0] if "://" in root else "local"


def _next_data_expected(coordinator: MeterLakeCoordinator) -> dict[str, str | None] | None:
    """Per meter, when adaptive polling expects its next data (None where not adaptive)."""
    source = coordinator.source
    if not polls_adaptively(source):
        return None
    return {
        f"meter_{index}": None
        if (expected := source.next_data_expected(meter)) is None
        else expected.isoformat()
        for index, meter in enumerate(source.meters)
    }
