"""Azurite, Microsoft's Azure Storage emulator, for the Azure archive tests (blob service only).

The session fixture installs the npm package `azurite@3.35` (the last release for node 20;
3.37 needs node 22) into `.cache/azurite` (gitignored) once, when it is missing and npm is
present; later runs reuse it without the network. No node or npm, or a failed install: the
tests are skipped with the reason. Azurite has no hierarchical namespace (no rename), like a
plain Blob Storage account: the archive's single-PUT writes are what runs against it.
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from dataclasses import dataclass
import hashlib
import hmac
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote

import pytest

VERSION = "3.35"
CACHE = Path(__file__).resolve().parents[1] / ".cache" / "azurite"
BINARY = CACHE / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
WRONG_KEY = base64.b64encode(b"not the account key of devstoreaccount1").decode()


@dataclass(frozen=True)
class Azurite:
    """A running blob service: `endpoint` is `http://127.0.0.1:<port>`."""

    endpoint: str

    @property
    def authority(self) -> str:
        """host:port, as pyarrow's blob and DFS authority."""
        return self.endpoint.removeprefix("http://")

    def filesystem(self) -> object:
        """A pyarrow AzureFileSystem with the account key (for setting up and reading back)."""
        from pyarrow import fs

        return fs.AzureFileSystem(
            account_name=ACCOUNT,
            account_key=KEY,
            blob_storage_authority=self.authority,
            dfs_storage_authority=self.authority,
            blob_storage_scheme="http",
            dfs_storage_scheme="http",
        )

    def container(self, name: str) -> str:
        """Create a container (the user's job on a real account); return its name."""
        self.filesystem().create_dir(name)  # type: ignore[attr-defined]
        return name


def account_sas(permissions: str = "racwdl", key: str = KEY) -> str:
    """An account SAS token for the blob service (`sv=…&sig=…`, no leading `?`)."""
    version, services, types = "2021-08-06", "b", "sco"
    expiry, protocols = "2099-01-01T00:00:00Z", "https,http"
    to_sign = "\n".join(
        [ACCOUNT, permissions, services, types, "", expiry, "", protocols, version, "", ""]
    )
    digest = hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
    signature = quote(base64.b64encode(digest).decode(), safe="")
    return (
        f"sv={version}&ss={services}&srt={types}&sp={permissions}&se={expiry}"
        f"&spr={protocols}&sig={signature}"
    )


def _install() -> str | None:
    """Install Azurite into the cache when missing; the reason when it cannot be had."""
    if BINARY.exists():
        return None
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        return "Azurite tests need node and npm (npm install azurite@3.35)"
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(CACHE),
                "--no-audit",
                "--no-fund",
                f"azurite@{VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return f"Azurite could not be installed with npm: {err}"
    return None if BINARY.exists() else "npm installed no azurite-blob"


def _free_port() -> int:
    # In a child: the Home Assistant test plugin blocks sockets in this process.
    code = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
    return int(subprocess.check_output([sys.executable, "-c", code], text=True))


def run_azurite() -> Generator[Azurite]:
    """Start azurite-blob on a free loopback port with a temporary workspace; stop it after."""
    if (reason := _install()) is not None:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="azurite-") as workspace:
        port = _free_port()
        log = Path(workspace) / "azurite.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(BINARY),
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    str(port),
                    "--location",
                    workspace,
                    "--skipApiVersionCheck",
                    "--loose",
                    "--silent",
                    "--disableTelemetry",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while b"successfully listens" not in log.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"Azurite did not start: {log.read_text(errors='replace')[-500:]}")
                time.sleep(0.1)
            yield Azurite(f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
