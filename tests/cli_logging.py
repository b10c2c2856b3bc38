"""Undo what the CLI's ``main`` does to logging, for tests that call it in-process."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

#: The loggers whose level ``main`` sets (``-v``/``-q``, ``log.level``); the root also gets a handler.
_LOGGERS = ("", "milvus_backup_lib", "milvus_backup_lib.retry")


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Restore the root logger's handlers and the levels of the loggers ``main`` changes."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    root = loggers[0]
    handlers, levels = list(root.handlers), [lg.level for lg in loggers]
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
