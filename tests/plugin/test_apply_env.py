"""Pointing app code at a fork (issue 11, item 18): ``Fork.apply_env(monkeypatch)``, the README's
module-scoped fixture that deletes its fork early, and the README's async example, each run
for real in an inner session on the embedded emulator.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.inner import Inner

README = Path(__file__).resolve().parents[2] / "README.md"
# Every variable a fork's environment may set, and the global one it must not.
ENV_NAMES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_SESSION_TOKEN",
    "TIGRIS_BUCKET",
    "BUCKET_NAME",
)


def readme_block(heading: str, language: str = "python") -> str:
    """The first ``language`` code block under the README heading ``heading``."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    match = re.search(rf"^```{language}\n(.*?)^```$", section, re.M | re.S)
    assert match, f"no {language} block under {heading!r}"
    return match.group(1)


def readme_block_after(text: str, language: str = "python") -> str:
    """The first ``language`` code block after the README paragraph that ends with ``text``."""
    readme = README.read_text(encoding="utf-8")
    after = readme.split(text, 1)[1]
    match = re.search(rf"^```{language}\n(.*?)^```$", after, re.M | re.S)
    assert match, f"no {language} block after {text!r}"
    return match.group(1)


def seed_folder(pytester: pytest.Pytester) -> str:
    seed = pytester.mkdir("seed")
    (seed / "tmp").mkdir()
    (seed / "tmp" / "old.bin").write_bytes(b"stale")
    (seed / "catalog.json").write_text('{"items": []}')
    return "seed"


APPLY_SUITE = """
import os

import boto3

NAMES = {names!r}


def test_apply_env_points_clients_from_the_environment_at_the_fork(tigris_fork, monkeypatch):
    assert [n for n in NAMES if n in os.environ] == []
    tigris_fork.apply_env(monkeypatch)
    assert {{n: os.environ[n] for n in NAMES if n in os.environ}} == tigris_fork.env
    s3 = boto3.client("s3")
    s3.put_object(Bucket=os.environ["BUCKET_NAME"], Key="from-env.txt", Body=b"app")
    s3.delete_object(Bucket=os.environ["TIGRIS_BUCKET"], Key="tmp/old.bin")
    changes = tigris_fork.changes()
    assert (changes.added, changes.modified, changes.deleted) == (
        ["from-env.txt"], [], ["tmp/old.bin"]
    )


def test_the_next_test_starts_without_them():
    assert [n for n in NAMES if n in os.environ] == []
"""


def test_apply_env_sets_the_fork_environment_for_one_test(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    pytester.makepyfile(test_apply=APPLY_SUITE.format(names=ENV_NAMES))

    result = inner.run("--tigris-seed-dir", seed_folder(pytester))

    result.assert_outcomes(passed=2)


EARLY_DELETE_CONFTEST = """
import pathlib

OUT = pathlib.Path({out!r})


def pytest_tigris_fork_deleted(fork):
    with open(OUT / "deleted.log", "a") as log:
        log.write(fork.name + "\\n")


def load_catalog(client, bucket):
    client.put_object(Bucket=bucket, Key="catalog.json", Body=b'{{"items": [1, 2]}}')
"""
EARLY_DELETE_FIRST = """
import pathlib

import pytest

from conftest import OUT, load_catalog

{fixture}

def test_one(catalog):
    (OUT / "catalog.name").write_text(catalog.name)
    got = catalog.client.get_object(Bucket=catalog.name, Key="catalog.json")
    assert got["Body"].read() == b'{{"items": [1, 2]}}'


def test_two(catalog, tigris_fork_factory):
    # A fork of the module's fork: it goes first when the module's fork is deleted.
    (OUT / "child.name").write_text(tigris_fork_factory.fork(source=catalog.name).name)
"""
EARLY_DELETE_LATER = """
from conftest import OUT


def test_module_fork_is_gone_before_the_next_module(tigris_client):
    deleted = (OUT / "deleted.log").read_text().split()
    names = [(OUT / "child.name").read_text(), (OUT / "catalog.name").read_text()]
    assert deleted == names
    live = {{b["Name"] for b in tigris_client.list_buckets()["Buckets"]}}
    assert live & set(names) == set()
"""


def test_a_module_fixture_deletes_its_fork_early_as_the_readme_shows(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    out = pytester.mkdir("out")
    fixture = readme_block_after("tigris_fork_factory.delete(fork)`")
    assert fixture.startswith('@pytest.fixture(scope="module")'), fixture
    pytester.makeconftest(EARLY_DELETE_CONFTEST.format(out=str(out)))
    pytester.makepyfile(
        test_a_module=EARLY_DELETE_FIRST.format(fixture=fixture),
        test_b_later=EARLY_DELETE_LATER.format(),
    )

    result = inner.run("--tigris-seed-dir", seed_folder(pytester))

    result.assert_outcomes(passed=3, warnings=0)


def test_the_readme_async_example_runs(pytester: pytest.Pytester, inner: Inner) -> None:
    example = readme_block("### Async tests")
    assert "asyncio.to_thread" in example and "apply_env" in example
    pytester.makepyfile(test_async_example=example)

    result = inner.run("--tigris-seed-dir", seed_folder(pytester))

    result.assert_outcomes(passed=1)
