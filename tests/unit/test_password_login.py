"""``password_login`` on a runtime of its own: what it stores when a password checks out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from bastion.authn.login import ClientContext, password_login
from bastion.authn.sessions import IssuedTokens
from bastion.clock import ManualClock
from bastion.config import load_settings
from bastion.factors.password import hash_password
from bastion.identity.tenants import ensure_default_tenant
from bastion.identity.users import create_user, find_user
from bastion.runtime import Runtime

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
# "ﬁ" (U+FB01) is "fi" after NFKC: the form every hash of this password is made of.
PASSWORD = "ﬁve boxing wizards jump quickly"
CLIENT = ClientContext(ip="192.0.2.7", user_agent="test")


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime.open(
        load_settings(data_dir=tmp_path / "data", argon2_profile="test"), clock=ManualClock(T0)
    )
    yield runtime
    runtime.close()


def test_a_hash_with_old_parameters_is_replaced_and_the_password_still_signs_in(
    rt: Runtime,
) -> None:
    old = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)  # not rt.hasher's
    with rt.db.begin() as conn:
        tenant = ensure_default_tenant(conn, now=T0)
        create_user(
            conn,
            tenant_id=tenant.id,
            username="alice",
            password_hash=hash_password(PASSWORD, hasher=old),
            now=T0,
        )
    for _ in range(2):  # the second sign-in checks the hash the first one stored
        answer = password_login(rt.authn, username="alice", password=PASSWORD, context=CLIENT)
        assert isinstance(answer, IssuedTokens)
        assert answer.restricted == "enrollment"
    with rt.db.read() as conn:
        alice = find_user(conn, "alice")
    assert alice is not None
    assert alice.password_hash is not None
    assert not rt.hasher.check_needs_rehash(alice.password_hash)
