"""WebAuthn in the console: offered only once the API's WebAuthn routes exist.

The ceremonies run in the browser (``static/webauthn.js``, against the routes API.md
fixes): the console fetches the options from the API for the page's script, the browser
asks the authenticator, and the script puts the answer (JSON) into the page's form, which
is posted like any other. Until this server serves those routes, no button that cannot
work is shown and ``webauthn`` is never offered as a method.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from bastion.console.web import Form, credential_field

WEBAUTHN_ROUTES = (
    "/auth/passkey/options",
    "/auth/passkey/verify",
    "/me/factors/webauthn/options",
    "/me/factors/webauthn",
)
CODE_METHODS = ("totp", "recovery_code")


def webauthn_available(request: Request) -> bool:
    """True when every WebAuthn route the console's script uses is served here."""
    known = getattr(request.app.state, "console_webauthn", None)
    if known is None:
        # The served OpenAPI document lists every route (included routers are not
        # flattened into ``app.routes``); WebAuthn also needs a relying party (an RP ID).
        paths = set(request.app.openapi().get("paths", {}))
        runtime = getattr(request.app.state, "runtime", None)
        configured = runtime is None or runtime.relying_party is not None
        known = configured and all(path in paths for path in WEBAUTHN_ROUTES)
        request.app.state.console_webauthn = known
    return bool(known)


def usable_methods(request: Request, offered: Iterable[str]) -> list[str]:
    """The offered methods the console can run, in the API's order."""
    runnable = CODE_METHODS + (("webauthn",) if webauthn_available(request) else ())
    return [method for method in offered if method in runnable]


def factor_proof(form: Form) -> dict[str, Any]:
    """The body of ``/auth/login/{tx}/verify`` for what the form carries."""
    method = form.get("method")
    remember = {"remember_device": True} if form.get("remember_device") == "yes" else {}
    if method == "webauthn":
        return {"method": "webauthn", "credential": credential_field(form), **remember}
    return {"method": method, "code": form.text("code"), **remember}
