"""The Go tool's command lines, v0.5 and HEAD spellings, without a server: what each maps to, the notes,
the combinations refused with exit code 2, ``get -d``, ``list -c``, and hints that name flags.

The same command lines against a real Milvus are in ``tests/integration/test_cli.py``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_logging import logging_restored
from manifests import backup, collection, index, partition, pk_field, schema, segment, vector_field
from milvus_backup_lib.cli import main
from milvus_backup_lib.cli.legacy import create_selection, create_strategy, restore_sources_filter
from milvus_backup_lib.cli.output import CommandLineError, cli_message, one_line
from milvus_backup_lib.cli.parser import build_parser
from milvus_backup_lib.cli.restore_extras import AutoIndexPlanner, auto_index_params
from milvus_backup_lib.errors import BackupExistsError, RestorePlanError
from milvus_backup_lib.manifest.codec import encode_backup
from milvus_backup_lib.options import BackupStrategy
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.restore.plan import CreateIndex, TargetState


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    with logging_restored():
        yield


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


class Notes(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


# --- create: -c, -d, -a, -f, --meta_only -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected", "note"),
    [
        (
            ("-c", "c1, db2.c2"),
            "c1,db2.c2",
            '-c/--colls is the v0.5 spelling of --filter (here: --filter "c1,db2.c2")',
        ),
        (("--colls", "c1"), "c1", "-c/--colls is the v0.5 spelling of --filter"),
        (
            ("-d", "db1,db2"),
            "db1.*,db2.*",
            '-d/--databases is the v0.5 spelling of --filter (here: --filter "db1.*,db2.*")',
        ),
        (
            ("-a", '{"db1": ["c1", "c2"], "db2": []}'),
            "db1.c1,db1.c2,db2.*",
            "-a/--database_collections is the v0.5 spelling of --filter",
        ),
    ],
)
def test_create_v05_selections_map_to_filter(argv: tuple[str, ...], expected: str, note: str) -> None:
    notes = Notes()
    assert create_selection(parse("create", *argv), notes) == expected
    (line,) = notes
    assert line.startswith(note)


def test_create_selection_precedence_is_the_go_tools() -> None:
    # cmd/create/create.go toFilter: --filter, then -a, then -c, then -d
    notes = Notes()
    assert create_selection(parse("create", "--filter", "x", "-c", "c1", "-d", "db"), notes) == "x"
    assert notes == [
        "-c/--colls is ignored: --filter wins, as in the Go tool",
        "-d/--databases is ignored: --filter wins, as in the Go tool",
    ]
    notes = Notes()
    assert create_selection(parse("create", "-c", "c1", "-a", '{"d": []}'), notes) == "d.*"
    assert notes[1] == "-c/--colls is ignored: -a/--database_collections wins, as in the Go tool"
    assert create_selection(parse("create"), Notes()) is None


@pytest.mark.parametrize("text", ["not json", "[1]", '{"db": "c1"}', '{"db": [1]}'])
def test_create_database_collections_must_be_the_go_json(text: str) -> None:
    with pytest.raises(CommandLineError, match=r"^-a/--database_collections: expected JSON like"):
        create_selection(parse("create", "-a", text), Notes())


@pytest.mark.parametrize(
    ("argv", "strategy", "notes"),
    [
        (("-f",), BackupStrategy.SKIP_FLUSH, ["-f/--force is the v0.5 spelling of --strategy skip_flush"]),
        (
            ("--meta_only",),
            BackupStrategy.META_ONLY,
            ["--meta_only is the v0.5 spelling of --strategy meta_only (for create)"],
        ),
        (("-f", "--meta_only"), BackupStrategy.SKIP_FLUSH, None),  # Go: force before meta_only
        (("--strategy", "meta_only", "-f"), BackupStrategy.META_ONLY, None),  # --strategy wins
        (("--strategy", "bulk_flush"), BackupStrategy.SERIAL_FLUSH, []),
        (("--strategy", "auto"), BackupStrategy.SERIAL_FLUSH, []),
    ],
)
def test_create_strategy(argv: tuple[str, ...], strategy: BackupStrategy, notes: list[str] | None) -> None:
    got = Notes()
    assert create_strategy(parse("create", *argv), got) is strategy
    if notes is not None:
        assert got == notes


# --- restore: refused combinations, v0.5 selections ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("-s", "_bak", "-r", "c1:c2"), "-s/--suffix and -r/--rename cannot be used together"),
        (
            ("--drop_exist_collection", "--skip_create_collection"),
            "--drop_exist_collection and --skip_create_collection cannot be used together",
        ),
        (("--filter", "c1", "-c", "c1"), "--filter and -c/--collections cannot be used together"),
        (("-c", "c1", "-d", "db"), "-c/--collections and -d/--databases cannot be used together"),
        (("-d", "db", "-a", "{}"), "-d/--databases and -a/--database_collections cannot be used together"),
        (("-a", "nope"), "-a/--database_collections: expected JSON like"),
    ],
)
def test_restore_refuses_what_go_refuses(
    argv: tuple[str, ...],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no config file: the flags are refused before it is looked for
    assert main(["restore", "-n", "b", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {message}") and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""


def test_restore_v05_selections_are_source_names() -> None:
    notes = Notes()
    assert restore_sources_filter(parse("restore", "-n", "b", "-c", "c1,db.c2"), notes) == "c1,db.c2"
    assert notes[0].startswith(
        "-c/--collections is the v0.5 spelling of --filter; it selects backed-up names"
    )
    assert restore_sources_filter(parse("restore", "-n", "b", "-d", "db1"), Notes()) == "db1.*"
    assert restore_sources_filter(parse("restore", "-n", "b", "-a", '{"db1": ["c"]}'), Notes()) == "db1.c"
    assert restore_sources_filter(parse("restore", "-n", "b"), Notes()) is None


# --- --use_auto_index ----------------------------------------------------------------------------------


def test_auto_index_params_keep_the_metric_type() -> None:
    assert auto_index_params([("index_type", "HNSW"), ("metric_type", "IP"), ("M", "8")]) == (
        ("index_type", "AUTOINDEX"),
        ("metric_type", "IP"),
    )
    nested = [("index_type", "IVF_FLAT"), ("params", json.dumps({"nlist": 8, "metric_type": "COSINE"}))]
    assert dict(auto_index_params(nested)) == {"index_type": "AUTOINDEX", "metric_type": "COSINE"}
    assert auto_index_params([("index_type", "FLAT")]) == (("index_type", "AUTOINDEX"),)


def test_auto_index_planner_rewrites_vector_indexes_only() -> None:
    fields = (pk_field(), vector_field(), vector_field(102, "vec2"))
    coll = collection(
        "c1",
        partition(1, segment(11, 1, 10)),
        schema=schema("c1", *fields),
        index_infos=(
            index("vec", "HNSW", {"index_type": "HNSW", "metric_type": "L2", "M": "8"}),
            index("vec2", "IVF_FLAT", {"index_type": "IVF_FLAT", "metric_type": "IP", "nlist": "4"}),
            index("pk", "STL_SORT", {"index_type": "STL_SORT"}),
        ),
    )
    plan = AutoIndexPlanner().plan(backup(coll), RestoreOptions(suffix="_x"), TargetState.empty())
    indexes = {s.field_name: dict(s.params) for s in plan.steps if isinstance(s, CreateIndex)}
    assert indexes == {
        "vec": {"index_type": "AUTOINDEX", "metric_type": "L2"},
        "vec2": {"index_type": "AUTOINDEX", "metric_type": "IP"},
        "pk": {"index_type": "STL_SORT"},
    }


# --- hints in the vocabulary of the command line --------------------------------------------------------


@pytest.mark.parametrize(
    ("library", "cli"),
    [
        (
            "collection default.c (from default.c) already exists on the target; set drop_existing or skip_create",
            "collection default.c (from default.c) already exists on the target; pass --drop_exist_collection"
            " or --skip_create_collection",
        ),
        (
            "an unfinished backup of that name is stored there (an interrupted run?): pass resume=True to"
            " finish it, or delete_backup() to remove it",
            "an unfinished backup of that name is stored there (an interrupted run?): pass --resume to finish"
            " it, or run delete -n nightly to remove it",
        ),
        (
            "drop_existing and skip_create cannot be used together",
            "--drop_exist_collection and --skip_create_collection cannot be used together",
        ),
        (
            "not loaded: no index on vector field(s) vec (rebuild_indexes is off)",
            "not loaded: no index on vector field(s) vec (--no-rebuild-index was given)",
        ),
        (
            "backup 'b' holds no users, roles or grants: made without rbac=True",
            "backup 'b' holds no users, roles or grants: made without create --rbac",
        ),
        (
            "backup nightly failed; its partial files are kept for resume=True",
            "backup nightly failed; its partial files are kept for create --resume",
        ),
        (
            "alias a1 in database default already points to default.c, not default.c_bak",
            "alias a1 in database default already points to default.c, not default.c_bak; pass --no-aliases to"
            " restore without the backed-up aliases",
        ),
    ],
)
def test_library_hints_are_rewritten_into_flags(library: str, cli: str) -> None:
    assert cli_message(library, "nightly") == cli


def test_one_line_names_flags() -> None:
    refused = RestorePlanError(
        [
            "collection default.c already exists on the target; set drop_existing or skip_create",
            "alias a in database default already points to default.c, not default.c_bak",
        ]
    )
    line = one_line(refused, "b")
    assert line.startswith("restore refused, nothing was changed: collection default.c already exists")
    assert "pass --drop_exist_collection or --skip_create_collection; alias a in database" in line
    assert line.endswith("pass --no-aliases to restore without the backed-up aliases")
    exists = BackupExistsError(
        "b", "file:///x", "pass resume=True to finish it, or delete_backup() to remove it"
    )
    assert "pass --resume to finish it, or run delete -n b to remove it" in one_line(exists, "b")
    assert "delete -n NAME" in cli_message("or delete_backup() to remove it")


# --- get -d, list -c, against a local backup root (no Milvus needed) ---------------------------------------


def _local_config(tmp_path: Path) -> Path:
    milvus_root, backup_root = tmp_path / "milvus", tmp_path / "backups"
    milvus_root.mkdir()
    config = tmp_path / "backup.yaml"
    config.write_text(
        "configVersion: v2\n"
        f"milvus:\n  storage:\n    provider: local\n    rootPath: {milvus_root}\n"
        f"backup:\n  storage:\n    provider: local\n    rootPath: {backup_root}\n"
    )
    return config


def _store(tmp_path: Path, name: str, *collections: str) -> None:
    info = backup(
        *(
            collection(c, partition(1, segment(10 + i, 1, 5)), collection_id=100 + i)
            for i, c in enumerate(collections)
        ),
        name=name,
    )
    meta = tmp_path / "backups" / name / "meta"
    meta.mkdir(parents=True)
    for file, data in encode_backup(info).items():
        (meta / file).write_bytes(data)


def test_get_detail_prints_the_go_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _local_config(tmp_path)
    _store(tmp_path, "nightly", "c1")
    monkeypatch.chdir(tmp_path)
    assert main(["get", "-n", "nightly", "-d"]) == 0
    captured = capsys.readouterr()
    full = json.loads(captured.out)
    assert full == json.loads((tmp_path / "backups/nightly/meta/full_meta.json").read_text())
    assert full["name"] == "nightly"
    assert full["collection_backups"][0]["collection_name"] == "c1"
    assert captured.out.startswith('{\n    "')  # MarshalIndent(..., "", "    ")
    assert captured.err == (
        "note: -d/--detail is a v0.5 flag (Go 0.6 removed it): the full description in the Go tool's JSON\n"
    )
    assert main(["--config", str(config), "get", "-n", "nightly", "--detail", "-q"]) == 0
    assert capsys.readouterr().err == ""  # -q: no notes


def test_list_collection_filters_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _local_config(tmp_path)
    _store(tmp_path, "b1", "c1")
    _store(tmp_path, "b2", "c2")
    monkeypatch.chdir(tmp_path)
    assert main(["--json", "list", "-c", "c1"]) == 0
    captured = capsys.readouterr()
    assert [b["name"] for b in json.loads(captured.out)] == ["b1"]
    assert captured.err.startswith("note: -c/--collection is a v0.5 flag (Go 0.6 removed it)")
    assert "default.c1" in captured.err
    assert main(["--json", "list"]) == 0
    assert [b["name"] for b in json.loads(capsys.readouterr().out)] == ["b1", "b2"]


def test_create_format_snapshot_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["create", "--format", "snapshot"]) == 2
    assert capsys.readouterr().err.startswith("error: --format snapshot: snapshot-format backups")
