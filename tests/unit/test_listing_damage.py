"""Listings that survive damage (issue 10, item 4).

One unreadable backup (an empty ``backup_meta.json`` after a power loss, a foreign format) must not
break ``list_backups`` for all the others; it is listed apart, on request, and can be deleted. The
listed name is the directory's, never the one a manifest claims; control characters in names are shown
escaped in every table.
"""

from __future__ import annotations

import logging
import uuid

import attrs
import pytest

from manifests import backup, collection, partition, segment
from milvus_backup_lib import BackupClient, MilvusConnection, StorageLocation
from milvus_backup_lib._html import html_table, printable, text_key_values, text_table
from milvus_backup_lib.manifest.codec import BACKUP_META, FULL_META
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.repository.store import BackupRepository, LibraryMeta
from milvus_backup_lib.repository.unfinished import UNFINISHED, list_unfinished

ESC = "\x1b[2J\x1b]0;pwned\x07"


def one_collection(name: str) -> BackupInfo:
    return backup(collection("coll", partition(11, segment(21, 11, 100))), name=name)


def client() -> BackupClient:
    root = f"memory://listing-{uuid.uuid4().hex}"
    return BackupClient(MilvusConnection(), StorageLocation(f"{root}/m"), StorageLocation(f"{root}/b"))


def write_meta(repository: BackupRepository, name: str, file: str, data: bytes) -> None:
    repository.location.write_bytes(repository.meta_path(name, file), data)


@pytest.mark.parametrize(
    ("file", "data", "reason"),
    [
        (BACKUP_META, b"", "JSON"),  # a power loss left it empty
        (BACKUP_META, b"{not json", "JSON"),
        (FULL_META, b"[1, 2]", ""),  # valid JSON, not a manifest
    ],
)
def test_a_damaged_backup_beside_good_ones_is_skipped_with_a_warning(
    file: str, data: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    bc = client()
    repository = bc.repository
    for name in ("a_good", "c_good"):
        repository.write_manifest(one_collection(name), LibraryMeta())
    repository.write_manifest(one_collection("b_damaged"), LibraryMeta())
    if file == BACKUP_META:
        repository.location.remove_file(repository.meta_path("b_damaged", FULL_META))
    write_meta(repository, "b_damaged", file, data)

    with caplog.at_level(logging.WARNING):
        listing = bc.list_backups()

    assert [s.name for s in listing] == ["a_good", "c_good"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("b_damaged" in w and reason in w for w in warnings), warnings

    extra = bc.list_unfinished()
    assert [(u.name, u.damaged) for u in extra] == [("b_damaged", True)]
    assert extra[0].problem != UNFINISHED and extra[0].files > 0
    assert "b_damaged" in extra.table()

    bc.delete_backup("b_damaged")
    assert bc.list_unfinished() == []
    assert [s.name for s in bc.list_backups()] == ["a_good", "c_good"]


def test_a_foreign_library_meta_is_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    bc = client()
    bc.repository.write_manifest(one_collection("good"), LibraryMeta())
    bc.repository.write_manifest(one_collection("odd"), LibraryMeta())
    write_meta(bc.repository, "odd", "milvus_backup_lib.json", b'{"files": "not a mapping"}')
    with caplog.at_level(logging.WARNING):
        assert [s.name for s in bc.list_backups()] == ["good"]
    assert bc.repository.problem("odd") is not None
    assert bc.repository.problem("good") is None
    assert [u.name for u in list_unfinished(bc.repository)] == ["odd"]


def test_unfinished_backups_keep_their_plain_problem() -> None:
    bc = client()
    location = bc.backup_storage
    location.write_bytes(location.join("crashed", "binlogs", "x"), b"12345")
    [entry] = bc.list_unfinished()
    assert (entry.name, entry.problem, entry.damaged) == ("crashed", UNFINISHED, False)


def test_a_manifest_whose_name_poses_as_another_backup_is_listed_by_its_directory() -> None:
    bc = client()
    bc.repository.write_manifest(one_collection("prod_daily"), LibraryMeta())
    # A hostile copy: directory "evil", manifest claiming to be "prod_daily".
    bc.repository.write_manifest(one_collection("evil"), LibraryMeta())
    impostor = bc.repository.read("prod_daily")
    from milvus_backup_lib.manifest.codec import encode_backup

    for file, data in encode_backup(impostor).items():
        write_meta(bc.repository, "evil", file, data)
    assert bc.repository.read("evil").name == "prod_daily"

    names = [s.name for s in bc.list_backups()]
    assert names == ["evil", "prod_daily"]
    assert bc.repository.summary("evil").name == "evil"


def test_escape_sequences_in_names_are_neutralised_in_every_table() -> None:
    info = one_collection("bk1")
    coll = attrs.evolve(info.collection_backups[0], collection_name=f"co{ESC}ll")
    info = attrs.evolve(info, collection_backups=(coll,), name=f"bk{ESC}1")

    for text in (info.table(), coll.table(), info._repr_html_(), coll._repr_html_()):
        assert "\x1b" not in text and "\x07" not in text
        assert "\\x1b[2J" in text

    bc = client()
    bc.repository.write_manifest(attrs.evolve(info, name="bk1"), LibraryMeta())
    listing = bc.list_backups()
    assert listing[0].collections == (f"default.co{ESC}ll",)  # the data is kept as it is
    for text in (listing.table(), listing._repr_html_()):
        assert "\x1b" not in text and "\\x1b" in text


@pytest.mark.parametrize("char", ["\x1b", "\x00", "\r", "\n", "\t", "\x7f", "\x9b", "\x85"])
def test_every_control_character_is_escaped_by_the_table_helpers(char: str) -> None:
    value = f"a{char}b"
    assert char not in printable(value)
    assert char not in text_table(("h",), [(value,)]).splitlines()[2]
    assert char not in text_key_values([(value, value)])
    assert char not in html_table((value,), [(value,)])
    assert printable("plain ünïcödé") == "plain ünïcödé"


def test_backup_meta_json_is_written_after_every_other_meta_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # The others are written at once; backup_meta.json, the mark of a complete backup, only after all
    # of them succeeded: a reader never sees it beside a missing record or a missing level file.
    bc = client()
    written: list[str] = []
    original = StorageLocation.write_bytes

    def recording(self: StorageLocation, path: str, data: bytes) -> None:
        original(self, path, data)
        written.append(path.rsplit("/", 1)[-1])

    monkeypatch.setattr(StorageLocation, "write_bytes", recording)
    bc.repository.write_manifest(one_collection("ordered"), LibraryMeta())
    assert written[-1] == BACKUP_META
    others = {
        "milvus_backup_lib.json",
        "collection_meta.json",
        "partition_meta.json",
        "segment_meta.json",
        FULL_META,
    }
    assert others <= set(written[:-1]) and BACKUP_META not in written[:-1]

    def failing(self: StorageLocation, path: str, data: bytes) -> None:
        if path.endswith("segment_meta.json"):
            raise OSError("disk full")
        original(self, path, data)

    monkeypatch.setattr(StorageLocation, "write_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        bc.repository.write_manifest(one_collection("broken"), LibraryMeta())
    assert not bc.repository.location.exists(bc.repository.meta_path("broken", BACKUP_META))
    assert not bc.repository.exists("broken")
