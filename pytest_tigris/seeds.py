"""Seed tooling: ``pytest-tigris seed push`` and ``seed pull``.

``push`` uploads a folder into a snapshot-enabled seed bucket exactly as the emulator would load
the same folder with ``--tigris-seed-dir`` (one reader, :func:`read_seed_folder`), then takes a
snapshot to pin. ``pull`` does the reverse: a bucket, or one of its snapshots, becomes a folder
(plus a sidecar for what file names cannot say) that ``push`` and the emulator load back into
the same objects.

Control calls (HeadBucket, CreateBucket, snapshots) go through the :class:`ForkJanitor`'s admin
client, one at a time; object transfers share one data client across a thread pool (boto3
clients are thread-safe for requests). Never imports pytest; boto3 is imported only when a
command runs.
"""

from __future__ import annotations

import datetime
import json
import mimetypes
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import urlencode

from .emulator.seedfolder import (
    DEFAULT_CONTENT_TYPE,
    SIDECAR,
    SKIPPED_FILES,
    SKIPPED_FOLDERS,
    SeedObject,
)
from .exceptions import TigrisError
from .s3calls import error_code, error_status

__all__ = [
    "PullResult",
    "PushResult",
    "SafeFolder",
    "SeedToolError",
    "classify_key",
    "human_size",
    "list_keys",
    "pull",
    "pull_target_problem",
    "push",
    "push_snapshot_name",
    "sidecar_entry",
]

WORKERS = 16
_CHUNK = 1024 * 1024
# Files above this go up in parts (PutObject stops at 5 GiB); below it one request is faster.
_MULTIPART_THRESHOLD = 64 * 1024 * 1024
_SNAPSHOT_READS = ("ListObjectsV2", "GetObject", "GetObjectTagging")

T = TypeVar("T")


class SeedToolError(TigrisError):
    """``seed push``/``seed pull`` refused or failed; the message is the one line to print."""


@dataclass(frozen=True)
class PushResult:
    """What ``push`` did."""

    bucket: str
    created: bool
    objects: int
    size: int
    snapshot_name: str
    snapshot_version: str


@dataclass(frozen=True)
class PullResult:
    """What ``pull`` did. ``skipped``: (key, reason) for keys a seed folder cannot hold."""

    bucket: str
    version: str | None
    objects: int
    size: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def push_snapshot_name(now: datetime.datetime | None = None) -> str:
    """``seed-push-<UTC time>``: sorts by time and never looks like a run's snapshot (which
    ``pytest-tigris sweep`` may delete)."""
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return f"seed-push-{moment.astimezone(datetime.timezone.utc):%Y%m%dT%H%M%SZ}"


# -- progress -------------------------------------------------------------------------------
def human_size(size: int) -> str:
    """``1.5 MiB``-style sizes for people."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


class _Progress:
    """One self-rewriting status line on a terminal; silent when ``stream`` is None."""

    def __init__(self, verb: str, objects: int, size: int, stream: TextIO | None) -> None:
        self.verb, self.objects, self.size, self.stream = verb, objects, size, stream
        self.done = self.done_size = 0
        self._drawn = 0.0
        self._lock = threading.Lock()

    def add(self, size: int) -> None:
        with self._lock:
            self.done += 1
            self.done_size += size
            now = time.monotonic()
            # A redraw per object would cost more than the transfer for small files.
            if self.stream is not None and (now - self._drawn >= 0.1 or self.done == self.objects):
                self._drawn = now
                self.stream.write(
                    f"\r{self.verb} {self.done}/{self.objects} objects, "
                    f"{human_size(self.done_size)} of {human_size(self.size)}\x1b[K"
                )
                self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _parallel(
    items: Sequence[T], work: Callable[[T], int], progress: _Progress, workers: int
) -> None:
    """Run ``work`` on every item in a thread pool; the first failure stops the rest."""
    if not items:
        return
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)))
    try:
        futures: list[Future[int]] = []
        for item in items:
            future = pool.submit(work, item)
            future.add_done_callback(
                lambda f: (
                    progress.add(f.result()) if not f.cancelled() and not f.exception() else None
                )
            )
            futures.append(future)
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            error = future.exception() if future.done() and not future.cancelled() else None
            if error is not None:
                raise error
    except BaseException:
        # Queued transfers are dropped; the ones in flight finish on their own.
        pool.shutdown(wait=False, cancel_futures=True)
        progress.close()
        raise
    pool.shutdown(wait=True)
    progress.close()


# -- talking to the endpoint ------------------------------------------------------------------
def _head(janitor: Any, bucket: str) -> dict[str, str] | None:
    """The bucket's HeadBucket headers, or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        response = janitor.admin.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_status(exc) == 404:
            return None
        if error_status(exc) == 403:
            # A HEAD answer has no body, so no error code: bad keys and a bucket these keys
            # may not use look the same. An account-level call tells them apart (it raises,
            # with a code, when the keys are wrong).
            janitor.admin.list_buckets()
            raise SeedToolError(
                f"Access Denied to bucket {bucket!r} at {janitor.endpoint_url}: these keys "
                "cannot use it (bucket names are global on Tigris: it may be another "
                "account's): check the name, or the keys' permissions"
            ) from None
        raise
    return dict(response["ResponseMetadata"]["HTTPHeaders"])


def _not_tigris(janitor: Any) -> SeedToolError:
    return SeedToolError(
        f"{janitor.endpoint_url} does not speak Tigris (HeadBucket has no "
        "X-Tigris-Enable-Snapshot header): seeds need snapshots and forks; point --endpoint "
        "at Tigris (https://t3.storage.dev) or the emulator"
    )


def _prepare_bucket(janitor: Any, bucket: str, update: bool) -> bool:
    """Make sure ``bucket`` may receive the push; True when this call created it."""
    headers = _head(janitor, bucket)
    if headers is not None:
        flag = headers.get("x-tigris-enable-snapshot")
        if flag is None:
            raise _not_tigris(janitor)
        if flag.strip().lower() != "true":
            raise SeedToolError(
                f"bucket {bucket!r} exists and is not snapshot-enabled, so it cannot be "
                "forked: enable snapshots on it (Tigris dashboard, or tigris_boto3_ext."
                f"update_bucket(client, {bucket!r}, snapshot_enabled=True)) or push to a new "
                "bucket"
            )
        if not update:
            listing = janitor.admin.list_objects_v2(Bucket=bucket, MaxKeys=1)
            what = "holds objects" if listing.get("KeyCount", 0) else "is empty"
            raise SeedToolError(
                f"bucket {bucket!r} already exists and {what}: pass --update to upload into "
                "it (nothing is deleted: keys not in the folder stay), or push to a new bucket"
            )
        return False
    _create(janitor, bucket)
    headers = _head(janitor, bucket) or {}
    if headers.get("x-tigris-enable-snapshot", "").strip().lower() != "true":
        # The server ignored the header (plain S3): the bucket is ours, empty and useless.
        from contextlib import suppress

        with suppress(Exception):
            janitor.admin.delete_bucket(Bucket=bucket)
        raise _not_tigris(janitor)
    return True


def _create(janitor: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError
    from tigris_boto3_ext import create_snapshot_bucket

    try:
        create_snapshot_bucket(janitor.admin, bucket)
    except ClientError as exc:
        code = error_code(exc)
        retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if code == "BucketAlreadyOwnedByYou" and retried:
            return  # our first attempt went through and its answer was lost
        if code in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
            raise SeedToolError(
                f"bucket {bucket!r} was created by someone else just now (bucket names are "
                "global on Tigris): pick another name, or pass --update if it is yours"
            ) from None
        if code == "InvalidBucketName":
            raise SeedToolError(
                f"{janitor.endpoint_url} refused the bucket name {bucket!r} "
                "(InvalidBucketName): pick another name"
            ) from None
        raise


# -- push -------------------------------------------------------------------------------------
def push(
    janitor: Any,
    client: Any,
    objects: Sequence[SeedObject],
    bucket: str,
    *,
    update: bool = False,
    progress: TextIO | None = None,
    workers: int = WORKERS,
    snapshot_name: str | None = None,
) -> PushResult:
    """Upload ``objects`` (from :func:`read_seed_folder`) into the seed ``bucket``, then
    snapshot it.

    Creates ``bucket`` snapshot-enabled when it does not exist; an existing bucket is written
    only with ``update`` (and must be snapshot-enabled). Nothing is ever deleted.
    """
    from boto3.s3.transfer import TransferConfig

    sizes = {item.key: _file_size(item.path) for item in objects}
    created = _prepare_bucket(janitor, bucket, update)
    config = TransferConfig(
        multipart_threshold=_MULTIPART_THRESHOLD,
        multipart_chunksize=_MULTIPART_THRESHOLD,
        use_threads=False,  # the pool below already runs one upload per thread
    )

    def upload(item: SeedObject) -> int:
        extra: dict[str, Any] = {"ContentType": item.content_type}
        if item.metadata:
            extra["Metadata"] = item.metadata
        if item.tags:
            extra["Tagging"] = urlencode(item.tags)
        try:
            client.upload_file(str(item.path), bucket, item.key, ExtraArgs=extra, Config=config)
        except OSError as exc:
            raise SeedToolError(
                f"cannot read {item.path}: {exc.strerror or exc}: fix it and push again with "
                "--update"
            ) from None
        except Exception as exc:
            what = f"could not upload {item.key!r} (once fixed, push again with --update)"
            raise _transfer_error(janitor, what, exc) from None
        return sizes[item.key]

    total = sum(sizes.values())
    bar = _Progress("uploaded", len(objects), total, progress)
    _parallel(list(objects), upload, bar, workers)
    name = snapshot_name or push_snapshot_name()
    if not created:
        # Two pushes in one second would share a name, and a name must pick one snapshot.
        taken = {entry.label for entry in janitor.snapshots(bucket)}
        base, number = name, 2
        while name in taken:
            name, number = f"{base}-{number}", number + 1
    version = janitor.snapshot(bucket, name, fresh=created)
    return PushResult(bucket, created, len(objects), total, name, version)


def _file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise SeedToolError(f"cannot read {path}: {exc.strerror or exc}") from None


def _transfer_error(janitor: Any, what: str, exc: Exception) -> Exception:
    from .s3calls import CLI_ENDPOINT_HINT, describe_client_error

    if isinstance(exc, TigrisError):
        return exc
    described = describe_client_error(exc, janitor.endpoint_url, hint=CLI_ENDPOINT_HINT)
    if described is not None:
        return described
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SeedToolError(f"{what}: {detail}")


# -- pull -------------------------------------------------------------------------------------
def pull_target_problem(folder: Path, force: bool) -> str | None:
    """Why ``pull`` may not write into ``folder``, or None."""
    if not folder.exists():
        return "not a folder" if folder.is_symlink() else None
    if not folder.is_dir():
        return "not a folder: give a new or empty folder"
    try:
        empty = next(os.scandir(folder), None) is None
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if not empty and not force:
        return (
            "is not empty: pass --force to write into it (files are overwritten, none are "
            "deleted), or give a new folder"
        )
    return None


def classify_key(key: str) -> tuple[str, str] | None:
    """(``"skip"``/``"unsafe"``, why) when ``key`` cannot become a file of a seed folder."""
    if key.endswith("/"):
        return "skip", "a folder marker (folders come from the files in them)"
    parts = key.split("/")
    if key.startswith("/") or "" in parts:
        return "unsafe", "it has an empty path segment ('/' at the start or '//')"
    if "." in parts or ".." in parts:
        return "unsafe", "it has a '.' or '..' path segment"
    if "\x00" in key:
        return "unsafe", "it contains a NUL character"
    if any(part in SKIPPED_FOLDERS for part in parts[:-1]):
        return "skip", "seed folders skip .git/ and __pycache__/ folders"
    if parts[-1] in SKIPPED_FILES:
        return "skip", "seed folders skip .DS_Store files"
    if key == SIDECAR:
        return "skip", f"{SIDECAR} at the top is the seed folder's own sidecar"
    return None


def _plan(
    listing: Iterable[tuple[str, int]],
) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """The keys to write and the ones skipped; raises on a key that would be unsafe."""
    wanted: list[tuple[str, int]] = []
    skipped: list[tuple[str, str]] = []
    for key, size in listing:
        verdict = classify_key(key)
        if verdict is None:
            wanted.append((key, size))
        elif verdict[0] == "skip":
            skipped.append((key, verdict[1]))
        else:
            raise SeedToolError(
                f"key {key!r} cannot be a file inside the folder: {verdict[1]}; nothing was "
                "written (rename the object, or pull a snapshot without it)"
            )
    files = {key for key, _ in wanted}
    for key in sorted(files):
        parts = key.split("/")
        for end in range(1, len(parts)):
            folder = "/".join(parts[:end])
            if folder in files:
                raise SeedToolError(
                    f"keys {folder!r} and {key!r} cannot both be files (the first would have "
                    "to be a folder); nothing was written: rename one of them"
                )
    return wanted, skipped


def list_keys(client: Any, bucket: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out += [
            (str(entry["Key"]), int(entry.get("Size", 0))) for entry in page.get("Contents", [])
        ]
    return out


def _pin_reads(client: Any, version: str) -> Callable[[], None]:
    """Send every read of ``client`` to snapshot ``version``; returns the undo.

    The header never changes while the handler is registered, so concurrent requests on the
    client are safe (unlike per-call header injection).
    """

    def add(request: Any, **kwargs: Any) -> None:
        request.headers["X-Tigris-Snapshot-Version"] = version

    events = [f"before-sign.s3.{operation}" for operation in _SNAPSHOT_READS]
    for event in events:
        client.meta.events.register(event, add)

    def undo() -> None:
        for event in events:
            client.meta.events.unregister(event, add)

    return undo


class SafeFolder:
    """Writes files under ``root`` and nowhere else: no symbolic link inside it is followed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def _parent(self, key: str) -> Path:
        current = self.root
        for part in key.split("/")[:-1]:
            current = current / part
            with self._lock:
                try:
                    info = os.lstat(current)
                except FileNotFoundError:
                    os.mkdir(current)
                    continue
            if stat.S_ISLNK(info.st_mode):
                raise SeedToolError(
                    f"cannot write {key!r}: {current} is a symbolic link, which could lead "
                    "outside the folder: remove it or pull into a new folder"
                )
            if not stat.S_ISDIR(info.st_mode):
                raise SeedToolError(
                    f"cannot write {key!r}: {current} is a file, not a folder: remove it or "
                    "pull into a new folder"
                )
        return current

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        """Write ``key``'s file whole or not at all (a replaced link is replaced, not followed)."""
        parent = self._parent(key)
        target = parent / key.rsplit("/", 1)[-1]
        if target.is_dir() and not target.is_symlink():
            raise SeedToolError(
                f"cannot write {key!r}: {target} is a folder: remove it or pull into a new folder"
            )
        temporary = parent / f".tigris-pull-{uuid.uuid4().hex}"
        # 0o666 lets the umask decide the mode, as for any file the user creates.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temporary, flags, 0o666)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            from contextlib import suppress

            with suppress(OSError):
                os.unlink(temporary)
            raise


def pull(
    janitor: Any,
    client: Any,
    bucket: str,
    folder: Path,
    *,
    snapshot: str | None = None,
    progress: TextIO | None = None,
    workers: int = WORKERS,
) -> PullResult:
    """Download ``bucket`` (at ``snapshot``, a version or name, if given) into ``folder``.

    ``client`` must be one the caller does not use concurrently for anything else: a snapshot
    pull pins its reads. Files already in ``folder`` that the bucket does not have are kept.
    """
    if _head(janitor, bucket) is None:
        raise SeedToolError(
            f"bucket {bucket!r} does not exist at {janitor.endpoint_url}: check the name"
        )
    version = janitor.resolve_snapshot(bucket, snapshot, "--snapshot") if snapshot else None
    undo = _pin_reads(client, version) if version else None
    try:
        try:
            listing = list_keys(client, bucket)
        except Exception as exc:
            raise _transfer_error(janitor, f"could not list {bucket!r}", exc) from None
        wanted, skipped = _plan(listing)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SeedToolError(f"cannot create {folder}: {exc.strerror or exc}") from None
        target = SafeFolder(folder)
        described: dict[str, dict[str, Any]] = {}
        described_lock = threading.Lock()

        def download(item: tuple[str, int]) -> int:
            key, _ = item
            try:
                answer = client.get_object(Bucket=bucket, Key=key)
                body = answer["Body"]
                try:
                    target.write(key, iter(lambda: body.read(_CHUNK), b""))
                finally:
                    body.close()
                tags: dict[str, str] = {}
                if int(answer.get("TagCount") or 0):
                    tag_set = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
                    tags = {str(t["Key"]): str(t["Value"]) for t in tag_set}
            except OSError as exc:
                raise SeedToolError(f"cannot write {key!r}: {exc.strerror or exc}") from None
            except Exception as exc:
                raise _transfer_error(janitor, f"could not download {key!r}", exc) from None
            entry = sidecar_entry(key, str(answer.get("ContentType") or ""), answer, tags)
            if entry:
                with described_lock:
                    described[key] = entry
            return int(answer.get("ContentLength") or 0)

        bar = _Progress("downloaded", len(wanted), sum(size for _, size in wanted), progress)
        _parallel(wanted, download, bar, workers)
        _write_sidecar(folder, described, {key for key, _ in wanted})
    finally:
        if undo is not None:
            undo()
    return PullResult(bucket, version, len(wanted), bar.done_size, skipped)


def sidecar_entry(
    key: str, content_type: str, answer: dict[str, Any], tags: dict[str, str]
) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    guessed = mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE
    if content_type and content_type != guessed:
        entry["content_type"] = content_type
    metadata = {str(k): str(v) for k, v in (answer.get("Metadata") or {}).items()}
    if metadata:
        entry["metadata"] = metadata
    if tags:
        entry["tags"] = tags
    return entry


def _write_sidecar(folder: Path, described: dict[str, dict[str, Any]], pulled: set[str]) -> None:
    """Write the sidecar; entries of an existing one for files the pull did not touch stay."""
    path = folder / SIDECAR
    kept: dict[str, Any] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8")).get("objects", {})
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            old = {}
        if isinstance(old, dict):
            kept = {
                key: value
                for key, value in old.items()
                if key not in pulled and (folder / key).is_file()
            }
    objects = {**kept, **described}
    if not objects and not path.is_file():
        return
    text = json.dumps({"objects": dict(sorted(objects.items()))}, indent=2, ensure_ascii=False)
    SafeFolder(folder).write(SIDECAR, [(text + "\n").encode("utf-8")])
