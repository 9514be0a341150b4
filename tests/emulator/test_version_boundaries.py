"""Permanent version deletes stay on their side of every snapshot and fork boundary.

Deleting a version by id changes the bucket's current state and version listing only: the
bucket's earlier snapshots and every fork made while the version was visible keep reading it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorServer
from tests.helpers import (
    body,
    call_with,
    create_snapshot_bucket,
    error_code,
    force_delete,
    fork,
    keys,
    make_client,
    snapshot,
)


@pytest.fixture
def make(s3: Any, unique: Callable[[str], str], buckets: list[str]) -> Callable[..., str]:
    """Create a snapshot-enabled bucket (no source) or a fork of ``source`` (at ``at``)."""

    def create(source: str | None = None, at: str | None = None) -> str:
        name = unique("vb")
        if source is None:
            create_snapshot_bucket(s3, name)
        else:
            fork(s3, name, source, at)
        buckets.append(name)
        return name

    return create


def at(version: str) -> dict[str, str]:
    return {"X-Tigris-Snapshot-Version": version}


def read_at(s3: Any, bucket: str, key: str, version: str) -> bytes:
    return bytes(call_with(s3, at(version), "get_object", Bucket=bucket, Key=key)["Body"].read())


def missing(s3: Any, bucket: str, key: str, version: str | None = None) -> tuple[int, str]:
    """The error a GetObject of ``key`` answers (at ``version`` when given)."""
    with pytest.raises(ClientError) as exc:
        if version is None:
            s3.get_object(Bucket=bucket, Key=key)
        else:
            call_with(s3, at(version), "get_object", Bucket=bucket, Key=key)
    return error_code(exc)


def version_ids(s3: Any, bucket: str, key: str) -> list[str]:
    """Version ids of ``key`` (objects and delete markers), newest first."""
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    entries = listing.get("Versions", []) + listing.get("DeleteMarkers", [])
    entries = [e for e in entries if e["Key"] == key]
    entries.sort(key=lambda e: e["LastModified"], reverse=True)
    return [str(e["VersionId"]) for e in entries]


def test_deleting_the_only_version_keeps_it_in_snapshots_and_forks(
    s3: Any, make: Callable[..., str]
) -> None:
    seed = make()
    v1 = s3.put_object(Bucket=seed, Key="k", Body=b"v1")["VersionId"]
    snap = snapshot(s3, seed)
    pinned = make(seed, snap)
    live = make(seed)

    s3.delete_object(Bucket=seed, Key="k", VersionId=v1)

    assert missing(s3, seed, "k") == (404, "NoSuchKey")
    assert keys(s3, seed) == []
    assert version_ids(s3, seed, "k") == []
    assert read_at(s3, seed, "k", snap) == b"v1"
    assert body(s3, pinned, "k") == b"v1"
    assert body(s3, live, "k") == b"v1"
    assert keys(s3, pinned) == ["k"]
    assert keys(s3, live) == ["k"]
    assert s3.head_object(Bucket=live, Key="k")["VersionId"] == v1
    listing = call_with(s3, at(snap), "list_objects_v2", Bucket=seed)
    assert [o["Key"] for o in listing["Contents"]] == ["k"]


def test_deleting_the_latest_version_brings_back_the_previous_one_in_that_bucket_only(
    s3: Any, make: Callable[..., str]
) -> None:
    seed = make()
    s3.put_object(Bucket=seed, Key="k", Body=b"v1")
    v2 = s3.put_object(Bucket=seed, Key="k", Body=b"v2")["VersionId"]
    snap = snapshot(s3, seed)
    child = make(seed, snap)

    s3.delete_object(Bucket=seed, Key="k", VersionId=v2)

    assert body(s3, seed, "k") == b"v1"
    assert read_at(s3, seed, "k", snap) == b"v2"
    assert body(s3, child, "k") == b"v2"
    assert s3.head_object(Bucket=child, Key="k")["VersionId"] == v2


def test_deleting_a_delete_marker_version_stays_in_that_bucket(
    s3: Any, make: Callable[..., str]
) -> None:
    seed = make()
    s3.put_object(Bucket=seed, Key="k", Body=b"v1")
    marker = s3.delete_object(Bucket=seed, Key="k")["VersionId"]
    snap = snapshot(s3, seed)
    child = make(seed, snap)
    live = make(seed)

    s3.delete_object(Bucket=seed, Key="k", VersionId=marker)

    assert body(s3, seed, "k") == b"v1"
    assert keys(s3, seed) == ["k"]
    assert missing(s3, seed, "k", snap) == (404, "NoSuchKey")
    assert missing(s3, child, "k") == (404, "NoSuchKey")
    assert missing(s3, live, "k") == (404, "NoSuchKey")
    assert keys(s3, child) == []
    assert keys(s3, live) == []


def test_deleting_versions_through_delete_objects_keeps_them_in_forks(
    s3: Any, make: Callable[..., str]
) -> None:
    seed = make()
    ids = {k: s3.put_object(Bucket=seed, Key=k, Body=k.encode())["VersionId"] for k in "ab"}
    child = make(seed)

    answer = s3.delete_objects(
        Bucket=seed,
        Delete={"Objects": [{"Key": k, "VersionId": v} for k, v in ids.items()]},
    )

    assert sorted(d["Key"] for d in answer["Deleted"]) == ["a", "b"]
    assert keys(s3, seed) == []
    assert keys(s3, child) == ["a", "b"]
    assert body(s3, child, "a") == b"a"
    assert body(s3, child, "b") == b"b"


def test_a_fork_of_a_fork_keeps_what_its_parent_fork_deletes(
    s3: Any, make: Callable[..., str]
) -> None:
    seed = make()
    s3.put_object(Bucket=seed, Key="inherited", Body=b"from-seed")
    child = make(seed)
    own = s3.put_object(Bucket=child, Key="own", Body=b"child-own")["VersionId"]
    s3.put_object(Bucket=child, Key="two", Body=b"one")
    second = s3.put_object(Bucket=child, Key="two", Body=b"two")["VersionId"]
    inherited = s3.head_object(Bucket=child, Key="inherited")["VersionId"]
    child_snap = snapshot(s3, child)
    grandchild = make(child, child_snap)
    live_grandchild = make(child)

    s3.delete_object(Bucket=child, Key="own", VersionId=own)
    s3.delete_object(Bucket=child, Key="inherited", VersionId=inherited)
    s3.delete_object(Bucket=child, Key="two", VersionId=second)

    assert keys(s3, child) == ["two"]
    assert body(s3, child, "two") == b"one"
    assert body(s3, seed, "inherited") == b"from-seed"
    for reader in (grandchild, live_grandchild):
        assert keys(s3, reader) == ["inherited", "own", "two"]
        assert body(s3, reader, "own") == b"child-own"
        assert body(s3, reader, "inherited") == b"from-seed"
        assert body(s3, reader, "two") == b"two"
    assert read_at(s3, child, "own", child_snap) == b"child-own"
    assert read_at(s3, child, "inherited", child_snap) == b"from-seed"
    assert read_at(s3, child, "two", child_snap) == b"two"


def test_a_version_kept_for_a_fork_outlives_a_deleted_snapshot_and_sibling(
    s3: Any, make: Callable[..., str]
) -> None:
    seed = make()
    v1 = s3.put_object(Bucket=seed, Key="k", Body=b"v1")["VersionId"]
    snap = snapshot(s3, seed)
    first = make(seed, snap)
    second = make(seed)

    s3.delete_object(Bucket=seed, Key="k", VersionId=v1)
    call_with(s3, at(snap), "delete_bucket", Bucket=seed)
    force_delete(s3, first)

    assert body(s3, second, "k") == b"v1"
    force_delete(s3, second)
    assert missing(s3, seed, "k") == (404, "NoSuchKey")
    assert keys(s3, seed) == []


def test_a_version_deleted_in_a_fork_is_kept_for_its_own_snapshot(
    s3: Any, make: Callable[..., str]
) -> None:
    seed = make()
    s3.put_object(Bucket=seed, Key="k", Body=b"seed")
    child = make(seed)
    own = s3.put_object(Bucket=child, Key="k", Body=b"child")["VersionId"]
    snap = snapshot(s3, child)

    s3.delete_object(Bucket=child, Key="k", VersionId=own)

    assert body(s3, child, "k") == b"seed"
    assert read_at(s3, child, "k", snap) == b"child"
    assert body(s3, seed, "k") == b"seed"


def _store(name: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[name].keys


def test_a_deleted_version_is_released_once_nothing_can_read_it(
    unique: Callable[[str], str],
) -> None:
    # An emulator in this process, so the test can see which versions still hold their bytes.
    with EmulatorServer(port=0) as server:
        local = make_client(server.endpoint_url)
        seed = unique("vb")
        create_snapshot_bucket(local, seed)
        v1 = local.put_object(Bucket=seed, Key="k", Body=b"v1")["VersionId"]
        unread = local.put_object(Bucket=seed, Key="other", Body=b"x")["VersionId"]
        snap = snapshot(local, seed)
        pinned = unique("vb")
        fork(local, pinned, seed, snap)
        live = unique("vb")
        fork(local, live, seed)
        kept = _store(seed).getlist("k")[0]
        local.put_object(Bucket=seed, Key="late", Body=b"after every reader")
        late = _store(seed).getlist("late")[0]

        local.delete_object(Bucket=seed, Key="k", VersionId=v1)
        local.delete_object(Bucket=seed, Key="late", VersionId=late.version_id)
        assert late.disposed
        assert _store(seed).retired_count() == 1

        call_with(local, at(snap), "delete_bucket", Bucket=seed)
        force_delete(local, pinned)
        assert not kept.disposed
        assert body(local, live, "other") == b"x"
        assert local.head_object(Bucket=live, Key="other")["VersionId"] == unread

        force_delete(local, live)
        assert kept.disposed
        assert _store(seed).retired_count() == 0
        force_delete(local, seed)
