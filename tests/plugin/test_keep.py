"""``--tigris-keep=failed`` keeps exactly the forks failed tests used, each printed with the test
that used it (issue 11, item 14).

Inner runs point at the session's standalone emulator, so kept forks stay visible after the run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import body, keys
from tests.inner import Inner
from tests.plugin import test_reporting as reporting
from tests.plugin.test_reporting import (
    AWS_LS,
    Standalone,
    out_dir,
    summary_counts,
)

# The same fixture as there: the standalone emulator.
standalone = reporting.standalone

# One test id per line of the summary: "kept fork NAME (LABEL): aws s3 ls ...".
KEPT_LINE = re.compile(r"^kept fork (\S+) \((.+)\): aws s3 ls s3://\1 --endpoint-url \S+$", re.M)

SUITE = """
import pathlib

OUT = pathlib.Path({out!r})


def record(test, **forks):
    for role, fork in forks.items():
        fork.client.put_object(Bucket=fork.name, Key=test + ".txt", Body=role.encode())
        (OUT / (test + "." + role)).write_text(fork.name)


def test_fail_with_forks(tigris_fork, tigris_fork_factory):
    plain = tigris_fork_factory.fork()
    child = tigris_fork_factory.fork(source=tigris_fork.name)
    record("fail_with_forks", fork=tigris_fork, plain=plain, child=child)
    assert False, "fails on purpose"


def test_pass_with_forks(tigris_fork, tigris_fork_factory):
    record("pass_with_forks", fork=tigris_fork, plain=tigris_fork_factory.fork())


def test_pass_with_bucket(tigris_bucket):
    record("pass_with_bucket", bucket=tigris_bucket)


def test_fail_with_bucket(tigris_bucket):
    record("fail_with_bucket", bucket=tigris_bucket)
    assert False, "fails on purpose"


def test_fail_without_tigris():
    assert False, "fails on purpose, using no fork"
"""
FILE = "test_keep.py"


def recorded(out: Path) -> dict[str, str]:
    """``{"test.role": fork name}`` from what the inner tests wrote."""
    return {p.name: p.read_text() for p in out.iterdir() if "." in p.name}


@pytest.mark.parametrize("n", [0, 2])
def test_keep_failed_keeps_exactly_the_forks_failed_tests_used(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone, n: int
) -> None:
    seed = standalone.make_seed({"seed.txt": b"seed data"})
    out = out_dir(pytester)
    pytester.makepyfile(test_keep=SUITE.format(out=str(out)))

    result = inner.run(*standalone.args(seed), "--tigris-keep=failed", n=n)

    result.assert_outcomes(passed=2, failed=3, warnings=0)
    names = recorded(out)
    failing = f"{FILE}::test_fail_with_forks"
    bucket = names["fail_with_bucket.bucket"]
    expected = {
        names["fail_with_forks.fork"]: f"tigris_fork of failed test {failing}",
        names["fail_with_forks.plain"]: f"tigris_fork_factory fork of failed test {failing}",
        names["fail_with_forks.child"]: f"tigris_fork_factory fork of failed test {failing}",
    }
    # Shared by a worker's tests: kept for the failed one that used it, and said so.
    worker = re.search(r"-(gw\d+)-\d+$", bucket)
    where = f" of worker {worker.group(1)}" if worker else ""
    assert bool(worker) == (n == 2), bucket
    expected[bucket] = (
        f"shared tigris_bucket{where}, used by failed test {FILE}::test_fail_with_bucket"
    )

    text = result.text
    assert dict(KEPT_LINE.findall(text)) == expected, text
    assert set(dict(AWS_LS.findall(text))) == set(expected)
    created = 6 + (names["pass_with_bucket.bucket"] != bucket)  # one bucket per worker using it
    assert summary_counts(text) == (created, created - 4, 4, 0)
    # Only those are left, each with what the failed test wrote to it.
    assert standalone.buckets(seed) == set(expected)
    fork = names["fail_with_forks.fork"]
    assert sorted(keys(standalone.s3, fork)) == ["fail_with_forks.txt", "seed.txt"]
    assert body(standalone.s3, names["fail_with_forks.child"], "fail_with_forks.txt") == b"child"
    assert body(standalone.s3, bucket, "fail_with_bucket.txt") == b"bucket"


def test_keep_failed_keeps_nothing_when_every_test_passes(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone
) -> None:
    seed = standalone.make_seed({"seed.txt": b"seed data"})
    out = out_dir(pytester)
    pytester.makepyfile(test_keep=SUITE.format(out=str(out)))

    result = inner.run(*standalone.args(seed), "--tigris-keep=failed", "-k", "pass")

    result.assert_outcomes(passed=2, warnings=0)
    text = result.text
    assert KEPT_LINE.findall(text) == [], text
    assert summary_counts(text) == (3, 3, 0, 0)
    assert standalone.buckets(seed) == set()


def test_keep_always_labels_every_fork_with_its_test(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone
) -> None:
    seed = standalone.make_seed({"seed.txt": b"seed data"})
    out = out_dir(pytester)
    pytester.makepyfile(test_keep=SUITE.format(out=str(out)))

    result = inner.run(*standalone.args(seed), "--tigris-keep=always")

    result.assert_outcomes(passed=2, failed=3, warnings=0)
    names = recorded(out)
    failing, passing = f"{FILE}::test_fail_with_forks", f"{FILE}::test_pass_with_forks"
    expected = {
        names["fail_with_forks.fork"]: f"tigris_fork of failed test {failing}",
        names["fail_with_forks.plain"]: f"tigris_fork_factory fork of failed test {failing}",
        names["fail_with_forks.child"]: f"tigris_fork_factory fork of failed test {failing}",
        names["pass_with_forks.fork"]: f"tigris_fork of test {passing}",
        names["pass_with_forks.plain"]: f"tigris_fork_factory fork of test {passing}",
        names["fail_with_bucket.bucket"]: (
            f"shared tigris_bucket, used by failed test {FILE}::test_fail_with_bucket"
        ),
    }
    text = result.text
    assert dict(KEPT_LINE.findall(text)) == expected, text
    assert summary_counts(text) == (6, 0, 6, 0)
    assert standalone.buckets(seed) == set(expected)
