"""Public endpoints: Qdrant-style root, JWKS (health: ``api.observability``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from bastion import __version__
from bastion.api.guard import runtime
from bastion.api.responses import Jwks, ServerIdentity

QDRANT_API_VERSION = "1.20.0"  # the Qdrant REST API level Bastion speaks

router = APIRouter(tags=["public"])


@router.get("/", response_model=ServerIdentity, summary="Server identity (Qdrant-compatible)")
def root() -> dict[str, Any]:
    return {
        "title": "bastion - qdrant-compatible vector search behind a zero-trust front door",
        "version": QDRANT_API_VERSION,
        "commit": None,
        "bastion_version": __version__,
    }


@router.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    response_model_exclude_unset=True,
    summary="Public keys that sign access tokens",
)
def jwks(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    keys: dict[str, Any] = rt.keyring.jwks(
        now=rt.clock.now(), max_token_ttl=rt.settings.access_token_ttl
    )
    return keys
