"""``bastion migrate-data --from ./data --to postgresql://…``: an embedded installation
moved onto PostgreSQL, for replicas (docs/scale-out.md "Moving an installation").

In this order, so that a mistake costs nothing: the source folder must hold an
installation whose server is stopped (its lock is held for the whole copy), the
destination must be an empty PostgreSQL database (it is migrated to the current schema
first). Then every table of the source (enumerated from the database, in foreign-key
order), the signing keys (sealed with the source's master key) and each collection's
points, in its pgvector table with its HNSW index, are written in **one transaction**
with a progress bar: a failure leaves the destination empty (one line says what stopped
it; the same command run again does the whole move). Last, the copy is verified: the
row count of every table (the points of every collection), and the audit chain with
its signed checkpoints, up to the source's head.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import (
    Connection,
    LargeBinary,
    String,
    Table,
    Text,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy import table as sql_table
from sqlalchemy.exc import DBAPIError

from bastion.audit import verify_chain
from bastion.authn.enrollment import unreadable_seeds
from bastion.cli.common import app, fail, out, settings_for, shown, table
from bastion.clock import SystemClock
from bastion.datadir import lock_for_server, require_installation
from bastion.errors import BastionError, ConfigurationError
from bastion.identity import key_table
from bastion.runtime import master_key_of
from bastion.sealing import Sealer
from bastion.storage import Database
from bastion.storage.redact import redact_database_errors
from bastion.storage.schema import audit_events, metadata, signing_keys, tenants, users
from bastion.storage.transfer import PAGE, copy_tables, count, source_tables
from bastion.storage.vector_schema import collections, points
from bastion.tokens import KeyRing
from bastion.vectors.ids import key_to_id

if TYPE_CHECKING:  # the `postgres` extra
    from bastion.vectors.pgvector.adopt import StoredCollection, StoredPoint

_COMMITTING = "committing the move"
# Tables the destination must not hold rows in: it would already be an installation.
_INSTALLATION = (tenants, users, audit_events, signing_keys)


@app.command("migrate-data")
def migrate_data(
    source: Annotated[
        Path,
        typer.Option(
            "--from", help="Data folder of the embedded installation (its server stopped)."
        ),
    ],
    destination: Annotated[
        str, typer.Option("--to", help="postgresql://… URL of an empty database.")
    ],
) -> None:
    """Move an embedded installation (SQLite) onto an empty PostgreSQL database."""
    if not destination.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        fail("--to must be a postgresql:// URL", "e.g. postgresql://bastion@db:5432/bastion")
    settings = settings_for(source, database_url=f"sqlite:///{(source / 'bastion.db').resolve()}")
    try:
        require_installation(source)
        lock = lock_for_server(source)  # no server writes while we copy
        sealer = Sealer(master_key_of(settings))
        ring = KeyRing.load_or_create(source / "keys", now=SystemClock().now())
    except BastionError as exc:
        fail(exc.detail)
    src, dst = Database(settings.resolved_database_url), Database(destination)
    try:
        _migrate(src, dst, sealer, ring)
    except BastionError as exc:
        fail(exc.detail)
    finally:
        src.dispose()
        dst.dispose()
        lock.release()
    out.print(
        "Give every replica this installation's master key: "
        f"BASTION_MASTER_KEY_FILE={shown(str((source / 'master.key').resolve()))} "
        "(copied to each host, mode 0600), or the BASTION_MASTER_KEY you used here.",
        highlight=False,
        soft_wrap=True,
    )


def _migrate(src: Database, dst: Database, sealer: Sealer, ring: KeyRing) -> None:
    src.migrate()  # the source at the current schema, as the destination will be
    with src.read() as source:
        # Every refusal that the source alone decides comes before the destination is
        # touched: it stays as it was (not even a schema).
        tables = [t for t in source_tables(source) if t is not signing_keys]
        _require_storable(source, tables)
        _require_indexable(source)
        _require_master_key(source, sealer)
    import psycopg  # the `postgres` extra

    moved = False
    try:
        with dst.startup_lock():  # no replica starts on it meanwhile
            dst.migrate()
            _prepare_vectors(dst)  # the pgvector extension, which the vector tables need
            with dst.read() as conn:
                _require_empty(conn)
            with src.read() as source:
                # The embedded installation's keys are files (its table is empty): they
                # are sealed into the destination's table instead of copied.
                expected = {t.name: count(source, t) for t in tables}
                per_collection = _points_per_collection(source)
                source_head = source.execute(select(func.max(audit_events.c.seq))).scalar_one()
                bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=out,
                )
                with bar:
                    _move(source, dst, tables, sealer, ring, bar)
                moved = True
                expected[signing_keys.name] = len(ring.keys)
        with dst.read() as conn:
            problems = _verify(conn, expected, per_collection, ring, source_head)
    except (DBAPIError, psycopg.Error) as exc:
        if moved:
            raise ConfigurationError(
                f"the move was committed, but its verification could not run: {_reason(exc)}"
            ) from None
        raise ConfigurationError(
            f"the move could not start: {_reason(exc)}. Nothing was copied: check the --to "
            "URL and that the database is up, then run migrate-data again"
        ) from None
    _report(expected, per_collection, problems)
    if problems:
        raise ConfigurationError("the copy does not match the source: " + "; ".join(problems))


def _prepare_vectors(dst: Database) -> None:
    from bastion.vectors.pgvector.server import conninfo, prepare_database  # `postgres` extra

    prepare_database(conninfo(dst.url))


def _move(
    source: Connection,
    dst: Database,
    tables: list[Table],
    sealer: Sealer,
    ring: KeyRing,
    bar: Progress,
) -> None:
    """Every row, the signing keys and each collection's points in its vector table with
    its indexes: one transaction, so that a failure PostgreSQL reports at any step (the
    server gone, a full disk, a statement refused) leaves nothing but the empty schema,
    and the same command, run again, does the whole move."""
    import psycopg  # the `postgres` extra

    rows = [t for t in tables if t is not points]  # the points go to their vector tables
    steps = ["copying the tables"]  # where the move is, for the message if it stops
    stopped: list[Exception] = []
    try:
        with dst.begin() as target:
            try:
                _write(source, target, rows, sealer, ring, bar, steps)
            except (DBAPIError, psycopg.Error) as exc:
                stopped.append(exc)  # the cause (a rollback on a lost connection fails too)
                raise
            steps.append(_COMMITTING)
    except (DBAPIError, psycopg.Error) as exc:
        kept = (
            "Nothing was kept (the destination holds Bastion's empty schema only)"
            if steps[-1] != _COMMITTING
            else "Whether PostgreSQL kept the move is unknown (a re-run that says the "
            "destination already holds an installation means it did, unverified)"
        )
        raise ConfigurationError(
            f"the move stopped while {steps[-1]}: {_reason((stopped or [exc])[0])}. {kept}: "
            "remove the cause, then run the same migrate-data command again"
        ) from None


def _write(
    source: Connection,
    target: Connection,
    rows: list[Table],
    sealer: Sealer,
    ring: KeyRing,
    bar: Progress,
    steps: list[str],
) -> None:
    import psycopg  # the `postgres` extra

    from bastion.vectors.pgvector.adopt import move_points

    task = bar.add_task("copying rows", total=sum(count(source, t) for t in rows))
    copy_tables(
        source,
        target,
        rows,
        advance=lambda name, n: bar.update(task, advance=n, description=f"copying {name}"),
    )
    steps.append("sealing the signing keys")
    key_table.import_ring(target, sealer, ring)
    driver = target.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    moving = bar.add_task("moving points", total=count(source, points))
    for collection in _collections_of(source):
        name = collection[1]
        steps.append(f"moving the points of collection {name!r} into their pgvector table")
        move_points(
            driver,
            collection,
            _points_of(source, collection[0]),
            advance=lambda n, name=name: bar.update(  # type: ignore[misc]
                moving, advance=n, description=f"moving points of {name!r}"
            ),
            indexing=lambda name=name: bar.update(  # type: ignore[misc]
                moving, description=f"indexing {name!r}"
            ),
        )
    bar.update(moving, description="moving points")


def _collections_of(source: Connection) -> list[StoredCollection]:
    found = source.execute(
        select(
            collections.c.id,
            collections.c.name,
            collections.c.dim,
            collections.c.distance,
            collections.c.config,
        ).order_by(collections.c.id)
    ).tuples()
    return list(found)


def _points_of(source: Connection, collection_id: str) -> Iterator[Sequence[StoredPoint]]:
    """A collection's points from the source, in pages (its order: the storage key)."""
    result = source.execution_options(yield_per=PAGE).execute(
        select(points.c.point_id, points.c.vector, points.c.payload)
        .where(points.c.collection_id == collection_id)
        .order_by(points.c.point_id)
    )
    yield from result.tuples().partitions(PAGE)


def _reason(exc: Exception) -> str:
    """PostgreSQL's (or the driver's) own first line, without SQLAlchemy's decoration, and
    without the values it may quote (``storage.redact``: the object names stay)."""
    redact_database_errors(exc)  # psycopg's own, from the point move, are not yet
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def _require_storable(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL's text holds no U+0000, and its ``jsonb`` (where the pgvector engine
    keeps payloads) neither U+0000 nor a lone UTF-16 surrogate, which SQLite stores: a
    value it would refuse stops the move before anything is written, naming where it
    is. (Other JSON columns become ``json``, which keeps them as written.)"""
    for source_table in tables:
        keys = list(source_table.primary_key.columns)
        for column in source_table.columns:
            if not isinstance(column.type, String):
                continue
            found = conn.execute(
                select(*keys)
                .where(func.instr(cast(column, LargeBinary), literal(b"\0")) > 0)
                .limit(1)
            ).first()
            if found is not None:
                where = ", ".join(f"{k.name} {v}" for k, v in zip(keys, found, strict=True))
                raise ConfigurationError(
                    f"{source_table.name}.{column.name} holds the character U+0000 (row {where}), "
                    "which PostgreSQL cannot store: nothing was written"
                )
    _require_storable_payloads(conn)


def _require_indexable(conn: Connection) -> None:
    """pgvector's HNSW indexes vectors of at most 2,000 dimensions; the embedded engine
    takes up to 65,536."""
    from bastion.vectors.pgvector.tables import MAX_INDEXED_DIM  # the `postgres` extra

    too_wide = conn.execute(
        select(collections.c.name, collections.c.dim)
        .where(collections.c.dim > MAX_INDEXED_DIM)
        .order_by(collections.c.name)
    ).all()
    if too_wide:
        named = ", ".join(f"{name!r} ({dim})" for name, dim in too_wide)
        raise ConfigurationError(
            f"collections with more dimensions than pgvector indexes ({MAX_INDEXED_DIM}): "
            f"{named}; nothing was written (docs/scale-out.md, Limits)"
        )


def _require_storable_payloads(conn: Connection) -> None:
    names = dict(conn.execute(select(collections.c.id, collections.c.name)).tuples().all())
    # Stored as JSON text, so U+0000 and surrogates are \u escapes: a cheap pre-filter.
    suspects = conn.execute(
        select(points.c.collection_id, points.c.point_id, points.c.payload).where(
            or_(
                func.instr(cast(points.c.payload, Text), literal("\\u0000")) > 0,
                func.instr(func.lower(cast(points.c.payload, Text)), literal("\\ud")) > 0,
            )
        )
    )
    for collection_id, key, payload in suspects:
        problem = _jsonb_problem(payload)
        if problem is not None:
            raise ConfigurationError(
                f"point {key_to_id(key)!r} of collection {names[collection_id]!r} has "
                f"{problem} in its payload, which PostgreSQL's jsonb cannot store: change or "
                "delete that point on the embedded server, then migrate again "
                "(nothing was written)"
            )


def _jsonb_problem(value: Any) -> str | None:
    """What in a payload jsonb refuses: U+0000 or a lone surrogate in a key or a string."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _jsonb_problem(key) or _jsonb_problem(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _jsonb_problem(item)
            if found:
                return found
    elif isinstance(value, str):
        if "\x00" in value:
            return "the character U+0000"
        if any("\ud800" <= char <= "\udfff" for char in value):
            return "a lone UTF-16 surrogate"
    return None


def _require_master_key(conn: Connection, sealer: Sealer) -> None:
    """The TOTP seeds are copied sealed; the signing keys are sealed here: one master key
    for both, or the replicas could read the one and not the other."""
    unreadable = unreadable_seeds(conn, sealer)
    if unreadable:
        raise ConfigurationError(
            f"the master key given does not unseal this installation's TOTP seeds "
            f"({len(unreadable)} of them): give migrate-data the installation's own key "
            "(its data folder's master.key, or the BASTION_MASTER_KEY / "
            "BASTION_MASTER_KEY_FILE its server runs with)"
        )


def _require_empty(conn: Connection) -> None:
    held = [t.name for t in _INSTALLATION if count(conn, t)]
    if held:
        raise ConfigurationError(
            f"the destination already holds an installation (rows in {', '.join(held)}): "
            "migrate-data fills an empty database only"
        )


def _points_per_collection(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(points.c.collection_id, func.count()).group_by(points.c.collection_id)
    ).all()
    found = {row[0]: int(row[1]) for row in rows}
    for collection_id in conn.execute(select(collections.c.id)).scalars():
        found.setdefault(collection_id, 0)
    return found


def table_name(collection_id: str) -> str:
    from bastion.vectors.pgvector.tables import table_name as named  # the `postgres` extra

    return named(collection_id)


def _verify(
    conn: Connection,
    expected: dict[str, int],
    per_collection: dict[str, int],
    ring: KeyRing,
    source_head: int | None,
) -> list[str]:
    problems: list[str] = []
    for name, rows in expected.items():
        if name == points.name:
            continue  # moved into the vector tables: counted per collection below
        found = count(conn, metadata.tables[name])
        if found != rows:
            problems.append(f"{name}: {found} rows, the source has {rows}")
    for collection_id, rows in per_collection.items():
        vector_table = sql_table(table_name(collection_id))  # quoted by SQLAlchemy
        found = conn.execute(select(func.count()).select_from(vector_table)).scalar_one()
        if found != rows:
            problems.append(f"collection {collection_id}: {found} points, the source has {rows}")
    report = verify_chain(
        conn,
        verifier=lambda kid, data, signature: ring.verify_signature(
            kid=kid, data=data, signature=signature
        ),
    )
    if not report.ok:
        problems.append(f"audit chain: {report.problem}")
    elif report.head_seq != source_head:
        problems.append(f"audit chain ends at {report.head_seq}, the source's at {source_head}")
    return problems


def _report(expected: dict[str, int], per_collection: dict[str, int], problems: list[str]) -> None:
    grid = table("Copied and verified", "table", "rows")
    for name, rows in expected.items():
        grid.add_row(name, str(rows))
    out.print(grid)
    moved = sum(per_collection.values())
    out.print(f"{len(per_collection)} collections, {moved} points in their pgvector tables")
    if not problems:
        out.print("[bold green]Verified:[/] every table's row count and the audit chain.")
