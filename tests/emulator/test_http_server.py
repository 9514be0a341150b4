"""The emulator's HTTP/1.1 server: keep-alive, framing, and the --latency stand-in."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import SEED, SEED_FILES, body, make_client

AUTH = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=test-key/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=00"
}


def _address(emulator: EmulatorProcess) -> tuple[str, int]:
    parts = urlsplit(emulator.endpoint_url)
    return str(parts.hostname), int(parts.port or 0)


def read_response(sock_file: Any) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response from a socket file: status, headers, body (Content-Length)."""
    status_line = sock_file.readline()
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := sock_file.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return status, headers, sock_file.read(length)


def test_one_connection_serves_many_requests(emulator: EmulatorProcess) -> None:
    host, port = _address(emulator)
    with socket.create_connection((host, port), timeout=10) as sock:
        stream = sock.makefile("rb")
        answers = []
        for key in ("manifest.json", "docs/readme.txt", "manifest.json"):
            request = f"GET /{SEED}/{key} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            sock.sendall((request + "".join(f"{k}: {v}\r\n" for k, v in AUTH.items())).encode())
            sock.sendall(b"\r\n")
            answers.append(read_response(stream))
    assert [a[0] for a in answers] == [200, 200, 200]
    assert [a[2] for a in answers] == [
        SEED_FILES["manifest.json"],
        SEED_FILES["docs/readme.txt"],
        SEED_FILES["manifest.json"],
    ]
    assert all(a[1].get("connection") != "close" for a in answers)


def test_boto3_reuses_its_connections(emulator: EmulatorProcess) -> None:
    import urllib3

    s3 = make_client(emulator.endpoint_url)
    opened: list[Any] = []
    connect = urllib3.connection.HTTPConnection.connect

    def counting(self: Any) -> None:
        opened.append(self)
        connect(self)

    urllib3.connection.HTTPConnection.connect = counting  # type: ignore[method-assign]
    try:
        for _ in range(20):
            assert body(s3, SEED, "manifest.json") == SEED_FILES["manifest.json"]
    finally:
        urllib3.connection.HTTPConnection.connect = connect  # type: ignore[method-assign]
    assert len(opened) == 1


def test_a_chunked_upload_is_decoded(emulator: EmulatorProcess, s3: Any) -> None:
    host, port = _address(emulator)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(
            "PUT",
            f"/{SEED}/chunked-upload.txt",
            body=iter([b"hello ", b"chunked ", b"world"]),
            headers=AUTH,  # no length: http.client sends it chunked
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    finally:
        connection.close()
    try:
        assert body(s3, SEED, "chunked-upload.txt") == b"hello chunked world"
    finally:
        s3.delete_object(Bucket=SEED, Key="chunked-upload.txt")


def test_a_refused_request_with_an_unread_body_ends_its_connection(
    emulator: EmulatorProcess,
) -> None:
    # The body of a request refused before its body is read must never be parsed as the
    # next request on the same connection.
    host, port = _address(emulator)
    smuggled = f"DELETE /{SEED} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        head = f"PUT /moto-api/reset HTTP/1.1\r\nHost: x\r\nContent-Length: {len(smuggled)}"
        sock.sendall(head.encode() + b"\r\n\r\n" + smuggled)
        stream = sock.makefile("rb")
        status, headers, _ = read_response(stream)
        assert status == 403
        assert headers["connection"] == "close"
        assert stream.read() == b""


def test_expect_100_continue(emulator: EmulatorProcess, s3: Any) -> None:
    host, port = _address(emulator)
    with socket.create_connection((host, port), timeout=10) as sock:
        head = (
            f"PUT /{SEED}/expect.txt HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 2\r\n"
            f"Expect: 100-continue\r\nAuthorization: {AUTH['Authorization']}\r\n\r\n"
        )
        sock.sendall(head.encode())
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 100")
        assert stream.readline() == b"\r\n"
        sock.sendall(b"ok")
        assert read_response(stream)[0] == 200
    try:
        assert body(s3, SEED, "expect.txt") == b"ok"
    finally:
        s3.delete_object(Bucket=SEED, Key="expect.txt")


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(seed="latency-seed", latency=0.05) as emulator:
        yield emulator


def test_latency_is_added_to_every_request(slow_emulator: EmulatorProcess) -> None:
    s3 = make_client(slow_emulator.endpoint_url)
    s3.list_buckets()
    started = time.perf_counter()
    for _ in range(5):
        s3.head_bucket(Bucket="latency-seed")
    per_request = (time.perf_counter() - started) / 5
    assert per_request >= 0.05


@pytest.mark.parametrize("value", ["30", "abc", "-5ms", "61s", "nanms"])
def test_a_bad_latency_is_one_line(value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_tigris", "emulator", f"--latency={value}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"pytest-tigris emulator: error: argument --latency: {value!r} is not a delay: give "
        "milliseconds or seconds up to 60 s, e.g. 30ms"
    )
    assert "Traceback" not in result.stderr
