"""``bastion backup`` and ``bastion restore`` (docs/backup.md): one collection into a
checksummed NDJSON file, and such a file into a new collection.

Two ways, one file format and one code path (``bastion.vectors.restore``):

- **through a running server** (``--url``, env ``BASTION_URL``): the HTTP routes, with an
  access token (``--token``, env ``BASTION_TOKEN``) or a sign-in (``--user``: password and
  authenticator code). The server authorises and audits as for any client; a backup needs
  what the export needs (``aal3`` by default).
- **on the data folder** (no ``--url``): as every other command, the operator at the data
  folder (audited ``cli:operator``). With the embedded engine the server must be stopped
  (it keeps the collections in memory and would not see the restored points); with
  PostgreSQL the replicas share the database and may run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from bastion.api.dataplane import _info_json, record_json
from bastion.cli.common import (
    CLI_ACTOR,
    AsJson,
    DataDir,
    app,
    err,
    fail,
    operator,
    out,
    print_json,
    settings_for,
    shown,
)
from bastion.client import BastionSession, ClientError
from bastion.datadir import FolderLock, lock_for_server, require_installation
from bastion.errors import BastionError
from bastion.runtime import Runtime
from bastion.vectors.aliases import Aliases
from bastion.vectors.backup import BackupRefused, Verified, header_of, verify
from bastion.vectors.factory import build_engine
from bastion.vectors.restore import Services, aliases_of, backup_lines, restore

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="BASTION_URL",
        help="A running server (env BASTION_URL); without it, the data folder (server stopped).",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="BASTION_TOKEN", help="Access token (env BASTION_TOKEN) for --url.",
        show_default=False,
    ),
]  # fmt: skip
User = Annotated[
    str | None,
    typer.Option(
        "--user", help="Sign in as this user for --url (password, then authenticator code).",
        show_default=False,
    ),
]  # fmt: skip
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="With --user: read the password, then the authenticator code, from stdin.",
    ),
]
_CHUNK = 256 * 1024


# -- backup ------------------------------------------------------------------------------


@app.command("backup")
def backup_command(
    collection: Annotated[str, typer.Argument(help="The collection (or an alias of it).")],
    out_file: Annotated[
        Path, typer.Option("--out", help="The backup file to write.", show_default=False)
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password_stdin: PasswordStdin = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Back a collection up into one checksummed NDJSON file (docs/backup.md)."""
    if out_file.exists() and not force:
        fail(f"{out_file} exists", "choose another --out, or replace it with --force")
    partial = out_file.with_name(f".{out_file.name}.partial")
    try:
        with _private(partial) as file:
            if url is not None:
                with _bearer(url, token, user, password_stdin) as bearer:
                    _download(url, bearer, collection, file, quiet=as_json)
            else:
                asyncio.run(_backup_offline(data_dir, collection, file, quiet=as_json))
            file.flush()
            os.fsync(file.fileno())
            verified = verify(file)  # what was written is what a restore will read
        partial.replace(out_file)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    summary = {
        "collection": verified.header.collection,
        "file": str(out_file),
        "points": verified.points,
        "payload_indexes": verified.header.payload_indexes,
        "aliases": verified.header.aliases,
        "sha256": verified.sha256,
        "bytes": out_file.stat().st_size,
    }
    if as_json:
        print_json(summary)
        return
    out.print(
        f"backed up [bold]{shown(verified.header.collection)}[/]: {verified.points:,} points "
        f"to {shown(str(out_file))}"
    )
    out.print(f"[dim]sha256 {verified.sha256} (also in the audit event collection.backed_up)[/]")


@contextmanager
def _private(path: Path) -> Iterator[IO[bytes]]:
    """A new file only its owner may read (a backup holds a whole collection)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", "choose a writable --out")
    with os.fdopen(fd, "w+b") as file:
        yield file


def _download(url: str, bearer: str, collection: str, file: IO[bytes], *, quiet: bool) -> None:
    path = f"/collections/{urllib.parse.quote(collection, safe='')}/backup"
    with _request(url, "GET", path, bearer) as response, _progress(quiet) as progress:
        task = progress.add_task("backing up", total=None)
        while chunk := response.read(_CHUNK):
            file.write(chunk)
            progress.advance(task, len(chunk))


async def _backup_offline(
    data_dir: Path | None, collection: str, file: IO[bytes], *, quiet: bool
) -> None:
    async with _offline(data_dir) as (services, tenant_id):
        engine = services.engine
        name = await services.aliases.resolve(tenant_id, collection)
        try:
            info = await engine.get_collection(tenant_id, name)
        except BastionError as exc:
            fail(exc.detail, "see `bastion collection list`")
        header = header_of(name, _info_json(info), await aliases_of(services, tenant_id, name),
                           services.clock.now())  # fmt: skip
        lines = backup_lines(services, tenant_id=tenant_id, name=name, header=header,
                             actor=CLI_ACTOR, record_of=record_json)  # fmt: skip
        with _progress(quiet, points=True) as progress:
            task = progress.add_task("backing up", total=info.points_count)
            async for line in lines:
                file.write(line)
                progress.advance(task)


# -- restore -----------------------------------------------------------------------------


@app.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(help="A file `bastion backup` wrote.")],
    name: Annotated[
        str,
        typer.Option(
            "--as", help="The new collection (never an existing one).", show_default=False
        ),
    ],
    url: Url = None,
    token: Token = None,
    user: User = None,
    password_stdin: PasswordStdin = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Restore a backup file into a new collection, all or nothing (docs/backup.md)."""
    try:
        source = file.open("rb")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    with source:
        try:
            verified = verify(source)  # refused here, before the server is asked anything
        except BackupRefused as refused:
            fail(refused.detail, "restore the file as `bastion backup` wrote it, whole")
        if url is not None:
            with _bearer(url, token, user, password_stdin) as bearer:
                result = _upload(url, bearer, name, source, quiet=as_json)
        else:
            asyncio.run(_restore_offline(data_dir, name, source, verified, quiet=as_json))
            result = _result(name, verified)
    if as_json:
        print_json(result)
        return
    out.print(
        f"restored [bold]{shown(name)}[/] from {shown(str(result['source']))}: "
        f"{result['points']:,} points, payload indexes: "
        f"{shown(', '.join(result['payload_indexes']) or 'none')}"
    )
    if result["aliases"]:
        out.print(
            f"[dim]→ aliases of {shown(str(result['source']))} were not moved: "
            f"{shown(', '.join(result['aliases']))} (update_collection_aliases moves them)[/]"
        )


def _result(name: str, verified: Verified) -> dict[str, Any]:
    header = verified.header
    return {"collection": name, "source": header.collection, "points": verified.points,
            "payload_indexes": header.payload_indexes, "aliases": header.aliases,
            "sha256": verified.sha256}  # fmt: skip


class _Uploading:
    """The file as a request body, advancing a progress bar as it is sent."""

    def __init__(self, file: IO[bytes], advance: Callable[[int], None]) -> None:
        self.file = file
        self.advance = advance

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.advance(len(chunk))
        return chunk


def _upload(url: str, bearer: str, name: str, source: IO[bytes], *, quiet: bool) -> dict[str, Any]:
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    path = f"/collections/{urllib.parse.quote(name, safe='')}/restore"
    with _progress(quiet) as progress:
        task = progress.add_task("restoring", total=size)
        body = _Uploading(source, lambda sent: progress.advance(task, sent))
        with _request(url, "POST", path, bearer, body=body, length=size) as response:
            answer = json.loads(response.read())
    result: dict[str, Any] = answer["result"]
    return result


async def _restore_offline(
    data_dir: Path | None, name: str, source: IO[bytes], verified: Verified, *, quiet: bool
) -> None:
    async with _offline(data_dir) as (services, tenant_id):
        await _restore_into(services, tenant_id, data_dir, name, source, verified, quiet=quiet)


async def _restore_into(
    services: Services,
    tenant_id: str,
    data_dir: Path | None,
    name: str,
    source: IO[bytes],
    verified: Verified,
    *,
    quiet: bool,
) -> None:
    with _progress(quiet, points=True) as progress:
        task = progress.add_task("restoring", total=verified.points)
        settings = settings_for(data_dir)
        try:
            await restore(services, source, tenant_id=tenant_id, name=name, actor=CLI_ACTOR,
                          max_payload_bytes=settings.max_payload_bytes,
                          on_points=lambda n: progress.advance(task, n))  # fmt: skip
        except BastionError as exc:
            hint = "choose another name with --as" if exc.status == 409 else None
            fail(exc.detail, hint)


# -- the two ways in -----------------------------------------------------------------------


@asynccontextmanager
async def _offline(data_dir: Path | None) -> AsyncIterator[tuple[Services, str]]:
    """The engine on the data folder, as the operator of the ``default`` tenant. With the
    embedded engine, only while no server runs (the folder's exclusive lock)."""
    settings = settings_for(data_dir)
    lock: FolderLock | None = None
    try:
        if settings.resolved_database_url.startswith("sqlite"):
            require_installation(settings.data_dir)
            lock = lock_for_server(settings.data_dir)
    except BastionError as exc:
        fail(exc.detail, "or go through the server: --url http://HOST:PORT with --token or --user")
    try:
        rt = Runtime.open(settings)
        engine = build_engine(rt.db, settings, clock=rt.clock)
        try:
            await asyncio.to_thread(engine.open)
            with rt.db.read() as conn:
                tenant_id = operator(conn, now=rt.clock.now()).tenant_id
            yield Services(engine, Aliases(rt.db, rt.clock), rt.db, rt.clock), tenant_id
        finally:
            await asyncio.to_thread(engine.close)  # the embedded engine saves its index
            rt.close()
    finally:
        if lock is not None:
            lock.release()


@contextmanager
def _bearer(url: str, token: str | None, user: str | None, password_stdin: bool) -> Iterator[str]:
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
def _progress(quiet: bool, *, points: bool = False) -> Iterator[Progress]:
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    columns += [TextColumn("{task.completed:,.0f} points")] if points else [DownloadColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=err, disable=quiet, transient=True) as progress:
        yield progress
