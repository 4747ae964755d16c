"""Checkpoint cadence (pure): events that waited too long for a checkpoint.

The server signs (and exports) the chain head every ``CHECKPOINT_INTERVAL`` when
something was appended, so no event should wait much longer than that for a checkpoint
that covers it. A longer wait means the server was stopped (events written by the CLI
meanwhile), a sink was down, or checkpoints were deleted: from the database together
with the tail, or from the export. ``Cadence`` is fed the events and the trusted
checkpoints in seq order during the verification walk and reports each such stretch
with its times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bastion.audit.chain import format_timestamp

CHECKPOINT_INTERVAL = timedelta(minutes=5)  # how often the server signs the head
DEFAULT_MAX_GAP = 2 * CHECKPOINT_INTERVAL  # the interval plus slack for a busy loop
MAX_GAPS = 100  # gaps kept one by one; the rest are counted


@dataclass(frozen=True)
class CheckpointGap:
    """Events ``first_seq``..``last_seq`` waited ``waited`` for a checkpoint.

    ``checkpointed_at`` is None when no checkpoint covers them yet (the tail): then
    ``waited`` runs to the time of the verification.
    """

    first_seq: int
    last_seq: int
    first_event_at: datetime
    last_event_at: datetime
    checkpointed_at: datetime | None
    waited: timedelta

    def describe(self) -> str:
        span = (
            f"event {self.first_seq}"
            if self.first_seq == self.last_seq
            else f"events {self.first_seq} to {self.last_seq}"
        )
        first = format_timestamp(self.first_event_at)
        if self.checkpointed_at is None:
            return (
                f"{span} (from {first} to {format_timestamp(self.last_event_at)}) "
                f"are covered by no checkpoint {_duration(self.waited)} later"
            )
        return (
            f"{span} (first at {first}) waited {_duration(self.waited)} for a checkpoint "
            f"(signed {format_timestamp(self.checkpointed_at)})"
        )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s"


class Cadence:
    """Feed ``event`` and ``checkpoint`` in seq order, then ``finish(now)``."""

    def __init__(
        self, *, max_gap: timedelta = DEFAULT_MAX_GAP, since: datetime | None = None
    ) -> None:
        if max_gap <= timedelta(0):
            raise ValueError("max_gap must be positive")
        self.max_gap = max_gap
        self.since = since  # gaps that ended before this are history: not reported
        self.gaps: list[CheckpointGap] = []
        self.count = 0  # every gap, also those beyond MAX_GAPS
        self._first: tuple[int, datetime] | None = None  # oldest event no checkpoint covers
        self._last: tuple[int, datetime] | None = None

    def event(self, seq: int, at: datetime) -> None:
        if self._first is None:
            self._first = (seq, at)
        self._last = (seq, at)

    def checkpoint(self, seq: int, at: datetime) -> None:
        """A checkpoint covering every event up to ``seq`` (all fed already)."""
        if self._first is not None and self._last is not None and self._first[0] <= seq:
            self._check(self._first, self._last, at, checkpointed=True)
            self._first = None

    def finish(self, now: datetime) -> None:
        """The events after the last checkpoint, as of ``now``."""
        if self._first is not None and self._last is not None:
            self._check(self._first, self._last, now, checkpointed=False)
            self._first = None

    def _check(
        self,
        first: tuple[int, datetime],
        last: tuple[int, datetime],
        until: datetime,
        *,
        checkpointed: bool,
    ) -> None:
        waited = until - first[1]
        if waited <= self.max_gap or (self.since is not None and until < self.since):
            return
        self.count += 1
        if len(self.gaps) < MAX_GAPS:
            self.gaps.append(
                CheckpointGap(
                    first[0], last[0], first[1], last[1], until if checkpointed else None, waited
                )
            )
