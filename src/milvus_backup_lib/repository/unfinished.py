"""Unfinished backups: directories of the backup root that hold objects but no ``meta/backup_meta.json``.

A backup that failed or was interrupted keeps what it wrote, for ``create_backup(name, resume=True)``;
one being written right now looks the same. None of them is a backup (neither tool lists them), so with
date-stamped names they pile up unseen: :func:`list_unfinished` shows them with
their size and age, and ``delete_backup(name)`` removes one.

The same listing names the damaged and foreign backups: those whose ``meta/backup_meta.json`` is
there but whose meta files cannot be read (empty or invalid after a power loss, a format this library
cannot read). ``list_backups`` leaves them out with a warning; here their :attr:`UnfinishedBackup.problem`
says why, and ``delete_backup(name)`` removes one too.

Husks (what a delete keeps because other backups reference it, marked by a tombstone:
:mod:`milvus_backup_lib.repository.deletion`) are neither: they are left out, and swept by every delete
and prune.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from milvus_backup_lib._html import format_bytes, html_block, html_heading, html_table, text_table
from milvus_backup_lib.errors import StorageError
from milvus_backup_lib.repository.store import BackupRepository
from milvus_backup_lib.retry import call_with_retries
from milvus_backup_lib.storage.location import scrub

__all__ = ["UNFINISHED", "UnfinishedBackup", "UnfinishedList", "list_unfinished", "modified_at"]

#: Where each fsspec store reports an object's last write: local disk and GCS ``mtime``, S3
#: ``LastModified``, Azure ``last_modified``; the memory store only ``created`` (it writes objects once).
_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")
_HEADERS = ("name", "size", "files", "last written", "age", "locked", "problem")
#: :attr:`UnfinishedBackup.problem` of a backup directory without ``meta/backup_meta.json``.
UNFINISHED = "unfinished: no meta/backup_meta.json"
_NUMERIC = frozenset({1, 2, 4})


@attrs.frozen(kw_only=True)
class UnfinishedBackup:
    """One line of :meth:`BackupClient.list_unfinished`: a backup directory without ``meta/backup_meta.json``,
    or one whose meta files cannot be read (damaged or foreign)."""

    name: str
    #: Bytes and objects stored under ``{root}/{name}/``.
    size: int
    files: int
    #: When the newest of those objects was written (UTC), where the store reports it; else None.
    last_modified: dt.datetime | None
    #: How long before the listing that was; None without ``last_modified``.
    age: dt.timedelta | None
    #: Whether the lock ``{root}/{name}.lock`` is there: a writer may be at work on it right now.
    locked: bool = False
    #: What is wrong: :data:`UNFINISHED` for a directory without ``meta/backup_meta.json``, otherwise
    #: why its meta files cannot be read (a damaged or foreign backup).
    problem: str = UNFINISHED

    @property
    def damaged(self) -> bool:
        """Whether ``meta/backup_meta.json`` is there but the meta files cannot be read."""
        return self.problem != UNFINISHED


def format_age(age: dt.timedelta | None) -> str:
    """``42 s``, ``5 min``, ``3 h``, ``2 d`` (whole units, rounded down); ``""`` for None."""
    if age is None:
        return ""
    seconds = max(0, int(age.total_seconds()))
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds // length} {unit}"
    return f"{seconds} s"


class UnfinishedList(list[UnfinishedBackup]):
    """What :meth:`BackupClient.list_unfinished` returns: a plain ``list`` of :class:`UnfinishedBackup`,
    which also renders as a table (:meth:`table`; ``_repr_html_`` in a notebook)."""

    __slots__ = ()

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                u.name,
                format_bytes(u.size),
                str(u.files),
                u.last_modified.isoformat(timespec="seconds") if u.last_modified else "",
                format_age(u.age),
                "yes" if u.locked else "",
                u.problem,
            )
            for u in self
        ]

    def table(self) -> str:
        """One line per unfinished backup: name, size, objects, last write, age, whether it is locked."""
        return f"{len(self)} unfinished backup(s)\n" + text_table(_HEADERS, self._rows(), numeric=_NUMERIC)

    def _repr_html_(self) -> str:
        return html_block(
            html_heading(f"{len(self)} unfinished backup(s)"),
            html_table(_HEADERS, self._rows(), numeric=_NUMERIC),
        )


def _as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, str):
        try:
            return _as_datetime(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def modified_at(details: Mapping[str, Any]) -> dt.datetime | None:
    """An object's last write time (UTC) from its fsspec listing entry; None where the store reports none."""
    for key in _TIME_KEYS:
        found = _as_datetime(details.get(key))
        if found is not None:
            return found
    return None


def list_unfinished(repository: BackupRepository, now: dt.datetime | None = None) -> UnfinishedList:
    """Every directory of the backup root that holds objects but no ``meta/backup_meta.json``, and every
    backup whose meta files cannot be read (damaged or foreign, with the reason in ``problem``), by name;
    husks of deleted backups aside.

    ``age`` is counted to ``now`` (default: the current time). One listing of the root, one existence
    check per directory, one read of each complete backup's meta files, and one recursive listing per
    unfinished or damaged backup.
    """
    location = repository.location
    now = now or dt.datetime.now(dt.timezone.utc)
    result = UnfinishedList()
    for name in repository.directory_names():
        problem = UNFINISHED
        if repository.exists(name):
            damage = repository.problem(name)
            if damage is None:
                continue
            problem = damage
        elif repository.is_husk(name):
            continue
        path = repository.backup_dir(name)
        try:
            found = call_with_retries(f"list {path}", location.find_files, path)
        except FileNotFoundError:
            continue
        except Exception as exc:
            raise StorageError(
                f"cannot list {path} in {location.url}: {type(exc).__name__}: {scrub(str(exc), location)}"
            ) from exc
        if not found:
            continue
        times = [t for t in map(modified_at, found.values()) if t is not None]
        newest = max(times, default=None)
        result.append(
            UnfinishedBackup(
                name=name,
                size=sum(int(d.get("size") or 0) for d in found.values()),
                files=len(found),
                last_modified=newest,
                age=now - newest if newest is not None else None,
                locked=location.exists(location.join(f"{name}.lock")),
                problem=problem,
            )
        )
    return result
