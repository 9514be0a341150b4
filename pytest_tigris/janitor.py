"""``ForkJanitor``: fork, snapshot, verify and force-delete, idempotently and safely.

The fixtures, the end-of-run sweep and the CLI all go through it. It talks to the endpoint
with a dedicated admin client behind a lock (tigris-boto3-ext injects its headers per client,
which is not safe across concurrent calls), never with a client handed to tests. It refuses to
delete anything that is not a fork this project made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from .exceptions import (
    TigrisEndpointError,
    TigrisForkError,
    TigrisSeedError,
    TigrisUnsafeDeleteError,
)
from .naming import parse_fork_name

__all__ = ["ForkJanitor", "ForkNameTakenError", "describe_client_error"]


class ForkNameTakenError(TigrisForkError):
    """The fork's name is already a bucket (names are global on Tigris)."""


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def describe_client_error(exc: Exception, endpoint_url: str | None) -> TigrisEndpointError | None:
    """A one-line, actionable error for the failures every user hits, or None."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    where = endpoint_url or "the default endpoint"
    if isinstance(exc, EndpointConnectionError):
        return TigrisEndpointError(
            f"Connection refused by {where}: check --tigris-endpoint / AWS_ENDPOINT_URL_S3 "
            "and that the server is running"
        )
    if isinstance(exc, ReadTimeoutError):
        return TigrisEndpointError(f"{where} did not answer in time: check the endpoint URL")
    if isinstance(exc, NoCredentialsError):
        return TigrisEndpointError(
            f"No credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE, or put them in .env.local)"
        )
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return TigrisEndpointError(
                f"Access Denied by {where} ({code}): check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY (Tigris keys look like tid_... / tsec_...)"
            )
    return None


class ForkJanitor:
    """Creates and deletes forks on one endpoint; safe to call ``delete`` twice."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        endpoint_url: str | None,
        *,
        protected: Iterable[str] = (),
        remote: bool = True,
        copy_mode: bool = False,
    ) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self.endpoint_url = endpoint_url
        self.protected = set(protected)
        self.remote = remote
        # Copy mode: forks are plain buckets filled by server-side copies (S3 without forks).
        self.copy_mode = copy_mode
        self.created: set[str] = set()
        self._seed_keys: dict[str, list[str]] = {}
        self._lock = threading.RLock()

    @property
    def admin(self) -> Any:
        """The admin client (built on first use)."""
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _fail(self, exc: Exception) -> Exception:
        return describe_client_error(exc, self.endpoint_url) or exc

    # -- the seed -------------------------------------------------------------------------
    def check_seed(self, seed: str) -> None:
        """Raise a clear error unless ``seed`` exists, is reachable and is snapshot-enabled."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with self._lock:
                response = self.admin.head_bucket(Bucket=seed)
        except ClientError as exc:
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            web_page = "html" in headers.get("content-type", "")
            if web_page and not any(h.startswith("x-amz") for h in headers):
                raise TigrisEndpointError(
                    f"{self.endpoint_url} does not speak S3 (HTTP {_status(exc)} without S3 "
                    "headers): check --tigris-endpoint / AWS_ENDPOINT_URL_S3"
                ) from None
            if _status(exc) == 404 or _code(exc) in ("404", "NoSuchBucket"):
                raise TigrisSeedError(
                    f"seed bucket {seed!r} does not exist at {self.endpoint_url}: create it "
                    "(snapshot-enabled) or fix --tigris-seed"
                ) from None
            raise self._fail(exc) from None
        except BotoCoreError as exc:
            raise self._fail(exc) from None
        if self.copy_mode:
            return
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        flag = headers.get("x-tigris-enable-snapshot")
        if flag is None:
            raise TigrisEndpointError(
                f"{self.endpoint_url} does not speak Tigris (HeadBucket has no "
                "X-Tigris-Enable-Snapshot header): it cannot fork buckets; point "
                "--tigris-endpoint at Tigris (https://t3.storage.dev), use the emulator, or "
                "use --tigris-fork-mode=copy (slow)"
            )
        if flag.lower() != "true":
            raise TigrisSeedError(
                f"seed bucket {seed!r} is not snapshot-enabled, so it cannot be forked: "
                "enable snapshots on it (Tigris dashboard, or tigris_boto3_ext.update_bucket"
                f"(client, {seed!r}, snapshot_enabled=True))"
            )

    def snapshot(self, bucket: str, name: str | None = None) -> str:
        """Take a snapshot of ``bucket``; returns its version."""
        from botocore.exceptions import BotoCoreError, ClientError
        from tigris_boto3_ext import create_snapshot, get_snapshot_version

        try:
            with self._lock:
                response = create_snapshot(self.admin, bucket, snapshot_name=name)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc) from None
        version = get_snapshot_version(response)
        if not version:
            raise TigrisEndpointError(
                f"{self.endpoint_url} answered a snapshot request without "
                "X-Tigris-Snapshot-Version: it does not support Tigris snapshots"
            )
        return str(version)

    def delete_snapshot(self, bucket: str, version: str) -> None:
        """Delete one snapshot of ``bucket`` (the bucket and its forks are untouched)."""
        from tigris_boto3_ext import delete_snapshot

        with self._lock:
            delete_snapshot(self.admin, bucket, version)

    def resolve_snapshot(
        self, bucket: str, wanted: str, what: str = "--tigris-seed-snapshot"
    ) -> str:
        """The version of the snapshot of ``bucket`` named or numbered ``wanted``.

        ``what`` names the setting the value came from, for the error message.
        """
        from botocore.exceptions import BotoCoreError, ClientError
        from tigris_boto3_ext import list_snapshots

        try:
            with self._lock:
                listed = list_snapshots(self.admin, bucket).get("Buckets", [])
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc) from None
        for entry in listed:
            version, _, rest = str(entry["Name"]).partition(";")
            label = rest.strip()[len("name=") :] if rest.strip().startswith("name=") else None
            if wanted in (version.strip(), label):
                return version.strip()
        raise TigrisSeedError(
            f"{what} {wanted!r}: bucket {bucket!r} has no snapshot with that "
            "version or name (list them with tigris_boto3_ext.list_snapshots)"
        )

    # -- forks ----------------------------------------------------------------------------
    def fork(self, name: str, source: str, snapshot: str | None = None) -> None:
        """Create ``name`` as a fork of ``source`` and check it really is one."""
        from botocore.exceptions import BotoCoreError, ClientError
        from tigris_boto3_ext import create_fork

        if self.copy_mode:
            self._copy_fork(name, source)
            return
        try:
            with self._lock:
                create_fork(self.admin, name, source, snapshot_version=snapshot)
                self.created.add(name)
        except ClientError as exc:
            code = _code(exc)
            if code in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
                retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
                if retried and self.fork_source(name) == source:
                    # botocore retried the CreateBucket and its first attempt went through
                    # (a timeout, a lost answer): the fork is ours. A name taken before our
                    # first attempt is never adopted: it may be a kept fork of an earlier run.
                    self.created.add(name)
                    return
                raise ForkNameTakenError(
                    f"bucket {name!r} already exists (bucket names are global)"
                ) from None
            if code in ("NoSuchBucket", "404"):
                raise TigrisSeedError(
                    f"cannot fork {source!r}: it does not exist at {self.endpoint_url}"
                ) from None
            if code == "NoSuchSnapshot":
                raise TigrisSeedError(
                    f"cannot fork {source!r} at snapshot {snapshot!r}: no such snapshot"
                ) from None
            known = describe_client_error(exc, self.endpoint_url)
            if known is not None:
                raise known from None
            message = exc.response.get("Error", {}).get("Message", "")
            raise TigrisForkError(
                f"could not fork {source!r} into {name!r}: {code or 'error'}: {message}"
            ) from None
        except BotoCoreError as exc:
            raise self._fail(exc) from None
        if self.remote:
            # The embedded emulator always forks; any other endpoint must prove it did.
            self.verify(name, source)

    def fork_source(self, name: str) -> str | None:
        """The bucket ``name`` was forked from, or None (not a fork, or gone)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with self._lock:
                response = self.admin.head_bucket(Bucket=name)
        except (ClientError, BotoCoreError):
            return None
        source = response["ResponseMetadata"]["HTTPHeaders"].get("x-tigris-fork-source-bucket")
        return str(source) if source else None

    def verify(self, name: str, source: str) -> None:
        """Fail loudly, never hand tests an empty bucket, when the server ignored the fork."""
        if self.fork_source(name) == source:
            return
        # We just created it, so it is ours to remove: it is an ordinary empty bucket.
        from contextlib import suppress

        with suppress(Exception), self._lock:
            self.admin.delete_bucket(Bucket=name)
        self.created.discard(name)
        raise TigrisForkError(
            f"{self.endpoint_url} created {name!r} as a plain bucket, not a fork of {source!r}: "
            "the endpoint does not support Tigris forks (X-Tigris-Fork-Source-Bucket); point "
            "--tigris-endpoint at Tigris or use the emulator"
        )

    def list_forks(self, source: str) -> list[str]:
        """Names of the live forks of ``source``."""
        from tigris_boto3_ext import list_forks

        names: list[str] = []
        token = None
        while True:
            with self._lock:
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
        """Force-delete the fork ``name``; False if it was already gone. Safe to repeat."""
        self.check_deletable(name)
        if self.copy_mode and name not in self.created:
            # A copy is a plain bucket: only one this process made is provably ours.
            return False
        if self.remote and name not in self.created and self.fork_source(name) is None:
            # Gone already, or not a fork: either way not ours to delete.
            return False
        return self._force_delete(name)

    def delete_env(self, name: str) -> bool:
        """Force-delete the named environment ``name``, which must be a fork (never a seed)."""
        if name in self.protected:
            raise TigrisUnsafeDeleteError(f"refusing to delete {name!r}: it is protected")
        if self.fork_source(name) is None:
            if not self._exists(name):
                return False
            raise TigrisUnsafeDeleteError(
                f"refusing to delete {name!r}: it is not a fork (a seed or a regular bucket)"
            )
        return self._force_delete(name)

    def _exists(self, name: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with self._lock:
                self.admin.head_bucket(Bucket=name)
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise self._fail(exc) from None
        except BotoCoreError as exc:
            raise self._fail(exc) from None
        return True

    # -- copy mode ------------------------------------------------------------------------
    def _copy_fork(self, name: str, source: str) -> None:
        """A plain bucket plus a parallel server-side copy of every object of ``source``."""
        from concurrent.futures import ThreadPoolExecutor

        from botocore.exceptions import BotoCoreError, ClientError

        try:
            keys = self._seed_keys.get(source)
            if keys is None:
                # The seed is listed once per process: it does not change during a run.
                keys = self._seed_keys[source] = _all_keys(self.admin, source)
            with self._lock:
                self.admin.create_bucket(Bucket=name)
            self.created.add(name)
            client = self.workers
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
            if _code(exc) in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
                raise ForkNameTakenError(
                    f"bucket {name!r} already exists (bucket names are global)"
                ) from None
            raise self._fail(exc) from None
        except BotoCoreError as exc:
            raise self._fail(exc) from None

    @property
    def workers(self) -> Any:
        """A second client for bulk copies and deletes (clients are thread-safe for plain
        S3 calls; the admin client is kept for header-injecting ones)."""
        with self._lock:
            if getattr(self, "_workers", None) is None:
                self._workers = self._client_factory()
            return self._workers

    def _empty_and_delete(self, name: str) -> None:
        client = self.workers
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

    def _force_delete(self, name: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError
        from tigris_boto3_ext import force_delete_bucket

        try:
            if self.copy_mode:
                self._empty_and_delete(name)
                self.created.discard(name)
                return True
            with self._lock:
                force_delete_bucket(self.admin, name)
        except ClientError as exc:
            if _code(exc) in ("NoSuchBucket", "404") or _status(exc) == 404:
                self.created.discard(name)
                return False
            raise self._fail(exc) from None
        except BotoCoreError as exc:
            raise self._fail(exc) from None
        self.created.discard(name)
        return True


def _all_keys(client: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [entry["Key"] for entry in page.get("Contents", [])]
    return keys
