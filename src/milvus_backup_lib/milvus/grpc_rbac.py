"""The RBAC calls of :class:`~milvus_backup_lib.milvus.grpc.GrpcMilvus`: users, roles and grants."""

from __future__ import annotations

import base64

from pymilvus.grpc_gen import milvus_pb2

from milvus_backup_lib.milvus import convert
from milvus_backup_lib.milvus._grpc_channel import GrpcChannel
from milvus_backup_lib.milvus.records import GrantInfo

__all__ = ["GrpcRbac"]


class GrpcRbac(GrpcChannel):
    """Users, roles and grants over gRPC (Milvus 2.3.5's RBAC RPCs)."""

    def list_users(self) -> list[str]:
        """``ListCredUsers``: the names of every user with a password."""
        resp = self._call("ListCredUsers", self._stub.ListCredUsers, milvus_pb2.ListCredUsersRequest())
        self._ok("ListCredUsers", resp.status)
        return list(resp.usernames)

    def user_roles(self) -> dict[str, tuple[str, ...]]:
        """``SelectUser`` with role info: each user's roles (the implicit ``public`` is not listed)."""
        req = milvus_pb2.SelectUserRequest(include_role_info=True)
        resp = self._call("SelectUser", self._stub.SelectUser, req)
        self._ok("SelectUser", resp.status)
        return {r.user.name: tuple(role.name for role in r.roles) for r in resp.results}

    def list_roles(self) -> list[str]:
        """``SelectRole``: the names of every role, the built-in ``admin`` and ``public`` included."""
        resp = self._call("SelectRole", self._stub.SelectRole, milvus_pb2.SelectRoleRequest())
        self._ok("SelectRole", resp.status)
        return [r.role.name for r in resp.results]

    def role_grants(self, role: str, db: str) -> list[GrantInfo]:
        """``SelectGrant``: the privileges granted to ``role`` in database ``db`` and in every database.

        Milvus 2.3.5 answers only the grants whose database is ``db`` or ``*``, so a caller wanting
        all of them asks once per database.
        """
        entity = milvus_pb2.GrantEntity(role=milvus_pb2.RoleEntity(name=role), db_name=db)
        resp = self._call(
            "SelectGrant", self._stub.SelectGrant, milvus_pb2.SelectGrantRequest(entity=entity), db
        )
        self._ok("SelectGrant", resp.status, db=db)
        return [convert.grant_from_proto(e, role, db) for e in resp.entities]

    def create_role(self, role: str) -> None:
        """``CreateRole``."""
        req = milvus_pb2.CreateRoleRequest(entity=milvus_pb2.RoleEntity(name=role))
        self._ok("CreateRole", self._call("CreateRole", self._stub.CreateRole, req, idempotent=False))

    def create_user(self, user: str, password: str) -> None:
        """``CreateCredential``: a user with a password (sent base64-encoded, as the SDKs do)."""
        req = milvus_pb2.CreateCredentialRequest(
            username=user, password=base64.b64encode(password.encode()).decode()
        )
        self._ok(
            "CreateCredential",
            self._call("CreateCredential", self._stub.CreateCredential, req, idempotent=False),
        )

    def grant_privilege(self, grant: GrantInfo) -> None:
        """``OperatePrivilege`` (Grant). Granting a privilege the role already has changes nothing."""
        req = milvus_pb2.OperatePrivilegeRequest(entity=convert.grant_to_proto(grant), type=milvus_pb2.Grant)
        self._ok("OperatePrivilege", self._call("OperatePrivilege", self._stub.OperatePrivilege, req))

    def add_user_to_role(self, user: str, role: str) -> None:
        """``OperateUserRole`` (AddUserToRole). Adding a user to a role it has changes nothing."""
        req = milvus_pb2.OperateUserRoleRequest(username=user, role_name=role, type=milvus_pb2.AddUserToRole)
        self._ok("OperateUserRole", self._call("OperateUserRole", self._stub.OperateUserRole, req))
