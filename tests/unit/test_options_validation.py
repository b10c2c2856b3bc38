"""Invalid option values raise errors of the library's tree that name the option and the valid choices.

Also the tree itself: every error keeps the builtin it had, and sits under its group.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest

import milvus_backup_lib
from milvus_backup_lib import errors
from milvus_backup_lib.errors import (
    BackupError,
    InvalidFilterError,
    InvalidNameError,
    InvalidOptionError,
    InvalidOptionTypeError,
    MilvusBackupError,
    MilvusError,
    RestoreError,
    StorageError,
    UsageError,
)
from milvus_backup_lib.options import BackupStrategy, MilvusConnection
from milvus_backup_lib.restore.options import RestoreOptions
from milvus_backup_lib.retry import is_transient

BOOL_FIELDS = (
    "drop_existing",
    "skip_create",
    "meta_only",
    "rebuild_indexes",
    "restore_aliases",
    "dry_run",
    "keep_staged",
)


def assert_option_error(exc: BaseException, option: str, *choices: str) -> None:
    """An :class:`InvalidOptionError` of the tree, a ValueError too, naming ``option`` and ``choices``."""
    assert isinstance(exc, InvalidOptionError)
    assert isinstance(exc, UsageError)
    assert isinstance(exc, MilvusBackupError)
    assert isinstance(exc, ValueError)
    assert exc.option == option
    message = str(exc)
    assert message.startswith(option)
    assert " is not valid" in message and "; choose " in message
    for choice in choices:
        assert choice in message, (choice, message)
    assert "Attribute(" not in message  # not attrs' own message with the field's repr
    assert not is_transient(exc)


# --------------------------------------------------------------------------- BackupStrategy


def test_unknown_strategy_lists_the_strategies() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        BackupStrategy("bulk_flush")
    assert str(caught.value) == (
        "strategy='bulk_flush' is not valid; choose one of: serial_flush, skip_flush, meta_only, logical"
    )
    assert_option_error(caught.value, "strategy", "serial_flush", "skip_flush", "meta_only", "logical")
    assert caught.value.value == "bulk_flush"
    assert caught.value.choices == ("serial_flush", "skip_flush", "meta_only", "logical")


@pytest.mark.parametrize("bad", [5, None, "SERIAL-FLUSH", ""])
def test_strategy_of_any_other_value(bad: object) -> None:
    with pytest.raises(ValueError, match="choose one of: serial_flush, skip_flush, meta_only") as caught:
        BackupStrategy(bad)
    assert_option_error(caught.value, "strategy")


def test_valid_strategies_still_work() -> None:
    assert BackupStrategy("skip_flush") is BackupStrategy.SKIP_FLUSH
    assert BackupStrategy(BackupStrategy.META_ONLY) is BackupStrategy.META_ONLY


# --------------------------------------------------------------------------- MilvusConnection


@pytest.mark.parametrize("bad", [0, 0.0, -1, -0.5, math.nan, math.inf])
def test_timeout_must_be_positive(bad: float) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        MilvusConnection(timeout=bad)
    assert not isinstance(caught.value, TypeError)
    assert_option_error(caught.value, "timeout", "a finite number of seconds > 0")


@pytest.mark.parametrize("bad", ["30", None, True, [30]])
def test_timeout_must_be_a_number(bad: object) -> None:
    with pytest.raises(InvalidOptionTypeError) as caught:
        MilvusConnection(timeout=bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)
    assert_option_error(caught.value, "timeout", "number of seconds > 0")


@pytest.mark.parametrize("good", [3, 0.5, 30.0])
def test_valid_timeouts(good: float) -> None:
    assert MilvusConnection(timeout=good).timeout == good


def test_uri_must_be_a_string_and_its_value_is_not_shown() -> None:
    secret = b"http://root:s3cr3t@127.0.0.1:19530"
    with pytest.raises(InvalidOptionTypeError) as caught:
        MilvusConnection(uri=secret)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)
    assert_option_error(caught.value, "uri", "'http://127.0.0.1:19530'")
    assert "s3cr3t" not in str(caught.value) and "bytes" in str(caught.value)
    assert caught.value.value is None


@pytest.mark.parametrize("bad", ["", "   "])
def test_uri_must_not_be_empty(bad: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        MilvusConnection(uri=bad)
    assert_option_error(caught.value, "uri", "non-empty string")


# --------------------------------------------------------------------------- RestoreOptions


@pytest.mark.parametrize("field", BOOL_FIELDS)
@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_flags_must_be_bools(field: str, bad: object) -> None:
    with pytest.raises(InvalidOptionTypeError) as caught:
        RestoreOptions(**{field: bad})  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)  # as attrs' instance_of check was
    assert_option_error(caught.value, field, "choose one of: True, False")
    assert str(caught.value).startswith(f"{field}={bad!r} is not valid")


@pytest.mark.parametrize("bad", ["yes", 1, "true"])
def test_load_is_a_bool_or_none(bad: object) -> None:
    with pytest.raises(InvalidOptionTypeError) as caught:
        RestoreOptions(load=bad)  # type: ignore[arg-type]
    assert_option_error(caught.value, "load", "choose one of: True, False, None")
    assert all(RestoreOptions(load=ok).load is ok for ok in (True, False, None))


@pytest.mark.parametrize("bad", ["full", "SIZE", "", "md5"])
def test_check_backup_levels(bad: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        RestoreOptions(check_backup=bad)
    assert not isinstance(caught.value, TypeError)
    assert_option_error(caught.value, "check_backup", "choose one of: none, exists, size, checksum")


def test_check_backup_of_another_type() -> None:
    with pytest.raises(InvalidOptionTypeError) as caught:
        RestoreOptions(check_backup=None)  # type: ignore[arg-type]
    assert_option_error(caught.value, "check_backup", "none, exists, size, checksum")


def test_drop_existing_with_skip_create_is_refused_at_construction() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        RestoreOptions(drop_existing=True, skip_create=True)
    assert_option_error(caught.value, "skip_create", "drop_existing=True", "skip_create=True", "not both")
    assert str(caught.value).startswith("skip_create=True is not valid with drop_existing=True; choose")
    with pytest.raises(InvalidOptionError):
        attrs.evolve(RestoreOptions(drop_existing=True), skip_create=True)
    assert RestoreOptions(drop_existing=True).drop_existing
    assert RestoreOptions(skip_create=True).skip_create


def test_collections_of_another_type() -> None:
    with pytest.raises(InvalidOptionTypeError) as caught:
        RestoreOptions(collections=5)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)  # list(5) raised a bare TypeError before
    assert_option_error(caught.value, "collections", "comma-separated", "iterable of strings", "None")


def test_collection_entries_must_be_strings() -> None:
    with pytest.raises(InvalidFilterError, match="must be strings") as caught:
        RestoreOptions(collections=["c1", 2])  # type: ignore[list-item]
    assert isinstance(caught.value, UsageError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad", [5, ["c1:c2"]])
def test_rename_of_another_type(bad: object) -> None:
    with pytest.raises(InvalidFilterError) as caught:
        RestoreOptions(rename=bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, UsageError) and isinstance(caught.value, ValueError)
    assert "mapping of source to target or the text 'db1.c1:db2.c2,c3:c4'" in str(caught.value)


@pytest.mark.parametrize("bad", [{"c1": None}, {"c1": 2}, {1: "c2"}])
def test_rename_entries_must_be_strings(bad: dict[Any, Any]) -> None:
    with pytest.raises(InvalidFilterError, match="must be strings"):
        RestoreOptions(rename=bad)


@pytest.mark.parametrize("bad", [5, "bad-suffix"])
def test_suffix(bad: object) -> None:
    with pytest.raises(InvalidNameError) as caught:
        RestoreOptions(suffix=bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, UsageError) and isinstance(caught.value, ValueError)
    assert "suffix" in str(caught.value)


def test_valid_options_still_build() -> None:
    options = RestoreOptions(
        collections="c1,db1.*",
        suffix="_copy",
        rename={"db2.*": "db3.*"},
        skip_create=True,
        load=False,
        check_backup="checksum",
    )
    assert options.collections == ("c1", "db1.*")
    assert options.check_backup == "checksum"


# --------------------------------------------------------------------------- the tree


@pytest.mark.parametrize(
    ("name", "group", "builtin"),
    [
        ("InvalidNameError", UsageError, ValueError),
        ("InvalidFilterError", UsageError, ValueError),
        ("InvalidConfigError", UsageError, ValueError),
        ("InvalidOptionError", UsageError, ValueError),
        ("InvalidOptionTypeError", InvalidOptionError, TypeError),
        ("MilvusConnectionError", MilvusError, ConnectionError),
        ("MilvusAuthenticationError", MilvusError, PermissionError),
        ("MilvusPermissionError", MilvusError, PermissionError),
        ("MilvusOperationError", MilvusError, RuntimeError),
        ("DatabaseNotFoundError", MilvusError, LookupError),
        ("CollectionNotFoundError", MilvusError, LookupError),
        ("FlushTimeoutError", MilvusError, TimeoutError),
        ("GcPauseError", MilvusError, RuntimeError),
        ("InconsistentSegmentError", MilvusError, RuntimeError),
        ("StorageError", MilvusBackupError, OSError),
        ("StorageRootNotFoundError", StorageError, OSError),
        ("BackupExistsError", BackupError, FileExistsError),
        ("BackupLockedError", BackupError, FileExistsError),
        ("BackupNotFoundError", BackupError, LookupError),
        ("ManifestError", BackupError, ValueError),
        ("BackupCorruptError", BackupError, ValueError),
        ("RestorePlanError", RestoreError, ValueError),
        ("ImportFailedError", RestoreError, RuntimeError),
    ],
)
def test_each_error_is_in_its_group_and_keeps_its_builtin(
    name: str, group: type[Exception], builtin: type[Exception]
) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, group)
    assert issubclass(cls, builtin)
    assert issubclass(cls, MilvusBackupError)
    assert getattr(milvus_backup_lib, name) is cls


def test_groups() -> None:
    assert issubclass(UsageError, ValueError)
    for group in (MilvusError, BackupError, RestoreError):
        assert group.__bases__ == (MilvusBackupError,)
    names = set(milvus_backup_lib.__all__)
    assert {"UsageError", "MilvusError", "BackupError", "RestoreError", "InvalidOptionError"} <= names
    assert set(errors.__all__) <= names


def test_retryable_flags_are_unchanged() -> None:
    retryable = {name for name in errors.__all__ if getattr(errors, name).retryable}
    assert retryable == {
        "MilvusConnectionError",
        "FlushTimeoutError",
        "BackupLockedError",
        "GcPauseError",
        "RepositoryLockedError",  # a BackupLockedError: the repository lock is held briefly
    }


def caused_by(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause  # as ``raise error from cause`` sets it
    return error


def test_groups_defer_to_their_cause_when_retrying() -> None:
    for group in (MilvusError, BackupError, RestoreError):
        assert is_transient(caused_by(group("wrapped"), ConnectionResetError()))
        assert not is_transient(group("alone"))
    # a usage error is permanent whatever caused it
    assert not is_transient(caused_by(UsageError("bad"), ConnectionResetError()))
