"""What each Milvus server version can take, as a table: the restore refuses early what the target cannot.

Every entry names the first version that has the capability and where that fact comes from: Milvus's
and milvus-backup's public source, release notes and documentation, or what the real Milvus 2.3.5 server
does here (the only server that installs on these machines). :func:`capabilities_of` reads the version a
server reports (``v2.3.5``, ``2.6.11``, ``v2.5.8-hotfix``, ``milvus_lite-3.2.2``) and answers with
:class:`ServerCapabilities`; :data:`VERSION_LINES` gives the table per line (2.2 to 2.6) for the docs.

Milvus Lite (``milvus_lite-*``) speaks today's API (functions, nullable fields, defaults, sparse
vectors) but keeps no binlogs: it cannot bulk-import a backup's data, only take its metadata.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping

import attrs

from milvus_backup_lib.manifest.model import DataType

__all__ = [
    "VERSION_LINES",
    "Capability",
    "ServerCapabilities",
    "capabilities_of",
    "since",
    "vector_capability",
]


class Capability(enum.Enum):
    """Something a restore (or a backup) needs from the server; the value says it in a few words."""

    BINLOG_IMPORT = "bulk import of backed-up binlogs (backup=true)"
    MULTI_SEGMENT_IMPORT = "several segments in one import job (ImportV2)"
    L0_IMPORT = "import of L0 delete segments (l0_import=true)"
    MULTI_L0_IMPORT = "several L0 segments in one import job"
    STORAGE_V2 = "storage v2 segments (column groups, storage_version=2)"
    FLOAT16_VECTOR = "bulk import of Float16Vector binlogs"
    BFLOAT16_VECTOR = "bulk import of BFloat16Vector binlogs"
    SPARSE_VECTOR = "bulk import of SparseFloatVector binlogs"
    INT8_VECTOR = "bulk import of Int8Vector binlogs"
    DEFAULT_VALUE = "default values on scalar fields"
    NULLABLE = "nullable fields"
    FUNCTIONS = "schema functions (BM25) and analyzers"
    ADD_FIELD = "fields added after creation (AddCollectionField)"
    STRUCT_ARRAY = "struct array fields (ArrayOfStruct)"
    GC_PAUSE = "cluster-wide garbage-collection pause (management API)"
    COLLECTION_GC_PAUSE = "per-collection garbage-collection pause"
    SEGMENT_DESCRIBE_REST = "exact per-segment binlog lists over REST"
    DESCRIBE_DATABASE = "DescribeDatabase (database ID and properties)"
    RBAC_META_API = "BackupRBAC / RestoreRBAC"
    PRIVILEGE_GROUPS = "privilege groups"
    FLUSH_ALL = "FlushAll"


Version = tuple[int, int, int]


@attrs.frozen
class _Entry:
    since: Version
    source: str


# One line per capability: the first Milvus version that has it, and the public source saying so.
_TABLE: Mapping[Capability, _Entry] = {
    # milvus v2.2.0 internal/util/importutil/import_wrapper.go (the "backup" option reads binlog
    # directories, binlog_adapter.go); milvus-backup README: backups from Milvus 2.2+.
    Capability.BINLOG_IMPORT: _Entry((2, 2, 0), "milvus v2.2.0 internal/util/importutil/binlog_adapter.go"),
    # ImportV2 (milvus v2.4.0 internal/datacoord/import_job.go: one job, many files); milvus-backup
    # docs/user_guide/mul_seg_restore.md: "This feature requires Milvus v2.4.0 or higher".
    Capability.MULTI_SEGMENT_IMPORT: _Entry((2, 4, 0), "milvus-backup docs/user_guide/mul_seg_restore.md"),
    # L0 segments arrive with 2.4 (milvus v2.4.0 release notes, "L0 segment" delete path); the importer
    # reads them with l0_import=true (internal/util/importutilv2/binlog/l0_reader.go, option.go).
    Capability.L0_IMPORT: _Entry((2, 4, 0), "milvus v2.4.0 internal/util/importutilv2/binlog/l0_reader.go"),
    # milvus-backup internal/client/milvus/grpc.go _featureTuples: MultiL0InOneJob >= 2.6.5.
    Capability.MULTI_L0_IMPORT: _Entry(
        (2, 6, 5), "milvus-backup internal/client/milvus/grpc.go MultiL0InOneJob"
    ),
    # Milvus 2.6.0 release notes: storage v2 (Parquet column groups) on by default; milvus-backup v0.5.8
    # records storage_version and sends it with the import (core/restore/coll_task.go batchKey), milvus#43218.
    Capability.STORAGE_V2: _Entry(
        (2, 6, 0), "milvus v2.6.0 release notes; milvus-backup core/restore/coll_task.go"
    ),
    # Milvus 2.4.0 release notes (Float16/BFloat16 vectors, sparse vectors); the 2.3.5 binlog importer
    # answers "Import util: unsupported data type" for a Float16Vector binlog (seen on the server here).
    Capability.FLOAT16_VECTOR: _Entry((2, 4, 0), "milvus v2.4.0 release notes; 2.3.5 refuses (seen here)"),
    Capability.BFLOAT16_VECTOR: _Entry((2, 4, 0), "milvus v2.4.0 release notes"),
    Capability.SPARSE_VECTOR: _Entry((2, 4, 0), "milvus v2.4.0 release notes"),
    # Milvus 2.6.0 release notes (INT8 vectors; schema.proto Int8Vector = 105); milvus-backup v0.5.8.
    Capability.INT8_VECTOR: _Entry((2, 6, 0), "milvus v2.6.0 release notes; schema.proto Int8Vector"),
    # schemapb.FieldSchema.default_value: accepted and kept by the 2.3.5 server here (the "full"
    # collection of tests/integration/dataset.py has a DOUBLE field with default 0.5).
    Capability.DEFAULT_VALUE: _Entry((2, 3, 0), "schema.proto default_value; round-trips on 2.3.5 here"),
    # milvus.io docs v2.5.x nullable-and-default.md (nullable first documented for 2.5; 2.4.x refuses an
    # insert without the field); milvus-backup v0.4.25 records nullable.
    Capability.NULLABLE: _Entry((2, 5, 0), "milvus.io docs v2.5.x/nullable-and-default.md"),
    # "Introducing Milvus 2.5: Full-Text Search" (milvus.io blog, 2024-12-17): BM25 functions and
    # analyzers; schema.proto FunctionSchema; milvus-backup v0.5.0 records functions.
    Capability.FUNCTIONS: _Entry((2, 5, 0), "milvus.io blog introduce-milvus-2-5-full-text-search"),
    # milvus.proto AddCollectionField (Milvus 2.6.0 release notes, "add field"); milvus-backup v0.5.10
    # creates with the original fields then adds the rest (core/restore/coll_ddl_task.go, #887).
    Capability.ADD_FIELD: _Entry((2, 6, 0), "milvus v2.6.0 release notes; milvus-backup #887"),
    # milvus.io docs array-of-structs.md: "Compatible with Milvus 2.6.4+".
    Capability.STRUCT_ARRAY: _Entry((2, 6, 4), "milvus.io docs array-of-structs.md (2.6.4+)"),
    # GET /management/datacoord/garbage_collection/pause: 2.3.5 answers 404 (seen here, milvus/gc.py);
    # milvus-backup core/backup/gc_controller.go uses it on every version it restores into (2.4+).
    Capability.GC_PAUSE: _Entry((2, 4, 0), "milvus-backup core/backup/gc_controller.go; 2.3.5 answers 404"),
    # Milvus 2.6.8 release notes ("Supported pausing GC at the collection level", #46201); milvus-backup
    # internal/client/milvus/grpc.go CollectionLevelGCControl >= 2.6.8.
    Capability.COLLECTION_GC_PAUSE: _Entry((2, 6, 8), "milvus v2.6.8 release notes #46201"),
    # milvus-backup internal/client/milvus/grpc.go GetSegmentInfo >= 2.5.8 (POST /v2/vectordb/segments/describe).
    Capability.SEGMENT_DESCRIBE_REST: _Entry(
        (2, 5, 8), "milvus-backup internal/client/milvus/grpc.go GetSegmentInfo"
    ),
    # milvus-backup internal/client/milvus/grpc.go DescribeDatabase >= 2.4.3.
    Capability.DESCRIBE_DATABASE: _Entry(
        (2, 4, 3), "milvus-backup internal/client/milvus/grpc.go DescribeDatabase"
    ),
    # milvus-backup docs/user_guide/rbac.md (RBAC backup and restore, documented against Milvus v2.4.10).
    Capability.RBAC_META_API: _Entry((2, 4, 10), "milvus-backup docs/user_guide/rbac.md"),
    # milvus.io docs v2.5.x privilege_group.md (CreatePrivilegeGroup); milvus-backup v0.5.4 records them.
    Capability.PRIVILEGE_GROUPS: _Entry((2, 5, 0), "milvus.io docs v2.5.x privilege_group.md"),
    # milvus-backup internal/client/milvus/grpc.go FlushAll >= 2.6.11 (the bulk_flush strategy).
    Capability.FLUSH_ALL: _Entry((2, 6, 11), "milvus-backup internal/client/milvus/grpc.go FlushAll"),
}

#: Milvus Lite has no binlogs, so nothing is bulk-imported into it; it reports ``milvus_lite-X.Y.Z``.
_LITE_LACKS = frozenset(
    {
        Capability.BINLOG_IMPORT,
        Capability.MULTI_SEGMENT_IMPORT,
        Capability.L0_IMPORT,
        Capability.MULTI_L0_IMPORT,
        Capability.STORAGE_V2,
        Capability.GC_PAUSE,
        Capability.COLLECTION_GC_PAUSE,
        Capability.SEGMENT_DESCRIBE_REST,
        Capability.RBAC_META_API,
        Capability.PRIVILEGE_GROUPS,
        Capability.FLUSH_ALL,
        Capability.ADD_FIELD,
        Capability.STRUCT_ARRAY,
    }
)

_VECTOR_CAPABILITY = {
    DataType.FLOAT16_VECTOR: Capability.FLOAT16_VECTOR,
    DataType.BFLOAT16_VECTOR: Capability.BFLOAT16_VECTOR,
    DataType.SPARSE_FLOAT_VECTOR: Capability.SPARSE_VECTOR,
    DataType.INT8_VECTOR: Capability.INT8_VECTOR,
}


def since(capability: Capability) -> str:
    """The first Milvus version with ``capability``, as ``2.6.4``."""
    return ".".join(map(str, _TABLE[capability].since))


def vector_capability(data_type: int) -> Capability | None:
    """The capability a vector field of ``data_type`` needs, or ``None`` when every version has it."""
    return _VECTOR_CAPABILITY.get(data_type)


@attrs.frozen
class ServerCapabilities:
    """What one server (by the version it reports) can take."""

    #: The version as the server reported it.
    version: str
    #: ``(major, minor, patch)``; ``None`` when the version could not be read (then nothing is refused).
    number: Version | None
    lite: bool = False

    def has(self, capability: Capability) -> bool:
        """Whether the server has ``capability`` (an unreadable version is given the benefit of the doubt)."""
        if self.lite:
            return capability not in _LITE_LACKS
        return self.number is None or self.number >= _TABLE[capability].since

    def lacks(self, capability: Capability) -> str | None:
        """Why the server cannot do ``capability``, in words for an error message; ``None`` when it can."""
        if self.has(capability):
            return None
        if self.lite:
            return f"Milvus Lite ({self.version}) has no {capability.value}: it keeps no binlogs"
        return f"Milvus {self.version} has no {capability.value} (Milvus {since(capability)} or newer has)"


_NUMBER = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def capabilities_of(version: str) -> ServerCapabilities:
    """The capabilities of a server reporting ``version`` (``GetVersion``: ``v2.3.5``, ``milvus_lite-3.2.2``)."""
    lite = version.lower().startswith("milvus_lite")
    match = _NUMBER.search(version)
    if lite or match is None:
        return ServerCapabilities(version, None, lite=lite)
    major, minor, patch = match.groups()
    return ServerCapabilities(version, (int(major), int(minor), int(patch or 0)))


def _line_table() -> dict[str, dict[Capability, str]]:
    table: dict[str, dict[Capability, str]] = {}
    for minor in range(2, 7):
        row = {}
        for cap, entry in _TABLE.items():
            first = entry.since
            if first[:2] < (2, minor):
                row[cap] = "yes"
            elif first[:2] == (2, minor):
                row[cap] = "yes" if first[2] == 0 else f"{since(cap)}+"
            else:
                row[cap] = "no"
        table[f"2.{minor}"] = row
    return table


#: Per Milvus line (``"2.2"`` .. ``"2.6"``): ``"yes"``, ``"no"`` or the first patch release (``"2.6.4+"``).
VERSION_LINES: Mapping[str, Mapping[Capability, str]] = _line_table()
