"""s3fs and aioboto3 (both on aiobotocore, which pins an older boto3/botocore) against a fork.

They run where the ``compat`` extra is installed (``pip install -e '.[test,compat]'``, as
``.ci/run`` does in a venv of its own); elsewhere they are skipped.
"""

from __future__ import annotations

import pytest

from tests.inner import Inner

pytest.importorskip("s3fs", reason="the compat extra is not installed")
pytest.importorskip("aioboto3", reason="the compat extra is not installed")

INNER = """
import asyncio

import aioboto3
import s3fs


def test_s3fs_reads_and_writes_the_fork(tigris_fork):
    env = tigris_fork.env
    fs = s3fs.S3FileSystem(
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": tigris_fork.endpoint_url, "region_name": "auto"},
        use_listings_cache=False,
    )
    assert sorted(fs.ls(f"{tigris_fork.name}/docs")) == [
        f"{tigris_fork.name}/docs/a.txt", f"{tigris_fork.name}/docs/b.txt"
    ]
    assert fs.cat(f"{tigris_fork.name}/docs/a.txt") == b"a"
    fs.pipe(f"{tigris_fork.name}/s3fs.txt", b"from s3fs")
    fs.rm(f"{tigris_fork.name}/docs/b.txt")
    changes = tigris_fork.changes()
    assert (changes.added, changes.deleted) == (["s3fs.txt"], ["docs/b.txt"])


def test_aioboto3_reads_and_writes_the_fork(tigris_fork):
    env = tigris_fork.env

    async def main():
        session = aioboto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="auto",
        )
        async with session.client("s3", endpoint_url=tigris_fork.endpoint_url) as s3:
            answer = await s3.get_object(Bucket=tigris_fork.name, Key="docs/a.txt")
            data = await answer["Body"].read()
            await s3.put_object(Bucket=tigris_fork.name, Key="async.txt", Body=b"from aioboto3")
            return data

    assert asyncio.run(main()) == b"a"
    assert tigris_fork.changes().added == ["async.txt"]
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_aiobotocore_clients_against_a_fork(
    pytester: pytest.Pytester, inner: Inner, workers: int
) -> None:
    seed = pytester.mkdir("seed")
    (seed / "docs").mkdir()
    (seed / "docs" / "a.txt").write_text("a")
    (seed / "docs" / "b.txt").write_text("b")
    pytester.makepyfile(test_inner=INNER)
    result = inner.run("--tigris-seed-dir", "seed", n=workers)
    result.assert_outcomes(passed=2)
