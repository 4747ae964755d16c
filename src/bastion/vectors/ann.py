"""The approximate index: a thin wrapper over hnswlib (chosen by measurement, docs/vectors.md).

Labels are the collection's slot numbers (``points.seq``). A deleted point is marked
deleted; when its slot is reused, hnswlib re-adds the label in place (we do not enable
``allow_replace_deleted``, which would forbid that). Not thread-safe: the owner locks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import hnswlib
import numpy as np
import numpy.typing as npt

from bastion.vectors.engine import Distance

Labels = npt.NDArray[np.int64]


class AnnIndex:
    def __init__(
        self, *, dim: int, distance: Distance, m: int, ef_construct: int, capacity: int = 1024
    ) -> None:
        self.dim = dim
        self.distance = distance
        self.space = "l2" if distance == "Euclid" else "ip"
        self.m = m
        self.ef_construct = ef_construct
        self._index = hnswlib.Index(space=self.space, dim=dim)
        self._index.init_index(max_elements=max(capacity, 16), M=m, ef_construction=ef_construct)
        self._index.set_ef(1)  # breadth comes with each query (see ``search``)
        self._deleted: set[int] = set()

    @property
    def live_count(self) -> int:
        return int(self._index.get_current_count()) - len(self._deleted)

    def _reserve(self, extra: int, highest: int) -> None:
        needed = max(int(self._index.get_current_count()) + extra, highest + 1)
        capacity = int(self._index.get_max_elements())
        if needed > capacity:
            self._index.resize_index(max(needed, capacity * 2))

    def add(self, vectors: npt.NDArray[np.float32], labels: Labels, *, threads: int = -1) -> None:
        """Insert or replace (same label) vectors; un-deletes reused labels."""
        if len(labels) == 0:
            return
        self._reserve(len(labels), int(labels.max()))
        self._index.add_items(vectors, labels, num_threads=threads)
        self._deleted.difference_update(int(label) for label in labels)

    def delete(self, labels: Labels) -> None:
        for label in labels:
            value = int(label)
            if value not in self._deleted:
                try:
                    self._index.mark_deleted(value)
                except RuntimeError:  # never added (e.g. an empty slot): nothing to hide
                    continue
                self._deleted.add(value)

    def search(
        self,
        query: npt.NDArray[np.float32],
        k: int,
        *,
        ef: int,
        allowed: Callable[[int], bool] | None = None,
    ) -> tuple[Labels, npt.NDArray[np.float32]]:
        """Up to ``k`` nearest labels and hnswlib distances (``ip``: 1 - dot; ``l2``: squared).

        Safe to call from many threads at once: the index's own ``ef`` stays at 1 and
        the search breadth is asked for through ``k`` instead (hnswlib searches with
        ``max(ef, k)`` candidates and keeps the best ``k``), so no search changes state
        another one reads.
        """
        k = min(k, self.live_count)
        if k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        breadth = min(max(ef, k), self.live_count)
        while breadth > 0:
            try:
                labels, distances = self._index.knn_query(
                    query, k=breadth, num_threads=1, filter=allowed
                )
            except RuntimeError:  # fewer reachable than asked (filtered): ask for fewer
                breadth //= 2
                continue
            return labels[0, :k].astype(np.int64), distances[0, :k]
        return np.empty(0, np.int64), np.empty(0, np.float32)

    def search_many(
        self, queries: npt.NDArray[np.float32], breadth: int
    ) -> tuple[Labels, npt.NDArray[np.float32]] | None:
        """The ``breadth`` nearest labels and distances of each row of ``queries``, in one
        hnswlib call on this thread (the GIL is released while it runs); None when some
        row reaches fewer points than that (ask ``search`` one query at a time)."""
        breadth = min(breadth, self.live_count)
        if breadth <= 0:
            return None
        try:
            labels, distances = self._index.knn_query(queries, k=breadth, num_threads=1)
        except RuntimeError:
            return None
        return labels.astype(np.int64), distances

    def labels(self) -> Labels:
        return np.asarray(self._index.get_ids_list(), dtype=np.int64)

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        self._index.save_index(str(temporary))
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        dim: int,
        distance: Distance,
        m: int,
        ef_construct: int,
        capacity: int,
        deleted: set[int],
    ) -> AnnIndex:
        """Load a saved index; ``deleted`` is the label set saved next to it (see ``save``)."""
        index = cls(dim=dim, distance=distance, m=m, ef_construct=ef_construct, capacity=16)
        index._index = hnswlib.Index(space=index.space, dim=dim)
        index._index.load_index(str(path), max_elements=max(capacity, 16))
        index._index.set_ef(1)
        index._deleted = set(deleted)
        return index

    def deleted_labels(self) -> list[int]:
        return sorted(self._deleted)
