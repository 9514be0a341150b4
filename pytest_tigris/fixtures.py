"""The public fixtures: thin wrappers over :class:`~pytest_tigris.factory.TigrisForkFactory`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from .exceptions import TigrisConfigError, TigrisError

if TYPE_CHECKING:
    from .factory import Fork, TigrisForkFactory

__all__ = [
    "SUPPORT_KEY",
    "FixtureSupport",
    "tigris_bucket",
    "tigris_client",
    "tigris_fork",
    "tigris_fork_factory",
    "tigris_seed",
]


@dataclass(frozen=True)
class FixtureSupport:
    """What the fixtures need from the plugin, built in its ``pytest_configure`` and read
    from ``config.stash`` (so this module never imports the plugin)."""

    #: This process's factory (made on first use); raises TigrisConfigError when the
    #: configuration could not be loaded.
    factory: Callable[[], TigrisForkFactory]
    #: Stop the run with exit code 4 (through the controller on an xdist worker).
    usage_error: Callable[[str], None]
    #: ``(seed, snapshot)`` of the test's ``@pytest.mark.tigris`` (fails its setup when bad).
    marker_options: Callable[[pytest.Item], tuple[str | None, str | None]]
    #: Whether the test's setup or call failed.
    test_failed: Callable[[pytest.Item], bool]


SUPPORT_KEY = pytest.StashKey[FixtureSupport]()


def _support(config: pytest.Config) -> FixtureSupport:
    return config.stash[SUPPORT_KEY]


def _factory(config: pytest.Config) -> TigrisForkFactory:
    return _support(config).factory()


def _fail(config: pytest.Config, exc: TigrisError) -> None:
    """Turn a pytest-tigris error into one line: a configuration error stops the run (exit
    code 4), anything else fails the test."""
    message = f"pytest-tigris: {exc}"
    if isinstance(exc, TigrisConfigError):
        _support(config).usage_error(message)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def tigris_fork_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TigrisForkFactory]:
    """Session-scoped ``TigrisForkFactory``: ``.fork(source=None, *, snapshot=None) -> Fork``.

    Each fork it makes is deleted at the end of the session (or kept, per --tigris-keep:
    with ``failed``, when the test it was made during failed); ``.delete(fork)`` deletes one
    sooner.
    """
    made: list[TigrisForkFactory] = []

    def start() -> None:
        made.append(_factory(request.config))
        made[0].start()

    error = _attempt(start)
    if error is not None:
        _fail(request.config, error)
    factory = made[0]
    # Kept forks of the embedded emulator are written there, so pytest retires them with old
    # runs as it does tmp_path's folders.
    factory.export_root = tmp_path_factory.getbasetemp
    yield factory
    for problem in factory.close():
        request.node.warn(pytest.PytestWarning(f"pytest-tigris: {problem}"))


@pytest.fixture(scope="session")
def tigris_seed(tigris_fork_factory: TigrisForkFactory) -> str:
    """Name (str) of the seed bucket in use."""
    return tigris_fork_factory.config.seed


@pytest.fixture(scope="session")
def tigris_client(tigris_fork_factory: TigrisForkFactory) -> Any:
    """Session-scoped boto3 S3 client configured for the endpoint in use."""
    return tigris_fork_factory.clients.client()


@pytest.fixture(scope="session")
def tigris_bucket(
    request: pytest.FixtureRequest, tigris_fork_factory: TigrisForkFactory
) -> Iterator[Fork]:
    """Session-scoped ``Fork`` of the seed, one per xdist worker, deleted at session end.

    With --tigris-keep=failed it is kept when a test that used it failed.
    """
    fork = _create(request, tigris_fork_factory, None, None, "bucket")
    yield fork
    _release(request, tigris_fork_factory, fork)


@pytest.fixture
def tigris_fork(
    request: pytest.FixtureRequest, tigris_fork_factory: TigrisForkFactory
) -> Iterator[Fork]:
    """Function-scoped ``Fork`` of the seed at the run's pinned snapshot, deleted after the test.

    ``@pytest.mark.tigris(seed=..., snapshot=...)`` picks another seed or snapshot.
    """
    support = _support(request.config)
    seed, snapshot = support.marker_options(request.node)
    fork = _create(request, tigris_fork_factory, seed, snapshot, "fork")
    yield fork
    node = request.node
    _release(request, tigris_fork_factory, fork, failed=support.test_failed(node), test=node.nodeid)


def _attempt(action: Any) -> TigrisError | None:
    try:
        action()
    except TigrisError as exc:
        return exc
    return None


def _create(
    request: pytest.FixtureRequest,
    factory: TigrisForkFactory,
    seed: str | None,
    snapshot: str | None,
    kind: str,
) -> Fork:
    made: list[Fork] = []
    # The failure is reported outside the except block: no "during handling" chain.
    error = _attempt(lambda: made.append(factory.create(seed, snapshot=snapshot, kind=kind)))
    if error is not None:
        _fail(request.config, error)
    return made[0]


def _release(
    request: pytest.FixtureRequest,
    factory: TigrisForkFactory,
    fork: Fork,
    *,
    failed: bool = False,
    test: str | None = None,
) -> None:
    # A failed cleanup must never hide the test's own result: warn, and leave the fork to the
    # end-of-run sweep.
    try:
        factory.release(fork, failed=failed, test=test)
    except Exception as exc:
        request.node.warn(
            pytest.PytestWarning(f"pytest-tigris: could not delete fork {fork.name}: {exc}")
        )
