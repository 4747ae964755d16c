"""The pgvector engine's SQL: fixed statements, and builders for the per-collection ones.

Table names come from ``tables.table_name`` (a server-made id); everything else a caller
sends is a bind parameter. Vectors are sent in pgvector's binary form (``%b``).
"""

from __future__ import annotations

from functools import lru_cache

from psycopg import sql

COLLECTION = (
    "SELECT id, dim, distance, config, created_at FROM collections "
    "WHERE tenant_id = %s AND name = %s"
)
COLLECTION_NAMES = "SELECT name FROM collections WHERE tenant_id = %s"
INSERT_COLLECTION = (
    "INSERT INTO collections (id, tenant_id, name, dim, distance, config, created_at, version) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, 0)"
)
UPDATE_CONFIG = "UPDATE collections SET config = %s WHERE id = %s"
DELETE_COLLECTION = "DELETE FROM collections WHERE tenant_id = %s AND name = %s RETURNING id"
PAYLOAD_INDEXES = (
    'SELECT field, "schema" FROM payload_indexes WHERE collection_id = %s ORDER BY field'
)
PAYLOAD_INDEX_SCHEMA = (
    'SELECT "schema" FROM payload_indexes WHERE collection_id = %s AND field = %s'
)
DELETE_PAYLOAD_INDEXES = "DELETE FROM payload_indexes WHERE collection_id = %s"
DELETE_PAYLOAD_INDEX = "DELETE FROM payload_indexes WHERE collection_id = %s AND field = %s"
INSERT_PAYLOAD_INDEX = (
    'INSERT INTO payload_indexes (collection_id, field, "schema") VALUES (%s, %s, %s)'
)
# Live rows as counted by the statistics (kept up by every write, flushed within
# seconds) or by the last ANALYZE / VACUUM / CREATE INDEX, whichever is higher.
ESTIMATE = (
    "SELECT greatest(c.reltuples::bigint, pg_stat_get_live_tuples(c.oid)) "
    "FROM pg_class c WHERE c.oid = to_regclass(%s)"
)
MIN_SCAN_TUPLES = 20_000  # pgvector's default hnsw.max_scan_tuples
ITERATIVE = "relaxed_order"  # pgvector 0.8's iterative index scan


def search_settings(ef: int, need: int) -> dict[str, str]:
    """Parameters of a graph search's settings: breadth, and the iterative scan, which goes
    on through the graph while a filter leaves fewer than LIMIT rows."""
    return {"ef": str(ef), "it": ITERATIVE, "mst": str(max(MIN_SCAN_TUPLES, 4 * need))}


def columns(payload: bool, vectors: bool | tuple[str, ...]) -> sql.Composable:
    """``point_id`` [, ``payload``] [, vector columns]: the order ``rows.record`` reads
    (``vectors``: the vector columns, or True for the unnamed ``embedding``)."""
    if isinstance(vectors, bool):
        vectors = ("embedding",) if vectors else ()
    names = ["point_id"] + (["payload"] if payload else []) + list(vectors)
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def vector_param(index: int) -> str:
    """The bind parameter of an upsert's ``index``-th vector column."""
    return f"v{index}"


def _unnest(vectors: tuple[str, ...]) -> sql.Composed:
    arrays: list[sql.Composable] = [sql.SQL("%(k)s::text[]")]
    for index in range(len(vectors)):  # parameter names are made here, never from input
        arrays.append(sql.SQL(f"%({vector_param(index)})b::vector[]"))
    arrays.append(sql.SQL("%(p)s::jsonb[]"))
    return sql.SQL("unnest({})").format(sql.SQL(", ").join(arrays))


@lru_cache(maxsize=1024)
def upsert(table: str, vectors: tuple[str, ...] = ("embedding",)) -> sql.Composed:
    names = sql.SQL(", ").join(sql.Identifier(name) for name in vectors)
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(name)) for name in vectors
    )
    return sql.SQL(
        "INSERT INTO {t} (point_id, {names}, payload) SELECT * FROM {rows} "
        "ON CONFLICT (point_id) DO UPDATE SET {updates}, payload = EXCLUDED.payload"
    ).format(t=sql.Identifier(table), names=names, rows=_unnest(vectors), updates=updates)


def set_vectors(
    table: str, vectors: tuple[str, ...], condition: sql.Composable | None
) -> sql.Composed:
    """``update_vectors``: each point's given vectors replace its stored ones (a vector
    not given is NULL in its array, and the stored one stays), where ``condition``."""
    aliases = [sql.Identifier(f"u{i}") for i in range(len(vectors))]
    arrays = sql.SQL(", ").join(
        [sql.SQL("%(k)s::text[]")]
        + [sql.SQL(f"%({vector_param(i)})b::vector[]") for i in range(len(vectors))]
    )
    sets = sql.SQL(", ").join(
        sql.SQL("{c} = COALESCE(u.{a}, {t}.{c})").format(
            c=sql.Identifier(name), a=alias, t=sql.Identifier(table)
        )
        for name, alias in zip(vectors, aliases, strict=True)
    )
    only_if = sql.SQL("") if condition is None else sql.SQL(" AND ({})").format(condition)
    return sql.SQL(
        "UPDATE {t} SET {sets} FROM unnest({arrays}) AS u(k, {aliases}) WHERE point_id = u.k{c}"
    ).format(
        t=sql.Identifier(table),
        sets=sets,
        arrays=arrays,
        aliases=sql.SQL(", ").join(aliases),
        c=only_if,
    )


def clear_vectors(table: str, vectors: tuple[str, ...], condition: sql.Composable) -> sql.Composed:
    """``delete_vectors``: the named vectors' columns set NULL where ``condition``."""
    return sql.SQL("UPDATE {t} SET {sets} WHERE {c}").format(
        t=sql.Identifier(table),
        sets=sql.SQL(", ").join(
            sql.SQL("{} = NULL").format(sql.Identifier(name)) for name in vectors
        ),
        c=condition,
    )


def vectorless(table: str, vectors: tuple[str, ...], condition: sql.Composable) -> sql.Composed:
    """The first point ``condition`` selects left with none of its vectors
    (``delete_vectors`` refuses that)."""
    return sql.SQL(
        "SELECT point_id FROM {t} WHERE ({c}) AND {none} ORDER BY point_id LIMIT 1"
    ).format(
        t=sql.Identifier(table),
        c=condition,
        none=sql.SQL(" AND ").join(
            sql.SQL("{} IS NULL").format(sql.Identifier(name)) for name in vectors
        ),
    )


@lru_cache(maxsize=1024)
def set_payloads(table: str) -> sql.Composed:
    return sql.SQL(
        "UPDATE {t} SET payload = u.p FROM unnest(%(k)s::text[], %(p)s::jsonb[]) AS u(k, p) "
        "WHERE point_id = u.k"
    ).format(t=sql.Identifier(table))


def ordered(
    table: str,
    *,
    payload: bool,
    vector: tuple[str, ...],
    condition: sql.Composable,
    descending: bool,
    start: bool,
    limit: int,
) -> sql.Composed:
    """Scroll's ``order_by``: one row per number the key's ``%(path)s`` reaches, from
    ``%(start)s`` on (inclusive), ordered by it and then by point id; the value last."""
    direction = sql.SQL("DESC" if descending else "ASC")
    first: sql.Composable = sql.SQL("")
    if start:
        first = sql.SQL(" AND s.v {} %(start)s").format(sql.SQL("<=" if descending else ">="))
    return sql.SQL(
        "SELECT {cols}, s.v FROM (SELECT point_id, payload, {inner}"
        "(j.v #>> '{{}}')::float8 AS v FROM {t} CROSS JOIN LATERAL "
        "jsonb_path_query(payload, %(path)s::jsonpath) AS j(v) "
        "WHERE jsonb_typeof(j.v) = 'number' AND ({w})) AS s WHERE TRUE{first} "
        "ORDER BY s.v {d}, s.point_id LIMIT {n}"
    ).format(
        cols=sql.SQL(", ").join(
            sql.Identifier("s", name)
            for name in ["point_id"] + (["payload"] if payload else []) + list(vector)
        ),
        inner=sql.SQL("").join(sql.SQL("{}, ").format(sql.Identifier(name)) for name in vector),
        t=sql.Identifier(table),
        w=condition,
        first=first,
        d=direction,
        n=sql.Literal(limit),
    )


def conditional_upserts(
    table: str,
    mode: str,
    condition: sql.Composable | None,
    vectors: tuple[str, ...] = ("embedding",),
) -> list[sql.Composed]:
    """An upsert with ``update_mode`` / ``update_filter``, as statements run in one
    transaction whose row counts add up to the points written: an ``UPDATE`` of the
    existing rows (``condition`` sees only the existing row's ``payload`` and
    ``point_id``), then an ``INSERT`` of the new ones."""
    aliases = [sql.Identifier(f"u{i}") for i in range(len(vectors))]
    rows = sql.SQL("{} AS u(k, {}, p)").format(_unnest(vectors), sql.SQL(", ").join(aliases))
    only_if = sql.SQL("") if condition is None else sql.SQL(" AND ({})").format(condition)
    names = [sql.Identifier(name) for name in vectors]
    statements: list[sql.Composed] = []
    if mode != "insert_only":
        sets = sql.SQL(", ").join(
            sql.SQL("{} = u.{}").format(name, alias)
            for name, alias in zip(names, aliases, strict=True)
        )
        statements.append(
            sql.SQL(
                "UPDATE {t} SET {sets}, payload = u.p FROM {rows} WHERE point_id = u.k{c}"
            ).format(t=sql.Identifier(table), sets=sets, rows=rows, c=only_if)
        )
    if mode != "update_only":
        statements.append(
            sql.SQL(
                "INSERT INTO {t} (point_id, {names}, payload) SELECT k, {aliases}, p FROM {rows} "
                "ON CONFLICT (point_id) DO NOTHING"
            ).format(
                t=sql.Identifier(table),
                names=sql.SQL(", ").join(names),
                aliases=sql.SQL(", ").join(aliases),
                rows=rows,
            )
        )
    return statements


def nearest(
    table: str,
    operator: str,
    *,
    payload: bool,
    vector: bool | tuple[str, ...],
    condition: sql.Composable | None,
    exact: bool,
    column: str = "embedding",
) -> sql.Composed | str:
    """The ``n`` nearest rows to ``q``: ``point_id [, payload] [, embedding], d``.

    Graph search: ``ORDER BY embedding <op> q LIMIT n`` is what pgvector's HNSW index
    answers. Its settings are made in the same statement, so a search is one round trip
    and one (implicit) transaction: ``set_config(…, true)`` (``SET LOCAL``) in a one-row
    subquery the search is ``LATERAL`` to, so they are applied before the index scan
    starts and end with the statement. The iterative scan may return rows slightly out
    of order, so the outer query sorts them (pgvector's advice). Exact: the subquery
    behind ``OFFSET 0`` hides the ordering from the index, so PostgreSQL scans every
    matching row.
    """
    vectors = vector if isinstance(vector, tuple) else ("embedding",) if vector else ()
    if condition is None:
        return _nearest_unfiltered(table, operator, payload, vectors, exact, column)
    return _nearest(table, operator, payload, vectors, condition, exact, column)


@lru_cache(maxsize=1024)
def _nearest_unfiltered(
    table: str, operator: str, payload: bool, vectors: tuple[str, ...], exact: bool, column: str
) -> str:
    return _nearest(table, operator, payload, vectors, sql.SQL("TRUE"), exact, column).as_string()


_EXACT = (
    "SELECT * FROM (SELECT {cols}, {d} AS d FROM {t} WHERE {w} OFFSET 0) AS s "
    "ORDER BY d, point_id LIMIT %(n)s"
)
_GRAPH = (
    "SELECT h.* FROM (SELECT set_config('hnsw.ef_search', %(ef)s, true) AS ef, "
    "set_config('hnsw.iterative_scan', %(it)s, true) AS it, "
    "set_config('hnsw.max_scan_tuples', %(mst)s, true) AS mst) AS settings "
    "CROSS JOIN LATERAL (SELECT {cols}, {d} AS d FROM {t} WHERE ({w}) AND settings.ef "
    "IS NOT NULL AND settings.it IS NOT NULL AND settings.mst IS NOT NULL "
    "ORDER BY {d} LIMIT %(n)s) AS h ORDER BY h.d, h.point_id"
)


def _nearest(
    table: str,
    operator: str,
    payload: bool,
    vectors: tuple[str, ...],
    condition: sql.Composable,
    exact: bool,
    column: str,
) -> sql.Composed:
    distance = sql.SQL("{} {} %(q)b").format(sql.Identifier(column), sql.SQL(operator))
    if column != "embedding":  # a named vector: only the points that have it
        condition = sql.SQL("{} IS NOT NULL AND ({})").format(sql.Identifier(column), condition)
    return sql.SQL(_EXACT if exact else _GRAPH).format(
        cols=columns(payload, vectors), d=distance, t=sql.Identifier(table), w=condition
    )
