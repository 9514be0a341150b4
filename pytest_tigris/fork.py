"""``Fork``: the handle a test gets for one fork (its name, clients, environment, changes).

Made by :class:`~pytest_tigris.factory.TigrisForkFactory`; nothing here talks to the backend
except through the fork's own clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

if TYPE_CHECKING:
    from .client import ClientFactory

__all__ = ["Changes", "EnvSetter", "Fork"]


@dataclass(frozen=True)
class Changes:
    """What a fork changed compared with its fork point (sorted key lists)."""

    added: list[str]
    modified: list[str]
    deleted: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted)


class EnvSetter(Protocol):
    """What :meth:`Fork.apply_env` needs: pytest's ``MonkeyPatch``, or anything with its
    ``setenv``."""

    def setenv(self, name: str, value: str) -> object: ...


# Response fields of HeadObject that a metadata-only edit (a copy onto itself) can change.
_DESCRIPTIVE = (
    "Metadata",
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "WebsiteRedirectLocation",
)


@dataclass(eq=False)
class Fork:
    """A live fork: its name, where it came from, and a boto3 client of its own.

    ``snapshot`` is the fork point: the version of ``source`` the fork was made at (for a fork
    of a live bucket, the snapshot Tigris took when forking it); None in copy mode.
    """

    name: str
    source: str
    snapshot: str | None
    endpoint_url: str | None
    _clients: ClientFactory = field(repr=False)
    kind: str = "fork"
    created_in: float = 0.0

    @property
    def client(self) -> Any:
        """The boto3 S3 client for the fork's endpoint, shared by every fork handle of this
        process (thread-safe for requests). A test that changes a client (registers event
        handlers, uses a Stubber or tigris-boto3-ext's context managers, calls ``close()``)
        takes :meth:`new_client`: control operations never use either."""
        return self._clients.shared()

    def new_client(self) -> Any:
        """A boto3 S3 client of the test's own, for the fork's endpoint."""
        return self._clients.client()

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point S3 clients (boto3, the aws cli, subprocesses) at
        this fork.

        Only S3's own endpoint variable is set: the global ``AWS_ENDPOINT_URL`` would send
        every other AWS service (SQS, STS, DynamoDB...) to this endpoint too. A tool that reads
        only the global one gets it with ``{**fork.env, "AWS_ENDPOINT_URL": fork.endpoint_url}``.
        """
        config = self._clients.config
        values = {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url or "",
            "AWS_ACCESS_KEY_ID": config.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": config.secret_access_key or "",
            "AWS_DEFAULT_REGION": config.region,
            "TIGRIS_BUCKET": self.name,
            "BUCKET_NAME": self.name,
        }
        if config.session_token:
            values["AWS_SESSION_TOKEN"] = config.session_token
        return {k: v for k, v in values.items() if v}

    def apply_env(self, monkeypatch: EnvSetter) -> None:
        """Set every :attr:`env` variable through ``monkeypatch`` (pytest's ``MonkeyPatch``),
        which restores the environment after the test."""
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    def url(self, key: str) -> str:
        """The path-style HTTP URL of ``key`` in this fork."""
        base = (self.endpoint_url or "https://t3.storage.dev").rstrip("/")
        return f"{base}/{self.name}/{quote(key, safe='/~')}"

    def changes(self, *, metadata: bool = False) -> Changes:
        """Keys added, modified and deleted since the fork point (``source`` as it was at
        ``snapshot``, whatever happened to ``source`` since).

        A key is modified when its content changed (ETag or size). With ``metadata=True`` a
        key whose user metadata, content headers or tags changed is modified too; that costs
        two requests per unchanged key on each side (S3 listings carry neither), so it is off
        by default.
        """
        now = _listing(self.client, self.name)
        before = self._listing_at_fork_point()
        common = set(now) & set(before)
        modified = {k for k in common if now[k] != before[k]}
        if metadata:
            same = sorted(common - modified)
            modified |= _described_differently(
                (self.client, self.name), (self._source_reader, self.source), same
            )
        return Changes(
            added=sorted(set(now) - set(before)),
            modified=sorted(modified),
            deleted=sorted(set(before) - set(now)),
        )

    def _listing_at_fork_point(self) -> dict[str, tuple[str, int]]:
        """``source``'s keys at ``snapshot``: a snapshot never changes, so every fork of the
        same snapshot in this process shares one listing (a failed test's storage report
        would otherwise list the seed again for each)."""
        if not self.snapshot:
            return _listing(self._source_reader, self.source)  # copy mode: no fork point
        return self._clients.at_snapshot(
            ("listing", self.source, self.snapshot),
            lambda: _listing(self._source_reader, self.source),
        )

    @cached_property
    def _source_reader(self) -> Any:
        """A client of its own that reads ``source`` at the fork point."""
        client = self._clients.client()
        version = self.snapshot
        if version:

            def at_fork_point(request: Any, **kwargs: Any) -> None:
                request.headers["X-Tigris-Snapshot-Version"] = version

            client.meta.events.register("before-sign.s3", at_fork_point)
        return client


def _listing(client: Any, bucket: str) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            out[entry["Key"]] = (entry["ETag"], entry["Size"])
    return out


def _described_differently(
    fork: tuple[Any, str], source: tuple[Any, str], keys: list[str]
) -> set[str]:
    """The keys whose metadata or tags differ between ``fork`` and ``source``
    (each a ``(client, bucket)``)."""
    from concurrent.futures import ThreadPoolExecutor

    def description(side: tuple[Any, str], key: str) -> tuple[Any, ...]:
        client, bucket = side
        head = client.head_object(Bucket=bucket, Key=key)
        tags = client.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
        return (
            *(head.get(name) for name in _DESCRIPTIVE),
            sorted((tag["Key"], tag["Value"]) for tag in tags),
        )

    def differs(key: str) -> bool:
        return description(fork, key) != description(source, key)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {key for key, changed in zip(keys, pool.map(differs, keys), strict=True) if changed}
