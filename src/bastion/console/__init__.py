"""The web console at ``/console``: server-rendered pages over Bastion's own HTTP API.

``router`` is mounted by the app; ``channel`` tells whether a request came from it.
"""

from bastion.console import pages as _pages  # noqa: F401  (registers the routes)
from bastion.console.actions import router
from bastion.console.channel import CHANNEL_KEY, channel

__all__ = ["CHANNEL_KEY", "channel", "router"]
