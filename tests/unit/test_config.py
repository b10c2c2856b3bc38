"""Reading the Go milvus-backup tool's backup.yaml (v1 and configVersion v2) into a ToolConfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from milvus_backup_lib.backup_yaml import (
    InvalidConfigError,
    ToolConfig,
    from_milvus_backup_config,
    load_config_file,
)
from milvus_backup_lib.errors import MilvusBackupError

SECRET = "s3cr3t-Passw0rd-XYZ"
ACCOUNT_KEY = "YXp1cml0ZS1rZXktdGhhdC1pcy1zZWNyZXQ="

# configs/backup.yaml of the Go tool (v0.5.x), abridged to the parts this library reads plus a few it ignores.
GO_SAMPLE_V1 = """\
log:
  level: info
  console: true
  file:
    filename: "logs/backup.log"
http:
  simpleResponse: true
cloud:
  address: https://api.cloud.zilliz.com
  apikey: <your-api-key>
milvus:
  address: localhost
  port: 19530
  user: "root"
  password: "Milvus"
  tlsMode: 0
  caCertPath: ""
  serverName: ""
  mtlsCertPath: ""
  mtlsKeyPath: ""
  rpcChannelName: "by-dev-replicate-msg"
minio:
  storageType: "minio"
  address: localhost
  port: 9000
  region: ""
  accessKeyID: minioadmin
  secretAccessKey: minioadmin
  token: ""
  gcpCredentialJSON: "/path/to/json-key-file"
  useSSL: false
  useIAM: false
  iamEndpoint: ""
  bucketName: "a-bucket"
  rootPath: "files"
  backupStorageType: "minio"
  backupAddress: localhost
  backupRegion: ""
  backupPort: 9000
  backupAccessKeyID: minioadmin
  backupSecretAccessKey: minioadmin
  backupToken: ""
  backupGcpCredentialJSON: "/path/to/json-key-file"
  backupBucketName: "a-bucket"
  backupRootPath: "backup"
  backupUseSSL: false
  crossStorage: "false"
backup:
  parallelism:
    copydata: 128
    backupCollection: 4
  keepTempFiles: false
  gcPause:
    enable: true
    address: http://localhost:9091
"""


def load(text: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "backup.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config_file(path)


def convert(config: dict[str, Any], env: dict[str, str] | None = None, **sets: str) -> ToolConfig:
    return from_milvus_backup_config(config, env=env or {}, set_values=sets or None)


def error_of(config: dict[str, Any], env: dict[str, str] | None = None, **sets: str) -> str:
    with pytest.raises(InvalidConfigError) as info:
        convert(config, env, **sets)
    return str(info.value)


# --- v1 ----------------------------------------------------------------------------------------------------


def test_v1_go_sample_file(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    tool = convert(load(GO_SAMPLE_V1, tmp_path))
    assert tool.milvus.uri == "http://localhost:19530"
    assert tool.milvus.user == "root" and tool.milvus.password == "Milvus"
    assert tool.milvus.management_url == "http://localhost:9091"
    assert tool.milvus.ca_cert_path is None and tool.milvus.server_name is None
    minio = {
        "key": "minioadmin",
        "secret": "minioadmin",
        "client_kwargs": {"endpoint_url": "http://localhost:9000"},
    }
    assert tool.milvus_storage.url == "s3://a-bucket/files"
    assert dict(tool.milvus_storage.storage_options) == minio
    assert tool.backup_storage.url == "s3://a-bucket/backup"
    assert dict(tool.backup_storage.storage_options) == minio
    assert tool.milvus_storage.same_store(tool.backup_storage)
    assert tool.milvus_local_path is None


def test_v1_defaults_and_backup_root_inherits_milvus_root_path() -> None:
    # The Go tool's v1 rule: an unset backupRootPath is minio.rootPath ("files" by default), and
    # "backup" only when rootPath is empty; backups made that way must be found where they are.
    tool = convert({})
    assert tool.milvus.uri == "http://localhost:19530"
    assert tool.milvus.management_url is None  # derived from the uri, not the Go default localhost:9091
    assert tool.milvus_storage.url == "s3://a-bucket/files"
    assert tool.backup_storage.url == "s3://a-bucket/files"
    assert convert({"minio": {"rootPath": "milvus-root"}}).backup_storage.url == "s3://a-bucket/milvus-root"
    assert convert({"minio": {"rootPath": ""}}).backup_storage.url == "s3://a-bucket/backup"


def test_v1_backup_side_inherits_unset_keys_from_milvus_side() -> None:
    tool = convert(
        {
            "minio": {
                "address": "minio.internal",
                "port": 9010,
                "useSSL": True,
                "accessKeyID": "AK",
                "secretAccessKey": SECRET,
                "token": "session",
                "region": "eu-1",
                "bucketName": "milvus-bucket",
                "rootPath": "/files/",
                "backupBucketName": "backups",
                "backupRootPath": "nightly",
            }
        }
    )
    expected = {
        "key": "AK",
        "secret": SECRET,
        "token": "session",
        "client_kwargs": {"endpoint_url": "https://minio.internal:9010", "region_name": "eu-1"},
    }
    assert tool.milvus_storage.url == "s3://milvus-bucket/files"
    assert dict(tool.milvus_storage.storage_options) == expected
    assert tool.backup_storage.url == "s3://backups/nightly"
    assert dict(tool.backup_storage.storage_options) == expected


def test_v1_backup_side_overrides() -> None:
    tool = convert(
        {
            "minio": {
                "storageType": "minio",
                "backupStorageType": "s3",
                "backupAddress": "s3.us-west-2.amazonaws.com",
                "backupPort": 443,
                "backupUseSSL": True,
                "backupAccessKeyID": "BACKUPAK",
                "backupSecretAccessKey": SECRET,
                "backupBucketName": "b",
            }
        }
    )
    assert tool.backup_storage.url == "s3://b/files"
    assert dict(tool.backup_storage.storage_options) == {
        "key": "BACKUPAK",
        "secret": SECRET,
        "client_kwargs": {"endpoint_url": "https://s3.us-west-2.amazonaws.com:443"},
    }
    assert not tool.milvus_storage.same_store(tool.backup_storage)


def test_v1_cross_storage_milvus_on_minio_backup_on_azure() -> None:
    config = {
        "minio": {
            "storageType": "minio",
            "address": "minio",
            "port": 9000,
            "accessKeyID": "minioadmin",
            "secretAccessKey": "minioadmin",
            "bucketName": "milvus-bucket",
            "rootPath": "files",
            "backupStorageType": "azure",
            "backupAccessKeyID": "backupaccount",
            "backupSecretAccessKey": ACCOUNT_KEY,
            "backupBucketName": "backup-container",
            "backupRootPath": "milvus",
        }
    }
    tool = convert(config)
    assert tool.milvus_storage.url == "s3://milvus-bucket/files"
    assert tool.backup_storage.url == "az://backup-container/milvus"
    # MinIO's address, port and keys are not handed to the Azure side (upstream #642).
    assert dict(tool.backup_storage.storage_options) == {
        "account_name": "backupaccount",
        "account_key": ACCOUNT_KEY,
    }
    assert tool.backup_storage.protocol == "az"

    real_azure = dict(config["minio"], backupAddress="core.windows.net", backupPort=443, backupUseSSL=True)
    options = convert({"minio": real_azure}).backup_storage.storage_options
    assert dict(options) == {"account_name": "backupaccount", "account_key": ACCOUNT_KEY}

    china = dict(config["minio"], backupAddress="core.chinacloudapi.cn", backupPort=443)
    options = convert({"minio": china}).backup_storage.storage_options
    assert options["account_host"] == "backupaccount.blob.core.chinacloudapi.cn"


def test_v1_cross_storage_bucket_name_still_inherited() -> None:
    tool = convert(
        {
            "minio": {
                "bucketName": "shared",
                "backupStorageType": "azure",
                "backupAccessKeyID": "acct",
                "backupSecretAccessKey": ACCOUNT_KEY,
            }
        }
    )
    assert tool.backup_storage.url == "az://shared/files"


def test_v1_azurite_gets_a_connection_string() -> None:
    tool = convert(
        {
            "minio": {
                "storageType": "azure",
                "address": "127.0.0.1",
                "port": 10000,
                "accessKeyID": "devstoreaccount1",
                "secretAccessKey": ACCOUNT_KEY,
                "bucketName": "milvus",
                "rootPath": "files",
                "backupBucketName": "backups",
                "backupRootPath": "backup",
            }
        }
    )
    options = tool.milvus_storage.storage_options
    assert options["account_name"] == "devstoreaccount1"
    assert options["connection_string"] == (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    )
    assert tool.backup_storage.url == "az://backups/backup"
    assert tool.milvus_storage.same_store(tool.backup_storage)
    assert type(tool.milvus_storage.fs).__name__ == "AzureBlobFileSystem"  # the options are ones adlfs takes
    assert ACCOUNT_KEY not in repr(tool)


def test_v1_azure_use_iam_has_no_key() -> None:
    tool = convert(
        {"minio": {"storageType": "azure", "address": "", "accessKeyID": "acct", "useIAM": "true"}}
    )
    assert dict(tool.milvus_storage.storage_options) == {"account_name": "acct", "anon": False}


def test_v1_env_overrides() -> None:
    env = {
        "MILVUS_ADDRESS": "milvus.svc",
        "MILVUS_PORT": "19531",
        "MILVUS_USER": "admin",
        "MILVUS_PASSWORD": SECRET,
        "MILVUS_TLS_MODE": "1",
        "MILVUS_CA_CERT_PATH": "/certs/ca.pem",
        "MILVUS_SERVER_NAME": "milvus.example",
        "MINIO_ADDRESS": "minio.svc",
        "MINIO_PORT": "9443",
        "MINIO_ACCESS_KEY": "ENVAK",
        "MINIO_SECRET_KEY": SECRET,
        "MINIO_USE_SSL": "true",
        "MINIO_BUCKET_NAME": "env-bucket",
        "MINIO_ROOT_PATH": "env-root",
        "MINIO_BACKUP_BUCKET_NAME": "env-backups",
        "MINIO_BACKUP_ROOT_PATH": "",  # empty variables count as unset
        "BACKUP_GC_PAUSE_ADDRESS": "http://milvus.svc:9091/",
    }
    file = {
        "milvus": {"address": "file-host", "port": 1},
        "minio": {"address": "file-minio", "bucketName": "file-bucket", "backupRootPath": "file-backups"},
    }
    tool = convert(file, env)
    assert tool.milvus.uri == "https://milvus.svc:19531"
    assert (tool.milvus.user, tool.milvus.password) == ("admin", SECRET)
    assert (tool.milvus.ca_cert_path, tool.milvus.server_name) == ("/certs/ca.pem", "milvus.example")
    assert tool.milvus.management_url == "http://milvus.svc:9091"
    assert tool.milvus_storage.url == "s3://env-bucket/env-root"
    assert tool.milvus_storage.storage_options["key"] == "ENVAK"
    assert tool.milvus_storage.storage_options["client_kwargs"] == {"endpoint_url": "https://minio.svc:9443"}
    assert tool.backup_storage.url == "s3://env-backups/file-backups"
    assert tool.backup_storage.storage_options["client_kwargs"] == {"endpoint_url": "https://minio.svc:9443"}


def test_env_none_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIO_BUCKET_NAME", "from-os-environ")
    assert from_milvus_backup_config({}).milvus_storage.url == "s3://from-os-environ/files"
    assert from_milvus_backup_config({}, env={}).milvus_storage.url == "s3://a-bucket/files"


def test_set_values_win_over_env_and_file() -> None:
    file = {"minio": {"bucketName": "file-bucket", "address": "file-host"}, "milvus": {"port": 19530}}
    env = {"MINIO_BUCKET_NAME": "env-bucket", "MINIO_ADDRESS": "env-host", "MILVUS_PORT": "19531"}
    tool = from_milvus_backup_config(
        file,
        env=env,
        # a config key (any case) or an environment variable name, as the Go tool's --set takes
        set_values={"MINIO.BUCKETNAME": "set-bucket", "MINIO_ADDRESS": "set-host"},
    )
    assert tool.milvus_storage.url == "s3://set-bucket/files"
    assert tool.milvus_storage.storage_options["client_kwargs"]["endpoint_url"] == "http://set-host:9000"
    assert tool.milvus.uri == "http://localhost:19531"  # env > file
    assert convert(file, env, **{"milvus.port": "19532"}).milvus.uri == "http://localhost:19532"


def test_flat_dotted_keys_are_expanded() -> None:
    nested = {"milvus": {"address": "m", "port": 19531}, "minio": {"address": "s", "bucketName": "b"}}
    dotted = {"milvus.address": "m", "milvus.port": "19531", "minio.address": "s", "minio.bucketName": "b"}
    mixed = {
        "milvus": {"address": "m"},
        "milvus.port": 19531,
        "minio": {"address": "s"},
        "MINIO.BUCKETNAME": "b",
    }
    results = [convert(c) for c in (nested, dotted, mixed)]
    assert results[0] == results[1] == results[2]
    assert results[0].milvus.uri == "http://m:19531"
    assert results[0].milvus_storage.url == "s3://b/files"
    assert "given twice" in error_of({"minio": {"address": "a"}, "minio.address": "b"})


def test_tls_modes() -> None:
    assert (
        convert({"milvus": {"tlsMode": 1, "caCertPath": "/ca.pem"}}).milvus.uri == "https://localhost:19530"
    )
    # tlsMode 2 without a client key pair is server TLS in the Go tool's v1
    assert convert({"milvus": {"tlsMode": 2}}).milvus.uri == "https://localhost:19530"
    assert convert({"milvus": {"address": "::1"}}).milvus.uri == "http://[::1]:19530"


# --- other providers -----------------------------------------------------------------------------------------


def test_aws_without_address_uses_the_default_endpoint() -> None:
    tool = convert({"minio": {"storageType": "aws", "address": "", "region": "us-east-1", "useIAM": True}})
    assert dict(tool.milvus_storage.storage_options) == {
        "anon": False,
        "client_kwargs": {"region_name": "us-east-1"},
    }


def test_aliases_and_virtual_hosted_providers() -> None:
    tool = convert(
        {
            "minio": {
                "cloudProvider": "ali",
                "address": "oss-cn-hangzhou.aliyuncs.com",
                "port": 443,
                "useSSL": True,
            }
        }
    )
    options = tool.milvus_storage.storage_options
    assert options["config_kwargs"] == {"s3": {"addressing_style": "virtual"}}
    assert options["client_kwargs"]["endpoint_url"] == "https://oss-cn-hangzhou.aliyuncs.com:443"
    assert convert({"storage": {"storageType": "tc"}}).milvus_storage.storage_options["config_kwargs"]
    assert type(tool.milvus_storage.fs).__name__ == "S3FileSystem"


def test_gcp_hmac_keys_use_the_s3_interop_api() -> None:
    tool = convert(
        {
            "minio": {
                "storageType": "gcp",
                "address": "storage.googleapis.com",
                "port": 443,
                "useSSL": True,
                "accessKeyID": "GOOG1",
                "secretAccessKey": SECRET,
            }
        }
    )
    assert tool.milvus_storage.url == "s3://a-bucket/files"
    assert dict(tool.milvus_storage.storage_options) == {
        "key": "GOOG1",
        "secret": SECRET,
        "client_kwargs": {"endpoint_url": "https://storage.googleapis.com:443", "region_name": "auto"},
    }


def test_gcp_with_iam_and_gcpnative_use_gcs() -> None:
    iam = convert({"minio": {"storageType": "gcp", "useIAM": True, "address": "storage.googleapis.com"}})
    assert iam.milvus_storage.url == "gs://a-bucket/files"
    assert dict(iam.milvus_storage.storage_options) == {"token": "google_default"}

    native = convert(
        {
            "minio": {
                "storageType": "gcpnative",
                "address": "storage.googleapis.com",
                "port": 443,
                "gcpCredentialJSON": "/keys/sa.json",
            }
        }
    )
    assert dict(native.milvus_storage.storage_options) == {"token": "/keys/sa.json"}
    # backupGcpCredentialJSON is the one credential v1 does not inherit
    assert dict(native.backup_storage.storage_options) == {"token": "google_default"}

    inline = json.dumps({"type": "service_account", "private_key": SECRET})
    emulator = convert(
        {
            "minio": {
                "storageType": "gcpnative",
                "address": "fake-gcs",
                "port": 4443,
                "gcpCredentialJSON": inline,
            }
        }
    )
    assert emulator.milvus_storage.storage_options["token"] == json.loads(inline)
    assert emulator.milvus_storage.storage_options["endpoint_url"] == "http://fake-gcs:4443"
    assert SECRET not in repr(emulator)


def test_v1_local_storage(tmp_path: Path) -> None:
    tool = convert(
        {
            "minio": {
                "storageType": "local",
                "rootPath": str(tmp_path / "milvus"),
                "backupRootPath": str(tmp_path / "backups"),
            }
        }
    )
    assert tool.milvus_storage.url == f"file://{tmp_path / 'milvus'}"
    assert tool.backup_storage.url == f"file://{tmp_path / 'backups'}"
    assert tool.milvus_storage.storage_options == {}


# --- v2 ----------------------------------------------------------------------------------------------------

V2_LOCAL = """\
configVersion: v2
milvus:
  user: root
  password: {password}
  grpc:
    address: milvus.example
    port: 443
    tlsMode: server
    caCertPath: /certs/ca.pem
    serverName: milvus.example
  management:
    endpoint: http://milvus.example:9091
  storage:
    provider: local
    rootPath: {milvus_root}
    localPath: /var/lib/milvus/data
backup:
  storage:
    provider: local
    rootPath: {backup_root}
"""


def test_v2_local_provider(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    text = V2_LOCAL.format(password=SECRET, milvus_root=tmp_path / "milvus", backup_root=tmp_path / "backups")
    tool = convert(load(text, tmp_path))
    assert tool.milvus.uri == "https://milvus.example:443"
    assert (tool.milvus.user, tool.milvus.password) == ("root", SECRET)
    assert (tool.milvus.ca_cert_path, tool.milvus.server_name) == ("/certs/ca.pem", "milvus.example")
    assert tool.milvus.management_url == "http://milvus.example:9091"
    # rootPath is the directory this process reaches; localPath the same directory as Milvus sees it
    assert tool.milvus_storage.url == f"file://{tmp_path / 'milvus'}"
    assert tool.milvus_local_path == "/var/lib/milvus/data"
    assert tool.backup_storage.url == f"file://{tmp_path / 'backups'}"
    assert SECRET not in repr(tool) and SECRET not in str(tool)


def test_v2_local_path_alone_is_the_directory() -> None:
    tool = convert(
        {"configVersion": "v2", "milvus": {"storage": {"provider": "local", "localPath": "/data/milvus"}}}
    )
    assert tool.milvus_storage.url == "file:///data/milvus"
    assert tool.milvus_local_path is None


def test_v2_defaults_inheritance_and_backup_root() -> None:
    tool = convert(
        {
            "configVersion": "v2",
            "milvus": {
                "storage": {
                    "provider": "s3",
                    "address": "s3.amazonaws.com",
                    "port": 443,
                    "useSSL": True,
                    "region": "us-west-2",
                    "bucketName": "milvus-data",
                    "rootPath": "files",
                    "auth": {"type": "iam"},
                }
            },
        }
    )
    assert tool.milvus.uri == "http://localhost:19530"
    expected = {
        "anon": False,
        "client_kwargs": {"endpoint_url": "https://s3.amazonaws.com:443", "region_name": "us-west-2"},
    }
    assert dict(tool.milvus_storage.storage_options) == expected
    assert tool.milvus_storage.url == "s3://milvus-data/files"
    assert tool.backup_storage.url == "s3://milvus-data/backup"  # v2: rootPath is not inherited
    assert dict(tool.backup_storage.storage_options) == expected


def test_v2_credential_env_vars_only() -> None:
    config = {
        "configVersion": "v2",
        "milvus": {"storage": {"provider": "minio", "address": "minio"}},
        "backup": {"storage": {"provider": "azure", "accountName": "file-account", "bucketName": "c"}},
    }
    env = {
        "MILVUS_USER": "root",
        "MILVUS_PASSWORD": SECRET,
        "MILVUS_STORAGE_AUTH_ACCESS_KEY_ID": "ENVAK",
        "MILVUS_STORAGE_AUTH_SECRET_ACCESS_KEY": SECRET,
        "MILVUS_STORAGE_AUTH_SESSION_TOKEN": "session",
        "BACKUP_STORAGE_ACCOUNT_NAME": "envaccount",
        "BACKUP_STORAGE_AUTH_ACCOUNT_KEY": ACCOUNT_KEY,
        # not read by v2 (Kubernetes sets MILVUS_PORT=tcp://... for a service named milvus)
        "MILVUS_PORT": "tcp://10.0.0.1:19530",
        "MILVUS_ADDRESS": "ignored",
        "MINIO_ADDRESS": "ignored",
        "MINIO_BUCKET_NAME": "ignored",
    }
    tool = convert(config, env)
    assert tool.milvus.uri == "http://localhost:19530"
    assert (tool.milvus.user, tool.milvus.password) == ("root", SECRET)
    assert dict(tool.milvus_storage.storage_options) == {
        "key": "ENVAK",
        "secret": SECRET,
        "token": "session",
        "client_kwargs": {"endpoint_url": "http://minio:9000"},
    }
    assert tool.backup_storage.url == "az://c/backup"
    assert dict(tool.backup_storage.storage_options) == {
        "account_name": "envaccount",
        "account_key": ACCOUNT_KEY,
    }


def test_v2_set_values_take_config_keys_and_credential_env_names() -> None:
    config = {"configVersion": "v2", "milvus": {"grpc": {"port": 19530}}}
    tool = convert(
        config,
        {"MILVUS_STORAGE_AUTH_SECRET_ACCESS_KEY": "from-env"},
        **{"milvus.grpc.port": "19541", "MILVUS_STORAGE_AUTH_SECRET_ACCESS_KEY": SECRET},
    )
    assert tool.milvus.uri == "http://localhost:19541"
    assert tool.milvus_storage.storage_options["secret"] == SECRET


def test_v2_gcpnative_service_account() -> None:
    tool = convert(
        {
            "configVersion": "v2",
            "milvus": {
                "storage": {
                    "provider": "gcpnative",
                    "address": "storage.googleapis.com",
                    "port": 443,
                    "useSSL": True,
                    "auth": {"type": "serviceAccount", "credentialsFile": "/keys/sa.json"},
                }
            },
        }
    )
    assert tool.milvus_storage.url == "gs://a-bucket/files"
    assert dict(tool.milvus_storage.storage_options) == {"token": "/keys/sa.json"}
    assert dict(tool.backup_storage.storage_options) == {"token": "/keys/sa.json"}  # v2 inherits it


# --- errors ------------------------------------------------------------------------------------------------


def test_invalid_config_error_type() -> None:
    assert issubclass(InvalidConfigError, MilvusBackupError)
    assert issubclass(InvalidConfigError, ValueError)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"minio": {"storageType": "ftp"}}, "minio.storageType: unknown value 'ftp'"),
        ({"minio": {"cloudProvider": "FTP"}}, "minio.cloudProvider: unknown value 'FTP'"),
        ({"minio": {"backupStorageType": "nfs"}}, "minio.backupStorageType: unknown value 'nfs'"),
        (
            {"configVersion": "v2", "milvus": {"storage": {"provider": "dropbox"}}},
            "milvus.storage.provider: unknown value 'dropbox'",
        ),
    ],
)
def test_unknown_provider(config: dict[str, Any], expected: str) -> None:
    message = error_of(config)
    assert message.startswith(expected)
    assert "local, minio, s3" in message


def test_missing_bucket_name() -> None:
    assert error_of({"minio": {"bucketName": ""}}) == "minio.bucketName is required for provider 'minio'"
    message = error_of({"minio": {"backupBucketName": "", "backupStorageType": "s3"}})
    assert message == "minio.backupBucketName is required for provider 's3'"
    message = error_of({"configVersion": "v2", "backup": {"storage": {"bucketName": ""}}})
    assert message == "backup.storage.bucketName is required for provider 'minio'"
    assert "must be a bucket name" in error_of({"minio": {"bucketName": "bucket/path"}})


def test_port_not_a_number() -> None:
    assert error_of({"minio": {"port": "nine"}}) == "minio.port: 'nine' is not a port number (1-65535)"
    assert error_of({"milvus": {"port": 70000}}).startswith("milvus.port: 70000 is not a port number")
    assert error_of({"minio": {"backupPort": True}}).startswith("minio.backupPort: True is not a port")
    message = error_of({}, {"MILVUS_PORT": "tcp://10.0.0.1:19530"})
    assert message.startswith("MILVUS_PORT (environment): 'tcp://10.0.0.1:19530' is not a port number")
    assert "Kubernetes" in message
    with pytest.raises(InvalidConfigError, match=r"^--set minio.port: 'x' is not a port number"):
        from_milvus_backup_config({}, env={}, set_values={"minio.port": "x"})
    v2 = {"configVersion": "v2", "milvus": {"grpc": {"port": "19530a"}}}
    assert error_of(v2).startswith("milvus.grpc.port: '19530a' is not a port number")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"minio": {"useSSL": "maybe"}}, "minio.useSSL: 'maybe' is not a boolean"),
        ({"milvus": {"tlsMode": 3}}, "milvus.tlsMode: unknown value 3"),
        ({"configVersion": "v3"}, "configVersion: unknown value 'v3'; use v1 or v2"),
        (
            {"minio": {"address": "http://minio:9000"}},
            "minio.address: 'http://minio:9000' must be a host name",
        ),
        ({"minio": {"address": "minio:9000"}}, "minio.address: 'minio:9000' must not include a port"),
        (
            {"backup": {"gcPause": {"address": "milvus:9091"}}},
            "backup.gcPause.address: 'milvus:9091' must be an http",
        ),
        (
            {"milvus": {"tlsMode": 2, "mtlsCertPath": "/c.pem", "mtlsKeyPath": "/k.pem"}},
            "milvus.tlsMode: mutual TLS",
        ),
        ({"milvus": {"storage": {"provider": "s3"}}}, "milvus.storage.provider: a configVersion v2 key"),
        ({"configVersion": "v2", "minio": {"address": "x"}}, "minio.address: a v1 key"),
        (
            {"configVersion": "v2", "milvus": {"port": 19530}},
            "milvus.port: a v1 key; a configVersion v2 file spells",
        ),
        (
            {"configVersion": "v2", "milvus": {"storage": {"provider": "azure", "auth": {"type": "static"}}}},
            "milvus.storage.auth.type: unknown value 'static' for provider 'azure'",
        ),
        (
            {"configVersion": "v2", "milvus": {"storage": {"auth": {"accessKeyID": ""}}}},
            "milvus.storage.auth.accessKeyID is required when milvus.storage.auth.type is static",
        ),
        (
            {"configVersion": "v2", "milvus": {"storage": {"provider": "azure", "accountName": ""}}},
            "milvus.storage.accountName: the Azure storage account name is required",
        ),
        (
            {"configVersion": "v2", "milvus": {"storage": {"provider": "s3", "localPath": "/x"}}},
            "milvus.storage.localPath: only applies to the local provider",
        ),
        (
            {"minio": {"storageType": "azure", "secretAccessKey": ""}},
            "minio.secretAccessKey: the Azure storage",
        ),
        ({"minio": {"storageType": "local", "rootPath": ""}}, "minio.rootPath: a directory is required"),
        (
            {"minio": {"storageType": "gcpnative", "gcpCredentialJSON": "{not json"}},
            "minio.gcpCredentialJSON: the inline service account JSON does not parse",
        ),
        (
            {
                "configVersion": "v2",
                "backup": {
                    "storage": {
                        "provider": "ali",
                        "address": "",
                        "auth": {"accessKeyID": "a", "secretAccessKey": "b"},
                    }
                },
            },
            "backup.storage.address is required for provider 'aliyun'",
        ),
    ],
)
def test_errors_name_the_key(config: dict[str, Any], expected: str) -> None:
    assert error_of(config).startswith(expected)


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(InvalidConfigError, match="must be a mapping"):
        from_milvus_backup_config(["minio"], env={})  # type: ignore[arg-type]


def test_secrets_never_in_repr_or_errors() -> None:
    base: dict[str, Any] = {
        "milvus": {"password": SECRET},
        "minio": {"secretAccessKey": SECRET, "token": SECRET, "backupSecretAccessKey": SECRET},
    }
    tool = convert(base)
    for text in (repr(tool), str(tool), repr(tool.milvus), repr(tool.milvus_storage)):
        assert SECRET not in text
    broken: list[dict[str, Any]] = [
        {**base, "milvus": {"password": SECRET, "port": "nope"}},
        {**base, "minio": {**base["minio"], "storageType": "ftp"}},
        {**base, "minio": {**base["minio"], "bucketName": ""}},
        {**base, "minio": {"secretAccessKey": [SECRET]}},
        {
            "configVersion": "v2",
            "milvus": {"storage": {"auth": {"secretAccessKey": SECRET, "accessKeyID": ""}}},
        },
        {"minio": {"storageType": "gcpnative", "gcpCredentialJSON": '{"private_key": "' + SECRET}},
    ]
    for config in broken:
        assert SECRET not in error_of(config)
    assert SECRET not in error_of({}, {"MINIO_SECRET_KEY": SECRET, "MINIO_PORT": "x"})


# --- load_config_file ----------------------------------------------------------------------------------------


def test_load_config_file_parses_nested_yaml(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    data = load(GO_SAMPLE_V1, tmp_path)
    assert data["minio"]["port"] == 9000 and data["minio"]["useSSL"] is False
    assert load("", tmp_path) == {}


def test_load_config_file_errors_name_file_and_line(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "backup.yaml"
    path.write_text(
        f'minio:\n  address: localhost\n  secretAccessKey: "{SECRET}\n  port: 9000\n', encoding="utf-8"
    )
    with pytest.raises(InvalidConfigError) as info:
        load_config_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line ")
    assert SECRET not in message and info.value.__cause__ is None

    path.write_text("minio:\n  address: a\n   port: 9000\n", encoding="utf-8")
    with pytest.raises(InvalidConfigError, match=r"backup\.yaml, line 3, column \d+: "):
        load_config_file(path)

    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(InvalidConfigError, match="top level must be a mapping"):
        load_config_file(path)

    with pytest.raises(InvalidConfigError, match="cannot read config file .*missing.yaml"):
        load_config_file(tmp_path / "missing.yaml")


def test_load_config_file_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def no_yaml(name: str, package: str | None = None) -> Any:
        if name == "yaml":
            raise ImportError("No module named 'yaml'")
        return real(name, package)

    monkeypatch.setattr("milvus_backup_lib.backup_yaml.importlib.import_module", no_yaml)
    with pytest.raises(InvalidConfigError, match=r"needs PyYAML \(pip install pyyaml\)"):
        load_config_file(tmp_path / "backup.yaml")


def test_gc_pause_setting_v1_v2_and_env() -> None:
    from milvus_backup_lib.backup_yaml import from_milvus_backup_config

    v1 = {"minio": {"storageType": "local", "rootPath": "/srv/milvus"}}
    assert (
        from_milvus_backup_config(v1, env={}).pause_gc == "auto"
    )  # the Go tool's enable: true only warns when the pause fails
    assert (
        from_milvus_backup_config({**v1, "backup": {"gcPause": {"enable": False}}}, env={}).pause_gc is False
    )
    assert from_milvus_backup_config(v1, env={"BACKUP_GC_PAUSE_ENABLE": "false"}).pause_gc is False
    v2 = {
        "configVersion": "v2",
        "milvus": {"storage": {"provider": "local", "rootPath": "/srv/milvus"}},
        "backup": {"storage": {"provider": "local", "rootPath": "/srv/backups"}, "pauseGC": False},
    }
    assert from_milvus_backup_config(v2, env={}).pause_gc is False
