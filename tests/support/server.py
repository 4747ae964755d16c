"""A real Bastion server in a subprocess on a loopback port, and real credentials for it.

Credentials are minted with Bastion's own code against the server's data folder
(same database, same signing key), exactly as a login would leave them; nothing
about the server's security logic is replaced.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bastion.config import load_settings
from bastion.factors.password import hash_password
from bastion.runtime import Runtime
from tests.support.credentials import new_api_key, new_session, new_user

ADMIN_PASSWORD = "correct horse battery staple 42"
TEST_ENV = {
    "BASTION_ARGON2_PROFILE": "test",
    "BASTION_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "BASTION_LOG_LEVEL": "warning",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_pids(pid: int) -> list[int]:
    """The worker processes of ``bastion serve --workers N`` running as ``pid`` (not
    multiprocessing's resource tracker, which spawn may start beside them); [] when
    ``pid`` is gone."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return []
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return [child for child in found if "resource_tracker" not in _command(child)]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    data_dir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    module: str = "bastion"  # ``python -m MODULE serve``; the bench's is ``bench.serve``
    log_path: Path = field(init=False)
    stderr_path: Path | None = None  # stderr apart from stdout (default: both in log_path)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as log, open(self.stderr_path or os.devnull, "ab") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    self.module,
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=err if self.stderr_path else subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run (crash tests). With ``--workers N`` only the
        parent: its workers notice and stop themselves cleanly."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def kill_every_process(self) -> None:
        """SIGKILL to the worker processes, then to the server: nothing shuts down
        cleanly, nothing saves an index (a crash of the whole machine's service)."""
        if self.process and self.process.poll() is None:
            for worker in worker_pids(self.process.pid):
                try:
                    os.kill(worker, signal.SIGKILL)
                except ProcessLookupError:
                    continue
        self.kill()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    data_dir: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    *,
    module: str = "bastion",
    stderr_path: Path | None = None,
) -> ServerProcess:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = port or free_port()
    # The issuer of every token is the public URL: the server's and the minted ones agree.
    base = {**TEST_ENV, "BASTION_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    server = ServerProcess(
        data_dir, port, {**base, **(env or {})}, module=module, stderr_path=stderr_path
    )
    return server.start()


def open_runtime(data_dir: Path, env: dict[str, str]) -> Runtime:
    """A ``Runtime`` on a server's data folder with that server's settings (same keys)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return Runtime.open(load_settings(data_dir=data_dir))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Credentials:
    """Mints real users, sessions, access tokens and API keys in a server's data folder
    (``tests.support.credentials``, with the server's settings and keys)."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.env = env

    def _runtime(self) -> Runtime:
        return open_runtime(self.data_dir, self.env)

    def user(
        self,
        *,
        role: str = "developer",
        tenant: str = "default",
        collections: Sequence[str] | None = None,
        username: str | None = None,
        password: str = ADMIN_PASSWORD,
    ) -> str:
        """A user with a password and the role; returns the username."""
        rt = self._runtime()
        try:
            with rt.db.begin() as conn:
                user = new_user(
                    conn,
                    roles=[role],
                    tenant=tenant,
                    collections=collections,
                    username=username,
                    password_hash=hash_password(password, hasher=rt.hasher),
                    now=rt.clock.now(),
                )
            return user.username
        finally:
            rt.close()

    def token(
        self,
        *,
        role: str = "developer",
        tenant: str = "default",
        acr: str = "aal2",
        collections: Sequence[str] | None = None,
        username: str | None = None,
    ) -> str:
        """A real access token of a fresh user with ``role`` (signed by the server's key)."""
        rt = self._runtime()
        try:
            with rt.db.begin() as conn:
                now = rt.clock.now()
                user = new_user(
                    conn,
                    roles=[role],
                    tenant=tenant,
                    collections=collections,
                    username=username,
                    now=now,
                )
                return new_session(conn, rt.sessions, user, acr=acr, now=now).access_token
        finally:
            rt.close()

    def api_key(
        self,
        *,
        role: str = "viewer",
        tenant: str = "default",
        collections: Sequence[str] | None = None,
    ) -> str:
        rt = self._runtime()
        try:
            with rt.db.begin() as conn:
                return new_api_key(
                    conn, role=role, tenant=tenant, collections=collections, now=rt.clock.now()
                )
        finally:
            rt.close()


class LiveServer(Credentials):
    """What the ``live_server`` fixture yields: a running server plus credential minting."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(server.data_dir, server.env)
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url
