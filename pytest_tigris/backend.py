"""``TigrisBackend``: the run's storage as one pytest process sees it.

The endpoint (an embedded emulator started once per run, or Tigris), the clients, the janitor
that creates and deletes buckets, the snapshots every fork of a seed is pinned to, and the two
threads that take work off a test's critical path: the pool of ready forks and the deleter.
Set up on first use, once per run across xdist workers (the run's registry, a file-locked
JSON, says who started what). :class:`~pytest_tigris.factory.TigrisForkFactory` builds a
fork's life on top of it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .background import BackgroundDeleter, ReadyPool
from .client import ClientFactory, check_reachable
from .config import TigrisConfig
from .coordination import RunContext, pid_alive
from .exceptions import TigrisConfigError, TigrisEmulatorError, TigrisEndpointError, TigrisHookError
from .janitor import ForkJanitor
from .strategies import ForkStrategy, strategy_for

if TYPE_CHECKING:
    from .emulator import EmulatorProcess
    from .fork import Fork

__all__ = ["TigrisBackend", "await_all", "hook_failure"]


class TigrisBackend:
    """Endpoint, clients, janitor, pinned snapshots, ready pool and deleter of one process.

    ``populate_seed``: the ``pytest_tigris_populate_seed`` hook, called once per run by the
    process that starts the embedded emulator.
    """

    def __init__(
        self,
        config: TigrisConfig,
        run: RunContext,
        populate_seed: Callable[[Any, str], None] | None = None,
    ) -> None:
        self.config = config
        self.run = run
        self.strategy: ForkStrategy = strategy_for(config.fork_mode)
        self._populate_seed = populate_seed
        self._lock = threading.RLock()
        self._started = False
        self._clients: ClientFactory | None = None
        self._janitor: ForkJanitor | None = None
        self._snapshots: dict[str, str] = {}
        self._checked: set[str] = set()
        self._emulator: EmulatorProcess | None = None
        self._emulator_pid: int | None = None
        self._pool: ReadyPool[Fork] | None = None
        self._deleter: BackgroundDeleter[Fork] | None = None
        self._closing = False

    # -- setting up -------------------------------------------------------------------------
    def start(self) -> None:
        """Set up the backend once: emulator and seed (emulator backend) or seed check."""
        with self._lock:
            if self._started:
                return
            endpoint: str | None = self.config.endpoint_url
            clients = ClientFactory(self.config, endpoint)
            if self.config.is_emulator:
                endpoint = self._start_emulator(clients)
                self.config = replace(self.config, endpoint_url=endpoint)
                clients = clients.at(self.config, endpoint)
            self._clients = clients
            control = None
            if self.config.is_emulator and endpoint is not None:
                from .control import ControlClient

                # The emulator we started: forks made and deleted without boto3's CPU cost.
                control = ControlClient(
                    endpoint,
                    self.config.access_key_id or "",
                    self.config.secret_access_key or "",
                    self.config.region,
                )
            self._janitor = ForkJanitor(
                clients.client,
                endpoint,
                protected={self.config.seed},
                remote=not self.config.is_emulator,
                strategy=self.strategy,
                single_shot_factory=lambda: clients.client(max_attempts=0),  # sent once
                control=control,
            )
            self._started = True
            if not self.config.is_emulator:
                check_reachable(endpoint)
                clients.probe(self.config.seed)
                self._janitor.check_seed(self.config.seed)

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

    def _start_emulator(self, clients: ClientFactory) -> str:
        """The embedded emulator's endpoint: started here, or by another process of the run.

        ``clients`` gets boto3 ready (imported, S3 model loaded) while the emulator starts.
        """
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
                ).launch()
                # Best effort (the real clients report any error): the two imports overlap.
                with suppress(Exception):
                    clients.warm()
                process.wait_ready()
            except EmulatorStartError as exc:
                registry["emulator_error"] = {"message": str(exc), "hook": False}
                raise TigrisEmulatorError(str(exc)) from None
            assert process.process is not None
            endpoint = process.endpoint_url
            try:
                if self._populate_seed is not None:
                    client = clients.at(self.config, endpoint).client()
                    self._populate_seed(client, self.config.seed)
            except Exception as exc:
                process.stop()
                message = hook_failure("pytest_tigris_populate_seed", exc)
                registry["emulator_error"] = {"message": message, "hook": True}
                raise TigrisHookError(message) from None
            self._emulator = process
            self._emulator_pid = process.process.pid
            registry["emulator"] = {"endpoint": endpoint, "pid": process.process.pid}
            return endpoint

    def stop_emulator(self) -> bool:
        """Stop the embedded emulator if this process started it; whether it did."""
        emulator, self._emulator = self._emulator, None
        if emulator is None:
            return False
        emulator.stop()
        return True

    # -- the emulator's health ----------------------------------------------------------------
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
    def watching_emulator(self) -> Iterator[None]:
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

    # -- seeds --------------------------------------------------------------------------------
    def pinned_snapshot(self, seed: str, *, what: str = "--tigris-seed") -> str | None:
        """The snapshot every fork of ``seed`` in this run is made from (taken once per run).

        None for copies: plain S3 has no snapshots (the seed is checked once instead).
        ``what``: where ``seed`` came from (an option, a marker, ``fork(source=)``), named
        when there is no such bucket.
        """
        if not self.strategy.pins_snapshots:
            if seed not in self._checked:
                self.janitor.check_seed(seed, what=what)
                self._checked.add(seed)
            return None
        with self._lock:
            if seed in self._snapshots:
                return self._snapshots[seed]
        janitor = self.janitor
        with self.run.registry() as registry:
            pinned: dict[str, str] = registry.setdefault("snapshots", {})
            if seed not in pinned:
                if seed == self.config.seed and self.config.seed_snapshot:
                    pinned[seed] = janitor.resolve_snapshot(
                        seed, self.config.seed_snapshot, what=self.config.seed_snapshot_source
                    )
                else:
                    janitor.check_seed(seed, what=what)
                    pinned[seed] = janitor.snapshot(seed, f"pytest-tigris-{self.run.run_id}")
                    registry.setdefault("taken_snapshots", {})[seed] = pinned[seed]
            version = pinned[seed]
        with self._lock:
            self._snapshots[seed] = version
        return version

    # -- work off the critical path -------------------------------------------------------------
    def take_ready(self, make: Callable[[], Fork]) -> Fork | None:
        """A ready fork of the seed at its pinned snapshot, or None (make one now).

        The first call starts the pool (``make`` then runs on its thread while tests run) and
        returns None. No pool with ``--tigris-pool=0``, for copies, or while closing.
        """
        if self.config.pool <= 0 or not self.strategy.pins_snapshots:
            return None
        with self._lock:
            pool = self._pool
        if pool is not None:
            return pool.take()
        self.pinned_snapshot(self.config.seed)
        self.janitor.prepare()  # the clients, built on this thread (see ForkJanitor.prepare)
        with self._lock:
            if self._pool is None and not self._closing:
                # A remote fork is round trips (create, verify): one maker per ready fork keeps
                # up behind latency. The embedded emulator's take about a millisecond: one.
                makers = self.config.pool if self.janitor.remote else 1
                self._pool = ReadyPool(
                    make, self.config.pool, makers=makers, is_slowdown=_is_slowdown
                )
                self._pool.start()
        return None

    def stop_pool(self) -> tuple[list[Fork], BaseException | None]:
        """Stop making ready forks (before the run's snapshot goes): the unused ones, and
        why the pool stopped early (None if it did not)."""
        with self._lock:
            self._closing = True
            pool, self._pool = self._pool, None
        if pool is None:
            return [], None
        return pool.stop(), pool.failure

    def delete_later(
        self,
        fork: Fork,
        delete: Callable[[Fork], object],
        on_error: Callable[[Fork, BaseException], None],
    ) -> None:
        """Queue ``delete(fork)`` on the deleter thread (first in, first out)."""
        with self._lock:
            if self._deleter is None:
                self.janitor.prepare()
                self._deleter = BackgroundDeleter(delete, on_error)
            deleter = self._deleter
        deleter.submit(fork)

    def wait_for_deletes(self, timeout: float | None = None) -> int:
        """Wait for every queued delete; how many are still running when ``timeout`` ends."""
        deleter = self._deleter
        if deleter is None or deleter.wait(timeout):
            return 0
        return deleter.pending


def _is_slowdown(exc: BaseException) -> bool:
    """Tigris rate-limits bucket creation with 503 SlowDown: the pool backs off and retries."""
    text = str(exc)
    return "SlowDown" in text or "503" in text or "reduce your request rate" in text


def _check_readable(folder: Path) -> None:
    """Fail with the file's name before the emulator starts (it would only say that it did
    not start): the folder is walked as the emulator will walk it (symbolic links followed,
    ``.git`` and other clutter skipped), and every file it would load is opened."""
    from .emulator.errors import InvalidSeedFolder
    from .emulator.seedfolder import read_seed_folder

    try:
        objects = read_seed_folder(folder)
    except InvalidSeedFolder as exc:
        raise TigrisConfigError(f"--tigris-seed-dir: {exc.message}") from None
    for item in objects:
        try:
            with open(item.path, "rb"):
                pass
        except OSError as exc:
            raise TigrisConfigError(
                f"--tigris-seed-dir {folder}: cannot read {item.key} "
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
    text = _one_line(str(exc))
    message = f": {text}" if text else ""
    return f"{hook} raised {type(exc).__name__}{message}{where}: fix the hook"


def _one_line(text: str, limit: int = 400) -> str:
    """An exception's message on one line: its lines joined by ``; `` (by a space after a
    line ending in ``:``, which runs on), whitespace collapsed, cut at ``limit`` characters.

    botocore's ParamValidationError, say, says what is wrong on its second line.
    """
    joined = ""
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        if joined:
            joined += " " if joined.endswith(":") else "; "
        joined += line
    if len(joined) > limit:
        joined = joined[: limit - 3].rstrip() + "..."
    return joined


def await_all(results: list[Any]) -> None:
    """Run the coroutines ``async def`` hook implementations returned (pluggy only calls them)."""
    for result in results:
        if inspect.iscoroutine(result):
            _run_coroutine(result)


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run ``coroutine`` to the end: here, or in a thread of its own when this thread already
    runs an event loop (which cannot be re-entered). Its exception is raised here, with the
    traceback starting at the coroutine, so errors point at the hook's own line."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:
            errors.append(exc)

    if running:
        import threading

        thread = threading.Thread(target=run, name="pytest-tigris-populate-seed")
        thread.start()
        thread.join()
    else:
        run()
    if errors:
        error = errors[0]
        raise error.with_traceback(_from_coroutine(error.__traceback__, coroutine)) from None


def _from_coroutine(tb: TracebackType | None, coroutine: Any) -> TracebackType | None:
    """``tb`` from the coroutine's own frame on, without asyncio's frames (all of it when the
    coroutine's frame is not in it)."""
    code = getattr(coroutine, "cr_code", None)
    entry = tb
    while entry is not None:
        if entry.tb_frame.f_code is code:
            return entry
        entry = entry.tb_next
    return tb
