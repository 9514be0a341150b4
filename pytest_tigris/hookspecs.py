"""Hooks pytest-tigris adds (registered in ``pytest_addhooks``). Implement them in a conftest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .fork import Fork


def pytest_tigris_populate_seed(client: Any, bucket: str) -> None:
    """Fill the emulator's seed bucket ``bucket`` through the boto3 ``client``.

    Called once per run (not once per xdist worker), after ``--tigris-seed-dir`` is loaded and
    before the run's seed snapshot is taken. Only for the emulator backend: pytest-tigris never
    writes to a remote seed. An ``async def`` implementation is awaited (after the plain ones,
    on an event loop of its own).
    """


@pytest.hookspec(firstresult=True)
def pytest_tigris_fork_name(config: pytest.Config, kind: str, worker: str) -> str | None:
    """Return the bucket name for a new fork, or None for the default name.

    ``kind`` is ``"fork"`` (``tigris_fork``), ``"bucket"`` (``tigris_bucket``) or
    ``"factory"`` (``tigris_fork_factory.fork``); ``worker`` is ``"gw0"``... or ``"m"``.
    A custom name must be a valid, globally unique bucket name.
    """


def pytest_tigris_fork_created(fork: Fork) -> None:
    """Called after ``fork`` was created and verified, before a test sees it."""


def pytest_tigris_fork_deleted(fork: Fork) -> None:
    """Called after ``fork`` was deleted."""
