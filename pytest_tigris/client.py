"""The only place boto3 clients are built (imported lazily: boto3 is slow to import)."""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .config import TigrisConfig
from .s3calls import ENDPOINT_HINT

__all__ = [
    "ClientFactory",
    "check_reachable",
    "is_loopback",
    "redact",
    "redact_secrets",
    "redact_value",
]

_RETRIES = {"mode": "standard", "max_attempts": 6}
# Seconds the start-up probe waits for an answer (data calls wait a minute).
PROBE_TIMEOUT = 5.0
# Reads of buckets at snapshot versions kept by ClientFactory.at_snapshot.
_SNAPSHOT_READS = 8
T = TypeVar("T")


def is_loopback(endpoint_url: str | None) -> bool:
    host = urlsplit(endpoint_url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_SIGNED = re.compile(
    r"((?:X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|Signature)[=:]\s*)"
    r"[^&\s,'\"<>]+",
    re.IGNORECASE,
)
_secrets: set[str] = set()
_factory_installed = False
_redaction_lock = threading.Lock()


def redact_secrets(*secrets: str | None) -> None:
    """Keep these values (and signatures, signed-URL queries) out of every log record.

    botocore logs every request's headers at DEBUG, session token included, and a test may
    log a secret through a logger of its own; pytest prints, captures and writes log records
    to ``--log-file``. A log record factory rewrites each record before any handler sees it.
    """
    global _factory_installed
    with _redaction_lock:
        _secrets.update(s for s in secrets if s and len(s) >= 4)
        if _factory_installed or not _secrets:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:
        return  # logging reports the bad format itself, later
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, ()
    if record.exc_info and not record.exc_text:
        # Formatted now, so a secret in the exception's message is masked too; handlers
        # reuse exc_text.
        text = logging.Formatter().formatException(record.exc_info)
        masked = redact(text)
        if masked != text:
            record.exc_text = masked
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def redact(text: str) -> str:
    """``text`` with registered secrets, signatures and signed-URL credentials masked."""
    if not _secrets:
        return text
    for secret in list(_secrets):
        text = text.replace(secret, "***")
    return _SIGNED.sub(r"\1***", text)


def check_reachable(
    endpoint_url: str | None, timeout: float = 5.0, *, hint: str = ENDPOINT_HINT
) -> None:
    """Fail at once, with the fix, when nothing listens at the endpoint.

    botocore retries a refused connection with growing back-off, which turns a typo in the
    endpoint into half a minute of silence. ``hint``: where the endpoint was set (the
    plugin's settings by default), named in the message.
    """
    import socket

    from .exceptions import TigrisEndpointError

    if not endpoint_url:
        return
    parts = urlsplit(endpoint_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        raise TigrisEndpointError(
            f"Connection refused by {endpoint_url}: check {hint} and that the server is running"
        ) from None
    except OSError as exc:
        raise TigrisEndpointError(
            f"cannot reach {endpoint_url} ({exc.strerror or exc}): check {hint} and your network"
        ) from None


class ClientFactory:
    """Builds S3 clients for one endpoint from one boto3 session (building a session is slow)."""

    def __init__(self, config: TigrisConfig, endpoint_url: str | None) -> None:
        self.config = config
        self.endpoint_url = endpoint_url
        self._session: Any = None
        self._shared: Any = None
        self._lock = threading.Lock()
        # What was read of buckets at snapshot versions (which never change), newest last.
        self._at_snapshot: dict[tuple[str, ...], Any] = {}

    def at(self, config: TigrisConfig, endpoint_url: str | None) -> ClientFactory:
        """This factory for ``endpoint_url`` (known only once the emulator serves), keeping
        the boto3 session it warmed."""
        if endpoint_url == self.endpoint_url and config is self.config:
            return self
        moved = ClientFactory(config, endpoint_url)
        moved._session = self._session
        return moved

    def warm(self) -> None:
        """Import boto3 and load the S3 model into the session now (a client built and
        dropped): the emulator starts meanwhile, and the clients built later are quick."""
        self.client()

    def shared(self) -> Any:
        """The one client this process's fork handles share (built on first use).

        boto3 clients are thread-safe for requests, and building one costs milliseconds and
        a connection pool: one per fork was most of a fork's cost. Tests that change a client
        (event handlers, a Stubber, ``close()``) take :meth:`client` instead.
        """
        if self._shared is None:
            built = self.client()
            with self._lock:
                if self._shared is None:
                    self._shared = built
        return self._shared

    def at_snapshot(self, key: tuple[str, ...], read: Callable[[], T]) -> T:
        """``read()``, remembered under ``key``, which must name a snapshot version: what a
        snapshot holds never changes. The last :data:`_SNAPSHOT_READS` reads are kept."""
        with self._lock:
            if key in self._at_snapshot:
                value: T = self._at_snapshot.pop(key)
                self._at_snapshot[key] = value  # most recently used goes last
                return value
        value = read()
        with self._lock:
            self._at_snapshot[key] = value
            while len(self._at_snapshot) > _SNAPSHOT_READS:
                del self._at_snapshot[next(iter(self._at_snapshot))]
        return value

    def _boto_session(self) -> Any:
        with self._lock:
            if self._session is None:
                import boto3

                config = self.config
                if not config.is_emulator:  # the embedded emulator's keys are dummies
                    redact_secrets(config.secret_access_key, config.session_token)
                self._session = boto3.session.Session(
                    aws_access_key_id=config.access_key_id,
                    aws_secret_access_key=config.secret_access_key,
                    aws_session_token=config.session_token,
                    profile_name=config.profile if not config.access_key_id else None,
                    region_name=config.region,
                )
            return self._session

    def client(self, *, max_attempts: int | None = None, read_timeout: float = 60) -> Any:
        """A new S3 client: retries on throttling, 5xx and connection errors; path-style on
        loopback (``bucket.localhost`` does not resolve)."""
        from botocore.config import Config

        retries = dict(_RETRIES)
        if max_attempts is not None:
            retries["max_attempts"] = max_attempts
        s3_options = {"addressing_style": "path"} if is_loopback(self.endpoint_url) else {}
        return self._boto_session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=Config(
                s3=s3_options,
                retries=retries,
                connect_timeout=5,
                read_timeout=read_timeout,
                max_pool_connections=32,
            ),
        )

    def probe(self, bucket: str, timeout: float = PROBE_TIMEOUT) -> None:
        """One quick request, to fail in seconds when the endpoint does not answer HTTP.

        Data calls wait up to a minute for an answer and retry five times, which is right for
        a slow upload and wrong for a server that accepts connections and never answers (it
        would take seven minutes to say so). Any HTTP answer passes: the seed check that
        follows explains S3 errors.
        """
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ReadTimeoutError,
            SSLError,
        )

        from .exceptions import TigrisEndpointError

        where = self.endpoint_url or "the default endpoint"
        try:
            # botocore's max_attempts counts retries: 0 sends the request once.
            self.client(max_attempts=0, read_timeout=timeout).head_bucket(Bucket=bucket)
        except ClientError:
            return
        except ReadTimeoutError:
            raise TigrisEndpointError(
                f"{where} accepted a connection but sent no answer in {timeout:.0f} s: check "
                f"{ENDPOINT_HINT} (is it an S3 server?)"
            ) from None
        except SSLError as exc:
            raise TigrisEndpointError(
                f"the TLS certificate of {where} is not trusted ({_tls_reason(exc)}): check "
                "the URL, or point AWS_CA_BUNDLE at the PEM file of the CA that signed it"
            ) from None
        except BotoCoreError:
            return  # the seed check reports it, with the same retries the data calls get


def _tls_reason(exc: Exception) -> str:
    text = str(exc)
    match = re.search(r"certificate verify failed: ([^(\]]+)", text)
    if match:
        return f"certificate verify failed: {match.group(1).strip()}"
    match = re.search(r"\[SSL[^\]]*\] ([^(]+)", text)
    return match.group(1).strip() if match else "TLS handshake failed"


def redact_value(value: Any, seen: set[int]) -> Any:
    """``value`` with secrets masked in every string inside it; containers and pytest's
    representation objects are changed in place, so nothing changes type."""
    if isinstance(value, str):
        return redact(value)
    if id(value) in seen:
        return value
    seen.add(id(value))
    if isinstance(value, list):
        value[:] = [redact_value(v, seen) for v in value]
    elif isinstance(value, tuple) and type(value) is tuple:
        return tuple(redact_value(v, seen) for v in value)
    elif isinstance(value, dict):
        for key in list(value):
            value[key] = redact_value(value[key], seen)
    elif type(value).__module__.startswith("_pytest.") and hasattr(value, "__dict__"):
        # pytest's representations (tracebacks, locals, crash lines, collection errors):
        # plain attributes, some on frozen dataclasses.
        for name, current in list(vars(value).items()):
            object.__setattr__(value, name, redact_value(current, seen))
    return value
