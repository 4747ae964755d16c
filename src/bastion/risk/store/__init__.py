"""The risk engine's storage (its own tables, ``risk.schema``): one module per concern.

- ``history``: what a login decision reads (``load_login_history``, two queries), what
  it writes (``record_login``, ``record_session_decision``), the admin view
  (``recent_flagged``) and ``prune``;
- ``devices``: remembered devices (hashed credentials);
- ``usage``: data-plane volume per hour and the baselines learned from it.
"""

from bastion.risk.store.devices import (
    find_device,
    list_devices,
    remember_device,
    revoke_device,
    touch_device,
)
from bastion.risk.store.history import (
    HISTORY_LIMIT,
    FlaggedEvent,
    forgive_failures,
    load_login_history,
    network_of,
    prune,
    recent_flagged,
    record_login,
    record_session_decision,
    username_key,
)
from bastion.risk.store.usage import load_baselines, save_usage

__all__ = [
    "HISTORY_LIMIT",
    "FlaggedEvent",
    "find_device",
    "forgive_failures",
    "list_devices",
    "load_baselines",
    "load_login_history",
    "network_of",
    "prune",
    "recent_flagged",
    "record_login",
    "record_session_decision",
    "remember_device",
    "revoke_device",
    "save_usage",
    "touch_device",
    "username_key",
]
