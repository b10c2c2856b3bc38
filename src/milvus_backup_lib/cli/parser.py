"""The argument parser of ``milvus-backup-lib``: commands, flags, and the global options merged.

The flags are those of the Go tool milvus-backup. Each command's name is in ``args.command``;
:data:`milvus_backup_lib.cli.commands.COMMANDS` maps it to the function that runs it.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

import attrs

from milvus_backup_lib._version import __version__
from milvus_backup_lib.cli.output import EXIT_USAGE
from milvus_backup_lib.milvus.gc import PauseGc
from milvus_backup_lib.options import BackupStrategy

__all__ = ["DEFAULT_CONFIG", "GO_ONLY_STRATEGIES", "PROG", "Settings", "build_parser", "settings_from"]

PROG = "milvus-backup-lib"
DEFAULT_CONFIG = "backup.yaml"
_VERIFY_LEVELS = ("exists", "size", "checksum")
#: ``create --strategy`` values of the Go tool that run as ``serial_flush`` here: ``auto`` (its default:
#: bulk_flush where the server has FlushAll, else serial_flush) and ``bulk_flush`` (one FlushAll for
#: every collection instead of one Flush each; the backed-up data is the same).
GO_ONLY_STRATEGIES = ("auto", "bulk_flush")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2), not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def _add_global_options(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    # The global options are accepted before and after the command, as cobra's persistent flags are.
    # After the command they land in separate ``*_sub`` attributes (or stay unset), because argparse
    # copies a subparser's defaults over the main parser's values.
    suffix = "_sub" if sub else ""
    default: Any = argparse.SUPPRESS if sub else None
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help=f"the Go tool's config file, v1 or configVersion v2 (default: ./{DEFAULT_CONFIG})",
    )
    group.add_argument(
        "--set",
        dest=f"set{suffix}",
        metavar="KEY=VALUE",
        action="append",
        default=default if sub else [],
        help="override a config key or a credential variable (repeatable); wins over env and file",
    )
    group.add_argument(
        "--json", action="store_true", default=default if sub else False, help="machine-readable output"
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest=f"verbose{suffix}",
        action="count",
        default=default if sub else 0,
        help="more log output: -v info, -vv debug, -vvv debug of every library used",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if sub else False,
        help="no progress, only errors",
    )


def pause_gc_choice(flag: str | None, configured: PauseGc) -> PauseGc:
    """``--pause_gc``'s value (``auto``, ``true``, ``false``) as ``pause_gc``; ``configured`` without it."""
    choices: dict[str, PauseGc] = {"auto": "auto", "true": True, "false": False}
    return configured if flag is None else choices[flag]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``milvus-backup-lib`` command."""
    parser = _Parser(
        prog=PROG,
        description="Back up and restore Milvus collections (milvus-backup v0.5 layout, any fsspec storage).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, sub=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_global_options(sub, sub=True)
        return sub

    def name_option(sub: argparse.ArgumentParser, *, required: bool = True) -> None:
        sub.add_argument("-n", "--name", required=required, help="the backup name")

    create = command("create", "back up collections")
    name_option(create, required=False)
    create.add_argument(
        "--filter",
        metavar="LIST",
        help='collections to back up: "db1.c1,c2,db2.*" (c2: default database; default: everything)',
    )
    create.add_argument(
        "--strategy",
        choices=[*(s.value for s in BackupStrategy), *GO_ONLY_STRATEGIES],
        default=None,
        help="serial_flush (default; also what auto and bulk_flush do here): flush, then back up;"
        " skip_flush: flushed data only; meta_only: no data; logical: rows read by query, as Parquet",
    )
    create.add_argument(
        "--format",
        choices=("auto", "binlog", "snapshot"),
        default="auto",
        help="binlog (the default, auto); snapshot (Milvus 3.0) is not supported",
    )
    create.add_argument(
        "--backup_index_extra",
        "--backup-index-extra",
        dest="backup_index_extra",
        action="store_true",
        help="accepted; index extra info is not recorded (only secondary restore needs it)",
    )
    create.add_argument(
        "--rbac", action="store_true", help="also back up users (without passwords), roles and grants"
    )
    create.add_argument(
        "--pause_gc",
        "--pause-gc",
        dest="pause_gc",
        choices=("auto", "true", "false"),
        default=None,
        help="pause Milvus's garbage collection while copying: auto (default; a server that cannot"
        " pause it is a warning, recorded in the backup), true (fail instead), false (never pause);"
        " the management URL is backup.gcPause.address in the config file",
    )
    create.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted backup of this name (copies only what is missing)",
    )
    create.add_argument(
        "--dry_run",
        "--dry-run",
        dest="dry_run",
        action="store_true",
        help="print what would be backed up (collections, segments, files, bytes); copy nothing",
    )
    create.add_argument(
        "--base",
        metavar="NAME",
        default=None,
        help="incremental backup: reference the segment directories backup NAME already stores instead of"
        " copying them; 'latest' = the newest complete backup of the same Milvus storage and root",
    )
    create.add_argument(
        "--self_contained",
        "--self-contained",
        dest="self_contained",
        action="store_true",
        help="with --base: copy the reused files from the base's store, so the Go tool can read the backup",
    )
    v05 = create.add_argument_group("v0.5 spellings (accepted, with a note naming the new one)")
    v05.add_argument("-c", "--colls", metavar="LIST", help="= --filter LIST")
    v05.add_argument("-d", "--databases", metavar="DBS", help='= --filter "db1.*,db2.*"')
    v05.add_argument(
        "-a",
        "--database_collections",
        metavar="JSON",
        help='= --filter; JSON {"db1": ["c1"], "db2": []} (an empty list: every collection of db2)',
    )
    v05.add_argument("-f", "--force", action="store_true", help="= --strategy skip_flush")
    v05.add_argument(
        "--meta_only", dest="create_meta_only", action="store_true", help="= --strategy meta_only"
    )

    listing = command("list", "list the complete backups")
    listing.add_argument(
        "--all",
        dest="all",
        action="store_true",
        help="also the unfinished backups (failed, interrupted or being written), with size and age",
    )
    listing.add_argument(
        "-c",
        "--collection",
        metavar="NAME",
        help="v0.5: only the backups that hold this collection (db.coll or coll)",
    )

    get = command("get", "describe one backup")
    name_option(get)
    get.add_argument(
        "-d",
        "--detail",
        action="store_true",
        help="the full description as JSON, in the Go tool's format (the meta file full_meta.json)",
    )

    name_option(command("delete", "delete one backup (the files other backups reference stay)"))
    materialize = command(
        "materialize", "make an incremental backup self-contained (copy what it references)"
    )
    name_option(materialize, required=False)
    materialize.add_argument("backup", nargs="?", metavar="NAME", help="the backup name (or -n NAME)")

    restore = command("restore", "restore a backup into the Milvus of the config")
    name_option(restore)
    _add_restore_options(restore)

    command("check", "check the connection to Milvus and access to both storages")

    verify = command("verify", "check that every binlog of a backup is in the backup storage")
    name_option(verify)
    verify.add_argument(
        "--level",
        choices=_VERIFY_LEVELS,
        default="size",
        help="exists: each file is there; size (default): with the size the manifest records;"
        " checksum: read every file and compare its MD5 (backups made by this tool)",
    )
    _add_prune_options(
        command("prune", "remove the backups a retention policy does not keep (restic's forget)")
    )
    return parser


def _keep_count(value: str) -> int:
    if value.strip().lower() == "unlimited":
        return -1
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number >= 0 or 'unlimited', not {value!r}"
        ) from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 or 'unlimited', not {value!r}")
    return count


def _add_prune_options(prune: argparse.ArgumentParser) -> None:
    for unit, what in (
        ("last", "the N newest backups"),
        ("hourly", "the newest backup of each of the N newest hours that hold one"),
        ("daily", "the newest backup of each of the N newest days"),
        ("weekly", "the newest backup of each of the N newest ISO weeks"),
        ("monthly", "the newest backup of each of the N newest months"),
        ("yearly", "the newest backup of each of the N newest years"),
    ):
        prune.add_argument(
            f"--keep-{unit}",
            f"--keep_{unit}",
            dest=f"keep_{unit}",
            metavar="N",
            type=_keep_count,
            help=f"keep {what}" + ("" if unit == "last" else " (local time)") + " ('unlimited': every one)",
        )
    prune.add_argument(
        "--keep-within",
        "--keep_within",
        dest="keep_within",
        metavar="DURATION",
        help="keep every backup made within DURATION of the newest one: 7d, 12h, 1y6m (y, m months, d, h)",
    )
    prune.add_argument(
        "--unfinished-older-than",
        "--unfinished_older_than",
        dest="unfinished_older_than",
        metavar="DURATION",
        help="also remove the unfinished backups last written longer ago than DURATION (2d, 36h)",
    )
    prune.add_argument(
        "--dry_run",
        "--dry-run",
        dest="dry_run",
        action="store_true",
        help="print what would be kept and removed, and why; remove nothing",
    )


def _add_restore_options(restore: argparse.ArgumentParser) -> None:
    restore.add_argument(
        "-s", "--suffix", default="", help="restore c1 as c1SUFFIX (appended as given: -s _bak gives c1_bak)"
    )
    restore.add_argument(
        "-r", "--rename", metavar="MAP", help='target names: "db1.c1:db2.c2,c3:c4,db3.*:db4.*"'
    )
    restore.add_argument(
        "--filter",
        metavar="LIST",
        help='collections to restore, by target name (after renaming): "db1.c1,c2,db2.*"',
    )

    def flag(*names: str, dest: str, help_text: str, **kwargs: Any) -> None:
        spellings = [names[0], *names[1:]]
        for name in names:
            if "_" in name:
                spellings.append(name.replace("_", "-"))
        restore.add_argument(*dict.fromkeys(spellings), dest=dest, help=help_text, **kwargs)

    flag(
        "--drop_exist_collection",
        dest="drop_existing",
        action="store_true",
        help_text="drop a target collection that exists, then create it again",
    )
    flag(
        "--skip_create_collection",
        dest="skip_create",
        action="store_true",
        help_text="import into target collections that already exist",
    )
    flag(
        "--drop_exist_index",
        dest="drop_exist_index",
        action="store_true",
        help_text="drop the indexes of each target collection before its indexes are created",
    )
    flag(
        "--meta_only",
        dest="meta_only",
        action="store_true",
        help_text="schema, partitions, indexes and aliases only",
    )
    flag(
        "--rebuild_index",
        dest="rebuild_indexes",
        action="store_true",
        default=True,
        help_text="create the backed-up indexes (the default here; the Go tool's default is off)",
    )
    flag(
        "--no_rebuild_index",
        dest="rebuild_indexes",
        action="store_false",
        help_text="create no index (the collections cannot be loaded then)",
    )
    flag(
        "--use_auto_index",
        dest="use_auto_index",
        action="store_true",
        help_text="create vector indexes as AUTOINDEX with their backed-up metric type",
    )
    flag(
        "--no_aliases",
        dest="restore_aliases",
        action="store_false",
        help_text="do not create the backed-up aliases (needed when they still point to the originals)",
    )
    flag(
        "--rbac",
        dest="rbac",
        action="store_true",
        help_text="then restore the users (those without a password are skipped), roles and grants",
    )
    flag(
        "--use_v2_restore",
        dest="use_v2_restore",
        action="store_true",
        help_text="accepted: on Milvus 2.4+ an import job always carries several segments "
        "(restore.maxSegmentsPerImportJob)",
    )
    flag("--dry_run", dest="dry_run", action="store_true", help_text="print the plan, change nothing")
    flag(
        "--keep_partial",
        dest="keep_partial",
        action="store_true",
        help_text="on failure keep the collections this restore created and did not finish (default: drop them)",
    )
    restore.add_argument(
        "--method",
        choices=("auto", "import", "insert"),
        default="auto",
        help="how rows reach the target: bulk import of the binlogs, inserts through the reader, "
        "or auto (import when the server can, else insert; the plan says why)",
    )
    v05 = restore.add_argument_group("v0.5 spellings (accepted, with a note naming the new one)")
    v05.add_argument(
        "-c", "--collections", metavar="LIST", help="backed-up collections to restore (source names)"
    )
    v05.add_argument("-d", "--databases", metavar="DBS", help="backed-up databases to restore")
    v05.add_argument(
        "-a",
        "--database_collections",
        metavar="JSON",
        help='backed-up collections to restore: {"db1": ["c1"], "db2": []}',
    )
    v05.add_argument("--restore_index", dest="restore_index", action="store_true", help="= --rebuild_index")


@attrs.frozen
class Settings:
    """The global options, merged from before and after the command."""

    config: str | None
    set_values: tuple[str, ...]
    json: bool
    verbose: int
    quiet: bool


def settings_from(args: argparse.Namespace) -> Settings:
    """The global options of parsed ``args``, wherever on the command line they were given."""
    return Settings(
        config=args.config,
        set_values=(*args.set, *getattr(args, "set_sub", ())),
        json=args.json,
        verbose=args.verbose + getattr(args, "verbose_sub", 0),
        quiet=args.quiet,
    )
