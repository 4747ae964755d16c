"""Which door a request came through: the API, or the web console calling the API.

The console's dispatcher (``console.dispatch``) sets ``CHANNEL_KEY`` in the ASGI scope of
each request it makes; a server never puts it there from anything a client sends (it is
not a header), so a client cannot claim to be the console. Audit events can say
``channel(request.scope)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHANNEL_KEY = "bastion.channel"
CONSOLE = "console"
API = "api"


def channel(scope: Mapping[str, Any]) -> str:
    """``"console"`` for a request the console made on a person's behalf, else ``"api"``."""
    return CONSOLE if scope.get(CHANNEL_KEY) == CONSOLE else API
