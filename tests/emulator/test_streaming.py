"""Large objects go in and out in chunks: the emulator's memory grows by at most one object.

Measured on a real emulator process through /proc: ``VmHWM`` (peak resident memory) against
``VmRSS`` before the upload.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import (
    call_with,
    create_snapshot_bucket,
    error_code,
    fork,
    make_client,
    snapshot,
)

MB = 1024 * 1024
SIZE = 1024 * MB
SLACK = 64 * MB
BUCKET = "stream-seed"
# moto needs no signature when the emulator has no keys, only a signed-looking request.
AUTH = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=test-key/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=00"
}

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


def memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def pattern(index: int) -> bytes:
    """The index-th megabyte of the big object: different bytes in every chunk."""
    return hashlib.sha256(str(index).encode()).digest() * (MB // 32)


def expected_digest(size: int) -> str:
    digest = hashlib.sha256()
    for index in range(size // MB):
        digest.update(pattern(index))
    return digest.hexdigest()


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[EmulatorProcess, Any, int]]:
    """A fresh emulator holding one 1 GiB object, uploaded in chunks; yields (emulator,
    client, memory growth of the upload at its peak)."""
    with EmulatorProcess(seed=BUCKET) as emulator:
        assert emulator.process is not None
        pid = emulator.process.pid
        before = memory(pid, "VmRSS")
        status = put_streaming(emulator, f"/{BUCKET}/big.bin", SIZE)
        assert status == 200
        peak = memory(pid, "VmHWM") - before
        yield emulator, make_client(emulator.endpoint_url), peak


def connect(emulator: EmulatorProcess) -> http.client.HTTPConnection:
    parts = urlsplit(emulator.endpoint_url)
    return http.client.HTTPConnection(str(parts.hostname), int(parts.port or 0), timeout=300)


def put_streaming(emulator: EmulatorProcess, path: str, size: int) -> int:
    def chunks() -> Iterator[bytes]:
        for index in range(size // MB):
            yield pattern(index)

    connection = connect(emulator)
    try:
        connection.request(
            "PUT", path, body=chunks(), headers={**AUTH, "Content-Length": str(size)}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_1gib_upload_costs_at_most_its_size_and_is_given_back(
    big: tuple[EmulatorProcess, Any, int],
) -> None:
    emulator, _, peak = big
    assert emulator.process is not None
    assert peak <= SIZE + SLACK, f"upload peak grew memory by {peak // MB} MB"
    # Once stored (in a file), the bytes are not kept in memory.
    baseline_after = memory(emulator.process.pid, "VmRSS")
    assert baseline_after < memory(emulator.process.pid, "VmHWM") - SIZE + SLACK


def test_a_1gib_download_starts_before_the_object_is_read(
    big: tuple[EmulatorProcess, Any, int],
) -> None:
    emulator, _, _ = big
    assert emulator.process is not None
    pid = emulator.process.pid
    before = memory(pid, "VmRSS")
    connection = connect(emulator)
    try:
        connection.request("GET", f"/{BUCKET}/big.bin", headers=AUTH)
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(SIZE)
        first = response.read(MB)
        # The first megabyte is here, and the emulator has not loaded the object.
        assert memory(pid, "VmRSS") - before < SLACK
        digest = hashlib.sha256(first)
        while chunk := response.read(4 * MB):
            digest.update(chunk)
    finally:
        connection.close()
    assert digest.hexdigest() == expected_digest(SIZE)
    assert memory(pid, "VmRSS") - before < SLACK


def test_ranges_and_conditions_on_a_large_object(big: tuple[EmulatorProcess, Any, int]) -> None:
    _, s3, _ = big
    head = s3.head_object(Bucket=BUCKET, Key="big.bin")
    part = s3.get_object(Bucket=BUCKET, Key="big.bin", Range=f"bytes={3 * MB + 5}-{3 * MB + 9}")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes {3 * MB + 5}-{3 * MB + 9}/{SIZE}"
    assert part["Body"].read() == pattern(3)[5:10]
    tail = s3.get_object(Bucket=BUCKET, Key="big.bin", Range="bytes=-4")
    assert tail["Body"].read() == pattern(SIZE // MB - 1)[-4:]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="big.bin", IfNoneMatch=head["ETag"])
    assert error_code(exc)[0] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="big.bin", IfMatch='"nope"')
    assert error_code(exc) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="big.bin", Range=f"bytes={SIZE + 1}-")
    assert error_code(exc) == (416, "InvalidRange")


def test_forks_and_snapshots_stream_the_bytes_they_see(
    big: tuple[EmulatorProcess, Any, int],
) -> None:
    _, s3, _ = big
    version = snapshot(s3, BUCKET)
    fork(s3, "stream-fork", BUCKET, version)
    s3.put_object(Bucket=BUCKET, Key="big.bin", Body=b"small now")
    assert s3.get_object(Bucket=BUCKET, Key="big.bin")["Body"].read() == b"small now"
    for read in (
        lambda: s3.get_object(Bucket="stream-fork", Key="big.bin"),
        lambda: call_with(
            s3, {"X-Tigris-Snapshot-Version": version}, "get_object", Bucket=BUCKET, Key="big.bin"
        ),
    ):
        answer = read()
        assert answer["ContentLength"] == SIZE
        digest = hashlib.sha256()
        for chunk in answer["Body"].iter_chunks(4 * MB):
            digest.update(chunk)
        assert digest.hexdigest() == expected_digest(SIZE)


def test_a_delete_during_a_download_does_not_cut_it(tmp_path: Path) -> None:
    size = 64 * MB
    with EmulatorProcess(seed=BUCKET) as emulator:
        s3 = make_client(emulator.endpoint_url)
        create_snapshot_bucket(s3, "plain-stream")
        assert put_streaming(emulator, "/plain-stream/obj", size) == 200
        connection = connect(emulator)
        try:
            connection.request("GET", "/plain-stream/obj", headers=AUTH)
            response = connection.getresponse()
            digest = hashlib.sha256(response.read(MB))
            deleted = threading.Event()

            def delete() -> None:
                versions = s3.list_object_versions(Bucket="plain-stream")["Versions"]
                for version in versions:
                    s3.delete_object(
                        Bucket="plain-stream", Key="obj", VersionId=version["VersionId"]
                    )
                deleted.set()

            worker = threading.Thread(target=delete)
            worker.start()
            worker.join(30)
            assert deleted.is_set()
            while chunk := response.read(4 * MB):
                digest.update(chunk)
        finally:
            connection.close()
        assert digest.hexdigest() == expected_digest(size)
        assert s3.list_objects_v2(Bucket="plain-stream")["KeyCount"] == 0
