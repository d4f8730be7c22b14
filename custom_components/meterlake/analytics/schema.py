"""Column sets of the frames every part exchanges (docs/architecture.md, "The one table").

Kept free of pandas/pyarrow imports so that the HA layer can name columns without loading them.
"""

from __future__ import annotations

from typing import Final

# The interval table. Key: (meter, start). Timestamps are UTC, end exclusive.
INTERVAL_COLUMNS: Final = (
    "meter",
    "serial",
    "supplier",
    "kind",
    "start",
    "end",
    "value",
    "unit",
    "energy_kwh",
    "rate",
    "cost",
    "currency",
    "quality",
    "ingested_at",
)
INTERVAL_KEY: Final = ("meter", "start")
TIMESTAMP_COLUMNS: Final = ("start", "end", "ingested_at")
FLOAT_COLUMNS: Final = ("value", "energy_kwh", "rate", "cost")

QUALITIES: Final = ("measured", "estimated", "interpolated", "corrected", "imported")
KINDS: Final = ("electricity", "gas", "water", "heat", "grid")

# Unit rates of a tariff. `register` is "standard", "day" or "night"; rates are per native unit
# in major currency units (GBP, not pence), VAT included in `rate`. valid_to null = open-ended.
RATE_COLUMNS: Final = (
    "supplier",
    "tariff",
    "register",
    "valid_from",
    "valid_to",
    "rate",
    "rate_exc_vat",
    "currency",
    "payment_method",
)

# Daily standing charges of a tariff, per day, major currency units.
STANDING_CHARGE_COLUMNS: Final = (
    "supplier",
    "tariff",
    "valid_from",
    "valid_to",
    "charge",
    "charge_exc_vat",
    "currency",
    "payment_method",
)

# Which tariff a meter is on, over time ([valid_from, valid_to), valid_to null = open-ended).
AGREEMENT_COLUMNS: Final = ("meter", "tariff", "valid_from", "valid_to")

# One row per HTTP call or poll (archive dataset `audit`).
AUDIT_COLUMNS: Final = (
    "time",
    "supplier",
    "endpoint",
    "status",
    "rows",
    "duration_s",
    "error",
)

# Every reading of a meter read from a counter (a Home Assistant entity or a hand reading),
# archive dataset `readings`. Key: (meter, time, source). `reading` is in `unit` as read;
# `source` says where it came from (READING_SOURCES); `reset` is how cleaning read a reading
# that did not simply go up (analytics.readings.Reset kinds), null otherwise. A `new_meter` row
# declares a meter put in at `time`, reading `reading` then.
READING_COLUMNS: Final = (
    "meter",
    "supplier",
    "time",
    "reading",
    "unit",
    "source",
    "reset",
    "ingested_at",
)
READING_KEY: Final = ("meter", "time", "source")
READING_SOURCES: Final = ("state", "statistics", "hand", "new_meter")

# Anomalies found in a meter's intervals (archive dataset `anomalies`; analytics.anomalies).
# Key: (meter, kind, start). `kind` is one of ANOMALY_KINDS; [start, end) the period it is
# about (a day, a run of intervals, a night, the time without data); observed and expected in
# `unit` (for `no_data`: hours without data and the hours allowed); ratio = observed /
# expected (NaN where expected is 0 or not a quantity); reason: one line in plain words.
ANOMALY_COLUMNS: Final = (
    "meter",
    "kind",
    "start",
    "end",
    "observed",
    "expected",
    "ratio",
    "unit",
    "reason",
    "detected_at",
)
ANOMALY_KINDS: Final = ("high_day", "spike", "base_load", "no_data", "implausible")

# Which tariff a meter was on, over time, as archived (archive dataset `agreements`, one file
# per meter). Key: (meter, tariff, valid_from, source). `product` is the tariff's product code
# (AGILE-24-10-01 for the tariff E-1R-AGILE-24-10-01-C; archive.product_of); `source` says
# where the agreement came from: the supplier ("octopus") or "file" for imported ones.
# [valid_from, valid_to) in UTC, valid_to null = open-ended; the newer `ingested_at` wins.
AGREEMENT_ARCHIVE_COLUMNS: Final = (
    "meter",
    "tariff",
    "product",
    "valid_from",
    "valid_to",
    "source",
    "ingested_at",
)
