"""Requests boto3 will not send, for the SigV4 tests: signed by botocore, then altered.

botocore builds the canonical request and the seed signature (an implementation independent
of the emulator's); the aws-chunked framing and chunk signatures are made here, following
AWS's "Transferring Payload in Multiple Chunks" page.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNED_CHUNKS = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_CHUNKS_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_CODE = re.compile(rb"<Code>([^<]*)</Code>")


class _Signer(S3SigV4Auth):
    """botocore's S3 signer with the payload hash chosen by the caller."""

    def __init__(self, access_key: str, secret_key: str, payload: str | None) -> None:
        super().__init__(Credentials(access_key, secret_key), "s3", "auto")
        self._payload = payload

    def payload(self, request: Any) -> str:
        return self._payload if self._payload is not None else str(super().payload(request))


class Signed:
    """A request signed by botocore: its headers, and what chunk signing needs."""

    def __init__(self, headers: dict[str, str], secret_key: str) -> None:
        self.headers = headers
        authorization = headers["Authorization"]
        self.seed = authorization.rsplit("Signature=", 1)[1]
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
        self.scope = credential.split("/", 1)[1]
        self.timestamp = headers["X-Amz-Date"]
        key = ("AWS4" + secret_key).encode()
        for part in self.scope.split("/"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self.key = key

    def chunk_signature(self, previous: str, data: bytes) -> str:
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                self.timestamp,
                self.scope,
                previous,
                EMPTY_SHA256,
                hashlib.sha256(data).hexdigest(),
            ]
        )
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def trailer_signature(self, previous: str, trailers: Mapping[str, str]) -> str:
        canonical = "".join(f"{name}:{value}\n" for name, value in sorted(trailers.items()))
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-TRAILER",
                self.timestamp,
                self.scope,
                previous,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def chunked_body(
        self, pieces: Sequence[bytes], trailers: Mapping[str, str] | None = None
    ) -> bytes:
        """The aws-chunked body of ``pieces``, each chunk signed, chained from the seed."""
        out = bytearray()
        previous = self.seed
        for piece in [*pieces, b""]:
            previous = self.chunk_signature(previous, piece)
            out += f"{len(piece):x};chunk-signature={previous}\r\n".encode()
            if piece:
                out += piece + b"\r\n"
        if trailers is None:
            out += b"\r\n"
            return bytes(out)
        for name, value in trailers.items():
            out += f"{name}:{value}\r\n".encode()
        signature = self.trailer_signature(previous, trailers)
        out += f"x-amz-trailer-signature:{signature}\r\n\r\n".encode()
        return bytes(out)


def sign(
    url: str,
    access_key: str,
    secret_key: str,
    *,
    method: str = "PUT",
    body: bytes = b"",
    payload: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Signed:
    """Sign ``method url`` the way boto3 does (payload hash of ``body`` unless ``payload``)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    _Signer(access_key, secret_key, payload).add_auth(request)
    return Signed(dict(request.headers.items()), secret_key)


def send(
    url: str, method: str, headers: Mapping[str, str], body: bytes = b""
) -> tuple[int, str, bytes]:
    """One request on a fresh connection: (status, S3 error code or "", response body)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        connection.request(method, target, body=body, headers=dict(headers))
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    match = _CODE.search(payload)
    return response.status, match[1].decode() if match else "", payload


def send_raw(endpoint: str, request: bytes) -> tuple[int, str]:
    """Bytes as they are (non-ASCII request line or headers): (status, S3 error code)."""
    parts = urllib.parse.urlsplit(endpoint)
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        sock.sendall(request)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head, _, payload = bytes(received).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    match = _CODE.search(payload)
    return status, match[1].decode() if match else ""
