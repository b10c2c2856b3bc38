"""Reading rows for logical backups: pymilvus's public ``MilvusClient.query_iterator``.

A logical backup reads what a user's own client reads, so it works where the cluster's storage cannot
be reached (Milvus Lite, a managed cluster). pymilvus's ``QueryIterator``
(``pymilvus/orm/iterator.py``) pages by primary key with ``batch_size`` rows a page, the first query
pinning one MVCC timestamp for the whole read; each page is a list of row dicts: the schema's fields
by name (JSON parsed, float vectors as lists of floats, binary and float16 vectors as bytes) and the
dynamic field's keys under their own names (``output_fields=["*"]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from milvus_backup_lib.errors import CollectionNotFoundError, MilvusBackupError, MilvusOperationError
from milvus_backup_lib.milvus._grpc_channel import GrpcChannel
from milvus_backup_lib.options import MilvusConnection

__all__ = ["GrpcRows", "query_rows"]


def _client(connection: MilvusConnection, db: str) -> Any:
    from pymilvus import MilvusClient

    kwargs: dict[str, Any] = {"uri": connection.uri, "db_name": db, "timeout": connection.timeout}
    if connection.token:
        kwargs["token"] = connection.token
    elif connection.user:
        kwargs.update(user=connection.user, password=connection.password or "")
    if connection.ca_cert_path:
        kwargs["server_pem_path"] = connection.ca_cert_path
    if connection.server_name:
        kwargs["server_name"] = connection.server_name
    return MilvusClient(**kwargs)


def _reason(exc: Exception) -> str:
    """pymilvus's message of ``exc`` (its ``MilvusException`` keeps it in ``message``), never a credential:
    the client is built from the connection, whose token and password pymilvus does not print."""
    return str(getattr(exc, "message", "") or exc)


def query_rows(
    connection: MilvusConnection,
    db: str,
    name: str,
    partition: str,
    batch_rows: int,
    output_fields: Sequence[str] = ("*",),
) -> Iterator[list[dict[str, Any]]]:
    """The live rows of partition ``partition`` of ``db.name`` (``""``: of the whole collection, as a
    partition-key collection must be read), ``batch_rows`` at most a batch, with strong consistency.

    Raises :class:`MilvusOperationError` (or :class:`CollectionNotFoundError`) naming the collection
    when the server refuses the query (a collection that is not loaded, a dropped partition).
    """
    try:
        client = _client(connection, db)
    except Exception as exc:
        raise MilvusOperationError("Connect", f"pymilvus could not connect: {_reason(exc)}") from None
    try:
        try:
            iterator = client.query_iterator(
                name,
                batch_size=batch_rows,
                output_fields=list(output_fields),
                partition_names=[partition] if partition else None,
                consistency_level="Strong",
            )
        except Exception as exc:
            if "not found" in _reason(exc).lower() and "collection" in _reason(exc).lower():
                raise CollectionNotFoundError(db, name) from None
            raise MilvusOperationError(
                "QueryIterator", f"{db}.{name} partition {partition or '(all)'}: {_reason(exc)}"
            ) from None
        try:
            while True:
                try:
                    page = iterator.next()
                except MilvusBackupError:
                    raise
                except Exception as exc:
                    raise MilvusOperationError(
                        "Query", f"{db}.{name} partition {partition or '(all)'}: {_reason(exc)}"
                    ) from None
                if not page:
                    return
                yield list(page)
        finally:
            iterator.close()
    finally:
        client.close()


class GrpcRows(GrpcChannel):
    """The row reads of :class:`~milvus_backup_lib.milvus.grpc.GrpcMilvus` (logical backups)."""

    def iter_rows(
        self, db: str, name: str, partition: str, batch_rows: int, output_fields: Sequence[str] = ("*",)
    ) -> Iterator[list[dict[str, Any]]]:
        """The live rows of one partition, in batches of at most ``batch_rows`` (see :func:`query_rows`)."""
        return query_rows(self.connection, db, name, partition, batch_rows, output_fields)
