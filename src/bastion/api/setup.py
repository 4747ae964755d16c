"""``/setup``: one-time links — the first administrator, and users created without a password."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from bastion.api.bodies import StrictBody
from bastion.api.guard import runtime
from bastion.audit import AuditEvent, emit
from bastion.factors.password import check_new_password, hash_password
from bastion.identity.bootstrap import claim_setup_link
from bastion.identity.policies import load_policy
from bastion.identity.users import set_password_hash, spend_enrollment_link

router = APIRouter(tags=["setup"])

# The token travels in the URL fragment, which browsers never send to the server,
# so it cannot land in an access log; the page posts it in the body.
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bastion setup</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}
label{display:block;margin-top:1rem}input{width:100%;padding:.5rem;font-size:1rem}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}</style></head>
<body><h1>__TITLE__</h1>
<p>Choose a long passphrase (at least 8 characters; common passwords are refused).
You will enrol an authenticator app at your first sign-in.</p>
<form id="f">__USERNAME__<label>Password <input name="password" type="password"
autocomplete="new-password" required minlength="8"></label>
<button type="submit">__BUTTON__</button></form><p id="out" role="status"></p>
<script>
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const data = new FormData(e.target);
  const fields = {token: location.hash.slice(1), password: data.get('password')};
  if (data.get('username')) fields.username = data.get('username');
  const r = await fetch('__ACTION__', {method: 'POST',
    headers: {'content-type': 'application/json'}, body: JSON.stringify(fields)});
  const body = await r.json();
  document.getElementById('out').textContent = r.ok
    ? 'Done for ' + body.username + '. Sign in with POST /auth/login.' : body.detail;
});
</script></body></html>"""


class SetupBody(StrictBody):
    token: str = Field(min_length=1, max_length=256)
    username: str = Field("admin", min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


_USERNAME_FIELD = (
    '<label>Username <input name="username" value="admin" autocomplete="username" required></label>'
)
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
}


def _page(*, title: str, button: str, action: str, ask_username: bool) -> HTMLResponse:
    html = (
        _PAGE.replace("__TITLE__", title)
        .replace("__BUTTON__", button)
        .replace("__ACTION__", action)
        .replace("__USERNAME__", _USERNAME_FIELD if ask_username else "")
    )
    return HTMLResponse(html, headers=_PAGE_HEADERS)


@router.get("/setup", response_class=HTMLResponse, include_in_schema=False)
def setup_page() -> HTMLResponse:
    return _page(
        title="Create the first administrator",
        button="Create administrator",
        action="/setup",
        ask_username=True,
    )


@router.get("/setup/enroll", response_class=HTMLResponse, include_in_schema=False)
def enroll_page() -> HTMLResponse:
    return _page(
        title="Choose your password",
        button="Set password",
        action="/setup/enroll",
        ask_username=False,
    )


@router.post("/setup", status_code=201, summary="Create the first admin with the setup link")
async def setup(request: Request, body: SetupBody) -> dict[str, Any]:
    rt = runtime(request)
    tenant = request.app.state.default_tenant

    def claim() -> dict[str, Any]:
        with rt.db.begin() as conn:
            user = claim_setup_link(
                rt, conn, tenant, token=body.token, username=body.username, password=body.password
            )
        return {"status": "created", "username": user.username}

    return await run_in_threadpool(claim)


class EnrollBody(StrictBody):
    token: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/setup/enroll", summary="Choose a password with a one-time enrollment link")
async def enroll(request: Request, body: EnrollBody) -> dict[str, Any]:
    rt = runtime(request)

    def claim() -> dict[str, Any]:
        with rt.db.begin() as conn:
            now = rt.clock.now()
            user = spend_enrollment_link(conn, body.token, now=now)  # unknown/used → 401
            checked = check_new_password(  # weak → 422, and the rollback keeps the link
                body.password,
                min_length=load_policy(conn, user.tenant_id).password_min_length,
                context_words=[user.username, "bastion"],
            )
            set_password_hash(conn, user.id, hash_password(checked, hasher=rt.hasher), now=now)
            emit(
                conn,
                AuditEvent(
                    action="user.password_set",
                    outcome="success",
                    actor=user.id,
                    tenant_id=user.tenant_id,
                    resource=f"user:{user.id}",
                    details={"user_id": user.id, "username": user.username},
                ),
                now=now,
            )
        return {"status": "password_set", "username": user.username}

    return await run_in_threadpool(claim)
