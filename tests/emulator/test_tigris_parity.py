"""Tigris features beyond snapshots and forks: rename, bucket metadata, TTL rules, and a clear
501 for the features the emulator does not have."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import tigris_boto3_ext
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import (
    body,
    call_with,
    create_snapshot_bucket,
    error_code,
    fork,
    keys,
    snapshot,
)


@pytest.fixture(params=["plain", "snapshot", "fork"])
def bucket(
    request: pytest.FixtureRequest, s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> str:
    """A bucket holding ``src`` (and a few more keys): plain, snapshot-enabled, or a fork
    whose keys are all inherited."""
    name = unique("par")
    if request.param == "plain":
        s3.create_bucket(Bucket=name)
    else:
        create_snapshot_bucket(s3, name)
    buckets.append(name)
    s3.put_object(
        Bucket=name,
        Key="src",
        Body=b"renamed bytes",
        ContentType="text/x-custom",
        Metadata={"owner": "alice"},
    )
    if request.param != "fork":
        return name
    child = unique("parf")
    fork(s3, child, name)
    buckets.append(child)
    return child


# -- rename -------------------------------------------------------------------------------
def test_rename_moves_bytes_metadata_type_and_etag(s3: Any, bucket: str) -> None:
    before = s3.head_object(Bucket=bucket, Key="src")
    answer = tigris_boto3_ext.rename_object(s3, bucket, "src", "dst")
    assert answer["CopyObjectResult"]["ETag"] == before["ETag"]
    after = s3.head_object(Bucket=bucket, Key="dst")
    assert body(s3, bucket, "dst") == b"renamed bytes"
    assert after["ETag"] == before["ETag"]
    assert after["ContentType"] == "text/x-custom"
    assert after["Metadata"] == {"owner": "alice"}
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="src")
    assert error_code(exc)[0] == 404
    assert "src" not in keys(s3, bucket)


@pytest.mark.parametrize("key", ["with space.txt", "plus+sign", "hash#tag", "ünï/cødé ✓.txt"])
def test_rename_of_awkward_keys(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=b"awkward")
    tigris_boto3_ext.rename_object(s3, bucket, key, f"moved/{key}")
    assert body(s3, bucket, f"moved/{key}") == b"awkward"
    assert key not in keys(s3, bucket)
    with tigris_boto3_ext.TigrisRename(s3):
        s3.copy_object(Bucket=bucket, CopySource={"Bucket": bucket, "Key": f"moved/{key}"}, Key=key)
    assert body(s3, bucket, key) == b"awkward"
    assert f"moved/{key}" not in keys(s3, bucket)


def test_rename_in_a_fork_leaves_its_parent_siblings_and_snapshots(
    s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> None:
    parent = unique("rp")
    create_snapshot_bucket(s3, parent)
    buckets.append(parent)
    s3.put_object(Bucket=parent, Key="a", Body=b"A")
    version = snapshot(s3, parent)
    first, second = unique("rf1"), unique("rf2")
    for name in (first, second):
        fork(s3, name, parent)
        buckets.append(name)
    tigris_boto3_ext.rename_object(s3, first, "a", "b")
    assert keys(s3, first) == ["b"]
    assert keys(s3, parent) == ["a"]
    assert keys(s3, second) == ["a"]
    at = call_with(s3, {"X-Tigris-Snapshot-Version": version}, "get_object", Bucket=parent, Key="a")
    assert at["Body"].read() == b"A"
    # And in the parent itself: its forks still see what they forked.
    tigris_boto3_ext.rename_object(s3, parent, "a", "c")
    assert keys(s3, parent) == ["c"]
    assert body(s3, second, "a") == b"A"


def test_rename_keeps_a_multipart_etag(
    s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> None:
    name = unique("rmp")
    s3.create_bucket(Bucket=name)
    buckets.append(name)
    upload = s3.create_multipart_upload(Bucket=name, Key="mp")["UploadId"]
    parts = []
    for number, data in enumerate([b"a" * 5 * 1024 * 1024, b"b" * 10], start=1):
        etag = s3.upload_part(Bucket=name, Key="mp", UploadId=upload, PartNumber=number, Body=data)[
            "ETag"
        ]
        parts.append({"ETag": etag, "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=name, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    etag = s3.head_object(Bucket=name, Key="mp")["ETag"]
    assert etag.endswith('-2"')
    answer = tigris_boto3_ext.rename_object(s3, name, "mp", "moved")
    assert answer["CopyObjectResult"]["ETag"] == etag
    assert s3.head_object(Bucket=name, Key="moved")["ETag"] == etag


def test_rename_across_buckets_is_refused(
    s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> None:
    first, second = unique("rx1"), unique("rx2")
    for name in (first, second):
        s3.create_bucket(Bucket=name)
        buckets.append(name)
    s3.put_object(Bucket=first, Key="k", Body=b"k")
    with pytest.raises(ClientError) as exc, tigris_boto3_ext.TigrisRename(s3):
        s3.copy_object(Bucket=second, CopySource={"Bucket": first, "Key": "k"}, Key="k")
    assert error_code(exc) == (400, "InvalidRequest")
    assert keys(s3, first) == ["k"]
    assert keys(s3, second) == []


def test_rename_of_a_missing_key_is_404(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        tigris_boto3_ext.rename_object(s3, bucket, "nope", "dst")
    assert error_code(exc) == (404, "NoSuchKey")
    assert "src" in keys(s3, bucket)


def test_a_plain_copy_still_copies(s3: Any, bucket: str) -> None:
    s3.copy_object(Bucket=bucket, CopySource={"Bucket": bucket, "Key": "src"}, Key="copy")
    assert body(s3, bucket, "copy") == body(s3, bucket, "src") == b"renamed bytes"


def test_rename_under_a_decorator(s3: Any, bucket: str) -> None:
    @tigris_boto3_ext.with_rename
    def move(client: Any, name: str, old: str, new: str) -> Any:
        return client.copy_object(Bucket=name, CopySource={"Bucket": name, "Key": old}, Key=new)

    move(s3, bucket, "src", "decorated")
    assert keys(s3, bucket) == ["decorated"]


# -- bucket metadata ----------------------------------------------------------------------
def test_metadata_of_a_global_snapshot_bucket_and_its_fork(
    s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> None:
    parent = unique("meta")
    create_snapshot_bucket(s3, parent)
    buckets.append(parent)
    s3.put_object(Bucket=parent, Key="a", Body=b"12345")
    s3.put_object(Bucket=parent, Key="a", Body=b"123")
    s3.put_object(Bucket=parent, Key="b", Body=b"xy")
    version = snapshot(s3, parent, "v1")
    child = unique("metaf")
    fork(s3, child, parent, version)
    buckets.append(child)

    info = tigris_boto3_ext.get_bucket_metadata(s3, parent, with_size=True)
    assert info["name"] == parent
    assert info["snapshot_enabled"] is True
    assert info["regions"] == []
    assert info["storage_class"] == "STANDARD"
    assert info["is_fork_parent"] is True
    assert info["fork_parents"] == []
    assert info["soft_delete"] == {"enabled": False, "retention_days": None}
    assert info["size"] == {"objects": 2, "bytes": 5, "objects_all_versions": 3}

    forked = tigris_boto3_ext.get_bucket_metadata(s3, child)
    assert forked["snapshot_enabled"] is True
    assert forked["is_fork_parent"] is False
    assert [(p["bucket"], p["snapshot"], p["snapshot_name"]) for p in forked["fork_parents"]] == [
        (parent, version, "v1")
    ]
    assert forked["size"] is None


def test_metadata_of_a_regional_plain_bucket(
    s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> None:
    name = unique("reg")
    tigris_boto3_ext.create_bucket(s3, name, regions=["fra", "iad"])
    buckets.append(name)
    info = tigris_boto3_ext.get_bucket_metadata(s3, name)
    assert info["snapshot_enabled"] is False
    assert info["regions"] == ["fra", "iad"]


# -- TTL ----------------------------------------------------------------------------------
EXPIRE = {"Rules": [{"ID": "ttl", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}]}


def test_ttl_is_refused_on_snapshot_buckets_and_forks(
    s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> None:
    parent = unique("ttl")
    create_snapshot_bucket(s3, parent)
    buckets.append(parent)
    child = unique("ttlf")
    fork(s3, child, parent)
    buckets.append(child)
    for name in (parent, child):
        with pytest.raises(ClientError) as exc:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration=EXPIRE)
        assert error_code(exc) == (400, "InvalidRequest")
    plain = unique("ttlp")
    s3.create_bucket(Bucket=plain)
    buckets.append(plain)
    s3.put_bucket_lifecycle_configuration(Bucket=plain, LifecycleConfiguration=EXPIRE)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=plain)["Rules"]
    assert [rule["ID"] for rule in rules] == ["ttl"]


# -- 501 for what the emulator does not have ----------------------------------------------
def _raw(
    emulator: EmulatorProcess, method: str, path: str, headers: dict[str, str], data: bytes = b""
) -> tuple[int, bytes]:
    parts = urlsplit(emulator.endpoint_url)
    connection = http.client.HTTPConnection(str(parts.hostname), int(parts.port or 0), timeout=10)
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=test-key/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=00"
}


@pytest.mark.parametrize(
    ("method", "path", "headers", "feature"),
    [
        ("PATCH", "/{b}", {"Content-Type": "application/json"}, b"PATCH /{bucket}"),
        ("POST", "/{b}?batch", {}, b"?batch"),
        ("GET", "/{b}?list-type=2", {"X-Tigris-Query": "`Size` > 1"}, b"X-Tigris-Query"),
        ("DELETE", "/{b}/src", {"X-Tigris-Soft-Delete": "true"}, b"Soft delete"),
        ("POST", "/{b}/src?restore", {"X-Tigris-Restore-Type": "soft-delete"}, b"soft-deleted"),
        ("POST", "/?func=presign", {"Content-Type": "application/json"}, b"presign endpoint"),
        ("GET", "/", {"Accept": "application/json"}, b"JSON bucket listings"),
        ("PUT", "/{b}", {"X-Tigris-Merge-Source-Bucket": "x"}, b"Merging a fork"),
    ],
)
def test_unsupported_tigris_features_are_501(
    emulator: EmulatorProcess,
    s3: Any,
    unique: Callable[[str], str],
    buckets: list[str],
    method: str,
    path: str,
    headers: dict[str, str],
    feature: bytes,
) -> None:
    name = unique("nope")
    s3.create_bucket(Bucket=name)
    buckets.append(name)
    s3.put_object(Bucket=name, Key="src", Body=b"kept")
    status, answer = _raw(emulator, method, path.format(b=name), {**SIGNED, **headers}, b"{}")
    assert status == 501, answer
    assert b"<Code>NotImplemented</Code>" in answer
    assert feature in answer
    assert body(s3, name, "src") == b"kept"


def test_fork_and_snapshot_listings_still_answer_json(
    emulator: EmulatorProcess, s3: Any, unique: Callable[[str], str], buckets: list[str]
) -> None:
    name = unique("jl")
    create_snapshot_bucket(s3, name)
    buckets.append(name)
    status, answer = _raw(
        emulator, "GET", "/", {**SIGNED, "Accept": "application/json", "X-Tigris-Fork": name}
    )
    assert status == 200
    assert json.loads(answer)["Owner"] == {"ID": "", "DisplayName": ""}
