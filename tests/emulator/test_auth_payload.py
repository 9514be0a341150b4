"""Over HTTP: a signed request's body must be the one that was signed.

These need the HTTP surface to feed the body to ``SignedRequest.payload_checker()`` and to
answer ``AuthError.status``: 400 for a malformed request, 403 for a bad signature.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from tests.emulator._signing import (
    SIGNED_CHUNKS,
    SIGNED_CHUNKS_TRAILER,
    UNSIGNED_TRAILER,
    send,
    sign,
)
from tests.helpers import body, keys, make_client

ACCESS_KEY = "tid_PayloadKey"
SECRET_KEY = "tsec_payload/secret+="


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with EmulatorProcess(access_key=ACCESS_KEY, secret_key=SECRET_KEY) as process:
        yield process.endpoint_url


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    return make_client(endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = f"payload-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="kept.txt", Body=b"original")
    return name


def _absent(s3: Any, bucket: str, key: str) -> bool:
    with pytest.raises(ClientError) as exc_info:
        s3.head_object(Bucket=bucket, Key=key)
    return bool(exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404)


# -- whole-body sha256 (what boto3 sends over http://) -------------------------------------


def test_body_differs_from_signed_sha256(endpoint: str, s3: Any, bucket: str) -> None:
    url = f"{endpoint}/{bucket}/swapped.txt"
    signed = sign(url, ACCESS_KEY, SECRET_KEY, body=b"the signed body")
    status, code, _ = send(url, "PUT", signed.headers, b"another  body!!")
    assert (status, code) == (400, "XAmzContentSHA256Mismatch")
    assert _absent(s3, bucket, "swapped.txt")


def test_overwrite_with_a_different_body_changes_nothing(
    endpoint: str, s3: Any, bucket: str
) -> None:
    url = f"{endpoint}/{bucket}/kept.txt"
    signed = sign(url, ACCESS_KEY, SECRET_KEY, body=b"replacement")
    status, code, _ = send(url, "PUT", signed.headers, b"REPLACEMENT")
    assert (status, code) == (400, "XAmzContentSHA256Mismatch")
    assert body(s3, bucket, "kept.txt") == b"original"


def test_body_on_a_request_signed_as_empty(endpoint: str, bucket: str) -> None:
    """A DeleteObjects-style POST signed with the empty-body hash cannot carry a body."""
    url = f"{endpoint}/{bucket}?delete="
    signed = sign(url, ACCESS_KEY, SECRET_KEY, method="POST", body=b"")
    xml = b"<Delete><Object><Key>kept.txt</Key></Object></Delete>"
    status, code, _ = send(url, "POST", signed.headers, xml)
    assert (status, code) == (400, "XAmzContentSHA256Mismatch")


def test_boto3_uploads_still_pass(s3: Any, bucket: str) -> None:
    """put_object and a multipart upload_fileobj, with boto3's default checksums."""
    s3.put_object(Bucket=bucket, Key="boto3/put.txt", Body=b"put")
    data = bytes(range(256)) * (6 * 1024 * 1024 // 256 + 1)
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(data), bucket, "boto3/multipart.bin", Config=config)
    assert body(s3, bucket, "boto3/put.txt") == b"put"
    assert body(s3, bucket, "boto3/multipart.bin") == data
    s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "boto3/put.txt"}, {"Key": "boto3/multipart.bin"}]},
    )
    assert keys(s3, bucket, Prefix="boto3/") == []


# -- signed aws-chunked bodies -------------------------------------------------------------


def _chunked(endpoint: str, bucket: str, key: str, data: bytes, *, trailer: bool = False) -> Any:
    url = f"{endpoint}/{bucket}/{key}"
    extra = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data))}
    if trailer:
        extra["X-Amz-Trailer"] = "x-amz-checksum-sha256"
    mode = SIGNED_CHUNKS_TRAILER if trailer else SIGNED_CHUNKS
    return url, sign(url, ACCESS_KEY, SECRET_KEY, payload=mode, headers=extra)


DATA = b"0123456789abcdef" * 5000


def test_forged_chunk_signature(endpoint: str, s3: Any, bucket: str) -> None:
    url, signed = _chunked(endpoint, bucket, "forged.bin", DATA)
    chunked = signed.chunked_body([DATA[:65536], DATA[65536:]])
    second = signed.chunk_signature(signed.chunk_signature(signed.seed, DATA[:65536]), DATA[65536:])
    forged = chunked.replace(second.encode(), ("0" * 64).encode())
    status, code, _ = send(url, "PUT", signed.headers, forged)
    assert (status, code) == (403, "SignatureDoesNotMatch")
    assert _absent(s3, bucket, "forged.bin")


def test_chunk_data_swapped_keeps_nothing(endpoint: str, s3: Any, bucket: str) -> None:
    url, signed = _chunked(endpoint, bucket, "swapped.bin", DATA)
    chunked = bytearray(signed.chunked_body([DATA[:65536], DATA[65536:]]))
    chunked[70_000] ^= 1
    status, code, _ = send(url, "PUT", signed.headers, bytes(chunked))
    assert (status, code) == (403, "SignatureDoesNotMatch")
    assert _absent(s3, bucket, "swapped.bin")


def test_forged_trailer(endpoint: str, s3: Any, bucket: str) -> None:
    url, signed = _chunked(endpoint, bucket, "trailer.bin", DATA, trailer=True)
    digest = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    chunked = signed.chunked_body([DATA], {"x-amz-checksum-sha256": digest})
    other = base64.b64encode(hashlib.sha256(b"other").digest())
    forged = chunked.replace(digest.encode(), other)
    status, code, _ = send(url, "PUT", signed.headers, forged)
    assert (status, code) == (403, "SignatureDoesNotMatch")
    assert _absent(s3, bucket, "trailer.bin")


def test_truncated_chunked_body(endpoint: str, s3: Any, bucket: str) -> None:
    url, signed = _chunked(endpoint, bucket, "truncated.bin", DATA)
    chunked = signed.chunked_body([DATA[:65536], DATA[65536:]])
    status, code, _ = send(url, "PUT", signed.headers, chunked[:-120])
    assert (status, code) == (400, "IncompleteBody")
    assert _absent(s3, bucket, "truncated.bin")


def test_garbled_chunk_framing(endpoint: str, s3: Any, bucket: str) -> None:
    url, signed = _chunked(endpoint, bucket, "garbled.bin", DATA)
    chunked = signed.chunked_body([DATA]).replace(b";chunk-signature=", b";sig=", 1)
    status, code, _ = send(url, "PUT", signed.headers, chunked)
    assert (status, code) == (400, "InvalidRequest")
    assert _absent(s3, bucket, "garbled.bin")


# -- malformed headers (400, not 403) ------------------------------------------------------


def test_missing_content_sha256(endpoint: str, bucket: str) -> None:
    url = f"{endpoint}/{bucket}/kept.txt"
    headers = sign(url, ACCESS_KEY, SECRET_KEY, method="GET").headers
    del headers["X-Amz-Content-SHA256"]
    assert send(url, "GET", headers)[:2] == (400, "InvalidRequest")


def test_content_sha256_not_a_hash(endpoint: str, bucket: str) -> None:
    url = f"{endpoint}/{bucket}/kept.txt"
    headers = sign(url, ACCESS_KEY, SECRET_KEY, method="GET", payload="not-a-hash").headers
    assert send(url, "GET", headers)[:2] == (400, "InvalidArgument")


def test_chunked_without_decoded_length(endpoint: str, s3: Any, bucket: str) -> None:
    url = f"{endpoint}/{bucket}/no-length.bin"
    headers = {"Content-Encoding": "aws-chunked"}
    signed = sign(url, ACCESS_KEY, SECRET_KEY, payload=SIGNED_CHUNKS, headers=headers)
    status, code, _ = send(url, "PUT", signed.headers, signed.chunked_body([b"data"]))
    assert (status, code) == (400, "InvalidRequest")
    assert _absent(s3, bucket, "no-length.bin")


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 SignedHeaders=host,Signature=" + "0" * 64,
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260301/auto/s3/aws4_request",
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY},SignedHeaders=host,Signature=" + "0" * 64,
    ],
    ids=["no-credential", "no-signature", "no-scope"],
)
def test_malformed_authorization_header(endpoint: str, bucket: str, authorization: str) -> None:
    url = f"{endpoint}/{bucket}/kept.txt"
    headers = sign(url, ACCESS_KEY, SECRET_KEY, method="GET").headers
    headers["Authorization"] = authorization
    assert send(url, "GET", headers)[:2] == (400, "AuthorizationHeaderMalformed")


# -- unsigned aws-chunked ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunked", "outcome"),
    [
        (b"zz\r\nhello\r\n0\r\n\r\n", (400, "InvalidRequest")),
        (b"5\r\nhelloXX0\r\n\r\n", (400, "InvalidRequest")),
        (b"5\r\nhel", (400, "IncompleteBody")),
        (b"", (400, "IncompleteBody")),
    ],
    ids=["size-not-hex", "no-crlf", "truncated", "empty"],
)
def test_garbled_unsigned_stream(
    endpoint: str, s3: Any, bucket: str, chunked: bytes, outcome: tuple[int, str]
) -> None:
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER has no signatures, but garbage is still a 400."""
    url = f"{endpoint}/{bucket}/unsigned-garbage.txt"
    extra = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": "5"}
    signed = sign(url, ACCESS_KEY, SECRET_KEY, payload=UNSIGNED_TRAILER, headers=extra)
    assert send(url, "PUT", signed.headers, chunked)[:2] == outcome
    assert _absent(s3, bucket, "unsigned-garbage.txt")
