"""Request and response bodies, read and written in bounded chunks.

A request body is read completely *before* any lock is taken (a client that stalls mid-body
then holds only its own thread), in chunks, spilling to a temporary file past
:data:`MEMORY_LIMIT`. A large object is answered straight from the file its bytes live in, in
chunks, without holding any lock while the client reads.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from .errors import IncompleteBody, RequestTimeout

__all__ = ["CHUNK", "MEMORY_LIMIT", "ObjectStream", "read_body"]

CHUNK = 1024 * 1024
# Bodies up to this size stay in memory while they are read; bigger ones go to a temporary
# file first, so a stalled or slow upload never holds more than this in memory.
MEMORY_LIMIT = 16 * 1024 * 1024


def read_body(environ: dict[str, Any], feed: Callable[[bytes], None] | None = None) -> bytes:
    """Read the whole request body in chunks; ``feed`` sees every chunk (payload checks).

    Leaves the body where the rest of the emulator (and moto) read it: ``environ
    ["pytest_tigris.body"]`` and a fresh ``wsgi.input``. A body shorter than its
    Content-Length is ``IncompleteBody``; a client that stops sending is ``RequestTimeout``.
    """
    cached = environ.get("pytest_tigris.body")
    if cached is not None:
        return bytes(cached)
    stream = environ.get("wsgi.input")
    raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
    if raw_length.isdigit():
        length: int | None = int(raw_length)
    elif environ.get("wsgi.input_terminated"):
        length = None  # chunked transfer encoding: read to the end
    else:
        length = 0
    data = b"" if stream is None or length == 0 else _read(stream, length, feed)
    environ["pytest_tigris.body"] = data
    environ["wsgi.input"] = io.BytesIO(data)
    if length is None:
        environ["CONTENT_LENGTH"] = str(len(data))
    return data


def _read(stream: Any, length: int | None, feed: Callable[[bytes], None] | None) -> bytes:
    buffer: list[bytes] = []
    spool: Any = None
    got = 0
    try:
        while length is None or got < length:
            want = CHUNK if length is None else min(CHUNK, length - got)
            try:
                chunk = stream.read(want)
            except (TimeoutError, OSError):
                raise RequestTimeout() from None
            if not chunk:
                break
            got += len(chunk)
            if feed is not None:
                feed(chunk)
            if spool is not None:
                spool.write(chunk)
            elif got > MEMORY_LIMIT:
                spool = tempfile.TemporaryFile(prefix="pytest-tigris-body-")  # noqa: SIM115
                for part in buffer:
                    spool.write(part)
                buffer.clear()
                spool.write(chunk)
            else:
                buffer.append(chunk)
        if length is not None and got < length:
            raise IncompleteBody(length, got)
        if spool is None:
            return b"".join(buffer)
        # One allocation of exactly the body's size: moto needs the body as bytes.
        spool.seek(0)
        return bytes(spool.read())
    finally:
        if spool is not None:
            spool.close()


class ObjectStream:
    """A response body read from a stored object's file in chunks.

    ``release`` lets go of the hold that keeps the object's bytes alive (called when the
    response ends, even if the client goes away); ``fileno`` is the real file underneath, read
    with ``os.pread`` so concurrent readers never share a file position.
    """

    def __init__(self, release: Callable[[], None], fileno: int, start: int, stop: int) -> None:
        self._release: Callable[[], None] | None = release
        self._fileno = fileno
        self._position = start
        self._stop = stop

    def __iter__(self) -> Iterator[bytes]:
        while self._position < self._stop:
            size = min(CHUNK, self._stop - self._position)
            chunk = os.pread(self._fileno, size, self._position)
            if not chunk:
                return
            self._position += len(chunk)
            yield chunk

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


def hold_file(key: Any) -> tuple[Callable[[], None], int] | None:
    """A hold on ``key``'s bytes and the file descriptor they live in, or None when they are
    in memory (small objects, answered the ordinary way).

    The hold is a bytes-sharing clone of the key (see ``store.clone_key``): an overwrite or
    delete of the key while the response streams leaves the file open for this reader.
    """
    from .store import clone_key

    spooled = key._value_buffer
    spooled = getattr(getattr(spooled, "shared", None), "file", spooled)
    if not getattr(spooled, "_rolled", False):
        return None
    clone = clone_key(key, key.bucket_name)
    with key.lock:
        # Whatever the buffered writer still holds must reach the file before pread sees it.
        spooled.flush()
        fileno = spooled.fileno()
    return clone.dispose, fileno
