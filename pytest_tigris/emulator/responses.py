"""The emulator's HTTP surface: a WSGI middleware in front of moto's S3 app.

Every request goes through the same steps, in this order: refuse moto's control API, check
the signature, resolve the bucket and key exactly once (path style or virtual host), read the
body without holding any lock, then route by ``(method, target, sub-resource)`` through
:data:`_ROUTES`. Tigris's extensions are answered here from
:class:`~pytest_tigris.emulator.models.TigrisBackend`; every plain S3 request goes to moto,
rewritten to path style, so moto and the Tigris rules always agree on the bucket.
"""

from __future__ import annotations

import gc
import io
import ipaddress
import json
import logging
import random
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from .auth import AuthError, SigV4Verifier
from .conditions import check_copy_source, check_put, parse_copy_source
from .errors import (
    AccessDenied,
    EmulatorError,
    InternalError,
    InvalidArgument,
    InvalidRequest,
    KeyTooLongError,
    MalformedXML,
    MethodNotAllowed,
    NoSuchBucket,
    NoSuchUpload,
    NotImplementedByEmulator,
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
from .postpolicy import check_policy, is_form_upload, parse_form
from .streaming import MEMORY_LIMIT, ObjectStream, hold_file, read_body

__all__ = ["Faults", "S3Request", "TigrisMiddleware", "resolve_bucket"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

log = logging.getLogger("pytest_tigris.emulator")

# Query parameters that name an S3 sub-resource, in the order they decide the route (a part
# upload carries both partNumber and uploadId: it is an uploadId request).
_SUBRESOURCES = (
    "bundle",
    "uploadId",
    "uploads",
    "delete",
    "versioning",
    "versions",
    "tagging",
    "acl",
    "metadata",
    "retention",
    "legal-hold",
    "attributes",
    "restore",
    "select",
    "lifecycle",
    "cors",
    "policy",
    "policyStatus",
    "location",
    "logging",
    "notification",
    "website",
    "encryption",
    "replication",
    "object-lock",
    "ownershipControls",
    "publicAccessBlock",
    "accelerate",
    "requestPayment",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "torrent",
)

# Requests whose body moto parses as XML: a body that is not XML is the client's mistake.
_XML_BODIES = {
    ("POST", "delete"),
    ("POST", "uploadId"),
    ("POST", "restore"),
    ("PUT", "tagging"),
    ("PUT", "versioning"),
    ("PUT", "lifecycle"),
    ("PUT", "cors"),
    ("PUT", "acl"),
    ("PUT", "website"),
    ("PUT", "notification"),
    ("PUT", "encryption"),
    ("PUT", "replication"),
    ("PUT", "object-lock"),
    ("PUT", "ownershipControls"),
    ("PUT", "publicAccessBlock"),
    ("PUT", "logging"),
    ("PUT", "retention"),
    ("PUT", "legal-hold"),
    ("PUT", "accelerate"),
    ("PUT", "requestPayment"),
}

# Tigris features the emulator does not have: answered 501 naming the feature, never passed
# to moto (which would ignore the header and answer something silently wrong).
_UNSUPPORTED_HEADERS = {
    "x-tigris-query": "Metadata queries (X-Tigris-Query)",
    "x-tigris-soft-delete": "Soft delete (X-Tigris-Soft-Delete)",
    "x-tigris-restore-type": "Restoring soft-deleted objects (X-Tigris-Restore-Type)",
    "x-tigris-list-source": "Shadow-bucket migration (X-Tigris-List-Source)",
    "x-tigris-schedule-migration": "Shadow-bucket migration (X-Tigris-Schedule-Migration)",
    "x-tigris-merge-source-bucket": "Merging a fork (X-Tigris-Merge-Source-Bucket)",
    "x-tigris-rebase": "Rebasing a fork (X-Tigris-Rebase)",
}

# Object sub-resources moto changes on the stored version itself.
_IN_PLACE = {"tagging", "acl", "retention", "legal-hold"}

MAX_KEY_BYTES = 1024

# Query parameters a GET may carry and still be answered from the object's file in chunks.
_QUERY_KEEPS_PLAIN_GET = {
    "versionId",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "x-id",
}


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


@dataclass
class S3Request:
    """One request, with its bucket and key resolved once (path style or virtual host)."""

    environ: dict[str, Any]
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    header: dict[str, str]
    virtual_host: bool = False
    sub: str = field(init=False)

    def __post_init__(self) -> None:
        self.sub = next((name for name in _SUBRESOURCES if name in self.query), "")

    @property
    def target(self) -> str:
        if not self.bucket:
            return "service"
        return "object" if self.key else "bucket"

    @property
    def head(self) -> bool:
        return self.method == "HEAD"

    @property
    def body(self) -> bytes:
        return bytes(self.environ.get("pytest_tigris.body") or b"")


def resolve_bucket(host: str, path: str, virtual_bases: Iterable[str]) -> tuple[str, str, bool]:
    """``(bucket, key, virtual)`` for a request: ``bucket.<base>`` hosts (``<base>`` one of
    ``virtual_bases``, ``localhost`` always) name the bucket; anything else is path style.

    IP literals and other host names are path style, so the emulator can be reached through
    any address or container name; ``path`` is the decoded request path.
    """
    name = _host_name(host)
    for base in {"localhost", *virtual_bases}:
        suffix = "." + base
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], path.lstrip("/") if path != "/" else "", True
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key, False


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class TigrisMiddleware:
    """WSGI app: Tigris's extensions answered here, plain S3 passed to moto."""

    def __init__(
        self,
        app: WSGIApp,
        backend: TigrisBackend,
        *,
        keys: dict[str, str] | None = None,
        faults: Faults | None = None,
        virtual_bases: Iterable[str] = (),
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        # Told after every request that may have changed state (persistence saves then).
        self.on_change = on_change
        self.backend = backend
        self.verifier = SigV4Verifier(keys) if keys else None
        self.faults = faults or Faults()
        self.virtual_bases = frozenset(base.lower() for base in virtual_bases if base)
        self._random = random.Random(self.faults.seed)
        self._random_lock = threading.Lock()

    # -- entry ----------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        head = environ.get("REQUEST_METHOD") == "HEAD"
        try:
            request = self._prepare(environ)
            late = self._inject_fault()
            if late:
                _drain(self._route(request, lambda *args: None))
                raise InternalError("injected, late")
            return self._route(request, start_response)
        except AuthError as exc:
            return _error(start_response, exc.status, exc.code, exc.message, head=head)
        except EmulatorError as exc:
            return _error(start_response, exc.status, exc.code, exc.message, exc.resource, head)
        finally:
            if self.on_change is not None and not head and environ.get("REQUEST_METHOD") != "GET":
                self.on_change()
            # The server keeps a connection's last environ until its next request: drop the
            # body, which may be as big as the largest upload.
            read = environ.pop("pytest_tigris.body", None)
            environ["wsgi.input"] = io.BytesIO()
            if read is not None and len(read) > MEMORY_LIMIT:
                # moto's per-request objects sit in reference cycles that hold the body
                # until the next collection, which an idle server may not run for long.
                del read
                gc.collect()

    def _prepare(self, environ: dict[str, Any]) -> S3Request:
        """Check, resolve and read a request; no lock is held, so a slow client stalls only
        itself."""
        path = environ.get("PATH_INFO", "/") or "/"
        if path.startswith("/moto-api"):
            raise AccessDenied(
                "moto's control API is disabled: it would wipe every bucket of a running "
                "test session."
            )
        host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        bucket, key, virtual = resolve_bucket(host, _decoded(path), self.virtual_bases)
        method = str(environ.get("REQUEST_METHOD", "GET"))
        # A browser form upload carries its signature in the form, checked once it is read.
        form_upload = is_form_upload(environ, method, "object" if key else "bucket")
        checker = None
        if self.verifier is not None and not form_upload:
            checker = self.verifier.verify(environ).payload_checker()
        if len(key.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
            raise KeyTooLongError(len(key.encode("utf-8", "surrogateescape")))
        body = read_body(environ, checker.update if checker is not None else None)
        if checker is not None:
            checker.finish()
        if form_upload:
            form = parse_form(environ, body)
            if self.verifier is not None:
                self.verifier.verify_post_policy(form.fields)
            check_policy(form, bucket)
        _rewrite_region(environ)
        if virtual or not _moto_reads_path_style(host):
            _to_path_style(environ, bucket, virtual)
        request = S3Request(
            environ=environ,
            method=method,
            bucket=bucket,
            key=key,
            query=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
            header=_headers(environ),
            virtual_host=virtual,
        )
        feature = _unsupported(request)
        if feature:
            raise NotImplementedByEmulator(feature)
        if (request.method, request.sub) in _XML_BODIES and request.body:
            _check_xml(request.body, request.sub)
        return request

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
    def _route(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        name = _ROUTES.get((request.method, request.target, request.sub), "_moto")
        handler: Callable[[S3Request, StartResponse], Iterable[bytes]] = getattr(self, name)
        return handler(request, start_response)

    # -- service --------------------------------------------------------------------------
    def _list_buckets(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        header = request.header
        if "x-tigris-snapshot" in header:
            return self._list_snapshots(start_response, header["x-tigris-snapshot"])
        if "x-tigris-fork" in header:
            return self._list_forks(start_response, header["x-tigris-fork"], request.query)
        return self._moto(request, start_response)

    def _no_bucket(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        raise MethodNotAllowed(request.method, "the service (no bucket named)")

    # -- buckets --------------------------------------------------------------------------
    def _put_bucket(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        backend = self.backend
        bucket, header = request.bucket, request.header
        # A CreateBucketConfiguration (LocationConstraint=auto...) is ignored, as on Tigris.
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
        regions = ",".join(
            part.strip() for part in header.get("x-tigris-regions", "").split(",") if part.strip()
        )
        backend.create_bucket(bucket, snapshot_enabled=enabled, regions=regions)
        return _empty(start_response, 200, [("Location", f"/{bucket}")])

    def _delete_bucket(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        header = request.header
        version = header.get("x-tigris-snapshot-version")
        if version:
            self.backend.delete_snapshot(request.bucket, version)
            return _empty(start_response, 204, [])
        force = any(
            header.get(name, "").strip().lower() == "true"
            for name in ("x-tigris-force-delete", "tigris-force-delete")
        )
        self.backend.delete_bucket(request.bucket, force=force)
        return _empty(start_response, 204, [])

    def _head_bucket(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        return self._moto(request, start_response, extra=self._bucket_headers(request.bucket))

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

    def _put_versioning(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        status = _versioning_status(request.body)
        bucket = request.bucket
        if status == "Suspended" and self.backend.exists(bucket):
            meta = self.backend.meta(bucket)
            if meta is not None and meta.fork_source:
                raise VersioningRequired(bucket, "it is a fork")
            if meta is not None and meta.children:
                raise VersioningRequired(bucket, "it has forks")
            if meta is not None and meta.snapshot_enabled:
                raise VersioningRequired(bucket, "it is snapshot-enabled")
        return self._moto(request, start_response)

    def _list_objects(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        return self._maybe_at_version(request, start_response)

    def _bucket_metadata(
        self, request: S3Request, start_response: StartResponse
    ) -> Iterable[bytes]:
        with_size = request.query.get("with-size", "").lower() == "true"
        return _json(start_response, 200, self._metadata(request.bucket, with_size))

    # -- objects --------------------------------------------------------------------------
    def _read_object(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        return self._maybe_at_version(request, start_response)

    def _put_object(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        header = request.header
        copy = header.get("x-amz-copy-source")
        if copy is None:
            with self.backend.lock.shared():
                check_put(header, request.body, self._current(request.bucket, request.key))
                return self._call_moto(request, start_response)
        source = parse_copy_source(copy)
        if header.get("x-tigris-rename", "").strip().lower() == "true":
            return self._rename(request, start_response, source)
        with self.backend.lock.shared():
            original = self._current(source.bucket, source.key, source.version_id)
            check_copy_source(header, original)
            return self._call_moto(request, start_response)

    def _rename(
        self, request: S3Request, start_response: StartResponse, source: Any
    ) -> Iterable[bytes]:
        """Tigris's rename: a CopyObject with ``X-Tigris-Rename: true`` moves the object.

        Tigris renames by changing the key in its metadata, inside one bucket; across buckets
        a client copies and deletes. In a fork the source disappears from the fork only.
        """
        if source.bucket != request.bucket:
            raise InvalidRequest(
                f"X-Tigris-Rename moves an object within one bucket, not from {source.bucket} "
                f"to {request.bucket}: copy the object, then delete the source.",
                request.bucket,
            )
        backend = self.backend
        with backend.lock.exclusive():
            original = self._current(source.bucket, source.key, source.version_id)
            check_copy_source(request.header, original)
            status, headers, body = self._moto_call(request, request.environ)
            if status.startswith("200") and original is not None and source.key != request.key:
                moved = self._current(request.bucket, request.key)
                if moved is not None and moved.etag != original.etag:
                    # A renamed object keeps its ETag (a copy of a multipart object would not).
                    body = body.replace(
                        escape(moved.etag).encode(), escape(original.etag).encode()
                    ).replace(moved.etag.encode(), original.etag.encode())
                    moved._etag = original.etag.strip('"')
                    headers = [
                        (k, str(len(body)) if k.lower() == "content-length" else v)
                        for k, v in headers
                    ]
                backend.s3.delete_object(source.bucket, source.key)
        start_response(status, headers)
        return [body]

    def _current(self, bucket: str, key: str, version_id: str | None = None) -> Any:
        """The object a request would act on, as its bucket sees it (None: there is none)."""
        try:
            return self.backend.s3.get_object(bucket, key, version_id=version_id)
        except Exception:
            return None  # no such bucket or version: moto answers that itself

    def _put_lifecycle(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        if self.backend.exists(request.bucket) and self.backend.is_snapshot_enabled(request.bucket):
            root = ElementTree.fromstring(request.body) if request.body else None
            rules = {_local(el.tag) for el in root.iter()} if root is not None else set()
            if rules & {
                "Expiration",
                "Transition",
                "NoncurrentVersionExpiration",
                "NoncurrentVersionTransition",
            }:
                raise InvalidRequest(
                    f"Bucket {request.bucket} is snapshot-enabled (or a fork): Tigris supports "
                    "no TTL (Expiration) and no storage-class transitions on it.",
                    request.bucket,
                )
        return self._moto(request, start_response)

    def _change_in_place(
        self, request: S3Request, start_response: StartResponse
    ) -> Iterable[bytes]:
        backend = self.backend
        if not backend.children(request.bucket):
            return self._moto(request, start_response)
        with backend.lock.exclusive():
            backend.before_in_place_change(request.bucket, request.key)
            return self._call_moto(request, start_response)

    def _upload(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        # moto answers 500 for a part, completion or listing of an upload it does not know.
        if self.backend.exists(request.bucket):
            uploads = self.backend.bucket(request.bucket).multiparts
            if request.query.get("uploadId", "") not in uploads:
                raise NoSuchUpload(request.query.get("uploadId", ""))
        copy = request.header.get("x-amz-copy-source")
        with self.backend.lock.shared():
            if request.method == "PUT" and copy is not None:
                source = parse_copy_source(copy)
                original = self._current(source.bucket, source.key, source.version_id)
                check_copy_source(request.header, original)
            elif request.method == "PUT" and "content-md5" in request.header:
                check_put({"content-md5": request.header["content-md5"]}, request.body, None)
            if request.method != "POST":
                return self._call_moto(request, start_response)
            status, headers, body = self._moto_call(request, request.environ)
            if status.startswith("200"):
                body = self._completed_checksum(request, body)
                headers = [
                    (k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers
                ]
        start_response(status, headers)
        return [body]

    def _completed_checksum(self, request: S3Request, body: bytes) -> bytes:
        """S3 answers a completed upload with its checksum and the checksum's type."""
        reported = _reported_checksum(self._current(request.bucket, request.key))
        if reported is None or b"<Checksum" in body:
            return body
        algorithm, value, kind = reported
        name = f"Checksum{algorithm.upper()}"
        extra = f"<{name}>{escape(value)}</{name}>"
        if kind:
            extra += f"<ChecksumType>{escape(kind)}</ChecksumType>"
        # moto names the root CompleteMultipartUploadResponse; S3, ...Result.
        for root in (b"</CompleteMultipartUploadResult>", b"</CompleteMultipartUploadResponse>"):
            body = body.replace(root, extra.encode() + root)
        return body

    def _maybe_at_version(
        self, request: S3Request, start_response: StartResponse
    ) -> Iterable[bytes]:
        version = request.header.get("x-tigris-snapshot-version")
        listing = request.target == "bucket"
        backend = self.backend
        if version and (not listing or not request.sub):
            with backend.lock.shared(), backend.snapshot_view(request.bucket, version) as view:
                return self._moto_as(request, start_response, view)
        return self._moto(request, start_response)

    def _bundle(self, request: S3Request, start_response: StartResponse) -> Iterable[bytes]:
        from .bundle import bundle_response

        return bundle_response(self, request, start_response)

    # -- passing through to moto ----------------------------------------------------------
    def _moto(
        self,
        request: S3Request,
        start_response: StartResponse,
        extra: list[tuple[str, str]] | None = None,
    ) -> Iterable[bytes]:
        with self.backend.lock.shared():
            return self._call_moto(request, start_response, extra)

    def _call_moto(
        self,
        request: S3Request,
        start_response: StartResponse,
        extra: list[tuple[str, str]] | None = None,
        rename: tuple[str, str] | None = None,
        bucket: str | None = None,
    ) -> Iterable[bytes]:
        """Call moto with the lock held; large object reads answer in chunks afterwards."""
        stream = None
        if request.method == "GET" and request.target == "object" and not request.sub:
            stream = self._open_stream(request, bucket or request.bucket)
        environ = request.environ
        if stream is not None:
            # moto answers the headers (conditions, ranges, metadata, checksums); the
            # bytes come from the object's file.
            environ = dict(environ, REQUEST_METHOD="HEAD")
        status, headers, body = self._moto_call(request, environ)
        if stream is not None:
            release, fileno, key = stream
            size = int(key.size)
            if status[:3] not in ("200", "206"):
                release()
                status, headers, body = self._moto_call(request, request.environ)
            else:
                start, stop = _byte_span(headers, size)
                headers = [
                    (k, str(stop - start) if k.lower() == "content-length" else v)
                    for k, v in headers
                ]
                if (start, stop) == (0, size):
                    headers = _get_checksum_headers(request, key, headers)
                start_response(status, headers)
                return ObjectStream(release, fileno, start, stop)
        if (
            request.method == "HEAD"
            and request.target == "object"
            and status.startswith("200")
            and request.header.get("x-amz-checksum-mode") == "ENABLED"
        ):
            key = self._current(
                bucket or request.bucket, request.key, request.query.get("versionId")
            )
            if key is not None:
                headers = _get_checksum_headers(request, key, headers)
        if rename is not None:
            view, real = rename
            body = body.replace(view.encode(), real.encode())
            headers = [(k, v.replace(view, real)) for k, v in headers]
            headers = [
                (k, str(len(body)) if k.lower() == "content-length" and body else v)
                for k, v in headers
            ]
        if extra and status.startswith("2"):
            headers += extra
        start_response(status, headers)
        return [body]

    def _moto_call(
        self, request: S3Request, environ: dict[str, Any]
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            captured["headers"] = headers
            return lambda data: None

        try:
            # Read the whole answer while the lock is held: moto's keys may be disposed later.
            chunks = self.app(environ, capture)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except EmulatorError:
            raise
        except Exception as exc:
            if (request.method, request.sub) in _XML_BODIES:
                raise MalformedXML(f"{request.sub} request") from None
            log.exception("moto failed on %s %s", request.method, environ.get("PATH_INFO"))
            raise InternalError(f"{type(exc).__name__} in the emulator") from None
        return captured["status"], list(captured["headers"]), body

    def _open_stream(
        self, request: S3Request, bucket: str
    ) -> tuple[Callable[[], None], int, Any] | None:
        """A hold on the bytes of a large object this GET will read, or None."""
        if set(request.query) - _QUERY_KEEPS_PLAIN_GET or "partNumber" in request.query:
            return None
        if "x-amz-server-side-encryption-customer-algorithm" in request.header:
            return None
        try:
            key = self.backend.s3.get_object(
                bucket, request.key, version_id=request.query.get("versionId")
            )
        except Exception:
            return None  # moto answers the error itself
        if key is None:
            return None
        held = hold_file(key)
        if held is None:
            return None
        release, fileno = held
        return release, fileno, key

    def _moto_as(
        self, request: S3Request, start_response: StartResponse, view: str
    ) -> Iterable[bytes]:
        """Send a read to the hidden snapshot view of the bucket and answer as the bucket."""
        environ = dict(request.environ)
        bucket, key = request.bucket, request.key
        environ["PATH_INFO"] = f"/{view}/{_path_key(key)}" if key else f"/{view}"
        for name in ("RAW_URI", "REQUEST_URI"):
            raw = environ.get(name)
            if raw:
                environ[name] = raw.replace(f"/{bucket}", f"/{view}", 1)
        viewed = S3Request(
            environ=environ,
            method=request.method,
            bucket=view,
            key=key,
            query=request.query,
            header=request.header,
        )
        # Only a listing names the bucket in its body; object bytes must never be rewritten.
        rename = None if key else (view, bucket)
        return self._call_moto(viewed, start_response, rename=rename, bucket=view)

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
        if token:
            if not token.isdigit():
                raise InvalidArgument(f"The continuation token {token!r} is not valid.")
            start = int(token)
        raw_size = query.get("max-buckets", "1000")
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= 10000:
            raise InvalidArgument(
                f"max-buckets must be a whole number from 1 to 10000, not {raw_size!r}."
            )
        size = int(raw_size)
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

    def _metadata(self, bucket: str, with_size: bool = False) -> dict[str, Any]:
        """``GET /{bucket}?metadata``: the fields Tigris documents, as an emulator has them."""
        if not self.backend.exists(bucket):
            raise NoSuchBucket(bucket)
        meta = self.backend.meta(bucket)
        if meta is None:
            b = self.backend.bucket(bucket)
            meta = TigrisMeta(snapshot_enabled=False, created_at=b.creation_date)
        payload: dict[str, Any] = {
            "name": bucket,
            "created_at": iso(meta.created_at),
            "type": 1 if meta.snapshot_enabled else 0,
            "storage_class": "STANDARD",
            # Empty: global placement, what a bucket gets unless regions were asked for.
            "object_regions": meta.regions,
            "ForkInfo": self._fork_info(meta),
            "soft_delete": {"enabled": False},
            "acl_settings": {"allow_object_acl": False},
            "cache_control": "",
            "website": {},
            "object_notifications": {"enabled": False},
        }
        if with_size:
            with self.backend.lock.shared():
                payload.update(self._size(bucket))
        return payload

    def _size(self, bucket: str) -> dict[str, int]:
        keys = self.backend.bucket(bucket).keys
        current = [k for k in keys.values() if hasattr(k, "size")]
        every = [v for _, versions in keys.iterlists() for v in versions if hasattr(v, "size")]
        return {
            "estimated_unique_rows": len(current),
            "estimated_size": sum(int(k.size) for k in current),
            "estimated_rows": len(every),
        }


# The route table: (method, target, sub-resource) -> handler; anything else goes to moto.
_ROUTES: dict[tuple[str, str, str], str] = {
    ("GET", "service", ""): "_list_buckets",
    ("PUT", "service", ""): "_no_bucket",
    ("POST", "service", ""): "_no_bucket",
    ("DELETE", "service", ""): "_no_bucket",
    ("PUT", "bucket", ""): "_put_bucket",
    ("DELETE", "bucket", ""): "_delete_bucket",
    ("HEAD", "bucket", ""): "_head_bucket",
    ("GET", "bucket", ""): "_list_objects",
    ("GET", "bucket", "metadata"): "_bucket_metadata",
    ("PUT", "bucket", "versioning"): "_put_versioning",
    ("PUT", "bucket", "lifecycle"): "_put_lifecycle",
    ("PUT", "object", ""): "_put_object",
    ("POST", "bucket", "bundle"): "_bundle",
    ("GET", "object", ""): "_read_object",
    ("HEAD", "object", ""): "_read_object",
    **{("PUT", "object", sub): "_change_in_place" for sub in _IN_PLACE},
    ("DELETE", "object", "tagging"): "_change_in_place",
    **{(method, "object", "uploadId"): "_upload" for method in ("PUT", "POST", "GET", "DELETE")},
}


# -- helpers ------------------------------------------------------------------------------
def _drain(answer: Iterable[bytes]) -> None:
    try:
        for _ in answer:
            pass
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()


def _unsupported(request: S3Request) -> str:
    """The Tigris feature a request asks for that the emulator does not have, or ''."""
    for name, feature in _UNSUPPORTED_HEADERS.items():
        if name in request.header:
            return feature
    if request.method == "PATCH":
        return "Changing bucket settings (PATCH /{bucket})"
    if "batch" in request.query:
        return "Batch operations (?batch)"
    if request.target == "service" and request.query.get("func") == "presign":
        return "The presign endpoint (POST /?func=presign)"
    json_listing = "application/json" in request.header.get("accept", "")
    tigris_listing = "x-tigris-fork" in request.header or "x-tigris-snapshot" in request.header
    if request.target == "service" and request.method == "GET" and json_listing:
        return "" if tigris_listing else "JSON bucket listings (GET / with Accept: JSON)"
    return ""


def _decoded(path: str) -> str:
    # WSGI gives PATH_INFO as latin-1 text of the raw bytes: recover the UTF-8 key.
    try:
        return path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return path


def _path_key(key: str) -> str:
    return key.encode("utf-8").decode("latin-1")


def _moto_reads_path_style(host: str) -> bool:
    """True when moto would take the bucket from the path for this Host header."""
    name = _host_name(host)
    if not name or name.startswith("localhost") or "." not in name:
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _to_path_style(environ: dict[str, Any], bucket: str, virtual: bool) -> None:
    """Rewrite a request so moto reads the bucket we resolved from the path, never the Host."""
    port = str(environ.get("SERVER_PORT") or "")
    environ["HTTP_HOST"] = f"localhost:{port}" if port else "localhost"
    if not virtual:
        return
    path = environ.get("PATH_INFO", "/") or "/"
    environ["PATH_INFO"] = f"/{bucket}{path}" if path != "/" else f"/{bucket}"
    for name in ("RAW_URI", "REQUEST_URI"):
        raw = environ.get(name)
        if raw:
            raw_path, sep, raw_query = str(raw).partition("?")
            prefix = "/" + quote(bucket)
            environ[name] = (prefix + raw_path if raw_path != "/" else prefix) + sep + raw_query


def _check_xml(body: bytes, what: str) -> None:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedXML(f"{what} request: no DTDs")
    try:
        ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise MalformedXML(f"{what} request") from None


def _versioning_status(body: bytes) -> str:
    _check_xml(body, "versioning")
    root = ElementTree.fromstring(body)
    status = [el.text for el in root.iter() if _local(el.tag) == "Status"]
    if _local(root.tag) != "VersioningConfiguration" or len(status) > 1:
        raise MalformedXML("versioning request")
    value = (status[0] or "").strip() if status else ""
    if value not in ("", "Enabled", "Suspended"):
        raise MalformedXML("versioning request: Status is Enabled or Suspended")
    return value


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _get_checksum_headers(
    request: S3Request, key: Any, headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The checksum headers a GET carries where moto's HEAD differs: a multipart object's
    composite checksum is ``<value>-<parts>``, with its type (clients skip validating it)."""
    reported = _reported_checksum(key)
    if request.header.get("x-amz-checksum-mode") != "ENABLED" or reported is None:
        return headers
    algorithm, value, kind = reported
    name = f"x-amz-checksum-{algorithm.lower()}"
    out = [(k, v) for k, v in headers if k.lower() not in (name, "x-amz-checksum-type")]
    out.append((name, value))
    if kind:
        out.append(("x-amz-checksum-type", kind))
    return out


def _reported_checksum(key: Any) -> tuple[str, str, str] | None:
    """(algorithm, value, type) as S3 reports an object's checksum: a multipart object's
    composite value is ``<value>-<parts>``; None when the object has no checksum."""
    algorithm = getattr(key, "checksum_algorithm", None)
    if not algorithm:
        return None
    value = str(key.checksum_value)
    if key.checksum_type == "COMPOSITE":
        value = f"{value}-{key.checksum_parts}"
    return str(algorithm), value, str(key.checksum_type or "")


def _byte_span(headers: list[tuple[str, str]], size: int) -> tuple[int, int]:
    """The bytes a 200/206 answer carries, from moto's Content-Range (none: all of them)."""
    for name, value in headers:
        if name.lower() == "content-range":
            span = value.split()[-1].split("/")[0]
            first, _, last = span.partition("-")
            return int(first), int(last) + 1
    return 0, size


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            out[name[5:].replace("_", "-").lower()] = str(value)
    return out


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
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
