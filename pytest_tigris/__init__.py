"""pytest-tigris: isolated, throw-away object storage for every test, forked from a seed bucket.

Importing this package is cheap: boto3, botocore and moto are imported only when a fork, a
client or the emulator is first needed.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
