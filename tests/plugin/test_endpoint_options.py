"""What the endpoint settings accept, and what a remote run needs (a user trial's findings).

- An endpoint is a server's root URL: a query made botocore raise an INTERNALERROR, a path sent
  every request under it (and blamed the seed), a password showed in the report header.
- A remote run names its seed: bucket names are global on Tigris, so a default seed name
  there could be anybody's bucket.
- botocore's own errors while the backend starts are one line too.
- An endpoint set without keys runs on the embedded emulator, and says so.

Inner runs (``tests.inner``, in-process) point at the session's emulator, or at one of this
module's own holding a bucket named like the embedded emulator's default seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tigris_boto3_ext

from pytest_tigris.config import DEFAULT_EMULATOR_SEED
from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import SEED, make_client
from tests.inner import Inner

XDIST = pytest.mark.parametrize("n", [0, 2], ids=["no-xdist", "n2"])
USES_FORK = "def test_uses(tigris_fork):\n    pass\n"
PLAIN = "def test_plain():\n    pass\n"
KEYS = {"AWS_ACCESS_KEY_ID": "tid_endpoint", "AWS_SECRET_ACCESS_KEY": "tsec_endpoint"}
NO_SEED = (
    "no seed bucket set for the remote backend ({host}): set --tigris-seed, ini tigris_seed or "
    "PYTEST_TIGRIS_SEED to the bucket to fork (bucket names are global, so there is no "
    "default), or use --tigris-backend=emulator"
)


# -- an endpoint is a server's root URL ----------------------------------------------------
@pytest.mark.parametrize(
    ("suffix", "extra"),
    [
        ("?x=1", "a query ('?x=1')"),
        ("/some/path", "a path ('/some/path')"),
        ("#top", "a fragment ('#top')"),
    ],
    ids=["query", "path", "fragment"],
)
def test_an_endpoint_url_with_more_than_a_host_and_port_is_one_line(
    pytester: pytest.Pytester, inner: Inner, emulator: EmulatorProcess, suffix: str, extra: str
) -> None:
    pytester.makepyfile(test_uses=USES_FORK)
    root = emulator.endpoint_url
    url = root + suffix

    done = inner.run("--tigris-endpoint", url, "--tigris-seed", SEED, env=KEYS)

    assert done.usage_error() == (
        f"--tigris-endpoint={url!r} has {extra}: use the server's root URL, {root}"
    )


@pytest.mark.parametrize(
    "where", ["ini", "PYTEST_TIGRIS_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
)
def test_an_endpoint_with_a_query_is_named_where_it_was_set(
    pytester: pytest.Pytester, inner: Inner, emulator: EmulatorProcess, where: str
) -> None:
    pytester.makepyfile(test_uses=USES_FORK)
    url = f"{emulator.endpoint_url}?x=1"
    environ = {**KEYS, "PYTEST_TIGRIS_SEED": SEED}
    if where == "ini":
        pytester.makefile(".ini", pytest=f"[pytest]\ntigris_endpoint = {url}\n")
    else:
        environ[where] = url

    done = inner.run(env=environ)

    source = "ini tigris_endpoint" if where == "ini" else where
    assert done.usage_error() == (
        f"{source}={url!r} has a query ('?x=1'): use the server's root URL, {emulator.endpoint_url}"
    )


def test_a_password_in_the_endpoint_url_is_refused_and_never_shown(
    pytester: pytest.Pytester, inner: Inner, emulator: EmulatorProcess
) -> None:
    pytester.makepyfile(test_uses=USES_FORK)
    scheme, host = emulator.endpoint_url.split("://")

    done = inner.run(
        f"--tigris-endpoint={scheme}://user:hunter2@{host}", "--tigris-seed", SEED, env=KEYS
    )

    assert done.usage_error() == (
        f"--tigris-endpoint='{scheme}://***@{host}' has a user name or password in it: remove "
        "it (the keys go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )
    assert "hunter2" not in done.text, done.text


# -- a remote run names its seed -----------------------------------------------------------
@pytest.fixture(scope="module")
def foreign() -> Iterator[EmulatorProcess]:
    """An endpoint where somebody owns a bucket named like the emulator's default seed."""
    with EmulatorProcess(seed=DEFAULT_EMULATOR_SEED) as process:
        yield process


def untouched(endpoint_url: str) -> None:
    s3 = make_client(endpoint_url)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [DEFAULT_EMULATOR_SEED]
    assert tigris_boto3_ext.list_forks(s3, DEFAULT_EMULATOR_SEED)["buckets"] == []


@XDIST
@pytest.mark.parametrize("chosen", ["option", "environment"])
def test_a_remote_run_without_a_seed_is_one_line_and_forks_nobody_s_bucket(
    pytester: pytest.Pytester, inner: Inner, foreign: EmulatorProcess, chosen: str, n: int
) -> None:
    pytester.makepyfile(test_uses=USES_FORK)
    if chosen == "option":
        args, environ = ["--tigris-endpoint", foreign.endpoint_url], KEYS
    else:  # auto: an endpoint and keys in the environment
        args, environ = [], {**KEYS, "AWS_ENDPOINT_URL_S3": foreign.endpoint_url}

    done = inner.run(*args, n=n, env=environ)

    host = foreign.endpoint_url.split("://")[1]
    assert done.usage_error() == NO_SEED.format(host=host)
    untouched(foreign.endpoint_url)


def test_a_remote_run_without_a_seed_is_fine_when_no_test_forks(
    pytester: pytest.Pytester, inner: Inner, foreign: EmulatorProcess
) -> None:
    pytester.makepyfile(test_plain=PLAIN)

    done = inner.run("--tigris-endpoint", foreign.endpoint_url, env=KEYS)

    assert done.ret == pytest.ExitCode.OK, done.text
    done.assert_outcomes(passed=1)
    assert done.messages() == [], done.text
    untouched(foreign.endpoint_url)


# -- botocore's own errors while the backend starts ----------------------------------------
BOTOCORE_ERRORS = {
    "profile": "The config profile (no-such-profile) could not be found (botocore ProfileNotFound)",
    "region": "Provided region_name 'bad region!' doesn't match a supported format. (botocore "
    "InvalidRegionError)",
}


def refused_by_botocore(case: str, folder: Path) -> dict[str, str]:
    """Settings the plugin lets through and botocore refuses when it builds a client."""
    if case == "profile":
        return {
            "AWS_PROFILE": "no-such-profile",
            "AWS_CONFIG_FILE": str(folder / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-credentials"),
        }
    return {**KEYS, "AWS_DEFAULT_REGION": "bad region!"}


@pytest.mark.parametrize(("case", "n"), [("profile", 0), ("profile", 2), ("region", 0)], ids=str)
def test_a_botocore_error_while_the_backend_starts_is_one_line(
    pytester: pytest.Pytester,
    inner: Inner,
    emulator: EmulatorProcess,
    tmp_path: Path,
    case: str,
    n: int,
) -> None:
    pytester.makepyfile(test_uses=USES_FORK)

    done = inner.run(
        "--tigris-endpoint",
        emulator.endpoint_url,
        "--tigris-seed",
        SEED,
        n=n,
        env=refused_by_botocore(case, tmp_path),
    )

    assert done.usage_error() == (
        f"cannot start a client for {emulator.endpoint_url}: {BOTOCORE_ERRORS[case]}: check the "
        "endpoint URL and the AWS_* variables and files"
    )


# -- an endpoint without keys runs on the embedded emulator, and says so -------------------
def test_an_endpoint_without_keys_says_why_the_emulator_runs(
    pytester: pytest.Pytester, inner: Inner, emulator: EmulatorProcess
) -> None:
    pytester.makepyfile(test_uses=USES_FORK)
    version = "1764000000000000000"

    done = inner.run(
        "--tigris-seed",
        SEED,
        f"--tigris-seed-snapshot={version}",
        env={"AWS_ENDPOINT_URL_S3": emulator.endpoint_url},
    )

    reason = (
        "the embedded emulator was chosen because AWS_ENDPOINT_URL_S3 is set but no credentials "
        "are: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, to use that "
        "endpoint"
    )
    assert done.usage_error() == (
        f"--tigris-seed-snapshot '{version}': bucket '{SEED}' has no snapshot with that version "
        f"or name (list them with tigris_boto3_ext.list_snapshots) ({reason})"
    )
    header = [line for line in done.outlines if line.startswith("tigris: ")]
    assert header[1:] == [f"tigris: {reason}"], done.text
    assert header[0].startswith("tigris: backend=emulator endpoint=embedded emulator "), header
