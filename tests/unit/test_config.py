"""``TigrisConfig.load``: precedence, backend choice, validation, secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytest_tigris.config import DEFAULT_EMULATOR_SEED, OPTIONS, TigrisConfig, read_dotenv
from pytest_tigris.exceptions import TigrisConfigError


def load(
    tmp_path: Path,
    options: dict[str, Any] | None = None,
    ini: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    **kwargs: Any,
) -> TigrisConfig:
    return TigrisConfig.load(
        options=options or {},
        ini=ini or {},
        environ=environ or {},
        rootdir=tmp_path,
        cwd=tmp_path,
        **kwargs,
    )


def test_defaults_run_on_the_emulator_with_a_default_seed(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.backend == "emulator"
    assert config.seed == DEFAULT_EMULATOR_SEED and not config.seed_given
    assert config.keep == "never"
    assert config.endpoint_url is None
    # No CI job in the environment: eight random base-32 characters.
    assert re.fullmatch(r"[a-z2-7]{8}", config.run_id), config.run_id


def test_cli_beats_ini_beats_env(tmp_path: Path) -> None:
    env = {"PYTEST_TIGRIS_SEED": "env-seed", "PYTEST_TIGRIS_KEEP": "always"}
    assert load(tmp_path, environ=env).seed == "env-seed"
    assert load(tmp_path, ini={"seed": "ini-seed"}, environ=env).seed == "ini-seed"
    both = load(tmp_path, {"seed": "cli-seed"}, {"seed": "ini-seed"}, env)
    assert both.seed == "cli-seed" and both.seed_given
    assert both.keep == "always"


def test_auto_picks_remote_with_endpoint_and_credentials(tmp_path: Path) -> None:
    env = {
        "AWS_ENDPOINT_URL_S3": "https://t3.storage.dev",
        "AWS_ENDPOINT_URL": "https://ignored.example",
        "AWS_ACCESS_KEY_ID": "tid_x",
        "AWS_SECRET_ACCESS_KEY": "tsec_y",
    }
    config = load(tmp_path, {"seed": "myproject-bucket-main"}, environ=env)
    assert config.backend == "remote"
    assert config.endpoint_url == "https://t3.storage.dev"
    # An ambient endpoint without credentials stays on the emulator.
    no_keys = {"AWS_ENDPOINT_URL_S3": "https://t3.storage.dev"}
    assert load(tmp_path, environ=no_keys).backend == "emulator"
    # An explicit --tigris-endpoint means remote.
    explicit = load(tmp_path, {"endpoint": "http://127.0.0.1:9"})
    assert explicit.backend == "remote"


def test_dotenv_fills_gaps_but_never_overrides_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env.local").write_text(
        "# Tigris\n"
        "export AWS_ENDPOINT_URL_S3=https://t3.storage.dev\n"
        "AWS_ACCESS_KEY_ID='tid_from_file'\n"
        'AWS_SECRET_ACCESS_KEY="tsec_from_file" # comment\n'
    )
    config = load(tmp_path, {"seed": "s-e-e-d"}, environ={"AWS_ACCESS_KEY_ID": "tid_real"})
    assert config.backend == "remote"
    assert config.access_key_id == "tid_real"
    assert config.secret_access_key == "tsec_from_file"
    assert read_dotenv(tmp_path / "missing") == {}


def test_secrets_never_appear_in_repr_or_header(tmp_path: Path) -> None:
    env = {
        "AWS_ENDPOINT_URL_S3": "https://t3.storage.dev",
        "AWS_ACCESS_KEY_ID": "tid_x",
        "AWS_SECRET_ACCESS_KEY": "tsec_very_secret",
        "AWS_SESSION_TOKEN": "token_very_secret",
    }
    config = load(tmp_path, {"seed": "myproject-bucket-main"}, environ=env)
    for text in (repr(config), str(config), config.describe()):
        assert "very_secret" not in text
    assert "t3.storage.dev" in config.describe()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keep": "sometimes"}, "--tigris-keep='sometimes' is not valid"),
        ({"backend": "cloud"}, "--tigris-backend='cloud' is not valid"),
        ({"seed": "Bad_Name"}, "--tigris-seed='Bad_Name' is not a valid bucket name"),
        ({"endpoint": "t3.storage.dev"}, "is not a URL"),
        ({"seed-dir": "does/not/exist"}, "does not exist"),
        ({"backend": "remote"}, "needs an endpoint"),
        ({"prefix": "Bad_Prefix!"}, "--tigris-prefix"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_option(
    tmp_path: Path, options: dict[str, str], message: str
) -> None:
    with pytest.raises(TigrisConfigError) as exc:
        load(tmp_path, options)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_env_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(TigrisConfigError, match="PYTEST_TIGRIS_KEEP='maybe'"):
        load(tmp_path, environ={"PYTEST_TIGRIS_KEEP": "maybe"})


def test_seed_dir_must_be_a_folder_and_emulator_only(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(TigrisConfigError, match="is not a folder"):
        load(tmp_path, {"seed-dir": "file.txt"})
    (tmp_path / "seed").mkdir()
    with pytest.raises(TigrisConfigError, match="only works with the emulator"):
        load(tmp_path, {"seed-dir": "seed", "endpoint": "https://t3.storage.dev"})
    config = load(tmp_path, {"seed-dir": "seed"})
    assert config.seed_dir == (tmp_path / "seed").resolve()


def test_ini_seed_dir_is_relative_to_the_ini_file(tmp_path: Path) -> None:
    inidir = tmp_path / "project"
    (inidir / "seed").mkdir(parents=True)
    config = load(tmp_path, ini={"seed-dir": "seed"}, inidir=inidir)
    assert config.seed_dir == (inidir / "seed").resolve()


def test_run_id_from_controller_wins(tmp_path: Path) -> None:
    config = load(tmp_path, {"run-id": "mine"}, run_id="ctrl42")
    assert config.run_id == "ctrl42"
    assert load(tmp_path, {"run-id": "Mine"}).run_id == "mine"
    assert load(tmp_path, environ={"CI_JOB_ID": "77"}).run_id == "77"


def test_every_option_has_cli_ini_and_env_twins() -> None:
    for option in OPTIONS:
        assert option.flag == f"--tigris-{option.name}"
        assert option.ini == "tigris_" + option.name.replace("-", "_")
        assert option.env == "PYTEST_TIGRIS_" + option.name.replace("-", "_").upper()
        assert option.help[0].isupper() and not option.help.endswith(".")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://localhost:99999",
            "--tigris-endpoint='http://localhost:99999' is not a valid URL (port must be a "
            "number from 1 to 65535)",
        ),
        (
            "http://localhost:notaport",
            "--tigris-endpoint='http://localhost:notaport' is not a valid URL (port must be a "
            "number from 1 to 65535)",
        ),
        ("http://[::1", "--tigris-endpoint='http://[::1' is not a valid URL (invalid IPv6 URL)"),
        ("http://:9000", "--tigris-endpoint='http://:9000' has no host name"),
    ],
)
def test_a_malformed_endpoint_url_names_the_option(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(TigrisConfigError) as exc:
        load(tmp_path, {"endpoint": url})
    assert str(exc.value) == f"{message}: use e.g. https://t3.storage.dev or http://127.0.0.1:4566"


def test_an_endpoint_variable_is_named_as_set(tmp_path: Path) -> None:
    with pytest.raises(TigrisConfigError, match=r"^AWS_ENDPOINT_URL='localhost:4566' is not"):
        load(tmp_path, environ={"AWS_ENDPOINT_URL": "localhost:4566"})
    (tmp_path / ".env.local").write_text("AWS_ENDPOINT_URL_S3=localhost:4566\n")
    with pytest.raises(TigrisConfigError, match=r"^AWS_ENDPOINT_URL_S3 \(in \.env\.local\)="):
        load(tmp_path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfeA=1\n", "is not UTF-8 text (byte 0xff at offset 0): save it as UTF-8"),
        (b"A=1\n\nnot an assignment\n", "line 3 is not KEY=VALUE: fix or remove it"),
        (b"=value\n", "line 1 is not KEY=VALUE: fix or remove it"),
        (b"A='open\n", "line 1: no closing quotation: fix or remove it"),
    ],
)
def test_a_broken_dotenv_names_the_file_and_line(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / ".env.local"
    path.write_bytes(content)
    with pytest.raises(TigrisConfigError) as exc:
        read_dotenv(path)
    message = str(exc.value)
    assert message.startswith(f"{path} {problem}")
    # The line itself is never shown: it may hold a secret.
    said = message[len(str(path)) :]
    assert "open" not in said and "assignment" not in said


def test_dotenv_accepts_a_byte_order_mark_and_blank_values(tmp_path: Path) -> None:
    path = tmp_path / ".env.local"
    path.write_text("\ufeffA=1\nexport B = 'two words'\nC=\n", encoding="utf-8")
    assert read_dotenv(path) == {"A": "1", "B": "two words", "C": ""}


# -- a seed folder on a remote backend (issue 11, item 12) ----------------------------------
REMOTE = {"endpoint": "https://t3.storage.dev"}


def test_an_ini_seed_dir_is_ignored_on_a_remote_backend_with_a_note(tmp_path: Path) -> None:
    # The folder need not exist in that checkout: nothing reads it.
    config = load(tmp_path, REMOTE, ini={"seed-dir": "tests/seed"}, inidir=tmp_path)

    assert config.backend == "remote"
    assert config.seed_dir is None
    assert config.notes == (
        "tigris: ini tigris_seed_dir=tests/seed ignored: the backend is remote (the folder is "
        "loaded by the emulator backend only)",
    )


def test_an_ini_seed_dir_still_loads_on_the_emulator(tmp_path: Path) -> None:
    (tmp_path / "seed").mkdir()
    config = load(tmp_path, ini={"seed-dir": "seed"}, inidir=tmp_path)

    assert config.seed_dir == (tmp_path / "seed").resolve()
    assert config.notes == ()


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "command line",
            "--tigris-seed-dir only works with the emulator backend (forks on "
            "https://t3.storage.dev are made from a seed bucket there): remove --tigris-seed-dir "
            "from the command line, or add --tigris-backend=emulator",
        ),
        (
            "environment",
            "PYTEST_TIGRIS_SEED_DIR only works with the emulator backend (forks on "
            "https://t3.storage.dev are made from a seed bucket there): unset "
            "PYTEST_TIGRIS_SEED_DIR, or add --tigris-backend=emulator",
        ),
        (
            ".env.local",
            "PYTEST_TIGRIS_SEED_DIR (in .env.local) only works with the emulator backend (forks "
            "on https://t3.storage.dev are made from a seed bucket there): remove "
            "PYTEST_TIGRIS_SEED_DIR from .env.local, or add --tigris-backend=emulator",
        ),
    ],
    ids=["command-line", "environment", "dotenv"],
)
def test_a_seed_dir_given_for_this_run_is_an_error_on_a_remote_backend(
    tmp_path: Path, where: str, message: str
) -> None:
    (tmp_path / "seed").mkdir()
    options: dict[str, Any] = dict(REMOTE)
    environ: dict[str, str] = {}
    if where == "command line":
        options["seed-dir"] = "seed"
    elif where == "environment":
        environ["PYTEST_TIGRIS_SEED_DIR"] = "seed"
    else:
        (tmp_path / ".env.local").write_text("PYTEST_TIGRIS_SEED_DIR=seed\n")

    with pytest.raises(TigrisConfigError) as exc:
        load(tmp_path, options, environ=environ)

    assert str(exc.value) == message


# -- an endpoint is a server's root URL (user trial, defect 1) -------------------------------
@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("http://127.0.0.1:4566?x=1", "a query ('?x=1')"),
        ("http://127.0.0.1:4566?", "a query ('?')"),
        ("http://127.0.0.1:4566/some/path", "a path ('/some/path')"),
        ("http://127.0.0.1:4566//", "a path ('//')"),
        ("http://127.0.0.1:4566#top", "a fragment ('#top')"),
        ("http://127.0.0.1:4566/a?b=1#c", "a path ('/a'), a query ('?b=1') and a fragment ('#c')"),
    ],
    ids=["query", "empty-query", "path", "double-slash", "fragment", "all-three"],
)
def test_an_endpoint_url_with_more_than_a_host_and_port_names_the_part(
    tmp_path: Path, url: str, extra: str
) -> None:
    with pytest.raises(TigrisConfigError) as exc:
        load(tmp_path, {"endpoint": url})

    assert str(exc.value) == (
        f"--tigris-endpoint={url!r} has {extra}: use the server's root URL, http://127.0.0.1:4566"
    )


@pytest.mark.parametrize("url", ["https://t3.storage.dev", "http://127.0.0.1:4566/"])
def test_a_root_url_with_or_without_its_slash_is_an_endpoint(tmp_path: Path, url: str) -> None:
    assert load(tmp_path, {"endpoint": url}).endpoint_url == url


@pytest.mark.parametrize(
    ("url", "shown", "problem"),
    [
        ("http://user:hunter2@127.0.0.1:4566", "http://***@127.0.0.1:4566", "user"),
        ("https://hunter2@t3.storage.dev", "https://***@t3.storage.dev", "user"),
        ("http://us:hunter2@127.0.0.1:99999", "http://***@127.0.0.1:99999", "user"),
        # A '#' or '/' in the password ends the host part for urlsplit: still never shown.
        ("http://us:hun#ter2@127.0.0.1:4566", "http://***@127.0.0.1:4566", "user"),
        ("http://us:hun/ter2@127.0.0.1:4566", "http://***@127.0.0.1:4566", "user"),
        ("us:hunter2@127.0.0.1:4566", "***@127.0.0.1:4566", "scheme"),
    ],
)
def test_a_user_name_or_password_in_an_endpoint_url_is_refused_and_never_shown(
    tmp_path: Path, url: str, shown: str, problem: str
) -> None:
    with pytest.raises(TigrisConfigError) as exc:
        load(tmp_path, {"endpoint": url})

    expected = {
        "user": f"--tigris-endpoint={shown!r} has a user name or password in it: remove it (the "
        "keys go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
        "scheme": f"--tigris-endpoint={shown!r} is not a URL: use e.g. https://t3.storage.dev or "
        "http://127.0.0.1:4566",
    }
    assert str(exc.value) == expected[problem]
    assert "hunter2" not in str(exc.value) and "ter2" not in str(exc.value)


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("ini", "ini tigris_endpoint"),
        ("PYTEST_TIGRIS_ENDPOINT", "PYTEST_TIGRIS_ENDPOINT"),
        ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_S3"),
        ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
        ("dotenv", "AWS_ENDPOINT_URL_S3 (in .env.local)"),
    ],
)
def test_an_endpoint_with_a_path_is_named_where_it_was_set(
    tmp_path: Path, where: str, source: str
) -> None:
    url = "https://t3.storage.dev/my-bucket"
    ini: dict[str, Any] = {}
    environ: dict[str, str] = {}
    if where == "ini":
        ini["endpoint"] = url
    elif where == "dotenv":
        (tmp_path / ".env.local").write_text(f"AWS_ENDPOINT_URL_S3={url}\n")
    else:
        environ[where] = url

    with pytest.raises(TigrisConfigError) as exc:
        load(tmp_path, ini=ini, environ=environ)

    assert str(exc.value) == (
        f"{source}={url!r} has a path ('/my-bucket'): use the server's root URL, "
        "https://t3.storage.dev"
    )


# -- a remote run names its seed (user trial, defect 2) --------------------------------------
REMOTE_KEYS = {
    "AWS_ENDPOINT_URL_S3": "https://t3.storage.dev",
    "AWS_ACCESS_KEY_ID": "tid_x",
    "AWS_SECRET_ACCESS_KEY": "tsec_y",
}


@pytest.mark.parametrize(
    ("options", "environ"),
    [(REMOTE, {}), ({}, REMOTE_KEYS), ({"backend": "remote"}, REMOTE_KEYS)],
    ids=["explicit-endpoint", "auto-from-environment", "backend-remote"],
)
def test_a_remote_backend_without_a_seed_is_an_error_naming_every_setting(
    tmp_path: Path, options: dict[str, str], environ: dict[str, str]
) -> None:
    config = load(tmp_path, options, environ=environ)

    assert config.backend == "remote"
    missing = config.missing_seed()
    assert isinstance(missing, TigrisConfigError)
    assert str(missing) == (
        "no seed bucket set for the remote backend (t3.storage.dev): set --tigris-seed, ini "
        "tigris_seed or PYTEST_TIGRIS_SEED to the bucket to fork (bucket names are global, so "
        "there is no default), or use --tigris-backend=emulator"
    )
    # The header does not claim a seed the run will not use.
    assert " seed=(not set) " in config.describe()


@pytest.mark.parametrize("where", ["option", "ini", "environment", "dotenv"])
def test_a_seed_from_any_source_is_enough_for_a_remote_backend(tmp_path: Path, where: str) -> None:
    options: dict[str, Any] = dict(REMOTE)
    ini: dict[str, Any] = {}
    environ: dict[str, str] = {}
    if where == "option":
        options["seed"] = "myproject-bucket-main"
    elif where == "ini":
        ini["seed"] = "myproject-bucket-main"
    elif where == "environment":
        environ["PYTEST_TIGRIS_SEED"] = "myproject-bucket-main"
    else:
        (tmp_path / ".env.local").write_text("PYTEST_TIGRIS_SEED=myproject-bucket-main\n")

    config = load(tmp_path, options, ini, environ)

    assert config.missing_seed() is None
    assert " seed=myproject-bucket-main " in config.describe()


def test_the_emulator_keeps_its_default_seed(tmp_path: Path) -> None:
    config = load(tmp_path)

    assert config.missing_seed() is None
    assert f" seed={DEFAULT_EMULATOR_SEED} " in config.describe()


def test_an_ambient_endpoint_without_keys_says_why_the_emulator_was_chosen(
    tmp_path: Path,
) -> None:
    config = load(tmp_path, environ={"AWS_ENDPOINT_URL_S3": "https://t3.storage.dev"})

    reason = (
        "the embedded emulator was chosen because AWS_ENDPOINT_URL_S3 is set but no credentials "
        "are: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, to use that "
        "endpoint"
    )
    assert config.backend == "emulator"
    assert config.emulator_reason == reason
    assert config.notes == (f"tigris: {reason}",)
    # Nothing to explain without an endpoint, or when the choice was made explicitly.
    for chosen in (
        load(tmp_path),
        load(tmp_path, {"backend": "emulator"}, environ={"AWS_ENDPOINT_URL_S3": "https://x.dev"}),
        load(tmp_path, {"seed": "s-e-e-d"}, environ=REMOTE_KEYS),
    ):
        assert chosen.emulator_reason is None and chosen.notes == ()
