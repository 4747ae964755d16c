"""Aliases on both engines: they die with their collection, in the same transaction."""

from __future__ import annotations

from bastion.clock import SystemClock
from bastion.vectors import CollectionSpec, VectorEngine
from bastion.vectors.aliases import AliasAction, Aliases
from tests.dataplane.conftest import ACTOR, run

TENANT = "ten_a"


def test_a_deleted_collections_aliases_go_in_its_own_transaction(engine: VectorEngine) -> None:
    """The engine deletes the aliases with the collection (not a second step a crash could
    skip): else an alias left behind would reach the next collection given that name."""
    db = engine.db  # type: ignore[attr-defined]
    aliases = Aliases(db, SystemClock())
    run(engine.create_collection(TENANT, CollectionSpec("docs", 3, "Dot"), actor=ACTOR))
    create = AliasAction("create", "prod", "docs")
    run(aliases.apply(TENANT, [create], actor=ACTOR, exists=lambda name: name == "docs"))
    assert run(aliases.of_tenant(TENANT)) == {"prod": "docs"}
    assert run(engine.delete_collection(TENANT, "docs", actor=ACTOR))  # the engine alone
    fresh = Aliases(db, SystemClock())  # nothing cached: what the database holds
    assert run(fresh.of_tenant(TENANT)) == {}
