"""The emulator's readers/writer lock: writers first, but never at every reader's expense."""

from __future__ import annotations

import threading
import time

from pytest_tigris.emulator.models import RWLock


def test_a_waiting_writer_goes_before_new_readers() -> None:
    lock = RWLock(patience=5.0)
    order: list[str] = []
    reader_in = threading.Event()
    release_reader = threading.Event()

    def long_reader() -> None:
        with lock.shared():
            reader_in.set()
            release_reader.wait(10)

    def writer() -> None:
        with lock.exclusive():
            order.append("writer")

    def late_reader() -> None:
        with lock.shared():
            order.append("reader")

    first = threading.Thread(target=long_reader)
    first.start()
    reader_in.wait(5)
    threads = [threading.Thread(target=writer)]
    threads[0].start()
    time.sleep(0.1)
    threads.append(threading.Thread(target=late_reader))
    threads[1].start()
    time.sleep(0.1)
    release_reader.set()
    for thread in [first, *threads]:
        thread.join(10)
    assert order == ["writer", "reader"]


def test_a_writer_stuck_behind_a_long_reader_stalls_other_readers_only_briefly() -> None:
    lock = RWLock(patience=0.3)
    reader_in = threading.Event()
    release_reader = threading.Event()
    writer_done = threading.Event()
    waited: list[float] = []

    def long_reader() -> None:
        with lock.shared():
            reader_in.set()
            release_reader.wait(30)

    def writer() -> None:
        with lock.exclusive():
            writer_done.set()

    def late_reader() -> None:
        started = time.monotonic()
        with lock.shared():
            waited.append(time.monotonic() - started)

    holder = threading.Thread(target=long_reader)
    holder.start()
    reader_in.wait(5)
    blocked = threading.Thread(target=writer)
    blocked.start()
    time.sleep(0.05)
    late = threading.Thread(target=late_reader)
    late.start()
    late.join(5)
    assert len(waited) == 1
    assert 0.2 < waited[0] < 2.0
    assert not writer_done.is_set()
    release_reader.set()
    for thread in (holder, blocked):
        thread.join(10)
    assert writer_done.is_set()
