"""Data-plane errors with Qdrant's status codes (Qdrant answers 400 to bad input)."""

from __future__ import annotations

from bastion.errors import BastionError, Conflict, NotFound


class BadRequest(BastionError):
    """Malformed or invalid input: Qdrant answers ``400 Bad Request``."""

    status = 400
    code = "bad_request"
    title = "Bad request"


class CollectionNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Not found: Collection `{name}` doesn't exist!")


class PointNotFound(NotFound):
    def __init__(self, point_id: object) -> None:
        super().__init__(f"Not found: No point with id {point_id} found")


class CollectionExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"Wrong input: Collection `{name}` already exists!")


class PayloadTooLarge(BadRequest):
    """One point's payload is over ``settings.max_payload_bytes``."""

    status = 413
    code = "payload_too_large"
    title = "Payload too large"
