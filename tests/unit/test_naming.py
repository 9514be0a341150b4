"""Fork names: made and parsed only in ``pytest_tigris.naming``."""

from __future__ import annotations

import pytest

from pytest_tigris.naming import (
    ci_run_id,
    fork_name,
    make_prefix,
    normalize_run_id,
    parse_fork_name,
    random_run_id,
    valid_bucket_name,
)


def test_fork_name_round_trips() -> None:
    name = fork_name("myproject-bucket-main", "ab12cd", "gw3", 17)
    assert name == "myproject-bucket-main-ab12cd-gw3-17"
    parsed = parse_fork_name(name)
    assert parsed is not None
    assert (parsed.prefix, parsed.run_id, parsed.worker, parsed.number) == (
        "myproject-bucket-main",
        "ab12cd",
        "gw3",
        17,
    )


@pytest.mark.parametrize(
    "name",
    ["myproject-bucket-main", "myproject-bucket-alice", "seed", "a-b-c-d", "x-run-gwx-1"],
)
def test_other_bucket_names_do_not_parse(name: str) -> None:
    assert parse_fork_name(name) is None


def test_long_prefixes_are_shortened_with_a_hash_not_truncated() -> None:
    first = make_prefix("a" * 60 + "-one")
    second = make_prefix("a" * 60 + "-two")
    assert first != second
    longest = fork_name(first, "abcdefghij", "gw9999", 999999)
    assert len(longest) == 63  # the longest prefix, run id, worker and number fill a name
    assert valid_bucket_name(longest)
    assert make_prefix("short-seed") == "short-seed"
    assert make_prefix("seed", "Custom") == "custom"


def test_run_ids_fit_bucket_names() -> None:
    assert normalize_run_id("abc123") == "abc123"
    long_a = normalize_run_id("12345678901-1")
    long_b = normalize_run_id("12345678901-2")
    # Too long: a hash of the whole id, as long as a run id may be.
    assert len(long_a) == len(long_b) == 10 and long_a != long_b
    assert normalize_run_id("ABC") == "abc"
    with pytest.raises(ValueError):
        normalize_run_id("---")
    ids = {random_run_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(valid_bucket_name(f"p-{i}-m-0") for i in ids)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        # Joined ("987654321-1-test"): not a run id as it is, so a hash of it, 10 characters.
        (
            {"GITHUB_RUN_ID": "987654321", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "test"},
            "hb7brjj7nl",
        ),
        ({"CI_JOB_ID": "4242"}, "4242"),  # a run id as it is
        ({"CIRCLE_WORKFLOW_JOB_ID": "5a4b-33"}, "2naopia7sm"),
        ({"BUILDKITE_JOB_ID": "0190-aa"}, "tonc4vzdwa"),
        ({"BUILD_TAG": "jenkins-app-17"}, "4oia7iz3k4"),
    ],
)
def test_ci_job_ids_become_run_ids(environ: dict[str, str], expected: str) -> None:
    assert ci_run_id(environ) == expected
    assert ci_run_id(environ) == expected  # stable across the job's processes


def test_two_ci_jobs_never_share_a_run_id() -> None:
    base = {"GITHUB_RUN_ID": "987654321", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "test"}
    retry = {**base, "GITHUB_RUN_ATTEMPT": "2"}
    other_job = {**base, "GITHUB_JOB": "lint"}
    matrix = {**base, "PYTEST_TIGRIS_MATRIX": "py312"}
    ids = {ci_run_id(e) for e in (base, retry, other_job, matrix)}
    assert len(ids) == 4
    assert ci_run_id({}) is None
