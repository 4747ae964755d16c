"""Step-up in place: the action the person asked for is done after they confirm, as typed."""

from __future__ import annotations

from sqlalchemy import select

from bastion.storage.schema import audit_events
from tests.console.helpers import Browser, Console


def _collection(browser: Browser, name: str) -> None:
    browser.get("/console/collections")
    page = browser.post("/console/collections", {"name": name, "size": "4", "distance": "Dot"})
    assert page.url.path == f"/console/collections/{name}", page.text[:400]


def test_a_stale_sign_in_steps_up_in_place_and_the_delete_is_done(console: Console) -> None:
    browser, secret = console.signed_in("dev-dan")
    _collection(browser, "docs")
    console.clock.advance(16 * 60)  # collections.delete wants a sign-in of the last 15 min
    browser.get("/console/collections/docs")
    page = browser.post("/console/collections/docs/delete", {"confirm": "docs"})
    assert page.url.path == "/console/step-up"
    assert "delete the collection docs" in page.text
    assert "Your request is kept" in page.text
    page = browser.post("/console/step-up", {"method": "totp", "code": "000000"})
    assert page.status_code == 401  # a wrong code: asked again, nothing lost
    assert "not valid" in page.text
    page = browser.post("/console/step-up", {"method": "totp", "code": browser.totp(secret)})
    assert page.url.path == "/console/collections"
    assert "Collection docs deleted." in page.text
    assert ">docs</a>" not in page.text
    with console.runtime.db.read() as conn:
        actions = [
            r.action
            for r in conn.execute(select(audit_events.c.action).order_by(audit_events.c.seq))
        ]
    assert actions.index("step_up.success") < actions.index("collection.deleted")


def test_a_cancelled_step_up_changes_nothing(console: Console) -> None:
    browser, _ = console.signed_in("dev-cat")
    _collection(browser, "keep")
    console.clock.advance(16 * 60)
    browser.get("/console/collections/keep")
    assert browser.post("/console/collections/keep/delete", {"confirm": "keep"}).url.path == (
        "/console/step-up"
    )
    page = browser.post("/console/step-up/cancel")
    assert page.url.path == "/console/collections/keep"
    assert "nothing was changed" in page.text
    assert ">keep</a>" in browser.get("/console/collections").text


def test_form_input_survives_the_step_up(console: Console) -> None:
    """An admin whose sign-in is older than 5 minutes creates a user: same username,
    roles and collections after the step-up."""
    admin, secret = console.admin()
    console.clock.advance(6 * 60)
    admin.get("/console/admin/users")
    page = admin.post(
        "/console/admin/users",
        {"username": "late-lou", "roles": ["developer"], "collections": "docs, faq"},
    )
    assert page.url.path == "/console/step-up"
    page = admin.post("/console/step-up", {"method": "totp", "code": admin.totp(secret)})
    assert "User late-lou created." in page.text
    assert 'value="docs, faq"' in page.text
    assert 'value="developer" checked' in page.text


def test_aal3_actions_say_a_security_key_is_needed(console: Console) -> None:
    admin, _ = console.admin()
    _collection(admin, "secret-stuff")
    admin.get("/console/collections/secret-stuff")
    page = admin.post("/console/collections/secret-stuff/export")
    assert page.url.path == "/console/collections/secret-stuff"
    assert "aal3" in page.text
