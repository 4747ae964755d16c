"""Which paths answer errors as RFC 9457 problem+json: whole path segments only."""

from __future__ import annotations

import pytest

from bastion.api.problems import is_problem_path
from tests.support.app import Env


@pytest.mark.parametrize(
    "path", ["/me", "/me/factors", "/auth/login", "/admin", "/admin/users/u1", "/.well-known/x"]
)
def test_paths_under_a_problem_prefix_speak_problem_json(path: str) -> None:
    assert is_problem_path(path)


@pytest.mark.parametrize(
    "path", ["/metrics", "/metricz", "/mex", "/authority", "/administrator", "/collections/me"]
)
def test_a_prefix_that_is_not_a_whole_segment_does_not_match(path: str) -> None:
    assert not is_problem_path(path)


def test_unknown_path_beginning_with_me_answers_like_any_unknown_path(env: Env) -> None:
    metricz = env.client.get("/metricz")
    other = env.client.get("/nothing-here")
    assert metricz.status_code == other.status_code == 404
    assert metricz.headers["content-type"] == other.headers["content-type"] == "application/json"
    assert metricz.json() == other.json()
    me = env.client.get("/me/nothing-here")
    assert me.status_code == 404
    assert me.headers["content-type"] == "application/problem+json"
