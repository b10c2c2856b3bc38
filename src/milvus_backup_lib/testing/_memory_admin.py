"""Users, roles and grants, and the GC control, of :class:`~milvus_backup_lib.testing.memory.InMemoryMilvus`.

RBAC answers as Milvus's RBAC RPCs do (``ListCredUsers``, ``SelectUser``, ``SelectRole``, ``SelectGrant``,
``CreateRole``, ``CreateCredential``, ``OperatePrivilege``, ``OperateUserRole``; see
:mod:`milvus_backup_lib.milvus.grpc_rbac`): the built-in user ``root`` and roles ``admin`` and ``public``
exist from the start, granting a privilege twice changes nothing, and ``SelectGrant`` for a database
answers the grants of that database and of ``*``. GC control is Milvus's HTTP management endpoint
``/management/datacoord/garbage_collection/pause`` and ``/resume`` (milvus-backup
``internal/client/milvus/manage.go``), which 2.3.5 answers with 404 (test-rig.md).
"""

from __future__ import annotations

import threading
import time

import attrs

from milvus_backup_lib.errors import MilvusOperationError
from milvus_backup_lib.milvus.records import GcAnswer, GrantInfo
from milvus_backup_lib.testing._memory_state import VersionLine

__all__ = ["AdminState"]


class AdminState:
    """RBAC state and the GC pause of one in-memory cluster."""

    line: VersionLine
    _lock: threading.RLock

    def _init_admin(self) -> None:
        self._gc_paused_until = 0.0
        #: Every ``pause_gc`` request (its seconds), and how many times GC was resumed.
        self.gc_pause_requests: list[int] = []
        self.gc_resumes = 0
        self._users: dict[str, str] = {"root": "Milvus"}
        self._roles: list[str] = ["admin", "public"]
        self._user_roles: dict[str, set[str]] = {"root": set()}
        self._grants: dict[tuple[str, str, str, str, str], GrantInfo] = {}

    # -- garbage collection -------------------------------------------------------------------------

    def pause_gc(self, seconds: int) -> GcAnswer:
        with self._lock:
            self.gc_pause_requests.append(seconds)
            if not self.line.gc_control:
                note = f"the server at in-memory Milvus {self.line.text} has no GC control (HTTP 404)"
                return GcAnswer(paused=False, supported=False, note=note)
            self._gc_paused_until = time.monotonic() + seconds
            return GcAnswer(
                paused=True, supported=True, note=f"paused for {seconds} s, renewed while copying"
            )

    def resume_gc(self) -> bool:
        with self._lock:
            if not self.line.gc_control:
                return False
            self._gc_paused_until = 0.0
            self.gc_resumes += 1
            return True

    @property
    def gc_paused(self) -> bool:
        """Whether garbage collection is paused now."""
        return time.monotonic() < self._gc_paused_until

    # -- users, roles and grants ------------------------------------------------------------------------

    def list_users(self) -> list[str]:
        with self._lock:
            return list(self._users)

    def user_roles(self) -> dict[str, tuple[str, ...]]:
        with self._lock:
            return {u: tuple(sorted(roles)) for u, roles in self._user_roles.items()}

    def list_roles(self) -> list[str]:
        with self._lock:
            return list(self._roles)

    def role_grants(self, role: str, db: str) -> list[GrantInfo]:
        """The grants of ``role`` in ``db`` and in every database (``*``), as ``SelectGrant`` answers."""
        with self._lock:
            self._need_role(role, "SelectGrant")
            return [g for g in self._grants.values() if g.role == role and g.db_name in (db, "*")]

    def _need_role(self, role: str, operation: str) -> None:
        if role not in self._roles:
            raise MilvusOperationError(operation, f"not found the role, maybe the role isn't existed: {role}")

    def create_role(self, role: str) -> None:
        with self._lock:
            if role in self._roles:
                raise MilvusOperationError("CreateRole", f"role [{role}] already exists")
            self._roles.append(role)

    def create_user(self, user: str, password: str) -> None:
        with self._lock:
            if user in self._users:
                raise MilvusOperationError("CreateCredential", f"user already exists: {user}")
            self._users[user] = password
            self._user_roles[user] = set()

    def grant_privilege(self, grant: GrantInfo) -> None:
        with self._lock:
            self._need_role(grant.role, "OperatePrivilege")
            self._grants.setdefault(grant.key, attrs.evolve(grant, grantor=grant.grantor or "root"))

    def add_user_to_role(self, user: str, role: str) -> None:
        with self._lock:
            if user not in self._users:
                raise MilvusOperationError(
                    "OperateUserRole", f"not found the user, maybe the user isn't existed: {user}"
                )
            self._need_role(role, "OperateUserRole")
            self._user_roles[user].add(role)
