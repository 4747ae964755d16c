"""Graph searches that arrive together run as one hnswlib call beside the event loop.

Why: one event loop does all of a request's Python work (HTTP, JSON, the guard), so a
search on the loop leaves the second core idle. hnswlib releases the GIL while it
searches, but handing *each* search to a thread costs more CPU than the search itself
(GIL hand-offs and wake-ups: +350 to 400 µs per search, docs/benchmarks.md). So:

- a search that finds no other waiting runs right on the loop (one client: no hop, and
  only one search in ``LOOK_EVERY`` spends a turn of the loop looking for company);
- searches that arrive together (requests parsed in the same loop iteration) go to one
  worker thread as one batch: one hand-off for all of them, and while the worker
  searches, the loop parses the next requests, which form the next batch.

Only plain graph searches come here (no filter, not exact: ``LiveCollection.plain_ann``).
The worker reads under the collection's read lock and notes the collection's
``version``; if a write lands before the results are built, the caller searches again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.vectors.ann import Labels
from bastion.vectors.engine import Vector
from bastion.vectors.live import LiveCollection

log = logging.getLogger("bastion.vectors")

# The worker needs the GIL for a moment before and after each batch; with CPython's
# default 5 ms switch interval a busy event loop would make it wait that long; at
# 0.1 ms eight clients got 2,300 searches/s against 1,700-1,900 at 0.5 to 5 ms.
SWITCH_INTERVAL_S = 0.0001
# While searches come one at a time, one in this many looks for company (a turn of the
# event loop, ~10-50 µs); the others run right away.
LOOK_EVERY = 8


@dataclass(frozen=True, slots=True)
class GraphHits:
    labels: Labels
    distances: npt.NDArray[np.float32]
    version: int  # the collection's version the search saw


@dataclass(slots=True)
class _Job:
    vector: Vector
    answer: asyncio.Future[GraphHits | None]


class SearchBatcher:
    def __init__(self) -> None:
        self._waiting: list[tuple[LiveCollection, str, int, _Job]] = []  # in arrival order
        self._dispatch_scheduled = False
        self._worker_busy = False
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0  # handed to the worker so far (searches that found company)
        self._crowded = False  # the last look for company found some
        self._since_look = 0

    async def search(
        self, live: LiveCollection, vector: Vector, breadth: int, using: str = ""
    ) -> GraphHits | None:
        """The ``breadth`` nearest labels of ``vector`` in the index of the vector ``using``
        when it was searched in a batch; None: search the usual way, right here (it was
        alone, or the batch failed)."""
        if not (self._waiting or self._worker_busy or self._crowded):
            # Nobody searching, and the last look found nobody: looking costs a turn of
            # the event loop, so look only now and then; meanwhile search right here.
            self._since_look += 1
            if self._since_look < LOOK_EVERY:
                return None
        self._since_look = 0
        loop = asyncio.get_running_loop()
        job = _Job(vector, loop.create_future())
        self._waiting.append((live, using, breadth, job))
        if not self._dispatch_scheduled and not self._worker_busy:
            self._dispatch_scheduled = True
            loop.call_soon(self._dispatch, loop)  # after the requests already parsed
        return await job.answer

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._dispatch_scheduled = False
        if self._worker_busy or not self._waiting:
            return
        self._crowded = len(self._waiting) > 1
        if len(self._waiting) == 1:  # alone: the caller searches right there, no hand-off
            (_, _, _, job), self._waiting = self._waiting[0], []
            _settle([(job, None)])
            return
        # Half of those waiting: while the worker searches them, the loop answers the
        # previous batch and parses new requests; the rest (and those) form the next
        # batch. Taking everyone would leave the loop idle and the clients in lockstep.
        half = (len(self._waiting) + 1) // 2
        taken, self._waiting = self._waiting[:half], self._waiting[half:]
        batches = _grouped(taken)
        if self._executor is None:
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="bastion-search")
        self._worker_busy = True
        self.batches += 1
        done = loop.run_in_executor(self._executor, _run, batches)
        done.add_done_callback(lambda finished: self._finished(loop, batches, finished))

    def _finished(
        self,
        loop: asyncio.AbstractEventLoop,
        batches: _Batches,
        finished: asyncio.Future[list[tuple[_Job, GraphHits | None]]],
    ) -> None:
        self._worker_busy = False
        if finished.cancelled() or finished.exception() is not None:
            log.error("batched search failed; searching one by one", exc_info=_error(finished))
            _settle([(job, None) for jobs in batches.values() for job in jobs])
        else:
            _settle(finished.result())
        if self._waiting:
            self._dispatch(loop)


_Batches = dict[tuple[LiveCollection, str, int], list[_Job]]


def _grouped(waiting: list[tuple[LiveCollection, str, int, _Job]]) -> _Batches:
    """Jobs by (collection, vector, breadth): each group is one hnswlib call."""
    batches: _Batches = {}
    for live, using, breadth, job in waiting:
        batches.setdefault((live, using, breadth), []).append(job)
    return batches


def _error(finished: asyncio.Future[Any]) -> BaseException | None:
    return None if finished.cancelled() else finished.exception()


def _run(batches: _Batches) -> list[tuple[_Job, GraphHits | None]]:
    """One hnswlib call per (collection, vector, breadth), under the collection's read lock."""
    out: list[tuple[_Job, GraphHits | None]] = []
    for (live, using, breadth), jobs in batches.items():
        with live.lock.read():
            version = live.version
            ann = live.anns[using]
            found = ann.search_many(np.stack([job.vector for job in jobs]), breadth)
        for row, job in enumerate(jobs):
            hits = None if found is None else GraphHits(found[0][row], found[1][row], version)
            out.append((job, hits))
    return out


def _settle(answers: list[tuple[_Job, GraphHits | None]]) -> None:
    for job, hits in answers:
        if not job.answer.done():
            job.answer.set_result(hits)
