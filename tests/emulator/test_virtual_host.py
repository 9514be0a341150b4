"""Every Tigris rule holds whether a client names the bucket in the path or in the Host header.

The virtual-host client is what S3 clients configured with ``addressing_style="virtual"``
send for an endpoint ``http://localhost:PORT``: ``Host: BUCKET.localhost:PORT``. This machine
need not resolve ``*.localhost``, so the client connects to 127.0.0.1 and keeps the Host
header it signed.
"""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.emulator.responses import resolve_bucket
from tests.helpers import (
    SEED,
    SEED_FILES,
    body,
    call_with,
    create_snapshot_bucket,
    error_code,
    force_delete,
    fork,
    keys,
    make_client,
    snapshot,
)


def _port(emulator: EmulatorProcess) -> int:
    return int(urlsplit(emulator.endpoint_url).port or 0)


def virtual_client(emulator: EmulatorProcess) -> Any:
    port = _port(emulator)
    client = make_client(f"http://localhost:{port}", addressing_style="virtual")

    def to_loopback(request: Any, **kwargs: Any) -> None:
        parts = urlsplit(request.url)
        if parts.hostname and parts.hostname.endswith(".localhost"):
            request.headers["Host"] = parts.netloc
            request.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))

    client.meta.events.register("before-send.s3", to_loopback)
    return client


@pytest.fixture(params=["path", "virtual"])
def style(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(style: str, emulator: EmulatorProcess, s3: Any) -> Any:
    if style == "path":
        return s3
    return virtual_client(emulator)


@pytest.fixture
def parent(s3: Any, unique: Callable[[str], str]) -> Iterator[str]:
    """A snapshot-enabled bucket with one live fork (``<parent>-child``)."""
    name = unique("vh")
    create_snapshot_bucket(s3, name)
    s3.put_object(Bucket=name, Key="k", Body=b"parent")
    fork(s3, f"{name}-child", name)
    yield name
    for bucket in (f"{name}-child", name):
        with contextlib.suppress(ClientError):
            force_delete(s3, bucket)


def test_the_virtual_client_really_sends_the_bucket_in_the_host(emulator: EmulatorProcess) -> None:
    sent: list[tuple[str, str]] = []
    client = virtual_client(emulator)
    client.meta.events.register(
        "before-send.s3", lambda request, **kw: sent.append((request.headers["Host"], request.url))
    )
    client.head_bucket(Bucket=SEED)
    host, url = sent[-1]
    assert host == f"{SEED}.localhost:{_port(emulator)}"
    assert urlsplit(url).path == "/"


def test_reads_and_listings(client: Any) -> None:
    assert body(client, SEED, "docs/readme.txt") == SEED_FILES["docs/readme.txt"]
    assert keys(client, SEED) == sorted(SEED_FILES)
    listed = client.list_objects_v2(Bucket=SEED, Prefix="images/", Delimiter="/")
    assert [o["Key"] for o in listed["Contents"]] == ["images/cat.png", "images/dog.png"]


def test_a_parent_with_forks_cannot_be_deleted(client: Any, s3: Any, parent: str) -> None:
    for headers in ({}, {"X-Tigris-Force-Delete": "true"}):
        with pytest.raises(ClientError) as exc:
            call_with(client, headers, "delete_bucket", Bucket=parent)
        assert error_code(exc) == (409, "BucketHasForks")
    assert body(s3, parent, "k") == b"parent"


def test_force_delete_deletes_that_bucket_only(client: Any, s3: Any, parent: str) -> None:
    call_with(client, {"X-Tigris-Force-Delete": "true"}, "delete_bucket", Bucket=f"{parent}-child")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert parent in names
    assert f"{parent}-child" not in names
    assert SEED in names


def test_forks_snapshots_and_reads_at_a_version(
    client: Any, s3: Any, parent: str, unique: Callable[[str], str]
) -> None:
    version = snapshot(client, parent, "vh")
    client.put_object(Bucket=parent, Key="k", Body=b"changed")
    child = unique("vhf")
    try:
        fork(client, child, parent, version)
        assert body(client, child, "k") == b"parent"
        client.put_object(Bucket=child, Key="k", Body=b"child")
        assert body(s3, parent, "k") == b"changed"
        old = call_with(
            client, {"X-Tigris-Snapshot-Version": version}, "get_object", Bucket=parent, Key="k"
        )
        assert old["Body"].read() == b"parent"
        head = client.head_bucket(Bucket=child)["ResponseMetadata"]["HTTPHeaders"]
        assert head["x-tigris-fork-source-bucket"] == parent
        assert head["x-tigris-fork-source-bucket-snapshot"] == version
    finally:
        force_delete(s3, child)


def test_versioning_cannot_be_suspended(client: Any, parent: str) -> None:
    for bucket in (parent, f"{parent}-child"):
        with pytest.raises(ClientError) as exc:
            client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
            )
        assert error_code(exc) == (400, "InvalidBucketState")


def test_in_place_tagging_on_a_parent_stays_out_of_its_fork(
    client: Any, s3: Any, parent: str
) -> None:
    s3.put_object_tagging(Bucket=parent, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "1"}]})
    client.put_object_tagging(
        Bucket=parent, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "2"}]}
    )
    child_tags = s3.get_object_tagging(Bucket=f"{parent}-child", Key="k")["TagSet"]
    assert child_tags == []
    assert s3.get_object_tagging(Bucket=parent, Key="k")["TagSet"] == [{"Key": "a", "Value": "2"}]


def test_writes_land_in_the_bucket_named_by_the_host(client: Any, s3: Any, parent: str) -> None:
    child = f"{parent}-child"
    client.put_object(Bucket=child, Key="dir/new file+#ü.txt", Body=b"x")
    assert body(s3, child, "dir/new file+#ü.txt") == b"x"
    assert keys(s3, parent) == ["k"]
    client.delete_object(Bucket=child, Key="k")
    assert keys(s3, child) == ["dir/new file+#ü.txt"]
    assert body(s3, parent, "k") == b"parent"


def _raw(emulator: EmulatorProcess, method: str, path: str, host: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", _port(emulator), timeout=10)
    try:
        connection.request(method, path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_foreign_host_name_never_names_a_bucket(
    emulator: EmulatorProcess, s3: Any, parent: str
) -> None:
    # moto would take "parent" from this Host; the emulator reads the path (none here).
    for bucket in (parent, f"{parent}-child"):
        status, answer = _raw(emulator, "DELETE", "/", f"{bucket}.example.com")
        assert status == 405, answer
        assert b"<Code>MethodNotAllowed</Code>" in answer
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert parent in names
    assert f"{parent}-child" in names


def test_a_raw_virtual_host_delete_of_a_parent_is_refused(
    emulator: EmulatorProcess, s3: Any, parent: str
) -> None:
    status, answer = _raw(emulator, "DELETE", "/", f"{parent}.localhost:{_port(emulator)}")
    assert status == 409
    assert b"<Code>BucketHasForks</Code>" in answer
    assert parent in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("127.0.0.1:9000", "/b/k/x", ("b", "k/x", False)),
        ("[::1]:9000", "/b/k", ("b", "k", False)),
        ("localhost:9000", "/b", ("b", "", False)),
        ("b.localhost:9000", "/k/x", ("b", "k/x", True)),
        ("my.dotted.bucket.localhost", "/", ("my.dotted.bucket", "", True)),
        ("B.LOCALHOST:1", "/k", ("b", "k", True)),
        ("b.example.com", "/k", ("k", "", False)),
        ("tigris:9000", "/b/k", ("b", "k", False)),
        ("b.emu.internal:9000", "/k", ("b", "k", True)),
    ],
)
def test_resolve_bucket(host: str, path: str, expected: tuple[str, str, bool]) -> None:
    assert resolve_bucket(host, path, {"emu.internal"}) == expected
