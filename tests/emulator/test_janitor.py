"""ForkJanitor against the emulator: idempotent create and delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_tigris.janitor import ForkJanitor, ForkNameTakenError
from tests.helpers import SEED, fork, make_client


def janitor_for(emulator: Any) -> ForkJanitor:
    return ForkJanitor(lambda: make_client(emulator.endpoint_url), emulator.endpoint_url)


def test_a_create_that_happened_despite_an_error_is_adopted(
    emulator: Any, s3: Any, unique: Callable[[str], str]
) -> None:
    name = f"{SEED}-{unique('r').replace('-', '')[:10]}-gw0-0"
    # The first CreateBucket went through but its answer was lost (timeout, late 500): the
    # retry gets 409. The janitor recognises its own fork and carries on.
    fork(s3, name, SEED)
    janitor = janitor_for(emulator)
    janitor.fork(name, SEED)
    assert name in janitor.created
    assert janitor.delete(name) is True
    assert janitor.delete(name) is False  # a second delete is safe
    assert janitor.delete(f"{SEED}-neverrun-gw0-9") is False


def test_a_foreign_bucket_with_the_name_is_a_collision(
    emulator: Any, s3: Any, unique: Callable[[str], str]
) -> None:
    name = f"{SEED}-{unique('r').replace('-', '')[:10]}-gw0-1"
    s3.create_bucket(Bucket=name)  # someone else's plain bucket
    janitor = janitor_for(emulator)
    with pytest.raises(ForkNameTakenError, match="already exists"):
        janitor.fork(name, SEED)
    assert name not in janitor.created
    assert janitor.delete(name) is False  # named like ours, but not a fork: left alone
    assert name in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    s3.delete_bucket(Bucket=name)
