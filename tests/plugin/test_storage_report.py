"""A failed test's report shows what it did to its forks ("Captured tigris storage", issue 14
item 1), from the outside: inner pytest runs on the embedded emulator (and, for secrets, on the
session's standalone emulator as a stand-in for real Tigris).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.inner import Inner
from tests.plugin import test_reporting as reporting
from tests.plugin.test_reporting import Standalone, out_dir, seed_dir

# The same fixture as there: the standalone emulator.
standalone = reporting.standalone

SECTION_TITLE = re.compile(r"^-+ Captured tigris storage -+$")
# Any other separator: the next section, the next failure, or the end of the failures.
SEPARATOR = re.compile(r"^(-{3,}|={3,}|_{3,})( .*)?$")


def sections(text: str) -> list[list[str]]:
    """The lines of every "Captured tigris storage" section in a run's output."""
    lines = text.splitlines()
    found: list[list[str]] = []
    for start, line in enumerate(lines):
        if SECTION_TITLE.match(line):
            body: list[str] = []
            for following in lines[start + 1 :]:
                if SEPARATOR.match(following):
                    break
                body.append(following)
            found.append(body)
    return found


def recorded(out: Path, name: str) -> dict[str, str]:
    return dict(json.loads((out / f"{name}.json").read_text()))


def title(fork: dict[str, str], role: str = "tigris_fork") -> str:
    return f"{role} {fork['name']} (forked from {fork['source']} at snapshot {fork['snapshot']})"


RECORD = """
import json
import os
import pathlib

OUT = pathlib.Path(os.environ["REPORT_OUT"])


def record(name, fork):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "m")
    fields = {"name": fork.name, "source": fork.source, "snapshot": fork.snapshot, "worker": worker}
    (OUT / (name + ".json")).write_text(json.dumps(fields))
"""

CHANGES = (
    RECORD
    + """

def test_changes_its_fork(tigris_fork):
    s3, name = tigris_fork.client, tigris_fork.name
    record("fork", tigris_fork)
    s3.put_object(Bucket=name, Key="notes/new.txt", Body=b"first line\\nsecond line\\n")
    s3.put_object(Bucket=name, Key="blob.bin", Body=bytes(range(256)))
    s3.put_object(Bucket=name, Key="empty.txt", Body=b"")
    s3.put_object(Bucket=name, Key="manifest.json", Body=b'{"items": 3}')
    s3.delete_object(Bucket=name, Key="data/hello.txt")
    assert False, "fails on purpose"


def test_passes(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="pass.txt", Body=b"passed")


def test_fails_without_tigris():
    assert False, "fails on purpose, using no fork"
"""
)


@pytest.mark.parametrize("n", [0, 2])
def test_a_failed_test_shows_keys_added_modified_and_deleted(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    out = out_dir(pytester)
    monkeypatch.setenv("REPORT_OUT", str(out))
    pytester.makepyfile(test_changes=CHANGES)

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), n=n)

    result.assert_outcomes(passed=1, failed=2)
    fork = recorded(out, "fork")
    # Only the failed test that used a fork has the section.
    assert sections(result.text) == [
        [
            f"{title(fork)}: 3 added, 1 modified, 1 deleted",
            "added:",
            "  blob.bin (256 B, binary)",
            "  empty.txt (empty)",
            "  notes/new.txt (23 B)",
            "    | first line",
            "    | second line",
            "modified:",
            "  manifest.json (12 B)",
            '    | {"items": 3}',
            "deleted:",
            "  data/hello.txt",
        ]
    ]


MANY = (
    RECORD
    + """

def test_changes_many_keys(tigris_fork, tigris_fork_factory):
    s3, name = tigris_fork.client, tigris_fork.name
    s3.put_object(Bucket=name, Key="a-long.txt", Body=("x" * 50 + "\\n").encode() * 100)
    for i in range(25):
        s3.put_object(Bucket=name, Key="k%02d.txt" % i, Body=b"%d" % i)
    record("fork", tigris_fork)
    child = tigris_fork_factory.fork(source=name)
    child.client.delete_object(Bucket=child.name, Key="manifest.json")
    record("child", child)
    other = tigris_fork_factory.fork()
    record("other", other)
    assert False, "fails on purpose"
"""
)


def test_keys_beyond_twenty_are_counted_long_text_is_cut_and_factory_forks_follow(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = out_dir(pytester)
    monkeypatch.setenv("REPORT_OUT", str(out))
    pytester.makepyfile(test_many=MANY)

    result = inner.run("--tigris-seed-dir", seed_dir(pytester))

    result.assert_outcomes(failed=1)
    fork, child, other = (recorded(out, name) for name in ("fork", "child", "other"))
    factory = "tigris_fork_factory fork"
    assert sections(result.text) == [
        [
            f"{title(fork)}: 26 added, 0 modified, 0 deleted",
            "added:",
            "  a-long.txt (5.0 KiB)",
            *(["    | " + "x" * 50] * 3),
            "    | " + "x" * 47,
            "    | ... (truncated, 5100 bytes in all)",
            *(
                line
                for i in range(19)
                for line in (f"  k{i:02}.txt ({len(str(i))} B)", f"    | {i}")
            ),
            "  ... and 6 more added",
            "",
            f"{title(child, factory)}: 0 added, 0 modified, 1 deleted",
            "deleted:",
            "  manifest.json",
            "",
            f"{title(other, factory)}: no changes",
        ]
    ]
    assert child["source"] == fork["name"]


SHARED = (
    RECORD
    + """

def test_a_writes_to_the_shared_bucket(tigris_bucket):
    tigris_bucket.client.put_object(Bucket=tigris_bucket.name, Key="from-a.txt", Body=b"a")


def test_b_fails_after_writing_to_it(tigris_bucket):
    tigris_bucket.client.put_object(Bucket=tigris_bucket.name, Key="from-b.txt", Body=b"b")
    record("bucket", tigris_bucket)
    assert False, "fails on purpose"
"""
)


@pytest.mark.parametrize("n", [0, 2])
def test_the_shared_bucket_shows_every_change_since_the_session_began_labelled_as_shared(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    out = out_dir(pytester)
    monkeypatch.setenv("REPORT_OUT", str(out))
    pytester.makepyfile(test_shared=SHARED)
    # One worker runs the file's tests in order: the first test's write is in the bucket.
    dist = ["--dist", "loadfile"] if n else []

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), *dist, n=n)

    result.assert_outcomes(passed=1, failed=1)
    bucket = recorded(out, "bucket")
    if n:
        # Whichever worker got the file: the label names that one.
        assert re.fullmatch(r"gw[01]", bucket["worker"]), bucket
        role = f"shared tigris_bucket of worker {bucket['worker']}"
    else:
        assert bucket["worker"] == "m"
        role = "shared tigris_bucket"
    assert sections(result.text) == [
        [
            f"{role} {bucket['name']} (forked from {bucket['source']} at snapshot "
            f"{bucket['snapshot']}; changes since the session began, by every test that used "
            "it): 2 added, 0 modified, 0 deleted",
            "added:",
            "  from-a.txt (1 B)",
            "    | a",
            "  from-b.txt (1 B)",
            "    | b",
        ]
    ]


QUIET = (
    RECORD
    + """
import pytest


@pytest.fixture
def filled(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="setup.txt", Body=b"set up")
    record("setup", tigris_fork)
    raise RuntimeError("setup fails on purpose")


def test_errors_in_setup(filled):
    pass


def test_fails(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="x.txt", Body=b"x")
    record("fails", tigris_fork)
    assert False, "fails on purpose"


@pytest.mark.xfail(reason="expected to fail")
def test_xfails(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="x.txt", Body=b"x")
    assert False


def test_passes(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="x.txt", Body=b"x")
"""
)


def test_setup_errors_count_and_passing_or_xfailed_tests_get_no_section(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = out_dir(pytester)
    monkeypatch.setenv("REPORT_OUT", str(out))
    pytester.makepyfile(test_quiet=QUIET)

    # -rA prints the passing test's captured sections too.
    result = inner.run("--tigris-seed-dir", seed_dir(pytester), "-rA")

    result.assert_outcomes(passed=1, failed=1, errors=1, xfailed=1)
    setup, fails = recorded(out, "setup"), recorded(out, "fails")
    assert sections(result.text) == [
        [
            f"{title(setup)}: 1 added, 0 modified, 0 deleted",
            "added:",
            "  setup.txt (6 B)",
            "    | set up",
        ],
        [f"{title(fails)}: 1 added, 0 modified, 0 deleted", "added:", "  x.txt (1 B)", "    | x"],
    ]


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--tigris-report=off"], {}),
        ([], {"PYTEST_TIGRIS_REPORT": "off"}),
    ],
)
def test_report_off_shows_nothing(
    pytester: pytest.Pytester,
    inner: Inner,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
) -> None:
    out = out_dir(pytester)
    monkeypatch.setenv("REPORT_OUT", str(out))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_changes=CHANGES)

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), *args)

    result.assert_outcomes(passed=1, failed=2)
    text = result.text
    assert "Captured tigris storage" not in text, text
    assert "fails on purpose" in text


def test_a_bad_report_value_stops_the_run_with_one_line(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    pytester.makepyfile(test_plain="def test_nothing():\n    pass\n")

    result = inner.run("--tigris-report=full")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line] == [
        "ERROR: pytest-tigris: --tigris-report='full' is not valid: use one of off, changes"
    ]


def test_help_shows_the_option_and_its_ini_key(pytester: pytest.Pytester, inner: Inner) -> None:
    result = inner.run("--help")

    assert result.ret == pytest.ExitCode.OK
    text = "\n".join(result.outlines)
    assert re.search(r"^\s+--tigris-report=off\|changes$", text, re.M), text
    assert re.search(r"^\s+tigris_report \(string\):", text, re.M), text
    assert "[ini: tigris_report, env: PYTEST_TIGRIS_REPORT]" in " ".join(text.split())


SECRETS = """
import os


def test_writes_a_secret(tigris_fork):
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    body = ("secret=" + secret + "\\n").encode()
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="creds-" + secret, Body=body)
    assert False, "fails on purpose"
"""


def test_secrets_written_to_a_fork_are_masked_on_a_remote_endpoint(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone
) -> None:
    seed = standalone.make_seed({"seed.txt": b"seed data"})
    pytester.makepyfile(test_secrets=SECRETS)

    result = inner.run(*standalone.args(seed))

    result.assert_outcomes(failed=1)
    text = result.text
    assert sections(text)[0][1:] == ["added:", "  creds-*** (49 B)", "    | secret=***"]
    assert reporting.SECRET not in text


def test_secrets_in_the_environment_are_masked_on_the_embedded_emulator(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No endpoint: the run uses the emulator, but the test's code can still see real keys.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", reporting.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reporting.SECRET)
    pytester.makepyfile(test_secrets=SECRETS)

    result = inner.run("--tigris-seed-dir", seed_dir(pytester))

    result.assert_outcomes(failed=1)
    text = result.text
    assert sections(text)[0][1:] == ["added:", "  creds-*** (49 B)", "    | secret=***"]
    assert reporting.SECRET not in text
