"""The collection lock: searches together, writes alone, writers not starved."""

from __future__ import annotations

import threading
import time

from bastion.vectors.rwlock import ReadWriteLock


def test_many_readers_hold_the_lock_at_once() -> None:
    lock = ReadWriteLock()
    inside = threading.Barrier(3, timeout=5)

    def reader() -> None:
        with lock.read():
            inside.wait()  # all three readers inside together, or the barrier times out

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert not inside.broken


def test_a_writer_waits_for_readers_and_excludes_them() -> None:
    lock = ReadWriteLock()
    events: list[str] = []
    lock.acquire_read()

    def writer() -> None:
        with lock.write():
            events.append("write")

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.05)
    assert events == []  # the reader still holds it
    assert not lock.try_acquire_read()  # a waiting writer stops new readers
    events.append("read done")
    lock.release_read()
    thread.join(5)
    assert events == ["read done", "write"]
    assert lock.try_acquire_read()
    lock.release_read()


def test_readers_wait_while_a_writer_holds_the_lock() -> None:
    lock = ReadWriteLock()
    lock.acquire_write()
    assert not lock.try_acquire_read()
    entered = threading.Event()

    def reader() -> None:
        with lock.read():
            entered.set()

    thread = threading.Thread(target=reader)
    thread.start()
    assert not entered.wait(0.05)
    lock.release_write()
    assert entered.wait(5)
    thread.join(5)
