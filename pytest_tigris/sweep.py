"""Find and delete forks leaked by runs that died (``pytest-tigris sweep``). No pytest here.

A fork is taken only when its run is provably over: no live run on this machine holds a lease
on it (a running pytest keeps its run directory and its own pid in the temp dir), and it is
older than ``older_than`` (the only proof available for runs on other machines). Only buckets
whose name parses as a pytest-tigris fork *and* that the endpoint reports as a fork are
deleted, children before parents.
"""

from __future__ import annotations

import datetime
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .coordination import SHARED_DIR_PREFIX, pid_alive
from .janitor import ForkJanitor
from .naming import parse_fork_name

__all__ = ["SweepResult", "live_runs", "parse_duration", "sweep"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> datetime.timedelta:
    """``"90"``, ``"30s"``, ``"15m"``, ``"2h"``, ``"1d"`` → a timedelta."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use e.g. 30m, 2h or 0s")
    return datetime.timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def live_runs(tempdir: str | None = None) -> set[str]:
    """Run ids of pytest runs alive on this machine (their controller still runs)."""
    runs: set[str] = set()
    for folder in Path(tempdir or tempfile.gettempdir()).glob(f"{SHARED_DIR_PREFIX}*-*"):
        run, _, pid = folder.name[len(SHARED_DIR_PREFIX) :].rpartition("-")
        if run and pid.isdigit() and pid_alive(int(pid)):
            runs.add(run)
    return runs


@dataclass
class SweepResult:
    """What a sweep did (or, with ``dry_run``, would do)."""

    deleted: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)
    young: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def sweep(
    janitor: ForkJanitor,
    *,
    older_than: datetime.timedelta,
    dry_run: bool = False,
    prefix: str | None = None,
    live: set[str] | None = None,
    now: datetime.datetime | None = None,
) -> SweepResult:
    """Delete pytest-tigris forks of dead runs on the janitor's endpoint."""
    now = now or datetime.datetime.now(tz=datetime.timezone.utc)
    live = live_runs() if live is None else live
    result = SweepResult()
    todo: list[str] = []
    for bucket in _list_buckets(janitor.admin):
        name = bucket["Name"]
        parsed = parse_fork_name(name)
        if parsed is None or (prefix and parsed.prefix != prefix):
            continue
        created = bucket.get("CreationDate") or now
        if created.tzinfo is None:
            created = created.replace(tzinfo=datetime.timezone.utc)
        if parsed.run_id in live:
            result.live.append(name)
        elif now - created < older_than:
            result.young.append(name)
        else:
            todo.append(name)
    if dry_run:
        result.deleted = [name for name in todo if janitor.fork_source(name) is not None]
        return result
    # A parent waits for its children: retry what was refused after the others are gone.
    for attempt in range(4):
        refused: list[tuple[str, str]] = []
        for name in todo:
            try:
                if janitor.delete(name):
                    result.deleted.append(name)
            except Exception as exc:  # report every failure, keep going
                refused.append((name, str(exc)))
        if not refused:
            break
        todo = [name for name, _ in refused]
        if attempt < 3:
            time.sleep(0.2)
        else:
            result.failed = refused
    return result


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
