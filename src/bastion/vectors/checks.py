"""What every engine checks of the vectors it is given, and how Cosine vectors are stored.

One place for both engines, so the embedded and the pgvector engine refuse the same input
with the same message (Qdrant answers ``400`` to each):

- a vector of the wrong dimension, or holding NaN or infinity;
- a **zero vector with Cosine distance** (issue 11, item 14): it has no direction, so its
  cosine similarity to anything is undefined (0 / 0). Storing it unnormalised used to
  give it a score of 0 against every query; now it is refused, on write and as a query.

Cosine vectors are normalised in float64 and stored as float32: a tiny vector whose
squared norm underflows float32 (``[1e-30, 0, …]``) still becomes a unit vector.
"""

from __future__ import annotations

import numpy as np

from bastion.vectors.engine import CollectionSpec, Vector
from bastion.vectors.errors import BadRequest

ZERO_COSINE = "is a zero vector: its Cosine similarity is undefined (it has no direction)"


def check_batch(vectors: Vector, spec: CollectionSpec, count: int) -> None:
    """The vectors of an upsert of ``count`` points (raises ``BadRequest``)."""
    if vectors.ndim != 2 or vectors.shape != (count, spec.dim):
        raise BadRequest(
            f"wrong vector dimension: expected {spec.dim}, "
            f"got {vectors.shape[-1] if vectors.ndim == 2 else 'a ragged batch'}"
        )
    if not np.isfinite(vectors).all():
        raise BadRequest("vectors must not contain NaN or infinity")
    if spec.distance == "Cosine":
        zero = np.flatnonzero(~vectors.any(axis=1))
        if len(zero):
            raise BadRequest(f"points[{int(zero[0])}].vector {ZERO_COSINE}")


def check_query(vector: Vector, spec: CollectionSpec) -> None:
    """A query vector (raises ``BadRequest``)."""
    if vector.shape != (spec.dim,):
        raise BadRequest(f"wrong vector dimension: expected {spec.dim}, got {vector.shape[-1]}")
    if not np.isfinite(vector).all():
        raise BadRequest("the query vector must not contain NaN or infinity")
    if spec.distance == "Cosine" and not vector.any():
        raise BadRequest(f"the query vector {ZERO_COSINE}")


def unit_rows(vectors: Vector) -> Vector:
    """Each row scaled to length 1 (rows are never zero: ``check_batch`` refused them)."""
    wide = np.asarray(vectors, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", wide, wide))[:, None]
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(wide / norms, dtype=np.float32)


def unit(vector: Vector) -> Vector:
    """One vector scaled to length 1 (a zero vector stays zero; ``check_query`` refused it)."""
    wide = np.asarray(vector, dtype=np.float64)
    norm = float(np.sqrt(wide @ wide))
    return np.ascontiguousarray(wide / norm if norm > 0 else wide, dtype=np.float32)
