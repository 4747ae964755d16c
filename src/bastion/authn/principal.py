"""Moved to ``bastion.domain`` (shared types sit at the bottom of the layers); these
names stay importable from here for code written against the old place."""

from bastion.domain.principal import Grant, Principal, PrincipalKind

__all__ = ["Grant", "Principal", "PrincipalKind"]
