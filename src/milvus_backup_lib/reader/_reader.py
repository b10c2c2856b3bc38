"""The offline reader: a backup's collections as Arrow tables, without a Milvus server."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from milvus_backup_lib.errors import CollectionNotFoundError, InvalidOptionError, MissingDependencyError
from milvus_backup_lib.manifest.model import (
    BackupInfo,
    CollectionBackupInfo,
    CollectionSchema,
    DataType,
    FieldSchema,
)
from milvus_backup_lib.reader._arrow import arrow, arrow_type
from milvus_backup_lib.reader._files import DeleteMap, read_deletes
from milvus_backup_lib.reader._logical import logical_batches
from milvus_backup_lib.reader._segments import ROW_ID_FIELD, TIMESTAMP_FIELD, SegmentSource
from milvus_backup_lib.repository.holders import Holders
from milvus_backup_lib.repository.references import file_path
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.storage.layout import (
    backup_delta_log_key,
    backup_insert_log_key,
    log_id_of,
    validate_backup_name,
)
from milvus_backup_lib.storage.location import StorageLocation

if TYPE_CHECKING:
    from milvus_backup_lib.manifest.model import SegmentBackupInfo

__all__ = ["SYSTEM_COLUMNS", "BackupReader", "open_backup"]

#: The names of the system columns ``system_fields=True`` adds: the row ID (field 0) and the insert
#: timestamp (field 1), named as Milvus names them (``common.RowIDFieldName``, ``TimeStampFieldName``).
SYSTEM_COLUMNS = ("RowID", "Timestamp")
DEFAULT_BATCH_ROWS = 65536


def open_backup(
    location_or_url: StorageLocation | str, name: str, storage_options: Mapping[str, Any] | None = None
) -> BackupReader:
    """Open backup ``name`` under a backup root (a :class:`StorageLocation` or an fsspec URL with its
    ``storage_options``) for reading offline. Needs pyarrow (the ``arrow`` extra).

    Raises :class:`BackupNotFoundError` when there is no such backup, :class:`ManifestError` when its
    meta files cannot be read, :class:`MissingDependencyError` without pyarrow.
    """
    arrow()
    if isinstance(location_or_url, StorageLocation):
        if storage_options:
            raise InvalidOptionError(
                "storage_options", storage_options, "None", detail="with a StorageLocation", hide_value=True
            )
        location = location_or_url
    else:
        location = StorageLocation(location_or_url, storage_options or {})
    repository = BackupRepository(location)
    info = repository.read(validate_backup_name(name))
    return BackupReader(repository, name, info, repository.read_library_meta(name))


class BackupReader:
    """Reads the rows of a backup's collections as Arrow, applying the backed-up deletes.

    Made by :func:`open_backup`. The returned columns are the schema's fields in schema order (the
    dynamic field as ``$meta``, JSON text); see docs/reader.md for each type's Arrow type.
    """

    def __init__(
        self, repository: BackupRepository, name: str, info: BackupInfo, library: LibraryMeta | None = None
    ) -> None:
        self._repository = repository
        self.name = name
        #: The backup's manifest.
        self.info = info
        #: Our record of it (None for the Go tool's backups); a logical backup's files are listed there.
        self.library = library

        #: Where each file is stored: an incremental backup's reused ones under the backup holding them.
        self._holders = Holders(name, library)

    @property
    def logical(self) -> bool:
        """Whether the backup is a logical one (Parquet rows read through the client)."""
        return self.library is not None and self.library.is_logical

    def __repr__(self) -> str:
        return f"BackupReader({self.name!r} in {self._repository.location!r})"

    @property
    def collections(self) -> dict[str, CollectionSchema]:
        """The backed-up collections: ``db.collection`` -> schema."""
        return {c.qualified_name: c.schema for c in self.info.collection_backups}

    def _collection(self, qualified: str) -> CollectionBackupInfo:
        db, _, coll = qualified.rpartition(".")
        wanted = f"{db or 'default'}.{coll}"
        for candidate in self.info.collection_backups:
            if candidate.qualified_name == wanted:
                return candidate
        raise CollectionNotFoundError(db or "default", coll, where=f"in backup {self.name!r}")

    def _fields(self, coll: CollectionBackupInfo, columns: Sequence[str] | None) -> list[FieldSchema]:
        fields = _with_dynamic_field(coll.schema)
        if columns is None:
            return fields
        by_name = {f.name: f for f in fields}
        unknown = [c for c in columns if c not in by_name and c not in SYSTEM_COLUMNS]
        if unknown:
            raise InvalidOptionError("columns", unknown, sorted(by_name), detail=f"for {coll.qualified_name}")
        return [by_name[c] for c in columns if c in by_name]

    def schema(
        self, qualified: str, columns: Sequence[str] | None = None, *, system_fields: bool = False
    ) -> Any:
        """The ``pyarrow.Schema`` of what :meth:`read` returns for these arguments."""
        pa, _ = arrow()
        coll = self._collection(qualified)
        out = [pa.field(n, pa.int64(), nullable=False) for n in _system(columns, system_fields)]
        for f in self._fields(coll, columns):
            metadata = {b"milvus.field_id": str(f.field_id).encode(), b"milvus.type": f.type_name.encode()}
            out.append(pa.field(f.name, arrow_type(f) or pa.binary(), nullable=True, metadata=metadata))
        return pa.schema(out)

    def _partition_ids(self, coll: CollectionBackupInfo, partitions: Sequence[str] | None) -> set[int]:
        by_name = {p.partition_name: p.partition_id for p in coll.partition_backups}
        if partitions is None:
            return set(by_name.values())
        if isinstance(partitions, str):
            partitions = [partitions]
        unknown = [p for p in partitions if p not in by_name]
        if unknown:
            raise InvalidOptionError(
                "partitions", unknown, sorted(by_name), detail=f"for {coll.qualified_name}"
            )
        return {by_name[p] for p in partitions}

    def _deletes_of(self, seg: SegmentBackupInfo, into: DeleteMap) -> None:
        for fb in seg.deltalogs:
            for binlog in fb.binlogs:
                key = backup_delta_log_key(
                    seg.collection_id, seg.partition_id, seg.group_id, seg.segment_id, log_id_of(binlog)
                )
                path = file_path(self._repository, self.name, self._holders.meta, key)
                read_deletes(self._repository.location, path, into)

    def _insert_dir(self, seg: SegmentBackupInfo) -> str:
        """The directory of the backup storing ``seg``'s insert logs (another one's for a reused segment)."""
        first = backup_insert_log_key(seg.collection_id, seg.partition_id, seg.group_id, seg.segment_id, 0, 0)
        return self._repository.backup_dir(self._holders.of_dir(first.rsplit("/", 2)[0]))

    def iter_batches(
        self,
        qualified: str,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        *,
        partitions: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        system_fields: bool = False,
    ) -> Iterator[Any]:
        """Record batches (``pyarrow.RecordBatch``) of at most ``batch_rows`` rows of collection ``qualified``
        (``db.collection``), deletes applied, segment after segment.

        Memory holds one Parquet row group of each field of one segment, and the delete entries
        (primary key and timestamp) of the collection's L0 segments and of the segment being read.
        ``partitions`` (names) and ``columns`` (field names; ``RowID`` and ``Timestamp`` for the system
        fields) select; ``system_fields=True`` adds both system columns first.
        """
        for _, _, batches in self.segment_batches(qualified, batch_rows, partitions, columns, system_fields):
            yield from batches

    def segment_batches(
        self,
        qualified: str,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        partitions: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        system_fields: bool = False,
    ) -> Iterator[tuple[str, int, Iterator[Any]]]:
        """What :meth:`iter_batches` yields, one ``(partition name, segment ID, batches)`` per segment (for a
        logical backup: per Parquet file, numbered from 0 in each partition)."""
        if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
            raise InvalidOptionError("batch_rows", batch_rows, "a whole number >= 1")
        coll = self._collection(qualified)
        fields = self._fields(coll, columns)
        part_ids = self._partition_ids(coll, partitions)
        system = [ROW_ID_FIELD if n == "RowID" else TIMESTAMP_FIELD for n in _system(columns, system_fields)]
        schema = self.schema(qualified, columns, system_fields=system_fields)
        if self.library is not None and self.library.is_logical:
            if system:
                raise InvalidOptionError(
                    "system_fields", True, (False,), detail="for a logical backup (it stores no row IDs)"
                )
            location, backup_dir = self._repository.location, self._repository.backup_dir(self.name)
            # By name: Milvus Lite reports every partition ID as 0.
            names = (
                None
                if partitions is None
                else {partitions}
                if isinstance(partitions, str)
                else set(partitions)
            )
            yield from logical_batches(location, backup_dir, coll, self.library, names, batch_rows, schema)
            return
        collection_l0: DeleteMap = {}
        for seg in coll.l0_segments:
            self._deletes_of(seg, collection_l0)
        partition_l0: dict[int, DeleteMap] = {}
        for part in coll.partition_backups:
            for seg in part.segment_backups:
                if seg.is_l0 and part.partition_id in part_ids:
                    self._deletes_of(seg, partition_l0.setdefault(part.partition_id, {}))
        pk = coll.schema.primary_field
        for part in coll.partition_backups:
            if part.partition_id not in part_ids:
                continue
            shared = _combined(collection_l0, partition_l0.get(part.partition_id, {}))
            for seg in part.segment_backups:
                if seg.is_l0 or not seg.binlogs:
                    continue
                deletes = shared
                if seg.deltalogs:  # the segment's own delete logs: for it alone
                    deletes = dict(shared)
                    self._deletes_of(seg, deletes)
                source = SegmentSource(self._repository.location, self._insert_dir(seg), seg, fields, pk)
                yield part.partition_name, seg.segment_id, source.batches(batch_rows, deletes, system, schema)

    def read(
        self,
        qualified: str,
        partitions: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        *,
        system_fields: bool = False,
    ) -> Any:
        """Every live row of collection ``qualified`` as one ``pyarrow.Table`` (see :meth:`iter_batches`)."""
        pa, _ = arrow()
        schema = self.schema(qualified, columns, system_fields=system_fields)
        batches = self.iter_batches(
            qualified, partitions=partitions, columns=columns, system_fields=system_fields
        )
        return pa.Table.from_batches(list(batches), schema=schema)

    def to_pandas(
        self,
        qualified: str,
        partitions: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> Any:
        """:meth:`read` as a pandas DataFrame; needs pandas (:class:`MissingDependencyError` without it)."""
        try:
            import pandas  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
        except ImportError:
            raise MissingDependencyError("pandas", None, "BackupReader.to_pandas()") from None
        return self.read(qualified, partitions, columns).to_pandas()

    def export_parquet(
        self,
        qualified: str,
        url: str | StorageLocation,
        storage_options: Mapping[str, Any] | None = None,
        *,
        partitions: Sequence[str] | None = None,
    ) -> list[str]:
        """Write collection ``qualified`` as Parquet files for Milvus's Parquet bulk import, one file a
        segment at ``{url}/{partition}/{segment_id}.parquet``; returns the files' paths.

        Columns are named by field and typed as ``importutilv2/parquet`` reads them (docs/reader.md);
        auto-ID primary keys and function outputs are left out, as an import refuses them. Memory holds
        one batch at a time.
        """
        from milvus_backup_lib.reader._export import export_parquet

        location = url if isinstance(url, StorageLocation) else StorageLocation(url, storage_options or {})
        coll = self._collection(qualified)
        fields = [
            f
            for f in self._fields(coll, None)
            if not (f.is_primary_key and f.auto_id) and not f.is_function_output
        ]
        names = [f.name for f in fields]
        return export_parquet(
            location, fields, self.segment_batches(qualified, DEFAULT_BATCH_ROWS, partitions, names)
        )


def _with_dynamic_field(schema: CollectionSchema) -> list[FieldSchema]:
    """The schema's fields, and the dynamic field ``$meta`` when the schema enables it without listing it.

    DescribeCollection does not list ``$meta``, so backups made from its answer lack it. Milvus numbers
    it right after the fields given at creation (``internal/rootcoord/create_collection_task.go``
    ``assignFieldAndFunctionID``); fields added later come after it, so its ID is the first gap in the
    field IDs, or the one after the last (milvus-backup ``core/restore/funcs/funcs.go`` ``GuessDynFieldID``).
    """
    fields = list(schema.fields)
    if schema.enable_dynamic_field and not any(f.is_dynamic for f in fields):
        used = {f.field_id for f in schema.stored_fields} | {s.field_id for s in schema.struct_array_fields}
        next_id = min((f.field_id for f in fields), default=100)
        while next_id in used:
            next_id += 1
        fields.append(FieldSchema(field_id=next_id, name="$meta", data_type=DataType.JSON, is_dynamic=True))
    return fields


def _system(columns: Sequence[str] | None, system_fields: bool) -> list[str]:
    if columns is None:
        return list(SYSTEM_COLUMNS) if system_fields else []
    return [c for c in SYSTEM_COLUMNS if c in columns or system_fields]


def _combined(*maps: DeleteMap) -> DeleteMap:
    out: DeleteMap = {}
    for deletes in maps:
        for pk, ts in deletes.items():
            if ts > out.get(pk, -1):
                out[pk] = ts
    return out
