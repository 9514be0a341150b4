"""``TigrisForkFactory``: per-process fork state behind the fixtures, and the ``Fork`` handle.

The fixtures are two or three lines over this. Nothing here imports pytest: pytest's hooks
reach the factory as plain callables (:class:`FactoryHooks`).
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from .background import BackgroundDeleter, ReadyPool
from .client import ClientFactory, check_reachable
from .config import TigrisConfig
from .coordination import RunContext, pid_alive
from .exceptions import (
    TigrisConfigError,
    TigrisEmulatorError,
    TigrisEndpointError,
    TigrisForkError,
    TigrisHookError,
)
from .janitor import ForkJanitor, ForkNameTakenError
from .naming import fork_name, valid_bucket_name

if TYPE_CHECKING:
    from .emulator import EmulatorProcess

__all__ = ["Changes", "EnvSetter", "FactoryHooks", "Fork", "TigrisForkFactory"]

_NAME_RETRIES = 5
# How long the end of a session waits for queued deletes before leaving them to the sweep.
_CLOSE_TIMEOUT = 300.0


@dataclass(frozen=True)
class Changes:
    """What a fork changed compared with its fork point (sorted key lists)."""

    added: list[str]
    modified: list[str]
    deleted: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted)


class EnvSetter(Protocol):
    """What :meth:`Fork.apply_env` needs: pytest's ``MonkeyPatch``, or anything with its
    ``setenv``."""

    def setenv(self, name: str, value: str) -> object: ...


# Response fields of HeadObject that a metadata-only edit (a copy onto itself) can change.
_DESCRIPTIVE = (
    "Metadata",
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "WebsiteRedirectLocation",
)


@dataclass(eq=False)
class Fork:
    """A live fork: its name, where it came from, and a boto3 client of its own.

    ``snapshot`` is the fork point: the version of ``source`` the fork was made at (for a fork
    of a live bucket, the snapshot Tigris took when forking it); None in copy mode.
    """

    name: str
    source: str
    snapshot: str | None
    endpoint_url: str | None
    _clients: ClientFactory = field(repr=False)
    kind: str = "fork"
    created_in: float = 0.0

    @property
    def client(self) -> Any:
        """The boto3 S3 client for the fork's endpoint, shared by every fork handle of this
        process (thread-safe for requests). A test that changes a client (registers event
        handlers, uses a Stubber or tigris-boto3-ext's context managers, calls ``close()``)
        takes :meth:`new_client`: control operations never use either."""
        return self._clients.shared()

    def new_client(self) -> Any:
        """A boto3 S3 client of the test's own, for the fork's endpoint."""
        return self._clients.client()

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point S3 clients (boto3, the aws cli, subprocesses) at
        this fork.

        Only S3's own endpoint variable is set: the global ``AWS_ENDPOINT_URL`` would send
        every other AWS service (SQS, STS, DynamoDB...) to this endpoint too. A tool that reads
        only the global one gets it with ``{**fork.env, "AWS_ENDPOINT_URL": fork.endpoint_url}``.
        """
        config = self._clients.config
        values = {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url or "",
            "AWS_ACCESS_KEY_ID": config.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": config.secret_access_key or "",
            "AWS_DEFAULT_REGION": config.region,
            "TIGRIS_BUCKET": self.name,
            "BUCKET_NAME": self.name,
        }
        if config.session_token:
            values["AWS_SESSION_TOKEN"] = config.session_token
        return {k: v for k, v in values.items() if v}

    def apply_env(self, monkeypatch: EnvSetter) -> None:
        """Set every :attr:`env` variable through ``monkeypatch`` (pytest's ``MonkeyPatch``),
        which restores the environment after the test."""
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    def url(self, key: str) -> str:
        """The path-style HTTP URL of ``key`` in this fork."""
        base = (self.endpoint_url or "https://t3.storage.dev").rstrip("/")
        return f"{base}/{self.name}/{quote(key, safe='/~')}"

    def changes(self, *, metadata: bool = False) -> Changes:
        """Keys added, modified and deleted since the fork point (``source`` as it was at
        ``snapshot``, whatever happened to ``source`` since).

        A key is modified when its content changed (ETag or size). With ``metadata=True`` a
        key whose user metadata, content headers or tags changed is modified too; that costs
        two requests per unchanged key on each side (S3 listings carry neither), so it is off
        by default.
        """
        now = _listing(self.client, self.name)
        before = _listing(self._source_reader, self.source)
        common = set(now) & set(before)
        modified = {k for k in common if now[k] != before[k]}
        if metadata:
            same = sorted(common - modified)
            modified |= _described_differently(
                (self.client, self.name), (self._source_reader, self.source), same
            )
        return Changes(
            added=sorted(set(now) - set(before)),
            modified=sorted(modified),
            deleted=sorted(set(before) - set(now)),
        )

    @cached_property
    def _source_reader(self) -> Any:
        """A client of its own that reads ``source`` at the fork point."""
        client = self._clients.client()
        version = self.snapshot
        if version:

            def at_fork_point(request: Any, **kwargs: Any) -> None:
                request.headers["X-Tigris-Snapshot-Version"] = version

            client.meta.events.register("before-sign.s3", at_fork_point)
        return client


def _listing(client: Any, bucket: str) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            out[entry["Key"]] = (entry["ETag"], entry["Size"])
    return out


def _described_differently(
    fork: tuple[Any, str], source: tuple[Any, str], keys: list[str]
) -> set[str]:
    """The keys whose metadata or tags differ between ``fork`` and ``source``
    (each a ``(client, bucket)``)."""
    from concurrent.futures import ThreadPoolExecutor

    def description(side: tuple[Any, str], key: str) -> tuple[Any, ...]:
        client, bucket = side
        head = client.head_object(Bucket=bucket, Key=key)
        tags = client.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
        return (
            *(head.get(name) for name in _DESCRIPTIVE),
            sorted((tag["Key"], tag["Value"]) for tag in tags),
        )

    def differs(key: str) -> bool:
        return description(fork, key) != description(source, key)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {key for key, changed in zip(keys, pool.map(differs, keys), strict=True) if changed}


@dataclass
class FactoryHooks:
    """pytest's hooks, as plain callables (defaults do nothing)."""

    fork_name: Callable[[str, str], str | None] = lambda kind, worker: None
    populate_seed: Callable[[Any, str], None] = lambda client, bucket: None
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
        self.config = config
        self.run = run
        self.hooks = hooks or FactoryHooks()
        self._lock = threading.RLock()
        self._counter = itertools.count()
        self._started = False
        self._clients: ClientFactory | None = None
        self._janitor: ForkJanitor | None = None
        self._snapshots: dict[str, str] = {}
        self._copy_seeds: set[str] = set()
        self.live: dict[str, Fork] = {}
        self.kept: list[Fork] = []
        self._kept_labels: dict[str, str] = {}
        # Set by the tigris_fork_factory fixture: pytest's base temp, where kept forks of the
        # embedded emulator are written (export.py); what was written for each.
        self.export_root: Callable[[], Path] | None = None
        self._saved: dict[str, dict[str, Any]] = {}
        # Which test each fork was made during, and the failed tests that used it.
        self._made_during: dict[str, str] = {}
        self._unattributed: list[str] = []
        self._failed_users: dict[str, list[str]] = {}
        self.created = 0
        self.deleted_names: list[str] = []
        self.fork_times: list[float] = []
        self.errors: list[str] = []
        # Released forks wait here for their delete, off the test's critical path.
        self._deleting: dict[str, Fork] = {}
        self._background_errors: list[str] = []
        self._deleter: BackgroundDeleter[Fork] = BackgroundDeleter(
            self._delete_one, self._delete_failed
        )
        self._pool: ReadyPool[Fork] | None = None
        self._closing = False
        self._unused_ready: set[str] = set()
        self.unused_ready_deleted = 0
        self._emulator: EmulatorProcess | None = None
        self._emulator_pid: int | None = None

    @classmethod
    def from_config(
        cls, config: TigrisConfig, run: RunContext, hooks: FactoryHooks | None = None
    ) -> TigrisForkFactory:
        """The factory for this process (like ``TempPathFactory.from_config``)."""
        return cls(config, run, hooks)

    # -- backend --------------------------------------------------------------------------
    @property
    def janitor(self) -> ForkJanitor:
        self.start()
        assert self._janitor is not None
        return self._janitor

    @property
    def clients(self) -> ClientFactory:
        self.start()
        assert self._clients is not None
        return self._clients

    @property
    def endpoint_url(self) -> str | None:
        return self.clients.endpoint_url

    def start(self) -> None:
        """Set up the backend once: emulator and seed (emulator backend) or seed check."""
        with self._lock:
            if self._started:
                return
            endpoint: str | None = self.config.endpoint_url
            if self.config.is_emulator:
                endpoint = self._start_emulator()
                self.config = replace(self.config, endpoint_url=endpoint)
            self._clients = clients = ClientFactory(self.config, endpoint)
            self._janitor = ForkJanitor(
                self._clients.client,
                endpoint,
                protected={self.config.seed},
                remote=not self.config.is_emulator,
                copy_mode=self.config.fork_mode == "copy",
                single_shot_factory=lambda: clients.client(max_attempts=0),  # sent once
            )
            self._started = True
            if not self.config.is_emulator:
                check_reachable(endpoint)
                self._clients.probe(self.config.seed)
                self._janitor.check_seed(self.config.seed)

    def _start_emulator(self) -> str:
        from .emulator import EmulatorProcess, EmulatorStartError

        with self.run.registry() as registry:
            failed = registry.get("emulator_error")
            if failed:
                # Another process of this run tried already: the same error, not a retry.
                error = TigrisHookError if failed["hook"] else TigrisEmulatorError
                raise error(failed["message"])
            emulator = registry.get("emulator")
            if emulator:
                self._emulator_pid = int(emulator["pid"])
                if self.emulator_gone():
                    raise self._emulator_died()
                return str(emulator["endpoint"])
            try:
                if self.config.seed_dir is not None:
                    _check_readable(self.config.seed_dir)
                process = EmulatorProcess(
                    seed=self.config.seed,
                    seed_dir=self.config.seed_dir,
                    parent_pid=self.run.controller_pid,
                    log_path=self._emulator_log,
                ).start()
            except EmulatorStartError as exc:
                registry["emulator_error"] = {"message": str(exc), "hook": False}
                raise TigrisEmulatorError(str(exc)) from None
            assert process.process is not None
            endpoint = process.endpoint_url
            clients = ClientFactory(self.config, endpoint)
            try:
                self.hooks.populate_seed(clients.client(), self.config.seed)
            except Exception as exc:
                process.stop()
                message = hook_failure("pytest_tigris_populate_seed", exc)
                registry["emulator_error"] = {"message": message, "hook": True}
                raise TigrisHookError(message) from None
            self._emulator = process
            self._emulator_pid = process.process.pid
            registry["emulator"] = {"endpoint": endpoint, "pid": process.process.pid}
            return endpoint

    # -- the emulator's health ------------------------------------------------------------
    @property
    def _emulator_log(self) -> Path:
        return self.run.shared_dir / "emulator.log"

    def emulator_gone(self, *, probe: bool = False) -> bool:
        """Whether the run's emulator process has exited (False on a remote backend).

        ``probe`` also counts an emulator that refuses connections as gone: a process that
        is not ours to reap may linger as a zombie after it was killed.
        """
        pid = self._emulator_pid
        if pid is None:
            return False
        own = self._emulator.process if self._emulator is not None else None
        if own is not None and own.poll() is not None:
            return True
        if not pid_alive(pid):
            return True
        if probe and self._clients is not None:
            try:
                check_reachable(self._clients.endpoint_url, timeout=2.0)
            except TigrisEndpointError:
                return True
        return False

    def _emulator_died(self) -> TigrisEmulatorError:
        # Only the process that started the emulator could tell its exit status: every
        # process says the same thing instead.
        return TigrisEmulatorError(
            f"the Tigris emulator (pid {self._emulator_pid}) stopped during the run; "
            f"{_log_tail(self._emulator_log)}"
        )

    @contextmanager
    def _watching_emulator(self) -> Iterator[None]:
        """Report a dead emulator as such, not as a refused connection to some URL."""
        if self.emulator_gone():
            raise self._emulator_died()
        try:
            yield
        except TigrisEmulatorError:
            raise
        except Exception:
            if self.emulator_gone(probe=True):
                raise self._emulator_died() from None
            raise

    def pinned_snapshot(self, seed: str) -> str | None:
        """The snapshot every fork of ``seed`` in this run is made from (taken once per run).

        None in copy mode: plain S3 has no snapshots.
        """
        if self.config.fork_mode == "copy":
            if seed not in self._copy_seeds:
                self.janitor.check_seed(seed)
                self._copy_seeds.add(seed)
            return None
        with self._lock:
            if seed in self._snapshots:
                return self._snapshots[seed]
        janitor = self.janitor
        with self.run.registry() as registry:
            pinned: dict[str, str] = registry.setdefault("snapshots", {})
            if seed not in pinned:
                if seed == self.config.seed and self.config.seed_snapshot:
                    pinned[seed] = janitor.resolve_snapshot(seed, self.config.seed_snapshot)
                else:
                    janitor.check_seed(seed)
                    pinned[seed] = janitor.snapshot(seed, f"pytest-tigris-{self.run.run_id}")
                    registry.setdefault("taken_snapshots", {})[seed] = pinned[seed]
            version = pinned[seed]
        with self._lock:
            self._snapshots[seed] = version
        return version

    # -- forks ----------------------------------------------------------------------------
    def fork(self, source: str | None = None, *, snapshot: str | None = None) -> Fork:
        """A new fork of ``source`` (default: the seed, at the run's pinned snapshot).

        Forks made here are deleted at the end of the session. ``source`` may be another
        fork; ``snapshot`` a version of ``source``.
        """
        return self.create(source, snapshot=snapshot, kind="factory")

    def create(self, source: str | None = None, *, snapshot: str | None = None, kind: str) -> Fork:
        """A new fork of ``source`` (``fork`` with the fixture's ``kind`` for the summary)."""
        self.start()
        with self._watching_emulator():
            if kind == "fork" and source is None and snapshot is None:
                ready = self._from_pool()
                if ready is not None:
                    return ready
            return self._create(source, snapshot, kind)

    def _from_pool(self) -> Fork | None:
        """A ready fork of the seed at the pinned snapshot, or None (make one now).

        The first request starts the pool (its forks are made in the background while tests
        run); forks it holds are named in the run's log before they exist, like every fork.
        """
        if self.config.pool <= 0 or self.config.fork_mode == "copy":
            return None
        with self._lock:
            pool = self._pool
        if pool is None:
            seed = self.config.seed
            pinned = self.pinned_snapshot(seed)
            # Built here, on the main thread: building a client reads os.environ, which a test
            # may be changing (monkeypatch) while the pool's thread runs.
            _ = self.janitor.admin
            with self._lock:
                if self._pool is None and not self._closing:
                    self._pool = ReadyPool(
                        lambda: self._create(seed, pinned, "fork", register=False),
                        self.config.pool,
                        is_slowdown=_is_slowdown,
                    )
                    self._pool.start()
            return None
        fork = pool.take()
        if fork is not None:
            self._register(fork)
        return fork

    def _create(
        self, source: str | None, snapshot: str | None, kind: str, *, register: bool = True
    ) -> Fork:
        source = source or self.config.seed
        if snapshot is None and (source == self.config.seed or not self._is_live_fork(source)):
            snapshot = self.pinned_snapshot(source)
        elif snapshot is not None and not snapshot.isdigit():
            snapshot = self.janitor.resolve_snapshot(source, snapshot, what=f"snapshot of {source}")
        janitor = self.janitor
        last_error: Exception | None = None
        for _ in range(_NAME_RETRIES):
            name, custom = self._new_name(kind)
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
            elapsed = time.perf_counter() - started
            fork = Fork(
                name=name,
                source=source,
                snapshot=point,
                endpoint_url=self.endpoint_url,
                _clients=self.clients,
                kind=kind,
                created_in=elapsed,
            )
            if register:
                self._register(fork)
            return fork
        raise TigrisForkError(
            f"could not find a free fork name ({last_error}): bucket names are global on "
            "Tigris; pass another --tigris-prefix or --tigris-run-id"
        )

    def _register(self, fork: Fork) -> None:
        """A fork handed to a test from now on: tracked, attributed, announced."""
        with self._lock:
            self.live[fork.name] = fork
            self._unattributed.append(fork.name)
            self.created += 1
            self.fork_times.append(fork.created_in)
        self.hooks.fork_created(fork)

    def _is_live_fork(self, name: str) -> bool:
        return name in self.live

    def _new_name(self, kind: str) -> tuple[str, bool]:
        """A name for a new fork, and whether the ``pytest_tigris_fork_name`` hook chose it."""
        custom = self.hooks.fork_name(kind, self.run.worker)
        if custom:
            if not valid_bucket_name(custom):
                raise TigrisConfigError(
                    f"pytest_tigris_fork_name returned {custom!r}, which is not a valid bucket "
                    "name: use 3-63 characters a-z, 0-9, '.' and '-'"
                )
            return custom, True
        number = next(self._counter)
        return fork_name(self.config.prefix, self.run.run_id, self.run.worker, number), False

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
        self._deleter.wait()
        self._release_children(fork, self.delete)
        return self._delete_one(fork)

    def _delete_one(self, fork: Fork) -> bool:
        """Delete one fork whose own forks are gone; the deleter thread's job too."""
        if self.emulator_gone():
            # The fork went with the emulator: nothing is left to delete.
            with self._lock:
                self.live.pop(fork.name, None)
                self._deleting.pop(fork.name, None)
            return False
        try:
            deleted = self.janitor.delete(fork.name)
        finally:
            with self._lock:
                queued = self._deleting.pop(fork.name, None) is not None
        with self._lock:
            # A fork this process made and did not delete before is gone now either way (a
            # retried delete whose first attempt went through answers NoSuchBucket).
            deleted = self.live.pop(fork.name, None) is not None or queued or deleted
            if fork.name in self._unused_ready:
                # Made ahead for a test that never came: never announced, counted apart.
                if deleted:
                    self.unused_ready_deleted += 1
                return deleted
            if deleted:
                self.deleted_names.append(fork.name)
        if deleted:
            self.hooks.fork_deleted(fork)
        return deleted

    def _delete_later(self, fork: Fork) -> None:
        """Queue a released fork's delete: the test's teardown does not wait for it; the
        session's end does (:meth:`close`)."""
        with self._lock:
            self.live.pop(fork.name, None)
            self._deleting[fork.name] = fork
        self._deleter.submit(fork)

    def _delete_failed(self, fork: Fork, exc: BaseException) -> None:
        with self._lock:
            self._deleting.pop(fork.name, None)
            self._background_errors.append(
                f"could not delete fork {fork.name} (left to the end-of-run sweep): {exc}"
            )

    def keep(self, fork: Fork, label: str | None = None) -> None:
        """Leave ``fork`` alive after the run, and list it in the summary (with ``label``:
        why it was kept)."""
        with self._lock:
            self.live.pop(fork.name, None)
            self.kept.append(fork)
            if label:
                self._kept_labels[fork.name] = label
        # The end-of-run sweep must not take it either.
        self.run.spare(fork.name)
        self.janitor.mark_owned(fork.name, self.run.run_id)  # the run's snapshot goes at its end
        if self.config.is_emulator and self.export_root is not None:
            # The embedded emulator stops with the run; a folder of the fork outlives it.
            from .export import export_kept

            with self._lock:
                test = self._made_during.get(fork.name)
            saved = export_kept(fork, self.export_root, test, self.run.worker)
            with self._lock:
                self._saved[fork.name] = saved

    def release(self, fork: Fork, *, failed: bool = False, test: str | None = None) -> bool:
        """End of a fork's fixture: keep it (per ``--tigris-keep``) or delete it; returns
        whether it was kept.

        ``failed``: ``test`` (the test the fork belongs to) failed. With ``--tigris-keep=failed``
        a fork is kept when a failed test used it (see :meth:`note_report`), or when one of its
        own forks is kept: a bucket with live forks cannot be deleted. Its forks are released
        first.
        """
        self._release_children(fork, self.release)
        label = self._keep_label(fork, failed, test)
        if label is None:
            with self._lock:
                children = [k.name for k in self.kept if k.source == fork.name]
            if children:
                label = f"parent of kept fork {', '.join(children)}"
        if label is not None:
            self.keep(fork, label)
            return True
        self._delete_later(fork)
        return False

    def _release_children(self, fork: Fork, release: Callable[[Fork], object]) -> None:
        with self._lock:
            children = [f for f in reversed(self.live.values()) if f.source == fork.name]
        problems = []
        for child in children:
            try:
                release(child)
            except Exception as exc:
                problems.append(f"its fork {child.name} could not be deleted: {exc}")
        if problems:
            # Deleting the parent now could only fail: both stay for the end-of-run sweep.
            raise TigrisForkError("; ".join(problems))

    def _keep_label(self, fork: Fork, failed: bool, test: str | None) -> str | None:
        """Why ``fork`` is kept, or None when it is not."""
        keep = self.config.keep
        if keep == "never":
            return None
        with self._lock:
            users = list(self._failed_users.get(fork.name, []))
            made_during = self._made_during.get(fork.name)
        if failed and test and test not in users:
            users.append(test)
        if keep == "failed" and not users and not failed:
            return None
        tests = ", ".join(users)
        plural = "s" if len(users) > 1 else ""
        if fork.kind == "bucket":
            where = "" if self.run.worker == "m" else f" of worker {self.run.worker}"
            used = f", used by failed test{plural} {tests}" if users else ""
            return f"shared tigris_bucket{where}{used}"
        what = "tigris_fork" if fork.kind == "fork" else "tigris_fork_factory fork"
        if users:
            return f"{what} of failed test{plural} {tests}"
        if failed:
            return f"{what} of a failed test"
        return f"{what} of test {made_during}" if made_during else what

    def note_report(self, test: str, when: str, failed: bool, uses_bucket: bool) -> None:
        """Record one report of ``test`` (pytest's ``setup``, ``call`` or ``teardown``).

        Forks made since the previous report belong to ``test``. When its setup or call
        failed, the forks it made and, with ``uses_bucket``, this process's ``tigris_bucket``
        are marked as used by a failed test (what ``--tigris-keep=failed`` keeps).
        """
        with self._lock:
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
        with self._lock:
            forks = [
                fork
                for name, fork in self.live.items()
                if self._made_during.get(name) == test or (uses_bucket and fork.kind == "bucket")
            ]
        return sorted(forks, key=lambda fork: {"fork": 0, "bucket": 2}.get(fork.kind, 1))

    def close(self) -> list[str]:
        """Delete (or keep) every fork still alive, children first, and wait for every
        queued delete; returns warnings."""
        problems: list[str] = []
        with self._lock:
            self._closing = True
            pool, self._pool = self._pool, None
        if pool is not None:
            # Stop making ready forks before the run's snapshot goes; delete the unused ones.
            for fork in pool.stop():
                with self._lock:
                    self._unused_ready.add(fork.name)
                self._delete_later(fork)
            if pool.failure is not None:
                problems.append(f"the pool of ready forks stopped early: {pool.failure}")
        for fork in reversed(list(self.live.values())):
            if fork.name not in self.live:
                continue  # released already, as the child of a fork released before it
            try:
                self.release(fork)
            except Exception as exc:
                problems.append(f"could not delete fork {fork.name}: {exc}")
        if not self._deleter.wait(_CLOSE_TIMEOUT):
            problems.append(
                f"{self._deleter.pending} fork deletes still running after "
                f"{_CLOSE_TIMEOUT:.0f} s: left to the end-of-run sweep"
            )
        with self._lock:
            problems += self._background_errors
            self._background_errors = []
        return problems

    def stats(self) -> dict[str, Any]:
        return {
            "worker": self.run.worker,
            "created": self.created,
            "deleted": len(self.deleted_names),
            "deleted_names": self.deleted_names,
            "unused_ready": self.unused_ready_deleted,
            "kept": [
                {
                    "name": f.name,
                    "endpoint": f.endpoint_url or "",
                    "label": self._kept_labels.get(f.name, ""),
                    "saved": self._saved.get(f.name, {}),
                }
                for f in self.kept
            ],
            "fork_times": self.fork_times,
            "errors": self.errors,
        }


def _is_slowdown(exc: BaseException) -> bool:
    """Tigris rate-limits bucket creation with 503 SlowDown: the pool backs off and retries."""
    text = str(exc)
    return "SlowDown" in text or "503" in text or "reduce your request rate" in text


def _check_readable(folder: Path) -> None:
    """Fail with the file's name before the emulator starts (it would only say that it did
    not start)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise TigrisConfigError(
                f"--tigris-seed-dir {folder}: cannot read {path.relative_to(folder)} "
                f"({exc.strerror or exc}): fix its permissions or move it out of the folder"
            ) from None


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    tail = [line.strip()[:200] for line in text.splitlines() if line.strip()][-lines:]
    if not tail:
        return "its log is empty"
    return "last lines of its log: " + " | ".join(tail)


def hook_failure(hook: str, exc: BaseException) -> str:
    """One line for an exception raised by a hook implementation: its type, message and the
    line of the implementation that was running (its conftest file and line)."""
    import os
    import traceback

    import pluggy

    ours = (os.path.dirname(__file__), os.path.dirname(pluggy.__file__))
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if not frame.filename.startswith(ours):
            path = frame.filename
            relative = os.path.relpath(path)
            where = f" ({path if relative.startswith('..') else relative}:{frame.lineno})"
            break
    text = str(exc).strip().splitlines()
    message = f": {text[0][:200]}" if text else ""
    return f"{hook} raised {type(exc).__name__}{message}{where}: fix the hook"


def summarize_times(times: list[float]) -> tuple[float, float]:
    """Median and max of fork times, in seconds."""
    if not times:
        return 0.0, 0.0
    return statistics.median(times), max(times)
