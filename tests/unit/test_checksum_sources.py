"""Which MD5s a store vouches for (S3 head_object, GCS md5Hash, Azure Content-MD5), and that everything
else is read: the decisions behind ``compute_checksums`` (the moto test shows them end to end)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from milvus_backup_lib.repository.checksum import compute_checksums, md5_of, s3_head_md5, store_md5
from milvus_backup_lib.storage.location import StorageLocation

DATA = b"binlog bytes" * 1000
MD5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ({"ETag": f'"{MD5}"'}, f"md5:{MD5}"),
        ({"ETag": f'"{MD5.upper()}"', "ServerSideEncryption": "AES256"}, f"md5:{MD5}"),  # SSE-S3 keeps it
        ({"ETag": f'"{MD5}"', "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k"}, None),
        ({"ETag": f'"{MD5}"', "ServerSideEncryption": "aws:kms:dsse"}, None),
        ({"ETag": f'"{MD5}"', "SSECustomerAlgorithm": "AES256", "SSECustomerKeyMD5": "x"}, None),
        ({"ETag": f'"{MD5[:30]}-3"'}, None),  # multipart
        ({"ETag": f'"{MD5}"', "PartsCount": 2}, None),
        ({"ETag": '"not-an-md5-at-all-not-an-md5-at"'}, None),
        ({}, None),
    ],
)
def test_s3_head_object_etag(head: dict[str, object], expected: str | None) -> None:
    assert s3_head_md5(head) == expected


def test_an_etag_without_the_encryption_is_never_taken() -> None:
    # A listing or s3fs's info() does not say whether the object is SSE-KMS: its ETag proves nothing.
    assert store_md5({"ETag": f'"{MD5}"', "size": len(DATA)}) is None
    assert store_md5({"etag": MD5}) is None


def test_gcs_md5hash_and_composite_objects() -> None:
    encoded = base64.b64encode(bytes.fromhex(MD5)).decode()
    assert store_md5({"md5Hash": encoded, "crc32c": "AAAAAA=="}) == f"md5:{MD5}"
    assert store_md5({"componentCount": 3, "crc32c": "AAAAAA==", "etag": "CJ/"}) is None  # composite
    assert store_md5({"md5Hash": "not base64!"}) is None
    assert store_md5({"md5Hash": base64.b64encode(b"short").decode()}) is None


def test_azure_content_md5_only_when_set() -> None:
    class Settings:
        content_md5: bytes | None = None

    assert store_md5({"content_settings": {"content_md5": bytes.fromhex(MD5)}}) == f"md5:{MD5}"
    with_md5 = Settings()
    with_md5.content_md5 = bytes.fromhex(MD5)
    assert store_md5({"content_settings": with_md5}) == f"md5:{MD5}"
    assert store_md5({"content_settings": Settings()}) is None
    assert store_md5({"content_settings": {"content_md5": None}}) is None


def test_local_and_memory_files_are_read_in_chunks() -> None:
    location = StorageLocation("memory://checksum-sources")
    location.write_bytes(location.join("a"), DATA)
    assert md5_of(location, location.join("a"), chunk_size=1000, size=len(DATA)) == f"md5:{MD5}"
    assert compute_checksums(location, [location.join("a")]) == {location.join("a"): f"md5:{MD5}"}
