"""The emulator's HTTP/1.1 server: keep-alive connections, one thread per connection.

werkzeug's development server closes every connection after one answer, so each request paid
a TCP handshake and a new thread. This one keeps a connection open for as long as the client
does (boto3 keeps a pool of them), serves its requests in order on the connection's own
thread, and drops a connection that stays silent longer than its timeout, mid-request or
between requests. It speaks exactly the WSGI the emulator's middleware and moto need.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import sys
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["EmulatorHTTPServer"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

log = logging.getLogger("pytest_tigris.emulator")

_MAX_LINE = 65536
_NO_BODY_STATUS = ("1", "204", "304")


class _BodyInput:
    """``wsgi.input`` for a body of known length: never reads past it."""

    def __init__(self, rfile: Any, length: int) -> None:
        self._rfile = rfile
        self._left = length

    @property
    def exhausted(self) -> bool:
        return self._left <= 0

    def read(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = bytes(self._rfile.read(want))
        self._left -= len(data)
        if len(data) < want:
            self._left = 0  # the client closed the connection: the body ends here
        return data

    def readline(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = bytes(self._rfile.readline(want))
        self._left -= len(data)
        if not data:
            self._left = 0
        return data


class _ChunkedInput:
    """``wsgi.input`` for ``Transfer-Encoding: chunked``: the decoded bytes, then EOF."""

    def __init__(self, rfile: Any) -> None:
        self._rfile = rfile
        self._chunk_left = 0
        self._done = False

    @property
    def exhausted(self) -> bool:
        return self._done

    def read(self, size: int | None = -1) -> bytes:
        out = bytearray()
        while not self._done and (size is None or size < 0 or len(out) < size):
            if self._chunk_left == 0:
                line = self._rfile.readline(_MAX_LINE)
                if not line:
                    self._done = True  # the client went away mid-body
                    break
                try:
                    self._chunk_left = int(line.split(b";", 1)[0].strip() or b"x", 16)
                except ValueError:
                    self._done = True
                    break
                if self._chunk_left == 0:
                    while self._rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields: not used by anything here
                    self._done = True
                    break
            want = self._chunk_left
            if size is not None and size >= 0:
                want = min(want, size - len(out))
            data = self._rfile.read(want)
            if not data:
                self._done = True
                break
            out += data
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self._rfile.readline(_MAX_LINE)  # the CRLF after each chunk
        return bytes(out)

    def readline(self, size: int | None = -1) -> bytes:
        return self.read(size)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.socket_timeout)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > _MAX_LINE:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        try:
            if not self.parse_request():
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if self.server.latency:
            time.sleep(self.server.latency)
        try:
            self._run_app()
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True

    def _environ(self) -> tuple[dict[str, Any], _BodyInput | _ChunkedInput | None]:
        target = self.path
        if "://" in target.split("?", 1)[0]:
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        raw_path, _, query = target.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(raw_path, encoding="latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": target,
            "REQUEST_URI": target,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name in set(self.headers.keys()):
            value = ",".join(self.headers.get_all(name) or [])
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key == "CONTENT_LENGTH":
                environ["CONTENT_LENGTH"] = value.strip()
            else:
                environ["HTTP_" + key] = value
        stream: _BodyInput | _ChunkedInput | None = None
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            stream = _ChunkedInput(self.rfile)
            environ.pop("CONTENT_LENGTH", None)
            environ["wsgi.input_terminated"] = True
        else:
            raw_length = environ.get("CONTENT_LENGTH", "")
            length = int(raw_length) if raw_length.isdigit() else 0
            if raw_length and not raw_length.isdigit():
                self.close_connection = True  # we cannot tell where the next request starts
            stream = _BodyInput(self.rfile, length)
        environ["wsgi.input"] = stream
        return environ, stream

    def _run_app(self) -> None:
        environ, stream = self._environ()
        state: dict[str, Any] = {"status": None, "headers": None, "sent": False, "chunked": False}
        head = self.command == "HEAD"

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None and state["sent"]:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, list(headers)
            return write

        def send_headers(first: bytes) -> None:
            status: str = state["status"]
            headers: list[tuple[str, str]] = state["headers"]
            names = {name.lower() for name, _ in headers}
            no_body = head or status.startswith(_NO_BODY_STATUS)
            if "content-length" not in names and not no_body:
                headers.append(("Transfer-Encoding", "chunked"))
                state["chunked"] = True
            if stream is not None and not stream.exhausted:
                # Unread body bytes would be taken for the next request: end the connection.
                self.close_connection = True
            if self.close_connection:
                headers.append(("Connection", "close"))
            out = bytearray(f"{self.protocol_version} {status}\r\n".encode("latin-1"))
            out += f"Server: pytest-tigris\r\nDate: {self.date_time_string()}\r\n".encode()
            for name, value in headers:
                out += f"{name}: {value}\r\n".encode("latin-1")
            out += b"\r\n"
            if first and not head:
                out += _framed(first, state["chunked"])
            self.wfile.write(out)
            state["sent"] = True

        def write(data: bytes) -> None:
            if state["status"] is None:
                raise AssertionError("write() before start_response()")
            if not state["sent"]:
                send_headers(data)
            elif data and not head:
                self.wfile.write(_framed(data, state["chunked"]))

        try:
            result = self.server.app(environ, start_response)
        except Exception:
            log.exception("the emulator failed on %s %s", self.command, self.path)
            self._internal_error()
            return
        try:
            for data in result:
                if data:
                    write(data)
            if not state["sent"]:
                if state["status"] is None:
                    raise AssertionError("the application never called start_response()")
                send_headers(b"")
            if state["chunked"] and not head:
                self.wfile.write(b"0\r\n\r\n")
        except (TimeoutError, ConnectionError, OSError):
            raise
        except Exception:
            log.exception("the emulator failed on %s %s", self.command, self.path)
            if state["sent"]:
                self.close_connection = True
            else:
                self._internal_error()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if stream is not None and not stream.exhausted:
            self.close_connection = True

    def _internal_error(self) -> None:
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
            b"<Message>We encountered an internal error.</Message></Error>"
        )
        self.close_connection = True
        self.wfile.write(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


def _framed(data: bytes, chunked: bool) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data


class EmulatorHTTPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Serve a WSGI app on ``(host, port)``; ``port=0`` picks a free one."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: WSGIApp,
        *,
        socket_timeout: float,
        latency: float = 0.0,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self.socket_timeout = socket_timeout
        self.latency = latency
        super().__init__(address, _Handler)
