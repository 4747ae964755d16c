"""Clustered synthetic vectors with a fixed seed, exact ground truth, and recall@k.

``clusters`` unit-norm centres in ``dim`` dimensions; each point is a centre plus
Gaussian noise of the same expected norm (sigma = 1/sqrt(dim) per coordinate: half signal, half
noise), then normalised, as Cosine stores it. Queries are drawn the same way but are
not in the data set. Ground truth is numpy brute force (exact inner product), batched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Dataset:
    vectors: Matrix  # (n, dim), unit norm
    queries: Matrix  # (q, dim), unit norm
    truth: npt.NDArray[np.int64]  # (q, k) ids of the exact k nearest, best first
    clusters: int
    seed: int
    sigma: float

    @property
    def k(self) -> int:
        return int(self.truth.shape[1])

    def describe(self) -> str:
        n, dim = self.vectors.shape
        return (
            f"{n:,} x {dim} float32, {self.clusters} Gaussian clusters (sigma = {self.sigma:.4f}), "
            f"seed {self.seed}, unit norm (Cosine); {len(self.queries):,} queries; "
            f"exact top-{self.k} by brute force"
        )


def _normalise(matrix: Matrix) -> Matrix:
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def _draw(rng: np.random.Generator, centres: Matrix, count: int, sigma: float) -> Matrix:
    labels = rng.integers(0, len(centres), count)
    noise = rng.standard_normal((count, centres.shape[1]), dtype=np.float32)
    noise *= np.float32(sigma)
    noise += centres[labels]
    return _normalise(noise)


def exact_top_k(
    vectors: Matrix, queries: Matrix, k: int, batch: int = 100
) -> npt.NDArray[np.int64]:
    found = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), batch):
        scores = queries[start : start + batch] @ vectors.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        found[start : start + batch] = np.take_along_axis(top, order, axis=1)
    return found


def make_dataset(
    *,
    n: int = 100_000,
    dim: int = 384,
    queries: int = 1_000,
    clusters: int = 100,
    k: int = 10,
    seed: int = 20_240_601,
) -> Dataset:
    rng = np.random.default_rng(seed)
    centres = _normalise(rng.standard_normal((clusters, dim), dtype=np.float32))
    sigma = 1.0 / math.sqrt(dim)
    vectors = _draw(rng, centres, n, sigma)
    asked = _draw(rng, centres, queries, sigma)
    return Dataset(vectors, asked, exact_top_k(vectors, asked, k), clusters, seed, sigma)


def recall_at_k(found: Sequence[Sequence[int]], truth: npt.NDArray[np.int64]) -> float:
    """Mean fraction of the exact top-k found among the returned ids, over all queries."""
    k = int(truth.shape[1])
    hits: int = sum(
        len(set(ids[:k]) & set(row.tolist())) for ids, row in zip(found, truth, strict=True)
    )
    return hits / (k * len(truth))
