"""``async def pytest_tigris_populate_seed`` is awaited (issue 11, item 17).

pluggy only calls an implementation, so an ``async def`` one returns a coroutine nobody
awaits: the plugin runs it to the end, in a thread of its own when the calling thread already
runs an event loop. Without xdist the inner runs are in-process; with ``-n 2`` they are separate
processes.
"""

from __future__ import annotations

import pytest

from tests.inner import Inner

XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
ASYNC_HOOK = """
import asyncio


async def pytest_tigris_populate_seed(client, bucket):
    await asyncio.sleep(0.01)
    client.put_object(Bucket=bucket, Key="from-async.txt", Body=b"written by an async hook")
"""
SUITE = """
import asyncio

import pytest


def read(fork, key):
    return fork.client.get_object(Bucket=fork.name, Key=key)["Body"].read()


@pytest.mark.parametrize("i", range(3))
def test_fork_sees_the_async_hook(tigris_fork, i):
    assert read(tigris_fork, "from-async.txt") == b"written by an async hook"


def test_bucket_sees_the_async_hook(tigris_bucket):
    assert read(tigris_bucket, "from-async.txt") == b"written by an async hook"


def test_factory_fork_sees_the_async_hook(tigris_fork_factory):
    assert read(tigris_fork_factory.fork(), "from-async.txt") == b"written by an async hook"
"""
FROM_A_LOOP = """
import asyncio


def test_first_use_inside_a_running_loop(request):
    # No tigris fixture in the signature: the backend starts here, while a loop runs.
    async def main():
        return request.getfixturevalue("tigris_fork")

    fork = asyncio.run(main())
    body = fork.client.get_object(Bucket=fork.name, Key="from-async.txt")["Body"].read()
    assert body == b"written by an async hook"
"""
FAILING_ASYNC_HOOK = """
import asyncio


async def pytest_tigris_populate_seed(client, bucket):
    await asyncio.sleep(0)
    raise LookupError("no fixtures folder")
"""


@XDIST
def test_an_async_populate_hook_fills_the_seed_forks_see(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    pytester.makeconftest(ASYNC_HOOK)
    pytester.makepyfile(test_async=SUITE)

    result = inner.run(n=n)

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=5)
    result.stdout.no_fnmatch_line("*was never awaited*")


def test_an_async_populate_hook_runs_when_a_loop_is_running(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    pytester.makeconftest(ASYNC_HOOK)
    pytester.makepyfile(test_loop=FROM_A_LOOP)

    result = inner.run()

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1)


@XDIST
def test_an_async_populate_hook_that_raises_is_one_line_at_its_own_line(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    pytester.makeconftest(FAILING_ASYNC_HOOK)
    pytester.makepyfile(test_uses="def test_uses(tigris_fork):\n    pass\n")

    result = inner.run(n=n)

    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    text = result.text
    messages = result.messages()
    source = (pytester.path / "conftest.py").read_text().splitlines()
    line = source.index('    raise LookupError("no fixtures folder")') + 1
    assert messages == [
        f"pytest_tigris_populate_seed raised LookupError: no fixtures folder (conftest.py:{line}): "
        "fix the hook"
    ]
    assert "Traceback" not in text
