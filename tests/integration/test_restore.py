"""Restores into a real Milvus 2.3.5, compared row by row with the source collections."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from dataset import (
    Matrix,
    client,
    ensure_loaded,
    fetch_rows,
    make_client,
    partition_counts,
    top_ids,
)

from milvus_backup_lib import (
    BackupClient,
    BackupCorruptError,
    ImportFailedError,
    InvalidOptionError,
    MilvusConnection,
    RestoreOptions,
    RestorePlanError,
    StorageLocation,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def source(
    milvus_server: Any, matrix: Matrix, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Matrix, BackupClient]:
    """The session's matrix, backed up once (before anything is loaded for comparison)."""
    bc = make_client(milvus_server, tmp_path_factory.mktemp("restore_backups"))
    bc.create_backup("src", collections=matrix.qualified())
    return matrix, bc


def server_state(uri: str) -> dict[str, list[str]]:
    root = client(uri)
    state = {}
    for db in root.list_databases():
        c = client(uri, db)
        state[db] = sorted(c.list_collections())
        c.close()
    root.close()
    return state


def drop_database(uri: str, db: str) -> None:
    root = client(uri)
    if db in root.list_databases():
        c = client(uri, db)
        for coll in c.list_collections():
            # pymilvus's list_aliases/drop_alias ignore the client's database unless told again
            for alias in c.list_aliases(coll, db_name=db)["aliases"]:
                c.drop_alias(alias, db_name=db)
            c.drop_collection(coll)
        c.close()
        root.drop_database(db)
    root.close()


def assert_same_rows(src_uri: str, src: tuple[str, str], dst_uri: str, dst: tuple[str, str]) -> int:
    """Every row equal: primary key, each scalar, vectors bit for bit, dynamic keys."""
    a = fetch_rows(src_uri, *src)
    b = fetch_rows(dst_uri, *dst)
    assert a.keys() == b.keys(), f"{src} vs {dst}: primary keys differ"
    for key, row in a.items():
        assert b[key] == row, f"{src} vs {dst}: row {key!r} differs"
    return len(a)


def assert_same_schema(src_uri: str, src: tuple[str, str], dst_uri: str, dst: tuple[str, str]) -> None:
    sc, dc = client(src_uri, src[0]), client(dst_uri, dst[0])
    a, b = sc.describe_collection(src[1]), dc.describe_collection(dst[1])
    for key in (
        "fields",
        "auto_id",
        "enable_dynamic_field",
        "num_partitions",
        "consistency_level",
        "properties",
        "description",
        "num_shards",
    ):
        assert a[key] == b[key], (key, a[key], b[key])
    assert sc.list_partitions(src[1]) == dc.list_partitions(dst[1])
    ia = {n: sc.describe_index(src[1], n) for n in sc.list_indexes(src[1])}
    ib = {n: dc.describe_index(dst[1], n) for n in dc.list_indexes(dst[1])}
    assert ia.keys() == ib.keys()
    for name, idx in ia.items():
        for key in ("index_type", "metric_type", "field_name", "M", "efConstruction"):
            assert idx.get(key) == ib[name].get(key), (name, key)
    sc.close()
    dc.close()


def test_round_trip_every_collection_kind(milvus_server: Any, source: tuple[Matrix, BackupClient]) -> None:
    """Restore into new databases (rename db.* -> db.*) with aliases, indexes and loads; compare everything."""
    m, bc = source
    uri = milvus_server.uri
    new_a, new_b = f"{m.db_a}_r", f"{m.db_b}_r"
    try:
        report = bc.restore(
            "src",
            RestoreOptions(
                collections=[c for c in m.qualified() if not c.endswith(".half")],
                rename={
                    f"{m.db_a}.*": f"{new_a}.*",
                    f"{m.db_b}.*": f"{new_b}.*",
                    f"default.{m.default_coll}": f"{new_a}.from_default",
                },
            ),
        )
        by_target = {c.target: c for c in report.collections}
        assert set(by_target) == {
            f"{new_a}.{c}" for c in ("full", "vkey", "pkey", "empty", "from_default")
        } | {f"{new_b}.other"}
        for c in report.collections:
            assert c.backup_rows == m.rows[c.source]
        full = by_target[f"{new_a}.full"]
        assert full.imported_rows == m.rows[f"{m.db_a}.full"] - len(m.deleted_full)
        assert sum(o.delete_entries for o in full.imports) == len(m.deleted_full)
        assert by_target[f"{new_a}.pkey"].target_rows == 500  # loaded at backup time -> loaded again

        pairs = [
            ((m.db_a, "full"), (new_a, "full")),
            ((m.db_a, "vkey"), (new_a, "vkey")),
            ((m.db_a, "pkey"), (new_a, "pkey")),
            ((m.db_a, "empty"), (new_a, "empty")),
            ((m.db_b, "other"), (new_b, "other")),
            (("default", m.default_coll), (new_a, "from_default")),
        ]
        for src, dst in pairs:
            # indexes first: the source's "other"/default collections have none until ensure_loaded makes one
            if src[1] in ("full", "vkey", "pkey"):
                assert_same_schema(uri, src, uri, dst)
            n = assert_same_rows(uri, src, uri, dst)
            assert n == m.rows[f"{src[0]}.{src[1]}"] - (
                len(m.deleted_full) if src[1] == "full" else len(m.deleted_varchar) if src[1] == "vkey" else 0
            )
            assert partition_counts(uri, *src) == partition_counts(uri, *dst)

        restored = fetch_rows(uri, new_a, "full")
        assert not set(m.deleted_full) & set(restored)
        assert {r["extra"] for r in restored.values()} >= {"dyn1", 2}  # dynamic keys of both types came back
        assert not set(m.deleted_varchar) & set(fetch_rows(uri, new_a, "vkey"))

        # same top-10 for sample searches, on the rebuilt HNSW index and on FLAT
        queries = [row["vec"] for row in list(restored.values())[:3]]
        c = client(uri, m.db_a)
        c.close()
        assert top_ids(uri, m.db_a, "full", "vec", queries) == top_ids(uri, new_a, "full", "vec", queries)
        pk_queries = [r["vec"] for r in list(fetch_rows(uri, m.db_a, "pkey").values())[:3]]
        assert top_ids(uri, m.db_a, "pkey", "vec", pk_queries) == top_ids(
            uri, new_a, "pkey", "vec", pk_queries
        )

        # TTL and the alias came back
        dc = client(uri, new_a)
        assert dc.describe_collection("full")["properties"] == {"collection.ttl.seconds": "86400"}
        # (pymilvus's describe_alias always asks the default database, so list the collection's aliases)
        assert dc.list_aliases("full", db_name=new_a)["aliases"] == [f"{m.db_a.rsplit('_', 1)[0]}_alias"]
        assert dc.describe_collection("pkey")["num_partitions"] == 4
        dc.close()
    finally:
        drop_database(uri, new_a)
        drop_database(uri, new_b)


def test_float16_restore_is_refused_on_2_3_before_any_change(
    milvus_server: Any, source: tuple[Matrix, BackupClient]
) -> None:
    m, bc = source
    before = server_state(milvus_server.uri)
    # method="import" asked for: refused (method="auto" inserts instead, test_insert_restore_server.py)
    with pytest.raises(RestorePlanError, match=r"Float16Vector field 'half'"):
        bc.restore("src", RestoreOptions(collections=[f"{m.db_a}.half"], suffix="_r", method="import"))
    assert server_state(milvus_server.uri) == before
    # meta_only still works: the schema comes back without data
    report = bc.restore("src", RestoreOptions(collections=[f"{m.db_a}.half"], suffix="_meta", meta_only=True))
    assert report.collections[0].imported_rows == 0
    c = client(milvus_server.uri, m.db_a)
    assert [f["name"] for f in c.describe_collection("half_meta")["fields"]] == ["id", "half"]
    c.drop_collection("half_meta")
    c.close()


def test_suffix_drop_existing_skip_create_meta_only(
    milvus_server: Any, source: tuple[Matrix, BackupClient]
) -> None:
    m, bc = source
    uri = milvus_server.uri
    c = client(uri, m.db_a)
    try:
        vkey = [f"{m.db_a}.vkey"]
        bc.restore("src", RestoreOptions(collections=vkey, suffix="_s"))
        assert c.has_collection("vkey_s")
        assert assert_same_rows(uri, (m.db_a, "vkey"), uri, (m.db_a, "vkey_s")) == 400 - len(
            m.deleted_varchar
        )

        # again without drop_existing: refused; with it: replaced, not doubled
        with pytest.raises(RestorePlanError, match="vkey_s"):
            bc.restore("src", RestoreOptions(collections=vkey, suffix="_s"))
        c.release_collection("vkey_s")
        bc.restore("src", RestoreOptions(collections=vkey, suffix="_s", drop_existing=True))
        assert assert_same_rows(uri, (m.db_a, "vkey"), uri, (m.db_a, "vkey_s")) == 400 - len(
            m.deleted_varchar
        )

        # skip_create: an existing empty collection with the same schema receives the data
        from pymilvus import DataType, MilvusClient

        s = MilvusClient.create_schema(auto_id=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=32)
        s.add_field("bits", DataType.BINARY_VECTOR, dim=32)
        s.add_field("n", DataType.INT64)
        c.create_collection("vkey_sc", schema=s)
        report = bc.restore(
            "src",
            RestoreOptions(
                collections=vkey,
                rename={f"{m.db_a}.vkey": f"{m.db_a}.vkey_sc"},
                skip_create=True,
                rebuild_indexes=False,
            ),
        )
        assert report.collections[0].imported_rows == 400 - len(m.deleted_varchar)
        assert assert_same_rows(uri, (m.db_a, "vkey"), uri, (m.db_a, "vkey_sc")) == 400 - len(
            m.deleted_varchar
        )

        # skip_create into a collection whose fields differ: refused before importing anything
        s = MilvusClient.create_schema(auto_id=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=32)
        s.add_field("n", DataType.INT64)
        s.add_field("bits", DataType.BINARY_VECTOR, dim=32)
        c.create_collection("vkey_bad", schema=s)
        with pytest.raises(RestorePlanError, match="differ"):
            bc.restore(
                "src",
                RestoreOptions(
                    collections=vkey, rename={f"{m.db_a}.vkey": f"{m.db_a}.vkey_bad"}, skip_create=True
                ),
            )

        # meta_only: schema, partitions and indexes, no rows
        bc.restore(
            "src",
            RestoreOptions(
                collections=[f"{m.db_a}.full"], suffix="_m", meta_only=True, restore_aliases=False
            ),
        )
        assert c.list_partitions("full_m") == ["_default", "p1", "p2", "p3"]
        assert sorted(c.list_indexes("full_m")) == ["title_trie", "vec"]
        c.load_collection("full_m")
        assert (
            c.query("full_m", filter="", output_fields=["count(*)"], consistency_level="Strong")[0][
                "count(*)"
            ]
            == 0
        )
    finally:
        for name in ("vkey_s", "vkey_sc", "vkey_bad", "full_m"):
            if c.has_collection(name):
                c.drop_collection(name)
        c.close()


def test_dry_run_changes_nothing(milvus_server: Any, source: tuple[Matrix, BackupClient]) -> None:
    m, bc = source
    before = server_state(milvus_server.uri)
    report = bc.restore(
        "src",
        RestoreOptions(
            rename={f"{m.db_a}.*": "brand_new_db.*"},
            dry_run=True,
            collections=[f"{m.db_a}.full", f"{m.db_a}.vkey"],
        ),
    )
    assert report.dry_run and not report.collections
    table = report.plan.table()
    assert "create_database" in table and "brand_new_db.full" in table and "import_data" in table
    assert server_state(milvus_server.uri) == before


def test_planner_conflicts_rejected_before_any_change(
    milvus_server: Any, source: tuple[Matrix, BackupClient]
) -> None:
    m, bc = source
    uri = milvus_server.uri
    before = server_state(uri)
    a = m.db_a
    cases = [
        (RestoreOptions(collections=[f"{a}.vkey"]), "exists"),  # target exists, no flag
        (RestoreOptions(collections=[f"{a}.vkey"], suffix="_missing", skip_create=True), "vkey_missing"),
        (
            RestoreOptions(
                collections=[f"{a}.vkey", f"{a}.empty"],
                rename={f"{a}.vkey": f"{a}.same", f"{a}.empty": f"{a}.same"},
            ),
            "same",
        ),  # two onto one
        (
            RestoreOptions(collections=[f"{a}.full"], suffix="_al"),
            "alias",
        ),  # alias points to the source already
    ]
    for options, needle in cases:
        with pytest.raises(RestorePlanError, match=needle):
            bc.restore("src", options)
        assert server_state(uri) == before, options
    # both flags: refused when the options are built, before any restore can start
    with pytest.raises(InvalidOptionError, match="skip_create"):
        RestoreOptions(collections=[f"{a}.vkey"], drop_existing=True, skip_create=True)
    # several conflicts are reported together
    with pytest.raises(RestorePlanError) as err:
        bc.restore("src", RestoreOptions(collections=[f"{a}.vkey", f"{a}.pkey"]))
    assert len(err.value.conflicts) >= 2
    assert server_state(uri) == before


def test_silent_empty_import_is_an_error(
    milvus_server: Any, source: tuple[Matrix, BackupClient], tmp_path: Path
) -> None:
    """Milvus answers "Completed" with 0 rows when the import path is empty; the restore must fail."""
    m, bc = source
    shutil.copytree(Path(bc.backup_storage.root) / "src", tmp_path / "broken")
    (tmp_path / "broken" / "meta" / "full_meta.json").write_bytes(
        (tmp_path / "broken" / "meta" / "full_meta.json")
        .read_bytes()
        .replace(b'"name":"src"', b'"name":"broken"')
    )
    broken = make_client(milvus_server, tmp_path)
    seg = broken.get_backup("broken").collection(m.db_b, "other").partition_backups[0].segment_backups[0]
    shutil.rmtree(
        tmp_path / "broken" / f"binlogs/insert_log/{seg.collection_id}/{seg.partition_id}/{seg.group_id}"
    )
    # The restore's own check of the backup finds the hole first...
    with pytest.raises(BackupCorruptError, match="missing: binlogs/insert_log"):
        broken.restore("broken", RestoreOptions(collections=[f"{m.db_b}.other"], suffix="_z"))
    # ...and with that check off, the row count of the import is the second line of defence.
    with pytest.raises(ImportFailedError, match=r"brought 0 rows; the backup holds 120 rows"):
        broken.restore(
            "broken", RestoreOptions(collections=[f"{m.db_b}.other"], suffix="_z", check_backup="none")
        )


def test_restore_into_a_second_server(
    milvus_server: Any, second_milvus_server: Any, source: tuple[Matrix, BackupClient]
) -> None:
    """A user moving data between clusters: same backup root, another server with its own storage."""
    m, bc = source
    target = BackupClient(
        milvus=MilvusConnection(uri=second_milvus_server.uri),
        milvus_storage=StorageLocation(second_milvus_server.storage_url),
        backup_storage=bc.backup_storage,
    )
    report = target.restore(
        "src", RestoreOptions(collections=[f"{m.db_a}.full", f"{m.db_b}.other", f"{m.db_a}.pkey"])
    )
    assert {c.target for c in report.collections} == {f"{m.db_a}.full", f"{m.db_b}.other", f"{m.db_a}.pkey"}
    try:
        for db, coll in ((m.db_a, "full"), (m.db_b, "other"), (m.db_a, "pkey")):
            assert_same_rows(milvus_server.uri, (db, coll), second_milvus_server.uri, (db, coll))
        assert_same_schema(milvus_server.uri, (m.db_a, "full"), second_milvus_server.uri, (m.db_a, "full"))
        assert f"{m.db_a}.full" not in server_state(milvus_server.uri).get("default", [])
    finally:
        drop_database(second_milvus_server.uri, m.db_a)
        drop_database(second_milvus_server.uri, m.db_b)


def test_v04_layout_backup_restores(
    milvus_server: Any, source: tuple[Matrix, BackupClient], tmp_path: Path
) -> None:
    """A backup in the v0.4 layout (group_id 0, partition-level prefixes, v0.4 keys) restores too."""
    m, bc = source
    src = Path(bc.backup_storage.root) / "src"
    old = tmp_path / "old04"
    full = json.loads((src / "meta/full_meta.json").read_bytes())
    full.update(name="old04", state_code=2, progress=100, start_time=1, end_time=2, errorMessage="")
    keep = {f"{m.db_a}.vkey", f"{m.db_b}.other"}
    full["collection_backups"] = [
        c for c in full["collection_backups"] if f"{c['db_name']}.{c['collection_name']}" in keep
    ]
    for coll in full["collection_backups"]:
        coll.update(state_code=2, progress=100)
        for part in coll["partition_backups"]:
            for seg in part["segment_backups"]:
                c, p, s = seg["collection_id"], seg["partition_id"], seg["segment_id"]
                for kind in ("insert_log", "delta_log"):
                    grouped = src / f"binlogs/{kind}/{c}/{p}/{s}/{s}"
                    if grouped.exists():
                        shutil.copytree(grouped, old / f"binlogs/{kind}/{c}/{p}/{s}")  # no group directory
                seg.pop("group_id", None)
    (old / "meta").mkdir(parents=True)
    (old / "meta/full_meta.json").write_text(json.dumps(full))
    (old / "meta/backup_meta.json").write_text(
        json.dumps({k: full[k] for k in ("id", "state_code", "name", "size")})
    )
    legacy = make_client(milvus_server, tmp_path)
    info = legacy.get_backup("old04")
    assert all(
        s.group_id == 0
        for cb in info.collection_backups
        for p in cb.partition_backups
        for s in p.segment_backups
    )
    plan = legacy.plan_restore("old04", RestoreOptions(suffix="_v04"))
    assert f"binlogs/insert_log/{info.collection(m.db_a, 'vkey').collection_id}/" in plan.table()
    legacy.restore("old04", RestoreOptions(suffix="_v04"))
    try:
        assert_same_rows(milvus_server.uri, (m.db_a, "vkey"), milvus_server.uri, (m.db_a, "vkey_v04"))
        assert_same_rows(milvus_server.uri, (m.db_b, "other"), milvus_server.uri, (m.db_b, "other_v04"))
    finally:
        for db, coll in ((m.db_a, "vkey_v04"), (m.db_b, "other_v04")):
            c = client(milvus_server.uri, db)
            c.drop_collection(coll)
            c.close()


_ = ensure_loaded


def _staging_dirs(server: Any) -> list[Path]:
    return sorted(Path(server.data_dir).glob("restore-temp-*"))


def test_backup_the_server_cannot_read_is_staged_and_cleaned_up(
    milvus_server: Any, source: tuple[Matrix, BackupClient]
) -> None:
    """A backup in another store (here fsspec memory) is copied into the server's storage, imported, removed."""
    m, _ = source
    mem = BackupClient(
        milvus=MilvusConnection(uri=milvus_server.uri, management_url=milvus_server.management_url),
        milvus_storage=StorageLocation(milvus_server.storage_url),
        backup_storage=StorageLocation(f"memory://stage_{uuid.uuid4().hex[:8]}"),
    )
    mem.create_backup("inmem", collections=[f"{m.db_b}.other", f"{m.db_a}.vkey"])
    before = _staging_dirs(milvus_server)
    report = mem.restore("inmem", RestoreOptions(suffix="_mem"))
    try:
        imports = [o for c in report.collections for o in c.imports]
        assert imports and all(o.staged for o in imports)
        assert _staging_dirs(milvus_server) == before  # staged files removed
        assert assert_same_rows(
            milvus_server.uri, (m.db_a, "vkey"), milvus_server.uri, (m.db_a, "vkey_mem")
        ) == 400 - len(m.deleted_varchar)
        assert (
            assert_same_rows(milvus_server.uri, (m.db_b, "other"), milvus_server.uri, (m.db_b, "other_mem"))
            == 120
        )

        kept = mem.restore(
            "inmem", RestoreOptions(collections=[f"{m.db_b}.other"], suffix="_kept", keep_staged=True)
        )
        assert kept.collections[0].imported_rows == 120
        new = [d for d in _staging_dirs(milvus_server) if d not in before]
        assert len(new) == 1 and any(p.is_file() for p in new[0].rglob("*"))
        shutil.rmtree(new[0])
    finally:
        for db, coll in ((m.db_a, "vkey_mem"), (m.db_b, "other_mem"), (m.db_b, "other_kept")):
            c = client(milvus_server.uri, db)
            if c.has_collection(coll):
                c.drop_collection(coll)
            c.close()


class _VanishingCopier:
    """A SegmentCopier that copies like FsspecCopier, then loses the insert logs it staged, as a cleanup
    job racing the restore would: Milvus then finds nothing at the import path."""

    def __init__(self) -> None:
        self.removed: list[str] = []

    def copy(self, source: Any, destination: Any, jobs: Any, progress: Any = None) -> Any:
        from milvus_backup_lib import NULL_PROGRESS, FsspecCopier

        result = FsspecCopier().copy(source, destination, jobs, progress or NULL_PROGRESS)
        for job in jobs:
            if "/insert_log/" in job.destination:
                destination.remove_file(job.destination)
                self.removed.append(job.destination)
        return result


def test_removed_staged_files_make_the_import_fail(
    milvus_server: Any, source: tuple[Matrix, BackupClient]
) -> None:
    """The issue's provocation: stage, remove the staged insert logs, import: Milvus says Completed, 0 rows."""
    m, _ = source
    connection = MilvusConnection(uri=milvus_server.uri, management_url=milvus_server.management_url)
    milvus_storage = StorageLocation(milvus_server.storage_url)
    backup_storage = StorageLocation(f"memory://stage_{uuid.uuid4().hex[:8]}")
    BackupClient(connection, milvus_storage, backup_storage).create_backup(
        "inmem", collections=[f"{m.db_b}.other"]
    )
    vanishing = _VanishingCopier()
    restorer = BackupClient(connection, milvus_storage, backup_storage, copier=vanishing)
    try:
        with pytest.raises(ImportFailedError, match=r"brought 0 rows; the backup holds 120 rows"):
            restorer.restore("inmem", RestoreOptions(suffix="_gone"))
        assert vanishing.removed and not any(Path(p).exists() for p in vanishing.removed)
    finally:
        c = client(milvus_server.uri, m.db_b)
        if c.has_collection("other_gone"):
            c.drop_collection("other_gone")
        c.close()


def test_progress_events(milvus_server: Any, source: tuple[Matrix, BackupClient], tmp_path: Path) -> None:
    from milvus_backup_lib import Progress

    m, _ = source

    class Rec(Progress):
        """Records every event (file_done comes from worker threads; list.append is atomic)."""

        def __init__(self) -> None:
            self.events: list[tuple[Any, ...]] = []

        def kinds(self) -> list[str]:
            return [e[0] for e in self.events]

    for name in (
        "phase",
        "collection_started",
        "collection_done",
        "segments_found",
        "files_total",
        "file_done",
        "import_started",
        "import_done",
        "waiting",
    ):
        setattr(Rec, name, lambda self, *args, _n=name: self.events.append((_n, *args)))
    bc = make_client(milvus_server, tmp_path)
    rec = Rec()
    report = bc.create_backup("progress", collections=[f"{m.db_a}.vkey"], progress=rec)
    kinds = rec.kinds()
    assert ("collection_started", f"{m.db_a}.vkey") in rec.events
    assert ("segments_found", f"{m.db_a}.vkey", 2) in rec.events
    assert [e for e in rec.events if e[0] == "files_total"] == [
        ("files_total", report.files, report.bytes_copied)
    ]
    assert kinds.count("file_done") == report.files
    assert sum(e[2] for e in rec.events if e[0] == "file_done") == report.bytes_copied
    assert kinds.index("files_total") < kinds.index("file_done")

    rec = Rec()
    restored = bc.restore("progress", RestoreOptions(suffix="_prog"), progress=rec)
    try:
        starts = [e for e in rec.events if e[0] == "import_started"]
        dones = [e for e in rec.events if e[0] == "import_done"]
        assert len(starts) == len(dones) == len(restored.collections[0].imports) == 2
        assert sum(e[3] for e in dones) == restored.collections[0].imported_rows
        waits = [e for e in rec.events if e[0] == "waiting"]
        assert waits and all("import into" in e[1] for e in waits)  # imports take seconds: waits are reported
    finally:
        c = client(milvus_server.uri, m.db_a)
        c.drop_collection("vkey_prog")
        c.close()
