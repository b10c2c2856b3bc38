"""The segment-describe API of :class:`~milvus_backup_lib.testing.memory.InMemoryMilvus` (Milvus 2.5.8+).

Milvus 2.5.8 added ``GetSegmentsInfo`` to the proxy and ``POST /v2/vectordb/segments/describe`` to its
REST API (milvus-io/milvus PR 40464; milvus-backup enables it from 2.5.8, ``internal/client/milvus/grpc.go``
feature ``GetSegmentInfo``). It answers each segment's binlogs from datacoord's meta: insert log IDs by
``FieldBinlog.FieldID`` (the field on storage v1, the column group on storage v2) and delta log IDs
(``internal/distributed/proxy/httpserver/handler_v2.go`` ``getSegmentsInfo``). The meta lists only the
files a flush or compaction committed, so orphan files in a segment's directory are not in it. A
segment the meta does not know fails the whole request ("segment not found"); answered here as None,
as :class:`~milvus_backup_lib.milvus.rest.RestSegmentDescriber` answers a failed request.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence

from milvus_backup_lib.milvus.records import SegmentBinlogList
from milvus_backup_lib.testing._memory_state import Collection, VersionLine

__all__ = ["SegmentMeta"]


class SegmentMeta:
    """``segment_binlogs`` of the in-memory cluster, from the files each segment committed."""

    line: VersionLine
    _lock: threading.RLock
    _dbs: dict[str, dict[str, Collection]]

    def segment_binlogs(
        self, db: str, collection_id: int, segment_ids: Sequence[int]
    ) -> dict[int, SegmentBinlogList] | None:
        """Each segment's binlogs from the meta (2.5.8+); None before 2.5.8 (no such API: HTTP 404)."""
        if not self.line.describes_segments:
            return None
        with self._lock:
            colls = [c for c in self._dbs.get(db, {}).values() if c.collection_id == collection_id]
            if not colls:
                return None
            segments = colls[0].segments
            if any(s not in segments or segments[s].state == "Dropped" for s in segment_ids):
                return None
            result: dict[int, SegmentBinlogList] = {}
            for seg_id in segment_ids:
                seg = segments[seg_id]
                inserts: dict[int, list[int]] = defaultdict(list)
                deltas: list[int] = []
                for key in seg.files:
                    parts = key.split("/")
                    if parts[0] == "insert_log":
                        inserts[int(parts[-2])].append(int(parts[-1]))
                    else:
                        deltas.append(int(parts[-1]))
                result[seg_id] = SegmentBinlogList(
                    segment_id=seg_id,
                    insert_logs=tuple((f, tuple(logs)) for f, logs in sorted(inserts.items())),
                    delta_logs=tuple(deltas),
                    v_channel=seg.channel,
                )
            return result
