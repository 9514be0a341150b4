"""The seed folder is checked as the emulator will read it, before the emulator starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tigris.backend import _check_readable
from pytest_tigris.exceptions import TigrisConfigError


def test_a_broken_link_is_named_before_the_emulator_starts(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")

    with pytest.raises(TigrisConfigError) as error:
        _check_readable(tmp_path)

    assert str(error.value) == (
        f"--tigris-seed-dir: seed folder {tmp_path}: gone.txt is a symbolic link to nothing: "
        "fix or remove it"
    )


def test_a_link_loop_is_named(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "again").symlink_to(tmp_path)

    with pytest.raises(TigrisConfigError, match="data/again links back to a folder it is inside"):
        _check_readable(tmp_path)


def test_what_the_emulator_skips_is_not_checked(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "index.lock").symlink_to(tmp_path / "nowhere")

    _check_readable(tmp_path)  # the emulator never reads .git: nothing to say


def test_files_behind_a_linked_folder_are_checked(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "broken.json").symlink_to(tmp_path / "missing.json")
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "shared").symlink_to(outside)

    with pytest.raises(TigrisConfigError, match=r"shared/deep/broken\.json is a symbolic link"):
        _check_readable(seed)
