"""Named fork environments (``myproject-bucket-alice``), as forkstack's Tigris backend has.

A developer or CI job gets its own fork of the project's seed, named ``{project}-bucket-{env}``,
and the app finds it with :func:`get_bucket_name` / :func:`get_s3_client`. No pytest here.
"""

from __future__ import annotations

import datetime
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


def _pyproject_settings(start: Path) -> dict[str, Any]:
    """``[tool.pytest-tigris]`` from the nearest pyproject.toml at or above ``start``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found, no-redef]

    for folder in (start, *start.parents):
        path = folder / "pyproject.toml"
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            settings = data.get("tool", {}).get("pytest-tigris", {})
            return dict(settings) if isinstance(settings, dict) else {}
    return {}


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
        """Argument > ``PYTEST_TIGRIS_PROJECT``/``_SEED``/``_PROTECTED_ENVS`` > pyproject."""
        env = os.environ if environ is None else environ
        tool = _pyproject_settings(cwd or Path.cwd())
        protected_raw = env.get("PYTEST_TIGRIS_PROTECTED_ENVS")
        if protected_raw is not None:
            protected = tuple(p.strip() for p in protected_raw.split(",") if p.strip())
        else:
            protected = tuple(tool.get("protected", DEFAULT_PROTECTED))
        return cls(
            project=project or env.get("PYTEST_TIGRIS_PROJECT") or tool.get("project"),
            seed=seed or env.get("PYTEST_TIGRIS_SEED") or tool.get("seed"),
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
    from .naming import valid_bucket_name

    env_clean = env.strip().lower()
    if not _ENV_NAME.match(env_clean):
        raise TigrisConfigError(
            f"environment name {env!r} is not valid: use lower-case letters, digits and '-'"
        )
    name = f"{project.strip().lower()}-bucket-{env_clean}"
    if not valid_bucket_name(name):
        raise TigrisConfigError(
            f"{name!r} is not a valid bucket name (3-63 characters a-z, 0-9, '.', '-'): "
            "use a shorter project or environment name"
        )
    return name


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
    from .config import TigrisConfig

    config = TigrisConfig.load(options={"backend": "remote"}, ini={})
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
