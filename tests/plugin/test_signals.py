"""SIGTERM is pytest-tigris's business only while a run has forks to lose (issue 11, item 16).

A run whose tests use no tigris fixture keeps the process's SIGTERM handler as it was; a run
that uses them turns SIGTERM into an interrupt (so teardown and the end-of-run sweep happen:
``test_cleanup.py`` kills such runs) and puts the old handler back at unconfigure. The inner
runs are separate processes, each with its own signal handlers, with and without ``-n 2``.
"""

from __future__ import annotations

import pytest

from tests.inner import Inner, InnerResult

XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
DEFAULT = "SIG_DFL"
OURS = "pytest_tigris.plugin"
CONFTEST = """
import os
import pathlib
import signal

import pytest

OUT = pathlib.Path(__file__).with_name("seen")


def seen(what):
    handler = signal.getsignal(signal.SIGTERM)
    name = "SIG_DFL" if handler is signal.SIG_DFL else getattr(handler, "__module__", repr(handler))
    OUT.mkdir(exist_ok=True)
    process = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (OUT / f"{what}-{process}").write_text(name)


def pytest_runtest_logreport(report):
    # Under xdist the controller gets here too, for its workers' reports.
    if report.when == "call":
        seen("running")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # Only where it is certain to run: xdist may end a worker once its session is over.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        seen("unconfigured")
"""
PLAIN = """
from conftest import seen


def test_plain_one():
    seen("test")


def test_plain_two():
    seen("test")
"""
USES = """
from conftest import seen


def test_fork_one(tigris_fork):
    seen("test")


def test_fork_two(tigris_fork):
    seen("test")
"""


@pytest.fixture(autouse=True)
def _project(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)


def run(inner: Inner, n: int) -> InnerResult:
    # A process of its own: the handlers seen are that process's, not this one's.
    return inner.run(n=n, subprocess=True)


def seen(pytester: pytest.Pytester) -> dict[str, str]:
    """``<moment>-<process>`` -> the SIGTERM handler then (``SIG_DFL`` or its module)."""
    return {p.name: p.read_text() for p in sorted((pytester.path / "seen").iterdir())}


def processes(n: int) -> list[str]:
    return [f"gw{i}" for i in range(n)] if n else ["main"]


@XDIST
def test_a_run_without_tigris_fixtures_keeps_the_default_handler(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    pytester.makepyfile(test_plain=PLAIN)

    result = run(inner, n)

    result.assert_outcomes(passed=2)
    everyone = processes(n) + (["main"] if n else [])
    expected = {f"running-{p}": DEFAULT for p in everyone}
    expected |= {f"test-{p}": DEFAULT for p in processes(n)}
    expected["unconfigured-main"] = DEFAULT
    assert seen(pytester) == expected


@XDIST
def test_a_run_with_tigris_fixtures_interrupts_on_sigterm_then_restores(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    pytester.makepyfile(test_uses=USES)

    result = run(inner, n)

    result.assert_outcomes(passed=2)
    everyone = processes(n) + (["main"] if n else [])
    expected = {f"running-{p}": OURS for p in everyone}
    expected |= {f"test-{p}": OURS for p in processes(n)}
    expected["unconfigured-main"] = DEFAULT
    assert seen(pytester) == expected
