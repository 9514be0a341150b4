"""Seeding from a folder as ``aws s3 sync`` would upload it: content types, skipped clutter,
a metadata sidecar, symbolic links."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_tigris.emulator import EmulatorProcess, EmulatorStartError
from tests.helpers import body, fork, keys, make_client

SEED = "folder-seed"


def write(root: Path, relative: str, data: bytes = b"x") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def load(folder: Path) -> tuple[EmulatorProcess, Any]:
    emulator = EmulatorProcess(seed=SEED, seed_dir=folder).start()
    return emulator, make_client(emulator.endpoint_url)


def test_content_types_clutter_and_sidecar(tmp_path: Path) -> None:
    write(tmp_path, "index.html", b"<html></html>")
    write(tmp_path, "data/rows.csv", b"a,b\n")
    write(tmp_path, "img/cat.png", b"\x89PNG")
    write(tmp_path, "blob.unknownext", b"?")
    write(tmp_path, ".git/HEAD", b"ref: refs/heads/main")
    write(tmp_path, "pkg/__pycache__/m.cpython-311.pyc", b"\x00")
    write(tmp_path, "img/.DS_Store", b"\x00")
    write(tmp_path, "nested/.tigris-seed.json", b"{}")  # only the root one is a sidecar
    (tmp_path / ".tigris-seed.json").write_text(
        json.dumps(
            {
                "objects": {
                    "img/cat.png": {
                        "metadata": {"owner": "alice"},
                        "tags": {"team": "web"},
                    },
                    "blob.unknownext": {"content_type": "application/x-custom"},
                }
            }
        )
    )
    emulator, s3 = load(tmp_path)
    try:
        assert keys(s3, SEED) == [
            "blob.unknownext",
            "data/rows.csv",
            "img/cat.png",
            "index.html",
            "nested/.tigris-seed.json",
        ]
        types = {key: s3.head_object(Bucket=SEED, Key=key)["ContentType"] for key in keys(s3, SEED)}
        assert types == {
            "blob.unknownext": "application/x-custom",
            "data/rows.csv": "text/csv",
            "img/cat.png": "image/png",
            "index.html": "text/html",
            "nested/.tigris-seed.json": "application/json",
        }
        assert s3.head_object(Bucket=SEED, Key="img/cat.png")["Metadata"] == {"owner": "alice"}
        tags = s3.get_object_tagging(Bucket=SEED, Key="img/cat.png")["TagSet"]
        assert tags == [{"Key": "team", "Value": "web"}]
        # A fork sees the same types, metadata and tags.
        fork(s3, "folder-fork", SEED)
        head = s3.head_object(Bucket="folder-fork", Key="img/cat.png")
        assert (head["ContentType"], head["Metadata"]) == ("image/png", {"owner": "alice"})
        tags = s3.get_object_tagging(Bucket="folder-fork", Key="img/cat.png")["TagSet"]
        assert tags == [{"Key": "team", "Value": "web"}]
    finally:
        emulator.stop()


def test_symbolic_links_are_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "shared/logo.svg", b"<svg/>")
    write(outside, "notes.txt", b"linked file")
    seed = tmp_path / "seed"
    write(seed, "own.txt", b"own")
    os.symlink(outside / "shared", seed / "assets")
    os.symlink(outside / "notes.txt", seed / "docs.txt")
    emulator, s3 = load(seed)
    try:
        assert keys(s3, SEED) == ["assets/logo.svg", "docs.txt", "own.txt"]
        assert body(s3, SEED, "assets/logo.svg") == b"<svg/>"
        assert body(s3, SEED, "docs.txt") == b"linked file"
        assert s3.head_object(Bucket=SEED, Key="assets/logo.svg")["ContentType"] == "image/svg+xml"
    finally:
        emulator.stop()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda root: os.symlink(root, root / "sub" / "loop"),
            "sub/loop links back to a folder it is inside (a loop): remove the link",
        ),
        (
            lambda root: os.symlink(root / "missing", root / "dangling"),
            "dangling is a symbolic link to nothing: fix or remove it",
        ),
        (
            lambda root: (root / ".tigris-seed.json").write_text("{not json"),
            ".tigris-seed.json is not valid JSON",
        ),
        (
            lambda root: (root / ".tigris-seed.json").write_text('{"objects": {"a.txt": 3}}'),
            '.tigris-seed.json must look like {"objects": {"KEY": {"content_type": "...", '
            '"metadata": {...}, "tags": {...}}}}',
        ),
        (
            lambda root: (root / ".tigris-seed.json").write_text(
                '{"objects": {"ghost.txt": {"tags": {"a": "b"}}}}'
            ),
            ".tigris-seed.json describes 'ghost.txt', which is not a file in the folder",
        ),
    ],
)
def test_a_broken_folder_is_one_line(tmp_path: Path, make: Any, message: str) -> None:
    write(tmp_path, "sub/a.txt")
    write(tmp_path, "a.txt")
    make(tmp_path)
    with pytest.raises(EmulatorStartError) as exc:
        EmulatorProcess(seed=SEED, seed_dir=tmp_path).start()
    text = str(exc.value)
    assert f"seed folder {tmp_path}: {message}" in text
    assert "\n" not in text
