"""``bastion backup`` and ``bastion restore`` through a running server (``--url``): the
HTTP routes of docs/backup.md with an access token or a sign-in, and what the server's
refusals mean for the operator (the step-up the policy asks for, a taken name …)."""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import IO, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from bastion.cli.common import err, fail
from bastion.client import BastionSession, ClientError

_CHUNK = 256 * 1024


def download(url: str, bearer: str, collection: str, file: IO[bytes], *, quiet: bool) -> None:
    path = f"/collections/{urllib.parse.quote(collection, safe='')}/backup"
    with _request(url, "GET", path, bearer) as response, progress_bar(quiet) as progress:
        task = progress.add_task("backing up", total=None)
        while chunk := response.read(_CHUNK):
            file.write(chunk)
            progress.advance(task, len(chunk))


class _Uploading:
    """The file as a request body, advancing a progress bar as it is sent."""

    def __init__(self, file: IO[bytes], advance: Callable[[int], None]) -> None:
        self.file = file
        self.advance = advance

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.advance(len(chunk))
        return chunk


def upload(url: str, bearer: str, name: str, source: IO[bytes], *, quiet: bool) -> dict[str, Any]:
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    path = f"/collections/{urllib.parse.quote(name, safe='')}/restore"
    with progress_bar(quiet) as progress:
        task = progress.add_task("restoring", total=size)
        body = _Uploading(source, lambda sent: progress.advance(task, sent))
        with _request(url, "POST", path, bearer, body=body, length=size) as response:
            answer = json.loads(response.read())
    result: dict[str, Any] = answer["result"]
    return result


@contextmanager
def bearer_of(url: str, token: str | None, user: str | None, password_stdin: bool) -> Iterator[str]:
    """The access token to send: ``--token``, or a sign-in as ``--user`` (ended after)."""
    if token is not None:
        yield token
        return
    if user is None:
        fail(
            "--url needs credentials",
            "give --token (env BASTION_TOKEN) or --user NAME to sign in (password and code)",
        )
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"Password for {user}", hide_input=True, err=True)

    def code(methods: Sequence[str]) -> str:
        given = sys.stdin.readline().strip() if password_stdin else ""
        return given or str(typer.prompt(f"Code from the authenticator app of {user}", err=True))

    try:
        session = BastionSession.sign_in(url, user, password, code=code)
        bearer = session.token()
    except (ClientError, ValueError) as exc:
        fail(f"sign-in failed: {exc}", "check the user name, the password and the code")
    try:
        yield bearer
    finally:
        with suppress(ClientError):
            session.logout()  # the session served this command only


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@contextmanager
def _request(
    url: str,
    method: str,
    path: str,
    bearer: str,
    *,
    body: Any = None,
    length: int | None = None,
) -> Iterator[Any]:
    base = url.rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        fail(f"not an http(s) URL: {url}", "e.g. --url http://127.0.0.1:6333")
    headers = {"Authorization": f"Bearer {bearer}"}
    if length is not None:
        headers.update({"Content-Length": str(length), "Content-Type": "application/x-ndjson"})
    request = urllib.request.Request(base + path, data=body, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
            yield response
    except urllib.error.HTTPError as refused:
        with refused:
            fail(*_refusal(refused))
    except (urllib.error.URLError, OSError) as exc:
        fail(f"cannot reach {base}: {exc}", "is the server running? (--url, env BASTION_URL)")


def _refusal(refused: urllib.error.HTTPError) -> tuple[str, str | None]:
    """What the server said, and what to do next."""
    try:
        error = str(json.loads(refused.read())["status"]["error"])
    except (ValueError, KeyError, TypeError):
        error = str(refused.reason)
    challenge = dict(_CHALLENGE.findall(refused.headers.get("WWW-Authenticate", "")))
    if refused.code == 401 and "acr_values" in challenge:
        needed = challenge["acr_values"]
        return (
            f"the policy asks for {needed} (signed in within {challenge.get('max_age', '?')} s): "
            f"{error}",
            "sign in again at that level (aal3: a security key, e.g. in the console) and pass "
            "the new token with --token; an admin may change the requirement (PUT /admin/policy)",
        )
    hints = {
        401: "the token expired or is not valid: get a new one (--token) or use --user",
        403: "your roles do not allow it (docs/backup.md: who may)",
        404: "see the collections: GET /collections, or `bastion collection list`",
        409: "choose another name with --as (restore never replaces a collection)",
        413: "the server's BASTION_MAX_RESTORE_BYTES is smaller than the file",
    }
    return f"{refused.code}: {error}", hints.get(refused.code)


@contextmanager
def progress_bar(quiet: bool, *, points: bool = False) -> Iterator[Progress]:
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    columns += [TextColumn("{task.completed:,.0f} points")] if points else [DownloadColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=err, disable=quiet, transient=True) as progress:
        yield progress
