"""What every console request shares: host check, security headers, templates, forms, CSRF.

Every console response carries the same headers (``SECURITY_HEADERS``): a strict
Content-Security-Policy with no inline script or style, no framing, no referrer, no
caching. A request under another host name than the configured public URL's is sent to
the public URL, built from the configuration only (never from the ``Host`` header).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import parse_qs, quote, urlsplit

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bastion.config import Settings
from bastion.errors import BastionError
from bastion.text import printable

log = logging.getLogger("bastion.console")

PREFIX = "/console"
MAX_FORM_BYTES = 256 * 1024
MAX_FORM_FIELDS = 200

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _shown(value: Any) -> Any:
    """Every ``{{ … }}`` of a template: text from the API or the database has its control
    and invisible formatting characters escaped (``bastion.text``: autoescape makes HTML
    inert, not a bidi override or an ANSI escape copied from the page), then autoescape
    runs. Markup a template made itself (macros) is left as it is, and line breaks (white
    space in HTML, and the layout of a JSON filter typed in a text area)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value, keep_layout=True)
    return value


TEMPLATES = Environment(
    loader=PackageLoader("bastion.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=_shown,
)


def when(value: str | None) -> str:
    """An ISO 8601 moment from the API as "2026-11-30 12:00 UTC" (to the minute)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES.filters["when"] = when


class ConsoleError(Exception):
    """A console request that ends in a page of its own (not an API refusal)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class GoTo(Exception):
    """This request belongs on another console page (e.g. a sign-in still in progress)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class SignInRequired(Exception):
    """No live console session (none, over, or its Bastion session ended): sign in.
    ``notice`` names one of the sign-in page's fixed messages (never free text)."""

    def __init__(self, notice: str | None = None) -> None:
        super().__init__(notice or "sign in")
        self.notice = notice


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def public_parts(settings: Settings) -> tuple[str, str]:
    """(scheme, netloc) of the configured public URL, lower case."""
    parts = urlsplit(settings.resolved_public_url)
    return parts.scheme.lower(), parts.netloc.lower()


def public_origin(settings: Settings) -> str:
    scheme, netloc = public_parts(settings)
    return f"{scheme}://{netloc}"


def over_tls(settings: Settings) -> bool:
    return public_parts(settings)[0] == "https"


def cookie_name(settings: Settings, base: str = "bastion_console") -> str:
    """``__Host-`` names (Secure, Path=/, no Domain: RFC 6265bis §4.1.3.2) under TLS."""
    return f"__Host-{base}" if over_tls(settings) else base


def set_cookie(response: Response, settings: Settings, name: str, value: str) -> None:
    response.set_cookie(
        cookie_name(settings, name),
        value,
        httponly=True,
        samesite="strict",
        secure=over_tls(settings),
        path="/",
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        cookie_name(settings, name),
        httponly=True,
        samesite="strict",
        secure=over_tls(settings),
        path="/",
    )


DEVICE_COOKIE = "bastion_device"
DEVICE_COOKIE_DAYS = 365  # the longest device lifetime a policy allows; the server decides


def device_cookie_name(settings: Settings) -> str:
    """``__Secure-`` under TLS (not ``__Host-``: the cookie is scoped to ``/console``)."""
    return f"__Secure-{DEVICE_COOKIE}" if over_tls(settings) else DEVICE_COOKIE


def set_device_cookie(response: Response, settings: Settings, credential: str) -> None:
    """The remembered-device credential: HttpOnly (never readable by script), SameSite
    Strict, Secure under TLS, sent only to the console (``Path=/console``)."""
    response.set_cookie(
        device_cookie_name(settings),
        credential,
        max_age=DEVICE_COOKIE_DAYS * 86_400,
        httponly=True,
        samesite="strict",
        secure=over_tls(settings),
        path=PREFIX,
    )


def clear_device_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        device_cookie_name(settings),
        httponly=True,
        samesite="strict",
        secure=over_tls(settings),
        path=PREFIX,
    )


def read_device_cookie(request: Request) -> str | None:
    value = request.cookies.get(device_cookie_name(settings_of(request)))
    return value if value and len(value) <= 128 else None


def read_cookie(request: Request, name: str) -> str | None:
    return request.cookies.get(cookie_name(settings_of(request), name))


def _foreign_host(request: Request) -> Response | None:
    """A redirect to the public URL when the request came under another host name."""
    settings = settings_of(request)
    _, netloc = public_parts(settings)
    if request.headers.get("host", "").lower() == netloc:
        return None
    target = settings.resolved_public_url + quote(request.url.path)
    if request.url.query and request.method in ("GET", "HEAD"):
        target += "?" + request.url.query
    return RedirectResponse(target, status_code=308 if request.method != "GET" else 302)


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def error_page(status: int, message: str) -> Response:
    html = TEMPLATES.get_template("error.html").render(status=status, message=message)
    return HTMLResponse(html, status_code=status)


def sign_in_redirect(notice: str | None = None) -> Response:
    response = see_other(f"{PREFIX}/sign-in" + (f"?notice={quote(notice)}" if notice else ""))
    return response


def see_other(location: str) -> Response:
    """POST-redirect-GET (RFC 9110 §15.4.4); only console paths are ever targets."""
    if not location.startswith(PREFIX):
        raise ValueError(f"redirect outside the console: {location!r}")
    return RedirectResponse(location, status_code=303)


class ConsoleRoute(APIRoute):
    """Every console route: the host check first, the security headers on every answer,
    and an HTML page (never problem+json or a stack trace) when something is refused."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            moved = _foreign_host(request)
            if moved is not None:
                return secured(moved)
            try:
                response = await original(request)
            except SignInRequired as needed:
                response = sign_in_redirect(needed.notice)
                clear_cookie(response, settings_of(request), "bastion_console")
            except GoTo as elsewhere:
                response = see_other(elsewhere.location)
            except ConsoleError as refused:
                response = error_page(refused.status, refused.message)
            except RequestValidationError:
                response = error_page(400, "The request is not valid.")
            except BastionError as refused:
                response = error_page(refused.status, refused.title)
            return secured(response)

        return handler


class Form:
    """An ``application/x-www-form-urlencoded`` body (the console's forms send nothing else)."""

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        self.fields = {name: list(values) for name, values in fields.items()}

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def text(self, name: str) -> str:
        return self.get(name).strip()

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def without(self, *names: str) -> dict[str, list[str]]:
        return {key: value for key, value in self.fields.items() if key not in names}


async def _read_body(request: Request, kind: str) -> bytes:
    """The body of a request of content type ``kind``, at most ``MAX_FORM_BYTES``."""
    sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if sent != kind:
        raise ConsoleError(415, "The console accepts only its own forms.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ConsoleError(413, "The form is too large.")
    return body


async def read_form(request: Request) -> Form:
    body = await _read_body(request, "application/x-www-form-urlencoded")
    try:
        fields = parse_qs(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise ConsoleError(400, "The form could not be read.") from None
    return Form(fields)


def _json_object(text: str | bytes, problem: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ConsoleError(400, problem) from None
    if not isinstance(parsed, dict):
        raise ConsoleError(400, problem)
    return parsed


async def read_json(request: Request) -> dict[str, Any]:
    """The small JSON object a console script sends (WebAuthn options)."""
    body = await _read_body(request, "application/json")
    return _json_object(body, "The request must be a JSON object.")


def credential_field(form: Form) -> dict[str, Any] | None:
    """The WebAuthn credential a script put into a form (``credential``: JSON), or None."""
    text = form.get("credential")
    if not text:
        return None
    return _json_object(text, "The security key's answer could not be read.")


def same_origin(request: Request) -> bool:
    """The request was sent by a page of the console itself.

    Its ``Origin`` is the public URL's origin; or it is ``null`` / absent (a page served
    with ``Referrer-Policy: no-referrer`` sends ``Origin: null`` on a form post: Fetch
    §3.1 "serializing a request origin") and ``Sec-Fetch-Site``, which no script can
    set, says ``same-origin``. Anything else is refused: another origin, or no proof.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        return origin.lower() == public_origin(settings_of(request))
    return request.headers.get("sec-fetch-site") == "same-origin"


def refuse_cross_site(request: Request) -> NoReturn:
    """A state-changing request this console's pages did not send (CSRF): refused, logged."""
    client = request.client.host if request.client else "-"
    log.warning(
        "console: refused a form from another origin or without its token (%s %s from %s)",
        request.method,
        request.url.path,
        client,
    )
    raise ConsoleError(403, "This form was not sent by this console. Reload the page.")


def check_token(presented: str, expected: str) -> bool:
    return bool(presented) and hmac.compare_digest(presented.encode(), expected.encode())


def new_csrf_secret() -> str:
    return secrets.token_urlsafe(32)


def render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status)
