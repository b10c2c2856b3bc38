"""The public surface: exported names, and reprs that never show a credential."""

from __future__ import annotations

import milvus_backup_lib
from milvus_backup_lib import BackupClient, MilvusConnection, RestoreOptions, StorageLocation


def test_all_names_exist() -> None:
    names = milvus_backup_lib.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(milvus_backup_lib, name), name
    for required in (
        "BackupClient",
        "MilvusConnection",
        "StorageLocation",
        "RestoreOptions",
        "MilvusBackupError",
        "UsageError",
        "MilvusError",
        "BackupError",
        "RestoreError",
        "InvalidOptionError",
        "InvalidOptionTypeError",
    ):
        assert required in names


def test_credentials_never_in_reprs() -> None:
    secret = "s3cr3t-Passw0rd"
    conn = MilvusConnection(uri="http://127.0.0.1:19530", user="root", password=secret)
    token_conn = MilvusConnection(uri="http://127.0.0.1:19530", token=secret)
    loc = StorageLocation("memory://bucket/root", storage_options={"key": "AKIA", "secret": secret})
    client = BackupClient(milvus=conn, milvus_storage=loc, backup_storage=loc)
    for obj in (conn, token_conn, loc, client):
        assert secret not in repr(obj)
        assert secret not in str(obj)
    assert "root" in repr(conn) and "<hidden>" in repr(conn)
    assert "2 hidden" in repr(loc)


def test_restore_options_are_frozen_records() -> None:
    options = RestoreOptions(suffix="_copy", rename={"db1.*": "db2.*"})
    assert options.rebuild_indexes and options.restore_aliases and options.load is None
    try:
        options.suffix = "_other"  # type: ignore[misc]
    except AttributeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("RestoreOptions must be immutable")
