"""Collection aliases over Qdrant's routes: ``update_collection_aliases`` (create, delete,
rename), ``get_aliases``, ``get_collection_aliases``; and the resolution of an alias in
every other data-plane route (``RouteTable.resolver``), so that a request naming an alias
is authorised on, and acts on, its collection: a grant on the alias's name gives nothing.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from bastion.api.dataplane import engine_of, ok, read_body, readable, table
from bastion.api.guard import authenticate, authorize
from bastion.vectors.aliases import Aliases, parse_actions


def _aliases(request: Request) -> Aliases:
    aliases: Aliases = request.app.state.aliases
    return aliases


async def resolve(request: Request, name: str) -> str:
    """The collection ``name`` stands for in the caller's tenant. A name that is no alias
    anywhere costs one set lookup; only for an alias is the caller identified first."""
    aliases = _aliases(request)
    if name not in await aliases.names():
        return name
    principal = await authenticate(request)
    return await aliases.resolve(principal.tenant_id, name)


table.resolver = resolve


@table.route("POST", "/collections/aliases", "Create, delete and rename collection aliases")
async def update_collection_aliases(request: Request) -> Response:
    """Each action is authorised as ``collections.create`` on the collection it names (for
    delete and rename: the one the alias stands for); all happen, or none."""
    started = time.perf_counter()
    principal = await authenticate(request)
    actions = parse_actions(await read_body(request))
    aliases = _aliases(request)
    current = await aliases.of_tenant(principal.tenant_id)
    for action in actions:
        target = action.collection if action.kind == "create" else current.get(action.alias)
        if target is not None:
            await authorize(request, "collections.create", collection=target)
        if action.kind == "create" and action.collection is not None:
            current[action.alias] = action.collection
        elif target is not None:
            del current[action.alias]
            if action.new_alias is not None:
                current[action.new_alias] = target
    names = set(await engine_of(request).list_collections(principal.tenant_id))
    await aliases.apply(principal.tenant_id, actions, actor=principal.id, exists=names.__contains__)
    return ok(True, started)


def _listed(pairs: list[tuple[str, str]]) -> dict[str, list[dict[str, str]]]:
    return {
        "aliases": [
            {"alias_name": alias, "collection_name": collection}
            for alias, collection in sorted(pairs)
        ]
    }


@table.route("GET", "/aliases", "Every alias of the collections the caller may read")
async def get_aliases(request: Request) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.read")
    found = await _aliases(request).of_tenant(principal.tenant_id)
    visible = set(await readable(request, principal, sorted(set(found.values()))))
    return ok(_listed([(a, c) for a, c in found.items() if c in visible]), started)


@table.route("GET", "/collections/{name}/aliases", "The aliases of a collection", aliased=False)
async def get_collection_aliases(request: Request, name: str) -> Response:
    started = time.perf_counter()
    principal = await authorize(request, "collections.read", collection=name)
    found = await _aliases(request).of_tenant(principal.tenant_id)
    return ok(_listed([(a, c) for a, c in found.items() if c == name]), started)
