"""Isolation, snapshot pinning and cleanup, seen from the outside.

Every test here runs a real inner pytest session (in-process, through ``tests.inner``), with
and without xdist, either on the embedded emulator or on a standalone emulator process standing in
for Tigris (``--tigris-endpoint`` + credentials in the environment). Inner tests write what
they saw to JSON files; the outer tests assert on those, on the inner summary line and on the
bucket listing left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tigris_boto3_ext as tx
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.naming import parse_fork_name
from tests.helpers import create_snapshot_bucket, force_delete, make_client, snapshot
from tests.inner import Inner, InnerResult

SEED_OBJECTS = {
    "manifest.json": b'{"items": ["a", "b", "c"]}',
    "data/a.txt": b"alpha\n",
    "data/b.txt": b"bravo\n",
    "data/nested/c.bin": bytes(range(256)) * 8,
}
XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
# -- the inner project ---------------------------------------------------------------------
INNER_HELPERS = '''
"""Helpers of the inner suites."""
import json
import os
import time
import uuid

SEED = __SEED__


def worker():
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def record(**data):
    """Tell the outer test what this inner test saw."""
    path = os.path.join(os.environ["ISO_OUT"], uuid.uuid4().hex + ".json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"worker": worker(), "time": time.time(), **data}, out)


def contents(client, bucket):
    """Every key of ``bucket`` (listed) with its bytes (read)."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            found[key] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return found


def plain_client():
    """Someone else's boto3 client (not the plugin's): credentials from the environment."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["ISO_ENDPOINT"],
        region_name="auto",
        config=Config(s3={"addressing_style": "path"}),
    )
'''

INNER_CONFTEST = """
import os
import random


def pytest_collection_modifyitems(items):
    # The same shuffled order in every xdist worker (xdist requires identical collections).
    shuffle = os.environ.get("ISO_SHUFFLE")
    if shuffle:
        random.Random(int(shuffle)).shuffle(items)
"""

ISOLATION_SUITE = """
import hashlib

import pytest
from isohelpers import SEED, contents, record


@pytest.fixture(scope="module", autouse=True)
def _seed_at_the_end(tigris_client, tigris_seed):
    yield
    seen = contents(tigris_client, tigris_seed)
    record(seed_after={k: hashlib.sha256(v).hexdigest() for k, v in seen.items()})


@pytest.mark.parametrize("i", range(48))
def test_sees_the_seed_plus_its_own_writes(tigris_fork, tigris_seed, i):
    client, bucket = tigris_fork.client, tigris_fork.name
    assert tigris_fork.source == tigris_seed
    assert contents(client, bucket) == SEED
    expected = dict(SEED)
    mine = f"written by test {i}".encode()
    client.put_object(Bucket=bucket, Key="data/new.txt", Body=mine)
    expected["data/new.txt"] = mine
    if i % 2:
        expected["data/a.txt"] = f"overwritten by test {i}".encode()
        client.put_object(Bucket=bucket, Key="data/a.txt", Body=expected["data/a.txt"])
    if i % 3 == 0:
        client.delete_object(Bucket=bucket, Key="data/b.txt")
        del expected["data/b.txt"]
    if i % 4 == 1:
        client.put_object(Bucket=bucket, Key="manifest.json", Body=b"{}")
        client.delete_object(Bucket=bucket, Key="manifest.json")
        del expected["manifest.json"]
    if i % 5 == 2:
        client.delete_object(Bucket=bucket, Key="data/new.txt")
        expected["data/new.txt"] = mine + b" again"
        client.put_object(Bucket=bucket, Key="data/new.txt", Body=expected["data/new.txt"])
    if i % 7 == 3:
        client.delete_object(Bucket=bucket, Key="data/nested/c.bin")
        del expected["data/nested/c.bin"]
    assert contents(client, bucket) == expected
    record(test=i, fork=bucket)
"""

BUCKET_SUITE = """
import pytest
from isohelpers import SEED, contents, record


@pytest.mark.parametrize("i", range(12))
def test_worker_bucket(tigris_bucket, tigris_seed, i):
    client, bucket = tigris_bucket.client, tigris_bucket.name
    assert tigris_bucket.source == tigris_seed
    seen = contents(client, bucket)
    earlier = sorted(k for k in seen if k.startswith("from-test-"))
    assert {k: v for k, v in seen.items() if not k.startswith("from-test-")} == SEED
    client.put_object(Bucket=bucket, Key=f"from-test-{i:02d}", Body=b"x")
    record(test=i, bucket=bucket, earlier=earlier)
"""

PINNING_SUITE = """
import time

import pytest
from botocore.exceptions import ClientError
from isohelpers import SEED, contents, plain_client, record

LATE = "late/written-mid-run.txt"


def seed_has_late(client, seed):
    try:
        client.head_object(Bucket=seed, Key=LATE)
    except ClientError:
        return False
    return True


@pytest.fixture
def after_the_write(tigris_seed):
    # Set up before tigris_fork: every fork of these tests is made after the seed changed.
    client = plain_client()
    deadline = time.monotonic() + 60
    while not seed_has_late(client, tigris_seed):
        assert time.monotonic() < deadline, "the writer test never wrote to the seed"
        time.sleep(0.05)
    return client


def test_a_writer_changes_the_seed_mid_run(tigris_fork, tigris_seed):
    client = plain_client()
    assert not seed_has_late(client, tigris_seed)
    client.put_object(Bucket=tigris_seed, Key=LATE, Body=b"written mid-run")
    assert seed_has_late(client, tigris_seed)
    assert contents(tigris_fork.client, tigris_fork.name) == SEED
    record(test="writer", fork=tigris_fork.name, snapshot=tigris_fork.snapshot)


@pytest.mark.parametrize("i", range(15))
def test_later_forks_do_not_see_it(after_the_write, tigris_fork, tigris_seed, i):
    assert seed_has_late(after_the_write, tigris_seed)
    assert contents(tigris_fork.client, tigris_fork.name) == SEED
    record(test=i, fork=tigris_fork.name, snapshot=tigris_fork.snapshot)


@pytest.mark.parametrize("i", range(2))
def test_later_factory_forks_and_buckets_do_not_see_it(
    after_the_write, tigris_bucket, tigris_fork_factory, i
):
    fork = tigris_fork_factory.fork()
    assert contents(fork.client, fork.name) == SEED
    assert contents(tigris_bucket.client, tigris_bucket.name) == SEED
    record(test=f"factory-{i}", fork=fork.name, snapshot=fork.snapshot)
    record(test=f"bucket-{i}", fork=tigris_bucket.name, snapshot=tigris_bucket.snapshot)
"""

SNAPSHOT_SUITE = """
import os

from isohelpers import SEED, contents, record


def test_fork_sees_the_older_snapshot(tigris_fork):
    assert tigris_fork.snapshot == os.environ["ISO_VERSION"]
    assert contents(tigris_fork.client, tigris_fork.name) == SEED
    record(fork=tigris_fork.name)


def test_bucket_sees_the_older_snapshot(tigris_bucket):
    assert tigris_bucket.snapshot == os.environ["ISO_VERSION"]
    assert contents(tigris_bucket.client, tigris_bucket.name) == SEED
    record(fork=tigris_bucket.name)


def test_factory_fork_sees_the_older_snapshot(tigris_fork_factory):
    fork = tigris_fork_factory.fork()
    assert fork.snapshot == os.environ["ISO_VERSION"]
    assert contents(fork.client, fork.name) == SEED
    record(fork=fork.name)
"""

TEARDOWN_SUITE = """
import pytest
from isohelpers import record


@pytest.mark.parametrize("i", range(12))
def test_fork_then_maybe_fail(tigris_fork, i):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="scratch.txt", Body=b"x")
    record(kind="fork", name=tigris_fork.name)
    assert i % 2 == 0, "fails on purpose"


@pytest.fixture
def broken(tigris_fork):
    record(kind="fork", name=tigris_fork.name)
    raise RuntimeError("setup fails on purpose")


@pytest.mark.parametrize("i", range(3))
def test_setup_error_after_the_fork(broken, i):
    pass


@pytest.mark.parametrize("i", range(4))
def test_bucket_then_maybe_fail(tigris_bucket, i):
    record(kind="bucket", name=tigris_bucket.name)
    assert i != 1, "fails on purpose"
"""

FACTORY_SUITE = """
import pytest
from isohelpers import SEED, contents, record


@pytest.mark.parametrize("i", range(4))
def test_fork_of_a_fork(tigris_fork_factory, tigris_seed, i):
    parent = tigris_fork_factory.fork()
    assert parent.source == tigris_seed
    assert contents(parent.client, parent.name) == SEED
    mine = f"parent of test {i}".encode()
    parent.client.put_object(Bucket=parent.name, Key="parent.txt", Body=mine)
    parent.client.delete_object(Bucket=parent.name, Key="data/b.txt")

    child = tigris_fork_factory.fork(source=parent.name)
    assert child.source == parent.name
    inherited = {k: v for k, v in SEED.items() if k != "data/b.txt"}
    inherited["parent.txt"] = mine
    assert contents(child.client, child.name) == inherited

    # From here on the two are independent both ways.
    child.client.put_object(Bucket=child.name, Key="child.txt", Body=b"child")
    parent.client.put_object(Bucket=parent.name, Key="parent.txt", Body=b"changed later")
    assert contents(child.client, child.name) == {**inherited, "child.txt": b"child"}
    assert contents(parent.client, parent.name) == {**inherited, "parent.txt": b"changed later"}
    record(names=[parent.name, child.name])
"""


# -- outer helpers -------------------------------------------------------------------------
@dataclass
class Remote:
    """A standalone emulator standing in for Tigris, with the credentials it accepts."""

    endpoint: str
    s3: Any
    access_key: str
    secret_key: str


@dataclass
class Project:
    """The inner project: files, environment, runs and what its tests recorded."""

    inner: Inner
    out: Path

    def seed_dir(self) -> Path:
        root = self.inner.path / "seed"
        for key, data in SEED_OBJECTS.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root

    def point_at(self, remote: Remote, seed: str) -> list[str]:
        """Environment and options that make the inner run use ``remote`` and ``seed``."""
        self.inner.setenv(
            AWS_ACCESS_KEY_ID=remote.access_key,
            AWS_SECRET_ACCESS_KEY=remote.secret_key,
            ISO_ENDPOINT=remote.endpoint,
        )
        run_id = uuid.uuid4().hex[:8]
        return [
            "--tigris-endpoint",
            remote.endpoint,
            "--tigris-seed",
            seed,
            "--tigris-run-id",
            run_id,
        ]

    def run(self, n: int, *args: str) -> InnerResult:
        return self.inner.run(*args, n=n)

    def records(self) -> list[dict[str, Any]]:
        found = [json.loads(p.read_text(encoding="utf-8")) for p in self.out.glob("*.json")]
        return sorted(found, key=lambda r: r["time"])


@pytest.fixture
def project(inner: Inner) -> Project:
    out = inner.pytester.mkdir("out")
    inner.setenv(ISO_OUT=str(out))
    inner.pytester.makepyfile(isohelpers=INNER_HELPERS.replace("__SEED__", repr(SEED_OBJECTS)))
    inner.pytester.makeconftest(INNER_CONFTEST)
    return Project(inner, out)


@pytest.fixture(scope="module")
def keyed_emulator() -> Iterator[Remote]:
    """A standalone emulator that checks SigV4 against one key pair, like Tigris."""
    key, secret = "tid_isolation", "tsec_isolation"
    with EmulatorProcess(access_key=key, secret_key=secret) as process:
        s3 = make_client(process.endpoint_url, aws_access_key_id=key, aws_secret_access_key=secret)
        yield Remote(process.endpoint_url, s3, key, secret)


@pytest.fixture
def remote(emulator: EmulatorProcess, s3: Any) -> Remote:
    return Remote(emulator.endpoint_url, s3, "test-key", "test-secret")


@pytest.fixture
def make_seed(unique: Callable[[str], str]) -> Iterator[Callable[[Remote], str]]:
    """Make a snapshot-enabled seed bucket of this test's own; deleted (forks first) after."""
    made: list[tuple[Remote, str]] = []

    def make(remote: Remote) -> str:
        name = unique("iso-seed")
        create_snapshot_bucket(remote.s3, name)
        made.append((remote, name))
        for key, data in SEED_OBJECTS.items():
            remote.s3.put_object(Bucket=name, Key=key, Body=data)
        return name

    yield make
    for remote, name in made:
        delete_tree(remote.s3, name)


def delete_tree(s3: Any, bucket: str) -> None:
    """Force-delete ``bucket`` after its forks (children first): nothing outlives a test."""
    with contextlib.suppress(ClientError):
        for child in tx.list_forks(s3, bucket)["buckets"]:
            delete_tree(s3, child["name"])
    with contextlib.suppress(ClientError):
        force_delete(s3, bucket)


def bucket_names(s3: Any) -> set[str]:
    return {b["Name"] for b in s3.list_buckets()["Buckets"]}


def contents(s3: Any, bucket: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return found


def digests(objects: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in objects.items()}


def run_id_of(args: list[str]) -> str:
    return args[args.index("--tigris-run-id") + 1]


def assert_nothing_left(
    remote: Remote, seed: str, before: set[str], run_id: str, seed_now: dict[str, bytes]
) -> None:
    """Only the buckets there before the run remain, the seed has no fork, its bytes as given."""
    after = bucket_names(remote.s3)
    assert sorted(b for b in after if f"-{run_id}-" in b) == []
    assert after == before
    assert tx.list_forks(remote.s3, seed)["buckets"] == []
    assert contents(remote.s3, seed) == seed_now


def workers_of(n: int) -> set[str]:
    return {f"gw{i}" for i in range(n)} if n else {"main"}


# -- 1. every test sees exactly the seed plus its own writes --------------------------------
@XDIST
def test_forks_are_isolated_on_the_embedded_emulator(project: Project, n: int) -> None:
    project.inner.pytester.makepyfile(test_inner=ISOLATION_SUITE)
    project.inner.setenv(ISO_SHUFFLE="20251125")
    result = project.run(n, "--tigris-seed-dir", str(project.seed_dir()))

    result.assert_outcomes(passed=48)
    records = project.records()
    tests = [r for r in records if "test" in r]
    assert sorted(r["test"] for r in tests) == list(range(48))
    assert len({r["fork"] for r in tests}) == 48
    assert {r["worker"] for r in tests} == workers_of(n)
    if n == 0:
        assert [r["test"] for r in tests] != list(range(48)), "the inner order was not shuffled"
    seed_checks = [r["seed_after"] for r in records if "seed_after" in r]
    assert seed_checks and all(s == digests(SEED_OBJECTS) for s in seed_checks)
    assert result.fork_summary() == (48, 48, 0, 0)


@XDIST
@pytest.mark.parametrize("keyed", [False, True], ids=["open", "with-keys"])
def test_forks_are_isolated_on_a_standalone_endpoint(
    project: Project,
    request: pytest.FixtureRequest,
    make_seed: Callable[[Remote], str],
    n: int,
    keyed: bool,
) -> None:
    server: Remote = request.getfixturevalue("keyed_emulator" if keyed else "remote")
    seed = make_seed(server)
    before = bucket_names(server.s3)
    project.inner.pytester.makepyfile(test_inner=ISOLATION_SUITE)
    project.inner.setenv(ISO_SHUFFLE="7")
    args = project.point_at(server, seed)
    result = project.run(n, *args)

    result.assert_outcomes(passed=48)
    tests = [r for r in project.records() if "test" in r]
    assert sorted(r["test"] for r in tests) == list(range(48))
    assert {r["worker"] for r in tests} == workers_of(n)
    assert result.fork_summary() == (48, 48, 0, 0)
    assert_nothing_left(server, seed, before, run_id_of(args), SEED_OBJECTS)
    if keyed:
        assert bucket_names(server.s3) == {seed}
    assert server.secret_key not in result.stdout.str() + result.stderr.str()


# -- 2. tigris_bucket: one per worker -------------------------------------------------------
@XDIST
def test_worker_bucket_is_shared_within_a_worker_and_distinct_across(
    project: Project, n: int
) -> None:
    project.inner.pytester.makepyfile(test_inner=BUCKET_SUITE)
    result = project.run(n, "--tigris-seed-dir", str(project.seed_dir()))

    result.assert_outcomes(passed=12)
    records = project.records()
    assert sorted(r["test"] for r in records) == list(range(12))
    by_worker: dict[str, set[str]] = {}
    for r in records:
        by_worker.setdefault(r["worker"], set()).add(r["bucket"])
    assert set(by_worker) == workers_of(n)
    assert all(len(names) == 1 for names in by_worker.values()), by_worker
    names = {name for names in by_worker.values() for name in names}
    assert len(names) == len(by_worker)
    for worker, (name,) in by_worker.items():
        parsed = parse_fork_name(name)
        assert parsed is not None and parsed.worker == ("m" if worker == "main" else worker)
        # Each test saw what the earlier tests of its worker wrote to the shared bucket.
        mine = [r for r in records if r["worker"] == worker]
        for index, r in enumerate(mine):
            assert r["earlier"] == sorted(f"from-test-{e['test']:02d}" for e in mine[:index])
    assert result.fork_summary() == (len(names), len(names), 0, 0)


# -- 3. snapshot pinning ---------------------------------------------------------------------
@XDIST
def test_a_write_to_the_seed_mid_run_is_invisible_to_later_forks(
    project: Project, remote: Remote, make_seed: Callable[[Remote], str], n: int
) -> None:
    seed = make_seed(remote)
    before = bucket_names(remote.s3)
    project.inner.pytester.makepyfile(test_inner=PINNING_SUITE)
    args = project.point_at(remote, seed)
    result = project.run(n, *args)

    result.assert_outcomes(passed=1 + 15 + 2)
    records = project.records()
    if n == 0:
        assert records[0]["test"] == "writer"
    assert {r["worker"] for r in records} == workers_of(n)
    snapshots = {r["snapshot"] for r in records}
    assert len(snapshots) == 1 and None not in snapshots, snapshots
    late = {"late/written-mid-run.txt": b"written mid-run"}
    assert_nothing_left(remote, seed, before, run_id_of(args), {**SEED_OBJECTS, **late})


@XDIST
@pytest.mark.parametrize("by", ["name", "version"])
def test_seed_snapshot_option_forks_an_older_snapshot(
    project: Project, remote: Remote, make_seed: Callable[[Remote], str], n: int, by: str
) -> None:
    seed = make_seed(remote)
    version = snapshot(remote.s3, seed, name="before-the-change")
    remote.s3.put_object(Bucket=seed, Key="data/a.txt", Body=b"changed after the snapshot")
    remote.s3.delete_object(Bucket=seed, Key="data/b.txt")
    remote.s3.put_object(Bucket=seed, Key="new.txt", Body=b"added after the snapshot")
    seed_now = contents(remote.s3, seed)
    assert seed_now != SEED_OBJECTS
    before = bucket_names(remote.s3)
    project.inner.pytester.makepyfile(test_inner=SNAPSHOT_SUITE)
    project.inner.setenv(ISO_VERSION=version)
    args = project.point_at(remote, seed)
    wanted = "before-the-change" if by == "name" else version
    result = project.run(n, *args, "--tigris-seed-snapshot", wanted)

    result.assert_outcomes(passed=3)
    assert len({r["fork"] for r in project.records()}) == 3
    assert_nothing_left(remote, seed, before, run_id_of(args), seed_now)


@XDIST
def test_unknown_seed_snapshot_fails_the_run_in_one_line(
    project: Project, remote: Remote, make_seed: Callable[[Remote], str], n: int
) -> None:
    seed = make_seed(remote)
    before = bucket_names(remote.s3)
    project.inner.pytester.makepyfile(test_inner=SNAPSHOT_SUITE)
    project.inner.setenv(ISO_VERSION="unused")
    args = project.point_at(remote, seed)
    result = project.run(n, *args, "--tigris-seed-snapshot", "no-such-snapshot")

    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "pytest-tigris:" in line]
    assert len(errors) == 1, output
    assert "--tigris-seed-snapshot" in errors[0] and "no-such-snapshot" in errors[0]
    assert result.parseoutcomes().get("passed", 0) == 0
    assert project.records() == []
    assert_nothing_left(remote, seed, before, run_id_of(args), SEED_OBJECTS)


# -- 4. teardown: nothing left behind, even when tests fail ---------------------------------
@XDIST
def test_failing_tests_leave_no_fork_behind(
    project: Project, remote: Remote, make_seed: Callable[[Remote], str], n: int
) -> None:
    seed = make_seed(remote)
    before = bucket_names(remote.s3)
    project.inner.pytester.makepyfile(test_inner=TEARDOWN_SUITE)
    args = project.point_at(remote, seed)
    result = project.run(n, *args)

    result.assert_outcomes(passed=6 + 3, failed=6 + 1, errors=3)
    records = project.records()
    forks = {r["name"] for r in records if r["kind"] == "fork"}
    buckets = {r["name"] for r in records if r["kind"] == "bucket"}
    assert len(forks) == 12 + 3
    # One tigris_bucket per process that ran a test using it.
    assert len(buckets) == len({r["worker"] for r in records if r["kind"] == "bucket"})
    for name in forks | buckets:
        parsed = parse_fork_name(name)
        assert parsed is not None and parsed.run_id == run_id_of(args)
    total = len(forks) + len(buckets)
    assert result.fork_summary() == (total, total, 0, 0)
    assert not (forks | buckets) & bucket_names(remote.s3)
    assert_nothing_left(remote, seed, before, run_id_of(args), SEED_OBJECTS)


# -- 5. tigris_fork_factory: forks and forks of forks ----------------------------------------
@XDIST
def test_factory_forks_and_forks_of_forks_are_deleted_at_session_end(
    project: Project, remote: Remote, make_seed: Callable[[Remote], str], n: int
) -> None:
    seed = make_seed(remote)
    before = bucket_names(remote.s3)
    project.inner.pytester.makepyfile(test_inner=FACTORY_SUITE)
    args = project.point_at(remote, seed)
    result = project.run(n, *args)

    result.assert_outcomes(passed=4)
    names = [name for r in project.records() for name in r["names"]]
    assert len(set(names)) == 8
    assert not set(names) & bucket_names(remote.s3)
    assert_nothing_left(remote, seed, before, run_id_of(args), SEED_OBJECTS)
    # Forks made on purpose are deleted by their session, not swept up as leaks.
    assert result.fork_summary() == (8, 8, 0, 0)


# -- 6. no xdist at all ----------------------------------------------------------------------
def test_runs_without_xdist(project: Project) -> None:
    project.inner.pytester.makepyfile(test_forks=ISOLATION_SUITE, test_buckets=BUCKET_SUITE)
    result = project.run(0, "-p", "no:xdist", "--tigris-seed-dir", str(project.seed_dir()))

    result.assert_outcomes(passed=48 + 12)
    records = project.records()
    assert {r["worker"] for r in records} == {"main"}
    (bucket,) = {r["bucket"] for r in records if "bucket" in r}
    parsed = parse_fork_name(bucket)
    assert parsed is not None and parsed.worker == "m"
    assert result.fork_summary() == (49, 49, 0, 0)
