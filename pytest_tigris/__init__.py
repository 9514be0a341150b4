"""pytest-tigris: isolated, throw-away object storage for every test, forked from a seed bucket.

Importing this package is cheap: boto3, botocore and moto are imported only when a fork, a
client or the emulator is first needed.
"""

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
from .factory import Changes, Fork, TigrisForkFactory
from .janitor import ForkJanitor

__version__ = "0.1.0"

__all__ = [
    "Changes",
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
