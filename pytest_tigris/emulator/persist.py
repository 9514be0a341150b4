"""An emulator that survives restarts (``pytest-tigris emulator --persist DIR``).

The whole S3 state (buckets, versions, tags, snapshots, forks and their lineage) is written to
``DIR/state.pickle``; object bytes go once each to ``DIR/blobs/<sha256>``. Objects that share
bytes (a fork's copy of an inherited key, identical uploads) share one blob, and after a load
they share one buffer again: forks stay zero-copy across the round trip.

The state is saved shortly after each change (debounced) and on a clean shutdown, under the
backend's exclusive lock so it is a consistent cut. It is a pickle: load only folders you
wrote yourself.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from moto.s3.models import FakeKey, s3_backends
from moto.s3.utils import _VersionedKeyStore

from .errors import InvalidPersistFolder
from .models import TigrisBackend
from .store import SharedValueBuffer, _SharedFile

__all__ = ["PersistentState"]

STATE = "state.pickle"
BLOBS = "blobs"
_FORMAT = 1
_CHUNK = 1024 * 1024
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class PersistentState:
    """Load and save a :class:`TigrisBackend` to a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.blobs = self.folder / BLOBS

    # -- loading --------------------------------------------------------------------------
    def load(self, backend: TigrisBackend) -> bool:
        """Restore ``backend`` from the folder; False when there is nothing saved yet."""
        path = self.folder / STATE
        if not path.is_file():
            return False
        try:
            with path.open("rb") as file:
                saved = _Unpickler(file, backend, self.blobs).load()
        except Exception as exc:
            raise InvalidPersistFolder(
                f"--persist {self.folder}: cannot load the saved state ({type(exc).__name__}: "
                f"{exc}): move the folder away to start empty",
                str(self.folder),
            ) from None
        if not isinstance(saved, dict) or saved.get("format") != _FORMAT:
            raise InvalidPersistFolder(
                f"--persist {self.folder}: the saved state is from another version of the "
                "emulator: move the folder away to start empty",
                str(self.folder),
            )
        s3 = backend.s3
        s3.buckets.update(saved["buckets"])
        s3.tagger.tags.update(saved["tags"])
        for name in saved["buckets"]:
            s3_backends.bucket_accounts[name] = backend.account_id
        backend.clock.restore(saved["clock"])
        return True

    # -- saving ---------------------------------------------------------------------------
    def save(self, backend: TigrisBackend) -> None:
        """Write the backend's state (under its exclusive lock); blobs no longer used go."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        with backend.lock.exclusive():
            buffer = io.BytesIO()
            pickler = _Pickler(buffer, backend, self.blobs)
            pickler.dump(
                {
                    "format": _FORMAT,
                    "buckets": dict(backend.s3.buckets),
                    "tags": dict(backend.s3.tagger.tags),
                    "clock": backend.clock.last,
                }
            )
            used = pickler.written
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".state-", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.folder / STATE)
        for blob in self.blobs.iterdir():
            if blob.name not in used:
                blob.unlink(missing_ok=True)


class _Pickler(pickle.Pickler):
    """Keys are pickled without their bytes; the bytes go to blobs, once per shared buffer."""

    def __init__(self, file: Any, backend: TigrisBackend, blobs: Path) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.backend = backend
        self.blobs = blobs
        self.written: set[str] = set()

    def persistent_id(self, obj: Any) -> Any:
        if obj is self.backend:
            return ("backend",)
        if obj is self.backend.clock:
            return ("clock",)
        if isinstance(obj, _SharedFile):
            return ("blob", self._blob(obj))
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, FakeKey):
            state = {k: v for k, v in obj.__dict__.items() if k not in ("_value_buffer", "lock")}
            return _rebuild_key, (type(obj), state, _shared_of(obj))
        if isinstance(obj, _VersionedKeyStore):
            # A key store is a dict whose item methods are overridden (they append versions,
            # read parents): rebuild it from its raw items, around those methods.
            return _rebuild_store, (type(obj), dict(dict.items(obj)), dict(obj.__dict__))
        if isinstance(obj, _LOCK_TYPES):
            return (threading.RLock, ()) if "RLock" in type(obj).__name__ else (threading.Lock, ())
        return NotImplemented

    def _blob(self, shared: _SharedFile) -> str:
        name: str | None = getattr(shared, "_tigris_blob", None)
        if name is None:
            # Stored bytes never change: hash them once per buffer.
            digest = hashlib.sha256()
            file = shared.file
            with _reading(file):
                while chunk := file.read(_CHUNK):
                    digest.update(chunk)
            name = digest.hexdigest()
            shared._tigris_blob = name  # type: ignore[attr-defined]
        target = self.blobs / name
        if not target.exists():
            temporary = target.with_suffix(".tmp")
            with temporary.open("wb") as out, _reading(shared.file) as source:
                shutil.copyfileobj(source, out, _CHUNK)
            os.replace(temporary, target)
        self.written.add(name)
        return name


class _reading:
    """Read a shared buffer from its start and leave its position where it was."""

    def __init__(self, file: Any) -> None:
        self.file = file

    def __enter__(self) -> Any:
        self.position = self.file.tell()
        self.file.seek(0)
        return self.file

    def __exit__(self, *exc: object) -> None:
        self.file.seek(self.position)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, backend: TigrisBackend, blobs: Path) -> None:
        super().__init__(file)
        self.backend = backend
        self.blobs = blobs
        self.loaded: dict[str, _SharedFile] = {}

    def persistent_load(self, pid: Any) -> Any:
        if pid == ("backend",):
            return self.backend
        if pid == ("clock",):
            return self.backend.clock
        kind, name = pid
        if kind != "blob":
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")
        shared = self.loaded.get(name)
        if shared is None:
            spooled = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
            with (self.blobs / name).open("rb") as source:
                shutil.copyfileobj(source, spooled, _CHUNK)
            spooled.seek(0)
            shared = _SharedFile(spooled)
            shared._tigris_blob = name  # type: ignore[attr-defined]
            self.loaded[name] = shared
        return shared


def _shared_of(key: FakeKey) -> _SharedFile:
    """The key's bytes as a shareable buffer (converting a plain one, as forks do)."""
    with key.lock:
        buffer = key._value_buffer
        if not isinstance(buffer, SharedValueBuffer):
            _ = key.etag  # computed once, before the buffer changes hands
            key._value_buffer = buffer = SharedValueBuffer(_SharedFile(buffer))
        return buffer.shared


def _rebuild_store(cls: type, items: dict[str, Any], state: dict[str, Any]) -> Any:
    store: Any = dict.__new__(cls)
    store.__dict__.update(state)
    dict.update(store, items)
    return store


def _rebuild_key(cls: type, state: dict[str, Any], shared: _SharedFile) -> FakeKey:
    key: FakeKey = object.__new__(cls)
    key.__dict__.update(state)
    key.lock = threading.Lock()
    key._value_buffer = SharedValueBuffer(shared)
    return key
