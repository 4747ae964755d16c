"""Attacks that play the worker processes of one server against each other.

Each ``Runtime`` here is one process's worth of state (database engine, key ring,
throttle object) on one shared data folder, as the workers of ``bastion serve`` are; one
test runs real processes.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from tests.support.app import Env
from tests.support.credentials import new_session
from tests.support.server import ADMIN_PASSWORD

from bastion.authn.login import ClientContext, LoginThrottles, password_login
from bastion.clock import ManualClock
from bastion.config import Settings, load_settings
from bastion.errors import InvalidCredentials, InvalidToken, RateLimited
from bastion.factors.password import hash_password
from bastion.identity.tenants import ensure_default_tenant
from bastion.identity.users import create_user, find_user, set_password_hash, set_status
from bastion.runtime import Runtime
from bastion.tokens import issue_access_token

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PASSWORD = "a long and correct passphrase"
ATTACKER = ClientContext(ip="198.51.100.9", user_agent="attack/1.0")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", argon2_profile="test")


@pytest.fixture
def workers(settings: Settings) -> Iterator[tuple[Runtime, Runtime]]:
    """Two processes' worth of state on one data folder (and one wall clock)."""
    clock = ManualClock(T0)
    one = Runtime.open(settings, clock=clock)
    two = Runtime.open(settings, clock=clock)
    with one.db.begin() as conn:
        tenant = ensure_default_tenant(conn, now=T0)
        create_user(
            conn,
            tenant_id=tenant.id,
            username="alice",
            password_hash=hash_password(PASSWORD, hasher=one.hasher),
            now=T0,
        )
    yield one, two
    one.close()
    two.close()


def sign_in(rt: Runtime, throttles: LoginThrottles, username: str, password: str) -> int:
    """One ``POST /auth/login`` as the route runs it: the status it answers."""
    try:
        password_login(
            replace(rt.authn, throttles=throttles),
            username=username,
            password=password,
            context=ATTACKER,
        )
    except InvalidCredentials:
        return 401
    except RateLimited:
        return 429
    return 200


# -- failed-login throttles -----------------------------------------------------------------


def test_password_guesses_spread_over_workers_share_one_throttle(
    workers: tuple[Runtime, Runtime],
) -> None:
    one, two = workers
    throttles = (LoginThrottles(), LoginThrottles())  # each process builds its own
    for guess in range(10):  # alternate: neither process alone reaches the limit
        assert sign_in(workers[guess % 2], throttles[guess % 2], "alice", "wrong") == 401
    assert sign_in(one, throttles[0], "alice", "wrong") == 429
    assert sign_in(two, throttles[1], "alice", PASSWORD) == 429  # even the right password


def test_unknown_user_guesses_spread_over_workers_are_throttled_the_same(
    workers: tuple[Runtime, Runtime],
) -> None:
    one, two = workers
    throttles = (LoginThrottles(), LoginThrottles())
    for guess in range(10):
        assert sign_in(workers[guess % 2], throttles[guess % 2], "nobody", "guess") == 401
    assert sign_in(one, throttles[0], "nobody", "guess") == 429
    assert sign_in(two, throttles[1], "NOBODY ", "guess") == 429  # same account key


def test_sign_in_through_one_worker_clears_the_account_count_of_every_other(
    workers: tuple[Runtime, Runtime],
) -> None:
    one, two = workers
    # Four: from five failures in the hour the risk engine would not let alice, who has no
    # factor yet, enrol one (docs/risk.md, "Limits"); uncleared, 4 + 10 would reach 429.
    for _ in range(4):
        assert sign_in(one, LoginThrottles(), "alice", "wrong") == 401
    assert sign_in(two, LoginThrottles(), "alice", PASSWORD) == 200
    for _ in range(10):
        assert sign_in(one, LoginThrottles(), "alice", "wrong") == 401
    assert sign_in(one, LoginThrottles(), "alice", "wrong") == 429


_GUESSER = """
import json, sys, time
from pathlib import Path
from bastion.authn.login import ClientContext, password_login
from bastion.config import load_settings
from bastion.errors import InvalidCredentials, RateLimited
from bastion.runtime import Runtime

data_dir, go, attempts = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
rt = Runtime.open(load_settings(data_dir=data_dir, argon2_profile="test"))
deps = rt.authn
context = ClientContext(ip="198.51.100.9", user_agent=None)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
statuses = []
for _ in range(attempts):
    try:
        password_login(deps, username="alice", password="guess", context=context)
    except InvalidCredentials:
        statuses.append(401)
    except RateLimited:
        statuses.append(429)
print(json.dumps(statuses), flush=True)
"""


def test_racing_worker_processes_get_exactly_the_limit_of_guesses(
    workers: tuple[Runtime, Runtime], settings: Settings, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _GUESSER, str(settings.data_dir), str(go), "6"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:  # every process has opened its runtime: start together
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        go.touch()
        statuses: Counter[int] = Counter()
        for process in processes:
            out, _ = process.communicate(timeout=60)
            assert process.returncode == 0
            statuses.update(json.loads(out))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    # 24 guesses at once from 4 processes: the count and the decision are one step.
    assert statuses == Counter({401: 10, 429: 14})


class _HeldHasher(PasswordHasher):
    """``rt.hasher``'s real argon2, held inside ``verify`` until the test lets it go."""

    def __init__(self, real: PasswordHasher) -> None:
        super().__init__(
            time_cost=real.time_cost,
            memory_cost=real.memory_cost,
            parallelism=real.parallelism,
            hash_len=real.hash_len,
            salt_len=real.salt_len,
            type=real.type,
        )
        self.checking = threading.Event()
        self.go_on = threading.Event()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.checking.set()
        assert self.go_on.wait(10)
        return super().verify(hash, password)


def _sign_in_held(rt: Runtime) -> tuple[_HeldHasher, threading.Thread, list[int]]:
    """alice signs in with the right password through ``rt``; it stops inside argon2."""
    held = _HeldHasher(rt.hasher)
    rt.hasher = held
    status: list[int] = []
    thread = threading.Thread(
        target=lambda: status.append(sign_in(rt, LoginThrottles(), "alice", PASSWORD))
    )
    thread.start()
    assert held.checking.wait(10)
    return held, thread, status


def test_a_sign_in_lets_every_other_writer_through_while_argon2_runs(
    workers: tuple[Runtime, Runtime],
) -> None:
    one, two = workers
    held, signing_in, status = _sign_in_held(one)
    wrote = threading.Event()

    def write() -> None:  # BEGIN IMMEDIATE: waits for the write lock if anyone holds it
        with two.db.begin() as conn:
            conn.execute(text("UPDATE users SET updated_at = updated_at"))
        wrote.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert wrote.wait(5), "a writer waited for a sign-in's password check"
    finally:
        held.go_on.set()
        writer.join(15)
        signing_in.join(15)
    assert status == [200]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("suspend", "user_suspended"),
        ("new password", "password_changed"),
    ],
)
def test_an_account_changed_while_its_password_was_checked_does_not_sign_in(
    workers: tuple[Runtime, Runtime], change: str, reason: str
) -> None:
    one, two = workers
    held, signing_in, status = _sign_in_held(one)
    with two.db.begin() as conn:  # another worker, meanwhile
        alice = find_user(conn, "alice")
        assert alice is not None
        if change == "suspend":
            set_status(conn, alice.id, "suspended", now=T0)
        else:
            new_hash = hash_password("another long passphrase", hasher=two.hasher)
            set_password_hash(conn, alice.id, new_hash, now=T0)
    held.go_on.set()
    signing_in.join(15)
    assert status == [401]
    with two.db.read() as conn:
        failures = conn.execute(
            text("SELECT reason FROM audit_events WHERE action = 'login.failure'")
        ).scalars()
        assert list(failures) == [reason]


# -- signing keys rotated by another worker -------------------------------------------------


def _token(rt: Runtime) -> str:
    return issue_access_token(
        keyring=rt.keyring,
        issuer=rt.settings.resolved_issuer,
        audience=rt.settings.audience,
        subject="usr_alice",
        tenant="default",
        roles=["viewer"],
        acr="aal2",
        amr=["pwd", "otp"],
        auth_time=rt.clock.now(),
        session_id="ses_1",
        ttl=300,
        now=rt.clock.now(),
    ).token


def _with_kid(token: str, kid: str) -> str:
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *token.split(".")[1:]])


def _random_kid() -> str:
    return secrets.token_urlsafe(32)[:43]


def test_token_signed_with_a_key_another_worker_just_rotated_in_verifies_at_once(
    workers: tuple[Runtime, Runtime],
) -> None:
    one, two = workers
    new_kid = one.keyring.rotate(now=T0)
    token = _token(one)
    # No housekeeping tick has run in `two`: the unknown kid makes it look, once.
    verified = two.verify_access_token(token)
    assert verified.kid == new_kid
    assert two.keyring.active.kid == new_kid  # and it now signs with the new key too


def test_random_kids_never_make_a_worker_reload_its_keys(
    workers: tuple[Runtime, Runtime],
) -> None:
    one, two = workers
    ring = two.keyring
    for _ in range(20):
        with pytest.raises(InvalidToken, match="unknown key"):
            two.verify_access_token(_with_kid(_token(one), _random_kid()))
    assert two.keyring is ring  # the manifest did not change: nothing was read again

    one.keyring.rotate(now=T0)
    with pytest.raises(InvalidToken, match="unknown key"):
        two.verify_access_token(_with_kid(_token(one), _random_kid()))
    reloaded = two.keyring
    assert reloaded is not ring  # one reload for the one change of the manifest ...
    for _ in range(20):
        with pytest.raises(InvalidToken, match="unknown key"):
            two.verify_access_token(_with_kid(_token(one), _random_kid()))
    assert two.keyring is reloaded  # ... and none after it


def test_token_from_a_worker_that_rotated_passes_the_guard_of_another(env: Env) -> None:
    # `env` is one worker; `other`, on its data folder, rotates and signs a real session.
    other = Runtime.open(
        load_settings(
            data_dir=env.data_dir, argon2_profile="test", bootstrap_admin_password=ADMIN_PASSWORD
        ),
        clock=env.clock,
    )
    try:
        new_kid = other.keyring.rotate(now=env.clock.now())
        with other.db.begin() as conn:
            admin = find_user(conn, "admin")
            assert admin is not None
            issued = new_session(
                conn, other.sessions, admin, acr="aal2", amr=["pwd", "otp"], now=env.clock.now()
            )
    finally:
        other.close()
    response = env.client.get("/me", headers={"Authorization": f"Bearer {issued.access_token}"})
    assert response.status_code == 200, response.text
    assert env.client.get("/.well-known/jwks.json").json()["keys"][0]["kid"] == new_kid


# -- second-factor guessing ------------------------------------------------------------------


def test_second_factor_guesses_spread_over_workers_share_one_count(
    workers: tuple[Runtime, Runtime],
) -> None:
    from bastion.authn.enrollment import Origin, activate_totp, enroll_totp
    from bastion.authn.results import MfaRequired
    from bastion.authn.second_factor import verify_factor
    from bastion.errors import InvalidCode
    from bastion.factors.totp import totp_code

    one = workers[0]
    with one.db.begin() as conn:
        alice = find_user(conn, "alice")
        assert alice is not None
        enrolled = enroll_totp(conn, one.sealer, user_id=alice.id, account_name="alice",
                               name="phone", now=T0, origin=Origin(None))  # fmt: skip
        code = totp_code(secret=enrolled.secret, now=T0)
        activate_totp(conn, one.sealer, user_id=alice.id, factor_id=enrolled.factor_id,
                      code=code, now=T0)  # fmt: skip

    def guess(rt: Runtime) -> int:
        started = password_login(rt.authn, username="alice", password=PASSWORD, context=ATTACKER)
        assert isinstance(started, MfaRequired)
        try:
            verify_factor(rt.authn, transaction_id=started.transaction_id, method="totp",
                          code="000000", context=ATTACKER)  # fmt: skip
        except InvalidCode:
            return 401
        except RateLimited:
            return 429
        return 200

    # Each worker opens its own transactions; neither reaches the limit alone.
    assert [guess(workers[n % 2]) for n in range(7)] == [401] * 5 + [429] * 2
