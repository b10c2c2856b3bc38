"""What a caller chooses for a restore: which collections, under which names, and what to do on the target."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import attrs

from milvus_backup_lib.errors import (
    InvalidFilterError,
    InvalidNameError,
    InvalidOptionError,
    InvalidOptionTypeError,
)
from milvus_backup_lib.options import CollectionFilter, QualifiedName, validate_database_name

__all__ = ["RESTORE_METHODS", "RestoreKeywords", "RestoreOptions", "restore_options"]

_SUFFIX_RE = re.compile(r"[A-Za-z0-9_]+")
# The longest suffix that still leaves room for a one-letter name (Milvus allows 255 characters).
_MAX_SUFFIX_LENGTH = 254
#: The valid ``check_backup`` levels, cheapest first.
_CHECK_LEVELS = ("none", "exists", "size", "checksum")
#: The valid ``method`` values: choose per collection, bulk-import the binlogs, or insert rows.
RESTORE_METHODS = ("auto", "import", "insert")
#: Milvus's gRPC message limit is 64 MiB (``grpc.serverMaxRecvSize``); an insert request stays well under it.
MAX_INSERT_BATCH_BYTES = 48 * 1024 * 1024


def _to_patterns(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (str, Iterable)):
        raise InvalidOptionTypeError(
            "collections", value, "a string of comma-separated entries, an iterable of strings, or None"
        )
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise InvalidFilterError(f"collection filter entries must be strings, got {items!r}")
    return tuple(item.strip() for item in items)


def _to_rename(value: Mapping[str, str] | str | None) -> dict[str, str]:
    """Accept a mapping, or the Go tool's ``--rename`` text ``db1.c1:db2.c2,c3:c4``."""
    if value is None:
        return {}
    if isinstance(value, str):
        pairs: list[tuple[str, str]] = []
        for entry in value.split(","):
            source, sep, target = entry.partition(":")
            if not sep:
                raise InvalidFilterError(f"rename entry {entry.strip()!r} is not source:target")
            pairs.append((source.strip(), target.strip()))
        rules = dict(pairs)
        if len(rules) != len(pairs):
            raise InvalidFilterError(f"rename {value!r} names a source twice")
        return rules
    if not isinstance(value, Mapping):
        raise InvalidFilterError(
            f"rename must be a mapping of source to target or the text 'db1.c1:db2.c2,c3:c4', got {value!r}"
        )
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidFilterError(f"rename sources and targets must be strings, got {dict(value)!r}")
    return {k.strip(): v.strip() for k, v in value.items()}


@attrs.frozen
class RenameRules:
    """Parsed ``rename`` entries: collection-level rules and database-level (``db.*``) rules."""

    collections: Mapping[QualifiedName, QualifiedName] = attrs.field(factory=dict, hash=False)
    databases: Mapping[str, str] = attrs.field(factory=dict, hash=False)

    @classmethod
    def parse(cls, rename: Mapping[str, str]) -> RenameRules:
        """Parse ``{"db1.c1": "db2.c2", "c3": "c4", "db1.*": "db2.*"}``; raises :class:`InvalidFilterError`."""
        collections: dict[QualifiedName, QualifiedName] = {}
        databases: dict[str, str] = {}
        for source, target in rename.items():
            source_wild, target_wild = source.endswith(".*"), target.endswith(".*")
            if source_wild != target_wild:
                raise InvalidFilterError(
                    f"rename {source!r} -> {target!r}: map a database (db.*) to a database, "
                    "or a collection to a collection"
                )
            if source_wild:
                try:
                    src_db = validate_database_name(source[:-2])
                    dst_db = validate_database_name(target[:-2])
                except InvalidNameError as exc:
                    raise InvalidFilterError(f"rename {source!r} -> {target!r}: {exc}") from None
                if src_db in databases:
                    raise InvalidFilterError(f"rename names database {src_db!r} twice")
                databases[src_db] = dst_db
            else:
                src, dst = QualifiedName.parse(source), QualifiedName.parse(target)
                if src in collections:
                    raise InvalidFilterError(f"rename names collection {src} twice")
                collections[src] = dst
        return cls(collections, databases)


def _check_rename(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: dict[str, str]) -> None:
    RenameRules.parse(value)


def _check_patterns(
    instance: RestoreOptions, attribute: attrs.Attribute[Any], value: tuple[str, ...] | None
) -> None:
    CollectionFilter.parse(value)


def _check_suffix(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str):
        raise InvalidNameError(f"suffix must be a string, got {value!r}")
    if value and (not _SUFFIX_RE.fullmatch(value) or len(value) > _MAX_SUFFIX_LENGTH):
        raise InvalidNameError(
            f"invalid suffix {value!r}: use letters, digits and '_' (at most {_MAX_SUFFIX_LENGTH}); "
            "it is appended as it is, so '_bak' turns c1 into c1_bak"
        )


def _bool(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidOptionTypeError(attribute.name, value, (True, False))


def _check_load(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise InvalidOptionTypeError(attribute.name, value, (True, False, None))


def _check_skip_create(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: object) -> None:
    _bool(instance, attribute, value)
    # attrs runs validators once every field is set, so drop_existing is already there (and checked).
    if value is True and instance.drop_existing is True:
        raise InvalidOptionError(
            "skip_create",
            value,
            "either drop_existing=True (drop the target and create it again) or skip_create=True "
            "(restore into the existing target), not both",
            detail="with drop_existing=True",
        )


def _positive_int(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionTypeError(attribute.name, value, "a whole number >= 1")
    if value < 1:
        raise InvalidOptionError(attribute.name, value, "a whole number >= 1")


def _check_level(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise InvalidOptionTypeError(attribute.name, value, _CHECK_LEVELS)
    if value not in _CHECK_LEVELS:
        raise InvalidOptionError(attribute.name, value, _CHECK_LEVELS)


def _check_method(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise InvalidOptionTypeError(attribute.name, value, RESTORE_METHODS)
    if value not in RESTORE_METHODS:
        raise InvalidOptionError(attribute.name, value, RESTORE_METHODS)


def _check_batch_bytes(instance: RestoreOptions, attribute: attrs.Attribute[Any], value: object) -> None:
    _positive_int(instance, attribute, value)
    if isinstance(value, int) and value > MAX_INSERT_BATCH_BYTES:
        raise InvalidOptionError(
            attribute.name, value, f"at most {MAX_INSERT_BATCH_BYTES} (Milvus's gRPC messages end at 64 MiB)"
        )


@attrs.frozen(kw_only=True)
class RestoreOptions:
    """How to restore a backup.

    Target names: a collection-level ``rename`` wins over a database-level (``db.*``) one, and any rename
    wins over ``suffix``; a database-level rename keeps collection names, and renamed collections get no
    suffix. Otherwise ``suffix`` is appended as it is, as the Go tool does: ``suffix="_bak"`` turns
    ``c1`` into ``c1_bak`` in the same database (and ``suffix="bak"`` into ``c1bak``).

    Raises :class:`InvalidFilterError` for a filter or rename that cannot be parsed,
    :class:`InvalidNameError` for a suffix that cannot be part of a collection name, and
    :class:`InvalidOptionError` (naming the valid choices) for a flag that is not a bool, a ``load`` that
    is not a bool or None, a ``check_backup`` level that does not exist, or ``drop_existing`` together
    with ``skip_create``.
    """

    #: Filter on the backed-up (source) names: ``db.coll``, ``coll`` (default database), ``db.*``;
    #: a string is split on commas. None selects every backed-up collection.
    collections: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_patterns, validator=_check_patterns
    )
    #: Appended verbatim to each collection name that is not renamed (``"_bak"``: ``c1`` -> ``c1_bak``).
    suffix: str = attrs.field(default="", validator=_check_suffix)
    #: ``{"db1.c1": "db2.c2", "c3": "c4", "db1.*": "db2.*"}``, or the text ``db1.c1:db2.c2,c3:c4``.
    rename: Mapping[str, str] = attrs.field(
        factory=dict, converter=_to_rename, validator=_check_rename, hash=False
    )
    #: Drop a target collection that already exists (with its aliases) before creating it again.
    drop_existing: bool = attrs.field(default=False, validator=_bool)
    #: Restore into target collections that already exist (their schema must match the backup's).
    #: Refused together with ``drop_existing``.
    skip_create: bool = attrs.field(default=False, validator=_check_skip_create)
    #: Schema, partitions, indexes and aliases only; import no data.
    meta_only: bool = attrs.field(default=False, validator=_bool)
    #: Create the backed-up indexes; without them a collection cannot be loaded.
    rebuild_indexes: bool = attrs.field(default=True, validator=_bool)
    #: Load restored collections; None loads those that were Loaded or Loading at backup time.
    load: bool | None = attrs.field(default=None, validator=_check_load)
    #: Create the backed-up aliases.
    restore_aliases: bool = attrs.field(default=True, validator=_bool)
    #: Plan only; change nothing.
    dry_run: bool = attrs.field(default=False, validator=_bool)
    #: Keep the binlogs staged in the Milvus bucket after the import.
    keep_staged: bool = attrs.field(default=False, validator=_bool)
    #: Check the backup before restoring: ``size`` (default: every binlog present with its recorded
    #: size), ``exists``, ``checksum`` (reads everything), or ``none``. A broken backup is refused.
    check_backup: str = attrs.field(default="size", validator=_check_level)
    #: Collections restored at once (milvus-backup's ``restore.concurrency.collections``, 2).
    parallel_collections: int = attrs.field(default=2, validator=_positive_int)
    #: Import jobs in flight at once, over all collections (milvus-backup's
    #: ``restore.concurrency.importJobs``; its 768 suits large clusters, see docs/benchmarks.md).
    parallel_imports: int = attrs.field(default=8, validator=_positive_int)
    #: Segments one import job carries on Milvus 2.4+ (milvus-backup's
    #: ``restore.maxSegmentsPerImportJob``, 256); 1 gives one job per segment group on every version.
    segments_per_import: int = attrs.field(default=256, validator=_positive_int)
    #: Keep the collections this restore created when it fails or is interrupted; by default they are
    #: dropped (only those it created and had not finished), and the error says what was dropped.
    keep_partial: bool = attrs.field(default=False, validator=_bool)
    #: How rows reach the target: ``import`` (bulk import of the binlogs, the Go tool's way), ``insert``
    #: (rows read offline from the backup and inserted in batches: any Milvus, Milvus Lite, logical
    #: backups), or ``auto``: import where the server can, insert otherwise; the plan says why.
    method: str = attrs.field(default="auto", validator=_check_method)
    #: Rows per insert request (``method="insert"``).
    insert_batch_rows: int = attrs.field(default=10_000, validator=_positive_int)
    #: Bytes (Arrow size) per insert request, at most 48 MiB: requests stay under gRPC's 64 MiB.
    insert_batch_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=_check_batch_bytes)

    @property
    def filter(self) -> CollectionFilter:
        """The source-name filter as a :class:`CollectionFilter`."""
        return CollectionFilter.parse(self.collections)

    @property
    def rename_rules(self) -> RenameRules:
        """The parsed ``rename`` entries."""
        return RenameRules.parse(self.rename)

    def target_name(self, source: QualifiedName) -> QualifiedName:
        """Where the backed-up collection ``source`` is restored to (not yet checked against Milvus's rules)."""
        rules = self.rename_rules
        if source in rules.collections:
            return rules.collections[source]
        if source.database in rules.databases:
            return QualifiedName(rules.databases[source.database], source.collection)
        if self.suffix:
            return QualifiedName(source.database, source.collection + self.suffix)
        return source


class RestoreKeywords(TypedDict, total=False):
    """The fields of :class:`RestoreOptions`, as keyword arguments of ``BackupClient.restore``."""

    collections: Iterable[str] | str | None
    suffix: str
    rename: Mapping[str, str] | str | None
    drop_existing: bool
    skip_create: bool
    meta_only: bool
    rebuild_indexes: bool
    load: bool | None
    restore_aliases: bool
    dry_run: bool
    keep_staged: bool
    check_backup: str
    parallel_collections: int
    parallel_imports: int
    segments_per_import: int
    keep_partial: bool
    method: str
    insert_batch_rows: int
    insert_batch_bytes: int


def restore_options(options: RestoreOptions | None, keywords: Mapping[str, object]) -> RestoreOptions:
    """The options of a restore given either as a :class:`RestoreOptions` or as keywords (not both).

    Raises :class:`InvalidOptionError` for both at once, :class:`InvalidOptionTypeError` for ``options``
    that is not a :class:`RestoreOptions` or a keyword that is not one of its fields, and whatever
    :class:`RestoreOptions` raises for a value.
    """
    fields = tuple(a.name for a in attrs.fields(RestoreOptions))
    if options is not None and not isinstance(options, RestoreOptions):
        raise InvalidOptionTypeError(
            "options", options, "a RestoreOptions, or keyword options such as suffix="
        )
    for key, value in keywords.items():
        if key not in fields:
            raise InvalidOptionTypeError(key, value, fields, detail="(not an option of a restore)")
    if options is not None and keywords:
        raise InvalidOptionError(
            "options",
            options,
            f"either options=RestoreOptions(...) or keyword options ({', '.join(keywords)}=...), not both",
            detail="together with keyword options",
        )
    return options if options is not None else RestoreOptions(**keywords)  # type: ignore[arg-type]
