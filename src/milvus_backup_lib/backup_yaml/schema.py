"""Every key of the two ``backup.yaml`` schemas, and what this tool does with each.

The Go tool declares its keys in ``internal/cfg/cfg.go`` (v1, v0.4/v0.5; the v1 key space is listed
machine-readably in ``internal/cfg/migrate/keymap.go`` of later releases) and ``internal/cfg/v2/cfg.go``
+ ``storage.go`` (``configVersion: v2``). Each key here is either honoured (the empty reason) or
accepted and not used (the reason says why), so a file written for the Go tool loads unchanged and a
user can see which of its settings have no effect (``-v`` logs them).

A key neither schema declares is what the Go tool warns about and ignores (``v2/load.go``
``checkKeys``): in a file this tool does the same, naming the closest known key; in a ``--set`` entry it
is an error (:func:`check_set_keys`), because a misspelt override on the command line silently doing
nothing is how a backup lands in the wrong place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from milvus_backup_lib.errors import InvalidConfigError

__all__ = [
    "V1_ENV_NAMES",
    "V1_KEYS",
    "V1_TO_V2",
    "V2_ENV_NAMES",
    "V2_KEYS",
    "check_set_keys",
    "closest_key",
    "unknown_file_keys",
    "unused_reason",
]

_REST = "the REST server (`milvus-backup server`) is not part of this tool"
_CLOUD = "migration to Zilliz Cloud is not part of this tool"
_ETCD = "etcd is not read: the collections are described by Milvus's API"
_CDC = "secondary restore (CDC replication) is not supported"
_ROTATE = "the log file is not rotated (use logrotate)"
_IAM_ENDPOINT = "the storage SDK's default credential chain finds the IAM credentials"
_MULTIPART = "fsspec decides how large objects are copied"
_BACKUP_PARALLEL = (
    "collections and their segments are read one after another; the copy concurrency is what bounds a backup"
)
_SNAPSHOT = "snapshot-format backups (Milvus 3.0) are not supported"
_REST_ENDPOINT = "multi-segment imports (2.4+) use the REST API at the Milvus URI's host and port"

#: The v1 schema (v0.4/v0.5): canonical key -> "" (honoured) or why it is accepted and not used.
V1_KEYS: Mapping[str, str] = {
    "configVersion": "",
    "log.level": "",
    "log.console": "",
    "log.file.filename": "",
    "log.file.rootPath": "a v0.4 key that the Go tool never wrote a file from; use log.file.filename",
    "log.file.maxSize": _ROTATE,
    "log.file.maxDays": _ROTATE,
    "log.file.maxBackups": _ROTATE,
    "http.enabled": _REST,
    "http.debugMode": _REST,
    "http.swaggerBasePath": _REST,
    "http.simpleResponse": _REST,
    "cloud.address": _CLOUD,
    "cloud.apikey": _CLOUD,
    "milvus.address": "",
    "milvus.port": "",
    "milvus.user": "",
    "milvus.password": "",
    "milvus.tlsMode": "",
    "milvus.caCertPath": "",
    "milvus.serverName": "",
    "milvus.mtlsCertPath": "",
    "milvus.mtlsKeyPath": "",
    "milvus.rpcChannelName": _CDC,
    "milvus.etcd.endpoints": _ETCD,
    "milvus.etcd.rootPath": _ETCD,
    "milvus.authorizationEnabled": "a v0.4 key: credentials are sent whenever milvus.user is set",
    "milvus.tlsCertPath": "a v0.4 key: use milvus.caCertPath",
    "storage.storageType": "",
    "storage.backupStorageType": "",
    "minio.storageType": "",
    "minio.cloudProvider": "",
    "minio.address": "",
    "minio.port": "",
    "minio.region": "",
    "minio.accessKeyID": "",
    "minio.secretAccessKey": "",
    "minio.token": "",
    "minio.gcpCredentialJSON": "",
    "minio.useSSL": "",
    "minio.useIAM": "",
    "minio.iamEndpoint": _IAM_ENDPOINT,
    "minio.bucketName": "",
    "minio.rootPath": "",
    "minio.backupStorageType": "",
    "minio.backupAddress": "",
    "minio.backupPort": "",
    "minio.backupRegion": "",
    "minio.backupAccessKeyID": "",
    "minio.backupSecretAccessKey": "",
    "minio.backupToken": "",
    "minio.backupGcpCredentialJSON": "",
    "minio.backupUseSSL": "",
    "minio.backupUseIAM": "",
    "minio.backupIamEndpoint": _IAM_ENDPOINT,
    "minio.backupBucketName": "",
    "minio.backupRootPath": "",
    "minio.crossStorage": "",
    "minio.multipartCopyThresholdMiB": _MULTIPART,
    "backup.parallelism.copydata": "",
    "backup.parallelism.backupCollection": _BACKUP_PARALLEL,
    "backup.parallelism.backupSegment": _BACKUP_PARALLEL,
    "backup.parallelism.restoreCollection": "",
    "backup.parallelism.importJob": "",
    "backup.keepTempFiles": "",
    "backup.gcPause.enable": "",
    "backup.gcPause.address": "",
    "backup.gcPause.seconds": "",
    "backup.maxSegmentGroupSize": "a v0.4 key: segments are imported by the groups the backup records",
}

#: Environment variables the v1 schema reads (its ``--set`` takes them as keys too).
V1_ENV_NAMES: tuple[str, ...] = (
    "MILVUS_ADDRESS",
    "MILVUS_PORT",
    "MILVUS_USER",
    "MILVUS_PASSWORD",
    "MILVUS_TLS_MODE",
    "MILVUS_CA_CERT_PATH",
    "MILVUS_SERVER_NAME",
    "MILVUS_MTLS_CERT_PATH",
    "MILVUS_MTLS_KEY_PATH",
    "MILVUS_RPC_CHANNEL_NAME",
    *(
        f"MINIO_{side}{name}"
        for side in ("", "BACKUP_")
        for name in (
            "ADDRESS",
            "PORT",
            "REGION",
            "ACCESS_KEY",
            "SECRET_KEY",
            "TOKEN",
            "USE_SSL",
            "BUCKET_NAME",
            "ROOT_PATH",
            "USE_IAM",
            "IAM_ENDPOINT",
        )
    ),
    "GCP_KEY_JSON",
    "BACKUP_GCP_KEY_JSON",
    "BACKUP_PARALLELISM_COPYDATA",
    "BACKUP_PARALLELISM_BACKUP_COLLECTION",
    "BACKUP_PARALLELISM_RESTORE_COLLECTION",
    "BACKUP_KEEP_TEMP_FILES",
    "BACKUP_GC_PAUSE_ENABLE",
    "BACKUP_GC_PAUSE_ADDRESS",
)


def _v2_storage_keys(side: str) -> dict[str, str]:
    keys = {
        f"{side}.storage.{name}": ""
        for name in (
            "provider",
            "address",
            "port",
            "region",
            "useSSL",
            "accountName",
            "bucketName",
            "rootPath",
            "localPath",
            "auth.type",
            "auth.accessKeyID",
            "auth.secretAccessKey",
            "auth.sessionToken",
            "auth.accountKey",
            "auth.credentialsFile",
        )
    }
    keys[f"{side}.storage.auth.endpoint"] = _IAM_ENDPOINT
    keys[f"{side}.storage.milvusAddress"] = _SNAPSHOT
    keys[f"{side}.storage.milvusPort"] = _SNAPSHOT
    return keys


#: The ``configVersion: v2`` schema: canonical key -> "" (honoured) or why it is not used.
V2_KEYS: Mapping[str, str] = {
    "configVersion": "",
    "log.level": "",
    "log.console": "",
    "log.file.path": "",
    "log.file.maxSizeMiB": _ROTATE,
    "log.file.maxDays": _ROTATE,
    "log.file.maxBackups": _ROTATE,
    "server.debugMode": _REST,
    "server.swaggerBasePath": _REST,
    "milvus.user": "",
    "milvus.password": "",
    "milvus.grpc.address": "",
    "milvus.grpc.port": "",
    "milvus.grpc.tlsMode": "",
    "milvus.grpc.caCertPath": "",
    "milvus.grpc.serverName": "",
    "milvus.grpc.mtlsCertPath": "",
    "milvus.grpc.mtlsKeyPath": "",
    "milvus.rest.endpoint": _REST_ENDPOINT,
    "milvus.management.endpoint": "",
    "milvus.replicate.rpcChannelName": _CDC,
    "milvus.etcd.endpoints": _ETCD,
    "milvus.etcd.rootPath": _ETCD,
    **_v2_storage_keys("milvus"),
    **_v2_storage_keys("backup"),
    "backup.concurrency.collections": _BACKUP_PARALLEL,
    "backup.concurrency.segments": _BACKUP_PARALLEL,
    "backup.pauseGC": "",
    "restore.concurrency.collections": "",
    "restore.concurrency.importJobs": "",
    "restore.maxSegmentsPerImportJob": "",
    "restore.keepTempFiles": "",
    "transfer.mode": "",
    "transfer.concurrency": "",
    "transfer.multipartCopyThresholdMiB": _MULTIPART,
    "zillizCloud.endpoint": _CLOUD,
    "zillizCloud.apiKey": _CLOUD,
}

#: Environment variables the v2 schema reads here: the credentials only (see the package docstring).
V2_ENV_NAMES: tuple[str, ...] = (
    "MILVUS_USER",
    "MILVUS_PASSWORD",
    *(
        f"{side}_STORAGE_{name}"
        for side in ("MILVUS", "BACKUP")
        for name in (
            "ACCOUNT_NAME",
            "AUTH_ACCESS_KEY_ID",
            "AUTH_SECRET_ACCESS_KEY",
            "AUTH_SESSION_TOKEN",
            "AUTH_ACCOUNT_KEY",
            "AUTH_CREDENTIALS_FILE",
        )
    ),
    "ZILLIZ_CLOUD_API_KEY",
)


def _v1_storage_renames() -> dict[str, str]:
    out: dict[str, str] = {}
    for v1_side, v2_side in (("minio.", "milvus.storage."), ("minio.backup", "backup.storage.")):
        for v1_name, v2_name in (
            ("address", "address"),
            ("port", "port"),
            ("region", "region"),
            ("useSSL", "useSSL"),
            ("bucketName", "bucketName"),
            ("rootPath", "rootPath"),
            ("accessKeyID", "auth.accessKeyID"),
            ("secretAccessKey", "auth.secretAccessKey"),
            ("token", "auth.sessionToken"),
            ("gcpCredentialJSON", "auth.credentialsFile"),
            ("useIAM", "auth.type (iam)"),
            ("iamEndpoint", "auth.endpoint"),
        ):
            name = v1_name if v1_side == "minio." else v1_name[0].upper() + v1_name[1:]
            out[f"{v1_side}{name}"] = f"{v2_side}{v2_name}"
    return out


#: How v2 spells each v1 key (the Go tool's ``internal/cfg/migrate/keymap.go``).
V1_TO_V2: Mapping[str, str] = {
    "log.file.filename": "log.file.path",
    "log.file.maxSize": "log.file.maxSizeMiB",
    "http.debugMode": "server.debugMode",
    "http.swaggerBasePath": "server.swaggerBasePath",
    "cloud.address": "zillizCloud.endpoint",
    "cloud.apikey": "zillizCloud.apiKey",
    "milvus.address": "milvus.grpc.address",
    "milvus.port": "milvus.grpc.port",
    "milvus.tlsMode": "milvus.grpc.tlsMode",
    "milvus.caCertPath": "milvus.grpc.caCertPath",
    "milvus.serverName": "milvus.grpc.serverName",
    "milvus.mtlsCertPath": "milvus.grpc.mtlsCertPath",
    "milvus.mtlsKeyPath": "milvus.grpc.mtlsKeyPath",
    "milvus.rpcChannelName": "milvus.replicate.rpcChannelName",
    "storage.storageType": "milvus.storage.provider",
    "minio.storageType": "milvus.storage.provider",
    "minio.cloudProvider": "milvus.storage.provider",
    "storage.backupStorageType": "backup.storage.provider",
    "minio.backupStorageType": "backup.storage.provider",
    **_v1_storage_renames(),
    "minio.crossStorage": "transfer.mode (streaming)",
    "minio.multipartCopyThresholdMiB": "transfer.multipartCopyThresholdMiB",
    "backup.parallelism.copydata": "transfer.concurrency",
    "backup.parallelism.backupCollection": "backup.concurrency.collections",
    "backup.parallelism.backupSegment": "backup.concurrency.segments",
    "backup.parallelism.restoreCollection": "restore.concurrency.collections",
    "backup.parallelism.importJob": "restore.concurrency.importJobs",
    "backup.keepTempFiles": "restore.keepTempFiles",
    "backup.gcPause.enable": "backup.pauseGC",
    "backup.gcPause.address": "milvus.management.endpoint",
}


def _lower_index(names: Iterable[str]) -> dict[str, str]:
    return {name.lower(): name for name in names}


_V1_LOWER = _lower_index(V1_KEYS)
_V2_LOWER = _lower_index(V2_KEYS)
_V1_ENV_LOWER = _lower_index(V1_ENV_NAMES)
_V2_ENV_LOWER = _lower_index(V2_ENV_NAMES)
_V1_TO_V2_LOWER = {key.lower(): v2 for key, v2 in V1_TO_V2.items()}
_V2_TO_V1_LOWER: dict[str, str] = {}
for _v1, _v2 in V1_TO_V2.items():
    _V2_TO_V1_LOWER.setdefault(_v2.split(" ", 1)[0].lower(), _v1)


def _keys_of(version: str) -> tuple[dict[str, str], dict[str, str], Mapping[str, str]]:
    if version == "v2":
        return _V2_LOWER, _V2_ENV_LOWER, V2_KEYS
    return _V1_LOWER, _V1_ENV_LOWER, V1_KEYS


def unused_reason(version: str, key: str) -> str | None:
    """Why ``key`` (any case) is accepted and not used; "" when it is honoured, None when unknown."""
    lower_keys, _, table = _keys_of(version)
    canonical = lower_keys.get(key.strip().lower())
    return None if canonical is None else table[canonical]


def closest_key(version: str, key: str, *, env_names: bool = False) -> str | None:
    """The known key (or, with ``env_names``, environment variable) spelled most like ``key``."""
    lower_keys, lower_env, _ = _keys_of(version)
    candidates = dict(lower_keys)
    if env_names:
        candidates.update(lower_env)
    wanted = key.strip().lower()
    match = difflib.get_close_matches(wanted, list(candidates), n=1, cutoff=0.6)
    if not match:
        # A wrong section with the right leaf (`minio.backupRoot` for `minio.backupRootPath`) scores low
        # on the whole key: try the last part against the last parts of the keys.
        leaf = wanted.rsplit(".", 1)[-1]
        leaves = {k.rsplit(".", 1)[-1]: k for k in lower_keys if k.startswith(wanted.split(".", 1)[0])}
        near = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.75)
        if near:
            return candidates[leaves[near[0]]]
        return None
    return candidates[match[0]]


def _other_schema_hint(version: str, key: str) -> str | None:
    lower = key.strip().lower()
    if version == "v2":
        if lower in _V1_LOWER or lower in _V1_ENV_LOWER:
            target = _V1_TO_V2_LOWER.get(lower)
            spelled = f"spells it {target}" if target else "has no such key"
            return f"a v1 key; a configVersion v2 config {spelled}"
        return None
    if lower in _V2_LOWER or lower in _V2_ENV_LOWER:
        source = _V2_TO_V1_LOWER.get(lower)
        spelled = f"spells it {source}" if source else "has no such key"
        return f"a configVersion v2 key; a v1 config {spelled} (or add `configVersion: v2` to the file)"
    return None


def check_set_keys(version: str, keys: Iterable[str]) -> None:
    """Refuse a ``--set`` key that the schema ``version`` does not declare, naming the closest one.

    A ``--set`` key may be a config key (any case) or one of the environment variables the schema
    reads, as in the Go tool. Raises :class:`InvalidConfigError`.
    """
    lower_keys, lower_env, _ = _keys_of(version)
    schema = "a configVersion v2" if version == "v2" else "a v1"
    for key in keys:
        lower = key.strip().lower()
        if lower in lower_keys or lower in lower_env:
            continue
        hint = _other_schema_hint(version, key)
        if hint is not None:
            raise InvalidConfigError(f"--set {key.strip()}: {hint}")
        near = closest_key(version, key, env_names=True)
        advice = f"; did you mean {near}?" if near else ""
        raise InvalidConfigError(f"--set {key.strip()}: not a key of {schema} config{advice}")


def unknown_file_keys(version: str, keys: Iterable[str]) -> list[str]:
    """One warning per file key the schema does not declare (the Go tool warns and ignores them too)."""
    lower_keys, _, _ = _keys_of(version)
    warnings = []
    for key in keys:
        if key.lower() in lower_keys:
            continue
        hint = _other_schema_hint(version, key)
        if hint is not None:
            warnings.append(f"{key}: {hint}; ignored")
            continue
        near = closest_key(version, key)
        advice = f"; did you mean {near}?" if near else ""
        warnings.append(f"{key}: not a key of a {version} config, ignored{advice}")
    return warnings
