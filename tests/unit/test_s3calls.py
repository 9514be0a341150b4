"""``ThreadHeaders``: headers one thread asks for never reach another thread's requests."""

from __future__ import annotations

import threading

import boto3
import pytest

from pytest_tigris.s3calls import ThreadHeaders, error_code, error_status, snapshot_version


def _client():  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="auto",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )


def test_each_thread_sends_only_its_own_headers() -> None:
    client = _client()
    injector = ThreadHeaders(client)
    seen: dict[str, dict[str, str]] = {}
    barrier = threading.Barrier(8)

    def capture(request, **kwargs):  # type: ignore[no-untyped-def]
        bucket = request.url.rstrip("/").rsplit("/", 1)[-1]
        seen[bucket] = {
            k: (v.decode() if isinstance(v, bytes) else v)
            for k, v in request.headers.items()
            if k.startswith("X-Tigris")
        }
        raise _Sent()

    client.meta.events.register_last("before-send.s3", capture)

    def run(index: int) -> None:
        barrier.wait()
        headers = {"X-Tigris-Fork-Source-Bucket": f"source-{index}"}
        if index % 2:
            headers["X-Tigris-Fork-Source-Bucket-Snapshot"] = str(index)
        with injector.sending(headers), pytest.raises(_Sent):
            client.create_bucket(Bucket=f"fork-{index}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(8):
        expected = {"X-Tigris-Fork-Source-Bucket": f"source-{index}"}
        if index % 2:
            expected["X-Tigris-Fork-Source-Bucket-Snapshot"] = str(index)
        assert seen[f"fork-{index}"] == expected
    # Outside a block nothing is added.
    with pytest.raises(_Sent):
        client.head_bucket(Bucket="plain")
    assert seen["plain"] == {}


def test_nested_blocks_add_and_restore() -> None:
    client = _client()
    injector = ThreadHeaders(client)
    sent: list[dict[str, str]] = []

    def capture(request, **kwargs):  # type: ignore[no-untyped-def]
        sent.append({k: v for k, v in request.headers.items() if k in ("X-A", "X-B")})
        raise _Sent()

    client.meta.events.register_last("before-send.s3", capture)
    with injector.sending({"X-A": "1"}):
        with injector.sending({"X-B": "2"}), pytest.raises(_Sent):
            client.delete_bucket(Bucket="b")
        with pytest.raises(_Sent):
            client.delete_bucket(Bucket="b")
    with pytest.raises(_Sent):
        client.delete_bucket(Bucket="b")
    assert [sorted(headers) for headers in sent] == [["X-A", "X-B"], ["X-A"], []]


def test_error_helpers_read_a_client_error_and_ignore_anything_else() -> None:
    from botocore.exceptions import ClientError

    exc = ClientError(
        {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "CreateBucket"
    )
    assert (error_code(exc), error_status(exc)) == ("SlowDown", 503)
    assert (error_code(ValueError()), error_status(ValueError())) == ("", 0)
    assert snapshot_version("1700000000; name=pytest-tigris-x") == "1700000000"
    assert snapshot_version(" ") is None


class _Sent(Exception):
    """Raised in place of sending: the request was captured."""
