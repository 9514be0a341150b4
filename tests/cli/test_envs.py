"""Named fork environments: ``pytest-tigris env`` and the Python helpers, on a real emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_tigris
from pytest_tigris.cli import main
from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import keys, make_client

SEED = "myproject-bucket-main"
FILES = {"manifest.json": b"{}", "img/a.png": b"png-a"}


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A project folder with pyproject settings, and an emulator holding its seed."""
    seed_dir = tmp_path_factory.mktemp("envseed")
    for key, data in FILES.items():
        (seed_dir / key).parent.mkdir(parents=True, exist_ok=True)
        (seed_dir / key).write_bytes(data)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest-tigris]\nproject = "myproject"\nseed = "myproject-bucket-main"\n'
    )
    monkeypatch.chdir(tmp_path)
    for name in ("TIGRIS_ENV", "PYTEST_TIGRIS_PROJECT", "PYTEST_TIGRIS_SEED", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PYTEST_TIGRIS_PROTECTED_ENVS", raising=False)
    with EmulatorProcess(seed=SEED, seed_dir=seed_dir) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", emulator.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        yield emulator.endpoint_url


def test_create_use_list_delete(project: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env", "create", "alice"]) == 0
    out = capsys.readouterr().out
    assert "created myproject-bucket-alice (fork of myproject-bucket-main)" in out
    assert "export TIGRIS_BUCKET=myproject-bucket-alice" in out
    assert f"export AWS_ENDPOINT_URL_S3={project}" in out

    # The app finds its storage through the helpers.
    assert pytest_tigris.get_bucket_name(env="alice") == "myproject-bucket-alice"
    client = pytest_tigris.get_s3_client("myproject", "alice")
    bucket = pytest_tigris.get_bucket_name("myproject", "alice")
    assert sorted(keys(client, bucket)) == sorted(FILES)
    client.put_object(Bucket=bucket, Key="alice-only", Body=b"x")
    assert "alice-only" not in keys(make_client(project), SEED)

    assert main(["env", "switch", "alice"]) == 0
    assert Path(".current-env").read_text().strip() == "alice"
    assert pytest_tigris.get_bucket_name() == "myproject-bucket-alice"
    os.environ["TIGRIS_ENV"] = "bob"
    try:
        assert pytest_tigris.get_bucket_name() == "myproject-bucket-bob"
    finally:
        del os.environ["TIGRIS_ENV"]

    assert main(["env", "create", "bob", "--project", "myproject"]) == 0
    capsys.readouterr()
    assert main(["env", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing == ["* myproject-bucket-alice  now", "  myproject-bucket-bob  now"]

    assert main(["env", "delete", "alice"]) == 0
    assert "deleted myproject-bucket-alice" in capsys.readouterr().out
    assert main(["env", "delete", "alice"]) == 1
    assert "does not exist" in capsys.readouterr().err
    s3 = make_client(project)
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {SEED, "myproject-bucket-bob"}
    assert sorted(keys(s3, SEED)) == sorted(FILES)


def test_protected_and_non_fork_buckets_are_never_deleted(
    project: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = make_client(project)
    assert main(["env", "delete", "main"]) == 1
    assert "environment 'main' is protected" in capsys.readouterr().err
    s3.create_bucket(Bucket="myproject-bucket-plain")
    assert main(["env", "delete", "plain"]) == 1
    assert "is not a fork" in capsys.readouterr().err
    assert main(["env", "create", "prod"]) == 0
    assert main(["env", "delete", "prod"]) == 1
    monkeypatch.setenv("PYTEST_TIGRIS_PROTECTED_ENVS", "main")
    assert main(["env", "delete", "prod"]) == 0
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert names == {SEED, "myproject-bucket-plain"}


def test_common_issues_have_clear_messages(
    project: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["env", "create", "carol"]) == 0
    capsys.readouterr()
    assert main(["env", "create", "carol"]) == 1
    err = capsys.readouterr().err
    assert "already exists (bucket names are global on Tigris)" in err
    assert "carol-2" in err

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    assert main(["env", "create", "dave"]) == 1
    assert "Connection refused by http://127.0.0.1:9" in capsys.readouterr().err


def test_wrong_keys_say_access_denied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pytest-tigris]\nproject = "myproject"\n')
    with EmulatorProcess(seed=SEED, access_key="tid_right", secret_key="tsec_right") as emulator:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL_S3": emulator.endpoint_url,
            "AWS_ACCESS_KEY_ID": "tid_right",
            "AWS_SECRET_ACCESS_KEY": "tsec_wrong",
        }
        result = subprocess.run(
            [sys.executable, "-m", "pytest_tigris", "env", "create", "erin", "--seed", SEED],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert "Access Denied" in result.stderr
    assert "AWS_SECRET_ACCESS_KEY" in result.stderr
    assert "tsec_wrong" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["env", "create", "Bad_Name"], "environment name 'Bad_Name' is not valid"),
        (["env", "create"], "the following arguments are required: name"),
        (["env", "bogus"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(
    project: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_project_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTEST_TIGRIS_PROJECT", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["env", "create", "alice", "--seed", SEED])
    assert exc.value.code == 2
    assert "PYTEST_TIGRIS_PROJECT" in capsys.readouterr().err
    with pytest.raises(pytest_tigris.TigrisConfigError, match="TIGRIS_ENV"):
        pytest_tigris.get_bucket_name(project="myproject")


def buckets(endpoint: str) -> set[str]:
    return {b["Name"] for b in make_client(endpoint).list_buckets()["Buckets"]}


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line ``main(argv)`` prints when it stops with a usage error (exit 2)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('protected = "prod"', "protected = 'prod' is not a list: write protected = [\"prod\"]"),
        ('protected = ["main", 5]', "protected must be a list of environment names"),
        ('protected = ["main", ""]', "protected must be a list of environment names"),
        ("protected = { prod = true }", "protected must be a list of environment names"),
        ("project = 5", "project must be a string"),
        ('project = ["myproject"]', "project must be a string"),
        ("seed = true", "seed must be a string"),
    ],
)
def test_bad_pyproject_settings_are_usage_errors(
    project: str, setting: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["env", "create", "prod"]) == 0
    capsys.readouterr()
    key = setting.partition(" ")[0]
    lines = ['project = "myproject"', 'seed = "myproject-bucket-main"']
    lines = [line for line in lines if not line.startswith(key + " ")] + [setting]
    Path("pyproject.toml").write_text("[tool.pytest-tigris]\n" + "\n".join(lines) + "\n")
    err = usage_error(["env", "delete", "prod"], capsys)
    assert f"{Path.cwd() / 'pyproject.toml'}: [tool.pytest-tigris] {message}" in err
    assert "myproject-bucket-prod" in buckets(project)
    with pytest.raises(pytest_tigris.TigrisConfigError, match=key):
        pytest_tigris.get_bucket_name("myproject", "prod")


def test_protected_names_match_whatever_their_case(
    project: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["env", "create", "prod"]) == 0
    Path("pyproject.toml").write_text(
        '[tool.pytest-tigris]\nproject = "myproject"\nprotected = [" Prod "]\n'
    )
    assert main(["env", "delete", "prod"]) == 1
    assert "environment 'prod' is protected" in capsys.readouterr().err
    monkeypatch.setenv("PYTEST_TIGRIS_PROTECTED_ENVS", "main,PROD")
    assert main(["env", "delete", "prod"]) == 1
    assert "myproject-bucket-prod" in buckets(project)


def test_unparsable_pyproject_is_a_usage_error(
    project: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["env", "create", "staging"]) == 0
    capsys.readouterr()
    Path("pyproject.toml").write_text(
        '[tool.pytest-tigris]\nprotected = ["staging"]\n\n[tool.other]\nbad line\n'
    )
    monkeypatch.setenv("PYTEST_TIGRIS_PROJECT", "myproject")
    err = usage_error(["env", "delete", "staging"], capsys)
    assert err.startswith(f"pytest-tigris: error: {Path.cwd() / 'pyproject.toml'}: cannot parse")
    assert "(at line 5, column" in err
    assert "myproject-bucket-staging" in buckets(project)
    with pytest.raises(pytest_tigris.TigrisConfigError, match="cannot parse"):
        pytest_tigris.get_bucket_name(env="staging")
    # A [tool.pytest-tigris] that is not a table is as wrong.
    Path("pyproject.toml").write_text('[tool]\n"pytest-tigris" = "myproject"\n')
    err = usage_error(["env", "delete", "staging"], capsys)
    assert "[tool.pytest-tigris] must be a table" in err
    assert "myproject-bucket-staging" in buckets(project)


def test_missing_environments_fail(project: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env", "delete", "nosuch"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"pytest-tigris env delete: myproject-bucket-nosuch does not exist at {project}: "
        "nothing to delete (pytest-tigris env list shows the environments)\n"
    )

    assert main(["env", "create", "alice"]) == 0
    assert main(["env", "switch", "alice"]) == 0
    capsys.readouterr()
    assert main(["env", "switch", "nosuch"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"pytest-tigris env switch: myproject-bucket-nosuch does not exist at {project}: "
        "create it with pytest-tigris env create nosuch (the current environment stays "
        "'alice')\n"
    )
    assert Path(".current-env").read_text() == "alice\n"


def test_invalid_bucket_names_say_what_is_wrong(
    project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(["env", "create", "zed", "--project", "My_Project"], capsys)
    assert "project name 'My_Project' cannot be part of a bucket name: it has '_'" in err
    assert "shorter" not in err
    err = usage_error(["env", "create", "zed", "--project=-myproject"], capsys)
    assert "project name '-myproject' cannot be part of a bucket name: it starts with '-'" in err
    long = "p" * 50
    err = usage_error(["env", "create", "zed-zed-zed", "--project", long], capsys)
    assert (
        f"'{long}-bucket-zed-zed-zed' is 69 characters long, more than the 63 a bucket name may "
        "have: use a shorter project or environment name"
    ) in err
    assert buckets(project) == {SEED}
