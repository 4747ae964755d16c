"""``/setup``: one-time links — the first administrator, and users created without a password."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from bastion.api.bodies import StrictBody
from bastion.api.guard import runtime
from bastion.api.openapi import raises
from bastion.api.responses import SetupDone
from bastion.errors import InvalidToken
from bastion.identity.bootstrap import claim_setup_link
from bastion.identity.lifecycle import choose_password

router = APIRouter(tags=["setup"])


# The token travels in the URL fragment, which browsers never send to the server, so it
# cannot land in an access log. The link's page is the console's: a redirect keeps the
# fragment (RFC 9110 §10.2.2), and the console's form posts the token in its body.
def _to_console(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


class SetupBody(StrictBody):
    token: str = Field(min_length=1, max_length=256)
    username: str = Field("admin", min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


@router.get("/setup", include_in_schema=False)
def setup_page() -> RedirectResponse:
    return _to_console("/console/setup")


@router.get("/setup/enroll", include_in_schema=False)
def enroll_page() -> RedirectResponse:
    return _to_console("/console/enroll")


@router.post(
    "/setup",
    response_model=SetupDone,
    responses=raises(InvalidToken),
    status_code=201,
    summary="Create the first admin with the setup link",
)
async def setup(request: Request, body: SetupBody) -> dict[str, Any]:
    rt = runtime(request)
    tenant = request.app.state.default_tenant

    def claim() -> dict[str, Any]:
        with rt.db.begin() as conn:
            user = claim_setup_link(
                conn,
                tenant,
                hasher=rt.hasher,
                token=body.token,
                username=body.username,
                password=body.password,
                now=rt.clock.now(),
            )
        return {"status": "created", "username": user.username}

    return await run_in_threadpool(claim)


class EnrollBody(StrictBody):
    token: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


@router.post(
    "/setup/enroll",
    response_model=SetupDone,
    responses=raises(InvalidToken),
    summary="Choose a password with a one-time enrollment link",
)
async def enroll(request: Request, body: EnrollBody) -> dict[str, Any]:
    rt = runtime(request)

    def claim() -> dict[str, Any]:
        with rt.db.begin() as conn:
            user = choose_password(
                conn, hasher=rt.hasher, token=body.token, password=body.password,
                now=rt.clock.now(),
            )  # fmt: skip
        return {"status": "password_set", "username": user.username}

    return await run_in_threadpool(claim)
