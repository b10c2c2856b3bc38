"""The restore executor against in-memory clusters: it checks every import's row count against the backup
and refuses, before importing, a target whose field IDs would not line up with the binlogs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from memory_data import DB, DELETED_EVERYWHERE, client, populate, schema

from milvus_backup_lib import RestoreOptions
from milvus_backup_lib.backup.copier import CopyJob, CopyResult, FsspecCopier
from milvus_backup_lib.errors import ImportFailedError, RestorePlanError
from milvus_backup_lib.manifest.model import CollectionSchema
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.storage.location import StorageLocation
from milvus_backup_lib.testing.memory import InMemoryMilvus


class StagingLosesASegment:
    """Copies like the real copier, except that staging into ``cluster`` silently drops one segment's
    insert binlogs (the 2.3.5 quirk then makes its import "Completed" with 0 rows)."""

    def __init__(self, cluster: InMemoryMilvus) -> None:
        self.cluster = cluster
        self.inner = FsspecCopier()
        self.dropped: list[str] = []

    def copy(
        self,
        source: StorageLocation,
        destination: StorageLocation,
        jobs: Sequence[CopyJob],
        progress: Progress = NULL_PROGRESS,
    ) -> CopyResult:
        jobs = list(jobs)
        if destination.url == self.cluster.storage.url and "/insert_log/" in jobs[0].destination:
            self.dropped = [j.destination for j in jobs]
            jobs = []
        return self.inner.copy(source, destination, jobs, progress)


def test_an_import_that_brings_fewer_rows_than_the_backup_fails() -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = InMemoryMilvus("2.3.5")
    lossy = StagingLosesASegment(target)
    restore = client(target, bk.backup_storage, copier=lossy)
    with pytest.raises(ImportFailedError, match=r"brought 0 rows; the backup holds 10 rows"):
        restore.restore("b", parallel_imports=1)  # one at a time: the first import is the one that fails
    assert lossy.dropped
    # the import ran and reported success: only the executor's row check caught the loss
    [state] = target.import_tasks.values()
    assert (state.state, state.row_count) == ("Completed", 0)


def test_imported_rows_may_fall_short_only_by_the_counted_deletes() -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = InMemoryMilvus("2.3.5")
    report = client(target, bk.backup_storage).restore("b")
    with_deletes = [o for o in report.collections[0].imports if o.delete_entries]
    assert sum(o.delete_entries for o in with_deletes) == len(DELETED_EVERYWHERE) + 1
    for outcome in report.collections[0].imports:
        assert outcome.imported_rows == outcome.expected_rows - outcome.delete_entries


def test_skip_create_into_a_collection_with_other_field_ids_is_refused_before_any_import() -> None:
    source = InMemoryMilvus("2.4.10")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = InMemoryMilvus("2.4.10")
    fields = schema().fields
    reordered = CollectionSchema(
        fields=(fields[0], fields[2], fields[1], *fields[3:]), enable_dynamic_field=True
    )
    target.create_collection(DB, "c", reordered)
    target.create_partition(DB, "c", "p1")
    with pytest.raises(RestorePlanError, match="field") as refused:
        client(target, bk.backup_storage).restore("b", RestoreOptions(skip_create=True))
    assert any("vec" in conflict and "flag" in conflict for conflict in refused.value.conflicts)
    assert target.import_tasks == {} and target.rows(DB, "c") == []


def test_skip_create_into_a_matching_collection_imports() -> None:
    source = InMemoryMilvus("2.4.10")
    populate(source)
    bk = client(source)
    bk.create_backup("b")
    target = InMemoryMilvus("2.4.10")
    target.create_collection(DB, "c", schema())
    target.create_partition(DB, "c", "p1")
    client(target, bk.backup_storage).restore("b", RestoreOptions(skip_create=True))
    assert target.rows(DB, "c") == source.rows(DB, "c")
