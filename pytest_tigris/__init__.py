"""pytest-tigris: isolated, throw-away object storage for every test, forked from a seed bucket.

Importing this package is cheap (the plugin is loaded in every pytest run): its public names
are loaded on first use, and boto3, botocore and moto only when a fork, a client or the
emulator is first needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TigrisConfig
    from .envs import get_bucket_name, get_s3_client
    from .exceptions import (
        TigrisConfigError,
        TigrisEndpointError,
        TigrisError,
        TigrisForkError,
        TigrisSeedError,
        TigrisUnsafeDeleteError,
    )
    from .factory import TigrisForkFactory
    from .fork import Changes, EnvSetter, Fork
    from .janitor import ForkJanitor

__version__ = "0.1.0"

_WHERE = {
    "Changes": "fork",
    "EnvSetter": "fork",
    "Fork": "fork",
    "ForkJanitor": "janitor",
    "TigrisConfig": "config",
    "TigrisConfigError": "exceptions",
    "TigrisEndpointError": "exceptions",
    "TigrisError": "exceptions",
    "TigrisForkError": "exceptions",
    "TigrisForkFactory": "factory",
    "TigrisSeedError": "exceptions",
    "TigrisUnsafeDeleteError": "exceptions",
    "get_bucket_name": "envs",
    "get_s3_client": "envs",
}

__all__ = [
    "Changes",
    "EnvSetter",
    "Fork",
    "ForkJanitor",
    "TigrisConfig",
    "TigrisConfigError",
    "TigrisEndpointError",
    "TigrisError",
    "TigrisForkError",
    "TigrisForkFactory",
    "TigrisSeedError",
    "TigrisUnsafeDeleteError",
    "__version__",
    "get_bucket_name",
    "get_s3_client",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_tigris' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
