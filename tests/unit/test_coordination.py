"""Run leases: a zombie or a reused pid is not a live run, and dead runs' folders go."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_tigris import coordination
from pytest_tigris.coordination import (
    LEASE_FILE,
    Lease,
    RunContext,
    pid_alive,
    process_start_time,
    remove_dead_run_dirs,
)

LINUX = Path("/proc/self/stat").exists()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child killed with SIGKILL and deliberately not reaped (waited for): a zombie."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while LINUX and _state(child.pid) != "Z":
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.01)
        if not LINUX:
            time.sleep(0.5)
        os.kill(child.pid, 0)  # the kernel still has it: kill(pid, 0) alone says alive
        yield child.pid
    finally:
        child.wait(10)


@pytest.fixture
def sleeper() -> Iterator[int]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait(10)


def test_a_zombie_is_not_alive(zombie: int) -> None:
    assert pid_alive(zombie) is False


def test_a_zombie_is_not_alive_without_proc(
    zombie: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The portable path (macOS, BSD): ps tells the state.
    monkeypatch.setattr(coordination, "_PROC", tmp_path / "no-proc")
    assert pid_alive(zombie) is False


def test_a_reused_pid_is_not_alive(sleeper: int) -> None:
    started = process_start_time(sleeper)
    assert started is not None
    assert pid_alive(sleeper, started) is True
    assert pid_alive(sleeper) is True
    # The same pid, but a process that started at another time: a later process reused it.
    assert pid_alive(sleeper, started + "0") is False
    assert process_start_time(os.getpid()) != started


def test_a_reused_pid_is_not_alive_without_proc(
    sleeper: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(coordination, "_PROC", tmp_path / "no-proc")
    started = process_start_time(sleeper)
    assert started is not None and started.startswith("ps:")
    assert pid_alive(sleeper, started) is True
    assert pid_alive(sleeper, "ps:Thu Jan  1 00:00:00 1970") is False


def test_gone_processes_are_not_alive(sleeper: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(10)
    assert pid_alive(child.pid) is False
    assert process_start_time(child.pid) is None
    assert pid_alive(0) is False


def _run_dir(root: Path, run: str, pid: int, **lease: object) -> Path:
    folder = root / f"pytest-tigris-{run}-{pid}"
    folder.mkdir()
    (folder / "forks-m.log").write_text("x-run-m-0\n")
    if lease:
        (folder / LEASE_FILE).write_text(json.dumps(lease))
    return folder


def test_the_next_run_removes_folders_of_dead_runs(
    tmp_path: Path, zombie: int, sleeper: int
) -> None:
    here = os.getpid()
    started = process_start_time(here)
    host = coordination._hostname()
    zombie_run = _run_dir(tmp_path, "zombierun", zombie, started=process_start_time(zombie))
    reused = _run_dir(tmp_path, "reusedrun", sleeper, started="other", host=host)
    live = _run_dir(tmp_path, "liverun", here, started=started, host=host)
    old_style = _run_dir(tmp_path, "oldrun", here)  # no lease file: the pid alone decides
    elsewhere = _run_dir(tmp_path, "remoterun", sleeper, started="other", host=host + "-x")
    unrelated = tmp_path / "pytest-tigris-notarun"
    unrelated.mkdir()

    run = RunContext("newrun", "m", here, tmp_path / f"pytest-tigris-newrun-{here}")
    run.log_fork("seed-newrun-m-0")  # the first use creates the run's folder

    assert not zombie_run.exists() and not reused.exists()
    assert live.is_dir() and old_style.is_dir() and elsewhere.is_dir() and unrelated.is_dir()
    lease = Lease.read(run.shared_dir)
    assert lease is not None
    assert (lease.run_id, lease.pid, lease.started, lease.host) == ("newrun", here, started, host)
    assert lease.alive() is True
    assert remove_dead_run_dirs(tmp_path) == []


def test_a_worker_writes_the_controllers_start_time(tmp_path: Path, sleeper: int) -> None:
    run = RunContext("wrun", "gw0", sleeper, tmp_path / f"pytest-tigris-wrun-{sleeper}")
    run.log_fork("seed-wrun-gw0-0")
    lease = json.loads((run.shared_dir / LEASE_FILE).read_text())
    assert lease["pid"] == sleeper
    assert lease["started"] == process_start_time(sleeper)
