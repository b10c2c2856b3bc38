"""Secrets and visibility (issue 10, item 8).

Credentials written into the Milvus URI are used and hidden like any other; log lines about failures
pass the scrubber (no tracebacks that quote a credential); the storage endpoint URL is not a secret and
stays visible in messages.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

import attrs
import pytest

from milvus_backup_lib import BackupClient, InvalidOptionError, MilvusConnection, StorageLocation
from milvus_backup_lib.cli.output import to_jsonable
from milvus_backup_lib.milvus._grpc_channel import GrpcChannel, management_url
from milvus_backup_lib.repository.lock import BackupLock
from milvus_backup_lib.storage.location import scrub

PASSWORD = "Sup3r-Secret-pw"
TOKEN = "tok-0123456789abcdef"


def shown(connection: MilvusConnection) -> str:
    """Everything a user may see of a connection: repr, str and the CLI's JSON."""
    return " ".join([repr(connection), str(connection), json.dumps(to_jsonable(connection))])


def test_user_and_password_in_the_uri_are_used_and_hidden() -> None:
    connection = MilvusConnection(uri=f"http://root:{PASSWORD}@milvus.example.com:19530")
    assert connection.uri == "http://milvus.example.com:19530"
    assert (connection.user, connection.password, connection.token) == ("root", PASSWORD, None)
    assert PASSWORD not in shown(connection)
    assert "root" in repr(connection) and "milvus.example.com" in repr(connection)

    channel = GrpcChannel(connection)
    try:
        assert channel._auth == base64.b64encode(f"root:{PASSWORD}".encode()).decode()
        assert PASSWORD not in channel.target
    finally:
        channel.close()
    assert management_url(connection) == "http://milvus.example.com:9091"


def test_a_token_in_the_uri_is_used_and_hidden() -> None:
    connection = MilvusConnection(uri=f"https://{TOKEN}@zilliz.example.com:443")
    assert connection.uri == "https://zilliz.example.com:443"
    assert (connection.user, connection.password, connection.token) == (None, None, TOKEN)
    assert TOKEN not in shown(connection)


def test_uri_credentials_are_percent_decoded_and_work_without_a_scheme() -> None:
    connection = MilvusConnection(uri="root:p%40ss%3Aword@localhost:19530")
    assert (connection.uri, connection.user, connection.password) == ("localhost:19530", "root", "p@ss:word")


def test_hidden_fields_stay_hidden_in_json_and_survive_evolve() -> None:
    connection = MilvusConnection(token=TOKEN, user="u", password=PASSWORD)
    assert TOKEN not in shown(connection) and PASSWORD not in shown(connection)
    moved = attrs.evolve(connection, timeout=5.0)
    assert (moved.token, moved.password, moved.timeout) == (TOKEN, PASSWORD, 5.0)
    assert moved == attrs.evolve(moved)


def test_the_same_credentials_twice_are_fine() -> None:
    connection = MilvusConnection(uri=f"http://root:{PASSWORD}@h:19530", user="root", password=PASSWORD)
    assert (connection.uri, connection.user, connection.password) == ("http://h:19530", "root", PASSWORD)


@pytest.mark.parametrize(
    "kwargs",
    [{"user": "someone_else"}, {"password": "another-password"}, {"token": TOKEN}],
)
def test_conflicting_credentials_are_refused_without_showing_them(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptionError) as info:
        MilvusConnection(uri=f"http://root:{PASSWORD}@h:19530", **kwargs)
    message = str(info.value)
    assert PASSWORD not in message and "another-password" not in message and TOKEN not in message
    assert "differ" in message and f"{next(iter(kwargs))}=" in message
    assert info.value.value is None


def test_the_client_shortcut_takes_uri_credentials() -> None:
    client = BackupClient(
        uri=f"http://root:{PASSWORD}@h:19530", milvus_storage="memory://m", backup_storage="memory://b"
    )
    assert (client.milvus.user, client.milvus.password) == ("root", PASSWORD)
    assert PASSWORD not in repr(client)


def test_the_endpoint_stays_visible_while_the_secret_is_hidden() -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    endpoint = "http://minio.internal.example:9000"
    location = StorageLocation(
        "s3://bucket/backups",
        storage_options={
            "key": "AKIAIOSFODNN7EXAMPLE",
            "secret": secret,
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            "config_kwargs": {"aws_session_token": "session-token-value"},
        },
    )
    text = scrub(
        f"cannot reach {endpoint} (us-east-1) with AKIAIOSFODNN7EXAMPLE/{secret} session-token-value",
        location,
    )
    assert endpoint in text and "us-east-1" in text
    assert secret not in text and "AKIAIOSFODNN7EXAMPLE" not in text and "session-token-value" not in text


def test_azure_and_gcs_credentials_are_hidden_whatever_their_shape() -> None:
    account_key = "bXlzZWNyZXRhY2NvdW50a2V5PT0="
    location = StorageLocation(
        "az://container/root",
        storage_options={
            "account_name": "myaccount",
            "connection_string": f"DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey={account_key}",
            "sas_token": "sv=2024&sig=abcdef123456",
            "token": {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----xyz"},
        },
    )
    text = scrub(
        f"AccountKey={account_key} ?sv=2024&sig=abcdef123456 -----BEGIN PRIVATE KEY-----xyz myaccount",
        location,
    )
    assert account_key not in text and "abcdef123456" not in text and "PRIVATE KEY-----xyz" not in text
    assert "myaccount" in text


def test_a_failed_lock_release_logs_no_credential(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "hunter2-very-secret-token"
    location = StorageLocation(f"memory://secrets-{uuid.uuid4().hex}", storage_options={"token": secret})
    lock = BackupLock(location, "bk1")
    lock.acquire()

    def broken_remove(*args: object) -> bool:
        try:
            raise KeyError(f"signed request with {secret}")
        except KeyError as exc:
            raise OSError(f"cannot delete the lock: {secret}") from exc

    # the conditional delete the release makes
    monkeypatch.setattr("milvus_backup_lib.repository.lock.remove_if", broken_remove)
    with caplog.at_level(logging.DEBUG):
        lock.release()
    assert "could not release the lock on bk1" in caplog.text
    assert secret not in caplog.text
    assert "***" in caplog.text
