"""The users page's Unlock button (issue 11.9): the API's audited unlock, in process."""

from __future__ import annotations

from bastion.audit import query
from tests.console.helpers import PASSWORD, Console


def test_an_admin_unlocks_a_user_from_the_users_page(console: Console) -> None:
    user_id = console.user("sam")
    for _ in range(10):
        wrong = console.client.post("/auth/login", json={"username": "sam", "password": "nope"})
        assert wrong.status_code == 401
    throttled = console.client.post("/auth/login", json={"username": "sam", "password": PASSWORD})
    assert throttled.status_code == 429
    admin, _ = console.admin()
    page = admin.get(f"/console/admin/users/{user_id}")
    assert f'action="/console/admin/users/{user_id}/unlock"' in page.text
    done = admin.post(f"/console/admin/users/{user_id}/unlock")
    assert done.url.path == f"/console/admin/users/{user_id}"
    assert "Unlocked: 10 failed sign-in(s)" in done.text
    again = console.client.post("/auth/login", json={"username": "sam", "password": PASSWORD})
    assert again.status_code == 200, again.text
    with console.runtime.db.read() as conn:
        [event] = query(conn, tenant_id=None, action="user.unlocked").events
    assert event.resource == f"user:{user_id}"
