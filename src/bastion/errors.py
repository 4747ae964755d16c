"""One error tree. Every error has a stable machine ``code``; ``api.problems`` renders them.

Verifiers raise these (they never return ``False``). Library exception text never
reaches a client: handlers only use ``code``, ``title``, ``detail`` set here.
"""

from __future__ import annotations

from typing import Any


class BastionError(Exception):
    """Root of every error Bastion raises on purpose."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self, detail: str | None = None, *, code: str | None = None, **fields: Any
    ) -> None:
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.fields = fields
        super().__init__(self.detail)


class ValidationError(BastionError):
    status = 422
    code = "validation_error"
    title = "The request is not valid"


class PayloadTooLarge(BastionError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class AuthenticationError(BastionError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class InvalidCredentials(AuthenticationError):
    """Unknown user, wrong password, suspended user, denied login: one body for all."""

    code = "invalid_credentials"
    title = "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("The username or password is incorrect.")


class InvalidCode(AuthenticationError):
    code = "invalid_code"
    title = "Invalid code"


class WebAuthnRefused(BastionError):
    """A WebAuthn ceremony refused what the browser sent.

    ``code`` (and the public field ``reason``) is one of the stable values of
    ``bastion.factors.webauthn.Refusal``; ``detail`` is Bastion's own sentence, never a
    library's message.
    """

    code = "webauthn_refused"
    title = "The security key's response was refused"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, code=reason, reason=reason)
        self.reason = reason


class AttestationRefused(WebAuthnRefused):
    """A registration (WebAuthn §7.1) was refused: 400, nothing is stored."""

    title = "The new security key or passkey was refused"


class AssertionRefused(WebAuthnRefused, AuthenticationError):
    """A sign-in with a security key or passkey (WebAuthn §7.2) was refused: 401."""

    status = 401
    title = "The security key or passkey sign-in was refused"


class InvalidToken(AuthenticationError):
    code = "invalid_token"
    title = "Invalid token"


class UnknownSigningKey(InvalidToken):
    """The token names a key this process has not loaded: unknown, or added moments ago by
    another process (``Runtime.verify_access_token`` re-reads the keys then, once)."""


class InvalidGrant(BastionError):
    """RFC 6749 §5.2 error for the token endpoint (rendered as ``{"error": "invalid_grant"}``)."""

    status = 400
    code = "invalid_grant"
    title = "Invalid grant"


class StepUpRequired(AuthenticationError):
    """RFC 9470: the token is valid but its assurance is too low or too old."""

    code = "insufficient_user_authentication"
    title = "Stronger or more recent authentication required"

    def __init__(self, detail: str, *, acr: str, max_age: int | None) -> None:
        super().__init__(detail)
        self.acr = acr
        self.max_age = max_age

    def www_authenticate(self) -> str:
        parts = [
            'Bearer error="insufficient_user_authentication"',
            f'error_description="{self.detail}"',
            f'acr_values="{self.acr}"',
        ]
        if self.max_age is not None:
            parts.append(f"max_age={self.max_age}")
        return ", ".join(parts)


class AuthorizationError(BastionError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(BastionError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(BastionError):
    status = 409
    code = "conflict"
    title = "Conflict"


class RateLimited(BastionError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after: int, *, scope: str | None = None) -> None:
        super().__init__(f"Too many attempts; retry after {retry_after} seconds.")
        self.retry_after = retry_after
        self.scope = scope  # which limit was reached (e.g. "account", "address"), for audit


class ConfigurationError(BastionError):
    """A server-side fault (bad settings, unreadable key file): never a client's 4xx."""

    status = 500
    code = "configuration_error"
    title = "Server configuration error"
