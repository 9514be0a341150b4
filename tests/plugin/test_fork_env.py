"""``Fork.env`` points other tools at the fork; ``Fork.changes()`` tells what they did."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import isolate_env

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
    endpoint = ["--endpoint-url", env["AWS_ENDPOINT_URL_S3"]]
    result = subprocess.run(
        ["aws", "s3", *args, *endpoint], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_aws_cli_sees_and_changes_the_fork(tigris_fork, tmp_path):
    assert set(tigris_fork.env) >= {
        "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "TIGRIS_BUCKET", "BUCKET_NAME",
    }
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


def test_a_boto3_client_from_the_environment_hits_the_fork(tigris_fork, monkeypatch):
    import boto3

    for key, value in tigris_fork.env.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")  # endpoint and keys from the environment only
    client.put_object(Bucket=os.environ["BUCKET_NAME"], Key="env.txt", Body=b"x")
    assert tigris_fork.changes().added == ["env.txt"]
    assert not tigris_fork.changes().deleted
"""


@pytest.mark.skipif(shutil.which("aws") is None, reason="the aws cli is not installed")
@pytest.mark.parametrize("workers", [0, 2])
def test_fork_env_with_the_aws_cli(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    isolate_env(monkeypatch)
    seed = pytester.mkdir("seed")
    (seed / "docs").mkdir()
    (seed / "docs" / "a.txt").write_text("a")
    (seed / "docs" / "b.txt").write_text("b")
    pytester.makepyfile(test_inner=INNER)
    args = ["-p", "no:cacheprovider", "--tigris-seed-dir", "seed"]
    if workers:
        args += ["-n", str(workers)]
    result = pytester.runpytest_subprocess(*args, timeout=300)
    result.assert_outcomes(passed=2)
