"""Shared fixtures: every test talks to a real emulator process over HTTP with boto3."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import SEED, SEED_FILES, make_client
from tests.inner import Inner


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts a background command with SIGINT ignored, and every
    # process inherits that: inner runs could not be interrupted, which is what the Ctrl-C
    # tests do to them. (pytest's own handling of Ctrl-C needs the default handler too.)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seed")
    for key, data in SEED_FILES.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="session")
def emulator(seed_dir: Path) -> Iterator[EmulatorProcess]:
    """One emulator process for the session, with SEED loaded from ``seed_dir``."""
    with EmulatorProcess(seed=SEED, seed_dir=seed_dir) as process:
        yield process


@pytest.fixture(scope="session")
def s3(emulator: EmulatorProcess) -> Any:
    return make_client(emulator.endpoint_url)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Make a bucket name no other test uses."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Inner:
    """Inner pytest runs of this test, in ``pytester``'s folder (see ``tests/inner.py``)."""
    return Inner(pytester, monkeypatch)
