"""Copy-on-write key stores: the only module that touches moto's ``FakeKey`` internals.

A snapshot-enabled bucket gets a :class:`TigrisKeyStore` in place of moto's
``_VersionedKeyStore``. It stamps every stored version with a time on the emulator's global
clock, so the state of the bucket at any snapshot version can be read back.

A fork's store holds only what the fork changed. Reads of a key the fork never touched fall
through to the parent's store *at the fork's snapshot version*, recursively for forks of forks,
exactly like Tigris. Creating a fork therefore costs the same for a 10-object and a
10,000-object seed. The first time moto reaches a key through the fork in a way that could
change it (get, put, delete, tag, ACL...), the parent's version is *materialised*: it gets a
fork-owned ``FakeKey`` shell that shares the bytes through a refcounted buffer. moto mutates and
disposes keys in place, so sharing the parent's ``FakeKey`` objects themselves would leak
changes between buckets and close buffers under the other bucket's feet.
"""

from __future__ import annotations

import copy
import io
import threading
import weakref
from collections.abc import Callable, Collection, Iterator
from typing import Any

from moto.s3.models import FakeDeleteMarker, FakeKey
from moto.s3.utils import _VersionedKeyStore

__all__ = [
    "Clock",
    "ListingKeyStore",
    "SharedValueBuffer",
    "TigrisKeyStore",
    "WeakInstanceTracker",
    "clone_key",
    "dispose_versions",
    "spill_large_values",
    "stamp_of",
]


class Clock:
    """A strictly increasing nanosecond clock shared by versions, snapshots and fork points."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._now(), self._last + 1)
            return self._last

    @property
    def last(self) -> int:
        return self._last

    def restore(self, last: int) -> None:
        """Never hand out a time at or before ``last`` (state loaded from an earlier run)."""
        with self._lock:
            self._last = max(self._last, last)


class _SharedFile:
    """The real bytes buffer of a stored object, closed when its last holder lets go."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self._holders = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders == 0
        if last:
            self.file.close()


class SharedValueBuffer:
    """One holder's read-only handle on shared object bytes.

    moto never rewrites the bytes of a stored key (its value setter runs only while the key is
    built), so the handle refuses writes; ``close()`` releases this holder only.
    """

    def __init__(self, shared: _SharedFile) -> None:
        self.shared = shared
        self.closed = False
        shared.acquire()

    def seek(self, *args: Any) -> int:
        return int(self.shared.file.seek(*args))

    def tell(self) -> int:
        return int(self.shared.file.tell())

    def read(self, *args: Any) -> bytes:
        return bytes(self.shared.file.read(*args))

    def write(self, data: bytes) -> int:
        raise io.UnsupportedOperation("shared object bytes are read-only")

    def truncate(self, *args: Any) -> int:
        raise io.UnsupportedOperation("shared object bytes are read-only")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.shared.release()


class _MultipartView:
    """A fork's view of a completed multipart upload; only the owning key disposes the parts."""

    def __init__(self, multipart: Any) -> None:
        self._multipart = multipart

    def dispose(self) -> None:
        """Leave the parts to the key that owns them."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._multipart, name)


def stamp_of(version: Any) -> int:
    """The clock time a version was stored at (0 for versions stored before stamping began)."""
    return int(getattr(version, "_tigris_ts", 0))


def clone_key(key: FakeKey, bucket_name: str) -> FakeKey:
    """A ``FakeKey`` owned by ``bucket_name`` sharing ``key``'s bytes, which are not copied."""
    with key.lock:
        if not isinstance(key._value_buffer, SharedValueBuffer):
            # moto computes the ETag lazily without the lock: compute it once before sharing.
            _ = key.etag
            key._value_buffer = SharedValueBuffer(_SharedFile(key._value_buffer))
        # object.__new__ skips FakeKey.__init__ (which allocates a buffer) and moto's tracking.
        clone: FakeKey = object.__new__(type(key))
        clone.__dict__.update(key.__dict__)
        clone._value_buffer = SharedValueBuffer(key._value_buffer.shared)
    clone.bucket_name = bucket_name
    clone._metadata = copy.copy(key._metadata)
    clone.disposed = False
    if key.multipart is not None and not isinstance(key.multipart, _MultipartView):
        clone.multipart = _MultipartView(key.multipart)
    return clone


def dispose_versions(versions: list[Any]) -> None:
    """Release every version's hold on its bytes (delete markers hold none)."""
    for version in versions:
        if isinstance(version, FakeKey):
            version.dispose()


class ListingKeyStore(_VersionedKeyStore):  # type: ignore[misc]
    """moto's key store whose object listings leave out keys that are deleted now.

    moto lists objects from ``items()`` and only drops delete markers after it has collected
    the common prefixes, so a folder whose every key was deleted would still be listed and
    would shift ``KeyCount`` and page boundaries. ``items()``/``values()`` therefore yield live
    objects only; ``iterlists()`` (the version listing) and ``len()``/``bool()`` (is the bucket
    empty?) still count every version and delete marker, as S3 does.
    """

    def _live_lists(self) -> dict[str, list[Any]]:
        raw: dict[str, list[Any]] = dict.copy(self)
        return raw

    def _iteritems(self) -> Iterator[tuple[str, Any]]:
        for name, versions in self._live_lists().items():
            if versions and not isinstance(versions[-1], FakeDeleteMarker):
                yield name, versions[-1]

    def _itervalues(self) -> Iterator[Any]:
        for _, latest in self._iteritems():
            yield latest

    items = iteritems = _iteritems  # type: ignore[assignment]
    values = itervalues = _itervalues  # type: ignore[assignment]


class TigrisKeyStore(ListingKeyStore):
    """moto's key store for a snapshot-enabled bucket, with time-stamped versions and forks.

    ``parent``/``at`` make it a fork: keys it holds no entry for are read from ``parent`` as it
    was at clock time ``at``. moto reaches the store through a small set of methods (``in``,
    ``[]``, ``get``, ``getlist``, ``setlist``, ``pop``, ``items``, ``values``, ``iterlists``,
    ``len``); the ones that hand out a key moto may change materialise it first, the listing
    ones hand out the parent's keys read-only.

    A version moto removes (a delete by version id, or the key popped once it has no version
    left) leaves the bucket's current state only: it is *retired* at that clock time and stays
    visible to reads at earlier times, which is what the bucket's snapshots and its forks read.
    Its bytes are released once no time in ``readers()`` can see it any more.
    """

    def __init__(
        self,
        clock: Clock,
        bucket_name: str,
        parent: TigrisKeyStore | None = None,
        at: int | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.bucket_name = bucket_name
        self.parent = parent
        self.at = at
        # Keys removed outright (moto pops a key once its last version is deleted) that must not
        # fall through to the parent again, with the first time they were removed.
        self._hidden: dict[str, int] = {}
        # Versions no longer in the current state, each with the time it was retired.
        self._retired: dict[str, list[tuple[Any, int]]] = {}
        self._lock = threading.RLock()
        # Called with (inherited key, fork's clone) when a key is materialised, to copy what
        # moto keeps outside the key (its tags).
        self.on_clone: Callable[[FakeKey, FakeKey], None] | None = None
        # The clock times this store can still be read at: its snapshots and the fork points of
        # its live forks. None: nothing reads its past, retired versions are released at once.
        self.readers: Callable[[], Collection[int]] | None = None

    # -- stamping -------------------------------------------------------------------------
    def _stamp(self, version: Any) -> None:
        if getattr(version, "_tigris_ts", None) is None:
            stamp = self.clock.next()
            version._tigris_ts = stamp
            if getattr(version, "_version_id", "null") != "null":
                # Tigris version ids are the write's nanosecond timestamp.
                version._version_id = str(stamp)

    # -- reading at a point in time ---------------------------------------------------------
    def versions_at(self, name: str, at: int | None = None) -> list[Any]:
        """The versions of ``name`` this store itself held at ``at`` (None: now), oldest first."""
        live: list[Any] = dict.get(self, name) or []
        if at is None:
            return list(live)
        held = [v for v in live if stamp_of(v) <= at]
        held += [v for v, retired in self._retired.get(name, ()) if stamp_of(v) <= at < retired]
        held.sort(key=stamp_of)
        return held

    def visible(self, name: str, at: int | None = None) -> Any:
        """The version of ``name`` visible at ``at`` (None: now); a delete marker or None."""
        versions = self.versions_at(name, at)
        if versions:
            return versions[-1]
        if self._is_hidden(name, at):
            return None
        if self.parent is None:
            return None
        return self.parent.visible(name, self._parent_at(at))

    def _is_hidden(self, name: str, at: int | None) -> bool:
        hidden = self._hidden.get(name)
        return hidden is not None and (at is None or hidden <= at)

    def _parent_at(self, at: int | None) -> int | None:
        if self.at is None:
            return at
        return self.at if at is None else min(at, self.at)

    def view(self, at: int | None = None) -> dict[str, list[Any]]:
        """Every key visible at ``at`` with its versions (inherited keys: the visible one only)."""
        merged: dict[str, list[Any]] = {}
        if self.parent is not None:
            for name, versions in self.parent.view(self._parent_at(at)).items():
                latest = versions[-1]
                if isinstance(latest, FakeDeleteMarker) or self._is_hidden(name, at):
                    continue
                merged[name] = [latest]
        names: set[str] = set(dict.keys(self))
        if at is not None:
            names.update(self._retired)
        for name in names:
            versions = self.versions_at(name, at)
            if versions:
                merged[name] = versions
        return merged

    def own_versions(self) -> list[Any]:
        """Every version this store itself holds, retired ones included (not the inherited)."""
        own: dict[str, list[Any]] = dict.copy(self)
        versions = [v for versions in own.values() for v in versions]
        versions += [v for retired in self._retired.values() for v, _ in retired]
        return versions

    # -- retiring and releasing versions ----------------------------------------------------
    def _retire(self, name: str, versions: list[Any], when: int) -> None:
        if versions:
            self._retired.setdefault(name, []).extend((v, when) for v in versions)
            self._release_unread(name, self._reader_times())

    def _reader_times(self) -> Collection[int]:
        return self.readers() if self.readers is not None else ()

    def _release_unread(self, name: str, readers: Collection[int]) -> None:
        retired = self._retired.get(name)
        if not retired:
            return
        seen: set[int] = set()
        for at in readers:
            versions = self.versions_at(name, at)
            if versions:
                seen.add(id(versions[-1]))
        kept = [(v, when) for v, when in retired if id(v) in seen]
        if kept:
            self._retired[name] = kept
        else:
            del self._retired[name]
        dispose_versions([v for v, _ in retired if id(v) not in seen])

    def release_unread(self) -> None:
        """Release retired versions no reader can see since a snapshot or fork went away."""
        readers = self._reader_times()
        with self._lock:
            for name in list(self._retired):
                self._release_unread(name, readers)

    def retired_count(self) -> int:
        """How many retired versions are still kept for a snapshot or fork."""
        return sum(len(retired) for retired in self._retired.values())

    # -- materialising inherited keys -----------------------------------------------------
    def materialise(self, name: str) -> None:
        """Give the fork its own copy of an inherited key before its parent changes it in place."""
        self._materialise(name)

    def _materialise(self, name: str) -> None:
        if self.parent is None or dict.__contains__(self, name):
            return
        with self._lock:
            if dict.__contains__(self, name) or name in self._hidden:
                return
            inherited = self.parent.visible(name, self.at)
            if isinstance(inherited, FakeKey):
                clone = clone_key(inherited, self.bucket_name)
                if self.on_clone is not None:
                    self.on_clone(inherited, clone)
                dict.__setitem__(self, name, [clone])

    # -- moto's interface -----------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        return isinstance(name, str) and isinstance(self.visible(name), FakeKey)

    def __getitem__(self, name: str) -> Any:
        self._materialise(name)
        return super().__getitem__(name)

    def __setitem__(self, name: str, value: Any) -> Any:
        self._materialise(name)
        self._stamp(value)
        return super().__setitem__(name, value)

    def get(self, name: str, default: Any = None) -> Any:
        self._materialise(name)
        return super().get(name, default)

    def getlist(self, name: str, default: Any = None) -> Any:
        self._materialise(name)
        return super().getlist(name, default)

    def setlist(self, name: Any, list_: Any) -> Any:
        # moto disposes the versions left out of the new list; here they are retired instead.
        self._materialise(name)
        new = list(list_) if isinstance(list_, (list, tuple)) else [list_]
        for version in new:
            self._stamp(version)
        with self._lock:
            current: list[Any] = dict.get(self, name) or []
            dropped = [v for v in current if not any(v is kept for kept in new)]
            dict.__setitem__(self, name, new)
            if dropped:
                when = self.clock.next()
                if not new and self.parent is not None:
                    # moto pops the key next; from now on it must not fall through either.
                    self._hidden.setdefault(name, when)
                self._retire(name, dropped, when)

    def pop(self, name: str) -> None:  # type: ignore[override]
        self._materialise(name)
        with self._lock:
            versions: list[Any] = dict.pop(self, name)
            when = self.clock.next()
            if self.parent is not None:
                self._hidden.setdefault(name, when)
            self._retire(name, versions, when)

    def __len__(self) -> int:
        if self.parent is None:
            return dict.__len__(self)
        return len(self.view())

    def __bool__(self) -> bool:
        return dict.__len__(self) > 0 or (self.parent is not None and len(self) > 0)

    def _live_lists(self) -> dict[str, list[Any]]:
        return self.view()

    def _self_iterable(self) -> dict[str, Any]:
        return self.view()

    def _iterlists(self) -> Iterator[tuple[str, list[Any]]]:
        yield from self.view().items()

    lists = iterlists = _iterlists


def spill_large_values() -> None:
    """Make moto write an object bigger than its in-memory key buffer straight to a file.

    moto's key buffer is a ``SpooledTemporaryFile``: a large value is first copied into its
    in-memory buffer, then rolled over to disk, doubling the memory an upload costs.
    """
    if getattr(FakeKey, "_tigris_spills", False):
        return
    original = FakeKey.value

    def set_value(key: FakeKey, new_value: bytes) -> None:
        buffer = key._value_buffer
        if len(new_value) > key._max_buffer_size and hasattr(buffer, "rollover"):
            buffer.rollover()
        original.fset(key, new_value)

    FakeKey.value = property(original.fget, set_value)
    FakeKey._tigris_spills = True


class WeakInstanceTracker:
    """Stands in for moto's ``instances_tracked`` list without keeping deleted keys alive.

    moto appends every ``FakeKey`` ever built to a class-level list that only a reset clears,
    so a long-lived emulator would hold every deleted object (about 3 KB each) forever.
    """

    def __init__(self) -> None:
        self._refs: weakref.WeakSet[Any] = weakref.WeakSet()

    def append(self, instance: Any) -> None:
        self._refs.add(instance)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._refs))

    def __len__(self) -> int:
        return len(self._refs)
