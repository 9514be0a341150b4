"""A marker that cannot work errors its own test, the same with and without xdist (issue 11,
item 13); pytest-tigris errors raised in a test's code are one line, not a traceback.

The inner runs are in-process (``tests.inner``), with and without ``-n 2``.
"""

from __future__ import annotations

import re

import pytest

from tests.inner import Inner, InnerResult

XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
SUITE = """
import pytest


@pytest.mark.tigris(snapshot="bad")
def test_bad_snapshot(tigris_fork):
    pass


@pytest.mark.tigris(seed="no-such-seed")
def test_missing_seed(tigris_fork):
    pass


@pytest.mark.tigris(seed="Bad_Name")
def test_invalid_seed(tigris_fork):
    pass


@pytest.mark.tigris(snapshot=3)
def test_not_a_string(tigris_fork):
    pass


@pytest.mark.tigris("seed", other=1)
def test_other_arguments(tigris_fork):
    pass


@pytest.mark.tigris(snapshot="pytest-tigris-{run}")
def test_good_marker(tigris_fork):
    assert tigris_fork.snapshot.isdigit()


def test_unmarked(tigris_fork):
    pass


def test_factory_bad_snapshot(tigris_fork_factory):
    tigris_fork_factory.fork(snapshot="bad")
"""
RUN_ID = "markers1"
EXPECTED = {
    "test_bad_snapshot": "@pytest.mark.tigris(snapshot='bad'): bucket 'pytest-tigris-seed' has "
    "no snapshot with that version or name (list them with tigris_boto3_ext.list_snapshots)",
    "test_missing_seed": "@pytest.mark.tigris(seed='no-such-seed'): seed bucket 'no-such-seed' "
    "does not exist at http://127.0.0.1:PORT: create it (snapshot-enabled) or fix the marker",
    "test_invalid_seed": "@pytest.mark.tigris(seed='Bad_Name'): seed 'Bad_Name' is not a valid "
    "bucket name (3-63 characters a-z, 0-9, '.' and '-', starting and ending with a letter or "
    "digit)",
    "test_not_a_string": "@pytest.mark.tigris(snapshot=3): snapshot= must be a string (got int)",
    "test_other_arguments": "@pytest.mark.tigris('seed', other=1): it takes only the seed= and "
    "snapshot= keyword arguments",
}


@pytest.fixture
def project(inner: Inner, pytester: pytest.Pytester) -> Inner:
    pytester.makepyfile(test_markers=SUITE.replace("{run}", RUN_ID))
    return inner


def run(project: Inner, n: int) -> InnerResult:
    return project.run("--tigris-run-id", RUN_ID, n=n)


def sections(result: InnerResult) -> dict[str, list[str]]:
    """Each ``_ ERROR at setup of X _`` / ``_ X _`` section of the report: its lines (without
    the ``[gw0] linux -- Python ...`` line xdist adds)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in result.outlines:
        header = re.fullmatch(r"_+ (?:ERROR at setup of )?(\w+) _+", line)
        if header:
            current = found.setdefault(header[1], [])
        elif line.startswith("="):
            current = None
        elif current is not None and line.strip() and not re.match(r"\[gw\d+\] ", line):
            current.append(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line))
    return found


@XDIST
def test_a_bad_marker_errors_its_own_test_with_one_line(
    project: Inner, pytester: pytest.Pytester, n: int
) -> None:
    result = run(project, n)

    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=2, failed=1, errors=5)
    report = sections(result)
    for test, problem in EXPECTED.items():
        assert report[test] == [f"pytest-tigris: test_markers.py::{test}: {problem}"], report
    errored = {line.split()[1] for line in result.outlines if line.startswith("ERROR ")}
    assert errored == {f"test_markers.py::{test}" for test in EXPECTED}


@XDIST
def test_a_bad_factory_snapshot_is_one_line_at_the_call(
    project: Inner, pytester: pytest.Pytester, n: int
) -> None:
    result = run(project, n)

    source = (pytester.path / "test_markers.py").read_text().splitlines()
    line = source.index('    tigris_fork_factory.fork(snapshot="bad")') + 1
    assert sections(result)["test_factory_bad_snapshot"] == [
        "pytest-tigris: snapshot of pytest-tigris-seed 'bad': bucket 'pytest-tigris-seed' has no "
        "snapshot with that version or name (list them with tigris_boto3_ext.list_snapshots) "
        f"(test_markers.py:{line})"
    ]
    assert "Traceback" not in result.stdout.str()
    result.stdout.no_fnmatch_line("*janitor.py*")
