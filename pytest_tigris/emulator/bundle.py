"""Tigris's Bundle API (``POST /{bucket}?bundle``): many objects in one tar stream."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .errors import NotImplementedByEmulator

if TYPE_CHECKING:
    from .responses import S3Request, TigrisMiddleware

__all__ = ["bundle_response"]


def bundle_response(
    middleware: TigrisMiddleware, request: S3Request, start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """Answer a Bundle request."""
    raise NotImplementedByEmulator("The Bundle API")
