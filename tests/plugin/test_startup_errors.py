"""Start-up and mid-run failures are one line, never a hang, an INTERNALERROR or a traceback.

Inner runs (``tests.inner``, in-process, with and without ``-n 2``) use the embedded emulator,
or stand-ins for a broken endpoint: a socket that accepts and never answers, a TLS server with a
self-signed certificate.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.inner import Inner

XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
USES_FORK = "def test_uses(tigris_fork):\n    pass\n"
PLAIN = "def test_plain():\n    pass\n"
URL_EXAMPLE = "use e.g. https://t3.storage.dev or http://127.0.0.1:4566"
# A remote run needs a seed; these endpoints fail before it is looked at.
SEED = "startup-seed"


# -- item 4: an endpoint that accepts connections and never answers -------------------------
@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A socket that accepts every connection and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


@XDIST
def test_an_endpoint_that_never_answers_fails_within_15_seconds(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "tid_startup")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tsec_startup")
    pytester.makepyfile(test_uses=USES_FORK)
    with silent_server() as url:
        done = inner.run("--tigris-endpoint", url, "--tigris-seed", SEED, n=n, timeout=60)

    assert done.usage_error() == (
        f"{url} accepted a connection but sent no answer in 5 s: check --tigris-endpoint / "
        "AWS_ENDPOINT_URL_S3 (is it an S3 server?)"
    )
    assert done.seconds <= 15, done.seconds


# -- item 5: bad endpoint URLs, certificates, .env.local, seed files, hooks -----------------
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:99999", "port must be a number from 1 to 65535"),
        ("http://localhost:notaport", "port must be a number from 1 to 65535"),
        ("http://[::1", "invalid IPv6 URL"),
    ],
)
def test_a_malformed_endpoint_url_is_one_line(
    pytester: pytest.Pytester, inner: Inner, url: str, reason: str
) -> None:
    pytester.makepyfile(test_uses=USES_FORK)

    done = inner.run("--tigris-endpoint", url)

    assert done.usage_error() == (
        f"--tigris-endpoint={url!r} is not a valid URL ({reason}): {URL_EXAMPLE}"
    )


def test_a_malformed_endpoint_url_is_one_line_under_xdist(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    pytester.makepyfile(test_uses=USES_FORK)

    done = inner.run("--tigris-endpoint", "http://localhost:99999", n=2)

    assert done.usage_error() == (
        "--tigris-endpoint='http://localhost:99999' is not a valid URL (port must be a number "
        f"from 1 to 65535): {URL_EXAMPLE}"
    )


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key (PEM files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Empty(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def tls_server(folder: Path) -> Iterator[str]:
    """An HTTPS server whose certificate nobody trusts."""
    cert, key = _self_signed(folder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Empty)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_an_untrusted_certificate_is_named_with_the_fix(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("cryptography")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "tid_startup")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tsec_startup")
    pytester.makepyfile(test_uses=USES_FORK)
    with tls_server(tmp_path) as url:
        done = inner.run("--tigris-endpoint", url, "--tigris-seed", SEED, timeout=60)

    assert done.usage_error() == (
        f"the TLS certificate of {url} is not trusted (certificate verify failed: self-signed "
        "certificate): check the URL, or point AWS_CA_BUNDLE at the PEM file of the CA that "
        "signed it"
    )


BROKEN_DOTENV = {
    "not-utf8": (b"\xff\xfeAWS_ACCESS_KEY_ID=tid_x\n", "is not UTF-8 text (byte 0xff at offset 0)"),
    "garbage": (b"# keys\nAWS_ACCESS_KEY_ID=tid_x\ngarbage here\n", "line 3 is not KEY=VALUE"),
    "quote": (b'AWS_SECRET_ACCESS_KEY="tsec_unclosed\n', "line 1: no closing quotation"),
}
DOTENV_FIX = {
    "not-utf8": "save it as UTF-8, or delete it",
    "garbage": "fix or remove it",
    "quote": "fix or remove it",
}


@pytest.mark.parametrize(
    ("case", "n"), [("not-utf8", 0), ("garbage", 0), ("quote", 0), ("garbage", 2)]
)
def test_a_broken_dotenv_is_one_line_when_tigris_is_used(
    pytester: pytest.Pytester, inner: Inner, case: str, n: int
) -> None:
    content, problem = BROKEN_DOTENV[case]
    dotenv = pytester.path / ".env.local"
    dotenv.write_bytes(content)
    pytester.makepyfile(test_uses=USES_FORK)

    done = inner.run(n=n)

    assert done.usage_error() == f"{dotenv} {problem}: {DOTENV_FIX[case]}"


@XDIST
@pytest.mark.parametrize("case", sorted(BROKEN_DOTENV))
def test_a_broken_dotenv_does_not_touch_a_run_without_tigris(
    pytester: pytest.Pytester, inner: Inner, case: str, n: int
) -> None:
    (pytester.path / ".env.local").write_bytes(BROKEN_DOTENV[case][0])
    pytester.makepyfile(test_plain=PLAIN)

    done = inner.run(n=n)

    assert done.ret == pytest.ExitCode.OK, done.text
    done.assert_outcomes(passed=1)
    assert done.messages() == [], done.text
    assert not re.search(r"^tigris: ", done.text, re.M), done.text


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"])
def test_an_endpoint_variable_that_is_not_a_url_is_named(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "localhost:4566")
    pytester.makepyfile(test_uses=USES_FORK)

    done = inner.run()

    assert done.usage_error() == f"{variable}='localhost:4566' is not a URL: {URL_EXAMPLE}"


def test_an_endpoint_in_dotenv_is_named_with_the_file(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    (pytester.path / ".env.local").write_text("AWS_ENDPOINT_URL=localhost:4566\n")
    pytester.makepyfile(test_uses=USES_FORK)

    done = inner.run()

    assert done.usage_error() == (
        f"AWS_ENDPOINT_URL (in .env.local)='localhost:4566' is not a URL: {URL_EXAMPLE}"
    )


@XDIST
def test_an_odd_endpoint_variable_does_not_touch_a_run_without_tigris(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:4566")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "tid_x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tsec_x")
    pytester.makepyfile(test_plain=PLAIN)

    done = inner.run(n=n)

    assert done.ret == pytest.ExitCode.OK, done.text
    done.assert_outcomes(passed=1)
    assert done.messages() == [], done.text
    assert not re.search(r"^tigris: ", done.text, re.M), done.text


def _without_root_powers() -> list[str]:
    """A command prefix under which root, too, is refused a file with mode 000 (an empty
    prefix for other users); skips when there is no way to do that."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and setpriv (to drop CAP_DAC_OVERRIDE) is not installed")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


@XDIST
def test_an_unreadable_seed_file_is_named(pytester: pytest.Pytester, inner: Inner, n: int) -> None:
    prefix = _without_root_powers()
    seed = pytester.mkdir("seed")
    (seed / "ok.txt").write_text("fine")
    secret = seed / "private" / "locked.json"
    secret.parent.mkdir()
    secret.write_text("{}")
    secret.chmod(0)
    pytester.makepyfile(test_uses=USES_FORK)

    try:
        # A process of its own: the prefix drops root's power to read any file.
        done = inner.run("--tigris-seed-dir", "seed", n=n, prefix=prefix, timeout=120)
    finally:
        secret.chmod(0o644)

    assert done.usage_error() == (
        f"--tigris-seed-dir {seed}: cannot read private/locked.json (Permission denied): fix "
        "its permissions or move it out of the folder"
    )


FAILING_HOOK = """
def pytest_tigris_populate_seed(client, bucket):
    client.put_object(Bucket=bucket, Key="first.txt", Body=b"one")
    raise FileNotFoundError("fixtures/ is missing\\nand a second line")
"""


@XDIST
def test_an_exception_in_populate_seed_is_one_line_naming_the_hook(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    pytester.makeconftest(FAILING_HOOK)
    pytester.makepyfile(
        test_uses="""
        import pytest

        @pytest.mark.parametrize("i", range(3))
        def test_uses(tigris_fork, i):
            pass
        """
    )

    done = inner.run(n=n)

    assert done.usage_error() == (
        "pytest_tigris_populate_seed raised FileNotFoundError: fixtures/ is missing; and a "
        "second line (conftest.py:3): fix the hook"
    )
    assert "KeyError" not in done.text, done.text


# -- item 7: the emulator dies during the run -----------------------------------------------
KILLS_THE_EMULATOR = """
import os
import pathlib
import signal
import time

import pytest

from pytest_tigris.plugin import RUN_KEY

OUT = pathlib.Path({out!r})


def test_kills_the_emulator(request, tigris_fork):
    run = request.config.stash[RUN_KEY]
    pid = run.read_registry()["emulator"]["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pathlib.Path(f"/proc/{{pid}}/stat").exists():
        state = pathlib.Path(f"/proc/{{pid}}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    (OUT / "log.txt").write_text((run.shared_dir / "emulator.log").read_text())
    (OUT / "pid").write_text(str(pid))


@pytest.mark.parametrize("i", range(2))
def test_after(request, i):
    deadline = time.monotonic() + 60
    while not (OUT / "pid").exists():
        assert time.monotonic() < deadline, "the emulator was never killed"
        time.sleep(0.05)
    request.getfixturevalue("tigris_fork")
"""


@XDIST
def test_an_emulator_that_dies_mid_run_is_reported_as_dead(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    out = pytester.mkdir("out")
    pytester.makepyfile(test_dies=KILLS_THE_EMULATOR.format(out=str(out)))

    # No ready forks made ahead: the count of forks lost with the emulator is then exact.
    done = inner.run("-rN", "--tigris-pool=0", n=n)

    done.assert_outcomes(passed=1, failed=2)
    assert done.ret == pytest.ExitCode.TESTS_FAILED, done.text
    pid = (out / "pid").read_text()
    log = [line.strip() for line in (out / "log.txt").read_text().splitlines() if line.strip()]
    tail = " | ".join(log[-3:])
    died = f"the Tigris emulator (pid {pid}) stopped during the run; last lines of its log: {tail}"
    assert set(done.messages()) == {
        died,
        "forks not deleted: 1 (they lived in the embedded emulator, which stopped during the run)",
    }, done.text
    assert done.messages().count(died) == 2, done.text
    assert "--tigris-endpoint" not in done.text, done.text
    assert "aws s3 rb" not in done.text, done.text
    assert "Traceback" not in done.text and "INTERNALERROR" not in done.text, done.text
    assert not re.search(r"\bConnection refused\b", done.text), done.text
