"""Restore: the pure planner (manifest + options + target state -> plan) and the plan it writes.

>>> from milvus_backup_lib.restore import DefaultRestorePlanner, RestoreOptions, TargetState
>>> plan = DefaultRestorePlanner().plan(backup, RestoreOptions(suffix="_copy"), TargetState.empty())  # doctest: +SKIP
>>> plan.table()  # doctest: +SKIP
"""

from milvus_backup_lib.restore.options import RenameRules, RestoreOptions
from milvus_backup_lib.restore.plan import (
    CollectionPlan,
    CreateAlias,
    CreateCollection,
    CreateDatabase,
    CreateIndex,
    CreatePartition,
    DropCollection,
    ImportData,
    LoadCollection,
    RestorePlan,
    Step,
    TargetState,
)
from milvus_backup_lib.restore.planner import DefaultRestorePlanner, RestorePlanner, index_create_params

__all__ = [
    "CollectionPlan",
    "CreateAlias",
    "CreateCollection",
    "CreateDatabase",
    "CreateIndex",
    "CreatePartition",
    "DefaultRestorePlanner",
    "DropCollection",
    "ImportData",
    "LoadCollection",
    "RenameRules",
    "RestoreOptions",
    "RestorePlan",
    "RestorePlanner",
    "Step",
    "TargetState",
    "index_create_params",
]
