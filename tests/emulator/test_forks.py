"""Forks: inheritance, isolation both ways, snapshots, forks of forks, delete orders, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import (
    SEED,
    SEED_FILES,
    body,
    call_with,
    create_snapshot_bucket,
    error_code,
    force_delete,
    fork,
    keys,
    snapshot,
)


def error_code_of(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


@pytest.fixture
def source(s3: Any, unique: Callable[[str], str], buckets: list[str]) -> str:
    """A fresh snapshot-enabled bucket with a few objects, free to write to."""
    name = unique("src")
    create_snapshot_bucket(s3, name)
    buckets.append(name)
    for key in ("a", "b", "c", "dir/d"):
        s3.put_object(Bucket=name, Key=key, Body=f"src-{key}".encode())
    return name


def new_fork(
    s3: Any, buckets: list[str], unique: Callable[[str], str], src: str, at: str | None = None
) -> str:
    name = unique("fork")
    result = fork(s3, name, src, at)
    assert result["Location"] == f"/{name}"
    buckets.append(name)
    return name


def all_bytes(s3: Any, bucket: str) -> dict[str, bytes]:
    return {key: body(s3, bucket, key) for key in keys(s3, bucket)}


def test_fork_inherits_every_key_and_byte_of_the_seed(
    s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> None:
    name = new_fork(s3, buckets, unique, SEED)
    assert all_bytes(s3, name) == SEED_FILES
    for key, data in SEED_FILES.items():
        head = s3.head_object(Bucket=name, Key=key)
        assert head["ContentLength"] == len(data)
        assert head["ETag"] == s3.head_object(Bucket=SEED, Key=key)["ETag"]
    assert all_bytes(s3, SEED) == SEED_FILES


def test_writes_in_a_fork_never_reach_the_source(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    before = all_bytes(s3, source)
    child = new_fork(s3, buckets, unique, source)
    s3.put_object(Bucket=child, Key="a", Body=b"overwritten in fork")
    s3.delete_object(Bucket=child, Key="b")
    s3.delete_objects(Bucket=child, Delete={"Objects": [{"Key": "dir/d"}]})
    s3.put_object(Bucket=child, Key="new", Body=b"only in fork")
    s3.put_object_tagging(
        Bucket=child, Key="c", Tagging={"TagSet": [{"Key": "who", "Value": "fork"}]}
    )
    s3.put_object_acl(Bucket=child, Key="c", ACL="public-read")
    s3.copy_object(Bucket=child, Key="copied", CopySource={"Bucket": child, "Key": "c"})

    assert all_bytes(s3, child) == {
        "a": b"overwritten in fork",
        "c": b"src-c",
        "copied": b"src-c",
        "new": b"only in fork",
    }
    assert all_bytes(s3, source) == before
    assert s3.get_object_tagging(Bucket=source, Key="c")["TagSet"] == []
    assert s3.get_object_tagging(Bucket=child, Key="c")["TagSet"] == [
        {"Key": "who", "Value": "fork"}
    ]
    grants = s3.get_object_acl(Bucket=source, Key="c")["Grants"]
    assert all("AllUsers" not in str(g.get("Grantee")) for g in grants)


def test_writes_in_the_source_never_reach_the_fork(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    child = new_fork(s3, buckets, unique, source)
    expected = all_bytes(s3, child)
    s3.put_object(Bucket=source, Key="a", Body=b"source changed")
    s3.delete_object(Bucket=source, Key="b")
    s3.put_object(Bucket=source, Key="later", Body=b"after the fork")
    s3.put_object_tagging(
        Bucket=source, Key="c", Tagging={"TagSet": [{"Key": "who", "Value": "source"}]}
    )
    assert all_bytes(s3, child) == expected
    assert s3.get_object_tagging(Bucket=child, Key="c")["TagSet"] == []


def test_tags_of_the_source_are_inherited(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    s3.put_object_tagging(
        Bucket=source, Key="a", Tagging={"TagSet": [{"Key": "tier", "Value": "gold"}]}
    )
    child = new_fork(s3, buckets, unique, source)
    assert s3.get_object_tagging(Bucket=child, Key="a")["TagSet"] == [
        {"Key": "tier", "Value": "gold"}
    ]
    s3.delete_object_tagging(Bucket=child, Key="a")
    assert s3.get_object_tagging(Bucket=source, Key="a")["TagSet"] == [
        {"Key": "tier", "Value": "gold"}
    ]


def test_multipart_uploads_are_isolated(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    part = b"P" * (5 * 1024 * 1024)

    def upload(bucket: str, key: str, tail: bytes) -> None:
        started = s3.create_multipart_upload(Bucket=bucket, Key=key)
        parts = []
        for number, data in enumerate([part, tail], start=1):
            etag = s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=started["UploadId"],
                PartNumber=number,
                Body=data,
            )["ETag"]
            parts.append({"ETag": etag, "PartNumber": number})
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=started["UploadId"],
            MultipartUpload={"Parts": parts},
        )

    upload(source, "big", b"source tail")
    child = new_fork(s3, buckets, unique, source)
    assert body(s3, child, "big") == part + b"source tail"
    upload(child, "big", b"fork tail")
    upload(child, "fork-only", b"x")
    pending = s3.create_multipart_upload(Bucket=child, Key="pending")
    assert body(s3, source, "big") == part + b"source tail"
    assert "fork-only" not in keys(s3, source)
    assert s3.list_multipart_uploads(Bucket=source).get("Uploads", []) == []
    s3.abort_multipart_upload(Bucket=child, Key="pending", UploadId=pending["UploadId"])
    # Deleting the source's copy leaves the fork's inherited-then-overwritten bytes alone.
    force_delete(s3, child)
    buckets.remove(child)
    assert body(s3, source, "big") == part + b"source tail"


def test_sibling_forks_are_isolated(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    left = new_fork(s3, buckets, unique, source)
    right = new_fork(s3, buckets, unique, source)
    s3.put_object(Bucket=left, Key="a", Body=b"left")
    s3.delete_object(Bucket=right, Key="a")
    assert body(s3, left, "a") == b"left"
    assert "a" not in keys(s3, right)
    assert body(s3, source, "a") == b"src-a"


def test_fork_from_a_snapshot_sees_that_snapshot(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    version = snapshot(s3, source, name="pinned")
    s3.put_object(Bucket=source, Key="a", Body=b"after snapshot")
    s3.delete_object(Bucket=source, Key="b")
    s3.put_object(Bucket=source, Key="z", Body=b"after snapshot")
    child = new_fork(s3, buckets, unique, source, at=version)
    assert all_bytes(s3, child) == {
        "a": b"src-a",
        "b": b"src-b",
        "c": b"src-c",
        "dir/d": b"src-dir/d",
    }
    headers = s3.head_bucket(Bucket=child)["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-tigris-fork-source-bucket"] == source
    assert headers["x-tigris-fork-source-bucket-snapshot"] == version
    # Snapshot reads of the source are not changed by the fork's writes.
    s3.put_object(Bucket=child, Key="a", Body=b"fork")
    at = {"X-Tigris-Snapshot-Version": version}
    assert call_with(s3, at, "get_object", Bucket=source, Key="a")["Body"].read() == b"src-a"


def test_fork_from_current_state_reports_an_implicit_snapshot(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    child = new_fork(s3, buckets, unique, source)
    headers = s3.head_bucket(Bucket=child)["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-tigris-enable-snapshot"] == "true"
    assert headers["x-tigris-fork-source-bucket"] == source
    assert len(headers["x-tigris-fork-source-bucket-snapshot"]) == 19
    parent = s3.head_bucket(Bucket=source)["ResponseMetadata"]["HTTPHeaders"]
    assert parent["x-tigris-is-fork-parent"] == "true"
    assert "x-tigris-fork-source-bucket" not in parent
    force_delete(s3, child)
    buckets.remove(child)
    parent = s3.head_bucket(Bucket=source)["ResponseMetadata"]["HTTPHeaders"]
    assert "x-tigris-is-fork-parent" not in parent


def test_forks_of_forks(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    child = new_fork(s3, buckets, unique, source)
    s3.put_object(Bucket=child, Key="a", Body=b"child")
    s3.delete_object(Bucket=child, Key="b")
    child_version = snapshot(s3, child)
    s3.put_object(Bucket=child, Key="c", Body=b"child after snapshot")
    grandchild = new_fork(s3, buckets, unique, child, at=child_version)
    s3.put_object(Bucket=grandchild, Key="dir/d", Body=b"grandchild")
    great = new_fork(s3, buckets, unique, grandchild)
    s3.delete_object(Bucket=great, Key="a")

    assert all_bytes(s3, grandchild) == {"a": b"child", "c": b"src-c", "dir/d": b"grandchild"}
    assert all_bytes(s3, great) == {"c": b"src-c", "dir/d": b"grandchild"}
    assert all_bytes(s3, child) == {
        "a": b"child",
        "c": b"child after snapshot",
        "dir/d": b"src-dir/d",
    }
    assert all_bytes(s3, source) == {
        "a": b"src-a",
        "b": b"src-b",
        "c": b"src-c",
        "dir/d": b"src-dir/d",
    }
    headers = s3.head_bucket(Bucket=great)["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-tigris-fork-source-bucket"] == grandchild


def test_listing_a_fork_merges_inherited_and_own_keys(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    child = new_fork(s3, buckets, unique, source)
    s3.put_object(Bucket=child, Key="dir/e", Body=b"e")
    s3.delete_object(Bucket=child, Key="a")
    assert keys(s3, child, PaginationConfig={"PageSize": 2}) == ["b", "c", "dir/d", "dir/e"]
    top = s3.list_objects_v2(Bucket=child, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["dir/"]
    assert [o["Key"] for o in top["Contents"]] == ["b", "c"]
    assert keys(s3, child, Prefix="dir/") == ["dir/d", "dir/e"]
    versions = s3.list_object_versions(Bucket=child, Prefix="b")
    assert [v["Key"] for v in versions["Versions"]] == ["b"]


def test_versions_and_delete_markers_in_a_fork(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    child = new_fork(s3, buckets, unique, source)
    inherited = s3.head_object(Bucket=child, Key="a")["VersionId"]
    assert inherited == s3.head_object(Bucket=source, Key="a")["VersionId"]
    new_version = s3.put_object(Bucket=child, Key="a", Body=b"v2")["VersionId"]
    # Removing the fork's own version brings back the inherited one...
    s3.delete_object(Bucket=child, Key="a", VersionId=new_version)
    assert body(s3, child, "a") == b"src-a"
    # ...and permanently deleting the inherited version in the fork hides it for good.
    s3.delete_object(Bucket=child, Key="a", VersionId=inherited)
    assert "a" not in keys(s3, child)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=child, Key="a")
    assert body(s3, source, "a") == b"src-a"


def test_delete_orders_never_break_the_others(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    version = snapshot(s3, source)
    child = new_fork(s3, buckets, unique, source, at=version)
    grandchild = new_fork(s3, buckets, unique, child)

    # Parent first: refused even with force, and nothing is harmed.
    for parent in (source, child):
        with pytest.raises(ClientError) as exc:
            force_delete(s3, parent)
        assert error_code(exc) == (409, "BucketHasForks")
    # Deleting the snapshot a fork was made from leaves the fork intact.
    call_with(s3, {"X-Tigris-Snapshot-Version": version}, "delete_bucket", Bucket=source)
    assert body(s3, grandchild, "a") == b"src-a"
    assert body(s3, child, "b") == b"src-b"

    # Children first, then parents.
    force_delete(s3, grandchild)
    assert body(s3, child, "a") == b"src-a"
    force_delete(s3, child)
    assert body(s3, source, "a") == b"src-a"
    force_delete(s3, source)
    buckets.clear()


def test_deleting_a_source_key_keeps_materialised_fork_bytes(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    child = new_fork(s3, buckets, unique, source)
    assert body(s3, child, "a") == b"src-a"  # materialised in the fork
    version = s3.head_object(Bucket=source, Key="a")["VersionId"]
    s3.delete_object(Bucket=source, Key="a", VersionId=version)  # retired: the fork sees it
    assert body(s3, child, "a") == b"src-a"


@pytest.mark.parametrize(
    ("source_name", "snapshot_version", "status", "code"),
    [
        ("no-such-source-bucket", None, 404, "NoSuchBucket"),
        (SEED, "1234567890123456789", 404, "NoSuchSnapshot"),
    ],
)
def test_fork_errors(
    s3: Any,
    unique: Callable[[str], str],
    source_name: str,
    snapshot_version: str | None,
    status: int,
    code: str,
) -> None:
    name = unique("bad")
    with pytest.raises(ClientError) as exc:
        fork(s3, name, source_name, snapshot_version)
    assert error_code(exc) == (status, code)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_fork_of_a_regular_bucket_is_refused(s3: Any, unique: Callable[[str], str]) -> None:
    regular = unique("regular")
    s3.create_bucket(Bucket=regular)
    try:
        with pytest.raises(ClientError) as exc:
            fork(s3, unique("bad"), regular)
        assert error_code(exc)[0] == 400
        assert "X-Tigris-Enable-Snapshot" in exc.value.response["Error"]["Message"]
    finally:
        s3.delete_bucket(Bucket=regular)


def test_fork_name_must_be_new_and_valid(
    s3: Any, unique: Callable[[str], str], buckets: list[str], source: str
) -> None:
    existing = new_fork(s3, buckets, unique, source)
    with pytest.raises(ClientError) as exc:
        fork(s3, existing, source)
    assert error_code(exc) == (409, "BucketAlreadyOwnedByYou")
    with pytest.raises(ClientError) as exc:
        fork(s3, source, source)
    assert error_code(exc)[0] == 409
    with pytest.raises(ClientError) as exc:
        fork(s3, "Bad_Name", source)
    assert error_code(exc) == (400, "InvalidBucketName")
