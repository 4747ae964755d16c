"""RFC 9470 step-up through the real app: challenge, step up, retry."""

from __future__ import annotations

from typing import Any

import pyotp
from tests.support.app import Env
from tests.support.credentials import new_session, new_user

from bastion.runtime import Runtime


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mint(env: Env, *, role: str, acr: str, amr: list[str] | None = None) -> str:
    """An access token of a new user with ``role`` (``tests.support.credentials``)."""
    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    now = env.clock.now()
    with rt.db.begin() as conn:
        user = new_user(conn, roles=[role], username=f"{role}-{acr}", now=now)
        return new_session(conn, rt.sessions, user, acr=acr, amr=amr, now=now).access_token


def challenge_of(response: Any) -> str:
    assert response.status_code == 401, response.text
    header: str = response.headers["www-authenticate"]
    assert header.startswith('Bearer error="insufficient_user_authentication"')
    return header


def test_stale_auth_time_gets_rfc9470_challenge_then_step_up_succeeds(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    factor_id = env.client.get("/me/factors", headers=bearer(tokens["access_token"])).json()[0][
        "id"
    ]
    env.clock.advance(301)  # past max_age=300 of me.factors.remove

    stale = env.client.delete(f"/me/factors/{factor_id}", headers=bearer(tokens["access_token"]))
    header = challenge_of(stale)
    assert 'acr_values="aal2"' in header
    assert "max_age=300" in header
    assert stale.json()["code"] == "insufficient_user_authentication"

    started = env.client.post("/auth/step-up", headers=bearer(tokens["access_token"]))
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "mfa_required"
    env.next_step()
    stepped = env.client.post(
        f"/auth/login/{started.json()['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    ).json()
    assert stepped["acr"] == "aal2"

    # The old token keeps its old rights; the stepped-up one passes.
    again = env.client.delete(f"/me/factors/{factor_id}", headers=bearer(tokens["access_token"]))
    challenge_of(again)
    done = env.client.delete(f"/me/factors/{factor_id}", headers=bearer(stepped["access_token"]))
    assert done.status_code == 204


def test_too_low_acr_is_challenged_on_the_data_plane(env: Env) -> None:
    token = mint(env, role="developer", acr="aal1", amr=["pwd"])
    response = env.client.put(
        "/collections/docs",
        headers=bearer(token),
        json={"vectors": {"size": 4, "distance": "Cosine"}},
    )
    header = challenge_of(response)
    assert 'acr_values="aal2"' in header
    assert "status" in response.json()  # Qdrant's envelope on the data plane


def test_step_up_transaction_of_one_user_cannot_be_finished_by_another(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    started = env.client.post("/auth/step-up", headers=bearer(tokens["access_token"])).json()
    other_secret = pyotp.random_base32()
    attempt = env.client.post(
        f"/auth/login/{started['transaction_id']}/verify",
        json={"method": "totp", "code": pyotp.TOTP(other_secret).at(env.clock.now())},
    )
    assert attempt.status_code == 401
    assert attempt.json()["code"] == "invalid_code"


def test_stepped_up_token_belongs_to_its_user(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    started = env.client.post("/auth/step-up", headers=bearer(tokens["access_token"])).json()
    env.next_step()
    stepped = env.client.post(
        f"/auth/login/{started['transaction_id']}/verify",
        json={"method": "totp", "code": env.totp_now(secret)},
    ).json()
    me = env.client.get("/me", headers=bearer(stepped["access_token"])).json()
    assert me["username"] == "admin"


def test_step_up_needs_a_usable_factor(env: Env) -> None:
    token = mint(env, role="viewer", acr="aal1", amr=["pwd"])
    response = env.client.post("/auth/step-up", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["code"] == "no_suitable_factor"


def test_step_up_rejects_unknown_acr_values(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    tokens = env.full_login(secret)
    response = env.client.post(
        "/auth/step-up", headers=bearer(tokens["access_token"]), json={"acr_values": "aal9"}
    )
    assert response.status_code == 422


def test_challenge_is_audited(env: Env) -> None:
    token = mint(env, role="developer", acr="aal1", amr=["pwd"])
    env.client.put(
        "/collections/docs",
        headers=bearer(token),
        json={"vectors": {"size": 4, "distance": "Cosine"}},
    )
    from bastion.audit import query

    rt: Runtime = env.client.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.read() as conn:
        events = query(conn, tenant_id=None, action="step_up.challenged").events
    assert len(events) == 1
    assert events[0].details["required_acr"] == "aal2"
