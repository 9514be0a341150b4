"""SigV4 verification: an emulator started with ``--access-key``/``--secret-key``."""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import body, keys, make_client

ACCESS_KEY = "tid_AuthTestKey"
# Characters that must survive the key derivation untouched.
SECRET_KEY = "tsec_s3cr3t/with+special=chars"

SPECIAL_KEYS = [
    "with space.txt",
    "dir/sub dir/file name.txt",
    "unicode/h\u00e9llo w\u00f6rld \u4e16\u754c.txt",
    "plus/a+b+c.txt",
    "plus/ + leading and trailing + ",
    "symbols/!$&'()*,;=@:.txt",
    "tilde~/file~1.txt",
    "percent/100%.txt",
    "percent/already%20encoded.txt",
    "query/?x=1&y=2#frag",
    "slashes//double//slash",
]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with EmulatorProcess(access_key=ACCESS_KEY, secret_key=SECRET_KEY) as process:
        yield process.endpoint_url


def _client(
    endpoint_url: str,
    *,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = "auto",
    **config: Any,
) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    return make_client(endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = f"auth-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="hello.txt", Body=b"hello")
    return name


def _error(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc_info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def _fetch(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> bytes:
    request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def _fetch_error(url: str) -> tuple[int, bytes]:
    with pytest.raises(urllib.error.HTTPError) as exc_info:
        _fetch(url)
    error = exc_info.value
    try:
        return error.code, error.read()
    finally:
        error.close()


# -- header-signed requests ----------------------------------------------------------------


def test_right_keys_work(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="right.txt", Body=b"right keys")
    assert body(s3, bucket, "right.txt") == b"right keys"
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.delete_object(Bucket=bucket, Key="right.txt")


def test_unknown_access_key(endpoint: str, bucket: str) -> None:
    stranger = _client(endpoint, access_key="tid_Unknown")
    with pytest.raises(ClientError) as exc_info:
        stranger.get_object(Bucket=bucket, Key="hello.txt")
    assert _error(exc_info) == (403, "InvalidAccessKeyId")
    with pytest.raises(ClientError) as exc_info:
        stranger.list_buckets()
    assert _error(exc_info) == (403, "InvalidAccessKeyId")


def test_wrong_secret(endpoint: str, bucket: str) -> None:
    wrong = _client(endpoint, secret_key=SECRET_KEY + "x")
    with pytest.raises(ClientError) as exc_info:
        wrong.get_object(Bucket=bucket, Key="hello.txt")
    assert _error(exc_info) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as exc_info:
        wrong.put_object(Bucket=bucket, Key="wrong.txt", Body=b"nope")
    assert _error(exc_info) == (403, "SignatureDoesNotMatch")


def test_rejected_write_changes_nothing(endpoint: str, s3: Any, bucket: str) -> None:
    wrong = _client(endpoint, secret_key="not-the-secret")
    with pytest.raises(ClientError):
        wrong.put_object(Bucket=bucket, Key="hello.txt", Body=b"overwritten")
    with pytest.raises(ClientError):
        wrong.create_bucket(Bucket=f"auth-denied-{uuid.uuid4().hex[:8]}")
    assert body(s3, bucket, "hello.txt") == b"hello"
    assert not [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("auth-denied-")]


def test_head_with_wrong_secret_is_403(endpoint: str, bucket: str) -> None:
    wrong = _client(endpoint, secret_key="not-the-secret")
    with pytest.raises(ClientError) as exc_info:
        wrong.head_object(Bucket=bucket, Key="hello.txt")
    assert _error(exc_info)[0] == 403


def test_unsigned_request(endpoint: str, bucket: str) -> None:
    anonymous = _client(endpoint, signature_version=UNSIGNED)
    with pytest.raises(ClientError) as exc_info:
        anonymous.get_object(Bucket=bucket, Key="hello.txt")
    assert _error(exc_info)[0] == 403
    with pytest.raises(ClientError) as exc_info:
        anonymous.list_buckets()
    assert _error(exc_info)[0] == 403


def test_plain_http_without_signature(endpoint: str, bucket: str) -> None:
    status, payload = _fetch_error(f"{endpoint}/{bucket}/hello.txt")
    assert status == 403
    assert b"<Code>" in payload


@pytest.mark.parametrize("region", ["auto", "us-east-1"])
def test_regions_verify(endpoint: str, region: str) -> None:
    client = _client(endpoint, region=region)
    name = f"auth-{region}-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="region.txt", Body=region.encode())
    assert body(client, name, "region.txt") == region.encode()
    assert keys(client, name) == ["region.txt"]
    client.delete_object(Bucket=name, Key="region.txt")
    client.delete_bucket(Bucket=name)


# -- object keys and query strings ---------------------------------------------------------


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_key_names_verify(s3: Any, bucket: str, key: str) -> None:
    data = f"data of {key}".encode()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert body(s3, bucket, key) == data
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(data)
    assert key in keys(s3, bucket, Prefix=key)
    s3.copy_object(Bucket=bucket, Key=f"copy/{key}", CopySource={"Bucket": bucket, "Key": key})
    assert body(s3, bucket, f"copy/{key}") == data
    s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_object(Bucket=bucket, Key=f"copy/{key}")
    assert key not in keys(s3, bucket, Prefix=key)


def test_delete_objects_with_special_keys(s3: Any, bucket: str) -> None:
    prefix = f"batch-{uuid.uuid4().hex[:6]}/"
    names = [prefix + key for key in SPECIAL_KEYS]
    for name in names:
        s3.put_object(Bucket=bucket, Key=name, Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": name} for name in names]})
    assert sorted(d["Key"] for d in result.get("Deleted", [])) == sorted(names)
    assert keys(s3, bucket, Prefix=prefix) == []


@pytest.fixture(scope="module")
def tree(s3: Any) -> str:
    name = f"auth-tree-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    for key in [
        "a/1.txt",
        "a/2.txt",
        "a/sub/3.txt",
        "b c/4.txt",
        "b c/d e/5.txt",
        "\u00fc/6.txt",
        "\u00fc/\u4e16/7.txt",
        "x+y/8.txt",
        "top.txt",
    ]:
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    return name


@pytest.mark.parametrize(
    ("prefix", "files", "folders"),
    [
        ("", ["top.txt"], ["a/", "b c/", "x+y/", "\u00fc/"]),
        ("a/", ["a/1.txt", "a/2.txt"], ["a/sub/"]),
        ("b c/", ["b c/4.txt"], ["b c/d e/"]),
        ("\u00fc/", ["\u00fc/6.txt"], ["\u00fc/\u4e16/"]),
        ("x+y/", ["x+y/8.txt"], []),
    ],
)
def test_list_with_prefix_and_delimiter(
    s3: Any, tree: str, prefix: str, files: list[str], folders: list[str]
) -> None:
    page = s3.list_objects_v2(Bucket=tree, Prefix=prefix, Delimiter="/")
    assert [o["Key"] for o in page.get("Contents", [])] == files
    assert [p["Prefix"] for p in page.get("CommonPrefixes", [])] == folders


def test_list_pagination_and_v1_marker(s3: Any, tree: str) -> None:
    everything = keys(s3, tree)
    assert len(everything) == 9
    assert keys(s3, tree, PaginationConfig={"PageSize": 2}) == everything
    after = s3.list_objects_v2(Bucket=tree, StartAfter="b c/4.txt", MaxKeys=3)
    assert [o["Key"] for o in after["Contents"]] == everything[4:7]
    v1 = s3.list_objects(Bucket=tree, Marker="a/sub/3.txt", Prefix="", MaxKeys=2)
    assert [o["Key"] for o in v1["Contents"]] == everything[3:5]


# -- presigned URLs ------------------------------------------------------------------------


def _tamper(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    changed = []
    for name, value in query:
        if name == "X-Amz-Signature":
            value = value[:-1] + ("0" if value[-1] != "0" else "1")
        changed.append((name, value))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(changed)))


def test_presigned_get(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "hello.txt"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in url
    assert _fetch(url) == b"hello"


@pytest.mark.parametrize(
    "key", ["dir/sub dir/file name.txt", "plus/a+b+c.txt", "\u00fc/\u4e16.txt"]
)
def test_presigned_get_special_keys(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=b"presigned")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    assert _fetch(url) == b"presigned"


def test_presigned_tampered_signature(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "hello.txt"})
    status, payload = _fetch_error(_tamper(url))
    assert status == 403
    assert b"SignatureDoesNotMatch" in payload


def test_presigned_other_key_in_url(s3: Any, bucket: str) -> None:
    """A URL signed for one object does not open another."""
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"secret")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "hello.txt"})
    status, payload = _fetch_error(url.replace("/hello.txt?", "/secret.txt?"))
    assert status == 403
    assert b"SignatureDoesNotMatch" in payload


def test_presigned_unknown_key_and_wrong_secret(endpoint: str, bucket: str) -> None:
    params = {"Bucket": bucket, "Key": "hello.txt"}
    stranger = _client(endpoint, access_key="tid_Unknown")
    status, payload = _fetch_error(stranger.generate_presigned_url("get_object", Params=params))
    assert (status, b"InvalidAccessKeyId" in payload) == (403, True)
    wrong = _client(endpoint, secret_key="not-the-secret")
    status, payload = _fetch_error(wrong.generate_presigned_url("get_object", Params=params))
    assert (status, b"SignatureDoesNotMatch" in payload) == (403, True)


def test_presigned_expired(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "hello.txt"}, ExpiresIn=1
    )
    time.sleep(2.1)
    status, _ = _fetch_error(url)
    assert status == 403


def test_presigned_put(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "uploaded via url.txt"}
    )
    headers = {"Content-Type": "application/octet-stream"}
    _fetch(url, method="PUT", data=b"from a presigned PUT", headers=headers)
    assert body(s3, bucket, "uploaded via url.txt") == b"from a presigned PUT"


def test_presigned_put_with_urllib_defaults(s3: Any, bucket: str) -> None:
    """urllib labels a body ``application/x-www-form-urlencoded``; S3 stores it as it is."""
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "form.txt"})
    _fetch(url, method="PUT", data=b"a=1&b=2")
    assert body(s3, bucket, "form.txt") == b"a=1&b=2"


# -- bigger requests -----------------------------------------------------------------------

MIB = 1024 * 1024


def test_multipart_upload(s3: Any, bucket: str) -> None:
    key = "multi part/\u00fcpload+1.bin"
    parts = [b"a" * (5 * MIB), b"b" * 1024]
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = upload["UploadId"]
    try:
        uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix="multi part/")
        assert [u["UploadId"] for u in uploads.get("Uploads", [])] == [upload_id]
        etags = [
            s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )["ETag"]
            for number, data in enumerate(parts, start=1)
        ]
        listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
        assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, 1)]
            },
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    assert body(s3, bucket, key) == b"".join(parts)


def test_abort_multipart_upload(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="aborted.bin")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted.bin", UploadId=upload_id, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted.bin", UploadId=upload_id)
    assert "aborted.bin" not in keys(s3, bucket)


def test_managed_transfer(s3: Any, bucket: str) -> None:
    """boto3's upload_fileobj: concurrent multipart parts with flexible checksums."""
    data = bytes(range(256)) * (6 * MIB // 256 + 1)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_fileobj(io.BytesIO(data), bucket, "transfer/big file.bin", Config=config)
    out = io.BytesIO()
    s3.download_fileobj(bucket, "transfer/big file.bin", out, Config=config)
    assert out.getvalue() == data


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_flexible_checksums(s3: Any, bucket: str, algorithm: str) -> None:
    key = f"checksum/{algorithm}.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"checked", ChecksumAlgorithm=algorithm)
    assert body(s3, bucket, key) == b"checked"
