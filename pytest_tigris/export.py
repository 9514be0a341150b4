"""Kept forks of the embedded emulator, written to a folder: the emulator stops with the run.

The folder is a seed folder (keys as relative paths, a ``.tigris-seed.json`` sidecar for
content types, user metadata and tags), so ``pytest-tigris emulator --seed NAME --seed-dir
FOLDER`` brings the fork back as a bucket. Folders go under pytest's base temporary directory,
next to ``tmp_path``'s, and pytest removes them with old runs the same way. Keys a folder cannot
hold are skipped and listed in the sidecar under ``"skipped"``, which seed folders ignore.

Never imports pytest; boto3 is only reached through the fork's client.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fork import Fork

__all__ = [
    "EXPORT_DIR",
    "Exported",
    "export_bucket",
    "export_kept",
    "folder_name",
    "saved_line",
]

EXPORT_DIR = "pytest-tigris"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_LENGTH = 100
# The seed folder sidecar's name (emulator/seedfolder.py), without importing the emulator here.
SIDECAR_NAME = ".tigris-seed.json"
_WORKERS = 8
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Exported:
    """A fork written to ``folder``: how many objects, and the keys skipped with why."""

    folder: Path
    objects: int
    skipped: dict[str, str] = field(default_factory=dict)


def folder_name(test_id: str) -> str:
    """``test_id`` as one safe folder name (``tests/test_a.py::test_b[x/y]`` ->
    ``tests_test_a.py_test_b_x_y``); a long id keeps a hash of the whole so ids that share a
    long start stay apart."""
    name = _NAME_CHARS.sub("_", test_id).strip("._-") or "fork"
    if len(name) > _NAME_LENGTH:
        digest = hashlib.sha256(test_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name[: _NAME_LENGTH - 9]}-{digest}"
    return name


def _new_folder(parent: Path, name: str) -> Path:
    """A new empty ``parent/name`` (``name-2``, ``name-3``... when taken: the same test may keep
    forks twice, as a rerun or with several forks; xdist workers share ``parent``)."""
    parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 1000):
        folder = parent / (name if number == 1 else f"{name}-{number}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{parent / name}: no free folder name")


def export_kept(
    fork: Fork, basetemp: Callable[[], Path], test: str | None, worker: str
) -> dict[str, Any]:
    """Write kept ``fork`` to a new folder under ``<base temp>/pytest-tigris``.

    ``basetemp`` gives this process's pytest base temporary directory; an xdist worker's lives
    inside the run's, so workers write to their parent and a run's forks end up side by side.
    The folder is named after ``test`` (the test the fork was made during), and for a factory
    fork after the fork too; the worker's shared ``tigris_bucket`` gets ``tigris_bucket-gwN``.

    Returns what the run's summary prints: ``{"folder": ..., "objects": n, "skipped": n}``, or
    ``{"error": ...}`` when it could not be written (the fork is kept either way).
    """
    if fork.kind == "bucket":
        owner = "tigris_bucket" if worker == "m" else f"tigris_bucket-{worker}"
    elif fork.kind == "fork":
        owner = test or "tigris_fork"
    else:
        owner = f"{test}-{fork.name}" if test else fork.name
    try:
        base = basetemp()
        root = base if worker == "m" else base.parent
        folder = _new_folder(root / EXPORT_DIR, folder_name(owner))
        exported = export_bucket(fork.client, fork.name, folder)
    except Exception as exc:
        detail = str(exc).strip().splitlines()
        return {"error": f"{type(exc).__name__}: {detail[0][:200]}" if detail else repr(exc)}
    return {
        "folder": str(exported.folder),
        "objects": exported.objects,
        "skipped": len(exported.skipped),
    }


def saved_line(saved: dict[str, Any]) -> str:
    """How the summary tells where a kept fork was written (``saved``: from
    :func:`export_kept`)."""
    if "error" in saved:
        return f"not saved to a folder ({saved['error']})"
    objects = saved["objects"]
    line = f"saved to {saved['folder']} ({objects} object{'' if objects == 1 else 's'}"
    if saved["skipped"]:
        line += f"; {saved['skipped']} skipped, listed in its {SIDECAR_NAME}"
    return line + ")"


def export_bucket(client: Any, bucket: str, folder: Path) -> Exported:
    """Write every object of ``bucket`` into ``folder`` (new or empty) as a seed folder."""
    from .seeds import SafeFolder, classify_key, list_keys, sidecar_entry

    wanted: list[str] = []
    skipped: dict[str, str] = {}
    for key, _ in list_keys(client, bucket):
        verdict = classify_key(key)
        if verdict is None:
            wanted.append(key)
        else:
            skipped[key] = verdict[1]
    files = set(wanted)
    for key in wanted:
        parts = key.split("/")
        for end in range(1, len(parts)):
            above = "/".join(parts[:end])
            if above in files:
                # One of the two has to go: the shorter key keeps its file.
                skipped[key] = f"{above!r} is a file, so it cannot also be a folder"
                break
    wanted = [key for key in wanted if key not in skipped]
    target = SafeFolder(folder)

    def download(key: str) -> tuple[str, dict[str, Any] | str]:
        answer = client.get_object(Bucket=bucket, Key=key)
        body = answer["Body"]
        try:
            target.write(key, iter(lambda: body.read(_CHUNK), b""))
        except OSError as exc:
            # A name the file system refuses (too long, say): the rest is still worth having.
            return key, f"cannot be written as a file: {exc.strerror or exc}"
        finally:
            body.close()
        tags: dict[str, str] = {}
        if int(answer.get("TagCount") or 0):
            tag_set = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
            tags = {str(t["Key"]): str(t["Value"]) for t in tag_set}
        return key, sidecar_entry(key, str(answer.get("ContentType") or ""), answer, tags)

    described: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(_WORKERS, len(wanted)))) as pool:
        for key, outcome in pool.map(download, wanted):
            if isinstance(outcome, str):
                skipped[key] = outcome
            elif outcome:
                described[key] = outcome
    sidecar: dict[str, Any] = {"objects": dict(sorted(described.items()))}
    if skipped:
        sidecar["skipped"] = dict(sorted(skipped.items()))
    text = json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n"
    target.write(SIDECAR_NAME, [text.encode("utf-8")])
    return Exported(folder, len(wanted) - len(set(wanted) & set(skipped)), skipped)
