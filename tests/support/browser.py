"""Real Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright for Python.

No browser is ever downloaded: Playwright launches the system's Chromium with the flags
this machine needs; each ``launch`` uses a fresh temporary profile (user-data-dir) that
Playwright removes afterwards. Without Chromium the browser tests skip with a message
saying how to get it, except under CI as root, where ``make test`` installs it: there a
missing browser is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.support.server import TEST_ENV, ServerProcess, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
PASSWORD = "quartz meadow lantern 42 river"


def require_chromium() -> None:
    """Skip (or, in CI as root, fail) when Chromium or Playwright is missing."""
    problem = None
    if not CHROMIUM.exists():
        problem = (
            f"{CHROMIUM} is missing (Debian package `chromium`; `make test` as root installs it)"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright for Python is missing (`make lint` installs the test group)"
    if problem is None:
        return
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail(f"browser tests cannot run in CI: {problem}")
    pytest.skip(f"browser tests skipped: {problem}")


def localhost_resolves() -> bool:
    try:
        return bool(socket.getaddrinfo("localhost", None))
    except OSError:
        return False


@dataclass
class Totp:
    """Codes of time steps not used yet: Bastion refuses a step it has accepted before, and
    accepts the next step early (RFC 6238 window of one), so at most we wait for it."""

    secret: str
    used: set[int] = field(default_factory=set)

    def code(self) -> str:
        while True:
            now = time.time()
            current = int(now) // 30
            for step in (current, current + 1):
                if step not in self.used and step > max(self.used, default=0):
                    self.used.add(step)
                    return pyotp.TOTP(self.secret).at(step * 30)
            time.sleep(30 - now % 30 + 0.2)


def start_console_server(data_dir: Path) -> ServerProcess:
    """``bastion serve`` on a free loopback port, reached as ``http://localhost:PORT`` (a
    host name: browsers refuse WebAuthn on an IP address), with no bootstrap password, so
    it prints the one-time setup link of the first administrator."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {key: value for key, value in TEST_ENV.items() if "BOOTSTRAP" not in key}
    env["BASTION_PUBLIC_URL"] = f"http://localhost:{port}"
    return ServerProcess(data_dir, port, env).start()


def setup_link(server: ServerProcess) -> str:
    found = re.search(r"(http://localhost:\d+/setup#\S+)", server.log())
    assert found, server.log()
    return found.group(1)


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
    )


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def chromium_session() -> Iterator[Any]:
    """Playwright with one Chromium for a test module."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()
