"""The enumerations of the manifest: Milvus data types and consistency levels, as ``backup.proto`` numbers them."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ConsistencyLevel", "DataType"]


class DataType:
    """Milvus ``schemapb.DataType`` numbers, as stored in ``data_type`` and ``element_type``."""

    NONE = 0
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    FLOAT = 10
    DOUBLE = 11
    STRING = 20
    VARCHAR = 21
    ARRAY = 22
    JSON = 23
    GEOMETRY = 24
    TEXT = 25
    TIMESTAMPTZ = 26
    BINARY_VECTOR = 100
    FLOAT_VECTOR = 101
    FLOAT16_VECTOR = 102
    BFLOAT16_VECTOR = 103
    SPARSE_FLOAT_VECTOR = 104
    INT8_VECTOR = 105
    ARRAY_OF_VECTOR = 106
    ARRAY_OF_STRUCT = 200
    STRUCT = 201

    VECTORS = frozenset({100, 101, 102, 103, 104, 105})

    #: The ``schemapb.DataType`` enum names.
    NAMES: Mapping[int, str] = {
        NONE: "None",
        BOOL: "Bool",
        INT8: "Int8",
        INT16: "Int16",
        INT32: "Int32",
        INT64: "Int64",
        FLOAT: "Float",
        DOUBLE: "Double",
        STRING: "String",
        VARCHAR: "VarChar",
        ARRAY: "Array",
        JSON: "JSON",
        GEOMETRY: "Geometry",
        TEXT: "Text",
        TIMESTAMPTZ: "Timestamptz",
        BINARY_VECTOR: "BinaryVector",
        FLOAT_VECTOR: "FloatVector",
        FLOAT16_VECTOR: "Float16Vector",
        BFLOAT16_VECTOR: "BFloat16Vector",
        SPARSE_FLOAT_VECTOR: "SparseFloatVector",
        INT8_VECTOR: "Int8Vector",
        ARRAY_OF_VECTOR: "ArrayOfVector",
        ARRAY_OF_STRUCT: "ArrayOfStruct",
        STRUCT: "Struct",
    }

    @classmethod
    def name_of(cls, data_type: int, element_type: int = 0) -> str:
        """``VarChar``, ``FloatVector``, ``Array<Int64>`` (with the element type); ``DataType(99)`` if unknown."""
        name = cls.NAMES.get(data_type, f"DataType({data_type})")
        if data_type in (cls.ARRAY, cls.ARRAY_OF_VECTOR) and element_type:
            return f"{name}<{cls.name_of(element_type)}>"
        return name


class ConsistencyLevel:
    """Milvus consistency levels, as stored in ``consistency_level``."""

    STRONG = 0
    SESSION = 1
    BOUNDED = 2
    EVENTUALLY = 3
    CUSTOMIZED = 4
