"""The backup root: where backups live, in the milvus-backup v0.5 layout.

``{root}/{name}/meta/*.json`` and ``{root}/{name}/binlogs/...``. A backup exists when its
``meta/backup_meta.json`` exists (the check both tools make), so that file is written last, after
every binlog and every other meta file: a half-written backup is never listed as a backup (it is
listed apart, as unfinished: :mod:`milvus_backup_lib.repository.unfinished`). Our own record
(library version, GC pause outcome, file sizes) goes to ``meta/milvus_backup_lib.json``, which the Go
tool ignores.

Listings survive damage: a backup whose meta files cannot be read (an empty or invalid
``backup_meta.json`` after a power loss, a Go backup still being written, a format this library cannot
read) is left out of :meth:`BackupRepository.summaries` with a warning naming its directory and the
reason; :meth:`BackupRepository.problem` says what is wrong with one, and
:func:`~milvus_backup_lib.repository.unfinished.list_unfinished` lists them. A listed name is always
the directory's, never the ``name`` a manifest claims.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NoReturn

import attrs

from milvus_backup_lib._html import format_bytes, html_block, html_heading, html_table, printable, text_table
from milvus_backup_lib.errors import BackupNotFoundError, ManifestError, StorageError
from milvus_backup_lib.manifest.codec import BACKUP_META, FILE_ORDER, FULL_META, decode_backup, encode_backup
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.repository.library_meta import LOGICAL, LibraryMeta
from milvus_backup_lib.repository.lock import DEFAULT_STALE_AFTER
from milvus_backup_lib.retry import call_with_retries
from milvus_backup_lib.storage import diagnose
from milvus_backup_lib.storage.layout import LIBRARY_META_FILE, META_DIR, ROOT_MARKER, validate_backup_name
from milvus_backup_lib.storage.location import StorageLocation, scrub

if TYPE_CHECKING:
    # pandas is optional (``pip install pandas``); without it, or without pandas-stubs, this is Any.
    import pandas  # type: ignore[import-untyped, import-not-found, unused-ignore]

    from milvus_backup_lib.repository.deletion import DeleteReport

__all__ = ["LOGICAL", "TOMBSTONE_FILE", "BackupList", "BackupRepository", "BackupSummary", "LibraryMeta"]

log = logging.getLogger(__name__)

#: ``{root}/{name}/milvus_backup_lib.deleted``: written first by a delete (JSON: when, and which backups
#: still reference which of its files); a directory holding it is a husk, never a backup.
TOMBSTONE_FILE = "milvus_backup_lib.deleted"


@attrs.frozen(kw_only=True)
class BackupSummary:
    """One line of :meth:`BackupClient.list_backups`."""

    name: str
    size: int
    collection_count: int
    milvus_version: str
    created_at: dt.datetime | None
    collections: tuple[str, ...] = ()
    #: The backup an incremental backup was made against ("" for a full backup).
    base: str = ""
    #: Whether every file is stored under the backup's own directory (the Go tool reads only these);
    #: False for an incremental backup until :meth:`BackupClient.materialize`.
    self_contained: bool = True
    #: Binlogs stored by other backups (referenced), and their bytes.
    reused_files: int = 0
    reused_bytes: int = 0
    #: The backup's strategy (``serial_flush``, ``logical``...; "" for the Go tool's backups).
    strategy: str = ""

    @property
    def logical(self) -> bool:
        """Whether it is a logical backup (Parquet rows; the Go tool cannot restore it)."""
        return self.strategy == LOGICAL


#: The columns of :meth:`BackupList.to_dataframe`: the fields of :class:`BackupSummary`.
DATAFRAME_COLUMNS = (
    "name",
    "size",
    "collection_count",
    "milvus_version",
    "created_at",
    "collections",
    "base",
    "self_contained",
    "reused_files",
    "reused_bytes",
    "strategy",
)
_TABLE_HEADERS = (
    "name",
    "size",
    "collections",
    "milvus version",
    "created",
    "collection names",
    "self-contained",
    "kind",
)
_TABLE_NUMERIC = frozenset({1, 2})


class BackupList(list[BackupSummary]):
    """What :meth:`BackupClient.list_backups` returns: a plain ``list`` of :class:`BackupSummary`.

    It compares, indexes and iterates as a list; in addition it renders as a table in a notebook
    (``_repr_html_``), as text with :meth:`table`, and converts to a pandas DataFrame with
    :meth:`to_dataframe` when pandas is installed.
    """

    __slots__ = ()

    def _incremental(self) -> bool:
        return any(s.base or not s.self_contained for s in self)

    def _headers(self) -> tuple[str, ...]:
        return (*_TABLE_HEADERS, "base (reused)") if self._incremental() else _TABLE_HEADERS

    def _rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = [
            (
                s.name,
                format_bytes(s.size),
                str(s.collection_count),
                s.milvus_version,
                s.created_at.isoformat(timespec="seconds") if s.created_at else "",
                ", ".join(s.collections),
                "yes" if s.self_contained else "no",
                "logical" if s.logical else "binlogs",
            )
            for s in self
        ]
        if not self._incremental():
            return rows
        return [(*row, _stored(s)) for row, s in zip(rows, self, strict=True)]

    def table(self) -> str:
        """One line per backup: name, size, collection count, Milvus version, creation time, collections,
        whether it is self-contained, its kind (and, when any is incremental, its base and what it reuses)."""
        return f"{len(self)} backup(s)\n" + text_table(self._headers(), self._rows(), numeric=_TABLE_NUMERIC)

    def _repr_html_(self) -> str:
        return html_block(
            html_heading(f"{len(self)} backup(s)"),
            html_table(self._headers(), self._rows(), numeric=_TABLE_NUMERIC),
        )

    def to_dataframe(self) -> pandas.DataFrame:
        """A pandas DataFrame, one row per backup, with the columns of :data:`DATAFRAME_COLUMNS`.

        ``size`` is in bytes, ``created_at`` a datetime (``NaT`` when unknown), ``collections`` a tuple
        of ``db.collection`` names. Raises :class:`ImportError` when pandas is not installed.
        """
        try:
            import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError as exc:
            raise ImportError(
                "BackupList.to_dataframe() needs pandas, which is not installed: pip install pandas",
                name="pandas",
            ) from exc
        records = [{column: getattr(s, column) for column in DATAFRAME_COLUMNS} for s in self]
        return pd.DataFrame.from_records(records, columns=list(DATAFRAME_COLUMNS))


def _stored(summary: BackupSummary) -> str:
    if summary.self_contained:
        return f"{summary.base} (self-contained)" if summary.base else "(full)"
    return f"{summary.base} ({summary.reused_files} files, {format_bytes(summary.reused_bytes)})"


class BackupRepository:
    """Reads and writes backups under one :class:`StorageLocation`."""

    def __init__(self, location: StorageLocation) -> None:
        self.location = location

    def __repr__(self) -> str:
        return f"BackupRepository({self.location!r})"

    # paths
    def backup_dir(self, name: str) -> str:
        return self.location.join(validate_backup_name(name))

    def path(self, name: str, relative: str) -> str:
        return self.location.join(validate_backup_name(name), relative)

    def meta_path(self, name: str, file: str) -> str:
        return self.path(name, f"{META_DIR}/{file}")

    # queries
    def exists(self, name: str) -> bool:
        """Whether a complete backup ``name`` exists: its ``backup_meta.json`` is there, and it is not
        the husk of a deleted backup (:meth:`is_husk`)."""
        return self.location.exists(self.meta_path(name, BACKUP_META)) and not self.is_husk(name)

    def is_husk(self, name: str) -> bool:
        """Whether ``{root}/{name}/`` is what a delete left: a tombstone (:data:`TOMBSTONE_FILE`) and the
        files other backups still reference. Never a backup, nor an unfinished one."""
        return self.location.exists(self.path(name, TOMBSTONE_FILE))

    def husk_referrers(self, name: str) -> list[str]:
        """The backups that, by the tombstone of husk ``name``, still reference its files (sorted)."""
        try:
            record = json.loads(self.location.read_bytes(self.path(name, TOMBSTONE_FILE)))
        except FileNotFoundError:
            return []
        except (UnicodeDecodeError, json.JSONDecodeError):
            return ["(unknown: its tombstone cannot be read)"]
        referenced = record.get("referenced_by") if isinstance(record, dict) else None
        if not isinstance(referenced, dict):
            return []
        return sorted({str(n) for names in referenced.values() if isinstance(names, list) for n in names})

    def has_objects(self, name: str) -> bool:
        """Whether anything at all is stored under ``{root}/{name}/``."""
        return self.location.has_anything(self.backup_dir(name))

    def directory_names(self) -> list[str]:
        """The valid backup names among the directories of the root, sorted: complete or not."""
        location = self.location
        location.check_listable()  # a missing root, bucket, credentials or endpoint: never "0 backups"
        try:
            entries = call_with_retries("list backups", location.fs.ls, location.root, detail=True)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise diagnose.classify(location, "list backups in", location.root, exc) or StorageError(
                f"cannot list backups in {location.url}: {type(exc).__name__}: {scrub(str(exc), location)}"
            ) from exc
        result = []
        for entry in entries:
            if entry.get("type") != "directory":
                continue
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            try:
                validate_backup_name(name)
            except ValueError:
                continue
            result.append(name)
        return sorted(result)

    def names(self) -> list[str]:
        """Names of the complete backups (their ``meta/backup_meta.json`` is there), sorted.

        Only the marker is checked: a backup whose meta files cannot be read is named here too, but
        :meth:`summaries` leaves it out (and :meth:`problem` says why).
        """
        return [name for name in self.directory_names() if self.exists(name)]

    def summaries(self) -> BackupList:
        """A summary of every complete backup that can be read, by name.

        A backup whose meta files cannot be read is left out with a ``logging`` warning naming its
        directory and the reason, instead of failing the whole listing.
        """
        result = BackupList()
        for name in self.names():
            try:
                result.append(self.summary(name))
            except BackupNotFoundError:  # deleted while we listed
                continue
            except ManifestError as exc:
                log.warning(
                    "skipping backup directory %s in %s: %s",
                    printable(name),
                    self.location.url,
                    printable(scrub(str(exc), self.location)),
                )
        return result

    def problem(self, name: str) -> str | None:
        """Why backup ``name`` cannot be read (empty, invalid or foreign meta files), or None if it can.

        None too when there is no complete backup of that name (see :meth:`exists`).
        """
        try:
            self.summary(name)
        except BackupNotFoundError:
            return None
        except ManifestError as exc:
            return scrub(str(exc), self.location)
        return None

    def read(self, name: str) -> BackupInfo:
        """The full description of backup ``name``.

        Raises :class:`BackupNotFoundError`, or, when the root itself is missing or cannot be read, the
        :class:`StorageError` that says why (:meth:`StorageLocation.check_listable`).
        """
        if not self.exists(name):
            self.not_found(name)
        files: dict[str, bytes] = {}
        # full_meta.json is authoritative; the level files are only needed for backups without it.
        for file in (FULL_META, BACKUP_META, *FILE_ORDER):
            if file in files or (FULL_META in files and file != BACKUP_META):
                continue
            try:
                files[file] = self.location.read_bytes(self.meta_path(name, file))
            except FileNotFoundError:
                continue
        return decode_backup(files)

    def not_found(self, name: str) -> NoReturn:
        """Raise why backup ``name`` is not there: the root's problem if it has one, else
        :class:`BackupNotFoundError`."""
        self.location.check_listable()
        raise BackupNotFoundError(name, self.location.url)

    def read_library_meta(self, name: str) -> LibraryMeta | None:
        """Our own record of backup ``name``, or None for backups made by the Go tool."""
        try:
            data = self.location.read_bytes(self.meta_path(name, LIBRARY_META_FILE))
        except FileNotFoundError:
            return None
        return LibraryMeta.from_json(data, f"{name}/meta/{LIBRARY_META_FILE}")

    def summary(self, name: str) -> BackupSummary:
        """A summary line for backup ``name``, named after its directory (never the manifest's ``name``).

        Raises :class:`BackupNotFoundError` and, for meta files it cannot read, :class:`ManifestError`.
        """
        info = self.read(name)
        lib = self.read_library_meta(name)
        created: dt.datetime | None = None
        if lib and lib.created_at:
            try:
                created = dt.datetime.fromisoformat(lib.created_at)
            except ValueError:
                created = None
        if created is None:
            seconds = max((c.backup_physical_timestamp for c in info.collection_backups), default=0)
            try:
                created = dt.datetime.fromtimestamp(seconds, dt.timezone.utc) if seconds else None
            except (OverflowError, OSError, ValueError):  # a corrupt timestamp: unknown, not fatal
                created = None
        return BackupSummary(
            name=name,
            size=info.size,
            collection_count=len(info.collection_backups),
            milvus_version=info.milvus_version,
            created_at=created,
            collections=tuple(c.qualified_name for c in info.collection_backups),
            base=lib.base if lib else "",
            self_contained=lib.self_contained if lib else True,
            reused_files=len(lib.references) if lib else 0,
            reused_bytes=sum(lib.files.get(key, 0) for key in lib.references) if lib else 0,
            strategy=lib.strategy if lib else "",
        )

    # writes
    def write_manifest(self, info: BackupInfo, library_meta: LibraryMeta) -> None:
        """Write our record and the upstream meta files, ``backup_meta.json`` last."""
        encoded = encode_backup(info)
        marker = self.location.join(ROOT_MARKER)
        if not self.location.exists(marker):
            self.location.write_bytes(marker, b"backups of milvus_backup_lib and milvus-backup live here\n")
        before = {LIBRARY_META_FILE: library_meta.to_json()}
        before.update((file, encoded[file]) for file in FILE_ORDER if file != BACKUP_META)
        # The others at once (one round trip, not five, to an object store), then the marker alone.
        with ThreadPoolExecutor(max_workers=len(before), thread_name_prefix="meta") as pool:
            writes = [
                pool.submit(self.location.write_bytes, self.meta_path(info.name, file), data)
                for file, data in before.items()
            ]
            for write in writes:
                write.result()
        self.location.write_bytes(self.meta_path(info.name, BACKUP_META), encoded[BACKUP_META])

    def delete(self, name: str, *, stale_after: float = DEFAULT_STALE_AFTER) -> DeleteReport:
        """Delete backup ``name`` (the caller holds its lock): mark and sweep under the repository lock,
        keeping the files other backups reference (:func:`milvus_backup_lib.repository.deletion.remove`)."""
        from milvus_backup_lib.repository import deletion  # deletion builds on this module

        return deletion.remove(self, name, stale_after=stale_after)

    def delete_stored(self, name: str, *, stale_after: float = DEFAULT_STALE_AFTER) -> DeleteReport:
        """Delete backup ``name`` or whatever an unfinished one left, under the writer's lock on the name.

        Raises :class:`BackupNotFoundError` if nothing is stored under that name (or only a husk), and
        :class:`BackupLockedError` while a writer holds the lock.
        """
        from milvus_backup_lib.repository import deletion  # deletion builds on this module

        return deletion.delete_backup(self, name, stale_after=stale_after)

    def remove_all(self, name: str) -> None:
        """Remove whatever is stored under ``{root}/{name}/`` (a failed, unlisted backup)."""
        self.location.remove_tree(self.backup_dir(name))
