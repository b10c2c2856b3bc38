"""Readable retries: one line per retry saying what is retried (operation, endpoint, attempt n of m, the
wait), on the command line's stderr at the default level, and no ``stamina.retry_scheduled`` record."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from cli_logging import logging_restored
from milvus_backup_lib._transient import endpoint_of
from milvus_backup_lib.cli.parser import Settings
from milvus_backup_lib.cli.progress import configure_logging
from milvus_backup_lib.retry import RetryPolicy, set_testing


class Flaky:
    """Raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)

    def __call__(self) -> str:
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def _endpoint_error(url: str) -> Exception:
    """An error shaped like botocore's EndpointConnectionError (kwargs carry the endpoint)."""
    cls = type("EndpointConnectionError", (ConnectionError,), {"__module__": "botocore.exceptions"})
    error: Any = cls("could not connect")
    error.kwargs = {"endpoint_url": url}
    return error


@pytest.fixture(autouse=True)
def _no_sleep_and_logging_restored() -> Iterator[None]:
    with set_testing(True), logging_restored():
        yield


def test_a_retry_says_what_where_which_attempt_and_the_wait(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    policy = RetryPolicy(attempts=4, endpoint="milvus:19530")
    assert policy.call("CreateIndex", Flaky(ConnectionResetError(), TimeoutError())) == "done"
    lines = [r.getMessage() for r in caplog.records if r.name == "milvus_backup_lib.retry"]
    assert len(lines) == 2
    assert lines[0].startswith("retrying CreateIndex at milvus:19530 (attempt 2 of 4, after ")
    assert lines[0].endswith(" s): ConnectionResetError (connection)")
    assert lines[1].startswith("retrying CreateIndex at milvus:19530 (attempt 3 of 4, after ")
    # stamina's own structured record about these retries is dropped: it says nothing readable
    assert not [r for r in caplog.records if r.getMessage() == "stamina.retry_scheduled"]
    assert not [r for r in caplog.records if r.name == "stamina"]


def test_the_endpoint_comes_from_the_error_when_the_policy_has_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    error = _endpoint_error("https://user:pw@minio.svc:9000/bucket/key?X-Amz-Signature=s3cr3t")
    RetryPolicy(attempts=2).call("read bucket/key", Flaky(error))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "milvus_backup_lib.retry"]
    assert line.startswith("retrying read bucket/key at minio.svc:9000 (attempt 2 of 2, after ")
    assert "s3cr3t" not in line and "pw" not in line


def test_endpoint_of() -> None:
    assert endpoint_of(_endpoint_error("http://[::1]:9000/b")) == "[::1]:9000"
    wrapped = OSError("wrapped")
    wrapped.__cause__ = _endpoint_error("https://s3.amazonaws.com/b/k")
    assert endpoint_of(wrapped) == "s3.amazonaws.com"
    assert endpoint_of(ConnectionResetError()) == ""


def test_stamina_records_of_other_callers_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    import stamina

    caplog.set_level(logging.DEBUG)
    for attempt in stamina.retry_context(on=ValueError, attempts=2):
        with attempt:
            if attempt.num == 1:
                raise ValueError("theirs")
    assert [r.getMessage() for r in caplog.records if r.name == "stamina"] == ["stamina.retry_scheduled"]


def test_the_command_line_shows_retries_at_the_default_level() -> None:
    stream = io.StringIO()
    configure_logging(Settings(config=None, set_values=(), json=False, verbose=0, quiet=False), stream)
    RetryPolicy(attempts=2, endpoint="127.0.0.1:19530").call("ShowCollections", Flaky(ConnectionResetError()))
    shown = stream.getvalue()
    assert shown.startswith(
        "INFO milvus_backup_lib.retry: retrying ShowCollections at 127.0.0.1:19530 (attempt 2 of 2, after "
    )
    assert "stamina" not in shown and shown.count("\n") == 1

    quiet = io.StringIO()
    configure_logging(Settings(config=None, set_values=(), json=False, verbose=0, quiet=True), quiet)
    RetryPolicy(attempts=2).call("ShowCollections", Flaky(ConnectionResetError()))
    assert quiet.getvalue() == ""
