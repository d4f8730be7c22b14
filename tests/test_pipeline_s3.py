"""An entry whose archive lives on S3 (moto on 127.0.0.1): written by the coordinator, read back."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
import pyarrow.dataset as ds
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meterlake.const import DOMAIN
from custom_components.meterlake.sinks import storage_options

from .conftest import DEMO_NOW
from .test_archive_s3 import ACCESS_KEY, S3, SECRET_KEY


def test_endpoint_url_is_split_for_pyarrow() -> None:
    assert storage_options(
        {"archive_endpoint": "HTTP://minio.local:9000/", "archive_region": " eu-west-2 "}
    ) == {"scheme": "http", "endpoint_override": "minio.local:9000", "region": "eu-west-2"}
    assert storage_options({"archive_access_key": "", "archive_secret_key": None}) == {}


def _read_back(s3: S3) -> Any:
    from pyarrow import fs

    filesystem = fs.S3FileSystem(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_override=s3.options["endpoint_override"],
        scheme="http",
        region="us-east-1",
    )
    dataset = ds.dataset(
        f"{s3.bucket}/lake/consumption",
        filesystem=filesystem,
        format="parquet",
        partitioning="hive",
    )
    return dataset.to_table().to_pandas()


async def test_demo_entry_archives_to_s3(
    hass: HomeAssistant, s3: S3, freezer: Any, demo_entry: Any
) -> None:
    freezer.move_to(DEMO_NOW)
    await hass.config.async_set_time_zone("Europe/London")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MeterLake demo",
        data={"source": "demo"},
        options=dict(demo_entry.options)
        | {
            "archive_root": f"s3://{s3.bucket}/lake",
            "archive_endpoint": f"http://{s3.options['endpoint_override']}",
            "archive_access_key": ACCESS_KEY,
            "archive_secret_key": SECRET_KEY,
            "archive_region": "us-east-1",
        },
        unique_id="demo",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    keys = s3.objects("lake/consumption/")
    assert (
        "lake/consumption/supplier=demo/meter=demo_electricity/month=2026-11/data.parquet" in keys
    )
    frame = await hass.async_add_executor_job(_read_back, s3)
    elec = frame[frame["meter"] == "demo_electricity"]
    assert len(elec) == 10 * 48 - 2
    recent = entry.runtime_data.coordinator.recent
    expected = recent.loc[recent["meter"] == "demo_electricity", "value"].sum()
    assert abs(elec["value"].sum() - expected) < 1e-9
    assert entry.runtime_data.coordinator.store.get("demo_electricity") is not None
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
