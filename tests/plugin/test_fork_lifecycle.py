"""A fork's life from the outside: its fork point and ``changes()`` (issue 11, item 9), and
releasing a fork that has forks of its own (issue 11, item 10); a fork of a source that does
not exist.

Inner runs point at the session's standalone emulator (a stand-in for Tigris, so what a run
leaves behind stays visible after it); each test makes its own seed and removes it afterwards.
"""

from __future__ import annotations

import re

import pytest

from tests.inner import Inner
from tests.plugin import test_reporting as reporting
from tests.plugin.test_reporting import (
    Standalone,
    out_dir,
    summary_counts,
)

# The same fixture as there: the standalone emulator.
standalone = reporting.standalone

SEED_FILES = {
    "manifest.json": b'{"n": 2}',
    "docs/a.txt": b"alpha",
    "docs/b.txt": b"bravo",
}

# -- item 9: changes() compares with the fork point ----------------------------------------
CHANGES_SUITE = """
from pytest_tigris import Changes


def put(fork, key, data):
    fork.client.put_object(Bucket=fork.name, Key=key, Body=data)


def test_a_fork_of_a_live_fork_compares_with_its_fork_point(
    tigris_fork, tigris_fork_factory, tigris_client
):
    parent = tigris_fork
    child = tigris_fork_factory.fork(source=parent.name)
    head = tigris_client.head_bucket(Bucket=child.name)["ResponseMetadata"]["HTTPHeaders"]
    assert child.source == parent.name
    assert child.snapshot == head["x-tigris-fork-source-bucket-snapshot"]
    assert child.snapshot.isdigit() and child.snapshot != parent.snapshot

    # The parent moves on after the fork point: none of it is the child's doing.
    put(parent, "docs/a.txt", b"parent edit")
    parent.client.delete_object(Bucket=parent.name, Key="docs/b.txt")
    put(parent, "parent-only.txt", b"p")
    assert child.changes() == Changes(added=[], modified=[], deleted=[])

    put(child, "child.txt", b"c")
    put(child, "docs/b.txt", b"child edit")
    child.client.delete_object(Bucket=child.name, Key="manifest.json")
    assert child.changes() == Changes(
        added=["child.txt"], modified=["docs/b.txt"], deleted=["manifest.json"]
    )
    # The parent's own changes, against the seed at the run's snapshot.
    assert parent.changes() == Changes(
        added=["parent-only.txt"], modified=["docs/a.txt"], deleted=["docs/b.txt"]
    )


def test_a_fork_of_a_factory_fork_too(tigris_fork_factory):
    parent = tigris_fork_factory.fork()
    child = tigris_fork_factory.fork(source=parent.name)
    put(parent, "late.txt", b"after the child was made")
    assert child.changes() == Changes(added=[], modified=[], deleted=[])
    assert parent.changes() == Changes(added=["late.txt"], modified=[], deleted=[])


def test_metadata_and_tag_edits_count_when_asked(tigris_fork):
    client, name = tigris_fork.client, tigris_fork.name
    client.copy_object(
        Bucket=name,
        Key="docs/a.txt",
        CopySource={"Bucket": name, "Key": "docs/a.txt"},
        Metadata={"owner": "test"},
        MetadataDirective="REPLACE",
    )
    client.put_object_tagging(
        Bucket=name, Key="docs/b.txt", Tagging={"TagSet": [{"Key": "state", "Value": "seen"}]}
    )
    # Neither edit changes an ETag or a size: only the opt-in comparison sees them.
    assert tigris_fork.changes() == Changes(added=[], modified=[], deleted=[])
    assert tigris_fork.changes(metadata=True) == Changes(
        added=[], modified=["docs/a.txt", "docs/b.txt"], deleted=[]
    )
"""


def test_changes_compare_with_the_fork_point(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone
) -> None:
    seed = standalone.make_seed(SEED_FILES)
    pytester.makepyfile(test_changes=CHANGES_SUITE)

    result = inner.run(*standalone.args(seed))

    result.assert_outcomes(passed=3, warnings=0)
    assert summary_counts(result.text) == (5, 5, 0, 0)
    assert standalone.buckets(seed) == set()


# -- item 10: a fork's own forks go first --------------------------------------------------
FAMILY_CONFTEST = """
import os
import pathlib

OUT = pathlib.Path({out!r})


def log(line):
    with open(OUT / ("%d.log" % os.getpid()), "a") as handle:
        handle.write(line + "\\n")


def pytest_tigris_fork_deleted(fork):
    log("deleted " + fork.name)


def pytest_runtest_logstart(nodeid):
    log("start " + nodeid.split("::")[-1])


def pytest_runtest_logfinish(nodeid):
    log("finish " + nodeid.split("::")[-1])
"""
FAMILY_SUITE = """
import pathlib

OUT = pathlib.Path({out!r})


def test_family(tigris_fork, tigris_fork_factory):
    child = tigris_fork_factory.fork(source=tigris_fork.name)
    grandchild = tigris_fork_factory.fork(source=child.name)
    grandchild.client.put_object(Bucket=grandchild.name, Key="g.txt", Body=b"g")
    names = [tigris_fork.name, child.name, grandchild.name]
    (OUT / "family.names").write_text(" ".join(names))


def test_bucket_family(tigris_bucket, tigris_fork_factory):
    child = tigris_fork_factory.fork(source=tigris_bucket.name)
    (OUT / "bucket.names").write_text(" ".join([tigris_bucket.name, child.name]))
"""


@pytest.mark.parametrize("n", [0, 2])
def test_a_fork_is_deleted_after_its_own_forks_at_its_teardown(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone, n: int
) -> None:
    seed = standalone.make_seed(SEED_FILES)
    out = out_dir(pytester)
    pytester.makeconftest(FAMILY_CONFTEST.format(out=str(out)))
    pytester.makepyfile(test_family=FAMILY_SUITE.format(out=str(out)))

    result = inner.run(*standalone.args(seed), n=n)

    text = result.text
    result.assert_outcomes(passed=2, warnings=0)
    assert "BucketHasForks" not in text, text
    fork, child, grandchild = (out / "family.names").read_text().split()
    bucket, bucket_child = (out / "bucket.names").read_text().split()
    logs = [p.read_text().splitlines() for p in out.glob("*.log")]
    # xdist's controller logs test starts too: the log of the process that deleted the fork.
    family_log = next(lines for lines in logs if f"deleted {fork}" in lines)
    start = family_log.index("start test_family")
    # Released at the test's teardown, children first; the deletes run in the background, so
    # they may end after the test has finished, but never out of order.
    deletes = [line for line in family_log[start:] if line.startswith("deleted ")]
    assert deletes[:3] == [f"deleted {grandchild}", f"deleted {child}", f"deleted {fork}"]
    # The worker's bucket goes at session end, after the fork made of it.
    bucket_log = next(lines for lines in logs if f"deleted {bucket}" in lines)
    assert bucket_log.index(f"deleted {bucket_child}") < bucket_log.index(f"deleted {bucket}")
    assert summary_counts(text) == (5, 5, 0, 0)
    assert standalone.buckets(seed) == set()


# -- a source that does not exist ------------------------------------------------------------
MISSING_SOURCE = """
def test_source(tigris_fork_factory):
    tigris_fork_factory.fork(source="no-such-source")
"""


def test_a_missing_source_is_blamed_on_the_argument_not_the_option(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    pytester.makepyfile(test_source=MISSING_SOURCE)

    result = inner.run("-r", "N")  # no short summary, which repeats the line

    result.assert_outcomes(failed=1)
    [line] = result.messages()
    assert re.fullmatch(
        r"seed bucket 'no-such-source' does not exist at http://127\.0\.0\.1:\d+: create it "
        r"\(snapshot-enabled\) or fix source= \(test_source\.py:2\)",
        line,
    ), line
