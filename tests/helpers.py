"""Helpers shared by the tests (imported as ``tests.helpers``)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

SEED = "emu-seed-main"
SEED_FILES = {
    "manifest.json": b'{"images": ["cat.png", "dog.png"]}',
    "images/cat.png": b"\x89PNG-cat" * 100,
    "images/dog.png": b"\x89PNG-dog" * 100,
    "docs/readme.txt": b"hello from the seed\n",
}


def make_client(endpoint_url: str, addressing_style: str = "path", **kwargs: Any) -> Any:
    """A boto3 S3 client the way Tigris users build one: region ``auto``, path-style."""
    import boto3
    from botocore.config import Config

    kwargs.setdefault("aws_access_key_id", "test-key")
    kwargs.setdefault("aws_secret_access_key", "test-secret")
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="auto",
        config=Config(s3={"addressing_style": addressing_style}, retries={"total_max_attempts": 1}),
        **kwargs,
    )


def body(s3: Any, bucket: str, key: str, **kwargs: Any) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read())


def keys(s3: Any, bucket: str, **kwargs: Any) -> list[str]:
    """Every key in a bucket, through ListObjectsV2 pagination."""
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kwargs):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def _inject(s3: Any, headers: dict[str, str]) -> Any:
    """Register a one-shot header injector on ``s3`` for the next call; returns an unregister."""
    event = "before-sign.s3.*"

    def add(request: Any, **kwargs: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    s3.meta.events.register(event, add)
    return lambda: s3.meta.events.unregister(event, add)


def call_with(s3: Any, headers: dict[str, str], method: str, **kwargs: Any) -> Any:
    """Call ``s3.<method>(**kwargs)`` with extra (signed) request headers."""
    undo = _inject(s3, headers)
    try:
        return getattr(s3, method)(**kwargs)
    finally:
        undo()


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def create_snapshot_bucket(s3: Any, name: str) -> None:
    call_with(s3, {"X-Tigris-Enable-Snapshot": "true"}, "create_bucket", Bucket=name)


def force_delete(s3: Any, bucket: str) -> None:
    """Tigris force delete: the bucket and everything in it, in one call."""
    call_with(s3, {"X-Tigris-Force-Delete": "true"}, "delete_bucket", Bucket=bucket)


def fork(s3: Any, name: str, source: str, snapshot: str | None = None) -> Any:
    """Create ``name`` as a fork of ``source`` (now, or at ``snapshot``)."""
    headers = {"X-Tigris-Fork-Source-Bucket": source}
    if snapshot is not None:
        headers["X-Tigris-Fork-Source-Bucket-Snapshot"] = snapshot
    return call_with(s3, headers, "create_bucket", Bucket=name)


def snapshot(s3: Any, bucket: str, name: str | None = None) -> str:
    """Take a snapshot of ``bucket``; returns its version."""
    value = "true" if name is None else f"true; name={name}"
    result = call_with(s3, {"X-Tigris-Snapshot": value}, "create_bucket", Bucket=bucket)
    return str(result["ResponseMetadata"]["HTTPHeaders"]["x-tigris-snapshot-version"])
