"""The only place boto3 clients are built (imported lazily: boto3 is slow to import)."""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit

from .config import TigrisConfig

__all__ = ["ClientFactory", "check_reachable", "is_loopback", "redact", "redact_secrets"]

_RETRIES = {"mode": "standard", "max_attempts": 6}


def is_loopback(endpoint_url: str | None) -> bool:
    host = urlsplit(endpoint_url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer", "tigris_boto3_ext")
_SIGNED = re.compile(
    r"((?:X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|Signature)[=:]\s*)"
    r"[^&\s,'\"<>]+",
    re.IGNORECASE,
)
_secrets: set[str] = set()
_factory_installed = False
_redaction_lock = threading.Lock()


def redact_secrets(*secrets: str | None) -> None:
    """Keep these values (and signatures, signed-URL queries) out of the AWS libraries' logs.

    botocore logs every request's headers at DEBUG, session token included; with
    ``--log-level=DEBUG`` pytest would print them. A log record factory rewrites records of
    those libraries only, before any handler sees them.
    """
    global _factory_installed
    with _redaction_lock:
        _secrets.update(s for s in secrets if s and len(s) >= 4)
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if record.name.startswith(_LIBRARIES):
                try:
                    message = record.getMessage()
                except Exception:
                    return record
                record.msg, record.args = redact(message), ()
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def redact(text: str) -> str:
    """``text`` with registered secrets, signatures and signed-URL credentials masked."""
    if not _secrets:
        return text
    for secret in list(_secrets):
        text = text.replace(secret, "***")
    return _SIGNED.sub(r"\1***", text)


def check_reachable(endpoint_url: str | None, timeout: float = 5.0) -> None:
    """Fail at once, with the fix, when nothing listens at the endpoint.

    botocore retries a refused connection with growing back-off, which turns a typo in the
    endpoint into half a minute of silence.
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
            f"Connection refused by {endpoint_url}: check --tigris-endpoint / "
            "AWS_ENDPOINT_URL_S3 and that the server is running"
        ) from None
    except OSError as exc:
        raise TigrisEndpointError(
            f"cannot reach {endpoint_url} ({exc.strerror or exc}): check --tigris-endpoint / "
            "AWS_ENDPOINT_URL_S3 and your network"
        ) from None


class ClientFactory:
    """Builds S3 clients for one endpoint from one boto3 session (building a session is slow)."""

    def __init__(self, config: TigrisConfig, endpoint_url: str | None) -> None:
        self.config = config
        self.endpoint_url = endpoint_url
        self._session: Any = None
        self._lock = threading.Lock()

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

    def client(self, *, max_attempts: int | None = None) -> Any:
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
                read_timeout=60,
                max_pool_connections=32,
            ),
        )
