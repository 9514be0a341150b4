"""``python -m pytest_tigris``: the ``pytest-tigris`` command."""

import os
import sys

from pytest_tigris.cli import main

code = main()
if sys.argv[1:2] == ["emulator"]:
    # How the plugin runs its emulator. Once serving stopped, everything is saved and closed:
    # skip tearing down moto's modules and objects, about 0.3 s that every pytest run waited.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
