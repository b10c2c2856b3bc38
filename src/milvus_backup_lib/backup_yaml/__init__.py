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

Every key of both schemas is either honoured or accepted and not used, each with its reason
(:mod:`~milvus_backup_lib.backup_yaml.schema`; :attr:`ToolConfig.unused_keys` lists those a file sets).
A ``--set`` key that the schema does not declare is an :class:`InvalidConfigError` naming the closest key
(``did you mean minio.backupRootPath?``); a file key it does not declare is a logged warning, as in the
Go tool. Besides the connection and the storages, :attr:`ToolConfig.log` holds ``log.*`` and
:attr:`ToolConfig.tuning` the copy and restore knobs (:mod:`~milvus_backup_lib.backup_yaml.settings`).

The package reads in these steps: :mod:`~milvus_backup_lib.backup_yaml.sources` finds each raw value
(``--set``, environment, file) and parses it, :mod:`~milvus_backup_lib.backup_yaml.schema` checks the
keys, :mod:`~milvus_backup_lib.backup_yaml.keys` holds the v1 and v2 connection and storage fields and
turns them into the Milvus connection and one provider-neutral record per storage side,
:mod:`~milvus_backup_lib.backup_yaml.providers` turns such a record into a
:class:`~milvus_backup_lib.storage.location.StorageLocation`, and
:mod:`~milvus_backup_lib.backup_yaml.settings` reads the rest.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from typing import Any

import attrs

from milvus_backup_lib.backup_yaml.keys import (
    _V1_BACKUP_STORAGE,
    _V1_DEFAULTS,
    _V1_KEYS,
    _V1_MILVUS,
    _V1_MILVUS_STORAGE,
    _V2_DEFAULTS,
    _V2_KEYS,
    _V2_MILVUS,
    _gather,
    _milvus_connection,
    _reject_keys,
    _schema_version,
    _v1_storage,
    _v2_storage,
    _v2_storage_fields,
)
from milvus_backup_lib.backup_yaml.providers import _location
from milvus_backup_lib.backup_yaml.schema import check_set_keys, unknown_file_keys, unused_reason
from milvus_backup_lib.backup_yaml.settings import LogSettings, Tuning, read_log_settings, read_tuning
from milvus_backup_lib.backup_yaml.sources import _bool, _Field, _flatten, _Sources, _yaml_error_message
from milvus_backup_lib.errors import InvalidConfigError
from milvus_backup_lib.milvus.gc import PauseGc
from milvus_backup_lib.options import MilvusConnection
from milvus_backup_lib.storage.location import StorageLocation

__all__ = [
    "InvalidConfigError",
    "LogSettings",
    "ToolConfig",
    "Tuning",
    "from_milvus_backup_config",
    "load_config_file",
]

log = logging.getLogger(__name__)


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
    #: v1 ``backup.gcPause.enable`` / v2 ``backup.pauseGC``: pause Milvus GC while copying. ``true`` (the
    #: Go tool's default) is ``"auto"``: like the Go tool, a pause that fails is only a warning
    #: (``core/backup/gc_controller.go``); ``false`` never pauses. ``--pause_gc true`` fails closed.
    pause_gc: PauseGc = "auto"
    #: ``log.level``, ``log.console``, ``log.file.*``: where log records go.
    log: LogSettings = attrs.field(factory=LogSettings)
    #: The copy and restore knobs (concurrency, streaming, temporary files, GC pause length).
    tuning: Tuning = attrs.field(factory=Tuning)
    #: Keys the file or ``--set`` gave that are accepted but have no effect here, each with the reason.
    unused_keys: tuple[tuple[str, str], ...] = ()
    #: ``configVersion`` of the file: ``"v1"`` or ``"v2"``.
    version: str = "v1"


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
    credential, a port, number or boolean that does not parse, a key of the other schema version, or a
    ``set_values`` key that the schema does not declare (the message names the closest key). A file key
    the schema does not declare is logged as a warning and ignored, as the Go tool does.
    """
    if not isinstance(config, Mapping):
        raise InvalidConfigError(
            f"a milvus-backup config must be a mapping of keys, got {type(config).__name__}"
        )
    flat: dict[str, tuple[str, Any]] = {}
    _flatten("", config, flat)
    version = _schema_version(flat)
    overrides = set_values or {}
    check_set_keys(version, overrides)
    src = _Sources(flat, os.environ if env is None else env, overrides)
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
    for warning in unknown_file_keys(version, [key for key, _ in flat.values()]):
        log.warning("%s", warning)
    return ToolConfig(
        milvus=milvus,
        milvus_storage=milvus_storage,
        backup_storage=_location(backup_side),
        milvus_local_path=local_path or None,
        pause_gc="auto" if pause_hit is None or _bool(pause_hit) else False,
        log=read_log_settings(src, version),
        tuning=read_tuning(src, version),
        unused_keys=_unused_keys(version, [key for key, _ in flat.values()], overrides),
        version=version,
    )


def _unused_keys(
    version: str, file_keys: list[str], overrides: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    given = {key.lower(): key for key in file_keys}
    given.update({str(key).strip().lower(): f"--set {str(key).strip()}" for key in overrides})
    out = []
    for lower, shown in sorted(given.items()):
        reason = unused_reason(version, lower)
        if reason:
            out.append((shown, reason))
    return tuple(out)


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
    if isinstance(data, Mapping):
        try:
            _flatten("", data, {})
        except InvalidConfigError as exc:
            if "contains itself" in str(exc):
                raise InvalidConfigError(f"{name}: {exc}") from None
    if not isinstance(data, Mapping):
        raise InvalidConfigError(
            f"{name}: the top level must be a mapping of keys, got {type(data).__name__}"
        )
    return {str(key): value for key, value in data.items()}
