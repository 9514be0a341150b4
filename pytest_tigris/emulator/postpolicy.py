"""Browser form uploads (``POST /{bucket}`` with a POST policy), checked as S3 checks them.

The policy is base64 JSON: an ``expiration`` and a list of ``conditions`` every form field
must meet (``{"field": "value"}``, ``["eq", "$field", "value"]``,
``["starts-with", "$field", "prefix"]``, ``["content-length-range", min, max]``). Its signature
is checked by :meth:`~pytest_tigris.emulator.auth.SigV4Verifier.verify_post_policy` when the
emulator has keys; the conditions are enforced either way.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import io
import json
from dataclasses import dataclass
from typing import Any

from .errors import AccessDenied, EntityTooLarge, EntityTooSmall, InvalidArgument

__all__ = ["PostForm", "check_policy", "is_form_upload", "parse_form"]

# Fields a policy need not mention (S3's rule: the signature, the file, the policy itself and
# anything prefixed x-ignore-).
_EXEMPT = {"policy", "x-amz-signature", "file"}


@dataclass(frozen=True)
class PostForm:
    fields: dict[str, str]
    file_size: int


def is_form_upload(environ: dict[str, Any], method: str, target: str) -> bool:
    content_type = str(environ.get("CONTENT_TYPE", "")).lower()
    return (
        method == "POST" and target == "bucket" and content_type.startswith("multipart/form-data")
    )


def parse_form(environ: dict[str, Any], body: bytes) -> PostForm:
    """The form's fields (names as sent) and the size of its file; the body stays readable."""
    from werkzeug.formparser import parse_form_data

    parsing = dict(environ)
    parsing["wsgi.input"] = io.BytesIO(body)
    parsing["CONTENT_LENGTH"] = str(len(body))
    _, form, files = parse_form_data(parsing, silent=False)
    upload = files.get("file")
    if upload is None:
        file_size = len(form.get("file", "").encode()) if "file" in form else -1
    else:
        upload.stream.seek(0, io.SEEK_END)
        file_size = upload.stream.tell()
    if file_size < 0:
        raise InvalidArgument("A form upload needs a 'file' field (the object's bytes).", "file")
    return PostForm({name: value for name, value in form.items()}, file_size)


def check_policy(form: PostForm, bucket: str, now: datetime.datetime | None = None) -> None:
    """Enforce the policy's expiration and conditions (no policy: nothing to enforce)."""
    fields = {name.lower(): value for name, value in form.fields.items()}
    raw = fields.get("policy")
    if raw is None:
        return
    try:
        policy = json.loads(base64.b64decode(raw, validate=True))
        expiration = _time(str(policy["expiration"]))
        conditions = list(policy["conditions"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument("The policy field is not base64 JSON with an expiration.") from None
    if (now or datetime.datetime.now(tz=datetime.timezone.utc)) > expiration:
        raise AccessDenied("Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    covered: set[str] = set()
    for condition in conditions:
        covered |= _check(condition, values, form.file_size)
    extra = sorted(
        name
        for name in fields
        if name not in covered and name not in _EXEMPT and not name.startswith("x-ignore-")
    )
    if extra:
        raise AccessDenied(f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def _check(condition: Any, values: dict[str, str], file_size: int) -> set[str]:
    """Check one condition; returns the field names it covers."""
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, expected),) = condition.items()
        return _compare("eq", str(name).lower(), str(expected), values, condition)
    if isinstance(condition, list) and len(condition) == 3:
        operator = str(condition[0]).lower()
        if operator == "content-length-range":
            minimum, maximum = int(condition[1]), int(condition[2])
            if file_size < minimum:
                raise EntityTooSmall(file_size, minimum)
            if file_size > maximum:
                raise EntityTooLarge(file_size, maximum)
            return set()
        if operator in ("eq", "starts-with") and str(condition[1]).startswith("$"):
            name = str(condition[1])[1:].lower()
            return _compare(operator, name, str(condition[2]), values, condition)
    raise InvalidArgument(f"Policy condition {json.dumps(condition)} is not one S3 knows.")


def _compare(
    operator: str, name: str, expected: str, values: dict[str, str], condition: Any
) -> set[str]:
    actual = values.get(name)
    ok = actual is not None and (
        actual == expected if operator == "eq" else actual.startswith(expected)
    )
    if not ok:
        raise AccessDenied(
            f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"
        )
    return {name}


def _time(value: str) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed
