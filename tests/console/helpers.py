"""The console in process: the real app, a ManualClock, and a browser-like client.

``Browser`` keeps its cookies (``httpx`` does), sends the ``Origin`` a browser sends on
a form post, and reads the CSRF token from the last page it got, as a form would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.clock import ManualClock
from bastion.config import load_settings
from bastion.factors.password import hash_password
from bastion.identity.grants import replace_grants
from bastion.identity.tenants import tenant_by_name
from bastion.identity.users import create_user
from bastion.runtime import Runtime
from tests.support.server import ADMIN_PASSWORD

PUBLIC = "http://localhost:6333"
PASSWORD = "quartz meadow lantern 42 river"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_SECRET = re.compile(r'id="totp-secret" class="secret">([A-Z2-7]+)<')
_CODES = re.compile(r"<li><code>([^<]+)</code></li>")


@dataclass
class Browser:
    """One browser: its own cookie jar over the app's one in-process client."""

    client: TestClient
    clock: ManualClock
    used_steps: set[int]  # TOTP time steps used, shared by every browser of one server
    origin: str = PUBLIC
    page: httpx.Response | None = None
    cookies: Any = None  # the client's own cookie jar type

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.cookies is None:
            self.cookies = type(self.client.cookies)()
        self.client.cookies = self.cookies
        try:
            return self.client.request(method, path, **kwargs)
        finally:
            self.cookies = self.client.cookies

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        self.page = self.request("GET", path, **kwargs)
        return self.page

    @property
    def csrf(self) -> str:
        assert self.page is not None
        found = _CSRF.search(self.page.text)
        assert found, self.page.text[:500]
        return found.group(1)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """Submit a form of the current page (its CSRF token, this console's Origin)."""
        fields = {"csrf": self.csrf, **(data or {})}
        headers = {"Origin": self.origin, **kwargs.pop("headers", {})}
        self.page = self.request("POST", path, data=fields, headers=headers, **kwargs)
        return self.page

    def totp(self, secret: str) -> str:
        """A code of a time step not used yet (Bastion refuses a replayed step)."""
        step = int(self.clock.now().timestamp()) // 30
        while step in self.used_steps:
            self.clock.advance(30)
            step = int(self.clock.now().timestamp()) // 30
        self.used_steps.add(step)
        return pyotp.TOTP(secret).at(self.clock.now())

    def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        self.get("/console/sign-in")
        return self.post("/console/sign-in", {"username": username, "password": password})

    def enrol(self, username: str, password: str = PASSWORD) -> tuple[str, list[str]]:
        """First sign-in: enrol an authenticator app, keep the recovery codes, finish."""
        page = self.sign_in(username, password)
        assert page.url.path == "/console/enrol", page.text[:300]
        page = self.post("/console/enrol/totp", {"name": "phone"})
        secret = _SECRET.search(page.text)
        assert secret, page.text
        page = self.post("/console/enrol/totp/activate", {"code": self.totp(secret.group(1))})
        codes = _CODES.findall(page.text)
        assert len(codes) == 10, page.text
        page = self.post("/console/enrol/done")
        assert page.url.path == "/console/sign-in"
        return secret.group(1), codes

    def sign_in_totp(self, username: str, secret: str, password: str = PASSWORD) -> httpx.Response:
        page = self.sign_in(username, password)
        assert page.url.path == "/console/sign-in/verify", page.text[:300]
        page = self.post("/console/sign-in/verify", {"method": "totp", "code": self.totp(secret)})
        assert page.url.path == "/console", page.text[:300]
        return page


@dataclass
class Console:
    app: FastAPI
    clock: ManualClock
    data_dir: Path
    client: TestClient
    used_steps: set[int] = field(default_factory=set)

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.state.runtime
        return rt

    def browser(self, **kwargs: Any) -> Browser:
        return Browser(self.client, self.clock, self.used_steps, **kwargs)

    def user(self, username: str, role: str = "developer") -> str:
        """A user with a password and ``role`` (no second factor yet: they enrol at sign-in)."""
        rt = self.runtime
        with rt.db.begin() as conn:
            now = self.clock.now()
            tenant = tenant_by_name(conn, "default")
            assert tenant is not None
            user = create_user(
                conn,
                tenant_id=tenant.id,
                username=username,
                password_hash=hash_password(PASSWORD, hasher=rt.hasher),
                now=now,
            )
            replace_grants(
                conn, "user", user.id, tenant_id=tenant.id, roles=[role], collections=None, now=now
            )
        return user.id

    def signed_in(self, username: str, role: str = "developer") -> tuple[Browser, str]:
        """A browser signed in (password + TOTP, aal2) as a new enrolled user; and its secret."""
        self.user(username, role)
        browser = self.browser()
        secret, _ = browser.enrol(username)
        browser.sign_in_totp(username, secret)
        return browser, secret

    def admin(self) -> tuple[Browser, str]:
        """The bootstrap admin, enrolled and signed in."""
        browser = self.browser()
        secret, _ = browser.enrol("admin", ADMIN_PASSWORD)
        browser.sign_in_totp("admin", secret, ADMIN_PASSWORD)
        return browser, secret


def console_env(tmp_path: Path, **settings: Any) -> Iterator[Console]:
    clock = ManualClock(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC))
    defaults = {"bootstrap_admin_password": ADMIN_PASSWORD, "public_url": PUBLIC}
    chosen = load_settings(
        data_dir=tmp_path / "data", argon2_profile="test", **{**defaults, **settings}
    )
    app = create_app(chosen, clock=clock)
    base = chosen.resolved_public_url
    with TestClient(app, base_url=base, raise_server_exceptions=True) as client:
        yield Console(app, clock, chosen.data_dir, client)
