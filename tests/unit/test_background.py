"""The background deleter and the ready pool, with plain callables standing in for forks."""

from __future__ import annotations

import threading
import time

from pytest_tigris.background import BackgroundDeleter, ReadyPool


def test_the_deleter_keeps_order_reports_failures_and_waits() -> None:
    done: list[str] = []
    errors: list[tuple[str, str]] = []
    gate = threading.Event()

    def delete(name: str) -> None:
        gate.wait(5)
        if name == "bad":
            raise RuntimeError("refused")
        done.append(name)

    deleter: BackgroundDeleter[str] = BackgroundDeleter(
        delete, lambda name, exc: errors.append((name, str(exc)))
    )
    for name in ("child", "bad", "parent"):
        deleter.submit(name)
    assert deleter.wait(0.2) is False  # still blocked: nothing is lost or skipped
    assert deleter.pending == 3
    gate.set()
    assert deleter.wait(5) is True
    assert done == ["child", "parent"]
    assert errors == [("bad", "refused")]
    assert deleter.pending == 0


def test_an_unused_deleter_waits_for_nothing() -> None:
    deleter: BackgroundDeleter[str] = BackgroundDeleter(lambda name: None, lambda n, e: None)
    assert deleter.wait(0) is True


def test_the_pool_fills_hands_out_and_returns_the_rest() -> None:
    made = iter(range(100))
    lock = threading.Lock()

    def make() -> int:
        with lock:
            return next(made)

    pool: ReadyPool[int] = ReadyPool(make, 2)
    pool.start()
    deadline = time.monotonic() + 5
    while len(pool._ready) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    first = pool.take()
    assert first == 0
    deadline = time.monotonic() + 5
    while len(pool._ready) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    unused = pool.stop()
    assert unused == [1, 2]
    assert pool.take() is None  # stopped: nothing more is made


def test_the_pool_backs_off_on_slowdown_and_stops_on_other_errors() -> None:
    attempts: list[float] = []

    class SlowDown(Exception):
        pass

    def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise SlowDown()
        if len(attempts) == 4:
            raise ValueError("broken")
        return "fork"

    pool: ReadyPool[str] = ReadyPool(flaky, 5, is_slowdown=lambda exc: isinstance(exc, SlowDown))
    pool.start()
    deadline = time.monotonic() + 5
    while pool.failure is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(pool.failure, ValueError)
    assert len(attempts) == 4
    assert attempts[2] - attempts[1] >= attempts[1] - attempts[0] > 0  # growing backoff
    assert pool.stop() == ["fork"]


def test_a_pool_of_size_zero_makes_nothing() -> None:
    calls: list[int] = []
    pool: ReadyPool[int] = ReadyPool(lambda: calls.append(1) or 1, 0)
    assert pool.take() is None
    time.sleep(0.05)
    assert calls == []
    assert pool.stop() == []


def test_several_makers_make_at_once_and_never_overfill() -> None:
    """Behind latency one maker cannot keep up: with ``makers=3`` three slow makes overlap,
    and ready plus in-progress never exceeds the pool's size."""
    in_flight = 0
    most = 0
    lock = threading.Lock()
    made = iter(range(1000))

    def slow_make() -> int:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
            return next(made)

    pool: ReadyPool[int] = ReadyPool(slow_make, 3, makers=3)
    started = time.monotonic()
    pool.start()
    deadline = started + 5
    while len(pool._ready) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    filled = time.monotonic() - started
    assert len(pool._ready) == 3
    assert most == 3  # the three were made at the same time...
    assert filled < 0.14  # ...so filling took about one make (0.05 s), not three (0.15 s)
    taken = [pool.take() for _ in range(3)]
    assert sorted(t for t in taken if t is not None) == [0, 1, 2]
    unused = pool.stop()
    assert len(unused) <= 3 and most == 3
    assert len(set(unused) | {0, 1, 2}) == len(unused) + 3  # every item handed out once


def test_makers_are_capped_by_the_size() -> None:
    assert ReadyPool(lambda: 1, 2, makers=8).makers == 2
    assert ReadyPool(lambda: 1, 4, makers=0).makers == 1
