"""Milvus clusters for tests, demos and notebooks.

:class:`EmbeddedMilvus` (module :mod:`~milvus_backup_lib.testing.embedded`) runs the real Milvus 2.3.5
standalone server of the ``milvus`` wheel (``pip install "milvus-backup-lib[embedded]"``) as a child
process. :class:`InMemoryMilvus` (module :mod:`~milvus_backup_lib.testing.memory`) is a cluster held in
memory behind the library's :class:`~milvus_backup_lib.milvus.protocol.MilvusCluster` interface, behaving
as the Milvus 2.3, 2.4/2.5 or 2.6 line (``pip install "milvus-backup-lib[testing]"`` for pyarrow).

This package is public API, for the library's own tests and for yours; nothing else in the library
imports it. Modules starting with ``_`` are its private helpers.
"""

from milvus_backup_lib.testing.embedded import EmbeddedMilvus, EmbeddedMilvusError
from milvus_backup_lib.testing.memory import InMemoryMilvus

__all__ = ["EmbeddedMilvus", "EmbeddedMilvusError", "InMemoryMilvus"]
