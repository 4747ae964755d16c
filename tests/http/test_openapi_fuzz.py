"""schemathesis against a live server, driven by the served OpenAPI document (issue 11.17).

Every documented operation gets generated requests (bodies, parameters, valid and
invalid) with an admin's ``aal3`` token, so that most routes are reachable; the data
plane's point operations aim at a real collection. Each answer must be no server error
and must match the document: a documented status code, content type and body schema.
Bounded (``MAX_EXAMPLES`` per operation, fixed seed) to stay well within the suite's
time budget on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, checks
from schemathesis.schemas import APIOperation

from tests.support.server import LiveServer

MAX_EXAMPLES = 30
COLLECTION = "fz"  # one dimension: generated vectors often fit, so searches and upserts run
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]

# A restore's body is a backup file (docs/backup.md), JSON lines: sent as text, as written.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> dict[str, str]:
    """An installation admin at ``aal3``, and a collection for the point operations."""
    token = live_server.token(role="admin", acr="aal3")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
        made = http.put(
            f"/collections/{COLLECTION}", json={"vectors": {"size": 1, "distance": "Dot"}}
        )
        assert made.is_success, made.text
        points = [{"id": i, "vector": [i], "payload": {"n": i}} for i in range(1, 9)]
        stored = http.put(f"/collections/{COLLECTION}/points?wait=true", json={"points": points})
        assert stored.is_success, stored.text
    return headers


def fuzz(operation: APIOperation, call: Callable[[Case], None]) -> str | None:
    """Run ``call`` on generated cases of ``operation``; the first failure, or None."""
    # Point operations, collection info and export act on the real collection; creating or
    # deleting a collection and payload indexes (issue 11.6) use generated names.
    on_points = operation.path not in ("/collections/{name}", "/collections/{name}/index")
    aimed = on_points or operation.method.upper() == "GET"
    overrides = {"name": COLLECTION} if "{name}" in operation.path and aimed else None
    strategies = [
        operation.as_strategy(mode, path_parameters=overrides)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        call(case)

    try:
        run()
    except (Exception, BaseExceptionGroup) as failure:  # reported with the others at the end
        return f"{operation.method.upper()} {operation.path}: {failure!r}"
    return None


def test_the_server_answers_as_its_openapi_document_says(
    live_server: LiveServer, admin: dict[str, str]
) -> None:
    document = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    answered: dict[tuple[str, str], set[int]] = {}

    def call(case: Case) -> None:
        for generated in ("api-key", "Authorization"):  # the admin's credential, alone
            (case.headers or {}).pop(generated, None)
        headers = admin
        ends_sessions = (case.operation.path == "/auth/logout") or (
            case.operation.method.upper() == "DELETE" and case.operation.path == "/me/sessions"
        )
        if ends_sessions:  # it ends its session(s): a user and session of its own
            headers = {"Authorization": f"Bearer {live_server.token(role='admin', acr='aal3')}"}
        response = case.call(base_url=live_server.url, headers=headers)
        answered.setdefault((case.operation.method.lower(), case.operation.path), set()).add(
            response.status_code
        )
        case.validate_response(response, checks=CHECKS)

    failures = [
        failure
        for result in document.get_all_operations()
        if (failure := fuzz(result.ok(), call)) is not None
    ]
    assert not failures, "\n\n".join(failures)
    secured = {
        (method, path)
        for path, item in document.raw_schema["paths"].items()
        for method, operation in item.items()
        if operation["security"]
    }
    refused = [operation for operation in secured if answered[operation] == {401}]
    assert not refused, f"the admin's credential was refused throughout: {refused}"
