"""Run-wide coordination between the controller, xdist workers and the end-of-run sweep.

The controller (or the single pytest process) owns the run id and the shared directory and
hands them to workers. Things created lazily on first use (the emulator process, the seed,
the pinned snapshot) are recorded in a FileLock'd JSON registry there, so exactly one process
makes each. Every process appends the names of the forks it is about to create to its own log
file there, so the controller can delete whatever a crashed worker left behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SHARED_DIR_PREFIX", "RunContext", "pid_alive", "shared_dir_for"]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


SHARED_DIR_PREFIX = "pytest-tigris-"


def shared_dir_for(run_id: str, controller_pid: int) -> Path:
    """The run's shared directory (created on first use, removed by the controller).

    Its name is the run's lease: while the controller pid in it is alive, ``pytest-tigris
    sweep`` leaves the run's forks alone.
    """
    return Path(tempfile.gettempdir()) / f"{SHARED_DIR_PREFIX}{run_id}-{controller_pid}"


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
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        return self.shared_dir

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
