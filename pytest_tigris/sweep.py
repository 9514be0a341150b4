"""Find and delete what runs that died left behind (``pytest-tigris sweep``). No pytest here.

Nothing is taken unless it is provably pytest-tigris's and its run is provably over:

- a fork: its name has the fork pattern ``{prefix}-{run}-{worker}-{n}``, the endpoint reports
  it as a fork, and a snapshot named ``pytest-tigris-<run>`` (same run) proves the plugin made
  it (the one it was forked from, or a mark on the fork itself; see
  :meth:`ForkJanitor.owned_run`). A named environment or any other bucket has no such proof.
- a snapshot: it is named ``pytest-tigris-<run>`` and no bucket named as a fork of that run is
  left (its forks prove their ownership through it, so it goes after them).
- the run is over: no live run on this machine holds its lease (the run folder
  ``pytest-tigris-<run>-<pid>`` in the temp dir, whose controller must run, not be a zombie,
  and be the process that started the run), and the thing is older than ``older_than`` (the
  only proof for runs on other machines).

Forks go children first. The folders of dead runs on this machine are removed too.
"""

from __future__ import annotations

import datetime
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .coordination import Lease, run_leases
from .janitor import ForkJanitor
from .naming import parse_fork_name, parse_run_snapshot

__all__ = ["SweepResult", "live_runs", "parse_duration", "sweep"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PASSES = 4


def parse_duration(text: str) -> datetime.timedelta:
    """``"90"``, ``"30s"``, ``"15m"``, ``"2h"``, ``"1d"`` → a timedelta; ValueError for
    anything else, or more than ``timedelta.max``."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use e.g. 30m, 2h or 0s")
    try:
        return datetime.timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    except OverflowError:
        # Past timedelta.max, or a float that became infinity.
        raise ValueError(
            f"{text!r} is too long a duration: the most is {datetime.timedelta.max.days}d"
        ) from None


def live_runs(tempdir: str | None = None) -> set[str]:
    """Run ids of pytest runs alive on this machine (their controller still runs)."""
    return {lease.run_id for lease in run_leases(tempdir) if lease.alive()}


@dataclass
class SweepResult:
    """What a sweep did (or, with ``dry_run``, would do)."""

    deleted: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)
    young: list[str] = field(default_factory=list)
    # Named like a fork but not provably one of ours (a named environment, someone's bucket).
    foreign: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # (bucket, version, name) of run snapshots deleted.
    snapshots: list[tuple[str, str, str]] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)


def sweep(
    janitor: ForkJanitor,
    *,
    older_than: datetime.timedelta,
    dry_run: bool = False,
    prefix: str | None = None,
    live: set[str] | None = None,
    now: datetime.datetime | None = None,
    tempdir: str | None = None,
) -> SweepResult:
    """Delete pytest-tigris forks and run snapshots of dead runs on the janitor's endpoint.

    ``live``: run ids to treat as running (default: read the leases in the temp dir, and
    remove the folders of dead runs there).
    """
    now = now or datetime.datetime.now(tz=datetime.timezone.utc)
    result = SweepResult()
    dead_folders: list[Lease] = []
    if live is None:
        live = set()
        for lease in run_leases(tempdir):
            if lease.alive():
                live.add(lease.run_id)
            else:
                dead_folders.append(lease)
    buckets = _list_buckets(janitor.admin)
    todo: list[str] = []
    for bucket in buckets:
        name = bucket["Name"]
        parsed = parse_fork_name(name)
        if parsed is None or (prefix and parsed.prefix != prefix):
            continue
        if parsed.run_id in live:
            result.live.append(name)
        elif now - _aware(bucket.get("CreationDate"), now) < older_than:
            result.young.append(name)
        elif janitor.owned_run(name) == parsed.run_id:
            todo.append(name)
        else:
            result.foreign.append(name)
    if dry_run:
        result.deleted = todo
    else:
        _delete_forks(janitor, todo, result)
    gone = set(result.deleted)
    left = [b for b in buckets if b["Name"] not in gone]
    _sweep_snapshots(janitor, left, older_than, dry_run, prefix, live, now, result)
    if not dry_run:
        for lease in dead_folders:
            shutil.rmtree(lease.folder, ignore_errors=True)
            if not lease.folder.exists():
                result.folders.append(lease.folder)
    return result


def _delete_forks(janitor: ForkJanitor, todo: list[str], result: SweepResult) -> None:
    deleted, failed = janitor.delete_all(todo, passes=_PASSES)
    result.deleted += deleted
    result.failed += failed


def _sweep_snapshots(
    janitor: ForkJanitor,
    buckets: list[dict[str, Any]],
    older_than: datetime.timedelta,
    dry_run: bool,
    prefix: str | None,
    live: set[str],
    now: datetime.datetime,
    result: SweepResult,
) -> None:
    """Delete ``pytest-tigris-<run>`` snapshots of dead runs that have no fork left."""
    parsed_names = (parse_fork_name(bucket["Name"]) for bucket in buckets)
    with_forks = {parsed.run_id for parsed in parsed_names if parsed is not None}
    for bucket in buckets:
        name = bucket["Name"]
        # Run snapshots live on seeds; a fork's own go with it.
        if parse_fork_name(name) is not None or (prefix and not name.startswith(prefix)):
            continue
        try:
            entries = janitor.snapshots(name)
        except Exception as exc:
            result.failed.append((name, f"cannot list its snapshots: {exc}"))
            continue
        for entry in entries:
            run = parse_run_snapshot(entry.label)
            if run is None or run in live or run in with_forks:
                continue
            if now - _aware(entry.created, now) < older_than:
                continue
            label = entry.label or ""
            if not dry_run:
                try:
                    janitor.delete_snapshot(name, entry.version)
                except Exception as exc:
                    result.failed.append((f"{name} snapshot {label}", str(exc)))
                    continue
            result.snapshots.append((name, entry.version, label))


def _aware(created: datetime.datetime | None, now: datetime.datetime) -> datetime.datetime:
    if created is None:
        return now  # unknown age: as young as can be
    return created if created.tzinfo else created.replace(tzinfo=datetime.timezone.utc)


def _list_buckets(client: Any) -> list[dict[str, Any]]:
    buckets: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = client.list_buckets(**kwargs)
        buckets += page.get("Buckets", [])
        token = page.get("ContinuationToken")
        if not token:
            return buckets
        kwargs["ContinuationToken"] = token
