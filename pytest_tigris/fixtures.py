"""The public fixtures: thin wrappers over :class:`~pytest_tigris.factory.TigrisForkFactory`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .exceptions import TigrisConfigError, TigrisError

if TYPE_CHECKING:
    from .factory import Fork, TigrisForkFactory

__all__ = [
    "tigris_bucket",
    "tigris_client",
    "tigris_fork",
    "tigris_fork_factory",
    "tigris_seed",
]


def _factory(config: pytest.Config) -> TigrisForkFactory:
    from .plugin import factory_for

    return factory_for(config)


def _fail(exc: TigrisError) -> None:
    """Turn a pytest-tigris error into a one-line failure (usage error: stop the run)."""
    if isinstance(exc, TigrisConfigError):
        pytest.exit(f"pytest-tigris: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    pytest.fail(f"pytest-tigris: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def tigris_fork_factory(request: pytest.FixtureRequest) -> Iterator[TigrisForkFactory]:
    """Session-scoped ``TigrisForkFactory``: ``.fork(source=None, *, snapshot=None) -> Fork``.

    Each fork it makes is deleted at the end of the session (or kept, per --tigris-keep).
    """
    factory = _factory(request.config)
    try:
        factory.start()
    except TigrisError as exc:
        _fail(exc)
    yield factory
    for problem in factory.close(failed=request.session.testsfailed > 0):
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
    """Session-scoped ``Fork`` of the seed, one per xdist worker, deleted at session end."""
    try:
        fork = tigris_fork_factory.create(kind="bucket")
    except TigrisError as exc:
        _fail(exc)
        raise
    yield fork
    failed = request.session.testsfailed > 0
    _release(request, tigris_fork_factory, fork, failed)


@pytest.fixture
def tigris_fork(
    request: pytest.FixtureRequest, tigris_fork_factory: TigrisForkFactory
) -> Iterator[Fork]:
    """Function-scoped ``Fork`` of the seed at the run's pinned snapshot, deleted after the test.

    ``@pytest.mark.tigris(seed=..., snapshot=...)`` picks another seed or snapshot.
    """
    from .plugin import marker_options, test_failed

    seed, snapshot = marker_options(request.node)
    try:
        fork = tigris_fork_factory.create(seed, snapshot=snapshot, kind="fork")
    except TigrisError as exc:
        _fail(exc)
        raise
    yield fork
    _release(request, tigris_fork_factory, fork, test_failed(request.node))


def _release(
    request: pytest.FixtureRequest, factory: TigrisForkFactory, fork: Fork, failed: bool
) -> None:
    # A failed cleanup must never hide the test's own result: warn, and leave the fork to the
    # end-of-run sweep.
    try:
        factory.release(fork, failed=failed)
    except Exception as exc:
        request.node.warn(
            pytest.PytestWarning(f"pytest-tigris: could not delete fork {fork.name}: {exc}")
        )
