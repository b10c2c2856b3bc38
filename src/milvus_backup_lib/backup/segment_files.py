"""Which files of a segment a backup copies: from Milvus's own binlog list when the server gives one,
else from a listing of the segment's prefixes in the cluster storage.

Storage formats (milvus-io/milvus ``internal/storage/rw.go``: ``StorageV1 = 0``, ``StorageV2 = 2``
"packed writer binlog format (parquet)", ``StorageV3 = 3`` "loon manifest format"):

- v1 (0 or 1): one directory per field, ``insert_log/{c}/{p}/{s}/{field_id}/{log_id}``. Every field
  must have the same number of files and the system fields 0 (row ID) and 1 (timestamp) must be there
  (otherwise orphan files from a retried flush would make the backup unrestorable).
- v2 (2, Milvus 2.6): one directory per Parquet column group, ``insert_log/{c}/{p}/{s}/{group_id}/{log_id}``,
  several files per group when the segment is large; a group holds several fields, so the v1 checks do
  not apply. The backup keeps the same shape below its group directory, as milvus-backup does
  (``core/backup/coll_dml_task.go`` ``insertLogsAttrs``: ``{backup}/binlogs/insert_log/{c}/{p}/{group}/{s}/
  {FieldBinlog.FieldID}/{log_id}``, where a v2 segment's ``FieldID`` is the column group ID).
- v3 (3): the Loon manifest format of milvus-storage (milvus PR 46976): the segment directory holds
  ``_metadata/manifest-{version}.avro``, ``_data/{group}_{uuid}.parquet`` and ``_delta/`` files
  (milvus-storage ``cpp/include/milvus-storage/common/layout.h``). Milvus's binlog import reads
  ``{segment}/{field}/{log}`` directories, so these files cannot be restored as plain binlogs: refused,
  naming the segment, as is any storage version this library does not know.

Milvus 2.5.8+ tells each segment's exact binlogs (``MilvusCluster.segment_binlogs``, the REST
segment-describe API): then only those files are copied, so orphans that a retried flush or a failed
compaction left in the segment's directory are not (the cause of milvus-backup's "different file num"
failures, zilliztech/milvus-backup #913, #971), and a listed file missing from the storage is an error
naming it.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict

from milvus_backup_lib.errors import InconsistentSegmentError, UnsupportedSegmentFormatError
from milvus_backup_lib.manifest.model import Binlog, FieldBinlog, SegmentBackupInfo
from milvus_backup_lib.milvus.records import SegmentBinlogList, SegmentInfo
from milvus_backup_lib.storage.layout import milvus_delta_log_prefix, milvus_insert_log_prefix
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["KNOWN_STORAGE_VERSIONS", "SegmentFiles", "check_storage_format"]

log = logging.getLogger(__name__)

#: The segment storage formats whose files a backup copies as binlogs: v1 (0 and 1) and v2.
KNOWN_STORAGE_VERSIONS = frozenset({0, 1, 2})
_LOON_VERSION = 3

_INSERT_RE = re.compile(r"(?:^|/)insert_log/(\d+)/(-?\d+)/(\d+)/(\d+)/(\d+)$")
_DELTA_RE = re.compile(r"(?:^|/)delta_log/(\d+)/(-?\d+)/(\d+)/(\d+)$")
#: The directories of milvus-storage's Loon layout inside a segment directory.
_LOON_RE = re.compile(r"/(_metadata|_data|_delta|_stats)/")

#: Key relative to the storage root -> (path as listed, size).
_Listing = dict[str, tuple[str, int]]


def check_storage_format(info: SegmentInfo) -> None:
    """Raise :class:`UnsupportedSegmentFormatError` unless the segment's files can be backed up."""
    version = info.storage_version
    if version in KNOWN_STORAGE_VERSIONS:
        return
    if version == _LOON_VERSION:
        raise UnsupportedSegmentFormatError(
            info.segment_id,
            "storage v3 (Loon manifest)",
            "its files are a manifest and Parquet data files that Milvus's binlog import cannot read "
            "back; back this collection up with a Milvus snapshot, or turn Milvus's Loon option "
            "(UseLoonFFI) off and compact the collection so it is rewritten in storage v2",
        )
    raise UnsupportedSegmentFormatError(
        info.segment_id,
        f"storage v{version}",
        "this version of the library knows storage v1 and v2 only; upgrade milvus-backup-lib",
    )


class SegmentFiles:
    """Builds a segment's manifest record from the cluster storage (see the module docstring)."""

    def __init__(self, storage: StorageLocation) -> None:
        self.storage = storage

    def __repr__(self) -> str:
        return f"SegmentFiles({self.storage!r})"

    def _list(self, prefix: str) -> dict[str, tuple[str, int]]:
        """Key relative to the storage root -> (path, size), of every file below ``prefix``."""
        found = self.storage.list_files(self.storage.join(prefix))
        return {self._relative(path): (path, size) for path, size in found.items()}

    def _relative(self, path: str) -> str:
        try:
            return self.storage.relative(path)
        except ValueError:
            return path

    def segment(self, info: SegmentInfo, listed: SegmentBinlogList | None = None) -> SegmentBackupInfo:
        """The segment's record: from ``listed`` (the server's binlog list) when given, else from the
        storage listing. Raises :class:`InconsistentSegmentError` (or its subclass
        :class:`UnsupportedSegmentFormatError`) naming the segment."""
        check_storage_format(info)
        seg_id, coll_id, part_id = info.segment_id, info.collection_id, info.partition_id
        insert_prefix = milvus_insert_log_prefix(coll_id, part_id, seg_id)
        delta_prefix = milvus_delta_log_prefix(coll_id, part_id, seg_id)
        inserts = {} if info.is_l0 else self._list(insert_prefix)
        deltas = self._list(delta_prefix)
        for key in (*inserts, *deltas):
            if _LOON_RE.search("/" + key):
                raise UnsupportedSegmentFormatError(
                    seg_id,
                    "storage v3 (Loon manifest)",
                    f"its directory holds {key!r}, a file of the Loon layout that Milvus's binlog import "
                    "cannot read back",
                )
        if listed is not None:
            fields, delta_logs = self._from_list(info, listed, inserts, deltas)
        else:
            fields, delta_logs = self._from_listing(info, inserts, deltas)

        if not info.is_l0:
            if info.num_rows > 0 and not fields:
                raise InconsistentSegmentError(
                    seg_id,
                    f"Milvus reports {info.num_rows} rows but no insert binlogs exist under "
                    f"{self.storage.join(insert_prefix)!r}",
                )
            if info.storage_version < 2:
                _check_v1(seg_id, fields)

        binlogs = tuple(
            FieldBinlog(field_id=f, binlogs=tuple(sorted(logs, key=lambda b: b.log_id)))
            for f, logs in sorted(fields.items())
        )
        deltalogs = (
            (FieldBinlog(binlogs=tuple(sorted(delta_logs, key=lambda b: b.log_id))),) if delta_logs else ()
        )
        size = sum(b.log_size for fb in binlogs for b in fb.binlogs) + sum(b.log_size for b in delta_logs)
        return SegmentBackupInfo(
            segment_id=seg_id,
            collection_id=coll_id,
            partition_id=part_id,
            num_of_rows=info.num_rows,
            binlogs=binlogs,
            deltalogs=deltalogs,
            size=size,
            group_id=0 if part_id == -1 else seg_id,
            is_l0=info.is_l0,
            v_channel=(listed.v_channel if listed is not None else "") or info.insert_channel,
            storage_version=info.storage_version,
        )

    def _binlog(self, found: tuple[str, int], log_id: int) -> Binlog:
        path, size = found
        return Binlog(log_path=self.storage.bucket_key(path), log_size=size, log_id=log_id)

    def _from_listing(
        self, info: SegmentInfo, inserts: _Listing, deltas: _Listing
    ) -> tuple[dict[int, list[Binlog]], list[Binlog]]:
        seg_id = info.segment_id
        fields: dict[int, list[Binlog]] = defaultdict(list)
        for key, found in inserts.items():
            m = _INSERT_RE.search(key)
            if not m or int(m.group(3)) != seg_id:
                raise InconsistentSegmentError(seg_id, f"unexpected file {key!r} under its insert_log prefix")
            fields[int(m.group(4))].append(self._binlog(found, int(m.group(5))))
        delta_logs: list[Binlog] = []
        for key, found in deltas.items():
            m = _DELTA_RE.search(key)
            if not m or int(m.group(3)) != seg_id:
                raise InconsistentSegmentError(seg_id, f"unexpected file {key!r} under its delta_log prefix")
            delta_logs.append(self._binlog(found, int(m.group(4))))
        return fields, delta_logs

    def _from_list(
        self, info: SegmentInfo, listed: SegmentBinlogList, inserts: _Listing, deltas: _Listing
    ) -> tuple[dict[int, list[Binlog]], list[Binlog]]:
        """The files ``listed`` names (as milvus-backup's ``listInsertLogByAPI``/``listDeltaLogByAPI``
        build their keys), each checked against the listing; files it does not name are left out."""
        seg_id = info.segment_id
        insert_prefix = milvus_insert_log_prefix(info.collection_id, info.partition_id, seg_id)
        delta_prefix = milvus_delta_log_prefix(info.collection_id, info.partition_id, seg_id)
        fields: dict[int, list[Binlog]] = defaultdict(list)
        used = 0
        for field_id, log_ids in [] if info.is_l0 else listed.insert_logs:
            for log_id in log_ids:
                key = f"{insert_prefix}/{field_id}/{log_id}"
                fields[field_id].append(self._binlog(self._found(seg_id, key, inserts), log_id))
                used += 1
        delta_logs: list[Binlog] = []
        for log_id in listed.delta_logs:
            key = f"{delta_prefix}/{log_id}"
            delta_logs.append(self._binlog(self._found(seg_id, key, deltas), log_id))
        orphans = len(inserts) - used + len(deltas) - len(delta_logs)
        if orphans > 0:
            log.info(
                "segment %s: %d file(s) in its directories are not in Milvus's binlog list "
                "(orphans of a retried flush or compaction); not backed up",
                seg_id,
                orphans,
            )
        return fields, delta_logs

    def _found(self, seg_id: int, key: str, listing: _Listing) -> tuple[str, int]:
        if key not in listing:
            raise InconsistentSegmentError(
                seg_id,
                f"Milvus lists the binlog {self.storage.join(key)!r} but it is not in the storage; check "
                "that the backup reads the cluster's bucket and root path, and that GC did not remove it "
                "(pause GC during the backup)",
            )
        return listing[key]


def _check_v1(seg_id: int, fields: dict[int, list[Binlog]]) -> None:
    counts = {f: len(logs) for f, logs in fields.items()}
    if len(set(counts.values())) > 1:
        raise InconsistentSegmentError(
            seg_id,
            "fields have different numbers of binlog files (orphan files?): "
            + ", ".join(f"field {f}: {n}" for f, n in sorted(counts.items())),
        )
    if fields and not {0, 1} <= set(fields):
        raise InconsistentSegmentError(
            seg_id, "the system fields 0 (RowID) and 1 (Timestamp) have no binlogs"
        )
