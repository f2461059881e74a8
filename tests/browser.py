"""A real `streamlit run` and a headless Debian Chromium, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import requests

from lib.config import SECRETS_FILE_ENV

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def require_chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"Chromium is required under CI=true but {CHROMIUM} is missing (apt-get install chromium)"
        )
    pytest.skip(
        f"browser tests skipped: Chromium not found at {CHROMIUM} (apt-get install chromium to run them)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_text(tables: Mapping[str, Mapping[str, str | list[str]]]) -> str:
    """A secrets.toml of tables of text and lists of text (a JSON string or list of strings is valid TOML)."""
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


class Server:
    """`streamlit run app.py` on a free port with its own database, on the demo data.

    ``secrets``: the tables of a secrets.toml written in ``tmp`` and the only one the server reads
    (Streamlit's ``secrets.files`` and the dashboard's ``DASHBOARD_SECRETS_FILE``); the repository's
    ``.streamlit/secrets.toml`` is never written. ``port``: the port to serve on (default: a free one),
    for a redirect URI that must be known before the server starts.
    """

    def __init__(
        self,
        tmp: Path,
        env: dict[str, str] | None = None,
        secrets: Mapping[str, Mapping[str, str | list[str]]] | None = None,
        port: int | None = None,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = tmp / "dashboard.sqlite"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TRUTO_")}
        clean.update(
            {
                "DATABASE_URL": f"sqlite:///{self.db}",
                "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            }
        )
        options = []
        if secrets is not None:
            path = tmp / "secrets.toml"
            path.write_text(toml_text(secrets), encoding="utf-8")
            options = ["--secrets.files", str(path)]
            clean[SECRETS_FILE_ENV] = str(path)
        clean.update(env or {})
        self.log = open(tmp / "streamlit.log", "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(self.port),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                *options,
            ],
            cwd=ROOT,
            env=clean,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited: {(tmp / 'streamlit.log').read_text()[-2000:]}"
                )
            try:
                if requests.get(self.url + "/_stcore/health", timeout=1).text == "ok":
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("streamlit did not become healthy in 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


SKELETON = "[data-testid='stSkeleton']"
# An element of the previous run that this run has not drawn again yet.
STALE = "[data-stale='true']"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the script has run and everything it drew is on the page, then check the route held.

    ``notRunning`` comes before the last elements replace their skeletons, so this
    also waits until no ``stSkeleton`` is left, and no element of the previous run
    beside its redrawn twin (Streamlit marks those ``data-stale``). It fails when
    Streamlit answered the address with its "Page not found" dialog (and ran the
    main page instead).
    """
    page.wait_for_selector(IDLE, timeout=timeout)
    page.wait_for_selector("[data-testid='stMain']", timeout=timeout)
    page.wait_for_function(f'() => !document.querySelector("{SKELETON}")', timeout=timeout)
    page.wait_for_function(f'() => !document.querySelector("{STALE}")', timeout=timeout)
    page.wait_for_selector(IDLE, timeout=timeout)
    assert page.get_by_text("Page not found").count() == 0, f"Streamlit could not route {page.url}"


def by_key(page, key: str):
    """The element a page drew with ``key=...`` (Streamlit tags its container with st-key-<key>)."""
    return page.locator(f".st-key-{key}")


def download(page, key: str, timeout: float = 30_000):
    """Click the download button drawn with ``key`` and return the Download."""
    button = by_key(page, key).get_by_role("button")
    button.wait_for(timeout=timeout)
    with page.expect_download(timeout=timeout) as info:
        button.click()
    return info.value


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
