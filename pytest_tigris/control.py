"""``ControlClient``: the two requests a fork's life costs, without boto3, for the embedded
emulator.

Creating a fork and force-deleting it are one signed request each. Through boto3 each costs
2.5-3.5 ms of this process's CPU (request building, event hooks, signing, parsing), and
because the pool and the deleter run on threads of the test process, that CPU is taken from
the tests while they run (the GIL). Here each is a few hundred microseconds: a SigV4
signature, one keep-alive HTTP/1.1 connection per thread, and the status and error code read
from the answer. Used only for the emulator the plugin started itself (loopback, HTTP, keys
it knows); every other endpoint keeps boto3's retries, credential chain, proxies and TLS.

Failures are raised as botocore's own exceptions (``ClientError`` with the S3 error code,
``EndpointConnectionError``), so callers handle both clients the same way.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import re
import threading
from typing import Any
from urllib.parse import urlsplit

from .s3calls import FORCE_DELETE_HEADERS, fork_source_headers

__all__ = ["ControlClient"]

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
# A keep-alive connection the server closed meanwhile fails with one of these on reuse.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class ControlClient:
    """Signed bucket-level requests to one HTTP endpoint (thread-safe: a connection per
    thread)."""

    def __init__(
        self,
        endpoint_url: str,
        access_key: str,
        secret_key: str,
        region: str = "auto",
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"ControlClient needs an http:// endpoint, not {endpoint_url!r}")
        self.endpoint_url = endpoint_url
        self._host = parts.hostname
        self._port = parts.port or 80
        self._host_header = parts.netloc
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region
        self._timeout = timeout
        self._local = threading.local()
        self._keys: dict[str, bytes] = {}

    # -- the operations ---------------------------------------------------------------------
    def create_fork(self, name: str, source: str, snapshot: str | None = None) -> dict[str, Any]:
        """CreateBucket ``name`` as a fork of ``source`` (at ``snapshot``)."""
        return self.request("PUT", name, fork_source_headers(source, snapshot), "CreateBucket")

    def force_delete(self, name: str) -> dict[str, Any]:
        """DeleteBucket ``name`` and everything in it (Tigris's force delete)."""
        return self.request("DELETE", name, FORCE_DELETE_HEADERS, "DeleteBucket")

    # -- one request ------------------------------------------------------------------------
    def request(
        self, method: str, bucket: str, headers: dict[str, str], operation: str
    ) -> dict[str, Any]:
        """Send one signed request for ``bucket``; the response's metadata, like boto3's
        ``ResponseMetadata``. Raises ``ClientError`` for an S3 error answer."""
        path = f"/{bucket}"
        attempts = 0
        while True:
            signed = self._sign(method, path, headers)
            connection = self._connection()
            try:
                connection.request(method, path, headers=signed)
                response = connection.getresponse()
                body = response.read()
            except _STALE:
                self._drop()
                if attempts:
                    raise self._unreachable() from None
                attempts += 1  # the server closed an idle connection: once more, on a new one
                continue
            except OSError:
                self._drop()
                raise self._unreachable() from None
            if response.getheader("Connection", "").lower() == "close":
                self._drop()
            metadata = {
                "HTTPStatusCode": response.status,
                "HTTPHeaders": {k.lower(): v for k, v in response.getheaders()},
                "RetryAttempts": attempts,
            }
            if response.status >= 300:
                raise _client_error(response.status, body, metadata, operation)
            return {"ResponseMetadata": metadata}

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _unreachable(self) -> Exception:
        from botocore.exceptions import EndpointConnectionError

        error: Exception = EndpointConnectionError(endpoint_url=self.endpoint_url)
        return error

    def _sign(self, method: str, path: str, extra: dict[str, str]) -> dict[str, str]:
        """``extra`` plus the SigV4 headers (AWS's "Signature Version 4 signing process")."""
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {
            "host": self._host_header,
            "x-amz-content-sha256": _EMPTY_SHA256,
            "x-amz-date": stamp,
            **{name.lower(): value.strip() for name, value in extra.items()},
        }
        names = sorted(headers)
        signed_names = ";".join(names)
        canonical = "\n".join(
            [
                method,
                path,
                "",
                *(f"{name}:{headers[name]}" for name in names),
                "",
                signed_names,
                _EMPTY_SHA256,
            ]
        )
        scope = f"{day}/{self._region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature.hexdigest()}"
        )
        headers["content-length"] = "0"
        return headers

    def _signing_key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = ("AWS4" + self._secret_key).encode()
            for part in (day, self._region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {day: key}
        return key


def _client_error(status: int, body: bytes, metadata: dict[str, Any], operation: str) -> Exception:
    from botocore.exceptions import ClientError

    code = _CODE.search(body)
    message = _MESSAGE.search(body)
    error = {
        "Code": code.group(1).decode("utf-8", "replace") if code else str(status),
        "Message": message.group(1).decode("utf-8", "replace") if message else "",
    }
    exc: Exception = ClientError({"Error": error, "ResponseMetadata": metadata}, operation)
    return exc
