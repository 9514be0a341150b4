"""The emulator's HTTP surface: a WSGI middleware in front of moto's S3 app.

It parses the ``X-Tigris-*`` headers and Tigris's JSON endpoints, answers them from
:class:`~pytest_tigris.emulator.models.TigrisBackend`, and passes every plain S3 request to
moto under the backend's shared lock. Path-style addressing only.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from .auth import AuthError, SigV4Verifier
from .errors import (
    AccessDenied,
    EmulatorError,
    InternalError,
    InvalidArgument,
    NoSuchBucket,
    SlowDown,
    VersioningRequired,
)
from .models import (
    TigrisBackend,
    TigrisMeta,
    iso,
    snapshot_display_name,
    version_time,
)

__all__ = ["Faults", "TigrisMiddleware"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Query parameters of a GET on a bucket that still make it a ListObjects(V2) call.
_LISTING_PARAMS = {
    "list-type",
    "prefix",
    "delimiter",
    "marker",
    "max-keys",
    "encoding-type",
    "continuation-token",
    "start-after",
    "fetch-owner",
}

# Object sub-resources moto changes on the stored version itself.
_IN_PLACE = {"tagging", "acl", "retention", "legal-hold"}


@dataclass(frozen=True)
class Faults:
    """Fault injection, as fractions of requests.

    ``slowdown``: answered 503 ``SlowDown`` and ``error``: answered 500 ``InternalError``,
    both without doing anything; ``late``: done, then answered 500 anyway (a client that
    retries a CreateBucket finds the bucket already made, as after a timeout).
    """

    slowdown: float = 0.0
    error: float = 0.0
    late: float = 0.0
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        """Parse ``"slowdown=0.05,error=0.05,late=0.01[,seed=1]"`` (empty: no faults)."""
        if not spec:
            return cls()
        values: dict[str, float] = {}
        for part in spec.split(","):
            name, sep, raw = part.strip().partition("=")
            if not sep or name not in {"slowdown", "error", "late", "seed"}:
                raise ValueError(
                    f"bad fault spec {part!r}: expected slowdown=F, error=F, late=F or seed=N"
                )
            try:
                values[name] = float(raw)
            except ValueError:
                raise ValueError(f"bad fault spec {part!r}: {raw!r} is not a number") from None
        seed = values.pop("seed", None)
        faults = cls(**values, seed=None if seed is None else int(seed))
        rates = (faults.slowdown, faults.error, faults.late)
        if not all(0 <= rate <= 1 for rate in rates) or sum(rates) > 1:
            raise ValueError("fault rates must be between 0 and 1, and at most 1 in total")
        return faults

    @property
    def active(self) -> bool:
        return self.slowdown > 0 or self.error > 0 or self.late > 0


class TigrisMiddleware:
    """WSGI app: Tigris's extensions answered here, plain S3 passed to moto."""

    def __init__(
        self,
        app: WSGIApp,
        backend: TigrisBackend,
        *,
        keys: dict[str, str] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.app = app
        self.backend = backend
        self.verifier = SigV4Verifier(keys) if keys else None
        self.faults = faults or Faults()
        self._random = random.Random(self.faults.seed)
        self._random_lock = threading.Lock()

    # -- entry ----------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        head = method == "HEAD"
        try:
            if path.startswith("/moto-api"):
                raise AccessDenied(
                    "moto's control API is disabled: it would wipe every bucket of a running "
                    "test session."
                )
            if self.verifier is not None:
                self.verifier.verify(environ)
            late = self._inject_fault()
            _rewrite_region(environ)
            if late:
                self._route(environ, lambda *args: None, method, path)
                raise InternalError("injected, late")
            return self._route(environ, start_response, method, path)
        except AuthError as exc:
            return _error(start_response, 403, exc.code, exc.message, head=head)
        except EmulatorError as exc:
            return _error(start_response, exc.status, exc.code, exc.message, exc.resource, head)

    def _inject_fault(self) -> bool:
        """Raise an injected early failure; True when this request must fail late."""
        if not self.faults.active:
            return False
        with self._random_lock:
            roll = self._random.random()
        faults = self.faults
        if roll < faults.slowdown:
            raise SlowDown("injected")
        if roll < faults.slowdown + faults.error:
            raise InternalError("injected")
        return roll < faults.slowdown + faults.error + faults.late

    # -- routing --------------------------------------------------------------------------
    def _route(
        self, environ: dict[str, Any], start_response: StartResponse, method: str, path: str
    ) -> Iterable[bytes]:
        bucket, _, key = path.lstrip("/").partition("/")
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        header = _headers(environ)
        backend = self.backend

        if not bucket:
            if method == "GET" and "x-tigris-snapshot" in header:
                return self._list_snapshots(start_response, header["x-tigris-snapshot"])
            if method == "GET" and "x-tigris-fork" in header:
                return self._list_forks(start_response, header["x-tigris-fork"], query)
            return self._moto(environ, start_response)

        if key == "" and not query:
            if method == "PUT":
                return self._put_bucket(environ, start_response, bucket, header)
            if method == "DELETE":
                return self._delete_bucket(start_response, bucket, header)
            if method == "HEAD":
                return self._moto(environ, start_response, extra=self._bucket_headers(bucket))

        if method == "GET" and key == "" and "metadata" in query:
            return _json(start_response, 200, self._metadata(bucket))
        if (
            method == "PUT"
            and key == ""
            and "versioning" in query
            and backend.exists(bucket)
            and backend.is_snapshot_enabled(bucket)
            and b"Enabled" not in _body(environ)
        ):
            raise VersioningRequired(bucket, "it is snapshot-enabled")

        if (
            key
            and method in ("PUT", "DELETE")
            and _IN_PLACE & set(query)
            and backend.children(bucket)
        ):
            with backend.lock.exclusive():
                backend.before_in_place_change(bucket, key)
                return self._call_moto(environ, start_response)

        version = header.get("x-tigris-snapshot-version")
        reads_object = key != "" and method in ("GET", "HEAD")
        lists_bucket = key == "" and method == "GET" and set(query) <= _LISTING_PARAMS
        if version and (reads_object or lists_bucket):
            with backend.lock.shared(), backend.snapshot_view(bucket, version) as view:
                return self._moto_as(environ, start_response, bucket, view, key)
        return self._moto(environ, start_response)

    # -- passing through to moto ----------------------------------------------------------
    def _moto(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        extra: list[tuple[str, str]] | None = None,
    ) -> Iterable[bytes]:
        with self.backend.lock.shared():
            return self._call_moto(environ, start_response, extra)

    def _call_moto(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        extra: list[tuple[str, str]] | None = None,
        rename: tuple[str, str] | None = None,
    ) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            captured["headers"] = headers
            return lambda data: None

        # Read the whole body while the lock is held: moto's keys may be disposed afterwards.
        chunks = self.app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        headers = list(captured["headers"])
        if rename is not None:
            view, real = rename
            body = body.replace(view.encode(), real.encode())
            headers = [(k, v.replace(view, real)) for k, v in headers]
            headers = [
                (k, str(len(body)) if k.lower() == "content-length" and body else v)
                for k, v in headers
            ]
        if extra and captured["status"].startswith("2"):
            headers += extra
        start_response(captured["status"], headers)
        return [body]

    def _moto_as(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        bucket: str,
        view: str,
        key: str,
    ) -> Iterable[bytes]:
        """Send a read to the hidden snapshot view of ``bucket`` and answer as ``bucket``."""
        environ = dict(environ)
        environ["PATH_INFO"] = f"/{view}/{key}" if key else f"/{view}"
        for name in ("RAW_URI", "REQUEST_URI"):
            raw = environ.get(name)
            if raw:
                environ[name] = raw.replace(f"/{bucket}", f"/{view}", 1)
        # Only a listing names the bucket in its body; object bytes must never be rewritten.
        rename = None if key else (view, bucket)
        return self._call_moto(environ, start_response, rename=rename)

    # -- buckets --------------------------------------------------------------------------
    def _put_bucket(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        bucket: str,
        header: dict[str, str],
    ) -> Iterable[bytes]:
        backend = self.backend
        _body(environ)  # a CreateBucketConfiguration (LocationConstraint=auto...) is ignored
        snapshot = header.get("x-tigris-snapshot")
        if snapshot is not None:
            if not backend.exists(bucket):
                raise NoSuchBucket(bucket)
            label = None
            flag, _, rest = snapshot.partition(";")
            if flag.strip().lower() != "true":
                raise InvalidArgument("X-Tigris-Snapshot must be 'true' or 'true; name=N'.")
            rest = rest.strip()
            if rest.startswith("name="):
                label = rest[len("name=") :]
            version = backend.create_snapshot(bucket, label)
            return _empty(start_response, 200, [("X-Tigris-Snapshot-Version", str(version))])
        source = header.get("x-tigris-fork-source-bucket")
        if source:
            snap = header.get("x-tigris-fork-source-bucket-snapshot") or header.get(
                "x-tigris-snapshot-version"
            )
            created = backend.fork(bucket, source, snap or None)
            meta: TigrisMeta = created.tigris
            return _empty(
                start_response,
                200,
                [
                    ("Location", f"/{bucket}"),
                    ("X-Tigris-Snapshot-Version", str(meta.fork_version)),
                ],
            )
        enabled = header.get("x-tigris-enable-snapshot", "").strip().lower() == "true"
        backend.create_bucket(bucket, snapshot_enabled=enabled)
        return _empty(start_response, 200, [("Location", f"/{bucket}")])

    def _delete_bucket(
        self, start_response: StartResponse, bucket: str, header: dict[str, str]
    ) -> Iterable[bytes]:
        version = header.get("x-tigris-snapshot-version")
        if version:
            self.backend.delete_snapshot(bucket, version)
            return _empty(start_response, 204, [])
        force = any(
            header.get(name, "").strip().lower() == "true"
            for name in ("x-tigris-force-delete", "tigris-force-delete")
        )
        self.backend.delete_bucket(bucket, force=force)
        return _empty(start_response, 204, [])

    def _bucket_headers(self, bucket: str) -> list[tuple[str, str]]:
        if not self.backend.exists(bucket):
            return []
        meta = self.backend.meta(bucket)
        enabled = bool(meta and meta.snapshot_enabled)
        headers = [("X-Tigris-Enable-Snapshot", "true" if enabled else "false")]
        if meta and meta.fork_source:
            headers.append(("X-Tigris-Fork-Source-Bucket", meta.fork_source))
            headers.append(("X-Tigris-Fork-Source-Bucket-Snapshot", str(meta.fork_version)))
        if meta and meta.children:
            headers.append(("X-Tigris-Is-Fork-Parent", "true"))
        return headers

    # -- Tigris listings ------------------------------------------------------------------
    def _list_snapshots(self, start_response: StartResponse, bucket: str) -> Iterable[bytes]:
        records = self.backend.list_snapshots(bucket) if self.backend.exists(bucket) else []
        items = "".join(
            f"<Bucket><Name>{escape(snapshot_display_name(r))}</Name>"
            f"<CreationDate>{iso(r.created_at)}</CreationDate></Bucket>"
            for r in records
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            "<Owner><ID>tigris-emulator</ID><DisplayName>tigris-emulator</DisplayName></Owner>"
            f"<Buckets>{items}</Buckets></ListAllMyBucketsResult>"
        ).encode()
        start_response(
            "200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _list_forks(
        self, start_response: StartResponse, source: str, query: dict[str, str]
    ) -> Iterable[bytes]:
        forks = self.backend.list_forks(source)
        start = 0
        token = query.get("continuation-token")
        if token and token.isdigit():
            start = int(token)
        size = int(query["max-buckets"]) if query.get("max-buckets", "").isdigit() else 1000
        page = forks[start : start + size]
        payload: dict[str, Any] = {"Owner": {"ID": "", "DisplayName": ""}}
        if page:
            payload["Buckets"] = {"Bucket": [self._fork_entry(b.name) for b in page]}
        if start + size < len(forks):
            payload["ContinuationToken"] = str(start + size)
        return _json(start_response, 200, payload)

    def _fork_entry(self, name: str) -> dict[str, Any]:
        meta = self.backend.meta(name)
        assert meta is not None
        return {
            "Name": name,
            "CreationDate": iso(meta.created_at),
            "ForkInfo": self._fork_info(meta),
        }

    def _fork_info(self, meta: TigrisMeta) -> dict[str, Any]:
        parents = []
        if meta.fork_source and meta.fork_version is not None:
            source_meta = (
                self.backend.meta(meta.fork_source)
                if self.backend.exists(meta.fork_source)
                else None
            )
            record = source_meta.snapshots.get(meta.fork_version) if source_meta else None
            snapshot = snapshot_display_name(record) if record else str(meta.fork_version)
            created = meta.fork_snapshot_created_at or version_time(meta.fork_version)
            parents.append(
                {
                    "BucketName": meta.fork_source,
                    "Snapshot": snapshot,
                    "SnapshotCreatedAt": iso(created),
                    "ForkCreatedAt": iso(meta.created_at),
                }
            )
        return {"HasChildren": bool(meta.children), "Parents": parents}

    def _metadata(self, bucket: str) -> dict[str, Any]:
        if not self.backend.exists(bucket):
            raise NoSuchBucket(bucket)
        meta = self.backend.meta(bucket)
        if meta is None:
            b = self.backend.bucket(bucket)
            meta = TigrisMeta(snapshot_enabled=False, created_at=b.creation_date)
        return {
            "name": bucket,
            "created_at": iso(meta.created_at),
            "type": 1 if meta.snapshot_enabled else 0,
            "storage_class": "STANDARD",
            "object_regions": "auto",
            "ForkInfo": self._fork_info(meta),
        }


# -- helpers ------------------------------------------------------------------------------
def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            out[name[5:].replace("_", "-").lower()] = str(value)
    return out


def _body(environ: dict[str, Any]) -> bytes:
    """Read (once) and keep the request body, leaving it readable for moto."""
    cached = environ.get("pytest_tigris.body")
    if cached is None:
        import io

        length = environ.get("CONTENT_LENGTH") or "0"
        stream = environ.get("wsgi.input")
        cached = stream.read(int(length)) if stream and length.isdigit() else b""
        environ["pytest_tigris.body"] = cached
        environ["wsgi.input"] = io.BytesIO(cached)
    return bytes(cached)


def _rewrite_region(environ: dict[str, Any]) -> None:
    # moto refuses region "auto" (what Tigris clients sign with); it does not check signatures,
    # and this runs after ours were checked.
    auth = environ.get("HTTP_AUTHORIZATION")
    if auth and "/auto/s3/" in auth:
        environ["HTTP_AUTHORIZATION"] = auth.replace("/auto/s3/", "/us-east-1/s3/")
    query = environ.get("QUERY_STRING", "")
    if "%2Fauto%2Fs3%2F" in query:
        environ["QUERY_STRING"] = query.replace("%2Fauto%2Fs3%2F", "%2Fus-east-1%2Fs3%2F")


def _request_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def _error(
    start_response: StartResponse,
    status: int,
    code: str,
    message: str,
    resource: str = "",
    head: bool = False,
) -> Iterable[bytes]:
    request_id = _request_id()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("x-amz-request-id", request_id),
        ("Content-Length", "0" if head else str(len(body))),
    ]
    start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
    return [] if head else [body]


def _empty(
    start_response: StartResponse, status: int, headers: list[tuple[str, str]]
) -> Iterable[bytes]:
    start_response(
        f"{status} {_REASONS.get(status, 'OK')}",
        [*headers, ("x-amz-request-id", _request_id()), ("Content-Length", "0")],
    )
    return []


def _json(start_response: StartResponse, status: int, payload: Any) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        f"{status} {_REASONS.get(status, 'OK')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
