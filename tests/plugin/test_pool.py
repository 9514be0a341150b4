"""Ready forks made ahead of need (``--tigris-pool``) and deletes in the background: every test
still gets a fresh fork of the seed, and nothing is left behind, with the pool on and off."""

from __future__ import annotations

import pytest

from tests.inner import Inner
from tests.plugin.test_reporting import (
    Standalone,
    out_dir,
    standalone,  # noqa: F401 (a fixture)
    summary_counts,
)

SUITE = """
import pathlib

import pytest

OUT = pathlib.Path({out!r})


@pytest.mark.parametrize("i", range(6))
def test_fresh_fork(tigris_fork, i):
    s3 = tigris_fork.client
    listing = s3.list_objects_v2(Bucket=tigris_fork.name)
    keys = sorted(o["Key"] for o in listing.get("Contents", []))
    assert keys == ["seed.txt"], keys  # nothing another test wrote
    s3.put_object(Bucket=tigris_fork.name, Key="mine.txt", Body=b"written")
    s3.delete_object(Bucket=tigris_fork.name, Key="seed.txt")
    (OUT / ("fork-%d" % i)).write_text(tigris_fork.name)
"""

CONFTEST = """
import os
import pathlib

OUT = pathlib.Path({out!r})


def pytest_tigris_fork_created(fork):
    with open(OUT / ("created-%d" % os.getpid()), "a") as handle:
        handle.write(fork.name + "\\n")


def pytest_tigris_fork_deleted(fork):
    with open(OUT / ("deleted-%d" % os.getpid()), "a") as handle:
        handle.write(fork.name + "\\n")
"""


def lines(out: object, prefix: str) -> list[str]:
    from pathlib import Path

    found: list[str] = []
    for path in sorted(Path(str(out)).glob(prefix + "-*")):
        found += path.read_text().split()
    return found


@pytest.mark.parametrize("n", [0, 2])
@pytest.mark.parametrize("pool", ["0", "3"])
def test_every_test_gets_a_fresh_fork_and_nothing_leaks(
    pytester: pytest.Pytester,
    inner: Inner,
    standalone: Standalone,  # noqa: F811 (the fixture imported above)
    pool: str,
    n: int,
) -> None:
    seed = standalone.make_seed({"seed.txt": b"seed data"})
    out = out_dir(pytester)
    pytester.makeconftest(CONFTEST.format(out=str(out)))
    pytester.makepyfile(test_pool=SUITE.format(out=str(out)))

    result = inner.run(*standalone.args(seed), f"--tigris-pool={pool}", n=n)

    text = result.text
    result.assert_outcomes(passed=6)
    handed_out = sorted((out / f"fork-{i}").read_text() for i in range(6))
    assert len(set(handed_out)) == 6
    # The hooks see exactly the forks tests got, once each; ready forks never used are not
    # announced, and are deleted all the same.
    assert sorted(lines(out, "created")) == handed_out
    assert sorted(lines(out, "deleted")) == handed_out
    assert summary_counts(text) == (6, 6, 0, 0)
    unused = [line for line in text.splitlines() if line.startswith("ready forks: ")]
    if pool == "0":
        assert unused == []
    else:
        assert len(unused) == 1
        assert unused[0].endswith("made ahead of need and deleted unused")
    assert standalone.buckets(seed) == set()
    assert standalone.s3.list_objects_v2(Bucket=seed)["KeyCount"] == 1


def test_a_bad_pool_size_is_one_line(pytester: pytest.Pytester, inner: Inner) -> None:
    pytester.makepyfile(test_x="def test_x(tigris_fork):\n    pass\n")
    result = inner.run("--tigris-pool=many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.text
    assert (
        "--tigris-pool='many' is not valid: give a number of ready forks from 0 (no pool) to 32"
        in text
    )
    assert "Traceback" not in text
