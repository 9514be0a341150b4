"""Browser form uploads with a POST policy (boto3's ``generate_presigned_post``), sent with
``requests`` as a browser would: accepted when right, refused for every way it can be wrong."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pytest_tigris.emulator import EmulatorProcess
from tests.helpers import body, create_snapshot_bucket, fork, keys, make_client

KEY_ID = "form-key"
SECRET = "form-secret"
BUCKET = "forms-seed"


@pytest.fixture(scope="module")
def signed() -> Iterator[tuple[EmulatorProcess, Any]]:
    """An emulator that checks signatures, a client with its keys, a seed and a fork."""
    with EmulatorProcess(seed=BUCKET, access_key=KEY_ID, secret_key=SECRET) as emulator:
        s3 = make_client(
            emulator.endpoint_url, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
        )
        fork(s3, "forms-fork", BUCKET)
        yield emulator, s3


def presigned(s3: Any, bucket: str, key: str = "uploads/${filename}", **kwargs: Any) -> Any:
    kwargs.setdefault("Conditions", [["starts-with", "$key", "uploads/"]])
    return s3.generate_presigned_post(Bucket=bucket, Key=key, ExpiresIn=300, **kwargs)


def send(post: Any, data: bytes = b"form bytes", **field_changes: str) -> requests.Response:
    fields = {**post["fields"], **field_changes}
    return requests.post(post["url"], data=fields, files={"file": ("photo.jpg", data)}, timeout=10)


def code(response: requests.Response) -> tuple[int, str]:
    text = response.text
    start = text.index("<Code>") + len("<Code>")
    return response.status_code, text[start : text.index("</Code>")]


@pytest.mark.parametrize("bucket", [BUCKET, "forms-fork"])
def test_a_signed_form_upload_is_stored(signed: tuple[EmulatorProcess, Any], bucket: str) -> None:
    _, s3 = signed
    response = send(presigned(s3, bucket))
    assert response.status_code == 204, response.text
    assert body(s3, bucket, "uploads/photo.jpg") == b"form bytes"


def test_a_wrong_signature_is_refused(signed: tuple[EmulatorProcess, Any]) -> None:
    _, s3 = signed
    post = presigned(s3, BUCKET, "uploads/forged.txt")
    forged = "0" * 64
    assert code(send(post, **{"x-amz-signature": forged})) == (403, "SignatureDoesNotMatch")
    other = make_client(
        post["url"].rsplit("/", 1)[0], aws_access_key_id=KEY_ID, aws_secret_access_key="wrong"
    )
    assert code(send(presigned(other, BUCKET, "uploads/forged.txt"))) == (
        403,
        "SignatureDoesNotMatch",
    )
    assert "uploads/forged.txt" not in keys(s3, BUCKET)


def test_an_unsigned_form_is_refused_when_keys_are_set(
    signed: tuple[EmulatorProcess, Any],
) -> None:
    emulator, s3 = signed
    response = requests.post(
        f"{emulator.endpoint_url}/{BUCKET}",
        data={"key": "uploads/anonymous.txt"},
        files={"file": ("a.txt", b"x")},
        timeout=10,
    )
    assert code(response) == (403, "AccessDenied")
    assert "uploads/anonymous.txt" not in keys(s3, BUCKET)


def test_an_expired_policy_is_refused(signed: tuple[EmulatorProcess, Any]) -> None:
    _, s3 = signed
    post = s3.generate_presigned_post(Bucket=BUCKET, Key="uploads/late.txt", ExpiresIn=-60)
    response = send(post)
    assert code(response) == (403, "AccessDenied")
    assert "Policy expired" in response.text


def test_a_key_outside_starts_with_is_refused(signed: tuple[EmulatorProcess, Any]) -> None:
    _, s3 = signed
    response = send(presigned(s3, BUCKET), key="elsewhere/photo.jpg")
    assert code(response) == (403, "AccessDenied")
    assert "Policy Condition failed" in response.text
    assert "elsewhere/photo.jpg" not in keys(s3, BUCKET)


def test_a_form_posted_to_another_bucket_is_refused(
    signed: tuple[EmulatorProcess, Any],
) -> None:
    _, s3 = signed
    post = presigned(s3, BUCKET, "uploads/misdirected.txt")
    post["url"] = post["url"].replace(f"/{BUCKET}", "/forms-fork")
    assert code(send(post)) == (403, "AccessDenied")
    assert "uploads/misdirected.txt" not in keys(s3, "forms-fork")


@pytest.mark.parametrize(
    ("size", "expected"), [(5, (400, "EntityTooSmall")), (50, (400, "EntityTooLarge"))]
)
def test_content_length_range(
    signed: tuple[EmulatorProcess, Any], size: int, expected: tuple[int, str]
) -> None:
    _, s3 = signed
    conditions = [["starts-with", "$key", "uploads/"], ["content-length-range", 10, 20]]
    post = presigned(s3, BUCKET, "uploads/sized.bin", Conditions=conditions)
    assert code(send(post, b"x" * size)) == expected
    assert send(post, b"x" * 15).status_code == 204
    assert body(s3, BUCKET, "uploads/sized.bin") == b"x" * 15


def test_a_field_the_policy_does_not_name_is_refused(
    signed: tuple[EmulatorProcess, Any],
) -> None:
    _, s3 = signed
    response = send(presigned(s3, BUCKET), **{"x-amz-meta-sneaky": "1"})
    assert code(response) == (403, "AccessDenied")
    assert "Extra input fields: x-amz-meta-sneaky" in response.text
    allowed = send(presigned(s3, BUCKET), **{"x-ignore-tracking": "1"})
    assert allowed.status_code == 204


def test_policy_fields_and_metadata_conditions(signed: tuple[EmulatorProcess, Any]) -> None:
    _, s3 = signed
    post = presigned(
        s3,
        BUCKET,
        "uploads/typed.txt",
        Fields={"Content-Type": "text/plain", "x-amz-meta-owner": "alice"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            ["starts-with", "$Content-Type", "text/"],
            {"x-amz-meta-owner": "alice"},
        ],
    )
    assert send(post).status_code == 204
    head = s3.head_object(Bucket=BUCKET, Key="uploads/typed.txt")
    assert (head["ContentType"], head["Metadata"]) == ("text/plain", {"owner": "alice"})
    assert code(send(post, **{"Content-Type": "image/png"})) == (403, "AccessDenied")


def test_without_keys_the_conditions_still_hold(emulator: EmulatorProcess, s3: Any) -> None:
    create_snapshot_bucket(s3, "forms-nokeys")
    policy = {
        "expiration": "2099-01-01T00:00:00Z",
        "conditions": [
            {"bucket": "forms-nokeys"},
            ["starts-with", "$key", "in/"],
            ["content-length-range", 1, 4],
        ],
    }
    fields = {"key": "in/a.txt", "policy": base64.b64encode(json.dumps(policy).encode()).decode()}
    url = f"{emulator.endpoint_url}/forms-nokeys"
    ok = requests.post(url, data=fields, files={"file": ("a", b"abc")}, timeout=10)
    assert ok.status_code == 204
    too_big = requests.post(url, data=fields, files={"file": ("a", b"abcdef")}, timeout=10)
    assert code(too_big) == (400, "EntityTooLarge")
    outside = requests.post(
        url, data={**fields, "key": "out/a.txt"}, files={"file": ("a", b"abc")}, timeout=10
    )
    assert code(outside) == (403, "AccessDenied")
    assert keys(s3, "forms-nokeys") == ["in/a.txt"]
