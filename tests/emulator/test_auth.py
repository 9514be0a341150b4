"""SigV4 verification: an emulator started with ``--access-key``/``--secret-key``."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from tests.emulator._signing import (
    SIGNED_CHUNKS,
    SIGNED_CHUNKS_TRAILER,
    UNSIGNED_TRAILER,
    send,
    send_raw,
    sign,
)
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


# -- request time --------------------------------------------------------------------------


def _skewed(monkeypatch: pytest.MonkeyPatch, minutes: float) -> None:
    """Make botocore sign as if the clock were ``minutes`` off."""
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: moment.replace(tzinfo=None))


@pytest.mark.parametrize("minutes", [-20, 20, -60 * 24 * 365])
def test_clock_skew_is_refused(
    endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, minutes: int
) -> None:
    _skewed(monkeypatch, minutes)
    with pytest.raises(ClientError) as exc_info:
        _client(endpoint).get_object(Bucket=bucket, Key="hello.txt")
    assert _error(exc_info) == (403, "RequestTimeTooSkewed")


@pytest.mark.parametrize("minutes", [-10, 10])
def test_small_clock_skew_is_accepted(
    endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, minutes: int
) -> None:
    _skewed(monkeypatch, minutes)
    assert body(_client(endpoint), bucket, "hello.txt") == b"hello"


def _with_date_header(client: Any) -> Any:
    """botocore signs with a ``Date`` header (and no X-Amz-Date) when the request has one."""

    def add(request: Any, **kwargs: Any) -> None:
        request.headers["Date"] = "set by the signer"

    client.meta.events.register("before-sign.s3.*", add)
    return client


def test_date_header_instead_of_x_amz_date(endpoint: str, bucket: str) -> None:
    client = _with_date_header(_client(endpoint))
    seen: list[dict[str, str]] = []
    client.meta.events.register(
        "before-send.s3.*", lambda request, **kwargs: seen.append(dict(request.headers))
    )
    assert body(client, bucket, "hello.txt") == b"hello"
    assert "Date" in seen[-1]
    assert "X-Amz-Date" not in seen[-1]


def test_date_header_skew_is_refused(
    endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _skewed(monkeypatch, -30)
    with pytest.raises(ClientError) as exc_info:
        _with_date_header(_client(endpoint)).get_object(Bucket=bucket, Key="hello.txt")
    assert _error(exc_info) == (403, "RequestTimeTooSkewed")


# -- malformed signatures and credentials --------------------------------------------------


def _signed_get(endpoint: str, bucket: str) -> dict[str, str]:
    return sign(f"{endpoint}/{bucket}/hello.txt", ACCESS_KEY, SECRET_KEY, method="GET").headers


def _replace_signature(headers: dict[str, str], signature: str) -> dict[str, str]:
    authorization = headers["Authorization"]
    cut = authorization.index("Signature=") + len("Signature=")
    return {**headers, "Authorization": authorization[:cut] + signature}


@pytest.mark.parametrize(
    "signature",
    ["\u00e9" * 64, "\u00ff", "0" * 63 + "\u00e9", "A" * 64, ""],
    ids=["latin1", "one-latin1", "last-latin1", "upper-hex", "empty"],
)
def test_malformed_header_signature(endpoint: str, bucket: str, signature: str) -> None:
    headers = _replace_signature(_signed_get(endpoint, bucket), signature)
    status, code, _ = send(f"{endpoint}/{bucket}/hello.txt", "GET", headers)
    assert (status, code) == (403, "SignatureDoesNotMatch")


def test_non_ascii_access_key(endpoint: str, bucket: str) -> None:
    headers = _signed_get(endpoint, bucket)
    headers["Authorization"] = headers["Authorization"].replace(ACCESS_KEY, "tid_\u00e9\u00e9")
    status, code, _ = send(f"{endpoint}/{bucket}/hello.txt", "GET", headers)
    assert (status, code) == (403, "InvalidAccessKeyId")


def test_utf8_bytes_in_authorization_header(endpoint: str, bucket: str) -> None:
    """Raw UTF-8 (not Latin-1) bytes in the header: still a 403, never a 500."""
    headers = _signed_get(endpoint, bucket)
    authorization = headers.pop("Authorization")
    cut = authorization.index("Signature=") + len("Signature=")
    lines = [f"GET /{bucket}/hello.txt HTTP/1.1", f"Host: {endpoint.split('//', 1)[1]}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["Connection: close"]
    raw = "\r\n".join(lines).encode() + b"\r\nAuthorization: " + authorization[:cut].encode()
    raw += "\u4e16\u754c".encode() * 16 + b"\r\n\r\n"
    assert send_raw(endpoint, raw) == (403, "SignatureDoesNotMatch")


def _presigned(s3: Any, bucket: str, expires: int) -> str:
    return str(
        s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "hello.txt"}, ExpiresIn=expires
        )
    )


@pytest.mark.parametrize("expires", [604801, 10**30], ids=["week+1s", "1e30"])
def test_presigned_expires_beyond_a_week(s3: Any, bucket: str, expires: int) -> None:
    status, payload = _fetch_error(_presigned(s3, bucket, expires))
    assert (status, _code(payload)) == (403, "AuthorizationQueryParametersError")


def test_presigned_expires_of_a_week_works(s3: Any, bucket: str) -> None:
    assert _fetch(_presigned(s3, bucket, 604800)) == b"hello"


@pytest.mark.parametrize("expires", ["-1", "soon", "1e3", ""])
def test_presigned_expires_not_a_number(s3: Any, bucket: str, expires: str) -> None:
    url = _presigned(s3, bucket, 60).replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}")
    status, payload = _fetch_error(url)
    assert (status, _code(payload)) == (403, "AuthorizationQueryParametersError")


@pytest.mark.parametrize(
    "signature", ["%C3%A9" * 32, "%FF" * 64, "%00" * 64], ids=["utf8", "latin1", "nul"]
)
def test_presigned_malformed_signature(s3: Any, bucket: str, signature: str) -> None:
    url = re.sub(
        r"X-Amz-Signature=[0-9a-f]+", f"X-Amz-Signature={signature}", _presigned(s3, bucket, 60)
    )
    status, payload = _fetch_error(url)
    assert (status, _code(payload)) == (403, "SignatureDoesNotMatch")


def test_presigned_raw_non_ascii_signature(endpoint: str, s3: Any, bucket: str) -> None:
    url = _presigned(s3, bucket, 60)
    target = url.split(endpoint, 1)[1]
    target = re.sub(r"X-Amz-Signature=[0-9a-f]+", "X-Amz-Signature=", target)
    raw = b"GET " + target.encode() + "\u00e9\u4e16".encode() * 8 + b" HTTP/1.1\r\n"
    raw += f"Host: {endpoint.split('//', 1)[1]}\r\nConnection: close\r\n\r\n".encode()
    assert send_raw(endpoint, raw) == (403, "SignatureDoesNotMatch")


_FUZZ_ALPHABET = (
    "AWS4-HMAC-SHA256 Credential=SignedHeaders=Signature=/,;=%:\u00e9\u00ff0af" + ACCESS_KEY
)


def test_fuzz_auth_fields_over_http(endpoint: str, s3: Any, bucket: str) -> None:
    """Garbage in any auth field is a 4xx, never a 500 or a hang; the server stays up."""
    rng = random.Random(9)
    good = _signed_get(endpoint, bucket)
    url = f"{endpoint}/{bucket}/hello.txt"

    def garbage() -> str:
        return "".join(rng.choice(_FUZZ_ALPHABET) for _ in range(rng.randrange(0, 120)))

    for _ in range(60):
        headers = dict(good)
        target = url
        field = rng.choice(["Authorization", "X-Amz-Date", "X-Amz-Content-SHA256", "query"])
        if field == "query":
            del headers["Authorization"]
            query = urllib.parse.quote(garbage(), safe="=&")
            target = f"{url}?X-Amz-Algorithm=AWS4-HMAC-SHA256&{query}"
        elif field == "Authorization" and rng.random() < 0.7:
            headers[field] = "AWS4-HMAC-SHA256 " + garbage()
        else:
            headers[field] = garbage()
        status, _, _ = send(target, "GET", headers)
        assert 400 <= status < 500, (field, headers.get(field), target)
    assert body(s3, bucket, "hello.txt") == b"hello"


def _code(payload: bytes) -> str:
    match = re.search(rb"<Code>([^<]*)</Code>", payload)
    return match[1].decode() if match else ""


# -- payload modes boto3 and other clients use ---------------------------------------------


def test_put_with_payload_signing_disabled(endpoint: str, bucket: str) -> None:
    """``payload_signing_enabled: False``: x-amz-content-sha256 is UNSIGNED-PAYLOAD."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="auto",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path", "payload_signing_enabled": False}),
    )
    sent: list[bytes] = []
    client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **kwargs: sent.append(request.headers["X-Amz-Content-SHA256"]),
    )
    client.put_object(Bucket=bucket, Key="unsigned-payload.txt", Body=b"not hashed")
    assert sent == [b"UNSIGNED-PAYLOAD"]
    assert body(client, bucket, "unsigned-payload.txt") == b"not hashed"


def test_boto3_sends_the_body_sha256_over_http(s3: Any, bucket: str) -> None:
    """What the payload check relies on: over http:// boto3 hashes the whole body."""
    sent: list[dict[str, bytes]] = []

    def record(request: Any, **kwargs: Any) -> None:
        sent.append(dict(request.headers))

    s3.meta.events.register("before-send.s3.PutObject", record)
    try:
        s3.put_object(Bucket=bucket, Key="hashed.txt", Body=b"hashed body")
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject", record)
    digest = hashlib.sha256(b"hashed body").hexdigest().encode()
    assert sent[0]["X-Amz-Content-SHA256"] == digest
    assert "x-amz-checksum-crc32" in sent[0]
    assert body(s3, bucket, "hashed.txt") == b"hashed body"


def test_signed_chunked_upload(endpoint: str, s3: Any, bucket: str) -> None:
    pieces = [b"a" * 65536, b"b" * 1024, b"c" * 10]
    data = b"".join(pieces)
    url = f"{endpoint}/{bucket}/chunked.bin"
    extra = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data))}
    signed = sign(url, ACCESS_KEY, SECRET_KEY, payload=SIGNED_CHUNKS, headers=extra)
    status, code, _ = send(url, "PUT", signed.headers, signed.chunked_body(pieces))
    assert (status, code) == (200, "")
    assert body(s3, bucket, "chunked.bin") == data


def test_signed_chunked_upload_with_trailer(endpoint: str, s3: Any, bucket: str) -> None:
    data = b"trailer data " * 1000
    url = f"{endpoint}/{bucket}/chunked-trailer.bin"
    extra = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
    }
    signed = sign(url, ACCESS_KEY, SECRET_KEY, payload=SIGNED_CHUNKS_TRAILER, headers=extra)
    checksum = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    chunked = signed.chunked_body([data[:8192], data[8192:]], {"x-amz-checksum-crc32": checksum})
    status, code, _ = send(url, "PUT", signed.headers, chunked)
    assert (status, code) == (200, "")
    assert body(s3, bucket, "chunked-trailer.bin") == data


def test_unsigned_trailer_upload(endpoint: str, s3: Any, bucket: str) -> None:
    """What boto3 sends over https by default: aws-chunked, unsigned, a CRC32 trailer."""
    data = b"hello over https"
    url = f"{endpoint}/{bucket}/unsigned-trailer.txt"
    extra = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
    }
    signed = sign(url, ACCESS_KEY, SECRET_KEY, payload=UNSIGNED_TRAILER, headers=extra)
    checksum = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    chunked = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n"
    chunked += f"x-amz-checksum-crc32:{checksum}\r\n\r\n".encode()
    status, code, _ = send(url, "PUT", signed.headers, chunked)
    assert (status, code) == (200, "")
    assert body(s3, bucket, "unsigned-trailer.txt") == data
