"""A user created without a password chooses one through a one-time enrollment link."""

from __future__ import annotations

from tests.admin.helpers import mint
from tests.support.app import Env

GOOD = "quartz meadow lantern 42 river"


def test_enrollment_link_sets_the_password_once(env: Env) -> None:
    admin = mint(env, acr="aal2")
    created = env.client.post(
        "/admin/users", headers=admin.auth, json={"username": "dora", "roles": ["viewer"]}
    )
    assert created.status_code == 201, created.text
    link = created.json()["enrollment"]
    assert link["url"].endswith("#" + link["token"])  # never in a query string (access logs)
    page = env.client.get("/setup/enroll", follow_redirects=False)  # into the console
    assert (page.status_code, page.headers["location"]) == (303, "/console/enroll")

    weak = env.client.post("/setup/enroll", json={"token": link["token"], "password": "password"})
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"

    done = env.client.post("/setup/enroll", json={"token": link["token"], "password": GOOD})
    assert done.status_code == 200, done.text
    assert done.json() == {"status": "password_set", "username": "dora"}
    assert env.login("dora", GOOD).json()["status"] == "enrollment_required"

    reused = env.client.post("/setup/enroll", json={"token": link["token"], "password": GOOD})
    assert reused.status_code == 401


def test_forged_or_malformed_enrollment_tokens_are_refused(env: Env) -> None:
    for token in ("bst_enroll_" + "A" * 43, "bst_setup_" + "A" * 43, "x"):
        response = env.client.post("/setup/enroll", json={"token": token, "password": GOOD})
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"
    assert env.client.post("/setup/enroll", json={"token": "x"}).status_code == 422
