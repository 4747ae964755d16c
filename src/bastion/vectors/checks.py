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

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from bastion.vectors.engine import CollectionSpec, PointVectors, Vector, VectorParams
from bastion.vectors.errors import BadRequest

ZERO_COSINE = "is a zero vector: its Cosine similarity is undefined (it has no direction)"


def check_batch(vectors: Vector, spec: CollectionSpec | VectorParams, count: int) -> None:
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


def rows_of(vectors: PointVectors, spec: CollectionSpec, count: int) -> Vector:
    """An upsert's vectors as stored rows, checked (raises ``BadRequest``): for a
    collection of named vectors each row holds every vector side by side
    (``VectorParams.offset``), a vector the point lacks filled with NaN (never a stored
    value: input with NaN is refused)."""
    if isinstance(vectors, np.ndarray):
        if not spec.named:
            check_batch(vectors, spec, count)
            return vectors
        spec.vector(None, "points[0].vector")  # plain vectors: the default one, named ""
        vectors = [{"": row} for row in vectors]
    if len(vectors) != count:
        raise BadRequest("one vector (or {name: vector}) per point")
    if not spec.named:
        return _unnamed_rows(vectors, spec, count)
    rows = np.full((count, spec.dim), np.nan, np.float32)
    for index, point in enumerate(vectors):
        if not point:
            names = ", ".join(repr(params.name) for params in spec.named)
            raise BadRequest(f"points[{index}].vector holds none of the vectors ({names})")
        for name, vector in point.items():
            params = spec.vector(name, f"points[{index}].vector")
            where = f"points[{index}].vector.{name}" if name else f"points[{index}].vector"
            _check_one(vector, params, where)
            rows[index, params.offset : params.offset + params.dim] = vector
    return rows


def check_deletable(spec: CollectionSpec, names: Sequence[str]) -> tuple[VectorParams, ...]:
    """The named vectors ``delete_vectors`` may take off points (raises ``BadRequest``)."""
    if not names:
        raise BadRequest("vector must name at least one vector to delete")
    found = tuple(spec.vector(name, "vector") for name in dict.fromkeys(names))
    if not spec.named:
        raise BadRequest(
            "vector: the collection's unnamed vector cannot be deleted (delete the point)"
        )
    return found


def merge_rows(
    spec: CollectionSpec, stored: Vector, given: Vector, names: Sequence[Sequence[str]]
) -> Vector:
    """Stored rows with the vectors ``names[i]`` of row i replaced by ``given``'s (prepared);
    an unnamed collection's rows are replaced whole."""
    if not spec.named:
        return given
    merged = np.array(stored, dtype=np.float32, copy=True)
    for index, point in enumerate(names):
        for name in point:
            params = spec.vector(name)
            block = slice(params.offset, params.offset + params.dim)
            merged[index, block] = given[index, block]
    return merged


def without_vectors(
    spec: CollectionSpec, stored: Vector, removed: Sequence[VectorParams]
) -> tuple[Vector, int | None]:
    """Stored rows with the vectors ``removed`` taken off (NaN: the point lacks them), and
    the index of the first row left with no vector at all (None: none is)."""
    rows = np.array(stored, dtype=np.float32, copy=True)
    for params in removed:
        rows[:, params.offset : params.offset + params.dim] = np.nan
    holding = np.zeros(len(rows), bool)
    for params in spec.named:
        holding |= present(rows, params)
    empty = np.flatnonzero(~holding)
    return rows, int(empty[0]) if len(empty) else None


def no_vector_left(point: object) -> str:
    return (
        f"delete_vectors would leave point {point} with no vector at all: delete the point instead"
    )


def _unnamed_rows(
    vectors: Sequence[Mapping[str, Vector]], spec: CollectionSpec, count: int
) -> Vector:
    rows: list[Vector] = []
    for index, point in enumerate(vectors):
        for name in point:
            spec.vector(name, f"points[{index}].vector")
        if "" not in point:
            raise BadRequest(f"points[{index}].vector is missing")
        rows.append(point[""])
    if len({len(row) for row in rows}) != 1:
        raise BadRequest("wrong vector dimension: all vectors of a batch must have one size")
    matrix = np.vstack(rows)
    check_batch(matrix, spec, count)
    return matrix


def _check_one(vector: Vector, params: VectorParams, where: str) -> None:
    if vector.shape != (params.dim,):
        raise BadRequest(
            f"wrong vector dimension: {where}: expected {params.dim}, got {vector.shape[-1]}"
        )
    if not np.isfinite(vector).all():
        raise BadRequest(f"{where} must not contain NaN or infinity")
    if params.distance == "Cosine" and not vector.any():
        raise BadRequest(f"{where} {ZERO_COSINE}")


def check_query(vector: Vector, params: VectorParams) -> None:
    """A query vector for the vector ``params`` (raises ``BadRequest``)."""
    if vector.shape != (params.dim,):
        named = f" ({params.name!r})" if params.name else ""
        raise BadRequest(
            f"wrong vector dimension{named}: expected {params.dim}, got {vector.shape[-1]}"
        )
    if not np.isfinite(vector).all():
        raise BadRequest("the query vector must not contain NaN or infinity")
    if params.distance == "Cosine" and not vector.any():
        raise BadRequest(f"the query vector {ZERO_COSINE}")


def present(rows: Vector, params: VectorParams) -> npt.NDArray[np.bool_]:
    """Which stored rows hold the vector ``params`` (a lacking one is NaN-filled)."""
    return ~np.isnan(rows[:, params.offset])


def prepare_rows(rows: Vector, spec: CollectionSpec) -> Vector:
    """The stored form of checked rows: each Cosine vector unit length (as Qdrant)."""
    if not spec.named:
        if spec.distance == "Cosine":
            return unit_rows(rows)
        return np.ascontiguousarray(rows, dtype=np.float32)
    out = np.array(rows, dtype=np.float32, copy=True)
    for params in spec.named:
        if params.distance != "Cosine":
            continue
        block = out[:, params.offset : params.offset + params.dim]
        there = ~np.isnan(block[:, 0])
        if there.any():
            block[there] = unit_rows(block[there])
    return out


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
