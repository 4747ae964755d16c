"""Backing up and restoring one collection through an engine (docs/backup.md).

The HTTP routes (``api.backup``) and ``bastion backup`` / ``bastion restore`` on a stopped
server's data folder call these with their principal's id as ``actor``: the same file,
the same checks, the same audit events. Authorisation is the caller's (the routes ask
``authz.decide``; the command line acts as the operator at the data folder).

A restore is all or nothing: the file is checked whole (``backup.verify``) before anything
is created; then the collection, its payload indexes and its points go through the
engine's ordinary create and upsert, and any refusal deletes the new collection again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from anyio.to_thread import run_sync

from bastion.clock import Clock
from bastion.storage import Database
from bastion.vectors import models as body_models
from bastion.vectors.aliases import Aliases
from bastion.vectors.backup import (
    BackupRefused,
    Header,
    Verified,
    Writer,
    point_batches,
    record_backup,
    record_restore,
    verify,
)
from bastion.vectors.engine import PointRecord, PointVectors, PointWrite, VectorEngine
from bastion.vectors.errors import BadRequest, CollectionExists

RESTORE_BATCH = 1000  # points per upsert while restoring


@dataclass(frozen=True)
class Services:
    """What a backup or a restore works with."""

    engine: VectorEngine
    aliases: Aliases
    db: Database
    clock: Clock


async def aliases_of(services: Services, tenant_id: str, name: str) -> list[str]:
    pointing = await services.aliases.of_tenant(tenant_id)
    return sorted(alias for alias, target in pointing.items() if target == name)


async def backup_lines(
    services: Services,
    *,
    tenant_id: str,
    name: str,
    header: Header,
    actor: str,
    record_of: Callable[[PointRecord], dict[str, Any]],
    on_point: Callable[[int], None] | None = None,
) -> AsyncIterator[bytes]:
    """The lines of a backup of ``name`` (header, points, trailer); audited
    ``collection.backed_up`` when the stream ends, complete or cut short. ``record_of``
    is the export's point line (``api.dataplane.record_json``): one shape for both."""
    writer = Writer()
    complete = False
    try:
        yield writer.start(header)
        async for point in services.engine.export(tenant_id, name):
            yield writer.point(record_of(point))
            if on_point is not None:
                on_point(writer.points)
        yield writer.trailer()
        complete = True
    finally:
        await run_sync(
            lambda: record_backup(
                services.db,
                tenant_id=tenant_id,
                collection=name,
                actor=actor,
                count=writer.points,
                sha256=writer.sha256,
                complete=complete,
                now=services.clock.now(),
            )
        )


async def check_free(services: Services, tenant_id: str, name: str) -> None:
    """``CollectionExists`` (409) when ``name`` is a collection or an alias already."""
    body_models.check_collection_name(name)
    if await services.engine.collection_exists(tenant_id, name):
        raise CollectionExists(name)
    if name in await services.aliases.of_tenant(tenant_id):
        raise CollectionExists(name)


async def restore(
    services: Services,
    spool: IO[bytes],
    *,
    tenant_id: str,
    name: str,
    actor: str,
    max_payload_bytes: int,
    verified_hook: Callable[[Verified], Awaitable[None]] | None = None,
    on_points: Callable[[int], None] | None = None,
) -> Verified:
    """Restore the backup file ``spool`` into the new collection ``name`` (all or nothing).

    ``verified_hook`` runs once the file is checked, before anything is created (the
    routes authorise ``indexes.write`` there when the file has payload indexes);
    ``on_points`` is told how many points each batch stored (a progress bar)."""
    await check_free(services, tenant_id, name)
    try:
        verified = await run_sync(verify, spool)
    except BackupRefused as refused:
        await _record(services, tenant_id, name, actor, None, refused.reason)
        raise
    if verified_hook is not None:
        await verified_hook(verified)
    try:
        spec = body_models.collection_spec(name, verified.header.config)
    except BadRequest as exc:
        await _record(services, tenant_id, name, actor, verified, "bad_config")
        raise BackupRefused("bad_config", f"the header's config: {exc.detail}") from None
    await services.engine.create_collection(tenant_id, spec, actor=actor)
    try:
        await _load(services, spool, tenant_id, name, actor, verified, max_payload_bytes, on_points)
    except BaseException as exc:  # a refused point, a fault, the caller gone: undo
        reason = exc.reason if isinstance(exc, BackupRefused) else "load_failed"
        await asyncio.shield(_undo(services, tenant_id, name, actor, verified, reason))
        raise
    await _record(services, tenant_id, name, actor, verified, None)
    return verified


async def _load(
    services: Services,
    spool: IO[bytes],
    tenant_id: str,
    name: str,
    actor: str,
    verified: Verified,
    max_payload_bytes: int,
    on_points: Callable[[int], None] | None,
) -> None:
    engine = services.engine
    for field, schema in verified.header.payload_indexes.items():
        try:
            await engine.create_payload_index(tenant_id, name, field, schema, actor=actor)
        except BadRequest as exc:
            raise BackupRefused("bad_config", f"payload index {field!r}: {exc.detail}") from None
    batches = point_batches(spool, RESTORE_BATCH)
    while True:
        parsed = await run_sync(_next_batch, batches, max_payload_bytes)
        if parsed is None:
            break
        first, last, writes, vectors = parsed
        try:
            await engine.upsert(tenant_id, name, writes, vectors, actor=actor)
        except BadRequest as exc:
            raise _refused_at(first, last, exc) from None
        if on_points is not None:
            on_points(len(writes))
    stored = await engine.count(tenant_id, name, filter=None)
    if stored != verified.points:  # an id twice in the file: a later line replaced an earlier
        raise BackupRefused(
            "count_mismatch",
            f"{verified.points} point lines made {stored} points: some ids appear more than "
            "once (nothing was restored)",
        )


Batch = tuple[int, int, list[PointWrite], PointVectors]


def _next_batch(batches: Iterator[tuple[int, list[dict[str, Any]]]], limit: int) -> Batch | None:
    """The next batch of points, parsed as an upsert's body is (in a worker thread)."""
    found = next(batches, None)
    if found is None:
        return None
    first, points = found
    last = first + len(points) - 1
    try:
        writes, vectors = body_models.points_of({"points": points}, limit)
    except BadRequest as exc:
        raise _refused_at(first, last, exc) from None
    return first, last, writes, vectors


def _refused_at(first: int, last: int, exc: BadRequest) -> BackupRefused:
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    return BackupRefused("bad_point", f"{where}: {exc.detail} (nothing was restored)")


async def _undo(
    services: Services, tenant_id: str, name: str, actor: str, verified: Verified, reason: str
) -> None:
    """Delete the half-restored collection (audited as any deletion), then the failure."""
    await services.engine.delete_collection(tenant_id, name, actor=actor)
    await services.aliases.forget_collection(tenant_id, name)
    await _record(services, tenant_id, name, actor, verified, reason)


async def _record(
    services: Services,
    tenant_id: str,
    name: str,
    actor: str,
    verified: Verified | None,
    reason: str | None,
) -> None:
    await run_sync(
        lambda: record_restore(
            services.db,
            tenant_id=tenant_id,
            collection=name,
            actor=actor,
            now=services.clock.now(),
            verified=verified,
            reason=reason,
        )
    )
