"""Text tables and notebook HTML for the manifest records (``table()`` and ``_repr_html_``).

:mod:`milvus_backup_lib.manifest.model` holds the data; its display methods call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from milvus_backup_lib._html import (
    format_bytes,
    format_count,
    html_block,
    html_heading,
    html_table,
    printable,
    text_table,
)

if TYPE_CHECKING:
    from milvus_backup_lib.manifest.model import BackupInfo, CollectionBackupInfo, IndexInfo

__all__ = ["backup_html", "backup_table", "collection_html", "collection_table"]

#: A titled table of a record's ``table()`` and ``_repr_html_``: title, headers, rows, numeric columns.
_Section = tuple[str, Sequence[str], Sequence[Sequence[str]], frozenset[int]]

_COLLECTION_HEADERS = ("collection", "rows", "partitions", "segments", "size", "indexes", "load state")
_COLLECTION_NUMERIC = frozenset({1, 2, 3, 4})
_FIELD_HEADERS = ("field", "id", "type", "params", "flags")
_PARTITION_HEADERS = ("partition", "id", "segments", "rows", "size")
_INDEX_HEADERS = ("field", "index", "type", "metric", "params")


def _index_type(index: IndexInfo) -> str:
    return index.index_type or index.params.get("index_type", "")


# --------------------------------------------------------------------------- a collection


def _collection_summary(coll: CollectionBackupInfo) -> str:
    parts = [
        f"id {coll.collection_id}",
        f"{format_count(coll.num_rows)} rows",
        f"{coll.num_partitions} partition(s)",
        f"{coll.num_segments} segment(s)",
        format_bytes(coll.size),
        f"{coll.shards_num} shard(s)",
    ]
    if coll.load_state:
        parts.append(f"load state {coll.load_state}")
    if coll.aliases:
        parts.append("aliases " + ", ".join(coll.aliases))
    if coll.l0_segments:
        parts.append(f"{len(coll.l0_segments)} collection-level L0 segment(s)")
    return ", ".join(parts)


def _collection_sections(coll: CollectionBackupInfo) -> list[_Section]:
    fields = [
        (
            f.name,
            str(f.field_id),
            f.type_name,
            ", ".join(f"{kv.key}={kv.value}" for kv in f.type_params),
            ", ".join(f.flags),
        )
        for f in coll.schema.fields
    ]
    for struct in coll.schema.struct_array_fields:  # the struct, then its sub-fields as struct.sub
        fields.append((struct.name, str(struct.field_id), "ArrayOfStruct", "", ""))
        fields.extend(
            (
                f"{struct.name}.{f.name}",
                str(f.field_id),
                f.type_name,
                ", ".join(f"{kv.key}={kv.value}" for kv in f.type_params),
                ", ".join(f.flags),
            )
            for f in struct.fields
        )
    partitions = [
        (
            p.partition_name,
            str(p.partition_id),
            str(len(p.segment_backups)),
            format_count(sum(s.num_of_rows for s in p.segment_backups if not s.is_l0)),
            format_bytes(p.size),
        )
        for p in coll.partition_backups
    ]
    sections: list[_Section] = [
        ("fields", _FIELD_HEADERS, fields, frozenset({1})),
        ("partitions", _PARTITION_HEADERS, partitions, frozenset({1, 2, 3, 4})),
    ]
    if coll.index_infos:
        indexes = [
            (
                ix.field_name,
                ix.index_name,
                _index_type(ix),
                ix.params.get("metric_type", ""),
                ", ".join(f"{k}={v}" for k, v in ix.params.items() if k not in ("index_type", "metric_type")),
            )
            for ix in coll.index_infos
        ]
        sections.append(("indexes", _INDEX_HEADERS, indexes, frozenset()))
    return sections


def collection_table(coll: CollectionBackupInfo) -> str:
    """The collection as text: a summary line, then its fields, partitions and indexes."""
    out = [printable(f"collection {coll.qualified_name}: {_collection_summary(coll)}")]
    for title, headers, rows, numeric in _collection_sections(coll):
        out += ["", f"{title}:", text_table(headers, rows, numeric=numeric)]
    return "\n".join(out)


def collection_html(coll: CollectionBackupInfo) -> str:
    """The collection as an HTML block: the same summary and tables as :func:`collection_table`."""
    parts = [html_heading(f"collection {coll.qualified_name}", _collection_summary(coll))]
    for title, headers, rows, numeric in _collection_sections(coll):
        parts += [html_heading(title), html_table(headers, rows, numeric=numeric)]
    return html_block(*parts)


# --------------------------------------------------------------------------- a backup


def _backup_summary(info: BackupInfo) -> str:
    return (
        f"Milvus {info.milvus_version or 'unknown'}, {format_bytes(info.size)}, "
        f"{len(info.collection_backups)} collection(s)"
    )


def _backup_rows(info: BackupInfo) -> list[tuple[str, ...]]:
    return [
        (
            c.qualified_name,
            format_count(c.num_rows),
            str(c.num_partitions),
            str(c.num_segments),
            format_bytes(c.size),
            ", ".join(f"{ix.field_name}: {_index_type(ix)}" for ix in c.index_infos),
            c.load_state,
        )
        for c in info.collection_backups
    ]


def backup_table(info: BackupInfo) -> str:
    """The backup as text: a summary line, then one line per collection."""
    return (
        printable(f"backup {info.name}: {_backup_summary(info)}")
        + "\n"
        + text_table(_COLLECTION_HEADERS, _backup_rows(info), numeric=_COLLECTION_NUMERIC)
    )


def backup_html(info: BackupInfo) -> str:
    """The backup as an HTML block: the same summary and table as :func:`backup_table`."""
    return html_block(
        html_heading(f"backup {info.name}", _backup_summary(info)),
        html_table(_COLLECTION_HEADERS, _backup_rows(info), numeric=_COLLECTION_NUMERIC),
    )
