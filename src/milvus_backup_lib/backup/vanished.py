"""What a backup says when a source binlog vanished while it was copied (compaction and GC)."""

from __future__ import annotations

from milvus_backup_lib.milvus.gc import GcPauseOutcome

__all__ = ["source_vanished", "vanished_advice"]


def source_vanished(exc: BaseException) -> bool:
    """Whether a copy failed because a source file is gone (a ``FileNotFoundError`` in its causes)."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, FileNotFoundError):
            return True
        link = link.__cause__
    return False


def vanished_advice(gc: GcPauseOutcome) -> str:
    """What to say about GC when a source file vanished during the copy."""
    if gc.paused:
        return (
            "garbage collection was paused, so the file was removed by something else (the collection "
            "dropped, or its data deleted, while the backup ran?); back up again"
        )
    return (
        f"garbage collection was not paused ({gc.note}), so compaction and GC may have removed a "
        "segment after it was listed; back up again (resume=True keeps what was copied) with GC "
        "paused: give the management URL of Milvus (its HTTP port, 9091: "
        'management_url="http://HOST:9091") '
        "so the pause reaches it, and pause_gc=True so that a backup never runs without it"
    )
