"""Tigris state and semantics on top of moto's S3 backend.

Everything that changes state lives here; ``responses.py`` only parses HTTP. Tigris metadata
(snapshot flag, fork lineage, snapshots, children) rides on moto's ``FakeBucket`` as
``bucket.tigris``, so it lives and dies with the bucket.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import itertools
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import FakeBucket, FakeKey, S3Backend, s3_backends

from .errors import (
    AccessDenied,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketHasForks,
    BucketNotEmpty,
    EmulatorError,
    InvalidArgument,
    InvalidBucketName,
    InvalidRequest,
    InvalidSeedFolder,
    NoSuchBucket,
    NoSuchSnapshot,
    NotSnapshotEnabled,
)
from .seedfolder import read_seed_folder
from .store import (
    Clock,
    ListingKeyStore,
    TigrisKeyStore,
    WeakInstanceTracker,
    dispose_versions,
    spill_large_values,
)

__all__ = [
    "REGION",
    "EmulatorError",
    "InvalidSeedFolder",
    "RWLock",
    "SnapshotRecord",
    "TigrisBackend",
    "TigrisMeta",
    "validate_bucket_name",
]

# moto keeps region-specific quirks (us-east-1 needs no LocationConstraint); Tigris is "auto".
REGION = "us-east-1"

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def validate_bucket_name(name: str) -> None:
    """Raise 400 ``InvalidBucketName`` unless ``name`` follows Tigris's (and S3's) bucket rules."""
    ok = (
        bool(_BUCKET_NAME.match(name))
        and ".." not in name
        and not name.startswith("xn--")
        and not name.endswith("-s3alias")
    )
    if ok:
        try:
            ipaddress.ip_address(name)
            ok = False
        except ValueError:
            pass
    if not ok:
        raise InvalidBucketName(name)


@dataclass
class SnapshotRecord:
    version: int
    name: str | None
    created_at: datetime.datetime


@dataclass
class TigrisMeta:
    """What Tigris knows about a bucket beyond S3."""

    snapshot_enabled: bool
    created_at: datetime.datetime
    fork_source: str | None = None
    fork_version: int | None = None
    fork_snapshot_created_at: datetime.datetime | None = None
    snapshots: dict[int, SnapshotRecord] = field(default_factory=dict)
    children: set[str] = field(default_factory=set)
    # Placement asked for at creation (X-Tigris-Regions); empty means global.
    regions: str = ""


class RWLock:
    """Readers/writer lock that prefers writers, for a while.

    Plain S3 requests share it; forks, snapshots and deletes take it alone, so they see a
    consistent cut and never dispose a key another request is reading. A reader arriving
    while a writer waits lets the writer go first, but only for ``patience`` seconds: a writer
    stuck behind a long reader (a large upload being stored) never stalls every other read.
    Nothing does network I/O while holding it.
    """

    def __init__(self, patience: float = 1.0) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0
        self._patience = patience

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            deadline = time.monotonic() + self._patience
            while self._writer or (self._waiting_writers and time.monotonic() < deadline):
                self._cond.wait(max(0.0, deadline - time.monotonic()) or None)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.timezone.utc)


def _from_ns(version: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(version / 1e9, tz=datetime.timezone.utc)


class TigrisBackend:
    """Tigris operations on moto's S3 backend for one account."""

    def __init__(self, account_id: str = DEFAULT_ACCOUNT_ID, clock: Clock | None = None) -> None:
        self.account_id = account_id
        self.clock = clock or Clock(time.time_ns)
        self.lock = RWLock()
        self._view_ids = itertools.count(1)
        # Deleted keys must not stay alive through moto's class-level instance list.
        FakeKey.instances_tracked = WeakInstanceTracker()
        spill_large_values()

    @property
    def s3(self) -> S3Backend:
        return s3_backends[self.account_id]["aws"]

    # -- lookups --------------------------------------------------------------------------
    def bucket(self, name: str) -> FakeBucket:
        bucket = self.s3.buckets.get(name)
        if bucket is None:
            raise NoSuchBucket(name)
        return bucket

    def meta(self, name: str) -> TigrisMeta | None:
        return getattr(self.bucket(name), "tigris", None)

    def exists(self, name: str) -> bool:
        return name in self.s3.buckets

    # -- buckets --------------------------------------------------------------------------
    def create_bucket(
        self, name: str, *, snapshot_enabled: bool = False, regions: str = ""
    ) -> FakeBucket:
        validate_bucket_name(name)
        with self.lock.exclusive():
            self._check_new_name(name)
            bucket = self.s3.create_bucket(name, REGION)
            now = _now()
            bucket.tigris = TigrisMeta(
                snapshot_enabled=snapshot_enabled, created_at=now, regions=regions
            )
            if snapshot_enabled:
                store = TigrisKeyStore(self.clock, name)
                store.readers = functools.partial(self.reader_times, name)
                self._make_snapshot_store(bucket, store)
            else:
                bucket.keys = ListingKeyStore()
            return bucket

    def _check_new_name(self, name: str) -> None:
        if name in self.s3.buckets:
            raise BucketAlreadyOwnedByYou(name)
        if name in s3_backends.bucket_accounts:
            raise BucketAlreadyExists(name)

    @staticmethod
    def _make_snapshot_store(bucket: FakeBucket, store: TigrisKeyStore) -> None:
        # Snapshot buckets are implicitly versioned on Tigris; it also keeps the old versions
        # that snapshots and forks read.
        bucket.keys = store
        bucket.versioning_status = "Enabled"

    def is_snapshot_enabled(self, name: str) -> bool:
        meta = self.meta(name)
        return bool(meta and meta.snapshot_enabled)

    # -- snapshots ------------------------------------------------------------------------
    def create_snapshot(self, name: str, label: str | None = None) -> int:
        with self.lock.exclusive():
            meta = self._snapshot_meta(name)
            version = self.clock.next()
            meta.snapshots[version] = SnapshotRecord(version, label, _now())
            return version

    def _snapshot_meta(self, name: str) -> TigrisMeta:
        meta = self.meta(name)
        if meta is None or not meta.snapshot_enabled:
            raise NotSnapshotEnabled(name)
        return meta

    def list_snapshots(self, name: str) -> list[SnapshotRecord]:
        """Snapshots of ``name``, newest first (none for a regular bucket)."""
        meta = self.meta(name)
        if meta is None:
            return []
        return sorted(meta.snapshots.values(), key=lambda s: s.version, reverse=True)

    def delete_snapshot(self, name: str, version: str) -> None:
        with self.lock.exclusive():
            meta = self.meta(name)
            number = _parse_version(version)
            if meta is None or number is None or number not in meta.snapshots:
                raise NoSuchSnapshot(name, version)
            del meta.snapshots[number]
            keys = self.bucket(name).keys
            if isinstance(keys, TigrisKeyStore):
                keys.release_unread()

    def resolve_snapshot(self, name: str, version: str) -> int:
        """The clock time of a snapshot version; any ns timestamp is accepted, as on Tigris."""
        number = _parse_version(version)
        if number is None:
            raise InvalidArgument(
                f"Snapshot version {version!r} is not a nanosecond timestamp.", name
            )
        return number

    # -- forks ----------------------------------------------------------------------------
    def fork(self, name: str, source: str, snapshot: str | None = None) -> FakeBucket:
        """Create ``name`` as a zero-copy fork of ``source`` (now, or at ``snapshot``)."""
        validate_bucket_name(name)
        with self.lock.exclusive():
            self._check_new_name(name)
            if source not in self.s3.buckets:
                raise NoSuchBucket(source, f"The fork source bucket {source} does not exist.")
            src_bucket = self.s3.buckets[source]
            src_meta = self._snapshot_meta(source)
            if snapshot is None:
                at = self.clock.next()
                snapshot_created = _now()
            else:
                number = _parse_version(snapshot)
                record = src_meta.snapshots.get(number) if number is not None else None
                if record is None:
                    raise NoSuchSnapshot(source, snapshot)
                at = record.version
                snapshot_created = record.created_at
            bucket = self.s3.create_bucket(name, REGION)
            store = self._fork_store(name, src_bucket.keys, at)
            store.readers = functools.partial(self.reader_times, name)
            self._make_snapshot_store(bucket, store)
            bucket.tigris = TigrisMeta(
                snapshot_enabled=True,
                created_at=_now(),
                fork_source=source,
                fork_version=at,
                fork_snapshot_created_at=snapshot_created,
            )
            src_meta.children.add(name)
            return bucket

    def _fork_store(self, name: str, parent: TigrisKeyStore, at: int) -> TigrisKeyStore:
        store = TigrisKeyStore(self.clock, name, parent=parent, at=at)
        store.on_clone = self._copy_tags
        return store

    def reader_times(self, name: str) -> set[int]:
        """The clock times ``name``'s past is still read at: its snapshots, its forks' points.

        A fork of a fork reads its parent no later than the parent's own fork point, so the
        direct children's points cover every descendant.
        """
        bucket = self.s3.buckets.get(name)
        meta: TigrisMeta | None = getattr(bucket, "tigris", None)
        if meta is None:
            return set()
        times = set(meta.snapshots)
        for child_name in meta.children:
            child_meta: TigrisMeta | None = getattr(self.s3.buckets.get(child_name), "tigris", None)
            if child_meta is not None and child_meta.fork_version is not None:
                times.add(child_meta.fork_version)
        return times

    def _copy_tags(self, source: FakeKey, clone: FakeKey) -> None:
        tags = self.s3.tagger.get_tag_dict_for_resource(source.arn)
        if tags:
            self.s3.tagger.tag_resource(
                clone.arn, [{"Key": k, "Value": v} for k, v in tags.items()]
            )

    def before_in_place_change(self, bucket_name: str, key: str) -> None:
        """Freeze ``key`` in every fork still inheriting it, before its bucket changes it in place.

        Tags and ACLs are changed on the stored version itself, not by writing a new one, so a
        fork (or a fork of a fork) that has not copied the key yet would see the change. The
        caller holds the exclusive lock across this and the change itself.
        """
        pending = list(self.children(bucket_name))
        while pending:
            child = self.s3.buckets.get(pending.pop())
            if child is None:
                continue
            if isinstance(child.keys, TigrisKeyStore):
                child.keys.materialise(key)
            pending.extend(self.children(child.name))

    def children(self, bucket_name: str) -> set[str]:
        """Names of the live forks made directly from ``bucket_name``."""
        meta: TigrisMeta | None = getattr(self.s3.buckets.get(bucket_name), "tigris", None)
        return set(meta.children) if meta else set()

    def list_forks(self, source: str) -> list[FakeBucket]:
        if source not in self.s3.buckets:
            raise AccessDenied(f"Access Denied: no bucket {source} is yours.", source)
        meta = self.meta(source)
        children = sorted(meta.children) if meta else []
        return [self.s3.buckets[c] for c in children if c in self.s3.buckets]

    # -- deletes --------------------------------------------------------------------------
    def delete_bucket(self, name: str, *, force: bool = False) -> None:
        with self.lock.exclusive():
            bucket = self.bucket(name)
            meta: TigrisMeta | None = getattr(bucket, "tigris", None)
            if meta and meta.children:
                raise BucketHasForks(name, sorted(meta.children))
            if not force and (bucket.keys or bucket.multiparts):
                raise BucketNotEmpty(name)
            self._drop(bucket)

    def _drop(self, bucket: FakeBucket) -> None:
        name = bucket.name
        keys = bucket.keys
        if isinstance(keys, TigrisKeyStore):
            versions = keys.own_versions()
        else:
            versions = [v for _, vs in keys.iterlists() for v in vs]
        for version in versions:
            if isinstance(version, FakeKey):
                self.s3.tagger.delete_all_tags_for_resource(version.arn)
        dispose_versions(versions)
        dict.clear(keys)
        for upload in list(bucket.multiparts.values()):
            upload.dispose()
        bucket.multiparts.clear()
        meta: TigrisMeta | None = getattr(bucket, "tigris", None)
        if meta and meta.fork_source:
            parent = self.s3.buckets.get(meta.fork_source)
            parent_meta: TigrisMeta | None = getattr(parent, "tigris", None)
            if parent_meta:
                parent_meta.children.discard(name)
            if parent is not None and isinstance(parent.keys, TigrisKeyStore):
                parent.keys.release_unread()
        self.s3.buckets.pop(name, None)
        s3_backends.bucket_accounts.pop(name, None)

    # -- reads at a snapshot version ------------------------------------------------------
    @contextmanager
    def snapshot_view(self, name: str, version: str) -> Iterator[str]:
        """A hidden, read-only bucket showing ``name`` as it was at ``version``; yields its name.

        It is kept out of ListBuckets (moto's ``table_buckets`` is searched by ``get_bucket``
        only) and dropped when the request is done.
        """
        bucket = self.bucket(name)
        at = self.resolve_snapshot(name, version)
        if not isinstance(bucket.keys, TigrisKeyStore):
            # A regular bucket has no history: its only state is the current one.
            at = self.clock.next()
            store = None
        else:
            store = bucket.keys
        view_name = f"{name}--snapshot-view-{next(self._view_ids)}"
        view = FakeBucket(view_name, self.account_id, REGION)
        s3_backends.bucket_accounts.pop(view_name, None)
        if store is not None:
            view.keys = self._fork_store(view_name, store, at)
            view.versioning_status = "Enabled"
        else:
            view.keys = bucket.keys
        self.s3.table_buckets[view_name] = view
        try:
            yield view_name
        finally:
            self.s3.table_buckets.pop(view_name, None)
            if store is not None:
                dispose_versions(view.keys.own_versions())

    # -- seeding --------------------------------------------------------------------------
    def load_seed(self, name: str, folder: Path | None) -> int:
        """Create the snapshot-enabled seed ``name`` (if new) and load ``folder`` into it.

        Files go straight into the backend (no HTTP): 10,000 small files take well under a
        second. Returns the number of objects written.
        """
        if not self.exists(name):
            self.create_bucket(name, snapshot_enabled=True)
        elif not self.is_snapshot_enabled(name):
            raise InvalidRequest(
                f"Seed bucket {name} exists and is not snapshot-enabled.", name, status=409
            )
        if folder is None:
            return 0
        objects = read_seed_folder(folder)
        with self.lock.shared():
            for item in objects:
                key = self.s3.put_object(name, item.key, item.path.read_bytes())
                key.set_metadata(
                    {
                        "Content-Type": item.content_type,
                        **{f"x-amz-meta-{k}": v for k, v in item.metadata.items()},
                    }
                )
                if item.tags:
                    self.s3.put_object_tagging(key, item.tags)
        return len(objects)

    def all_buckets(self) -> dict[str, FakeBucket]:
        return dict(self.s3.buckets)


def _parse_version(version: str | None) -> int | None:
    if version is None:
        return None
    text = version.split(";", 1)[0].strip()
    return int(text) if text.isdigit() else None


def snapshot_display_name(record: SnapshotRecord) -> str:
    """How Tigris lists a snapshot: ``<version>`` or ``<version>; name=<name>``."""
    return f"{record.version}; name={record.name}" if record.name else str(record.version)


def iso(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version_time(version: int) -> datetime.datetime:
    return _from_ns(version)
