"""Small helpers for talking S3 through boto3: reading a ``ClientError``, turning the errors
every user hits into one line, and sending Tigris headers from many threads on one client.

botocore is imported inside the functions: this module is imported by the plugin at start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .exceptions import TigrisEndpointError

__all__ = [
    "CLI_ENDPOINT_HINT",
    "ENDPOINT_HINT",
    "FORCE_DELETE_HEADERS",
    "ThreadHeaders",
    "describe_client_error",
    "error_code",
    "error_status",
    "fork_source_headers",
    "retryable",
    "snapshot_version",
]

_RETRYABLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout"}
# What a message about a wrong endpoint tells the user to check: the plugin's settings. The
# CLI and library callers pass their own (``hint=``, ``ForkJanitor(endpoint_hint=)``).
ENDPOINT_HINT = "--tigris-endpoint / AWS_ENDPOINT_URL_S3"
# The same, for the ``pytest-tigris`` commands, whose option is ``--endpoint``.
CLI_ENDPOINT_HINT = "--endpoint / AWS_ENDPOINT_URL_S3"
# DeleteBucket with these deletes the bucket and everything in it (Tigris's force delete).
FORCE_DELETE_HEADERS = {"X-Tigris-Force-Delete": "true"}


def fork_source_headers(source: str, snapshot: str | None) -> dict[str, str]:
    """CreateBucket with these makes the new bucket a fork of ``source`` (at ``snapshot``)."""
    headers = {"X-Tigris-Fork-Source-Bucket": source}
    if snapshot:
        headers["X-Tigris-Fork-Source-Bucket-Snapshot"] = snapshot
    return headers


def error_code(exc: Exception) -> str:
    """The S3 error code of a ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_status(exc: Exception) -> int:
    """The HTTP status of a ``ClientError`` (0 for anything else)."""
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def retryable(exc: Exception) -> bool:
    """Whether a failed request may be sent again (the server may have done it anyway)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        status = error_status(exc)
        return status >= 500 or status == 429 or error_code(exc) in _RETRYABLE_CODES
    return isinstance(exc, (ConnectionError, HTTPClientError))


def describe_client_error(
    exc: Exception, endpoint_url: str | None, *, hint: str = ENDPOINT_HINT
) -> TigrisEndpointError | None:
    """A one-line, actionable error for the failures every user hits, or None.

    ``hint``: where the endpoint was set, named when the connection is refused.
    """
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    where = endpoint_url or "the default endpoint"
    if isinstance(exc, EndpointConnectionError):
        return TigrisEndpointError(
            f"Connection refused by {where}: check {hint} and that the server is running"
        )
    if isinstance(exc, ReadTimeoutError):
        return TigrisEndpointError(f"{where} did not answer in time: check the endpoint URL")
    if isinstance(exc, NoCredentialsError):
        return TigrisEndpointError(
            f"No credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE, or put them in .env.local)"
        )
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return TigrisEndpointError(
                f"Access Denied by {where} ({code}): check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY (Tigris keys look like tid_... / tsec_...)"
            )
    return None


def snapshot_version(header: str | None) -> str | None:
    """A snapshot version from a header that may also carry its name (``<v>; name=<n>``)."""
    version = (header or "").partition(";")[0].strip()
    return version or None


class ThreadHeaders:
    """Extra headers for the requests one thread sends through a shared client.

    One handler is registered on the client once; it adds the headers the *calling* thread
    asked for, so threads creating and deleting forks at the same time never see each other's
    headers and need no lock. (tigris-boto3-ext registers its headers per client while a call
    runs: two threads on one client would mix them.)
    """

    def __init__(self, client: Any) -> None:
        self._local = threading.local()
        client.meta.events.register("before-sign.s3", self._inject)

    def _inject(self, request: Any, **kwargs: Any) -> None:
        for name, value in getattr(self._local, "headers", {}).items():
            if name in request.headers:
                del request.headers[name]
            request.headers[name] = value

    @contextmanager
    def sending(self, headers: dict[str, str]) -> Iterator[None]:
        """Add ``headers`` to every request this thread sends inside the block."""
        before = getattr(self._local, "headers", {})
        self._local.headers = {**before, **headers}
        try:
            yield
        finally:
            self._local.headers = before
