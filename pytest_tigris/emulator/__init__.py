"""A local Tigris: moto's S3 behind real HTTP, with Tigris's snapshot and fork protocol.

Never imports pytest. Start it from code with :class:`EmulatorProcess` (its own process, what
the plugin uses) or :class:`EmulatorServer` (a thread of this process), or from a shell with
``pytest-tigris emulator``.
"""

from .server import READY_PREFIX, EmulatorProcess, EmulatorServer, EmulatorStartError

__all__ = ["READY_PREFIX", "EmulatorProcess", "EmulatorServer", "EmulatorStartError"]
