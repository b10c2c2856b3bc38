"""The command line against the session's Milvus 2.3.5, with a ``backup.yaml`` in the Go tool's format (v2,
and v1 for the same storages), as a user would run it; rows that arrive in Milvus are counted with pymilvus.

Most tests call :func:`milvus_backup_lib.cli.main` in this process (``run``/``ok``/``run_json``), with
stdout and stderr captured, the current directory and the config's environment variables set for the
call only, and the logging set up by ``-v``/``-q`` undone afterwards. What needs a real process runs one
(``process=True``, or on a pseudo-terminal): the console script and ``python -m milvus_backup_lib``,
the backup the module's tests share and a ``list`` of it, the progress bars on a terminal, and the log
lines when stderr is not a terminal.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from dataset import build_small, client, ensure_loaded
from pymilvus import DataType

from cli_logging import logging_restored
from milvus_backup_lib.cli import main
from milvus_backup_lib.testing.embedded import EmbeddedMilvus

pytestmark = pytest.mark.integration

#: Environment variables the config reader consults: a developer's own settings must not leak in.
_CONFIG_ENV_PREFIXES = ("MILVUS_", "MINIO_", "BACKUP_", "GCP_KEY_JSON", "ZILLIZ_")


@attrs.frozen
class CliEnv:
    server: EmbeddedMilvus
    coll: str
    rows: int  # rows left after the deletes
    work: Path  # holds backup.yaml (v2) and backup_v1.yaml
    backup_root: Path

    @property
    def v1_config(self) -> Path:
        return self.work / "backup_v1.yaml"


def _v2_config(server: EmbeddedMilvus, backup_root: Path) -> str:
    return f"""\
configVersion: v2
milvus:
  grpc:
    address: 127.0.0.1
    port: {server.port}
  management:
    endpoint: {server.management_url}
  storage:
    provider: local
    rootPath: {server.data_dir}
backup:
  storage:
    provider: local
    rootPath: {backup_root}
"""


def _v1_config(server: EmbeddedMilvus, backup_root: Path) -> str:
    return f"""\
milvus:
  address: 127.0.0.1
  port: {server.port}
minio:
  storageType: local
  rootPath: {server.data_dir}
  backupStorageType: local
  backupRootPath: {backup_root}
backup:
  gcPause:
    address: {server.management_url}
"""


@pytest.fixture(scope="module")
def env(milvus_server: EmbeddedMilvus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliEnv]:
    coll = f"cli_{uuid.uuid4().hex[:8]}"
    rows, deleted = build_small(milvus_server.uri, coll)
    c = client(milvus_server.uri)
    index = c.prepare_index_params()
    index.add_index("vec", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 16})
    c.create_index(coll, index)
    c.close()
    work = tmp_path_factory.mktemp("cli")
    backup_root = work / "backups"
    backup_root.mkdir()
    (work / "backup.yaml").write_text(_v2_config(milvus_server, backup_root))
    (work / "backup_v1.yaml").write_text(_v1_config(milvus_server, backup_root))
    yield CliEnv(milvus_server, coll, rows - len(deleted), work, backup_root)
    c = client(milvus_server.uri)
    c.drop_collection(coll)
    c.close()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_ENV_PREFIXES)}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "milvus_backup_lib", *args]


@attrs.frozen
class Result:
    """What a run of the command line returned and printed (as :class:`subprocess.CompletedProcess`)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(env: CliEnv, *args: str, cwd: Path | None = None, process: bool = False) -> Result:
    """Run the command line in ``cwd`` (default: the directory with ``backup.yaml``), with none of the
    config's environment variables: ``main(args)`` in this process, or with ``process`` a real one."""
    if process:
        done = subprocess.run(
            _command(*args),
            cwd=cwd or env.work,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return Result(args, done.returncode, done.stdout, done.stderr)
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, logging_restored():
        mp.chdir(cwd or env.work)
        for key in [k for k in os.environ if k.startswith(_CONFIG_ENV_PREFIXES)]:
            mp.delenv(key)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(list(args))
    return Result(args, code, stdout.getvalue(), stderr.getvalue())


def ok(env: CliEnv, *args: str, cwd: Path | None = None, process: bool = False) -> Result:
    result = run(env, *args, cwd=cwd, process=process)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def run_json(env: CliEnv, *args: str, process: bool = False) -> Any:
    return json.loads(ok(env, "--json", *args, process=process).stdout)


def count_rows(uri: str, db: str, coll: str) -> int:
    ensure_loaded(uri, db, coll)
    c = client(uri, db)
    try:
        res = c.query(coll, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(res[0]["count(*)"])
    finally:
        c.close()


def drop(uri: str, db: str, coll: str, *, database: bool = False) -> None:
    c = client(uri, db)
    try:
        if coll in c.list_collections():
            c.drop_collection(coll)
    finally:
        c.close()
    if database:
        root = client(uri)
        try:
            if db in root.list_databases():
                root.drop_database(db)
        finally:
            root.close()


@pytest.fixture(scope="module")
def base_backup(env: CliEnv) -> str:
    """A backup of the module's collection, made by ``create`` with the v2 config found in the cwd, in a
    real process (the smoke test of a whole run: interpreter start, imports, exit code)."""
    result = ok(env, "create", "-n", "base", "--filter", f"default.{env.coll}", process=True)
    assert "base" in result.stdout
    return "base"


# --- create, list, get, delete --------------------------------------------------------------------------


def test_console_script_and_module_help() -> None:
    script = Path(sys.executable).with_name("milvus-backup-lib")
    found = str(script) if script.exists() else shutil.which("milvus-backup-lib")
    assert found, "the console script milvus-backup-lib is not installed next to the interpreter"
    for command in ([found, "--help"], _command("--help")):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result
        assert result.stdout.startswith("usage: milvus-backup-lib") and result.stderr == ""


def test_create_list_get(env: CliEnv, base_backup: str) -> None:
    listed = run_json(env, "list", process=True)
    (entry,) = [b for b in listed if b["name"] == base_backup]
    assert entry["collections"] == [f"default.{env.coll}"]
    assert entry["size"] > 0
    assert entry["created_at"].startswith(str(time.gmtime().tm_year))  # ISO 8601

    info = run_json(env, "get", "-n", base_backup)
    assert info["name"] == base_backup
    (coll,) = info["collection_backups"]
    assert coll["collection_name"] == env.coll
    assert {p["partition_name"] for p in coll["partition_backups"]} == {"_default", "p1"}
    segments = [s for p in coll["partition_backups"] for s in p["segment_backups"]]
    assert sum(s["num_of_rows"] for s in segments) == 500

    text = ok(env, "get", "-n", base_backup).stdout
    assert f"default.{env.coll}" in text


def test_pause_gc_flag_and_an_unreachable_management_port(env: CliEnv) -> None:
    """By default an unreachable management port is recorded and the backup goes on (as the Go tool);
    ``--pause_gc true`` fails, and the message speaks flags and config keys."""
    unreachable = ("--set", "milvus.management.endpoint=http://127.0.0.1:1")
    selection = ("--filter", f"default.{env.coll}", "--strategy", "skip_flush")
    strict = run(env, "create", "-n", "gc_strict", *selection, "--pause_gc", "true", *unreachable)
    assert strict.returncode == 1, strict
    assert "127.0.0.1:1 did not answer" in strict.stderr
    assert "--set backup.gcPause.address=http://HOST:9091" in strict.stderr
    assert "--pause_gc auto" in strict.stderr and "pause_gc=" not in strict.stderr
    assert not (env.backup_root / "gc_strict").exists()

    data = run_json(env, "create", "-n", "gc_auto", *selection, *unreachable)
    assert data["gc"]["paused"] is False and "127.0.0.1:1 did not answer" in data["gc"]["note"]
    own = json.loads((env.backup_root / "gc_auto" / "meta" / "milvus_backup_lib.json").read_bytes())
    assert own["gc_paused"] is False and "did not answer" in own["gc_note"]
    off = run_json(env, "create", "-n", "gc_off", *selection, "--pause_gc", "false", *unreachable)
    assert off["gc"]["note"] == "not requested (pause_gc=False)"
    for name in ("gc_auto", "gc_off"):
        ok(env, "delete", "-n", name)


def test_create_meta_only_without_a_name_then_delete(env: CliEnv) -> None:
    report = run_json(env, "create", "--filter", env.coll, "--strategy", "meta_only")
    name = report["name"]
    assert name.startswith("backup_")  # the Go tool's default name
    assert report["strategy"] == "meta_only" and report["files"] == 0
    assert report["collections"] == [f"default.{env.coll}"]
    assert name in [b["name"] for b in run_json(env, "list")]
    assert "deleted" in ok(env, "delete", "-n", name).stdout
    assert name not in [b["name"] for b in run_json(env, "list")]
    again = run(env, "delete", "-n", name)
    assert again.returncode == 1
    assert again.stderr.startswith(f"error: no backup named {name!r}")


def test_v1_config_and_options_after_the_command(env: CliEnv, base_backup: str) -> None:
    listed = json.loads(ok(env, "list", "--config", str(env.v1_config), "--json").stdout)
    assert base_backup in [b["name"] for b in listed]
    info = json.loads(ok(env, "--config", str(env.v1_config), "get", "-n", base_backup, "--json").stdout)
    assert info["collection_backups"][0]["collection_name"] == env.coll


def test_set_overrides_the_file(env: CliEnv, base_backup: str, tmp_path: Path) -> None:
    other = tmp_path / "other-root"
    other.mkdir()
    assert run_json(env, "list", "--set", f"backup.storage.rootPath={other}") == []
    # a v1 key through --set, on the v1 file; and --set given after the command
    listed = json.loads(
        ok(
            env, "--config", str(env.v1_config), "list", "--json", "--set", f"minio.backupRootPath={other}"
        ).stdout
    )
    assert listed == []
    assert base_backup in [b["name"] for b in run_json(env, "list")]


def test_prune_keep_last_1_of_three_backups(env: CliEnv, tmp_path: Path) -> None:
    root = tmp_path / "prune-root"
    root.mkdir()
    at = ("--set", f"backup.storage.rootPath={root}")
    names = ("nightly_1", "nightly_2", "nightly_3")
    for name in names:
        ok(env, "create", "-n", name, "--filter", env.coll, *at)
    stored = {n: sum(f.stat().st_size for f in (root / n).rglob("*") if f.is_file()) for n in names}

    dry = run_json(env, "prune", "--keep-last", "1", "--dry_run", *at)
    assert dry["dry_run"] and dry["removed"] == ["nightly_2", "nightly_1"]
    assert sorted(b["name"] for b in run_json(env, "list", *at)) == list(names)

    report = run_json(env, "prune", "--keep-last", "1", *at)
    assert report["removed"] == ["nightly_2", "nightly_1"] and report["skipped"] == []
    assert report["kept"] == [{"name": "nightly_3", "reasons": ["last"]}]
    assert report["bytes_freed"] == stored["nightly_1"] + stored["nightly_2"] > 0
    assert [b["name"] for b in run_json(env, "list", *at)] == ["nightly_3"]
    assert not any(f.is_file() for n in ("nightly_1", "nightly_2") for f in (root / n).rglob("*"))
    again = ok(env, "prune", "--keep-last", "1", "--dry-run", *at).stdout
    assert "1 kept, would remove 0" in again and "nightly_3" in again


# --- restore ----------------------------------------------------------------------------------------------


def test_restore_with_suffix_and_target_filter(env: CliEnv, base_backup: str) -> None:
    uri, target = env.server.uri, f"{env.coll}_s1"
    try:
        # --filter selects by target name, as in the Go tool: the source name selects nothing here
        wrong = run(env, "restore", "-n", base_backup, "-s", "_s1", "--filter", f"default.{env.coll}")
        assert wrong.returncode == 2, wrong.stderr
        assert "target names" in wrong.stderr and wrong.stderr.count("\n") == 1

        result = ok(env, "restore", "-n", base_backup, "-s", "_s1", "--filter", f"default.{target}")
        assert target in result.stdout
        assert count_rows(uri, "default", target) == env.rows
    finally:
        drop(uri, "default", target)


def test_restore_with_rename_into_another_database(env: CliEnv, base_backup: str) -> None:
    uri, db, target = env.server.uri, f"clidb_{uuid.uuid4().hex[:6]}", "renamed"
    try:
        report = run_json(env, "restore", "-n", base_backup, "-r", f"default.{env.coll}:{db}.{target}")
        (coll,) = report["collections"]
        assert coll["target"] == f"{db}.{target}" and coll["backup_rows"] == 500
        assert any(step["kind"] == "create_database" for step in report["steps"])
        assert count_rows(uri, db, target) == env.rows
    finally:
        drop(uri, db, target, database=True)


def test_restore_dry_run_changes_nothing(env: CliEnv, base_backup: str) -> None:
    result = ok(env, "restore", "-n", base_backup, "-s", "dry", "--dry_run", "--no-rebuild-index")
    assert "dry run, nothing changed" in result.stdout
    report = run_json(env, "restore", "-n", base_backup, "-s", "dry", "--dry-run")
    assert report["dry_run"] is True
    kinds = [step["kind"] for step in report["steps"]]
    assert kinds[0] == "create_collection" and "import_data" in kinds
    c = client(env.server.uri)
    try:
        assert f"{env.coll}_dry" not in c.list_collections()
    finally:
        c.close()


def test_restore_conflict_is_one_line_naming_flags(env: CliEnv, base_backup: str) -> None:
    result = run(env, "restore", "-n", base_backup)  # the original still exists
    assert result.returncode == 1
    assert result.stderr.startswith("error: restore refused, nothing was changed:")
    assert result.stderr.count("\n") == 1
    assert "pass --drop_exist_collection or --skip_create_collection" in result.stderr
    assert "drop_existing" not in result.stderr


# --- the Go tool's command lines: HEAD and v0.5 spellings -----------------------------------------------


def notes(result: Result) -> list[str]:
    """The ``note:`` lines of a run (other lines, such as a GC warning, aside)."""
    return [line for line in result.stderr.splitlines() if line.startswith("note: ")]


def index_of(uri: str, coll: str, field: str = "vec") -> dict[str, Any]:
    c = client(uri)
    try:
        (name,) = [n for n in c.list_indexes(coll) if c.describe_index(coll, n)["field_name"] == field]
        return dict(c.describe_index(coll, name))
    finally:
        c.close()


def test_go_head_command_lines(env: CliEnv) -> None:
    """A script written for Go HEAD: create, list, get, restore with -s _bak and HEAD's restore flags,
    delete; names, rows and exit codes."""
    uri, name, target = env.server.uri, "head_bk", f"{env.coll}_bak"
    try:
        created = ok(
            env,
            "create",
            "-n",
            name,
            "--filter",
            f"default.{env.coll}",
            "--strategy",
            "skip_flush",
            "--format",
            "binlog",
            "--backup_index_extra",
        )
        (note,) = notes(created)
        assert note.startswith("note: --backup_index_extra is accepted and does nothing here")
        assert name in ok(env, "list").stdout.split()
        assert f"default.{env.coll}" in ok(env, "get", "-n", name).stdout

        restored = ok(
            env,
            "restore",
            "-n",
            name,
            "-s",
            "_bak",
            "--rebuild_index",
            "--use_v2_restore",
            "--drop_exist_index",
        )
        assert target in restored.stdout and restored.stderr == ""  # the suffix is appended as given
        assert index_of(uri, target)["index_type"] == "HNSW"
        assert count_rows(uri, "default", target) == env.rows

        refused = run(env, "restore", "-n", name, "-s", "_bak", "-r", f"{env.coll}:other")
        assert refused.returncode == 2 and "-s/--suffix and -r/--rename" in refused.stderr

        assert "deleted" in ok(env, "delete", "-n", name).stdout
        assert run(env, "get", "-n", name).returncode == 1
    finally:
        drop(uri, "default", target)
        run(env, "delete", "-n", name)


def test_go_v05_command_lines(env: CliEnv) -> None:
    """A script written for Go v0.5: create -c/-f and -a/--meta_only, list -c, get -d, restore -c
    --restore_index -s _bak, delete; each v0.5 spelling works and prints one note naming the new one."""
    uri, data, meta, target = env.server.uri, "v05_bk", "v05_meta", f"{env.coll}_bak"
    try:
        created = run(env, "--json", "create", "-n", data, "-c", env.coll, "-f")
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["strategy"] == "skip_flush"
        assert notes(created) == [
            f'note: -c/--colls is the v0.5 spelling of --filter (here: --filter "{env.coll}")',
            "note: -f/--force is the v0.5 spelling of --strategy skip_flush",
        ]
        meta_only = run(
            env, "--json", "create", "-n", meta, "-a", json.dumps({"default": [env.coll]}), "--meta_only"
        )
        assert meta_only.returncode == 0, meta_only.stderr
        assert json.loads(meta_only.stdout)["strategy"] == "meta_only"
        assert json.loads(meta_only.stdout)["collections"] == [f"default.{env.coll}"]

        listed = ok(env, "--json", "list", "-c", env.coll)
        assert {data, meta} <= {b["name"] for b in json.loads(listed.stdout)}
        assert listed.stderr.startswith("note: -c/--collection is a v0.5 flag")

        detail = ok(env, "get", "-n", data, "-d")
        full = json.loads(detail.stdout)  # the Go tool's JSON: full_meta.json's keys
        (coll,) = full["collection_backups"]
        assert coll["collection_name"] == env.coll and coll["db_name"] == "default"
        rows = [s["num_of_rows"] for p in coll["partition_backups"] for s in p["segment_backups"]]
        assert sum(rows) == 500
        assert full == json.loads((env.backup_root / data / "meta" / "full_meta.json").read_text())

        restored = ok(env, "restore", "-n", data, "-c", env.coll, "-s", "_bak", "--restore_index")
        assert target in restored.stdout
        assert notes(restored) == [
            "note: --restore_index is the v0.5 spelling of --rebuild_index (on by default here)",
            f"note: -c/--collections is the v0.5 spelling of --filter; it selects backed-up names"
            f" ({env.coll}), before --suffix/--rename, where --filter selects the names restored to",
        ]
        assert count_rows(uri, "default", target) == env.rows

        for name in (data, meta):
            assert "deleted" in ok(env, "delete", "-n", name).stdout
    finally:
        drop(uri, "default", target)
        for name in (data, meta):
            run(env, "delete", "-n", name)


def test_use_auto_index_and_drop_exist_index(env: CliEnv, base_backup: str) -> None:
    uri, target = env.server.uri, f"{env.coll}_auto"
    try:
        ok(env, "restore", "-n", base_backup, "-s", "_auto", "--use_auto_index")
        auto = index_of(uri, target)
        assert auto["index_type"] == "AUTOINDEX" and auto["metric_type"] == "IP"  # the backed-up metric

        # into the existing collection: its AUTOINDEX is dropped, the backed-up HNSW created instead
        args = ("restore", "-n", base_backup, "-s", "_auto", "--skip_create_collection", "--meta_only")
        ok(env, *args, "--drop_exist_index")
        hnsw = index_of(uri, target)
        assert hnsw["index_type"] == "HNSW" and hnsw["metric_type"] == "IP"
        assert count_rows(uri, "default", target) == env.rows
    finally:
        drop(uri, "default", target)


def test_restore_rbac_of_a_backup_without_it_changes_nothing(env: CliEnv, base_backup: str) -> None:
    result = run(env, "restore", "-n", base_backup, "-s", "_rbac", "--rbac")
    assert result.returncode == 1
    assert result.stderr == (
        "error: restore refused, nothing was changed: --rbac: backup 'base' holds no users, roles or grants:"
        " made without create --rbac\n"
    )
    c = client(env.server.uri)
    try:
        assert f"{env.coll}_rbac" not in c.list_collections()
    finally:
        c.close()


def test_alias_conflict_hint_names_no_aliases(env: CliEnv) -> None:
    uri, coll, name = env.server.uri, f"al_{uuid.uuid4().hex[:6]}", "alias_bk"
    c = client(uri)
    schema = c.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    c.create_collection(coll, schema=schema)
    c.create_alias(coll, f"{coll}_alias")
    c.close()
    try:
        ok(env, "create", "-n", name, "--filter", coll, "--strategy", "meta_only")
        refused = run(env, "restore", "-n", name, "-s", "_bak")
        assert refused.returncode == 1
        assert "already points to" in refused.stderr
        assert "pass --no-aliases to restore without the backed-up aliases" in refused.stderr
        ok(env, "restore", "-n", name, "-s", "_bak", "--no-aliases")
    finally:
        c = client(uri)
        c.drop_alias(f"{coll}_alias")
        c.close()
        drop(uri, "default", coll)
        drop(uri, "default", f"{coll}_bak")
        run(env, "delete", "-n", name)


def test_unfinished_backup_hint_names_resume_and_delete(env: CliEnv) -> None:
    leftover = env.backup_root / "half" / "binlogs" / "insert_log" / "x"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"partial")
    try:
        result = run(env, "create", "-n", "half", "--filter", env.coll, "--strategy", "meta_only")
        assert result.returncode == 1, result.stderr
        assert "--resume" in result.stderr and "delete -n half" in result.stderr
        assert "resume=True" not in result.stderr and "delete_backup()" not in result.stderr

        listed = run_json(env, "list", "--all")  # the unfinished ones too, with their size
        assert "half" not in [b["name"] for b in listed["backups"]]
        (half,) = [u for u in listed["unfinished"] if u["name"] == "half"]
        assert half["size"] == len(b"partial") and half["files"] == 1
        assert "half" in ok(env, "list", "--all").stdout and "half" not in ok(env, "list").stdout
    finally:
        shutil.rmtree(env.backup_root / "half")


def test_create_dry_run_copies_nothing(env: CliEnv) -> None:
    plan = run_json(env, "create", "-n", "dry", "--filter", env.coll, "--strategy", "skip_flush", "--dry_run")
    assert plan["dry_run"] is True and plan["name"] == "dry"
    assert plan["collections"] == [f"default.{env.coll}"]
    assert plan["files"] > 0 and plan["bytes"] > 0 and plan["rows"] == 500
    assert not (env.backup_root / "dry").exists()
    assert (
        "nothing was flushed, copied or written"
        in ok(env, "create", "--filter", env.coll, "--dry-run").stdout
    )


def test_v2_config_with_a_fresh_local_root_works_on_the_first_run(env: CliEnv, tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "backups"
    config = tmp_path / "backup.yaml"
    config.write_text(_v2_config(env.server, fresh))
    report = run_json(
        env,
        "--config",
        str(config),
        "create",
        "-n",
        "first",
        "--filter",
        env.coll,
        "--strategy",
        "skip_flush",
    )
    assert report["files"] > 0 and report["collections"] == [f"default.{env.coll}"]
    assert (fresh / "first" / "meta" / "backup_meta.json").is_file()
    listed = json.loads(ok(env, "--config", str(config), "--json", "list").stdout)
    assert [b["name"] for b in listed] == ["first"]


# --- verify, check --------------------------------------------------------------------------------------


def test_verify(env: CliEnv) -> None:
    ok(env, "create", "-n", "vfy", "--filter", env.coll, "--strategy", "skip_flush")
    try:
        assert "all present with the recorded size" in ok(env, "verify", "-n", "vfy").stdout
        report = run_json(env, "verify", "-n", "vfy", "--level", "exists")
        assert report["ok"] is True and report["files"] > 0 and report["missing"] == []

        files = sorted(p for p in (env.backup_root / "vfy" / "binlogs").rglob("*") if p.is_file())
        short, gone = files[0], files[-1]
        short.write_bytes(short.read_bytes()[:-1])
        assert run(env, "verify", "-n", "vfy", "--level", "exists").returncode == 0
        result = run(env, "verify", "-n", "vfy")
        assert result.returncode == 1
        key = short.relative_to(env.backup_root / "vfy").as_posix()
        assert f"short: {key}" in result.stdout
        assert result.stderr.startswith("error: backup vfy: 1 of")

        gone.unlink()
        result = run(env, "--json", "verify", "-n", "vfy", "--level", "exists")
        assert result.returncode == 1
        assert json.loads(result.stdout)["missing"] == [gone.relative_to(env.backup_root / "vfy").as_posix()]

        # checksum level reads every file: the truncated one is short, the others match their MD5
        checksum = run(env, "--json", "verify", "-n", "vfy", "--level", "checksum")
        assert checksum.returncode == 1
        found = json.loads(checksum.stdout)
        assert found["level_applied"] == "checksum" and found["corrupt"] == []
        assert [w["path"] for w in found["wrong_size"]] == [key]
    finally:
        ok(env, "delete", "-n", "vfy")


def test_check(env: CliEnv, tmp_path: Path) -> None:
    result = ok(env, "check")
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("OK") for line in lines), result.stdout
    assert "Milvus v2.3.5" in lines[0]
    assert not [p for p in env.backup_root.iterdir() if p.name.startswith("milvus_backup_lib_check")]

    # a local backup root that does not exist yet is fine: the first backup creates it, as the Go tool's
    fresh = tmp_path / "fresh" / "root"
    later = json.loads(ok(env, "--json", "check", "--set", f"backup.storage.rootPath={fresh}").stdout)
    assert later["ok"] and "the first backup creates it" in later["checks"][2]["detail"]
    assert not fresh.exists()

    (tmp_path / "a_file").write_text("")
    missing = tmp_path / "a_file" / "nowhere"  # cannot be created below a file
    failed = run(env, "--json", "check", "--set", f"backup.storage.rootPath={missing}")
    assert failed.returncode == 1
    checks = {c["check"]: c for c in json.loads(failed.stdout)["checks"]}
    assert checks["milvus"]["ok"] and checks["milvus storage"]["ok"]
    assert not checks["backup storage"]["ok"] and str(missing) in checks["backup storage"]["detail"]
    assert failed.stderr == "error: check failed: backup storage\n"


# --- usage and configuration errors: exit code 2, one line --------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bogus",), "invalid choice: 'bogus'"),
        ((), "required: COMMAND"),
        (("get",), "required: -n/--name"),
        (("restore", "-s", "x"), "required: -n/--name"),
        (("create", "--strategy", "bogus"), "invalid choice: 'bogus'"),
        (("create", "--bogus", "c1"), "unrecognized arguments: --bogus"),
        (("verify", "-n", "b", "--level", "bogus"), "invalid choice: 'bogus'"),
        (("create", "-n", "bad-name"), "backup name 'bad-name' is invalid"),
        (("restore", "-n", "b", "-r", "no_colon"), "is not source:target"),
        (
            ("restore", "-n", "b", "--drop_exist_collection", "--skip_create_collection"),
            "--drop_exist_collection and --skip_create_collection cannot be used together",
        ),
        (("restore", "-n", "b", "-s", "_bak", "-r", "c1:c2"), "-s/--suffix and -r/--rename cannot be used"),
        (("create", "--format", "snapshot"), "snapshot-format backups (Milvus 3.0) are not supported"),
        (("list", "--set", "no_equals_sign"), "expected KEY=VALUE"),
        (
            ("list", "--set", "backup.storage.rootpth=/x"),
            "--set backup.storage.rootpth: not a key of a configVersion v2 config; did you mean"
            " backup.storage.rootPath?",
        ),
        (("--config", "/nonexistent/backup.yaml", "list"), "cannot read config file"),
    ],
)
def test_bad_usage_exits_2_with_one_line(env: CliEnv, args: tuple[str, ...], message: str) -> None:
    result = run(env, *args)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("minio:\n  storageType: ftp\n", "minio.storageType: unknown value 'ftp'"),
        ("milvus: [unclosed\n  port: 1\n", "line 2"),
        ("configVersion: v2\nminio:\n  address: x\n", "minio.address"),
    ],
)
def test_bad_config_exits_2_with_one_line(env: CliEnv, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "backup.yaml"
    config.write_text(text)
    result = run(env, "list", cwd=tmp_path)  # the default: ./backup.yaml
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_no_config_file(env: CliEnv, tmp_path: Path) -> None:
    result = run(env, "list", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: no config file: pass --config FILE or put backup.yaml in the current directory\n"
    )


def test_operation_failure_exits_1(env: CliEnv) -> None:
    result = run(env, "get", "-n", "no_such_backup")
    assert result.returncode == 1
    assert result.stderr == f"error: no backup named 'no_such_backup' under file://{env.backup_root}\n"


# --- progress and logging ---------------------------------------------------------------------------------


def _run_on_pty(env: CliEnv, *args: str, timeout: float = 300) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (120 columns); return the exit code and what it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proc = subprocess.Popen(
            _command(*args),
            cwd=env.work,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
        )
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_progress_bars_on_a_terminal_and_none_with_quiet(env: CliEnv) -> None:
    code, shown = _run_on_pty(env, "create", "-n", "tty", "--filter", env.coll)
    assert code == 0, shown
    assert "%|" in shown and "copy" in shown, shown  # tqdm's bar: " 100%|██████████|"

    code, shown = _run_on_pty(env, "-q", "create", "-n", "tty_quiet", "--filter", env.coll)
    assert code == 0, shown
    assert "%|" not in shown and "copy" not in shown and "WARNING" not in shown, shown
    for name in ("tty", "tty_quiet"):
        ok(env, "delete", "-n", name)


def test_progress_is_logged_when_not_a_terminal(env: CliEnv) -> None:
    result = ok(env, "-v", "create", "-n", "logged", "--filter", env.coll, process=True)
    try:
        assert "INFO milvus_backup_lib.cli: copy:" in result.stderr
        assert "%|" not in result.stderr
        quiet = ok(env, "list", "-q", process=True)
        assert quiet.stderr == ""
    finally:
        ok(env, "delete", "-n", "logged")
