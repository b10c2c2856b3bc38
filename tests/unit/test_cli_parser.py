"""The command line without a server: parsing, the exit codes of what needs no Milvus, JSON output.

What the commands do against Milvus is tested in ``tests/integration/test_cli.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_logging import logging_restored
from milvus_backup_lib._version import __version__
from milvus_backup_lib.cli import main
from milvus_backup_lib.cli.commands import COMMANDS
from milvus_backup_lib.cli.legacy import create_strategy
from milvus_backup_lib.cli.output import to_jsonable
from milvus_backup_lib.cli.parser import Settings, build_parser, settings_from
from milvus_backup_lib.options import BackupStrategy, QualifiedName
from milvus_backup_lib.storage.location import StorageLocation


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    with logging_restored():
        yield


def test_every_command_of_the_parser_has_a_function() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    assert commands.choices is not None
    assert set(commands.choices) == set(COMMANDS)


def test_global_options_before_and_after_the_command() -> None:
    args = build_parser().parse_args(
        ["--set", "a=1", "-v", "list", "--set", "b=2", "-v", "--json", "-q", "--config", "x.yaml"]
    )
    assert args.command == "list"
    assert settings_from(args) == Settings(
        config="x.yaml", set_values=("a=1", "b=2"), json=True, verbose=2, quiet=True
    )
    assert settings_from(build_parser().parse_args(["list"])) == Settings(
        config=None, set_values=(), json=False, verbose=0, quiet=False
    )


def test_restore_flags_in_both_spellings() -> None:
    parser = build_parser()
    defaults = parser.parse_args(["restore", "-n", "b"])
    assert (defaults.rebuild_indexes, defaults.restore_aliases, defaults.dry_run) == (True, True, False)
    for underscore, dash in [
        ("--drop_exist_collection", "--drop-exist-collection"),
        ("--skip_create_collection", "--skip-create-collection"),
        ("--drop_exist_index", "--drop-exist-index"),
        ("--meta_only", "--meta-only"),
        ("--rebuild_index", "--rebuild-index"),
        ("--no_rebuild_index", "--no-rebuild-index"),
        ("--use_auto_index", "--use-auto-index"),
        ("--no_aliases", "--no-aliases"),
        ("--rbac", "--rbac"),
        ("--use_v2_restore", "--use-v2-restore"),
        ("--dry_run", "--dry-run"),
    ]:
        assert parser.parse_args(["restore", "-n", "b", underscore]) == parser.parse_args(
            ["restore", "-n", "b", dash]
        )
    args = parser.parse_args(["restore", "-n", "b", "--drop-exist-collection", "--no-rebuild-index"])
    assert args.drop_existing is True and args.rebuild_indexes is False


def test_restore_method_defaults_to_auto_and_lists_its_choices(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["restore", "-n", "b"]).method == "auto"
    assert parser.parse_args(["restore", "-n", "b", "--method", "insert"]).method == "insert"
    with pytest.raises(SystemExit):
        parser.parse_args(["restore", "-n", "b", "--method", "copy"])
    assert "choose from 'auto', 'import', 'insert'" in capsys.readouterr().err


def test_create_defaults() -> None:
    args = build_parser().parse_args(["create"])
    assert args.name is None and args.filter is None
    assert args.strategy is None  # as in the Go tool: unset means the default strategy
    assert create_strategy(args, print) is BackupStrategy.SERIAL_FLUSH
    assert (args.rbac, args.resume, args.format, args.backup_index_extra) == (False, False, "auto", False)


def test_every_go_head_flag_parses() -> None:
    """Go HEAD's flags of each command (cmd/create, cmd/restore, cmd/get, cmd/list, cmd/del)."""
    parser = build_parser()
    create = parser.parse_args(
        [
            "create",
            "-n",
            "b",
            "--filter",
            "c1",
            "--strategy",
            "bulk_flush",
            "--format",
            "binlog",
            "--backup_index_extra",
            "--rbac",
        ]
    )
    assert (create.strategy, create.format, create.backup_index_extra, create.rbac) == (
        "bulk_flush",
        "binlog",
        True,
        True,
    )
    restore = parser.parse_args(
        [
            "restore",
            "-n",
            "b",
            "--filter",
            "c1",
            "-s",
            "_x",
            "--rebuild_index",
            "--meta_only",
            "--use_auto_index",
            "--drop_exist_collection",
            "--drop_exist_index",
            "--rbac",
            "--use_v2_restore",
        ]
    )
    assert restore.use_auto_index and restore.drop_exist_index and restore.rbac and restore.use_v2_restore
    assert parser.parse_args(["get", "-n", "b"]).detail is False
    assert parser.parse_args(["delete", "-n", "b"]).name == "b"
    assert parser.parse_args(["list"]).collection is None
    # ours, beyond Go: an estimate before a backup, and the unfinished backups
    assert parser.parse_args(["create", "--dry_run"]).dry_run is True
    assert parser.parse_args(["list", "--all"]).all is True


def test_go_v05_flags_parse() -> None:
    parser = build_parser()
    create = parser.parse_args(["create", "-c", "c1,c2", "-d", "db1", "-a", "{}", "-f", "--meta_only"])
    assert (create.colls, create.databases, create.database_collections) == ("c1,c2", "db1", "{}")
    assert create.force and create.create_meta_only
    restore = parser.parse_args(["restore", "-n", "b", "-c", "c1", "-d", "db", "-a", "{}", "--restore_index"])
    assert (restore.collections, restore.databases, restore.database_collections) == ("c1", "db", "{}")
    assert restore.restore_index
    assert parser.parse_args(["get", "-n", "b", "-d"]).detail is True
    assert parser.parse_args(["list", "-c", "c1"]).collection == "c1"


def test_version_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"milvus-backup-lib {__version__}\n"


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err
        == "error: the following arguments are required: COMMAND (see 'milvus-backup-lib --help')\n"
    )


def test_no_config_file_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 2
    assert capsys.readouterr().err == (
        "error: no config file: pass --config FILE or put backup.yaml in the current directory\n"
    )


def test_to_jsonable() -> None:
    location = StorageLocation("memory://bucket/root", storage_options={"secret": "s3cr3t"})
    value = {
        ("db", "c1"): QualifiedName("db", "c1"),
        "when": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        "strategy": BackupStrategy.META_ONLY,
        "set": {"b", "a"},
        "bytes": b"\x01\xff",
        "where": location,
    }
    assert to_jsonable(value) == {
        "db.c1": "db.c1",
        "when": "2024-05-01T12:30:00+00:00",
        "strategy": "meta_only",
        "set": ["a", "b"],
        "bytes": "01ff",
        "where": location.url,
    }
    assert "s3cr3t" not in str(to_jsonable(value))
