"""Console sessions: lifetimes by assurance, token refresh, revocation, sign-out everywhere."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bastion.authn.console_sessions import LIFETIMES
from bastion.storage.schema import console_sessions
from tests.console.helpers import Console, console_env


def test_an_idle_aal2_session_ends_after_an_hour(console: Console) -> None:
    browser, _ = console.signed_in("ida")
    console.clock.advance(LIFETIMES["aal2"].idle - 60)
    assert browser.get("/console/account").url.path == "/console/account"  # refreshed, alive
    console.clock.advance(LIFETIMES["aal2"].idle - 60)
    assert browser.get("/console/account").url.path == "/console/account"
    console.clock.advance(LIFETIMES["aal2"].idle + 1)
    page = browser.get("/console/account")
    assert page.url.path == "/console/sign-in"
    assert "Your session has ended" in page.text


def test_an_active_session_ends_at_its_absolute_lifetime(tmp_path: Path) -> None:
    for console in console_env(tmp_path, refresh_token_ttl=30 * 86_400):
        browser, _ = console.signed_in("abe")
        lived = 0
        while lived + 50 * 60 < LIFETIMES["aal2"].absolute:
            console.clock.advance(50 * 60)  # busy all day: never idle, tokens refreshed
            lived += 50 * 60
            assert browser.get("/console").url.path == "/console", lived
        console.clock.advance(LIFETIMES["aal2"].absolute - lived)
        assert browser.get("/console").url.path == "/console/sign-in"


def test_tokens_are_refreshed_before_they_expire_and_never_reach_the_browser(
    console: Console,
) -> None:
    browser, _ = console.signed_in("rita")
    with console.runtime.db.read() as conn:
        before = conn.execute(select(console_sessions.c.tokens)).scalar_one()
    console.clock.advance(14 * 60)  # the 15-minute access token is about to end
    assert browser.get("/console/account").url.path == "/console/account"
    with console.runtime.db.read() as conn:
        after = conn.execute(select(console_sessions.c.tokens)).scalar_one()
    assert after != before
    for blob in (before, after):  # sealed: no token readable from a copy of the database
        assert b"bst_rt_" not in blob
        assert b"eyJ" not in blob
    assert all(not value.startswith(("bst_", "eyJ")) for value in browser.cookies.values())
    console.clock.advance(14 * 60)
    assert browser.get("/console/account").url.path == "/console/account"


def test_a_suspended_user_is_signed_out_of_an_open_console(console: Console) -> None:
    user_id = console.user("sue")
    sue = console.browser()
    secret, _ = sue.enrol("sue")
    sue.sign_in_totp("sue", secret)
    admin, _ = console.admin()
    admin.get(f"/console/admin/users/{user_id}")
    admin.post(f"/console/admin/users/{user_id}/status", {"status": "suspended"})
    page = sue.get("/console/collections")  # the very next page load
    assert page.url.path == "/console/sign-in"
    assert "Your session has ended" in page.text


def test_sign_out_everywhere_ends_every_session_of_the_person(console: Console) -> None:
    laptop, secret = console.signed_in("eve-two")
    phone = console.browser()
    phone.sign_in_totp("eve-two", secret)
    assert phone.get("/console/account").url.path == "/console/account"
    laptop.get("/console/account")
    page = laptop.post("/console/account/sign-out-everywhere")
    assert page.url.path == "/console/sign-in"
    assert phone.get("/console/account").url.path == "/console/sign-in"
    assert laptop.get("/console/account").url.path == "/console/sign-in"


def test_ending_another_session_from_the_account_page(console: Console) -> None:
    laptop, secret = console.signed_in("ned")
    phone = console.browser()
    phone.sign_in_totp("ned", secret)
    page = laptop.get("/console/account")
    assert page.text.count(">End</button>") == 1  # the phone's; this one says "this session"
    laptop.post("/console/account/sessions/revoke-others")
    assert phone.get("/console/account").url.path == "/console/sign-in"
    assert laptop.get("/console/account").url.path == "/console/account"


def test_the_lifetimes_table_in_the_docs_is_the_code_s() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "console.md").read_text()

    def shown(seconds: int) -> str:
        return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds // 60} min"

    for stage, lifetime in LIFETIMES.items():
        row = next(line for line in text.splitlines() if f"`{stage}`" in line)
        assert f"| {shown(lifetime.idle)} | {shown(lifetime.absolute)} |" in row, stage


def test_abandoned_sessions_are_purged_after_their_lifetime(console: Console) -> None:
    console.user("gone-gus")
    console.browser().sign_in("gone-gus")  # an enrolment session, never used again
    with console.runtime.db.read() as conn:
        assert len(list(conn.execute(select(console_sessions)))) == 1
    console.clock.advance(LIFETIMES["enrolment"].absolute)
    console.user("new-nia")
    console.browser().sign_in("new-nia")
    with console.runtime.db.read() as conn:
        assert len(list(conn.execute(select(console_sessions)))) == 1  # only the new one
