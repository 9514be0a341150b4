"""``ForkLedger``: what one pytest process knows about its forks, and nothing else.

Which forks are live, which are being deleted, which were kept and why, which test each was
made during and which failed tests used it, and the counts the end-of-run summary adds up
across workers (:meth:`ForkLedger.stats`). No I/O: the factory does the work and writes it
down here. Thread-safe: the pool and the background deleter write to it too.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fork import Fork

__all__ = ["ForkLedger"]


class ForkLedger:
    """The forks of one process, from the moment a test receives one until it is gone."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.lock = threading.RLock()
        self.live: dict[str, Fork] = {}
        # Released forks whose delete is queued (off the test's critical path).
        self.deleting: dict[str, Fork] = {}
        self.kept: list[Fork] = []
        self._kept_labels: dict[str, str] = {}
        # What export.py wrote for each kept fork of the embedded emulator.
        self.saved: dict[str, dict[str, Any]] = {}
        # Which test each fork was made during, and the failed tests that used it.
        self._made_during: dict[str, str] = {}
        self._unattributed: list[str] = []
        self._failed_users: dict[str, list[str]] = {}
        # Ready forks made ahead of need that no test took.
        self._unused_ready: set[str] = set()
        self.unused_ready_deleted = 0
        self.created = 0
        self.deleted_names: list[str] = []
        self.fork_times: list[float] = []
        self.errors: list[str] = []
        self.background_errors: list[str] = []

    # -- a fork's life ----------------------------------------------------------------------
    def register(self, fork: Fork) -> None:
        """``fork`` is handed to a test from now on."""
        with self.lock:
            self.live[fork.name] = fork
            self._unattributed.append(fork.name)
            self.created += 1
            self.fork_times.append(fork.created_in)

    def is_live(self, name: str) -> bool:
        with self.lock:
            return name in self.live

    def children(self, name: str) -> list[Fork]:
        """The live forks of ``name``, newest first (the order they must go in)."""
        with self.lock:
            return [f for f in reversed(self.live.values()) if f.source == name]

    def queue_delete(self, fork: Fork) -> None:
        with self.lock:
            self.live.pop(fork.name, None)
            self.deleting[fork.name] = fork

    def unused(self, fork: Fork) -> None:
        """``fork`` was made ahead of need and no test took it."""
        with self.lock:
            self._unused_ready.add(fork.name)
            self.deleting[fork.name] = fork

    def gone(self, fork: Fork, deleted: bool) -> bool:
        """``fork`` is gone (``deleted``: by this delete). Returns whether it should be
        announced (``pytest_tigris_fork_deleted``): a fork a test had, deleted now or by an
        earlier attempt whose answer was lost."""
        with self.lock:
            queued = self.deleting.pop(fork.name, None) is not None
            deleted = self.live.pop(fork.name, None) is not None or queued or deleted
            if fork.name in self._unused_ready:
                if deleted:
                    self.unused_ready_deleted += 1
                return False
            if deleted:
                self.deleted_names.append(fork.name)
            return deleted

    def lost(self, fork: Fork) -> None:
        """``fork`` went with the emulator: nothing is left to delete."""
        with self.lock:
            self.live.pop(fork.name, None)
            self.deleting.pop(fork.name, None)

    def delete_failed(self, fork: Fork, exc: BaseException) -> None:
        with self.lock:
            self.deleting.pop(fork.name, None)
            self.background_errors.append(
                f"could not delete fork {fork.name} (left to the end-of-run sweep): {exc}"
            )

    def take_background_errors(self) -> list[str]:
        with self.lock:
            errors, self.background_errors = self.background_errors, []
            return errors

    def keep(self, fork: Fork, label: str | None) -> None:
        with self.lock:
            self.live.pop(fork.name, None)
            self.kept.append(fork)
            if label:
                self._kept_labels[fork.name] = label

    def kept_children(self, name: str) -> list[str]:
        with self.lock:
            return [k.name for k in self.kept if k.source == name]

    def made_during(self, name: str) -> str | None:
        with self.lock:
            return self._made_during.get(name)

    # -- tests and their outcomes ---------------------------------------------------------
    def note_report(self, test: str, when: str, failed: bool, uses_bucket: bool) -> None:
        """Record one report of ``test`` (pytest's ``setup``, ``call`` or ``teardown``).

        Forks made since the previous report belong to ``test``. When its setup or call
        failed, the forks it made and, with ``uses_bucket``, this process's ``tigris_bucket``
        are marked as used by a failed test (what ``--tigris-keep=failed`` keeps).
        """
        with self.lock:
            for name in self._unattributed:
                self._made_during.setdefault(name, test)
            self._unattributed.clear()
            if not failed or when == "teardown":
                return
            used = [name for name, made in self._made_during.items() if made == test]
            if uses_bucket:
                used += [f.name for f in self.live.values() if f.kind == "bucket"]
            for name in used:
                users = self._failed_users.setdefault(name, [])
                if test not in users:
                    users.append(test)

    def used_by(self, test: str, uses_bucket: bool) -> list[Fork]:
        """The live forks ``test`` made (its ``tigris_fork``, then factory forks) and, with
        ``uses_bucket``, this process's ``tigris_bucket``; complete after :meth:`note_report`."""
        with self.lock:
            forks = [
                fork
                for name, fork in self.live.items()
                if self._made_during.get(name) == test or (uses_bucket and fork.kind == "bucket")
            ]
        return sorted(forks, key=lambda fork: {"fork": 0, "bucket": 2}.get(fork.kind, 1))

    def keep_label(self, fork: Fork, keep: str, failed: bool, test: str | None) -> str | None:
        """Why ``fork`` is kept under ``--tigris-keep=keep``, or None when it is not."""
        if keep == "never":
            return None
        with self.lock:
            users = list(self._failed_users.get(fork.name, []))
            made_during = self._made_during.get(fork.name)
        if failed and test and test not in users:
            users.append(test)
        if keep == "failed" and not users and not failed:
            return None
        tests = ", ".join(users)
        plural = "s" if len(users) > 1 else ""
        if fork.kind == "bucket":
            where = "" if self.worker == "m" else f" of worker {self.worker}"
            used = f", used by failed test{plural} {tests}" if users else ""
            return f"shared tigris_bucket{where}{used}"
        what = "tigris_fork" if fork.kind == "fork" else "tigris_fork_factory fork"
        if users:
            return f"{what} of failed test{plural} {tests}"
        if failed:
            return f"{what} of a failed test"
        return f"{what} of test {made_during}" if made_during else what

    def stats(self) -> dict[str, Any]:
        """This process's part of the end-of-run summary (JSON-able)."""
        with self.lock:
            return {
                "worker": self.worker,
                "created": self.created,
                "deleted": len(self.deleted_names),
                "deleted_names": list(self.deleted_names),
                "unused_ready": self.unused_ready_deleted,
                "kept": [
                    {
                        "name": f.name,
                        "endpoint": f.endpoint_url or "",
                        "label": self._kept_labels.get(f.name, ""),
                        "saved": self.saved.get(f.name, {}),
                    }
                    for f in self.kept
                ],
                "fork_times": list(self.fork_times),
                "errors": list(self.errors),
            }
