"""Read a backup offline, without a Milvus server: its collections' rows as Arrow tables.

>>> from milvus_backup_lib import open_backup
>>> reader = open_backup("s3://bucket/backups", "nightly", storage_options={"anon": False})  # doctest: +SKIP
>>> reader.read("default.c1").num_rows  # doctest: +SKIP

Needs pyarrow (``pip install 'milvus-backup-lib[arrow]'``). See docs/reader.md.
"""

from milvus_backup_lib.reader._reader import SYSTEM_COLUMNS, BackupReader, open_backup

__all__ = ["SYSTEM_COLUMNS", "BackupReader", "open_backup"]
