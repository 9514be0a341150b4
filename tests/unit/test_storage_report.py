"""The "Captured tigris storage" text (layout, caps, previews, escaping, masking), kept-fork
folder names and the ``--tigris-report`` option: no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tigris.config import TigrisConfig
from pytest_tigris.exceptions import TigrisConfigError
from pytest_tigris.export import folder_name
from pytest_tigris.storage_report import (
    LISTED,
    PREVIEW_BYTES,
    ForkChanges,
    ObjectView,
    format_section,
    looks_like_text,
)

TITLE = "tigris_fork seed-r1-m-0 (forked from seed at snapshot 1700000000000000000)"


def changes(**kwargs: object) -> ForkChanges:
    values: dict[str, object] = {
        "name": "seed-r1-m-0",
        "role": "tigris_fork",
        "source": "seed",
        "snapshot": "1700000000000000000",
    }
    values.update(kwargs)
    return ForkChanges(**values)  # type: ignore[arg-type]


def test_added_modified_and_deleted_keys_each_under_their_kind() -> None:
    fork = changes(
        added=[ObjectView("new.txt", 12, b"hello world\n"), ObjectView("blob.bin", 3, b"\x00ab")],
        modified=[ObjectView("manifest.json", 13, b'{"items": 3}\n')],
        deleted=["images/cat.png"],
        counts=(2, 1, 1),
    )

    assert format_section([fork]).splitlines() == [
        f"{TITLE}: 2 added, 1 modified, 1 deleted",
        "added:",
        "  new.txt (12 B)",
        "    | hello world",
        "  blob.bin (3 B, binary)",
        "modified:",
        "  manifest.json (13 B)",
        '    | {"items": 3}',
        "deleted:",
        "  images/cat.png",
    ]


def test_no_changes_is_one_line_and_no_forks_is_no_section() -> None:
    assert format_section([changes()]) == f"{TITLE}: no changes\n"
    assert format_section([]) == ""


def test_keys_beyond_the_cap_are_counted() -> None:
    shown = [ObjectView(f"k{i:02}", 0) for i in range(LISTED)]
    fork = changes(
        added=shown, deleted=[f"d{i:02}" for i in range(LISTED)], counts=(LISTED + 5, 0, 30)
    )

    lines = format_section([fork]).splitlines()

    assert lines[0] == f"{TITLE}: {LISTED + 5} added, 0 modified, 30 deleted"
    assert lines[1 : LISTED + 3] == [
        "added:",
        *(f"  k{i:02} (empty)" for i in range(LISTED)),
        "  ... and 5 more added",
    ]
    assert lines[LISTED + 3 :] == [
        "deleted:",
        *(f"  d{i:02}" for i in range(LISTED)),
        f"  ... and {30 - LISTED} more deleted",
    ]


def test_a_long_text_object_shows_its_first_bytes_and_says_it_was_cut() -> None:
    head = (b"x" * 50 + b"\n") * 4  # 204 bytes: more than the preview holds
    fork = changes(
        added=[ObjectView("log.txt", 5000, head[:PREVIEW_BYTES])],
        counts=(1, 0, 0),
    )

    assert format_section([fork]).splitlines()[2:] == [
        "  log.txt (4.9 KiB)",
        *(["    | " + "x" * 50] * 3),
        "    | " + "x" * 47,
        "    | ... (truncated, 5000 bytes in all)",
    ]


def test_a_preview_stops_after_ten_lines() -> None:
    text = b"".join(b"%d\n" % i for i in range(15))
    fork = changes(modified=[ObjectView("lines.txt", len(text), text)], counts=(0, 1, 0))

    assert format_section([fork]).splitlines()[2:] == [
        f"  lines.txt ({len(text)} B)",
        *(f"    | {i}" for i in range(10)),
        f"    | ... (truncated, {len(text)} bytes in all)",
    ]


def test_control_characters_in_keys_and_bytes_are_escaped() -> None:
    fork = changes(
        added=[ObjectView("a\x1b[2Jb", 9, b"\x1b[31mred\r")],
        deleted=["bidi\u202etxt.exe"],
        counts=(1, 0, 1),
    )

    assert format_section([fork]).splitlines()[2:] == [
        "  a\\x1b[2Jb (9 B)",
        "    | \\x1b[31mred\\r",
        "deleted:",
        "  bidi\\u202etxt.exe",
    ]


def test_every_line_goes_through_the_mask() -> None:
    fork = changes(
        added=[ObjectView("creds.txt", 22, b"secret=tsec_abc123XYZ\n")], counts=(1, 0, 0)
    )

    text = format_section([fork], mask=lambda line: line.replace("tsec_abc123XYZ", "***"))

    assert "    | secret=***" in text.splitlines()
    assert "tsec_abc123XYZ" not in text


def test_the_shared_bucket_and_an_unreadable_fork_say_so() -> None:
    shared = changes(
        role="shared tigris_bucket of worker gw1",
        name="seed-r1-gw1-0",
        shared=True,
        deleted=["a"],
        counts=(0, 0, 1),
    )
    broken = changes(role="tigris_fork_factory fork", error="ClientError: NoSuchBucket")

    assert format_section([shared, broken]).splitlines() == [
        "shared tigris_bucket of worker gw1 seed-r1-gw1-0 (forked from seed at snapshot "
        "1700000000000000000; changes since the session began, by every test that used it): "
        "0 added, 0 modified, 1 deleted",
        "deleted:",
        "  a",
        "",
        "tigris_fork_factory fork seed-r1-m-0 (forked from seed at snapshot "
        "1700000000000000000): could not read its changes (ClientError: NoSuchBucket)",
    ]


@pytest.mark.parametrize(
    ("data", "complete", "expected"),
    [
        (b"plain", True, "plain"),
        ("café".encode(), True, "café"),
        (b"nul\x00inside", True, None),
        (b"\xff\xfe", True, None),
        # The start of a longer object may end inside a character: that is still text.
        ("é".encode()[:1], False, ""),
        ("é".encode()[:1], True, None),
    ],
)
def test_text_is_utf8_without_nul(data: bytes, complete: bool, expected: str | None) -> None:
    assert looks_like_text(data, complete=complete) == expected


@pytest.mark.parametrize(
    ("test_id", "expected"),
    [
        ("tests/test_a.py::test_b[x/y]", "tests_test_a.py_test_b_x_y"),
        ("test_a.py::TestC::test_d", "test_a.py_TestC_test_d"),
        ("../..", "fork"),
        ("tigris_bucket-gw0", "tigris_bucket-gw0"),
    ],
)
def test_folder_names_are_one_safe_path_segment(test_id: str, expected: str) -> None:
    assert folder_name(test_id) == expected


def test_long_test_ids_keep_a_hash_of_the_whole() -> None:
    first, second = folder_name("t.py::test_" + "a" * 200), folder_name("t.py::test_" + "a" * 201)

    assert len(first) == len(second) == 100
    assert first != second
    assert first[:80] == second[:80]


# -- the option --------------------------------------------------------------------------
def load(tmp_path: Path, **sources: dict[str, str]) -> TigrisConfig:
    return TigrisConfig.load(
        options=sources.get("options", {}),
        ini=sources.get("ini", {}),
        environ=sources.get("environ", {}),
        rootdir=tmp_path,
        cwd=tmp_path,
    )


def test_report_is_on_by_default_and_each_source_turns_it_off(tmp_path: Path) -> None:
    assert load(tmp_path).report == "changes"
    assert load(tmp_path, options={"report": "off"}).report == "off"
    assert load(tmp_path, ini={"report": "OFF"}).report == "off"
    assert load(tmp_path, environ={"PYTEST_TIGRIS_REPORT": "off"}).report == "off"
    # The command line wins over the ini file, which wins over the environment.
    both = load(tmp_path, options={"report": "changes"}, ini={"report": "off"})
    assert both.report == "changes"


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ({"options": {"report": "full"}}, "--tigris-report='full' is not valid: use one of "),
        ({"ini": {"report": "yes"}}, "ini tigris_report='yes' is not valid: use one of "),
        ({"environ": {"PYTEST_TIGRIS_REPORT": "no"}}, "PYTEST_TIGRIS_REPORT='no' is not valid"),
    ],
)
def test_a_bad_report_value_is_one_line_naming_where_it_came_from(
    tmp_path: Path, sources: dict[str, dict[str, str]], message: str
) -> None:
    with pytest.raises(TigrisConfigError) as exc:
        load(tmp_path, **sources)

    assert str(exc.value).startswith(message)
    assert str(exc.value).endswith("off, changes")
    assert "\n" not in str(exc.value)
