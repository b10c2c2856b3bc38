"""Honest checksums on S3 (moto): an ETag counts as an MD5 only where S3 says it is one.

AWS documents that the ETag of an object encrypted with SSE-KMS or SSE-C, and of a multipart upload, is
not the MD5 of its data (S3 API reference, ``Object``: ``ETag``). moto computes every single-part ETag
as the MD5, encrypted or not; so that the test sees what AWS sends, a botocore hook on the client
replaces the ETag of SSE-KMS objects (in ``HeadObject`` and in listings of the encrypted bucket) with a
value shaped like an MD5 that is not the MD5, as AWS's is. Everything else is moto's own answer.
"""

from __future__ import annotations

import hashlib
import os
import struct
import uuid
from typing import Any

import pytest

from milvus_backup_lib import BackupClient, MilvusConnection
from milvus_backup_lib.manifest.model import CollectionSchema, DataType
from milvus_backup_lib.repository.checksum import compute_checksums, s3_head_md5, store_checksum
from milvus_backup_lib.storage.location import StorageLocation
from milvus_backup_lib.testing.memory import InMemoryMilvus, field

pytestmark = pytest.mark.integration

boto3 = pytest.importorskip("boto3")


def _aws_kms_etag(etag: str) -> str:
    """What AWS might send for an SSE-KMS object: 32 hex digits that are not the MD5 of the data."""
    return '"' + hashlib.md5(b"kms:" + etag.encode(), usedforsecurity=False).hexdigest() + '"'


class AwsEtags:
    """Rewrites the ETags of SSE-KMS objects as AWS sends them, on the s3fs client of ``location``."""

    def __init__(self, location: StorageLocation, kms_bucket: str) -> None:
        self.events = location.fs.s3.meta.events
        self.kms_bucket = kms_bucket
        self.rewritten = 0
        #: AWS's ETag -> moto's, so that a read conditioned on AWS's (s3fs sends If-Match) finds the object.
        self.moto_etag: dict[str, str] = {}

    def _rewrite(self, etag: str) -> str:
        aws = _aws_kms_etag(etag)
        self.moto_etag[aws] = etag
        self.rewritten += 1
        return aws

    def head(self, parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("ServerSideEncryption") == "aws:kms" and "ETag" in parsed:
            parsed["ETag"] = self._rewrite(parsed["ETag"])

    def listing(self, parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Name") == self.kms_bucket:  # every object there is SSE-KMS (the bucket default)
            for entry in parsed.get("Contents") or ():
                entry["ETag"] = self._rewrite(entry["ETag"])

    def conditional_read(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("IfMatch") in self.moto_etag:
            params["IfMatch"] = self.moto_etag[params["IfMatch"]]

    def __enter__(self) -> AwsEtags:
        self.events.register("after-call.s3.HeadObject", self.head)
        self.events.register("after-call.s3.ListObjectsV2", self.listing)
        self.events.register("before-parameter-build.s3.GetObject", self.conditional_read)
        return self

    def __exit__(self, *exc: object) -> None:
        self.events.unregister("after-call.s3.HeadObject", self.head)
        self.events.unregister("after-call.s3.ListObjectsV2", self.listing)
        self.events.unregister("before-parameter-build.s3.GetObject", self.conditional_read)


@pytest.fixture
def kms_bucket(s3_server: Any) -> tuple[str, str, Any]:
    """A bucket whose default encryption is SSE-KMS with a key moto's KMS made: (bucket, key id, s3 client)."""
    options = dict(
        endpoint_url=s3_server.endpoint,
        aws_access_key_id="moto-access-key",
        aws_secret_access_key="moto-secret-key",
        region_name="us-east-1",
    )
    key_id = boto3.client("kms", **options).create_key(Description="backup test")["KeyMetadata"]["KeyId"]
    bucket = f"kms-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", **options)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}
            ]
        },
    )
    return bucket, key_id, s3


def _md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_only_etags_s3_vouches_for_are_taken(s3_server: Any, kms_bucket: tuple[str, str, Any]) -> None:
    bucket, _, s3 = kms_bucket
    plain_bucket = f"plain-{uuid.uuid4().hex[:10]}"
    location = s3_server.location(plain_bucket)
    data = {
        name: name.encode() + os.urandom(5 * 2**20 + 17) for name in ("plain", "sse_s3", "kms", "multipart")
    }
    s3.put_object(Bucket=plain_bucket, Key="plain", Body=data["plain"])
    s3.put_object(Bucket=plain_bucket, Key="sse_s3", Body=data["sse_s3"], ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket, Key="kms", Body=data["kms"])  # the bucket default: SSE-KMS
    upload = s3.create_multipart_upload(Bucket=plain_bucket, Key="multipart")
    body = data["multipart"]
    parts = []
    for number, start in enumerate((0, 5 * 2**20), start=1):
        part = s3.upload_part(
            Bucket=plain_bucket,
            Key="multipart",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body[start : start + 5 * 2**20],
        )
        parts.append({"ETag": part["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=plain_bucket, Key="multipart", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    paths = {
        "plain": f"{plain_bucket}/plain",
        "sse_s3": f"{plain_bucket}/sse_s3",
        "kms": f"{bucket}/kms",
        "multipart": f"{plain_bucket}/multipart",
    }
    with AwsEtags(location, bucket) as aws:
        vouched = {name: store_checksum(location, path)[0] for name, path in paths.items()}
        assert aws.rewritten >= 1
        # Single-part, unencrypted or SSE-S3: the ETag is the MD5 and is taken without reading.
        assert vouched["plain"] == _md5(data["plain"]) and vouched["sse_s3"] == _md5(data["sse_s3"])
        # SSE-KMS and multipart: S3 does not vouch; the file is read instead.
        assert vouched["kms"] is None and vouched["multipart"] is None
        head = s3.head_object(Bucket=bucket, Key="kms")
        assert head["ServerSideEncryption"] == "aws:kms" and s3_head_md5(head) is None
        computed = compute_checksums(location, list(paths.values()))
    assert computed == {paths[name]: _md5(data[name]) for name in paths}


def test_a_backup_into_an_sse_kms_bucket_verifies_and_still_catches_a_change(
    s3_server: Any, kms_bucket: tuple[str, str, Any]
) -> None:
    """Server-side copies inside one SSE-KMS bucket: their checksums must not come from the ETags."""
    bucket, _, s3 = kms_bucket
    cluster = InMemoryMilvus("2.4.10")
    schema = CollectionSchema(
        fields=(field("pk", DataType.INT64, primary=True), field("vec", DataType.FLOAT_VECTOR, dim=4))
    )
    cluster.create_collection("default", "c", schema, shards_num=1)
    for batch in (range(0, 40), range(40, 90)):
        cluster.insert("default", "c", [{"pk": pk, "vec": struct.pack("<4f", pk, 1, 2, 3)} for pk in batch])
        cluster.flush("default", "c")
    milvus_files = s3_server.location(bucket, "milvus/files")
    source = cluster.storage
    for path in source.fs.find(source.root):  # the cluster's binlogs, mirrored into the KMS bucket
        relative = path[len(source.root.rstrip("/")) + 1 :]
        milvus_files.write_bytes(milvus_files.join(relative), source.fs.cat_file(path))
    backups = s3_server.location(bucket, "backups")
    bk = BackupClient(MilvusConnection(), milvus_files, backups, milvus_factory=cluster.factory)
    with AwsEtags(backups, bucket) as aws:  # the whole test sees the ETags AWS would send
        report = bk.create_backup("kms_backup")
        assert report.server_side_copy and report.files > 0
        assert aws.rewritten > 0  # the ETags the backup saw were AWS's, not MD5s
        meta = bk.repository.read_library_meta("kms_backup")
        assert meta is not None
        relative = sorted(meta.checksums)[0]
        stored = bk.repository.path("kms_backup", relative)
        bucket_name, key, _ = backups.fs.split_path(stored)
        assert s3.head_object(Bucket=bucket_name, Key=key)["ServerSideEncryption"] == "aws:kms"
        result = bk.verify_backup("kms_backup", level="checksum")
        assert result.ok and result.level_applied == "checksum", result.table()

        data = bytearray(backups.fs.cat_file(stored))
        data[len(data) // 2] ^= 0xFF  # same size, one byte changed
        backups.fs.pipe_file(stored, bytes(data))
        backups.fs.invalidate_cache()
        damaged = bk.verify_backup("kms_backup", level="checksum")
        assert not damaged.ok and [path for path, _, _ in damaged.corrupt] == [relative]
