"""What a failed test did to its forks: the "Captured tigris storage" section of its report.

For each fork the test used: its name, and the keys added, modified and deleted since the fork
point (from :meth:`Fork.changes`), a few per kind, with the first bytes of the text objects
that were added or changed. Reading happens only when a test failed, so passing tests pay
nothing. Never imports pytest; boto3 is only reached through the forks' clients.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .s3calls import error_code

if TYPE_CHECKING:
    from .fork import Fork

__all__ = [
    "LISTED",
    "PREVIEW_BYTES",
    "PREVIEW_LINES",
    "ForkChanges",
    "ObjectView",
    "format_section",
    "looks_like_text",
    "mask_secrets",
    "read_changes",
    "role_of",
    "storage_section",
]

LISTED = 20  # keys shown per kind; the rest are counted
PREVIEW_BYTES = 200
PREVIEW_LINES = 10
_READERS = 8


@dataclass(frozen=True)
class ObjectView:
    """An added or modified object as the report shows it: size, and a preview when text.

    ``head`` holds the object's first :data:`PREVIEW_BYTES` bytes (fewer when it is shorter).
    """

    key: str
    size: int
    head: bytes = b""


@dataclass(frozen=True)
class ForkChanges:
    """One fork's changes, as read for the report (the first :data:`LISTED` keys per kind)."""

    name: str
    role: str
    source: str
    snapshot: str | None
    added: list[ObjectView] = field(default_factory=list)
    modified: list[ObjectView] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    counts: tuple[int, int, int] = (0, 0, 0)
    error: str | None = None
    # A session's tigris_bucket: its changes are every test's since the session began.
    shared: bool = False


def role_of(fork: Fork, worker: str) -> str:
    """How the report names ``fork``'s part in the test (``worker``: ``gw0``..., ``m``)."""
    if fork.kind == "bucket":
        return "shared tigris_bucket" + ("" if worker == "m" else f" of worker {worker}")
    if fork.kind == "fork":
        return "tigris_fork"
    return "tigris_fork_factory fork"


def read_changes(fork: Fork, role: str) -> ForkChanges:
    """``fork``'s changes since its fork point, with sizes and first bytes of the shown keys.

    A fork that cannot be read (the test deleted it, the endpoint is gone) gives a
    :class:`ForkChanges` with ``error`` set instead of raising.
    """
    base = ForkChanges(fork.name, role, fork.source, fork.snapshot, shared=fork.kind == "bucket")
    try:
        changes = fork.changes()
        shown = changes.added[:LISTED] + changes.modified[:LISTED]
        with ThreadPoolExecutor(max_workers=max(1, min(_READERS, len(shown)))) as pool:
            views = dict(zip(shown, pool.map(lambda key: _view(fork, key), shown), strict=True))
    except Exception as exc:
        detail = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {detail[0][:200]}" if detail else type(exc).__name__
        return replace(base, error=reason)
    return replace(
        base,
        added=[views[key] for key in changes.added[:LISTED]],
        modified=[views[key] for key in changes.modified[:LISTED]],
        deleted=changes.deleted[:LISTED],
        counts=(len(changes.added), len(changes.modified), len(changes.deleted)),
    )


def _view(fork: Fork, key: str) -> ObjectView:
    try:
        answer = fork.client.get_object(
            Bucket=fork.name, Key=key, Range=f"bytes=0-{PREVIEW_BYTES - 1}"
        )
    except Exception as exc:
        # S3 (and Tigris) refuse any range of an empty object.
        if error_code(exc) == "InvalidRange":
            return ObjectView(key, 0)
        raise
    body = answer["Body"]
    try:
        head = body.read()
    finally:
        body.close()
    # "bytes 0-199/1234" for a ranged answer; a server that ignores Range sends it all.
    total = str(answer.get("ContentRange") or "").rpartition("/")[2]
    size = int(total) if total.isdigit() else int(answer.get("ContentLength") or len(head))
    return ObjectView(key, size, bytes(head[:PREVIEW_BYTES]))


def storage_section(
    forks: Iterable[tuple[Fork, str]], mask: Callable[[str], str] | None = None
) -> str:
    """The report section for ``forks`` (each with its role), every line through ``mask``
    (default: :func:`mask_secrets`)."""
    return format_section([read_changes(fork, role) for fork, role in forks], mask or mask_secrets)


def mask_secrets(text: str) -> str:
    """``text`` without credentials: the run's (the plugin's masking, which also hides signed-URL
    signatures) and the AWS secret variables of this process's environment, which a test's code
    may have written to an object even when the run itself uses the emulator's dummy keys."""
    import os

    from .client import redact

    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        value = os.environ.get(name, "")
        if len(value) >= 8:
            text = text.replace(value, "***")
    return redact(text)


def format_section(
    forks: Iterable[ForkChanges], mask: Callable[[str], str] = lambda text: text
) -> str:
    """The section's text; every line passes through ``mask`` (object bytes may hold anything,
    credentials included)."""
    lines: list[str] = []
    for number, fork in enumerate(forks):
        if number:
            lines.append("")
        lines += _fork_lines(fork)
    return "\n".join(mask(line) for line in lines) + "\n" if lines else ""


def _fork_lines(fork: ForkChanges) -> list[str]:
    origin = f"forked from {fork.source}"
    if fork.snapshot:
        origin += f" at snapshot {fork.snapshot}"
    if fork.shared:
        origin += "; changes since the session began, by every test that used it"
    title = f"{fork.role} {fork.name} ({origin})"
    if fork.error is not None:
        return [f"{title}: could not read its changes ({fork.error})"]
    added, modified, deleted = fork.counts
    if not (added or modified or deleted):
        return [f"{title}: no changes"]
    lines = [f"{title}: {added} added, {modified} modified, {deleted} deleted"]
    for kind, views, total in (("added", fork.added, added), ("modified", fork.modified, modified)):
        if not total:
            continue
        lines.append(f"{kind}:")
        for view in views:
            lines += _object_lines(view)
        if total > len(views):
            lines.append(f"  ... and {total - len(views)} more {kind}")
    if deleted:
        lines.append("deleted:")
        lines += [f"  {_printable(key)}" for key in fork.deleted]
        if deleted > len(fork.deleted):
            lines.append(f"  ... and {deleted - len(fork.deleted)} more deleted")
    return lines


def _object_lines(view: ObjectView) -> list[str]:
    from .seeds import human_size

    key = _printable(view.key)
    if not view.size:
        return [f"  {key} (empty)"]
    text = looks_like_text(view.head, complete=view.size <= len(view.head))
    if text is None:
        return [f"  {key} ({human_size(view.size)}, binary)"]
    lines = [f"  {key} ({human_size(view.size)})"]
    shown = text.split("\n")
    if shown[-1] == "":
        shown.pop()  # the text's final newline starts no line of its own
    cut = len(shown) > PREVIEW_LINES
    lines += [f"    | {_printable(line)}" for line in shown[:PREVIEW_LINES]]
    if cut or view.size > len(view.head):
        lines.append(f"    | ... (truncated, {view.size} bytes in all)")
    return lines


def looks_like_text(data: bytes, *, complete: bool) -> str | None:
    """``data`` decoded when it is text (UTF-8 without NUL), else None.

    ``complete=False``: ``data`` is the start of a longer object, so a character cut at the
    end is dropped rather than taken as invalid UTF-8.
    """
    if b"\x00" in data:
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(data, final=complete)
    except UnicodeDecodeError:
        return None


def _printable(text: str) -> str:
    """``text`` with control and format characters escaped: object bytes and keys must not
    drive the terminal (colours, cursor moves, a cleared screen) or fake report lines."""
    return "".join(
        repr(ch)[1:-1] if ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf") else ch
        for ch in text
    )
