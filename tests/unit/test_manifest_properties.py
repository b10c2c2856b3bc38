"""Property tests of the manifest codec: random backups round-trip, and no input breaks the decoder.

The strategies are derived from the attrs model itself (field types and the ``raw`` marker), so a
field added to the model is generated without touching this file.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milvus_backup_lib.errors import ManifestError
from milvus_backup_lib.manifest import codec, model
from milvus_backup_lib.manifest.codec import (
    BACKUP_META,
    COLLECTION_META,
    FULL_META,
    PARTITION_META,
    SEGMENT_META,
    UPSTREAM_KEYS,
    decode_backup,
    decode_file,
    dumps,
    encode_backup,
    from_json_obj,
    to_json_obj,
)

# No example database (it would write .hypothesis/ into the working tree); no deadline (shared CI).
PROPERTIES = settings(
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

RECORD_CLASSES: tuple[type, ...] = (
    model.BackupInfo,
    model.DatabaseBackupInfo,
    model.CollectionBackupInfo,
    model.CollectionSchema,
    model.FieldSchema,
    model.FunctionSchema,
    model.KeyValue,
    model.IndexInfo,
    model.PartitionBackupInfo,
    model.SegmentBackupInfo,
    model.FieldBinlog,
    model.Binlog,
    codec.CollectionLevelBackupInfo,
    codec.PartitionLevelBackupInfo,
    codec.SegmentLevelBackupInfo,
)
LEVEL_FILES = {
    COLLECTION_META: codec.CollectionLevelBackupInfo,
    PARTITION_META: codec.PartitionLevelBackupInfo,
    SEGMENT_META: codec.SegmentLevelBackupInfo,
}

# --------------------------------------------------------------------------- strategies

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
#: Any text Go can write (no lone surrogates), with the characters Go escapes made likely.
TEXT = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from('<>&\u2028\u2029"\\\x00\x1f\u212a\u017f'),
    max_size=12,
)
#: Text a decoder may be given: lone surrogates too (json.dumps writes them as \\ud800 escapes).
INPUT_TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=12)


def _json(text: st.SearchStrategy[str], max_leaves: int) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | text
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
        max_leaves=max_leaves,
    )


#: JSON values Go can write back unchanged (raw fields of generated records).
JSON_VALUES = _json(TEXT, max_leaves=8)
#: JSON values a decoder may meet.
INPUT_JSON = _json(INPUT_TEXT, max_leaves=12)
#: Odd JSON that still parses: huge integers, integral floats, deep but legal nesting.
ODD_SCALARS = st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, 1.0, -0.0, 1e308, True, "", "1", "x" * 50])

_FIELD_OVERRIDES: dict[tuple[type, str], st.SearchStrategy[Any]] = {
    # Anything else is refused as a snapshot-format backup, by design.
    (model.BackupInfo, "format"): st.sampled_from(["", "binlog"]),
}


def _value_strategy(owner: type, field: attrs.Attribute[Any], hint: Any) -> st.SearchStrategy[Any]:
    override = _FIELD_OVERRIDES.get((owner, field.name))
    if override is not None:
        return override
    if field.metadata.get("raw"):
        return st.none() | JSON_VALUES
    return _type_strategy(hint)


def _type_strategy(hint: Any) -> st.SearchStrategy[Any]:
    if hint is bool:
        return st.booleans()
    if hint is int:
        return INT64
    if hint is str:
        return TEXT
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is dict:
        return st.dictionaries(TEXT, TEXT, max_size=3)
    if origin is tuple:
        return st.lists(_type_strategy(args[0]), max_size=2).map(tuple)
    if attrs.has(hint):
        return st.deferred(lambda: records(hint))
    raise TypeError(f"no strategy for {hint!r}")


_RECORD_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {}


def records(cls: type) -> st.SearchStrategy[Any]:
    """Random instances of a manifest record class, every field drawn from its type."""
    strategy = _RECORD_STRATEGIES.get(cls)
    if strategy is None:
        hints = typing.get_type_hints(cls)
        fields = {f.name: _value_strategy(cls, f, hints[f.name]) for f in attrs.fields(cls)}
        strategy = _RECORD_STRATEGIES[cls] = st.builds(cls, **fields)
    return strategy


ALL_KEYS = sorted(set().union(*UPSTREAM_KEYS.values()))
#: Keys a decoder will look at (exactly, in other cases) or ignore.
MANIFEST_KEYS = st.sampled_from(ALL_KEYS) | st.sampled_from(ALL_KEYS).map(str.upper) | INPUT_TEXT
#: JSON shaped like a manifest: objects with the manifest's keys, holding anything.
MANIFEST_SHAPED = st.recursive(
    INPUT_JSON | ODD_SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(MANIFEST_KEYS, children, max_size=6),
    max_leaves=25,
)


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


def decode_or_manifest_error(call: typing.Callable[[], Any]) -> Any:
    """``call()``, or None if it raised :class:`ManifestError`; any other exception fails the test."""
    try:
        return call()
    except ManifestError:
        return None


def assert_stable(info: model.BackupInfo) -> None:
    """Whatever decoded writes back, and reads back as the same thing."""
    files = encode_backup(info)
    again = decode_backup(files)
    assert again == info
    assert encode_backup(again) == files


# --------------------------------------------------------------------------- round trips


@PROPERTIES
@given(records(model.BackupInfo))
def test_backup_round_trip_through_full_meta(info: model.BackupInfo) -> None:
    from milvus_backup_lib.manifest.codec import _check_names

    files = encode_backup(info)
    try:
        _check_names(info, FULL_META)
    except ManifestError:
        # names with separators or '..' paths (which random text produces) are refused on reading
        with pytest.raises(ManifestError):
            decode_backup({FULL_META: files[FULL_META]})
        return
    assert decode_backup({FULL_META: files[FULL_META]}) == info
    assert decode_backup(files) == info
    assert encode_backup(decode_backup(files)) == files


@PROPERTIES
@given(st.sampled_from(RECORD_CLASSES).flatmap(records))
def test_every_record_round_trips(record: Any) -> None:
    cls = type(record)
    data = dumps(to_json_obj(record))
    assert decode_file(cls, data, "x.json") == record
    assert from_json_obj(cls, json.loads(data), file="x.json") == record


@PROPERTIES
@given(records(model.BackupInfo))
def test_written_files_are_go_safe_json(info: model.BackupInfo) -> None:
    for data in encode_backup(info).values():
        text = data.decode("utf-8")
        assert not set(text) & set("<>&\u2028\u2029")
        json.loads(text)


# --------------------------------------------------------------------------- nothing breaks the decoder


def _decode_everywhere(data: bytes) -> None:
    """Feed ``data`` to every decoding entry point; only ManifestError may come out."""
    for cls in RECORD_CLASSES:
        decode_or_manifest_error(lambda cls=cls: decode_file(cls, data, "x.json"))
    decoded = decode_or_manifest_error(lambda: decode_backup({FULL_META: data}))
    if decoded is not None:
        assert_stable(decoded)
    decode_or_manifest_error(lambda: decode_backup({BACKUP_META: data}))
    # As each of the four level files, the others being valid and empty.
    empty_levels = encode_backup(model.BackupInfo())
    for name in (BACKUP_META, *LEVEL_FILES):
        files = {k: v for k, v in empty_levels.items() if k != FULL_META}
        files[name] = data
        decode_or_manifest_error(lambda files=files: decode_backup(files))


@PROPERTIES
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_manifest_errors(data: bytes) -> None:
    _decode_everywhere(data)


@PROPERTIES
@given(INPUT_JSON | MANIFEST_SHAPED)
def test_arbitrary_json_raises_only_manifest_errors(value: Any) -> None:
    _decode_everywhere(_dump(value))


@PROPERTIES
@given(st.dictionaries(MANIFEST_KEYS, MANIFEST_SHAPED, max_size=8))
def test_manifest_shaped_objects_raise_only_manifest_errors(value: dict[str, Any]) -> None:
    _decode_everywhere(_dump(value))
    for cls in RECORD_CLASSES:
        decode_or_manifest_error(lambda cls=cls: from_json_obj(cls, value, file="x.json"))


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b'{"rbac_meta":' + b"[" * 500 + b"]" * 500 + b"}",
        b'{"format": []}',
        b'{"format": {"a": 1}}',
        b'{"format": 7}',
        b'{"rbac_meta": 1e400}',
        b'{"size": 1e400}',
        b'{"size": ' + b"9" * 5000 + b"}",
        b'{"name": "\\ud800"}',
        b"\xef\xbb\xbf{}",
        b'{"collection_backups": [null, {"partition_backups": [[]]}]}',
    ],
    ids=lambda data: repr(data[:24]),
)
def test_known_hard_inputs(data: bytes) -> None:
    _decode_everywhere(data)


def test_depth_limit_keeps_real_nesting() -> None:
    nested: Any = "leaf"
    for _ in range(90):
        nested = [nested]
    info = decode_backup({FULL_META: _dump({"rbac_meta": nested})})
    assert info.rbac_meta == nested
    assert_stable(info)


def test_lone_surrogates_decode_as_go_does_everywhere() -> None:
    data = b'{"name": "\\ud800", "rpc_channel_info": {"\\udc00": ["\\ud800x"]}, "flush_all_msgs_base64": {"\\ud800": "v"}}'
    info = decode_backup({FULL_META: data})
    assert info.name == "\ufffd"
    assert info.rpc_channel_info == {"\ufffd": ["\ufffdx"]}
    assert info.flush_all_msgs_base64 == {"\ufffd": "v"}
    assert_stable(info)


# --------------------------------------------------------------------------- mutated manifests


def _containers(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every object and array inside ``obj`` (``()`` is ``obj`` itself)."""
    found = []
    if isinstance(obj, dict):
        found.append(path)
        for key, value in obj.items():
            found.extend(_containers(value, (*path, key)))
    elif isinstance(obj, list):
        found.append(path)
        for index, value in enumerate(obj):
            found.extend(_containers(value, (*path, index)))
    return found


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        obj = obj[step]
    return obj


JUNK = INPUT_JSON | ODD_SCALARS | MANIFEST_SHAPED


def _mutate(obj: Any, data: st.DataObject) -> None:
    """One random edit of ``obj`` in place: delete, retype, re-case or add a key; edit an array."""
    container = _at(obj, data.draw(st.sampled_from(_containers(obj)), label="where"))
    if isinstance(container, dict):
        operations = ["insert"] + (["delete", "replace", "recase", "wrap"] if container else [])
        operation = data.draw(st.sampled_from(operations), label="operation")
        if operation == "insert":
            container[data.draw(MANIFEST_KEYS, label="key")] = data.draw(JUNK, label="value")
            return
        key = data.draw(st.sampled_from(sorted(container)), label="key")
        if operation == "delete":
            del container[key]
        elif operation == "replace":
            container[key] = data.draw(JUNK, label="value")
        elif operation == "recase":
            container[key.upper()] = container.pop(key)
        else:
            container[key] = [container[key]]
    else:
        operations = ["append"] + (["delete", "replace"] if container else [])
        operation = data.draw(st.sampled_from(operations), label="operation")
        if operation == "append":
            container.append(data.draw(JUNK, label="value"))
            return
        index = data.draw(st.integers(0, len(container) - 1), label="index")
        if operation == "delete":
            del container[index]
        else:
            container[index] = data.draw(JUNK, label="value")


@PROPERTIES
@given(records(model.BackupInfo), st.data())
def test_mutated_manifests_decode_or_raise_manifest_errors(
    info: model.BackupInfo, data: st.DataObject
) -> None:
    files = encode_backup(info)
    name = data.draw(st.sampled_from([FULL_META, BACKUP_META, *LEVEL_FILES]), label="file")
    obj = json.loads(files[name])
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        _mutate(obj, data)
    mutated = dict(files)
    mutated[name] = _dump(obj)
    if name != FULL_META:
        del mutated[FULL_META]  # else the level files are never read
    decoded = decode_or_manifest_error(lambda: decode_backup(mutated))
    if decoded is not None and name == FULL_META:
        assert_stable(decoded)
    if name in LEVEL_FILES:
        decode_or_manifest_error(lambda: decode_file(LEVEL_FILES[name], mutated[name], name))


@PROPERTIES
@given(records(model.BackupInfo), st.data())
def test_corrupted_bytes_decode_or_raise_manifest_errors(info: model.BackupInfo, data: st.DataObject) -> None:
    raw = bytearray(encode_backup(info)[FULL_META])
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        index = data.draw(st.integers(0, len(raw) - 1), label="index")
        if data.draw(st.booleans(), label="delete"):
            del raw[index]
        else:
            raw[index] = data.draw(st.integers(0, 255), label="byte")
        if not raw:
            break
    decoded = decode_or_manifest_error(lambda: decode_backup({FULL_META: bytes(raw)}))
    if decoded is not None:
        assert_stable(decoded)
