"""Assurance levels (NIST SP 800-63B): their names and their order.

How a set of verified factors reaches a level is computed in ``authn.assurance``; what
an action needs is a ``Requirement``; this module only says which level is higher.
"""

from __future__ import annotations

AAL1 = "aal1"
AAL2 = "aal2"
AAL3 = "aal3"
ACR_VALUES: tuple[str, ...] = (AAL1, AAL2, AAL3)  # weakest first
_RANK = {acr: rank for rank, acr in enumerate(ACR_VALUES, start=1)}


def acr_rank(acr: str) -> int:
    """1 for aal1 … 3 for aal3; 0 for anything unknown (ranks below aal1: fail closed)."""
    return _RANK.get(acr, 0)


def acr_satisfies(have: str, need: str) -> bool:
    """Whether an ``acr`` of ``have`` meets a requirement of ``need``.

    Unknown values never satisfy, and an unknown requirement is never met (a typo in a
    policy must not open the door).
    """
    return acr_rank(have) > 0 and acr_rank(need) > 0 and acr_rank(have) >= acr_rank(need)
