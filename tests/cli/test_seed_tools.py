"""``pytest-tigris seed push`` / ``seed pull``, run as commands against a real emulator process.

The commands run in this process (``main()``, with the environment, output and exit code a
process of their own would have), except where a terminal is needed."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pytest_tigris.cli import main
from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.emulator.seedfolder import read_seed_folder
from pytest_tigris.janitor import ForkJanitor
from pytest_tigris.seeds import SeedToolError, push
from tests.helpers import call_with, create_snapshot_bucket, make_client
from tests.inner import process_state_kept

Objects = dict[str, tuple[bytes, str, dict[str, str], dict[str, str]]]

FILES = {
    "manifest.json": b'{"images": ["cat.png"]}',
    "images/cat.png": bytes(range(256)) * 40,
    "images/nested/deep/raw.bin": bytes(reversed(range(256))) + b"\x00\r\n\xff",
    "donn\u00e9es/\u00e9t\u00e9 \u2603.txt": "\u00e9t\u00e9 \u2603\n".encode(),
    "empty.txt": b"",
    "notes.unknownext": b"no type from this extension",
}
SIDECAR = {
    "objects": {
        "manifest.json": {
            "content_type": "application/vnd.pets+json",
            "metadata": {"owner": "alice", "stage": "seed"},
            "tags": {"team": "web", "tier": "gold"},
        },
        "images/cat.png": {"tags": {"animal": "cat"}},
    }
}
VERSION = re.compile(r"snapshot (\d{19}) \((seed-push-\d{8}T\d{6}Z(?:-\d+)?)\): pin it with ")


def write_folder(
    root: Path, files: dict[str, bytes], sidecar: dict[str, Any] | None = None
) -> Path:
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    if sidecar is not None:
        (root / ".tigris-seed.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return root


def run_seed(env: dict[str, str], *argv: str, stderr: int | None = None) -> Any:
    """``pytest-tigris seed ARGV`` with exactly ``env`` as its environment: its exit code and
    output. ``stderr``: a file descriptor (a terminal) for a process of its own to write to."""
    if stderr is not None:
        return subprocess.run(
            [sys.executable, "-m", "pytest_tigris", "seed", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=120,
        )
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, process_state_kept():
        for name in list(os.environ):
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["seed", *argv])
            except SystemExit as exc:  # usage errors
                code = exc.code
    command = ["pytest-tigris", "seed", *argv]
    return subprocess.CompletedProcess(command, code, out.getvalue(), err.getvalue())


def state(s3: Any, bucket: str, headers: dict[str, str] | None = None) -> Objects:
    """Every object of ``bucket``: bytes, content type, user metadata and tags."""
    extra = headers or {}
    out: Objects = {}
    listing = call_with(s3, extra, "list_objects_v2", Bucket=bucket)
    assert not listing["IsTruncated"]
    for entry in listing.get("Contents", []):
        key = entry["Key"]
        got = call_with(s3, extra, "get_object", Bucket=bucket, Key=key)
        tags = call_with(s3, extra, "get_object_tagging", Bucket=bucket, Key=key)["TagSet"]
        out[key] = (
            got["Body"].read(),
            got["ContentType"],
            got["Metadata"],
            {t["Key"]: t["Value"] for t in tags},
        )
    return out


def folder_state(folder: Path) -> Objects:
    """What the emulator (and ``seed push``) would make of ``folder``."""
    return {
        o.key: (o.path.read_bytes(), o.content_type, o.metadata, o.tags)
        for o in read_seed_folder(folder)
    }


def files_in(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def env(emulator: EmulatorProcess) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PYTEST_TIGRIS_")) and k != "TIGRIS_ENV"
    }
    return {
        **clean,
        "AWS_ENDPOINT_URL_S3": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
    }


@dataclass
class RoundTrip:
    source: Path
    pulled: Path
    bucket: str
    push: Any
    pull: Any


@pytest.fixture(scope="module")
def round_trip(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    source = write_folder(tmp_path_factory.mktemp("source"), FILES, SIDECAR)
    # What seed folders skip is not uploaded either.
    write_folder(source, {".git/config": b"[core]", ".DS_Store": b"\x00", "x/__pycache__/m": b""})
    pulled = tmp_path_factory.mktemp("work") / "pulled"
    pushed = run_seed(env, "push", str(source), "round-trip-seed")
    downloaded = run_seed(env, "pull", "round-trip-seed", str(pulled))
    return RoundTrip(source, pulled, "round-trip-seed", pushed, downloaded)


def test_push_uploads_what_the_emulator_would_load(round_trip: RoundTrip, s3: Any) -> None:
    result = round_trip.push
    assert (result.returncode, result.stderr) == (0, "")  # no terminal: no progress display
    first, second = result.stdout.splitlines()
    size = sum(len(data) for data in FILES.values())
    assert first == (
        f"uploaded 6 objects ({size / 1024:.1f} KiB) from {round_trip.source} to "
        "round-trip-seed (a new snapshot-enabled bucket)"
    )
    match = VERSION.match(second)
    assert match is not None
    assert second.endswith(f"--tigris-seed=round-trip-seed --tigris-seed-snapshot={match.group(1)}")
    head = s3.head_bucket(Bucket="round-trip-seed")["ResponseMetadata"]["HTTPHeaders"]
    assert head["x-tigris-enable-snapshot"] == "true"
    assert state(s3, "round-trip-seed") == folder_state(round_trip.source)
    assert state(s3, "round-trip-seed")["manifest.json"][1:] == (
        "application/vnd.pets+json",
        {"owner": "alice", "stage": "seed"},
        {"team": "web", "tier": "gold"},
    )
    listed = call_with(s3, {"X-Tigris-Snapshot": "round-trip-seed"}, "list_buckets")["Buckets"]
    assert [b["Name"] for b in listed] == [f"{match.group(1)}; name={match.group(2)}"]


def test_pull_round_trips_the_folder_byte_for_byte(
    round_trip: RoundTrip, env: dict[str, str], s3: Any, unique: Callable[[str], str]
) -> None:
    result = round_trip.pull
    assert (result.returncode, result.stderr) == (0, "")
    size = sum(len(data) for data in FILES.values())
    assert result.stdout == (
        f"downloaded 6 objects ({size / 1024:.1f} KiB) from round-trip-seed to "
        f"{round_trip.pulled}: run offline with --tigris-backend=emulator "
        f"--tigris-seed-dir={round_trip.pulled} --tigris-seed=round-trip-seed\n"
    )
    pulled = files_in(round_trip.pulled)
    sidecar = json.loads(pulled.pop(".tigris-seed.json"))
    assert pulled == FILES
    # Only what the extension does not say: the guessed image/png of cat.png is left out.
    assert sidecar == SIDECAR
    assert folder_state(round_trip.pulled) == folder_state(round_trip.source)

    again = unique("again")
    assert run_seed(env, "push", str(round_trip.pulled), again).returncode == 0
    assert state(s3, again) == state(s3, "round-trip-seed")


def test_pulled_folder_loads_into_the_emulator_as_the_bucket(
    round_trip: RoundTrip, s3: Any
) -> None:
    with EmulatorProcess(seed="loaded-seed", seed_dir=round_trip.pulled) as other:
        loaded = state(make_client(other.endpoint_url), "loaded-seed")
    assert loaded == state(s3, "round-trip-seed")


def test_update_keeps_other_keys_and_snapshots_keep_the_past(
    env: dict[str, str], s3: Any, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    bucket = unique("upd")
    first = write_folder(tmp_path / "v1", {"a.txt": b"a1", "c.txt": b"c1"})
    second = write_folder(
        tmp_path / "v2",
        {"a.txt": b"a2", "b/b.txt": b"b2"},
        {"objects": {"a.txt": {"metadata": {"rev": "2"}}}},
    )
    pushed = run_seed(env, "push", str(first), bucket)
    assert pushed.returncode == 0
    match = VERSION.search(pushed.stdout)
    assert match is not None
    v1, v1_name = match.groups()
    updated = run_seed(env, "push", str(second), bucket, "--update")
    assert (updated.returncode, updated.stderr) == (0, "")
    assert updated.stdout.splitlines()[0] == (
        f"uploaded 2 objects (4 B) from {second} to {bucket} (updated: other keys kept)"
    )
    match = VERSION.search(updated.stdout)
    assert match is not None
    v2, v2_name = match.groups()
    assert int(v2) > int(v1)
    # Two pushes in one second still get two names, so a name picks one snapshot.
    assert v2_name != v1_name
    assert {k: v[0] for k, v in state(s3, bucket).items()} == {
        "a.txt": b"a2",
        "b/b.txt": b"b2",
        "c.txt": b"c1",
    }
    assert state(s3, bucket)["a.txt"][2] == {"rev": "2"}
    s3.delete_object(Bucket=bucket, Key="c.txt")

    for wanted in (v1, v1_name):
        folder = tmp_path / f"at-{wanted}"
        pulled = run_seed(env, "pull", bucket, str(folder), "--snapshot", wanted)
        assert (pulled.returncode, pulled.stderr) == (0, "")
        assert f"from {bucket} at snapshot {v1} to {folder}" in pulled.stdout
        assert files_in(folder) == {"a.txt": b"a1", "c.txt": b"c1"}
    latest = tmp_path / "latest"
    assert run_seed(env, "pull", bucket, str(latest)).returncode == 0
    assert files_in(latest) == {
        "a.txt": b"a2",
        "b/b.txt": b"b2",
        ".tigris-seed.json": b'{\n  "objects": {\n    "a.txt": {\n      "metadata": {\n'
        b'        "rev": "2"\n      }\n    }\n  }\n}\n',
    }


def test_printed_snapshot_version_forks(
    env: dict[str, str], s3: Any, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    bucket, fork = unique("src"), unique("fork")
    pushed = run_seed(env, "push", str(write_folder(tmp_path / "v1", {"k": b"old"})), bucket)
    match = VERSION.search(pushed.stdout)
    assert match is not None
    s3.put_object(Bucket=bucket, Key="k", Body=b"new")
    s3.put_object(Bucket=bucket, Key="later", Body=b"x")
    call_with(
        s3,
        {
            "X-Tigris-Fork-Source-Bucket": bucket,
            "X-Tigris-Fork-Source-Bucket-Snapshot": match.group(1),
        },
        "create_bucket",
        Bucket=fork,
    )
    assert {k: v[0] for k, v in state(s3, fork).items()} == {"k": b"old"}


def test_push_refuses_buckets_it_did_not_create(
    env: dict[str, str], s3: Any, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    folder = write_folder(tmp_path / "seed", {"new.txt": b"new"})
    full, empty, plain = unique("full"), unique("empty"), unique("plain")
    create_snapshot_bucket(s3, full)
    s3.put_object(Bucket=full, Key="theirs", Body=b"keep")
    create_snapshot_bucket(s3, empty)
    s3.create_bucket(Bucket=plain)

    refused = run_seed(env, "push", str(folder), full)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"pytest-tigris seed push: bucket '{full}' already exists and holds objects: pass "
        "--update to upload into it (nothing is deleted: keys not in the folder stay), or push "
        "to a new bucket\n"
    )
    refused = run_seed(env, "push", str(folder), empty)
    assert refused.returncode == 1
    assert f"bucket '{empty}' already exists and is empty: pass --update" in refused.stderr
    refused = run_seed(env, "push", str(folder), plain, "--update")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"pytest-tigris seed push: bucket '{plain}' exists and is not snapshot-enabled, so it "
        "cannot be forked: enable snapshots on it"
    )
    assert len(refused.stderr.splitlines()) == 1
    assert state(s3, full) == {"theirs": (b"keep", "binary/octet-stream", {}, {})}
    assert state(s3, empty) == {}
    assert state(s3, plain) == {}
    assert call_with(s3, {"X-Tigris-Snapshot": full}, "list_buckets")["Buckets"] == []


def test_pull_skips_markers_and_refuses_unsafe_keys(
    env: dict[str, str], s3: Any, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    bucket = unique("odd")
    create_snapshot_bucket(s3, bucket)
    for key in ("photos/", "ok.txt", ".DS_Store", "x/.git/config", ".tigris-seed.json"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    folder = tmp_path / "odd"
    pulled = run_seed(env, "pull", bucket, str(folder))
    assert pulled.returncode == 0
    assert pulled.stderr.splitlines() == [
        "pytest-tigris seed pull: note: skipped '.DS_Store': seed folders skip .DS_Store files",
        "pytest-tigris seed pull: note: skipped '.tigris-seed.json': .tigris-seed.json at the "
        "top is the seed folder's own sidecar",
        "pytest-tigris seed pull: note: skipped 'photos/': a folder marker (folders come from "
        "the files in them)",
        "pytest-tigris seed pull: note: skipped 'x/.git/config': seed folders skip .git/ and "
        "__pycache__/ folders",
    ]
    assert "downloaded 1 object (1 B, 4 skipped)" in pulled.stdout
    # boto3 sends no Content-Type, so S3's default is kept: the extension would guess text/plain.
    assert files_in(folder) == {
        "ok.txt": b"1",
        ".tigris-seed.json": b'{\n  "objects": {\n    "ok.txt": {\n      "content_type": '
        b'"binary/octet-stream"\n    }\n  }\n}\n',
    }

    for key, why in [
        ("a//b", "it has an empty path segment ('/' at the start or '//')"),
        ("/abs", "it has an empty path segment ('/' at the start or '//')"),
        ("../escape", "it has a '.' or '..' path segment"),
        ("x/./y", "it has a '.' or '..' path segment"),
    ]:
        bad = unique("bad")
        create_snapshot_bucket(s3, bad)
        s3.put_object(Bucket=bad, Key="fine.txt", Body=b"1")
        s3.put_object(Bucket=bad, Key=key, Body=b"1")
        target = tmp_path / bad
        refused = run_seed(env, "pull", bad, str(target))
        assert (refused.returncode, refused.stdout) == (1, "")
        assert refused.stderr == (
            f"pytest-tigris seed pull: key {key!r} cannot be a file inside the folder: {why}; "
            "nothing was written (rename the object, or pull a snapshot without it)\n"
        )
        assert not target.exists()
        assert not (tmp_path / "escape").exists()

    clash = unique("clash")
    create_snapshot_bucket(s3, clash)
    s3.put_object(Bucket=clash, Key="a", Body=b"1")
    s3.put_object(Bucket=clash, Key="a/b", Body=b"2")
    refused = run_seed(env, "pull", clash, str(tmp_path / clash))
    assert refused.returncode == 1
    assert refused.stderr == (
        "pytest-tigris seed pull: keys 'a' and 'a/b' cannot both be files (the first would "
        "have to be a folder); nothing was written: rename one of them\n"
    )


def test_pull_never_writes_outside_the_folder(
    env: dict[str, str], s3: Any, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    bucket = unique("links")
    create_snapshot_bucket(s3, bucket)
    s3.put_object(Bucket=bucket, Key="link/file", Body=b"1")
    s3.put_object(Bucket=bucket, Key="top", Body=b"mine")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "top").write_bytes(b"theirs")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "link").symlink_to(outside)
    (folder / "top").symlink_to(outside / "top")
    refused = run_seed(env, "pull", bucket, str(folder), "--force")
    assert refused.returncode == 1
    assert refused.stderr == (
        f"pytest-tigris seed pull: cannot write 'link/file': {folder / 'link'} is a symbolic "
        "link, which could lead outside the folder: remove it or pull into a new folder\n"
    )
    assert files_in(outside) == {"top": b"theirs"}
    # The link named like a key is replaced by the file, never written through.
    s3.delete_object(Bucket=bucket, Key="link/file")
    assert run_seed(env, "pull", bucket, str(folder), "--force").returncode == 0
    assert (folder / "top").read_bytes() == b"mine"
    assert not (folder / "top").is_symlink()
    assert files_in(outside) == {"top": b"theirs"}


def test_pull_force_overwrites_and_keeps_other_files(
    env: dict[str, str], s3: Any, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    bucket = unique("force")
    source = write_folder(tmp_path / "s", {"a.txt": b"new"})
    assert run_seed(env, "push", str(source), bucket).returncode == 0
    folder = write_folder(
        tmp_path / "d",
        {"a.txt": b"old", "mine.bin": b"kept"},
        {"objects": {"mine.bin": {"tags": {"local": "yes"}}}},
    )
    refused = run_seed(env, "pull", bucket, str(folder))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"pytest-tigris: error: DIR {folder}: is not empty: pass --force to write into it "
        "(files are overwritten, none are deleted), or give a new folder\n"
    )
    assert files_in(folder)["a.txt"] == b"old"
    assert run_seed(env, "pull", bucket, str(folder), "--force").returncode == 0
    files = files_in(folder)
    assert (files["a.txt"], files["mine.bin"]) == (b"new", b"kept")
    sidecar = json.loads(files[".tigris-seed.json"])
    assert sidecar == {"objects": {"mine.bin": {"tags": {"local": "yes"}}}}


USAGE = "pytest-tigris: error: "


@pytest.mark.parametrize(
    ("make", "argv", "line"),
    [
        (
            lambda tmp: None,
            ["push", "{tmp}/missing", "good-name"],
            USAGE + "DIR {tmp}/missing: no such folder (give the seed folder to upload)",
        ),
        (
            lambda tmp: (tmp / "file").write_bytes(b""),
            ["push", "{tmp}/file", "good-name"],
            USAGE + "DIR {tmp}/file: not a folder (give the seed folder to upload)",
        ),
        (
            lambda tmp: (tmp / "d").mkdir() or (tmp / "d" / "gone").symlink_to(tmp / "nowhere"),
            ["push", "{tmp}/d", "good-name"],
            USAGE + "seed folder {tmp}/d: gone is a symbolic link to nothing: fix or remove it",
        ),
        (
            lambda tmp: (tmp / "d").mkdir() or (tmp / "d" / ".tigris-seed.json").write_text("{"),
            ["push", "{tmp}/d", "good-name"],
            USAGE + "seed folder {tmp}/d: .tigris-seed.json is not valid JSON (Expecting "
            "property name enclosed in double quotes: line 1 column 2 (char 1)): fix it or "
            "remove it",
        ),
        (
            lambda tmp: (tmp / "d").mkdir(),
            ["push", "{tmp}/d", "Bad_Name"],
            USAGE + "BUCKET 'Bad_Name' is not a valid bucket name: use 3-63 characters a-z, "
            "0-9, '.' and '-', starting and ending with a letter or digit",
        ),
        (
            lambda tmp: (tmp / "file").write_bytes(b""),
            ["pull", "good-name", "{tmp}/file"],
            USAGE + "DIR {tmp}/file: not a folder: give a new or empty folder",
        ),
        (
            lambda tmp: None,
            ["push"],
            "pytest-tigris seed push: error: the following arguments are required: DIR, BUCKET",
        ),
        (
            lambda tmp: None,
            ["pull", "good-name"],
            "pytest-tigris seed pull: error: the following arguments are required: DIR",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    env: dict[str, str],
    tmp_path: Path,
    make: Callable[[Path], object],
    argv: list[str],
    line: str,
) -> None:
    make(tmp_path)
    result = run_seed(env, *[a.format(tmp=tmp_path) for a in argv])
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == line.format(tmp=tmp_path) + "\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_one_line_and_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "d", {"secret.txt": b"x"})
    (folder / "secret.txt").chmod(0)
    result = run_seed(env, "push", str(folder), "good-name")
    assert result.returncode == 2
    assert result.stderr == (
        f"pytest-tigris: error: DIR {folder}: cannot read {folder / 'secret.txt'}: permission "
        "denied (give the seed folder to upload)\n"
    )


def test_endpoint_problems_are_one_line_and_exit_1(
    env: dict[str, str], tmp_path: Path, unique: Callable[[str], str]
) -> None:
    folder = write_folder(tmp_path / "d", {"a": b"1"})
    gone = run_seed(
        {**env, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}, "push", str(folder), "x-seed"
    )
    assert (gone.returncode, gone.stdout) == (1, "")
    assert gone.stderr == (
        "pytest-tigris seed push: Connection refused by http://127.0.0.1:9: check "
        "--endpoint / AWS_ENDPOINT_URL_S3 and that the server is running\n"
    )
    no_endpoint = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL_S3"}
    usage = run_seed(no_endpoint, "pull", "x-seed", str(tmp_path / "p"))
    assert usage.returncode == 2
    assert usage.stderr == (
        "pytest-tigris: error: this command needs an endpoint: set --endpoint or "
        "AWS_ENDPOINT_URL_S3 (Tigris: https://t3.storage.dev)\n"
    )
    missing = unique("missing")
    result = run_seed(env, "pull", missing, str(tmp_path / "p"))
    assert result.returncode == 1
    assert result.stderr == (
        f"pytest-tigris seed pull: bucket '{missing}' does not exist at "
        f"{env['AWS_ENDPOINT_URL_S3']}: check the name\n"
    )
    assert not (tmp_path / "p").exists()


def test_wrong_keys_say_access_denied(tmp_path: Path, env: dict[str, str]) -> None:
    folder = write_folder(tmp_path / "d", {"a": b"1"})
    with EmulatorProcess(access_key="tid_right", secret_key="tsec_right") as keyed:
        wrong = {
            **env,
            "AWS_ENDPOINT_URL_S3": keyed.endpoint_url,
            "AWS_ACCESS_KEY_ID": "tid_right",
            "AWS_SECRET_ACCESS_KEY": "tsec_wrong",
        }
        pushed = run_seed(wrong, "push", str(folder), "keyed-seed")
        pulled = run_seed(wrong, "pull", "keyed-seed", str(tmp_path / "p"))
    for result, command in ((pushed, "push"), (pulled, "pull")):
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == (
            f"pytest-tigris seed {command}: Access Denied by {keyed.endpoint_url} "
            "(SignatureDoesNotMatch): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (Tigris "
            "keys look like tid_... / tsec_...)\n"
        )
        assert "tsec_wrong" not in result.stderr


def read_terminal(fd: int) -> str:
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode()


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    reader, writer = pty.openpty()
    yield reader, writer
    os.close(reader)


def test_progress_is_shown_on_a_terminal(
    env: dict[str, str],
    tmp_path: Path,
    unique: Callable[[str], str],
    terminal: tuple[int, int],
) -> None:
    reader, writer = terminal
    files = {f"f{n:03}.txt": b"x" * 1024 for n in range(40)}
    bucket = unique("tty")
    try:
        pushed = run_seed(
            env, "push", str(write_folder(tmp_path / "s", files)), bucket, stderr=writer
        )
        pulled = run_seed(env, "pull", bucket, str(tmp_path / "p"), stderr=writer)
    finally:
        os.close(writer)
    shown = read_terminal(reader)
    assert (pushed.returncode, pulled.returncode) == (0, 0)
    assert "\ruploaded 40/40 objects, 40.0 KiB of 40.0 KiB\x1b[K" in shown
    assert "\rdownloaded 40/40 objects, 40.0 KiB of 40.0 KiB\x1b[K" in shown
    # The status line is wiped before the summary, which goes to stdout.
    assert shown.endswith("\r\x1b[K")
    assert pushed.stdout.startswith("uploaded 40 objects (40.0 KiB)")


class FailingClient:
    """A data client whose upload of one key fails the way a server error does."""

    def __init__(self, real: Any, bad: str) -> None:
        self.real, self.bad, self.uploaded = real, bad, 0

    def upload_file(self, path: str, bucket: str, key: str, **kwargs: Any) -> None:
        if key == self.bad:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "PutObject")
        self.real.upload_file(path, bucket, key, **kwargs)
        self.uploaded += 1


def test_failed_upload_stops_the_push_before_the_snapshot(
    emulator: EmulatorProcess, s3: Any, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    url = emulator.endpoint_url
    janitor = ForkJanitor(lambda: make_client(url), url)
    folder = write_folder(tmp_path / "s", {f"k{n:03}": b"x" for n in range(200)})
    bucket = unique("fail")
    client = FailingClient(make_client(url), "k005")
    with pytest.raises(SeedToolError) as failed:
        push(janitor, client, read_seed_folder(folder), bucket, workers=2)
    assert str(failed.value) == (
        "could not upload 'k005' (once fixed, push again with --update): An error occurred "
        "(InternalError) when calling the PutObject operation: boom"
    )
    assert client.uploaded < 199  # queued uploads were dropped
    assert call_with(s3, {"X-Tigris-Snapshot": bucket}, "list_buckets")["Buckets"] == []
    done = push(janitor, make_client(url), read_seed_folder(folder), bucket, update=True)
    assert (done.created, done.objects) == (False, 200)
    assert len(state(s3, bucket)) == 200
