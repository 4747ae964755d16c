"""Shared value types at the bottom of the layers: who acts, what they hold, what an
action requires. Every package may import these; they import nothing of Bastion."""

from bastion.domain.assurance import AAL1, AAL2, AAL3, ACR_VALUES, acr_rank, acr_satisfies
from bastion.domain.principal import Grant, Principal, PrincipalKind
from bastion.domain.requirement import Requirement

__all__ = [
    "AAL1",
    "AAL2",
    "AAL3",
    "ACR_VALUES",
    "Grant",
    "Principal",
    "PrincipalKind",
    "Requirement",
    "acr_rank",
    "acr_satisfies",
]
