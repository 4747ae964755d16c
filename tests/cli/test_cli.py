"""The ``bastion`` command line, run as a user would (a subprocess on a data folder)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bastion import __version__
from tests.support.cli import bastion, installed

PASSWORD = "tangerine submarine orchestra 9"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder with an installation (``bastion init``)."""
    return installed(tmp_path / "data")


def test_version_and_help() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "bastion", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in version.stdout
    helped = subprocess.run(
        [sys.executable, "-m", "bastion", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("serve", "init", "user", "key", "keys", "audit"):
        assert command in helped.stdout


def test_user_lifecycle(data: Path) -> None:
    created = bastion(
        data,
        "user",
        "create",
        "alice",
        "--role",
        "developer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    listed = bastion(data, "user", "list")
    assert "alice" in listed.stdout
    assert "developer" in listed.stdout
    assert bastion(data, "user", "suspend", "alice").returncode == 0
    assert "suspended" in bastion(data, "user", "list").stdout
    assert bastion(data, "user", "delete", "alice").returncode == 0
    assert "alice" not in bastion(data, "user", "list").stdout
    assert PASSWORD not in (created.stdout + created.stderr + listed.stdout)


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (("user", "create", "bob", "--role", "root", "--password-stdin"), PASSWORD, "unknown role"),
        (("user", "create", "bob", "--role", "viewer"), "", "password is required"),
        (("user", "create", "bob", "--role", "viewer", "--password-stdin"), "password", "common"),
        (("user", "create", "bob", "--role", "viewer", "--password-stdin"), "short", "8"),
        (("user", "suspend", "nobody"), "", "no user named"),
        (
            ("user", "create", "bob", "--role", "viewer", "--tenant", "nope", "--password-stdin"),
            PASSWORD,
            "does not exist",
        ),
    ],
)
def test_bad_input_says_what_to_do(
    data: Path, args: tuple[str, ...], stdin: str, expected: str
) -> None:
    result = bastion(data, *args, stdin=stdin + "\n")
    assert result.returncode != 0
    assert expected in (result.stderr + result.stdout).lower() or expected in result.stderr
    assert "Traceback" not in result.stderr


def test_key_create_prints_the_key_once_and_stores_only_a_hash(data: Path) -> None:
    result = bastion(
        data,
        "key",
        "create",
        "--service-account",
        "ingest",
        "--role",
        "developer",
        "--expires-in",
        "30d",
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("bst_sk_")
    with sqlite3.connect(data / "bastion.db") as db:
        dump = "\n".join(db.iterdump())
    assert key not in dump
    assert (
        bastion(data, "key", "create", "--service-account", "x", "--expires-in", "soon").returncode
        != 0
    )


def test_keys_rotate_adds_a_key(data: Path) -> None:
    before = set((data / "keys").glob("*.pem"))
    rotated = bastion(data, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    after = set((data / "keys").glob("*.pem"))
    assert len(after) == len(before) + 1
    assert all(oct(path.stat().st_mode & 0o777) == "0o600" for path in after)


def test_audit_verify_passes_then_fails_after_tampering(data: Path) -> None:
    bastion(
        data,
        "user",
        "create",
        "carol",
        "--role",
        "viewer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    bastion(data, "user", "suspend", "carol")
    assert bastion(data, "audit", "checkpoint").returncode == 0
    ok = bastion(data, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    with sqlite3.connect(data / "bastion.db") as db:
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 1")
    broken = bastion(data, "audit", "verify")
    assert broken.returncode == 1
    assert "broken" in broken.stderr


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "BASTION_ACCESS_TOKEN_TTL": "3600"}
    result = subprocess.run(
        [sys.executable, "-m", "bastion", "user", "list", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "BASTION_ACCESS_TOKEN_TTL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "env", "named"),
    [
        (["--workers", "-1"], {}, "BASTION_WORKERS"),
        (["--workers", "65"], {}, "BASTION_WORKERS"),
    ],
)
def test_serve_refuses_a_bad_worker_count(
    tmp_path: Path, arguments: list[str], env: dict[str, str], named: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bastion", "serve", "--data-dir", str(tmp_path), *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr
