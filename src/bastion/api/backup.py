"""Collection backup and restore over HTTP (docs/backup.md): Bastion's NDJSON backup file
rather than Qdrant's snapshot archive (which holds Qdrant's own segment files).

- ``GET /collections/{name}/backup`` streams the file: a header with the collection's
  configuration, payload indexes and aliases, every point as the export writes it, and a
  trailer with the count and the SHA-256 of what precedes it. Authorised as the export
  (``points.export``: admin, ``aal3`` by default) and audited (``collection.backed_up``).
- ``POST /collections/{name}/restore`` takes such a file as its body and creates the new
  collection ``name`` from it (``collections.create`` and ``points.write``, and
  ``indexes.write`` when the file has payload indexes; ``409`` for a name taken). The body
  is spooled to a private file in the data folder and checked whole before anything is
  created (``vectors.restore``). Audited ``collection.restored`` (success or failure).
"""

from __future__ import annotations

import re
import tempfile
import time
from typing import IO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bastion.api.dataplane import engine_of, info_json, ok, record_json, table
from bastion.api.guard import authorize, meter, runtime
from bastion.vectors.backup import MEDIA_TYPE, BackupRefused, Verified, header_of
from bastion.vectors.restore import Services, aliases_of, backup_lines, check_free, restore

# The restore's body is a whole collection: the request body limit does not apply to it
# (``BodySizeLimit``); the route's own does (``max_restore_bytes``), once it authorised.
RESTORE_PATH = re.compile(r"/collections/[^/]+/restore")
_METER_EVERY = 100  # points counted at once against the export baseline
_SPOOL_WRITE = 1024 * 1024  # bytes of the body gathered before a write to the spool file


def services(request: Request) -> Services:
    rt = runtime(request)
    return Services(engine_of(request), request.app.state.aliases, rt.db, rt.clock)


@table.route(
    "GET",
    "/collections/{name}/backup",
    "Back up a collection as a checksummed NDJSON file (admin, aal3, audited)",
)
async def backup_collection(request: Request, name: str) -> StreamingResponse:
    principal = await authorize(request, "points.export", collection=name)
    found = services(request)
    tenant = principal.tenant_id
    info = await found.engine.get_collection(tenant, name)  # 404 when there is none
    aliases = await aliases_of(found, tenant, name)
    header = header_of(name, info_json(info), aliases, found.clock.now())

    def metered(points: int) -> None:  # continuous evaluation of volume, as the export
        if points % _METER_EVERY == 0:
            meter(request, principal, "export", _METER_EVERY)

    lines = backup_lines(found, tenant_id=tenant, name=name, header=header, actor=principal.id,
                         record_of=record_json, on_point=metered)  # fmt: skip
    disposition = f'attachment; filename="{name}.backup.ndjson"'
    return StreamingResponse(
        lines,
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


@table.route(
    "POST",
    "/collections/{name}/restore",
    "Restore a backup file into a new collection (all or nothing, audited)",
    aliased=False,
)
async def restore_collection(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.create", collection=name)
    await authorize(request, "points.write", collection=name)
    found = services(request)
    tenant = principal.tenant_id
    await check_free(found, tenant, name)  # 409 before the body is read: nothing spooled
    settings = runtime(request).settings

    async def authorized(verified: Verified) -> None:
        if verified.header.payload_indexes:
            await authorize(request, "indexes.write", collection=name)

    with tempfile.TemporaryFile(dir=runtime(request).data_dir, prefix=".restore-") as spool:
        await _spool(request, spool, settings.max_restore_bytes)
        verified = await restore(found, spool, tenant_id=tenant, name=name, actor=principal.id,
                                 max_payload_bytes=settings.max_payload_bytes,
                                 verified_hook=authorized)  # fmt: skip
    header = verified.header
    result = {
        "collection": name,
        "source": header.collection,
        "points": verified.points,
        "payload_indexes": header.payload_indexes,
        "aliases": header.aliases,  # not recreated: they still name their own collection
        "sha256": verified.sha256,
    }
    return ok(result, started)


class BackupTooLarge(BackupRefused):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            "too_large", f"it is larger than {limit} bytes (the setting BASTION_MAX_RESTORE_BYTES)"
        )


async def _spool(request: Request, spool: IO[bytes], limit: int) -> None:
    """The body into ``spool`` (at most ``limit`` bytes, else 413, as the body limit)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BackupTooLarge(limit)  # refused before a byte is read
    received = 0
    pending: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BackupTooLarge(limit)
        pending.append(chunk)
        size += len(chunk)
        if size >= _SPOOL_WRITE:
            await run_in_threadpool(spool.write, b"".join(pending))
            pending, size = [], 0
    if pending:
        await run_in_threadpool(spool.write, b"".join(pending))
