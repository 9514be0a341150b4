"""tigris-boto3-ext, unchanged, against the emulator: every public snapshot/fork/info helper."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import tigris_boto3_ext as tx
from botocore.exceptions import ClientError

from tests.helpers import SEED, SEED_FILES, body, keys


class Buckets:
    """Buckets a test made, force-deleted newest first (forks before their parents)."""

    def __init__(self, s3: Any, unique: Callable[[str], str]) -> None:
        self.s3 = s3
        self.unique = unique
        self.names: list[str] = []

    def name(self, prefix: str) -> str:
        """A fresh name that teardown will delete if the test creates it."""
        name = self.unique(prefix)
        self.names.append(name)
        return name

    def snapshot_bucket(self, prefix: str = "ext", objects: dict[str, bytes] | None = None) -> str:
        name = self.name(prefix)
        tx.create_snapshot_bucket(self.s3, name)
        for key, data in (objects or {}).items():
            self.s3.put_object(Bucket=name, Key=key, Body=data)
        return name

    def regular_bucket(self, prefix: str = "reg") -> str:
        name = self.name(prefix)
        self.s3.create_bucket(Bucket=name)
        return name

    def fork(self, source: str, snapshot_version: str | None = None) -> str:
        name = self.name("fork")
        tx.create_fork(self.s3, name, source, snapshot_version=snapshot_version)
        return name

    def cleanup(self) -> None:
        failures = []
        for name in reversed(self.names):
            try:
                tx.force_delete_bucket(self.s3, name)
            except ClientError as exc:
                if status(exc) != 404:
                    failures.append(f"{name}: {exc}")
        assert not failures, failures


@pytest.fixture
def buckets(s3: Any, unique: Callable[[str], str]) -> Iterator[Buckets]:
    made = Buckets(s3, unique)
    yield made
    made.cleanup()


def status(exc: ClientError) -> int:
    return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def snap(s3: Any, bucket: str, name: str | None = None) -> str:
    version = tx.get_snapshot_version(tx.create_snapshot(s3, bucket, snapshot_name=name))
    assert version is not None
    return version


def snapshot_names(s3: Any, bucket: str) -> list[str]:
    return [b["Name"] for b in tx.list_snapshots(s3, bucket)["Buckets"]]


def contents(s3: Any, bucket: str) -> dict[str, bytes]:
    return {key: body(s3, bucket, key) for key in keys(s3, bucket)}


def headers(response: dict[str, Any]) -> dict[str, str]:
    return dict(response["ResponseMetadata"]["HTTPHeaders"])


# Snapshots


def test_create_snapshot_bucket(s3: Any, buckets: Buckets) -> None:
    name = buckets.name("ext")
    result = tx.create_snapshot_bucket(s3, name)
    assert result["Location"] == f"/{name}"
    assert tx.has_snapshot_enabled(s3, name) is True
    with pytest.raises(ClientError) as exc:
        tx.create_snapshot_bucket(s3, name)
    assert status(exc.value) == 409


def test_create_snapshot_without_name(s3: Any, buckets: Buckets) -> None:
    bucket = buckets.snapshot_bucket(objects={"a.txt": b"a"})
    result = tx.create_snapshot(s3, bucket)
    version = tx.get_snapshot_version(result)
    assert version is not None and version.isdigit() and len(version) == 19
    assert snapshot_names(s3, bucket) == [version]
    later = snap(s3, bucket)
    assert int(later) > int(version)


def test_create_snapshot_with_name(s3: Any, buckets: Buckets) -> None:
    bucket = buckets.snapshot_bucket()
    plain = snap(s3, bucket, "backup-1")
    spaced = snap(s3, bucket, "before big migration")
    assert snapshot_names(s3, bucket) == [
        f"{spaced}; name=before big migration",
        f"{plain}; name=backup-1",
    ]


def test_get_snapshot_version_without_header_is_none(s3: Any, buckets: Buckets) -> None:
    name = buckets.name("ext")
    assert tx.get_snapshot_version(tx.create_snapshot_bucket(s3, name)) is None


def test_create_snapshot_of_missing_bucket_raises(s3: Any, unique: Callable[[str], str]) -> None:
    missing = unique("missing")
    with pytest.raises(ClientError):
        tx.create_snapshot(s3, missing)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=missing)
    assert status(exc.value) == 404


def test_list_snapshots(s3: Any, buckets: Buckets) -> None:
    bucket = buckets.snapshot_bucket()
    assert tx.list_snapshots(s3, bucket)["Buckets"] == []
    versions = [snap(s3, bucket) for _ in range(3)]
    listed = tx.list_snapshots(s3, bucket)["Buckets"]
    assert [b["Name"] for b in listed] == versions[::-1]
    assert all(isinstance(b["CreationDate"], datetime) for b in listed)


def test_list_snapshots_of_regular_bucket_is_empty(s3: Any, buckets: Buckets) -> None:
    assert tx.list_snapshots(s3, buckets.regular_bucket())["Buckets"] == []


def test_reads_from_snapshot_see_the_old_state(s3: Any, buckets: Buckets) -> None:
    bucket = buckets.snapshot_bucket(
        objects={"data/a.txt": b"version one", "data/b.txt": b"bee", "top.txt": b"top"}
    )
    version = snap(s3, bucket)
    s3.put_object(Bucket=bucket, Key="data/a.txt", Body=b"version two, longer")
    s3.delete_object(Bucket=bucket, Key="data/b.txt")
    s3.put_object(Bucket=bucket, Key="data/c.txt", Body=b"after the snapshot")

    old = tx.get_object_from_snapshot(s3, bucket, "data/a.txt", version)
    assert old["Body"].read() == b"version one"
    assert body(s3, bucket, "data/a.txt") == b"version two, longer"
    deleted = tx.get_object_from_snapshot(s3, bucket, "data/b.txt", version)
    assert deleted["Body"].read() == b"bee"
    with pytest.raises(ClientError) as exc:
        tx.get_object_from_snapshot(s3, bucket, "data/c.txt", version)
    assert status(exc.value) == 404

    head = tx.head_object_from_snapshot(s3, bucket, "data/a.txt", version)
    assert head["ContentLength"] == len(b"version one")
    assert head["ETag"].strip('"') == hashlib.md5(b"version one").hexdigest()
    with pytest.raises(ClientError) as exc:
        tx.head_object_from_snapshot(s3, bucket, "data/c.txt", version)
    assert status(exc.value) == 404

    listed = tx.list_objects_from_snapshot(s3, bucket, version)
    assert [o["Key"] for o in listed["Contents"]] == ["data/a.txt", "data/b.txt", "top.txt"]
    sizes = {o["Key"]: o["Size"] for o in listed["Contents"]}
    assert sizes["data/a.txt"] == len(b"version one")
    in_prefix = tx.list_objects_from_snapshot(s3, bucket, version, Prefix="data/")
    assert [o["Key"] for o in in_prefix["Contents"]] == ["data/a.txt", "data/b.txt"]
    assert keys(s3, bucket) == ["data/a.txt", "data/c.txt", "top.txt"]


def test_delete_snapshot(s3: Any, buckets: Buckets) -> None:
    bucket = buckets.snapshot_bucket(objects={"k": b"first"})
    doomed = snap(s3, bucket, "doomed")
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    kept = snap(s3, bucket)
    fork = buckets.fork(bucket, snapshot_version=doomed)

    tx.delete_snapshot(s3, bucket, doomed)

    assert snapshot_names(s3, bucket) == [kept]
    assert tx.get_object_from_snapshot(s3, bucket, "k", kept)["Body"].read() == b"second"
    assert body(s3, bucket, "k") == b"second"
    # Forks already made from a deleted snapshot are unaffected.
    assert contents(s3, fork) == {"k": b"first"}
    with pytest.raises(ClientError):
        tx.delete_snapshot(s3, bucket, doomed)
    with pytest.raises(ClientError):
        tx.delete_snapshot(s3, bucket, "1000000000000000000")
    assert snapshot_names(s3, bucket) == [kept]


# Forks


def test_create_fork_from_current_state(s3: Any, buckets: Buckets) -> None:
    source = buckets.snapshot_bucket(objects={"a.txt": b"alpha", "dir/b.bin": b"\x00\x01" * 500})
    fork = buckets.name("fork")
    result = tx.create_fork(s3, fork, source)
    assert result["Location"] == f"/{fork}"
    assert contents(s3, fork) == {"a.txt": b"alpha", "dir/b.bin": b"\x00\x01" * 500}

    s3.put_object(Bucket=fork, Key="a.txt", Body=b"changed in fork")
    s3.put_object(Bucket=fork, Key="fork-only.txt", Body=b"fork")
    s3.delete_object(Bucket=fork, Key="dir/b.bin")
    s3.put_object(Bucket=source, Key="source-only.txt", Body=b"source")
    assert contents(s3, source) == {
        "a.txt": b"alpha",
        "dir/b.bin": b"\x00\x01" * 500,
        "source-only.txt": b"source",
    }
    assert contents(s3, fork) == {"a.txt": b"changed in fork", "fork-only.txt": b"fork"}


def test_create_fork_from_snapshot_version(s3: Any, buckets: Buckets) -> None:
    source = buckets.snapshot_bucket(objects={"a.txt": b"old", "gone.txt": b"still here"})
    version = snap(s3, source)
    s3.put_object(Bucket=source, Key="a.txt", Body=b"new")
    s3.put_object(Bucket=source, Key="later.txt", Body=b"later")
    s3.delete_object(Bucket=source, Key="gone.txt")

    fork = buckets.fork(source, snapshot_version=version)
    assert contents(s3, fork) == {"a.txt": b"old", "gone.txt": b"still here"}
    assert contents(s3, source) == {"a.txt": b"new", "later.txt": b"later"}


def test_fork_of_seed_and_fork_of_fork(s3: Any, buckets: Buckets) -> None:
    fork = buckets.fork(SEED)
    assert contents(s3, fork) == SEED_FILES
    s3.put_object(Bucket=fork, Key="manifest.json", Body=b"{}")
    grandchild = buckets.fork(fork)
    assert contents(s3, grandchild) == {**SEED_FILES, "manifest.json": b"{}"}
    assert contents(s3, SEED) == SEED_FILES


def test_context_managers(s3: Any, buckets: Buckets) -> None:
    source = buckets.name("ctx")
    with tx.TigrisSnapshotEnabled(s3):
        s3.create_bucket(Bucket=source)
    assert tx.has_snapshot_enabled(s3, source) is True
    s3.put_object(Bucket=source, Key="k", Body=b"v1")
    version = snap(s3, source)
    s3.put_object(Bucket=source, Key="k", Body=b"v2")

    fork = buckets.name("ctxfork")
    with tx.TigrisFork(s3, source, snapshot_version=version):
        s3.create_bucket(Bucket=fork)
    assert contents(s3, fork) == {"k": b"v1"}
    # The headers are gone once the context exits: a plain create is a plain bucket.
    plain = buckets.regular_bucket()
    assert tx.has_snapshot_enabled(s3, plain) is False
    assert keys(s3, plain) == []


# Bucket info


def test_get_bucket_info_snapshot_bucket(s3: Any, buckets: Buckets) -> None:
    info = tx.get_bucket_info(s3, buckets.snapshot_bucket())
    assert info["snapshot_enabled"] is True
    assert info["fork_source_bucket"] is None
    assert info["fork_source_snapshot"] is None


def test_get_bucket_info_regular_bucket(s3: Any, buckets: Buckets) -> None:
    info = tx.get_bucket_info(s3, buckets.regular_bucket())
    assert info["snapshot_enabled"] is False
    assert info["fork_source_bucket"] is None
    assert info["fork_source_snapshot"] is None
    assert headers(info["response_metadata"])["x-tigris-enable-snapshot"] == "false"


def test_get_bucket_info_fork_and_parent(s3: Any, buckets: Buckets) -> None:
    source = buckets.snapshot_bucket(objects={"k": b"v"})
    assert "x-tigris-is-fork-parent" not in headers(
        tx.get_bucket_info(s3, source)["response_metadata"]
    )
    version = snap(s3, source)
    fork = buckets.fork(source, snapshot_version=version)

    info = tx.get_bucket_info(s3, fork)
    assert info["snapshot_enabled"] is True
    assert info["fork_source_bucket"] == source
    assert info["fork_source_snapshot"] == version

    parent = tx.get_bucket_info(s3, source)
    assert parent["snapshot_enabled"] is True
    assert parent["fork_source_bucket"] is None
    assert parent["fork_source_snapshot"] is None
    assert headers(parent["response_metadata"])["x-tigris-is-fork-parent"] == "true"


def test_get_bucket_info_fork_from_current_state(s3: Any, buckets: Buckets) -> None:
    source = buckets.snapshot_bucket(objects={"k": b"v"})
    before = snap(s3, source)
    fork = buckets.fork(source)
    info = tx.get_bucket_info(s3, fork)
    assert info["fork_source_bucket"] == source
    implicit = info["fork_source_snapshot"]
    assert implicit is not None and implicit.isdigit()
    assert int(implicit) > int(before)


def test_has_snapshot_enabled(s3: Any, buckets: Buckets) -> None:
    source = buckets.snapshot_bucket()
    assert tx.has_snapshot_enabled(s3, source) is True
    assert tx.has_snapshot_enabled(s3, buckets.regular_bucket()) is False
    assert tx.has_snapshot_enabled(s3, buckets.fork(source)) is True


def test_list_forks(s3: Any, buckets: Buckets) -> None:
    source = buckets.snapshot_bucket(objects={"k": b"v"})
    assert tx.list_forks(s3, source)["buckets"] == []

    named = snap(s3, source, "release")
    pinned = buckets.fork(source, snapshot_version=named)
    current = buckets.fork(source)
    grandchild = buckets.fork(pinned)

    listed = {entry["name"]: entry for entry in tx.list_forks(s3, source)["buckets"]}
    assert set(listed) == {pinned, current}
    for entry in listed.values():
        assert isinstance(entry["created_at"], datetime)
        [parent] = entry["fork_parents"]
        assert parent["bucket"] == source
        assert isinstance(parent["forked_at"], datetime)
        assert isinstance(parent["snapshot_created_at"], datetime)
    pinned_parent = listed[pinned]["fork_parents"][0]
    assert pinned_parent["snapshot"] == named
    assert pinned_parent["snapshot_name"] == "release"
    current_parent = listed[current]["fork_parents"][0]
    assert current_parent["snapshot"] is not None and current_parent["snapshot"].isdigit()
    assert current_parent["snapshot_name"] is None
    assert listed[pinned]["is_fork_parent"] is True
    assert listed[current]["is_fork_parent"] is False

    assert [e["name"] for e in tx.list_forks(s3, pinned)["buckets"]] == [grandchild]
    assert tx.list_forks(s3, grandchild)["buckets"] == []


def test_list_forks_of_missing_source_is_403(s3: Any, unique: Callable[[str], str]) -> None:
    with pytest.raises(tx.TigrisAPIError) as exc:
        tx.list_forks(s3, unique("missing"))
    assert exc.value.status_code == 403
    assert exc.value.code == "AccessDenied"


def test_get_bucket_metadata(s3: Any, buckets: Buckets) -> None:
    source = buckets.snapshot_bucket(objects={"k": b"v"})
    meta = tx.get_bucket_metadata(s3, source)
    assert meta["name"] == source
    assert isinstance(meta["created_at"], datetime)
    assert meta["snapshot_enabled"] is True
    assert meta["is_fork_parent"] is False
    assert meta["fork_parents"] == []
    assert meta["size"] is None

    version = snap(s3, source, "meta")
    fork = buckets.fork(source, snapshot_version=version)
    child = tx.get_bucket_metadata(s3, fork)
    assert child["name"] == fork
    assert child["snapshot_enabled"] is True
    [parent] = child["fork_parents"]
    assert parent["bucket"] == source
    assert parent["snapshot"] == version
    assert parent["snapshot_name"] == "meta"
    assert tx.get_bucket_metadata(s3, source)["is_fork_parent"] is True

    regular = tx.get_bucket_metadata(s3, buckets.regular_bucket())
    assert regular["snapshot_enabled"] is False
    assert regular["fork_parents"] == []


def test_get_bucket_metadata_of_missing_bucket_is_404(
    s3: Any, unique: Callable[[str], str]
) -> None:
    with pytest.raises(tx.TigrisAPIError) as exc:
        tx.get_bucket_metadata(s3, unique("missing"))
    assert exc.value.status_code == 404
    assert exc.value.code == "NoSuchBucket"


# Deletion


def test_force_delete_bucket(s3: Any, buckets: Buckets) -> None:
    bucket = buckets.snapshot_bucket(objects={"a": b"1", "b/c": b"2"})
    s3.put_object(Bucket=bucket, Key="a", Body=b"overwritten")
    s3.delete_object(Bucket=bucket, Key="b/c")
    snap(s3, bucket)
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "BucketNotEmpty"

    tx.force_delete_bucket(s3, bucket)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=bucket)
    assert status(exc.value) == 404
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_force_delete_regular_bucket(s3: Any, buckets: Buckets) -> None:
    bucket = buckets.regular_bucket()
    s3.put_object(Bucket=bucket, Key="x", Body=b"x")
    tx.force_delete_bucket(s3, bucket)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=bucket)
    assert status(exc.value) == 404


def test_force_delete_refuses_a_parent_with_forks(s3: Any, buckets: Buckets) -> None:
    source = buckets.snapshot_bucket(objects={"k": b"v"})
    fork = buckets.fork(source)
    with pytest.raises(ClientError) as exc:
        tx.force_delete_bucket(s3, source)
    assert status(exc.value) == 409
    assert body(s3, source, "k") == b"v"
    assert body(s3, fork, "k") == b"v"

    tx.force_delete_bucket(s3, fork)
    tx.force_delete_bucket(s3, source)
    for name in (fork, source):
        with pytest.raises(ClientError) as exc:
            s3.head_bucket(Bucket=name)
        assert status(exc.value) == 404
