"""``Fork.changes()`` against the emulator: forks of one snapshot share one listing of it."""

from __future__ import annotations

from typing import Any

from pytest_tigris.client import ClientFactory
from pytest_tigris.config import TigrisConfig
from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.fork import Fork
from tests.helpers import SEED, force_delete, fork, snapshot


def make_fork(clients: ClientFactory, s3: Any, name: str, version: str | None) -> Fork:
    fork(s3, name, SEED, version)
    return Fork(
        name=name,
        source=SEED,
        snapshot=version,
        endpoint_url=clients.endpoint_url,
        _clients=clients,
    )


def listings_of(clients: ClientFactory, bucket: str) -> list[str]:
    """Record every ListObjectsV2 of ``bucket`` sent through clients ``clients`` builds."""
    seen: list[str] = []
    build = clients.client

    def client(**kwargs: Any) -> Any:
        made = build(**kwargs)

        def count(params: dict[str, Any], **_: Any) -> None:
            if params.get("Bucket") == bucket:
                seen.append(bucket)

        made.meta.events.register("provide-client-params.s3.ListObjectsV2", count)
        return made

    clients.client = client  # type: ignore[method-assign]
    return seen


def test_forks_of_one_snapshot_list_it_once(emulator: EmulatorProcess, s3: Any) -> None:
    config = TigrisConfig.load(options={}, ini={}, environ={}, dotenv=False)
    clients = ClientFactory(config, emulator.endpoint_url)
    seed_listings = listings_of(clients, SEED)
    version = snapshot(s3, SEED)
    first = make_fork(clients, s3, "changes-cache-a", version)
    second = make_fork(clients, s3, "changes-cache-b", version)
    first.client.put_object(Bucket=first.name, Key="new.txt", Body=b"new")
    second.client.delete_object(Bucket=second.name, Key="manifest.json")
    s3.put_object(Bucket=SEED, Key="after-the-snapshot.txt", Body=b"later")
    try:
        one, two = first.changes(), second.changes()
        again = first.changes()
    finally:
        s3.delete_object(Bucket=SEED, Key="after-the-snapshot.txt")
        for name in (first.name, second.name):
            force_delete(s3, name)

    assert (one.added, one.modified, one.deleted) == (["new.txt"], [], [])
    assert (two.added, two.modified, two.deleted) == ([], [], ["manifest.json"])
    assert again == one
    assert seed_listings == [SEED]  # the snapshot was listed once, for the first fork
