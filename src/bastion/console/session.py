"""One console request as a signed-in person: their session and the API in their name.

Each page load calls the API at least once (``GET /me``) with the session's access token,
so a revoked session or a suspended user stops the console within the API's liveness
window (≤ 1 s). A 401 from the API ends the console session, except the RFC 9470
``insufficient_user_authentication`` challenge, which becomes a step-up in place
(``StepUpNeeded``, handled by ``console.actions``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bastion.authn.console_sessions import (
    ConsoleSession,
    claim_refresh,
    create_console_session,
    delete_console_session,
    load_console_session,
    rotate_console_session,
    save_state,
    save_tokens,
    touch,
)
from bastion.console.dispatch import ApiResponse, call_api
from bastion.console.web import (
    GoTo,
    SignInRequired,
    check_token,
    new_csrf_secret,
    read_cookie,
    refuse_cross_site,
    render,
    same_origin,
    set_cookie,
    settings_of,
)
from bastion.console.webauthn import webauthn_available
from bastion.runtime import Runtime

COOKIE = "bastion_console"
# Where a session at each stage belongs (a page of another stage sends it there).
STAGE_PAGES = {
    "signin": "/console/sign-in/verify",
    "enrolment": "/console/enrol",
    "active": "/console",
}
REFRESH_BEFORE = timedelta(seconds=120)  # rotate tokens this long before the access token ends
# 401 codes about what the person typed (a wrong TOTP code), not about the session's token.
PROOF_REFUSED = frozenset({"invalid_code", "invalid_credentials"})
_CHALLENGE = re.compile(r'(\w+)="?([^",]*)"?')


class StepUpNeeded(Exception):
    """The API asked for a higher or fresher authentication (RFC 9470)."""

    def __init__(self, acr: str, max_age: int | None, message: str) -> None:
        super().__init__(message)
        self.acr = acr
        self.max_age = max_age
        self.message = message


class Refused(Exception):
    """The API refused the action (4xx other than a 401): its message is shown."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def api_message(response: ApiResponse) -> tuple[str, str | None]:
    """The human message and code of an API error (problem+json or Qdrant's envelope)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            return body["detail"], body.get("code")
        status = body.get("status")
        if isinstance(status, dict) and isinstance(status.get("error"), str):
            return status["error"], None
        if isinstance(body.get("error"), str):
            return body["error"], None
    return f"The request was refused ({response.status}).", None


def step_up_challenge(response: ApiResponse) -> StepUpNeeded | None:
    """The RFC 9470 challenge in a 401's ``WWW-Authenticate``, or None."""
    header = response.headers.get("www-authenticate", "")
    fields = dict(_CHALLENGE.findall(header))
    if fields.get("error") != "insufficient_user_authentication":
        return None
    max_age = fields.get("max_age", "")
    return StepUpNeeded(
        acr=fields.get("acr_values") or "aal2",
        max_age=int(max_age) if max_age.isdigit() else None,
        message=fields.get("error_description") or api_message(response)[0],
    )


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def token_set(response: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What the console keeps of a token response (sealed in its row)."""
    return {
        "access": response["access_token"],
        "refresh": response.get("refresh_token"),
        "access_until": (now + timedelta(seconds=int(response["expires_in"]))).isoformat(),
    }


class Console:
    """A console request with a live session."""

    def __init__(self, request: Request, session: ConsoleSession) -> None:
        self.request = request
        self.session = session
        self.rt = runtime_of(request)
        self.me: dict[str, Any] = {}
        self.cookie: str | None = None  # a new cookie value to send (after a rotation)

    # -- loading -----------------------------------------------------------------------

    @classmethod
    async def load(cls, request: Request, *, stages: tuple[str, ...] = ("active",)) -> Console:
        """The request's live session at one of ``stages``, after one API call (``GET /me``
        for a signed-in one); raises ``SignInRequired`` otherwise."""
        rt = runtime_of(request)
        cookie = read_cookie(request, COOKIE)

        def load() -> ConsoleSession | None:
            with rt.db.begin() as conn:
                now = rt.clock.now()
                found = load_console_session(conn, rt.sealer, cookie, now=now)
                if found is not None:
                    touch(conn, found, now=now)
                return found

        session = await run_in_threadpool(load) if cookie else None
        if session is None:
            raise SignInRequired("ended" if cookie else None)
        console = cls(request, session)
        if session.stage not in stages:
            raise GoTo(STAGE_PAGES[session.stage])
        if session.stage != "signin":
            console.me = await console.api("GET", "/me")
        return console

    # -- the API in this person's name ---------------------------------------------------

    async def api(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str | int] | None = None,
        anonymous: bool = False,
    ) -> Any:
        """Call the API as this person; the JSON result, or raise StepUpNeeded / Refused /
        SignInRequired (any other 401: the console session ends)."""
        token = None if anonymous else await self.access_token()
        response = await call_api(self.request, method, path, token=token, body=body, query=query)
        return await self.result(response)

    async def listing(self, path: str) -> Any:
        """A listing the caller may not be allowed to see (then None)."""
        try:
            return await self.api("GET", path)
        except Refused:
            return None

    async def fetch(self, method: str, path: str, *, body: Any = None) -> ApiResponse:
        """Like ``api`` but the raw answer (a download), after the same error handling."""
        response = await call_api(
            self.request, method, path, token=await self.access_token(), body=body
        )
        if response.status >= 400:
            await self.result(response)
        return response

    async def result(self, response: ApiResponse) -> Any:
        if response.status < 400:
            return response.json()
        message, code = api_message(response)
        if response.status == 401:
            challenge = step_up_challenge(response)
            if challenge is not None:
                raise challenge
            if code not in PROOF_REFUSED:  # the token itself is refused: revoked, suspended…
                await self.end()
                raise SignInRequired("ended")
        raise Refused(response.status, message, code)

    async def access_token(self) -> str:
        tokens = self.session.tokens
        until = datetime.fromisoformat(tokens["access_until"])
        now = self.rt.clock.now()
        if tokens.get("refresh") and until - now < REFRESH_BEFORE:
            await self._refresh(now)
        return str(self.session.tokens["access"])

    async def _refresh(self, now: datetime) -> None:
        rt, session = self.rt, self.session

        def claim() -> bool:
            with rt.db.begin() as conn:
                return claim_refresh(conn, session, now=now)

        if not await run_in_threadpool(claim):
            return  # another request of this session is rotating; this token still works
        response = await call_api(
            self.request,
            "POST",
            "/auth/token",
            body={"grant_type": "refresh_token", "refresh_token": session.tokens["refresh"]},
        )
        if response.status != 200:
            await self.end()
            raise SignInRequired("ended")
        await self.replace_tokens(response.json())

    async def replace_tokens(self, response: dict[str, Any], *, acr: str | None = None) -> None:
        rt = self.rt
        tokens = token_set(response, rt.clock.now())

        def save() -> None:
            with rt.db.begin() as conn:
                save_tokens(conn, rt.sealer, self.session, tokens, now=rt.clock.now(), acr=acr)

        await run_in_threadpool(save)
        self.session = _with(self.session, tokens=tokens, acr=acr or self.session.acr)

    # -- the console's own state -----------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        return self.session.state

    async def save(self, **changes: Any) -> None:
        """Set (a value) or drop (None) keys of the sealed state."""
        state = dict(self.session.state)
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        rt = self.rt

        def write() -> None:
            with rt.db.begin() as conn:
                save_state(conn, rt.sealer, self.session, state)

        await run_in_threadpool(write)
        self.session = _with(self.session, state=state)

    async def flash(
        self,
        *,
        notice: str | None = None,
        error: str | None = None,
        form: dict[str, list[str]] | None = None,
    ) -> None:
        await self.save(flash={"notice": notice, "error": error, "form": form or {}})

    async def take(self, key: str) -> Any:
        """A one-time value of the state (a flash, a secret to show once), removed."""
        value = self.session.state.get(key)
        if value is not None:
            await self.save(**{key: None})
        return value

    def check_csrf(self, presented: str) -> None:
        if not same_origin(self.request) or not check_token(presented, self.state["csrf"]):
            refuse_cross_site(self.request)

    async def rotate(
        self, *, stage: str, acr: str | None, user_id: str | None, tokens: dict[str, Any]
    ) -> None:
        """Move to a new session and cookie value (after each sign-in step)."""
        rt = self.rt
        state = {"csrf": new_csrf_secret()}

        def write() -> tuple[str, ConsoleSession]:
            with rt.db.begin() as conn:
                return rotate_console_session(
                    conn,
                    rt.sealer,
                    self.session,
                    now=rt.clock.now(),
                    stage=stage,
                    acr=acr,
                    user_id=user_id,
                    tokens=tokens,
                    state=state,
                )

        self.cookie, self.session = await run_in_threadpool(write)

    async def end(self) -> None:
        rt = self.rt

        def drop() -> None:
            with rt.db.begin() as conn:
                delete_console_session(conn, self.session.id)

        await run_in_threadpool(drop)

    # -- answers ---------------------------------------------------------------------------

    async def page(self, template: str, *, status: int = 200, **context: Any) -> Response:
        """A page of the console, with the person, the CSRF token and the one-time flash."""
        flash = await self.take("flash") or {}
        response = render(
            template,
            status=status,
            me=self.me,
            csrf=self.state.get("csrf", ""),
            stage=self.session.stage,
            flash=flash,
            sticky=flash.get("form") or {},
            webauthn=webauthn_available(self.request),
            **context,
        )
        return self.send_cookie(response)

    def send_cookie(self, response: Response) -> Response:
        if self.cookie is not None:
            set_cookie(response, settings_of(self.request), COOKIE, self.cookie)
        return response


async def start_session(
    request: Request,
    *,
    stage: str,
    user_id: str | None,
    acr: str | None,
    tokens: dict[str, Any],
    state: dict[str, Any],
) -> Console:
    """A new console session (a sign-in's first step); its cookie goes with the answer."""
    rt = runtime_of(request)

    def write() -> tuple[str, ConsoleSession]:
        with rt.db.begin() as conn:
            return create_console_session(
                conn,
                rt.sealer,
                stage=stage,
                user_id=user_id,
                acr=acr,
                tokens=tokens,
                state={"csrf": new_csrf_secret(), **state},
                now=rt.clock.now(),
            )

    cookie, session = await run_in_threadpool(write)
    console = Console(request, session)
    console.cookie = cookie
    return console


def _with(session: ConsoleSession, **changes: Any) -> ConsoleSession:
    return replace(session, **changes)
