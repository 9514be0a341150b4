"""Running the emulator: in a thread of this process, or as its own process.

The plugin always uses :class:`EmulatorProcess`: moto's state is process-global, so an
in-process server is wiped by any test that uses ``mock_aws``.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["READY_PREFIX", "EmulatorProcess", "EmulatorServer", "EmulatorStartError"]

READY_PREFIX = "READY "
ACCESS_KEY_ENV = "PYTEST_TIGRIS_EMULATOR_ACCESS_KEY"
SECRET_KEY_ENV = "PYTEST_TIGRIS_EMULATOR_SECRET_KEY"
# Seconds a connection may stay silent (mid-request or idle between requests) before the
# server drops it; the environment variable exists for tests of that limit.
SOCKET_TIMEOUT_ENV = "PYTEST_TIGRIS_EMULATOR_SOCKET_TIMEOUT"
SOCKET_TIMEOUT = 30.0


class EmulatorStartError(RuntimeError):
    """The emulator process did not come up."""


class EmulatorServer:
    """The emulator on its HTTP/1.1 keep-alive server in a background thread of this process.

    ``port=0`` binds a free port; :attr:`endpoint_url` tells which.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: str | None = None,
        seed_dir: str | os.PathLike[str] | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        faults: str | None = None,
        latency: float = 0.0,
        persist: str | os.PathLike[str] | None = None,
    ) -> None:
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        if seed_dir is not None and seed is None:
            raise ValueError("seed_dir needs a seed bucket name")
        self.host = host
        self.port = port
        self.seed = seed
        self.seed_dir = Path(seed_dir) if seed_dir is not None else None
        self.keys = {access_key: secret_key} if access_key and secret_key else None
        self.faults = faults
        # Seconds added to every request: a stand-in for the network between CI and Tigris.
        self.latency = latency
        # A folder the state is saved to and restored from (None: memory only).
        self.persist = Path(persist) if persist is not None else None
        self.restored = False
        self.seeded_objects = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._saver: _Saver | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        from .httpserver import EmulatorHTTPServer
        from .models import TigrisBackend
        from .responses import Faults, TigrisMiddleware

        _quiet()
        from moto.moto_server.werkzeug_app import create_backend_app

        backend = TigrisBackend()
        if self.persist is not None:
            from .persist import PersistentState

            state = PersistentState(self.persist)
            self.persist.mkdir(parents=True, exist_ok=True)
            self.restored = state.load(backend)
            self._saver = _Saver(state, backend)
        if self.seed is not None and not (self.restored and backend.exists(self.seed)):
            # A restored seed is kept as it was saved: reloading its folder would stack new
            # versions on it at every start.
            self.seeded_objects = backend.load_seed(self.seed, self.seed_dir)
        moto_app = create_backend_app("s3")
        app = TigrisMiddleware(
            moto_app,
            backend,
            keys=self.keys,
            faults=Faults.parse(self.faults),
            virtual_bases=_virtual_bases(self.host),
            on_change=self._saver.changed if self._saver is not None else None,
        )
        moto_app.request_class = _raw_body_request(moto_app.request_class)
        self._server = EmulatorHTTPServer(
            (self.host, self.port),
            app,
            socket_timeout=_socket_timeout(),
            latency=self.latency,
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="tigris-emulator",
            daemon=True,
        )
        self._thread.start()
        if self._saver is not None:
            self._saver.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._saver is not None:
            self._saver.stop()  # the final save, once no request can change anything
            self._saver = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _raw_body_request(base: type) -> type:
    class RawBodyRequest(base):  # type: ignore[misc, valid-type]
        """Gives moto the raw request body whatever the Content-Type.

        moto reads werkzeug's ``request.data`` (or, before 5.2.5, ``request.body`` when a
        request has one), which is empty for a form content type: a PUT sent as
        ``application/x-www-form-urlencoded`` (urllib's default) would store no bytes. Form
        parsing still works afterwards, from the cached body.
        """

        @property
        def data(self) -> bytes:
            return self._raw()

        @property
        def body(self) -> bytes:
            return self._raw()

        def _raw(self) -> bytes:
            # The middleware has read the body already (in chunks, before any lock).
            read = self.environ.get("pytest_tigris.body")
            return bytes(read) if read is not None else bytes(self.get_data(cache=True))

    return RawBodyRequest


class _Saver:
    """Saves a persisted emulator's state shortly after each change (debounced)."""

    def __init__(self, state: Any, backend: Any, delay: float = 0.2) -> None:
        self._state = state
        self._backend = backend
        self._delay = delay
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tigris-persist", daemon=True)

    def changed(self) -> None:
        self._changed.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()
        self._thread.join(timeout=60)
        self._save()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._changed.wait()
            if self._stopping.is_set():
                return
            time.sleep(self._delay)
            self._changed.clear()
            self._save()

    def _save(self) -> None:
        try:
            self._state.save(self._backend)
        except Exception as exc:  # a failed save must not stop the emulator; say it
            print(f"pytest-tigris emulator: could not save the state: {exc}", file=sys.stderr)


def _socket_timeout() -> float:
    raw = os.environ.get(SOCKET_TIMEOUT_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return SOCKET_TIMEOUT
    return value if value > 0 else SOCKET_TIMEOUT


def _virtual_bases(host: str) -> set[str]:
    """Host names under which ``bucket.<name>`` is virtual-host addressing (always
    ``localhost``; also the name the emulator was bound to, when it is not an address)."""
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return {"localhost", host.lower()}
    return {"localhost"}


def _quiet() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=ResourceWarning)


class EmulatorProcess:
    """The emulator as a child process (``python -m pytest_tigris emulator``).

    The child exits by itself when this process dies (it watches our pid), so a crashed or
    killed test run never leaves an emulator behind.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: str | None = None,
        seed_dir: str | os.PathLike[str] | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        faults: str | None = None,
        latency: float = 0.0,
        persist: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        parent_pid: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        watched = os.getpid() if parent_pid is None else parent_pid
        args = ["--host", host, "--port", str(port), "--parent-pid", str(watched)]
        if seed is not None:
            args += ["--seed", seed]
        if seed_dir is not None:
            args += ["--seed-dir", os.fspath(seed_dir)]
        # The keys travel in the child's environment: a command line is visible in ``ps``.
        self._key_env: dict[str, str] = {}
        if access_key is not None and secret_key is not None:
            self._key_env = {ACCESS_KEY_ENV: access_key, SECRET_KEY_ENV: secret_key}
        if faults:
            args += ["--faults", faults]
        if latency:
            args += ["--latency", f"{latency * 1000:g}ms"]
        if persist is not None:
            args += ["--persist", os.fspath(persist)]
        self.args = args
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path is not None else None
        self.endpoint_url = ""
        self.process: subprocess.Popen[str] | None = None
        self._launched = 0.0

    def start(self) -> EmulatorProcess:
        """Start the process and wait until it serves."""
        return self.launch().wait_ready()

    def launch(self) -> EmulatorProcess:
        """Start the process without waiting (it takes most of a second to import moto: the
        caller may get on with its own work, then call :meth:`wait_ready`)."""
        command = [sys.executable, "-m", "pytest_tigris", "emulator", *self.args]
        env = dict(os.environ)
        env.pop(ACCESS_KEY_ENV, None)
        env.pop(SECRET_KEY_ENV, None)
        env.update(self._key_env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # With a log file the child outlives the reader of its pipes safely (an xdist worker
        # may start it and exit before the run ends; the controller stops it).
        log = open(self.log_path, "a", encoding="utf-8") if self.log_path else None  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log if log is not None else subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
        finally:
            if log is not None:
                log.close()
        self._launched = time.monotonic()
        return self

    def wait_ready(self) -> EmulatorProcess:
        """Wait for the READY line (``startup_timeout`` from :meth:`launch`); raise
        :class:`EmulatorStartError` with the process's last words if it does not come."""
        assert self.process is not None and self.process.stdout is not None
        deadline = self._launched + self.startup_timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith(READY_PREFIX):
                    self.endpoint_url = line[len(READY_PREFIX) :].strip()
                    return self
                if not line and self.process.poll() is not None:
                    break
            elif self.process.poll() is not None:
                break
        stderr = ""
        if self.process.poll() is None:
            self.process.kill()
        if self.process.stderr is not None:
            stderr = self.process.stderr.read().strip()
        elif self.log_path is not None and self.log_path.exists():
            stderr = self.log_path.read_text(encoding="utf-8").strip()
        self.process.wait()
        last = stderr.splitlines()[-1] if stderr else "no output"
        raise EmulatorStartError(f"the Tigris emulator did not start: {last}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        self.process = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _watch_parent(pid: int, stop: threading.Event) -> None:
    # The watched process need not be our parent (an xdist worker may start the emulator for
    # the controller); when it is, being re-parented also means it died.
    was_parent = os.getppid() == pid
    while not stop.wait(0.5):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop.set()
            return
        except PermissionError:
            pass
        if was_parent and os.getppid() != pid:
            stop.set()
            return


def serve(
    *,
    host: str,
    port: int,
    seed: str | None,
    seed_dir: str | None,
    access_key: str | None,
    secret_key: str | None,
    faults: str | None,
    parent_pid: int | None,
    latency: float = 0.0,
    persist: str | None = None,
    out: Any = None,
) -> int:
    """Run the emulator in the foreground until SIGINT/SIGTERM (or the parent's death)."""
    out = out or sys.stdout
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    server = EmulatorServer(
        host,
        port,
        seed=seed,
        seed_dir=seed_dir,
        access_key=access_key,
        secret_key=secret_key,
        faults=faults,
        latency=latency,
        persist=persist,
    )
    try:
        server.start()
        if parent_pid:
            threading.Thread(target=_watch_parent, args=(parent_pid, stop), daemon=True).start()
        if server.restored:
            print(f"state restored from {persist}", file=sys.stderr)
        if seed and server.restored and not server.seeded_objects:
            print(
                f"seed bucket {seed}: kept as restored (--seed-dir not reloaded)", file=sys.stderr
            )
        elif seed:
            print(f"seed bucket {seed}: {server.seeded_objects} objects loaded", file=sys.stderr)
        print(f"{READY_PREFIX}{server.endpoint_url}", file=out, flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
