"""Fixtures shared by the emulator tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import force_delete


@pytest.fixture
def buckets(s3: Any) -> Iterator[list[str]]:
    """Buckets a test creates, force-deleted afterwards, newest (children) first; a bucket
    the test deleted itself is fine, any other failure is an error."""
    created: list[str] = []
    yield created
    for name in reversed(created):
        try:
            force_delete(s3, name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchBucket":
                raise
