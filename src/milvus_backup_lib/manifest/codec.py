"""The JSON codec for the backup manifest, byte-compatible with milvus-backup v0.5.

milvus-backup writes its meta files with Go ``encoding/json`` on the structs generated from
``backup.proto`` (not protojson), so this codec reproduces that marshaller's behaviour on the records
of :mod:`milvus_backup_lib.manifest.model`: keys in proto order, zero values omitted except for the
fields the upstream build strips ``omitempty`` from, maps with sorted keys, compact output with
``<``, ``>``, ``&``, U+2028 and U+2029 escaped. Reading is as lenient as Go: unknown keys are
ignored, keys match case-insensitively and ``null`` is the zero value; a value of the wrong JSON
type is a :class:`~milvus_backup_lib.errors.ManifestError` naming the file and the field path.

A backup's meta directory holds five files (see :data:`FILE_ORDER`); :func:`encode_backup` makes
them all and :func:`decode_backup` reads ``full_meta.json``, or rebuilds the tree from the four
level files as upstream does when it is absent.
"""

from __future__ import annotations

import copy
import json
import math
import operator
import re
import typing
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from milvus_backup_lib.errors import ManifestError
from milvus_backup_lib.manifest import model
from milvus_backup_lib.manifest.model import (
    BackupInfo,
    CollectionBackupInfo,
    PartitionBackupInfo,
    SegmentBackupInfo,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BACKUP_META",
    "COLLECTION_META",
    "FILE_ORDER",
    "FULL_META",
    "PARTITION_META",
    "SEGMENT_META",
    "UPSTREAM_KEYS",
    "CollectionLevelBackupInfo",
    "PartitionLevelBackupInfo",
    "SegmentLevelBackupInfo",
    "decode_backup",
    "decode_file",
    "dumps",
    "encode_backup",
    "from_json_obj",
    "to_json_obj",
]

BACKUP_META = "backup_meta.json"
COLLECTION_META = "collection_meta.json"
PARTITION_META = "partition_meta.json"
SEGMENT_META = "segment_meta.json"
FULL_META = "full_meta.json"

#: The order a writer must write the meta files in, after all binlogs. ``backup_meta.json`` is the
#: file both tools test for to decide that a backup exists (upstream ``meta.Exist``), so it goes last:
#: a backup interrupted while writing its meta is never taken for a complete one. (Upstream itself
#: writes ``full_meta.json`` last; the order does not matter to readers.)
FILE_ORDER: tuple[str, ...] = (COLLECTION_META, PARTITION_META, SEGMENT_META, FULL_META, BACKUP_META)

#: The ``format`` values of the binlog layout this library reads and writes.
_BINLOG_FORMATS = frozenset({"", "binlog"})

_R = TypeVar("_R", bound=attrs.AttrsInstance)

_INT64_MIN = -(1 << 63)
_UINT64_LIMIT = 1 << 64
#: The deepest nesting of JSON arrays and objects a meta file may have. Real manifests nest about 15
#: levels; without a bound, a deeper file breaks Python's recursion limit while decoding or re-encoding.
_MAX_DEPTH = 100


@attrs.frozen(kw_only=True)
class CollectionLevelBackupInfo:
    """``collection_meta.json``: the collections, their partitions without segments, no L0."""

    infos: tuple[CollectionBackupInfo, ...] = attrs.field(
        factory=tuple, metadata={"of": CollectionBackupInfo}
    )


@attrs.frozen(kw_only=True)
class PartitionLevelBackupInfo:
    """``partition_meta.json``: every partition, without segments."""

    infos: tuple[PartitionBackupInfo, ...] = attrs.field(factory=tuple, metadata={"of": PartitionBackupInfo})


@attrs.frozen(kw_only=True)
class SegmentLevelBackupInfo:
    """``segment_meta.json``: every partition's segments."""

    infos: tuple[SegmentBackupInfo, ...] = attrs.field(factory=tuple, metadata={"of": SegmentBackupInfo})


# --------------------------------------------------------------------------- field specs


class _Kind:
    INT = "int"
    STR = "str"
    BOOL = "bool"
    RECORD = "record"
    RECORDS = "records"
    INTS = "ints"
    STRS = "strs"
    MAP = "map"
    RAW = "raw"


@attrs.frozen
class _Spec:
    name: str
    key: str
    kind: str
    always: bool
    of: Any


def _kind_of(cls: type, field: attrs.Attribute[Any], hint: Any) -> str:
    if field.metadata.get("raw"):
        return _Kind.RAW
    of = field.metadata.get("of")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is bool:
        return _Kind.BOOL
    if hint is int:
        return _Kind.INT
    if hint is str:
        return _Kind.STR
    if origin is dict and args == (str, str):
        return _Kind.MAP
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if attrs.has(args[0]) and of is args[0]:
            return _Kind.RECORDS
        if args[0] is int:
            return _Kind.INTS
        if args[0] is str:
            return _Kind.STRS
    if attrs.has(hint) and of is hint:
        return _Kind.RECORD
    raise TypeError(f"{cls.__name__}.{field.name}: the manifest codec cannot handle type {hint!r}")


_SPECS: dict[type, tuple[_Spec, ...]] = {}
_KEY_INDEX: dict[type, dict[str, _Spec]] = {}


def _specs(cls: type) -> tuple[_Spec, ...]:
    cached = _SPECS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    specs = []
    for field in attrs.fields(cls):
        specs.append(
            _Spec(
                name=field.name,
                key=field.metadata.get("json") or field.name,
                kind=_kind_of(cls, field, hints[field.name]),
                always=bool(field.metadata.get("always")),
                of=field.metadata.get("of"),
            )
        )
    _SPECS[cls] = tuple(specs)
    return _SPECS[cls]


def _fold(key: str) -> str:
    """Fold a JSON key the way Go's ``encoding/json`` compares keys with field names.

    Go accepts any key equal to the field name under Unicode simple case folding; since our field
    names are ASCII, the only non-ASCII characters that can match are KELVIN SIGN (k) and LONG S (s).
    """
    if key.isascii():
        return key.lower()
    return "".join(
        "k" if c == "\u212a" else "s" if c == "\u017f" else c.lower() if c.isascii() else c for c in key
    )


def _key_index(cls: type) -> dict[str, _Spec]:
    index = _KEY_INDEX.get(cls)
    if index is None:
        index = _KEY_INDEX[cls] = {_fold(spec.key): spec for spec in _specs(cls)}
    return index


_MODEL_CLASSES: tuple[type, ...] = (
    model.BackupInfo,
    model.DatabaseBackupInfo,
    model.CollectionBackupInfo,
    model.CollectionSchema,
    model.FieldSchema,
    model.StructArrayFieldSchema,
    model.FunctionSchema,
    model.KeyValue,
    model.IndexInfo,
    model.PartitionBackupInfo,
    model.SegmentBackupInfo,
    model.FieldBinlog,
    model.Binlog,
    CollectionLevelBackupInfo,
    PartitionLevelBackupInfo,
    SegmentLevelBackupInfo,
)

#: The JSON keys of each record, by class name, as this codec writes them (the upstream struct tags).
UPSTREAM_KEYS: dict[str, frozenset[str]] = {
    cls.__name__: frozenset(spec.key for spec in _specs(cls)) for cls in _MODEL_CLASSES
}


# --------------------------------------------------------------------------- encoding


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _encode_int(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{path}: expected an int, got a bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{path}: expected an int, got {type(value).__name__}") from None
    if not _INT64_MIN <= number < _UINT64_LIMIT:
        raise ValueError(f"{path}: {number} does not fit in 64 bits")
    return number


def _encode_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{path}: expected a str, got {type(value).__name__}")
    return value


def _encode_record(record: Any, of: Any, path: str) -> dict[str, Any]:
    if not isinstance(record, of):
        raise TypeError(f"{path}: expected a {of.__name__}, got {type(record).__name__}")
    return _encode(record, path)


def _is_zero(spec: _Spec, value: Any) -> bool:
    if spec.kind == _Kind.RAW:
        return value is None
    if spec.kind == _Kind.RECORD:
        # Go omits only a nil pointer; a record equal to its defaults is how "no value" is held here.
        return bool(value == spec.of())
    return not value


def _encode_value(spec: _Spec, value: Any, path: str) -> Any:
    kind = spec.kind
    if kind == _Kind.INT:
        return _encode_int(value, path)
    if kind == _Kind.STR:
        return _encode_str(value, path)
    if kind == _Kind.BOOL:
        if not isinstance(value, bool):
            raise TypeError(f"{path}: expected a bool, got {type(value).__name__}")
        return value
    if kind == _Kind.RECORD:
        return _encode_record(value, spec.of, path)
    if kind == _Kind.RECORDS:
        return [_encode_record(item, spec.of, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == _Kind.INTS:
        return [_encode_int(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == _Kind.STRS:
        return [_encode_str(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == _Kind.MAP:
        # Go writes map keys sorted; code point order is UTF-8 byte order.
        return {_encode_str(k, path): _encode_str(value[k], f"{path}.{k}") for k in sorted(value)}
    return copy.deepcopy(value)


def _encode(record: Any, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in _specs(type(record)):
        value = getattr(record, spec.name)
        if not spec.always and _is_zero(spec, value):
            continue
        out[spec.key] = _encode_value(spec, value, _join(path, spec.key))
    return out


def to_json_obj(record: attrs.AttrsInstance) -> dict[str, Any]:
    """The JSON object Go's ``encoding/json`` makes of the matching upstream struct.

    Keys follow the attribute (proto) order; zero values are left out unless the field is marked
    ``always``. Raises ``TypeError`` if an attribute holds a value of the wrong type.
    """
    return _encode(record, "")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def dumps(obj: dict[str, Any]) -> bytes:
    """Serialize like Go's ``json.Marshal``: compact, UTF-8, with Go's HTML-safe escapes.

    Go writes ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\uXXXX`` escapes and replaces invalid
    UTF-8 with ``\\ufffd``; a lone surrogate is the nearest a Python string gets to invalid UTF-8.
    These characters can only occur inside JSON strings, so replacing them in the output is safe.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.translate(_GO_ESCAPES)
    text = _LONE_SURROGATE.sub(r"\\ufffd", text)
    return text.encode("utf-8")


# --------------------------------------------------------------------------- decoding


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _mismatch(expected: str, value: Any, file: str, path: str) -> ManifestError:
    return ManifestError(file, f"expected {expected}, got {_describe(value)}", path or None)


def _decode_int(value: Any, file: str, path: str) -> int:
    # Go decodes int64/uint64 fields with strconv.Parse(U)Int: integral JSON numbers only, no 1.0 or 1e3.
    if type(value) is not int:
        raise _mismatch("an integer", value, file, path)
    if not _INT64_MIN <= value < _UINT64_LIMIT:
        raise ManifestError(file, f"integer {value} does not fit in 64 bits", path)
    return value


def _decode_str(value: Any, file: str, path: str) -> str:
    if not isinstance(value, str):
        raise _mismatch("a string", value, file, path)
    # Go decodes an unpaired \ud800-style escape to U+FFFD; do the same so the text can be re-encoded.
    return _LONE_SURROGATE.sub("\ufffd", value)


def _decode_list(value: Any, file: str, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _mismatch("an array", value, file, path)
    return value


def _decode_value(spec: _Spec, value: Any, file: str, path: str) -> Any:
    kind = spec.kind
    if value is None:
        # Go leaves the zero value in place for a JSON null.
        return _zero(spec)
    if kind == _Kind.RAW:
        return _decode_raw(value)
    if kind == _Kind.INT:
        return _decode_int(value, file, path)
    if kind == _Kind.STR:
        return _decode_str(value, file, path)
    if kind == _Kind.BOOL:
        if not isinstance(value, bool):
            raise _mismatch("a boolean", value, file, path)
        return value
    if kind == _Kind.RECORD:
        return from_json_obj(spec.of, value, file=file, path=path)
    if kind == _Kind.RECORDS:
        return tuple(
            spec.of() if item is None else from_json_obj(spec.of, item, file=file, path=f"{path}[{i}]")
            for i, item in enumerate(_decode_list(value, file, path))
        )
    if kind == _Kind.INTS:
        return tuple(
            0 if item is None else _decode_int(item, file, f"{path}[{i}]")
            for i, item in enumerate(_decode_list(value, file, path))
        )
    if kind == _Kind.STRS:
        return tuple(
            "" if item is None else _decode_str(item, file, f"{path}[{i}]")
            for i, item in enumerate(_decode_list(value, file, path))
        )
    # _Kind.MAP
    if not isinstance(value, dict):
        raise _mismatch("an object", value, file, path)
    return {
        _decode_str(k, file, path): "" if v is None else _decode_str(v, file, f"{path}.{k}")
        for k, v in value.items()
    }


def _decode_raw(value: Any) -> Any:
    """A copy of a JSON value kept as it is, with lone surrogates replaced as Go decodes them."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_decode_raw(item) for item in value]
    if isinstance(value, dict):
        return {_LONE_SURROGATE.sub("\ufffd", k): _decode_raw(v) for k, v in value.items()}
    return copy.deepcopy(value)


def _zero(spec: _Spec) -> Any:
    kind = spec.kind
    if kind == _Kind.RECORD:
        return spec.of()
    if kind == _Kind.MAP:
        return {}
    return {
        _Kind.INT: 0,
        _Kind.STR: "",
        _Kind.BOOL: False,
        _Kind.RECORDS: (),
        _Kind.INTS: (),
        _Kind.STRS: (),
    }.get(kind)


def from_json_obj(cls: type[_R], obj: Any, *, file: str, path: str = "") -> _R:
    """Build a ``cls`` record from a decoded JSON object, as Go's ``json.Unmarshal`` would.

    Unknown keys are ignored, keys match field names case-insensitively, ``null`` means the zero
    value. ``file`` and ``path`` (the dotted, indexed position of ``obj`` in the file) only go into
    error messages. Raises :class:`ManifestError` for a value of the wrong JSON type.
    """
    if not isinstance(obj, dict):
        raise _mismatch("an object", obj, file, path)
    index = _key_index(cls)
    kwargs: dict[str, Any] = {}
    for key, value in obj.items():
        spec = index.get(_fold(key))
        if spec is None:
            continue
        kwargs[spec.name] = _decode_value(spec, value, file, _join(path, spec.key))
    return cls(**kwargs)


def _raise_on_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; Go's decoder does not.
    raise ValueError(f"invalid JSON literal {name}")


def _parse_float(text: str) -> float:
    # Go refuses a number beyond float64 (1e400); Python would make it inf, which cannot be written back.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _check_depth(obj: Any, file: str) -> None:
    """Raise :class:`ManifestError` if ``obj`` nests arrays and objects deeper than :data:`_MAX_DEPTH`."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        if children and depth >= _MAX_DEPTH:
            raise ManifestError(file, f"nested deeper than {_MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def _load_object(data: bytes, file: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(file, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        obj = json.loads(text, parse_constant=_raise_on_constant, parse_float=_parse_float)
    except ValueError as exc:
        raise ManifestError(file, f"not valid JSON: {exc}") from exc
    except RecursionError:
        raise ManifestError(file, f"nested deeper than {_MAX_DEPTH} levels") from None
    if not isinstance(obj, dict):
        raise _mismatch("a JSON object at the top level", obj, file, "")
    _check_depth(obj, file)
    return obj


def decode_file(cls: type[_R], data: bytes, file: str) -> _R:
    """Decode one meta file (a JSON object) into a ``cls`` record.

    Raises :class:`ManifestError` naming ``file`` if the bytes are not UTF-8, not JSON, not a JSON
    object, or hold a value of the wrong type.
    """
    return from_json_obj(cls, _load_object(data, file), file=file)


# --------------------------------------------------------------------------- the five files


def _without_segments(partition: PartitionBackupInfo) -> PartitionBackupInfo:
    return attrs.evolve(partition, segment_backups=())


def encode_backup(info: BackupInfo) -> dict[str, bytes]:
    """The five meta files of a backup, by file name, in :data:`FILE_ORDER`.

    As upstream's ``meta_builder.go`` (v0.5.10+) makes them: ``backup_meta.json`` holds only the
    summary fields; ``collection_meta.json`` the collections with their partitions but without
    segments or collection-level L0 segments; ``partition_meta.json`` every partition without
    segments; ``segment_meta.json`` every partition's segments (not the collection-level L0 ones);
    ``full_meta.json`` the whole tree.
    """
    summary = BackupInfo(
        id=info.id,
        state_code=info.state_code,
        name=info.name,
        backup_timestamp=info.backup_timestamp,
        size=info.size,
        milvus_version=info.milvus_version,
        format=info.format,
    )
    collections = CollectionLevelBackupInfo(
        infos=tuple(
            attrs.evolve(
                coll,
                partition_backups=tuple(_without_segments(p) for p in coll.partition_backups),
                l0_segments=(),
            )
            for coll in info.collection_backups
        )
    )
    partitions = PartitionLevelBackupInfo(
        infos=tuple(_without_segments(p) for c in info.collection_backups for p in c.partition_backups)
    )
    segments = SegmentLevelBackupInfo(
        infos=tuple(
            s for c in info.collection_backups for p in c.partition_backups for s in p.segment_backups
        )
    )
    encoded = {
        BACKUP_META: dumps(to_json_obj(summary)),
        COLLECTION_META: dumps(to_json_obj(collections)),
        PARTITION_META: dumps(to_json_obj(partitions)),
        SEGMENT_META: dumps(to_json_obj(segments)),
        FULL_META: dumps(to_json_obj(info)),
    }
    return {name: encoded[name] for name in FILE_ORDER}


def _decode_root(data: bytes, file: str) -> BackupInfo:
    obj = _load_object(data, file)
    # Look at the format before anything else: a snapshot-format backup may not even decode.
    spec = _key_index(BackupInfo)["format"]
    for key, value in obj.items():
        if _fold(key) != "format" or value is None:
            continue
        if not isinstance(value, str):  # checked first: a list or an object cannot be looked up in a set
            raise _mismatch("a string", value, file, spec.key)
        if value == "snapshot":
            raise ManifestError(
                file,
                "snapshot format not supported: a Milvus 3.0 snapshot-format backup (milvus-backup"
                " --format snapshot); only binlog-format backups can be read",
                spec.key,
            )
        if value not in _BINLOG_FORMATS:  # upstream restore rejects unknown non-empty formats too
            raise ManifestError(
                file, f"{value} format not supported (only binlog-format backups can be read)", spec.key
            )
    return from_json_obj(BackupInfo, obj, file=file)


def _level_to_tree(files: Mapping[str, bytes]) -> BackupInfo:
    """Rebuild the tree from the level files, as upstream ``levelToTree`` does.

    Segments join partitions by (collection_id, partition_id) and partitions join collections by
    collection_id; partition, collection and backup sizes are recomputed as sums. What the level
    files never held is lost, as upstream loses it: collection-level L0 segments, databases, RBAC.
    """
    for name in (COLLECTION_META, PARTITION_META, SEGMENT_META):
        if name not in files:
            raise ManifestError(name, f"missing, and {FULL_META} is absent too")
    root = _decode_root(files[BACKUP_META], BACKUP_META)
    collections = decode_file(CollectionLevelBackupInfo, files[COLLECTION_META], COLLECTION_META)
    partitions = decode_file(PartitionLevelBackupInfo, files[PARTITION_META], PARTITION_META)
    segments = decode_file(SegmentLevelBackupInfo, files[SEGMENT_META], SEGMENT_META)

    segments_of: dict[tuple[int, int], list[SegmentBackupInfo]] = {}
    for seg in segments.infos:
        segments_of.setdefault((seg.collection_id, seg.partition_id), []).append(seg)
    partitions_of: dict[int, list[PartitionBackupInfo]] = {}
    for part in partitions.infos:
        segs = tuple(segments_of.get((part.collection_id, part.partition_id), ()))
        part = attrs.evolve(part, segment_backups=segs, size=sum(s.size for s in segs))
        partitions_of.setdefault(part.collection_id, []).append(part)
    colls = []
    for coll in collections.infos:
        parts = tuple(partitions_of.get(coll.collection_id, ()))
        colls.append(attrs.evolve(coll, partition_backups=parts, size=sum(p.size for p in parts)))
    return attrs.evolve(root, collection_backups=tuple(colls), size=sum(c.size for c in colls))


def decode_backup(files: Mapping[str, bytes]) -> BackupInfo:
    """Read a backup's meta files (keyed by file name) into its :class:`BackupInfo`.

    ``full_meta.json`` is used when present; otherwise the tree is rebuilt from ``backup_meta.json``
    and the three level files. Raises :class:`ManifestError` if neither ``full_meta.json`` nor
    ``backup_meta.json`` is given, if a needed file is missing or malformed, or if the backup is not
    in the binlog format.
    """
    if FULL_META in files:
        info = _decode_root(files[FULL_META], FULL_META)
        _check_names(info, FULL_META)
        return info
    if BACKUP_META in files:
        info = _level_to_tree(files)
        _check_names(info, COLLECTION_META)
        return info
    raise ManifestError(BACKUP_META, f"missing, and {FULL_META} is absent too: not a backup")


def _unsafe_path(value: str) -> bool:
    """A ``log_path`` climbing with ``..`` or holding a NUL byte. Absolute paths are accepted: the Go tool
    records them for a Milvus on local disk (``/var/lib/milvus/data/insert_log/...``)."""
    return ".." in value.replace("\\", "/").split("/") or "\x00" in value


def _check_names(info: BackupInfo, file: str) -> None:
    """Reject names and paths a hostile or corrupt manifest could use to escape the backup or the target.

    Names become Milvus names and path parts. ``log_path`` is informational: neither tool reads it on
    restore (binlogs are found under the backup's ``binlogs/`` directory by IDs), and the Go tool writes
    absolute ones for a Milvus on local disk, so absolute paths are accepted; one climbing with ``..``
    or holding a NUL byte is still refused, as nothing legitimate writes it and a later reader might
    trust it.
    """
    for c, coll in enumerate(info.collection_backups):
        where = f"collection_backups[{c}]"
        for field, value in (("db_name", coll.db_name), ("collection_name", coll.collection_name)):
            if "/" in value or "\\" in value or value in (".", "..") or "\x00" in value:
                raise ManifestError(file, f"{value!r} is not a valid name", field=f"{where}.{field}")
        for p, part in enumerate(coll.partition_backups):
            name = part.partition_name
            if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
                raise ManifestError(
                    file,
                    f"{name!r} is not a valid name",
                    field=f"{where}.partition_backups[{p}].partition_name",
                )
            for s_index, seg in enumerate(part.segment_backups):
                for kind, logs in (("binlogs", seg.binlogs), ("deltalogs", seg.deltalogs)):
                    for f_index, fb in enumerate(logs):
                        for b_index, log in enumerate(fb.binlogs):
                            if log.log_path and _unsafe_path(log.log_path):
                                raise ManifestError(
                                    file,
                                    f"'..' or NUL in path {log.log_path!r}",
                                    field=f"{where}.partition_backups[{p}].segment_backups[{s_index}]."
                                    f"{kind}[{f_index}].binlogs[{b_index}].log_path",
                                )
