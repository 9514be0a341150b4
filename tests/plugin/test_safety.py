"""Safety and clear errors (issue 4, items 2, 3, 5 and 7).

- The deletion guard: ``ForkJanitor`` deletes only forks this project made, never the seed, and
  says so (item 2).
- Fork verification: a plain S3 server that ignores the Tigris headers makes the run fail in
  one line, never hands a test an empty bucket (item 3).
- Every bad input is one line naming the setting and the fix, exit code 4, no traceback, and
  nothing created on the endpoint (item 5).
- 4 xdist workers x 50 forks on one emulator: no collision, no cross-talk, no leak (item 7).

Inner suites run in-process (``tests.inner``) against the session's standalone emulator, a
keyed emulator, a plain moto server, a closed port or a web server that is not S3.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import tigris_boto3_ext as tx
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.exceptions import TigrisForkError, TigrisUnsafeDeleteError
from pytest_tigris.janitor import ForkJanitor
from pytest_tigris.naming import parse_fork_name
from tests.helpers import (
    body,
    create_snapshot_bucket,
    force_delete,
    fork,
    make_client,
)
from tests.inner import Inner, InnerResult

SEED_OBJECTS = {"manifest.json": b'{"n": 2}', "shared.txt": b"seed\n", "data/a.txt": b"alpha\n"}
SUMMARY = re.compile(r"forks: (\d+) created, (\d+) deleted, (\d+) kept, (\d+) leaked")
# The outer run's variables that would change what an inner run does.
FOREIGN_ENV = ("AWS_", "PYTEST_", "CI", "GITHUB_", "CIRCLE", "BUILDKITE_", "BUILD_TAG")
XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
ACCESS_KEY = "tid_safety_access"
SECRET_KEY = "tsec_Safety-S3cr3t-never-printed"

# Every inner test that gets a bucket says so: after a setup error, none may have.
USES_FORK = """
import os
import pathlib

import pytest

OUT = pathlib.Path(os.environ["SAFETY_OUT"])


@pytest.mark.parametrize("i", range(3))
def test_uses(tigris_fork, i):
    (OUT / f"{tigris_fork.name}.fork").write_text(str(i))
"""


# -- inner runs -----------------------------------------------------------------------------
@dataclass
class Project:
    """An inner suite (``tests.inner``), run against some endpoint."""

    inner: Inner
    out: Path

    def write(self, name: str, source: str) -> None:
        (self.inner.path / name).write_text(source, encoding="utf-8")

    def records(self) -> list[str]:
        """Names of the buckets inner tests were given."""
        return sorted(p.name[: -len(".fork")] for p in self.out.glob("*.fork"))

    def run(
        self,
        *args: str,
        endpoint: str | None,
        seed: str | None = None,
        n: int = 0,
        env: dict[str, str] | None = None,
    ) -> InnerResult:
        environ = {
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
            "SAFETY_OUT": str(self.out),
        }
        if endpoint is not None:
            environ["AWS_ENDPOINT_URL_S3"] = endpoint
        if seed is not None:
            environ["PYTEST_TIGRIS_SEED"] = seed
        environ.update(env or {})
        return self.inner.run(*args, n=n, env=environ)


@pytest.fixture
def project(inner: Inner) -> Project:
    inner.pytester.makepyfile(test_inner=USES_FORK)
    return Project(inner, inner.pytester.mkdir("out"))


def error_lines(result: InnerResult) -> list[str]:
    return [line for line in result.text.splitlines() if "pytest-tigris:" in line]


def assert_one_line_usage_error(result: InnerResult, project: Project, *needles: str) -> str:
    """Exit code 4, no traceback, one ``pytest-tigris:`` line holding every needle, no test
    given a bucket; returns the line."""
    text = result.text
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "Traceback" not in text, text
    assert "INTERNALERROR" not in text, text
    lines = error_lines(result)
    assert len(lines) == 1, text
    for needle in needles:
        assert needle in lines[0], text
    assert project.records() == []
    return lines[0]


# -- endpoints ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bucket_names(s3: Any) -> set[str]:
    return {b["Name"] for b in s3.list_buckets()["Buckets"]}


def snapshots(s3: Any, bucket: str) -> list[str]:
    return sorted(str(b["Name"]) for b in tx.list_snapshots(s3, bucket)["Buckets"])


def delete_tree(s3: Any, bucket: str) -> None:
    """Force-delete ``bucket`` after its forks (children first); gone already is fine."""
    with contextlib.suppress(ClientError, tx.TigrisAPIError):
        for child in tx.list_forks(s3, bucket)["buckets"]:
            delete_tree(s3, child["name"])
    with contextlib.suppress(ClientError, tx.TigrisAPIError):
        force_delete(s3, bucket)


@dataclass
class State:
    """What is on an endpoint, to show a failed run created (and deleted) nothing."""

    buckets: set[str]
    seed_snapshots: list[str]

    @classmethod
    def of(cls, s3: Any, seed: str) -> State:
        return cls(bucket_names(s3), snapshots(s3, seed))


@pytest.fixture
def seed(s3: Any, unique: Callable[[str], str]) -> Iterator[str]:
    """A snapshot-enabled seed bucket of this test's own on the session's emulator."""
    name = unique("safety")
    create_snapshot_bucket(s3, name)
    for key, data in SEED_OBJECTS.items():
        s3.put_object(Bucket=name, Key=key, Body=data)
    yield name
    delete_tree(s3, name)


class NewName:
    """Fresh bucket names for one test; whatever gets those names is deleted after it."""

    def __init__(self, unique: Callable[[str], str]) -> None:
        self.unique = unique
        self.made: list[str] = []

    def __call__(self, prefix: str) -> str:
        self.made.append(self.unique(prefix))
        return self.made[-1]

    def fork_like(self) -> str:
        """A name pytest-tigris's naming parses as one of its forks."""
        name = f"{self.unique('guard')}-r1-gw0-1"
        assert parse_fork_name(name) is not None, name
        self.made.append(name)
        return name


@pytest.fixture
def new_name(s3: Any, unique: Callable[[str], str]) -> Iterator[NewName]:
    names = NewName(unique)
    yield names
    for name in reversed(names.made):
        delete_tree(s3, name)


@dataclass
class Keyed:
    endpoint: str
    s3: Any
    seed: str


@pytest.fixture(scope="module")
def keyed() -> Iterator[Keyed]:
    """An emulator that checks SigV4 against one key pair, like Tigris."""
    with EmulatorProcess(access_key=ACCESS_KEY, secret_key=SECRET_KEY) as process:
        s3 = make_client(
            process.endpoint_url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
        )
        create_snapshot_bucket(s3, "keyed-seed")
        yield Keyed(process.endpoint_url, s3, "keyed-seed")


def moto_client(endpoint: str) -> Any:
    """A client for the plain moto server (which wants a real region to create buckets)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def plain_s3() -> Iterator[str]:
    """A plain moto server: S3 that ignores every X-Tigris-* header. Yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the moto server exited"
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                assert time.monotonic() < deadline, "the moto server did not start in 30 s"
                time.sleep(0.1)
        yield url
    finally:
        process.kill()
        process.wait(10)


class _NotS3(BaseHTTPRequestHandler):
    """Answers every request with a web page (status from the server's ``status``)."""

    def _answer(self) -> None:
        page = b"<!doctype html><html><body><h1>Welcome</h1></body></html>"
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(page)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def web_server(status: int) -> Iterator[str]:
    """A tiny web server in a thread that is not S3: HTML with ``status`` for everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotS3)
    server.status = status  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- item 2: the deletion guard -------------------------------------------------------------
def janitor_for(endpoint: str, seed: str) -> ForkJanitor:
    return ForkJanitor(lambda: make_client(endpoint), endpoint, protected={seed}, remote=True)


def assert_untouched(s3: Any, bucket: str, data: bytes) -> None:
    assert bucket in bucket_names(s3)
    assert body(s3, bucket, "precious.txt") == data


def test_janitor_refuses_a_bucket_not_named_like_a_fork(
    emulator: EmulatorProcess, s3: Any, seed: str, new_name: NewName
) -> None:
    plain = new_name("plain")
    s3.create_bucket(Bucket=plain)
    s3.put_object(Bucket=plain, Key="precious.txt", Body=b"plain")
    # A real fork, but a named environment rather than a test fork.
    env = new_name("myproject-bucket")
    fork(s3, env, seed)
    s3.put_object(Bucket=env, Key="precious.txt", Body=b"env")
    janitor = janitor_for(emulator.endpoint_url, seed)

    for name, data in ((plain, b"plain"), (env, b"env")):
        with pytest.raises(TigrisUnsafeDeleteError, match="not a pytest-tigris fork name"):
            janitor.delete(name)
        assert_untouched(s3, name, data)


def test_janitor_refuses_the_seed_even_when_it_is_a_fork_named_like_one(
    emulator: EmulatorProcess, s3: Any, seed: str, new_name: NewName
) -> None:
    # The worst case: the protected seed is itself a fork, and named like a test fork.
    own_seed = new_name.fork_like()
    fork(s3, own_seed, seed)
    s3.put_object(Bucket=own_seed, Key="precious.txt", Body=b"seed data")
    janitor = janitor_for(emulator.endpoint_url, own_seed)

    with pytest.raises(TigrisUnsafeDeleteError, match="protected"):
        janitor.delete(own_seed)
    with pytest.raises(TigrisUnsafeDeleteError, match="protected"):
        janitor.delete_env(own_seed)
    assert_untouched(s3, own_seed, b"seed data")
    assert [f["name"] for f in tx.list_forks(s3, seed)["buckets"]] == [own_seed]


def test_janitor_on_the_remote_backend_leaves_a_plain_bucket_named_like_a_fork(
    emulator: EmulatorProcess, s3: Any, seed: str, new_name: NewName
) -> None:
    impostor = new_name.fork_like()
    s3.create_bucket(Bucket=impostor)
    s3.put_object(Bucket=impostor, Key="precious.txt", Body=b"not a fork")
    janitor = janitor_for(emulator.endpoint_url, seed)

    assert janitor.delete(impostor) is False
    assert_untouched(s3, impostor, b"not a fork")
    with pytest.raises(TigrisUnsafeDeleteError, match="not a fork"):
        janitor.delete_env(impostor)
    assert_untouched(s3, impostor, b"not a fork")


def test_janitor_delete_is_idempotent(
    emulator: EmulatorProcess, s3: Any, seed: str, new_name: NewName
) -> None:
    janitor = janitor_for(emulator.endpoint_url, seed)
    name = new_name.fork_like()
    janitor.fork(name, seed)
    s3.put_object(Bucket=name, Key="scratch.txt", Body=b"x")

    assert janitor.delete(name) is True
    assert name not in bucket_names(s3)
    assert janitor.delete(name) is False
    assert janitor.delete(new_name.fork_like()) is False  # never created
    # A janitor that did not make the fork (the end-of-run sweep) deletes it too, once.
    other = new_name.fork_like()
    fork(s3, other, seed)
    assert janitor_for(emulator.endpoint_url, seed).delete(other) is True
    assert janitor.delete(other) is False
    assert tx.list_forks(s3, seed)["buckets"] == []
    assert body(s3, seed, "shared.txt") == SEED_OBJECTS["shared.txt"]


# -- item 3: fork verification --------------------------------------------------------------
@XDIST
def test_a_plain_s3_server_fails_the_run_in_one_line(
    project: Project, plain_s3: str, n: int
) -> None:
    s3 = moto_client(plain_s3)
    with contextlib.suppress(ClientError):  # module-scoped server: made by the first run
        s3.create_bucket(Bucket="plain-seed")
    s3.put_object(Bucket="plain-seed", Key="data.txt", Body=b"seed")

    result = project.run(
        "--tigris-endpoint",
        plain_s3,
        "--tigris-seed",
        "plain-seed",
        endpoint=None,
        n=n,
        env={"AWS_DEFAULT_REGION": "us-east-1"},
    )

    # The seed's HeadBucket has no Tigris header: found before any test runs, in one line.
    line = assert_one_line_usage_error(result, project, plain_s3, "does not speak Tigris")
    assert "it cannot fork buckets" in line, line
    assert project.records() == [], "a test was handed a bucket that is not a fork"
    assert bucket_names(s3) == {"plain-seed"}
    assert body(s3, "plain-seed", "data.txt") == b"seed"


def test_janitor_fork_on_a_plain_s3_server_fails_and_removes_the_plain_bucket(
    plain_s3: str,
) -> None:
    s3 = moto_client(plain_s3)
    with contextlib.suppress(ClientError):
        s3.create_bucket(Bucket="plain-seed")
    janitor = ForkJanitor(
        lambda: moto_client(plain_s3), plain_s3, protected={"plain-seed"}, remote=True
    )
    name = "plain-seed-verify1-gw0-0"

    with pytest.raises(TigrisForkError, match="does not support Tigris forks"):
        janitor.fork(name, "plain-seed")
    assert bucket_names(s3) == {"plain-seed"}


def test_verify_rejects_and_removes_a_plain_bucket(
    emulator: EmulatorProcess, s3: Any, seed: str, new_name: NewName
) -> None:
    janitor = janitor_for(emulator.endpoint_url, seed)
    real = new_name.fork_like()
    fork(s3, real, seed)
    janitor.verify(real, seed)  # a fork of the seed passes
    plain = new_name.fork_like()
    s3.create_bucket(Bucket=plain)

    with pytest.raises(TigrisForkError, match="fork"):
        janitor.verify(plain, seed)
    assert plain not in bucket_names(s3)
    assert real in bucket_names(s3)


def test_forks_of_a_snapshot_are_verified_once_per_source_forks_of_now_every_time(
    emulator: EmulatorProcess, s3: Any, seed: str, new_name: NewName
) -> None:
    """The pool's forks (of the run's pinned snapshot) cost a HeadBucket only until the
    endpoint has shown once that it forks that source; a fork of the current state always
    asks (its fork point comes from HeadBucket)."""
    janitor = janitor_for(emulator.endpoint_url, seed)
    janitor.prepare()
    heads: list[str] = []
    client, _ = janitor._calls()
    client.meta.events.register(
        "before-send.s3.HeadBucket", lambda request, **kw: heads.append(request.url)
    )
    version = janitor.snapshot(seed)
    first, second, now = (new_name.fork_like() for _ in range(3))

    assert janitor.fork(first, seed, version) == version
    assert janitor.fork(second, seed, version) == version
    assert len(heads) == 1 and heads[0].endswith(f"/{first}")
    point = janitor.fork(now, seed)
    assert len(heads) == 2 and heads[1].endswith(f"/{now}")
    assert point is not None and point != version
    for name in (first, second, now):
        assert janitor.fork_source(name) == seed  # all three are real forks


# -- item 5: one line, exit code 4, nothing created -----------------------------------------
BAD_SETTINGS = {
    # case: (arguments, what the line must say)
    "seed-name": (["--tigris-seed", "Bad_Seed"], ["--tigris-seed", "Bad_Seed", "bucket name"]),
    "keep": (["--tigris-keep", "sometimes"], ["--tigris-keep", "sometimes", "never, failed"]),
    "backend": (["--tigris-backend", "cloud"], ["--tigris-backend", "cloud", "auto, remote"]),
    "seed-dir-missing": (["--tigris-seed-dir", "nowhere"], ["--tigris-seed-dir", "not exist"]),
    "seed-dir-file": (["--tigris-seed-dir", "pytest.ini"], ["--tigris-seed-dir", "not a folder"]),
    "seed-snapshot": (
        ["--tigris-seed-snapshot", "no-such-snapshot"],
        ["--tigris-seed-snapshot", "no-such-snapshot", "list_snapshots"],
    ),
    "seed-missing": (
        ["--tigris-seed", "no-such-seed-bucket"],
        ["no-such-seed-bucket", "does not exist", "--tigris-seed"],
    ),
}


@pytest.mark.parametrize(
    ("case", "n"),
    [
        *((case, 0) for case in sorted(BAD_SETTINGS)),
        ("keep", 2),
        ("seed-snapshot", 2),
        ("seed-missing", 2),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_code_4(
    project: Project, emulator: EmulatorProcess, s3: Any, seed: str, case: str, n: int
) -> None:
    args, needles = BAD_SETTINGS[case]
    before = State.of(s3, seed)

    result = project.run(*args, endpoint=emulator.endpoint_url, seed=seed, n=n)

    assert_one_line_usage_error(result, project, *needles)
    assert State.of(s3, seed) == before


def test_a_seed_without_snapshots_says_how_to_enable_them(
    project: Project, emulator: EmulatorProcess, s3: Any, new_name: NewName
) -> None:
    plain = new_name("nosnap")
    s3.create_bucket(Bucket=plain)
    before = bucket_names(s3)

    result = project.run(endpoint=emulator.endpoint_url, seed=plain)

    line = assert_one_line_usage_error(result, project, plain, "not snapshot-enabled")
    assert "enable snapshots on it" in line and "snapshot_enabled=True" in line, line
    assert bucket_names(s3) == before


@pytest.mark.parametrize(("wrong", "n"), [("key", 0), ("secret", 0), ("secret", 2)])
def test_wrong_credentials_are_access_denied_naming_the_variables(
    project: Project, keyed: Keyed, wrong: str, n: int
) -> None:
    bad_secret = "tsec_wrong-secret-never-printed"
    creds = {
        "AWS_ACCESS_KEY_ID": "tid_wrong" if wrong == "key" else ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": bad_secret if wrong == "secret" else SECRET_KEY,
    }
    before = State.of(keyed.s3, keyed.seed)

    result = project.run(endpoint=keyed.endpoint, seed=keyed.seed, n=n, env=creds)

    assert_one_line_usage_error(
        result, project, "Access Denied", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
    )
    assert SECRET_KEY not in result.text and bad_secret not in result.text
    assert State.of(keyed.s3, keyed.seed) == before


def test_an_endpoint_refusing_connections_is_named(project: Project) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    started = time.monotonic()
    result = project.run(endpoint=url, seed="any-seed")

    line = assert_one_line_usage_error(result, project, "Connection refused", url)
    assert "check --tigris-endpoint / AWS_ENDPOINT_URL_S3" in line, line
    assert time.monotonic() - started < 30, "a refused connection should fail at once"


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        # HeadBucket "succeeds", without the header every Tigris bucket answers with.
        (200, "does not speak Tigris (HeadBucket has no X-Tigris-Enable-Snapshot header)"),
        # HeadBucket fails, and the answer is a web page without S3's headers.
        (404, "does not speak S3 (HTTP 404 without S3 headers)"),
    ],
    ids=["200", "404"],
)
def test_an_endpoint_that_is_not_s3_is_named(project: Project, status: int, problem: str) -> None:
    with web_server(status) as url:
        result = project.run(endpoint=url, seed="any-seed")

    # Whatever the page's status, the line blames the endpoint, not the seed.
    line = assert_one_line_usage_error(result, project, url)
    assert f"pytest-tigris: {url} {problem}: " in line, line


BAD_MARKERS = {
    "positional": '@pytest.mark.tigris("some-seed")',
    "unknown-keyword": '@pytest.mark.tigris(sead="some-seed")',
    "not-a-string": "@pytest.mark.tigris(snapshot=123)",
}


@pytest.mark.parametrize(
    ("bad", "n"), [*((bad, 0) for bad in sorted(BAD_MARKERS)), ("positional", 2)]
)
def test_a_bad_marker_errors_its_test_with_one_line(
    project: Project, emulator: EmulatorProcess, s3: Any, seed: str, bad: str, n: int
) -> None:
    project.write(
        "test_marked.py",
        f"import pytest\n\n\n{BAD_MARKERS[bad]}\ndef test_marked(tigris_fork):\n    pass\n",
    )
    before = State.of(s3, seed)

    # -r s: no short summary, which would repeat the error's line.
    result = project.run("-r", "s", endpoint=emulator.endpoint_url, seed=seed, n=n)

    # The marker is that test's problem (issue 11, item 13): it errors at setup, given no
    # fork, and the project's other tests run.
    text = result.text
    assert result.ret == pytest.ExitCode.TESTS_FAILED, text
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    (line,) = error_lines(result)
    shown = BAD_MARKERS[bad].replace('"', "'")
    assert line.startswith(f"pytest-tigris: test_marked.py::test_marked: {shown}: "), line
    assert "3 passed, 1 error in" in text, text
    assert len(project.records()) == 3
    assert State.of(s3, seed) == before


FIXED_NAME_HOOK = """
import os


def pytest_tigris_fork_name(config, kind, worker):
    return os.environ["SAFETY_TAKEN"]
"""


@XDIST
def test_a_fork_name_that_is_taken_is_one_line_and_the_bucket_is_spared(
    project: Project,
    emulator: EmulatorProcess,
    s3: Any,
    seed: str,
    new_name: NewName,
    n: int,
) -> None:
    taken = new_name("taken")
    s3.create_bucket(Bucket=taken)
    s3.put_object(Bucket=taken, Key="precious.txt", Body=b"someone else's")
    project.write("conftest.py", FIXED_NAME_HOOK)
    before = State.of(s3, seed)

    # No ready forks made ahead: the taken name is met by the test's own request.
    result = project.run(
        endpoint=emulator.endpoint_url,
        seed=seed,
        n=n,
        env={"SAFETY_TAKEN": taken, "PYTEST_TIGRIS_POOL": "0"},
    )

    if n == 0:
        line = assert_one_line_usage_error(result, project, taken, "already exists")
    else:
        # Found while tests run: a worker cannot stop the run, so each test that asked for a
        # fork fails with the same single line, and the controller sets exit code 4.
        text = result.text
        assert result.ret == pytest.ExitCode.USAGE_ERROR, text
        assert "Traceback" not in text and "INTERNALERROR" not in text, text
        messages = {line.split("pytest-tigris: ", 1)[1] for line in error_lines(result)}
        messages = {m for m in messages if not m.endswith("...")}  # the short summary
        assert len(messages) == 1, text
        line = messages.pop()
        assert taken in line and "already exists" in line
        assert project.records() == []
    assert "global" in line
    # Nothing may suggest deleting a bucket that is someone else's.
    assert f"s3://{taken}" not in result.text, result.text
    assert_untouched(s3, taken, b"someone else's")
    assert State.of(s3, seed) == before


def test_a_default_fork_name_that_is_taken_is_retried_and_the_bucket_is_spared(
    project: Project,
    emulator: EmulatorProcess,
    s3: Any,
    seed: str,
    new_name: NewName,
) -> None:
    # Someone else's fork (of another bucket) holds the name this run will try first.
    other = new_name("other-seed")
    create_snapshot_bucket(s3, other)
    taken = f"{seed}-collide1-m-0"
    fork(s3, taken, other)
    s3.put_object(Bucket=taken, Key="precious.txt", Body=b"someone else's")
    before = State.of(s3, seed)

    result = project.run("--tigris-run-id", "collide1", endpoint=emulator.endpoint_url, seed=seed)

    assert result.ret == pytest.ExitCode.OK, result.text
    used = project.records()
    assert len(used) == 3 and taken not in used
    assert_untouched(s3, taken, b"someone else's")
    assert State.of(s3, seed) == before


DIRTIES_ITS_FORK = """
import json
import os
import pathlib

OUT = pathlib.Path(os.environ["SAFETY_OUT"])


def test_dirties_its_fork(tigris_fork):
    client, name = tigris_fork.client, tigris_fork.name
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", []))
    record = {"name": name, "keys": keys}
    (OUT / f"{os.environ['SAFETY_RUN']}.json").write_text(json.dumps(record))
    client.put_object(Bucket=name, Key="precious.txt", Body=b"kept by the first run")
    assert os.environ["SAFETY_RUN"] == "second", "fails on purpose, so its fork is kept"
"""


def test_a_kept_fork_of_an_earlier_run_with_the_same_run_id_is_neither_reused_nor_deleted(
    project: Project, emulator: EmulatorProcess, s3: Any, seed: str
) -> None:
    project.write("test_inner.py", DIRTIES_ITS_FORK)
    args = ("--tigris-run-id", "reuse1", "--tigris-keep", "failed")

    first = project.run(
        *args, endpoint=emulator.endpoint_url, seed=seed, env={"SAFETY_RUN": "first"}
    )
    assert first.ret == pytest.ExitCode.TESTS_FAILED, first.text
    kept = json.loads((project.out / "first.json").read_text())["name"]
    assert_untouched(s3, kept, b"kept by the first run")
    second = project.run(
        *args, endpoint=emulator.endpoint_url, seed=seed, env={"SAFETY_RUN": "second"}
    )

    assert second.ret == pytest.ExitCode.OK, second.text
    seen = json.loads((project.out / "second.json").read_text())
    # A fresh fork of the seed under a new name, not the first run's kept fork...
    assert seen["keys"] == sorted(SEED_OBJECTS), "the second run was handed a used bucket"
    assert seen["name"] != kept
    # ...which is still there for the user to inspect.
    assert_untouched(s3, kept, b"kept by the first run")


# -- item 7: 4 workers x 50 forks on one emulator ---------------------------------------------
CONCURRENT = """
import json
import os
import pathlib

import pytest

OUT = pathlib.Path(os.environ["SAFETY_OUT"])
SEED = json.loads(os.environ["SAFETY_SEED_OBJECTS"])


def contents(client, bucket):
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            data = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            found[entry["Key"]] = data.decode()
    return found


@pytest.mark.parametrize("i", range(50))
def test_sees_the_seed_and_its_own_writes_only(tigris_fork, i):
    client, name = tigris_fork.client, tigris_fork.name
    assert contents(client, name) == SEED
    client.put_object(Bucket=name, Key=f"marker/{i}", Body=f"test {i}".encode())
    client.put_object(Bucket=name, Key="shared.txt", Body=f"written by test {i}".encode())
    expected = {**SEED, f"marker/{i}": f"test {i}", "shared.txt": f"written by test {i}"}
    assert contents(client, name) == expected
    (OUT / f"{name}.fork").write_text(os.environ.get("PYTEST_XDIST_WORKER", "main"))
"""


def test_four_workers_fifty_forks_no_collision_no_cross_talk_no_leak(
    project: Project, emulator: EmulatorProcess, s3: Any, seed: str
) -> None:
    project.write("test_inner.py", CONCURRENT)
    before = bucket_names(s3)
    seed_objects = {k: v.decode() for k, v in SEED_OBJECTS.items()}

    result = project.run(
        endpoint=emulator.endpoint_url,
        seed=seed,
        n=4,
        env={"SAFETY_SEED_OBJECTS": json.dumps(seed_objects)},
    )

    assert result.ret == pytest.ExitCode.OK, result.text
    assert re.search(r"\b50 passed\b", result.text), result.text
    names = project.records()
    assert len(names) == len(set(names)) == 50
    assert all(parse_fork_name(name) for name in names)
    workers = {(project.out / f"{name}.fork").read_text() for name in names}
    # xdist's first batch gives each of the four workers tests of its own.
    assert workers == {"gw0", "gw1", "gw2", "gw3"}, workers
    counts = SUMMARY.findall(result.text)
    assert counts == [("50", "50", "0", "0")], result.text
    assert tx.list_forks(s3, seed)["buckets"] == []
    assert bucket_names(s3) == before
    assert {k: body(s3, seed, k) for k in SEED_OBJECTS} == SEED_OBJECTS
