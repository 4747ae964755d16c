"""Property: no JSON body makes a data-plane route answer 500 (issue 11, "Proof").

``hypothesis`` generates request bodies for every data-plane route that takes one:
Qdrant-shaped bodies whose parts are each valid or not (vectors, ids, payloads, filters,
selectors, limits), arbitrary JSON values, and bytes that are not JSON. They go through
the real app (in-process, real storage, real authentication) on both engines, and every
answer must be a success or a 4xx in Qdrant's envelope, never a 500. Bounded to a fixed
number of examples (no example database, no deadline), so it runs in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.app import create_app
from bastion.clock import ManualClock
from bastion.config import load_settings
from tests.admin.helpers import mint
from tests.support.app import Env
from tests.support.postgres import fresh_database
from tests.support.server import ADMIN_PASSWORD

EXAMPLES = 800  # per engine: ~10 s each in-process
COLLECTION = "fz"

# -- generators ---------------------------------------------------------------------------

text = st.text(max_size=12)
weird_text = st.text(
    alphabet=st.sampled_from([*"ab.[]0_ ", "\n", "\x00", "\x1b", "\u202e", "é"]),
    max_size=12,
)
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(
    allow_nan=False, allow_infinity=False
)
scalars = st.none() | st.booleans() | numbers | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


def _deep(levels: int, leaf: Any, key: str) -> Any:
    value = leaf
    for _ in range(levels):
        value = {key: value}
    return value


# Depths at the limits that matter: the payload limit (64), orjson's (254), deeper.
depths = st.sampled_from([0, 1, 2, 3, 63, 64, 65, 252, 253, 254, 255, 300, 600])
deep_values = st.builds(_deep, depths, json_values, st.sampled_from(["a", "nearest", "vector", ""]))
junk = json_values | deep_values

flat_vectors = st.lists(
    st.integers(min_value=-3, max_value=3) | st.floats(min_value=-1e6, max_value=1e6),
    min_size=0,
    max_size=6,
)
good_vectors = st.lists(st.integers(min_value=-3, max_value=3), min_size=4, max_size=4)
# one_of picks its branches about evenly: valid parts are listed more than once, so that
# a body often gets far enough for its other parts to be checked
vectors = (
    good_vectors
    | good_vectors
    | flat_vectors
    | st.builds(lambda v: {"nearest": v}, flat_vectors)
    | st.builds(lambda v: {"": v}, flat_vectors)
    | st.builds(lambda v: {"vector": v, "name": ""}, flat_vectors)
    | junk
)
good_ids = st.integers(min_value=0, max_value=50)
point_ids = (
    good_ids
    | good_ids
    | good_ids
    | st.integers(min_value=-5, max_value=2**65)
    | st.uuids().map(str)
    | st.sampled_from(["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
    | junk
)
payloads = st.dictionaries(weird_text, json_values, max_size=4) | deep_values | junk
keys = weird_text | st.sampled_from(["n", "city", "tags[]", "a.b", "a[0].b", ""]) | junk
match_values = st.integers(min_value=-3, max_value=3) | st.booleans() | text | junk


def _condition(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {"key": keys},
            optional={
                "match": st.dictionaries(
                    st.sampled_from(["value", "any", "except", "text", "x"]),
                    match_values | st.lists(match_values, max_size=4),
                    max_size=2,
                ),
                "range": st.dictionaries(
                    st.sampled_from(["gt", "gte", "lt", "lte", "x"]), numbers | junk, max_size=3
                ),
                "values_count": st.dictionaries(st.sampled_from(["gt", "lt"]), numbers, max_size=2),
                "is_empty": st.booleans() | junk,
                "is_null": st.booleans() | junk,
                "geo_radius": junk,
            },
        ),
        st.fixed_dictionaries({"has_id": st.lists(point_ids, max_size=4) | junk}),
        st.fixed_dictionaries({"is_empty": st.fixed_dictionaries({"key": keys}) | junk}),
        st.fixed_dictionaries({"nested": st.fixed_dictionaries({"key": keys, "filter": inner})}),
        inner,
        junk,
    )


filters = st.recursive(
    st.just({}) | junk,
    lambda inner: st.fixed_dictionaries(
        {},
        optional={
            "must": st.lists(_condition(inner), max_size=3) | _condition(inner),
            "should": st.lists(_condition(inner), max_size=3),
            "must_not": st.lists(_condition(inner), max_size=3),
            "min_should": st.fixed_dictionaries(
                {"conditions": st.lists(_condition(inner), max_size=2), "min_count": numbers}
            )
            | junk,
        },
    ),
    max_leaves=8,
)
selectors = (
    st.booleans()
    | st.lists(weird_text, max_size=3)
    | st.fixed_dictionaries({"include": st.lists(text, max_size=2)})
    | st.fixed_dictionaries({"exclude": st.lists(text, max_size=2)})
    | junk
)
limits = st.integers(min_value=-2, max_value=20_000) | junk
common = {
    "filter": filters,
    "limit": limits,
    "offset": limits | point_ids,
    "with_payload": selectors,
    "with_vector": st.booleans() | st.lists(text, max_size=2) | junk,
    "score_threshold": numbers | junk,
    "params": st.fixed_dictionaries({}, optional={"hnsw_ef": limits, "exact": st.booleans() | junk})
    | junk,
}
points = st.fixed_dictionaries(
    {"id": point_ids, "vector": vectors, "payload": payloads}, optional={"x": junk}
)


def body(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(required, optional={**optional, "unknown": junk})


ROUTES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("PUT", "/collections/{}/points", body({"points": st.lists(points, max_size=4) | junk}, {})),
    (
        "PUT",
        "/collections/{}/points",
        body(
            {
                "batch": st.fixed_dictionaries(
                    {
                        "ids": st.lists(point_ids, max_size=3) | junk,
                        "vectors": st.lists(vectors, max_size=3) | junk,
                    },
                    optional={"payloads": st.lists(payloads, max_size=3) | junk},
                )
                | junk
            },
            {},
        ),
    ),
    ("POST", "/collections/{}/points", body({}, {"ids": st.lists(point_ids, max_size=4) | junk})),
    ("POST", "/collections/{}/points/delete", body({}, {"points": st.lists(point_ids) | junk})),
    ("POST", "/collections/{}/points/delete", body({"filter": filters}, {})),
    ("POST", "/collections/{}/points/scroll", body({}, {**common, "order_by": junk})),
    ("POST", "/collections/{}/points/count", body({}, {"filter": filters, "exact": junk})),
    ("POST", "/collections/{}/points/search", body({"vector": vectors}, common)),
    ("POST", "/collections/{}/points/query", body({}, {**common, "query": vectors | point_ids})),
    (
        "PUT",
        "/collections/{}/index",
        body(
            {},
            {
                "field_name": keys,
                "field_schema": st.sampled_from(["keyword", "integer", "float", "x"]) | junk,
            },
        ),
    ),
    (
        "PUT",
        "/collections/{}",
        body(
            {},
            {
                "vectors": st.fixed_dictionaries(
                    {},
                    optional={
                        "size": limits,
                        "distance": st.sampled_from(["Cosine", "Dot", "Euclid", "x"]) | junk,
                        "hnsw_config": junk,
                    },
                )
                | junk,
                "hnsw_config": st.dictionaries(
                    st.sampled_from(["m", "ef_construct", "full_scan_threshold"]), limits
                )
                | junk,
            },
        ),
    ),
]

requests = st.tuples(
    st.integers(min_value=0, max_value=len(ROUTES) - 1),
    st.sampled_from([COLLECTION, COLLECTION, "missing", "new_one", "bad%20name%0A", "nul%00"]),
    st.data(),
)


def _wrapped(wrapper: bytes, levels: int) -> bytes:
    """A query, search and point vector in ``levels`` wrappers, as text (deeper than the
    client's own encoder goes): ``{"query": W, "vector": W, "points": [{"id", W}]}``."""
    wrapped = b'{"%s":' % wrapper * levels + b"[1,0,0,0]" + b"}" * levels
    return b'{"query":%s,"vector":%s,"points":[{"id":1,"vector":%s}]}' % ((wrapped,) * 3)


raw_bodies = st.one_of(
    st.binary(max_size=40),
    st.just(b"[" * 2000),
    st.just(b'{"a":' * 1100 + b"1" + b"}" * 1100),
    st.builds(_wrapped, st.sampled_from([b"nearest", b"vector"]), st.sampled_from([1015, 1021])),
    st.builds(_wrapped, st.sampled_from([b"nearest", b"vector"]), st.sampled_from([1015, 1021])),
)


# -- the app ------------------------------------------------------------------------------


@dataclass
class App:
    client: TestClient
    headers: dict[str, str]


@pytest.fixture(scope="module", params=["embedded", "pgvector"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    data_dir: Path = tmp_path_factory.mktemp(f"fuzz-{request.param}") / "data"
    extra: dict[str, Any] = {}
    if request.param == "pgvector":
        extra["database_url"] = fresh_database(request.getfixturevalue("pgvector_url"))
    config = load_settings(
        data_dir=data_dir, argon2_profile="test", bootstrap_admin_password=ADMIN_PASSWORD, **extra
    )
    clock = ManualClock(datetime.now(UTC))
    with TestClient(create_app(config, clock=clock), raise_server_exceptions=False) as client:
        env = Env(client=client, clock=clock, data_dir=config.data_dir)
        headers = mint(env, acr="aal3").auth
        made = client.put(
            f"/collections/{COLLECTION}",
            headers=headers,
            json={"vectors": {"size": 4, "distance": "Cosine"}},
        )
        assert made.status_code == 200, made.text
        seed = [
            {"id": i, "vector": [1, i, 0, 1], "payload": {"n": i, "city": "Oslo", "tags": ["a"]}}
            for i in range(1, 30)
        ]
        assert client.put(
            f"/collections/{COLLECTION}/points", headers=headers, json={"points": seed}
        ).is_success
        index = {"field_name": "n", "field_schema": "integer"}
        assert client.put(f"/collections/{COLLECTION}/index", headers=headers, json=index)
        yield App(client, headers)


def _check(method: str, path: str, content: bytes, app: App) -> None:
    answer = app.client.request(
        method, path, content=content, headers={**app.headers, "content-type": "application/json"}
    )
    assert answer.status_code < 500, (method, path, content[:300], answer.text[:300])
    if answer.status_code >= 400:
        error = answer.json()
        assert isinstance(error["status"]["error"], str), error


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(request=requests)
def test_no_json_body_makes_a_data_plane_route_answer_500(
    app: App, request: tuple[int, str, st.DataObject]
) -> None:
    index, name, data = request
    method, shape, bodies = ROUTES[index]
    content = json.dumps(data.draw(bodies)).encode()
    _check(method, shape.format(name), content, app)


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(
    index=st.integers(min_value=0, max_value=len(ROUTES) - 1),
    raw=raw_bodies | st.builds(lambda v: json.dumps(v).encode(), junk),
)
def test_no_raw_body_makes_a_data_plane_route_answer_500(app: App, index: int, raw: bytes) -> None:
    method, shape, _ = ROUTES[index]
    _check(method, shape.format(COLLECTION), raw, app)


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(field=st.text(max_size=16) | weird_text | st.sampled_from(["n", "a/b", "%2F", "..", "."]))
def test_no_index_field_name_makes_delete_index_answer_500(app: App, field: str) -> None:
    """``DELETE /collections/{name}/index/{field_name}`` takes any name (URL-encoded)."""
    path = f"/collections/{COLLECTION}/index/{quote(field, safe='')}"
    _check("DELETE", path, b"", app)
