"""Keep a script signed in: one sign-in, then fresh access tokens for ``qdrant-client``.

Access tokens live 15 minutes at most. A long-running script signs in once (password,
then a code from the user's authenticator app) and hands ``session.token`` to
``qdrant-client`` as ``auth_token_provider``; the client asks for a token before each
request, and the session refreshes it with ``POST /auth/token`` shortly before it
expires (the refresh token rotates on every use, as the server requires)::

    from qdrant_client import QdrantClient
    from bastion.client import BastionSession

    session = BastionSession.sign_in("https://vectors.example.com", "alice")  # prompts
    client = QdrantClient(url=session.url, auth_token_provider=session.token)
    ...
    session.logout()

``AsyncQdrantClient`` takes ``session.atoken``. The helper needs only the standard
library, talks only to the documented HTTP API (docs/admin-api.md, README) and keeps the
tokens in memory, never on disk. When the session itself ends (its refresh token expired
or was revoked: logout, suspension, reuse detected), ``token`` raises
``SessionEnded``: sign in again.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BastionSession", "ClientError", "SessionEnded", "SignInFailed"]

DEFAULT_MARGIN = 60.0  # seconds before expiry at which a token is refreshed


class ClientError(Exception):
    """The server refused a request: its HTTP status, problem ``code`` and ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class SignInFailed(ClientError):
    """The sign-in did not end with tokens (wrong password or code, no factor yet, …)."""


class SessionEnded(ClientError):
    """The refresh token no longer works (expired, revoked, reused): sign in again."""


@dataclass
class _Tokens:
    access: str
    refresh: str
    expires_at: float  # on ``time.monotonic``'s clock
    lifetime: float


class BastionSession:
    """A signed-in session that hands out an access token fresh enough for a request."""

    def __init__(
        self,
        url: str,
        tokens: dict[str, Any],
        *,
        margin: float = DEFAULT_MARGIN,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = _base(url)
        self.margin = margin
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.acr: str | None = tokens.get("acr")
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self._read(tokens)

    # -- signing in --------------------------------------------------------------------

    @classmethod
    def sign_in(
        cls,
        url: str,
        username: str,
        password: str | None = None,
        *,
        code: str | Callable[[Sequence[str]], str] | None = None,
        method: str = "totp",
        margin: float = DEFAULT_MARGIN,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> BastionSession:
        """Sign in with a password and a second factor; ask on the terminal for whatever
        is not given. ``code`` is the code itself or a function of the offered methods
        that returns it (called only when the server asks for a second factor);
        ``method`` is ``totp`` or ``recovery_code``."""
        base = _base(url)
        if password is None:
            password = getpass.getpass(f"Password for {username}: ")
        answer = _post(base, "/auth/login", {"username": username, "password": password},
                       timeout=timeout, context=ssl_context, error=SignInFailed)  # fmt: skip
        if answer.get("status") == "mfa_required":
            methods = list(answer.get("methods", ()))
            if method not in methods:
                raise SignInFailed(
                    401, "method_unavailable",
                    f"the server offers {', '.join(methods) or 'no method'} for this sign-in, "
                    f"not {method}",
                )  # fmt: skip
            given = code(methods) if callable(code) else code
            if given is None:
                given = input(f"Code from the authenticator app of {username}: ").strip()
            answer = _post(
                base,
                f"/auth/login/{answer['transaction_id']}/verify",
                {"method": method, "code": given},
                timeout=timeout,
                context=ssl_context,
                error=SignInFailed,
            )
        status = answer.get("status")
        if status != "authenticated":
            hint = {
                "enrollment_required": "enrol an authenticator in the console first",
                "mfa_required": "the policy asks for a further factor this helper cannot give",
            }.get(str(status), "unexpected answer")
            raise SignInFailed(401, str(status), hint)
        return cls(base, answer, margin=margin, timeout=timeout, ssl_context=ssl_context)

    # -- tokens ------------------------------------------------------------------------

    def token(self) -> str:
        """An access token valid for at least ``margin`` seconds (or half its lifetime,
        for lifetimes shorter than twice the margin); refreshed when needed. Pass it as
        ``auth_token_provider``."""
        with self._lock:
            tokens = self._tokens
            margin = min(self.margin, tokens.lifetime / 2)
            if tokens.expires_at - self._clock() <= margin:
                self._tokens = self._refresh(tokens)
            return self._tokens.access

    async def atoken(self) -> str:
        """``token`` for ``AsyncQdrantClient`` (the refresh runs off the event loop)."""
        return await asyncio.to_thread(self.token)

    def logout(self) -> None:
        """End the session on the server: its access and refresh tokens die at once."""
        with self._lock:
            _post(self.url, "/auth/logout", {}, timeout=self.timeout, context=self.ssl_context,
                  error=ClientError, bearer=self._tokens.access)  # fmt: skip

    def _refresh(self, tokens: _Tokens) -> _Tokens:
        body = {"grant_type": "refresh_token", "refresh_token": tokens.refresh}
        answer = _post(self.url, "/auth/token", body, timeout=self.timeout,
                       context=self.ssl_context, error=SessionEnded)  # fmt: skip
        self.acr = answer.get("acr", self.acr)
        return self._read(answer)

    def _read(self, answer: dict[str, Any]) -> _Tokens:
        try:
            lifetime = float(answer["expires_in"])
            return _Tokens(
                access=str(answer["access_token"]),
                refresh=str(answer["refresh_token"]),
                expires_at=self._clock() + lifetime,
                lifetime=lifetime,
            )
        except (KeyError, TypeError, ValueError):
            raise ClientError(502, "bad_token_response", "the answer holds no tokens") from None

    def __repr__(self) -> str:  # never the tokens
        return f"BastionSession(url={self.url!r}, acr={self.acr!r})"


def _base(url: str) -> str:
    """The server's URL without a trailing slash; only http(s) URLs with a host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL of a Bastion server: {url!r}")
    return url.rstrip("/")


def _post(
    base: str,
    path: str,
    body: dict[str, Any],
    *,
    timeout: float,
    context: ssl.SSLContext | None,
    error: type[ClientError],
    bearer: str | None = None,
) -> dict[str, Any]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if bearer is not None:
        headers["authorization"] = f"Bearer {bearer}"
    # ``base`` passed ``_base``: an http(s) URL, never ``file:`` or another scheme.
    request = urllib.request.Request(  # noqa: S310
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as refused:
        with refused:
            raise _refusal(refused, error) from None
    except (urllib.error.URLError, OSError) as exc:
        raise error(0, "unreachable", f"cannot reach {base}: {exc}") from None
    if not isinstance(answer, dict):
        raise error(502, "bad_response", "the answer is not a JSON object")
    return answer


def _refusal(refused: urllib.error.HTTPError, error: type[ClientError]) -> ClientError:
    try:
        problem = json.loads(refused.read())
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    code = str(problem.get("code") or problem.get("error") or "http_error")
    detail = str(problem.get("detail") or problem.get("error_description") or refused.reason)
    return error(refused.code, code, detail)
