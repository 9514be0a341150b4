"""Work taken off a test's critical path: deleting finished forks, and keeping ready forks.

Both run on one daemon thread each, started on first use, and never build a boto3 client
(clients are built on the main thread: building one reads ``os.environ``, which a test may be
changing through ``monkeypatch`` at that moment).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BackgroundDeleter", "ReadyPool"]

T = TypeVar("T")


class BackgroundDeleter(Generic[T]):
    """Deletes items in the order they were submitted, on a thread of its own.

    A parent is always submitted after its children, so first-in first-out keeps Tigris's
    children-before-parents rule. :meth:`wait` blocks until everything submitted so far is
    done; failures go to ``on_error`` and never stop the items after them.
    """

    def __init__(
        self,
        delete: Callable[[T], object],
        on_error: Callable[[T, BaseException], None],
        *,
        name: str = "tigris-deleter",
    ) -> None:
        self._delete = delete
        self._on_error = on_error
        self._queue: queue.Queue[T] = queue.Queue()
        self._name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, item: T) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put(item)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted item is done; False if ``timeout`` ran out first."""
        if self._thread is None:
            return True
        done = threading.Event()

        def joined() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=joined, daemon=True).start()
        return done.wait(timeout)

    @property
    def pending(self) -> int:
        return self._queue.unfinished_tasks

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self._delete(item)
            except BaseException as exc:  # reported, and the next item still goes
                self._on_error(item, exc)
            finally:
                self._queue.task_done()


class ReadyPool(Generic[T]):
    """Keeps up to ``size`` items made ahead of need, refilled by ``makers`` threads of its own.

    :meth:`take` never waits: it returns a ready item or None (the caller then makes one
    itself). Behind a slow link making one item is a few round trips, so several makers keep
    the pool full while tests take from it. ``make`` failing with a rate limit
    (``is_slowdown``) backs off and tries again; any other failure stops the refilling for
    good (the caller's own attempt will report it).
    """

    def __init__(
        self,
        make: Callable[[], T],
        size: int,
        *,
        makers: int = 1,
        is_slowdown: Callable[[BaseException], bool] = lambda exc: False,
        name: str = "tigris-pool",
        max_backoff: float = 5.0,
    ) -> None:
        self._make = make
        self.size = size
        self.makers = max(1, min(makers, size))
        self._is_slowdown = is_slowdown
        self._ready: list[T] = []
        self._cond = threading.Condition()
        self._stopped = False
        self._making = 0
        self._name = name
        self._max_backoff = max_backoff
        self._threads: list[threading.Thread] = []
        self.failure: BaseException | None = None

    def take(self) -> T | None:
        """A ready item, or None; asks for a refill either way."""
        with self._cond:
            item = self._ready.pop(0) if self._ready else None
            self._ensure_threads()
            self._cond.notify_all()
            return item

    def start(self) -> None:
        """Begin filling (before the first :meth:`take`, so the first test finds one)."""
        with self._cond:
            self._ensure_threads()
            self._cond.notify_all()

    def stop(self) -> list[T]:
        """Stop refilling; wait for the items being made; return every unused item."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            while self._making:
                self._cond.wait()
            unused, self._ready = self._ready, []
            return unused

    def _ensure_threads(self) -> None:
        if self._threads or self._stopped or self.size <= 0:
            return
        for index in range(self.makers):
            name = self._name if index == 0 else f"{self._name}-{index + 1}"
            thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self) -> None:
        backoff = 0.05
        while True:
            with self._cond:
                while not self._stopped and len(self._ready) + self._making >= self.size:
                    self._cond.wait()
                if self._stopped:
                    return
                self._making += 1
            try:
                item = self._make()
            except BaseException as exc:
                with self._cond:
                    self._making -= 1
                    if not self._is_slowdown(exc):
                        if self.failure is None:
                            self.failure = exc
                        self._stopped = True
                    self._cond.notify_all()
                    if self._stopped:
                        return
                time.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.05
            with self._cond:
                self._making -= 1
                # Made while stopping: handed back with the others all the same.
                self._ready.append(item)
                self._cond.notify_all()
                if self._stopped:
                    return
