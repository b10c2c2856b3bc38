"""Storage: fsspec locations and the Milvus / backup path layouts."""

from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["StorageLocation"]
