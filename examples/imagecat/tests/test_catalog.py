"""imagecat's tests, each against a fork of the seed bucket ``imagecat-bucket-main``.

- Read-only queries share the session's fork (``tigris_bucket``, one per xdist worker).
- Anything that writes gets its own fork (``tigris_fork``). Several tests below delete or
  overwrite the same keys (``manifest.json``, ``thumbs/*``) and still pass in any order and
  under ``-n 2``, because no two of them ever see the same bucket.
- ``tigris_fork.changes()`` states exactly what a test wrote, compared with the seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from imagecat import (
    INDEX_KEY,
    MANIFEST_KEY,
    ImageCatalog,
    ImageError,
    ImageExistsError,
    ManifestError,
    UnknownImageError,
    decode_png,
    encode_png,
    make_thumbnails,
    thumbnail,
)

if TYPE_CHECKING:
    from pytest_tigris import Fork

APP_DIR = Path(__file__).resolve().parent.parent
SEED_IDS = ["cat", "dog", "fox", "owl"]
SEED_THUMBS = ["thumbs/dog.png", "thumbs/fox.png", "thumbs/ghost.png", "thumbs/owl.png"]
NEWT = encode_png([[(x * 40 + y * 10) % 256 for x in range(5)] for y in range(4)])


def read(fork: Fork, key: str) -> bytes:
    return bytes(fork.client.get_object(Bucket=fork.name, Key=key)["Body"].read())


# -- read-only: the session's shared fork ------------------------------------------------------
def test_entries_are_the_manifest_images_that_exist(shared_catalog: ImageCatalog) -> None:
    assert [e.id for e in shared_catalog.entries()] == SEED_IDS


def test_get_reads_dimensions_and_thumbnail(shared_catalog: ImageCatalog) -> None:
    cat = shared_catalog.get("cat")
    assert (cat.width, cat.height, cat.thumbnail) == (24, 16, None)
    dog = shared_catalog.get("dog")
    assert (dog.width, dog.height, dog.thumbnail) == (20, 20, "thumbs/dog.png")
    assert dog.title == "Dog in the park"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"tag": "bird"}, ["owl"]),
        ({"tag": "indoor"}, ["cat"]),  # moth is indoor too, but its image is missing
        ({"tag": "wild", "text": "DUSK"}, ["fox"]),
    ],
)
def test_search(shared_catalog: ImageCatalog, query: dict[str, str], expected: list[str]) -> None:
    assert [e.id for e in shared_catalog.search(**query)] == expected


def test_tags_count_only_entries_with_an_image(shared_catalog: ImageCatalog) -> None:
    assert shared_catalog.tags() == {
        "animal": 4,
        "bird": 1,
        "indoor": 1,
        "mammal": 3,
        "outdoor": 3,
        "wild": 2,
    }


def test_missing_and_unknown_images(shared_catalog: ImageCatalog) -> None:
    assert shared_catalog.missing() == ["moth"]
    with pytest.raises(UnknownImageError):
        shared_catalog.get("moth")
    with pytest.raises(UnknownImageError):
        shared_catalog.get("zebra")


def test_seed_thumbnails_are_up_to_date(tigris_bucket: Fork) -> None:
    for image_id in ("dog", "fox", "owl"):
        source = read(tigris_bucket, f"images/{image_id}.png")
        assert read(tigris_bucket, f"thumbs/{image_id}.png") == thumbnail(source)


# -- writes: a fork per test ---------------------------------------------------------------------
def test_thumbnails_are_written(tigris_fork: Fork) -> None:
    assert make_thumbnails(tigris_fork.client, tigris_fork.name) == ["thumbs/cat.png"]
    assert tigris_fork.changes().added == ["thumbs/cat.png"]
    width, height, _ = decode_png(read(tigris_fork, "thumbs/cat.png"))
    assert (width, height) == (8, 6)


def test_rebuilding_every_thumbnail_changes_no_existing_one(
    tigris_fork: Fork, catalog: ImageCatalog
) -> None:
    written = catalog.make_thumbnails(force=True)
    assert written == ["thumbs/cat.png", "thumbs/dog.png", "thumbs/fox.png", "thumbs/owl.png"]
    changes = tigris_fork.changes()
    # Thumbnails are deterministic: rewriting dog, fox and owl gives the same bytes (ETags).
    assert (changes.added, changes.modified, changes.deleted) == (["thumbs/cat.png"], [], [])


def test_write_index(tigris_fork: Fork, catalog: ImageCatalog) -> None:
    catalog.write_index()
    assert tigris_fork.changes().added == [INDEX_KEY]
    index = json.loads(read(tigris_fork, INDEX_KEY))
    assert index["count"] == 4
    assert index["missing"] == ["moth"]
    assert index["tags"]["outdoor"] == ["dog", "fox", "owl"]
    assert index["images"][1] == {
        "id": "dog",
        "title": "Dog in the park",
        "tags": ["animal", "mammal", "outdoor"],
        "key": "images/dog.png",
        "bytes": 277,
        "width": 20,
        "height": 20,
        "thumbnail": "thumbs/dog.png",
    }


def test_add_image(tigris_fork: Fork, catalog: ImageCatalog) -> None:
    entry = catalog.add_image("newt", NEWT, title="Newt in a pond", tags=["amphibian", "wild"])
    assert (entry.width, entry.height, entry.size) == (5, 4, len(NEWT))
    changes = tigris_fork.changes()
    assert changes.added == ["images/newt.png"]
    assert changes.modified == [MANIFEST_KEY]
    assert catalog.get("newt") == entry
    assert [e.id for e in catalog.search(tag="wild")] == ["fox", "newt", "owl"]


def test_add_image_rejects_bad_png_and_writes_nothing(
    tigris_fork: Fork, catalog: ImageCatalog
) -> None:
    with pytest.raises(ImageError, match="CRC"):
        catalog.add_image("newt", NEWT[:24] + b"\x10" + NEWT[25:], title="Broken newt")
    with pytest.raises(ImageError, match="signature"):
        catalog.add_image("newt", b"GIF89a...", title="Not a PNG")
    assert not tigris_fork.changes()


def test_add_image_rejects_a_taken_id(tigris_fork: Fork, catalog: ImageCatalog) -> None:
    with pytest.raises(ImageExistsError):
        catalog.add_image("moth", NEWT, title="Moth, again")
    assert not tigris_fork.changes()


@pytest.mark.tigris(seed="imagecat-bucket-main")
class TestManifestChanges:
    """Tests that rewrite or delete manifest.json and thumbs/: each only sees its own fork."""

    def test_cleanup_removes_stale_objects(self, tigris_fork: Fork, catalog: ImageCatalog) -> None:
        assert tigris_fork.source == "imagecat-bucket-main"
        report = catalog.cleanup()
        assert report.deleted_thumbnails == ["thumbs/ghost.png"]
        assert report.dropped_entries == ["moth"]
        changes = tigris_fork.changes()
        assert (changes.added, changes.modified) == ([], [MANIFEST_KEY])
        assert changes.deleted == ["thumbs/ghost.png"]
        assert [e.id for e in catalog.manifest()] == SEED_IDS
        assert not catalog.cleanup()  # nothing left to do

    def test_cleanup_dry_run_writes_nothing(self, tigris_fork: Fork, catalog: ImageCatalog) -> None:
        report = catalog.cleanup(dry_run=True)
        assert (report.deleted_thumbnails, report.dropped_entries) == (
            ["thumbs/ghost.png"],
            ["moth"],
        )
        assert not tigris_fork.changes()

    def test_without_a_manifest_every_thumbnail_is_stale(
        self, tigris_fork: Fork, catalog: ImageCatalog
    ) -> None:
        tigris_fork.client.delete_object(Bucket=tigris_fork.name, Key=MANIFEST_KEY)
        assert catalog.entries() == []
        assert catalog.cleanup().deleted_thumbnails == SEED_THUMBS
        assert tigris_fork.changes().deleted == [MANIFEST_KEY, *SEED_THUMBS]

    def test_corrupt_manifest_is_an_error(self, tigris_fork: Fork, catalog: ImageCatalog) -> None:
        tigris_fork.client.put_object(Bucket=tigris_fork.name, Key=MANIFEST_KEY, Body=b"{")
        with pytest.raises(ManifestError, match="not JSON"):
            catalog.entries()
        assert tigris_fork.changes().modified == [MANIFEST_KEY]


def test_a_fork_never_touches_the_shared_bucket(
    tigris_fork: Fork, catalog: ImageCatalog, shared_catalog: ImageCatalog
) -> None:
    tigris_fork.client.delete_objects(
        Bucket=tigris_fork.name,
        Delete={"Objects": [{"Key": f"images/{i}.png"} for i in SEED_IDS]},
    )
    assert catalog.entries() == []
    assert [e.id for e in shared_catalog.entries()] == SEED_IDS
    assert shared_catalog.bucket != tigris_fork.name


# -- other processes and clients, pointed at the fork through its environment --------------------
def fork_environ(fork: Fork) -> dict[str, str]:
    """This process's environment with every AWS setting replaced by the fork's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**base, **fork.env}


def test_command_line_in_a_subprocess(tigris_fork: Fork) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imagecat", "index"],
        cwd=APP_DIR,
        env=fork_environ(tigris_fork),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote index.json: 4 images\n"
    assert tigris_fork.changes().added == [INDEX_KEY]


def test_boto3_client_from_the_environment(
    tigris_fork: Fork, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in tigris_fork.env.items():
        monkeypatch.setenv(name, value)
    import boto3

    # A new session: boto3's default session caches the credentials it resolved first.
    client = boto3.session.Session().client("s3")
    catalog = ImageCatalog(client, os.environ["TIGRIS_BUCKET"])
    catalog.add_image("newt", NEWT, title="Newt in a pond")
    assert tigris_fork.changes().added == ["images/newt.png"]
