"""Every error the emulator answers itself, one class per S3/Tigris error code.

Modelled on moto's ``s3/exceptions.py``: the HTTP status and the code live on the class, the
message is built from what the caller knows, and the HTTP surface turns any
:class:`EmulatorError` into an S3 ``<Error>`` document. A new rule raises one of these; it
never writes a status or a code inline.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "BadDigest",
    "BucketAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "BucketHasForks",
    "BucketNotEmpty",
    "EmulatorError",
    "EntityTooLarge",
    "EntityTooSmall",
    "IncompleteBody",
    "InternalError",
    "InvalidArgument",
    "InvalidBucketName",
    "InvalidDigest",
    "InvalidPersistFolder",
    "InvalidRequest",
    "InvalidSeedFolder",
    "KeyTooLongError",
    "MalformedXML",
    "MethodNotAllowed",
    "NoSuchBucket",
    "NoSuchSnapshot",
    "NoSuchUpload",
    "NotImplementedByEmulator",
    "NotSnapshotEnabled",
    "PreconditionFailed",
    "RequestTimeout",
    "SlowDown",
    "VersioningRequired",
]


class EmulatorError(Exception):
    """An S3-style error answer: HTTP status, error code and message."""

    status = 500
    code = "InternalError"

    def __init__(
        self,
        message: str,
        resource: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        super().__init__(f"{self.status} {self.code}: {message}")
        self.message = message
        self.resource = resource


# -- 4xx: the request ---------------------------------------------------------------------
class InvalidArgument(EmulatorError):
    status, code = 400, "InvalidArgument"


class InvalidRequest(EmulatorError):
    status, code = 400, "InvalidRequest"


class InvalidSeedFolder(EmulatorError, ValueError):
    """A ``--seed-dir`` folder holds something that cannot become an object key.

    Raised while the emulator starts, never answered over HTTP; the command line prints its
    message as one line.
    """

    status, code = 400, "InvalidArgument"


class InvalidPersistFolder(EmulatorError, ValueError):
    """A ``--persist`` folder whose saved state cannot be loaded (raised at start only)."""

    status, code = 400, "InvalidArgument"


class InvalidBucketName(EmulatorError):
    status, code = 400, "InvalidBucketName"

    def __init__(self, bucket: str) -> None:
        super().__init__("The specified bucket is not valid.", bucket)


class MalformedXML(EmulatorError):
    status, code = 400, "MalformedXML"

    def __init__(self, what: str = "request body") -> None:
        super().__init__(
            f"The XML you provided was not well-formed or did not validate against our "
            f"published schema ({what})."
        )


class KeyTooLongError(EmulatorError):
    status, code = 400, "KeyTooLongError"

    def __init__(self, size: int) -> None:
        super().__init__(f"Your key is too long: {size} bytes in UTF-8, the limit is 1024.", "")


class BadDigest(EmulatorError):
    status, code = 400, "BadDigest"

    def __init__(self) -> None:
        super().__init__("The Content-MD5 you specified did not match what we received.")


class InvalidDigest(EmulatorError):
    status, code = 400, "InvalidDigest"

    def __init__(self) -> None:
        super().__init__("The Content-MD5 you specified is not valid base64 of 16 bytes.")


class IncompleteBody(EmulatorError):
    status, code = 400, "IncompleteBody"

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(
            f"You did not provide the number of bytes specified by the Content-Length HTTP "
            f"header: expected {expected}, got {got}."
        )


class EntityTooSmall(EmulatorError):
    status, code = 400, "EntityTooSmall"

    def __init__(self, size: int, minimum: int) -> None:
        super().__init__(
            f"Your proposed upload ({size} bytes) is smaller than the minimum allowed size "
            f"({minimum} bytes)."
        )


class EntityTooLarge(EmulatorError):
    status, code = 400, "EntityTooLarge"

    def __init__(self, size: int, maximum: int) -> None:
        super().__init__(
            f"Your proposed upload ({size} bytes) exceeds the maximum allowed size "
            f"({maximum} bytes)."
        )


class RequestTimeout(EmulatorError):
    status, code = 400, "RequestTimeout"

    def __init__(self) -> None:
        super().__init__(
            "Your socket connection to the server was not read from or written to within "
            "the timeout period."
        )


class VersioningRequired(EmulatorError):
    status, code = 400, "InvalidBucketState"

    def __init__(self, bucket: str, why: str) -> None:
        super().__init__(
            f"Versioning of bucket {bucket} cannot be suspended: {why}; snapshots and forks "
            "read its old versions.",
            bucket,
        )


class NotSnapshotEnabled(EmulatorError):
    status, code = 400, "InvalidRequest"

    def __init__(self, bucket: str) -> None:
        super().__init__(
            f"Bucket {bucket} is not snapshot-enabled: create it with the "
            "X-Tigris-Enable-Snapshot: true header to take snapshots or fork it.",
            bucket,
        )


class AccessDenied(EmulatorError):
    status, code = 403, "AccessDenied"


class NoSuchBucket(EmulatorError):
    status, code = 404, "NoSuchBucket"

    def __init__(self, bucket: str, message: str = "The specified bucket does not exist") -> None:
        super().__init__(message, bucket)


class NoSuchSnapshot(EmulatorError):
    status, code = 404, "NoSuchSnapshot"

    def __init__(self, bucket: str, version: str | int) -> None:
        super().__init__(f"Bucket {bucket} has no snapshot {version}.", bucket)


class NoSuchUpload(EmulatorError):
    status, code = 404, "NoSuchUpload"

    def __init__(self, upload_id: str) -> None:
        super().__init__(
            "The specified upload does not exist. The upload ID may be invalid, or the upload "
            "may have been aborted or completed.",
            upload_id,
        )


class MethodNotAllowed(EmulatorError):
    status, code = 405, "MethodNotAllowed"

    def __init__(self, method: str, what: str) -> None:
        super().__init__(f"The specified method {method} is not allowed against {what}.")


class PreconditionFailed(EmulatorError):
    status, code = 412, "PreconditionFailed"

    def __init__(self, condition: str) -> None:
        super().__init__("At least one of the pre-conditions you specified did not hold", condition)


class BucketAlreadyOwnedByYou(EmulatorError):
    status, code = 409, "BucketAlreadyOwnedByYou"

    def __init__(self, bucket: str) -> None:
        super().__init__(
            "Your previous request to create the named bucket succeeded and you already own it.",
            bucket,
        )


class BucketAlreadyExists(EmulatorError):
    status, code = 409, "BucketAlreadyExists"

    def __init__(self, bucket: str) -> None:
        super().__init__(
            "The requested bucket name is not available. Bucket names are global: please "
            "select a different name and try again.",
            bucket,
        )


class BucketHasForks(EmulatorError):
    status, code = 409, "BucketHasForks"

    def __init__(self, bucket: str, forks: list[str]) -> None:
        super().__init__(
            f"Bucket {bucket} has forks ({', '.join(sorted(forks))}): delete the forks first.",
            bucket,
        )


class BucketNotEmpty(EmulatorError):
    status, code = 409, "BucketNotEmpty"

    def __init__(self, bucket: str) -> None:
        super().__init__("The bucket you tried to delete is not empty", bucket)


# -- 5xx: the server ----------------------------------------------------------------------
class InternalError(EmulatorError):
    status, code = 500, "InternalError"

    def __init__(self, detail: str = "") -> None:
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"We encountered an internal error.{suffix}")


class NotImplementedByEmulator(EmulatorError):
    status, code = 501, "NotImplemented"

    def __init__(self, feature: str) -> None:
        super().__init__(
            f"{feature} is not implemented by the pytest-tigris emulator (see the README's "
            "known differences)."
        )


class SlowDown(EmulatorError):
    status, code = 503, "SlowDown"

    def __init__(self, detail: str = "") -> None:
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"Please reduce your request rate.{suffix}")
