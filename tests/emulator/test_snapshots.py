"""Snapshots: versions, names, listing, reads at a version, deletion."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import (
    body,
    call_with,
    create_snapshot_bucket,
    error_code,
    force_delete,
    keys,
    snapshot,
)


@pytest.fixture
def bucket(s3: Any, unique: Callable[[str], str]) -> Iterator[str]:
    name = unique("snap")
    create_snapshot_bucket(s3, name)
    yield name
    force_delete(s3, name)


def list_snapshots(s3: Any, bucket: str) -> list[dict[str, Any]]:
    result = call_with(s3, {"X-Tigris-Snapshot": bucket}, "list_buckets")
    return list(result["Buckets"])


def test_snapshot_version_is_19_digit_monotonic_ns(s3: Any, bucket: str) -> None:
    before = time.time_ns()
    versions = [snapshot(s3, bucket) for _ in range(5)]
    after = time.time_ns()
    for version in versions:
        assert len(version) == 19 and version.isdigit()
        # The emulator runs on this machine's clock.
        assert before - 10**9 <= int(version) <= after + 10**9
    assert [int(v) for v in versions] == sorted(int(v) for v in set(versions))


def test_named_snapshots_are_listed_newest_first(s3: Any, bucket: str) -> None:
    assert list_snapshots(s3, bucket) == []
    first = snapshot(s3, bucket)
    second = snapshot(s3, bucket, name="before migration")
    listed = list_snapshots(s3, bucket)
    assert [b["Name"] for b in listed] == [f"{second}; name=before migration", first]
    assert all(b["CreationDate"] is not None for b in listed)


def test_listing_snapshots_of_regular_bucket_is_empty_not_error(
    s3: Any, unique: Callable[[str], str]
) -> None:
    name = unique("regular")
    s3.create_bucket(Bucket=name)
    try:
        result = call_with(s3, {"X-Tigris-Snapshot": name}, "list_buckets")
        # botocore only sets "Buckets" when the XML has a <Buckets> element.
        assert result["Buckets"] == []
    finally:
        s3.delete_bucket(Bucket=name)


def test_snapshot_of_regular_or_missing_bucket_fails(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("regular")
    s3.create_bucket(Bucket=name)
    try:
        with pytest.raises(ClientError) as exc:
            snapshot(s3, name)
        status, _ = error_code(exc)
        assert status == 400
        assert "snapshot-enabled" in exc.value.response["Error"]["Message"]
    finally:
        s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as missing:
        snapshot(s3, "no-such-bucket-for-snap")
    assert error_code(missing) == (404, "NoSuchBucket")


def test_reads_at_a_snapshot_see_the_past(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="kept", Body=b"v1")
    s3.put_object(Bucket=bucket, Key="changed", Body=b"old")
    s3.put_object(Bucket=bucket, Key="deleted", Body=b"bye")
    version = snapshot(s3, bucket)
    s3.put_object(Bucket=bucket, Key="changed", Body=b"new!")
    s3.delete_object(Bucket=bucket, Key="deleted")
    s3.put_object(Bucket=bucket, Key="added", Body=b"later")
    at = {"X-Tigris-Snapshot-Version": version}

    got = call_with(s3, at, "get_object", Bucket=bucket, Key="changed")
    assert got["Body"].read() == b"old"
    assert call_with(s3, at, "head_object", Bucket=bucket, Key="changed")["ContentLength"] == 3
    assert call_with(s3, at, "get_object", Bucket=bucket, Key="deleted")["Body"].read() == b"bye"
    with pytest.raises(ClientError) as exc:
        call_with(s3, at, "get_object", Bucket=bucket, Key="added")
    assert error_code(exc) == (404, "NoSuchKey")

    v2 = call_with(s3, at, "list_objects_v2", Bucket=bucket)
    assert v2["Name"] == bucket
    assert [o["Key"] for o in v2["Contents"]] == ["changed", "deleted", "kept"]
    v1 = call_with(s3, at, "list_objects", Bucket=bucket, Prefix="d")
    assert [o["Key"] for o in v1["Contents"]] == ["deleted"]

    # The live bucket is unaffected, and no snapshot view leaks into ListBuckets.
    assert body(s3, bucket, "changed") == b"new!"
    assert keys(s3, bucket) == ["added", "changed", "kept"]
    assert all("snapshot-view" not in b["Name"] for b in s3.list_buckets()["Buckets"])


def test_any_nanosecond_timestamp_can_be_read(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    between = str(time.time_ns())
    time.sleep(0.01)
    s3.put_object(Bucket=bucket, Key="k", Body=b"2")
    at = {"X-Tigris-Snapshot-Version": between}
    assert call_with(s3, at, "get_object", Bucket=bucket, Key="k")["Body"].read() == b"1"


def test_writes_with_a_snapshot_header_go_to_the_live_bucket(s3: Any, bucket: str) -> None:
    version = snapshot(s3, bucket)
    call_with(
        s3, {"X-Tigris-Snapshot-Version": version}, "put_object", Bucket=bucket, Key="w", Body=b"w"
    )
    assert body(s3, bucket, "w") == b"w"


def test_delete_one_snapshot(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    first = snapshot(s3, bucket)
    second = snapshot(s3, bucket, name="two")
    call_with(s3, {"X-Tigris-Snapshot-Version": first}, "delete_bucket", Bucket=bucket)
    assert [b["Name"] for b in list_snapshots(s3, bucket)] == [f"{second}; name=two"]
    assert body(s3, bucket, "k") == b"1"  # the bucket itself survives
    with pytest.raises(ClientError) as exc:
        call_with(s3, {"X-Tigris-Snapshot-Version": first}, "delete_bucket", Bucket=bucket)
    assert error_code(exc)[0] == 404


def test_snapshot_reads_of_multipart_objects(s3: Any, bucket: str) -> None:
    part = b"m" * (5 * 1024 * 1024)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    parts = []
    for number, data in enumerate([part, b"end"], start=1):
        result = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=data
        )
        parts.append({"ETag": result["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    version = snapshot(s3, bucket)
    s3.put_object(Bucket=bucket, Key="mp", Body=b"small now")
    at = {"X-Tigris-Snapshot-Version": version}
    assert call_with(s3, at, "get_object", Bucket=bucket, Key="mp")["Body"].read() == part + b"end"
