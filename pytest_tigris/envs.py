"""Named fork environments (``myproject-bucket-alice``), as forkstack's Tigris backend has.

A developer or CI job gets its own fork of the project's seed, named ``{project}-bucket-{env}``,
and the app finds it with :func:`get_bucket_name` / :func:`get_s3_client`. No pytest here.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import TigrisConfigError, TigrisUnsafeDeleteError

__all__ = [
    "CURRENT_ENV_FILE",
    "DEFAULT_PROTECTED",
    "EnvSettings",
    "bucket_name",
    "check_new_env",
    "get_bucket_name",
    "get_s3_client",
    "read_current_env",
]

CURRENT_ENV_FILE = ".current-env"
DEFAULT_PROTECTED = ("main", "prod")
_ENV_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_NOT_IN_BUCKET_NAMES = re.compile(r"[^a-z0-9.-]")


def _pyproject_settings(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """``[tool.pytest-tigris]`` from the nearest pyproject.toml at or above ``start``, with the
    file it came from.

    A file that cannot be read or parsed is an error, not "no settings": it may hold the
    ``protected`` list that keeps ``env delete`` off an environment.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found, no-redef]

    for folder in (start, *start.parents):
        path = folder / "pyproject.toml"
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TigrisConfigError(
                f"{path}: cannot read it ({exc.strerror or exc}): [tool.pytest-tigris] settings "
                "come from it, so check its permissions"
            ) from None
        except ValueError as exc:  # tomllib.TOMLDecodeError, UnicodeDecodeError
            message = " ".join(str(exc).split())
            raise TigrisConfigError(
                f"{path}: cannot parse it ({message}): fix the file, [tool.pytest-tigris] "
                "settings come from it"
            ) from None
        tool = data.get("tool", {})
        settings = tool.get("pytest-tigris", {}) if isinstance(tool, dict) else {}
        if not isinstance(settings, dict):
            raise TigrisConfigError(
                f"{path}: [tool.pytest-tigris] must be a table, e.g. [tool.pytest-tigris] "
                'followed by project = "myproject" on the next line'
            )
        return path, settings
    return None, {}


def _string_setting(path: Path | None, tool: Mapping[str, Any], key: str) -> str | None:
    value = tool.get(key)
    if value is None or isinstance(value, str):
        return value
    example = {"project": "myproject", "seed": "myproject-bucket-main"}[key]
    raise TigrisConfigError(
        f'{path}: [tool.pytest-tigris] {key} must be a string, e.g. {key} = "{example}" '
        f"(got {value!r})"
    )


def _protected_setting(path: Path | None, tool: Mapping[str, Any]) -> tuple[str, ...]:
    value = tool.get("protected", DEFAULT_PROTECTED)
    if isinstance(value, str):
        # tuple("prod") would protect 'p', 'r', 'o', 'd' and leave prod deletable.
        raise TigrisConfigError(
            f"{path}: [tool.pytest-tigris] protected = {value!r} is not a list: write "
            f"protected = {json.dumps([value], ensure_ascii=False)}"
        )
    names = list(value) if isinstance(value, (list, tuple)) else None
    if names is None or not all(isinstance(n, str) and n.strip() for n in names):
        raise TigrisConfigError(
            f"{path}: [tool.pytest-tigris] protected must be a list of environment names, "
            f'e.g. protected = ["main", "prod"] (got {value!r})'
        )
    return tuple(n.strip().lower() for n in names)


@dataclass(frozen=True)
class EnvSettings:
    """Project-level settings for named environments."""

    project: str | None
    seed: str | None
    protected: tuple[str, ...]

    @classmethod
    def load(
        cls,
        *,
        project: str | None = None,
        seed: str | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> EnvSettings:
        """Argument > ``PYTEST_TIGRIS_PROJECT``/``_SEED``/``_PROTECTED_ENVS`` > pyproject.

        Raises :class:`TigrisConfigError` for a pyproject.toml that cannot be parsed or holds
        a setting of the wrong type, even one the other sources override.
        """
        env = os.environ if environ is None else environ
        path, tool = _pyproject_settings(cwd or Path.cwd())
        tool_project = _string_setting(path, tool, "project")
        tool_seed = _string_setting(path, tool, "seed")
        protected = _protected_setting(path, tool)
        protected_raw = env.get("PYTEST_TIGRIS_PROTECTED_ENVS")
        if protected_raw is not None:
            protected = tuple(p.strip().lower() for p in protected_raw.split(",") if p.strip())
        return cls(
            project=project or env.get("PYTEST_TIGRIS_PROJECT") or tool_project,
            seed=seed or env.get("PYTEST_TIGRIS_SEED") or tool_seed,
            protected=protected,
        )

    def require_project(self) -> str:
        if not self.project:
            raise TigrisConfigError(
                "no project name: pass --project, set PYTEST_TIGRIS_PROJECT, or add "
                '`project = "myproject"` under [tool.pytest-tigris] in pyproject.toml'
            )
        return self.project


def bucket_name(project: str, env: str) -> str:
    """``{project}-bucket-{env}``, checked against the bucket-name rules."""
    from .naming import MAX_BUCKET, valid_bucket_name

    env_clean = env.strip().lower()
    if not _ENV_NAME.match(env_clean):
        raise TigrisConfigError(
            f"environment name {env!r} is not valid: use lower-case letters, digits and '-'"
        )
    project_clean = project.strip().lower()
    name = f"{project_clean}-bucket-{env_clean}"
    if valid_bucket_name(name):
        return name
    # Say what is wrong: the environment name is fine by now, so it is the project or length.
    bad = sorted(set(_NOT_IN_BUCKET_NAMES.findall(project_clean)))
    if bad:
        what = f"it has {', '.join(repr(c) for c in bad)}"
    elif not project_clean[:1].isalnum():
        what = f"it starts with {project_clean[:1]!r}" if project_clean else "it is empty"
    elif ".." in project_clean:
        what = "it has '..'"
    else:
        what = ""
    if what:
        raise TigrisConfigError(
            f"project name {project!r} cannot be part of a bucket name: {what} (use lower-case "
            "letters, digits, '.' and '-', starting with a letter or digit)"
        )
    if len(name) > MAX_BUCKET:
        raise TigrisConfigError(
            f"{name!r} is {len(name)} characters long, more than the {MAX_BUCKET} a bucket name "
            "may have: use a shorter project or environment name"
        )
    raise TigrisConfigError(  # pragma: no cover - every rule is named above
        f"{name!r} is not a valid bucket name (3-63 characters a-z, 0-9, '.', '-')"
    )


def check_new_env(name: str, env: str) -> None:
    """Refuse an environment whose bucket ``name`` would be named like a test fork.

    Such a bucket would look to ``pytest-tigris sweep`` and to anyone reading the bucket list
    like something a test run left behind.
    """
    from .naming import parse_fork_name

    if parse_fork_name(name) is not None:
        raise TigrisConfigError(
            f"environment name {env!r} gives bucket {name!r}, which is named like a pytest-tigris "
            "test fork (ends in -m-N or -gwN-N): pick a name that does not end that way"
        )


def read_current_env(cwd: Path | None = None) -> str | None:
    """The environment named in ``.current-env`` (written by ``pytest-tigris env switch``)."""
    path = (cwd or Path.cwd()) / CURRENT_ENV_FILE
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return value.lower() or None


def get_bucket_name(project: str | None = None, env: str | None = None) -> str:
    """The bucket of a named environment: ``{project}-bucket-{env}``.

    ``env`` comes from the argument, else ``TIGRIS_ENV``, else ``.current-env``; ``project``
    from the argument, else ``PYTEST_TIGRIS_PROJECT``, else pyproject's
    ``[tool.pytest-tigris] project``.
    """
    settings = EnvSettings.load(project=project)
    env = env or os.environ.get("TIGRIS_ENV") or read_current_env()
    if not env:
        raise TigrisConfigError(
            "no environment: pass env=, set TIGRIS_ENV, or run `pytest-tigris env switch NAME`"
        )
    return bucket_name(settings.require_project(), env)


def get_s3_client(project: str | None = None, env: str | None = None) -> Any:
    """A boto3 S3 client for the environments' endpoint (credentials from the AWS variables,
    then ``.env.local``); use it with :func:`get_bucket_name`.

    ``project`` and ``env`` are checked (they must name a valid environment bucket) so a typo
    fails here rather than at the first request.
    """
    if project is not None or env is not None:
        get_bucket_name(project, env)
    from .client import ClientFactory
    from .config import load_remote

    config = load_remote(None, caller="get_s3_client()", endpoint_option=None)
    return ClientFactory(config, config.endpoint_url).client()


def age(created: datetime.datetime | None, now: datetime.datetime | None = None) -> str:
    """``3d 4h``, ``5h 2m``, ``12m`` or ``now``."""
    if created is None:
        return "?"
    now = now or datetime.datetime.now(tz=datetime.timezone.utc)
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    seconds = max(0, int((now - created).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "now"


def check_deletable_env(name: str, env: str, settings: EnvSettings) -> None:
    if env in settings.protected:
        raise TigrisUnsafeDeleteError(
            f"refusing to delete {name!r}: environment {env!r} is protected "
            f"({', '.join(settings.protected)}; set PYTEST_TIGRIS_PROTECTED_ENVS or "
            "[tool.pytest-tigris] protected to change)"
        )
