"""Errors raised by pytest-tigris. Every one is a :class:`TigrisError`."""

from __future__ import annotations

__all__ = [
    "TigrisConfigError",
    "TigrisEmulatorError",
    "TigrisEndpointError",
    "TigrisError",
    "TigrisForkError",
    "TigrisHookError",
    "TigrisSeedError",
    "TigrisUnsafeDeleteError",
]


class TigrisError(Exception):
    """Base class of every pytest-tigris error; its message is one line saying what to do."""


class TigrisConfigError(TigrisError):
    """An option, ini key or environment variable has a value that cannot work."""


class TigrisSeedError(TigrisConfigError):
    """The seed bucket (or its snapshot) is missing or cannot be forked."""


class TigrisEndpointError(TigrisConfigError):
    """The endpoint refused the connection, the credentials, or does not speak S3/Tigris."""


class TigrisHookError(TigrisConfigError):
    """A ``pytest_tigris_*`` hook implementation raised; the message names it and where."""


class TigrisEmulatorError(TigrisError):
    """The embedded emulator did not start, or stopped during the run."""


class TigrisForkError(TigrisError):
    """A fork could not be created, or what was created is not a fork."""


class TigrisUnsafeDeleteError(TigrisError):
    """A delete was refused because the bucket is not a fork this project made."""
