"""The key tables of the two ``backup.yaml`` schemas: v1 (v0.4/v0.5) and ``configVersion: v2``.

Schema-version detection and the keys of the other version that a file must not carry, the Milvus
connection keys, the storage keys of each side with their defaults and what the backup side inherits
from the Milvus side, and the step from those raw values to one provider-neutral
:class:`~milvus_backup_lib.backup_yaml.providers._Storage` per side.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from milvus_backup_lib.backup_yaml.providers import _family, _provider, _Storage
from milvus_backup_lib.backup_yaml.sources import (
    _bool,
    _Field,
    _Hit,
    _host,
    _host_port,
    _port,
    _Sources,
    _text,
)
from milvus_backup_lib.errors import InvalidConfigError
from milvus_backup_lib.options import MilvusConnection


def _schema_version(flat: Mapping[str, tuple[str, Any]]) -> str:
    found = flat.get("configversion")
    if found is None:
        return "v1"
    version = str(found[1]).strip().lower()
    if version not in ("v1", "v2"):
        raise InvalidConfigError(f"{found[0]}: unknown value {found[1]!r}; use v1 or v2")
    return version


# Keys of the other schema version: a file carrying them is almost certainly mislabelled, and reading it
# with the wrong schema would silently fall back to defaults (localhost MinIO), then fail much later.
_V1_KEYS = {
    "minio.": "milvus.storage.* / backup.storage.*",
    "storage.storagetype": "milvus.storage.provider",
    "storage.backupstoragetype": "backup.storage.provider",
    "milvus.address": "milvus.grpc.address",
    "milvus.port": "milvus.grpc.port",
    "milvus.tlsmode": "milvus.grpc.tlsMode (disabled, server, mutual)",
    "milvus.cacertpath": "milvus.grpc.caCertPath",
    "milvus.servername": "milvus.grpc.serverName",
    "backup.gcpause.address": "milvus.management.endpoint",
}
_V2_KEYS = {
    "milvus.storage.": "the v1 keys are minio.*",
    "backup.storage.": "the v1 keys are minio.backup*",
    "milvus.grpc.": "the v1 keys are milvus.address, milvus.port, ...",
    "milvus.management.": "the v1 key is backup.gcPause.address",
}


def _reject_keys(flat: Mapping[str, tuple[str, Any]], patterns: Mapping[str, str], template: str) -> None:
    for lower, (key, _) in sorted(flat.items()):
        for pattern, hint in patterns.items():
            if lower == pattern or (pattern.endswith(".") and lower.startswith(pattern)):
                raise InvalidConfigError(f"{key}: {template.format(hint=hint)}")


# --- Milvus connection ----------------------------------------------------------------------------------

_TLS_MODES = {"0": 0, "disabled": 0, "1": 1, "server": 1, "2": 2, "mutual": 2}

_V1_MILVUS = {
    "address": _Field(("milvus.address",), ("MILVUS_ADDRESS",)),
    "port": _Field(("milvus.port",), ("MILVUS_PORT",)),
    "user": _Field(("milvus.user",), ("MILVUS_USER",)),
    "password": _Field(("milvus.password",), ("MILVUS_PASSWORD",)),
    "tls_mode": _Field(("milvus.tlsMode",), ("MILVUS_TLS_MODE",)),
    "ca_cert_path": _Field(("milvus.caCertPath",), ("MILVUS_CA_CERT_PATH",)),
    "server_name": _Field(("milvus.serverName",), ("MILVUS_SERVER_NAME",)),
    "mtls_cert_path": _Field(("milvus.mtlsCertPath",), ("MILVUS_MTLS_CERT_PATH",)),
    "mtls_key_path": _Field(("milvus.mtlsKeyPath",), ("MILVUS_MTLS_KEY_PATH",)),
    "management": _Field(("backup.gcPause.address",), ("BACKUP_GC_PAUSE_ADDRESS",)),
}
_V2_MILVUS = {
    "address": _Field(("milvus.grpc.address",)),
    "port": _Field(("milvus.grpc.port",)),
    "user": _Field(("milvus.user",), ("MILVUS_USER",)),
    "password": _Field(("milvus.password",), ("MILVUS_PASSWORD",)),
    "tls_mode": _Field(("milvus.grpc.tlsMode",)),
    "ca_cert_path": _Field(("milvus.grpc.caCertPath",)),
    "server_name": _Field(("milvus.grpc.serverName",)),
    "mtls_cert_path": _Field(("milvus.grpc.mtlsCertPath",)),
    "mtls_key_path": _Field(("milvus.grpc.mtlsKeyPath",)),
    "management": _Field(("milvus.management.endpoint",)),
}


def _optional_text(src: _Sources, field: _Field) -> str | None:
    hit = src.get(field)
    return (_text(hit) or None) if hit is not None else None


def _milvus_connection(src: _Sources, fields: Mapping[str, _Field]) -> MilvusConnection:
    address_hit = src.get(fields["address"])
    port_hit = src.get(fields["port"])
    address = _host(address_hit) if address_hit is not None else "localhost"
    if not address:
        raise InvalidConfigError(f"{fields['address'].name}: the Milvus address is empty")
    port = _port(port_hit) if port_hit is not None else 19530
    tls = 0
    tls_hit = src.get(fields["tls_mode"])
    if tls_hit is not None:
        mode = _TLS_MODES.get(_text(tls_hit).strip().lower())
        if mode is None:
            raise InvalidConfigError(
                f"{tls_hit.origin}: unknown value {tls_hit.value!r}; use 0/disabled, 1/server or 2/mutual"
            )
        tls = mode
    if (
        tls == 2
        and _optional_text(src, fields["mtls_cert_path"])
        and _optional_text(src, fields["mtls_key_path"])
    ):
        raise InvalidConfigError(
            f"{tls_hit.origin if tls_hit else fields['tls_mode'].name}: mutual TLS (a client certificate)"
            " is not supported by MilvusConnection yet"
        )
    # tlsMode 2 without a client key pair is server TLS, as in the Go tool's v1.
    management_hit = src.get(fields["management"])
    management = _text(management_hit).strip() if management_hit is not None else ""
    if management and not management.startswith(("http://", "https://")):
        raise InvalidConfigError(
            f"{management_hit.origin if management_hit else ''}: {management!r} must be an http:// or"
            " https:// URL (e.g. http://milvus:9091)"
        )
    scheme = "https" if tls else "http"
    return MilvusConnection(
        uri=f"{scheme}://{_host_port(address, port)}",
        user=_optional_text(src, fields["user"]),
        password=_optional_text(src, fields["password"]),
        # Only an explicit value: the Go default http://localhost:9091 is wrong for any remote cluster
        # (upstream #668, #1004); None lets MilvusConnection derive it from the uri's host.
        management_url=management.rstrip("/") if management else None,
        ca_cert_path=_optional_text(src, fields["ca_cert_path"]),
        server_name=_optional_text(src, fields["server_name"]),
    )


# --- storage keys --------------------------------------------------------------------------------------


def _v1_side(backup: bool) -> dict[str, _Field]:
    def field(key: str, env: str | None) -> _Field:
        if backup:
            key = f"minio.backup{key[0].upper()}{key[1:]}"
            env = f"MINIO_BACKUP_{env}" if env else None
        else:
            key = f"minio.{key}"
            env = f"MINIO_{env}" if env else None
        return _Field((key,), (env,) if env else ())

    provider = (
        _Field(("storage.backupStorageType", "minio.backupStorageType"), label="minio.backupStorageType")
        if backup
        else _Field(
            ("storage.storageType", "minio.storageType", "minio.cloudProvider"), label="minio.storageType"
        )
    )
    return {
        "provider": provider,
        "address": field("address", "ADDRESS"),
        "port": field("port", "PORT"),
        "region": field("region", "REGION"),
        "access_key": field("accessKeyID", "ACCESS_KEY"),
        "secret_key": field("secretAccessKey", "SECRET_KEY"),
        "token": field("token", "TOKEN"),
        "credentials": _Field(
            ("minio.backupGcpCredentialJSON",) if backup else ("minio.gcpCredentialJSON",),
            ("BACKUP_GCP_KEY_JSON",) if backup else ("GCP_KEY_JSON",),
        ),
        "use_ssl": field("useSSL", "USE_SSL"),
        "bucket": field("bucketName", "BUCKET_NAME"),
        "root_path": field("rootPath", "ROOT_PATH"),
        "use_iam": field("useIAM", "USE_IAM"),
        "iam_endpoint": field("iamEndpoint", "IAM_ENDPOINT"),
    }


_V1_MILVUS_STORAGE = _v1_side(backup=False)
_V1_BACKUP_STORAGE = _v1_side(backup=True)
_V1_DEFAULTS: dict[str, Any] = {
    "provider": "minio",
    "address": "localhost",
    "port": 9000,
    "access_key": "minioadmin",
    "secret_key": "minioadmin",
    "use_ssl": False,
    "bucket": "a-bucket",
    "root_path": "files",
    "use_iam": False,
}
_V2_DEFAULTS: dict[str, Any] = {
    "provider": "minio",
    "address": "localhost",
    "port": 9000,
    "use_ssl": False,
    "bucket": "a-bucket",
    "access_key": "minioadmin",
    "secret_key": "minioadmin",
}


def _v2_storage_fields(side: str) -> dict[str, _Field]:
    prefix = f"{side}.storage"
    env = f"{side.upper()}_STORAGE"

    def field(key: str, env_suffix: str | None = None) -> _Field:
        return _Field((f"{prefix}.{key}",), (f"{env}_{env_suffix}",) if env_suffix else ())

    return {
        "provider": field("provider"),
        "address": field("address"),
        "port": field("port"),
        "region": field("region"),
        "use_ssl": field("useSSL"),
        "account_name": field("accountName", "ACCOUNT_NAME"),
        "bucket": field("bucketName"),
        "root_path": field("rootPath"),
        "local_path": field("localPath"),
        "auth_type": field("auth.type"),
        "access_key": field("auth.accessKeyID", "AUTH_ACCESS_KEY_ID"),
        "secret_key": field("auth.secretAccessKey", "AUTH_SECRET_ACCESS_KEY"),
        "token": field("auth.sessionToken", "AUTH_SESSION_TOKEN"),
        "account_key": field("auth.accountKey", "AUTH_ACCOUNT_KEY"),
        "credentials": field("auth.credentialsFile", "AUTH_CREDENTIALS_FILE"),
        "iam_endpoint": field("auth.endpoint"),
    }


# --- what the backup side inherits ---------------------------------------------------------------------

# Settings a backup side inherits only from a Milvus side of the same kind of storage.
_ENDPOINT_AND_CREDENTIALS = frozenset(
    {
        "address",
        "port",
        "region",
        "use_ssl",
        "access_key",
        "secret_key",
        "token",
        "use_iam",
        "iam_endpoint",
        "auth_type",
        "account_name",
        "account_key",
        "credentials",
    }
)
# A backup side on another kind of storage than Milvus starts from these instead of MinIO's defaults
# (None: no value, e.g. no port, so the provider's standard endpoint applies).
_BARE_DEFAULTS: dict[str, Any] = {"address": "", "port": None, "access_key": "", "secret_key": ""}
# v2 keeps these per side (the Go tool's StorageConfig.inherit skips them); v1 inherits rootPath.
_NEVER_INHERITED = frozenset({"local_path"})


def _gather(
    src: _Sources,
    fields: Mapping[str, _Field],
    defaults: Mapping[str, Any],
    parent: Mapping[str, _Hit] | None,
    *,
    inherit_root: bool = False,
    not_inherited: frozenset[str] = frozenset(),
) -> dict[str, _Hit]:
    """Resolve one storage side's raw values: its own sources, then (backup side) the Milvus side, then defaults."""
    own = {name: hit for name, field in fields.items() if (hit := src.get(field)) is not None}
    out: dict[str, _Hit] = {}
    same_kind = True
    if parent is not None:
        provider = _provider(own["provider"]) if "provider" in own else _provider(parent["provider"])
        same_kind = _family(provider) == _family(_provider(parent["provider"]))
    for name, field in fields.items():
        if name in own:
            out[name] = own[name]
            continue
        inheritable = name not in _NEVER_INHERITED | not_inherited and (name != "root_path" or inherit_root)
        if (
            parent is not None
            and name in parent
            and inheritable
            and (same_kind or name not in _ENDPOINT_AND_CREDENTIALS)
        ):
            if name == "root_path" and not _text(parent[name]).strip("/"):
                out[name] = _Hit("backup", field.name, default=True)  # v1: rootPath -> "backup" when empty
            else:
                out[name] = parent[name]
            continue
        if not same_kind and name in _BARE_DEFAULTS:
            if _BARE_DEFAULTS[name] is not None:
                out[name] = _Hit(_BARE_DEFAULTS[name], field.name, default=True)
        elif name in defaults:
            out[name] = _Hit(defaults[name], field.name, default=True)
    return out


# --- one side in provider-neutral terms ----------------------------------------------------------------

_AUTH_TYPES = {
    "azure": ("sharedKey", "default"),
    "gcpnative": ("serviceAccount", "default"),
}
_S3_AUTH_TYPES = ("static", "iam", "default")


def _common(raw: Mapping[str, _Hit], fields: Mapping[str, _Field]) -> _Storage:
    def text(name: str) -> str:
        return _text(raw[name]) if name in raw else ""

    side = _Storage(provider=_provider(raw["provider"]), labels={name: f.name for name, f in fields.items()})
    side.address = _host(raw["address"]) if "address" in raw else ""
    side.port = _port(raw["port"]) if "port" in raw else None
    side.use_ssl = _bool(raw["use_ssl"]) if "use_ssl" in raw else False
    side.region = text("region")
    side.bucket = text("bucket").strip()
    side.root_path = text("root_path")
    side.access_key = text("access_key")
    side.secret_key = text("secret_key")
    side.token = text("token")
    side.credentials = text("credentials")
    return side


def _v1_storage(raw: Mapping[str, _Hit], fields: Mapping[str, _Field]) -> _Storage:
    side = _common(raw, fields)
    use_iam = _bool(raw["use_iam"]) if "use_iam" in raw else False
    if side.provider == "azure":
        # v1 overloads the S3 names for Azure: accessKeyID is the account name, secretAccessKey its key.
        side.auth = "default" if use_iam else "sharedKey"
        side.account_name, side.account_key = side.access_key, side.secret_key
        side.labels = {
            **side.labels,
            "account_name": fields["access_key"].name,
            "account_key": fields["secret_key"].name,
        }
    elif side.provider == "gcpnative":
        side.auth = "serviceAccount" if side.credentials else "default"
    else:
        # gcpCredentialJSON is for gcpnative only (the sample file sets a placeholder for everyone).
        side.auth = "iam" if use_iam else "static"
    return side


def _v2_storage(raw: Mapping[str, _Hit], fields: Mapping[str, _Field]) -> _Storage:
    side = _common(raw, fields)
    side.account_name = _text(raw["account_name"]) if "account_name" in raw else ""
    side.account_key = _text(raw["account_key"]) if "account_key" in raw else ""
    allowed = _AUTH_TYPES.get(side.provider, _S3_AUTH_TYPES)
    auth_hit = raw.get("auth_type")
    if auth_hit is not None:
        wanted = _text(auth_hit).strip()
        match = [name for name in allowed if name.lower() == wanted.lower()]
        if not match:
            raise InvalidConfigError(
                f"{auth_hit.origin}: unknown value {auth_hit.value!r} for provider {side.provider!r};"
                f" use one of {', '.join(allowed)}"
            )
        side.auth = match[0]
    elif side.provider == "azure":
        # The Go tool defaults auth.type to static and then rejects it for Azure; pick the usable one.
        side.auth = "sharedKey" if side.account_key else "default"
    elif side.provider == "gcpnative":
        side.auth = "serviceAccount" if side.credentials else "default"
    else:
        side.auth = "static"
    labels = side.labels
    required = {
        "static": ("access_key", "secret_key"),
        "sharedKey": ("account_key",),
        "serviceAccount": ("credentials",),
    }
    if side.provider != "local":
        for name in required.get(side.auth, ()):
            if not getattr(side, name):
                raise InvalidConfigError(
                    f"{labels[name]} is required when {labels['auth_type']} is {side.auth}"
                )
    root_hit = raw.get("root_path")
    local_hit = raw.get("local_path")
    if local_hit is not None and _text(local_hit) and side.provider != "local":
        raise InvalidConfigError(
            f"{local_hit.origin}: only applies to the local provider, not {side.provider!r}"
        )
    if side.provider == "local" and local_hit is not None:
        side.local_path = _text(local_hit)
        if root_hit is None or root_hit.default:
            side.root_path = side.local_path  # no host view given: the same directory as Milvus's
        if os.path.abspath(side.local_path) == os.path.abspath(side.root_path):
            side.local_path = ""
    return side
