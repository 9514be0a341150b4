"""Conditional writes and copies, checked before moto sees the request.

moto checks ``If-Match`` and ``If-None-Match: *`` on PutObject and
``x-amz-copy-source-if-none-match`` on CopyObject; S3 checks more, and real apps rely on it:
``Content-MD5``, ``If-Unmodified-Since`` on PUT, the four ``x-amz-copy-source-if-*`` headers
on CopyObject and UploadPartCopy. Every check reads the object the request would act on
through the bucket's own key store, so inherited keys of a fork are seen as the fork sees
them.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .errors import BadDigest, InvalidArgument, InvalidDigest, PreconditionFailed

__all__ = ["CopySource", "check_copy_source", "check_put", "parse_copy_source"]


@dataclass(frozen=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None


def parse_copy_source(value: str) -> CopySource:
    """``x-amz-copy-source``: ``[/]bucket/key[?versionId=V]``, the key percent-encoded."""
    path, _, query = value.partition("?")
    version = None
    if query.startswith("versionId="):
        version = unquote(query[len("versionId=") :])
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        raise InvalidArgument(
            f"x-amz-copy-source {value!r} is not 'bucket/key': give the source bucket and key."
        )
    return CopySource(bucket, key, version)


def check_put(header: dict[str, str], body: bytes, current: Any) -> None:
    """PutObject's conditions: ``Content-MD5``, ``If-None-Match``, ``If-Unmodified-Since``.

    ``current`` is the object the PUT would replace (None when there is none).
    """
    md5 = header.get("content-md5")
    if md5 is not None:
        try:
            expected = base64.b64decode(md5.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidDigest() from None
        if len(expected) != 16:
            raise InvalidDigest()
        if hashlib.md5(body, usedforsecurity=False).digest() != expected:
            raise BadDigest()
    none_match = header.get("if-none-match")
    if none_match is not None and none_match.strip() != "*":
        raise InvalidArgument(
            "If-None-Match on a write accepts only '*' (write only if the key does not exist)."
        )
    unmodified = header.get("if-unmodified-since")
    if unmodified is not None and current is not None:
        since = _http_date(unmodified, "If-Unmodified-Since")
        if _modified(current) > since:
            raise PreconditionFailed("If-Unmodified-Since")


def check_copy_source(header: dict[str, str], source: Any) -> None:
    """The ``x-amz-copy-source-if-*`` conditions against the source object, S3's way: a
    matching If-Match overrides a failing If-Unmodified-Since, and a non-matching
    If-None-Match overrides a failing If-Modified-Since."""
    if source is None:
        return  # moto answers the missing source (404 NoSuchKey)
    etag = str(source.etag).strip('"')
    match = header.get("x-amz-copy-source-if-match")
    none_match = header.get("x-amz-copy-source-if-none-match")
    modified = header.get("x-amz-copy-source-if-modified-since")
    unmodified = header.get("x-amz-copy-source-if-unmodified-since")
    if match is not None:
        if etag not in _etags(match):
            raise PreconditionFailed("x-amz-copy-source-if-match")
    elif unmodified is not None:
        since = _http_date(unmodified, "x-amz-copy-source-if-unmodified-since")
        if _modified(source) > since:
            raise PreconditionFailed("x-amz-copy-source-if-unmodified-since")
    if none_match is not None:
        if etag in _etags(none_match) or none_match.strip() == "*":
            raise PreconditionFailed("x-amz-copy-source-if-none-match")
    elif modified is not None:
        since = _http_date(modified, "x-amz-copy-source-if-modified-since")
        if _modified(source) <= since:
            raise PreconditionFailed("x-amz-copy-source-if-modified-since")


def _etags(value: str) -> set[str]:
    return {part.strip().strip('"') for part in value.split(",") if part.strip()}


def _modified(key: Any) -> datetime.datetime:
    # HTTP dates have whole seconds: compare at that precision, as S3 does.
    value: datetime.datetime = key.last_modified
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.replace(microsecond=0)


def _http_date(value: str, header: str) -> datetime.datetime:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(f"{header}: {value!r} is not an HTTP date.", header) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed
