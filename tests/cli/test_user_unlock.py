"""``bastion user unlock NAME``: an operator clears a user's failure counts (issue 11.9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.audit import query
from bastion.authn.login import ClientContext, password_login
from bastion.config import load_settings
from bastion.errors import InvalidCredentials, RateLimited
from bastion.runtime import Runtime
from tests.support.cli import bastion, installed

PASSWORD = "tangerine submarine orchestra 9"
STRANGER = ClientContext(ip="198.51.100.7", user_agent=None)


def sign_in(data: Path, password: str) -> int:
    rt = Runtime.open(load_settings(data_dir=data, argon2_profile="test"))
    try:
        password_login(rt.authn, username="alice", password=password, context=STRANGER)
    except InvalidCredentials:
        return 401
    except RateLimited:
        return 429
    finally:
        rt.close()
    return 200


def test_unlock_clears_the_counts_and_is_audited(tmp_path: Path) -> None:
    data = installed(tmp_path / "data")
    created = bastion(data, "user", "create", "alice", "--role", "viewer", "--password-stdin",
                      stdin=PASSWORD + "\n")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert [sign_in(data, "wrong guess") for _ in range(10)] == [401] * 10
    assert sign_in(data, PASSWORD) == 429

    unlocked = bastion(data, "user", "unlock", "alice")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "10 failed sign-in(s)" in unlocked.stdout
    assert sign_in(data, PASSWORD) == 200
    rt = Runtime.open(load_settings(data_dir=data, argon2_profile="test"))
    try:
        with rt.db.read() as conn:
            [event] = query(conn, tenant_id=None, action="user.unlocked").events
    finally:
        rt.close()
    assert event.actor == "cli:operator"
    assert event.details["sign_in_failures"] == 10


@pytest.mark.parametrize("name", ["nobody", "eve\x1b[2J"])
def test_unlock_of_an_unknown_user_says_so(tmp_path: Path, name: str) -> None:
    data = installed(tmp_path / "data")
    result = bastion(data, "user", "unlock", name)
    assert result.returncode != 0
    assert "no user named" in result.stderr
    assert "\x1b[2J" not in result.stderr
