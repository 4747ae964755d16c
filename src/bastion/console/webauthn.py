"""WebAuthn in the console: offered only once the API's WebAuthn routes exist.

The ceremonies run in the browser (``static/webauthn.js``, against the routes API.md
fixes); until this server has them, no button that cannot work is shown.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute

WEBAUTHN_ROUTES = (
    "/auth/passkey/options",
    "/auth/passkey/verify",
    "/me/factors/webauthn/options",
    "/me/factors/webauthn",
)


def webauthn_available(request: Request) -> bool:
    """True when every WebAuthn route the console's script uses is served here."""
    known = getattr(request.app.state, "console_webauthn", None)
    if known is None:
        routes: list[BaseRoute] = list(request.app.routes)
        paths = {getattr(route, "path", None) for route in routes}
        known = all(path in paths for path in WEBAUTHN_ROUTES)
        request.app.state.console_webauthn = known
    return bool(known)
