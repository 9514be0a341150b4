"""imagecat: a small image-catalog service over S3 (the app the example suite tests).

The bucket layout::

    manifest.json        the catalog: {"version": 1, "images": [{"id", "title", "tags", "key"}]}
    images/<id>.png      source images (any 8-bit, non-interlaced PNG)
    thumbs/<id>.png      grayscale thumbnails, at most THUMB_SIZE pixels a side
    index.json           a summary of the catalog for readers that cannot list the bucket

:class:`ImageCatalog` gets its boto3 S3 client and bucket name from the caller and keeps no
other state, so tests can hand it a fork and production code a real bucket. PNG decoding and
encoding are pure Python (``zlib`` and ``struct``), enough for thumbnails.

Run as a command (``python -m imagecat list|index|thumbs|cleanup``), it builds its client from
the environment (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``...) and reads the bucket name
from ``--bucket``, ``TIGRIS_BUCKET`` or ``BUCKET_NAME``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "INDEX_KEY",
    "MANIFEST_KEY",
    "THUMB_SIZE",
    "CatalogEntry",
    "CatalogError",
    "CleanupReport",
    "ImageCatalog",
    "ImageError",
    "ImageExistsError",
    "ManifestEntry",
    "ManifestError",
    "UnknownImageError",
    "decode_png",
    "encode_png",
    "main",
    "make_thumbnails",
    "png_size",
    "thumbnail",
]

MANIFEST_KEY = "manifest.json"
INDEX_KEY = "index.json"
IMAGES_PREFIX = "images/"
THUMBS_PREFIX = "thumbs/"
THUMB_SIZE = 8
MANIFEST_VERSION = 1

# boto3 ships no type stubs; an S3 client is ``Any`` here.
S3Client = Any

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel (8-bit only)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class CatalogError(Exception):
    """Base class of imagecat's errors."""


class ManifestError(CatalogError):
    """``manifest.json`` is not a valid catalog."""


class ImageError(CatalogError):
    """Bytes that are not a PNG imagecat can read."""


class UnknownImageError(CatalogError, KeyError):
    """No catalog entry (with a source image) has this id."""

    def __str__(self) -> str:
        return f"no image {self.args[0]!r} in the catalog"


class ImageExistsError(CatalogError):
    """An image with this id is already in the catalog."""


# -- PNG ----------------------------------------------------------------------------------------
def _chunks(data: bytes) -> Iterable[tuple[bytes, bytes]]:
    if not data.startswith(_PNG_SIGNATURE):
        raise ImageError("not a PNG file (bad signature)")
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        crc_at = pos + 8 + length
        if len(body) != length or crc_at + 4 > len(data):
            raise ImageError(f"truncated PNG chunk {kind!r}")
        (crc,) = struct.unpack(">I", data[crc_at : crc_at + 4])
        if zlib.crc32(kind + body) != crc:
            raise ImageError(f"PNG chunk {kind!r} fails its CRC check")
        yield kind, body
        if kind == b"IEND":
            return
        pos = crc_at + 4
    raise ImageError("truncated PNG (no IEND chunk)")


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the first 24 bytes of a PNG (the IHDR chunk)."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ImageError("not a PNG file (no IHDR header)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise ImageError(f"PNG data is {len(raw)} bytes, expected {height * (stride + 1)}")
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        row = bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = row[x - bpp] if x >= bpp else 0
            up = previous[x]
            if kind == 0:
                continue
            if kind == 1:
                row[x] = (row[x] + left) & 0xFF
            elif kind == 2:
                row[x] = (row[x] + up) & 0xFF
            elif kind == 3:
                row[x] = (row[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                up_left = previous[x - bpp] if x >= bpp else 0
                row[x] = (row[x] + _paeth(left, up, up_left)) & 0xFF
            else:
                raise ImageError(f"unknown PNG filter type {kind} in row {y}")
        rows.append(row)
        previous = row
    return rows


def decode_png(data: bytes) -> tuple[int, int, list[list[int]]]:
    """``(width, height, rows)`` of 8-bit luminance values (alpha composited over white).

    Reads 8-bit, non-interlaced grayscale, RGB, grayscale+alpha and RGBA PNGs.
    """
    header: bytes | None = None
    compressed = bytearray()
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
    if header is None or len(header) != 13:
        raise ImageError("PNG has no valid IHDR chunk")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in _CHANNELS or interlace != 0:
        raise ImageError(
            f"unsupported PNG (bit depth {depth}, colour type {colour}, interlace {interlace}): "
            "imagecat reads 8-bit, non-interlaced grayscale or RGB(A)"
        )
    if width == 0 or height == 0:
        raise ImageError("PNG has no pixels")
    try:
        raw = zlib.decompress(bytes(compressed))
    except zlib.error as exc:
        raise ImageError(f"PNG image data does not decompress: {exc}") from None
    bpp = _CHANNELS[colour]
    gray: list[list[int]] = []
    for row in _unfilter(raw, width, height, bpp):
        out: list[int] = []
        for x in range(0, len(row), bpp):
            px = row[x : x + bpp]
            # ITU-R BT.601 luma, in integers so every platform gets the same thumbnail.
            value = px[0] if colour in (0, 4) else (299 * px[0] + 587 * px[1] + 114 * px[2]) // 1000
            if colour in (4, 6):
                alpha = px[-1]
                value = (value * alpha + 255 * (255 - alpha)) // 255
            out.append(value)
        gray.append(out)
    return width, height, gray


def _zlib_stored(data: bytes) -> bytes:
    # Stored (uncompressed) deflate blocks: thumbnails are a few dozen bytes, and unlike
    # zlib.compress the output is the same on every zlib build (zlib-ng included), so a
    # rebuilt thumbnail has the same bytes, and the same ETag, everywhere.
    out = bytearray(b"\x78\x01")
    blocks = [data[i : i + 0xFFFF] for i in range(0, len(data), 0xFFFF)] or [b""]
    for n, block in enumerate(blocks):
        final = 1 if n == len(blocks) - 1 else 0
        out += struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF) + block
    out += struct.pack(">I", zlib.adler32(data))
    return bytes(out)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(rows: Sequence[Sequence[int]]) -> bytes:
    """An 8-bit grayscale PNG of ``rows`` (deterministic: same pixels, same bytes)."""
    height = len(rows)
    width = len(rows[0]) if rows else 0
    if not width or any(len(row) != width for row in rows):
        raise ImageError("encode_png needs a non-empty rectangle of pixels")
    raw = b"".join(b"\x00" + bytes(row) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", _zlib_stored(raw))
        + _chunk(b"IEND", b"")
    )


def thumbnail(data: bytes, size: int = THUMB_SIZE) -> bytes:
    """A grayscale PNG thumbnail of the PNG ``data``, at most ``size`` pixels a side.

    Each thumbnail pixel is the mean of a ``scale`` x ``scale`` block of the source.
    """
    width, height, pixels = decode_png(data)
    scale = max(1, -(-max(width, height) // size))
    rows: list[list[int]] = []
    for top in range(0, height, scale):
        row: list[int] = []
        for left in range(0, width, scale):
            block = [v for line in pixels[top : top + scale] for v in line[left : left + scale]]
            row.append(round(sum(block) / len(block)))
        rows.append(row)
    return encode_png(rows)


# -- the catalog --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestEntry:
    """One image as ``manifest.json`` lists it."""

    id: str
    title: str
    tags: tuple[str, ...]
    key: str

    @classmethod
    def from_json(cls, item: Any) -> ManifestEntry:
        """Validate one item of the manifest's ``images`` list."""
        if not isinstance(item, dict):
            raise ManifestError(f"manifest item {item!r} is not an object")
        image_id, title, tags = item.get("id"), item.get("title"), item.get("tags", [])
        key = item.get("key", f"{IMAGES_PREFIX}{image_id}.png")
        if not isinstance(image_id, str) or not _ID.match(image_id):
            raise ManifestError(f"manifest item has a bad id: {image_id!r}")
        if not isinstance(title, str):
            raise ManifestError(f"manifest item {image_id!r} has no title")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ManifestError(f"manifest item {image_id!r}: tags must be a list of strings")
        if not isinstance(key, str) or not key:
            raise ManifestError(f"manifest item {image_id!r} has a bad key: {key!r}")
        return cls(id=image_id, title=title, tags=tuple(tags), key=key)

    def to_json(self) -> dict[str, Any]:
        """The manifest item for this entry."""
        return {"id": self.id, "title": self.title, "tags": list(self.tags), "key": self.key}


@dataclass(frozen=True)
class CatalogEntry:
    """An image in the catalog whose source object exists."""

    id: str
    title: str
    tags: tuple[str, ...]
    key: str
    size: int
    width: int
    height: int
    thumbnail: str | None

    def to_json(self) -> dict[str, Any]:
        """This entry as it appears in ``index.json``."""
        return {
            "id": self.id,
            "title": self.title,
            "tags": list(self.tags),
            "key": self.key,
            "bytes": self.size,
            "width": self.width,
            "height": self.height,
            "thumbnail": self.thumbnail,
        }


@dataclass(frozen=True)
class CleanupReport:
    """What :meth:`ImageCatalog.cleanup` removed (or would remove, on a dry run)."""

    deleted_thumbnails: list[str]
    dropped_entries: list[str]

    def __bool__(self) -> bool:
        return bool(self.deleted_thumbnails or self.dropped_entries)


def thumbnail_key(image_id: str) -> str:
    """Where the thumbnail of ``image_id`` lives."""
    return f"{THUMBS_PREFIX}{image_id}.png"


class ImageCatalog:
    """The catalog kept in one bucket. Holds nothing but the client and the bucket name."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def __repr__(self) -> str:
        return f"ImageCatalog(bucket={self.bucket!r})"

    # -- storage --------------------------------------------------------------------------------
    def _read(self, key: str, *, byte_range: str | None = None) -> bytes | None:
        from botocore.exceptions import ClientError

        extra = {"Range": byte_range} if byte_range else {}
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return bytes(response["Body"].read())

    def _write(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def _sizes(self, prefix: str) -> dict[str, int]:
        """Every key under ``prefix`` with its size."""
        sizes: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                sizes[item["Key"]] = item["Size"]
        return sizes

    # -- reading --------------------------------------------------------------------------------
    def manifest(self) -> list[ManifestEntry]:
        """The manifest's entries, in manifest order (none when ``manifest.json`` is missing)."""
        data = self._read(MANIFEST_KEY)
        if data is None:
            return []
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{MANIFEST_KEY} is not JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("images"), list):
            raise ManifestError(f'{MANIFEST_KEY} must be an object with an "images" list')
        if document.get("version", MANIFEST_VERSION) != MANIFEST_VERSION:
            raise ManifestError(f"{MANIFEST_KEY} version {document['version']!r} is unknown")
        entries = [ManifestEntry.from_json(item) for item in document["images"]]
        ids = [e.id for e in entries]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ManifestError(f"{MANIFEST_KEY} lists ids more than once: {duplicates}")
        return entries

    def _save_manifest(self, entries: Sequence[ManifestEntry]) -> None:
        document = {"version": MANIFEST_VERSION, "images": [e.to_json() for e in entries]}
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        self._write(MANIFEST_KEY, text.encode(), "application/json")

    def entries(self) -> list[CatalogEntry]:
        """Catalog entries whose source image exists, sorted by id."""
        images = self._sizes(IMAGES_PREFIX)
        thumbs = self._sizes(THUMBS_PREFIX)
        out: list[CatalogEntry] = []
        for item in sorted(self.manifest(), key=lambda e: e.id):
            if item.key not in images:
                continue
            head = self._read(item.key, byte_range="bytes=0-23") or b""
            width, height = png_size(head)
            thumb = thumbnail_key(item.id)
            out.append(
                CatalogEntry(
                    id=item.id,
                    title=item.title,
                    tags=item.tags,
                    key=item.key,
                    size=images[item.key],
                    width=width,
                    height=height,
                    thumbnail=thumb if thumb in thumbs else None,
                )
            )
        return out

    def get(self, image_id: str) -> CatalogEntry:
        """The entry for ``image_id``; :class:`UnknownImageError` if absent or its image is."""
        for entry in self.entries():
            if entry.id == image_id:
                return entry
        raise UnknownImageError(image_id)

    def search(self, *, tag: str | None = None, text: str | None = None) -> list[CatalogEntry]:
        """Entries with ``tag`` and/or with ``text`` in their title (case-insensitive)."""
        needle = text.casefold() if text else None
        return [
            e
            for e in self.entries()
            if (tag is None or tag in e.tags) and (needle is None or needle in e.title.casefold())
        ]

    def tags(self) -> dict[str, int]:
        """How many entries carry each tag, by tag name."""
        counts: dict[str, int] = {}
        for entry in self.entries():
            for tag in entry.tags:
                counts[tag] = counts.get(tag, 0) + 1
        return dict(sorted(counts.items()))

    def missing(self) -> list[str]:
        """Ids the manifest lists whose source image does not exist, sorted."""
        images = self._sizes(IMAGES_PREFIX)
        return sorted(e.id for e in self.manifest() if e.key not in images)

    # -- derived objects ------------------------------------------------------------------------
    def make_thumbnail(self, image_id: str) -> str:
        """Write the thumbnail of ``image_id``; returns its key."""
        item = next((e for e in self.manifest() if e.id == image_id), None)
        data = self._read(item.key) if item else None
        if item is None or data is None:
            raise UnknownImageError(image_id)
        key = thumbnail_key(image_id)
        self._write(key, thumbnail(data), "image/png")
        return key

    def make_thumbnails(self, *, force: bool = False) -> list[str]:
        """Write the missing thumbnails (every thumbnail with ``force``); returns keys written."""
        return [
            self.make_thumbnail(entry.id)
            for entry in self.entries()
            if force or entry.thumbnail is None
        ]

    def build_index(self) -> dict[str, Any]:
        """The ``index.json`` document: entries, tag -> ids, and ids with no source image."""
        entries = self.entries()
        by_tag: dict[str, list[str]] = {}
        for entry in entries:
            for tag in entry.tags:
                by_tag.setdefault(tag, []).append(entry.id)
        return {
            "version": MANIFEST_VERSION,
            "count": len(entries),
            "images": [e.to_json() for e in entries],
            "tags": dict(sorted(by_tag.items())),
            "missing": self.missing(),
        }

    def write_index(self) -> dict[str, Any]:
        """Write ``index.json`` (no timestamps: an unchanged catalog gives the same bytes)."""
        document = self.build_index()
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        self._write(INDEX_KEY, text.encode(), "application/json")
        return document

    # -- changing the catalog -------------------------------------------------------------------
    def add_image(
        self, image_id: str, data: bytes, *, title: str, tags: Sequence[str] = ()
    ) -> CatalogEntry:
        """Upload ``images/<id>.png`` and add it to the manifest.

        Raises :class:`ImageError` (nothing written) when ``data`` is not a readable PNG and
        :class:`ImageExistsError` when the id is taken.
        """
        if not _ID.match(image_id):
            raise CatalogError(f"bad image id {image_id!r}: use a-z, 0-9 and '-'")
        width, height, _ = decode_png(data)  # validates before anything is written
        manifest = self.manifest()
        if any(e.id == image_id for e in manifest):
            raise ImageExistsError(f"image {image_id!r} is already in the catalog")
        item = ManifestEntry(
            id=image_id, title=title, tags=tuple(tags), key=f"{IMAGES_PREFIX}{image_id}.png"
        )
        self._write(item.key, data, "image/png")
        self._save_manifest([*manifest, item])
        return CatalogEntry(
            id=item.id,
            title=item.title,
            tags=item.tags,
            key=item.key,
            size=len(data),
            width=width,
            height=height,
            thumbnail=None,
        )

    def cleanup(self, *, dry_run: bool = False) -> CleanupReport:
        """Delete thumbnails of ids not in the manifest; drop entries whose image is missing."""
        manifest = self.manifest()
        images = self._sizes(IMAGES_PREFIX)
        dangling = sorted(e.id for e in manifest if e.key not in images)
        keep = {thumbnail_key(e.id) for e in manifest if e.key in images}
        stale = sorted(k for k in self._sizes(THUMBS_PREFIX) if k not in keep)
        if not dry_run:
            if stale:
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in stale], "Quiet": True},
                )
            if dangling:
                self._save_manifest([e for e in manifest if e.id not in dangling])
        return CleanupReport(deleted_thumbnails=stale, dropped_entries=dangling)


def make_thumbnails(client: S3Client, bucket: str, *, force: bool = False) -> list[str]:
    """Write the missing thumbnails of the catalog in ``bucket``; returns the keys written."""
    return ImageCatalog(client, bucket).make_thumbnails(force=force)


# -- command line -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None, *, client: S3Client | None = None) -> int:
    """``imagecat [--bucket B] list|index|thumbs|cleanup``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="imagecat", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bucket",
        default=os.environ.get("TIGRIS_BUCKET") or os.environ.get("BUCKET_NAME"),
        help="Bucket holding the catalog (default: TIGRIS_BUCKET or BUCKET_NAME)",
    )
    parser.add_argument("command", choices=["list", "index", "thumbs", "cleanup"])
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("no bucket: pass --bucket or set TIGRIS_BUCKET")
    if client is None:
        import boto3

        client = boto3.client("s3")  # endpoint, credentials and region from the environment
    catalog = ImageCatalog(client, args.bucket)
    try:
        if args.command == "list":
            for entry in catalog.entries():
                print(f"{entry.id}\t{entry.width}x{entry.height}\t{entry.title}")
        elif args.command == "index":
            document = catalog.write_index()
            print(f"wrote {INDEX_KEY}: {document['count']} images")
        elif args.command == "thumbs":
            for key in catalog.make_thumbnails():
                print(f"wrote {key}")
        else:
            report = catalog.cleanup()
            for key in report.deleted_thumbnails:
                print(f"deleted {key}")
            for image_id in report.dropped_entries:
                print(f"dropped {image_id} (no source image)")
    except CatalogError as exc:
        print(f"imagecat: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
