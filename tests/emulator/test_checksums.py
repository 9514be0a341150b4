"""Multipart checksums as S3 reports them: composite ``<digest of part digests>-<parts>`` with
``ChecksumType: COMPOSITE``, and full-object CRCs."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import create_snapshot_bucket, force_delete, fork

PARTS = [b"a" * 5 * 1024 * 1024, b"b" * 1000]


@pytest.fixture(params=["plain", "fork"])
def bucket(request: pytest.FixtureRequest, s3: Any, unique: Callable[[str], str]) -> Iterator[str]:
    created = [unique("ck")]
    if request.param == "plain":
        s3.create_bucket(Bucket=created[0])
    else:
        create_snapshot_bucket(s3, created[0])
        created.append(unique("ckf"))
        fork(s3, created[1], created[0])
    yield created[-1]
    for name in reversed(created):
        with contextlib.suppress(ClientError):
            force_delete(s3, name)


def upload(s3: Any, bucket: str, algorithm: str, checksum_type: str | None = None) -> Any:
    extra = {"ChecksumType": checksum_type} if checksum_type else {}
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", ChecksumAlgorithm=algorithm, **extra
    )
    parts = []
    for number, data in enumerate(PARTS, start=1):
        answer = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=created["UploadId"],
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm=algorithm,
        )
        parts.append(
            {
                "ETag": answer["ETag"],
                "PartNumber": number,
                f"Checksum{algorithm}": answer[f"Checksum{algorithm}"],
            }
        )
    return s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=created["UploadId"],
        MultipartUpload={"Parts": parts},
        **extra,
    )


def composite_sha256() -> str:
    digests = b"".join(hashlib.sha256(part).digest() for part in PARTS)
    return f"{base64.b64encode(hashlib.sha256(digests).digest()).decode()}-{len(PARTS)}"


def test_composite_sha256_everywhere_it_is_reported(s3: Any, bucket: str) -> None:
    expected = composite_sha256()
    done = upload(s3, bucket, "SHA256")
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (expected, "COMPOSITE")
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (expected, "COMPOSITE")
    got = s3.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(PARTS)
    assert (got["ChecksumSHA256"], got["ChecksumType"]) == (expected, "COMPOSITE")


def test_full_object_crc32(s3: Any, bucket: str) -> None:
    whole = zlib.crc32(b"".join(PARTS)).to_bytes(4, "big")
    expected = base64.b64encode(whole).decode()
    done = upload(s3, bucket, "CRC32", "FULL_OBJECT")
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (expected, "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (expected, "FULL_OBJECT")


def test_a_single_put_keeps_its_checksum(s3: Any, bucket: str) -> None:
    data = b"single put"
    s3.put_object(Bucket=bucket, Key="one", Body=data, ChecksumAlgorithm="SHA256")
    head = s3.head_object(Bucket=bucket, Key="one", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
