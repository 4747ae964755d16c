"""Attacks on the web console (issue 14), each through the real app in process."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from tests.console.helpers import PUBLIC, Console, console_env

from bastion.console import channel
from bastion.console.dispatch import call_api
from bastion.console.web import CSP
from bastion.storage.schema import audit_events, console_sessions


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from console_env(tmp_path)


def _audited(console: Console) -> list[str]:
    with console.runtime.db.read() as conn:
        return [r.action for r in conn.execute(select(audit_events.c.action))]


def test_console_csrf_cross_origin_form_post_refused(console: Console) -> None:
    browser, _ = console.signed_in("victim")
    browser.get("/console/collections")
    token = browser.csrf
    # A page on another origin of the same site (localhost:other-port: the SameSite=Strict
    # cookie goes along) posts the form, even with a valid token it somehow learned.
    for origin in ("http://localhost:1", "null", "https://localhost:6333"):
        refused = browser.request(
            "POST",
            "/console/collections",
            data={"csrf": token, "name": "pwned", "size": "4"},
            headers={"Origin": origin},
        )
        assert refused.status_code == 403
    # A sandboxed frame or a data: URL posts with Origin: null; fetch metadata tells.
    for site in ("cross-site", "same-site", "none"):
        refused = browser.request(
            "POST",
            "/console/collections",
            data={"csrf": token, "name": "pwned", "size": "4"},
            headers={"Origin": "null", "Sec-Fetch-Site": site},
        )
        assert refused.status_code == 403
    assert "collection.created" not in _audited(console)
    # The console's own pages (Referrer-Policy: no-referrer) post with Origin: null too.
    own = browser.request(
        "POST",
        "/console/collections",
        data={"csrf": token, "name": "mine", "size": "4"},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert own.url.path == "/console/collections/mine"


def test_console_csrf_without_the_synchronizer_token_refused(console: Console) -> None:
    browser, _ = console.signed_in("victim2")
    browser.get("/console/collections")
    for token in ("", "x" * 43):
        page = browser.request(
            "POST",
            "/console/collections",
            data={"csrf": token, "name": "pwned", "size": "4"},
            headers={"Origin": PUBLIC},
        )
        assert page.status_code == 403
    assert "collection.created" not in _audited(console)


def test_console_csrf_post_with_neither_origin_nor_fetch_metadata_refused(
    console: Console,
) -> None:
    browser, _ = console.signed_in("victim3")
    browser.get("/console/collections")
    page = browser.request(
        "POST", "/console/collections", data={"csrf": browser.csrf, "name": "pwned", "size": "4"}
    )
    assert page.status_code == 403
    fetched = browser.request(
        "POST",
        "/console/collections",
        data={"csrf": browser.csrf, "name": "fine", "size": "4"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert fetched.url.path == "/console/collections/fine"


def test_console_login_csrf_refused(console: Console) -> None:
    """A cross-site page cannot sign the victim into the attacker's account."""
    browser = console.browser()
    browser.get("/console/sign-in")
    token = browser.csrf
    attacker = console.browser()  # another browser: its own pre-session cookie
    page = attacker.request(
        "POST",
        "/console/sign-in",
        data={"csrf": token, "username": "admin", "password": "x"},
        headers={"Origin": PUBLIC},
    )
    assert page.status_code == 403
    browser.origin = "http://evil.example"
    assert browser.post("/console/sign-in", {"username": "a", "password": "b"}).status_code == 403


def test_console_foreign_host_redirected_to_the_configured_url(console: Console) -> None:
    browser = console.browser()
    for path in ("/console/sign-in", "/console/account?x=1"):
        moved = browser.request(
            "GET", path, headers={"Host": "evil.example"}, follow_redirects=False
        )
        assert moved.status_code == 302
        assert moved.headers["location"] == "http://localhost:6333" + path
    posted = browser.request(
        "POST", "/console/sign-in", headers={"Host": "evil.example:6333"}, follow_redirects=False
    )
    assert posted.headers["location"] == "http://localhost:6333/console/sign-in"


def test_console_security_headers_on_every_page(console: Console) -> None:
    browser, _ = console.admin()
    pages = [
        "/console",
        "/console/account",
        "/console/admin/users",
        "/console/admin/service-accounts",
        "/console/admin/tenants",
        "/console/admin/policy",
        "/console/admin/audit",
        "/console/collections",
        "/console/static/console.css",
        "/console/no-such-page",
    ]
    for path in pages:
        page = browser.get(path)
        assert page.headers["content-security-policy"] == CSP, path
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert "unsafe-inline" not in page.text
        assert "<script>" not in page.text, path
        assert " style=" not in page.text, path
    anonymous = console.browser().get("/console/sign-in")
    assert anonymous.headers["content-security-policy"] == CSP


def test_console_cookie_flags_under_tls(tmp_path: Path) -> None:
    for console in console_env(tmp_path, public_url="https://vectors.example"):
        browser = console.browser()
        page = browser.get("/console/sign-in")
        pre = page.headers["set-cookie"]
        assert pre.startswith("__Host-bastion_pre=")
        browser.origin = "https://vectors.example"
        page = browser.post(
            "/console/sign-in", {"username": "admin", "password": "correct horse battery staple 42"}
        )
        cookie = next(
            h for h in page.history[0].headers.get_list("set-cookie") if "bastion_console" in h
        )
        assert cookie.startswith("__Host-bastion_console=")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "path=/", "samesite=strict"} <= flags
        assert not any(flag.startswith("domain") for flag in flags)


def test_console_session_row_holds_no_usable_token(console: Console) -> None:
    browser, _ = console.signed_in("theft")
    with console.runtime.db.read() as conn:
        rows = list(conn.execute(select(console_sessions)))
    assert rows
    cookie = next(iter(browser.cookies.values()))
    for row in rows:
        assert row.id != cookie  # keyed by the cookie's SHA-256, not the cookie
        for blob in (row.tokens, row.state):
            assert b"eyJ" not in blob
            assert b"bst_" not in blob


def test_console_channel_marker_cannot_be_forged_by_a_client(console: Console) -> None:
    seen: list[str] = []

    async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(channel(scope))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    recorder.state = console.app.state  # type: ignore[attr-defined]
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/console",
        "headers": [(b"bastion.channel", b"console"), (b"x-bastion-channel", b"console")],
        "client": ("203.0.113.9", 5555),
        "app": recorder,
    }
    forged = Request(scope)
    assert channel(forged.scope) == "api"  # a header is not the scope key

    response = asyncio.run(call_api(forged, "GET", "/me"))
    assert response.status == 204
    assert seen == ["console"]


def test_console_refuses_a_huge_form_and_a_json_body(console: Console) -> None:
    browser, _ = console.signed_in("bulk")
    browser.get("/console/collections")
    token = browser.csrf
    huge = browser.post("/console/collections", {"name": "x" * 300_000, "size": "4"})
    assert huge.status_code == 413
    as_json = browser.request(
        "POST", "/console/collections", json={"csrf": token}, headers={"Origin": PUBLIC}
    )
    assert as_json.status_code == 415


def test_console_viewer_sees_no_write_buttons_and_is_refused_anyway(console: Console) -> None:
    developer, _ = console.signed_in("writer")
    developer.get("/console/collections")
    developer.post("/console/collections", {"name": "shared", "size": "4"})
    viewer, _ = console.signed_in("reader", role="viewer")
    page = viewer.get("/console/collections")
    assert ">shared</a>" in page.text
    assert 'action="/console/collections"' not in page.text
    page = viewer.get("/console/collections/shared")
    assert "/delete" not in page.text
    assert "/index" not in page.text
    assert "/export" not in page.text
    # A hand-made request with the viewer's valid token: the API refuses it.
    page = viewer.post("/console/collections/shared/delete", {"confirm": "shared"})
    assert page.url.path == "/console/collections/shared"
    assert re.search(
        r'class="error" role="alert">[^<]*do not grant collections.delete', page.text, re.IGNORECASE
    ), page.text[:2000]
    assert ">shared</a>" in viewer.get("/console/collections").text
