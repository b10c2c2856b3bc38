"""The Go tool's v0.5 spellings, mapped onto today's flags with a one-line note naming the new spelling.

Go v0.5.16 accepted them with a deprecation warning, Go 0.6 refuses them (``cmd/flags/removed.go``):
scripts written for v0.5 keep working here, and the note says what to write instead. The mappings
follow the Go sources: ``cmd/create/create.go`` (``toFilter``: ``--filter`` wins, then
``-a/--database_collections``, then ``-c/--colls``, then ``-d/--databases``; ``toStrategy``:
``--strategy`` wins, then ``-f/--force``, then ``--meta_only``) and ``cmd/restore/restore.go``
(``validate``: ``--filter`` and the three v0.5 selections exclude each other, as do ``-s`` and ``-r``;
the v0.5 selections are a *backup* filter, on backed-up names before renaming).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from milvus_backup_lib.cli.output import CommandLineError
from milvus_backup_lib.options import BackupStrategy

__all__ = ["Note", "create_selection", "create_strategy", "restore_sources_filter", "validate_restore"]

#: Prints one ``note: ...`` line on stderr.
Note = Callable[[str], None]


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _databases_filter(text: str) -> str:
    return ",".join(f"{db}.*" for db in _split(text))


def _database_collections_filter(flag: str, text: str) -> str:
    """``{"db1": ["c1", "c2"], "db2": []}`` -> ``db1.c1,db1.c2,db2.*`` (an empty list: the whole database)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(db, str) and isinstance(colls, list) and all(isinstance(c, str) for c in colls)
        for db, colls in value.items()
    ):
        raise CommandLineError(f'{flag}: expected JSON like {{"db1": ["c1", "c2"], "db2": []}}, got {text!r}')
    entries: list[str] = []
    for db, colls in value.items():
        if colls:
            entries.extend(f"{db}.{c}" for c in colls)
        else:
            entries.append(f"{db}.*")
    return ",".join(entries)


def create_selection(args: argparse.Namespace, note: Note) -> str | None:
    """The ``--filter`` of ``create``, from ``--filter`` or a v0.5 selection (``-c``, ``-d``, ``-a``)."""
    given: list[tuple[str, str | None, Callable[[str], str]]] = [
        ("--filter", args.filter, str),
        (
            "-a/--database_collections",
            args.database_collections,
            lambda text: _database_collections_filter("-a/--database_collections", text),
        ),
        ("-c/--colls", args.colls, lambda text: ",".join(_split(text))),
        ("-d/--databases", args.databases, _databases_filter),
    ]
    chosen: str | None = None
    chosen_flag = ""
    for flag, text, convert in given:
        if not text:
            continue
        if chosen is not None:
            note(f"{flag} is ignored: {chosen_flag} wins, as in the Go tool")
            continue
        chosen, chosen_flag = convert(text), flag
        if flag != "--filter":
            note(f'{flag} is the v0.5 spelling of --filter (here: --filter "{chosen}")')
    return chosen or None


def create_strategy(args: argparse.Namespace, note: Note) -> BackupStrategy:
    """The strategy of ``create``: ``--strategy``, else v0.5's ``-f/--force`` or ``--meta_only``."""
    if args.force:
        note("-f/--force is the v0.5 spelling of --strategy skip_flush")
    if args.create_meta_only:
        note("--meta_only is the v0.5 spelling of --strategy meta_only (for create)")
    if args.strategy is not None:
        if args.force or args.create_meta_only:
            note("--strategy wins over -f/--force and --meta_only, as in the Go tool")
        if args.strategy in ("auto", "bulk_flush"):
            return BackupStrategy.SERIAL_FLUSH
        return BackupStrategy(args.strategy)
    if args.force:
        return BackupStrategy.SKIP_FLUSH
    if args.create_meta_only:
        return BackupStrategy.META_ONLY
    return BackupStrategy.SERIAL_FLUSH


def validate_restore(args: argparse.Namespace) -> None:
    """Refuse the combinations the Go tool refuses (``cmd/restore/restore.go`` ``validate``): exit 2."""
    if args.suffix and args.rename:
        raise CommandLineError(
            "-s/--suffix and -r/--rename cannot be used together (as in the Go tool): put the new names"
            " in --rename"
        )
    if args.drop_existing and args.skip_create:
        raise CommandLineError(
            "--drop_exist_collection and --skip_create_collection cannot be used together: drop and"
            " create the target again, or restore into it as it is"
        )
    selections = [
        (flag, value)
        for flag, value in (
            ("--filter", args.filter),
            ("-c/--collections", args.collections),
            ("-d/--databases", args.databases),
            ("-a/--database_collections", args.database_collections),
        )
        if value
    ]
    if len(selections) > 1:
        raise CommandLineError(
            f"{selections[0][0]} and {selections[1][0]} cannot be used together (as in the Go tool)"
        )


def restore_sources_filter(args: argparse.Namespace, note: Note) -> str | None:
    """The backed-up (source) names a v0.5 selection of ``restore`` picks, as RestoreOptions.collections."""
    if args.collections:
        chosen = ",".join(_split(args.collections))
        flag = "-c/--collections"
    elif args.databases:
        chosen, flag = _databases_filter(args.databases), "-d/--databases"
    elif args.database_collections:
        flag = "-a/--database_collections"
        chosen = _database_collections_filter(flag, args.database_collections)
    else:
        return None
    note(
        f"{flag} is the v0.5 spelling of --filter; it selects backed-up names ({chosen}), before"
        " --suffix/--rename, where --filter selects the names restored to"
    )
    return chosen or None
