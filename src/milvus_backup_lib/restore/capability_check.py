"""What a restore plan needs from its target server, checked against the capability table before any change.

:func:`capability_problems` is the preflight's half that depends on the server version: it names, per
collection, every schema feature the target cannot create and every kind of import it cannot run,
from :mod:`milvus_backup_lib.milvus.capabilities`. An empty list means nothing is known to be missing.
"""

from __future__ import annotations

from milvus_backup_lib.manifest.model import BackupInfo, CollectionSchema, DataType
from milvus_backup_lib.milvus.capabilities import (
    Capability,
    ServerCapabilities,
    capabilities_of,
    vector_capability,
)
from milvus_backup_lib.restore.plan import AddField, CollectionPlan, RestorePlan

__all__ = ["capability_problems", "collection_needs"]


def _schema_needs(schema: CollectionSchema) -> list[tuple[Capability, str]]:
    needs: list[tuple[Capability, str]] = []
    for field in schema.fields:
        if field.nullable:
            needs.append((Capability.NULLABLE, f"nullable field {field.name!r}"))
        if field.default_value_base64 or field.default_value_proto:
            needs.append((Capability.DEFAULT_VALUE, f"default value of field {field.name!r}"))
    needs.extend(
        (Capability.FUNCTIONS, f"{fn.name!r} function (type {fn.type}) of the schema")
        for fn in schema.functions
    )
    if schema.struct_array_fields:
        names = ", ".join(repr(f.name) for f in schema.struct_array_fields)
        needs.append((Capability.STRUCT_ARRAY, f"struct array field(s) {names}"))
    return needs


def _import_needs(coll: CollectionPlan, schema: CollectionSchema) -> list[tuple[Capability, str]]:
    needs: list[tuple[Capability, str]] = [(Capability.BINLOG_IMPORT, "its data")]
    for field in schema.fields:
        capability = vector_capability(field.data_type)
        if capability is not None:
            needs.append((capability, f"{DataType.NAMES[field.data_type]} field {field.name!r}"))
    if any(step.l0 for step in coll.imports):
        needs.append((Capability.L0_IMPORT, "its L0 delete segments"))
    versions = sorted({step.storage_version for step in coll.imports if step.storage_version >= 2})
    if versions:
        needs.append((Capability.STORAGE_V2, f"its storage v{versions[-1]} segments"))
    return needs


def collection_needs(coll: CollectionPlan, schema: CollectionSchema) -> list[tuple[Capability, str]]:
    """What restoring ``coll`` (backed up with ``schema``) needs: ``(capability, the thing needing it)``."""
    needs = _schema_needs(schema) if coll.create else []
    needs.extend(
        (Capability.ADD_FIELD, f"field {step.field.name!r}, added to {coll.source} after its creation")
        for step in coll.steps
        if isinstance(step, AddField)
    )
    if coll.imports:
        needs.extend(_import_needs(coll, schema))
    return needs


def capability_problems(plan: RestorePlan, backup: BackupInfo, server: ServerCapabilities | str) -> list[str]:
    """Every reason the server (its capabilities, or the version it reports) cannot take ``plan``.

    One message per collection and missing capability, naming the collection, what needs it, the
    server's version and the first version that has it, and what to do.
    """
    caps = capabilities_of(server) if isinstance(server, str) else server
    problems: list[str] = []
    for coll in plan.collections:
        schema = backup.collection(coll.source.database, coll.source.collection).schema
        if caps.lite and coll.create:
            problems.extend(_lite_type_problems(coll.target, schema, caps.version))
        wanting: dict[Capability, list[str]] = {}
        for capability, what in collection_needs(coll, schema):
            if not caps.has(capability):
                wanting.setdefault(capability, []).append(what)
        for capability, whats in wanting.items():
            if capability not in _DATA_ONLY:
                advice = "restore into a newer Milvus"
            elif caps.lite:
                advice = "restore with meta_only"
            else:
                advice = "restore into a newer Milvus, or restore with meta_only"
            problems.append(f"{coll.target}: {', '.join(whats)}: {caps.lacks(capability)}; {advice}")
    return problems


#: The field types Milvus Lite 3.2.2 creates; it refuses the others at CreateCollection ("field 'bits'
#: uses Milvus type BinaryVector which MilvusLite does not support. Phase 10.2 supports: BOOL,
#: INT8/16/32/64, FLOAT, DOUBLE, VARCHAR, JSON, ARRAY, GEOMETRY, TIMESTAMPTZ, FLOAT_VECTOR,
#: SPARSE_FLOAT_VECTOR", seen here with milvus-lite 3.2.2).
_LITE_TYPES = frozenset(
    {
        DataType.BOOL,
        DataType.INT8,
        DataType.INT16,
        DataType.INT32,
        DataType.INT64,
        DataType.FLOAT,
        DataType.DOUBLE,
        DataType.VARCHAR,
        DataType.JSON,
        DataType.ARRAY,
        DataType.GEOMETRY,
        DataType.TIMESTAMPTZ,
        DataType.FLOAT_VECTOR,
        DataType.SPARSE_FLOAT_VECTOR,
    }
)


def _lite_type_problems(target: object, schema: CollectionSchema, version: str) -> list[str]:
    refused = [f for f in schema.fields if not f.is_dynamic and f.data_type not in _LITE_TYPES]
    return [
        f"{target}: {f.type_name} field {f.name!r}: Milvus Lite ({version}) has no {f.type_name} fields; "
        "restore it into a Milvus server"
        for f in refused
    ]


#: What only an import needs: a meta_only restore of the same backup does not.
_DATA_ONLY = frozenset(
    {
        Capability.BINLOG_IMPORT,
        Capability.L0_IMPORT,
        Capability.STORAGE_V2,
        Capability.FLOAT16_VECTOR,
        Capability.BFLOAT16_VECTOR,
        Capability.SPARSE_VECTOR,
        Capability.INT8_VECTOR,
    }
)
