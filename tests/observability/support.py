"""The in-process app with chosen settings and a chosen peer address, and scrape parsing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bastion.app import create_app
from bastion.config import load_settings
from tests.support.server import ADMIN_PASSWORD

LOOPBACK = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.9", 40000)  # TEST-NET-3: never loopback
TOKEN = "scrape-token-" + "7f3a9c" * 6

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def observed_app(tmp_path: Path, **settings: Any) -> FastAPI:
    return create_app(
        load_settings(
            data_dir=tmp_path / "data",
            argon2_profile="test",
            bootstrap_admin_password=ADMIN_PASSWORD,
            **settings,
        )
    )


@contextmanager
def client(app: FastAPI, peer: tuple[str, int] = LOOPBACK) -> Iterator[TestClient]:
    """A client whose requests come from ``peer`` (the app started: collections loaded)."""
    with TestClient(app, client=peer, raise_server_exceptions=False) as started:
        yield started


def parsed(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)
