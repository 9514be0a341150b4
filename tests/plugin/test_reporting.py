"""Reporting and the plugin's surface, from the outside: inner pytest sessions (``tests.inner``).

Keep modes and the terminal summary, the report header (and that no secret ever shows), the
``--help`` group, ``--fixtures`` docs, the ``tigris`` marker, ``-p no:tigris``, the hooks, lazy
imports and configuration errors. Inner runs use the embedded emulator unless a test points them
at the session's standalone emulator (``--tigris-endpoint``, a stand-in for real Tigris), where
each test makes its own seed buckets and force-deletes them afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import body, create_snapshot_bucket, force_delete, keys, snapshot
from tests.inner import Inner

DEFAULT_SEED = "pytest-tigris-seed"
SEED_DIR_FILES = {"manifest.json": b'{"items": 2}', "data/hello.txt": b"hello from the seed dir"}
ACCESS_KEY = "tid_reporting_access_key"
SECRET = "tsec_Reporting-S3cr3t-Do-Not-Print-7f3a9c"
SUMMARY = re.compile(
    r"^forks: (\d+) created, (\d+) deleted, (\d+) kept, (\d+) leaked\b.*"
    r"fork time median \d+ ms, max \d+ ms$",
    re.M,
)
SECTION = re.compile(r"^=+ tigris =+$", re.M)
# A kept fork's line ends with a complete, ready-to-paste command.
AWS_LS = re.compile(r"aws s3 ls s3://(\S+) --endpoint-url (\S+)$", re.M)
OPTIONS = (
    "--tigris-seed",
    "--tigris-seed-snapshot",
    "--tigris-seed-dir",
    "--tigris-endpoint",
    "--tigris-backend",
    "--tigris-keep",
    "--tigris-report",
    "--tigris-fork-mode",
    "--tigris-pool",
    "--tigris-prefix",
    "--tigris-run-id",
)
HEAVY = ("boto3", "botocore", "moto", "tigris_boto3_ext")


def seed_dir(pytester: pytest.Pytester) -> str:
    """A seed folder for the embedded emulator; returns its path as an argument."""
    root = pytester.mkdir("seed")
    for key, data in SEED_DIR_FILES.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return str(root)


def out_dir(pytester: pytest.Pytester) -> Path:
    """Where inner tests and conftests write what they saw."""
    return pytester.mkdir("out")


def summary_counts(text: str) -> tuple[int, int, int, int]:
    """``(created, deleted, kept, leaked)`` from the "tigris" summary section."""
    assert SECTION.search(text), text
    match = SUMMARY.search(text)
    assert match, text
    created, deleted, kept, leaked = (int(g) for g in match.groups())
    return created, deleted, kept, leaked


def one_line_error(text: str, needle: str) -> None:
    """The run printed ``needle`` on one line, and no traceback."""
    assert any(needle in line for line in text.splitlines()), text
    assert "Traceback" not in text, text
    assert "INTERNALERROR" not in text, text


# -- the standalone emulator as a stand-in for real Tigris ---------------------------------
@dataclass
class Standalone:
    """The session emulator with env credentials; tracks the seed buckets a test made."""

    endpoint: str
    s3: Any
    make_name: Callable[[str], str]
    seeds: list[str] = field(default_factory=list)

    def make_seed(self, files: dict[str, bytes]) -> str:
        name = self.make_name("rep")
        create_snapshot_bucket(self.s3, name)
        self.seeds.append(name)
        for key, data in files.items():
            self.s3.put_object(Bucket=name, Key=key, Body=data)
        return name

    def args(self, seed: str) -> list[str]:
        return ["--tigris-endpoint", self.endpoint, "--tigris-seed", seed]

    def buckets(self, prefix: str) -> set[str]:
        """Buckets named ``{prefix}-...`` (fork names start with the seed's name)."""
        names = {b["Name"] for b in self.s3.list_buckets()["Buckets"]}
        return {n for n in names if n.startswith(prefix + "-")}

    def cleanup(self) -> None:
        for seed in self.seeds:
            for name in sorted(self.buckets(seed), key=len, reverse=True):
                with suppress(ClientError):
                    force_delete(self.s3, name)
        for seed in self.seeds:
            with suppress(ClientError):
                force_delete(self.s3, seed)


@pytest.fixture
def standalone(
    inner: Inner, emulator: EmulatorProcess, s3: Any, unique: Callable[[str], str]
) -> Iterator[Standalone]:
    """The session's emulator, with the keys the inner runs use in their environment."""
    inner.setenv(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    remote = Standalone(emulator.endpoint_url, s3, unique)
    yield remote
    remote.cleanup()


# -- 1. keep modes and the terminal summary ------------------------------------------------
KEEP_SUITE = """
import pathlib

import pytest

OUT = pathlib.Path({out!r})


def record(fork, label):
    fork.client.put_object(Bucket=fork.name, Key=label + ".txt", Body=label.encode())
    (OUT / (label + ".name")).write_text(fork.name)


@pytest.mark.parametrize("i", range(2))
def test_pass(tigris_fork, i):
    record(tigris_fork, "pass%d" % i)


@pytest.mark.parametrize("i", range(2))
def test_fail(tigris_fork, i):
    record(tigris_fork, "fail%d" % i)
    assert False, "fails on purpose"
"""


@pytest.mark.parametrize("n", [0, 2])
@pytest.mark.parametrize("keep", ["never", "failed", "always"])
def test_keep_modes_keep_the_right_forks_and_print_them(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone, keep: str, n: int
) -> None:
    seed = standalone.make_seed({"seed.txt": b"seed data"})
    out = out_dir(pytester)
    pytester.makepyfile(test_keep=KEEP_SUITE.format(out=str(out)))
    args = [*standalone.args(seed)]
    if keep != "never":  # never is the default
        args.append(f"--tigris-keep={keep}")

    result = inner.run(*args, n=n)

    result.assert_outcomes(passed=2, failed=2)
    names = {p.stem: p.read_text() for p in out.glob("*.name")}
    assert sorted(names) == ["fail0", "fail1", "pass0", "pass1"]
    assert len(set(names.values())) == 4
    expected_kept = {
        "never": set(),
        "failed": {names["fail0"], names["fail1"]},
        "always": set(names.values()),
    }[keep]
    text = result.text
    created, deleted, kept, leaked = summary_counts(text)
    assert (created, deleted, kept, leaked) == (4, 4 - len(expected_kept), len(expected_kept), 0)
    printed = dict(AWS_LS.findall(text))
    assert set(printed) == expected_kept, text
    assert all(url == standalone.endpoint for url in printed.values()), text

    # Kept forks really are still there, with the test's own write; the others are gone.
    assert standalone.buckets(seed) == expected_kept
    for label, name in names.items():
        if name in expected_kept:
            assert sorted(keys(standalone.s3, name)) == sorted(["seed.txt", f"{label}.txt"])
            assert body(standalone.s3, name, f"{label}.txt") == label.encode()


# -- 2. the report header ------------------------------------------------------------------
LEAKY_SUITE = """
def test_uses_everything(tigris_fork, tigris_bucket, tigris_client, tigris_seed,
                         tigris_fork_factory):
    assert False, "fails on purpose, so -l shows every local"
"""


def test_report_header_on_the_embedded_emulator_shows_no_secret(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    inner.setenv(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    pytester.makepyfile(test_leaky=LEAKY_SUITE)

    result = inner.run(
        "--tigris-seed-dir", seed_dir(pytester), "--tigris-run-id", "hdr1", "-vv", "-l"
    )

    result.assert_outcomes(failed=1)
    text = result.text
    header = [line for line in result.outlines if line.startswith("tigris: ")]
    assert len(header) == 1, text
    assert "tigris: backend=emulator" in header[0]
    assert f"seed={DEFAULT_SEED}" in header[0]
    assert "run=hdr1" in header[0]
    assert SECRET not in text


def test_report_header_on_a_remote_endpoint_names_the_host_and_shows_no_secret(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone
) -> None:
    seed = standalone.make_seed({"seed.txt": b"seed data"})
    pytester.makepyfile(test_leaky=LEAKY_SUITE)

    result = inner.run(*standalone.args(seed), "--tigris-run-id", "hdr2", "-vv", "-l")

    result.assert_outcomes(failed=1)
    text = result.text
    header = [line for line in result.outlines if line.startswith("tigris: ")]
    assert len(header) == 1, text
    host_port = standalone.endpoint.split("://", 1)[1].rstrip("/")
    assert "backend=remote" in header[0]
    assert host_port in header[0]
    assert f"seed={seed}" in header[0]
    assert "run=hdr2" in header[0]
    assert SECRET not in text
    assert standalone.buckets(seed) == set()


# -- 3. --help -----------------------------------------------------------------------------
def test_help_shows_a_tigris_group_with_every_option_and_ini_key(
    pytester: pytest.Pytester,
    inner: Inner,
) -> None:
    result = inner.run("--help")

    assert result.ret == pytest.ExitCode.OK
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("--tigris-seed"))
    heading = lines[start - 1]
    assert heading.endswith(":") and "tigris" in heading.lower(), heading
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    group = "\n".join(lines[start:end])
    for option in OPTIONS:
        assert re.search(rf"^\s+{option}[=\s]", group, re.M), f"{option} not in:\n{group}"
    # "[pytest] ini-options in the first ..." (pytest 8) / "[pytest] configuration options ..."
    ini_start = next(i for i, line in enumerate(lines) if line.startswith("[pytest]"))
    ini_end = next(i for i in range(ini_start, len(lines)) if lines[i].startswith("Environment"))
    ini_section = "\n".join(lines[ini_start:ini_end])
    for option in OPTIONS:
        ini = "tigris_" + option[len("--tigris-") :].replace("-", "_")
        assert re.search(rf"^\s+{ini} \(string\)", ini_section, re.M), f"{ini} missing"


# -- 4. --fixtures -------------------------------------------------------------------------
def test_fixtures_are_documented(pytester: pytest.Pytester, inner: Inner) -> None:
    pytester.makepyfile(test_plain="def test_nothing():\n    pass\n")

    result = inner.run("--fixtures")

    assert result.ret == pytest.ExitCode.OK
    text = "\n".join(result.outlines)
    expected = {
        "tigris_bucket [session scope]": "Fork",
        "tigris_fork_factory [session scope]": "TigrisForkFactory",
        "tigris_client [session scope]": "boto3 S3 client",
        "tigris_seed [session scope]": "seed bucket",
        "tigris_fork": "Fork",
    }
    for head, doc in expected.items():
        match = re.search(rf"^{re.escape(head)} -- .*\n((?:    .*\n?)+)", text, re.M)
        assert match, f"{head} not documented:\n{text}"
        assert doc in match.group(1), match.group(0)
    assert "deleted after the test" in text


# -- 5. the marker -------------------------------------------------------------------------
def test_markers_lists_tigris(pytester: pytest.Pytester, inner: Inner) -> None:
    result = inner.run("--markers")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["@pytest.mark.tigris(seed=None, snapshot=None):*"])


MARKER_SUITE = """
import pathlib

import pytest

SEED1 = {seed1!r}
SEED2 = {seed2!r}
V1 = {version!r}
OUT = pathlib.Path({out!r})


def which(fork):
    return fork.client.get_object(Bucket=fork.name, Key="which.txt")["Body"].read()


def test_unmarked(tigris_fork):
    assert tigris_fork.source == SEED1
    assert which(tigris_fork) == b"seed-one"


@pytest.mark.tigris(seed=SEED2)
def test_marked_seed(tigris_fork):
    (OUT / "marked.name").write_text(tigris_fork.name)
    assert tigris_fork.source == SEED2
    assert tigris_fork.snapshot
    assert which(tigris_fork) == b"seed-two"


@pytest.mark.tigris(seed=SEED2, snapshot=V1)
def test_marked_seed_and_snapshot(tigris_fork):
    assert tigris_fork.source == SEED2
    assert tigris_fork.snapshot == V1
    assert which(tigris_fork) == b"seed-two-v1"


@pytest.mark.tigris(seed=SEED2)
class TestMarkedClass:
    def test_one(self, tigris_fork):
        assert tigris_fork.source == SEED2
        assert which(tigris_fork) == b"seed-two"

    def test_two(self, tigris_fork):
        assert which(tigris_fork) == b"seed-two"
"""


@pytest.mark.parametrize("n", [0, 2])
def test_marker_picks_the_seed_and_snapshot_of_tigris_fork(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone, n: int
) -> None:
    seed1 = standalone.make_seed({"which.txt": b"seed-one"})
    seed2 = standalone.make_seed({"which.txt": b"seed-two-v1"})
    version = snapshot(standalone.s3, seed2, "v1")
    standalone.s3.put_object(Bucket=seed2, Key="which.txt", Body=b"seed-two")
    out = out_dir(pytester)
    pytester.makepyfile(
        test_marked=MARKER_SUITE.format(seed1=seed1, seed2=seed2, version=version, out=str(out))
    )

    result = inner.run(*standalone.args(seed1), "--strict-markers", n=n)

    result.assert_outcomes(passed=5)
    marked = (out / "marked.name").read_text()
    assert marked.startswith(seed1 + "-")  # names come from the run's prefix, not the seed
    assert standalone.buckets(seed1) == set()
    assert body(standalone.s3, seed2, "which.txt") == b"seed-two"


def test_marker_snapshot_may_be_a_snapshot_name(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone
) -> None:
    # The marker's help says "snapshot version or name", like --tigris-seed-snapshot.
    seed1 = standalone.make_seed({"which.txt": b"seed-one"})
    seed2 = standalone.make_seed({"which.txt": b"seed-two-v1"})
    snapshot(standalone.s3, seed2, "v1")
    standalone.s3.put_object(Bucket=seed2, Key="which.txt", Body=b"seed-two")
    pytester.makepyfile(
        test_named=f"""
        import pytest

        @pytest.mark.tigris(seed={seed2!r}, snapshot="v1")
        def test_named_snapshot(tigris_fork):
            assert tigris_fork.source == {seed2!r}
            got = tigris_fork.client.get_object(Bucket=tigris_fork.name, Key="which.txt")
            assert got["Body"].read() == b"seed-two-v1"
        """
    )

    result = inner.run(*standalone.args(seed1), "--strict-markers")

    result.assert_outcomes(passed=1)
    assert standalone.buckets(seed1) == set()


BAD_MARKERS = {
    "positional": '@pytest.mark.tigris("some-seed")',
    "unknown-kwarg": '@pytest.mark.tigris(sead="some-seed")',
}


@pytest.mark.parametrize("n", [0, 2])
@pytest.mark.parametrize("bad", sorted(BAD_MARKERS))
def test_bad_marker_arguments_error_only_that_test(
    pytester: pytest.Pytester, inner: Inner, bad: str, n: int
) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        {BAD_MARKERS[bad]}
        def test_marked(tigris_fork):
            pass

        def test_other():
            pass
        """
    )

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), "--strict-markers", n=n)

    text = result.text
    assert result.ret == pytest.ExitCode.TESTS_FAILED, text
    result.assert_outcomes(passed=1, errors=1)
    shown = BAD_MARKERS[bad].replace('"', "'")
    one_line_error(text, f"pytest-tigris: test_bad.py::test_marked: {shown}: ")


# -- 6. -p no:tigris -----------------------------------------------------------------------
def test_plugin_can_be_disabled(pytester: pytest.Pytester, inner: Inner) -> None:
    pytester.makepyfile(test_plain="def test_plain(tmp_path):\n    assert tmp_path.is_dir()\n")

    result = inner.run("-p", "no:tigris")

    result.assert_outcomes(passed=1)
    assert not any(line.startswith("tigris: ") for line in result.outlines)

    pytester.makepyfile(test_uses="def test_uses(tigris_fork):\n    pass\n")
    result = inner.run("-p", "no:tigris")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'tigris_fork' not found*"])


# -- 7. hooks ------------------------------------------------------------------------------
POPULATE_CONFTEST = """
import json
import os
import pathlib

OUT = pathlib.Path({out!r})


def pytest_tigris_populate_seed(client, bucket):
    listed = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    with open(OUT / "populate.log", "a") as log:
        log.write(json.dumps({{"pid": os.getpid(), "bucket": bucket, "keys": listed}}) + "\\n")
    client.put_object(Bucket=bucket, Key="from-hook.txt", Body=b"populated by the hook")
"""
POPULATE_SUITE = """
import pytest


def read(fork, key):
    return fork.client.get_object(Bucket=fork.name, Key=key)["Body"].read()


@pytest.mark.parametrize("i", range(6))
def test_fork_sees_the_hook_and_the_folder(tigris_fork, i):
    assert read(tigris_fork, "from-hook.txt") == b"populated by the hook"
    assert read(tigris_fork, "data/hello.txt") == b"hello from the seed dir"


def test_bucket_sees_the_hook(tigris_bucket):
    assert read(tigris_bucket, "from-hook.txt") == b"populated by the hook"
"""


@pytest.mark.parametrize("n", [0, 2])
def test_populate_seed_hook_fills_the_seed_once_per_run(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    out = out_dir(pytester)
    pytester.makeconftest(POPULATE_CONFTEST.format(out=str(out)))
    pytester.makepyfile(test_populate=POPULATE_SUITE)

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), n=n)

    result.assert_outcomes(passed=7)
    calls = [json.loads(line) for line in (out / "populate.log").read_text().splitlines()]
    assert len(calls) == 1, calls
    assert calls[0]["bucket"] == DEFAULT_SEED
    # Called after the seed folder is loaded.
    assert sorted(calls[0]["keys"]) == sorted(SEED_DIR_FILES)


FORK_NAME_CONFTEST = """
import itertools
import json
import pathlib

OUT = pathlib.Path({out!r})
COUNTER = itertools.count()


def pytest_tigris_fork_name(config, kind, worker):
    with open(OUT / "fork_name.log", "a") as log:
        log.write(json.dumps({{"kind": kind, "worker": worker}}) + "\\n")
    if kind != "fork":
        return None
    return "custom-%s-%s-%d" % (config.getoption("tigris_run_id"), worker, next(COUNTER))
"""
FORK_NAME_SUITE = """
import os
import pathlib

import pytest

OUT = pathlib.Path({out!r})
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "m")


@pytest.mark.parametrize("i", range(4))
def test_custom(tigris_fork, i):
    (OUT / ("fork%d.name" % i)).write_text(tigris_fork.name + " " + WORKER)
    assert tigris_fork.client.get_object(Bucket=tigris_fork.name, Key="manifest.json")


def test_default(tigris_bucket):
    (OUT / "bucket.name").write_text(tigris_bucket.name + " " + WORKER)
"""


@pytest.mark.parametrize("n", [0, 2])
def test_fork_name_hook_names_forks_and_none_means_default(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    out = out_dir(pytester)
    pytester.makeconftest(FORK_NAME_CONFTEST.format(out=str(out)))
    pytester.makepyfile(test_names=FORK_NAME_SUITE.format(out=str(out)))

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), "--tigris-run-id", "nm1", n=n)

    result.assert_outcomes(passed=5)
    # Each name with the process that made it: "m" without xdist, the worker with it.
    forks = dict((out / f"fork{i}.name").read_text().split() for i in range(4))
    assert len(forks) == 4
    for name, worker in forks.items():
        assert re.fullmatch(rf"custom-nm1-{worker}-\d+", name), name
    bucket, bucket_worker = (out / "bucket.name").read_text().split()
    assert re.fullmatch(rf"{DEFAULT_SEED}-nm1-{bucket_worker}-\d+", bucket), bucket
    workers = {*forks.values(), bucket_worker}
    # xdist's first batch gives each of two workers two of the five tests.
    assert workers == ({"m"} if n == 0 else {"gw0", "gw1"})
    calls = [json.loads(line) for line in (out / "fork_name.log").read_text().splitlines()]
    assert {c["kind"] for c in calls} == {"fork", "bucket"}
    assert {c["worker"] for c in calls} == workers
    # Custom-named forks are deleted like any other: 4 forks and one tigris_bucket.
    assert summary_counts(result.text) == (5, 5, 0, 0)


BAD_FORK_NAME_CONFTEST = """
def pytest_tigris_fork_name(config, kind, worker):
    return {value}
"""


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("42", "returned 42 (int): return a bucket name (str), or None for the default name"),
        ("b'bytes-name'", "returned b'bytes-name' (bytes): return a bucket name (str)"),
        ("'Not_Valid'", "returned 'Not_Valid', which is not a valid bucket name"),
    ],
    ids=["int", "bytes", "invalid-str"],
)
def test_fork_name_hook_returning_no_bucket_name_is_one_line(
    pytester: pytest.Pytester, inner: Inner, value: str, said: str
) -> None:
    pytester.makeconftest(BAD_FORK_NAME_CONFTEST.format(value=value))
    pytester.makepyfile(test_one="def test_one(tigris_fork):\n    pass\n")

    result = inner.run("--tigris-seed-dir", seed_dir(pytester))

    message = result.usage_error()
    assert message.startswith(f"pytest_tigris_fork_name {said}"), message
    assert "the pool of ready forks stopped early" not in result.text


LIFECYCLE_CONFTEST = """
import pathlib

OUT = pathlib.Path({out!r})


def pytest_tigris_fork_created(fork):
    with open(OUT / "created.log", "a") as log:
        log.write(fork.name + "\\n")


def pytest_tigris_fork_deleted(fork):
    with open(OUT / "deleted.log", "a") as log:
        log.write(fork.name + "\\n")
"""
LIFECYCLE_SUITE = """
import os
import pathlib

import pytest

OUT = pathlib.Path({out!r})


def seen(*forks):
    with open(OUT / "seen.log", "a") as log:
        for fork in forks:
            log.write(fork.name + "\\n")


@pytest.mark.parametrize("i", range(6))
def test_fork(tigris_fork, i):
    seen(tigris_fork)


@pytest.mark.parametrize("i", range(2))
def test_bucket(tigris_bucket, i):
    seen(tigris_bucket)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (OUT / ("bucket-user-" + worker)).touch()


def test_factory(tigris_fork_factory):
    first = tigris_fork_factory.fork()
    second = tigris_fork_factory.fork(first.name)
    seen(first, second)
"""


@pytest.mark.parametrize("n", [0, 2])
def test_fork_created_and_deleted_hooks_fire_once_per_fork(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    out = out_dir(pytester)
    pytester.makeconftest(LIFECYCLE_CONFTEST.format(out=str(out)))
    pytester.makepyfile(test_lifecycle=LIFECYCLE_SUITE.format(out=str(out)))

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), n=n)

    result.assert_outcomes(passed=9)
    created = (out / "created.log").read_text().split()
    deleted = (out / "deleted.log").read_text().split()
    seen = set((out / "seen.log").read_text().split())
    assert len(created) == len(set(created)), created
    assert len(deleted) == len(set(deleted)), deleted
    assert set(created) == set(deleted) == seen
    # 6 tigris_fork + 2 factory forks + one tigris_bucket per process that used it.
    assert len(created) == 6 + 2 + len(list(out.glob("bucket-user-*")))
    assert summary_counts(result.text) == (len(created), len(created), 0, 0)


# -- 8. lazy imports -----------------------------------------------------------------------
def test_importing_the_plugin_loads_no_heavy_modules() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        import pytest_tigris.plugin
        heavy = {HEAVY!r}
        print(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


LAZY_CONFTEST = """
import json
import os
import pathlib
import sys

OUT = pathlib.Path({out!r})
HEAVY = {heavy!r}


def emulators_of(pids):
    found = []
    for proc in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in args]
        if "pytest_tigris" in args and "emulator" in args and "--parent-pid" in args:
            if int(args[args.index("--parent-pid") + 1]) in pids:
                found.append(proc.name)
    return found


def pytest_sessionfinish(session):
    workerinput = getattr(session.config, "workerinput", None)
    worker = workerinput["workerid"] if workerinput else "controller"
    pids = {{os.getpid()}} | ({{os.getppid()}} if workerinput else set())
    result = {{
        "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set(HEAVY)),
        "emulators": emulators_of(pids) if os.path.isdir("/proc") else [],
    }}
    (OUT / (worker + ".json")).write_text(json.dumps(result))
"""


@pytest.mark.parametrize("n", [0, 2])
def test_a_run_without_tigris_fixtures_starts_nothing(
    pytester: pytest.Pytester, inner: Inner, n: int
) -> None:
    out = out_dir(pytester)
    pytester.makeconftest(LAZY_CONFTEST.format(out=str(out), heavy=HEAVY))
    pytester.makepyfile(
        test_plain="""
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_plain(tmp_path, i):
            assert tmp_path.is_dir()
        """
    )

    # A process of its own: this one has boto3 loaded already.
    result = inner.run("--tigris-seed-dir", seed_dir(pytester), n=n, subprocess=True)

    result.assert_outcomes(passed=4)
    reports = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert "controller" in reports
    if n:
        assert len(reports) == 1 + n, reports
    for report in reports.values():
        assert report == {"heavy": [], "emulators": []}, reports
    assert not SECTION.search(result.text)


# -- 9. configuration errors ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--tigris-keep=sometimes"], "--tigris-keep"),
        (["--tigris-backend=cloud"], "--tigris-backend"),
        (["--tigris-seed-dir", "/does/not/exist"], "--tigris-seed-dir"),
        (["--tigris-seed", "Bad_Name"], "--tigris-seed"),
        (["--tigris-endpoint", "not-a-url"], "--tigris-endpoint"),
    ],
    ids=["keep", "backend", "seed-dir", "seed", "endpoint"],
)
def test_bad_options_are_one_line_usage_errors(
    pytester: pytest.Pytester, inner: Inner, args: list[str], option: str
) -> None:
    pytester.makepyfile(test_uses="def test_uses(tigris_fork):\n    pass\n")

    result = inner.run(*args)

    text = result.text
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    one_line_error(text, option)
    assert len([line for line in text.splitlines() if option in line]) == 1, text


@pytest.mark.parametrize("n", [0, 2])
def test_a_missing_seed_is_a_one_line_error_naming_it(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone, n: int
) -> None:
    pytester.makepyfile(
        test_uses="""
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_uses(tigris_fork, i):
            pass
        """
    )

    result = inner.run(*standalone.args("no-such-seed-bucket"), n=n)

    text = result.text
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    one_line_error(text, "no-such-seed-bucket")
    assert standalone.buckets("no-such-seed-bucket") == set()
