"""Issue 16, "two servers on one data folder": commands that write take the folder's lock
the way a server does, so no server starts under a running command; beside a running
server a command goes through the database the server uses, and the server sees at once
what the command wrote."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bastion.datadir import lock_for_command
from tests.cli.test_data_folder import single_error_line
from tests.cli.test_serve import serve_once
from tests.support.cli import bastion, installed
from tests.support.server import free_port, start_server

PASSWORD = "tangerine submarine orchestra 9"


def test_no_server_starts_while_a_command_holds_the_folder(tmp_path: Path) -> None:
    data = installed(tmp_path / "data")
    with lock_for_command(data):  # what every command holds while it runs
        refused = serve_once(data, free_port())
    line = single_error_line(refused)
    assert "in use by a bastion command that is still running" in line
    assert "listening" not in refused.stdout


def test_commands_beside_a_running_server_write_through_its_database(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        made = bastion(server.data_dir, "tenant", "create", "acme")
        assert made.returncode == 0, made.stderr
        args = ("user", "create", "alice", "--role", "viewer", "--tenant", "acme")
        created = bastion(server.data_dir, *args, "--password-stdin", stdin=PASSWORD + "\n")
        assert created.returncode == 0, created.stderr
        signed_in = httpx.post(
            f"{server.url}/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        assert signed_in.json()["status"] == "enrollment_required"  # the server sees her
        tail = bastion(server.data_dir, "audit", "tail", "--no-follow", "--json", "-n", "50")
        written = [json.loads(line) for line in tail.stdout.splitlines()]
        mine = [event["action"] for event in written if event["actor"] == "cli:operator"]
        assert mine == ["tenant.created", "user.created"]
    finally:
        server.stop()
