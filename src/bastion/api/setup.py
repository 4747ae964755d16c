"""``/setup``: the one-time link that creates the first administrator."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from bastion.api.bodies import StrictBody
from bastion.api.guard import runtime
from bastion.identity.bootstrap import claim_setup_link

router = APIRouter(tags=["setup"])

# The token travels in the URL fragment, which browsers never send to the server,
# so it cannot land in an access log; the page posts it in the body.
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bastion setup</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}
label{display:block;margin-top:1rem}input{width:100%;padding:.5rem;font-size:1rem}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}</style></head>
<body><h1>Create the first administrator</h1>
<p>Choose a long passphrase (at least 8 characters; common passwords are refused).
You will enrol an authenticator app at your first sign-in.</p>
<form id="f"><label>Username <input name="username" value="admin" autocomplete="username"
required></label><label>Password <input name="password" type="password"
autocomplete="new-password" required minlength="8"></label>
<button type="submit">Create administrator</button></form><p id="out" role="status"></p>
<script>
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const data = new FormData(e.target);
  const r = await fetch('/setup', {method: 'POST', headers: {'content-type': 'application/json'},
    body: JSON.stringify({token: location.hash.slice(1), username: data.get('username'),
                          password: data.get('password')})});
  const body = await r.json();
  document.getElementById('out').textContent = r.ok
    ? 'Administrator ' + body.username + ' created. Sign in with POST /auth/login.'
    : body.detail;
});
</script></body></html>"""


class SetupBody(StrictBody):
    token: str = Field(min_length=1, max_length=256)
    username: str = Field("admin", min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


@router.get("/setup", response_class=HTMLResponse, include_in_schema=False)
def setup_page() -> HTMLResponse:
    return HTMLResponse(
        _PAGE,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; "
            "script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        },
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
