"""Run-wide coordination between the controller, xdist workers and the end-of-run sweep.

The controller (or the single pytest process) owns the run id and the shared directory and
hands them to workers. Things created lazily on first use (the emulator process, the seed,
the pinned snapshot) are recorded in a FileLock'd JSON registry there, so exactly one process
makes each. Every process appends the names of the forks it is about to create to its own log
file there, so the controller can delete whatever a crashed worker left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LEASE_FILE",
    "SHARED_DIR_PREFIX",
    "Lease",
    "RunContext",
    "pid_alive",
    "process_start_time",
    "remove_dead_run_dirs",
    "run_leases",
    "shared_dir_for",
    "terminate",
]


_PROC = Path("/proc")


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of ``pid`` from ``/proc/PID/stat``; None when it is gone.

    Raises OSError when ``/proc`` cannot tell (not Linux, or hidden by ``hidepid``).
    """
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ... starttime(22) ...": comm may hold spaces and parentheses.
    fields = text.rsplit(")", 1)[-1].split()
    if len(fields) < 20:
        raise OSError(f"unexpected /proc/{pid}/stat")
    return fields[0], fields[19]


def _boot_id() -> str:
    # Start times count clock ticks since boot: the same count after a reboot is another process.
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _hostname() -> str:
    import socket  # here: the plugin module (and so this one) is imported by every pytest run

    return socket.gethostname()


def _ps(pid: int, column: str) -> str | None:
    """One ``ps`` column for ``pid`` (macOS, BSD), None when the process is gone or ps fails."""
    import subprocess

    try:
        result = subprocess.run(
            ["ps", "-o", f"{column}=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value else None


def process_start_time(pid: int) -> str | None:
    """An opaque token for when ``pid`` started (None if unknown): a pid reused by another
    process gets another token."""
    if _PROC.is_dir():
        try:
            stat = _proc_stat(pid)
        except OSError:
            stat = None
        else:
            return f"{_boot_id()}:{stat[1]}" if stat else None
    started = _ps(pid, "lstart")
    return f"ps:{started}" if started else None


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` runs: a zombie (killed, not yet reaped by its parent) does
    not, nor does a later process that reused the pid when ``started`` (from
    :func:`process_start_time`) is given. A process of another user counts as alive."""
    if pid <= 0:
        return False
    if _PROC.is_dir():
        try:
            stat = _proc_stat(pid)
        except OSError:
            stat = None
        if stat is not None:
            if stat[0] in ("Z", "X", "x"):
                return False
            return started is None or started == f"{_boot_id()}:{stat[1]}"
        # Not in /proc: gone, or hidden (hidepid) and then only the kernel can tell.
        return _exists(pid)
    if not _exists(pid):
        return False
    if sys.platform == "win32":
        return True  # no ps to ask: existence is all we know
    state = _ps(pid, "stat")
    if state is not None and state.startswith("Z"):
        return False
    return started is None or process_start_time(pid) in (started, None)


SHARED_DIR_PREFIX = "pytest-tigris-"
LEASE_FILE = "lease.json"
_RUN_DIR = re.compile(r"^pytest-tigris-(?P<run>[a-z0-9]{1,10})-(?P<pid>\d{1,10})$")


def shared_dir_for(run_id: str, controller_pid: int) -> Path:
    """The run's shared directory (created on first use, removed by the controller).

    It is the run's lease: while its controller runs, ``pytest-tigris sweep`` leaves the run's
    forks and snapshots alone. ``lease.json`` in it records when the controller started, so a
    later process that reuses the pid does not keep a dead run alive.
    """
    return Path(tempfile.gettempdir()) / f"{SHARED_DIR_PREFIX}{run_id}-{controller_pid}"


@dataclass(frozen=True)
class Lease:
    """A run folder ``pytest-tigris-<run>-<pid>`` in the temp dir, and what it says."""

    folder: Path
    run_id: str
    pid: int
    started: str | None
    host: str | None

    @classmethod
    def read(cls, folder: Path) -> Lease | None:
        """The lease of ``folder``, or None when it is not a run folder."""
        match = _RUN_DIR.match(folder.name)
        if match is None or folder.is_symlink() or not folder.is_dir():
            return None
        data: dict[str, Any] = {}
        try:
            loaded = json.loads((folder / LEASE_FILE).read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                data = loaded
        except (OSError, ValueError):
            pass  # written by an older version, or not yet: the pid is all there is
        started, host = data.get("started"), data.get("host")
        return cls(
            folder=folder,
            run_id=match["run"],
            pid=int(match["pid"]),
            started=started if isinstance(started, str) else None,
            host=host if isinstance(host, str) else None,
        )

    def alive(self) -> bool:
        """Whether the run still goes on: its controller runs (not a zombie, not a reused pid)."""
        if self.host is not None and self.host != _hostname():
            return True  # a temp dir shared with another machine: only that one can tell
        return pid_alive(self.pid, self.started)


def run_leases(tempdir: str | os.PathLike[str] | None = None) -> list[Lease]:
    """Every run folder in the temp dir, live or not."""
    root = Path(tempdir or tempfile.gettempdir())
    found = (Lease.read(folder) for folder in sorted(root.glob(f"{SHARED_DIR_PREFIX}*-*")))
    return [lease for lease in found if lease is not None]


def remove_dead_run_dirs(
    tempdir: str | os.PathLike[str] | None = None, *, keep: Path | None = None
) -> list[Path]:
    """Remove the folders of runs whose controller is gone (killed outright: nothing else
    would); returns them."""
    removed: list[Path] = []
    for lease in run_leases(tempdir):
        if lease.folder != keep and not lease.alive():
            shutil.rmtree(lease.folder, ignore_errors=True)
            if not lease.folder.exists():
                removed.append(lease.folder)
    return removed


@dataclass(frozen=True)
class RunContext:
    """Where this process stands in the run."""

    run_id: str
    worker: str  # "gw0"... under xdist, "m" for the main process
    controller_pid: int
    shared_dir: Path

    @property
    def is_controller(self) -> bool:
        return self.worker == "m"

    @classmethod
    def from_workerinput(cls, workerinput: dict[str, Any] | None, run_id: str) -> RunContext:
        """The context of a worker (from xdist's ``workerinput``) or of the controller."""
        if workerinput is not None and "tigris_run_id" in workerinput:
            return cls(
                run_id=str(workerinput["tigris_run_id"]),
                worker=str(workerinput.get("workerid", "gw0")),
                controller_pid=int(workerinput["tigris_controller_pid"]),
                shared_dir=Path(workerinput["tigris_shared_dir"]),
            )
        pid = os.getpid()
        return cls(
            run_id=run_id, worker="m", controller_pid=pid, shared_dir=shared_dir_for(run_id, pid)
        )

    def workerinput(self) -> dict[str, Any]:
        """What the controller hands each worker."""
        return {
            "tigris_run_id": self.run_id,
            "tigris_controller_pid": self.controller_pid,
            "tigris_shared_dir": str(self.shared_dir),
        }

    # -- the registry ---------------------------------------------------------------------
    def _ensure_dir(self) -> Path:
        if self.shared_dir.is_dir():
            return self.shared_dir
        try:
            self.shared_dir.mkdir(parents=True)
        except FileExistsError:
            return self.shared_dir  # another process of this run made it
        self._write_lease()
        # Runs killed outright never remove their folders: the first to notice does.
        remove_dead_run_dirs(self.shared_dir.parent, keep=self.shared_dir)
        return self.shared_dir

    def _write_lease(self) -> None:
        lease = {
            "pid": self.controller_pid,
            "started": process_start_time(self.controller_pid),
            "host": _hostname(),
        }
        tmp = self.shared_dir / f"{LEASE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(lease), encoding="utf-8")
        tmp.replace(self.shared_dir / LEASE_FILE)

    @contextmanager
    def registry(self) -> Iterator[dict[str, Any]]:
        """The run's registry, locked across processes; changes are saved on exit."""
        from filelock import FileLock

        folder = self._ensure_dir()
        path = folder / "registry.json"
        with FileLock(str(folder / "registry.lock"), timeout=600):
            data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
            yield data
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(path)

    def read_registry(self) -> dict[str, Any]:
        path = self.shared_dir / "registry.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # -- fork logs ------------------------------------------------------------------------
    def log_fork(self, name: str) -> None:
        """Record, before it is created, a fork this process makes."""
        folder = self._ensure_dir()
        with open(folder / f"forks-{self.worker}.log", "a", encoding="utf-8") as log:
            log.write(name + "\n")

    def spare(self, name: str) -> None:
        """Record a bucket the end-of-run sweep must leave alone: a fork kept on purpose
        (``--tigris-keep``), or a name that turned out to be someone else's bucket."""
        folder = self._ensure_dir()
        with open(folder / f"spare-{self.worker}.log", "a", encoding="utf-8") as log:
            log.write(name + "\n")

    def logged_forks(self) -> list[str]:
        """Every fork any process of this run logged and did not spare, oldest first per
        process (a name appears once)."""
        spared = set(self._read_logs("spare-*.log"))
        names = [n for n in self._read_logs("forks-*.log") if n not in spared]
        return list(dict.fromkeys(names))

    def _read_logs(self, pattern: str) -> list[str]:
        names: list[str] = []
        if self.shared_dir.is_dir():
            for log in sorted(self.shared_dir.glob(pattern)):
                names += [n for n in log.read_text(encoding="utf-8").split() if n]
        return names

    # -- per-process results --------------------------------------------------------------
    def write_stats(self, stats: dict[str, Any]) -> None:
        folder = self._ensure_dir()
        (folder / f"stats-{self.worker}.json").write_text(json.dumps(stats))

    def read_stats(self) -> list[dict[str, Any]]:
        if not self.shared_dir.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.shared_dir.glob("stats-*.json"))]


def terminate(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM ``pid``, then SIGKILL it if it has not exited after ``timeout`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
