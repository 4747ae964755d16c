"""The PostgreSQL + pgvector engine (``BASTION_DATABASE_URL=postgresql…``): docs/scale-out.md."""

from bastion.vectors.pgvector.engine import PgVectorEngine
from bastion.vectors.pgvector.server import MIN_PGVECTOR, require_pgvector

__all__ = ["MIN_PGVECTOR", "PgVectorEngine", "require_pgvector"]
