"""The served OpenAPI document describes the server (issue 11.17): every operation has
security (or is explicitly public), typed success answers, and the errors it can answer
in the body the server really sends (problem+json, or Qdrant's envelope on the data plane).
"""

from __future__ import annotations

from typing import Any

import pytest

from bastion.api.problems import Problem
from tests.support.app import Env

# Operations that need a credential; every other one must say it is public (security: []).
SECURED_PREFIXES = ("/me", "/admin", "/collections", "/aliases")
SECURED_AUTH = {("post", "/auth/logout"), ("post", "/auth/step-up")}
PUBLIC_EXAMPLES = {("post", "/auth/login"), ("get", "/.well-known/jwks.json"), ("post", "/setup")}
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
QDRANT_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/QdrantError"}}}
# RFC 6749 §5.2 errors keep their own shape (API.md "Tokens").
OAUTH_ERRORS = {("post", "/auth/token", "400"), ("post", "/auth/logout", "400")}


@pytest.fixture
def document(env: Env) -> dict[str, Any]:
    served = env.client.get("/openapi.json")
    assert served.status_code == 200
    found: dict[str, Any] = served.json()
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def typed(schema: dict[str, Any], document: dict[str, Any]) -> bool:
    """Whether ``schema`` says more than "some object" (resolving ``$ref``s)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return typed(document["components"]["schemas"][name], document)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return all(typed(option, document) for option in schema[union])
    kind = schema.get("type")
    if kind == "array":
        return typed(schema.get("items", {}), document)
    if kind == "object" or "properties" in schema:
        return bool(schema.get("properties")) or schema.get("additionalProperties") is False
    return kind in {"string", "integer", "number", "boolean", "null"}


def test_every_operation_has_security_or_is_explicitly_public(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearer"]["description"],
    }
    assert schemes["api-key"]["in"] == "header"
    assert schemes["api-key"]["name"] == "api-key"
    for method, path, operation in operations(document):
        assert "security" in operation, (method, path)
        under = any(path == p or path.startswith(p + "/") for p in SECURED_PREFIXES)
        if under or (method, path) in SECURED_AUTH:
            assert operation["security"] == [{"bearer": []}, {"api-key": []}], (method, path)
        else:
            assert operation["security"] == [], (method, path)
    documented = {(method, path) for method, path, _ in operations(document)}
    assert documented >= PUBLIC_EXAMPLES | SECURED_AUTH


def test_every_success_answer_is_typed(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        successes = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
        assert successes, (method, path)
        for status, response in successes.items():
            if status == "204":
                assert not response.get("content"), (method, path)
                continue
            assert response["content"], (method, path, status)
            for media, body in response["content"].items():
                if media == "application/x-ndjson":
                    continue
                assert typed(body["schema"], document), (method, path, status, body)
                if path.startswith(("/collections", "/aliases")):  # Qdrant's: what is its result?
                    result = body["schema"]["properties"]["result"]
                    assert typed(result, document), (method, path, "result", result)


def test_errors_are_documented_with_the_body_the_server_sends(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        data_plane = path.startswith(("/collections", "/aliases"))
        if operation["security"]:
            assert {"401", "403"} <= set(responses), (method, path)
            assert "WWW-Authenticate" in responses["401"]["headers"]
        if "requestBody" in operation:
            invalid = "400" if data_plane else "422"
            assert {"413", invalid} <= set(responses), (method, path)
        for status, response in responses.items():
            if not status.startswith("4") or (method, path, status) in OAUTH_ERRORS:
                continue
            expected = QDRANT_ERROR if data_plane else PROBLEM
            assert response["content"] == expected, (method, path, status)


def test_the_data_plane_has_request_bodies_and_qdrant_envelopes(document: dict[str, Any]) -> None:
    query = document["paths"]["/collections/{name}/points/query"]["post"]
    body = query["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/QueryRequest"}
    answer = query["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["required"] == ["result", "status", "time"]
    upsert = document["paths"]["/collections/{name}/points"]["put"]
    assert "requestBody" in upsert
    assert "409" in document["paths"]["/collections/{name}"]["put"]["responses"]


def test_the_problem_schema_is_what_the_server_renders(env: Env, document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Problem"]
    assert set(schema["required"]) == {"type", "title", "status", "detail", "code"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    invalid = env.client.post("/auth/login", json={"username": ""})
    unauthenticated = env.client.get("/admin/users")
    for answer in (invalid, unauthenticated):
        assert answer.headers["content-type"] == "application/problem+json"
        Problem.model_validate(answer.json())
    assert invalid.status_code == 422
    assert unauthenticated.status_code == 401
