"""Notebook display: ``_repr_html_`` tables, text ``table()``s and ``BackupList.to_dataframe()`` (no Milvus)."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import milvus_backup_lib
from manifests import backup, collection, field, index, partition, pk_field, schema, segment, vector_field
from milvus_backup_lib import (
    BackupClient,
    BackupInfo,
    BackupList,
    BackupReport,
    BackupStrategy,
    BackupSummary,
    CollectionBackupInfo,
    CollectionRestoreReport,
    GcPauseOutcome,
    MilvusConnection,
    RestorePlan,
    RestoreReport,
    StorageLocation,
)
from milvus_backup_lib._html import format_bytes, html_table, text_table
from milvus_backup_lib.manifest.model import DataType
from milvus_backup_lib.repository.store import DATAFRAME_COLUMNS, BackupRepository, LibraryMeta

EVIL = "<script>alert('x')</script>"
_ALLOWED_TAGS = {"div", "p", "strong", "table", "thead", "tbody", "tr", "th", "td", "ul", "li"}


class _Tables(HTMLParser):
    """Checks that every tag is closed in order, and collects each table's rows of cell texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: set[str] = set()
        self.tables: list[list[list[str]]] = []
        self.paragraphs: list[str] = []
        self._cell: list[str] | None = None
        self._paragraph: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(tag)
        self.tags.add(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            assert self.open[-2] == "tr", self.open
            self._cell = []
        elif tag == "p":
            self._paragraph = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise AssertionError(f"unexpected void tag <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()
        if tag in ("td", "th"):
            assert self._cell is not None
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "p":
            assert self._paragraph is not None
            self.paragraphs.append("".join(self._paragraph))
            self._paragraph = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._paragraph is not None:
            self._paragraph.append(data)


def parse(markup: str) -> _Tables:
    """Parse ``markup``; fail unless it is well formed, uses only plain table markup and has no script."""
    parser = _Tables()
    parser.feed(markup)
    parser.close()
    assert parser.open == [], f"unclosed: {parser.open}"
    assert parser.tags <= _ALLOWED_TAGS, parser.tags - _ALLOWED_TAGS
    assert "<script" not in markup.lower()
    return parser


def _collection() -> CollectionBackupInfo:
    seg = functools.partial(segment, collection_id=11)
    return collection(
        "c1",
        partition(101, seg(1, 101, 100), seg(2, 101, 50), collection_id=11, size=1500),
        partition(102, seg(3, 102, 30), seg(4, 102, 7, l0=True), name="p1", collection_id=11, size=370),
        collection_id=11,
        schema=schema(
            "c1",
            pk_field(name="id"),
            field(101, "title", DataType.VARCHAR, params={"max_length": 64}),
            field(
                102,
                "tags",
                DataType.ARRAY,
                element_type=DataType.VARCHAR,
                params={"max_capacity": 4, "max_length": 16},
                nullable=True,
            ),
            vector_field(103, "embedding"),
            field(104, "category", DataType.INT64, is_partition_key=True),
            field(105, "$meta", DataType.JSON, is_dynamic=True),
            enable_dynamic_field=True,
        ),
        l0_segments=(seg(5, -1, 3, l0=True),),
        size=4096,
        shards_num=2,
        index_infos=(
            index(
                "embedding", "HNSW", {"index_type": "HNSW", "metric_type": "L2", "M": "16"}, name="emb_idx"
            ),
        ),
        load_state="LoadStateLoaded",
        aliases=("c1_alias",),
    )


def _info(name: str = "nightly") -> BackupInfo:
    evil = collection(EVIL, collection_id=12, db_name="db2")
    return backup(_collection(), evil, name=name, size=5 * 2**20)


def _summaries() -> list[BackupSummary]:
    return [
        BackupSummary(
            name="nightly",
            size=3 * 2**20,
            collection_count=2,
            milvus_version="v2.3.5",
            created_at=dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
            collections=("default.c1", "db2.c2"),
        ),
        BackupSummary(
            name=EVIL,
            size=512,
            collection_count=0,
            milvus_version="v2.4.0",
            created_at=None,
            self_contained=False,
            base="nightly",
            strategy="logical",
        ),
    ]


# -- helpers ----------------------------------------------------------------------------------------


def test_format_bytes() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1024) == "1.0 KiB"
    assert format_bytes(5 * 2**20) == "5.0 MiB"
    assert format_bytes(3 * 2**50) == "3.0 PiB"


def test_html_table_escapes_every_cell_and_header() -> None:
    markup = html_table(("a", "<b>"), [("1", EVIL), ('"q"&', "")], numeric={0})
    parsed = parse(markup)
    assert parsed.tables == [[["a", "<b>"], ["1", EVIL], ['"q"&', ""]]]
    assert "&lt;script&gt;" in markup


def test_text_table_aligns_columns() -> None:
    assert text_table(("name", "n"), [("a", "10"), ("bbb", "2")], numeric={1}) == (
        "name   n\n----  --\na     10\nbbb    2"
    )


def test_data_type_names() -> None:
    assert DataType.name_of(DataType.INT64) == "Int64"
    assert DataType.name_of(DataType.VARCHAR) == "VarChar"
    assert DataType.name_of(DataType.SPARSE_FLOAT_VECTOR) == "SparseFloatVector"
    assert DataType.name_of(DataType.ARRAY, DataType.INT32) == "Array<Int32>"
    assert DataType.name_of(999) == "DataType(999)"


# -- BackupInfo, CollectionBackupInfo ---------------------------------------------------------------


def test_backup_info_html_has_one_row_per_collection() -> None:
    parsed = parse(_info()._repr_html_())
    assert parsed.paragraphs == ["backup nightly Milvus v2.3.5, 5.0 MiB, 2 collection(s)"]
    [table] = parsed.tables
    assert table == [
        ["collection", "rows", "partitions", "segments", "size", "indexes", "load state"],
        # 100 + 50 + 30 rows (L0 segments hold deletes); 2 + 2 segments in partitions + 1 collection-level L0
        ["default.c1", "180", "2", "5", "4.0 KiB", "embedding: HNSW", "LoadStateLoaded"],
        [f"db2.{EVIL}", "0", "0", "0", "0 B", "", ""],
    ]


def test_backup_info_escapes_its_name() -> None:
    markup = _info(EVIL)._repr_html_()
    parsed = parse(markup)
    assert parsed.paragraphs[0].startswith(f"backup {EVIL} Milvus")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in markup


def test_backup_info_text_table() -> None:
    lines = _info().table().splitlines()
    assert lines[0] == "backup nightly: Milvus v2.3.5, 5.0 MiB, 2 collection(s)"
    assert lines[1].split() == [
        "collection",
        "rows",
        "partitions",
        "segments",
        "size",
        "indexes",
        "load",
        "state",
    ]
    assert lines[3].split() == [
        "default.c1",
        "180",
        "2",
        "5",
        "4.0",
        "KiB",
        "embedding:",
        "HNSW",
        "LoadStateLoaded",
    ]
    assert len(lines) == 5


def test_collection_html_lists_fields_partitions_and_indexes() -> None:
    coll = _collection()
    parsed = parse(coll._repr_html_())
    assert parsed.paragraphs[0] == (
        "collection default.c1 id 11, 180 rows, 2 partition(s), 5 segment(s), 4.0 KiB, 2 shard(s), "
        "load state LoadStateLoaded, aliases c1_alias, 1 collection-level L0 segment(s)"
    )
    assert parsed.paragraphs[1:] == ["fields", "partitions", "indexes"]
    fields, partitions, indexes = parsed.tables
    assert fields == [
        ["field", "id", "type", "params", "flags"],
        ["id", "100", "Int64", "", "pk, auto-id"],
        ["title", "101", "VarChar", "max_length=64", ""],
        ["tags", "102", "Array<VarChar>", "max_capacity=4, max_length=16", "nullable"],
        ["embedding", "103", "FloatVector", "dim=8", ""],
        ["category", "104", "Int64", "", "partition-key"],
        ["$meta", "105", "JSON", "", "dynamic"],
    ]
    assert partitions == [
        ["partition", "id", "segments", "rows", "size"],
        ["_default", "101", "2", "150", "1.5 KiB"],
        ["p1", "102", "2", "30", "370 B"],
    ]
    assert indexes == [
        ["field", "index", "type", "metric", "params"],
        ["embedding", "emb_idx", "HNSW", "L2", "M=16"],
    ]


def test_collection_text_table() -> None:
    text = _collection().table()
    assert text.startswith("collection default.c1: id 11, 180 rows")
    assert "\nfields:\n" in text and "\npartitions:\n" in text and "\nindexes:\n" in text
    assert any(
        line.split() == ["tags", "102", "Array<VarChar>", "max_capacity=4,", "max_length=16", "nullable"]
        for line in text.splitlines()
    )


def test_collection_without_indexes_has_no_index_table() -> None:
    coll = CollectionBackupInfo(db_name="", collection_name=EVIL)
    parsed = parse(coll._repr_html_())
    assert len(parsed.tables) == 2
    assert parsed.paragraphs[0].startswith(f"collection default.{EVIL} id 0")


def test_display_methods_leave_records_unchanged() -> None:
    # Methods only: equality and repr are still attrs', field by field.
    assert _info() == _info()
    assert _info() != _info("other")
    assert repr(_collection()).startswith("CollectionBackupInfo(id='', collection_id=11, db_name='default',")
    assert "_repr_html_" not in repr(_info())


# -- BackupReport, RestoreReport --------------------------------------------------------------------


def test_backup_report_html() -> None:
    report = BackupReport(
        name="nightly",
        info=_info(),
        strategy=BackupStrategy.SERIAL_FLUSH,
        files=1234,
        bytes_copied=3 * 2**20,
        server_side_copy=True,
        gc=GcPauseOutcome(False, "the server at 127.0.0.1:9091 has no GC control (HTTP 404)"),
        seconds=12.34,
        copy_seconds=10.0,
    )
    parsed = parse(report._repr_html_())
    summary, collections = parsed.tables
    assert {key: value for key, value in summary} == {
        "backup": "nightly",
        "strategy": "serial_flush",
        "collections": f"2: default.c1, db2.{EVIL}",
        "files": "1,234",
        "bytes": "3.0 MiB (3,145,728 bytes)",
        "server-side copy": "yes",
        "GC": "not paused: the server at 127.0.0.1:9091 has no GC control (HTTP 404)",
        "seconds": "12.3 (copy 10.0)",
    }
    assert collections[1][0] == "default.c1"
    text = report.table()
    assert "server-side copy  yes" in text
    assert "backup nightly: Milvus v2.3.5" in text


def test_restore_report_html_is_a_table() -> None:
    plan = RestorePlan(backup_name=EVIL, create_databases=(), collections=())
    report = RestoreReport(
        backup_name=EVIL,
        plan=plan,
        dry_run=False,
        collections=(
            CollectionRestoreReport(
                source="default.c1",
                target="default.c1_copy",
                backup_rows=180,
                imported_rows=180,
                target_rows=176,
                seconds=1.25,
                skipped=("load: not requested", "aliases"),
            ),
        ),
        seconds=2.5,
    )
    markup = report._repr_html_()
    assert "<pre>" not in markup
    parsed = parse(markup)
    assert parsed.paragraphs == [f"restore of backup {EVIL} 1 collection(s) in 2.5 s"]
    assert parsed.tables == [
        [
            ["source", "target", "backup rows", "imported", "target rows", "seconds", "skipped"],
            ["default.c1", "default.c1_copy", "180", "180", "176", "1.2", "load: not requested; aliases"],
        ]
    ]
    # The text table is what it was.
    assert report.table().splitlines()[1].split() == [
        "default.c1",
        "default.c1_copy",
        "180",
        "180",
        "176",
        "1.2",
        "load:",
        "not",
        "requested;",
        "aliases",
    ]


def test_dry_run_report_shows_the_plan_table() -> None:
    plan = RestorePlan(backup_name="nightly", create_databases=("db2",), collections=())
    report = RestoreReport(backup_name="nightly", plan=plan, dry_run=True)
    parsed = parse(report._repr_html_())
    assert parsed.paragraphs[0] == "dry run, nothing changed"
    assert parsed.tables == [[["#", "step", "target", "detail"], ["1", "create_database", "db2", ""]]]


# -- BackupList --------------------------------------------------------------------------------------


def test_backup_list_is_a_list() -> None:
    summaries = _summaries()
    listing = BackupList(summaries)
    assert isinstance(listing, list)
    assert listing == summaries and summaries == listing
    assert listing[0].name == "nightly" and listing[-1].name == EVIL
    assert [s.name for s in listing] == ["nightly", EVIL]
    assert repr(listing) == repr(summaries)
    assert BackupList() == []
    assert "BackupList" in milvus_backup_lib.__all__


def test_backup_list_html() -> None:
    markup = BackupList(_summaries())._repr_html_()
    parsed = parse(markup)
    assert parsed.paragraphs == ["2 backup(s)"]
    assert parsed.tables == [
        [
            [
                "name",
                "size",
                "collections",
                "milvus version",
                "created",
                "collection names",
                "self-contained",
                "kind",
                "base (reused)",
            ],
            [
                "nightly",
                "3.0 MiB",
                "2",
                "v2.3.5",
                "2024-05-01T12:30:00+00:00",
                "default.c1, db2.c2",
                "yes",
                "binlogs",
                "(full)",
            ],
            [EVIL, "512 B", "0", "v2.4.0", "", "", "no", "logical", "nightly (0 files, 0 B)"],
        ]
    ]
    assert "&lt;script&gt;" in markup


def test_empty_backup_list_html_and_text() -> None:
    assert parse(BackupList()._repr_html_()).tables == [
        [
            [
                "name",
                "size",
                "collections",
                "milvus version",
                "created",
                "collection names",
                "self-contained",
                "kind",
            ]
        ]
    ]
    assert BackupList().table().splitlines()[0] == "0 backup(s)"


def test_backup_list_text_table() -> None:
    lines = BackupList(_summaries()).table().splitlines()
    assert lines[0] == "2 backup(s)"
    assert lines[3].split() == [
        "nightly",
        "3.0",
        "MiB",
        "2",
        "v2.3.5",
        "2024-05-01T12:30:00+00:00",
        "default.c1,",
        "db2.c2",
        "yes",
        "binlogs",
        "(full)",
    ]
    assert lines[4].split()[-7:] == ["no", "logical", "nightly", "(0", "files,", "0", "B)"]


def test_to_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = BackupList(_summaries()).to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(DATAFRAME_COLUMNS)
    assert list(frame.columns) == [
        "name",
        "size",
        "collection_count",
        "milvus_version",
        "created_at",
        "collections",
        "base",
        "self_contained",
        "reused_files",
        "reused_bytes",
        "strategy",
    ]
    assert frame["strategy"].tolist() == ["", "logical"]
    assert frame["name"].tolist() == ["nightly", EVIL]
    assert frame["self_contained"].tolist() == [True, False]
    assert frame["base"].tolist() == ["", "nightly"]
    assert frame["size"].tolist() == [3 * 2**20, 512]
    assert frame["collection_count"].tolist() == [2, 0]
    assert frame["milvus_version"].tolist() == ["v2.3.5", "v2.4.0"]
    assert frame["created_at"].iloc[0] == dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    assert pd.isna(frame["created_at"].iloc[1])
    assert tuple(frame["collections"].iloc[0]) == ("default.c1", "db2.c2")
    assert tuple(frame["collections"].iloc[1]) == ()


def test_empty_to_dataframe_keeps_the_columns() -> None:
    pytest.importorskip("pandas")
    frame = BackupList().to_dataframe()
    assert list(frame.columns) == list(DATAFRAME_COLUMNS)
    assert len(frame) == 0


def test_to_dataframe_without_pandas_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes ``import pandas`` raise ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        BackupList(_summaries()).to_dataframe()


def test_list_backups_returns_a_backup_list(tmp_path: Path) -> None:
    location = StorageLocation(tmp_path.as_uri())
    repository = BackupRepository(location)
    for name in ("b_two", "a_one"):
        info = backup(_collection(), name=name, size=10)
        repository.write_manifest(info, LibraryMeta(created_at="2024-05-01T12:30:00+00:00"))
    client = BackupClient(
        milvus=MilvusConnection(uri="http://127.0.0.1:1"), milvus_storage=location, backup_storage=location
    )
    listing = client.list_backups()  # reads the backup root only: no Milvus needed
    assert isinstance(listing, BackupList)
    assert [s.name for s in listing] == ["a_one", "b_two"]
    assert listing == [repository.summary("a_one"), repository.summary("b_two")]
    assert parse(listing._repr_html_()).tables[0][1][:3] == ["a_one", "10 B", "1"]
