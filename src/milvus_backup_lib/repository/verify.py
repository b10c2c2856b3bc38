"""Checking a stored backup against its own manifest: ``exists``, ``size`` or ``checksum``.

``exists`` and ``size`` cost one recursive listing of ``{name}/binlogs/``; ``checksum`` reads every
binlog and compares its MD5 with the one recorded when it was copied (``meta/milvus_backup_lib.json``).
A logical backup's Parquet files (``{name}/logical/``) are checked the same way, and at ``checksum``
level each file's row count (its Parquet footer) is compared with the one recorded.
The files an incremental backup references are checked where the backup that holds them stores them
(one more listing per holder), and reported with that backup's name.
Backups written by the Go tool record no checksums: they verify at size level, and the report says so.
"""

from __future__ import annotations

import enum
from concurrent.futures import ThreadPoolExecutor

import attrs

from milvus_backup_lib._html import html_table
from milvus_backup_lib.errors import InvalidOptionError, InvalidOptionTypeError, ManifestError, StorageError
from milvus_backup_lib.manifest.codec import (
    BACKUP_META,
    COLLECTION_META,
    FULL_META,
    PARTITION_META,
    SEGMENT_META,
)
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.repository.checksum import md5_of
from milvus_backup_lib.repository.holders import Holders
from milvus_backup_lib.repository.references import file_path
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.storage.layout import binlog_files
from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["LEVELS", "VerifyReport", "expected_files", "verify_backup"]

LEVELS = ("exists", "size", "checksum")
_UPSTREAM_META = (BACKUP_META, COLLECTION_META, PARTITION_META, SEGMENT_META, FULL_META)


class _Unread(enum.Enum):
    """The default of :func:`verify_backup`'s ``library``: not read by the caller (None is "no record")."""

    UNREAD = "unread"


@attrs.frozen(kw_only=True)
class VerifyReport:
    """What :func:`verify_backup` found. ``ok`` is true only when nothing is missing, short or corrupt."""

    name: str
    #: The level asked for, and the level actually applied (``size`` when no checksums are recorded).
    level: str
    level_applied: str
    files: int
    bytes: int
    missing: tuple[str, ...] = ()
    #: (path, recorded size, stored size)
    wrong_size: tuple[tuple[str, int, int], ...] = ()
    #: (path, recorded checksum, computed checksum)
    corrupt: tuple[tuple[str, str, str], ...] = ()
    #: Meta files missing or unreadable.
    meta_problems: tuple[str, ...] = ()
    note: str = ""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong_size or self.corrupt or self.meta_problems)

    def problems(self) -> list[str]:
        """One line per problem, naming the file."""
        lines = list(self.meta_problems)
        lines += [f"missing: {path}" for path in self.missing]
        lines += [
            f"{'short' if found < size else 'wrong size'}: {path} ({found} bytes, the manifest records {size})"
            for path, size, found in self.wrong_size
        ]
        lines += [f"corrupt: {path} ({found}, recorded {want})" for path, want, found in self.corrupt]
        return lines

    def summary(self) -> str:
        if self.ok:
            what = {"exists": "present", "size": "present with the recorded size"}.get(
                self.level_applied, "present with the recorded size and checksum"
            )
            return f"backup {self.name}: {self.files} file(s) checked, all {what}"
        bad = len(self.missing) + len(self.wrong_size) + len(self.corrupt)
        meta = f", {len(self.meta_problems)} meta problem(s)" if self.meta_problems else ""
        return f"backup {self.name}: {bad} of {self.files} file(s) missing or damaged{meta}"

    def table(self) -> str:
        lines = self.problems()
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join([*lines, self.summary()])

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        rows = [[line] for line in self.problems()] or [["no problems"]]
        import html

        return f"<p>{html.escape(self.summary())}</p>" + html_table(["problem"], rows)


def expected_files(info: BackupInfo) -> dict[str, int]:
    """Every binlog the manifest lists: backup-relative path -> recorded size."""
    return {f.key: f.size for f in binlog_files(info)}


def stored_files(location: StorageLocation, name: str, under: str = "binlogs") -> dict[str, int]:
    """Backup-relative path -> size of every object under ``{name}/{under}/`` (``binlogs``; a logical
    backup's Parquet files are under ``logical``)."""
    base = location.join(name).rstrip("/") + "/"
    found = location.list_files(location.join(name, under), fresh=True)
    return {(path[len(base) :] if path.startswith(base) else path): size for path, size in found.items()}


def _wrong_rows(
    location: StorageLocation, name: str, rows: dict[str, int], paths: list[str]
) -> list[tuple[str, str, str]]:
    """The Parquet files of a logical backup whose footer counts other rows than recorded (deepest level:
    the footers are read; files of a backup without the ``arrow`` extra are reported unreadable)."""
    from milvus_backup_lib.reader._arrow import arrow

    _, pq = arrow()
    out = []
    for path in paths:
        want = rows.get(path)
        try:
            with location.fs.open(location.join(name, path), "rb") as fh:
                found = int(pq.ParquetFile(fh).metadata.num_rows)
        except Exception as exc:  # not Parquet, truncated footer
            out.append((path, f"{want} rows", f"unreadable Parquet: {type(exc).__name__}"))
            continue
        if want is None or found != want:
            out.append((path, f"{want} rows", f"{found} rows"))
    return out


def _stored_with_references(
    location: StorageLocation, name: str, library: LibraryMeta | None
) -> dict[str, int]:
    """:func:`stored_files` of backup ``name``, its referenced files taken from their holders (one
    listing per holder)."""
    stored = stored_files(location, name)
    references = library.references if library is not None else {}
    by_holder: dict[str, list[str]] = {}
    for key, holder in references.items():
        by_holder.setdefault(holder, []).append(key)
        stored.pop(key, None)
    for holder, keys in by_holder.items():
        theirs = stored_files(location, holder)
        stored.update({key: theirs[key] for key in keys if key in theirs})
    return stored


def _shown(holders: Holders, path: str) -> str:
    """``path``, naming the backup that stores it when that is another one."""
    holder = holders.of_file(path)
    return path if holder == holders.name else f"{path} (stored by backup {holder})"


def verify_backup(
    repository: BackupRepository,
    name: str,
    level: str = "size",
    concurrency: int = 8,
    *,
    info: BackupInfo | None = None,
    library: LibraryMeta | _Unread | None = _Unread.UNREAD,
) -> VerifyReport:
    """Check backup ``name`` at ``level``; raises :class:`BackupNotFoundError` if it does not exist and
    :class:`InvalidOptionError` (a ``ValueError``) listing the levels for an unknown level. A manifest
    that cannot be read is reported, not raised.
    ``info`` is the manifest and ``library`` the library record (None: the backup has none) when the
    caller has just read them (they are not read again)."""
    if not isinstance(level, str):
        raise InvalidOptionTypeError("level", level, LEVELS)
    if level not in LEVELS:
        raise InvalidOptionError("level", level, LEVELS)
    location = repository.location
    if not repository.exists(name):
        repository.not_found(name)
    meta_problems = []
    missing_meta = []
    for file in _UPSTREAM_META:
        if not location.exists(repository.meta_path(name, file)):
            missing_meta.append(file)
    # Readers use full_meta.json and fall back to the level files; backups written since v0.3.1 (and
    # all of ours) have full_meta.json, so its absence is damage. Without the level files a backup with
    # full_meta.json still reads (hand-made and some older backups carry only the two), so those count
    # only when full_meta.json is missing too.
    if FULL_META in missing_meta:
        meta_problems += [f"missing: meta/{file}" for file in missing_meta]
    try:
        info = info if info is not None else repository.read(name)
    except ManifestError as exc:
        return VerifyReport(
            name=name,
            level=level,
            level_applied=level,
            files=0,
            bytes=0,
            meta_problems=(*meta_problems, f"unreadable manifest: {exc}"),
        )
    if isinstance(library, _Unread):
        try:
            library = repository.read_library_meta(name)
        except ManifestError as exc:
            library = None
            meta_problems.append(f"unreadable meta/milvus_backup_lib.json: {exc}")
    logical = library is not None and library.is_logical
    expected = dict(library.files) if library is not None and logical else expected_files(info)
    holders = Holders(name, library)
    if logical:
        stored = stored_files(location, name, "logical")
    else:
        stored = _stored_with_references(location, name, library)
    missing = tuple(sorted(_shown(holders, path) for path in expected if path not in stored))
    wrong_size: tuple[tuple[str, int, int], ...] = ()
    if level in ("size", "checksum"):
        wrong_size = tuple(
            (_shown(holders, path), size, stored[path])
            for path, size in sorted(expected.items())
            if path in stored and stored[path] != size
        )
    applied, note = level, ""
    corrupt: list[tuple[str, str, str]] = []
    if level == "checksum":
        recorded = library.checksums if library is not None else {}
        if not recorded:
            applied = "size"
            note = (
                "no checksums are recorded (a backup made by the Go tool or an older version): verified sizes"
            )
        else:
            damaged = {p for p in expected if p not in stored or stored[p] != expected[p]}
            to_read = [p for p in sorted(expected) if p not in damaged]
            for path in to_read:
                if path not in recorded:
                    corrupt.append((path, "none recorded", "-"))
            readable = [p for p in to_read if p in recorded]

            def compute(path: str) -> tuple[str, str | None]:
                # Always read: the recorded checksum is compared with the bytes, never with an MD5 the
                # store reports (which is what the recording may have come from).
                try:
                    where = file_path(repository, name, library, path)
                    return path, md5_of(location, where, size=expected[path])
                except StorageError as exc:
                    if isinstance(exc.__cause__, FileNotFoundError):  # vanished since the listing
                        return path, None
                    raise

            vanished = []
            with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="verify") as pool:
                for path, found in pool.map(compute, readable):
                    if found is None:
                        vanished.append(_shown(holders, path))
                    elif found != recorded[path]:
                        corrupt.append((_shown(holders, path), recorded[path], found))
            missing = tuple(sorted({*missing, *vanished}))
            if library is not None and logical:
                bad = {*missing, *(p for p, _, _ in corrupt)}
                corrupt += _wrong_rows(
                    location, name, library.file_rows(), [p for p in to_read if p not in bad]
                )
    return VerifyReport(
        name=name,
        level=level,
        level_applied=applied,
        files=len(expected),
        bytes=sum(expected.values()),
        missing=missing,
        wrong_size=wrong_size,
        corrupt=tuple(sorted(corrupt)),
        meta_problems=tuple(meta_problems),
        note=note,
    )
