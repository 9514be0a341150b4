"""The run's pinned seed snapshot is removed at the end of the run; forks made from it live on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import tigris_boto3_ext

from tests.helpers import body, create_snapshot_bucket, force_delete
from tests.inner import Inner

INNER = """
def test_write(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="k", Body=b"fork")
    assert False, "keep me"
"""


def test_run_snapshot_is_deleted_and_kept_forks_survive(
    pytester: pytest.Pytester,
    inner: Inner,
    emulator: Any,
    s3: Any,
    unique: Callable[[str], str],
) -> None:
    seed = unique("runsnap")
    create_snapshot_bucket(s3, seed)
    s3.put_object(Bucket=seed, Key="k", Body=b"seed")
    own = tigris_boto3_ext.get_snapshot_version(tigris_boto3_ext.create_snapshot(s3, seed, "mine"))
    inner.setenv(AWS_ACCESS_KEY_ID="test-key", AWS_SECRET_ACCESS_KEY="test-secret")
    pytester.makepyfile(test_inner=INNER)
    result = inner.run(
        "--tigris-endpoint", emulator.endpoint_url, "--tigris-seed", seed, "--tigris-keep", "failed"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 created, 0 deleted, 1 kept, 0 leaked*"])
    # Only the user's own snapshot is left on the seed.
    listed = tigris_boto3_ext.list_snapshots(s3, seed)["Buckets"]
    assert [b["Name"] for b in listed] == [f"{own}; name=mine"]
    kept = [f["name"] for f in tigris_boto3_ext.list_forks(s3, seed)["buckets"]]
    assert len(kept) == 1
    assert body(s3, kept[0], "k") == b"fork"
    assert body(s3, seed, "k") == b"seed"
    force_delete(s3, kept[0])
    force_delete(s3, seed)


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("option", "--tigris-seed-snapshot"),
        ("env", "PYTEST_TIGRIS_SEED_SNAPSHOT"),
        ("ini", "ini tigris_seed_snapshot"),
    ],
)
def test_an_unknown_seed_snapshot_is_named_where_it_was_set(
    pytester: pytest.Pytester, inner: Inner, where: str, named: str
) -> None:
    pytester.makepyfile(test_inner="def test_uses(tigris_fork):\n    pass\n")
    args: list[str] = []
    env: dict[str, str] = {}
    if where == "option":
        args = ["--tigris-seed-snapshot", "nosuch"]
    elif where == "env":
        env = {"PYTEST_TIGRIS_SEED_SNAPSHOT": "nosuch"}
    else:
        pytester.makefile(".ini", pytest="[pytest]\ntigris_seed_snapshot = nosuch\n")

    done = inner.run(*args, env=env)

    assert done.usage_error() == (
        f"{named} 'nosuch': bucket 'pytest-tigris-seed' has no snapshot with that version or "
        "name (list them with tigris_boto3_ext.list_snapshots)"
    )
