"""Concurrent forks, writes, reads and force deletes from many threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.helpers import (
    body,
    create_snapshot_bucket,
    force_delete,
    fork,
    keys,
    make_client,
    snapshot,
)

THREADS = 8
ROUNDS = 4


def test_eight_threads_fork_write_read_delete_without_cross_talk(
    emulator: Any, s3: Any, unique: Callable[[str], str]
) -> None:
    source = unique("conc")
    create_snapshot_bucket(s3, source)
    seed = {f"k{i:02d}": f"seed-{i}".encode() for i in range(30)}
    for key, data in seed.items():
        s3.put_object(Bucket=source, Key=key, Body=data)
    pinned = snapshot(s3, source)
    stop = threading.Event()

    def churn_source() -> int:
        # Writes to the source while forks are made: pinned forks must never see them.
        client = make_client(emulator.endpoint_url)
        n = 0
        while not stop.is_set():
            client.put_object(Bucket=source, Key="k00", Body=f"churn-{n}".encode())
            client.put_object(Bucket=source, Key=f"extra-{n % 5}", Body=b"x")
            n += 1
        return n

    def worker(index: int) -> list[str]:
        client = make_client(emulator.endpoint_url)
        problems: list[str] = []
        for round_ in range(ROUNDS):
            name = unique(f"c{index}r{round_}")
            fork(client, name, source, pinned)
            mine = {f"own/{index}/{j}": f"{index}-{round_}-{j}".encode() for j in range(3)}
            for key, data in mine.items():
                client.put_object(Bucket=name, Key=key, Body=data)
            client.put_object(Bucket=name, Key="k01", Body=f"mine-{index}".encode())
            client.delete_object(Bucket=name, Key="k02")
            expected = {**seed, **mine, "k01": f"mine-{index}".encode()}
            del expected["k02"]
            seen = {key: body(client, name, key) for key in keys(client, name)}
            if seen != expected:
                diff = set(seen.items()) ^ set(expected.items())
                problems.append(f"{name}: {sorted(diff)[:5]}")
            force_delete(client, name)
        return problems

    with ThreadPoolExecutor(max_workers=THREADS + 1) as pool:
        churn = pool.submit(churn_source)
        results = [pool.submit(worker, i) for i in range(THREADS)]
        problems = [p for r in results for p in r.result(timeout=300)]
        stop.set()
        churn_count = churn.result(timeout=60)

    assert problems == []
    assert churn_count > 0
    live = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert not [name for name in live if name.startswith(("c0r", "c1r", "c7r"))]
    headers = s3.head_bucket(Bucket=source)["ResponseMetadata"]["HTTPHeaders"]
    assert "x-tigris-is-fork-parent" not in headers
    force_delete(s3, source)
