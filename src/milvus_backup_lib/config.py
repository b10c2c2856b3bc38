"""Read the Go milvus-backup tool's ``backup.yaml`` into the records this library takes.

People who run zilliztech/milvus-backup already describe their cluster and both storages in a
``backup.yaml``. :func:`from_milvus_backup_config` reads that description, in the v1 schema of v0.4/v0.5
(``milvus.*``, ``minio.*``, ``minio.backup*``) or the ``configVersion: v2`` schema of later releases
(``milvus.grpc.*``, ``milvus.storage.*``, ``backup.storage.*``), and returns a :class:`ToolConfig`: a
:class:`~milvus_backup_lib.options.MilvusConnection` and two
:class:`~milvus_backup_lib.storage.location.StorageLocation` objects.

Values resolve as in the Go tool: ``--set`` > environment > file > default, config keys matched without
regard to case, nested or dotted (``{"minio": {"port": 9000}}`` and ``{"minio.port": 9000}`` are the same).
v1 reads every ``MILVUS_*`` / ``MINIO_*`` / ``MINIO_BACKUP_*`` variable; v2 reads only the credential
variables (``MILVUS_USER``, ``MILVUS_STORAGE_AUTH_SECRET_ACCESS_KEY``, ...), because Kubernetes injects
``MILVUS_PORT=tcp://...`` into every pod that sees a service named ``milvus``.

The backup side inherits what it leaves unset from the Milvus side, as both schemas do, with one
difference from the Go tool: the endpoint and the credentials (address, port, useSSL, region, keys,
useIAM) are inherited only when both sides use the same kind of storage (the S3 family ``minio``/``s3``/
``aws`` counts as one). The Go tool inherits them across providers too, which hands MinIO's
``localhost:9000`` and keys to an Azure backup side (upstream issue #642). Bucket name and (v1) root
path are always inherited: they decide where existing backups are found.

How a provider becomes a location::

    provider                      URL                             storage_options
    minio, s3, aws                s3://{bucket}/{rootPath}        key, secret, token;
                                                                  client_kwargs.endpoint_url = http(s)://address:port
                                                                  (none when address is empty); region_name
    aliyun, tencent, hwc          s3://{bucket}/{rootPath}        as above, plus virtual-hosted addressing
    useIAM / auth.type iam|default  (S3 family)                   no key/secret, anon=False: botocore's default chain
    gcp with HMAC keys            s3://{bucket}/{rootPath}        the GCS XML interop API: endpoint
                                                                  https://storage.googleapis.com (or address:port)
    gcp with useIAM / iam|default gs://{bucket}/{rootPath}        token="google_default"
    gcpnative                     gs://{bucket}/{rootPath}        token = credentials file path (inline JSON: a dict),
                                                                  else "google_default"; endpoint_url for an emulator
    azure                         az://{bucketName}/{rootPath}    account_name (v1 accessKeyID), account_key (v1
                                                                  secretAccessKey); useIAM: anon=False
                                                                  (DefaultAzureCredential). address ``core.windows.net``
                                                                  is the default; another domain gives
                                                                  account_host={account}.blob.{address}; localhost, an
                                                                  IP or a one-label host (azurite) gives a
                                                                  connection_string with BlobEndpoint=
                                                                  http(s)://address:port/{account}
    local                         file://{rootPath}               (v2 Milvus side: rootPath is the path this process
                                                                  sees; ``localPath``, what Milvus sees, goes to
                                                                  :attr:`ToolConfig.milvus_local_path` when it differs)

Every problem raises :class:`InvalidConfigError` naming the key (or the environment variable, or the
``--set`` entry) the value came from; no message ever carries a credential.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from milvus_backup_lib.errors import InvalidConfigError
from milvus_backup_lib.options import MilvusConnection
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["InvalidConfigError", "ToolConfig", "from_milvus_backup_config", "load_config_file"]


@attrs.frozen
class ToolConfig:
    """What a milvus-backup ``backup.yaml`` describes: the cluster, its storage, and the backup storage.

    ``repr`` shows no credential: :class:`MilvusConnection` and :class:`StorageLocation` hide theirs.
    """

    milvus: MilvusConnection
    milvus_storage: StorageLocation
    backup_storage: StorageLocation
    #: v2 ``milvus.storage.localPath`` for the ``local`` provider, when it differs from the directory this
    #: process reaches (``milvus_storage``): the path the Milvus process itself sees, e.g. inside its
    #: container. Import paths handed to Milvus must be below it. ``None`` when both are the same.
    milvus_local_path: str | None = None
    #: v1 ``backup.gcPause.enable`` / v2 ``backup.pauseGC`` (default true): pause Milvus GC while copying.
    pause_gc: bool = True


def from_milvus_backup_config(
    config: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    set_values: Mapping[str, str] | None = None,
) -> ToolConfig:
    """Build a :class:`ToolConfig` from a parsed milvus-backup ``backup.yaml`` (v1 or ``configVersion: v2``).

    ``config`` is the parsed YAML (nested mappings, dotted keys, or a mix: see :func:`load_config_file`).
    ``env`` stands for the process environment (``None`` reads :data:`os.environ`; pass ``{}`` to ignore
    it). ``set_values`` are the Go tool's ``--set KEY=VALUE`` overrides, keyed by a config key or an
    environment variable name. Precedence is ``--set`` > environment > file > default; empty
    environment variables count as unset.

    Raises :class:`InvalidConfigError` for an unknown provider or TLS mode, a missing bucket name or
    credential, a port or boolean that does not parse, or a key of the other schema version.
    """
    if not isinstance(config, Mapping):
        raise InvalidConfigError(
            f"a milvus-backup config must be a mapping of keys, got {type(config).__name__}"
        )
    flat: dict[str, tuple[str, Any]] = {}
    _flatten("", config, flat)
    version = _schema_version(flat)
    src = _Sources(flat, os.environ if env is None else env, set_values or {})
    if version == "v2":
        _reject_keys(flat, _V1_KEYS, "a v1 key; a configVersion v2 file spells it {hint}")
        milvus = _milvus_connection(src, _V2_MILVUS)
        milvus_raw = _gather(src, _v2_storage_fields("milvus"), _V2_DEFAULTS | {"root_path": "files"}, None)
        backup_raw = _gather(
            src, _v2_storage_fields("backup"), _V2_DEFAULTS | {"root_path": "backup"}, milvus_raw
        )
        milvus_side = _v2_storage(milvus_raw, _v2_storage_fields("milvus"))
        backup_side = _v2_storage(backup_raw, _v2_storage_fields("backup"))
    else:
        _reject_keys(flat, _V2_KEYS, "a configVersion v2 key; add `configVersion: v2` to the file ({hint})")
        milvus = _milvus_connection(src, _V1_MILVUS)
        milvus_raw = _gather(src, _V1_MILVUS_STORAGE, _V1_DEFAULTS, None)
        # v1 inherits rootPath (then "backup" if it is empty) but not gcpCredentialJSON, as the Go tool did.
        backup_raw = _gather(
            src,
            _V1_BACKUP_STORAGE,
            _V1_DEFAULTS,
            milvus_raw,
            inherit_root=True,
            not_inherited=frozenset({"credentials"}),
        )
        milvus_side = _v1_storage(milvus_raw, _V1_MILVUS_STORAGE)
        backup_side = _v1_storage(backup_raw, _V1_BACKUP_STORAGE)
    local_path = milvus_side.local_path if milvus_side.provider == "local" else ""
    milvus_storage = _location(milvus_side)
    pause_field = (
        _Field(("backup.pauseGC",))
        if version == "v2"
        else _Field(("backup.gcPause.enable",), ("BACKUP_GC_PAUSE_ENABLE",))
    )
    pause_hit = src.get(pause_field)
    return ToolConfig(
        milvus=milvus,
        milvus_storage=milvus_storage,
        backup_storage=_location(backup_side),
        milvus_local_path=local_path or None,
        pause_gc=_bool(pause_hit) if pause_hit is not None else True,
    )


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML config file (needs PyYAML) into nested dicts for :func:`from_milvus_backup_config`.

    Raises :class:`InvalidConfigError` if PyYAML is missing, the file cannot be read, the YAML does not
    parse (the message names the file, line and column, never the line's text), or the top level is
    not a mapping.
    """
    name = os.fspath(path)
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise InvalidConfigError(
            f"cannot read {name}: reading YAML config files needs PyYAML (pip install pyyaml)"
        ) from None
    try:
        with open(name, encoding="utf-8") as file:
            text = file.read()
    except UnicodeDecodeError:
        raise InvalidConfigError(f"cannot read config file {name}: not UTF-8 text") from None
    except OSError as exc:
        raise InvalidConfigError(f"cannot read config file {name}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML's own message quotes the offending line, which may hold a password: rebuild it from
        # the parts that carry no file content, and drop the original exception.
        raise InvalidConfigError(_yaml_error_message(name, exc)) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidConfigError(
            f"{name}: the top level must be a mapping of keys, got {type(data).__name__}"
        )
    return {str(key): value for key, value in data.items()}


def _yaml_error_message(name: str, exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or "not valid YAML"
    context = getattr(exc, "context", None)
    where = f"{name}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else name
    detail = f"{problem} ({context})" if context else str(problem)
    return f"{where}: {detail}"


# --- sources -------------------------------------------------------------------------------------------


@attrs.frozen
class _Field:
    """One setting: its config keys in precedence order and its environment variables."""

    keys: tuple[str, ...]
    envs: tuple[str, ...] = ()
    #: The spelling used in messages when no source set the value.
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.keys[0]


@attrs.frozen
class _Hit:
    """A raw value and where it came from (a config key, an environment variable, a --set entry)."""

    value: Any
    origin: str
    default: bool = False


class _Sources:
    def __init__(
        self, flat: Mapping[str, tuple[str, Any]], env: Mapping[str, str], overrides: Mapping[str, str]
    ) -> None:
        self._file = flat
        self._env = env
        self._set = {str(key).strip().lower(): (str(key).strip(), value) for key, value in overrides.items()}

    def get(self, field: _Field) -> _Hit | None:
        for name in (*field.keys, *field.envs):
            found = self._set.get(name.lower())
            if found is not None:
                return _Hit(found[1], f"--set {found[0]}")
        for name in field.envs:
            value = self._env.get(name)
            if value:  # v0.5 ignored empty variables; an empty MINIO_PORT= must not mean "port ''"
                return _Hit(value, f"{name} (environment)")
        for key in field.keys:
            found = self._file.get(key.lower())
            if found is not None:
                return _Hit(found[1], found[0])
        return None


def _flatten(prefix: str, value: Mapping[Any, Any], out: dict[str, tuple[str, Any]]) -> None:
    for raw_key, child in value.items():
        key = f"{prefix}.{raw_key}" if prefix else str(raw_key)
        if isinstance(child, Mapping):
            _flatten(key, child, out)
        elif child is not None:  # an empty YAML value (``rootPath:``) leaves the default, as in the Go tool
            lower = key.lower()
            if lower in out:
                raise InvalidConfigError(f"{key}: given twice (nested and dotted, or in another letter case)")
            out[lower] = (key, child)


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


# --- value parsing (messages show the value only for non-secret settings) -------------------------------

_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})
_PORT_RE = re.compile(r"[0-9]{1,5}")


def _text(hit: _Hit) -> str:
    value = hit.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidConfigError(f"{hit.origin}: expected a text value, got {type(value).__name__}")


def _bool(hit: _Hit) -> bool:
    value = hit.value
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidConfigError(f"{hit.origin}: {value!r} is not a boolean; use true or false")


def _port(hit: _Hit) -> int:
    value = hit.value
    port: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and _PORT_RE.fullmatch(value.strip()):
        port = int(value.strip())
    if port is None or not 1 <= port <= 65535:
        hint = ""
        if isinstance(value, str) and value.startswith("tcp://"):
            hint = (
                "; Kubernetes sets such variables for a service of that name (upstream #197): unset it or"
                " use --set"
            )
        raise InvalidConfigError(f"{hit.origin}: {value!r} is not a port number (1-65535){hint}")
    return port


def _host(hit: _Hit) -> str:
    host = _text(hit).strip()
    if "://" in host or "/" in host:
        raise InvalidConfigError(
            f"{hit.origin}: {host!r} must be a host name or IP address, without scheme or path"
        )
    if ":" in host and not _is_ipv6(host.strip("[]")):
        raise InvalidConfigError(f"{hit.origin}: {host!r} must not include a port; the port has its own key")
    return host.strip("[]")


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


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


# --- storage --------------------------------------------------------------------------------------------

_PROVIDERS = ("local", "minio", "s3", "aws", "gcp", "gcpnative", "azure", "aliyun", "tencent", "hwc")
_PROVIDER_ALIASES = {"ali": "aliyun", "alibaba": "aliyun", "alicloud": "aliyun", "tc": "tencent"}
_S3_FAMILY = frozenset({"minio", "s3", "aws"})
_VIRTUAL_HOSTED = frozenset({"aliyun", "tencent", "hwc"})  # the Go tool uses minio.BucketLookupDNS for them
_NEEDS_ADDRESS = frozenset({"minio", "aliyun", "tencent", "hwc"})
_AUTH_TYPES = {
    "azure": ("sharedKey", "default"),
    "gcpnative": ("serviceAccount", "default"),
}
_S3_AUTH_TYPES = ("static", "iam", "default")
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


def _provider(hit: _Hit) -> str:
    name = _text(hit).strip().lower()
    name = _PROVIDER_ALIASES.get(name, name)
    if name not in _PROVIDERS:
        raise InvalidConfigError(
            f"{hit.origin}: unknown value {hit.value!r}; use one of {', '.join(_PROVIDERS)}"
        )
    return name


def _family(provider: str) -> str:
    return "s3" if provider in _S3_FAMILY else provider


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


@attrs.define
class _Storage:
    """One storage side in provider-neutral terms, with the key of each setting for messages."""

    provider: str
    labels: Mapping[str, str]
    address: str = ""
    port: int | None = None
    use_ssl: bool = False
    region: str = ""
    bucket: str = ""
    root_path: str = ""
    local_path: str = ""
    auth: str = "static"
    access_key: str = ""
    secret_key: str = ""
    token: str = ""
    account_name: str = ""
    account_key: str = ""
    credentials: str = ""


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


def _location(side: _Storage) -> StorageLocation:
    if side.provider == "local":
        if not side.root_path:
            raise InvalidConfigError(
                f"{side.labels['root_path']}: a directory is required for the local provider"
            )
        return StorageLocation(_file_url(side.root_path))
    if not side.bucket:
        raise InvalidConfigError(f"{side.labels['bucket']} is required for provider {side.provider!r}")
    if "/" in side.bucket:
        raise InvalidConfigError(
            f"{side.labels['bucket']}: {side.bucket!r} must be a bucket name; put the path in the root path key"
        )
    root = side.root_path.strip("/")
    path = f"{side.bucket}/{root}" if root else side.bucket
    if side.provider == "azure":
        return StorageLocation(f"az://{path}", _azure_options(side))
    if side.provider == "gcpnative" or (side.provider == "gcp" and side.auth != "static"):
        return StorageLocation(f"gs://{path}", _gcs_options(side))
    return StorageLocation(f"s3://{path}", _s3_options(side))


def _file_url(path: str) -> str:
    absolute = os.path.abspath(path).replace(os.sep, "/")
    return "file://" + (absolute if absolute.startswith("/") else "/" + absolute)


def _s3_options(side: _Storage) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if side.auth == "static" and (side.access_key or side.secret_key):
        options["key"] = side.access_key
        options["secret"] = side.secret_key
        if side.token:
            options["token"] = side.token
    else:
        options["anon"] = False  # botocore's default chain: env, profile, IRSA, instance role
    client_kwargs: dict[str, Any] = {}
    address, port, use_ssl = side.address, side.port, side.use_ssl
    if not address and side.provider == "gcp":
        address, port, use_ssl = "storage.googleapis.com", None, True
    if address:
        client_kwargs["endpoint_url"] = f"{'https' if use_ssl else 'http'}://{_host_port(address, port)}"
    elif side.provider in _NEEDS_ADDRESS:
        raise InvalidConfigError(f"{side.labels['address']} is required for provider {side.provider!r}")
    region = side.region or ("auto" if side.provider == "gcp" else "")
    if region:
        client_kwargs["region_name"] = region
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    if side.provider in _VIRTUAL_HOSTED:
        options["config_kwargs"] = {"s3": {"addressing_style": "virtual"}}
    return options


def _is_standard_gcs_host(host: str) -> bool:
    return host in ("", "storage.googleapis.com", "www.googleapis.com", "googleapis.com") or host.endswith(
        ".storage.googleapis.com"
    )


def _gcs_options(side: _Storage) -> dict[str, Any]:
    token: Any = "google_default"
    if side.auth == "serviceAccount" and side.credentials:
        token = side.credentials
        if side.credentials.lstrip().startswith("{"):
            try:
                token = json.loads(side.credentials)
            except ValueError:
                raise InvalidConfigError(
                    f"{side.labels['credentials']}: the inline service account JSON does not parse"
                ) from None
    options: dict[str, Any] = {"token": token}
    if not _is_standard_gcs_host(side.address):  # an emulator such as fake-gcs-server
        scheme = "https" if side.use_ssl else "http"
        options["endpoint_url"] = f"{scheme}://{_host_port(side.address, side.port)}"
    return options


def _is_emulator_host(host: str) -> bool:
    if host == "localhost" or "." not in host:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _azure_options(side: _Storage) -> dict[str, Any]:
    labels = side.labels
    if not side.account_name:
        raise InvalidConfigError(f"{labels['account_name']}: the Azure storage account name is required")
    options: dict[str, Any] = {"account_name": side.account_name}
    if side.auth == "sharedKey":
        if not side.account_key:
            raise InvalidConfigError(f"{labels['account_key']}: the Azure storage account key is required")
        options["account_key"] = side.account_key
    else:
        options["anon"] = False  # adlfs then uses DefaultAzureCredential (managed / workload identity)
    address, port = side.address, side.port
    if not address or (address == "core.windows.net" and port in (None, 443)):
        return options
    if _is_emulator_host(address):
        scheme = "https" if side.use_ssl else "http"
        endpoint = f"{scheme}://{_host_port(address, port)}/{side.account_name}"
        if side.auth == "sharedKey":
            options["connection_string"] = (
                f"DefaultEndpointsProtocol={scheme};AccountName={side.account_name};"
                f"AccountKey={side.account_key};BlobEndpoint={endpoint};"
            )
        else:
            options["account_host"] = f"{_host_port(address, port)}/{side.account_name}"
        return options
    # The Go tool (and Milvus) build https://{account}.blob.{address}: the address is the endpoint suffix.
    suffix = "" if port in (None, 443) else f":{port}"
    options["account_host"] = f"{side.account_name}.blob.{address}{suffix}"
    return options
