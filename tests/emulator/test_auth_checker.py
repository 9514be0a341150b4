"""SigV4 verification and body checks as units, without a server.

The streaming cases use the worked examples AWS publishes for S3 ("Signature Calculations for
the Authorization Header: Transferring Payload in Multiple Chunks" and "... Including
Trailing Headers"): their seed, chunk and trailer signatures were computed by AWS, so a pass
means the chain matches the real service, not merely this module.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import hmac
import io
import random
import tracemalloc
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pytest_tigris.emulator.auth import (
    AuthError,
    PayloadChecker,
    SignedRequest,
    SigV4Verifier,
)

# -- AWS's published example ---------------------------------------------------------------

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_TIME = float(calendar.timegm((2013, 5, 24, 0, 0, 0)))
AWS_SCOPE = "20130524/us-east-1/s3/aws4_request"
AWS_DATA = b"a" * 66560

PLAIN = {
    "mode": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "signed": "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
    "x-amz-decoded-content-length;x-amz-storage-class",
    "seed": "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    "chunks": [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ],
}
TRAILER = {
    "mode": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "signed": "content-encoding;host;x-amz-content-sha256;x-amz-date;"
    "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
    "seed": "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
    "chunks": [
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
    ],
    "trailer": b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
    b"\r\n\r\n",
}


def _aws_environ(example: dict[str, Any]) -> dict[str, str]:
    environ = {
        "REQUEST_METHOD": "PUT",
        "RAW_URI": "/examplebucket/chunkObject.txt",
        "QUERY_STRING": "",
        "HTTP_HOST": "s3.amazonaws.com",
        "HTTP_X_AMZ_DATE": "20130524T000000Z",
        "HTTP_X_AMZ_STORAGE_CLASS": "REDUCED_REDUNDANCY",
        "HTTP_X_AMZ_CONTENT_SHA256": example["mode"],
        "HTTP_CONTENT_ENCODING": "aws-chunked",
        "HTTP_X_AMZ_DECODED_CONTENT_LENGTH": "66560",
        "CONTENT_LENGTH": "66824",
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={AWS_KEY}/{AWS_SCOPE},"
        f"SignedHeaders={example['signed']},Signature={example['seed']}",
    }
    if "trailer" in example:
        environ["HTTP_X_AMZ_TRAILER"] = "x-amz-checksum-crc32c"
    return environ


def _aws_body(example: dict[str, Any]) -> bytes:
    first, second, final = (s.encode() for s in example["chunks"])
    body = (
        b"10000;chunk-signature=" + first + b"\r\n" + AWS_DATA[:65536] + b"\r\n"
        b"400;chunk-signature=" + second + b"\r\n" + AWS_DATA[65536:] + b"\r\n"
        b"0;chunk-signature=" + final + b"\r\n"
    )
    return body + example.get("trailer", b"\r\n")


def _aws_verifier(now: float = AWS_TIME) -> SigV4Verifier:
    return SigV4Verifier({AWS_KEY: AWS_SECRET}, clock=lambda: now)


def _aws_checker(example: dict[str, Any]) -> PayloadChecker:
    return _aws_verifier().verify(_aws_environ(example)).payload_checker()


def _feed(checker: PayloadChecker, body: bytes, size: int) -> None:
    for start in range(0, len(body), size):
        checker.update(body[start : start + size])
    checker.finish()


def _rejects(checker: PayloadChecker, body: bytes, size: int = 4096) -> tuple[int, str]:
    with pytest.raises(AuthError) as exc_info:
        _feed(checker, body, size)
    return exc_info.value.status, exc_info.value.code


EXAMPLES = [pytest.param(PLAIN, id="chunks"), pytest.param(TRAILER, id="chunks+trailer")]


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("size", [1, 7, 90, 65536, 1 << 20])
def test_aws_example_verifies_in_any_piece_size(example: dict[str, Any], size: int) -> None:
    signed = _aws_verifier().verify(_aws_environ(example))
    assert signed.access_key == AWS_KEY
    _feed(signed.payload_checker(), _aws_body(example), size)


def test_trailer_after_a_blank_line_verifies() -> None:
    """Some clients put CRLF between the final chunk and the trailers; S3 accepts both."""
    body = _aws_body(TRAILER)
    final = body.index(b"x-amz-checksum-crc32c")
    _feed(_aws_checker(TRAILER), body[:final] + b"\r\n" + body[final:], 1000)


@pytest.mark.parametrize("example", EXAMPLES)
def test_changed_chunk_data_is_signature_mismatch(example: dict[str, Any]) -> None:
    body = bytearray(_aws_body(example))
    body[66_000] = ord("b")  # inside the 1 KiB chunk
    assert _rejects(_aws_checker(example), bytes(body)) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("chunk", [0, 1, 2])
def test_forged_chunk_signature(example: dict[str, Any], chunk: int) -> None:
    signature = example["chunks"][chunk]
    forged = ("0" if signature[0] != "0" else "1") + signature[1:]
    body = _aws_body(example).replace(signature.encode(), forged.encode())
    assert _rejects(_aws_checker(example), body) == (403, "SignatureDoesNotMatch")


def test_chunks_out_of_order_do_not_verify() -> None:
    """The chain: the same chunks with their own signatures, swapped, fail."""
    first, second, final = (s.encode() for s in PLAIN["chunks"])
    small = b"400;chunk-signature=" + second + b"\r\n" + b"a" * 1024 + b"\r\n"
    big = b"10000;chunk-signature=" + first + b"\r\n" + b"a" * 65536 + b"\r\n"
    body = small + big + b"0;chunk-signature=" + final + b"\r\n\r\n"
    assert _rejects(_aws_checker(PLAIN), body) == (403, "SignatureDoesNotMatch")


def test_changed_trailer_value_is_signature_mismatch() -> None:
    body = _aws_body(TRAILER).replace(b"sOO8/Q==", b"sOO8/A==")
    assert _rejects(_aws_checker(TRAILER), body) == (403, "SignatureDoesNotMatch")


def test_unsigned_trailer_in_signed_trailer_mode_is_incomplete() -> None:
    body = _aws_body(TRAILER)
    cut = body.index(b"x-amz-trailer-signature")
    assert _rejects(_aws_checker(TRAILER), body[:cut]) == (400, "IncompleteBody")


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize(
    "cut",
    [1, 10, 90, 100, 65_000, 66_000, -200, -100, -2],
    ids=lambda c: f"cut{c}",
)
def test_truncated_body_is_incomplete(example: dict[str, Any], cut: int) -> None:
    body = _aws_body(example)
    if "trailer" in example and cut == -2:
        cut = -100  # a signed trailer may end without the last blank line
    assert _rejects(_aws_checker(example), body[:cut]) == (400, "IncompleteBody")


def test_empty_body_is_incomplete() -> None:
    assert _rejects(_aws_checker(PLAIN), b"") == (400, "IncompleteBody")


GARBLED = [
    pytest.param(lambda b: b"zz" + b, id="size-not-hex"),
    pytest.param(lambda b: b.replace(b";chunk-signature=", b";signature=", 1), id="no-sig-name"),
    pytest.param(lambda b: b.replace(b"\r\n", b"\n", 1), id="lf-only"),
    pytest.param(lambda b: b.replace(b"10000;", b"fffff;", 1), id="size-too-big"),
    pytest.param(lambda b: b + b"extra", id="bytes-after-end"),
    pytest.param(lambda b: b"1" * 10_000 + b, id="endless-header"),
    pytest.param(lambda b: b.replace(b"10000;", b"-10000;", 1), id="negative-size"),
    pytest.param(lambda b: b.replace(b"10000;", b"10000000000000000000;", 1), id="huge-size"),
]


@pytest.mark.parametrize("garble", GARBLED)
def test_garbled_framing_is_invalid_request(garble: Any) -> None:
    assert _rejects(_aws_checker(PLAIN), garble(_aws_body(PLAIN))) == (400, "InvalidRequest")


def test_chunk_shorter_than_its_data_is_signature_mismatch() -> None:
    """The signature covers the declared bytes, so it fails before the framing does."""
    body = _aws_body(PLAIN).replace(b"400;", b"3ff;", 1)
    assert _rejects(_aws_checker(PLAIN), body) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    "signature",
    ["\u00e9" * 64, "A" * 64, "0" * 63, "0" * 65, "", "\x00" * 64, "g" * 64],
    ids=["latin1", "upper", "short", "long", "empty", "nul", "not-hex"],
)
def test_malformed_chunk_signature_is_mismatch(signature: str) -> None:
    body = _aws_body(PLAIN).replace(PLAIN["chunks"][0].encode(), signature.encode("latin-1"))
    assert _rejects(_aws_checker(PLAIN), body) == (403, "SignatureDoesNotMatch")


def _aws_signing_key() -> bytes:
    key = b"AWS4" + AWS_SECRET.encode()
    for part in AWS_SCOPE.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@pytest.mark.parametrize(
    ("declared", "outcome"),
    [(66561, (400, "IncompleteBody")), (66559, (400, "InvalidRequest"))],
)
def test_decoded_length_must_match(declared: int, outcome: tuple[int, str]) -> None:
    """x-amz-decoded-content-length is signed; a signer that lied about it is refused."""
    signed = SignedRequest(
        AWS_KEY,
        payload_hash=PLAIN["mode"],
        signing_key=_aws_signing_key(),
        timestamp="20130524T000000Z",
        scope=AWS_SCOPE,
        signature=PLAIN["seed"],
        decoded_length=declared,
    )
    assert _rejects(signed.payload_checker(), _aws_body(PLAIN)) == outcome


def test_errors_stick_after_the_first() -> None:
    checker = _aws_checker(PLAIN)
    with pytest.raises(AuthError):
        checker.update(b"not a chunk header\r\n")
    with pytest.raises(AuthError):
        checker.update(b"10000;")
    with pytest.raises(AuthError):
        checker.finish()


def _signed_chunks(total: int, chunk: int) -> tuple[SignedRequest, Iterator[bytes]]:
    """A valid signed aws-chunked body of ``total`` bytes, produced lazily."""
    key = _aws_signing_key()
    seed = "f" * 64
    signed = SignedRequest(
        AWS_KEY,
        payload_hash=PLAIN["mode"],
        signing_key=key,
        timestamp="20130524T000000Z",
        scope=AWS_SCOPE,
        signature=seed,
        decoded_length=total,
    )
    piece = bytes(range(256)) * (chunk // 256)
    empty = hashlib.sha256(b"").hexdigest()

    def sign(previous: str, data_hash: str) -> str:
        text = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", "20130524T000000Z", AWS_SCOPE, previous, empty, data_hash]
        )
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    def body() -> Iterator[bytes]:
        previous = seed
        piece_hash = hashlib.sha256(piece).hexdigest()
        for _ in range(total // chunk):
            previous = sign(previous, piece_hash)
            yield f"{chunk:x};chunk-signature={previous}\r\n".encode()
            yield piece
            yield b"\r\n"
        yield f"0;chunk-signature={sign(previous, empty)}\r\n\r\n".encode()

    return signed, body()


def test_big_body_is_checked_without_holding_it() -> None:
    """256 MiB in 8 MiB chunks, fed in 1 MiB pieces: memory stays near one piece."""
    mib = 1 << 20
    signed, body = _signed_chunks(256 * mib, 8 * mib)
    checker = signed.payload_checker()
    tracemalloc.start()
    try:
        for part in body:
            for start in range(0, len(part), mib):
                checker.update(part[start : start + mib])
        checker.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * mib, f"peak {peak / mib:.1f} MiB"


# -- whole-body sha256 ---------------------------------------------------------------------


def test_sha256_payload_matches() -> None:
    checker = SignedRequest(
        "k", payload_hash=hashlib.sha256(b"hello").hexdigest()
    ).payload_checker()
    _feed(checker, b"hello", 2)


def test_sha256_payload_uppercase_hex_matches() -> None:
    digest = hashlib.sha256(b"hello").hexdigest().upper()
    _feed(SignedRequest("k", payload_hash=digest).payload_checker(), b"hello", 5)


@pytest.mark.parametrize("body", [b"hellO", b"hell", b"hello!", b""])
def test_sha256_payload_mismatch(body: bytes) -> None:
    checker = SignedRequest(
        "k", payload_hash=hashlib.sha256(b"hello").hexdigest()
    ).payload_checker()
    assert _rejects(checker, body) == (400, "XAmzContentSHA256Mismatch")


def test_unsigned_payload_is_not_checked() -> None:
    checker = SignedRequest("k", payload_hash="UNSIGNED-PAYLOAD").payload_checker()
    _feed(checker, b"anything at all", 3)


# -- requests signed by botocore -----------------------------------------------------------

KEY = "tid_UnitKey"
SECRET = "tsec_unit/secret+="
NOW = float(calendar.timegm((2026, 3, 1, 12, 0, 0)))


def _botocore_environ(
    *,
    signed_at: float = NOW,
    body: bytes = b"hello",
    date_header: bool = False,
    url: str = "http://127.0.0.1:9000/bucket/some%20key.txt",
) -> dict[str, str]:
    """The WSGI environ of a PUT botocore signs at ``signed_at``."""
    request = AWSRequest(method="PUT", url=url, data=body)
    if date_header:
        request.headers["Date"] = "placeholder"  # botocore then signs with Date
    auth = S3SigV4Auth(Credentials(KEY, SECRET), "s3", "auto")
    moment = datetime.datetime.fromtimestamp(signed_at, tz=datetime.timezone.utc)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.get_current_datetime", lambda: moment.replace(tzinfo=None))
        auth.add_auth(request)
    path, _, query = url.split("9000", 1)[1].partition("?")
    environ = {
        "REQUEST_METHOD": "PUT",
        "RAW_URI": path + ("?" + query if query else ""),
        "QUERY_STRING": query,
        "HTTP_HOST": "127.0.0.1:9000",
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in request.headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def _verifier(now: float = NOW) -> SigV4Verifier:
    return SigV4Verifier({KEY: SECRET}, clock=lambda: now)


def _refused(environ: dict[str, str], now: float = NOW) -> tuple[int, str]:
    with pytest.raises(AuthError) as exc_info:
        _verifier(now).verify(environ)
    return exc_info.value.status, exc_info.value.code


def test_botocore_put_verifies_and_body_is_checked() -> None:
    signed = _verifier().verify(_botocore_environ())
    assert signed.access_key == KEY
    assert signed.payload_hash == hashlib.sha256(b"hello").hexdigest()
    _feed(signed.payload_checker(), b"hello", 1)
    assert _rejects(signed.payload_checker(), b"HELLO") == (400, "XAmzContentSHA256Mismatch")


@pytest.mark.parametrize("minutes", [-14, 14])
def test_clock_within_15_minutes_verifies(minutes: int) -> None:
    _verifier(NOW + minutes * 60).verify(_botocore_environ())


@pytest.mark.parametrize("minutes", [-16, 16, -60 * 24 * 365 * 30])
def test_clock_skew_beyond_15_minutes(minutes: int) -> None:
    assert _refused(_botocore_environ(), NOW + minutes * 60) == (403, "RequestTimeTooSkewed")


def test_date_header_instead_of_x_amz_date() -> None:
    environ = _botocore_environ(date_header=True)
    assert "HTTP_X_AMZ_DATE" not in environ
    assert environ["HTTP_DATE"] == formatdate(NOW)
    assert _verifier().verify(environ).access_key == KEY
    assert _refused(environ, NOW + 16 * 60) == (403, "RequestTimeTooSkewed")


@pytest.mark.parametrize("value", ["", "yesterday", "20260301T120000", "2026-03-01T12:00:00Z"])
def test_bad_x_amz_date(value: str) -> None:
    environ = _botocore_environ()
    environ["HTTP_X_AMZ_DATE"] = value
    if not value:
        del environ["HTTP_X_AMZ_DATE"]
    assert _refused(environ) == (403, "AccessDenied")


def test_missing_content_sha256() -> None:
    environ = _botocore_environ()
    del environ["HTTP_X_AMZ_CONTENT_SHA256"]
    assert _refused(environ) == (400, "InvalidRequest")


@pytest.mark.parametrize("value", ["", "abc", "STREAMING-PAYLOAD", "z" * 64, "UNSIGNED-payload"])
def test_bad_content_sha256_value(value: str) -> None:
    environ = _botocore_environ()
    environ["HTTP_X_AMZ_CONTENT_SHA256"] = value
    assert _refused(environ) == (400, "InvalidArgument")


def test_streaming_needs_decoded_length() -> None:
    environ = _aws_environ(PLAIN)
    del environ["HTTP_X_AMZ_DECODED_CONTENT_LENGTH"]
    with pytest.raises(AuthError) as exc_info:
        _aws_verifier().verify(environ)
    assert (exc_info.value.status, exc_info.value.code) == (400, "InvalidRequest")


def _with_signature(environ: dict[str, str], signature: str) -> dict[str, str]:
    header = environ["HTTP_AUTHORIZATION"]
    environ["HTTP_AUTHORIZATION"] = header[: header.index("Signature=") + 10] + signature
    return environ


@pytest.mark.parametrize(
    "signature",
    ["\u00e9" * 64, "\u00ff" * 10, "A" * 64, "", "0" * 64 + "\u00e9"],
    ids=["latin1", "latin1-short", "upper-hex", "empty", "trailing-latin1"],
)
def test_malformed_header_signature(signature: str) -> None:
    environ = _with_signature(_botocore_environ(), signature)
    assert _refused(environ) == (403, "SignatureDoesNotMatch")


def test_non_ascii_access_key() -> None:
    environ = _botocore_environ()
    environ["HTTP_AUTHORIZATION"] = environ["HTTP_AUTHORIZATION"].replace(KEY, "tid_\u00e9")
    assert _refused(environ) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 SignedHeaders=host,Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=tid_UnitKey/20260301/auto/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=tid_UnitKey,SignedHeaders=host,Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=tid_UnitKey/20260301/auto/s3/other,SignedHeaders=host,"
        "Signature=" + "0" * 64,
    ],
    ids=["no-credential", "no-signature", "no-scope", "bad-terminator"],
)
def test_malformed_authorization_header(authorization: str) -> None:
    environ = _botocore_environ()
    environ["HTTP_AUTHORIZATION"] = authorization
    assert _refused(environ) == (400, "AuthorizationHeaderMalformed")


def test_keys_must_be_ascii() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        SigV4Verifier({"k": "s\u00e9cret"})


# -- presigned URLs ------------------------------------------------------------------------


def _presigned_environ(expires: str, signed_at: str = "20260301T120000Z") -> dict[str, str]:
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={KEY}%2F20260301%2Fauto%2Fs3%2Faws4_request"
        f"&X-Amz-Date={signed_at}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + "0" * 64
    )
    return {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/bucket/key?" + query,
        "QUERY_STRING": query,
        "HTTP_HOST": "127.0.0.1:9000",
    }


@pytest.mark.parametrize(
    "expires",
    ["604801", "1" + "0" * 30, "9" * 5000, "-1", "", "1e3", "\u0663", "%C3%A9", "0x10"],
    ids=["week+1", "1e30", "5000-digits", "negative", "empty", "float", "arabic", "utf8", "hex"],
)
def test_presigned_bad_expires(expires: str) -> None:
    assert _refused(_presigned_environ(expires)) == (403, "AuthorizationQueryParametersError")


def test_presigned_week_is_accepted_up_to_the_signature() -> None:
    """604800 is allowed: the request gets as far as the (wrong) signature."""
    assert _refused(_presigned_environ("604800")) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("signed_at", ["99991231T235959Z", "00000101T000000Z", "2026", "x"])
def test_presigned_odd_dates(signed_at: str) -> None:
    environ = _presigned_environ("604800", signed_at)
    expected = {
        "99991231T235959Z": (403, "AccessDenied"),
        "00000101T000000Z": (403, "AuthorizationQueryParametersError"),
        "2026": (403, "AuthorizationQueryParametersError"),
        "x": (403, "AuthorizationQueryParametersError"),
    }[signed_at]
    assert _refused(environ) == expected


@pytest.mark.parametrize("missing", ["Credential", "SignedHeaders", "Signature", "Date", "Expires"])
def test_presigned_missing_parameter(missing: str) -> None:
    environ = _presigned_environ("60")
    query = "&".join(
        p for p in environ["QUERY_STRING"].split("&") if not p.startswith(f"X-Amz-{missing}=")
    )
    environ["QUERY_STRING"] = query
    assert _refused(environ) == (403, "AuthorizationQueryParametersError")


@pytest.mark.parametrize("signature", ["%C3%A9" * 64, "\u00e9" * 64, "%00" * 64, "%FF"])
def test_presigned_malformed_signature(signature: str) -> None:
    environ = _presigned_environ("60")
    environ["QUERY_STRING"] = environ["QUERY_STRING"].replace("0" * 64, signature)
    assert _refused(environ) == (403, "SignatureDoesNotMatch")


# -- fuzz ----------------------------------------------------------------------------------

_ALPHABET = (
    "AWS4-HMAC-SHA256 Credential= SignedHeaders= Signature= /,;=&%:?\r\n\t\x00\x7f"
    "\u00e9\u00ff0123456789abcdef" + KEY
)


def _garbage(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 200)))


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_auth_fields_are_always_4xx(seed: int) -> None:
    rng = random.Random(seed)
    good = _botocore_environ()
    verifier = _verifier()
    for _ in range(500):
        environ = dict(good)
        field = rng.choice(
            [
                "HTTP_AUTHORIZATION",
                "HTTP_X_AMZ_DATE",
                "HTTP_DATE",
                "HTTP_X_AMZ_CONTENT_SHA256",
                "QUERY_STRING",
                "RAW_URI",
                "presigned",
            ]
        )
        if field == "presigned":
            del environ["HTTP_AUTHORIZATION"]
            environ["QUERY_STRING"] = "X-Amz-Algorithm=AWS4-HMAC-SHA256&" + _garbage(rng)
        elif field == "HTTP_AUTHORIZATION" and rng.random() < 0.5:
            environ[field] = "AWS4-HMAC-SHA256 " + _garbage(rng)
        else:
            environ[field] = _garbage(rng)
        try:
            signed = verifier.verify(environ)
        except AuthError as exc:
            assert 400 <= exc.status < 500, (field, environ[field], exc)
            continue
        checker = signed.payload_checker()
        try:
            _feed(checker, _garbage(rng).encode("utf-8"), rng.randrange(1, 50))
        except AuthError as exc:
            assert 400 <= exc.status < 500


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_chunked_bodies_are_always_4xx(seed: int) -> None:
    rng = random.Random(seed)
    good = _aws_body(PLAIN)
    for _ in range(300):
        body = bytearray(good[: rng.randrange(0, 400)] + good[-200:])
        for _ in range(rng.randrange(1, 5)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        with pytest.raises(AuthError) as exc_info:
            _feed(_aws_checker(PLAIN), bytes(body), rng.randrange(1, 64))
        assert 400 <= exc_info.value.status < 500


# -- unsigned aws-chunked (what boto3 sends over https) ------------------------------------


def _botocore_unsigned_stream(data: bytes, *, checksum: bool) -> bytes:
    """The body botocore's own aws-chunked writer makes for a flexible-checksum upload."""
    from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

    wrapper = AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=Crc32Checksum if checksum else None,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=1000,
    )
    return bytes(wrapper.read())


def _unsigned_checker(decoded_length: int | None) -> PayloadChecker:
    return SignedRequest(
        "k", payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER", decoded_length=decoded_length
    ).payload_checker()


@pytest.mark.parametrize("checksum", [True, False], ids=["crc32-trailer", "no-trailer"])
@pytest.mark.parametrize("declared", [True, False], ids=["length", "no-length"])
def test_botocore_unsigned_stream_passes(checksum: bool, declared: bool) -> None:
    data = bytes(range(256)) * 20
    stream = _botocore_unsigned_stream(data, checksum=checksum)
    _feed(_unsigned_checker(len(data) if declared else None), stream, 333)


@pytest.mark.parametrize(
    ("garble", "outcome"),
    [
        (lambda b: b"zz" + b, (400, "InvalidRequest")),
        (lambda b: b[:-30], (400, "IncompleteBody")),
        (lambda b: b"", (400, "IncompleteBody")),
        (lambda b: b.replace(b"\r\n", b"XX", 1), (400, "InvalidRequest")),
        (lambda b: b + b"more", (400, "InvalidRequest")),
        (lambda b: b.replace(b"3e8\r\n", b"3e9\r\n", 1), (400, "InvalidRequest")),
    ],
    ids=["size-not-hex", "truncated", "empty", "no-crlf", "bytes-after-end", "size-off-by-one"],
)
def test_garbled_unsigned_stream(garble: Any, outcome: tuple[int, str]) -> None:
    data = bytes(range(256)) * 20
    stream = garble(_botocore_unsigned_stream(data, checksum=True))
    assert _rejects(_unsigned_checker(len(data)), stream, 100) == outcome


def test_unsigned_stream_shorter_than_declared() -> None:
    stream = _botocore_unsigned_stream(b"x" * 100, checksum=True)
    assert _rejects(_unsigned_checker(101), stream) == (400, "IncompleteBody")
