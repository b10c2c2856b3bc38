"""The data steps of a restore plan: bulk imports of the backed-up binlogs, or inserts of rows read from
the backup. Re-exported by :mod:`milvus_backup_lib.restore.plan`."""

from __future__ import annotations

from typing import ClassVar

import attrs

from milvus_backup_lib.options import QualifiedName

__all__ = ["ImportData", "InsertData"]


@attrs.frozen(kw_only=True)
class ImportData:
    """One bulk import (``backup=true``, or ``l0_import=true`` when ``l0``) into a target partition.

    The prefixes are relative to the backup directory and end with ``/``; ``delta_prefix`` is ``""`` when
    the imported segments have no delete logs, ``insert_prefix`` is ``""`` for an L0 import. ``partition``
    ``""`` means the whole collection (collection-level L0 deletes).
    """

    kind: ClassVar[str] = "import_data"
    target: QualifiedName
    source: QualifiedName
    partition: str
    insert_prefix: str
    delta_prefix: str
    segment_ids: tuple[int, ...]
    #: Rows the segments held at backup time (before deletes); for L0 jobs, the delete entries.
    rows: int
    l0: bool = False
    #: The segments' storage format (2: Milvus 2.6 column groups), sent as the import's
    #: ``storage_version`` option when above 0, as milvus-backup does; one job never mixes formats.
    storage_version: int = 0
    #: The vchannel the segments were written to ("" when unknown or mixed): 2.4+ import jobs batch
    #: segment groups of one vchannel and storage version, as milvus-backup's v2 restore does.
    channel: str = ""
    #: The encryption-zone key of the source database (encrypted databases only), sent as the ``ezk``
    #: option as milvus-backup does (``internal/client/milvus/grpc.go`` ``GrpcBulkInsertInput``). Never shown.
    ezk: str = attrs.field(default="", repr=False)

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        where = f"partition {self.partition}" if self.partition else "all partitions"
        segments = f"{len(self.segment_ids)} segment{'s' if len(self.segment_ids) != 1 else ''}"
        if self.l0:
            return f"L0 deletes into {where}: {self.delta_prefix} ({segments}, {self.rows} deletes)"
        delta = f" + {self.delta_prefix}" if self.delta_prefix else ""
        return f"{where}: {self.insert_prefix}{delta} ({segments}, {self.rows} rows)"

    def describe(self) -> str:
        """One line for humans."""
        return f"import into {self.target} {self.detail}"


@attrs.frozen(kw_only=True)
class InsertData:
    """Insert the live rows of one backed-up partition into the target, read offline from the backup
    (:class:`~milvus_backup_lib.reader.BackupReader`) and sent in batches (``method="insert"``).

    ``into`` is the target partition, ``""`` when the server routes each row (partition-key collections).
    """

    kind: ClassVar[str] = "insert_data"
    target: QualifiedName
    source: QualifiedName
    #: The backed-up partition the rows are read from.
    partition: str
    into: str
    #: Rows of the partition's segments at backup time, before deletes (0 when the backup does not say).
    rows: int
    #: Why this collection is restored by inserts (the plan's answer to "why not import").
    reason: str

    @property
    def subject(self) -> str:
        """What the step acts on, for tables."""
        return str(self.target)

    @property
    def detail(self) -> str:
        """The step's parameters in a few words."""
        where = f"partition {self.into}" if self.into else "partitions chosen by the server (partition key)"
        return (
            f"rows of partition {self.partition} into {where} (up to {self.rows} rows); insert: {self.reason}"
        )

    def describe(self) -> str:
        """One line for humans."""
        return f"insert into {self.target} {self.detail}"
