"""One S3 client per process for the fork handles; ``new_client()`` for tests that change one."""

from __future__ import annotations

import pytest

from tests.inner import Inner

INNER = """
import pytest
from botocore.stub import Stubber

SEEN = {}


@pytest.mark.parametrize("n", range(3))
def test_every_fork_handle_shares_one_client(tigris_fork, tigris_bucket, n):
    SEEN.setdefault("client", tigris_fork.client)
    assert tigris_fork.client is SEEN["client"]
    assert tigris_bucket.client is SEEN["client"]
    answer = tigris_fork.client.get_object(Bucket=tigris_fork.name, Key="a.txt")
    assert answer["Body"].read() == b"a"


def test_a_client_of_its_own_can_be_changed_safely(tigris_fork, tigris_fork_factory):
    own = tigris_fork.new_client()
    assert own is not tigris_fork.client
    with Stubber(own) as stub:
        stub.add_response("list_buckets", {"Buckets": []})
        assert own.list_buckets()["Buckets"] == []
    calls = []
    own.meta.events.register("before-send.s3", lambda **kw: calls.append(1))
    own.close()
    # The shared client and the control operations are untouched.
    other = tigris_fork_factory.fork()
    assert tigris_fork.client.get_object(Bucket=other.name, Key="a.txt")["Body"].read() == b"a"
    assert calls == []


def test_the_embedded_emulators_forks_are_made_without_boto3(tigris_fork_factory):
    janitor = tigris_fork_factory.janitor
    assert janitor.control is not None
    sent = []
    janitor.admin.meta.events.register("before-send.s3", lambda **kw: sent.append(kw))
    fork = tigris_fork_factory.fork()
    assert fork.client.get_object(Bucket=fork.name, Key="a.txt")["Body"].read() == b"a"
    assert tigris_fork_factory.delete(fork) is True
    assert fork.name not in {b["Name"] for b in fork.client.list_buckets()["Buckets"]}
    assert sent == []
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_fork_clients(pytester: pytest.Pytester, inner: Inner, workers: int) -> None:
    seed = pytester.mkdir("seed")
    (seed / "a.txt").write_text("a")
    pytester.makepyfile(test_inner=INNER)
    result = inner.run("--tigris-seed-dir", "seed", n=workers)
    result.assert_outcomes(passed=5)
