"""``python -m pytest_tigris``: the ``pytest-tigris`` command."""

from pytest_tigris.cli import main

raise SystemExit(main())
