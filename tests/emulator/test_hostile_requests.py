"""Requests boto3 never sends: the emulator answers each with a 4xx and stays up for everyone.

Sent over raw sockets or ``http.client`` to a real emulator process (no keys configured).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import (
    SEED,
    body,
    call_with,
    create_snapshot_bucket,
    error_code,
    force_delete,
    fork,
)


def _address(emulator: EmulatorProcess) -> tuple[str, int]:
    parts = urlsplit(emulator.endpoint_url)
    return str(parts.hostname), int(parts.port or 0)


def request(
    emulator: EmulatorProcess,
    method: str,
    path: str,
    data: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    host, port = _address(emulator)
    connection = http.client.HTTPConnection(host, port, timeout=20)
    try:
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def code_of(answer: bytes) -> str:
    start = answer.index(b"<Code>") + len(b"<Code>")
    return answer[start : answer.index(b"</Code>")].decode()


@pytest.fixture
def bucket(s3: Any, unique: Callable[[str], str]) -> Iterator[str]:
    """A snapshot-enabled bucket with one fork, both force-deleted afterwards."""
    name = unique("hostile")
    create_snapshot_bucket(s3, name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    fork(s3, f"{name}-f", name)
    yield name
    for each in (f"{name}-f", name):
        force_delete(s3, each)


# -- versioning ---------------------------------------------------------------------------
SUSPEND_WITH_MFA = (
    b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Status>Suspended</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>"
)


@pytest.mark.parametrize("which", ["parent", "fork"])
def test_suspending_versioning_is_refused_whatever_else_the_body_says(
    emulator: EmulatorProcess, s3: Any, bucket: str, which: str
) -> None:
    target = bucket if which == "parent" else f"{bucket}-f"
    status, answer = request(emulator, "PUT", f"/{target}?versioning", SUSPEND_WITH_MFA)
    assert (status, code_of(answer)) == (400, "InvalidBucketState")
    assert s3.get_bucket_versioning(Bucket=target)["Status"] == "Enabled"


@pytest.mark.parametrize(
    "payload",
    [
        b"<VersioningConfiguration><Status>Suspended",
        b"<VersioningConfiguration><Status>Paused</Status></VersioningConfiguration>",
        b"<Other><Status>Enabled</Status></Other>",
        b"<VersioningConfiguration><Status>Enabled</Status><Status>Suspended</Status>"
        b"</VersioningConfiguration>",
        b'<!DOCTYPE x [<!ENTITY e "Suspended">]><VersioningConfiguration><Status>&e;</Status>'
        b"</VersioningConfiguration>",
    ],
)
def test_a_versioning_body_that_is_not_a_configuration_is_malformed(
    emulator: EmulatorProcess, s3: Any, bucket: str, payload: bytes
) -> None:
    status, answer = request(emulator, "PUT", f"/{bucket}?versioning", payload)
    assert (status, code_of(answer)) == (400, "MalformedXML")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_a_plain_bucket_may_still_suspend_versioning(s3: Any, unique: Callable[[str], str]) -> None:
    name = unique("plainv")
    s3.create_bucket(Bucket=name)
    try:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Suspended"
    finally:
        force_delete(s3, name)


# -- bad requests are 4xx -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/{b}?delete"),
        ("POST", "/{b}/k?uploadId={upload}"),
        ("PUT", "/{b}?tagging"),
        ("PUT", "/{b}/k?tagging"),
        ("PUT", "/{b}?lifecycle"),
        ("PUT", "/{b}?cors"),
    ],
)
@pytest.mark.parametrize("payload", [b"<Delete><Object>", b"not xml at all", b"\xff\xfe<"])
def test_malformed_xml_is_400(
    emulator: EmulatorProcess, s3: Any, bucket: str, method: str, path: str, payload: bytes
) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    status, answer = request(emulator, method, path.format(b=bucket, upload=upload), payload)
    assert (status, code_of(answer)) == (400, "MalformedXML")
    assert body(s3, bucket, "k") == b"v"


def test_well_formed_xml_of_the_wrong_shape_is_400(
    emulator: EmulatorProcess, s3: Any, bucket: str
) -> None:
    status, answer = request(emulator, "POST", f"/{bucket}?delete", b"<Nothing/>")
    assert (status, code_of(answer)) == (400, "MalformedXML")
    assert body(s3, bucket, "k") == b"v"


@pytest.mark.parametrize(
    ("method", "query"),
    [
        ("PUT", "partNumber=1&uploadId=nope"),
        ("POST", "uploadId=nope"),
        ("GET", "uploadId=nope"),
        ("DELETE", "uploadId=nope"),
    ],
)
def test_an_unknown_upload_is_404_no_such_upload(
    emulator: EmulatorProcess, bucket: str, method: str, query: str
) -> None:
    data = b"<CompleteMultipartUpload/>" if method == "POST" else b"xx"
    status, answer = request(emulator, method, f"/{bucket}/k?{query}", data)
    assert (status, code_of(answer)) == (404, "NoSuchUpload")


def test_a_key_over_1024_utf8_bytes_is_refused(s3: Any, bucket: str) -> None:
    fits = "é" * 512  # 1,024 bytes
    s3.put_object(Bucket=bucket, Key=fits, Body=b"ok")
    assert body(s3, bucket, fits) == b"ok"
    for key in ("a" * 1025, "é" * 513):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        assert error_code(exc) == (400, "KeyTooLongError")


@pytest.mark.parametrize("size", ["0", "-1", "abc", "10001"])
def test_fork_listing_refuses_a_page_size_it_cannot_serve(
    emulator: EmulatorProcess, bucket: str, size: str
) -> None:
    status, answer = request(
        emulator,
        "GET",
        f"/?max-buckets={size}",
        headers={"X-Tigris-Fork": bucket, "Accept": "application/json"},
    )
    assert (status, code_of(answer)) == (400, "InvalidArgument")


def test_fork_listing_pages_end(emulator: EmulatorProcess, s3: Any, bucket: str) -> None:
    fork(s3, f"{bucket}-g", bucket)
    try:
        names: list[str] = []
        token = ""
        for _ in range(5):
            query = "max-buckets=1" + (f"&continuation-token={token}" if token else "")
            status, answer = request(
                emulator, "GET", f"/?{query}", headers={"X-Tigris-Fork": bucket}
            )
            assert status == 200
            page = json.loads(answer)
            names += [b["Name"] for b in page.get("Buckets", {}).get("Bucket", [])]
            token = page.get("ContinuationToken", "")
            if not token:
                break
        assert names == [f"{bucket}-f", f"{bucket}-g"]
        assert token == ""
    finally:
        force_delete(s3, f"{bucket}-g")


def test_a_short_body_is_incomplete_and_stores_nothing(
    emulator: EmulatorProcess, s3: Any, bucket: str
) -> None:
    host, port = _address(emulator)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            f"PUT /{bucket}/short HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Length: 1000\r\n\r\n1234567".encode()
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"<Code>IncompleteBody</Code>" in answer
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="short")
    assert error_code(exc)[0] == 404


# -- a stalled client stalls only itself --------------------------------------------------
def test_a_stalled_upload_blocks_no_one(emulator: EmulatorProcess, s3: Any, bucket: str) -> None:
    host, port = _address(emulator)
    stalled = socket.create_connection((host, port), timeout=60)
    try:
        stalled.sendall(
            f"PUT /{bucket}/stalled HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Length: 1000\r\n\r\n1234567".encode()
        )
        time.sleep(0.3)  # the server is now reading that body
        done: list[str] = []

        def others() -> None:
            s3.list_buckets()
            # An exclusive operation (a fork) and reads around it.
            fork(s3, f"{bucket}-during", bucket)
            assert body(s3, f"{bucket}-during", "k") == b"v"
            force_delete(s3, f"{bucket}-during")
            s3.put_object(Bucket=bucket, Key="other", Body=b"o")
            done.append("ok")

        worker = threading.Thread(target=others)
        started = time.monotonic()
        worker.start()
        worker.join(20)
        assert done == ["ok"], "requests waited for a stalled client"
        assert time.monotonic() - started < 20
    finally:
        stalled.close()


@pytest.mark.parametrize("sent", ["GET /{seed} HTTP/1.1\r\nHost: x\r\n", "PUT_BODY"])
def test_the_server_drops_a_client_that_stops_sending(
    monkeypatch: pytest.MonkeyPatch, sent: str
) -> None:
    # Headers or body never finished: the server closes the connection after its socket
    # timeout instead of keeping a thread (and, before, a lock) forever.
    monkeypatch.setenv("PYTEST_TIGRIS_EMULATOR_SOCKET_TIMEOUT", "1.5")
    with EmulatorProcess(seed=SEED) as emulator:
        host, port = _address(emulator)
        if sent == "PUT_BODY":
            sent = f"PUT /{SEED}/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n1234567"
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(sent.format(seed=SEED).encode())
            started = time.monotonic()
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            waited = time.monotonic() - started
        assert 1.0 < waited < 15
        if "Content-Length" in sent:
            assert answer.startswith(b"HTTP/1.1 400 ")
            assert b"<Code>RequestTimeout</Code>" in answer
        else:
            assert answer == b""


def test_unsupported_verbs_on_the_service_are_refused(emulator: EmulatorProcess) -> None:
    status, answer = request(emulator, "DELETE", "/")
    assert (status, code_of(answer)) == (405, "MethodNotAllowed")


def test_reads_at_a_version_ignore_nothing_by_accident(s3: Any, bucket: str) -> None:
    # A snapshot read of a listing with a sub-resource is not a listing: moto answers it.
    from tests.helpers import snapshot

    version = snapshot(s3, bucket)
    answer = call_with(
        s3, {"X-Tigris-Snapshot-Version": version}, "get_bucket_versioning", Bucket=bucket
    )
    assert answer["Status"] == "Enabled"
