"""A seed folder: files become objects, the way ``aws s3 sync`` uploads a folder.

- Keys are the files' paths relative to the folder, with ``/`` separators.
- ``Content-Type`` comes from the file extension (Python's ``mimetypes``, as the AWS CLI
  guesses it); unknown extensions get S3's default, ``binary/octet-stream``.
- Symbolic links are followed, to files and to folders, as ``aws s3 sync`` does by default;
  a link back into a folder it is already inside (a loop) is refused, as is a dangling one.
- ``.git/`` and ``__pycache__/`` folders and ``.DS_Store`` files are skipped.
- An optional sidecar, :data:`SIDECAR` at the folder's root, sets per-key ``content_type``,
  ``metadata`` (user metadata, ``x-amz-meta-*``) and ``tags``::

      {"objects": {"images/cat.png": {"content_type": "image/png",
                                      "metadata": {"owner": "alice"},
                                      "tags": {"team": "web"}}}}
"""

from __future__ import annotations

import json
import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidSeedFolder

__all__ = ["SIDECAR", "SKIPPED_FILES", "SKIPPED_FOLDERS", "SeedObject", "read_seed_folder"]

SIDECAR = ".tigris-seed.json"
SKIPPED_FOLDERS = frozenset({".git", "__pycache__"})
SKIPPED_FILES = frozenset({".DS_Store"})
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


@dataclass(frozen=True)
class SeedObject:
    """One object to load: its key, the file holding its bytes, and what S3 keeps beside them."""

    key: str
    path: Path
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def read_seed_folder(folder: Path) -> list[SeedObject]:
    """Every object ``folder`` describes, sorted by key; checked before anything is loaded."""
    found = sorted(_walk(folder, folder, frozenset()), key=lambda item: item[0])
    sidecar = _read_sidecar(folder)
    unknown = sorted(set(sidecar) - {key for key, _ in found})
    if unknown:
        raise InvalidSeedFolder(
            f"seed folder {folder}: {SIDECAR} describes {unknown[0]!r}, which is not a file "
            "in the folder: fix the key or add the file",
            str(folder),
        )
    objects = []
    for key, path in found:
        extra = sidecar.get(key, {})
        guessed = mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE
        objects.append(
            SeedObject(
                key=key,
                path=path,
                content_type=str(extra.get("content_type") or guessed),
                metadata=dict(extra.get("metadata") or {}),
                tags=dict(extra.get("tags") or {}),
            )
        )
    return objects


Found = list[tuple[str, Path]]


def _walk(
    folder: Path, root: Path, ancestors: frozenset[tuple[int, int]]
) -> list[tuple[str, Path]]:
    try:
        here = os.stat(folder)
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        raise InvalidSeedFolder(
            f"seed folder {root}: cannot read {folder}: {exc.strerror}", str(root)
        ) from None
    ancestors = ancestors | {(here.st_dev, here.st_ino)}
    found: Found = []
    for entry in entries:
        path = Path(entry.path)
        relative = path.relative_to(root)
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
            is_file = entry.is_file(follow_symlinks=True)
        except OSError:
            is_dir = is_file = False
        if entry.is_symlink() and not (is_dir or is_file):
            raise InvalidSeedFolder(
                f"seed folder {root}: {relative} is a symbolic link to nothing: fix or remove it",
                str(root),
            )
        if is_dir:
            if entry.name in SKIPPED_FOLDERS:
                continue
            target = os.stat(path)
            if (target.st_dev, target.st_ino) in ancestors:
                raise InvalidSeedFolder(
                    f"seed folder {root}: {relative} links back to a folder it is inside (a loop): "
                    "remove the link",
                    str(root),
                )
            found += _walk(path, root, ancestors)
        elif is_file:
            at_root = relative.parent == Path(".")
            if entry.name == ".DS_Store" or (entry.name == SIDECAR and at_root):
                continue
            found.append((_key(relative, root), path))
    return found


def _key(relative: Path, root: Path) -> str:
    key = relative.as_posix()
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        # A name that is not UTF-8 reaches Python as lone surrogates; stored as a key, it would
        # make every later listing of the seed and its forks fail to encode.
        raise InvalidSeedFolder(
            f"seed folder {root}: file name {os.fsencode(relative)!r} is not valid UTF-8: "
            "rename it",
            str(root),
        ) from None
    return key


def _read_sidecar(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / SIDECAR
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidSeedFolder(
            f"seed folder {folder}: {SIDECAR} is not valid JSON ({exc}): fix it or remove it",
            str(folder),
        ) from None
    objects = data.get("objects") if isinstance(data, dict) else None
    if not isinstance(objects, dict) or not all(
        isinstance(value, dict) and _valid_entry(value) for value in objects.values()
    ):
        raise InvalidSeedFolder(
            f'seed folder {folder}: {SIDECAR} must look like {{"objects": {{"KEY": '
            '{"content_type": "...", "metadata": {...}, "tags": {...}}}}',
            str(folder),
        )
    return {str(key): value for key, value in objects.items()}


def _valid_entry(entry: dict[str, Any]) -> bool:
    if set(entry) - {"content_type", "metadata", "tags"}:
        return False
    if "content_type" in entry and not isinstance(entry["content_type"], str):
        return False
    for name in ("metadata", "tags"):
        value = entry.get(name, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return False
    return True
