"""The console's pages; importing this package registers their routes on the router."""

from bastion.console.pages import (
    account,
    admin,
    assets,
    audit,
    collections,
    keys,
    risk,
    signin,
)

assets.add_fallback()

__all__ = ["account", "admin", "assets", "audit", "collections", "keys", "risk", "signin"]
