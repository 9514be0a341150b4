"""No secret key, session token or signature ever reaches the output, at any verbosity."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import SEED, isolate_env

SECRET = "tsec_VerySecretValue42"
TOKEN = "tok_SessionTokenValue77"
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
    monkeypatch: pytest.MonkeyPatch,
    unique: Callable[[str], str],
    workers: int,
) -> None:
    with EmulatorProcess(seed=SEED, access_key="tid_Visible", secret_key=SECRET) as emulator:
        isolate_env(monkeypatch)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", emulator.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "tid_Visible")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
        pytester.makepyfile(test_inner=INNER)
        args = [
            "-p", "no:cacheprovider", "--tigris-seed", SEED, "--tigris-keep", "failed",
            "-vv", "--tb=long", "-l", "-rA",
            "--log-level=DEBUG", "-o", "log_cli=true", "--log-cli-level=DEBUG",
        ]  # fmt: skip
        if workers:
            args += ["-n", str(workers)]
        result = pytester.runpytest_subprocess(*args, timeout=300)
        result.assert_outcomes(passed=1, failed=1)
        output = str(result.stdout) + str(result.stderr)
        assert "kept fork" in output and "tigris: backend=remote" in output
        assert "botocore" in output  # DEBUG logs of the AWS libraries were shown...
        assert SECRET not in output  # ...but never the secret,
        assert TOKEN not in output  # the session token,
        signed = re.findall(r"(?:X-Amz-Signature|Signature)=([0-9a-f]{16,})", output)
        assert signed == []  # or a signature.
        _delete_kept(emulator, re.findall(r"kept fork (\S+):", output))


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
