"""No fork outlives its run: the cleanup layers, measured from the outside (issue 4, item 1).

Each test starts its own standalone emulator (a stand-in for Tigris, so whatever a run leaves
behind stays visible after it) and runs inner suites (``tests.inner``): in-process when nothing
is interrupted, otherwise as real ``pytest`` processes, each in a process group of its own so it
can be interrupted, killed and always reaped. After a passing
run, failing tests, a broken fixture, SIGINT/SIGTERM of the controller and SIGKILL of a worker,
the endpoint must hold the seed and nothing else. After SIGKILL of the controller,
``pytest-tigris sweep --older-than 0s`` takes what the dead run left and nothing of a live one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tigris_boto3_ext as tx

from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.naming import parse_fork_name
from tests.helpers import make_client
from tests.inner import Inner, inner_command, inner_environ

SEED = "cleanup-seed"
SEED_OBJECTS = {"manifest.json": b'{"n": 2}', "data/a.txt": b"alpha\n", "data/b.txt": b"bravo\n"}
XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
SUMMARY = re.compile(r"forks: (\d+) created, (\d+) deleted, (\d+) kept, (\d+) leaked")
HOLD_LIMIT = 60  # seconds an inner test waits to be released before it ends by itself
RUN_TIMEOUT = 120  # seconds any inner run may take
INNER_HELPERS = f'''
"""What the inner tests tell the outer test, and how they wait for it."""
import os
import pathlib
import time

OUT = pathlib.Path(os.environ["CLEANUP_OUT"])


def record(fork, what="fork"):
    """Leave the fork's name (file name) and this process's pid (contents) for the outer test."""
    (OUT / f"{{fork.name}}.{{what}}").write_text(str(os.getpid()))


def hold():
    """Stay in the test until the outer test releases it ({HOLD_LIMIT} s at most)."""
    deadline = time.monotonic() + {HOLD_LIMIT}
    while time.monotonic() < deadline and not (OUT / "release").exists():
        time.sleep(0.05)
'''

# -- inner suites ---------------------------------------------------------------------------
PASSING = """
import pytest
from cleanuphelpers import record


@pytest.mark.parametrize("i", range(6))
def test_fork(tigris_fork, i):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key=f"k{i}", Body=b"x")
    record(tigris_fork)


def test_bucket(tigris_bucket):
    tigris_bucket.client.put_object(Bucket=tigris_bucket.name, Key="b", Body=b"x")
    record(tigris_bucket)


def test_factory(tigris_fork_factory):
    parent = tigris_fork_factory.fork()
    child = tigris_fork_factory.fork(source=parent.name)
    record(parent)
    record(child)
"""

FAILING = """
import pytest
from cleanuphelpers import record


@pytest.mark.parametrize("i", range(6))
def test_fork(tigris_fork, i):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key=f"k{i}", Body=b"x")
    record(tigris_fork)
    assert i % 2 == 0, "fails on purpose"


def test_raises(tigris_fork):
    record(tigris_fork)
    raise RuntimeError("fails on purpose")


def test_bucket(tigris_bucket):
    record(tigris_bucket)
    assert False, "fails on purpose"


def test_factory(tigris_fork_factory):
    parent = tigris_fork_factory.fork()
    child = tigris_fork_factory.fork(source=parent.name)
    record(parent)
    record(child)
    assert False, "fails on purpose"
"""

FIXTURE_ERROR = """
import pytest
from cleanuphelpers import record


@pytest.fixture
def broken_setup(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="k", Body=b"x")
    record(tigris_fork)
    raise RuntimeError("setup fails on purpose")


@pytest.fixture
def broken_teardown(tigris_fork):
    record(tigris_fork)
    yield tigris_fork
    raise RuntimeError("teardown fails on purpose")


@pytest.fixture(scope="module")
def broken_module(tigris_fork_factory):
    record(tigris_fork_factory.fork())
    raise RuntimeError("module fixture fails on purpose")


@pytest.mark.parametrize("i", range(3))
def test_setup_error(broken_setup, i):
    pass


@pytest.mark.parametrize("i", range(3))
def test_teardown_error(broken_teardown, i):
    pass


def test_module_error(broken_module):
    pass
"""

SUITES = {
    # suite: (source, exit code)
    "passing": (PASSING, pytest.ExitCode.OK),
    "failing": (FAILING, pytest.ExitCode.TESTS_FAILED),
    "fixture-error": (FIXTURE_ERROR, pytest.ExitCode.TESTS_FAILED),
}

HOLDING = """
import pytest
from cleanuphelpers import hold, record


@pytest.mark.parametrize("i", range(4))
def test_held(tigris_fork, i):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="k", Body=b"x")
    record(tigris_fork)
    hold()
"""

VICTIM = """
import pytest
from cleanuphelpers import hold, record


def test_victim(tigris_fork):
    record(tigris_fork, "victim")
    hold()


@pytest.mark.parametrize("i", range(8))
def test_quick(tigris_fork, i):
    record(tigris_fork)
"""


# -- outer helpers --------------------------------------------------------------------------
@dataclass
class Endpoint:
    """A standalone emulator holding only the seed when a test starts."""

    url: str
    s3: Any

    def buckets(self) -> set[str]:
        return {b["Name"] for b in self.s3.list_buckets()["Buckets"]}

    def forks(self, run_id: str | None = None) -> set[str]:
        """Live forks of the seed (of one run, when given)."""
        names = {entry["name"] for entry in tx.list_forks(self.s3, SEED)["buckets"]}
        return {n for n in names if run_id is None or f"-{run_id}-" in n}

    def assert_clean(self, context: str = "") -> None:
        """Only the seed is left: no fork of it and no other bucket."""
        assert self.forks() == set(), context
        assert self.buckets() == {SEED}, context


@dataclass
class Run:
    """An inner pytest run in progress: a process group of its own, output in a file."""

    process: subprocess.Popen[bytes]
    log: Path
    out: Path
    run_id: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def recorded(self, what: str = "fork") -> dict[str, int]:
        return recorded(self.out, what)

    def release(self) -> None:
        (self.out / "release").touch()

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the inner run did not end within {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL every process of the run's group, and reap the controller."""
        # The group id is the controller's pid, ours while the controller is unreaped or the
        # group has members; after that the pid may be reused, so leave it alone.
        if self.process.returncode is None or self.group_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def group_alive(self) -> bool:
        return group_alive(self.pid)

    def summary(self) -> tuple[int, int, int, int]:
        """``(created, deleted, kept, leaked)`` from the run's tigris summary line."""
        found = SUMMARY.findall(self.output())
        assert len(found) == 1, self.output()
        created, deleted, kept, leaked = (int(g) for g in found[0])
        return created, deleted, kept, leaked


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies, dead but unreaped, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError, IndexError):
            continue
        if int(group) == pgid and state != "Z":
            return True
    return False


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def endpoint_env(endpoint: Endpoint, out: Path | None = None) -> dict[str, str]:
    """The variables that point an inner run at ``endpoint`` (and its tests at ``out``)."""
    env = {
        "AWS_ENDPOINT_URL_S3": endpoint.url,
        "AWS_ACCESS_KEY_ID": "cleanup-key",
        "AWS_SECRET_ACCESS_KEY": "cleanup-secret",
        "PYTEST_TIGRIS_SEED": SEED,
    }
    if out is not None:
        env["CLEANUP_OUT"] = str(out)
    return env


def inner_env(
    endpoint: Endpoint, out: Path | None = None, tmpdir: Path | None = None
) -> dict[str, str]:
    """The outer environment without its AWS/pytest/CI settings, pointed at ``endpoint``; with
    ``tmpdir`` as the temp dir, where runs keep their folders and the sweep looks for them."""
    env = inner_environ(**endpoint_env(endpoint, out))
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return env


def recorded(out: Path, what: str = "fork") -> dict[str, int]:
    """Fork name -> pid of the process that used it, as the inner tests recorded them."""
    found = {}
    for path in out.glob(f"*.{what}"):
        text = path.read_text(encoding="utf-8")
        if text:  # a file still being written has no pid yet
            found[path.name[: -len(what) - 1]] = int(text)
    return found


@dataclass
class Runner:
    """Starts inner runs of one project against one endpoint; kills whatever is left after.

    The runs and the sweep share a temp dir of their own: any other pytest-tigris run on the
    machine removes the folders of runs that died (in the shared temp dir), which would race
    with a test that kills a run and then sweeps.
    """

    project: Path
    endpoint: Endpoint
    tmpdir: Path
    runs: list[Run] = field(default_factory=list)

    def write(self, suite: str) -> None:
        (self.project / "test_inner.py").write_text(suite, encoding="utf-8")

    def start(self, *args: str, n: int = 0) -> Run:
        name = f"run{len(self.runs)}"
        out = self.project.parent / f"{name}-out"
        out.mkdir()
        log = self.project.parent / f"{name}.log"
        run_id = uuid.uuid4().hex[:8]
        command = inner_command("--tigris-run-id", run_id, *args, n=n)
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                command,
                cwd=self.project,
                env=inner_env(self.endpoint, out, self.tmpdir),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        run = Run(process, log, out, run_id)
        self.runs.append(run)
        return run

    def sweep(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``pytest-tigris sweep`` as its own process, pointed at the endpoint."""
        return subprocess.run(
            [sys.executable, "-m", "pytest_tigris", "sweep", *args],
            env=inner_env(self.endpoint, tmpdir=self.tmpdir),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def close(self) -> None:
        for run in self.runs:
            run.kill()
            # A controller killed outright leaves its run folder behind: remove it.
            for folder in self.tmpdir.glob(f"pytest-tigris-{run.run_id}-*"):
                shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    """An emulator of this test's own, so every leftover bucket is this test's."""
    seed_dir = tmp_path / "seed"
    for key, data in SEED_OBJECTS.items():
        path = seed_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with EmulatorProcess(seed=SEED, seed_dir=seed_dir) as process:
        yield Endpoint(process.endpoint_url, make_client(process.endpoint_url))


@pytest.fixture
def runner(tmp_path: Path, endpoint: Endpoint) -> Iterator[Runner]:
    project = tmp_path / "project"
    project.mkdir()
    # An ini file of its own, so the inner rootdir never climbs into an outer configuration.
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (project / "cleanuphelpers.py").write_text(INNER_HELPERS, encoding="utf-8")
    runner = Runner(project, endpoint, tmp_path / "tmp")
    runner.tmpdir.mkdir()
    try:
        yield runner
    finally:
        runner.close()
        wait_until(
            lambda: not any(run.group_alive() for run in runner.runs), 10, "inner processes to die"
        )


def wait_for_tests(run: Run, count: int, what: str = "fork") -> dict[str, int]:
    """Wait until ``count`` inner tests of ``run`` recorded their fork (fork name -> pid)."""

    def check() -> dict[str, int]:
        if run.process.poll() is not None:
            pytest.fail(f"the inner run ended early:\n{run.output()}")
        found = run.recorded(what)
        return found if len(found) >= count else {}

    found: dict[str, int] = wait_until(check, 60, f"{count} inner test(s) to record a {what}")
    return found


# -- (a) passing, (b) failing, (c) broken fixtures ------------------------------------------
@XDIST
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_no_fork_is_left_after_a_run(inner: Inner, endpoint: Endpoint, suite: str, n: int) -> None:
    source, code = SUITES[suite]
    out = inner.pytester.mkdir("out")
    inner.pytester.makepyfile(cleanuphelpers=INNER_HELPERS, test_inner=source)

    # Nothing is interrupted or killed here: the run can be in-process.
    result = inner.run(n=n, env=endpoint_env(endpoint, out))

    assert result.ret == code, result.text
    made = recorded(out)
    assert made and all(parse_fork_name(name) for name in made), made
    # Every fork a test got is counted once and deleted by its own process (ready forks made
    # ahead and never used are not counted).
    assert result.fork_summary() == (len(made), len(made), 0, 0)
    endpoint.assert_clean(result.text)


# -- (d) SIGINT and (e) SIGTERM of the controller mid-run -----------------------------------
@XDIST
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_no_fork_is_left_after_the_controller_is_interrupted(
    runner: Runner, endpoint: Endpoint, sig: signal.Signals, n: int
) -> None:
    runner.write(HOLDING)
    run = runner.start(n=n)
    held = wait_for_tests(run, max(n, 1))
    assert set(held) <= endpoint.forks(run.run_id)

    os.kill(run.pid, sig)
    code = run.wait()

    assert code == pytest.ExitCode.INTERRUPTED, run.output()
    wait_until(lambda: not run.group_alive(), 30, "the workers to exit")
    endpoint.assert_clean(run.output())


# -- (f) SIGKILL of one xdist worker mid-test -----------------------------------------------
@pytest.mark.parametrize("pool", ["0", "2"])
def test_no_fork_is_left_after_a_worker_is_killed_mid_test(
    runner: Runner, endpoint: Endpoint, pool: str
) -> None:
    runner.write(VICTIM)
    run = runner.start(f"--tigris-pool={pool}", n=2)
    ((fork, pid),) = wait_for_tests(run, 1, "victim").items()
    assert pid != run.pid
    assert fork in endpoint.forks(run.run_id)

    os.kill(pid, signal.SIGKILL)
    code = run.wait()

    output = run.output()
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert "crashed" in output, output
    assert re.search(r"\b8 passed\b", output), output
    assert len(run.recorded()) == 8
    # The dead worker never tore its fork down: the controller's end-of-run sweep did (with
    # the pool, also the ready forks the dead worker held, however many it had made).
    if pool == "0":
        assert run.summary()[3] == 1, output
    endpoint.assert_clean(output)


# -- (g) SIGKILL of the controller, then `pytest-tigris sweep` ------------------------------
@XDIST
def test_sweep_after_the_controller_is_killed_takes_the_dead_run_only(
    runner: Runner, endpoint: Endpoint, n: int
) -> None:
    runner.write(HOLDING)
    dead = runner.start(n=n)
    alive = runner.start()
    wait_for_tests(dead, max(n, 1))
    alive_forks = set(wait_for_tests(alive, 1))
    assert alive_forks <= endpoint.forks(alive.run_id)

    os.kill(dead.pid, signal.SIGKILL)
    dead.process.wait(10)
    # Its workers notice the closed channel and exit on their own.
    wait_until(lambda: not dead.group_alive(), 60, "the dead controller's workers to exit")
    leaked = endpoint.forks(dead.run_id)
    if n == 0:
        assert leaked, "SIGKILL of a lone pytest process leaves its forks (nothing can run)"
    swept = runner.sweep("--older-than", "0s")

    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert endpoint.forks(dead.run_id) == set(), swept.stdout
    for name in leaked:
        assert f"deleted {name}" in swept.stdout
    # The live run keeps every fork, and says why.
    assert alive.process.poll() is None, alive.output()
    assert alive_forks <= endpoint.forks(alive.run_id)
    for name in alive_forks:
        assert f"kept {name}: its run is still going" in swept.stdout, swept.stdout

    alive.release()
    assert alive.wait() == pytest.ExitCode.OK, alive.output()
    endpoint.assert_clean(alive.output())
