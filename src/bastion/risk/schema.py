"""The risk engine's tables; defined with every other table in ``bastion.storage`` (which
owns the schema and its migrations) and named here for ``risk.store``."""

from bastion.storage.risk_schema import (
    risk_address_reputation,
    risk_devices,
    risk_events,
    risk_usage,
)

__all__ = ["risk_address_reputation", "risk_devices", "risk_events", "risk_usage"]
