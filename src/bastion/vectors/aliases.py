"""Qdrant's collection aliases: other names of a collection, per tenant, in the shared
database (both engines, every worker and replica read the same table).

A request naming an alias acts on its collection, and is authorised on that collection:
a grant on the alias's name gives nothing. The data plane asks ``names()`` first, a set
of every alias of the installation kept in memory and re-read at most every
``REFRESH_SECONDS`` (so a request that names no alias costs one set lookup), and only
for a name in it looks up the caller's tenant. Changes are one transaction with their
audit events; the process that made them sees them at once, the others within
``REFRESH_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy import Connection, delete, insert, select

from bastion.clock import Clock
from bastion.storage import Database
from bastion.vectors.audit import audited
from bastion.vectors.errors import BadRequest, CollectionNotFound
from bastion.vectors.models import check_collection_name
from bastion.vectors.schema import collection_aliases

REFRESH_SECONDS = 2.0
MAX_ACTIONS = 100


@dataclass(frozen=True)
class AliasAction:
    kind: str  # create | delete | rename
    alias: str
    collection: str | None = None  # create
    new_alias: str | None = None  # rename


def _names(raw: Any, keys: Sequence[str], where: str) -> list[str]:
    if not isinstance(raw, dict) or set(raw) - set(keys):
        raise BadRequest(f"{where} must be {{{', '.join(keys)}}}")
    out = []
    for key in keys:
        value = raw.get(key)
        if not isinstance(value, str):
            raise BadRequest(f"{where}.{key} must be a name")
        out.append(check_collection_name(value))
    return out


def parse_actions(body: dict[str, Any]) -> list[AliasAction]:
    """``{"actions": [{"create_alias": …} | {"delete_alias": …} | {"rename_alias": …}]}``."""
    if set(body) - {"actions"}:
        raise BadRequest(f"{sorted(set(body) - {'actions'})[0]} is not supported by Bastion")
    raw = body.get("actions")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ACTIONS:
        raise BadRequest(f"actions must be a list of 1 to {MAX_ACTIONS} alias operations")
    actions: list[AliasAction] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or len(item) != 1:
            raise BadRequest(
                f"actions[{i}] must be one of create_alias, delete_alias, rename_alias"
            )
        ((kind, spec),) = item.items()
        where = f"actions[{i}].{kind}"
        if kind == "create_alias":
            collection, alias = _names(spec, ("collection_name", "alias_name"), where)
            actions.append(AliasAction("create", alias, collection=collection))
        elif kind == "delete_alias":
            (alias,) = _names(spec, ("alias_name",), where)
            actions.append(AliasAction("delete", alias))
        elif kind == "rename_alias":
            old, new = _names(spec, ("old_alias_name", "new_alias_name"), where)
            actions.append(AliasAction("rename", old, new_alias=new))
        else:
            raise BadRequest(f"actions[{i}].{kind} is not supported by Bastion")
    return actions


class Aliases:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._names: frozenset[str] = frozenset()
        self._read_at = -REFRESH_SECONDS

    async def names(self) -> frozenset[str]:
        """Every alias name of the installation (any tenant), at most a few seconds old."""
        if time.monotonic() - self._read_at > REFRESH_SECONDS:
            await anyio.to_thread.run_sync(self._reload)
        return self._names

    def _reload(self) -> None:
        with self.db.read() as conn:
            names = frozenset(conn.execute(select(collection_aliases.c.alias)).scalars())
        self._names, self._read_at = names, time.monotonic()

    async def resolve(self, tenant_id: str, name: str) -> str:
        """The collection ``name`` stands for in the tenant (``name`` when no alias)."""
        if name not in await self.names():
            return name
        found = await self.of_tenant(tenant_id)
        return found.get(name, name)

    async def of_tenant(self, tenant_id: str) -> dict[str, str]:
        """alias → collection name, read now."""

        def read() -> dict[str, str]:
            with self.db.read() as conn:
                rows = conn.execute(
                    select(collection_aliases.c.alias, collection_aliases.c.collection).where(
                        collection_aliases.c.tenant_id == tenant_id
                    )
                ).all()
            return {row.alias: row.collection for row in rows}

        return await anyio.to_thread.run_sync(read)

    async def apply(
        self,
        tenant_id: str,
        actions: Sequence[AliasAction],
        *,
        actor: str,
        exists: Callable[[str], bool],
    ) -> None:
        """Carry out ``actions`` in order, all or none (``exists``: whether the tenant has a
        collection of that name, asked before the transaction)."""

        def work() -> None:
            now = self.clock.now()
            table = collection_aliases
            with self.db.begin() as conn:
                current = {
                    row.alias: row.collection
                    for row in conn.execute(
                        select(table.c.alias, table.c.collection).where(
                            table.c.tenant_id == tenant_id
                        )
                    )
                }
                for action in actions:
                    if action.kind == "create":
                        assert action.collection is not None
                        if not exists(action.collection):
                            raise CollectionNotFound(action.collection)
                        _free(action.alias, current, exists)
                        current[action.alias] = action.collection
                        audited(conn, "alias.created", tenant_id, action.collection, actor,
                                now, alias=action.alias)  # fmt: skip
                        continue
                    target = current.pop(action.alias, None)
                    if target is None:
                        raise BadRequest(f"Alias {action.alias} does not exist")
                    if action.kind == "delete":
                        audited(conn, "alias.deleted", tenant_id, target, actor, now,
                                alias=action.alias)  # fmt: skip
                        continue
                    assert action.new_alias is not None
                    _free(action.new_alias, current, exists)
                    current[action.new_alias] = target
                    audited(conn, "alias.renamed", tenant_id, target, actor, now,
                            alias=action.alias, new_alias=action.new_alias)  # fmt: skip
                conn.execute(delete(table).where(table.c.tenant_id == tenant_id))
                if current:
                    conn.execute(
                        insert(table),
                        [
                            {"tenant_id": tenant_id, "alias": a, "collection": c, "created_at": now}
                            for a, c in current.items()
                        ],
                    )
            self._read_at = -REFRESH_SECONDS  # this process sees the change at once

        await anyio.to_thread.run_sync(work)

    async def forget_collection(self, tenant_id: str, name: str) -> None:
        """A deleted collection's aliases go with it (as in Qdrant): the engines delete
        them in the deletion's own transaction (``drop_aliases_of``); this makes this
        process see it at once, and removes any left by an older version."""

        def work() -> None:
            with self.db.begin() as conn:
                drop_aliases_of(conn, tenant_id, name)
            self._read_at = -REFRESH_SECONDS

        await anyio.to_thread.run_sync(work)


def drop_aliases_of(conn: Connection, tenant_id: str, name: str) -> None:
    """Delete the aliases of collection ``name``, inside the caller's transaction (a
    collection deleted while its aliases stayed would hand them to the next collection
    created under that name)."""
    conn.execute(
        delete(collection_aliases).where(
            collection_aliases.c.tenant_id == tenant_id,
            collection_aliases.c.collection == name,
        )
    )


def _free(alias: str, current: dict[str, str], exists: Callable[[str], bool]) -> None:
    if alias in current:
        raise BadRequest(f"Wrong input: Alias {alias} already exists")
    if exists(alias):
        raise BadRequest(
            f"Wrong input: Collection {alias} already exists: an alias cannot be named so"
        )
