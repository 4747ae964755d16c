"""Bastion's collection backup file: NDJSON with a header and a checksummed trailer.

::

    {"format": "bastion-backup", "version": 1, "collection": …, "config": …, …}   header
    {"id": 1, "payload": {…}, "vector": […]}                                     a point,
    …                                                                            as export
    {"trailer": {"points": N, "sha256": "…"}}                                    trailer

``config`` is the body of ``PUT /collections/{name}`` that recreates the collection
(``vectors`` and ``hnsw_config`` as ``GET /collections/{name}`` shows them), so the file
carries whatever vector parameters the collection has without this module reading them.
Point lines are exactly the lines ``POST /collections/{name}/export`` writes. The
trailer's ``sha256`` is the SHA-256 of every byte before it (header and point lines,
each with its newline): a file cut short has no trailer, a file changed by hand does not
match it, and either is refused before anything is created (docs/backup.md). It is a
checksum, not a signature: the hash of a backup is also recorded in the audit event of
the backup (``collection.backed_up``), whose chain is signed.

Nothing here touches an engine: ``Writer`` frames lines, ``verify`` checks a whole file,
``point_batches`` reads the points of a verified file back.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import orjson

from bastion.audit import record
from bastion.storage import Database
from bastion.vectors.audit import resource_of
from bastion.vectors.errors import BadRequest

FORMAT = "bastion-backup"
VERSION = 1
MEDIA_TYPE = "application/x-ndjson"
MAX_LINE_BYTES = 8 * 1024 * 1024  # one point: a 65,536-float vector and its payload fit
_HEADER_FIELDS = ("collection", "config", "payload_indexes", "aliases", "created_at", "points")


class BackupRefused(BadRequest):
    """A backup file that cannot be restored; ``reason`` is a machine code (audit)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"backup file refused: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Header:
    """The first line of a backup: the collection as it was when the backup began."""

    collection: str
    config: dict[str, Any]  # the body of PUT /collections/{name}
    payload_indexes: dict[str, str]  # field -> schema
    aliases: list[str]
    created_at: str  # ISO 8601, when the backup began
    points: int  # the count when the backup began (the trailer's is the one checked)

    def line(self) -> bytes:
        body = {"format": FORMAT, "version": VERSION}
        body.update({name: getattr(self, name) for name in _HEADER_FIELDS})
        return orjson.dumps(body) + b"\n"


@dataclass(frozen=True)
class Verified:
    header: Header
    points: int
    sha256: str


def header_of(name: str, info: dict[str, Any], aliases: list[str], now: datetime) -> Header:
    """The header of a backup of ``name`` from its Qdrant ``CollectionInfo`` (as
    ``GET /collections/{name}`` answers it)."""
    config = info["config"]
    hnsw = {
        key: config["hnsw_config"][key]
        for key in ("m", "ef_construct", "full_scan_threshold")
        if key in config["hnsw_config"]
    }
    return Header(
        collection=name,
        config={"vectors": config["params"]["vectors"], "hnsw_config": hnsw},
        payload_indexes={
            field: str(schema["data_type"]) for field, schema in info["payload_schema"].items()
        },
        aliases=sorted(aliases),
        created_at=now.isoformat(),
        points=int(info["points_count"]),
    )


class Writer:
    """Frames a backup: ``start`` (the header), ``point`` for each, then ``trailer``."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.points = 0

    def start(self, header: Header) -> bytes:
        return self._hashed(header.line())

    def point(self, record: dict[str, Any]) -> bytes:
        self.points += 1
        return self._hashed(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")

    def trailer(self) -> bytes:
        return orjson.dumps({"trailer": {"points": self.points, "sha256": self.sha256}}) + b"\n"

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def _hashed(self, line: bytes) -> bytes:
        self._hash.update(line)
        return line


def _lines(file: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, the line with its newline), each at most ``MAX_LINE_BYTES``."""
    file.seek(0)
    number = 0
    while True:
        line = file.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES:
            raise BackupRefused("bad_line", f"line {number} is longer than {MAX_LINE_BYTES} bytes")
        if not line.endswith(b"\n"):  # every line the writer writes ends with one
            raise BackupRefused(
                "truncated", f"the file ends in the middle of line {number}: it was cut short"
            )
        yield number, line


def _object(number: int, line: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BackupRefused("bad_line", f"line {number} is not JSON") from None
    if not isinstance(value, dict):
        raise BackupRefused("bad_line", f"line {number} is not a JSON object")
    return value


def _header(line: bytes) -> Header:
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise BackupRefused(
            "not_a_backup",
            f"the first line is not a {FORMAT} header (an export has none: restore takes "
            "the files that GET /collections/{name}/backup and `bastion backup` write)",
        )
    if body.get("version") != VERSION:
        raise BackupRefused(
            "unsupported_version",
            f"version {body.get('version')!r} of the format; this Bastion reads {VERSION}",
        )
    kinds = {"collection": str, "config": dict, "payload_indexes": dict, "aliases": list,
             "created_at": str, "points": int}  # fmt: skip
    for name, kind in kinds.items():
        if not isinstance(body.get(name), kind):
            raise BackupRefused("bad_line", f"the header's {name} is missing or malformed")
    indexes = body["payload_indexes"]
    if not all(isinstance(schema, str) for schema in indexes.values()):
        raise BackupRefused("bad_line", "the header's payload_indexes must map fields to schemas")
    return Header(**{name: body[name] for name in _HEADER_FIELDS})


def verify(file: IO[bytes]) -> Verified:
    """Check a whole backup file (raises ``BackupRefused``): a header first, then point
    objects, then the trailer, last, whose count and SHA-256 match what precedes it."""
    digest = hashlib.sha256()
    header: Header | None = None
    trailer: dict[str, Any] | None = None
    count = 0
    for number, line in _lines(file):
        if trailer is not None:
            raise BackupRefused("bad_line", f"line {number} follows the trailer")
        if header is None:
            header = _header(line)
            digest.update(line)
            continue
        value = _object(number, line)
        if "trailer" in value:
            trailer = value
            continue
        if "id" not in value:
            raise BackupRefused("bad_line", f"line {number} is neither a point nor the trailer")
        digest.update(line)
        count += 1
    if header is None:
        raise BackupRefused("not_a_backup", "the file is empty")
    if trailer is None:
        raise BackupRefused(
            "truncated", f"the file ends after {count} points without its trailer: it was cut short"
        )
    body = trailer["trailer"]
    if not isinstance(body, dict) or body.get("points") != count:
        raise BackupRefused(
            "count_mismatch", f"the trailer counts {_count(body)} points, the file holds {count}"
        )
    expected = body.get("sha256")
    actual = digest.hexdigest()
    if not isinstance(expected, str) or not hmac.compare_digest(expected.lower(), actual):
        raise BackupRefused(
            "checksum_mismatch",
            "the SHA-256 of the file does not match its trailer: it was changed or damaged",
        )
    return Verified(header=header, points=count, sha256=actual)


def _count(body: Any) -> object:
    return body.get("points") if isinstance(body, dict) else None


def point_batches(file: IO[bytes], size: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """The points of a ``verify``-ed file in batches: (line number of the first, points)."""
    batch: list[dict[str, Any]] = []
    first = 0
    for number, line in _lines(file):
        if number == 1:
            continue
        value = _object(number, line)
        if "trailer" in value:
            break
        if not batch:
            first = number
        batch.append(value)
        if len(batch) == size:
            yield first, batch
            batch = []
    if batch:
        yield first, batch


# -- audit -------------------------------------------------------------------------------


def record_backup(
    db: Database,
    *,
    tenant_id: str,
    collection: str,
    actor: str,
    count: int,
    sha256: str,
    complete: bool,
    now: datetime,
) -> None:
    """``collection.backed_up`` once a backup stream ended (``complete``: its trailer was
    sent; a stream cut short is recorded too)."""
    with db.begin() as conn:
        record(
            conn,
            "collection.backed_up",
            actor=actor,
            tenant_id=tenant_id,
            resource=resource_of(collection),
            details={"collection": collection, "count": count, "sha256": sha256,
                     "complete": complete},
            now=now,
        )  # fmt: skip


def record_restore(
    db: Database,
    *,
    tenant_id: str,
    collection: str,
    actor: str,
    now: datetime,
    verified: Verified | None,
    reason: str | None = None,
) -> None:
    """``collection.restored``: success, or failure with the reason (nothing was kept)."""
    details: dict[str, Any] = {"collection": collection}
    if verified is not None:
        details.update(
            source=verified.header.collection, count=verified.points, sha256=verified.sha256
        )
    with db.begin() as conn:
        record(
            conn,
            "collection.restored",
            actor=actor,
            tenant_id=tenant_id,
            resource=resource_of(collection),
            outcome="success" if reason is None else "failure",
            reason=reason,
            details=details,
            now=now,
        )
