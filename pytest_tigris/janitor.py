"""``ForkJanitor``: fork, snapshot, verify and force-delete, idempotently and safely.

The fixtures, the end-of-run sweep and the CLI all go through it. It talks to the endpoint
with a dedicated admin client behind a lock (tigris-boto3-ext injects its headers per client,
which is not safe across concurrent calls), never with a client handed to tests. It refuses to
delete anything that is not a fork this project made.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import (
    TigrisEndpointError,
    TigrisForkError,
    TigrisSeedError,
    TigrisUnsafeDeleteError,
)
from .naming import parse_fork_name, run_snapshot_name
from .s3calls import (
    ENDPOINT_HINT,
    ThreadHeaders,
    describe_client_error,
    error_code,
    error_status,
    retryable,
    snapshot_version,
)
from .strategies import ForkStrategy, SnapshotForks

if TYPE_CHECKING:
    from .control import ControlClient

__all__ = ["ForkJanitor", "ForkNameTakenError", "SnapshotEntry", "describe_client_error"]

_SNAPSHOT_ATTEMPTS = 6


class ForkNameTakenError(TigrisForkError):
    """The fork's name is already a bucket (names are global on Tigris)."""


@dataclass(frozen=True)
class SnapshotEntry:
    """One snapshot of a bucket, as Tigris lists it."""

    version: str
    label: str | None  # the name given at creation (``true; name=N``), if any
    created: datetime.datetime | None

    @classmethod
    def parse(cls, raw: str, created: datetime.datetime | None = None) -> SnapshotEntry:
        """From a listing's ``<version>`` or ``<version>; name=<name>``."""
        version, _, rest = raw.partition(";")
        rest = rest.strip()
        label = rest[len("name=") :] if rest.startswith("name=") else None
        return cls(version.strip(), label, created)


class ForkJanitor:
    """Creates and deletes forks on one endpoint; safe to call ``delete`` twice.

    ``single_shot_factory`` builds a client that never retries by itself: snapshots are taken
    with it, so a retry happens only after checking that the first attempt did not go through
    (a retried snapshot would be a second one). Without it the admin client is used.

    ``endpoint_hint``: where the endpoint was set, for messages about a wrong one (None: the
    plugin's settings, and its other ways out: the emulator, copy mode).
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        endpoint_url: str | None,
        *,
        protected: Iterable[str] = (),
        remote: bool = True,
        strategy: ForkStrategy | None = None,
        single_shot_factory: Callable[[], Any] | None = None,
        control: ControlClient | None = None,
        endpoint_hint: str | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._single_shot_factory = single_shot_factory
        self._client: Any = None
        self._single_shot: Any = None
        self._workers: Any = None
        self._lockfree: tuple[Any, ThreadHeaders] | None = None
        self._labels: dict[str, dict[str, str | None]] = {}
        self.endpoint_url = endpoint_url
        self.endpoint_hint = endpoint_hint
        self.protected = set(protected)
        self.remote = remote
        # How forks are made: Tigris forks, or copies (plain S3: --tigris-fork-mode=copy).
        self.strategy: ForkStrategy = strategy or SnapshotForks()
        # Forks made and deleted without boto3 (the embedded emulator: see control.py).
        self.control = control
        self.created: set[str] = set()
        # Sources whose forks this endpoint was seen to make (HeadBucket on one of them).
        self.verified: set[str] = set()
        self.lock = threading.RLock()

    @property
    def admin(self) -> Any:
        """The admin client (built on first use): calls that inject headers through
        tigris-boto3-ext go through it, behind :attr:`lock`."""
        with self.lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def prepare(self) -> None:
        """Build the clients now, on this thread: building one reads ``os.environ``, which a
        test may be changing (``monkeypatch``) while the pool's and deleter's threads run."""
        _ = self.admin
        if self.control is None:  # the embedded emulator's forks go through ``control``
            self._calls()

    def _calls(self) -> tuple[Any, ThreadHeaders]:
        with self.lock:
            if self._lockfree is None:
                client = self._client_factory()
                self._lockfree = (client, ThreadHeaders(client))
            return self._lockfree

    def call(self, operation: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        """One S3 call, with extra ``headers``, on a client of the janitor's own that needs no
        lock: the pool's threads create forks while the deleter deletes others."""
        client, injector = self._calls()
        method = getattr(client, operation)
        if not headers:
            return method(**params)
        with injector.sending(headers):
            return method(**params)

    def describe(self, exc: Exception) -> Exception:
        hint = self.endpoint_hint or ENDPOINT_HINT
        return describe_client_error(exc, self.endpoint_url, hint=hint) or exc

    def _to_tigris(self, plugin_ways: str) -> str:
        """How to get an endpoint that forks: ``plugin_ways`` when the endpoint is the
        plugin's setting, else point the caller's setting at Tigris."""
        if self.endpoint_hint is None:
            return plugin_ways
        return f"point {self.endpoint_hint} at Tigris (https://t3.storage.dev)"

    # -- the seed -------------------------------------------------------------------------
    def check_seed(self, seed: str, *, what: str = "--tigris-seed") -> None:
        """Raise a clear error unless ``seed`` exists, is reachable and is snapshot-enabled.

        ``what``: where the name came from (the option, the CLI's argument...), to be fixed
        when there is no such bucket.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with self.lock:
                response = self.admin.head_bucket(Bucket=seed)
        except ClientError as exc:
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            web_page = "html" in headers.get("content-type", "")
            if web_page and not any(h.startswith("x-amz") for h in headers):
                raise TigrisEndpointError(
                    f"{self.endpoint_url} does not speak S3 (HTTP {error_status(exc)} without S3 "
                    f"headers): check {self.endpoint_hint or ENDPOINT_HINT}"
                ) from None
            if error_status(exc) == 404 or error_code(exc) in ("404", "NoSuchBucket"):
                raise TigrisSeedError(
                    f"seed bucket {seed!r} does not exist at {self.endpoint_url}: create it "
                    f"(snapshot-enabled) or fix {what}"
                ) from None
            raise self.describe(exc) from None
        except BotoCoreError as exc:
            raise self.describe(exc) from None
        if not self.strategy.pins_snapshots:
            return  # copies need no snapshots
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        flag = headers.get("x-tigris-enable-snapshot")
        if flag is None:
            raise TigrisEndpointError(
                f"{self.endpoint_url} does not speak Tigris (HeadBucket has no "
                "X-Tigris-Enable-Snapshot header): it cannot fork buckets; "
                + self._to_tigris(
                    "point --tigris-endpoint at Tigris (https://t3.storage.dev), use the "
                    "emulator, or use --tigris-fork-mode=copy (slow)"
                )
            )
        if flag.lower() != "true":
            raise TigrisSeedError(
                f"seed bucket {seed!r} is not snapshot-enabled, so it cannot be forked: "
                "enable snapshots on it (Tigris dashboard, or tigris_boto3_ext.update_bucket"
                f"(client, {seed!r}, snapshot_enabled=True))"
            )

    def snapshot(self, bucket: str, name: str | None = None, *, fresh: bool = False) -> str:
        """Take a snapshot of ``bucket``; returns its version.

        A named snapshot is taken once even when requests fail after the server acted (a
        late 5xx, a lost answer): before each retry the bucket's snapshots are searched for a
        new one with that name. ``fresh``: ``bucket`` is known to have no snapshot of that name
        yet (it was just created, say), so there is nothing to list first.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if name is None:
            try:
                return self._create_snapshot(self.admin, bucket, None)
            except (ClientError, BotoCoreError) as exc:
                raise self.describe(exc) from None
        try:
            before = set() if fresh else {e.version for e in self.snapshots(bucket)}
            last: Exception | None = None
            for attempt in range(_SNAPSHOT_ATTEMPTS):
                if last is not None:
                    time.sleep(min(2.0, 0.1 * 2**attempt))
                    found = self._find_new_snapshot(bucket, name, before)
                    if found is not None:
                        return found
                try:
                    return self._create_snapshot(self._single_shot_client(), bucket, name)
                except (ClientError, BotoCoreError) as exc:
                    if not retryable(exc):
                        raise
                    last = exc
            found = self._find_new_snapshot(bucket, name, before)
        except (ClientError, BotoCoreError) as exc:
            raise self.describe(exc) from None
        if found is not None:
            return found
        assert last is not None
        raise self.describe(last) from None

    def _single_shot_client(self) -> Any:
        with self.lock:
            if self._single_shot is None:
                factory = self._single_shot_factory
                self._single_shot = factory() if factory is not None else self.admin
            return self._single_shot

    def _create_snapshot(self, client: Any, bucket: str, name: str | None) -> str:
        from tigris_boto3_ext import create_snapshot, get_snapshot_version

        with self.lock:
            response = create_snapshot(client, bucket, snapshot_name=name)
        version = get_snapshot_version(response)
        if not version:
            raise TigrisEndpointError(
                f"{self.endpoint_url} answered a snapshot request without "
                "X-Tigris-Snapshot-Version: it does not support Tigris snapshots"
            )
        with self.lock:
            self._labels.setdefault(bucket, {})[str(version)] = name
        return str(version)

    def _find_new_snapshot(self, bucket: str, name: str, before: set[str]) -> str | None:
        for entry in self.snapshots(bucket):
            if entry.label == name and entry.version not in before:
                return entry.version
        return None

    def snapshots(self, bucket: str) -> list[SnapshotEntry]:
        """Every snapshot of ``bucket`` (none for a regular bucket), through all pages."""
        entries: list[SnapshotEntry] = []
        token: str | None = None

        def listing(request: Any, **kwargs: Any) -> None:
            request.headers["X-Tigris-Snapshot"] = bucket

        with self.lock:
            client = self.admin
            client.meta.events.register("before-sign.s3.ListBuckets", listing)
            try:
                while True:
                    page = client.list_buckets(**({"ContinuationToken": token} if token else {}))
                    entries += [
                        SnapshotEntry.parse(str(b["Name"]), b.get("CreationDate"))
                        for b in page.get("Buckets", [])
                    ]
                    token = page.get("ContinuationToken")
                    if not token:
                        break
            finally:
                client.meta.events.unregister("before-sign.s3.ListBuckets", listing)
            self._labels[bucket] = {e.version: e.label for e in entries}
        return entries

    def delete_snapshot(self, bucket: str, version: str) -> bool:
        """Delete one snapshot of ``bucket`` (the bucket and its forks are untouched); False
        if it was gone already. Safe to repeat."""
        from botocore.exceptions import ClientError
        from tigris_boto3_ext import delete_snapshot

        try:
            with self.lock:
                delete_snapshot(self.admin, bucket, version)
        except ClientError as exc:
            # A retried delete whose first attempt went through finds nothing to delete.
            gone = error_code(exc) in ("NoSuchSnapshot", "NoSuchBucket", "404")
            if gone or error_status(exc) == 404:
                return False
            raise
        return True

    def resolve_snapshot(
        self, bucket: str, wanted: str, what: str = "--tigris-seed-snapshot"
    ) -> str:
        """The version of the snapshot of ``bucket`` named or numbered ``wanted``.

        ``what`` names the setting the value came from, for the error message.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            listed = self.snapshots(bucket)
        except (ClientError, BotoCoreError) as exc:
            raise self.describe(exc) from None
        for entry in listed:
            if wanted in (entry.version, entry.label):
                return entry.version
        raise TigrisSeedError(
            f"{what} {wanted!r}: bucket {bucket!r} has no snapshot with that "
            "version or name (list them with tigris_boto3_ext.list_snapshots)"
        )

    # -- forks ----------------------------------------------------------------------------
    def fork(
        self, name: str, source: str, snapshot: str | None = None, *, owner: str | None = None
    ) -> str | None:
        """Create ``name`` as a fork of ``source`` (the strategy's way) and check it really is
        one.

        Returns the fork point: the version of ``source`` the fork was made at (for a fork of
        the current state, the snapshot Tigris took implicitly); None in copy mode.

        ``owner``: the run id making it. On a remote endpoint the fork then carries proof that
        the run made it, for ``pytest-tigris sweep``: it is made from the run's snapshot
        ``pytest-tigris-<run>``, or else gets a snapshot of its own by that name.
        """
        return self.strategy.make(self, name, source, snapshot, owner)

    def mark(self, name: str, source: str, snapshot: str | None, owner: str) -> None:
        parsed = parse_fork_name(name)
        if parsed is None or parsed.run_id != owner:
            return  # a hook-chosen name: the sweeper never considers it anyway
        mark = run_snapshot_name(owner)
        if snapshot is not None and self._label(source, snapshot) == mark:
            return  # made from the run's own snapshot: that is the proof
        try:
            self.snapshot(name, mark, fresh=True)
        except Exception:
            # Unprovable, so no sweeper would ever take it: remove it now (it is ours).
            from contextlib import suppress

            with suppress(Exception):
                self._force_delete(name)
            raise

    def mark_owned(self, name: str, owner: str) -> bool:
        """Make sure the fork ``name`` carries run ``owner``'s mark, so that it stays provably
        ours after the run's snapshot is gone (a kept fork). False when it could not."""
        parsed = parse_fork_name(name)
        if not self.remote or not self.strategy.pins_snapshots:
            return False  # the embedded emulator's forks, and copies, carry no marks
        if parsed is None or parsed.run_id != owner:
            return False
        mark = run_snapshot_name(owner)
        try:
            if not any(entry.label == mark for entry in self.snapshots(name)):
                self.snapshot(name, mark, fresh=True)
        except Exception:
            return False  # best effort: the fork is kept either way, only sweep cannot take it
        return True

    def _label(self, bucket: str, version: str) -> str | None:
        """The name of snapshot ``version`` of ``bucket`` (listed again when not known)."""
        version, _, rest = version.partition(";")
        rest = rest.strip()
        if rest.startswith("name="):
            return rest[len("name=") :]
        version = version.strip()
        with self.lock:
            known = self._labels.get(bucket, {})
            if version in known:
                return known[version]
        return next((e.label for e in self.snapshots(bucket) if e.version == version), None)

    def owned_run(self, name: str) -> str | None:
        """The run that provably made the fork ``name``, or None.

        Proof is a name of the fork pattern *and* a snapshot named after that name's run:
        either the one the fork was made from (the run's pinned snapshot of the seed) or one
        of the fork's own (the mark :meth:`fork` leaves). A named environment, or any bucket
        someone named like a fork, has neither.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        parsed = parse_fork_name(name)
        if parsed is None:
            return None
        mark = run_snapshot_name(parsed.run_id)
        try:
            response = self.call("head_bucket", Bucket=name)
        except ClientError as exc:
            if error_status(exc) == 404 or error_code(exc) in ("404", "NoSuchBucket"):
                return None
            raise self.describe(exc) from None
        except BotoCoreError as exc:
            raise self.describe(exc) from None
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        source = headers.get("x-tigris-fork-source-bucket")
        if not source:
            return None  # not a fork: a plain bucket is never ours to sweep
        version = headers.get("x-tigris-fork-source-bucket-snapshot")
        try:
            if version and self._label(source, version) == mark:
                return parsed.run_id
        except ClientError:
            pass  # a source we may not list (not ours, or gone): look at the fork itself
        try:
            if any(entry.label == mark for entry in self.snapshots(name)):
                return parsed.run_id
        except (ClientError, BotoCoreError) as exc:
            raise self.describe(exc) from None
        return None

    def fork_source(self, name: str) -> str | None:
        """The bucket ``name`` was forked from, or None (not a fork, or gone)."""
        return self.fork_headers(name)[0]

    def fork_headers(self, name: str) -> tuple[str | None, str | None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.call("head_bucket", Bucket=name)
        except (ClientError, BotoCoreError):
            return None, None
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        source = headers.get("x-tigris-fork-source-bucket")
        if not source:
            return None, None
        return str(source), snapshot_version(headers.get("x-tigris-fork-source-bucket-snapshot"))

    def verify(self, name: str, source: str) -> str | None:
        """Fail loudly, never hand tests an empty bucket, when the server ignored the fork.

        Returns the fork point the server reports (None if it reports none).
        """
        found, point = self.fork_headers(name)
        if found == source:
            return point
        # We just created it, so it is ours to remove: it is an ordinary empty bucket.
        from contextlib import suppress

        with suppress(Exception):
            self.call("delete_bucket", Bucket=name)
        self.created.discard(name)
        raise TigrisForkError(
            f"{self.endpoint_url} created {name!r} as a plain bucket, not a fork of {source!r}: "
            "the endpoint does not support Tigris forks (X-Tigris-Fork-Source-Bucket); "
            + self._to_tigris("point --tigris-endpoint at Tigris or use the emulator")
        )

    def list_forks(self, source: str) -> list[str]:
        """Names of the live forks of ``source``."""
        from tigris_boto3_ext import list_forks

        names: list[str] = []
        token = None
        while True:
            with self.lock:
                page = list_forks(self.admin, source, continuation_token=token)
            names += [entry["name"] for entry in page["buckets"]]
            token = page.get("continuation_token")
            if not token:
                return names

    def check_deletable(self, name: str) -> None:
        """Raise :class:`TigrisUnsafeDeleteError` unless ``name`` is a fork this project made."""
        if name in self.protected:
            raise TigrisUnsafeDeleteError(f"refusing to delete {name!r}: it is protected")
        if name not in self.created and parse_fork_name(name) is None:
            raise TigrisUnsafeDeleteError(
                f"refusing to delete {name!r}: not a pytest-tigris fork name"
            )

    def delete(self, name: str) -> bool:
        """Force-delete the fork ``name``; False if it was already gone. Safe to repeat.

        The one way this project deletes a fork: a test's teardown, the end-of-run sweep and
        ``pytest-tigris sweep`` all come here (the last two through :meth:`delete_all`).
        """
        self.check_deletable(name)
        if name not in self.created and not self.strategy.provably_ours(self, name):
            return False
        return self._force_delete(name)

    def delete_all(
        self, names: list[str], *, passes: int = 4, pause: float = 0.2
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Delete the forks ``names`` (in that order), retrying what was refused once the
        others are gone: Tigris refuses to delete a bucket that still has forks, so a parent
        listed before its child goes on a later pass.

        Returns the names deleted and ``(name, error)`` of those still there after ``passes``.
        """
        deleted: list[str] = []
        todo = list(names)
        refused: list[tuple[str, str]] = []
        for attempt in range(passes):
            refused = []
            for name in todo:
                try:
                    if self.delete(name):
                        deleted.append(name)
                except Exception as exc:  # report every failure, keep going
                    refused.append((name, str(exc)))
            if not refused:
                break
            todo = [name for name, _ in refused]
            if attempt < passes - 1:
                time.sleep(pause)
        return deleted, refused

    def delete_env(self, name: str) -> bool:
        """Force-delete the named environment ``name``, which must be a fork (never a seed)."""
        if name in self.protected:
            raise TigrisUnsafeDeleteError(f"refusing to delete {name!r}: it is protected")
        if self.fork_source(name) is None:
            if self.head(name) is None:
                return False
            raise TigrisUnsafeDeleteError(
                f"refusing to delete {name!r}: it is not a fork (a seed or a regular bucket)"
            )
        return self._force_delete(name)

    def head(self, name: str) -> dict[str, str] | None:
        """The bucket's HeadBucket answer headers, or None when it does not exist; other
        failures are described (:meth:`describe`)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.call("head_bucket", Bucket=name)
        except ClientError as exc:
            if error_status(exc) == 404:
                return None
            raise self.describe(exc) from None
        except BotoCoreError as exc:
            raise self.describe(exc) from None
        return dict(response["ResponseMetadata"]["HTTPHeaders"])

    def _force_delete(self, name: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.strategy.remove(self, name)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchBucket", "404") or error_status(exc) == 404:
                self.created.discard(name)
                return False
            raise self.describe(exc) from None
        except BotoCoreError as exc:
            raise self.describe(exc) from None
        self.created.discard(name)
        return True

    def new_client(self) -> Any:
        """Another client like the admin one."""
        return self._client_factory()

    @property
    def workers(self) -> Any:
        """A second client for bulk copies, uploads and deletes (clients are thread-safe for
        plain S3 calls; the admin client is kept for header-injecting ones)."""
        with self.lock:
            if self._workers is None:
                self._workers = self._client_factory()
            return self._workers
