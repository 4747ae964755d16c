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


def columns(payload: bool, vector: bool) -> sql.Composable:
    """``point_id`` [, ``payload``] [, ``embedding``]: the order ``engine._record`` reads."""
    names = ["point_id"] + (["payload"] if payload else []) + (["embedding"] if vector else [])
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


@lru_cache(maxsize=1024)
def upsert(table: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {t} (point_id, embedding, payload) "
        "SELECT * FROM unnest(%(k)s::text[], %(v)b::vector[], %(p)s::jsonb[]) "
        "ON CONFLICT (point_id) DO UPDATE "
        "SET embedding = EXCLUDED.embedding, payload = EXCLUDED.payload"
    ).format(t=sql.Identifier(table))


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
    vector: bool,
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
        "SELECT {cols}, s.v FROM (SELECT point_id, payload, embedding, "
        "(j.v #>> '{{}}')::float8 AS v FROM {t} CROSS JOIN LATERAL "
        "jsonb_path_query(payload, %(path)s::jsonpath) AS j(v) "
        "WHERE jsonb_typeof(j.v) = 'number' AND ({w})) AS s WHERE TRUE{first} "
        "ORDER BY s.v {d}, s.point_id LIMIT {n}"
    ).format(
        cols=sql.SQL(", ").join(
            sql.Identifier("s", name)
            for name in ["point_id"]
            + (["payload"] if payload else [])
            + (["embedding"] if vector else [])
        ),
        t=sql.Identifier(table),
        w=condition,
        first=first,
        d=direction,
        n=sql.Literal(limit),
    )


def conditional_upserts(
    table: str, mode: str, condition: sql.Composable | None
) -> list[sql.Composed]:
    """An upsert with ``update_mode`` / ``update_filter``, as statements run in one
    transaction whose row counts add up to the points written: an ``UPDATE`` of the
    existing rows (``condition`` sees only the existing row's ``payload`` and
    ``point_id``), then an ``INSERT`` of the new ones."""
    rows = sql.SQL("unnest(%(k)s::text[], %(v)b::vector[], %(p)s::jsonb[]) AS u(k, v, p)")
    only_if = sql.SQL("") if condition is None else sql.SQL(" AND ({})").format(condition)
    statements: list[sql.Composed] = []
    if mode != "insert_only":
        statements.append(
            sql.SQL(
                "UPDATE {t} SET embedding = u.v, payload = u.p FROM {rows} WHERE point_id = u.k{c}"
            ).format(t=sql.Identifier(table), rows=rows, c=only_if)
        )
    if mode != "update_only":
        statements.append(
            sql.SQL(
                "INSERT INTO {t} (point_id, embedding, payload) SELECT k, v, p FROM {rows} "
                "ON CONFLICT (point_id) DO NOTHING"
            ).format(t=sql.Identifier(table), rows=rows)
        )
    return statements


def nearest(
    table: str,
    operator: str,
    *,
    payload: bool,
    vector: bool,
    condition: sql.Composable | None,
    exact: bool,
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
    if condition is None:
        return _nearest_unfiltered(table, operator, payload, vector, exact)
    return _nearest(table, operator, payload, vector, condition, exact)


@lru_cache(maxsize=1024)
def _nearest_unfiltered(table: str, operator: str, payload: bool, vector: bool, exact: bool) -> str:
    return _nearest(table, operator, payload, vector, sql.SQL("TRUE"), exact).as_string()


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
    vector: bool,
    condition: sql.Composable,
    exact: bool,
) -> sql.Composed:
    distance = sql.SQL("embedding {} %(q)b").format(sql.SQL(operator))
    return sql.SQL(_EXACT if exact else _GRAPH).format(
        cols=columns(payload, vector), d=distance, t=sql.Identifier(table), w=condition
    )
