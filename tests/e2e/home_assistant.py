"""A real Home Assistant for the browser test: temporary config dir, loopback, a free port.

The config is scripts/develop's (config/configuration.yaml), seeded by scripts/develop_seed.py
with `--no-entry`: MeterLake is installed, no entry exists, HTTP is confirmed on 127.0.0.1.
A user is onboarded over HTTP the way the onboarding page does it.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, TextIO
import urllib.error
import urllib.parse
import urllib.request

REPO = Path(__file__).resolve().parents[2]
USERNAME = "e2e"
PASSWORD = "e2e-password-1"


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Tokens:
    """What /auth/token answers: the frontend keeps the same in localStorage `hassTokens`."""

    access_token: str
    refresh_token: str
    expires_in: int

    def local_storage(self, base_url: str) -> str:
        """The frontend's `hassTokens` value for `base_url` (its clientId is the URL + /)."""
        return json.dumps(
            {
                "hassUrl": base_url,
                "clientId": f"{base_url}/",
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_in": self.expires_in,
                "token_type": "Bearer",
                "expires": int(time.time() * 1000) + self.expires_in * 1000,
            }
        )


class HomeAssistant:
    """`python -m homeassistant` on a config dir under `base`, started and stopped."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.config = base / "config"
        self.log_path = base / "home-assistant.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: TextIO | None = None

    def prepare(self) -> None:
        """configuration.yaml of scripts/develop; MeterLake linked, no entry; loopback HTTP."""
        self.config.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "config" / "configuration.yaml", self.config / "configuration.yaml")
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "develop_seed.py"),
                str(self.config),
                "--no-entry",
                "--http-port",
                str(self.port),
            ],
            check=True,
            env=_clean_env(),
        )

    def start(self) -> None:
        """Launch the process (log in `log_path`)."""
        self._log = self.log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "homeassistant", "--config", str(self.config), "--skip-pip"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
            cwd=self.base,
        )

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM and wait; SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_until_serving(self, timeout: float) -> None:
        """Until the HTTP API answers (the onboarding status needs no login)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"Home Assistant exited ({self.proc.returncode})")
            try:
                self.request("/api/onboarding")
            except urllib.error.URLError, ConnectionError, TimeoutError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no answer from {self.url} in {timeout:.0f} s") from None
                time.sleep(0.5)
            else:
                return

    def onboard(self) -> Tokens:
        """Create the owner (/api/onboarding/users), get tokens, finish the other steps."""
        client_id = f"{self.url}/"
        code = self.request(
            "/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "E2E",
                "username": USERNAME,
                "password": PASSWORD,
                "language": "en",
            },
        )["auth_code"]
        answer = self.request(
            "/auth/token",
            {"grant_type": "authorization_code", "code": code, "client_id": client_id},
            form=True,
        )
        tokens = Tokens(answer["access_token"], answer["refresh_token"], answer["expires_in"])
        self.request("/api/onboarding/core_config", {}, tokens.access_token)
        self.request("/api/onboarding/analytics", {}, tokens.access_token)
        self.request(
            "/api/onboarding/integration",
            {"client_id": client_id, "redirect_uri": f"{client_id}?auth_callback=1"},
            tokens.access_token,
        )
        return tokens

    def request(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        token: str | None = None,
        *,
        form: bool = False,
    ) -> Any:
        """GET (no data) or POST JSON/form to the instance; the decoded JSON answer."""
        headers: dict[str, str] = {}
        body = None
        if data is not None:
            if form:
                body = urllib.parse.urlencode(data).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                body = json.dumps(data).encode()
                headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def log_tail(self, lines: int = 80) -> str:
        """The end of the Home Assistant log (for a failure message)."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.pop("METERLAKE_HTTP_PORT", None)
    return env
