"""``pytest-tigris emulator --persist DIR``: the state survives restarts, forks of forks and
snapshots included, and stays zero-copy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_tigris.emulator import EmulatorProcess, EmulatorStartError
from tests.helpers import body, call_with, create_snapshot_bucket, fork, keys, make_client, snapshot

SEED = "persist-seed"


def start(folder: Path, tmp_path: Path, **kwargs: Any) -> tuple[EmulatorProcess, Any]:
    emulator = EmulatorProcess(seed=SEED, persist=folder, **kwargs).start()
    return emulator, make_client(emulator.endpoint_url)


def fork_info(s3: Any, bucket: str) -> tuple[str | None, str | None]:
    headers = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    return (
        headers.get("x-tigris-fork-source-bucket"),
        headers.get("x-tigris-fork-source-bucket-snapshot"),
    )


def described(version: dict[str, Any]) -> tuple[str, str, str, int]:
    return version["Key"], version["VersionId"], version["ETag"], version["Size"]


def read_at(s3: Any, bucket: str, key: str, version: str) -> bytes:
    answer = call_with(
        s3, {"X-Tigris-Snapshot-Version": version}, "get_object", Bucket=bucket, Key=key
    )
    return bytes(answer["Body"].read())


def test_restarted_twice_with_forks_of_forks(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seed_dir = tmp_path / "seed"
    (seed_dir / "docs").mkdir(parents=True)
    (seed_dir / "docs" / "a.txt").write_bytes(b"seed a")
    big = os.urandom(3 * 1024 * 1024)

    emulator, s3 = start(state, tmp_path, seed_dir=seed_dir)
    try:
        create_snapshot_bucket(s3, "parent")
        s3.put_object(Bucket="parent", Key="k", Body=b"v1", Metadata={"owner": "alice"})
        s3.put_object(Bucket="parent", Key="big.bin", Body=big)
        s3.put_object_tagging(
            Bucket="parent", Key="k", Tagging={"TagSet": [{"Key": "t", "Value": "1"}]}
        )
        v1 = snapshot(s3, "parent", "first")
        s3.put_object(Bucket="parent", Key="k", Body=b"v2")
        fork(s3, "child", "parent", v1)
        s3.put_object(Bucket="child", Key="only-child", Body=b"c")
        fork(s3, "grandchild", "child")
        s3.delete_object(Bucket="grandchild", Key="big.bin")
        s3.create_bucket(Bucket="plain")
        s3.put_object(Bucket="plain", Key="p", Body=b"plain")
        versions_before = s3.list_object_versions(Bucket="parent", Prefix="k")["Versions"]
    finally:
        emulator.stop()

    for restart in range(2):
        emulator, s3 = start(state, tmp_path, seed_dir=seed_dir)
        try:
            assert keys(s3, SEED) == ["docs/a.txt"]
            assert body(s3, "parent", "k") == (b"v3-0" if restart else b"v2")
            assert read_at(s3, "parent", "k", v1) == b"v1"
            assert body(s3, "child", "k") == b"v1"
            assert body(s3, "child", "big.bin") == big
            assert keys(s3, "child") == ["big.bin", "k", "only-child"]
            assert keys(s3, "grandchild") == sorted(
                ["k", "only-child"] + (["from-restart-1"] if restart else [])
            )
            assert body(s3, "plain", "p") == b"plain"
            assert fork_info(s3, "child") == ("parent", v1)
            assert fork_info(s3, "grandchild")[0] == "child"
            first_k = versions_before[-1]["VersionId"]
            head = s3.head_object(Bucket="parent", Key="k", VersionId=first_k)
            assert head["Metadata"] == {"owner": "alice"}
            versions = s3.list_object_versions(Bucket="parent", Prefix="k")["Versions"]
            # Each earlier run added one version of k on top.
            assert [described(v) for v in versions][restart:] == [
                described(v) for v in versions_before
            ]
            tags = s3.get_object_tagging(Bucket="parent", Key="k", VersionId=first_k)["TagSet"]
            assert tags == [{"Key": "t", "Value": "1"}]
            snapshots = [
                b["Name"]
                for b in call_with(s3, {"X-Tigris-Snapshot": "parent"}, "list_buckets")["Buckets"]
            ]
            assert f"{v1}; name=first" in snapshots
            # Isolation still holds after the round trip, and new versions come after old ones.
            s3.put_object(Bucket="parent", Key="k", Body=f"v3-{restart}".encode())
            assert body(s3, "child", "k") == b"v1"
            newest = s3.head_object(Bucket="parent", Key="k")["VersionId"]
            assert int(newest) > int(v1)
            if restart == 0:
                s3.put_object(Bucket="grandchild", Key="from-restart-1", Body=b"r")
        finally:
            emulator.stop()

    # Zero-copy across the round trip: one blob per distinct content, however many buckets
    # share it (child's inherited copies of k/big.bin, the seed file...).
    blobs = sorted(path.name for path in (state / "blobs").iterdir())
    distinct = {b"seed a", b"v1", b"v2", big, b"c", b"plain", b"v3-0", b"v3-1", b"r"}
    assert len(blobs) == len(distinct)


def test_changes_are_saved_before_shutdown(tmp_path: Path) -> None:
    state = tmp_path / "state"
    emulator, s3 = start(state, tmp_path)
    try:
        s3.put_object(Bucket=SEED, Key="saved-soon", Body=b"x")
        deadline = time.monotonic() + 10
        while not (state / "state.pickle").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        assert emulator.process is not None
        os.kill(emulator.process.pid, signal.SIGKILL)  # no clean shutdown
        emulator.process.wait()
    finally:
        emulator.stop()
    emulator, s3 = start(state, tmp_path)
    try:
        assert body(s3, SEED, "saved-soon") == b"x"
    finally:
        emulator.stop()


def test_without_persist_nothing_is_written(tmp_path: Path) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    here = os.getcwd()
    os.chdir(workdir)
    try:
        with EmulatorProcess(seed=SEED) as emulator:
            s3 = make_client(emulator.endpoint_url)
            s3.put_object(Bucket=SEED, Key="k", Body=b"v")
            create_snapshot_bucket(s3, "nothing-on-disk")
    finally:
        os.chdir(here)
    assert list(workdir.iterdir()) == []


def test_a_damaged_state_is_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.pickle").write_bytes(b"not a pickle")
    with pytest.raises(EmulatorStartError) as exc:
        EmulatorProcess(seed=SEED, persist=state).start()
    message = str(exc.value)
    assert f"--persist {state}: cannot load the saved state" in message
    assert message.endswith("move the folder away to start empty")
    assert "\n" not in message


def test_a_damaged_state_is_a_usage_error_of_the_command(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.pickle").write_bytes(b"not a pickle")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_tigris", "emulator", "--persist", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"pytest-tigris emulator: --persist {state}: cannot load the saved")
