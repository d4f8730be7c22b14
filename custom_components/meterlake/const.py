"""Constants shared by the MeterLake integration."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "meterlake"

CONF_SOURCE: Final = "source"
SOURCE_DEMO: Final = "demo"
SOURCE_OCTOPUS: Final = "octopus"
SOURCE_TIBBER: Final = "tibber"
SOURCE_ECO2MIX: Final = "eco2mix"
# Composed meters (virtual, master, preferred), one entry per installation, meters as subentries.
SOURCE_COMPOSED: Final = "composed"

# Octopus entry data (api_key is homeassistant.const.CONF_API_KEY) and option.
CONF_ACCOUNT_NUMBER: Final = "account_number"
CONF_METERS: Final = "meters"
CONF_TARIFF_OVERRIDES: Final = "tariff_overrides"

# Tibber entry data (the token is homeassistant.const.CONF_ACCESS_TOKEN): the followed homes,
# each {"id", "name", "time_zone", "currency", "production"}.
CONF_HOMES: Final = "homes"

# eCO2mix entry data: "national" or a region's INSEE code; option: the MeterLake electricity
# meter (its `meter` key) whose emissions the entry computes.
CONF_PERIMETER: Final = "perimeter"
PERIMETER_NATIONAL: Final = "national"
CONF_CO2_METER: Final = "co2_meter"

# Options shared by every source (docs/architecture.md, "Options").
CONF_ARCHIVE_ROOT: Final = "archive_root"
CONF_KEEP_RAW_DAYS: Final = "keep_raw_days"
CONF_BACKFILL_DAYS: Final = "backfill_days"
CONF_GAS_CALORIFIC_VALUE: Final = "gas_calorific_value"
CONF_GAS_VOLUME_CORRECTION: Final = "gas_volume_correction"
CONF_STANDING_CHARGE_IN_COST: Final = "standing_charge_in_cost"
# Anomaly detection (a section of the options form): {"detectors": [...], "high_day_factor",
# "high_day_window_days", "spike_sensitivity", "base_load_factor", "max_delay_hours"}.
CONF_ANOMALIES: Final = "anomalies"

DEFAULT_ARCHIVE_ROOT: Final = "meterlake"
DEFAULT_KEEP_RAW_DAYS: Final = 0
DEFAULT_BACKFILL_DAYS: Final = 365
DEFAULT_GAS_CALORIFIC_VALUE: Final = 39.5
DEFAULT_GAS_VOLUME_CORRECTION: Final = 1.02264
DEFAULT_STANDING_CHARGE_IN_COST: Final = False

MAX_BACKFILL_DAYS: Final = 3650
MAX_KEEP_RAW_DAYS: Final = 3650

# How far back each poll re-reads so that late corrections replace earlier values.
DEFAULT_OVERLAP: Final = timedelta(days=3)
# How much history the coordinator keeps in memory for its sensors (today, yesterday, month).
RECENT_WINDOW: Final = timedelta(days=40)

STORAGE_VERSION: Final = 1

# Object-store credentials for the archive (options; redacted in diagnostics).
CONF_ARCHIVE_ENDPOINT: Final = "archive_endpoint"
CONF_ARCHIVE_ACCESS_KEY: Final = "archive_access_key"
CONF_ARCHIVE_SECRET_KEY: Final = "archive_secret_key"
CONF_ARCHIVE_REGION: Final = "archive_region"
# Azure (abfs://, abfss://, az://): account, and an account key or a SAS token.
CONF_ARCHIVE_ACCOUNT_NAME: Final = "archive_account_name"
CONF_ARCHIVE_ACCOUNT_KEY: Final = "archive_account_key"
CONF_ARCHIVE_SAS_TOKEN: Final = "archive_sas_token"
# GCS (gs://): anonymous access, or a service account's JSON key (else the environment's
# credentials).
CONF_ARCHIVE_ANONYMOUS: Final = "archive_anonymous"
CONF_ARCHIVE_SERVICE_ACCOUNT: Final = "archive_service_account"
ARCHIVE_CREDENTIAL_KEYS: Final = (
    CONF_ARCHIVE_ENDPOINT,
    CONF_ARCHIVE_ACCESS_KEY,
    CONF_ARCHIVE_SECRET_KEY,
    CONF_ARCHIVE_REGION,
    CONF_ARCHIVE_ACCOUNT_NAME,
    CONF_ARCHIVE_ACCOUNT_KEY,
    CONF_ARCHIVE_SAS_TOKEN,
    CONF_ARCHIVE_ANONYMOUS,
    CONF_ARCHIVE_SERVICE_ACCOUNT,
)
# Of those, the ones whose values are secrets (password fields, the service account's JSON
# a multiline one; scrubbed from every text).
ARCHIVE_SECRET_KEYS: Final = (
    CONF_ARCHIVE_SECRET_KEY,
    CONF_ARCHIVE_ACCOUNT_KEY,
    CONF_ARCHIVE_SAS_TOKEN,
    CONF_ARCHIVE_SERVICE_ACCOUNT,
)
