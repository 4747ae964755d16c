"""Issue 11.11: control characters in names.

The attack found on the running server: names (a factor's, a service account's, a role's
description…) took newlines, NUL, ANSI escapes and bidi overrides, stored raw in the audit
log and shown raw wherever they were displayed (a terminal clearing its screen, a log line
forged, ``evil\u202etxt.exe`` read backwards). Names are refused with a 422 naming the
field (one validator everywhere); whatever is stored is escaped where it is shown.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from tests.admin.helpers import mint, runtime_of
from tests.support.app import Env
from tests.support.cli import bastion, installed

from bastion.audit import query

BAD = {
    "newline": "ops\nINFO admin signed in",
    "carriage_return": "ops\rx",
    "nul": "ops\x00x",
    "ansi_escape": "ops\x1b[2J\x1b[31mred",
    "delete": "ops\x7f",
    "c1_control": "ops\x9bx",
    "bidi_override": "ops\u202etxt.exe",
    "bidi_isolate": "ops\u2066x",
    "line_separator": "ops\u2028x",
    "zero_width_space": "o\u200bps",
}


def _requests(bad: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """(method, path, body) per named field, each with ``bad`` in that field only."""
    return {
        "factor.name": ("POST", "/me/factors/totp", {"name": bad}),
        "service_account.name": (
            "POST",
            "/admin/service-accounts",
            {"name": bad, "roles": ["viewer"]},
        ),
        "role.name": ("POST", "/admin/roles", {"name": bad, "permissions": ["audit.read"]}),
        "role.description": (
            "POST",
            "/admin/roles",
            {"name": "auditor", "description": bad, "permissions": ["audit.read"]},
        ),
        "tenant.name": ("POST", "/admin/tenants", {"name": bad}),
        "user.username": (
            "POST",
            "/admin/users",
            {"username": bad, "password": "a long passphrase 77", "roles": ["viewer"]},
        ),
    }


FIELDS = {
    "factor.name": "name",
    "service_account.name": "name",
    "role.name": "name",
    "role.description": "description",
    "tenant.name": "name",
    "user.username": "username",
}


@pytest.mark.parametrize("where", sorted(FIELDS))
@pytest.mark.parametrize("kind", sorted(BAD))
def test_control_characters_in_names_are_refused(env: Env, where: str, kind: str) -> None:
    admin = mint(env, role="admin", acr="aal3")
    method, path, body = _requests(BAD[kind])[where]
    answer = env.client.request(method, path, headers=admin.auth, json=body)
    assert answer.status_code == 422, f"{where} took a {kind}: {answer.text}"
    problem = answer.json()
    assert problem["code"] == "validation_error"
    named = problem.get("field") or [e["field"] for e in problem.get("errors", [])]
    assert FIELDS[where] in (named if isinstance(named, list) else [named]), problem
    assert BAD[kind] not in answer.text  # the refusal does not echo it either
    with runtime_of(env).db.read() as conn:
        for event in query(conn, tenant_id=None, limit=1000).events:
            assert not any(BAD[kind] in text for text in _strings(event.details)), event


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value (keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for k, v in value.items() for text in (k, *_strings(v))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_a_clean_name_with_unicode_letters_is_still_accepted(env: Env) -> None:
    admin = mint(env, role="admin", acr="aal3")
    made = env.client.post(
        "/admin/roles",
        headers=admin.auth,
        json={"name": "auditor", "description": "Équipe d'audit — lecture seule", "permissions": [
            "audit.read"]},
    )  # fmt: skip
    assert made.status_code == 201, made.text


def _plant(data: Path, sql: str, *values: object) -> None:
    """A row written before names were checked (or by hand): shown, it must be harmless."""
    with closing(sqlite3.connect(data / "bastion.db")) as db:
        db.execute(sql, values)
        db.commit()


def test_stored_control_characters_are_escaped_in_the_terminal(tmp_path: Path) -> None:
    data = installed(tmp_path / "data")
    created = bastion(data, "user", "create", "eve", "--role", "viewer", "--password-stdin",
                      stdin="a long passphrase 77\n")  # fmt: skip
    assert created.returncode == 0, created.stderr
    _plant(data, "UPDATE users SET username = ? WHERE username = 'eve'", "eve\x1b[2J\u202egnp.exe")
    listed = bastion(data, "user", "list")
    assert listed.returncode == 0, listed.stderr
    assert "\x1b[2J" not in listed.stdout
    assert "\u202e" not in listed.stdout
    assert "\\x1b[2J" in listed.stdout  # shown, escaped: the operator sees what is there
    assert "\\u202e" in listed.stdout


def test_stored_control_characters_are_escaped_in_the_console(tmp_path: Path) -> None:
    from tests.console.helpers import console_env

    for console in console_env(tmp_path):
        browser, _ = console.admin()
        user_id = console.user("eve")
        with runtime_of_console(console).db.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE users SET username = ? WHERE id = ?", ("eve\u202egnp.exe\x1b[31m", user_id)
            )
        page = browser.get("/console/admin/users")
        assert page.status_code == 200, page.text[:300]
        assert "\u202e" not in page.text
        assert "\x1b" not in page.text
        assert "eve\\u202egnp.exe\\x1b[31m" in page.text


def runtime_of_console(console: Any) -> Any:
    return console.runtime
