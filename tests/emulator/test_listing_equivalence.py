"""Listings of versioned buckets, forks and snapshot reads equal those of a plain bucket.

Every bucket below is compared, call for call, with a plain (unversioned, non-snapshot) bucket
holding the same objects: ListObjectsV2 and ListObjects pages (prefixes, delimiters, start
points, page sizes, URL encoding) must agree on everything but request ids, dates, the bucket
name and the opaque continuation tokens.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import (
    call_with,
    create_snapshot_bucket,
    error_code,
    force_delete,
    fork,
    snapshot,
)

BASE = {
    "a/1": b"a1",
    "a/2": b"a2",
    "a/b/1": b"ab1",
    "a/b/2": b"ab2",
    "a/b/c/1": b"abc1",
    "c": b"c1",
    "d/x": b"dx",
    "d/y": b"dy",
    "d/z/1": b"dz1",
    "e/f/g": b"efg",
    "k1": b"k1",
    "k2": b"k2",
    "m/1": b"m1",
    "m/2": b"m2",
    "m/3": b"m3",
    "m/4": b"m4",
    "sp ace/\u00e9+1": b"accent",
    "sp ace/2": b"space",
}

TARGETS = ["root", "root@snapshot", "fork", "fork@snapshot", "fork-of-fork", "versioned"]


@dataclass
class Tracked:
    """A bucket and the objects it should hold, changed together."""

    s3: Any
    name: str
    content: dict[str, bytes] = field(default_factory=dict)

    def put(self, key: str, data: bytes) -> str:
        self.content[key] = data
        return str(self.s3.put_object(Bucket=self.name, Key=key, Body=data)["VersionId"])

    def delete(self, *names: str) -> None:
        for key in names:
            self.s3.delete_object(Bucket=self.name, Key=key)
            del self.content[key]


@dataclass
class Target:
    bucket: str
    headers: dict[str, str]
    plain: str


def _name(kind: str) -> str:
    return f"eq-{kind}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def targets(s3: Any) -> Iterator[dict[str, Target]]:
    """Buckets whose logical content is known, each with a plain twin holding that content."""
    made: list[str] = []

    def snapshot_bucket() -> Tracked:
        bucket = Tracked(s3, _name("root"))
        create_snapshot_bucket(s3, bucket.name)
        made.append(bucket.name)
        return bucket

    def forked(source: Tracked, at: str | None, content: dict[str, bytes]) -> Tracked:
        bucket = Tracked(s3, _name("fork"), dict(content))
        fork(s3, bucket.name, source.name, at)
        made.append(bucket.name)
        return bucket

    root = snapshot_bucket()
    for key, data in BASE.items():
        root.put(key, data)
    root_snap = snapshot(s3, root.name)
    root_at_snap = dict(root.content)
    # The root moves on: an emptied folder, an emptied nested folder, a key brought back to an
    # older version by deleting the latest one, a deleted and an added key.
    root.delete("d/x", "d/y", "d/z/1", "e/f/g", "k1")
    root.put("c", b"c2")
    latest = root.put("c", b"c3")
    s3.delete_object(Bucket=root.name, Key="c", VersionId=latest)
    root.content["c"] = b"c2"
    root.put("n/1", b"n1")

    child = forked(root, root_snap, root_at_snap)
    child.delete("a/b/1", "a/b/2", "a/b/c/1", "m/2")
    child.put("a/1", b"a1-fork")
    child.put("z/new", b"z")
    inherited = s3.head_object(Bucket=child.name, Key="k2")["VersionId"]
    s3.delete_object(Bucket=child.name, Key="k2", VersionId=inherited)
    del child.content["k2"]
    child_snap = snapshot(s3, child.name)
    child_at_snap = dict(child.content)
    child.delete("a/2")
    child.put("a/b/9", b"ab9")

    grandchild = forked(child, None, child.content)
    grandchild.delete("m/1", "m/3", "m/4", "c")
    grandchild.put("a/b/3", b"ab3")
    grandchild.put("d/new", b"dnew")
    own = s3.head_object(Bucket=grandchild.name, Key="z/new")["VersionId"]
    s3.delete_object(Bucket=grandchild.name, Key="z/new", VersionId=own)
    del grandchild.content["z/new"]

    versioned = Tracked(s3, _name("ver"))
    s3.create_bucket(Bucket=versioned.name)
    made.append(versioned.name)
    s3.put_bucket_versioning(Bucket=versioned.name, VersioningConfiguration={"Status": "Enabled"})
    for key, data in BASE.items():
        versioned.put(key, data)
    versioned.delete("d/x", "d/y", "d/z/1", "m/1", "m/2", "m/3", "m/4")
    versioned.put("a/1", b"a1-again")

    def twin(content: dict[str, bytes]) -> str:
        plain = _name("plain")
        s3.create_bucket(Bucket=plain)
        made.append(plain)
        for key, data in content.items():
            s3.put_object(Bucket=plain, Key=key, Body=data)
        return plain

    def at(version: str) -> dict[str, str]:
        return {"X-Tigris-Snapshot-Version": version}

    built = {
        "root": Target(root.name, {}, twin(root.content)),
        "root@snapshot": Target(root.name, at(root_snap), twin(root_at_snap)),
        "fork": Target(child.name, {}, twin(child.content)),
        "fork@snapshot": Target(child.name, at(child_snap), twin(child_at_snap)),
        "fork-of-fork": Target(grandchild.name, {}, twin(grandchild.content)),
        "versioned": Target(versioned.name, {}, twin(versioned.content)),
    }
    yield built
    for name in reversed(made):
        force_delete(s3, name)


def _normal(page: dict[str, Any]) -> dict[str, Any]:
    """A listing page without what legitimately differs between two buckets."""
    out = {k: v for k, v in page.items() if k not in ("ResponseMetadata", "Name")}
    for opaque in ("ContinuationToken", "NextContinuationToken"):
        if opaque in out:
            out[opaque] = "<token>"
    if "Contents" in out:
        out["Contents"] = [
            {k: v for k, v in entry.items() if k != "LastModified"} for entry in out["Contents"]
        ]
    return out


def _pages(s3: Any, api: str, bucket: str, headers: dict[str, str], **params: Any) -> list[Any]:
    """Every page of one listing, following continuation tokens or markers to the end."""
    pages: list[Any] = []
    follow: dict[str, str] = {}
    while len(pages) < 40:
        page = call_with(s3, headers, api, Bucket=bucket, **{**params, **follow})
        pages.append(_normal(page))
        if not page["IsTruncated"]:
            return pages
        if api == "list_objects_v2":
            follow = {"ContinuationToken": page["NextContinuationToken"]}
        else:
            marker = page.get("NextMarker") or page["Contents"][-1]["Key"]
            follow = {"Marker": marker}
    raise AssertionError(f"{api} on {bucket} never stopped: {pages[-1]}")


PREFIXES = ["", "a/", "a/b/", "d/", "e/", "m/", "sp ace/", "a", "k", "zz"]
DELIMITERS: list[str | None] = [None, "/", "1"]
STARTS: list[str | None] = [None, "a/b/", "c", "d/", "m/1"]
MAX_KEYS: list[int | None] = [None, 1, 2, 3, 5, 1000]
ENCODINGS: list[str | None] = [None, "url"]
APIS = ["list_objects_v2", "list_objects"]

Case = tuple[str, str, str, str | None, str | None, int | None, str | None]


def _cases() -> list[Case]:
    # Every target and API over the folders that were emptied, kept or refilled...
    core: list[Case] = [
        (target, api, prefix, "/", None, max_keys, None)
        for target, api, prefix, max_keys in itertools.product(
            TARGETS, APIS, ["", "a/", "d/", "e/"], [None, 1]
        )
    ]
    # ...and a fixed sample of everything else.
    rest = [
        case
        for case in itertools.product(
            TARGETS, APIS, PREFIXES, DELIMITERS, STARTS, MAX_KEYS, ENCODINGS
        )
        if case not in core
    ]
    return core + random.Random(9).sample(rest, 200)


@pytest.mark.parametrize(
    ("target", "api", "prefix", "delimiter", "start", "max_keys", "encoding"), _cases()
)
def test_listing_equals_a_plain_bucket_with_the_same_objects(
    s3: Any,
    targets: dict[str, Target],
    target: str,
    api: str,
    prefix: str,
    delimiter: str | None,
    start: str | None,
    max_keys: int | None,
    encoding: str | None,
) -> None:
    params: dict[str, Any] = {"Prefix": prefix}
    if delimiter is not None:
        params["Delimiter"] = delimiter
    if start is not None:
        params["StartAfter" if api == "list_objects_v2" else "Marker"] = start
    if max_keys is not None:
        params["MaxKeys"] = max_keys
    if encoding is not None:
        params["EncodingType"] = encoding
    chosen = targets[target]

    got = _pages(s3, api, chosen.bucket, chosen.headers, **params)
    expected = _pages(s3, api, chosen.plain, {}, **params)

    assert got == expected


def test_an_emptied_folder_is_not_listed(s3: Any, targets: dict[str, Target]) -> None:
    root = targets["root"].bucket
    top = s3.list_objects_v2(Bucket=root, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "m/", "n/", "sp ace/"]
    assert [o["Key"] for o in top["Contents"]] == ["c", "k2"]
    assert top["KeyCount"] == 6
    inside = s3.list_objects_v2(Bucket=root, Prefix="d/", Delimiter="/")
    assert inside["KeyCount"] == 0
    assert "CommonPrefixes" not in inside
    assert "Contents" not in inside
    # The deleted keys are still versions of the bucket.
    versions = s3.list_object_versions(Bucket=root, Prefix="d/")
    assert sorted(m["Key"] for m in versions["DeleteMarkers"]) == ["d/x", "d/y", "d/z/1"]
    assert sorted(v["Key"] for v in versions["Versions"]) == ["d/x", "d/y", "d/z/1"]


def test_a_bucket_holding_only_delete_markers_is_not_empty(s3: Any) -> None:
    name = _name("markers")
    create_snapshot_bucket(s3, name)
    s3.put_object(Bucket=name, Key="gone", Body=b"x")
    s3.delete_object(Bucket=name, Key="gone")
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=name)
    assert error_code(exc) == (409, "BucketNotEmpty")
    force_delete(s3, name)
