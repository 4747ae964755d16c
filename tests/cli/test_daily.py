"""The daily commands (issue 16): tenants, users with several roles and collections, factor
resets, keys, collections, the audit tail. Each runs as a user would (a subprocess on a
data folder), goes through the services the admin API calls and is audited with the CLI
as actor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer

from bastion.audit import StoredEvent, query
from bastion.cli.common import app
from bastion.config import load_settings
from bastion.datadir import lock_for_server
from bastion.identity.service_accounts import api_key_state
from bastion.runtime import Runtime
from bastion.tokens import hash_secret
from bastion.vectors import CollectionSpec, EmbeddedEngine, PointWrite, parse_point_id
from tests.support.app import Env, app_env
from tests.support.cli import bastion, installed

PASSWORD = "tangerine submarine orchestra 9"
CONTROL = "eve\x1b[2J\u202e"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return installed(tmp_path / "data")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from app_env(tmp_path)


def run_json(data: Path, *args: str, stdin: str = "") -> Any:
    result = bastion(data, *args, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def events(data: Path, action: str) -> list[StoredEvent]:
    rt = Runtime.open(load_settings(data_dir=data, argon2_profile="test"))
    try:
        with rt.db.read() as conn:
            return list(query(conn, tenant_id=None, action=action).events)
    finally:
        rt.close()


def test_tenant_create_and_list_audited_with_the_cli_as_actor(data: Path) -> None:
    made = run_json(data, "tenant", "create", "acme")
    assert made["name"] == "acme"
    listed = run_json(data, "tenant", "list")
    assert [t["name"] for t in listed] == ["acme", "default"]
    [event] = events(data, "tenant.created")
    assert (event.actor, event.tenant_id, event.details["name"]) == (
        "cli:operator",
        made["id"],
        "acme",
    )
    again = bastion(data, "tenant", "create", "acme")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert "bastion tenant list" in again.stderr  # what to do next


def test_user_create_with_several_roles_and_collections(data: Path) -> None:
    assert bastion(data, "tenant", "create", "acme").returncode == 0
    made = run_json(
        data, "user", "create", "alice", "--role", "viewer", "--role", "developer",
        "--collection", "docs", "--collection", "kb-*", "--tenant", "acme", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert sorted(made["roles"]) == ["developer", "viewer"]
    assert sorted(made["collections"]) == ["docs", "kb-*"]
    [listed] = run_json(data, "user", "list", "--tenant", "acme")
    assert listed == made
    table = bastion(data, "user", "list").stdout
    assert ", ".join(made["roles"]) in table
    assert ", ".join(made["collections"]) in table
    [event] = events(data, "user.created")
    assert event.actor == "cli:operator"
    assert event.details["roles"] == ["viewer", "developer"]
    assert PASSWORD not in json.dumps(event.details)


def test_unknown_role_is_named_with_what_to_do(data: Path) -> None:
    result = bastion(data, "user", "create", "bob", "--role", "viewer", "--role", "root",
                     "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert result.returncode == 1
    assert "Unknown roles: root" in result.stderr
    assert "bastion user create --help" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_cannot_leave_a_tenant_without_an_admin(data: Path) -> None:
    assert bastion(data, "tenant", "create", "acme").returncode == 0
    made = bastion(data, "user", "create", "root", "--role", "admin", "--tenant", "acme",
                   "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    refused = bastion(data, "user", "suspend", "root")
    assert refused.returncode == 1
    assert "last active admin" in refused.stderr
    assert "make another user admin first" in refused.stderr
    [event] = events(data, "user.updated")
    assert (event.actor, event.outcome, event.reason) == ("cli:operator", "failure", "last_admin")


def test_reset_factors_is_audited_like_the_admin_api(env: Env) -> None:
    secret, _ = env.enrolled_admin()
    assert env.full_login(secret)["status"] == "authenticated"
    reset = run_json(env.data_dir, "user", "reset-factors", "admin")
    assert reset["factors_removed"] == 1
    assert env.login().json()["status"] == "enrollment_required"  # enrols again
    [event] = events(env.data_dir, "user.factors_reset")
    assert event.actor == "cli:operator"
    assert event.details == {
        "user_id": reset["id"],
        "username": "admin",
        "factors_removed": 1,
    }


def test_key_list_and_revoke(data: Path) -> None:
    created = bastion(data, "key", "create", "--service-account", "ingest", "--role", "developer",
                      "--collection", "docs")  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    [key] = run_json(data, "key", "list")
    assert (key["service_account"], key["status"], key["hint"]) == ("ingest", "active", secret[-4:])
    assert secret not in bastion(data, "key", "list").stdout  # ids and hints, never the key

    revoked = bastion(data, "key", "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert run_json(data, "key", "list") == []
    [shown] = run_json(data, "key", "list", "--all")
    assert shown["status"] == "revoked"
    rt = Runtime.open(load_settings(data_dir=data, argon2_profile="test"))
    try:
        with rt.db.read() as conn:
            state = api_key_state(conn, hash_secret(secret))
    finally:
        rt.close()
    assert state is not None
    assert state.refusal(rt.clock.now()) is not None  # the key no longer opens anything
    [event] = events(data, "api_key.revoked")
    assert (event.actor, event.details["key_id"]) == ("cli:operator", key["id"])
    other = bastion(data, "key", "create", "--service-account", "ingest", "--role", "admin")
    assert other.returncode == 0, other.stderr
    assert "were not used" in other.stderr  # an existing account keeps its roles, and says so
    again = bastion(data, "key", "revoke", key["id"])
    assert "already revoked" in again.stdout
    assert len(events(data, "api_key.revoked")) == 1
    [kept] = events(data, "service_account.created")
    assert kept.details["roles"] == ["developer"]


def test_collection_list_shows_points_and_size_on_disk(data: Path) -> None:
    settings = load_settings(data_dir=data, argon2_profile="test")
    rt = Runtime.open(settings)
    with rt.db.read() as conn:
        from bastion.identity.tenants import require_tenant

        tenant = require_tenant(conn, "default").id
    engine = EmbeddedEngine(rt.db, data, settings)
    engine.open()
    import asyncio

    asyncio.run(engine.create_collection(tenant, CollectionSpec("docs", 8, "Cosine"), actor="t"))
    vectors = np.random.default_rng(1).random((300, 8), dtype=np.float32)
    writes = [PointWrite(parse_point_id(i), {"n": i}) for i in range(300)]
    asyncio.run(engine.upsert(tenant, "docs", writes, vectors, actor="t"))
    engine.close()  # saves the index file
    rt.close()
    [found] = run_json(data, "collection", "list")
    assert (found["tenant"], found["name"], found["points"]) == ("default", "docs", 300)
    index = (data / "vectors" / f"{found['id']}.hnsw").stat().st_size
    assert found["disk_bytes"] >= 300 * 8 * 4 + index
    assert "300" in bastion(data, "collection", "list").stdout


def test_audit_tail_follows_new_events_as_json_lines(data: Path) -> None:
    assert bastion(data, "tenant", "create", "first").returncode == 0
    command = [sys.executable, "-m", "bastion", "audit", "tail", "-n", "1", "--json",
               "--interval", "0.1", "--data-dir", str(data)]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "BASTION_ARGON2_PROFILE": "test"},
    ) as tail:  # fmt: skip
        try:
            assert tail.stdout is not None
            first = json.loads(tail.stdout.readline())
            assert (first["action"], first["details"]["name"]) == ("tenant.created", "first")
            lock_for_server(data).release()  # it holds no lock while it follows: a server starts
            assert bastion(data, "tenant", "create", "second").returncode == 0
            second = json.loads(tail.stdout.readline())
            assert (second["action"], second["details"]["name"]) == ("tenant.created", "second")
            assert second["seq"] == first["seq"] + 1
            assert second["prev_hash"] == first["hash"]
        finally:
            tail.terminate()


def test_audit_tail_shows_names_escaped(data: Path) -> None:
    made = bastion(data, "key", "create", "--service-account", "svc")
    assert made.returncode == 0, made.stderr
    shown = bastion(data, "audit", "tail", "--no-follow")
    assert shown.returncode == 0, shown.stderr
    assert "api_key.created" in shown.stdout
    assert "actor=cli:operator" in shown.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("tenant", "create", CONTROL),
        ("user", "create", CONTROL, "--role", "viewer", "--password-stdin"),
        ("key", "create", "--service-account", CONTROL),
    ],
)
def test_names_with_control_characters_are_refused_and_never_echoed(
    data: Path, args: tuple[str, ...]
) -> None:
    result = bastion(data, *args, stdin=PASSWORD + "\n")
    assert result.returncode == 1
    assert "control characters" in result.stderr or "characters" in result.stderr
    assert "\x1b" not in result.stderr + result.stdout
    assert "\u202e" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("tenant", "list"),
        ("tenant", "create", "acme"),
        ("user", "reset-factors", "alice"),
        ("key", "list"),
        ("key", "revoke", "key_x"),
        ("collection", "list"),
        ("audit", "tail", "--no-follow"),
    ],
)
def test_a_folder_without_an_installation_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    typo = tmp_path / "typo"
    result = bastion(typo, *args)
    assert result.returncode == 1
    assert "no Bastion installation" in result.stderr
    assert "bastion init" in result.stderr
    assert not typo.exists()


def test_every_command_is_in_the_docs() -> None:
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "cli.md").read_text()
    readme = (root / "README.md").read_text()
    tree: Any = typer.main.get_command(app)
    for name, command in tree.commands.items():
        assert f"`bastion {name}" in readme, name
        for sub in getattr(command, "commands", None) or [None]:
            full = f"bastion {name}" + (f" {sub}" if sub else "")
            assert f"`{full}" in guide, full
