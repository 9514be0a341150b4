"""Tigris's Bundle API (``POST /{bucket}?bundle``) against a real emulator process.

What users call is tigris-boto3-ext's ``bundle_objects`` on a boto3 client: the first classes
go through it, case by case as the library's own integration suite does against Tigris. What
it never sends (XML bodies, bad headers, virtual hosts, snapshot versions) goes over
``http.client``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import tarfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import tigris_boto3_ext as tx
from tigris_boto3_ext import BundleError, bundle_objects

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import create_snapshot_bucket, force_delete, fork, make_client, snapshot

ERRORS = "__bundle_errors.json"
JSON = {"Content-Type": "application/json"}
TAR = {"X-Tigris-Bundle-Format": "tar"}


# -- helpers ------------------------------------------------------------------------------
class Buckets:
    """Buckets a test made, force-deleted newest first (forks before their parents)."""

    def __init__(self, s3: Any, unique: Callable[[str], str]) -> None:
        self.s3 = s3
        self.unique = unique
        self.names: list[str] = []

    def plain(self, objects: dict[str, bytes] | None = None) -> str:
        name = self.unique("bundle")
        self.s3.create_bucket(Bucket=name)
        self.names.append(name)
        self.put(name, objects or {})
        return name

    def snapshot_enabled(self, objects: dict[str, bytes] | None = None) -> str:
        name = self.unique("bundle-snap")
        create_snapshot_bucket(self.s3, name)
        self.names.append(name)
        self.put(name, objects or {})
        return name

    def fork(self, source: str, at: str | None = None) -> str:
        name = self.unique("bundle-fork")
        fork(self.s3, name, source, at)
        self.names.append(name)
        return name

    def put(self, bucket: str, objects: dict[str, bytes]) -> None:
        for key, data in objects.items():
            self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    def cleanup(self) -> None:
        for name in reversed(self.names):
            force_delete(self.s3, name)


@pytest.fixture
def buckets(s3: Any, unique: Callable[[str], str]) -> Iterator[Buckets]:
    made = Buckets(s3, unique)
    yield made
    made.cleanup()


def members(stream: Any) -> list[tuple[str, bytes]]:
    """Every entry of a tar read as a stream (``r|``, as the docs show), in order."""
    out: list[tuple[str, bytes]] = []
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            assert member.isfile(), member.name
            extracted = tar.extractfile(member)
            assert extracted is not None
            out.append((member.name, extracted.read()))
    return out


def skipped(entries: list[tuple[str, bytes]]) -> list[dict[str, str]]:
    """The error manifest, which must be the last entry."""
    name, data = entries[-1]
    assert name == ERRORS
    document = json.loads(data)
    assert list(document) == ["skipped"]
    return list(document["skipped"])


def post(
    emulator: EmulatorProcess,
    bucket: str,
    body: bytes,
    headers: dict[str, str],
    *,
    host: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """``POST /{bucket}?bundle`` (or ``POST /?bundle`` to ``host``) over ``http.client``."""
    connection = connect(emulator)
    path = "/?bundle" if host else f"/{bucket}?bundle"
    sent = dict(headers)
    if host:
        sent["Host"] = host
    try:
        connection.request("POST", path, body=body, headers=sent)
        response = connection.getresponse()
        answer = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer, response.read()
    finally:
        connection.close()


def keys_json(keys: list[str]) -> bytes:
    return json.dumps({"keys": keys}).encode()


def code_of(answer: bytes) -> str:
    start = answer.index(b"<Code>") + len(b"<Code>")
    return answer[start : answer.index(b"</Code>")].decode()


# -- what tigris-boto3-ext's integration suite does against Tigris ------------------------
class TestThroughTheClientLibrary:
    def test_one_object(self, s3: Any, buckets: Buckets) -> None:
        bucket = buckets.plain({"hello.txt": b"Hello, world!"})
        response = bundle_objects(s3, bucket, ["hello.txt"])
        assert members(response) == [("hello.txt", b"Hello, world!")]

    def test_several_objects(self, s3: Any, buckets: Buckets) -> None:
        objects = {"dir/a.txt": b"aaa", "dir/b.txt": b"bbb", "dir/c.txt": b"ccc"}
        bucket = buckets.plain(objects)
        response = bundle_objects(s3, bucket, list(objects))
        assert members(response) == list(objects.items())

    def test_entries_follow_the_request_order(self, s3: Any, buckets: Buckets) -> None:
        bucket = buckets.plain({f"img_{i:03d}.jpg": f"data_{i}".encode() for i in range(5)})
        wanted = [f"img_{i:03d}.jpg" for i in (4, 1, 3, 0, 2)]
        response = bundle_objects(s3, bucket, wanted)
        assert [name for name, _ in members(response)] == wanted

    def test_gzip(self, s3: Any, buckets: Buckets) -> None:
        bucket = buckets.plain({"file.txt": b"gzip test data"})
        response = bundle_objects(s3, bucket, ["file.txt"], compression=tx.BUNDLE_COMPRESSION_GZIP)
        assert response.content_type == "application/gzip"
        with gzip.open(response, "rb") as unzipped:
            assert members(unzipped) == [("file.txt", b"gzip test data")]

    def test_zstd(self, s3: Any, buckets: Buckets) -> None:
        zstandard = pytest.importorskip("zstandard", reason="zstandard is not installed here")
        bucket = buckets.plain({"file.txt": b"zstd test data"})
        response = bundle_objects(s3, bucket, ["file.txt"], compression=tx.BUNDLE_COMPRESSION_ZSTD)
        assert response.content_type == "application/zstd"
        tar = zstandard.ZstdDecompressor().decompress(response.read())
        assert members(io.BytesIO(tar)) == [("file.txt", b"zstd test data")]

    def test_skip_mode_leaves_missing_keys_out_and_lists_them_last(
        self, s3: Any, buckets: Buckets
    ) -> None:
        bucket = buckets.plain({"exists.txt": b"here"})
        response = bundle_objects(
            s3, bucket, ["missing.txt", "exists.txt"], on_error=tx.BUNDLE_ON_ERROR_SKIP
        )
        entries = members(response)
        assert entries[:-1] == [("exists.txt", b"here")]
        assert skipped(entries) == [{"key": "missing.txt", "reason": "NoSuchKey"}]
        assert (response.object_count, response.skipped_count) == (1, 1)

    def test_skip_is_the_default(self, s3: Any, buckets: Buckets) -> None:
        bucket = buckets.plain({"a": b"1"})
        entries = members(bundle_objects(s3, bucket, ["a", "b", "c"]))
        assert entries[:-1] == [("a", b"1")]
        assert skipped(entries) == [
            {"key": "b", "reason": "NoSuchKey"},
            {"key": "c", "reason": "NoSuchKey"},
        ]

    def test_fail_mode_answers_404_naming_the_missing_keys(self, s3: Any, buckets: Buckets) -> None:
        bucket = buckets.plain({"exists.txt": b"here"})
        with pytest.raises(BundleError) as caught:
            bundle_objects(
                s3,
                bucket,
                ["exists.txt", "no-such-key.txt", "gone/too"],
                on_error=tx.BUNDLE_ON_ERROR_FAIL,
            )
        error = caught.value
        assert (error.status_code, error.code) == (404, "BundleKeyNotFound")
        assert "<MissingKeys><Key>no-such-key.txt</Key><Key>gone/too</Key></MissingKeys>" in (
            error.body
        )

    def test_fail_mode_with_every_key_present_is_a_whole_tar(
        self, s3: Any, buckets: Buckets
    ) -> None:
        bucket = buckets.plain({"a": b"1", "b": b"22"})
        response = bundle_objects(s3, bucket, ["b", "a"], on_error=tx.BUNDLE_ON_ERROR_FAIL)
        assert members(response) == [("b", b"22"), ("a", b"1")]
        assert response.skipped_count == 0

    def test_count_bytes_and_skipped_figures(self, s3: Any, buckets: Buckets) -> None:
        bucket = buckets.plain({f"obj_{i}.txt": f"data_{i}".encode() * (i + 1) for i in range(3)})
        keys = [f"obj_{i}.txt" for i in range(3)]
        response = bundle_objects(s3, bucket, keys)
        for _ in members(response):
            pass
        assert response.object_count == 3
        assert response.bundle_bytes == 6 + 12 + 18
        assert response.skipped_count == 0

    def test_response_as_a_context_manager(self, s3: Any, buckets: Buckets) -> None:
        bucket = buckets.plain({"ctx.txt": b"context test"})
        with bundle_objects(s3, bucket, ["ctx.txt"]) as response:
            assert response.status_code == 200
            assert response.content_type == "application/x-tar"
            assert members(response) == [("ctx.txt", b"context test")]

    def test_a_bucket_that_does_not_exist(self, s3: Any, unique: Callable[[str], str]) -> None:
        with pytest.raises(BundleError) as caught:
            bundle_objects(s3, unique("nobody"), ["a"])
        assert (caught.value.status_code, caught.value.code) == (404, "NoSuchBucket")


# -- the archive itself -------------------------------------------------------------------
class TestArchive:
    def test_long_keys_get_pax_headers(self, s3: Any, buckets: Buckets) -> None:
        long_key = "/".join([f"segment-{i:02d}" for i in range(60)])  # 659 characters
        bucket = buckets.plain({long_key: b"deep", "short": b"s"})
        response = bundle_objects(s3, bucket, [long_key, "short"])
        with tarfile.open(fileobj=response, mode="r|") as tar:
            first = tar.next()
            assert first is not None
            assert first.name == long_key
            assert first.pax_headers["path"] == long_key
            second = tar.next()
            assert second is not None
            assert second.name == "short"
            assert second.pax_headers == {}
            assert tar.next() is None

    def test_non_ascii_and_odd_keys_and_binary_bytes(self, s3: Any, buckets: Buckets) -> None:
        every_byte = bytes(range(256)) * 7
        objects = {
            "日本語/キー.bin": every_byte,
            "ünïcødé ✓/çà.txt": "ünï ✓".encode(),
            "ctl\x01\x1f\x7fkey": b"control characters",
            "sp ace+plus#hash?q=1&x": b"url characters",
            "folder/": b"",
            "/lead//double": b"slashes",
            "..": b"dots",
            "\U0001f600 emoji": b"astral plane",
        }
        bucket = buckets.plain(objects)
        response = bundle_objects(s3, bucket, list(objects))
        assert members(response) == list(objects.items())
        assert response.bundle_bytes == sum(len(data) for data in objects.values())

    def test_a_key_asked_twice_is_in_the_tar_twice(self, s3: Any, buckets: Buckets) -> None:
        bucket = buckets.plain({"a": b"1", "b": b"2"})
        entries = members(bundle_objects(s3, bucket, ["a", "b", "a"]))
        assert entries == [("a", b"1"), ("b", b"2"), ("a", b"1")]

    def test_entries_are_regular_files_with_the_objects_time(
        self, s3: Any, buckets: Buckets
    ) -> None:
        bucket = buckets.plain({"k": b"v"})
        modified = s3.head_object(Bucket=bucket, Key="k")["LastModified"].timestamp()
        with tarfile.open(fileobj=bundle_objects(s3, bucket, ["k"]), mode="r|") as tar:
            member = tar.next()
            assert member is not None
            assert (member.type, member.mode, member.size) == (tarfile.REGTYPE, 0o644, 1)
            assert int(member.mtime) == int(modified)

    def test_uncompressed_length_is_announced(
        self, emulator: EmulatorProcess, buckets: Buckets
    ) -> None:
        bucket = buckets.plain({"a": b"x" * 1000, "b": b"y"})
        status, headers, body = post(emulator, bucket, keys_json(["a", "b"]), {**TAR, **JSON})
        assert status == 200
        assert headers["content-type"] == "application/x-tar"
        # Two entries of one header block and their padded data, then two zero blocks.
        assert int(headers["content-length"]) == len(body) == 512 + 1024 + 512 + 512 + 1024
        assert (headers["x-tigris-bundle-count"], headers["x-tigris-bundle-bytes"]) == (
            "2",
            "1001",
        )
        assert headers["x-tigris-bundle-skipped"] == "0"

    def test_gzip_is_one_gzip_member(self, emulator: EmulatorProcess, buckets: Buckets) -> None:
        objects = {f"k{i}": os.urandom(300_000) for i in range(8)}
        bucket = buckets.plain(objects)
        headers = {**TAR, **JSON, "X-Tigris-Bundle-Compression": "gzip"}
        status, answer, body = post(emulator, bucket, keys_json(list(objects)), headers)
        assert status == 200
        assert answer["content-type"] == "application/gzip"
        assert "content-length" not in answer
        member = zlib.decompressobj(31)
        tar = member.decompress(body)
        assert member.eof
        assert member.unused_data == b""
        assert members(io.BytesIO(tar)) == list(objects.items())

    def test_zstd_is_one_frame_recording_its_size(
        self, emulator: EmulatorProcess, buckets: Buckets
    ) -> None:
        zstandard = pytest.importorskip("zstandard", reason="zstandard is not installed here")
        objects = {f"k{i}": os.urandom(300_000) for i in range(8)}
        bucket = buckets.plain(objects)
        headers = {**TAR, **JSON, "X-Tigris-Bundle-Compression": "zstd"}
        status, answer, body = post(emulator, bucket, keys_json(list(objects)), headers)
        assert status == 200
        assert answer["content-type"] == "application/zstd"
        frame = zstandard.get_frame_parameters(body)
        reader = zstandard.ZstdDecompressor().decompressobj()
        tar = reader.decompress(body)
        assert reader.eof
        assert reader.unused_data == b""
        assert frame.content_size == len(tar)
        assert members(io.BytesIO(tar)) == list(objects.items())

    def test_compressed_skip_mode_keeps_the_manifest(
        self, emulator: EmulatorProcess, buckets: Buckets
    ) -> None:
        bucket = buckets.plain({"here": b"h"})
        headers = {**TAR, **JSON, "X-Tigris-Bundle-Compression": "gzip"}
        status, answer, body = post(emulator, bucket, keys_json(["gone", "here"]), headers)
        assert status == 200
        entries = members(io.BytesIO(gzip.decompress(body)))
        assert entries[:-1] == [("here", b"h")]
        assert skipped(entries) == [{"key": "gone", "reason": "NoSuchKey"}]
        assert answer["x-tigris-bundle-skipped"] == "1"

    def test_the_xml_body_tigris_documents(
        self, emulator: EmulatorProcess, buckets: Buckets
    ) -> None:
        bucket = buckets.plain({"dataset/a.jpg": b"A", "dataset/b & c.jpg": b"BC"})
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<Bundle xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<Object><Key>dataset/b &amp; c.jpg</Key></Object>"
            b"<Object><Key>dataset/a.jpg</Key></Object>"
            b"<Object><Key>dataset/none.jpg</Key></Object>"
            b"</Bundle>"
        )
        headers = {**TAR, "Content-Type": "application/xml"}
        status, _, answer = post(emulator, bucket, body, headers)
        assert status == 200
        entries = members(io.BytesIO(answer))
        assert entries[:-1] == [("dataset/b & c.jpg", b"BC"), ("dataset/a.jpg", b"A")]
        assert skipped(entries) == [{"key": "dataset/none.jpg", "reason": "NoSuchKey"}]
        # Without a Content-Type, the body's first character tells XML from JSON.
        status, _, again = post(emulator, bucket, body, TAR)
        assert status == 200
        assert members(io.BytesIO(again)) == entries

    def test_fail_mode_sends_no_byte_of_tar(
        self, emulator: EmulatorProcess, buckets: Buckets
    ) -> None:
        bucket = buckets.plain({"a": b"1"})
        headers = {**TAR, **JSON, "X-Tigris-Bundle-On-Error": "fail"}
        status, answer, body = post(emulator, bucket, keys_json(["a", "x<&>y"]), headers)
        assert status == 404
        assert answer["content-type"] == "application/xml"
        assert code_of(body) == "BundleKeyNotFound"
        assert b"<MissingKeys><Key>x&lt;&amp;&gt;y</Key></MissingKeys>" in body

    def test_virtual_host_requests(self, emulator: EmulatorProcess, buckets: Buckets) -> None:
        bucket = buckets.plain({"v": b"virtual"})
        port = urlsplit(emulator.endpoint_url).port
        status, _, body = post(
            emulator, bucket, keys_json(["v"]), {**TAR, **JSON}, host=f"{bucket}.localhost:{port}"
        )
        assert status == 200
        assert members(io.BytesIO(body)) == [("v", b"virtual")]

    def test_five_thousand_keys(self, emulator: EmulatorProcess, buckets: Buckets) -> None:
        bucket = buckets.plain({"k-0003": b"3", "k-4999": b"4999"})
        keys = [f"k-{i:04d}" for i in range(5000)]
        headers = {**TAR, **JSON, "X-Tigris-Bundle-Compression": "gzip"}
        status, answer, body = post(emulator, bucket, keys_json(keys), headers)
        assert status == 200
        entries = members(io.BytesIO(gzip.decompress(body)))
        assert entries[:-1] == [("k-0003", b"3"), ("k-4999", b"4999")]
        assert [item["key"] for item in skipped(entries)] == [
            key for key in keys if key not in ("k-0003", "k-4999")
        ]
        assert answer["x-tigris-bundle-skipped"] == "4998"


# -- forks and snapshots ------------------------------------------------------------------
class TestForksAndSnapshots:
    def test_a_fork_reads_inherited_overridden_deleted_and_new_keys(
        self, s3: Any, buckets: Buckets
    ) -> None:
        parent = buckets.snapshot_enabled(
            {"kept": b"parent kept", "changed": b"parent old", "removed": b"parent removed"}
        )
        child = buckets.fork(parent)
        s3.put_object(Bucket=child, Key="changed", Body=b"child new")
        s3.delete_object(Bucket=child, Key="removed")
        s3.put_object(Bucket=child, Key="added", Body=b"child added")
        wanted = ["kept", "changed", "removed", "added"]

        entries = members(bundle_objects(s3, child, wanted))
        assert entries[:-1] == [
            ("kept", b"parent kept"),
            ("changed", b"child new"),
            ("added", b"child added"),
        ]
        assert skipped(entries) == [{"key": "removed", "reason": "NoSuchKey"}]

        entries = members(bundle_objects(s3, parent, wanted))
        assert entries[:-1] == [
            ("kept", b"parent kept"),
            ("changed", b"parent old"),
            ("removed", b"parent removed"),
        ]
        assert skipped(entries) == [{"key": "added", "reason": "NoSuchKey"}]

    def test_a_fork_does_not_see_later_parent_writes(self, s3: Any, buckets: Buckets) -> None:
        parent = buckets.snapshot_enabled({"k": b"before"})
        child = buckets.fork(parent)
        grandchild = buckets.fork(child)
        s3.put_object(Bucket=parent, Key="k", Body=b"after")
        s3.put_object(Bucket=parent, Key="late", Body=b"late")
        for bucket in (child, grandchild):
            entries = members(bundle_objects(s3, bucket, ["k", "late"]))
            assert entries[:-1] == [("k", b"before")]
            assert skipped(entries) == [{"key": "late", "reason": "NoSuchKey"}]
        assert members(bundle_objects(s3, parent, ["k", "late"])) == [
            ("k", b"after"),
            ("late", b"late"),
        ]

    def test_reads_at_a_snapshot_version(
        self, emulator: EmulatorProcess, s3: Any, buckets: Buckets
    ) -> None:
        bucket = buckets.snapshot_enabled({"k": b"v1", "doomed": b"was here"})
        version = snapshot(s3, bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"v2")
        s3.delete_object(Bucket=bucket, Key="doomed")
        s3.put_object(Bucket=bucket, Key="new", Body=b"new")
        wanted = keys_json(["k", "doomed", "new"])

        at = {**TAR, **JSON, "X-Tigris-Snapshot-Version": version}
        status, answer, body = post(emulator, bucket, wanted, at)
        assert status == 200
        entries = members(io.BytesIO(body))
        assert entries[:-1] == [("k", b"v1"), ("doomed", b"was here")]
        assert skipped(entries) == [{"key": "new", "reason": "NoSuchKey"}]
        assert answer["x-tigris-bundle-bytes"] == str(len(b"v1was here"))

        status, _, body = post(emulator, bucket, wanted, {**TAR, **JSON})
        assert status == 200
        entries = members(io.BytesIO(body))
        assert entries[:-1] == [("k", b"v2"), ("new", b"new")]
        assert skipped(entries) == [{"key": "doomed", "reason": "NoSuchKey"}]

    def test_a_fork_at_a_snapshot_version_of_its_own(
        self, emulator: EmulatorProcess, s3: Any, buckets: Buckets
    ) -> None:
        parent = buckets.snapshot_enabled({"k": b"parent"})
        child = buckets.fork(parent)
        s3.put_object(Bucket=child, Key="k", Body=b"child 1")
        version = snapshot(s3, child)
        s3.put_object(Bucket=child, Key="k", Body=b"child 2")
        headers = {**TAR, **JSON, "X-Tigris-Snapshot-Version": version}
        status, _, body = post(emulator, child, keys_json(["k"]), headers)
        assert status == 200
        assert members(io.BytesIO(body)) == [("k", b"child 1")]

    def test_fail_mode_at_a_snapshot_version(
        self, emulator: EmulatorProcess, s3: Any, buckets: Buckets
    ) -> None:
        bucket = buckets.snapshot_enabled({"old": b"o"})
        version = snapshot(s3, bucket)
        s3.put_object(Bucket=bucket, Key="new", Body=b"n")
        headers = {
            **TAR,
            **JSON,
            "X-Tigris-Snapshot-Version": version,
            "X-Tigris-Bundle-On-Error": "fail",
        }
        status, _, body = post(emulator, bucket, keys_json(["old", "new"]), headers)
        assert status == 404
        assert b"<MissingKeys><Key>new</Key></MissingKeys>" in body

    def test_a_snapshot_version_that_is_not_one(
        self, emulator: EmulatorProcess, buckets: Buckets
    ) -> None:
        bucket = buckets.snapshot_enabled({"k": b"v"})
        headers = {**TAR, **JSON, "X-Tigris-Snapshot-Version": "yesterday"}
        status, _, body = post(emulator, bucket, keys_json(["k"]), headers)
        assert (status, code_of(body)) == (400, "InvalidArgument")


# -- large objects ------------------------------------------------------------------------
class TestLargeObjects:
    def test_a_40_mib_object_between_small_ones(self, s3: Any, buckets: Buckets) -> None:
        big = os.urandom(40 * 1024 * 1024 + 123)
        bucket = buckets.snapshot_enabled({"before": b"b", "big.bin": big, "after": b"a"})
        response = bundle_objects(s3, bucket, ["before", "big.bin", "after"])
        assert response.bundle_bytes == len(big) + 2
        with tarfile.open(fileobj=response, mode="r|") as tar:
            got: list[tuple[str, str]] = []
            for member in tar:
                extracted = tar.extractfile(member)
                assert extracted is not None
                got.append((member.name, hashlib.sha256(extracted.read()).hexdigest()))
        digest = hashlib.sha256
        assert got == [
            ("before", digest(b"b").hexdigest()),
            ("big.bin", digest(big).hexdigest()),
            ("after", digest(b"a").hexdigest()),
        ]

    def test_no_lock_is_held_while_the_client_reads(
        self, emulator: EmulatorProcess, s3: Any, buckets: Buckets
    ) -> None:
        big = os.urandom(40 * 1024 * 1024)
        bucket = buckets.plain({"big.bin": big, "small": b"s"})
        connection = connect(emulator)
        connection.request("POST", f"/{bucket}?bundle", keys_json(["big.bin", "small"]), TAR)
        response = connection.getresponse()
        try:
            assert response.status == 200
            first = response.read(1024 * 1024)
            # The reader stalls mid-object: a bucket creation (the exclusive lock), a delete
            # of the object being sent and an overwrite of the next one all go through, and
            # the tar still holds the bytes the bundle found.
            done = threading.Event()

            def writes() -> None:
                buckets.plain()
                s3.delete_object(Bucket=bucket, Key="big.bin")
                s3.put_object(Bucket=bucket, Key="small", Body=b"changed")
                done.set()

            worker = threading.Thread(target=writes)
            worker.start()
            worker.join(30)
            assert done.is_set()
            tar = first + response.read()
        finally:
            connection.close()
        assert members(io.BytesIO(tar)) == [("big.bin", big), ("small", b"s")]

    @pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
    def test_a_client_that_goes_away_lets_go_of_the_bytes(
        self, emulator: EmulatorProcess, s3: Any, buckets: Buckets
    ) -> None:
        assert emulator.process is not None
        pid = emulator.process.pid
        bucket = buckets.plain()
        before = temp_files(pid)
        s3.put_object(Bucket=bucket, Key="big.bin", Body=os.urandom(20 * 1024 * 1024))
        assert temp_files(pid) == before + 1
        for _ in range(3):
            connection = connect(emulator)
            connection.request("POST", f"/{bucket}?bundle", keys_json(["big.bin"]), TAR)
            response = connection.getresponse()
            assert len(response.read(4096)) == 4096
            connection.close()
        s3.delete_object(Bucket=bucket, Key="big.bin")
        deadline = time.monotonic() + 15
        while temp_files(pid) != before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert temp_files(pid) == before


def connect(emulator: EmulatorProcess) -> http.client.HTTPConnection:
    parts = urlsplit(emulator.endpoint_url)
    return http.client.HTTPConnection(str(parts.hostname), int(parts.port or 0), timeout=60)


def temp_files(pid: int) -> int:
    """How many deleted files (the bytes of large objects) process ``pid`` holds open."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        count += target.endswith("(deleted)")
    return count


# -- bad requests -------------------------------------------------------------------------
BAD_HEADERS = [
    pytest.param({}, id="no-format"),
    pytest.param({"X-Tigris-Bundle-Format": "zip"}, id="format-zip"),
    pytest.param({**TAR, "X-Tigris-Bundle-Compression": "lz4"}, id="compression-lz4"),
    pytest.param({**TAR, "X-Tigris-Bundle-On-Error": "panic"}, id="on-error-panic"),
]


@pytest.mark.parametrize("headers", BAD_HEADERS)
def test_bad_headers(emulator: EmulatorProcess, buckets: Buckets, headers: dict[str, str]) -> None:
    bucket = buckets.plain({"k": b"v"})
    status, _, body = post(emulator, bucket, keys_json(["k"]), {**JSON, **headers})
    assert (status, code_of(body)) == (400, "InvalidArgument")


BAD_BODIES = [
    pytest.param(b"", "MalformedJSON", id="empty"),
    pytest.param(b"keys: a, b", "MalformedJSON", id="not-json"),
    pytest.param(b'{"keys": ["a"', "MalformedJSON", id="cut-short"),
    pytest.param(b"\xff\xfe{}", "MalformedJSON", id="not-utf8"),
    pytest.param(b'["a", "b"]', "InvalidRequest", id="a-list"),
    pytest.param(b'{"key": ["a"]}', "InvalidRequest", id="no-keys-field"),
    pytest.param(b'{"keys": "a"}', "InvalidRequest", id="keys-not-a-list"),
    pytest.param(b'{"keys": []}', "InvalidRequest", id="no-keys"),
    pytest.param(b'{"keys": ["a", 1]}', "InvalidRequest", id="a-number"),
    pytest.param(b'{"keys": ["a", null]}', "InvalidRequest", id="a-null"),
    pytest.param(keys_json([f"k{i}" for i in range(5001)]), "InvalidRequest", id="5001-keys"),
    pytest.param(b'{"keys": ["\\ud800"]}', "InvalidArgument", id="lone-surrogate"),
    pytest.param(b"<Bundle><Object><Key>a</Key></Object>", "MalformedXML", id="xml-cut-short"),
    pytest.param(b"<Delete><Object><Key>a</Key></Object></Delete>", "MalformedXML", id="xml-root"),
    pytest.param(b"<Bundle><Object><Name>a</Name></Object></Bundle>", "MalformedXML", id="xml-key"),
    pytest.param(b"<Bundle></Bundle>", "InvalidRequest", id="xml-no-keys"),
    pytest.param(
        b'<!DOCTYPE x [<!ENTITY e "a">]><Bundle><Object><Key>&e;</Key></Object></Bundle>',
        "MalformedXML",
        id="xml-entity",
    ),
]


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
def test_bad_bodies(emulator: EmulatorProcess, buckets: Buckets, body: bytes, code: str) -> None:
    bucket = buckets.plain({"a": b"v"})
    status, _, answer = post(emulator, bucket, body, {**TAR, **JSON})
    assert (status, code_of(answer)) == (400, code)


def test_a_missing_bucket_over_http(
    emulator: EmulatorProcess, unique: Callable[[str], str]
) -> None:
    status, _, body = post(emulator, unique("nobody"), keys_json(["a"]), {**TAR, **JSON})
    assert (status, code_of(body)) == (404, "NoSuchBucket")


def test_option_values_ignore_case_and_spaces(emulator: EmulatorProcess, buckets: Buckets) -> None:
    bucket = buckets.plain({"k": b"v"})
    headers = {
        **JSON,
        "X-Tigris-Bundle-Format": " TAR ",
        "X-Tigris-Bundle-Compression": "GZip",
        "X-Tigris-Bundle-On-Error": "Fail",
    }
    status, answer, body = post(emulator, bucket, keys_json(["k"]), headers)
    assert (status, answer["content-type"]) == (200, "application/gzip")
    assert members(io.BytesIO(gzip.decompress(body))) == [("k", b"v")]


def test_zstd_without_zstandard_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "zstandard.py").write_text("raise ImportError('blocked for this test')\n")
    paths = [str(blocker), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path for path in paths if path))
    with EmulatorProcess() as process:
        s3 = make_client(process.endpoint_url)
        s3.create_bucket(Bucket="zstd-blocked")
        s3.put_object(Bucket="zstd-blocked", Key="k", Body=b"v")
        with pytest.raises(BundleError) as caught:
            bundle_objects(s3, "zstd-blocked", ["k"], compression=tx.BUNDLE_COMPRESSION_ZSTD)
        assert (caught.value.status_code, caught.value.code) == (501, "NotImplemented")
        assert "pytest-tigris[zstd]" in caught.value.body
        # gzip and plain tars need nothing extra.
        response = bundle_objects(s3, "zstd-blocked", ["k"], compression="gzip")
        with gzip.open(response, "rb") as unzipped:
            assert members(unzipped) == [("k", b"v")]
