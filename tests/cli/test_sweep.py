"""``pytest-tigris sweep`` and ``snapshot`` against a real emulator process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tigris.cli import main
from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import call_with, create_snapshot_bucket, fork, make_client, snapshot

SEED = "sweep-seed"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # Its own emulator: a sweep takes every dead fork on the endpoint.
    with EmulatorProcess(seed=SEED) as emulator:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "PYTEST_TIGRIS_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        yield emulator.endpoint_url


def names(s3: Any) -> set[str]:
    return {b["Name"] for b in s3.list_buckets()["Buckets"]}


def snapshot_labels(s3: Any, bucket: str) -> set[str]:
    listed = call_with(s3, {"X-Tigris-Snapshot": bucket}, "list_buckets")["Buckets"]
    return {b["Name"].partition("; name=")[2] for b in listed}


def test_sweep_deletes_forks_of_dead_runs_only(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = make_client(endpoint)
    # What the plugin leaves: forks of the run's pinned snapshot, and a fork of a fork that
    # carries the run's mark (a snapshot of its own named after the run).
    run1 = snapshot(s3, SEED, "pytest-tigris-deadrun1")
    run2 = snapshot(s3, SEED, "pytest-tigris-deadrun2")
    fork(s3, f"{SEED}-deadrun1-gw0-0", SEED, run1)
    fork(s3, f"{SEED}-deadrun1-gw0-1", f"{SEED}-deadrun1-gw0-0")  # a fork of a fork
    snapshot(s3, f"{SEED}-deadrun1-gw0-1", "pytest-tigris-deadrun1")
    fork(s3, f"{SEED}-deadrun2-m-0", SEED, run2)
    s3.create_bucket(Bucket=f"{SEED}-deadrun1-gw0-2")  # named like a fork, but is not one
    fork(s3, f"{SEED}-deadrun1-gw0-3", SEED)  # named like a fork, forked by someone else
    fork(s3, "myproject-bucket-alice", SEED)  # a named environment, not a test fork
    create_snapshot_bucket(s3, "other-seed")

    assert main(["sweep", "--endpoint", endpoint, "--older-than", "0s", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "would delete sweep-seed-deadrun1-gw0-0" in dry
    assert "gw0-2" not in dry.replace("kept sweep-seed-deadrun1-gw0-2: named like", "")
    assert "alice" not in dry
    assert f"{SEED}-deadrun2-m-0" in names(s3)

    assert main(["sweep", "--endpoint", endpoint, "--older-than", "0s"]) == 0
    out = capsys.readouterr().out
    assert out.index("deleted sweep-seed-deadrun1-gw0-1") < out.index(
        "deleted sweep-seed-deadrun1-gw0-0"
    )
    assert f"kept {SEED}-deadrun1-gw0-3: named like a test fork, but not provably" in out
    assert names(s3) == {
        SEED,
        "other-seed",
        f"{SEED}-deadrun1-gw0-2",
        f"{SEED}-deadrun1-gw0-3",
        "myproject-bucket-alice",
    }
    # deadrun1 still has buckets named as its forks: its snapshot stays; deadrun2's is gone.
    assert f"deleted snapshot pytest-tigris-deadrun2 ({run2}) of {SEED}" in out
    assert snapshot_labels(s3, SEED) == {"pytest-tigris-deadrun1"}


def test_sweep_leaves_live_and_young_runs_alone(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = make_client(endpoint)
    fork(s3, f"{SEED}-liverun-gw1-0", SEED, snapshot(s3, SEED, "pytest-tigris-liverun"))
    young = snapshot(s3, SEED, "pytest-tigris-youngrun")
    fork(s3, f"{SEED}-youngrun-m-0", SEED, young)
    # A run in progress on this machine: its controller (this process) is alive.
    lease = Path(tempfile.gettempdir()) / f"pytest-tigris-liverun-{os.getpid()}"
    lease.mkdir()
    try:
        assert main(["sweep", "--endpoint", endpoint, "--older-than", "0s"]) == 0
        out = capsys.readouterr().out
        assert f"kept {SEED}-liverun-gw1-0: its run is still going" in out
        assert f"{SEED}-liverun-gw1-0" in names(s3)
        assert f"{SEED}-youngrun-m-0" not in names(s3)
        # The dead run's snapshot went with its last fork; the live run's stays.
        assert snapshot_labels(s3, SEED) == {"pytest-tigris-liverun"}
        young = snapshot(s3, SEED, "pytest-tigris-youngrun")
        fork(s3, f"{SEED}-youngrun-m-1", SEED, young)
        assert main(["sweep", "--endpoint", endpoint]) == 0  # default: older than 2h
        assert "younger than 2h" in capsys.readouterr().out
        assert f"{SEED}-youngrun-m-1" in names(s3)
    finally:
        lease.rmdir()


def test_sweep_errors(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--endpoint", endpoint, "--older-than", "soon"])
    assert exc.value.code == 2
    assert "--older-than" in capsys.readouterr().err
    for too_long in ("99999999999999999d", "1000000000d", "9" * 400):
        with pytest.raises(SystemExit) as exc:
            main(["sweep", "--endpoint", endpoint, "--dry-run", "--older-than", too_long])
        assert exc.value.code == 2
        assert capsys.readouterr().err == (
            f"pytest-tigris: error: --older-than: {too_long!r} is too long a duration: "
            "the most is 999999999d\n"
        )
    assert main(["sweep", "--endpoint", endpoint, "--dry-run", "--older-than", "999999999d"]) == 0
    capsys.readouterr()
    assert main(["sweep", "--endpoint", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "Connection refused by http://127.0.0.1:9" in err
    assert len(err.strip().splitlines()) == 1


def test_sweep_needs_an_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "PYTEST_TIGRIS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["sweep"])
    assert exc.value.code == 2
    assert "--endpoint" in capsys.readouterr().err


def test_snapshot_command_prints_the_version(endpoint: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_tigris", "snapshot", SEED, "--name", "nightly"],
        env={**os.environ, "AWS_ENDPOINT_URL_S3": endpoint},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    version = result.stdout.strip()
    assert len(version) == 19 and version.isdigit()
    listed = make_client(endpoint).list_buckets()  # plain listing is unaffected
    assert SEED in {b["Name"] for b in listed["Buckets"]}


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["BAD_b"],
            "pytest-tigris: error: BUCKET 'BAD_b' is not a valid bucket name: use 3-63 characters "
            "a-z, 0-9, '.' and '-', starting and ending with a letter or digit",
        ),
        (
            [SEED, "--name", "x\ny"],
            "pytest-tigris: error: --name 'x\\ny': a snapshot name is printable ASCII (letters, "
            "digits, punctuation and inner spaces): no control characters, accents or other "
            "non-ASCII letters",
        ),
        (
            [SEED, "--name", "é"],
            "pytest-tigris: error: --name 'é': a snapshot name is printable ASCII (letters, "
            "digits, punctuation and inner spaces): no control characters, accents or other "
            "non-ASCII letters",
        ),
        (
            [SEED, "--name", " nightly"],
            "pytest-tigris: error: --name ' nightly': a snapshot name is printable ASCII "
            "(letters, digits, punctuation and inner spaces): no control characters, accents or "
            "other non-ASCII letters",
        ),
        (
            [SEED, "--name", ""],
            "pytest-tigris: error: --name '': a snapshot name is printable ASCII (letters, "
            "digits, punctuation and inner spaces): no control characters, accents or other "
            "non-ASCII letters",
        ),
    ],
)
def test_snapshot_usage_errors_exit_2(
    endpoint: str, argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["snapshot", "--endpoint", endpoint, *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", line + "\n")
    assert snapshot_labels(make_client(endpoint), SEED) == set()


def test_snapshot_of_a_missing_or_plain_bucket_fails_with_one_line(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = make_client(endpoint)
    s3.create_bucket(Bucket="plainbucket")
    assert main(["snapshot", "--endpoint", endpoint, "nosuch-bucket"]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        f"pytest-tigris snapshot: bucket 'nosuch-bucket' does not exist at {endpoint}: check "
        "the name\n",
    )
    assert main(["snapshot", "--endpoint", endpoint, "plainbucket", "--name", "n"]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        "pytest-tigris snapshot: bucket 'plainbucket' is not snapshot-enabled, so it has no "
        "snapshots: enable snapshots on it (Tigris dashboard, or tigris_boto3_ext.update_bucket"
        "(client, 'plainbucket', snapshot_enabled=True)) or snapshot a snapshot-enabled bucket\n",
    )
    assert names(s3) == {SEED, "plainbucket"}
    # A name with spaces and punctuation is fine, and stored as given.
    assert main(["snapshot", "--endpoint", endpoint, SEED, "--name", "before v2.1 (ok)"]) == 0
    assert snapshot_labels(s3, SEED) == {"before v2.1 (ok)"}
