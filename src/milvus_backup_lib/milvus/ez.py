"""The encryption-zone key (``ezk``) of an encrypted database, from Milvus's HTTP management port.

An encrypted database (Milvus 2.6 with the cipher plugin) carries the properties ``cipher.ezID`` and
``cipher.key``; its binlogs are encrypted with the zone's key. milvus-backup (``core/backup/database_task.go``,
``internal/client/milvus/manage.go`` ``GetEZK``) reads that key with
``GET {management}/management/rootcoord/ez/backup?db_name=...``, which answers ``{"msg": "OK", "ezk": "..."}``,
records it as the database's ``ezk`` and sends it back with every import of that database's data (the
``ezk`` import option) so that the target can read the copied binlogs.

The key is a secret: it never goes into a log line, an exception message or a repr.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable

from milvus_backup_lib.errors import MilvusOperationError
from milvus_backup_lib.manifest.model import KeyValue

__all__ = ["CIPHER_EZ_ID", "CIPHER_KEY", "fetch_ezk", "is_encrypted"]

#: Database properties of an encryption zone (milvus ``internal/util/hookutil/cipher.go``).
CIPHER_EZ_ID = "cipher.ezID"
CIPHER_KEY = "cipher.key"


def is_encrypted(properties: Iterable[KeyValue]) -> bool:
    """Whether a database's properties name an encryption zone (both keys set), as milvus-backup tests it."""
    present = {kv.key for kv in properties if kv.value}
    return {CIPHER_EZ_ID, CIPHER_KEY} <= present


def fetch_ezk(management_url: str, db: str, timeout: float = 10.0) -> str:
    """The encryption-zone key of database ``db``; raises :class:`MilvusOperationError` when the server
    does not give it (the message names the database and the endpoint, never the key)."""
    query = urllib.parse.urlencode({"db_name": db})
    url = f"{management_url.rstrip('/')}/management/rootcoord/ez/backup?{query}"
    where = f"{management_url.rstrip('/')}/management/rootcoord/ez/backup"
    advice = (
        "check the management URL (Milvus's HTTP port, 9091 by default); without the key the backup of an "
        "encrypted database cannot be restored"
    )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read(1 << 20)
    except urllib.error.HTTPError as exc:
        raise MilvusOperationError(
            "GetEZK", f"{where} answered HTTP {exc.code} for database {db!r}; {advice}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MilvusOperationError(
            "GetEZK", f"cannot reach {where} for database {db!r} ({reason}); {advice}"
        ) from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("msg") != "OK" or not isinstance(answer.get("ezk"), str):
        raise MilvusOperationError("GetEZK", f"{where} gave no key for database {db!r}; {advice}")
    return str(answer["ezk"])
