"""Buckets on the emulator: creation rules, HeadBucket headers, deletes and force deletes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import (
    SEED,
    body,
    call_with,
    create_snapshot_bucket,
    error_code,
    force_delete,
    keys,
)


def test_create_bucket_returns_location_and_lists(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("plain")
    result = s3.create_bucket(Bucket=name)
    assert result["Location"] == f"/{name}"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_location_constraint_auto_is_accepted(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("auto")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "auto"})
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    assert body(s3, name, "k") == b"v"
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)


def test_existing_name_is_refused_with_409(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("dup")
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert error_code(exc) == (409, "BucketAlreadyOwnedByYou")
    s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "Upper-case",
        "under_score",
        "-dash-first",
        "dash-last-",
        "a..b",
        "192.168.1.1",
    ],
)
def test_invalid_bucket_names_are_refused(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        call_with(s3, {"X-Tigris-Enable-Snapshot": "true"}, "create_bucket", Bucket=name)
    assert error_code(exc) == (400, "InvalidBucketName")


def test_head_bucket_reports_snapshot_flag(s3: Any, unique: Callable[[str], str]) -> None:
    plain, snap = unique("plain"), unique("snap")
    s3.create_bucket(Bucket=plain)
    create_snapshot_bucket(s3, snap)
    try:
        plain_headers = s3.head_bucket(Bucket=plain)["ResponseMetadata"]["HTTPHeaders"]
        snap_headers = s3.head_bucket(Bucket=snap)["ResponseMetadata"]["HTTPHeaders"]
        assert plain_headers["x-tigris-enable-snapshot"] == "false"
        assert snap_headers["x-tigris-enable-snapshot"] == "true"
        assert "x-tigris-fork-source-bucket" not in snap_headers
        assert "x-tigris-is-fork-parent" not in snap_headers
    finally:
        s3.delete_bucket(Bucket=plain)
        s3.delete_bucket(Bucket=snap)


def test_head_bucket_missing_is_404(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="no-such-bucket-here")
    assert error_code(exc)[0] == 404


def test_plain_delete_of_non_empty_bucket_is_409(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("full")
    create_snapshot_bucket(s3, name)
    s3.put_object(Bucket=name, Key="a", Body=b"1")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=name)
    assert error_code(exc) == (409, "BucketNotEmpty")
    assert keys(s3, name) == ["a"]
    force_delete(s3, name)


@pytest.mark.parametrize("header", ["X-Tigris-Force-Delete", "Tigris-Force-Delete"])
def test_force_delete_removes_bucket_and_contents(
    s3: Any, unique: Callable[[str], str], header: str
) -> None:
    name = unique("force")
    create_snapshot_bucket(s3, name)
    for i in range(25):
        s3.put_object(Bucket=name, Key=f"k{i}", Body=b"x" * i)
    s3.put_object(Bucket=name, Key="k0", Body=b"overwritten")  # a second version
    s3.delete_object(Bucket=name, Key="k1")  # a delete marker
    s3.create_multipart_upload(Bucket=name, Key="unfinished")
    call_with(s3, {header: "true"}, "delete_bucket", Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert error_code(exc)[0] == 404
    # The name is free again, and the new bucket starts empty.
    s3.create_bucket(Bucket=name)
    assert keys(s3, name) == []
    s3.delete_bucket(Bucket=name)


def test_force_delete_of_plain_bucket(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("plainforce")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="a", Body=b"1")
    force_delete(s3, name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_delete_missing_bucket_is_404(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        call_with(s3, {"X-Tigris-Force-Delete": "true"}, "delete_bucket", Bucket="gone-bucket-x")
    assert error_code(exc) == (404, "NoSuchBucket")


def test_snapshot_buckets_are_versioned(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("ver")
    create_snapshot_bucket(s3, name)
    first = s3.put_object(Bucket=name, Key="k", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=name, Key="k", Body=b"2")["VersionId"]
    # Tigris version ids are 19-digit nanosecond timestamps, strictly increasing.
    assert len(first) == 19 and first.isdigit()
    assert int(second) > int(first)
    assert body(s3, name, "k", VersionId=first) == b"1"
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    assert error_code(exc)[0] == 400
    force_delete(s3, name)


def test_plain_s3_operations_work_on_a_snapshot_bucket(
    s3: Any, unique: Callable[[str], str]
) -> None:
    name = unique("ops")
    create_snapshot_bucket(s3, name)
    try:
        s3.put_object(Bucket=name, Key="dir/a.txt", Body=b"a", ContentType="text/plain")
        s3.put_object(Bucket=name, Key="dir/b.txt", Body=b"b", Metadata={"owner": "me"})
        s3.put_object(Bucket=name, Key="top.txt", Body=b"top")
        head = s3.head_object(Bucket=name, Key="dir/b.txt")
        assert head["ContentLength"] == 1 and head["Metadata"] == {"owner": "me"}
        assert s3.get_object(Bucket=name, Key="dir/a.txt")["ContentType"] == "text/plain"
        listing = s3.list_objects_v2(Bucket=name, Delimiter="/")
        assert [p["Prefix"] for p in listing["CommonPrefixes"]] == ["dir/"]
        assert [o["Key"] for o in listing["Contents"]] == ["top.txt"]
        assert [o["Key"] for o in s3.list_objects(Bucket=name, Prefix="dir/")["Contents"]] == [
            "dir/a.txt",
            "dir/b.txt",
        ]
        s3.copy_object(Bucket=name, Key="copy.txt", CopySource={"Bucket": name, "Key": "top.txt"})
        assert body(s3, name, "copy.txt") == b"top"
        ranged = s3.get_object(Bucket=name, Key="top.txt", Range="bytes=1-2")
        assert ranged["Body"].read() == b"op"
        s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "dir/a.txt"}]})
        assert keys(s3, name) == ["copy.txt", "dir/b.txt", "top.txt"]
    finally:
        force_delete(s3, name)


def test_flexible_checksums_put_get_and_multipart(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("crc")
    create_snapshot_bucket(s3, name)
    try:
        # botocore's default: CRC32 on PutObject, validated on GetObject.
        s3.put_object(Bucket=name, Key="crc", Body=b"checksummed")
        got = s3.get_object(Bucket=name, Key="crc", ChecksumMode="ENABLED")
        assert got["Body"].read() == b"checksummed"
        for algorithm in ("SHA256", "SHA1"):
            s3.put_object(Bucket=name, Key=algorithm, Body=b"x", ChecksumAlgorithm=algorithm)
            assert body(s3, name, algorithm, ChecksumMode="ENABLED") == b"x"
        part = b"p" * (5 * 1024 * 1024)
        upload = s3.create_multipart_upload(Bucket=name, Key="big", ChecksumAlgorithm="CRC32")
        etags = []
        for number, data in enumerate([part, b"tail"], start=1):
            result = s3.upload_part(
                Bucket=name,
                Key="big",
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="CRC32",
            )
            etags.append(
                {
                    "ETag": result["ETag"],
                    "PartNumber": number,
                    "ChecksumCRC32": result["ChecksumCRC32"],
                }
            )
        s3.complete_multipart_upload(
            Bucket=name, Key="big", UploadId=upload["UploadId"], MultipartUpload={"Parts": etags}
        )
        assert body(s3, name, "big") == part + b"tail"
    finally:
        force_delete(s3, name)


def test_moto_reset_api_is_refused(s3: Any, emulator: Any) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{emulator.endpoint_url}/moto-api/reset", method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 403
    assert SEED in [b["Name"] for b in s3.list_buckets()["Buckets"]]
