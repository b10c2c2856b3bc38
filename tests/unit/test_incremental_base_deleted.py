"""An incremental backup whose base is deleted while it runs records only what it references at its commit.

The delete runs where a real one would race: after the incremental copied what is new, before it takes
the repository lock to commit (the hook the integration test
tests/integration/test_delete_materialize.py uses against the real server). What the commit finds gone it
copies from the cluster; its recorded ``base`` must then name a backup it still reuses files of, or
nothing: a backup that references nothing is a full, self-contained backup like any other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from memory_data import DB, client, populate
from test_cli_go_spellings import _local_config
from test_incremental import _grow, _meta

import milvus_backup_lib.backup.runner as runner_module
from milvus_backup_lib import BackupClient, StorageLocation
from milvus_backup_lib.backup.incremental import repository_lock_waiting
from milvus_backup_lib.cli import main
from milvus_backup_lib.errors import StorageError
from milvus_backup_lib.manifest.codec import BACKUP_META
from milvus_backup_lib.storage.layout import LIBRARY_META_FILE, META_DIR, binlog_files
from milvus_backup_lib.testing.memory import InMemoryMilvus


def _before_the_commit(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> list[bool]:
    """Run ``action`` once, when the incremental is about to take the repository lock to commit."""
    ran: list[bool] = []

    def hooked(*args: Any, **kwargs: Any) -> Any:
        if not ran:
            action()
            ran.append(True)
        return repository_lock_waiting(*args, **kwargs)

    monkeypatch.setattr(runner_module, "repository_lock_waiting", hooked)
    return ran


def _own_files(root: Path, name: str) -> set[str]:
    """Every file under backup ``name``'s directory but this library's record (what the Go tool reads)."""
    return {
        str(p.relative_to(root / name))
        for p in (root / name).rglob("*")
        if p.is_file() and p.name != LIBRARY_META_FILE
    }


def _restores_equal(bk: BackupClient, name: str, source: InMemoryMilvus) -> None:
    target = InMemoryMilvus(source.line.text)
    client(target, bk.backup_storage).restore(name)
    assert target.rows(DB, "c") == source.rows(DB, "c")


def test_an_incremental_that_copied_everything_again_records_no_base_and_is_self_contained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    _local_config(tmp_path)
    root = tmp_path / "backups"
    root.mkdir()
    bk = client(cluster, StorageLocation(f"file://{root}"))
    bk.create_backup("full")
    _grow(cluster)
    ran = _before_the_commit(monkeypatch, lambda: bk.delete_backup("full"))
    inc = bk.create_backup("inc", base="full")
    monkeypatch.undo()
    assert ran and not bk.repository.exists("full")

    # it re-copied every file and references nothing: no base, self-contained, in the report...
    assert inc.reused_files == inc.reused_bytes == 0 and inc.files == len(list(binlog_files(inc.info)))
    assert (inc.base, inc.self_contained) == ("", True)
    assert not any(line.split()[0] in ("base", "reused") for line in inc.table().splitlines() if line)
    # ...in its record...
    meta = _meta(bk, "inc")
    assert (meta.base, meta.references, meta.self_contained) == ("", {}, True)
    # ...in list_backups() and the CLI's list and get
    assert [(s.name, s.base, s.self_contained) for s in bk.list_backups()] == [("inc", "", True)]
    assert "base (reused)" not in bk.list_backups().table()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("milvus_backup_lib.cli.commands._client", lambda *args, **kwargs: bk)
    assert main(["list"]) == 0
    assert "base (reused)" not in capsys.readouterr().out
    assert main(["get", "-n", "inc"]) == 0
    shown = capsys.readouterr().out
    assert "self-contained: yes" in shown and "base" not in shown
    assert main(["--json", "list"]) == 0
    assert "full" not in capsys.readouterr().out

    # Go-readable as any full backup: its directory holds exactly what a full backup of the same data
    # holds, and it restores without this library's record (the Go tool never reads it)
    bk.create_backup("twin")
    assert _own_files(root, "inc") == _own_files(root, "twin")
    assert {f.key for f in binlog_files(inc.info)} <= _own_files(root, "inc")
    assert bk.verify_backup("inc", level="checksum").ok
    (root / "inc" / META_DIR / LIBRARY_META_FILE).unlink()
    assert bk.repository.read_library_meta("inc") is None
    _restores_equal(bk, "inc", cluster)


def test_an_incremental_whose_deleted_base_referenced_another_backup_names_that_one() -> None:
    cluster = InMemoryMilvus("2.4.10")
    populate(cluster)
    bk = client(cluster)
    bk.create_backup("full")
    _grow(cluster)
    bk.create_backup("inc1", base="full")  # references full's old segments, stores the new ones
    assert set(_meta(bk, "inc1").references.values()) == {"full"}
    with pytest.MonkeyPatch.context() as patch:
        _before_the_commit(patch, lambda: bk.delete_backup("inc1"))
        inc2 = bk.create_backup("inc2", base="inc1")

    # inc1's own files went with it and were copied again; full's are still referenced
    meta = _meta(bk, "inc2")
    assert set(meta.references.values()) == {"full"} and inc2.files > 0 and inc2.reused_files > 0
    assert (meta.base, inc2.base, meta.self_contained, inc2.self_contained) == ("full", "full", False, False)
    listed = {s.name: (s.base, s.self_contained) for s in bk.list_backups()}
    assert listed == {"full": ("", True), "inc2": ("full", False)}
    assert bk.verify_backup("inc2", level="checksum").ok
    _restores_equal(bk, "inc2", cluster)


def test_an_incremental_that_still_references_part_of_its_base_after_an_interrupted_delete_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = InMemoryMilvus("2.3.5")
    populate(cluster)
    bk = client(cluster, StorageLocation(f"file://{tmp_path}"))
    full = bk.create_backup("full")
    _grow(cluster)
    first = sorted(f.key for f in binlog_files(full.info))[0]
    real = StorageLocation.remove_tree

    def killed(self: StorageLocation, path: str) -> None:  # the delete dies one file into its sweep
        if path.rstrip("/").endswith("/full/binlogs"):
            self.remove_file(bk.repository.path("full", first))
            raise StorageError("the process was killed")
        real(self, path)

    def interrupted_delete() -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(StorageLocation, "remove_tree", killed)
            with pytest.raises(StorageError, match="killed"):
                bk.delete_backup("full")

    ran = _before_the_commit(monkeypatch, interrupted_delete)
    inc = bk.create_backup("inc", base="full")
    monkeypatch.undo()
    assert ran and not bk.repository.exists("full") and not (tmp_path / "full" / first).exists()

    # the swept file's directory was copied again; the rest is referenced where the delete left it
    meta = _meta(bk, "inc")
    unit = first.rsplit("/", 1)[0]
    assert meta.references and not any(k.startswith(unit + "/") for k in meta.references)
    assert set(meta.references.values()) == {"full"}
    assert (meta.base, inc.base, inc.self_contained) == ("full", "full", False) and inc.reused_files > 0
    assert [(s.name, s.base, s.self_contained) for s in bk.list_backups()] == [("inc", "full", False)]
    assert json.loads((tmp_path / "inc" / META_DIR / LIBRARY_META_FILE).read_text())["base"] == "full"
    assert (tmp_path / "inc" / META_DIR / BACKUP_META).exists()
    assert bk.verify_backup("inc", level="checksum").ok
    _restores_equal(bk, "inc", cluster)
