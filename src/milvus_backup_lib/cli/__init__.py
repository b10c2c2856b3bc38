"""The command line: ``milvus-backup-lib`` (or ``python -m milvus_backup_lib``), a thin layer over BackupClient.

Commands and flags are those of the Go tool milvus-backup, reading the same ``backup.yaml`` (v1, or
``configVersion: v2``), so a script written for one runs with the other::

    milvus-backup-lib [--config backup.yaml] [--set KEY=VALUE]... [--json] [-v|-q] COMMAND ...

    create  -n NAME [--filter "db1.c1,c2,db2.*"] [--strategy serial_flush|skip_flush|meta_only]
            [--rbac] [--resume] [--dry_run]
            v0.5: -c/--colls, -d/--databases, -a/--database_collections JSON, -f/--force, --meta_only
    list    [--all: the unfinished backups too]   (v0.5: -c/--collection NAME)
    get     -n NAME [-d/--detail: the Go tool's full JSON]
    delete  -n NAME
    restore -n NAME [-s SUFFIX | -r "db1.c1:db2.c2,c3:c4,db3.*:db4.*"] [--filter ...]
            [--drop_exist_collection | --skip_create_collection] [--drop_exist_index] [--meta_only]
            [--rebuild_index | --no-rebuild-index] [--use_auto_index] [--no-aliases] [--rbac]
            [--use_v2_restore] [--dry_run]
            v0.5: -c/--collections, -d/--databases, -a/--database_collections JSON, --restore_index
    check   connect to Milvus, write/read/delete a probe object in both storages
    verify  -n NAME [--level exists|size|checksum]   (our own: every binlog of the manifest is in the backup)

A v0.5 spelling works as it did and prints one ``note:`` line naming today's spelling. The suffix is
appended as given (``-s _bak``: ``c1`` -> ``c1_bak``); ``-s`` and ``-r`` exclude each other, as in Go.
As in the Go tool, ``restore --filter`` selects by target name, after ``--suffix``/``--rename``.
Exit codes: 0 success, 1 failure (``error: <message>`` on stderr), 2 bad usage or configuration
(an unknown ``--set`` key among them, with the closest key named). Results go to stdout (``--json``: one
JSON document); progress, logs, notes and errors go to stderr. Messages name flags, not the Python
arguments the library's own messages name (``--drop_exist_collection``, not ``drop_existing``).

The modules: :mod:`~milvus_backup_lib.cli.parser` (commands and flags), :mod:`~milvus_backup_lib.cli.commands`
(one function per command), :mod:`~milvus_backup_lib.cli.legacy` (the v0.5 spellings),
:mod:`~milvus_backup_lib.cli.restore_extras` (``--use_auto_index``, ``--drop_exist_index``),
:mod:`~milvus_backup_lib.cli.output` (results, error lines, notes, the CLI vocabulary, exit codes) and
:mod:`~milvus_backup_lib.cli.progress` (progress bars or log lines, and the logging setup).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from milvus_backup_lib.cli.commands import COMMANDS, Context
from milvus_backup_lib.cli.output import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    USAGE_ERRORS,
    CommandLineError,
    Output,
    one_line,
)
from milvus_backup_lib.cli.parser import build_parser, settings_from
from milvus_backup_lib.cli.progress import configure_logging
from milvus_backup_lib.errors import MilvusBackupError

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 failure, 2 bad usage or config).

    ``argv`` defaults to ``sys.argv[1:]``. Output goes to ``sys.stdout``/``sys.stderr`` as they are when
    called. The logging setup of ``-v``/``-q`` (a handler on the root logger, levels) stays in place.
    """
    stdout, stderr = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed by _Parser.error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    settings = settings_from(args)
    configure_logging(settings, stderr)
    out = Output(settings, stdout, stderr)
    ctx = Context(args=args, settings=settings, out=out, stderr=stderr)
    name = getattr(args, "name", None)
    try:
        return COMMANDS[args.command](ctx)
    except CommandLineError as exc:
        out.error(str(exc))
        return EXIT_USAGE
    except USAGE_ERRORS as exc:
        out.error(one_line(exc, name))
        return EXIT_USAGE
    except MilvusBackupError as exc:
        # Not exc_info: a chained cause's message may quote a credential. The library's own messages
        # are scrubbed; of the cause only its type is shown.
        cause = exc.__cause__ or exc.__context__
        log.debug(
            "command failed: %s: %s (cause: %s)",
            type(exc).__name__,
            exc,
            type(cause).__name__ if cause else "-",
        )
        out.error(one_line(exc, name))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout went to a pipe whose reader quit (``| head``): stop quietly, as other tools do, and
        # keep Python from reporting the same error again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        return EXIT_FAILURE
