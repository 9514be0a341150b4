"""SigV4 verification for the emulator (header-signed and presigned requests).

Off unless the emulator is given an access key and secret. The canonical request is rebuilt
from the raw request line, the way S3 does it (no path normalisation, no double encoding).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

__all__ = ["AuthError", "SigV4Verifier"]

_ALGORITHM = "AWS4-HMAC-SHA256"


class AuthError(Exception):
    """A request failed authentication: S3 error code and message, always HTTP 403."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _quote(value: str) -> str:
    return quote(value, safe="-_.~")


class SigV4Verifier:
    """Checks AWS Signature Version 4 against a fixed set of key pairs."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = dict(keys)

    def verify(self, environ: Mapping[str, object]) -> str:
        """Return the access key a request was signed with, or raise :class:`AuthError`."""
        query = str(environ.get("QUERY_STRING", ""))
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        if header.startswith(_ALGORITHM):
            fields = _parse_authorization(header)
            credential = fields.get("Credential", "")
            signed_headers = fields.get("SignedHeaders", "")
            signature = fields.get("Signature", "")
            amz_date = str(environ.get("HTTP_X_AMZ_DATE", ""))
            payload_hash = str(environ.get("HTTP_X_AMZ_CONTENT_SHA256", "UNSIGNED-PAYLOAD"))
            canonical_pairs = pairs
        elif params.get("X-Amz-Algorithm") == _ALGORITHM:
            credential = params.get("X-Amz-Credential", "")
            signed_headers = params.get("X-Amz-SignedHeaders", "")
            signature = params.get("X-Amz-Signature", "")
            amz_date = params.get("X-Amz-Date", "")
            payload_hash = "UNSIGNED-PAYLOAD"
            canonical_pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
            _check_expiry(amz_date, params.get("X-Amz-Expires", "0"))
        elif header:
            raise AuthError(
                "AccessDenied", "Only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported."
            )
        else:
            raise AuthError("AccessDenied", "Access Denied: the request is not signed.")

        access_key, _, scope = credential.partition("/")
        secret = self._keys.get(access_key)
        if secret is None:
            raise AuthError(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        canonical = "\n".join(
            [
                str(environ.get("REQUEST_METHOD", "GET")),
                _raw_path(environ),
                _canonical_query(canonical_pairs),
                "".join(
                    f"{name}:{_header_value(environ, name)}\n"
                    for name in signed_headers.split(";")
                    if name
                ),
                signed_headers,
                payload_hash,
            ]
        )
        string_to_sign = "\n".join(
            [_ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        date, region, service, _terminal = [*scope.split("/"), "", "", "", ""][:4]
        key = _sign(("AWS4" + secret).encode(), date)
        for part in (region, service, "aws4_request"):
            key = _sign(key, part)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise AuthError(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        return access_key


def _parse_authorization(header: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in header[len(_ALGORITHM) :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    return fields


def _raw_path(environ: Mapping[str, object]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0] or "/"
    return quote(str(environ.get("PATH_INFO", "/")), safe="/~")


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted((_quote(k), _quote(v)) for k, v in pairs))


def _header_value(environ: Mapping[str, object], name: str) -> str:
    lower = name.lower()
    if lower == "content-type":
        value = environ.get("CONTENT_TYPE", "")
    elif lower == "content-length":
        value = environ.get("CONTENT_LENGTH", "")
    else:
        value = environ.get("HTTP_" + lower.upper().replace("-", "_"), "")
    return " ".join(str(value).split())


def _check_expiry(amz_date: str, expires: str) -> None:
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc
        )
        seconds = int(expires)
    except ValueError as exc:
        raise AuthError("AuthorizationQueryParametersError", "Malformed presigned URL.") from exc
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    if now > signed_at + datetime.timedelta(seconds=seconds):
        raise AuthError("AccessDenied", "Request has expired")
