"""The bulk import API of :class:`~milvus_backup_lib.testing.memory.InMemoryMilvus`: jobs, their state, and
their listing (how the files are read is :mod:`milvus_backup_lib.testing._memory_import`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from milvus_backup_lib.errors import MilvusOperationError
from milvus_backup_lib.milvus.records import ImportState
from milvus_backup_lib.testing._memory_data import DataPlane
from milvus_backup_lib.testing._memory_import import ImportFailure, run_import
from milvus_backup_lib.testing._memory_state import Clock, Collection, VersionLine

__all__ = ["ImportJobs"]


class ImportJobs:
    """Mixin: the import RPCs, over the cluster's collections and data plane."""

    line: VersionLine
    #: Every import request, one entry per segment group: (db, collection, partition, files, options).
    import_requests: list[tuple[str, str, str, tuple[str, ...], dict[str, str]]]
    _lock: threading.RLock
    _clock: Clock
    _data: DataPlane

    def _coll(self, db: str, name: str) -> Collection:
        raise NotImplementedError

    def _partition_id(self, coll: Collection, partition: str, operation: str) -> int:
        raise NotImplementedError

    def _init_imports(self) -> None:
        self._imports: dict[int, ImportState] = {}
        self._import_colls: dict[int, tuple[str, int]] = {}

    def start_import(
        self, db: str, name: str, partition: str, files: Sequence[str], options: Sequence[tuple[str, str]]
    ) -> list[int]:
        """Run a bulk import of ``files`` (paths relative to :attr:`storage`) to its end; its task ID."""
        return self._run_job(db, name, partition, [list(files)], options)

    def batch_imports(self) -> bool:
        """2.4+ imports take several segment groups in one job (``ImportV2``)."""
        return self.line.has_l0

    def start_batch_import(
        self,
        db: str,
        name: str,
        partition: str,
        files: Sequence[Sequence[str]],
        options: Sequence[tuple[str, str]],
    ) -> list[int]:
        """One import job of several ``[insert, delta]`` groups, as 2.4+'s ``ImportV2`` (REST
        ``/v2/vectordb/jobs/import/create``) runs it: each group is read as one backup import would."""
        if not self.batch_imports():
            raise MilvusOperationError("ImportV2", f"Milvus {self.line.text} has no multi-file import jobs")
        # internal/proxy/impl.go ImportV2: "The max number of import files should not exceed 1024"
        # (dataCoord.import.maxImportFileNumPerReq).
        if len(files) > 1024:
            raise MilvusOperationError("ImportV2", "The max number of import files should not exceed 1024")
        return self._run_job(db, name, partition, [list(f) for f in files], options)

    def _run_job(
        self,
        db: str,
        name: str,
        partition: str,
        groups: Sequence[Sequence[str]],
        options: Sequence[tuple[str, str]],
    ) -> list[int]:
        with self._lock:
            coll = self._coll(db, name)
            opts = dict(options)
            if opts.get("l0_import") == "true" and self.line.has_l0 and not partition:
                partition_id = -1
            elif not partition:
                raise MilvusOperationError("Import", "partition not specified")
            else:
                partition_id = self._partition_id(coll, partition, "Import")
            self.import_requests.extend((db, name, partition, tuple(g), opts) for g in groups)
            task_id = self._clock.next_id()
            asked_files = tuple(f for g in groups for f in g if f)
            rows, segments = 0, list[int]()
            try:
                for group in groups:
                    result = run_import(self._data, coll, partition_id, list(group), opts)
                    rows += result.rows
                    segments.extend(result.segment_ids)
            except ImportFailure as exc:
                state = ImportState(task_id, "Failed", 0, str(exc), (), asked_files, partition, time.time())
            else:
                state = ImportState(
                    task_id, "Completed", rows, "", tuple(segments), asked_files, partition, time.time()
                )
            self._imports[task_id] = state
            self._import_colls[task_id] = (db, coll.collection_id)
            return [task_id]

    def import_state(self, db: str, task_id: int) -> ImportState:
        with self._lock:
            if task_id not in self._imports:
                raise MilvusOperationError("GetImportState", f"import task {task_id} not found")
            return self._imports[task_id]

    def list_import_tasks(self, db: str, name: str) -> list[ImportState]:
        with self._lock:
            key = (db, self._coll(db, name).collection_id)
            return [s for t, s in self._imports.items() if self._import_colls.get(t) == key]

    @property
    def import_tasks(self) -> dict[int, ImportState]:
        """Every import task run so far, by task ID."""
        return dict(self._imports)
