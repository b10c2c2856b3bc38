"""The small records and wrappers of a backup run (:mod:`milvus_backup_lib.backup.runner`)."""

from __future__ import annotations

import attrs

from milvus_backup_lib.backup.copier import CopyResult
from milvus_backup_lib.milvus.gc import GcPauseOutcome
from milvus_backup_lib.progress import Progress

__all__ = ["Copied", "NoPause", "NoTotals", "merge"]


@attrs.frozen
class Copied:
    """What the copy and checksum steps did."""

    result: CopyResult
    checksums: dict[str, str]
    resumed: int
    resumed_bytes: int
    copy_seconds: float
    checksum_seconds: float


def merge(first: Copied, second: Copied) -> Copied:
    a, b = first.result, second.result
    return Copied(
        result=CopyResult(
            files=a.files + b.files,
            bytes_copied=a.bytes_copied + b.bytes_copied,
            server_side=a.server_side and b.server_side,
            bytes_through_client=a.bytes_through_client + b.bytes_through_client,
        ),
        checksums={**first.checksums, **second.checksums},
        resumed=first.resumed,
        resumed_bytes=first.resumed_bytes,
        copy_seconds=first.copy_seconds + second.copy_seconds,
        checksum_seconds=first.checksum_seconds + second.checksum_seconds,
    )


class NoTotals(Progress):
    """Forwards every event but ``files_total`` (told once by the runner, not per batch) to ``inner``."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner

    def phase(self, name: str, detail: str = "") -> None:
        self.inner.phase(name, detail)

    def file_done(self, path: str, nbytes: int) -> None:
        self.inner.file_done(path, nbytes)

    def waiting(self, what: str, seconds: float) -> None:
        self.inner.waiting(what, seconds)


@attrs.frozen
class NoPause:
    """Stands for a GC pause that was not attempted."""

    outcome: GcPauseOutcome
