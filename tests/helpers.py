"""Helpers shared by the tests (imported as ``tests.helpers``)."""

from __future__ import annotations

from typing import Any

SEED = "emu-seed-main"
SEED_FILES = {
    "manifest.json": b'{"images": ["cat.png", "dog.png"]}',
    "images/cat.png": b"\x89PNG-cat" * 100,
    "images/dog.png": b"\x89PNG-dog" * 100,
    "docs/readme.txt": b"hello from the seed\n",
}


def make_client(endpoint_url: str, **kwargs: Any) -> Any:
    """A boto3 S3 client the way Tigris users build one: region ``auto``, path-style."""
    import boto3
    from botocore.config import Config

    kwargs.setdefault("aws_access_key_id", "test-key")
    kwargs.setdefault("aws_secret_access_key", "test-secret")
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="auto",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
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
