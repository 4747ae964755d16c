"""Collections: list with point counts, create, delete, payload indexes, and a browser
(scroll with payloads, query by point id or by a pasted vector with a filter, counts).

Viewers see no button that changes anything; the API refuses them anyway.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from bastion.console.actions import action, router
from bastion.console.session import Console, Refused
from bastion.console.web import PREFIX, ConsoleError, Form, read_form, see_other

DISTANCES = ("Cosine", "Dot", "Euclid")
PAYLOAD_SCHEMAS = ("keyword", "integer", "float", "bool", "uuid", "text", "datetime")
WRITER_ROLES = frozenset({"developer", "admin"})
PAGE = 20
MAX_RESULTS = 100


def _name(value: str) -> str:
    return quote(value, safe="")


def disk_size(count: int) -> str:
    """Bytes as a person reads them (1,024-based, one decimal)."""
    if count < 1024:
        return f"{count} bytes"
    size, unit = count / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def may_write(me: dict[str, Any]) -> bool:
    """Whether to offer change buttons (a built-in role that writes); the API decides."""
    return bool(WRITER_ROLES & set(me.get("roles", ())))


def may_export(me: dict[str, Any]) -> bool:
    return "admin" in me.get("roles", ())


@router.get("/collections")
async def collections_page(request: Request) -> Response:
    console = await Console.load(request)
    listed = await console.api("GET", "/admin/collections")
    rows = [
        {
            "name": item["name"],
            "points": item["points"],
            "size": item["dim"],
            "distance": item["distance"],
            "disk": disk_size(item["disk_bytes"]),
        }
        for item in listed["collections"]
    ]
    return await console.page(
        "collections.html", collections=rows, writer=may_write(console.me), distances=DISTANCES
    )


@action(router, "/collections", label="Create the collection {name}", back="/collections")
async def create_collection(console: Console, form: Form, params: dict[str, str]) -> Response:
    name = form.text("name")
    size = form.text("size")
    if not name or not size.isdigit():
        raise Refused(400, "Give the collection a name and a vector size (a whole number).")
    await console.api(
        "PUT",
        f"/collections/{_name(name)}",
        body={"vectors": {"size": int(size), "distance": form.get("distance", "Cosine")}},
    )
    await console.flash(notice=f"Collection {name} created.")
    return see_other(f"{PREFIX}/collections/{_name(name)}")


@action(
    router,
    "/collections/{name}/delete",
    label="Delete the collection {name}",
    back="/collections/{name}",
)
async def delete_collection(console: Console, form: Form, params: dict[str, str]) -> Response:
    if form.text("confirm") != params["name"]:
        raise Refused(400, "Type the collection's name to confirm the deletion.")
    await console.api("DELETE", f"/collections/{_name(params['name'])}")
    await console.flash(notice=f"Collection {params['name']} deleted.")
    return see_other(PREFIX + "/collections")


@action(
    router,
    "/collections/{name}/index",
    label="Add a payload index to {name}",
    back="/collections/{name}",
)
async def create_index(console: Console, form: Form, params: dict[str, str]) -> Response:
    await console.api(
        "PUT",
        f"/collections/{_name(params['name'])}/index",
        body={"field_name": form.text("field_name"), "field_schema": form.get("field_schema")},
    )
    await console.flash(notice=f"Index on {form.text('field_name')} created.")
    return see_other(f"{PREFIX}/collections/{_name(params['name'])}")


@action(
    router,
    "/collections/{name}/export",
    label="Export the collection {name}",
    back="/collections/{name}",
)
async def export_collection(console: Console, form: Form, params: dict[str, str]) -> Response:
    """The NDJSON export as a download (admin at aal3: a step-up asks for a security key)."""
    exported = await console.fetch("POST", f"/collections/{_name(params['name'])}/export")
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", params["name"]) + ".ndjson"
    return Response(
        exported.body,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _collection(console: Console, name: str) -> dict[str, Any]:
    try:
        info: dict[str, Any] = (await console.api("GET", f"/collections/{_name(name)}"))["result"]
    except Refused as refused:
        raise ConsoleError(refused.status, refused.message) from None
    return info


@router.get("/collections/{name}")
async def collection_page(request: Request, name: str, offset: str = "") -> Response:
    console = await Console.load(request)
    info = await _collection(console, name)
    scroll: dict[str, Any] = {"limit": PAGE, "with_payload": True, "with_vector": False}
    if offset:
        scroll["offset"] = int(offset) if offset.isdigit() else offset
    page = await console.api("POST", f"/collections/{_name(name)}/points/scroll", body=scroll)
    return await _browser(
        console,
        name,
        info,
        points=page["result"]["points"],
        next_offset=page["result"].get("next_page_offset"),
    )


async def _browser(console: Console, name: str, info: dict[str, Any], **extra: Any) -> Response:
    defaults: dict[str, Any] = {
        "points": [],
        "next_offset": None,
        "results": None,
        "count": None,
        "query": {},
        "error": None,
    }
    return await console.page(
        "collection.html",
        name=name,
        info=info,
        writer=may_write(console.me),
        exporter=may_export(console.me),
        schemas=PAYLOAD_SCHEMAS,
        **{**defaults, **extra},
    )


def _filter(text: str) -> Any:
    if not text.strip():
        return None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Refused(400, "The filter is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise Refused(400, 'The filter must be a JSON object such as {"must": [...]}.')
    return parsed


def _ids(text: str) -> list[Any]:
    ids: list[Any] = []
    for part in text.replace("\n", ",").split(","):
        part = part.strip()
        if part:
            ids.append(int(part) if part.isdigit() else part)
    return ids


def _vector(text: str) -> list[float]:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Refused(400, "The vector must be a JSON array of numbers.") from None
    if not isinstance(parsed, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in parsed
    ):
        raise Refused(400, "The vector must be a JSON array of numbers.")
    return [float(x) for x in parsed]


@router.post("/collections/{name}/query")
async def query_collection(request: Request, name: str) -> Response:
    """A read (no state changes): answered directly, with the form kept as typed."""
    console = await Console.load(request)
    form = await read_form(request)
    console.check_csrf(form.get("csrf"))
    info = await _collection(console, name)
    query = {key: form.get(key) for key in ("ids", "vector", "filter", "limit")}
    limit = int(query["limit"]) if query["limit"].isdigit() else 10
    path = f"/collections/{_name(name)}/points"
    try:
        chosen = _filter(query["filter"])
        if query["ids"].strip():
            found = await console.api(
                "POST", path, body={"ids": _ids(query["ids"]), "with_payload": True}
            )
            results = found["result"]
        elif query["vector"].strip():
            body: dict[str, Any] = {
                "vector": _vector(query["vector"]),
                "limit": max(1, min(limit, MAX_RESULTS)),
                "with_payload": True,
            }
            if chosen is not None:
                body["filter"] = chosen
            results = (await console.api("POST", path + "/search", body=body))["result"]
        else:
            results = None
        counted: dict[str, Any] = {"exact": True}
        if chosen is not None:
            counted["filter"] = chosen
        count = (await console.api("POST", path + "/count", body=counted))["result"]["count"]
    except Refused as refused:
        return await _browser(
            console,
            name,
            info,
            query=query,
            error=refused.message,
            status=refused.status if refused.status < 500 else 400,
        )
    return await _browser(console, name, info, query=query, results=results, count=count)
