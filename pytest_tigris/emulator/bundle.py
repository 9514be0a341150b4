"""Tigris's Bundle API (``POST /{bucket}?bundle``): many objects in one tar stream.

The request is checked first, with no lock held. Then, under the backend's shared lock only,
every key is looked up (through fork inheritance and, with ``X-Tigris-Snapshot-Version``, at
that snapshot) and a hold is taken on each object's bytes, so an overwrite or delete while the
answer streams cannot close them. The tar is written from those holds afterwards, entry by
entry and chunk by chunk, with no lock held: neither the archive nor a large object is ever
whole in memory. Every entry's size is known before the first byte is sent, which gives the
plain answer its Content-Length and lets a zstd frame record its content size (clients call
``ZstdDecompressor().decompress``, which refuses a frame without one).
"""

from __future__ import annotations

import calendar
import datetime
import importlib
import json
import os
import tarfile
import time
import uuid
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from xml.sax.saxutils import escape

from moto.s3.models import FakeKey

from .errors import EmulatorError, InvalidArgument, InvalidRequest, MalformedXML
from .store import TigrisKeyStore, clone_key
from .streaming import CHUNK, hold_file

if TYPE_CHECKING:
    from moto.s3.models import FakeBucket

    from .responses import S3Request, TigrisMiddleware

__all__ = [
    "ERRORS_ENTRY",
    "MAX_KEYS",
    "MalformedJSON",
    "ZstdUnavailable",
    "bundle_response",
]

MAX_KEYS = 5000
ERRORS_ENTRY = "__bundle_errors.json"

# Compression -> Content-Type of the answer.
_CONTENT_TYPES = {
    "none": "application/x-tar",
    "gzip": "application/gzip",
    "zstd": "application/zstd",
}
_ON_ERROR = ("skip", "fail")
_END_OF_ARCHIVE = b"\0" * (2 * tarfile.BLOCKSIZE)


class MalformedJSON(EmulatorError):
    status, code = 400, "MalformedJSON"

    def __init__(self, detail: str) -> None:
        super().__init__(f"The bundle request body is not valid JSON ({detail}).")


class ZstdUnavailable(EmulatorError):
    status, code = 501, "NotImplemented"

    def __init__(self) -> None:
        super().__init__(
            "Bundle compression zstd needs the zstandard package in the emulator's Python: "
            "install pytest-tigris[zstd]."
        )


def bundle_response(
    middleware: TigrisMiddleware, request: S3Request, start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """Answer a Bundle request: a 200 tar stream, or an error before any byte of it."""
    compression, on_error = _options(request.header)
    keys = parse_keys(request.body, request.header.get("content-type", ""))
    encoder = _encoder_factory(compression)
    backend = middleware.backend
    version = request.header.get("x-tigris-snapshot-version", "").strip()
    objects: list[_Held] = []
    with backend.lock.shared():
        bucket = backend.bucket(request.bucket)
        at = backend.resolve_snapshot(request.bucket, version) if version else None
        found = [(key, _visible(bucket, key, at)) for key in keys]
        missing = [key for key, stored in found if stored is None]
        if missing and on_error == "fail":
            return _missing_keys(start_response, request.bucket, missing)
        try:
            for key, stored in found:
                if stored is not None:
                    objects.append(_hold(key, stored))
        except BaseException:
            for held in objects:
                held.release()
            raise
    body = _BundleBody(objects, _errors_entry(missing), encoder)
    headers = [
        ("Content-Type", _CONTENT_TYPES[compression]),
        ("x-amz-request-id", _request_id()),
        ("x-tigris-bundle-count", str(len(objects))),
        ("x-tigris-bundle-bytes", str(sum(held.size for held in objects))),
        ("x-tigris-bundle-skipped", str(len(missing))),
    ]
    if compression == "none":
        headers.append(("Content-Length", str(body.tar_size)))
    start_response("200 OK", headers)
    return body


# -- the request --------------------------------------------------------------------------
def _options(header: dict[str, str]) -> tuple[str, str]:
    """``(compression, on_error)`` from the ``X-Tigris-Bundle-*`` headers."""
    fmt = header.get("x-tigris-bundle-format", "").strip().lower()
    if not fmt:
        raise InvalidArgument("X-Tigris-Bundle-Format is required; the only format is tar.")
    if fmt != "tar":
        raise InvalidArgument(f"X-Tigris-Bundle-Format {fmt!r} is not supported; use tar.")
    compression = header.get("x-tigris-bundle-compression", "").strip().lower() or "none"
    if compression not in _CONTENT_TYPES:
        raise InvalidArgument(
            f"X-Tigris-Bundle-Compression {compression!r} is not supported; use none, gzip or zstd."
        )
    on_error = header.get("x-tigris-bundle-on-error", "").strip().lower() or "skip"
    if on_error not in _ON_ERROR:
        raise InvalidArgument(
            f"X-Tigris-Bundle-On-Error {on_error!r} is not supported; use skip or fail."
        )
    return compression, on_error


def parse_keys(body: bytes, content_type: str = "") -> list[str]:
    """The keys a bundle request names, in order: ``{"keys": [...]}`` or Tigris's XML form,
    ``<Bundle><Object><Key>k</Key></Object>...</Bundle>``."""
    text = body.lstrip()
    if "xml" in content_type.lower() or text.startswith(b"<"):
        keys = _xml_keys(body)
    else:
        keys = _json_keys(body)
    if not keys:
        raise InvalidRequest("A bundle request names at least one key.")
    if len(keys) > MAX_KEYS:
        raise InvalidRequest(
            f"A bundle request names at most {MAX_KEYS:,} keys; this one names {len(keys):,}."
        )
    for key in keys:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument(f"Key {key!r} is not valid Unicode text.") from None
    return keys


def _json_keys(body: bytes) -> list[str]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedJSON(str(exc)) from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise InvalidRequest('A bundle request body is {"keys": ["key", ...]}.')
    if not all(isinstance(key, str) for key in keys):
        raise InvalidRequest("Every key in a bundle request is a string.")
    return keys


def _xml_keys(body: bytes) -> list[str]:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedXML("bundle request: no DTDs")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise MalformedXML("bundle request") from None
    if _local(root.tag) != "Bundle":
        raise MalformedXML("bundle request: the root element is Bundle")
    keys = []
    for item in root:
        found = [child for child in item if _local(child.tag) == "Key"]
        if _local(item.tag) != "Object" or len(found) != 1:
            raise MalformedXML("bundle request: each Object holds one Key")
        keys.append(found[0].text or "")
    return keys


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


# -- looking keys up and holding their bytes ----------------------------------------------
def _visible(bucket: FakeBucket, key: str, at: int | None) -> FakeKey | None:
    """The object ``key`` names in ``bucket`` (at clock time ``at``), or None.

    Reads the store directly: moto's own lookups would give a fork its own copy of every
    inherited key they touch, and a read must change nothing.
    """
    store = bucket.keys
    if isinstance(store, TigrisKeyStore):
        found = store.visible(key, at)
    else:
        # A regular bucket keeps no history: a snapshot version reads its current state.
        versions = dict.get(store, key) or []
        found = versions[-1] if versions else None
    if isinstance(found, FakeKey) and not found.disposed:
        return found
    return None


@dataclass
class _Held:
    """One entry of the bundle and a hold on its bytes until they are written."""

    key: str
    size: int
    mtime: int
    read: Callable[[int, int], bytes]
    _release: Callable[[], None] | None

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


def _hold(key: str, stored: FakeKey) -> _Held:
    size, mtime = int(stored.size), _mtime(stored.last_modified)
    held = hold_file(stored)
    if held is not None:
        release, fileno = held
        return _Held(key, size, mtime, lambda offset, n: os.pread(fileno, n, offset), release)
    clone = clone_key(stored, stored.bucket_name)

    def read(offset: int, n: int) -> bytes:
        # Every shell of these bytes shares one key lock and one file position.
        with clone.lock:
            buffer = clone._value_buffer
            buffer.seek(offset)
            return bytes(buffer.read(n))

    return _Held(key, size, mtime, read, clone.dispose)


def _mtime(when: datetime.datetime) -> int:
    if when.tzinfo is None:  # moto's times are naive UTC
        return calendar.timegm(when.utctimetuple())
    return int(when.timestamp())


# -- the answer ---------------------------------------------------------------------------
def _missing_keys(
    start_response: Callable[..., Any], bucket: str, missing: list[str]
) -> Iterable[bytes]:
    request_id = _request_id()
    listed = "".join(f"<Key>{escape(key)}</Key>" for key in missing)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        "<Error><Code>BundleKeyNotFound</Code>"
        f"<Message>{len(missing)} of the requested keys do not exist in bucket "
        f"{escape(bucket)}.</Message>"
        f"<MissingKeys>{listed}</MissingKeys>"
        f"<Resource>/{escape(bucket)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    start_response(
        "404 Not Found",
        [
            ("Content-Type", "application/xml"),
            ("x-amz-request-id", request_id),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def _errors_entry(missing: list[str]) -> bytes | None:
    if not missing:
        return None
    skipped = [{"key": key, "reason": "NoSuchKey"} for key in missing]
    return json.dumps({"skipped": skipped}, separators=(",", ":")).encode()


def _header(name: str, size: int, mtime: int) -> bytes:
    """A tar header for a regular file; PAX records carry names a ustar header cannot."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> int:
    return -size % tarfile.BLOCKSIZE


class _Encoder(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes, /) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _encoder_factory(compression: str) -> Callable[[int], _Encoder]:
    """A maker of the encoder for ``compression``, given the tar's size; raises before any
    lookup when zstd is asked for and cannot be done."""
    if compression == "gzip":
        # wbits 31: one gzip member, header and trailer included.
        return lambda size: zlib.compressobj(6, zlib.DEFLATED, 31)
    if compression == "zstd":
        zstandard = _zstandard()
        return lambda size: zstandard.ZstdCompressor().compressobj(size=size)
    return lambda size: _Identity()


def _zstandard() -> Any:
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        raise ZstdUnavailable() from None


class _BundleBody:
    """The tar written from the holds, encoded, in chunks of about ``CHUNK`` bytes.

    Each object's hold is let go as soon as its bytes are written; ``close`` (called by the
    server when the answer ends, even if the client went away) lets go of the rest.
    """

    def __init__(
        self, objects: list[_Held], errors: bytes | None, encoder: Callable[[int], _Encoder]
    ) -> None:
        self._objects = objects
        now = int(time.time())
        self._headers = [_header(held.key, held.size, held.mtime) for held in objects]
        self._errors = errors
        self._errors_header = _header(ERRORS_ENTRY, len(errors), now) if errors else b""
        self.tar_size = sum(
            len(header) + held.size + _padding(held.size)
            for header, held in zip(self._headers, objects, strict=True)
        )
        if errors:
            self.tar_size += len(self._errors_header) + len(errors) + _padding(len(errors))
        self.tar_size += len(_END_OF_ARCHIVE)
        self._encoder = encoder(self.tar_size)
        self._chunks: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        if self._chunks is None:
            self._chunks = self._encoded()
        return self._chunks

    def close(self) -> None:
        if self._chunks is not None:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        for held in self._objects:
            held.release()

    def _encoded(self) -> Iterator[bytes]:
        encoder = self._encoder
        pending = bytearray()
        for piece in self._tar():
            if len(pending) + len(piece) < CHUNK:
                pending += piece
                continue
            out = encoder.compress(bytes(pending + piece) if pending else piece)
            pending.clear()
            if out:
                yield out
        out = encoder.compress(bytes(pending)) + encoder.flush()
        if out:
            yield out

    def _tar(self) -> Iterator[bytes]:
        for header, held in zip(self._headers, self._objects, strict=True):
            yield header
            offset = 0
            while offset < held.size:
                data = held.read(offset, min(CHUNK, held.size - offset))
                if not data:
                    # The bytes are held, so this is a bug; a short tar would be worse.
                    raise EmulatorError(f"{held.key}: object bytes ended at {offset}")
                offset += len(data)
                yield data
            yield b"\0" * _padding(held.size)
            held.release()
        if self._errors:
            yield self._errors_header
            yield self._errors + b"\0" * _padding(len(self._errors))
        yield _END_OF_ARCHIVE


def _request_id() -> str:
    return uuid.uuid4().hex[:16].upper()
