"""Conditional writes and copies, on plain buckets, seeds and forks (inherited keys included)."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import body, call_with, create_snapshot_bucket, error_code, force_delete, fork

PAST = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
FUTURE = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
PAST_HTTP = "Sat, 01 Jan 2000 00:00:00 GMT"
FUTURE_HTTP = "Fri, 01 Jan 2100 00:00:00 GMT"


@pytest.fixture(params=["plain", "seed", "fork"])
def bucket(request: pytest.FixtureRequest, s3: Any, unique: Callable[[str], str]) -> Iterator[str]:
    """A bucket holding ``k`` = ``v``; in a fork, ``k`` is inherited from its parent."""
    created: list[str] = []
    name = unique("cond")
    if request.param == "plain":
        s3.create_bucket(Bucket=name)
    else:
        create_snapshot_bucket(s3, name)
    created.append(name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    if request.param == "fork":
        child = unique("condf")
        fork(s3, child, name)
        created.append(child)
        name = child
    yield name
    for each in reversed(created):
        with contextlib.suppress(ClientError):
            force_delete(s3, each)


def etag_of(s3: Any, bucket: str, key: str = "k") -> str:
    return str(s3.head_object(Bucket=bucket, Key=key)["ETag"])


def md5_of(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# -- PutObject ----------------------------------------------------------------------------
def test_content_md5_is_checked(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="good", Body=b"data", ContentMD5=md5_of(b"data"))
    assert body(s3, bucket, "good") == b"data"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ContentMD5=md5_of(b"other"))
    assert error_code(exc) == (400, "BadDigest")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ContentMD5="not base64!")
    assert error_code(exc) == (400, "InvalidDigest")
    assert body(s3, bucket, "k") == b"v"


def test_content_md5_of_a_part_is_checked(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload,
            PartNumber=1,
            Body=b"part",
            ContentMD5=md5_of(b"trap"),
        )
    assert error_code(exc) == (400, "BadDigest")
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload)


def test_if_none_match_star_writes_only_new_keys(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfNoneMatch="*")
    assert error_code(exc) == (412, "PreconditionFailed")
    s3.put_object(Bucket=bucket, Key="fresh", Body=b"x", IfNoneMatch="*")
    assert body(s3, bucket, "fresh") == b"x"
    assert body(s3, bucket, "k") == b"v"


def test_if_none_match_other_than_star_is_400(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        call_with(s3, {"If-None-Match": etag_of(s3, bucket)}, "put_object", Bucket=bucket, Key="k")
    assert error_code(exc) == (400, "InvalidArgument")
    assert body(s3, bucket, "k") == b"v"


def test_if_unmodified_since_on_put(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        call_with(
            s3, {"If-Unmodified-Since": PAST_HTTP}, "put_object", Bucket=bucket, Key="k", Body=b"x"
        )
    assert error_code(exc) == (412, "PreconditionFailed")
    assert body(s3, bucket, "k") == b"v"
    call_with(
        s3, {"If-Unmodified-Since": FUTURE_HTTP}, "put_object", Bucket=bucket, Key="k", Body=b"y"
    )
    assert body(s3, bucket, "k") == b"y"


def test_if_match_on_put(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfMatch='"0000"')
    assert error_code(exc) == (412, "PreconditionFailed")
    s3.put_object(Bucket=bucket, Key="k", Body=b"z", IfMatch=etag_of(s3, bucket))
    assert body(s3, bucket, "k") == b"z"


# -- CopyObject and UploadPartCopy --------------------------------------------------------
def copy_cases(etag: str) -> list[tuple[dict[str, Any], bool]]:
    """(conditions, passes) for a source with ``etag`` modified between PAST and FUTURE."""
    return [
        ({"CopySourceIfMatch": etag}, True),
        ({"CopySourceIfMatch": '"0000"'}, False),
        ({"CopySourceIfNoneMatch": '"0000"'}, True),
        ({"CopySourceIfNoneMatch": etag}, False),
        ({"CopySourceIfModifiedSince": PAST}, True),
        ({"CopySourceIfModifiedSince": FUTURE}, False),
        ({"CopySourceIfUnmodifiedSince": FUTURE}, True),
        ({"CopySourceIfUnmodifiedSince": PAST}, False),
        # S3's pairs: a matching If-Match wins over a failing If-Unmodified-Since...
        ({"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": PAST}, True),
        # ...and a failing If-Modified-Since loses to a passing If-None-Match.
        ({"CopySourceIfNoneMatch": '"0000"', "CopySourceIfModifiedSince": FUTURE}, True),
        ({"CopySourceIfNoneMatch": etag, "CopySourceIfModifiedSince": PAST}, False),
    ]


def test_copy_object_conditions(s3: Any, bucket: str) -> None:
    for number, (conditions, passes) in enumerate(copy_cases(etag_of(s3, bucket))):
        target = f"copy-{number}"
        source = {"Bucket": bucket, "Key": "k"}
        if passes:
            s3.copy_object(Bucket=bucket, Key=target, CopySource=source, **conditions)
            assert body(s3, bucket, target) == b"v", conditions
        else:
            with pytest.raises(ClientError) as exc:
                s3.copy_object(Bucket=bucket, Key=target, CopySource=source, **conditions)
            assert error_code(exc) == (412, "PreconditionFailed"), conditions
            with pytest.raises(ClientError) as missing:
                s3.head_object(Bucket=bucket, Key=target)
            assert error_code(missing)[0] == 404


def test_upload_part_copy_conditions(s3: Any, bucket: str) -> None:
    for conditions, passes in copy_cases(etag_of(s3, bucket)):
        upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
        arguments = {
            "Bucket": bucket,
            "Key": "mp",
            "UploadId": upload,
            "PartNumber": 1,
            "CopySource": {"Bucket": bucket, "Key": "k"},
            **conditions,
        }
        try:
            if passes:
                part = s3.upload_part_copy(**arguments)
                assert part["CopyPartResult"]["ETag"] == etag_of(s3, bucket), conditions
            else:
                with pytest.raises(ClientError) as exc:
                    s3.upload_part_copy(**arguments)
                assert error_code(exc) == (412, "PreconditionFailed"), conditions
        finally:
            s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload)


def test_copy_from_another_bucket_reads_the_source_as_its_bucket_sees_it(
    s3: Any, bucket: str, unique: Callable[[str], str]
) -> None:
    other = unique("condo")
    s3.create_bucket(Bucket=other)
    try:
        s3.copy_object(
            Bucket=other,
            Key="copied",
            CopySource={"Bucket": bucket, "Key": "k"},
            CopySourceIfMatch=etag_of(s3, bucket),
        )
        assert body(s3, other, "copied") == b"v"
    finally:
        force_delete(s3, other)
