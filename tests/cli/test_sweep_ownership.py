"""``pytest-tigris sweep`` deletes only what is provably pytest-tigris's, of runs provably over.

Real processes throughout: a standalone emulator stands in for Tigris, the CLI runs as its own
process, and the runs whose leftovers are swept are real inner pytest runs, killed with SIGKILL
and left unreaped (a zombie, as under a CI container without an init). A run that is not
killed, and the snapshot command under late errors, are in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.retries.standard
import pytest
from botocore.config import Config

from pytest_tigris.cli import main
from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import call_with, fork, make_client, snapshot
from tests.inner import NO_RETRY_BACKOFF, Inner, foreign, process_state_kept
from tests.plugin.test_cleanup import (
    INNER_HELPERS,
    SEED,
    SEED_OBJECTS,
    Endpoint,
    Runner,
    endpoint_env,
    inner_env,
    wait_for_tests,
    wait_until,
)

PROJECT = "shop"

HELD = """
from cleanuphelpers import hold, record


def test_held(tigris_bucket, tigris_fork, tigris_fork_factory):
    # A fork of a live fork is made from no snapshot of the run's: it carries a mark instead.
    child = tigris_fork_factory.fork(source=tigris_bucket.name)
    record(tigris_fork)
    record(tigris_bucket)
    record(child)
    hold()
"""


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
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
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (project / "cleanuphelpers.py").write_text(INNER_HELPERS, encoding="utf-8")
    (project / "test_inner.py").write_text(HELD, encoding="utf-8")
    runner = Runner(project, endpoint, tmp_path / "tmp")
    runner.tmpdir.mkdir()
    try:
        yield runner
    finally:
        runner.close()


def cli(
    endpoint: Endpoint, *args: str, tmpdir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process; ``tmpdir``: the temp dir it sees (where runs leave their
    folders), the machine's when None."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_tigris", *args],
        env=inner_env(endpoint, tmpdir=tmpdir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def snapshot_labels(s3: Any, bucket: str) -> list[str]:
    """The names of ``bucket``'s snapshots (``""`` for an unnamed one), sorted."""
    listed = call_with(s3, {"X-Tigris-Snapshot": bucket}, "list_buckets")["Buckets"]
    return sorted(b["Name"].partition("; name=")[2] for b in listed)


def is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def run_folder(runner: Runner, run_id: str) -> Path:
    folders = list(runner.tmpdir.glob(f"pytest-tigris-{run_id}-*"))
    assert len(folders) == 1, folders
    return folders[0]


# -- item 1: named environments and foreign buckets ------------------------------------------
def test_env_named_like_a_test_fork_is_refused_and_such_buckets_are_never_swept(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    s3 = endpoint.s3
    refused = cli(endpoint, "env", "create", "staging-m-1", "--project", PROJECT, "--seed", SEED)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "pytest-tigris: error: environment name 'staging-m-1' gives bucket "
        "'shop-bucket-staging-m-1', which is named like a pytest-tigris test fork (ends in "
        "-m-N or -gwN-N): pick a name that does not end that way"
    ]
    created = cli(endpoint, "env", "create", "staging", "--project", PROJECT, "--seed", SEED)
    assert created.returncode == 0, created.stderr

    # Buckets named like test forks that pytest-tigris did not make: an environment made
    # before names were checked (or by another tool), a fork of the user's own snapshot, a
    # fork of another run's snapshot, a plain bucket.
    nightly = snapshot(s3, SEED, "nightly")
    other_run = snapshot(s3, SEED, "pytest-tigris-otherrun")
    fork(s3, "shop-bucket-staging-m-1", SEED)
    fork(s3, "shop-bucket-qa-gw0-2", SEED, nightly)
    fork(s3, "shop-bucket-qa-m-3", SEED, other_run)
    s3.create_bucket(Bucket="shop-bucket-plain-m-4")
    # A fork of the env that names a run but was marked for another one.
    fork(s3, "shop-bucket-x-m-5", "shop-bucket-staging")
    snapshot(s3, "shop-bucket-x-m-5", "pytest-tigris-otherrun")
    before = endpoint.buckets()

    # A temp dir of its own: no other run's folder is reported.
    swept = cli(endpoint, "sweep", "--older-than", "0s", tmpdir=tmp_path)

    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert endpoint.buckets() == before
    assert sorted(swept.stdout.splitlines()) == [
        f"deleted snapshot pytest-tigris-otherrun ({other_run}) of {SEED}",
        *(
            f"kept shop-bucket-{name}: named like a test fork, but not provably made by "
            "pytest-tigris"
            for name in ("plain-m-4", "qa-gw0-2", "qa-m-3", "staging-m-1", "x-m-5")
        ),
    ]
    # A dead run's snapshot goes (no bucket is named as a fork of that run); the user's stays.
    assert snapshot_labels(s3, SEED) == ["nightly"]


# -- items 1, 2, 3: a killed controller left unreaped, next to a live run ----------------------
def test_sweep_takes_a_zombie_controllers_forks_and_snapshot_only(
    runner: Runner, endpoint: Endpoint
) -> None:
    s3 = endpoint.s3
    env = cli(endpoint, "env", "create", "alice", "--project", PROJECT, "--seed", SEED)
    assert env.returncode == 0, env.stderr
    snapshot(s3, SEED, "nightly")
    # No ready forks made ahead: the live run's buckets are then exactly its tests' forks.
    dead = runner.start("--tigris-pool=0")
    alive = runner.start("--tigris-pool=0")
    dead_forks = set(wait_for_tests(dead, 3))
    alive_forks = set(wait_for_tests(alive, 3))
    assert snapshot_labels(s3, SEED) == sorted(
        ["nightly", f"pytest-tigris-{dead.run_id}", f"pytest-tigris-{alive.run_id}"]
    )
    dead_folder = run_folder(runner, dead.run_id)

    os.kill(dead.pid, signal.SIGKILL)  # and never waited for: a zombie
    wait_until(lambda: is_zombie(dead.pid), 10, "the killed controller to be a zombie")
    swept = runner.sweep("--older-than", "0s")

    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert is_zombie(dead.pid)
    for name in dead_forks:
        assert f"deleted {name}" in swept.stdout, swept.stdout
    for name in alive_forks:
        assert f"kept {name}: its run is still going on this machine" in swept.stdout
    assert endpoint.buckets() == {SEED, "shop-bucket-alice"} | alive_forks
    # The dead run's snapshot went after its forks; the live run's and the user's stay.
    assert snapshot_labels(s3, SEED) == sorted(["nightly", f"pytest-tigris-{alive.run_id}"])
    assert f"deleted snapshot pytest-tigris-{dead.run_id} (" in swept.stdout
    assert not dead_folder.exists()
    assert f"removed {dead_folder}: its run is over" in swept.stdout

    alive.release()
    assert alive.wait() == pytest.ExitCode.OK, alive.output()
    assert endpoint.buckets() == {SEED, "shop-bucket-alice"}
    assert snapshot_labels(s3, SEED) == ["nightly"]
    again = runner.sweep("--older-than", "0s")
    assert again.returncode == 0, again.stderr
    assert endpoint.buckets() == {SEED, "shop-bucket-alice"}


def test_a_reused_pid_does_not_keep_a_dead_run_alive(
    runner: Runner, endpoint: Endpoint, tmp_path: Path
) -> None:
    dead = runner.start()
    dead_forks = set(wait_for_tests(dead, 3))
    folder = run_folder(runner, dead.run_id)
    lease = json.loads((folder / "lease.json").read_text())
    assert lease["pid"] == dead.pid
    os.kill(dead.pid, signal.SIGKILL)
    dead.process.wait(10)
    # The dead controller's pid now belongs to a live process that started later.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        reused = folder.with_name(f"pytest-tigris-{dead.run_id}-{stranger.pid}")
        folder.rename(reused)
        lease["pid"] = stranger.pid
        (reused / "lease.json").write_text(json.dumps(lease))

        swept = runner.sweep("--older-than", "0s")

        assert swept.returncode == 0, swept.stdout + swept.stderr
        assert stranger.poll() is None
        assert endpoint.buckets() == {SEED}, swept.stdout
        for name in dead_forks:
            assert f"deleted {name}" in swept.stdout
        assert snapshot_labels(endpoint.s3, SEED) == []
        assert not reused.exists()
    finally:
        stranger.kill()
        stranger.wait(10)


# -- item 2: a snapshot retried after a late 5xx is taken once -------------------------------
def patient_client(endpoint_url: str) -> Any:
    """A client that sees through the injected faults (reads only)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="auto",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(
            s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 20}
        ),
    )


def test_snapshot_command_takes_one_snapshot_despite_late_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process (the command's process plays no part here), without botocore's sleeps between
    # retries: what is under test is that a retried snapshot is taken once, not the timing.
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0
    )
    with EmulatorProcess(seed=SEED, faults="late=0.4,seed=1") as emulator:
        endpoint = Endpoint(emulator.endpoint_url, patient_client(emulator.endpoint_url))
        for name in [name for name in os.environ if foreign(name)]:
            monkeypatch.delenv(name)
        for name, value in endpoint_env(endpoint).items():
            monkeypatch.setenv(name, value)
        versions = []
        for i in range(10):
            with process_state_kept():
                code = main(["snapshot", SEED, "--name", f"nightly-{i}"])
            out, err = capsys.readouterr()
            assert code == 0, err
            versions.append(out.strip())
        listed = call_with(endpoint.s3, {"X-Tigris-Snapshot": SEED}, "list_buckets")["Buckets"]
        assert sorted(b["Name"] for b in listed) == sorted(
            f"{v}; name=nightly-{i}" for i, v in enumerate(versions)
        )


def test_a_run_leaves_no_snapshot_despite_late_errors(inner: Inner) -> None:
    with EmulatorProcess(seed=SEED, faults="late=0.3,seed=1") as emulator:
        endpoint = Endpoint(emulator.endpoint_url, patient_client(emulator.endpoint_url))
        inner.pytester.makeconftest(NO_RETRY_BACKOFF)
        inner.pytester.makepyfile(
            test_inner="""
import pytest

@pytest.mark.parametrize("i", range(3))
def test_fork(tigris_fork, i):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="k", Body=b"x")
"""
        )
        result = inner.run(env=endpoint_env(endpoint))
        assert result.ret == pytest.ExitCode.OK, result.text
        result.assert_outcomes(passed=3)
        assert endpoint.buckets() == {SEED}
        assert snapshot_labels(endpoint.s3, SEED) == []
