"""The one way the plugin tests run an inner pytest session (imported as ``tests.inner``).

``Inner`` (the ``inner`` fixture) runs ``pytest`` in ``pytester``'s folder, with the outer
run's AWS, pytest-tigris, xdist and CI variables removed and unrelated plugins turned off:

- ``inner.run(*args, n=0)`` runs in this process (``pytester.runpytest_inprocess``), the
  default and the fast way: no new interpreter, pytest or boto3 to import. With ``n``,
  xdist starts its worker processes as usual.
- ``inner.run(*args, subprocess=True)`` runs ``python -m pytest`` as a process of its own,
  for what only a process of its own shows: its signal handlers, its ``sys.modules``, being
  killed.
- ``inner_command`` and ``inner_environ`` are the same command line and environment for tests
  that start, signal and kill inner runs themselves.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pkgutil
import re
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import boto3
import botocore.client  # noqa: F401
import pytest
import tigris_boto3_ext  # noqa: F401
from _pytest.pathlib import make_numbered_dir

import pytest_tigris
import pytest_tigris.client

# The plugin's modules (not the emulator's: it runs in a process of its own) are imported now,
# before any pytester snapshot of sys.modules, like boto3 above: an in-process inner run then
# finds them loaded instead of importing them again (pytester drops what a run imported).
for _module in pkgutil.iter_modules(pytest_tigris.__path__, "pytest_tigris."):
    if _module.name != "pytest_tigris.__main__":
        importlib.import_module(_module.name)

# Plugins this machine may have that have nothing to do with the inner runs; some take
# seconds to import. ``-p no:NAME`` is harmless when NAME is not installed.
UNRELATED_PLUGINS = ("randomly", "benchmark", "hypothesispytest")
# Variables of the outer run that would change what an inner run does.
FOREIGN_ENV = (
    "AWS_",
    "PYTEST_TIGRIS_",
    "PYTEST_XDIST_",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "TIGRIS_",
    "CI",
    "GITHUB_",
    "CIRCLE",
    "BUILDKITE_",
    "BUILD_TAG",
)
# ``TIGRIS_SUITE_POOL=N`` in the outer run gives every inner run ``PYTEST_TIGRIS_POOL=N``
# unless a test sets a pool itself: .ci/run runs the isolation, cleanup and crash tests a
# second time with the pool off (0); the default runs have it on.
SUITE_POOL = os.environ.get("TIGRIS_SUITE_POOL")
SUMMARY = re.compile(r"forks: (\d+) created, (\d+) deleted, (\d+) kept, (\d+) leaked")
# A conftest for inner runs against an endpoint that injects faults: botocore's standard
# retries sleep up to seconds between attempts. What is under test is that the plugin's
# requests are retried and nothing leaks, not botocore's timing (tests/emulator/test_faults.py
# does the same); every process of the run (xdist workers too) loads it.
NO_RETRY_BACKOFF = """
import botocore.retries.standard
import pytest

_PATCH = pytest.MonkeyPatch()


def pytest_configure(config):
    _PATCH.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0
    )


def pytest_unconfigure(config):
    _PATCH.undo()
"""


def inner_args(*args: str, n: int = 0, cache: bool = False) -> list[str]:
    """pytest's arguments for an inner run: unrelated plugins off, ``-n N`` when ``n``."""
    plugins = UNRELATED_PLUGINS if cache else ("cacheprovider", *UNRELATED_PLUGINS)
    options = [option for plugin in plugins for option in ("-p", f"no:{plugin}")]
    if n:
        options += ["-n", str(n)]
    return [*options, *args]


def inner_command(*args: str, n: int = 0) -> list[str]:
    """The command line of an inner run as a process of its own."""
    return [sys.executable, "-m", "pytest", *inner_args(*args, n=n)]


def foreign(name: str) -> bool:
    return name.startswith(FOREIGN_ENV)


def inner_environ(base: Mapping[str, str] | None = None, **values: str) -> dict[str, str]:
    """A copy of ``base`` (the environment) without the outer run's variables, plus ``values``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not foreign(k)}
    env["PYTHONUNBUFFERED"] = "1"
    if SUITE_POOL is not None:
        env["PYTEST_TIGRIS_POOL"] = SUITE_POOL
    env.update(values)
    return env


class InnerResult:
    """What an inner run printed and returned (``pytest.RunResult``, and a few readers)."""

    def __init__(self, result: pytest.RunResult, basetemp: Path) -> None:
        self.result = result
        self.basetemp = basetemp
        self.ret = result.ret
        self.outlines = result.outlines
        self.errlines = result.errlines
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.seconds = result.duration
        self.text = "\n".join(result.outlines + result.errlines)

    def assert_outcomes(self, **outcomes: int) -> None:
        __tracebackhide__ = True
        self.result.assert_outcomes(**outcomes)

    def parseoutcomes(self) -> dict[str, int]:
        return self.result.parseoutcomes()

    def messages(self) -> list[str]:
        """Every ``pytest-tigris:`` message, without what pytest puts around it."""
        return [
            line.split("pytest-tigris: ", 1)[1].removesuffix(" !")
            for line in self.text.splitlines()
            if "pytest-tigris: " in line
        ]

    def usage_error(self) -> str:
        """The run stopped with exit code 4 and one message, no traceback; returns it."""
        __tracebackhide__ = True
        assert self.ret == pytest.ExitCode.USAGE_ERROR, self.text
        assert "Traceback" not in self.text, self.text
        assert "INTERNALERROR" not in self.text, self.text
        messages = self.messages()
        assert len(messages) == 1, self.text
        return messages[0]

    def fork_summary(self) -> tuple[int, int, int, int]:
        """``(created, deleted, kept, leaked)`` from the one ``forks: ...`` summary line."""
        __tracebackhide__ = True
        found = [m for m in map(SUMMARY.search, self.outlines) if m]
        assert len(found) == 1, self.text
        created, deleted, kept, leaked = (int(g) for g in found[0].groups())
        return created, deleted, kept, leaked


class Inner:
    """Inner runs of one outer test, in ``pytester``'s folder (which has an ini file of its
    own, so the inner rootdir never climbs into an outer configuration)."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.monkeypatch = monkeypatch
        self.path = pytester.path
        for name in list(os.environ):
            if foreign(name):
                monkeypatch.delenv(name)
        if SUITE_POOL is not None:
            monkeypatch.setenv("PYTEST_TIGRIS_POOL", SUITE_POOL)
        pytester.makefile(".ini", pytest="[pytest]\n")

    def setenv(self, **values: str) -> None:
        """Set variables for the rest of the outer test (its inner runs see them)."""
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)

    def run(
        self,
        *args: str,
        n: int = 0,
        subprocess: bool = False,
        env: Mapping[str, str] | None = None,
        cache: bool = False,
        prefix: Sequence[str] = (),
        timeout: float = 180,
    ) -> InnerResult:
        """Run ``pytest *args`` (``-n N`` when ``n``); ``env``: variables for this run only;
        ``cache``: with pytest's cache (``--lf``); ``prefix``: a command the process is started
        under (implies ``subprocess``).

        A run still going after ``timeout`` seconds fails the test: a subprocess is killed, an
        in-process run is interrupted (SIGALRM raising KeyboardInterrupt, as Ctrl-C would:
        pytest then tears down and ends the run).
        """
        basetemp = make_numbered_dir(root=self.path, prefix="runpytest-", mode=0o700)
        arguments = [f"--basetemp={basetemp}", *inner_args(*args, n=n, cache=cache)]
        with pytest.MonkeyPatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            if subprocess or prefix:
                command = [*prefix, sys.executable, "-m", "pytest", *arguments]
                result = self.pytester.run(*command, timeout=timeout)
            else:
                with process_state_kept(), _interrupted_after(timeout) as late:
                    result = self.pytester.runpytest_inprocess(*arguments, no_reraise_ctrlc=True)
                if late:
                    pytest.fail(
                        f"the inner run did not end within {timeout} s:\n"
                        + "\n".join(result.outlines + result.errlines),
                        pytrace=False,
                    )
        return InnerResult(result, basetemp)


@contextlib.contextmanager
def process_state_kept() -> Iterator[None]:
    """Start without, and put back, what pytest-tigris run in this process (an inner run, a
    command's ``main()``) may change for the whole process: boto3's default session (it keeps
    the first credentials it finds), the secrets masked in log records (and the log record
    factory doing it), the SIGTERM handler."""
    session = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    client = pytest_tigris.client
    factory = logging.getLogRecordFactory()
    secrets = set(client._secrets)
    client._secrets.clear()
    installed = client._factory_installed
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = session
        logging.setLogRecordFactory(factory)
        client._secrets.clear()
        client._secrets.update(secrets)
        client._factory_installed = installed
        signal.signal(signal.SIGTERM, sigterm)


@contextlib.contextmanager
def _interrupted_after(seconds: float) -> Iterator[list[bool]]:
    """Raise KeyboardInterrupt in this (the main) thread after ``seconds``, once; yields a list
    that holds True when it did."""
    fired: list[bool] = []

    def interrupt(signum: int, frame: object) -> None:
        if not fired and armed:
            fired.append(True)
            raise KeyboardInterrupt(f"the inner run did not end within {seconds} s")

    armed = True
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield fired
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
