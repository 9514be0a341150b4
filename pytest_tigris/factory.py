"""``TigrisForkFactory``: a fork's life in one pytest process, from its name to its delete.

Created (or taken ready from the pool), registered and announced, attributed to the test it
was made during, then released: kept (``--tigris-keep``) or deleted in the background,
children before parents. The backend (:mod:`pytest_tigris.backend`) does the I/O; the ledger
(:mod:`pytest_tigris.ledger`) remembers. The fixtures are two or three lines over this.
Nothing here imports pytest: pytest's hooks reach the factory as plain callables
(:class:`FactoryHooks`).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backend import TigrisBackend
from .client import ClientFactory
from .config import TigrisConfig
from .coordination import RunContext
from .exceptions import TigrisConfigError, TigrisError, TigrisForkError, TigrisSeedError
from .fork import Changes, EnvSetter, Fork
from .janitor import ForkJanitor, ForkNameTakenError
from .ledger import ForkLedger
from .naming import fork_name, valid_bucket_name

__all__ = ["Changes", "EnvSetter", "FactoryHooks", "Fork", "TigrisForkFactory"]

_NAME_RETRIES = 5
# How long the end of a session waits for queued deletes before leaving them to the sweep.
_CLOSE_TIMEOUT = 300.0


@dataclass
class FactoryHooks:
    """pytest's hooks, as plain callables (defaults do nothing)."""

    fork_name: Callable[[str, str], str | None] = lambda kind, worker: None
    populate_seed: Callable[[Any, str], None] | None = None  # None: no implementation
    fork_created: Callable[[Fork], None] = lambda fork: None
    fork_deleted: Callable[[Fork], None] = lambda fork: None


class TigrisForkFactory:
    """Makes forks for one pytest process and remembers them until they are deleted or kept.

    The backend (the emulator process, the seed check, the run's pinned snapshot) is set up
    on first use, once per run across xdist workers.
    """

    def __init__(
        self,
        config: TigrisConfig,
        run: RunContext,
        hooks: FactoryHooks | None = None,
    ) -> None:
        self.run = run
        self.hooks = hooks or FactoryHooks()
        self.backend = TigrisBackend(config, run, self.hooks.populate_seed)
        self.ledger = ForkLedger(run.worker)
        self._counter = itertools.count()
        # Set by the tigris_fork_factory fixture: pytest's base temp, where kept forks of the
        # embedded emulator are written (export.py).
        self.export_root: Callable[[], Path] | None = None

    @classmethod
    def from_config(
        cls, config: TigrisConfig, run: RunContext, hooks: FactoryHooks | None = None
    ) -> TigrisForkFactory:
        """The factory for this process (like ``TempPathFactory.from_config``)."""
        return cls(config, run, hooks)

    # -- the backend, for the fixtures and the plugin ---------------------------------------
    @property
    def config(self) -> TigrisConfig:
        """The run's configuration (with the embedded emulator's endpoint once started)."""
        return self.backend.config

    def start(self) -> None:
        self.backend.start()

    @property
    def janitor(self) -> ForkJanitor:
        return self.backend.janitor

    @property
    def clients(self) -> ClientFactory:
        return self.backend.clients

    @property
    def endpoint_url(self) -> str | None:
        return self.backend.endpoint_url

    def emulator_gone(self, *, probe: bool = False) -> bool:
        return self.backend.emulator_gone(probe=probe)

    def pinned_snapshot(self, seed: str) -> str | None:
        return self.backend.pinned_snapshot(seed)

    def check_marker(
        self, seed: str | None, snapshot: str | None
    ) -> tuple[str | None, str | None] | None:
        """For ``@pytest.mark.tigris(seed=..., snapshot=...)``: ``(snapshot version, None)``
        when the seed and snapshot exist, ``(None, problem)`` when they do not, None when the
        backend could not tell (the fixture then reports the backend's error)."""
        source = seed or self.config.seed
        try:
            self.start()
            if seed is not None and snapshot is None:
                return self.pinned_snapshot(seed), None
            if seed is not None:
                self.janitor.check_seed(seed)
            assert snapshot is not None
            what = "--tigris-seed-snapshot"
            try:
                return self.janitor.resolve_snapshot(source, snapshot, what=what), None
            except TigrisSeedError as exc:
                # The janitor's message starts with the setting and value; the marker shows them.
                return None, str(exc).removeprefix(f"{what} {snapshot!r}: ")
        except TigrisSeedError as exc:
            return None, str(exc).replace("fix --tigris-seed", "fix the marker")
        except TigrisError:
            return None

    # -- birth ----------------------------------------------------------------------------
    def fork(self, source: str | None = None, *, snapshot: str | None = None) -> Fork:
        """A new fork of ``source`` (default: the seed, at the run's pinned snapshot).

        Forks made here are deleted at the end of the session. ``source`` may be another
        fork; ``snapshot`` a version of ``source``.
        """
        return self.create(source, snapshot=snapshot, kind="factory")

    def create(self, source: str | None = None, *, snapshot: str | None = None, kind: str) -> Fork:
        """A new fork of ``source`` (``fork`` with the fixture's ``kind`` for the summary).

        A ``tigris_fork`` of the seed at the pinned snapshot comes from the pool of ready
        forks when one is there (made on the pool's thread while earlier tests ran).
        """
        backend = self.backend
        backend.start()
        with backend.watching_emulator():
            if kind == "fork" and source is None and snapshot is None:
                ready = backend.take_ready(self._make_ready)
                if ready is not None:
                    self._register(ready)
                    return ready
            fork = self._create(source, snapshot, kind)
            self._register(fork)
        return fork

    def _make_ready(self) -> Fork:
        """The pool's job (on its thread): a fork named and logged like any other, handed to
        no test yet."""
        seed = self.config.seed
        return self._create(seed, self.backend.pinned_snapshot(seed), "fork")

    def _create(self, source: str | None, snapshot: str | None, kind: str) -> Fork:
        backend = self.backend
        source = source or self.config.seed
        if snapshot is None and (source == self.config.seed or not self.ledger.is_live(source)):
            # A source that is not the run's seed came from ``fork(source=...)``.
            what = "--tigris-seed" if source == self.config.seed else "source="
            snapshot = backend.pinned_snapshot(source, what=what)
        elif snapshot is not None and not snapshot.isdigit():
            snapshot = backend.janitor.resolve_snapshot(
                source, snapshot, what=f"snapshot of {source}"
            )
        janitor = backend.janitor
        last_error: Exception | None = None
        for _ in range(_NAME_RETRIES):
            name, custom = self._new_name(kind)
            # Logged before it exists: the end-of-run sweep finds it after any crash.
            self.run.log_fork(name)
            started = time.perf_counter()
            try:
                point = janitor.fork(name, source, snapshot, owner=self.run.run_id)
            except ForkNameTakenError as exc:
                # Someone else's bucket: the end-of-run sweep must not touch it.
                self.run.spare(name)
                if custom:
                    raise TigrisConfigError(
                        f"pytest_tigris_fork_name returned {name!r}, but that bucket already "
                        "exists (bucket names are global on Tigris): return a unique name"
                    ) from None
                last_error = exc
                continue
            return Fork(
                name=name,
                source=source,
                snapshot=point,
                endpoint_url=backend.endpoint_url,
                _clients=backend.clients,
                kind=kind,
                created_in=time.perf_counter() - started,
            )
        raise TigrisForkError(
            f"could not find a free fork name ({last_error}): bucket names are global on "
            "Tigris; pass another --tigris-prefix or --tigris-run-id"
        )

    def _register(self, fork: Fork) -> None:
        """A fork handed to a test from now on: tracked, attributed, announced."""
        self.ledger.register(fork)
        self.hooks.fork_created(fork)

    def _new_name(self, kind: str) -> tuple[str, bool]:
        """A name for a new fork, and whether the ``pytest_tigris_fork_name`` hook chose it."""
        custom = self.hooks.fork_name(kind, self.run.worker)
        if custom is not None and not isinstance(custom, str):
            raise TigrisConfigError(
                f"pytest_tigris_fork_name returned {custom!r} ({type(custom).__name__}): "
                "return a bucket name (str), or None for the default name"
            )
        if custom:
            if not valid_bucket_name(custom):
                raise TigrisConfigError(
                    f"pytest_tigris_fork_name returned {custom!r}, which is not a valid bucket "
                    "name: use 3-63 characters a-z, 0-9, '.' and '-'"
                )
            return custom, True
        number = next(self._counter)
        return fork_name(self.config.prefix, self.run.run_id, self.run.worker, number), False

    # -- the end of its fixture -------------------------------------------------------------
    def release(self, fork: Fork, *, failed: bool = False, test: str | None = None) -> bool:
        """End of a fork's fixture: keep it (per ``--tigris-keep``) or delete it; returns
        whether it was kept.

        ``failed``: ``test`` (the test the fork belongs to) failed. With ``--tigris-keep=failed``
        a fork is kept when a failed test used it (see :meth:`note_report`), or when one of its
        own forks is kept: a bucket with live forks cannot be deleted. Its forks are released
        first.
        """
        self._release_children(fork, self.release)
        label = self.ledger.keep_label(fork, self.config.keep, failed, test)
        if label is None:
            children = self.ledger.kept_children(fork.name)
            if children:
                label = f"parent of kept fork {', '.join(children)}"
        if label is not None:
            self.keep(fork, label)
            return True
        self._delete_later(fork)
        return False

    def _release_children(self, fork: Fork, release: Callable[[Fork], object]) -> None:
        problems = []
        for child in self.ledger.children(fork.name):
            try:
                release(child)
            except Exception as exc:
                problems.append(f"its fork {child.name} could not be deleted: {exc}")
        if problems:
            # Deleting the parent now could only fail: both stay for the end-of-run sweep.
            raise TigrisForkError("; ".join(problems))

    def keep(self, fork: Fork, label: str | None = None) -> None:
        """Leave ``fork`` alive after the run, and list it in the summary (with ``label``:
        why it was kept)."""
        self.ledger.keep(fork, label)
        # The end-of-run sweep must not take it either.
        self.run.spare(fork.name)
        self.janitor.mark_owned(fork.name, self.run.run_id)  # the run's snapshot goes at its end
        if self.config.is_emulator and self.export_root is not None:
            # The embedded emulator stops with the run; a folder of the fork outlives it.
            from .export import export_kept

            test = self.ledger.made_during(fork.name)
            saved = export_kept(fork, self.export_root, test, self.run.worker)
            with self.ledger.lock:
                self.ledger.saved[fork.name] = saved

    # -- death ----------------------------------------------------------------------------
    def delete(self, fork: Fork) -> bool:
        """Force-delete ``fork`` now, whatever ``--tigris-keep`` says; False if it was gone.

        The forks this process made of it go first (Tigris refuses to delete a bucket that
        has live forks), children before parents. For a fork that a module- or class-scoped
        fixture wants gone before the session ends::

            @pytest.fixture(scope="module")
            def catalog(tigris_fork_factory):
                fork = tigris_fork_factory.fork()
                yield fork
                tigris_fork_factory.delete(fork)
        """
        # Forks released before (their deletes queued) may be this one's children.
        self.backend.wait_for_deletes()
        self._release_children(fork, self.delete)
        return self._delete_one(fork)

    def _delete_later(self, fork: Fork) -> None:
        """Queue a released fork's delete: the test's teardown does not wait for it; the
        session's end does (:meth:`close`)."""
        self.ledger.queue_delete(fork)
        self.backend.delete_later(fork, self._delete_one, self.ledger.delete_failed)

    def _delete_one(self, fork: Fork) -> bool:
        """Delete one fork whose own forks are gone; the deleter thread's job too."""
        if self.backend.emulator_gone():
            self.ledger.lost(fork)  # it went with the emulator: nothing is left to delete
            return False
        deleted = self.janitor.delete(fork.name)
        announce = self.ledger.gone(fork, deleted)
        if announce:
            self.hooks.fork_deleted(fork)
        # A fork this process made and did not delete before is gone now either way (a
        # retried delete whose first attempt went through answers NoSuchBucket).
        return announce or deleted

    def close(self) -> list[str]:
        """Delete (or keep) every fork still alive, children first, and wait for every
        queued delete; returns warnings."""
        problems: list[str] = []
        # Stop making ready forks before the run's snapshot goes; delete the unused ones.
        unused, failure = self.backend.stop_pool()
        for fork in unused:
            self.ledger.unused(fork)
            self.backend.delete_later(fork, self._delete_one, self.ledger.delete_failed)
        # A configuration error (a fork name hook's bad answer) is the run's one error line
        # already: a fork asked for in the foreground met it too.
        if failure is not None and not isinstance(failure, TigrisConfigError):
            problems.append(f"the pool of ready forks stopped early: {failure}")
        for fork in reversed(list(self.ledger.live.values())):
            if not self.ledger.is_live(fork.name):
                continue  # released already, as the child of a fork released before it
            try:
                self.release(fork)
            except Exception as exc:
                problems.append(f"could not delete fork {fork.name}: {exc}")
        pending = self.backend.wait_for_deletes(_CLOSE_TIMEOUT)
        if pending:
            problems.append(
                f"{pending} fork deletes still running after {_CLOSE_TIMEOUT:.0f} s: left to "
                "the end-of-run sweep"
            )
        return problems + self.ledger.take_background_errors()

    # -- what the plugin reads --------------------------------------------------------------
    def note_report(self, test: str, when: str, failed: bool, uses_bucket: bool) -> None:
        self.ledger.note_report(test, when, failed, uses_bucket)

    def used_by(self, test: str, uses_bucket: bool) -> list[Fork]:
        return self.ledger.used_by(test, uses_bucket)

    @property
    def live(self) -> dict[str, Fork]:
        return self.ledger.live

    @property
    def kept(self) -> list[Fork]:
        return self.ledger.kept

    def stats(self) -> dict[str, Any]:
        return self.ledger.stats()


def summarize_times(times: list[float]) -> tuple[float, float]:
    """Median and max of fork times, in seconds."""
    if not times:
        return 0.0, 0.0
    return statistics.median(times), max(times)
