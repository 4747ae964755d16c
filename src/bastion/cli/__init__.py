"""The ``bastion`` command line (``python -m bastion`` runs it too)."""

from bastion.cli.main import main

__all__ = ["main"]
