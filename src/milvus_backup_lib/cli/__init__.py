"""The command line: ``milvus-backup-lib`` (or ``python -m milvus_backup_lib``); see :mod:`.commands`."""

from milvus_backup_lib.cli.commands import main

__all__ = ["main"]
