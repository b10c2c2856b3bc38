"""The import jobs of a restore: how segment groups are batched into jobs, and how jobs are sent.

Batching (Milvus 2.4+). One import job may carry many segments: ``files`` is then a list of
``[insert prefix, delta prefix]`` pairs, one per segment group. milvus-backup's "v2 restore" does this
(``core/restore`` with ``--use_v2_restore``; its docs, "multi-segment merged restore": "up to 10x" on
large collections, "requires Milvus v2.4.0 or higher"): segments are grouped by vchannel and storage
version and chunked by ``restore.maxSegmentsPerImportJob`` (256, below Milvus's
``dataCoord.import.maxImportFileNumPerReq``, 1024). L0 delete segments always go in their own jobs,
after every data job of the collection, as milvus-backup does. On 2.3 every group is one job.

Exactly once. An ``Import`` whose reply was lost (the connection dropped after the server took it)
must not be sent again blindly: a second job would import the same rows twice, and the row check of
the second job alone would pass. So a send that fails transiently is followed by a look at the
collection's import jobs: a job created since our send, for the same partition and files, is ours and
is adopted; only when there is none is the request sent again.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence

import attrs

from milvus_backup_lib._transient import is_transient
from milvus_backup_lib.errors import ImportFailedError, MilvusConnectionError, MilvusError
from milvus_backup_lib.milvus.protocol import MilvusCluster
from milvus_backup_lib.milvus.records import ImportState
from milvus_backup_lib.restore.plan import ImportData

__all__ = ["DEFAULT_SEGMENTS_PER_JOB", "ImportJob", "batch_jobs", "send_import"]

log = logging.getLogger(__name__)

#: milvus-backup's ``restore.maxSegmentsPerImportJob``.
DEFAULT_SEGMENTS_PER_JOB = 256

#: How many times a lost ``Import`` reply is looked for and the request sent again.
_SEND_ATTEMPTS = 4
#: Tolerance between our clock and the server's when matching a job to our send.
_CLOCK_SLACK = 120.0


@attrs.frozen
class ImportJob:
    """One import request: one or more segment groups of one partition (one only for L0 deletes)."""

    steps: tuple[ImportData, ...]

    @property
    def first(self) -> ImportData:
        return self.steps[0]

    @property
    def l0(self) -> bool:
        return self.first.l0

    @property
    def rows(self) -> int:
        """Rows the job's segments held at backup time (delete entries for an L0 job)."""
        return sum(s.rows for s in self.steps)

    @property
    def segments(self) -> int:
        return sum(len(s.segment_ids) for s in self.steps)

    @property
    def describe(self) -> str:
        where = f"partition {self.first.partition!r}" if self.first.partition else "all partitions"
        groups = f" ({len(self.steps)} segment groups)" if len(self.steps) > 1 else ""
        return f"{self.first.target} {where}{groups}"


def batch_jobs(steps: Sequence[ImportData], *, batched: bool, max_segments: int) -> list[ImportJob]:
    """The jobs running ``steps`` (the import steps of one collection): data jobs first, then L0 jobs.

    With ``batched``, data steps of the same partition, storage version and vchannel share jobs of
    at most ``max_segments`` segments (a larger step stays alone); otherwise each step is a job.
    """
    data = [s for s in steps if not s.l0]
    deletes = [ImportJob((s,)) for s in steps if s.l0]
    if not batched or max_segments <= 1:
        return [ImportJob((s,)) for s in data] + deletes
    groups: dict[tuple[str, int, str], list[ImportData]] = defaultdict(list)
    for step in data:
        groups[(step.partition, step.storage_version, step.channel)].append(step)
    jobs: list[ImportJob] = []
    for key in groups:  # insertion order: the plan's order
        chunk: list[ImportData] = []
        count = 0
        for step in groups[key]:
            size = len(step.segment_ids) or 1
            if chunk and count + size > max_segments:
                jobs.append(ImportJob(tuple(chunk)))
                chunk, count = [], 0
            chunk.append(step)
            count += size
        if chunk:
            jobs.append(ImportJob(tuple(chunk)))
    return jobs + deletes


def send_import(
    milvus: MilvusCluster,
    step: ImportData,
    files: Sequence[Sequence[str]],
    options: Sequence[tuple[str, str]],
    *,
    wait: float = 1.0,
) -> list[int]:
    """Start one import of ``files`` (one list of paths per segment group) exactly once; its task IDs.

    A transient failure may mean the server took the request and its reply was lost: the collection's
    import jobs are listed, and one created since the send for the same partition and files is
    adopted instead of sending the request again.
    """
    db, name = step.target.database, step.target.collection
    wanted = _paths_key(files)
    last: MilvusError | None = None
    for attempt in range(_SEND_ATTEMPTS):
        sent_at = time.time()
        try:
            if len(files) == 1:
                return milvus.start_import(db, name, step.partition, list(files[0]), options)
            return milvus.start_batch_import(db, name, step.partition, [list(f) for f in files], options)
        except MilvusError as exc:
            # A connection that failed or timed out may have delivered the request; an answer from the
            # server (an error status) says it was not taken, unless the status is transient.
            if not (isinstance(exc, MilvusConnectionError) or is_transient(exc)):
                raise
            last = exc
        adopted = _find_job(milvus, db, name, step.partition, wanted, since=sent_at - _CLOCK_SLACK)
        if adopted:
            log.warning(
                "the reply to the import into %s partition %r was lost; the server had started job %s, "
                "which is followed instead of sending the request again",
                step.target,
                step.partition,
                ", ".join(map(str, adopted)),
            )
            return adopted
        log.warning(
            "import into %s partition %r failed before the server took it (%s); sending it again (%d/%d)",
            step.target,
            step.partition,
            last,
            attempt + 2,
            _SEND_ATTEMPTS,
        )
        time.sleep(wait * (2**attempt))
    raise ImportFailedError(
        f"could not start the import into {step.target} partition {step.partition!r} after "
        f"{_SEND_ATTEMPTS} attempts: {last}"
    )


def _paths_key(files: Sequence[Sequence[str]]) -> frozenset[str]:
    return frozenset(f.rstrip("/") for group in files for f in group if f)


def _find_job(
    milvus: MilvusCluster, db: str, name: str, partition: str, wanted: frozenset[str], *, since: float
) -> list[int]:
    """Task IDs of the collection's import jobs that match our request (none: it never arrived)."""
    try:
        tasks = milvus.list_import_tasks(db, name)
    except MilvusError as exc:
        # Without the list we cannot know; sending again could duplicate rows, so refuse.
        raise ImportFailedError(
            f"the import into {db}.{name} may have been started (its reply was lost) and the server's "
            f"import jobs cannot be listed to find out ({exc}); check the collection's row count and "
            "its import jobs before restoring again"
        ) from exc
    recent = [t for t in tasks if _recent(t, partition, since)]
    if any(not t.files for t in recent):
        # The server lists a job started since our request without saying which files it reads: it
        # may be ours. Sending again could import the rows twice, adopting it could adopt another's.
        raise ImportFailedError(
            f"the import into {db}.{name} may have been started (its reply was lost) and the server's list "
            f"of import jobs does not say which files job {recent[0].task_id} reads; check the collection's "
            "import jobs and row count before restoring again"
        )
    return [t.task_id for t in recent if _paths_key([t.files]) == wanted]


def _recent(task: ImportState, partition: str, since: float) -> bool:
    """Whether ``task`` may have been started by our request: created since it, in the same partition
    (either unknown counts as possible)."""
    if task.created and task.created < since:
        return False
    return not (task.partition and partition and task.partition != partition)
