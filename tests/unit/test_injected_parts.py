"""The facade's parts are replaceable: a snapshotter and a planner of the test's own, injected into
``BackupClient``, drive a real backup and restore through the in-memory cluster."""

from __future__ import annotations

import attrs
from memory_data import DB, client, populate

from milvus_backup_lib import (
    NULL_PROGRESS,
    BackupStrategy,
    ClusterSnapshot,
    CollectionFilter,
    DefaultRestorePlanner,
    ListingSnapshotter,
    MilvusCluster,
    Progress,
    RestoreOptions,
    RestorePlan,
    TargetState,
)
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.testing.memory import InMemoryMilvus


class OnePartitionSnapshotter:
    """A MetadataSnapshotter that keeps only one partition's segments of what the listing snapshotter read."""

    def __init__(self, inner: ListingSnapshotter, partition: str) -> None:
        self.inner = inner
        self.partition = partition

    def snapshot(
        self,
        milvus: MilvusCluster,
        selection: CollectionFilter,
        strategy: BackupStrategy,
        progress: Progress = NULL_PROGRESS,
    ) -> ClusterSnapshot:
        snap = self.inner.snapshot(milvus, selection, strategy, progress)
        collections = []
        for coll in snap.collections:
            parts = tuple(
                p if p.partition_name == self.partition else attrs.evolve(p, segment_backups=(), size=0)
                for p in coll.partition_backups
            )
            collections.append(
                attrs.evolve(coll, partition_backups=parts, l0_segments=(), size=sum(p.size for p in parts))
            )
        return attrs.evolve(snap, collections=tuple(collections))


class SchemaOnlyPlanner:
    """A RestorePlanner that plans every restore as ``meta_only``: collections, partitions, no data."""

    def plan(self, backup: BackupInfo, options: RestoreOptions, target: TargetState) -> RestorePlan:
        return DefaultRestorePlanner().plan(backup, attrs.evolve(options, meta_only=True), target)


def test_an_injected_snapshotter_decides_what_is_backed_up() -> None:
    source = InMemoryMilvus("2.3.5")
    populate(source)
    snapshotter = OnePartitionSnapshotter(ListingSnapshotter(source.storage), "p1")
    bk = client(source, snapshotter=snapshotter)
    info = bk.create_backup("p1_only", "c").info
    [coll] = info.collection_backups
    held = {p.partition_name: len(p.segment_backups) for p in coll.partition_backups}
    assert held["_default"] == 0 and held["p1"] > 0
    assert bk.verify_backup("p1_only", level="checksum").ok

    target = InMemoryMilvus("2.3.5")
    client(target, bk.backup_storage).restore("p1_only")
    p1_rows = [r for r in source.rows(DB, "c") if r["pk"] >= 1000]
    assert target.rows(DB, "c") == p1_rows


def test_an_injected_planner_decides_what_is_restored() -> None:
    source = InMemoryMilvus("2.4.10")
    populate(source)
    bk = client(source)
    bk.create_backup("full", "c")

    target = InMemoryMilvus("2.4.10")
    restorer = client(target, bk.backup_storage, planner=SchemaOnlyPlanner())
    report = restorer.restore("full")
    assert [c.imported_rows for c in report.collections] == [0]
    assert not any(step.kind == "import_data" for step in report.plan.steps)
    assert target.rows(DB, "c") == []
    assert [p.name for p in target.show_partitions(DB, "c")] == ["_default", "p1"]
    assert (
        target.describe_collection(DB, "c").schema.fields == source.describe_collection(DB, "c").schema.fields
    )
