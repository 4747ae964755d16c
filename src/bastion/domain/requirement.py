"""What an action requires of the caller's authentication (a policy entry)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    acr: str
    max_age: int | None = None  # seconds since auth_time; None: any age
