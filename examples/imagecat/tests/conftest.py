"""Catalogs over pytest-tigris forks: one per test, and one shared read-only per session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from imagecat import ImageCatalog

if TYPE_CHECKING:
    from pytest_tigris import Fork


@pytest.fixture
def catalog(tigris_fork: Fork) -> ImageCatalog:
    """The catalog in this test's own fork of the seed: change anything."""
    return ImageCatalog(tigris_fork.client, tigris_fork.name)


@pytest.fixture(scope="session")
def shared_catalog(tigris_bucket: Fork) -> ImageCatalog:
    """The catalog in the session's (per-worker) fork: read-only tests only."""
    return ImageCatalog(tigris_bucket.client, tigris_bucket.name)
