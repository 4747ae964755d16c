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
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from bastion.api.dataplane import info_json, record_json
from bastion.cli.backup_http import bearer_of, download, progress_bar, upload
from bastion.cli.common import (
    CLI_ACTOR,
    AsJson,
    DataDir,
    app,
    fail,
    operator,
    out,
    print_json,
    settings_for,
    shown,
)
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
                with bearer_of(url, token, user, password_stdin) as bearer:
                    download(url, bearer, collection, file, quiet=as_json)
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
        header = header_of(name, info_json(info), await aliases_of(services, tenant_id, name),
                           services.clock.now())  # fmt: skip
        lines = backup_lines(services, tenant_id=tenant_id, name=name, header=header,
                             actor=CLI_ACTOR, record_of=record_json)  # fmt: skip
        with progress_bar(quiet, points=True) as progress:
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
            with bearer_of(url, token, user, password_stdin) as bearer:
                result = upload(url, bearer, name, source, quiet=as_json)
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
    with progress_bar(quiet, points=True) as progress:
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
