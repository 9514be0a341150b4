"""No secret key, session token or signature ever reaches the output, at any verbosity.

The inner runs are processes of their own (``tests.inner``): what pytest-tigris masks is set up
once per process (a log record factory, the secrets it knows), and a fresh ``pytest`` process is
what a user runs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import SEED
from tests.inner import Inner

SECRET = "tsec_VerySecretValue42"
TOKEN = "tok_SessionTokenValue77"


@pytest.fixture(scope="module")
def keyed() -> Iterator[EmulatorProcess]:
    """A standalone emulator that checks SigV4 against one key pair, like Tigris."""
    with EmulatorProcess(seed=SEED, access_key="tid_Visible", secret_key=SECRET) as emulator:
        yield emulator


INNER = """
import logging
import urllib.request


def test_fails_after_presigning(tigris_fork, tigris_client):
    logging.getLogger("app").debug("fork env has %d variables", len(tigris_fork.env))
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="k", Body=b"v")
    url = tigris_fork.client.generate_presigned_url(
        "get_object", Params={"Bucket": tigris_fork.name, "Key": "k"}
    )
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == b"v"
    assert tigris_client.list_buckets() == "something else"


def test_passes(tigris_bucket):
    tigris_bucket.client.head_bucket(Bucket=tigris_bucket.name)
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_secrets_never_appear_in_output(
    pytester: pytest.Pytester,
    inner: Inner,
    keyed: EmulatorProcess,
    unique: Callable[[str], str],
    workers: int,
) -> None:
    inner.setenv(
        AWS_ENDPOINT_URL_S3=keyed.endpoint_url,
        AWS_ACCESS_KEY_ID="tid_Visible",
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_SESSION_TOKEN=TOKEN,
    )
    pytester.makepyfile(test_inner=INNER)
    args = [
        "--tigris-seed", SEED, "--tigris-keep", "failed",
        "-vv", "--tb=long", "-l", "-rA",
        "--log-level=DEBUG", "-o", "log_cli=true", "--log-cli-level=DEBUG",
    ]  # fmt: skip
    result = inner.run(*args, n=workers, subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    output = str(result.stdout) + str(result.stderr)
    assert "kept fork" in output and "tigris: backend=remote" in output
    assert "botocore" in output  # DEBUG logs of the AWS libraries were shown...
    assert SECRET not in output  # ...but never the secret,
    assert TOKEN not in output  # the session token,
    signed = re.findall(r"(?:X-Amz-Signature|Signature)=([0-9a-f]{16,})", output)
    assert signed == []  # or a signature.
    _delete_kept(keyed, re.findall(r"kept fork (\S+):", output))


def _delete_kept(emulator: Any, names: list[str]) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=emulator.endpoint_url,
        region_name="auto",
        aws_access_key_id="tid_Visible",
        aws_secret_access_key=SECRET,
    )
    import tigris_boto3_ext

    for name in names:
        tigris_boto3_ext.force_delete_bucket(s3, name)


SKIPS = """
import pytest


def test_skipped(tigris_bucket):
    pytest.skip("needs a fresh URL: signature=abc123def expired")


@pytest.mark.xfail(reason="Signature=feed42beef is rejected")
def test_xfailed(tigris_bucket):
    assert False


def test_xfail_in_the_test(tigris_bucket):
    pytest.xfail("X-Amz-Signature=0a1b2c3d4e is stale")


@pytest.mark.skip(reason="no key {secret} here")
def test_marked_skip():
    pass
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_and_xfail_reasons_are_masked_and_stay_skips(
    pytester: pytest.Pytester, inner: Inner, keyed: EmulatorProcess, workers: int
) -> None:
    inner.setenv(
        AWS_ENDPOINT_URL_S3=keyed.endpoint_url,
        AWS_ACCESS_KEY_ID="tid_Visible",
        AWS_SECRET_ACCESS_KEY=SECRET,
    )
    pytester.makepyfile(test_inner=SKIPS.format(secret=SECRET))
    args = ["--tigris-seed", SEED, "-v", "-rsx", "--junitxml", "junit.xml"]
    result = inner.run(*args, n=workers, subprocess=True)

    output = str(result.stdout) + str(result.stderr)
    assert result.ret == pytest.ExitCode.OK, output
    assert "INTERNALERROR" not in output, output
    result.assert_outcomes(skipped=2, xfailed=2)
    lines = {line for line in result.outlines if line.startswith(("SKIPPED [", "XFAIL "))}
    assert lines == {
        "SKIPPED [1] test_inner.py:5: needs a fresh URL: signature=*** expired",
        "SKIPPED [1] test_inner.py:17: no key *** here",
        "XFAIL test_inner.py::test_xfailed - Signature=*** is rejected",
        "XFAIL test_inner.py::test_xfail_in_the_test - X-Amz-Signature=*** is stale",
    }, output
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count("<skipped ") == 4, junit
    for leaked in (SECRET, "abc123def", "feed42beef", "0a1b2c3d4e"):
        assert leaked not in output and leaked not in junit


LOGS_AND_WARNINGS = """
import logging
import os
import warnings

SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]


def test_logs_and_warns(tigris_fork):
    logging.getLogger("myapp.storage").warning("connecting with secret %s", SECRET)
    try:
        raise ValueError("bad key " + SECRET)
    except ValueError:
        logging.getLogger("myapp").exception("upload failed")
    warnings.warn("using key " + SECRET, UserWarning)
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_secrets_are_masked_in_logs_warnings_junitxml_and_the_debug_log(
    pytester: pytest.Pytester, inner: Inner, keyed: EmulatorProcess, workers: int
) -> None:
    inner.setenv(
        AWS_ENDPOINT_URL_S3=keyed.endpoint_url,
        AWS_ACCESS_KEY_ID="tid_Visible",
        AWS_SECRET_ACCESS_KEY=SECRET,
    )
    pytester.makepyfile(test_inner=LOGS_AND_WARNINGS)
    args = ["--tigris-seed", SEED, "-rA"]
    args += ["--log-cli-level=DEBUG", "--log-file=run.log", "--log-file-level=DEBUG"]
    args += ["--junitxml=junit.xml", "--debug=debug.log"]
    result = inner.run(*args, n=workers, subprocess=True)

    output = str(result.stdout) + str(result.stderr)
    result.assert_outcomes(passed=1, warnings=1)
    files = {name: (pytester.path / name).read_text() for name in ("run.log", "junit.xml")}
    # pytest's debug log holds the reprs of what hooks were given, request bodies among them:
    # not always valid UTF-8.
    files["debug.log"] = (pytester.path / "debug.log").read_bytes().decode("utf-8", "replace")
    for name, text in {"output": output, **files}.items():
        assert SECRET not in text, name
    assert "using key ***" in output  # the warnings summary
    assert "using key ***" in files["debug.log"]
    for text in (output, files["run.log"]):
        assert "WARNING  myapp.storage:test_inner.py:9 connecting with secret ***" in text
        assert "ValueError: bad key ***" in text
