"""``Fork.env`` points S3 tools at the fork, and only S3 (issue 11, item 15); ``Fork.changes()``
tells what they did."""

from __future__ import annotations

import shutil

import pytest

from tests.inner import Inner

INNER = """
import os
import subprocess
import sys


def aws(fork, *args, tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        **{k: v for k, v in os.environ.items() if k.startswith("PYENV")},
        **fork.env,
    }
    # No --endpoint-url: AWS_ENDPOINT_URL_S3 alone must take the aws cli to the fork.
    result = subprocess.run(
        ["aws", "s3", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_aws_cli_sees_and_changes_the_fork(tigris_fork, tmp_path):
    assert sorted(tigris_fork.env) == [
        "AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3",
        "AWS_SECRET_ACCESS_KEY", "BUCKET_NAME", "TIGRIS_BUCKET",
    ]
    assert tigris_fork.env["AWS_ENDPOINT_URL_S3"] == tigris_fork.endpoint_url
    assert tigris_fork.env["TIGRIS_BUCKET"] == tigris_fork.name
    listing = aws(tigris_fork, "ls", f"s3://{tigris_fork.env['BUCKET_NAME']}", "--recursive",
                  tmp_path=tmp_path)
    assert "docs/a.txt" in listing and "docs/b.txt" in listing
    (tmp_path / "new.txt").write_text("from the aws cli")
    aws(tigris_fork, "cp", str(tmp_path / "new.txt"), f"s3://{tigris_fork.name}/new.txt",
        tmp_path=tmp_path)
    aws(tigris_fork, "rm", f"s3://{tigris_fork.name}/docs/b.txt", tmp_path=tmp_path)
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="docs/a.txt", Body=b"edited")
    changes = tigris_fork.changes()
    assert changes.added == ["new.txt"]
    assert changes.modified == ["docs/a.txt"]
    assert changes.deleted == ["docs/b.txt"]


"""


@pytest.mark.skipif(shutil.which("aws") is None, reason="the aws cli is not installed")
@pytest.mark.parametrize("workers", [0, 2])
def test_fork_env_with_the_aws_cli(pytester: pytest.Pytester, inner: Inner, workers: int) -> None:
    seed = pytester.mkdir("seed")
    (seed / "docs").mkdir()
    (seed / "docs" / "a.txt").write_text("a")
    (seed / "docs" / "b.txt").write_text("b")
    pytester.makepyfile(test_inner=INNER)
    result = inner.run("--tigris-seed-dir", "seed", n=workers)
    result.assert_outcomes(passed=1)


BOTO3_INNER = """
import os

import boto3

OTHER_SERVICES = ("sqs", "sts", "dynamodb")


def test_a_boto3_client_from_the_environment_hits_the_fork(tigris_fork, monkeypatch):
    for key, value in tigris_fork.env.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")  # endpoint and keys from the environment only
    assert client.meta.endpoint_url == tigris_fork.endpoint_url
    client.put_object(Bucket=os.environ["BUCKET_NAME"], Key="env.txt", Body=b"x")
    changes = tigris_fork.changes()
    assert (changes.added, changes.modified, changes.deleted) == (["env.txt"], [], [])


def test_other_services_from_the_environment_do_not(tigris_fork, monkeypatch):
    region = tigris_fork.env["AWS_DEFAULT_REGION"]
    usual = {s: boto3.client(s, region_name=region).meta.endpoint_url for s in OTHER_SERVICES}
    for key, value in tigris_fork.env.items():
        monkeypatch.setenv(key, value)
    assert "AWS_ENDPOINT_URL" not in os.environ
    for service in OTHER_SERVICES:
        assert boto3.client(service).meta.endpoint_url == usual[service], service
    assert boto3.client("s3").meta.endpoint_url == tigris_fork.endpoint_url


def test_the_global_variable_is_one_line_away(tigris_fork, monkeypatch):
    # What the README says to do for a tool that reads only AWS_ENDPOINT_URL.
    env = {**tigris_fork.env, "AWS_ENDPOINT_URL": tigris_fork.endpoint_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert boto3.client("sqs").meta.endpoint_url == tigris_fork.endpoint_url
"""


def test_fork_env_points_boto3_s3_clients_and_nothing_else_at_the_fork(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    seed = pytester.mkdir("seed")
    (seed / "docs").mkdir()
    (seed / "docs" / "a.txt").write_text("a")
    pytester.makepyfile(test_inner=BOTO3_INNER)

    result = inner.run("--tigris-seed-dir", "seed")

    result.assert_outcomes(passed=3)
