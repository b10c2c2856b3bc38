"""Every key of the Go tool's backup.yaml honoured or refused by name: the key tables, ``--set`` keys that
do not exist (an error naming the closest key), unknown file keys (a warning), the log, copy and restore
settings, and the command line applying them (log level and file, copy concurrency)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_logging import logging_restored
from milvus_backup_lib.backup_yaml import (
    InvalidConfigError,
    LogSettings,
    ToolConfig,
    Tuning,
    from_milvus_backup_config,
    load_config_file,
)
from milvus_backup_lib.backup_yaml.keys import (
    _V1_BACKUP_STORAGE,
    _V1_MILVUS,
    _V1_MILVUS_STORAGE,
    _V2_MILVUS,
    _v2_storage_fields,
)
from milvus_backup_lib.backup_yaml.schema import V1_ENV_NAMES, V1_KEYS, V1_TO_V2, V2_ENV_NAMES, V2_KEYS
from milvus_backup_lib.cli import main
from milvus_backup_lib.cli.commands import _client

LOCAL_V1 = {"minio": {"storageType": "local", "rootPath": "/srv/milvus", "backupRootPath": "/srv/backups"}}
LOCAL_V2 = {
    "configVersion": "v2",
    "milvus": {"storage": {"provider": "local", "rootPath": "/srv/milvus"}},
    "backup": {"storage": {"provider": "local", "rootPath": "/srv/backups"}},
}


def convert(config: dict[str, Any], env: dict[str, str] | None = None, **sets: str) -> ToolConfig:
    return from_milvus_backup_config(config, env=env or {}, set_values=sets or None)


def merged(base: dict[str, Any], **sections: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    for key, value in sections.items():
        out.setdefault(key, {}).update(value)
    return out


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    with logging_restored():
        yield


# --- the key tables ------------------------------------------------------------------------------------


def test_every_key_the_reader_uses_is_in_the_tables() -> None:
    v1_used = {k for k, why in V1_KEYS.items() if not why}
    v2_used = {k for k, why in V2_KEYS.items() if not why}
    for fields in (_V1_MILVUS, _V1_MILVUS_STORAGE, _V1_BACKUP_STORAGE):
        for f in fields.values():
            assert set(f.keys) <= set(V1_KEYS), f.keys
            assert set(f.envs) <= set(V1_ENV_NAMES), f.envs
    for fields in (_V2_MILVUS, _v2_storage_fields("milvus"), _v2_storage_fields("backup")):
        for f in fields.values():
            assert set(f.keys) <= set(V2_KEYS), f.keys
            assert set(f.envs) <= set(V2_ENV_NAMES), f.envs
    assert {"log.level", "log.file.filename", "backup.parallelism.copydata", "minio.crossStorage"} <= v1_used
    assert {"log.level", "log.file.path", "transfer.concurrency", "transfer.mode"} <= v2_used
    assert set(V1_TO_V2) <= set(V1_KEYS)


def test_a_go_v2_file_with_every_key_loads_and_reports_what_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # internal/cfg/v2/testdata/complete.yaml of the Go tool, without the client certificate (refused)
    text = """\
configVersion: v2
log: {level: debug, console: false, file: {path: /var/log/backup.log, maxSizeMiB: 100, maxDays: 7, maxBackups: 3}}
server: {debugMode: true, swaggerBasePath: /backup}
milvus:
  user: root
  password: Milvus
  grpc: {address: milvus-proxy, port: 19531, tlsMode: server, caCertPath: /certs/ca.pem, serverName: m.example.com}
  rest: {endpoint: https://milvus-rest.example.com}
  management: {endpoint: http://milvus-datacoord:9091}
  replicate: {rpcChannelName: by-dev-replicate-msg}
  etcd: {endpoints: [etcd-0:2379, etcd-1:2379], rootPath: by-dev}
  storage:
    provider: s3
    address: s3.us-west-2.amazonaws.com
    port: 443
    region: us-west-2
    useSSL: true
    bucketName: milvus-bucket
    rootPath: files
    auth: {type: static, accessKeyID: milvus-ak, secretAccessKey: milvus-sk, sessionToken: milvus-token}
backup:
  storage: {bucketName: backup-bucket, rootPath: backup}
  concurrency: {collections: 8, segments: 512}
  pauseGC: false
restore:
  concurrency: {collections: 3, importJobs: 64}
  maxSegmentsPerImportJob: 128
  keepTempFiles: true
transfer: {mode: streaming, concurrency: 64, multipartCopyThresholdMiB: 128}
zillizCloud: {endpoint: https://api.cloud.zilliz.com, apiKey: an-api-key}
"""
    path = tmp_path / "backup.yaml"
    path.write_text(text)
    caplog.set_level(logging.WARNING)
    tool = from_milvus_backup_config(load_config_file(path), env={})
    assert not caplog.records  # every key is known
    assert tool.log == LogSettings(level="DEBUG", console=False, file="/var/log/backup.log")
    assert tool.tuning == Tuning(
        copy_concurrency=64,
        force_streaming=True,
        keep_temp_files=True,
        restore_collections=3,
        import_jobs=64,
        segments_per_import=128,
    )
    assert tool.tuning.restore_options() == {
        "parallel_collections": 3,
        "parallel_imports": 64,
        "segments_per_import": 128,
    }
    assert tool.pause_gc is False
    unused = dict(tool.unused_keys)
    assert not {
        "restore.concurrency.collections",
        "restore.concurrency.importJobs",
        "restore.maxSegmentsPerImportJob",
    } & set(unused)
    assert set(unused) >= {
        "server.debugMode",
        "milvus.etcd.endpoints",
        "zillizCloud.apiKey",
        "log.file.maxDays",
    }
    assert "transfer.concurrency" not in unused and "log.level" not in unused


def test_v1_settings() -> None:
    config = merged(
        LOCAL_V1,
        log={"level": "warn", "console": False, "file": {"filename": "logs/b.log"}},
        backup={
            "parallelism": {"copydata": 32, "restoreCollection": 2, "importJob": 9},
            "keepTempFiles": "true",
            "gcPause": {"seconds": 7200},
        },
    )
    config["minio"]["crossStorage"] = "true"
    tool = convert(config)
    assert tool.log == LogSettings(level="WARNING", console=False, file="logs/b.log")
    assert tool.tuning == Tuning(
        copy_concurrency=32,
        force_streaming=True,
        keep_temp_files=True,
        gc_pause_seconds=7200,
        restore_collections=2,
        import_jobs=9,
    )
    env = {"BACKUP_PARALLELISM_COPYDATA": "8", "BACKUP_KEEP_TEMP_FILES": "false"}
    assert convert(LOCAL_V1, env).tuning == Tuning(copy_concurrency=8)
    assert convert(LOCAL_V1).tuning == Tuning() and convert(LOCAL_V1).log == LogSettings()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (merged(LOCAL_V1, log={"level": "loud"}), "log.level: unknown value 'loud'; use one of debug, info"),
        (
            merged(LOCAL_V1, backup={"parallelism": {"copydata": 0}}),
            "backup.parallelism.copydata: 0 is not a positive",
        ),
        (
            merged(LOCAL_V2, transfer={"concurrency": "many"}),
            "transfer.concurrency: 'many' is not a positive",
        ),
        (
            merged(LOCAL_V2, transfer={"mode": "teleport"}),
            "transfer.mode: unknown value 'teleport'; use one of auto",
        ),
    ],
)
def test_bad_setting_values_name_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        convert(config)
    assert str(info.value).startswith(message)


# --- unknown keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        (
            LOCAL_V1,
            "minio.bakupRootPath",
            "--set minio.bakupRootPath: not a key of a v1 config; did you mean minio.backupRootPath?",
        ),
        (LOCAL_V1, "MINIO_BACKUP_ROOTPATH", "did you mean MINIO_BACKUP_ROOT_PATH?"),
        (
            LOCAL_V2,
            "backup.storage.rootpth",
            "not a key of a configVersion v2 config; did you mean backup.storage.rootPath?",
        ),
        (LOCAL_V2, "transfer.concurency", "did you mean transfer.concurrency?"),
        (
            LOCAL_V2,
            "minio.backupRootPath",
            "a v1 key; a configVersion v2 config spells it backup.storage.rootPath",
        ),
        (
            LOCAL_V1,
            "backup.storage.rootPath",
            "a configVersion v2 key; a v1 config spells it minio.backupRootPath",
        ),
        (LOCAL_V1, "zzz", "--set zzz: not a key of a v1 config"),
    ],
)
def test_unknown_set_keys_are_errors_naming_the_closest_key(
    config: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(InvalidConfigError) as info:
        convert(config, **{key: "x"})
    assert message in str(info.value)


def test_set_takes_every_known_key_and_variable_in_any_case() -> None:
    assert convert(LOCAL_V1, **{"BACKUP.PARALLELISM.COPYDATA": "4"}).tuning.copy_concurrency == 4
    assert convert(LOCAL_V1, **{"BACKUP_PARALLELISM_COPYDATA": "5"}).tuning.copy_concurrency == 5
    assert (
        convert(LOCAL_V2, **{"transfer.concurrency": "6", "MILVUS_PASSWORD": "p"}).tuning.copy_concurrency
        == 6
    )
    tool = convert(LOCAL_V2, **{"restore.maxSegmentsPerImportJob": "9"})
    assert tool.tuning.segments_per_import == 9 and not tool.unused_keys
    v1 = convert(
        LOCAL_V1, **{"backup.parallelism.restoreCollection": "3", "backup.parallelism.importJob": "5"}
    )
    assert v1.tuning.restore_options() == {"parallel_collections": 3, "parallel_imports": 5}


def test_unknown_file_keys_are_warned_about_with_the_closest_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    config = merged(LOCAL_V1, backup={"paralelism": {"copydata": 4}})
    config["minio"]["bucketNme"] = "b"
    convert(config)
    messages = sorted(r.getMessage() for r in caplog.records)
    assert messages == [
        "backup.paralelism.copydata: not a key of a v1 config, ignored; did you mean backup.parallelism.copydata?",
        "minio.bucketNme: not a key of a v1 config, ignored; did you mean minio.bucketName?",
    ]
    caplog.clear()
    convert(merged(LOCAL_V2, backup={"parallelism": {"copydata": 4}}))
    (record,) = caplog.records
    assert record.getMessage() == (
        "backup.parallelism.copydata: a v1 key; a configVersion v2 config spells it transfer.concurrency; ignored"
    )


# --- the command line applies them --------------------------------------------------------------------


def _write_v2(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "milvus").mkdir(exist_ok=True)
    (tmp_path / "backups").mkdir(exist_ok=True)  # list and get refuse a backup root that is absent
    config = tmp_path / "backup.yaml"
    config.write_text(
        "configVersion: v2\n"
        f"milvus:\n  storage:\n    provider: local\n    rootPath: {tmp_path / 'milvus'}\n"
        f"backup:\n  storage:\n    provider: local\n    rootPath: {tmp_path / 'backups'}\n" + extra
    )
    return config


def test_cli_misspelt_set_key_exits_2_naming_the_closest_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_v2(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["list", "--set", "backup.storage.rootPth=/elsewhere"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "error: --set backup.storage.rootPth: not a key of a configVersion v2 config;"
        " did you mean backup.storage.rootPath?\n"
    )
    assert captured.out == ""


def test_cli_log_level_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "logs" / "backup.log"
    _write_v2(tmp_path, f"log:\n  level: info\n  file:\n    path: {log_file}\n    maxDays: 3\n")
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    err = capsys.readouterr().err
    # log.level info is -v: the INFO line about a key without effect shows, on stderr and in the file
    assert "INFO milvus_backup_lib.cli: config key log.file.maxDays is accepted and not used" in err
    assert "config key log.file.maxDays is accepted and not used" in log_file.read_text()
    # -q wins over log.level; the file still gets what passes the level
    assert main(["-q", "list"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_log_console_false_keeps_stderr_for_errors_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_v2(tmp_path, "log:\n  level: debug\n  console: false\n")
    monkeypatch.chdir(tmp_path)
    assert main(["get", "-n", "missing"]) == 1
    assert capsys.readouterr().err.startswith("error: no backup named 'missing'")


def test_cli_client_gets_the_copy_settings() -> None:
    tool = convert(
        merged(LOCAL_V2, transfer={"concurrency": 48, "mode": "streaming"}, restore={"keepTempFiles": True})
    )
    client = _client(tool)
    assert client.copier.concurrency == 48  # type: ignore[attr-defined]
    assert client.copier.force_streaming is True  # type: ignore[attr-defined]
    default = _client(convert(LOCAL_V2))
    assert default.copier.concurrency == 16  # type: ignore[attr-defined]  # the library's default
    v04 = _client(convert(merged(LOCAL_V1, backup={"gcPause": {"seconds": 120}})))
    assert v04.gc_pause_seconds == 120


def test_cli_restore_takes_the_restore_parallelism_of_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from milvus_backup_lib import BackupClient, RestoreOptions, RestorePlanError

    _write_v2(
        tmp_path, "restore:\n  concurrency: {collections: 3, importJobs: 12}\n  maxSegmentsPerImportJob: 4\n"
    )
    monkeypatch.chdir(tmp_path)
    seen: list[RestoreOptions] = []

    def restore(self: BackupClient, name: str, options: RestoreOptions | None = None, **kw: Any) -> Any:
        seen.append(options)  # type: ignore[arg-type]
        raise RestorePlanError(["stopped by the test"])  # what matters is what the CLI asked for

    monkeypatch.setattr(BackupClient, "restore", restore)
    assert main(["restore", "-n", "nightly", "-s", "_bak"]) != 0
    [options] = seen
    assert (options.parallel_collections, options.parallel_imports, options.segments_per_import) == (3, 12, 4)
    assert options.suffix == "_bak"
