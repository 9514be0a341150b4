"""SigV4 verification for the emulator (header-signed and presigned requests).

Off unless the emulator is given an access key and secret. The canonical request is rebuilt
from the raw request line, the way S3 does it (no path normalisation, no double encoding).

Verification has two steps, because the body arrives after the headers and may be too big to
hold: :meth:`SigV4Verifier.verify` checks everything the headers say and returns a
:class:`SignedRequest`; its :meth:`~SignedRequest.payload_checker` is then fed the raw body and
says, at :meth:`~PayloadChecker.finish`, whether the body is the one that was signed.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_tz
from urllib.parse import parse_qsl, quote

__all__ = ["AuthError", "PayloadChecker", "SigV4Verifier", "SignedRequest"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
_TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"
_UNSIGNED = "UNSIGNED-PAYLOAD"
_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_SIGNED_CHUNKS = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
_SIGNED_CHUNKS_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# S3's limits: a signed request may be 15 minutes off the server clock, a presigned URL may
# live a week.
MAX_SKEW_SECONDS = 15 * 60
MAX_EXPIRES_SECONDS = 7 * 24 * 3600

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z", re.ASCII)
_DIGITS = re.compile(r"\d{1,20}", re.ASCII)
_CHUNK_HEADER = re.compile(rb"([0-9a-fA-F]{1,16});chunk-signature=([^\r\n]*)")
_UNSIGNED_CHUNK_HEADER = re.compile(rb"([0-9a-fA-F]{1,16})(;[^\r\n]*)?")
_TRAILER_LINE = re.compile(rb"([!-9;-~]+):([^\r\n]*)")
# A chunk header is about 90 bytes and a trailer line about 60; anything much longer is not a
# chunk header, and a limit keeps a garbage body from being buffered whole.
_MAX_LINE = 4096
_MAX_TRAILERS = 16


class AuthError(Exception):
    """A request failed authentication or its body does not match its signature.

    ``status`` is the HTTP status to answer (403 unless the request is malformed rather than
    unauthorised), ``code`` and ``message`` go into the S3 ``<Error>`` document.
    """

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _signature_mismatch() -> AuthError:
    return AuthError(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )


def _malformed_header(message: str) -> AuthError:
    return AuthError(
        "AuthorizationHeaderMalformed", f"The authorization header is malformed; {message}", 400
    )


def _malformed_query(message: str) -> AuthError:
    # S3 answers a malformed presigned query 403, unlike a malformed Authorization header.
    return AuthError("AuthorizationQueryParametersError", message)


def _framing(message: str) -> AuthError:
    return AuthError("InvalidRequest", f"Malformed aws-chunked body: {message}", 400)


def _incomplete(message: str) -> AuthError:
    return AuthError("IncompleteBody", message, 400)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _hmac_hex(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def _quote(value: str) -> str:
    return quote(value, safe="-_.~")


def _same_signature(expected: str, claimed: str) -> bool:
    # compare_digest refuses non-ASCII str, and a malformed claim needs no constant time.
    return _SIGNATURE.fullmatch(claimed) is not None and hmac.compare_digest(expected, claimed)


class PayloadChecker:
    """Checks a request body against its signature, fed in chunks of any size.

    This base class accepts any body: it is what an unsigned payload gets.
    """

    def update(self, chunk: bytes) -> None:
        """Take the next piece of the raw request body; may raise :class:`AuthError`."""

    def finish(self) -> None:
        """The body is complete: raise :class:`AuthError` unless it is the signed one."""


class _Sha256Checker(PayloadChecker):
    def __init__(self, expected: str) -> None:
        self._expected = expected.lower()
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def finish(self) -> None:
        if self._hash.hexdigest() != self._expected:
            raise AuthError(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                400,
            )


# States of the aws-chunked parser.
_CHUNK_HEAD = "chunk header"
_CHUNK_DATA = "chunk data"
_CHUNK_END = "end of chunk data"
_FINAL_END = "end of the final chunk"
_TRAILERS = "trailing headers"
_TRAILERS_END = "end of the trailing headers"
_DONE = "done"


class _ChunkedChecker(PayloadChecker):
    """An aws-chunked body: its framing, and with a key the signature of each chunk, each
    chaining the previous one. Without a key (STREAMING-UNSIGNED-PAYLOAD-TRAILER) only the
    framing is checked, so garbage never reaches the decoder behind.

    Incremental: holds at most one line of framing, never the chunk data.
    """

    def __init__(
        self,
        key: bytes | None,
        timestamp: str,
        scope: str,
        seed: str,
        *,
        trailer: bool,
        decoded_length: int | None,
    ) -> None:
        self._key = key
        self._prefix = f"{timestamp}\n{scope}\n"
        self._previous = seed
        self._trailer = trailer
        self._decoded_length = decoded_length
        self._state = _CHUNK_HEAD
        self._line = bytearray()
        self._remaining = 0
        self._claimed = ""
        self._hash = hashlib.sha256()
        self._decoded = 0
        self._trailers: list[tuple[str, str]] = []
        self._failure: AuthError | None = None

    def update(self, chunk: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            self._feed(memoryview(chunk))
        except AuthError as exc:
            self._failure = exc
            raise

    def finish(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._state == _TRAILERS_END and not self._line:
            # The blank line after a signed trailer is optional in practice.
            self._state = _DONE
        if self._state != _DONE:
            raise _incomplete(f"The request body ended in the {self._state}.")
        if self._decoded_length is not None and self._decoded != self._decoded_length:
            raise _incomplete(
                f"The chunks hold {self._decoded} bytes, x-amz-decoded-content-length says "
                f"{self._decoded_length}."
            )

    def _feed(self, view: memoryview) -> None:
        while len(view):
            if self._state == _CHUNK_DATA:
                take = view[: self._remaining]
                if self._key is not None:
                    self._hash.update(take)
                self._remaining -= len(take)
                view = view[len(take) :]
                if self._remaining == 0:
                    self._check_chunk(self._hash.hexdigest())
                    self._state = _CHUNK_END
                continue
            if self._state == _DONE:
                raise _framing("bytes after the final chunk.")
            room = _MAX_LINE - len(self._line)
            window = bytes(view[: room + 1])
            end = window.find(b"\n")
            if end < 0:
                if len(window) > room:
                    raise _framing(f"a line longer than {_MAX_LINE} bytes in the {self._state}.")
                self._line += window
                return
            self._line += window[: end + 1]
            view = view[end + 1 :]
            line = bytes(self._line)
            self._line.clear()
            if not line.endswith(b"\r\n"):
                raise _framing(f"a line not ended by CRLF in the {self._state}.")
            self._on_line(line[:-2])

    def _on_line(self, line: bytes) -> None:
        state = self._state
        if state == _CHUNK_HEAD:
            self._on_chunk_header(line)
        elif state in (_CHUNK_END, _FINAL_END):
            if line:
                raise _framing(f"chunk data longer than its declared size ({state}).")
            self._state = _CHUNK_HEAD if state == _CHUNK_END else _DONE
        elif state == _TRAILERS:
            self._on_trailer(line)
        elif state == _TRAILERS_END:
            if line:
                raise _framing("a line after x-amz-trailer-signature.")
            self._state = _DONE

    def _on_chunk_header(self, line: bytes) -> None:
        if self._key is None:
            match = _UNSIGNED_CHUNK_HEADER.fullmatch(line)
            if match is None:
                raise _framing("a chunk header is not '<hex size>'.")
        else:
            match = _CHUNK_HEADER.fullmatch(line)
            if match is None:
                raise _framing("a chunk header is not '<hex size>;chunk-signature=<signature>'.")
            self._claimed = match[2].decode("latin-1")
        size = int(match[1], 16)
        self._decoded += size
        if self._decoded_length is not None and self._decoded > self._decoded_length:
            raise _framing(
                f"the chunks hold more than the {self._decoded_length} bytes "
                "x-amz-decoded-content-length says."
            )
        if size:
            self._remaining = size
            self._hash = hashlib.sha256()
            self._state = _CHUNK_DATA
            return
        self._check_chunk(_EMPTY_SHA256)
        self._state = _TRAILERS if self._trailer else _FINAL_END

    def _check_chunk(self, data_sha256: str) -> None:
        if self._key is None:
            return
        expected = _hmac_hex(
            self._key,
            f"{_CHUNK_ALGORITHM}\n{self._prefix}{self._previous}\n{_EMPTY_SHA256}\n{data_sha256}",
        )
        if not _same_signature(expected, self._claimed):
            raise _signature_mismatch()
        self._previous = expected

    def _on_trailer(self, line: bytes) -> None:
        if not line:
            if self._key is None:
                self._state = _DONE
                return
            # Clients differ on a blank line between the final chunk and the trailers.
            if self._trailers:
                raise _framing("a blank line among the trailing headers.")
            return
        match = _TRAILER_LINE.fullmatch(line)
        if match is None:
            raise _framing("a trailing header is not 'name:value'.")
        name = match[1].decode("ascii").lower()
        value = match[2].decode("latin-1").strip()
        if name != "x-amz-trailer-signature" or self._key is None:
            if len(self._trailers) >= _MAX_TRAILERS:
                raise _framing("too many trailing headers.")
            self._trailers.append((name, value))
            return
        canonical = "".join(f"{n}:{v}\n" for n, v in sorted(self._trailers))
        expected = _hmac_hex(
            self._key,
            f"{_TRAILER_ALGORITHM}\n{self._prefix}{self._previous}\n"
            + hashlib.sha256(canonical.encode()).hexdigest(),
        )
        if not _same_signature(expected, value):
            raise _signature_mismatch()
        self._state = _TRAILERS_END


class SignedRequest:
    """A request whose headers (or presigned query) carry a valid signature."""

    def __init__(
        self,
        access_key: str,
        *,
        payload_hash: str = _UNSIGNED,
        signing_key: bytes = b"",
        timestamp: str = "",
        scope: str = "",
        signature: str = "",
        decoded_length: int | None = None,
    ) -> None:
        self.access_key = access_key
        self.payload_hash = payload_hash
        self._signing_key = signing_key
        self._timestamp = timestamp
        self._scope = scope
        self._signature = signature
        self._decoded_length = decoded_length

    def payload_checker(self) -> PayloadChecker:
        """A fresh checker for this request's body."""
        mode = self.payload_hash
        if mode == _UNSIGNED_TRAILER:
            return _ChunkedChecker(
                None, "", "", "", trailer=True, decoded_length=self._decoded_length
            )
        if mode in (_SIGNED_CHUNKS, _SIGNED_CHUNKS_TRAILER):
            return _ChunkedChecker(
                self._signing_key,
                self._timestamp,
                self._scope,
                self._signature,
                trailer=mode == _SIGNED_CHUNKS_TRAILER,
                decoded_length=self._decoded_length,
            )
        if _HEX_SHA256.fullmatch(mode):
            return _Sha256Checker(mode)
        return PayloadChecker()


class SigV4Verifier:
    """Checks AWS Signature Version 4 against a fixed set of key pairs.

    ``clock`` returns the server time in seconds since the epoch (tests move it).
    """

    def __init__(self, keys: Mapping[str, str], *, clock: Callable[[], float] = time.time) -> None:
        for access_key, secret in keys.items():
            if not (access_key.isascii() and secret.isascii()):
                raise ValueError("access keys and secrets must be ASCII")
        self._keys = dict(keys)
        self._clock = clock

    def verify(self, environ: Mapping[str, object]) -> SignedRequest:
        """Check the signature of a request's headers or presigned query.

        Returns the :class:`SignedRequest` (whose body still needs checking), or raises
        :class:`AuthError`.
        """
        query = str(environ.get("QUERY_STRING", ""))
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        decoded_length: int | None = None
        if header.startswith(_ALGORITHM + " "):
            fields = _parse_authorization(header)
            missing = [f for f in ("Credential", "SignedHeaders", "Signature") if f not in fields]
            if missing:
                raise _malformed_header(f"missing {', '.join(missing)}.")
            credential = fields["Credential"]
            signed_headers = fields["SignedHeaders"]
            signature = fields["Signature"]
            timestamp = self._header_timestamp(environ)
            payload_hash = _payload_hash(environ)
            if payload_hash in (_SIGNED_CHUNKS, _SIGNED_CHUNKS_TRAILER):
                decoded_length = _decoded_length(environ, required=True)
            elif payload_hash == _UNSIGNED_TRAILER:
                decoded_length = _decoded_length(environ, required=False)
            canonical_pairs = pairs
            malformed = _malformed_header
        elif params.get("X-Amz-Algorithm") == _ALGORITHM:
            missing = [
                f"X-Amz-{f}"
                for f in ("Credential", "SignedHeaders", "Signature", "Date", "Expires")
                if f"X-Amz-{f}" not in params
            ]
            if missing:
                raise _malformed_query(
                    f"Query-string authentication requires {', '.join(missing)}."
                )
            credential = params["X-Amz-Credential"]
            signed_headers = params["X-Amz-SignedHeaders"]
            signature = params["X-Amz-Signature"]
            timestamp = params["X-Amz-Date"]
            self._check_presigned_time(timestamp, params["X-Amz-Expires"])
            payload_hash = _UNSIGNED
            canonical_pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
            malformed = _malformed_query
        elif header or "X-Amz-Algorithm" in params:
            raise AuthError(
                "AccessDenied", "Only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported."
            )
        else:
            raise AuthError("AccessDenied", "Access Denied: the request is not signed.")

        access_key, _, scope = credential.partition("/")
        scope_parts = scope.split("/")
        if len(scope_parts) != 4 or scope_parts[3] != "aws4_request":
            raise malformed(
                "the Credential must be '<key>/<yyyymmdd>/<region>/<service>/aws4_request'."
            )
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
            [_ALGORITHM, timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = ("AWS4" + secret).encode()
        for part in scope_parts:
            key = _hmac(key, part)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not _same_signature(expected, signature):
            raise _signature_mismatch()
        return SignedRequest(
            access_key,
            payload_hash=payload_hash,
            signing_key=key,
            timestamp=timestamp,
            scope=scope,
            signature=expected,
            decoded_length=decoded_length,
        )

    def verify_post_policy(self, fields: Mapping[str, str]) -> str:
        """Check a browser form upload (POST policy): the signature is the HMAC of the
        base64 policy with the signing key of ``x-amz-credential``. Returns the access key."""
        lowered = {name.lower(): value for name, value in fields.items()}
        if lowered.get("x-amz-algorithm") != _ALGORITHM:
            raise AuthError(
                "AccessDenied",
                "Only AWS Signature Version 4 (AWS4-HMAC-SHA256) form uploads are supported.",
            )
        missing = [
            name
            for name in ("policy", "x-amz-credential", "x-amz-date", "x-amz-signature")
            if not lowered.get(name)
        ]
        if missing:
            raise AuthError(
                "AccessDenied", f"A signed form upload needs the fields {', '.join(missing)}."
            )
        access_key, _, scope = lowered["x-amz-credential"].partition("/")
        scope_parts = scope.split("/")
        if len(scope_parts) != 4 or scope_parts[3] != "aws4_request":
            raise AuthError(
                "AccessDenied",
                "x-amz-credential must be '<key>/<yyyymmdd>/<region>/<service>/aws4_request'.",
            )
        secret = self._keys.get(access_key)
        if secret is None:
            raise AuthError(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        key = ("AWS4" + secret).encode()
        for part in scope_parts:
            key = _hmac(key, part)
        expected = _hmac_hex(key, lowered["policy"])
        if not _same_signature(expected, lowered["x-amz-signature"]):
            raise _signature_mismatch()
        return access_key

    def _header_timestamp(self, environ: Mapping[str, object]) -> str:
        """The request time as ``yyyymmddThhmmssZ``, checked against the server clock."""
        amz_date = str(environ.get("HTTP_X_AMZ_DATE", ""))
        if amz_date:
            seconds = _parse_amz_date(amz_date)
            timestamp = amz_date
        else:
            seconds = _parse_http_date(str(environ.get("HTTP_DATE", "")))
            timestamp = (
                time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds)) if seconds is not None else ""
            )
        if seconds is None:
            raise AuthError(
                "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
            )
        if abs(seconds - self._clock()) > MAX_SKEW_SECONDS:
            raise AuthError(
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            )
        return timestamp

    def _check_presigned_time(self, amz_date: str, expires: str) -> None:
        signed_at = _parse_amz_date(amz_date)
        if signed_at is None:
            raise _malformed_query(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
            )
        if not _DIGITS.fullmatch(expires):
            raise _malformed_query("X-Amz-Expires should be a number of seconds from 0 to 604800")
        if int(expires) > MAX_EXPIRES_SECONDS:
            raise _malformed_query(
                "X-Amz-Expires must be less than a week (in seconds); that is, the given "
                f"X-Amz-Expires must be less than {MAX_EXPIRES_SECONDS} seconds"
            )
        now = self._clock()
        if signed_at - now > MAX_SKEW_SECONDS:
            raise AuthError("AccessDenied", "Request is not valid yet")
        if now > signed_at + int(expires):
            raise AuthError("AccessDenied", "Request has expired")


def _parse_authorization(header: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in header[len(_ALGORITHM) :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    return fields


def _parse_amz_date(value: str) -> float | None:
    if not _AMZ_DATE.fullmatch(value):
        return None
    try:
        parsed = time.strptime(value, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None
    return float(calendar.timegm(parsed))


def _parse_http_date(value: str) -> float | None:
    if not value.isascii():
        return None
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    try:
        return float(calendar.timegm(parsed[:9])) - (parsed[9] or 0)
    except (ValueError, OverflowError):
        return None


def _payload_hash(environ: Mapping[str, object]) -> str:
    value = environ.get("HTTP_X_AMZ_CONTENT_SHA256")
    if value is None:
        raise AuthError(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400
        )
    text = str(value)
    known = (_UNSIGNED, _UNSIGNED_TRAILER, _SIGNED_CHUNKS, _SIGNED_CHUNKS_TRAILER)
    if text not in known and not _HEX_SHA256.fullmatch(text):
        raise AuthError(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER) or a valid sha256 value.",
            400,
        )
    return text


def _decoded_length(environ: Mapping[str, object], *, required: bool) -> int | None:
    # Signed chunks cannot be decoded without it; botocore leaves it out of an unsigned
    # stream whose length it does not know.
    value = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH")
    if value is None and not required:
        return None
    if value is None:
        raise AuthError(
            "InvalidRequest",
            "Missing required header for this request: x-amz-decoded-content-length",
            400,
        )
    if not _DIGITS.fullmatch(str(value)):
        raise AuthError(
            "InvalidArgument", "x-amz-decoded-content-length must be a number of bytes.", 400
        )
    return int(str(value))


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
