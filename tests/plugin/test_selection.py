"""The backend starts only for the tests that will run (issue 11, item 11).

``-k``, ``-m``, ``--lf`` and ``--deselect`` drop tests after collection: whether anything
starts (the emulator, the endpoint probe, ``pytest_tigris_populate_seed``) is decided from the
tests left after them. The inner runs are in-process (``tests.inner``), with and without
``-n 2``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.inner import Inner

XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
DEAD_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens there
# In a class: --lf filters the functions of a module while collecting it (so the tigris test
# would never be collected), but deselects those of a class after collection.
MIXED = """
import pathlib

import pytest


class TestMixed:
    def test_plain(self):
        flag = pathlib.Path(__file__).with_name("fail-plain")
        assert not flag.exists(), "fails while the flag file exists"

    @pytest.mark.slow
    def test_uses(self, tigris_fork):
        pass
"""
POPULATE = """
import pathlib


def pytest_tigris_populate_seed(client, bucket):
    pathlib.Path(__file__).with_name("populated").write_text(bucket)
"""


@pytest.fixture
def project(inner: Inner, pytester: pytest.Pytester) -> Inner:
    pytester.makefile(".ini", pytest="[pytest]\nmarkers =\n    slow: a slow test\n")
    pytester.makeconftest(POPULATE)
    pytester.makepyfile(test_mixed=MIXED)
    return inner


def deselected(count: int, n: int) -> int:
    """How many deselected tests the summary line shows: xdist's controller never counts the
    tests its workers deselected."""
    return 0 if n else count


@XDIST
@pytest.mark.parametrize(
    "select",
    [["-k", "plain"], ["-m", "not slow"], ["--deselect", "test_mixed.py::TestMixed::test_uses"]],
    ids=["k", "m", "deselect"],
)
def test_a_deselected_tigris_test_never_reaches_the_endpoint(
    project: Inner, pytester: pytest.Pytester, n: int, select: list[str]
) -> None:
    result = project.run("--tigris-endpoint", DEAD_ENDPOINT, *select, n=n)

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1, deselected=deselected(1, n))
    assert result.messages() == []


@XDIST
def test_no_selected_test_starts_no_emulator_and_no_hook(
    project: Inner, pytester: pytest.Pytester, n: int
) -> None:
    result = project.run("-k", "nomatch", n=n)

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    result.assert_outcomes(deselected=deselected(2, n))
    assert not (pytester.path / "populated").exists()


@XDIST
def test_only_plain_tests_selected_start_no_emulator(
    project: Inner, pytester: pytest.Pytester, n: int
) -> None:
    result = project.run("-k", "plain", n=n)

    result.assert_outcomes(passed=1, deselected=deselected(1, n))
    assert not (pytester.path / "populated").exists()


@XDIST
def test_last_failed_reruns_without_the_backend(
    project: Inner, pytester: pytest.Pytester, n: int
) -> None:
    flag: Path = pytester.path / "fail-plain"
    flag.touch()
    first = project.run("-k", "plain", n=n, cache=True)
    first.assert_outcomes(failed=1, deselected=deselected(1, n))
    flag.unlink()

    again = project.run("--lf", "--tigris-endpoint", DEAD_ENDPOINT, n=n, cache=True)

    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    again.assert_outcomes(passed=1, deselected=deselected(1, n))
    assert again.messages() == []


@XDIST
def test_a_selected_tigris_test_still_checks_the_endpoint_first(
    project: Inner, pytester: pytest.Pytester, n: int
) -> None:
    result = project.run("--tigris-endpoint", DEAD_ENDPOINT, "-k", "uses", n=n)

    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert result.messages() == [
        f"Connection refused by {DEAD_ENDPOINT}: check --tigris-endpoint / AWS_ENDPOINT_URL_S3 "
        "and that the server is running"
    ]
    assert not (pytester.path / "populated").exists()
