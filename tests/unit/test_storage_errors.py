"""Storage mistakes told apart, crash-safe local writes, and only library errors from public calls.

The classification is checked here on the real exception shapes (botocore's ``ClientError`` as s3fs
translates it, gcsfs's ``HttpError``, azure-core's errors); the emulators show it end to end in
``tests/integration/test_storage_contract.py`` (moto with IAM authentication on, Azurite's shared key,
a closed port).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from s3fs.errors import translate_boto_error

from cli_logging import logging_restored
from milvus_backup_lib import (
    BucketNotFoundError,
    InvalidConfigError,
    StorageCredentialsError,
    StorageError,
    StorageRootNotFoundError,
    StorageUnreachableError,
    from_milvus_backup_config,
    load_config_file,
)
from milvus_backup_lib.cli import main
from milvus_backup_lib.repository.checksum import compute_checksums, md5_of
from milvus_backup_lib.repository.store import BackupRepository
from milvus_backup_lib.storage import diagnose
from milvus_backup_lib.storage.location import StorageLocation

SECRET = "unit-secret-0b1e-do-not-leak"
ENDPOINT = "http://minio.example:9000"
S3 = StorageLocation(
    "s3://bkt/backups", {"key": "AKIA", "secret": SECRET, "client_kwargs": {"endpoint_url": ENDPOINT}}
)


@pytest.fixture(autouse=True)
def _logging() -> Iterator[None]:
    with logging_restored():
        yield


def _s3_error(code: str, status: int) -> Exception:
    """What s3fs raises for an S3 error answer: a builtin OSError whose cause is the ClientError."""
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} {SECRET}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return translate_boto_error(ClientError(response, "ListObjectsV2"))


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidAccessKeyId", 403, StorageCredentialsError),
        ("SignatureDoesNotMatch", 403, StorageCredentialsError),
        ("AccessDenied", 403, StorageCredentialsError),
        ("403", 403, StorageCredentialsError),  # a HEAD answer has no body, only the status
        ("NoSuchBucket", 404, BucketNotFoundError),
    ],
)
def test_s3_error_shapes_are_classified(code: str, status: int, expected: type[StorageError]) -> None:
    raised = _s3_error(code, status)
    # s3fs makes NoSuchBucket a FileNotFoundError and the credential errors PermissionErrors: the
    # builtin type alone cannot tell a wrong key from a missing bucket, the code in the chain can.
    error = diagnose.classify(S3, "list", "bkt/backups", raised)
    assert type(error) is expected
    assert ENDPOINT in str(error) and "'bkt'" in str(error) and SECRET not in str(error)


def test_other_stores_error_shapes_are_classified() -> None:
    from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
    from gcsfs.retry import HttpError

    gcs = StorageLocation("gs://bkt/backups", {"endpoint_url": ENDPOINT, "token": "anon"})
    assert isinstance(
        diagnose.classify(gcs, "list", "p", HttpError({"code": 401, "message": "x"})), StorageCredentialsError
    )
    assert isinstance(
        diagnose.classify(gcs, "list", "p", OSError("Forbidden: b/bkt/o\nno")), StorageCredentialsError
    )
    azure = StorageLocation(
        "az://box/backups",
        {"connection_string": f"AccountName=a;AccountKey={SECRET};BlobEndpoint={ENDPOINT}/a"},
    )
    auth = ClientAuthenticationError("Server failed to authenticate the request")
    auth.error_code = "AuthenticationFailed"  # type: ignore[assignment]
    error = diagnose.classify(azure, "list", "box/backups", auth)
    assert isinstance(error, StorageCredentialsError) and f"{ENDPOINT}/a" in str(error)
    assert "container 'box'" in str(error) and SECRET not in str(error)
    missing = ResourceNotFoundError("The specified container does not exist.")
    missing.error_code = "ContainerNotFound"  # type: ignore[assignment]
    assert isinstance(diagnose.classify(azure, "list", "box/backups", missing), BucketNotFoundError)
    # a missing file stays a missing file: the funnel passes FileNotFoundError through
    assert diagnose.classify(S3, "read", "bkt/x", FileNotFoundError("bkt/x")) is None


def test_refused_connection_is_unreachable_naming_the_endpoint() -> None:
    error = diagnose.classify(S3, "list", "bkt/backups", ConnectionRefusedError(111, "Connection refused"))
    assert isinstance(error, StorageUnreachableError) and isinstance(error, ConnectionError)
    assert ENDPOINT in str(error)
    assert not error.retryable


def test_endpoint_urls() -> None:
    assert diagnose.endpoint_url(S3) == ENDPOINT
    assert diagnose.endpoint_url(StorageLocation("s3://b", {"endpoint_url": ENDPOINT})) == ENDPOINT
    assert diagnose.endpoint_url(StorageLocation("s3://b")) == "https://s3.amazonaws.com"
    assert diagnose.endpoint_url(StorageLocation("gs://b")) == "https://storage.googleapis.com"
    assert (
        diagnose.endpoint_url(StorageLocation("az://b", {"account_name": "acct"}))
        == "https://acct.blob.core.windows.net"
    )
    assert diagnose.endpoint_url(StorageLocation("/srv/backups")) == ""


def test_the_four_errors_are_distinct_storage_errors() -> None:
    errors = (StorageCredentialsError, StorageUnreachableError, StorageRootNotFoundError, BucketNotFoundError)
    assert all(issubclass(e, StorageError) for e in errors)
    assert issubclass(BucketNotFoundError, StorageRootNotFoundError)  # old `except` clauses still catch it
    assert not issubclass(StorageCredentialsError, StorageRootNotFoundError)
    assert not issubclass(StorageUnreachableError, StorageRootNotFoundError)


# --------------------------------------------------------------------------- local roots


def test_listing_a_missing_local_root_fails(tmp_path: Path) -> None:
    repository = BackupRepository(StorageLocation(str(tmp_path / "absent")))
    for call in (repository.summaries, lambda: repository.read("nightly")):
        with pytest.raises(StorageRootNotFoundError, match="absent"):
            call()
    (tmp_path / "absent").mkdir()
    assert repository.summaries() == []  # a root that exists, empty: 0 backups


def _config(tmp_path: Path) -> None:
    (tmp_path / "milvus").mkdir(exist_ok=True)
    (tmp_path / "backup.yaml").write_text(
        "configVersion: v2\n"
        f"milvus:\n  storage:\n    provider: local\n    rootPath: {tmp_path / 'milvus'}\n"
        f"backup:\n  storage:\n    provider: local\n    rootPath: {tmp_path / 'backups'}\n"
    )


def test_cli_list_and_verify_on_a_missing_root_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """They printed "0 backups" and exited 0: a retention or monitoring script took that as fine."""
    _config(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 1
    assert "backups' of 'file://" in capsys.readouterr().err
    assert main(["verify", "-n", "nightly"]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "backups").mkdir()
    assert main(["list"]) == 0
    assert "0 backup(s)" in capsys.readouterr().out


# --------------------------------------------------------------------------- crash-safe local writes


def test_local_write_is_fsynced_and_renamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    location = StorageLocation(str(tmp_path))
    target = location.join("b/meta/backup_meta.json")
    location.write_bytes(target, b"old")
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    location.write_bytes(target, b"new")
    assert Path(target).read_bytes() == b"new" and synced == ["file", "dir"]

    # A crash between writing and renaming leaves the old file whole, and no temporary behind.
    def crash(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="backup_meta.json"):
        location.write_bytes(target, b"torn")
    assert Path(target).read_bytes() == b"new"
    assert os.listdir(Path(target).parent) == ["backup_meta.json"]


# --------------------------------------------------------------------------- only library errors


def test_a_vanished_file_in_the_checksum_phase_is_a_storage_error(tmp_path: Path) -> None:
    location = StorageLocation(str(tmp_path))
    gone = location.join("binlogs/insert_log/1/2/3/100/4")
    for call in (lambda: md5_of(location, gone), lambda: compute_checksums(location, [gone])):
        with pytest.raises(StorageError, match="insert_log/1/2/3/100/4 in .* vanished") as info:
            call()
        assert isinstance(info.value.__cause__, FileNotFoundError)


def test_a_self_referencing_yaml_config_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "backup.yaml"
    config.write_text("milvus: &loop\n  again: *loop\n")
    with pytest.raises(InvalidConfigError, match=r"backup.yaml: milvus.again: the mapping contains itself"):
        load_config_file(config)
    looped: dict[str, Any] = {}
    looped["minio"] = looped
    with pytest.raises(InvalidConfigError, match="^minio: the mapping contains itself"):
        from_milvus_backup_config(looped)


def test_an_os_error_escaping_a_public_call_becomes_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The net behind the translations: whatever a third-party filesystem lets escape."""
    from milvus_backup_lib import BackupClient

    client = BackupClient(milvus_storage=str(tmp_path), backup_storage=str(tmp_path))

    def vanished(self: object) -> None:
        raise FileNotFoundError(2, "No such file or directory", f"{tmp_path}/nightly/meta/{SECRET}")

    monkeypatch.setattr(BackupRepository, "summaries", vanished)
    with pytest.raises(
        StorageError, match=r"list_backups failed on storage: FileNotFoundError .*nightly/meta"
    ):
        client.list_backups()
    assert client.list_backups.__name__ == "list_backups"  # the wrapper keeps the method's face


def test_gcs_refusing_the_token_is_a_credentials_error_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """fake-gcs-server accepts any token, so a tiny local server answers every request as GCS does a
    bad token (401 "Invalid Credentials"). gcsfs retries that six times (over 30 s); the probe asks once."""
    import http.server
    import threading
    import time

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"error": {"code": 401, "message": "Invalid Credentials"}}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    monkeypatch.setenv("FETCH_RAW_TOKEN_EXPIRY", "false")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        location = StorageLocation(
            "gs://bkt/backups", {"endpoint_url": endpoint, "token": SECRET, "project": "p"}
        )
        started = time.monotonic()
        with pytest.raises(StorageCredentialsError) as info:
            location.check_root()
        assert time.monotonic() - started < 10
        assert endpoint in str(info.value) and SECRET not in str(info.value)
    finally:
        server.shutdown()
        server.server_close()
