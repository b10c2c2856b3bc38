"""Back up and restore Milvus collections to any fsspec storage, in the milvus-backup v0.5 layout.

>>> from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
>>> client = BackupClient(
...     milvus=MilvusConnection(uri="http://127.0.0.1:19530"),
...     milvus_storage=StorageLocation("file:///srv/milvus/data"),
...     backup_storage=StorageLocation("file:///srv/backups"),
... )  # doctest: +SKIP
>>> client.create_backup("nightly", collections=["default.c1", "db2.*"])  # doctest: +SKIP
"""

from milvus_backup_lib._version import __version__
from milvus_backup_lib.backup.copier import CopyJob, CopyResult, FsspecCopier, SegmentCopier
from milvus_backup_lib.backup.materialize import MaterializeReport
from milvus_backup_lib.backup.plan import BackupPlan, CollectionBackupPlan
from milvus_backup_lib.backup.snapshot import ClusterSnapshot, ListingSnapshotter, MetadataSnapshotter
from milvus_backup_lib.backup_yaml import ToolConfig, from_milvus_backup_config, load_config_file
from milvus_backup_lib.client import BackupClient, BackupReport, default_backup_name
from milvus_backup_lib.errors import (
    BackupCorruptError,
    BackupError,
    BackupExistsError,
    BackupLockedError,
    BackupNotFoundError,
    BucketNotFoundError,
    CollectionNotFoundError,
    CorruptBinlogError,
    DatabaseNotFoundError,
    FlushTimeoutError,
    GcPauseError,
    ImportFailedError,
    InconsistentSegmentError,
    IncrementalBaseError,
    InsertFailedError,
    InvalidConfigError,
    InvalidFilterError,
    InvalidNameError,
    InvalidOptionError,
    InvalidOptionTypeError,
    LockLostError,
    ManifestError,
    MilvusAuthenticationError,
    MilvusBackupError,
    MilvusConnectionError,
    MilvusError,
    MilvusOperationError,
    MilvusPermissionError,
    MissingDependencyError,
    RepositoryLockedError,
    RestoreError,
    RestorePlanError,
    StorageCredentialsError,
    StorageError,
    StorageRootNotFoundError,
    StorageUnreachableError,
    UnsupportedSegmentFormatError,
    UsageError,
)
from milvus_backup_lib.manifest.model import (
    BackupInfo,
    CollectionBackupInfo,
    PartitionBackupInfo,
    SegmentBackupInfo,
)
from milvus_backup_lib.milvus.gc import GcPauseOutcome
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.options import BackupStrategy, CollectionFilter, MilvusConnection
from milvus_backup_lib.progress import NULL_PROGRESS, Progress
from milvus_backup_lib.reader import BackupReader, open_backup
from milvus_backup_lib.repository.deletion import DeleteReport
from milvus_backup_lib.repository.prune import PrunedBackup, PruneReport
from milvus_backup_lib.repository.store import BackupList, BackupSummary
from milvus_backup_lib.repository.unfinished import UnfinishedBackup, UnfinishedList
from milvus_backup_lib.repository.verify import VerifyReport
from milvus_backup_lib.restore import (
    DefaultRestorePlanner,
    RestoreOptions,
    RestorePlan,
    RestorePlanner,
    TargetState,
)
from milvus_backup_lib.restore.executor import (
    CollectionRestoreReport,
    ImportOutcome,
    RestoreExecutor,
    RestoreReport,
)
from milvus_backup_lib.storage.location import StorageLocation

__all__ = [
    "NULL_PROGRESS",
    "BackupClient",
    "BackupCorruptError",
    "BackupError",
    "BackupExistsError",
    "BackupInfo",
    "BackupList",
    "BackupLockedError",
    "BackupNotFoundError",
    "BackupPlan",
    "BackupReader",
    "BackupReport",
    "BackupStrategy",
    "BackupSummary",
    "BucketNotFoundError",
    "ClusterSnapshot",
    "CollectionBackupInfo",
    "CollectionBackupPlan",
    "CollectionFilter",
    "CollectionNotFoundError",
    "CollectionRestoreReport",
    "CopyJob",
    "CopyResult",
    "CorruptBinlogError",
    "DatabaseNotFoundError",
    "DefaultRestorePlanner",
    "DeleteReport",
    "FlushTimeoutError",
    "FsspecCopier",
    "GcPauseError",
    "GcPauseOutcome",
    "ImportFailedError",
    "ImportOutcome",
    "InconsistentSegmentError",
    "IncrementalBaseError",
    "InsertFailedError",
    "InvalidConfigError",
    "InvalidFilterError",
    "InvalidNameError",
    "InvalidOptionError",
    "InvalidOptionTypeError",
    "ListingSnapshotter",
    "LockLostError",
    "ManifestError",
    "MaterializeReport",
    "MetadataSnapshotter",
    "MilvusAuthenticationError",
    "MilvusBackupError",
    "MilvusCluster",
    "MilvusConnection",
    "MilvusConnectionError",
    "MilvusError",
    "MilvusOperationError",
    "MilvusPermissionError",
    "MissingDependencyError",
    "PartitionBackupInfo",
    "Progress",
    "PruneReport",
    "PrunedBackup",
    "RepositoryLockedError",
    "RestoreError",
    "RestoreExecutor",
    "RestoreOptions",
    "RestorePlan",
    "RestorePlanError",
    "RestorePlanner",
    "RestoreReport",
    "SegmentBackupInfo",
    "SegmentCopier",
    "StorageCredentialsError",
    "StorageError",
    "StorageLocation",
    "StorageRootNotFoundError",
    "StorageUnreachableError",
    "TargetState",
    "ToolConfig",
    "UnfinishedBackup",
    "UnfinishedList",
    "UnsupportedSegmentFormatError",
    "UsageError",
    "VerifyReport",
    "__version__",
    "default_backup_name",
    "from_milvus_backup_config",
    "load_config_file",
    "open_backup",
]
