"""The only place fork names are made and parsed.

A fork name is ``{prefix}-{run}-{worker}-{n}``: lower-case, at most 63 characters, valid as a
bucket name. ``run`` is the run id (1-10 of ``[a-z0-9]``), ``worker`` is ``gw<N>`` for an
xdist worker or ``m`` for the main process, ``n`` a per-process counter. The name alone tells
the sweeper which run made a fork.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ForkName",
    "ci_run_id",
    "fork_name",
    "make_prefix",
    "normalize_run_id",
    "parse_fork_name",
    "parse_run_snapshot",
    "random_run_id",
    "run_snapshot_name",
    "valid_bucket_name",
]

MAX_BUCKET = 63
MAX_RUN = 10
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_FORK = re.compile(
    r"^(?P<prefix>[a-z0-9][a-z0-9.-]*?)-(?P<run>[a-z0-9]{1,10})-(?P<worker>gw\d{1,4}|m)-(?P<n>\d{1,6})$"
)
# Snapshots the plugin takes are named after their run: the seed's pinned snapshot, and the
# ownership mark on a fork that was not made from one (see ForkJanitor.fork).
RUN_SNAPSHOT_PREFIX = "pytest-tigris-"
_RUN_SNAPSHOT = re.compile(r"^pytest-tigris-(?P<run>[a-z0-9]{1,10})$")
# The longest suffix: "-" run "-" gw9999 "-" 999999.
_SUFFIX = 1 + MAX_RUN + 1 + 6 + 1 + 6


@dataclass(frozen=True)
class ForkName:
    """A parsed fork name."""

    prefix: str
    run_id: str
    worker: str
    number: int


def valid_bucket_name(name: str) -> bool:
    """True when ``name`` follows the bucket rules (3-63 of a-z 0-9 . -, alnum ends, no ``..``)."""
    return (
        bool(_BUCKET.match(name))
        and ".." not in name
        and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name)
    )


def _short_hash(text: str, length: int) -> str:
    # Imported here: the plugin module is imported by every pytest run.
    import base64
    import hashlib

    digest = hashlib.blake2b(text.encode(), digest_size=10).digest()
    return base64.b32encode(digest).decode().lower()[:length]


def normalize_run_id(raw: str) -> str:
    """A run id fit for bucket names: ``[a-z0-9]``, at most 10 characters.

    Longer ids are replaced by a hash of the whole id, so two CI jobs whose ids share a
    prefix or suffix still get different run ids.
    """
    cleaned = re.sub(r"[^a-z0-9]", "", raw.lower())
    if not cleaned:
        raise ValueError(f"run id {raw!r} has no letters or digits")
    if len(cleaned) <= MAX_RUN and cleaned == raw.lower():
        return cleaned
    return _short_hash(raw, MAX_RUN)


def random_run_id() -> str:
    """Eight random base-32 characters: two concurrent runs never share one."""
    import base64
    import secrets

    return base64.b32encode(secrets.token_bytes(5)).decode().lower()


# Environment variables that identify a CI job, most specific first; the values are joined.
_CI_IDS: tuple[tuple[str, ...], ...] = (
    ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB"),
    ("CI_JOB_ID",),  # GitLab
    ("CIRCLE_WORKFLOW_JOB_ID",),
    ("CIRCLE_BUILD_NUM",),
    ("BUILDKITE_JOB_ID",),
    ("BUILD_TAG",),  # Jenkins: jenkins-${JOB_NAME}-${BUILD_NUMBER}
)


def ci_run_id(environ: Mapping[str, str] | None = None) -> str | None:
    """The CI job's id as a run id (GitHub Actions, GitLab, CircleCI, Buildkite, Jenkins)."""
    env = os.environ if environ is None else environ
    for names in _CI_IDS:
        if env.get(names[0]):
            raw = "-".join(env[n] for n in names if env.get(n))
            # A matrix job shares GITHUB_RUN_ID with its siblings: add the job's own identity.
            if names[0] == "GITHUB_RUN_ID" and env.get("PYTEST_TIGRIS_MATRIX"):
                raw += "-" + env["PYTEST_TIGRIS_MATRIX"]
            return normalize_run_id(raw)
    return None


def make_prefix(seed: str, prefix: str | None = None) -> str:
    """The fork-name prefix: the given one or the seed's name, shortened with a hash if long."""
    base = (prefix or seed).lower().strip("-.")
    limit = MAX_BUCKET - _SUFFIX
    if len(base) <= limit:
        return base
    keep = limit - 6
    return f"{base[:keep].rstrip('-.')}-{_short_hash(base, 5)}"


def fork_name(prefix: str, run_id: str, worker: str, number: int) -> str:
    """Build ``{prefix}-{run}-{worker}-{n}``."""
    name = f"{prefix}-{run_id}-{worker}-{number}"
    if not valid_bucket_name(name) or parse_fork_name(name) is None:
        raise ValueError(f"cannot make a valid fork name from prefix {prefix!r}: got {name!r}")
    return name


def parse_fork_name(name: str) -> ForkName | None:
    """The parts of a fork name this module made, or None for any other bucket name."""
    match = _FORK.match(name)
    if match is None or len(name) > MAX_BUCKET:
        return None
    return ForkName(
        prefix=match["prefix"],
        run_id=match["run"],
        worker=match["worker"],
        number=int(match["n"]),
    )


def run_snapshot_name(run_id: str) -> str:
    """``pytest-tigris-<run>``: the name of every snapshot the plugin takes in run ``run_id``."""
    name = f"{RUN_SNAPSHOT_PREFIX}{run_id}"
    if _RUN_SNAPSHOT.match(name) is None:
        raise ValueError(f"run id {run_id!r} is not 1-10 of a-z, 0-9")
    return name


def parse_run_snapshot(label: str | None) -> str | None:
    """The run id of a snapshot named ``pytest-tigris-<run>``, or None for any other name."""
    match = _RUN_SNAPSHOT.match(label or "")
    return match["run"] if match else None
