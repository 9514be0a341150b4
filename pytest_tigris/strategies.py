"""How a fork is made and removed: Tigris's zero-copy forks, or copies on plain S3.

``--tigris-fork-mode`` picks one. The janitor (:mod:`pytest_tigris.janitor`) does everything
else the same way for both: names, the safety checks before a delete, retries, errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .janitor import ForkJanitor

__all__ = ["CopyForks", "ForkStrategy", "SnapshotForks", "strategy_for"]


class ForkStrategy(Protocol):
    """One way of making an isolated copy of a bucket."""

    #: Forks come from the run's pinned snapshot of the seed (and so can be made ahead of
    #: need, by the pool); False for copies, which plain S3 cannot pin.
    pins_snapshots: bool

    def make(
        self, janitor: ForkJanitor, name: str, source: str, snapshot: str | None, owner: str | None
    ) -> str | None:
        """Create ``name`` from ``source``; return the fork point (None for a copy)."""
        ...

    def remove(self, janitor: ForkJanitor, name: str) -> None:
        """Delete ``name`` and everything in it (raises botocore's errors)."""
        ...

    def provably_ours(self, janitor: ForkJanitor, name: str) -> bool:
        """Whether ``name``, which this process did not make, may be deleted as a fork."""
        ...


def strategy_for(fork_mode: str) -> ForkStrategy:
    return CopyForks() if fork_mode == "copy" else SnapshotForks()


class SnapshotForks:
    """Tigris forks: one CreateBucket with ``X-Tigris-Fork-Source-Bucket``, one force delete
    (through the janitor's :class:`~pytest_tigris.control.ControlClient` when it has one)."""

    pins_snapshots = True

    def make(
        self, janitor: ForkJanitor, name: str, source: str, snapshot: str | None, owner: str | None
    ) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        from .exceptions import TigrisForkError, TigrisSeedError
        from .janitor import ForkNameTakenError
        from .s3calls import (
            describe_client_error,
            error_code,
            fork_source_headers,
            snapshot_version,
        )

        try:
            if janitor.control is not None:
                response = janitor.control.create_fork(name, source, snapshot)
                janitor.created.add(name)
            else:
                headers = fork_source_headers(source, snapshot)
                response = janitor.call("create_bucket", headers, Bucket=name)
                janitor.created.add(name)
        except ClientError as exc:
            code = error_code(exc)
            if code in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
                retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
                found, point = janitor.fork_headers(name) if retried else (None, None)
                if found == source:
                    # botocore retried the CreateBucket and its first attempt went through
                    # (a timeout, a lost answer): the fork is ours. A name taken before our
                    # first attempt is never adopted: it may be a kept fork of an earlier run.
                    janitor.created.add(name)
                    return snapshot or point
                raise ForkNameTakenError(
                    f"bucket {name!r} already exists (bucket names are global)"
                ) from None
            if code in ("NoSuchBucket", "404"):
                raise TigrisSeedError(
                    f"cannot fork {source!r}: it does not exist at {janitor.endpoint_url}"
                ) from None
            if code == "NoSuchSnapshot":
                raise TigrisSeedError(
                    f"cannot fork {source!r} at snapshot {snapshot!r}: no such snapshot"
                ) from None
            known = describe_client_error(exc, janitor.endpoint_url)
            if known is not None:
                raise known from None
            message = exc.response.get("Error", {}).get("Message", "")
            raise TigrisForkError(
                f"could not fork {source!r} into {name!r}: {code or 'error'}: {message}"
            ) from None
        except BotoCoreError as exc:
            raise janitor.describe(exc) from None
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        # HeadBucket's fork-source snapshot is the documented fork point; the CreateBucket
        # answer's version header is all the embedded emulator is asked for.
        point = snapshot_version(headers.get("x-tigris-snapshot-version"))
        if janitor.remote and (snapshot is None or source not in janitor.verified):
            # The embedded emulator always forks; any other endpoint must prove it did: once
            # per source and process, or for every fork of the current state (its fork point
            # is known only from HeadBucket). An endpoint that honoured a fork header once
            # does not start ignoring it, and a pool fork saves a round trip.
            point = janitor.verify(name, source) or point
            janitor.verified.add(source)
            if owner is not None:
                janitor.mark(name, source, snapshot, owner)
        return snapshot or point

    def remove(self, janitor: ForkJanitor, name: str) -> None:
        if janitor.control is not None:
            janitor.control.force_delete(name)
            return
        from .s3calls import FORCE_DELETE_HEADERS

        janitor.call("delete_bucket", FORCE_DELETE_HEADERS, Bucket=name)

    def provably_ours(self, janitor: ForkJanitor, name: str) -> bool:
        # Gone already, or not a fork: either way not ours to delete.
        return not janitor.remote or janitor.fork_source(name) is not None


class CopyForks:
    """Plain S3: a new bucket plus a parallel server-side copy of every object of the source;
    removed by emptying it (every version) and deleting it."""

    pins_snapshots = False

    def __init__(self) -> None:
        # The seed is listed once per process: it does not change during a run.
        self._keys: dict[str, list[str]] = {}

    def make(
        self, janitor: ForkJanitor, name: str, source: str, snapshot: str | None, owner: str | None
    ) -> str | None:
        from concurrent.futures import ThreadPoolExecutor

        from botocore.exceptions import BotoCoreError, ClientError

        from .janitor import ForkNameTakenError
        from .s3calls import error_code

        try:
            keys = self._keys.get(source)
            if keys is None:
                keys = self._keys[source] = _all_keys(janitor.admin, source)
            janitor.call("create_bucket", Bucket=name)
            janitor.created.add(name)
            client = janitor.workers
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(
                    pool.map(
                        lambda key: client.copy_object(
                            Bucket=name, Key=key, CopySource={"Bucket": source, "Key": key}
                        ),
                        keys,
                    )
                )
        except ClientError as exc:
            if error_code(exc) in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
                raise ForkNameTakenError(
                    f"bucket {name!r} already exists (bucket names are global)"
                ) from None
            raise janitor.describe(exc) from None
        except BotoCoreError as exc:
            raise janitor.describe(exc) from None
        return None

    def remove(self, janitor: ForkJanitor, name: str) -> None:
        client = janitor.workers
        while True:
            # Always list from the start: a page marker pointing at a key deleted meanwhile
            # ends some servers' listings early (moto's does).
            page = client.list_object_versions(Bucket=name, MaxKeys=1000)
            entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
            if not entries:
                break
            objects = [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in entries]
            client.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=name)

    def provably_ours(self, janitor: ForkJanitor, name: str) -> bool:
        # A copy is a plain bucket: only one this process made is provably ours.
        return False


def _all_keys(client: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [entry["Key"] for entry in page.get("Contents", [])]
    return keys
