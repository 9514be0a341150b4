"""Kept forks outlive the embedded emulator (issue 14 item 2): with ``--tigris-keep`` each kept
fork is written to a seed folder under pytest's base temp, the summary prints the folder, and
``EmulatorProcess(seed=..., seed_dir=folder)`` brings the fork back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_tigris.emulator import EmulatorProcess
from pytest_tigris.emulator.seedfolder import SIDECAR
from pytest_tigris.export import SIDECAR_NAME, export_bucket
from tests.helpers import body, create_snapshot_bucket, force_delete, keys
from tests.inner import Inner, inner_command
from tests.plugin import test_reporting as reporting
from tests.plugin.test_reporting import Standalone, out_dir, seed_dir

# The same fixture as there: the standalone emulator.
standalone = reporting.standalone

SAVED = re.compile(r"^kept fork (\S+) \((.+)\): saved to (\S+) \((.+)\)$", re.M)
NOTE = (
    "note: the embedded emulator stops with this run; `pytest-tigris emulator --seed NAME "
    "--seed-dir FOLDER` serves a saved fork again as bucket NAME"
)

SUITE = """
import json
import os
import pathlib

OUT = pathlib.Path(os.environ["EXPORT_OUT"])


def test_fails_after_writing(tigris_fork):
    s3, name = tigris_fork.client, tigris_fork.name
    (OUT / "fork.json").write_text(json.dumps({"name": name}))
    s3.put_object(Bucket=name, Key="report.csv", Body=b"a,b\\n1,2\\n", ContentType="text/csv",
                  Metadata={"owner": "alice"}, Tagging="team=web&stage=test")
    s3.put_object(Bucket=name, Key="data/blob", Body=bytes(range(256)),
                  ContentType="application/x-custom")
    s3.put_object(Bucket=name, Key="manifest.json", Body=b'{"items": 3}')
    s3.delete_object(Bucket=name, Key="data/hello.txt")
    for unsafe in ("../escape.txt", "a//b.txt", "folder/"):
        s3.put_object(Bucket=name, Key=unsafe, Body=b"unsafe")
    assert False, "fails on purpose"


def test_passes(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="pass.txt", Body=b"passed")
"""

FILES = {
    "report.csv": b"a,b\n1,2\n",
    "data/blob": bytes(range(256)),
    "manifest.json": b'{"items": 3}',
}
DESCRIBED = {
    # text/csv is what the extension says already; the metadata and tags are not.
    "report.csv": {"metadata": {"owner": "alice"}, "tags": {"stage": "test", "team": "web"}},
    "data/blob": {"content_type": "application/x-custom"},
    # Overwritten without a content type: S3's default, not what .json suggests.
    "manifest.json": {"content_type": "binary/octet-stream"},
}
SKIPPED = {
    "../escape.txt": "it has a '.' or '..' path segment",
    "a//b.txt": "it has an empty path segment ('/' at the start or '//')",
    "folder/": "a folder marker (folders come from the files in them)",
}


def files_in(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


def described(s3: Any, bucket: str, key: str) -> tuple[str, dict[str, str], dict[str, str]]:
    head = s3.head_object(Bucket=bucket, Key=key)
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return head["ContentType"], head["Metadata"], {t["Key"]: t["Value"] for t in tags}


@pytest.mark.parametrize("n", [0, 2])
def test_a_kept_fork_is_written_to_a_folder_that_the_emulator_loads_back(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    out = out_dir(pytester)
    monkeypatch.setenv("EXPORT_OUT", str(out))
    pytester.makepyfile(test_export=SUITE)

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), "--tigris-keep=failed", n=n)

    result.assert_outcomes(passed=1, failed=1)
    name = json.loads((out / "fork.json").read_text())["name"]
    # xdist workers have their own base temp inside the run's: the folder is in the run's.
    folder = result.basetemp / "pytest-tigris" / "test_export.py_test_fails_after_writing"
    text = result.text
    assert SAVED.findall(text) == [
        (
            name,
            "tigris_fork of failed test test_export.py::test_fails_after_writing",
            str(folder),
            f"3 objects; 3 skipped, listed in its {SIDECAR}",
        )
    ]
    assert NOTE in text.splitlines()
    assert "aws s3 ls" not in text
    # The seed's manifest.json was overwritten, data/hello.txt deleted.
    assert files_in(folder) == {**FILES, SIDECAR: (folder / SIDECAR).read_bytes()}
    assert json.loads((folder / SIDECAR).read_text()) == {
        "objects": DESCRIBED,
        "skipped": SKIPPED,
    }
    # Nothing else was written: the passing test's fork was deleted, not saved.
    assert [p.name for p in (folder.parent).iterdir()] == [folder.name]

    with EmulatorProcess(seed="x-restored", seed_dir=folder) as emulator:
        from tests.helpers import make_client

        s3 = make_client(emulator.endpoint_url)
        assert sorted(keys(s3, "x-restored")) == sorted(FILES)
        for key, data in FILES.items():
            assert body(s3, "x-restored", key) == data
        assert described(s3, "x-restored", "report.csv") == (
            "text/csv",
            {"owner": "alice"},
            {"team": "web", "stage": "test"},
        )
        assert described(s3, "x-restored", "data/blob") == ("application/x-custom", {}, {})
        assert described(s3, "x-restored", "manifest.json") == ("binary/octet-stream", {}, {})


KEEP_ALWAYS = """
def test_uses_the_bucket(tigris_bucket):
    tigris_bucket.client.put_object(Bucket=tigris_bucket.name, Key="b.txt", Body=b"bucket")


def test_makes_two_forks(tigris_fork, tigris_fork_factory):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="f.txt", Body=b"fork")
    extra = tigris_fork_factory.fork()
    extra.client.put_object(Bucket=extra.name, Key="e.txt", Body=b"extra")
"""


def test_keep_always_writes_every_fork_to_a_folder_of_its_own(
    pytester: pytest.Pytester, inner: Inner
) -> None:
    pytester.makepyfile(test_always=KEEP_ALWAYS)

    result = inner.run("--tigris-seed-dir", seed_dir(pytester), "--tigris-keep=always")

    result.assert_outcomes(passed=2)
    root = result.basetemp / "pytest-tigris"
    saved = {label: Path(folder) for _, label, folder, _ in SAVED.findall(result.text)}
    test = "test_always.py::test_makes_two_forks"
    factory_label = f"tigris_fork_factory fork of test {test}"
    extra = saved[factory_label]
    assert saved == {
        "shared tigris_bucket": root / "tigris_bucket",
        f"tigris_fork of test {test}": root / "test_always.py_test_makes_two_forks",
        factory_label: extra,
    }
    assert extra.name.startswith("test_always.py_test_makes_two_forks-pytest-tigris-seed-")
    assert files_in(root / "tigris_bucket") == {
        **reporting.SEED_DIR_FILES,
        "b.txt": b"bucket",
        SIDECAR: (root / "tigris_bucket" / SIDECAR).read_bytes(),
    }
    assert json.loads((root / "tigris_bucket" / SIDECAR).read_text()) == {
        "objects": {"b.txt": {"content_type": "binary/octet-stream"}}
    }
    assert files_in(saved[f"tigris_fork of test {test}"])["f.txt"] == b"fork"
    assert files_in(extra)["e.txt"] == b"extra"


def test_keep_never_writes_nothing(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORT_OUT", str(out_dir(pytester)))
    pytester.makepyfile(test_export=SUITE)

    result = inner.run("--tigris-seed-dir", seed_dir(pytester))

    result.assert_outcomes(passed=1, failed=1)
    assert not (result.basetemp / "pytest-tigris").exists()
    assert SAVED.findall(result.text) == []


def test_a_remote_endpoint_keeps_its_aws_line_and_writes_no_folder(
    pytester: pytest.Pytester, inner: Inner, standalone: Standalone, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = standalone.make_seed({"data/hello.txt": b"hello", "manifest.json": b"{}"})
    monkeypatch.setenv("EXPORT_OUT", str(out_dir(pytester)))
    pytester.makepyfile(test_export=SUITE)

    result = inner.run(*standalone.args(seed), "--tigris-keep=failed")

    result.assert_outcomes(passed=1, failed=1)
    text = result.text
    (kept,) = standalone.buckets(seed)
    assert f"aws s3 ls s3://{kept} --endpoint-url {standalone.endpoint}" in text
    assert SAVED.findall(text) == []
    assert not (result.basetemp / "pytest-tigris").exists()


FAILS = """
def test_fails(tigris_fork):
    tigris_fork.client.put_object(Bucket=tigris_fork.name, Key="run.txt", Body=b"run")
    assert False, "fails on purpose"
"""


def test_saved_folders_are_retired_with_old_runs_like_tmp_path(
    pytester: pytest.Pytester, inner: Inner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without --basetemp, pytest numbers a base temp per run under the temp root and keeps the
    # last three (tmp_path_retention_count): the saved folders go with them.
    temproot = pytester.mkdir("temproot")
    monkeypatch.setenv("PYTEST_DEBUG_TEMPROOT", str(temproot))
    pytester.makepyfile(test_fails=FAILS)
    seed = seed_dir(pytester)

    # Processes of their own: an in-process run always gets a --basetemp.
    for _ in range(4):
        done = subprocess.run(
            inner_command("--tigris-seed-dir", seed, "--tigris-keep=failed"),
            cwd=pytester.path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr

    (user_root,) = temproot.iterdir()
    runs = sorted(p.name for p in user_root.iterdir() if not p.is_symlink())
    assert runs == ["pytest-1", "pytest-2", "pytest-3"]
    for name in runs:
        folder = user_root / name / "pytest-tigris" / "test_fails.py_test_fails"
        assert files_in(folder)["run.txt"] == b"run"
    assert not (user_root / "pytest-0").exists()


def test_keys_a_folder_cannot_hold_are_skipped_and_listed(
    s3: Any, unique: Any, tmp_path: Path
) -> None:
    bucket = unique("export")
    create_snapshot_bucket(s3, bucket)
    objects = {
        "a": b"file a",
        "a/b": b"under a file",
        "x" * 300: b"name too long for the file system",
        ".git/config": b"skipped by seed folders",
        SIDECAR: b"not the sidecar",
        "ok/deep/key.txt": b"fine",
    }
    try:
        for key, data in objects.items():
            s3.put_object(Bucket=bucket, Key=key, Body=data)

        exported = export_bucket(s3, bucket, tmp_path)
    finally:
        force_delete(s3, bucket)

    assert exported.objects == 2
    assert files_in(tmp_path) == {
        "a": b"file a",
        "ok/deep/key.txt": b"fine",
        SIDECAR: (tmp_path / SIDECAR).read_bytes(),
    }
    assert exported.skipped == {
        "a/b": "'a' is a file, so it cannot also be a folder",
        "x" * 300: "cannot be written as a file: File name too long",
        ".git/config": "seed folders skip .git/ and __pycache__/ folders",
        SIDECAR: f"{SIDECAR} at the top is the seed folder's own sidecar",
    }
    assert json.loads((tmp_path / SIDECAR).read_text()) == {
        # Put without a content type: S3's default, not the one .txt suggests.
        "objects": {"ok/deep/key.txt": {"content_type": "binary/octet-stream"}},
        "skipped": exported.skipped,
    }
    assert SIDECAR_NAME == SIDECAR
    assert os.listdir(tmp_path / "ok" / "deep") == ["key.txt"]
