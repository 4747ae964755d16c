"""The collection browser: points with payloads, query by id or by vector with a filter,
counts, payload indexes, through the console in process."""

from __future__ import annotations

import re

from bastion.identity.users import find_user
from tests.console.helpers import Console
from tests.support.credentials import new_session


def _upsert(console: Console, username: str, collection: str) -> None:
    """Points written the way an application would: through the API with a token."""
    rt = console.runtime
    with rt.db.begin() as conn:
        user = find_user(conn, username)
        assert user is not None
        token = new_session(
            conn, rt.sessions, user, acr="aal2", now=console.clock.now()
        ).access_token
    points = [
        {"id": i, "vector": [1.0, float(i), 0.0, 0.5], "payload": {"lang": lang, "n": i}}
        for i, lang in enumerate(["en", "de", "en", "fr", "en"], start=1)
    ]
    written = console.client.put(
        f"/collections/{collection}/points?wait=true",
        json={"points": points},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert written.status_code == 200, written.text


def test_browse_query_and_count(console: Console) -> None:
    browser, _ = console.signed_in("dev-dora")
    browser.get("/console/collections")
    browser.post("/console/collections", {"name": "faq", "size": "4", "distance": "Cosine"})
    _upsert(console, "dev-dora", "faq")
    page = browser.get("/console/collections")
    assert "<td>5</td>" in page.text  # the point count
    assert re.search(r"<td>\d+ bytes</td>|<td>\d+\.\d KiB</td>", page.text)  # size on disk
    page = browser.get("/console/collections/faq")
    assert page.text.count('{"lang": ') == 5  # payloads shown (tojson: < > & escaped)
    page = browser.post("/console/collections/faq/query", {"ids": "2, 4", "limit": "10"})
    assert '"lang": "de"' in page.text
    assert '"lang": "fr"' in page.text
    assert "5 point(s) match." in page.text
    page = browser.post(
        "/console/collections/faq/query",
        {
            "vector": "[1, 5, 0, 0.5]",
            "filter": '{"must": [{"key": "lang", "match": {"value": "en"}}]}',
            "limit": "2",
        },
    )
    assert "3 point(s) match." in page.text  # the filter narrows the count too
    rows = page.text.split("<caption>Results</caption>")[1].split("</table>")[0]
    assert rows.count("<tr>") == 3  # header + 2 results
    assert '"de"' not in rows
    page = browser.post("/console/collections/faq/query", {"vector": "[1, 2]", "limit": "3"})
    assert page.status_code == 400  # wrong dimension: the API's message, the input kept
    assert "[1, 2]" in page.text
    page = browser.post("/console/collections/faq/query", {"filter": "{not json"})
    assert "The filter is not valid JSON." in page.text


def test_payload_index_and_escaping_of_stored_text(console: Console) -> None:
    browser, _ = console.signed_in("dev-eli")
    browser.get("/console/collections")
    browser.post("/console/collections", {"name": "xss", "size": "4"})
    page = browser.post(
        "/console/collections/xss/index", {"field_name": "lang", "field_schema": "keyword"}
    )
    assert "Index on lang created." in page.text
    assert "lang (keyword)" in page.text
    _upsert(console, "dev-eli", "xss")
    rt = console.runtime
    with rt.db.begin() as conn:
        user = find_user(conn, "dev-eli")
        assert user is not None
        token = new_session(
            conn, rt.sessions, user, acr="aal2", now=console.clock.now()
        ).access_token
    console.client.put(
        "/collections/xss/points?wait=true",
        json={
            "points": [
                {"id": 9, "vector": [1, 1, 1, 1], "payload": {"note": "<script>alert(1)</script>"}}
            ]
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    page = browser.get("/console/collections/xss")
    assert "<script>alert(1)</script>" not in page.text
    assert "\\u003cscript\\u003e" in page.text


def test_a_collection_of_named_vectors_is_shown_with_each_vector(console: Console) -> None:
    browser, _ = console.signed_in("dev-dora")
    rt = console.runtime
    with rt.db.begin() as conn:
        user = find_user(conn, "dev-dora")
        assert user is not None
        token = new_session(
            conn, rt.sessions, user, acr="aal2", now=console.clock.now()
        ).access_token
    vectors = {"text": {"size": 3, "distance": "Cosine"}, "image": {"size": 2, "distance": "Dot"}}
    made = console.client.put(
        "/collections/multi",
        json={"vectors": vectors},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert made.status_code == 200, made.text
    page = browser.get("/console/collections/multi")
    assert page.status_code == 200, page.text
    assert "image: 2 dimensions, Dot; text: 3 dimensions, Cosine" in page.text
    listed = browser.get("/console/collections")
    assert "image: 2 Dot, text: 3 Cosine" in listed.text
