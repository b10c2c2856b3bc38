"""Rewrite a backup into the exact shape each milvus-backup (Go) release line writes: its meta JSON and its
directory layout.

The key sets below are the fields of the messages in ``core/proto/backup.proto`` of
github.com/zilliztech/milvus-backup at each tag (read from the repository at v0.4.0, v0.4.4, v0.5.0,
v0.5.9, v0.5.10 and HEAD f81df44); the Go tool marshals those structs with ``encoding/json``, so a key
it does not know is never written. What changes between release lines, beyond the keys:

- v0.4.0-v0.4.3 (``core/backup_impl_create_backup.go`` at v0.4.0): segments of a partition above
  ``backup.maxSegmentGroupSize`` (2 GB) share size-based group directories numbered 1, 2, ... per
  partition (``binlogs/insert_log/{c}/{p}/{group}/{seg}/...``), below it no group directory at all
  (group 0, ``binlogs/insert_log/{c}/{p}/{seg}/...``); ``state_code`` 2 and ``progress`` 100 on the
  backup and each collection, ``start_time``/``end_time``; no ``log_id``; default values not recorded.
- v0.4.4-v0.4.24: ``group_id`` = ``segment_id``, one segment per group directory.
- v0.4.25-v0.5.4: ``default_value_proto``, the raw ``schemapb.ValueField`` bytes in a JSON string.
- v0.5.5-v0.5.9: ``default_value_base64``, ``log_id``, ``v_channel``, ``storage_version``;
  ``meta/channel_cp_meta.json`` written beside the others (v0.4.13-v0.5.9).
- v0.5.10-v0.5.11: ``replicas`` on each collection (``ReplicaInfo``), removed in v0.5.12 (#966).
- HEAD: ``format`` (omitted when empty, the binlog format); a Milvus on local disk records absolute
  ``log_path`` values (#964).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["GO_SHAPES", "GoShape", "go_meta_files", "go_path"]


def _keys(text: str) -> dict[str, frozenset[str]]:
    out = {}
    for line in text.strip().splitlines():
        message, *keys = line.split()
        out[message] = frozenset(keys)
    return out


_V040 = """
BackupInfo id state_code errorMessage start_time end_time progress name backup_timestamp collection_backups size milvus_version
CollectionBackupInfo id state_code errorMessage start_time end_time progress collection_id db_name collection_name schema shards_num consistency_level partition_backups backup_timestamp size has_index index_infos load_state backup_physical_timestamp
PartitionBackupInfo partition_id partition_name collection_id segment_backups size load_state
SegmentBackupInfo segment_id collection_id partition_id num_of_rows binlogs statslogs deltalogs size group_id
FieldBinlog fieldID binlogs
Binlog entries_num timestamp_from timestamp_to log_path log_size
CollectionSchema name description autoID fields enable_dynamic_field
FieldSchema fieldID name is_primary_key description data_type type_params index_params autoID state element_type default_value is_dynamic is_partition_key
IndexInfo field_name index_name index_type params
"""
_V050 = """
BackupInfo id state_code errorMessage start_time end_time progress name backup_timestamp collection_backups size milvus_version rbac_meta
CollectionBackupInfo id state_code errorMessage start_time end_time progress collection_id db_name collection_name schema shards_num consistency_level partition_backups backup_timestamp size has_index index_infos load_state backup_physical_timestamp channel_checkpoints l0_segments
PartitionBackupInfo partition_id partition_name collection_id segment_backups size load_state
SegmentBackupInfo segment_id collection_id partition_id num_of_rows binlogs statslogs deltalogs size group_id backuped is_l0
FieldBinlog fieldID binlogs
Binlog entries_num timestamp_from timestamp_to log_path log_size
CollectionSchema name description autoID fields enable_dynamic_field properties functions
FieldSchema fieldID name is_primary_key description data_type type_params index_params autoID state element_type default_value is_dynamic is_partition_key nullable default_value_proto is_function_output
FunctionSchema name id description type input_field_names input_field_ids output_field_names output_field_ids params
IndexInfo field_name index_name index_type params
"""
_V059 = """
BackupInfo id state_code errorMessage start_time end_time progress name backup_timestamp collection_backups size milvus_version rbac_meta rpc_channel_info database_backups meta_size
DatabaseBackupInfo db_name db_id properties
CollectionBackupInfo id state_code errorMessage start_time end_time progress collection_id db_name collection_name schema shards_num consistency_level partition_backups backup_timestamp size has_index index_infos load_state backup_physical_timestamp channel_checkpoints l0_segments properties
PartitionBackupInfo partition_id partition_name collection_id segment_backups size load_state
SegmentBackupInfo segment_id collection_id partition_id num_of_rows binlogs statslogs deltalogs size group_id backuped is_l0 v_channel storage_version
FieldBinlog fieldID binlogs
Binlog entries_num timestamp_from timestamp_to log_path log_size log_id
CollectionSchema name description autoID fields enable_dynamic_field properties functions struct_array_fields
FieldSchema fieldID name is_primary_key description data_type type_params index_params autoID state element_type default_value is_dynamic is_partition_key nullable default_value_proto is_function_output default_value_base64
FunctionSchema name id description type input_field_names input_field_ids output_field_names output_field_ids params
IndexInfo field_name index_name index_type params
"""
_V0510 = """
BackupInfo id state_code name backup_timestamp collection_backups size milvus_version rbac_meta rpc_channel_info database_backups flush_all_msgs_base64 control_channel_name physical_channel_names
DatabaseBackupInfo db_name db_id properties ezk
CollectionBackupInfo id collection_id db_name collection_name schema shards_num consistency_level partition_backups backup_timestamp size has_index index_infos load_state backup_physical_timestamp channel_checkpoints l0_segments properties db_id created_timestamp virtual_channel_names physical_channel_names replicas aliases
PartitionBackupInfo partition_id partition_name collection_id segment_backups size load_state
SegmentBackupInfo segment_id collection_id partition_id num_of_rows binlogs statslogs deltalogs size group_id backuped is_l0 v_channel storage_version
FieldBinlog fieldID binlogs
Binlog entries_num timestamp_from timestamp_to log_path log_size log_id
CollectionSchema name description autoID fields enable_dynamic_field properties functions struct_array_fields
FieldSchema fieldID name is_primary_key description data_type type_params index_params autoID state element_type default_value is_dynamic is_partition_key nullable default_value_proto is_function_output default_value_base64
FunctionSchema name id description type input_field_names input_field_ids output_field_names output_field_ids params
IndexInfo field_name index_name index_type params index_id field_id create_time type_params index_params user_index_params is_auto_index min_index_version max_index_version
"""
_HEAD = """
BackupInfo id state_code name backup_timestamp collection_backups size milvus_version rbac_meta rpc_channel_info database_backups flush_all_msgs_base64 control_channel_name physical_channel_names format
DatabaseBackupInfo db_name db_id properties ezk
CollectionBackupInfo id collection_id db_name collection_name schema shards_num consistency_level partition_backups backup_timestamp size has_index index_infos load_state backup_physical_timestamp channel_checkpoints l0_segments properties db_id created_timestamp virtual_channel_names physical_channel_names aliases snapshot_backup
PartitionBackupInfo partition_id partition_name collection_id segment_backups size load_state
SegmentBackupInfo segment_id collection_id partition_id num_of_rows binlogs statslogs deltalogs size group_id backuped is_l0 v_channel storage_version
FieldBinlog fieldID binlogs
Binlog entries_num timestamp_from timestamp_to log_path log_size log_id
CollectionSchema name description autoID fields enable_dynamic_field properties functions struct_array_fields
FieldSchema fieldID name is_primary_key description data_type type_params index_params autoID state element_type default_value is_dynamic is_partition_key nullable default_value_proto is_function_output default_value_base64
FunctionSchema name id description type input_field_names input_field_ids output_field_names output_field_ids params
IndexInfo field_name index_name index_type params index_id field_id create_time type_params index_params user_index_params is_auto_index min_index_version max_index_version
"""

#: Proto message -> JSON keys, per tag of milvus-backup's core/proto/backup.proto (v0.4.4 = v0.4.0).
PROTO_KEYS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "v0.4.0": _keys(_V040),
    "v0.5.0": _keys(_V050),
    "v0.5.9": _keys(_V059),
    "v0.5.10": _keys(_V0510),
    "HEAD": _keys(_HEAD),
}

_CHILDREN: Mapping[str, Mapping[str, str]] = {
    "BackupInfo": {"collection_backups": "CollectionBackupInfo", "database_backups": "DatabaseBackupInfo"},
    "CollectionBackupInfo": {
        "schema": "CollectionSchema",
        "partition_backups": "PartitionBackupInfo",
        "l0_segments": "SegmentBackupInfo",
        "index_infos": "IndexInfo",
    },
    "CollectionSchema": {"fields": "FieldSchema", "functions": "FunctionSchema"},
    "PartitionBackupInfo": {"segment_backups": "SegmentBackupInfo"},
    "SegmentBackupInfo": {"binlogs": "FieldBinlog", "deltalogs": "FieldBinlog"},
    "FieldBinlog": {"binlogs": "Binlog"},
}


@attrs.frozen
class GoShape:
    """One release line's output: the proto it marshals and what its writer does differently."""

    #: Also the backup's name (a valid one).
    name: str
    proto: str
    #: ``shared``: size-based groups 1, 2, ... shared by segments; ``none``: no group directory;
    #: ``segment``: group id = segment id.
    groups: str = "segment"
    #: ``none`` (not recorded), ``proto`` (default_value_proto) or ``base64`` (default_value_base64).
    defaults: str = "base64"
    v04_state: bool = False
    replicas: bool = False
    absolute_log_path: str = ""
    channel_cp_meta: bool = False


GO_SHAPES = (
    GoShape("go_v0_4_0_groups", "v0.4.0", groups="shared", defaults="none", v04_state=True),
    GoShape("go_v0_4_0_flat", "v0.4.0", groups="none", defaults="none", v04_state=True),
    GoShape("go_v0_4_4", "v0.4.0", defaults="none", v04_state=True),
    GoShape("go_v0_5_0", "v0.5.0", defaults="proto"),
    GoShape("go_v0_5_9", "v0.5.9", channel_cp_meta=True),
    GoShape("go_v0_5_10", "v0.5.10", replicas=True),
    GoShape("go_head_local", "HEAD", absolute_log_path="/var/lib/milvus/data"),
)


def _filter(obj: Any, message: str, keys: Mapping[str, frozenset[str]]) -> Any:
    if isinstance(obj, list):
        return [_filter(item, message, keys) for item in obj]
    allowed = keys.get(message)
    children = _CHILDREN.get(message, {})
    return {
        key: _filter(value, children[key], keys) if key in children else value
        for key, value in obj.items()
        if allowed is None or key in allowed
    }


def _segments(full: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s for c in full["collection_backups"] for p in c["partition_backups"] for s in p["segment_backups"]
    ]


def group_of(full: dict[str, Any], shape: GoShape) -> dict[int, int]:
    """Segment id -> the group directory ``shape`` puts it in (0: none)."""
    groups = {}
    for coll in full["collection_backups"]:
        for part in coll["partition_backups"]:
            for seg in part["segment_backups"]:
                sid = seg["segment_id"]
                groups[sid] = {"shared": 1, "none": 0}.get(shape.groups, sid)
    return groups


def go_full_meta(full: dict[str, Any], shape: GoShape) -> dict[str, Any]:
    """``full`` (a full_meta.json object this library wrote) as the release line of ``shape`` writes it."""
    obj = copy.deepcopy(full)
    obj["name"] = shape.name  # the Go tool names the backup after its directory
    groups = group_of(obj, shape)
    for seg in _segments(obj):
        seg["group_id"] = groups[seg["segment_id"]]
        if not seg["group_id"]:
            del seg["group_id"]  # omitempty
    for coll in obj["collection_backups"]:
        for fld in coll["schema"]["fields"]:
            encoded = fld.pop("default_value_base64", "")
            if encoded and shape.defaults == "base64":
                fld["default_value_base64"] = encoded
            elif encoded and shape.defaults == "proto":
                # Go's json.Marshal writes the raw bytes as a string (invalid UTF-8 would become U+FFFD).
                fld["default_value_proto"] = base64.b64decode(encoded).decode("utf-8")
        if shape.replicas:
            coll["replicas"] = [
                {
                    "replicaID": 449_000_001,
                    "collectionID": coll["collection_id"],
                    "resource_group_name": "__default_resource_group",
                }
            ]
        if shape.v04_state:
            coll.update(state_code=2, start_time=1_700_000_000, end_time=1_700_000_009, progress=100)
    if shape.v04_state:
        obj.update(state_code=2, start_time=1_700_000_000, end_time=1_700_000_010, progress=100)
    if shape.absolute_log_path:
        for seg in _segments(obj):
            for kind in ("binlogs", "deltalogs"):
                for fb in seg.get(kind, []):
                    for log in fb["binlogs"]:
                        tail = log.get("log_path", "").split("insert_log/", 1)[-1].split("delta_log/", 1)[-1]
                        kind_dir = "insert_log" if kind == "binlogs" else "delta_log"
                        log["log_path"] = f"{shape.absolute_log_path}/{kind_dir}/{tail}"
    return _filter(obj, "BackupInfo", PROTO_KEYS[shape.proto])  # type: ignore[no-any-return]


def go_meta_files(full: dict[str, Any], shape: GoShape) -> dict[str, bytes]:
    """The ``meta/`` files of the Go backup of ``shape``: the level files, then full_meta.json."""
    tree = go_full_meta(full, shape)
    colls = copy.deepcopy(tree["collection_backups"])
    nested = shape.proto.startswith("v0.4")  # v0.4 wrote whole clones in collection_meta.json
    parts = [dict(p) for c in colls for p in c["partition_backups"]]
    segments = [s for p in parts for s in p.pop("segment_backups", [])]
    if not nested:
        for c in colls:
            c["partition_backups"] = [
                {k: v for k, v in p.items() if k != "segment_backups"} for p in c["partition_backups"]
            ]
            c.pop("l0_segments", None)
    files = {
        "backup_meta.json": {k: v for k, v in tree.items() if k != "collection_backups"},
        "collection_meta.json": {"infos": colls},
        "partition_meta.json": {"infos": parts},
        "segment_meta.json": {"infos": segments},
    }
    if shape.channel_cp_meta:
        files["channel_cp_meta.json"] = {
            c["collection_name"]: [
                {"name": name.rsplit("_", 1)[0], "position": pos}
                for name, pos in c.get("channel_checkpoints", {}).items()
            ]
            for c in tree["collection_backups"]
        }
    files["full_meta.json"] = tree
    return {name: json.dumps(obj, separators=(",", ":")).encode() for name, obj in files.items()}


def go_path(path: str, groups: Mapping[int, int]) -> str:
    """Where the Go layout keeps a binlog this library stored at ``path`` (relative to the backup)."""
    parts = path.split("/")
    if parts[:2] == ["binlogs", "insert_log"] and len(parts) == 8:
        coll, part, _, seg, field, log = parts[2:]
        group = groups[int(seg)]
        return "/".join(
            ["binlogs", "insert_log", coll, part, *([str(group)] if group else []), seg, field, log]
        )
    if parts[:2] == ["binlogs", "delta_log"] and len(parts) == 7:
        coll, part, _, seg, log = parts[2:]
        group = groups[int(seg)]
        return "/".join(["binlogs", "delta_log", coll, part, *([str(group)] if group else []), seg, log])
    return path  # collection-level L0 deletes (partition -1) have no group level in any release
