"""The backend starts only for the tests that will run (issue 11, item 11).

``-k``, ``-m``, ``--lf`` and ``--deselect`` drop tests after collection: whether anything
starts (the emulator, the endpoint probe, ``pytest_tigris_populate_seed``) is decided from the
tests left after them. Without xdist the inner runs are in-process; with ``-n 2`` they are
separate processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import isolate_env

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


@pytest.fixture(autouse=True)
def _project(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    isolate_env(monkeypatch)
    pytester.makeini("[pytest]\nmarkers =\n    slow: a slow test\n")
    pytester.makeconftest(POPULATE)
    pytester.makepyfile(test_mixed=MIXED)


def run(pytester: pytest.Pytester, *args: str, n: int = 0) -> pytest.RunResult:
    if n:
        return pytester.runpytest_subprocess("-p", "no:randomly", "-n", str(n), *args)
    return pytester.runpytest("-p", "no:randomly", *args)


def deselected(count: int, n: int) -> int:
    """How many deselected tests the summary line shows: xdist's controller never counts the
    tests its workers deselected."""
    return 0 if n else count


def tigris_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines + result.errlines if "pytest-tigris: " in line]


@XDIST
@pytest.mark.parametrize(
    "select",
    [["-k", "plain"], ["-m", "not slow"], ["--deselect", "test_mixed.py::TestMixed::test_uses"]],
    ids=["k", "m", "deselect"],
)
def test_a_deselected_tigris_test_never_reaches_the_endpoint(
    pytester: pytest.Pytester, n: int, select: list[str]
) -> None:
    result = run(pytester, "--tigris-endpoint", DEAD_ENDPOINT, *select, n=n)

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1, deselected=deselected(1, n))
    assert tigris_lines(result) == []


@XDIST
def test_no_selected_test_starts_no_emulator_and_no_hook(pytester: pytest.Pytester, n: int) -> None:
    result = run(pytester, "-k", "nomatch", n=n)

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    result.assert_outcomes(deselected=deselected(2, n))
    assert not (pytester.path / "populated").exists()


@XDIST
def test_only_plain_tests_selected_start_no_emulator(pytester: pytest.Pytester, n: int) -> None:
    result = run(pytester, "-k", "plain", n=n)

    result.assert_outcomes(passed=1, deselected=deselected(1, n))
    assert not (pytester.path / "populated").exists()


@XDIST
def test_last_failed_reruns_without_the_backend(pytester: pytest.Pytester, n: int) -> None:
    flag: Path = pytester.path / "fail-plain"
    flag.touch()
    first = run(pytester, "-k", "plain", n=n)
    first.assert_outcomes(failed=1, deselected=deselected(1, n))
    flag.unlink()

    again = run(pytester, "--lf", "--tigris-endpoint", DEAD_ENDPOINT, n=n)

    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    again.assert_outcomes(passed=1, deselected=deselected(1, n))
    assert tigris_lines(again) == []


@XDIST
def test_a_selected_tigris_test_still_checks_the_endpoint_first(
    pytester: pytest.Pytester, n: int
) -> None:
    result = run(pytester, "--tigris-endpoint", DEAD_ENDPOINT, "-k", "uses", n=n)

    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert [
        line.split("pytest-tigris: ", 1)[1].removesuffix(" !") for line in tigris_lines(result)
    ] == [
        f"Connection refused by {DEAD_ENDPOINT}: check --tigris-endpoint / AWS_ENDPOINT_URL_S3 "
        "and that the server is running"
    ]
    assert not (pytester.path / "populated").exists()
