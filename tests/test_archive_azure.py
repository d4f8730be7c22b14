"""An archive on Azure Data Lake / Blob Storage, set up as a user does it in the options form.

Against Azurite (tests/azurite.py; skipped without node and npm): the form saves a location
only after real I/O succeeded, the archive is written and read back, a wrong key is a clean
form error and, for an entry saved before, a repair issue. Without Azurite: each store takes
only its own fields, and credentials that make pyarrow abort the process never reach it
(checked in a child process, so this one survives either way).
"""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
from typing import Any
import uuid

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from custom_components.meterlake.archive import ArchiveError, open_archive
from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sinks import archive_issue_id
from custom_components.meterlake.storage import storage_options

from .azurite import ACCOUNT, KEY, WRONG_KEY, Azurite, account_sas

FORM = {
    "keep_raw_days": 0,
    "backfill_days": 10,
    "gas_calorific_value": 39.5,
    "gas_volume_correction": 1.02264,
    "standing_charge_in_cost": False,
}
REPO = Path(__file__).resolve().parents[1]


def azure_fields(azurite: Azurite, container: str, **fields: Any) -> dict[str, Any]:
    """The form as a user fills it for an Azurite container: root, account, key, endpoint."""
    return (
        FORM
        | {
            "archive_root": f"abfs://{container}/lake",
            "archive_account_name": ACCOUNT,
            "archive_account_key": KEY,
            "archive_endpoint": azurite.endpoint,
        }
        | fields
    )


async def submit_options(hass: HomeAssistant, entry: Any, form: dict[str, Any]) -> Any:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    await hass.async_block_till_done()
    return result


def read_back(azurite: Azurite, container: str, dataset: str) -> Any:
    """A dataset of the archive as an analyst reads it: pyarrow over the container, hive."""
    return ds.dataset(
        f"{container}/lake/{dataset}",
        filesystem=azurite.filesystem(),
        format="parquet",
        partitioning="hive",
    ).to_table()


def blob_names(azurite: Azurite, container: str) -> list[str]:
    infos = azurite.filesystem().get_file_info(  # type: ignore[attr-defined]
        pafs.FileSelector(container, recursive=True)
    )
    return [info.path for info in infos if info.type == pafs.FileType.File]


# -- against Azurite ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({}, id="account key"),
        pytest.param(
            {"archive_account_key": "", "archive_sas_token": account_sas()}, id="SAS token"
        ),
        pytest.param(
            {"archive_account_key": "", "archive_sas_token": f"?{account_sas()}"},
            id="SAS token with its question mark",
        ),
    ],
)
async def test_options_form_with_azure_fields_saves_a_working_location(
    hass: HomeAssistant, loaded_demo: Any, azurite: Azurite, credentials: dict[str, str]
) -> None:
    container = azurite.container(f"form-{uuid.uuid4().hex[:8]}")
    form = azure_fields(azurite, container, **credentials)
    result = await submit_options(hass, loaded_demo, form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    saved = {key: value for key, value in loaded_demo.options.items() if value not in ("", None)}
    assert saved["archive_root"] == f"abfs://{container}/lake"
    assert saved["archive_account_name"] == ACCOUNT
    # The reloaded entry writes its archive there; the form's probe left nothing behind.
    assert loaded_demo.state is ConfigEntryState.LOADED
    assert read_back(azurite, container, "consumption").num_rows > 0
    assert not [name for name in blob_names(azurite, container) if "probe" in name]


async def test_archive_on_azurite_is_written_with_single_puts_and_read_back(
    hass: HomeAssistant, freezer: Any, demo_entry: Any, azurite: Azurite
) -> None:
    container = azurite.container(f"lake-{uuid.uuid4().hex[:8]}")
    freezer.move_to("2026-11-20 12:10:00+00:00")
    options = dict(demo_entry.options) | azure_fields(azurite, container)
    demo_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(demo_entry, options=options)
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()

    table = read_back(azurite, container, "consumption")
    meters = table.column("meter").to_pylist()
    assert "demo_electricity" in meters
    # What an analyst reads is what MeterLake reads back, meter by meter.
    archive = await hass.async_add_executor_job(
        lambda: open_archive(
            options["archive_root"], config_dir="/", storage_options=storage_options(options)
        )
    )
    for meter in set(meters):
        back = await hass.async_add_executor_job(archive.read_intervals, meter)
        assert len(back) == meters.count(meter) > 0
    # Every object is a whole partition or view file: no temporary names, nothing renamed.
    names = blob_names(azurite, container)
    assert names
    assert all(not name.endswith(".tmp") for name in names)
    assert f"{container}/lake/consumption/supplier=demo/meter=demo_electricity" in "\n".join(names)
    assert ir.async_get(hass).async_get_issue(DOMAIN, archive_issue_id(demo_entry.entry_id)) is None


async def test_a_wrong_account_key_is_a_clean_form_error(
    hass: HomeAssistant, loaded_demo: Any, azurite: Azurite
) -> None:
    container = azurite.container(f"wrong-{uuid.uuid4().hex[:8]}")
    before = dict(loaded_demo.options)
    result = await submit_options(
        hass, loaded_demo, azure_fields(azurite, container, archive_account_key=WRONG_KEY)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"archive_root": "archive_unreachable"}
    reason = result["description_placeholders"]["error"]
    assert "AuthorizationFailure" in reason
    assert WRONG_KEY not in reason
    assert dict(loaded_demo.options) == before


async def test_a_read_only_sas_token_is_refused_by_the_form(
    hass: HomeAssistant, loaded_demo: Any, azurite: Azurite
) -> None:
    container = azurite.container(f"ro-{uuid.uuid4().hex[:8]}")
    token = account_sas("rl")
    result = await submit_options(
        hass,
        loaded_demo,
        azure_fields(azurite, container, archive_account_key="", archive_sas_token=token),
    )
    assert result["errors"] == {"archive_root": "archive_unreachable"}
    reason = result["description_placeholders"]["error"]
    assert "AuthorizationPermissionMismatch" in reason
    # The refused request's URL carried the token: its signature is not in the message.
    signature = token.rpartition("sig=")[2]
    assert signature not in reason
    assert "sig=" not in reason


async def test_an_entry_saved_with_a_wrong_key_starts_with_a_repair_and_no_archive(
    hass: HomeAssistant, freezer: Any, demo_entry: Any, azurite: Azurite
) -> None:
    container = azurite.container(f"old-{uuid.uuid4().hex[:8]}")
    freezer.move_to("2026-11-20 12:10:00+00:00")
    options = dict(demo_entry.options) | azure_fields(
        azurite, container, archive_account_key=WRONG_KEY
    )
    demo_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(demo_entry, options=options)
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()

    # The entry runs (sensors from memory); the archive stays off with a repair saying why.
    assert demo_entry.state is ConfigEntryState.LOADED
    issue = ir.async_get(hass).async_get_issue(DOMAIN, archive_issue_id(demo_entry.entry_id))
    assert issue is not None
    assert issue.translation_key == "archive_unproven"
    placeholders = issue.translation_placeholders or {}
    assert placeholders["root"] == f"abfs://{container}/lake"
    assert "AuthorizationFailure" in placeholders["error"]
    assert WRONG_KEY not in json.dumps(placeholders)
    assert blob_names(azurite, container) == []


def test_opening_proves_the_credentials_against_the_store(azurite: Azurite, tmp_path: Path) -> None:
    container = azurite.container(f"prove-{uuid.uuid4().hex[:8]}")
    options = {
        "archive_root": f"abfs://{container}/lake",
        "archive_account_name": ACCOUNT,
        "archive_endpoint": azurite.endpoint,
    }
    good = open_archive(
        options["archive_root"],
        config_dir=str(tmp_path),
        storage_options=storage_options(options | {"archive_account_key": KEY}),
    )
    assert good.list_meters() == []
    with pytest.raises(ArchiveError) as caught:
        open_archive(
            options["archive_root"],
            config_dir=str(tmp_path),
            storage_options=storage_options(options | {"archive_account_key": WRONG_KEY}),
        )
    assert "AuthorizationFailure" in caught.value.reason
    assert WRONG_KEY not in str(caught.value)


# -- each store its own fields (no Azurite) -----------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        pytest.param(
            {"archive_root": "s3://bucket/lake", "archive_account_key": KEY},
            {"archive_account_key": "archive_field_not_for_scheme"},
            id="Azure key with an S3 root",
        ),
        pytest.param(
            {
                "archive_root": "abfss://energy@meterlake.dfs.core.windows.net/lake",
                "archive_account_key": KEY,
                "archive_access_key": "AKIAEXAMPLE",
                "archive_region": "eu-west-2",
            },
            {
                "archive_access_key": "archive_field_not_for_scheme",
                "archive_region": "archive_field_not_for_scheme",
            },
            id="S3 fields with an Azure root",
        ),
        pytest.param(
            {"archive_root": "gs://bucket/lake", "archive_sas_token": account_sas()},
            {"archive_sas_token": "archive_field_not_for_scheme"},
            id="SAS with a GCS root",
        ),
        pytest.param(
            {"archive_root": "s3://bucket/lake", "archive_anonymous": True},
            {"archive_anonymous": "archive_field_not_for_scheme"},
            id="GCS anonymous with an S3 root",
        ),
        pytest.param(
            {"archive_root": "abfss://energy@meterlake.dfs.core.windows.net/lake"},
            {"archive_account_key": "azure_credentials_missing"},
            id="Azure without key or SAS",
        ),
        pytest.param(
            {
                "archive_root": "abfss://energy@meterlake.dfs.core.windows.net/lake",
                "archive_account_key": KEY,
                "archive_sas_token": account_sas(),
            },
            {"archive_sas_token": "azure_key_and_sas"},
            id="Azure key and SAS",
        ),
        pytest.param(
            {
                "archive_root": "abfss://energy@meterlake.dfs.core.windows.net/lake",
                "archive_account_key": "not base64!!",
            },
            {"archive_account_key": "azure_account_key_invalid"},
            id="Azure key not base64",
        ),
        pytest.param(
            {"archive_root": "az://energy/lake", "archive_account_key": KEY},
            {"archive_account_name": "azure_account_missing"},
            id="az URI without account",
        ),
        pytest.param(
            {
                "archive_root": "az://energy/lake",
                "archive_account_name": "Not_An-Account",
                "archive_account_key": KEY,
            },
            {"archive_account_name": "azure_account_invalid"},
            id="Azure account name invalid",
        ),
    ],
)
async def test_each_store_takes_only_its_own_fields(
    hass: HomeAssistant, loaded_demo: Any, fields: dict[str, Any], errors: dict[str, str]
) -> None:
    before = dict(loaded_demo.options)
    result = await submit_options(hass, loaded_demo, FORM | fields)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert dict(loaded_demo.options) == before


def test_storage_options_read_only_the_fields_of_the_roots_store() -> None:
    fields = {
        "archive_endpoint": "http://127.0.0.1:10000",
        "archive_access_key": "AKIAEXAMPLE",
        "archive_secret_key": "s3cr3t-value",
        "archive_region": "eu-west-2",
        "archive_account_name": ACCOUNT,
        "archive_account_key": KEY,
    }
    # S3 fields next to an Azure root (options saved by an older version) reach no Azure call.
    assert storage_options(fields | {"archive_root": "abfs://c/lake"}) == {
        "account_name": ACCOUNT,
        "account_key": KEY,
        "blob_storage_authority": "127.0.0.1:10000",
        "dfs_storage_authority": "127.0.0.1:10000",
        "blob_storage_scheme": "http",
        "dfs_storage_scheme": "http",
    }
    assert storage_options(fields | {"archive_root": "s3://b/lake"}) == {
        "access_key": "AKIAEXAMPLE",
        "secret_key": "s3cr3t-value",
        "region": "eu-west-2",
        "endpoint_override": "127.0.0.1:10000",
        "scheme": "http",
    }
    assert storage_options(fields | {"archive_root": "gs://b/lake", "archive_anonymous": True}) == {
        "anonymous": True,
        "endpoint_override": "127.0.0.1:10000",
        "scheme": "http",
    }


def test_a_national_cloud_is_recognised_from_the_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    class Store:
        def __init__(self, **kwargs: Any) -> None:
            calls.append(kwargs)

        def get_file_info(self, path: str) -> pafs.FileInfo:
            return pafs.FileInfo(path, pafs.FileType.NotFound)

    monkeypatch.setattr(pafs, "AzureFileSystem", Store)
    archive = open_archive(
        "abfss://energy@meterlake.dfs.core.chinacloudapi.cn/lake",
        config_dir=str(tmp_path),
        storage_options={"account_key": KEY},
    )
    assert calls == [
        {
            "blob_storage_authority": ".blob.core.chinacloudapi.cn",
            "dfs_storage_authority": ".dfs.core.chinacloudapi.cn",
            "account_key": KEY,
            "account_name": "meterlake",
        }
    ]
    assert archive.root == "abfss://energy@meterlake.dfs.core.chinacloudapi.cn/lake"


# -- credentials that would abort the process ---------------------------------------------------

# Opens an Azure archive with the given storage options, then writes and reads as a poll does.
# Before the fix, pyarrow threw an uncaught C++ exception here (`terminate called…`, exit 134):
# Azure's default credentials refused over http, or an account key that is not base64.
CHILD = """
import json, sys
from datetime import UTC, datetime
import pandas as pd
from custom_components.meterlake.archive import ArchiveError, open_archive
options = json.loads(sys.argv[1])
frame = pd.DataFrame({
    "meter": ["m"], "supplier": ["s"], "start": [datetime(2026, 1, 1, tzinfo=UTC)],
    "end": [datetime(2026, 1, 1, 0, 30, tzinfo=UTC)], "value": [1.0], "unit": ["kWh"],
})
try:
    archive = open_archive(
        "abfs://energy@devstoreaccount1.dfs.core.windows.net/lake",
        config_dir="/tmp", storage_options=options,
    )
    archive.write_intervals(frame)
    archive.read_intervals("m")
except ArchiveError as err:
    print("clean:", err)
"""
EMULATOR = {
    "account_name": ACCOUNT,
    "blob_storage_authority": "127.0.0.1:9",
    "dfs_storage_authority": "127.0.0.1:9",
    "blob_storage_scheme": "http",
    "dfs_storage_scheme": "http",
}


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        pytest.param(EMULATOR, "no account key or SAS token", id="no credentials"),
        pytest.param(
            EMULATOR | {"account_key": "not base64!!"},
            "the account key is not base64",
            id="key not base64",
        ),
    ],
)
def test_credentials_that_would_abort_the_process_are_refused_cleanly(
    options: dict[str, str], reason: str
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert "terminate called" not in child.stderr
    assert child.stdout.startswith("clean: abfs://energy@devstoreaccount1.dfs.core.windows.net")
    assert reason in child.stdout
