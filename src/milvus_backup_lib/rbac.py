"""Users, roles and grants (RBAC): read into a backup's ``rbac_meta``, and restored from it.

``rbac_meta`` has the shape of milvus-backup's ``RBACMeta`` (``backup.proto``)::

    {"users": [{"user": "u1", "roles": [{"name": "r1"}]}],
     "roles": [{"name": "r1"}],
     "grants": [{"role": {"name": "r1"}, "object": {"name": "Collection"}, "object_name": "c1",
                 "grantor": {"user": {"name": "root"}, "privilege": {"name": "Insert"}},
                 "db_name": "default"}]}

with one difference: a backup made here never holds a password (upstream stores the server's password
hash in ``users[].password``; it is ignored when read). A user restored from a backup therefore needs a
password given by the caller; users without one are reported as skipped, not created.

Milvus 2.3.5 has no ``BackupRBAC``/``RestoreRBAC`` RPCs (they answer ``UNIMPLEMENTED``; they came with
2.4.10), so everything goes through the older RPCs every 2.3+ server has: ``ListCredUsers``,
``SelectUser`` (with role info), ``SelectRole``, ``SelectGrant``; then ``CreateRole``,
``CreateCredential``, ``OperatePrivilege`` (Grant) and ``OperateUserRole`` (AddUserToRole).

A restore only adds what is missing, as the Go tool does: roles, users, grants, and the roles of the
users it creates. What exists is left as it is (a user that exists keeps its roles, even if the
backup's user had others); the built-in user ``root`` and roles ``admin`` and ``public`` are never
created. Restoring twice changes nothing the second time. Privilege groups (Milvus 2.5+) are not
restored, nor grants of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from milvus_backup_lib._html import html_block, html_heading, html_key_values, text_key_values
from milvus_backup_lib.errors import ManifestError, RestorePlanError
from milvus_backup_lib.manifest.codec import FULL_META
from milvus_backup_lib.manifest.model import BackupInfo
from milvus_backup_lib.milvus.records import GrantInfo
from milvus_backup_lib.options import DEFAULT_DATABASE

__all__ = [
    "BUILTIN_ROLES",
    "BUILTIN_USERS",
    "GrantInfo",
    "RbacMeta",
    "RbacMilvus",
    "RbacRestoreReport",
    "RbacUser",
    "backed_up_rbac",
    "read_rbac",
    "restore_rbac",
]

log = logging.getLogger(__name__)

#: Entities every Milvus has: never created by a restore.
BUILTIN_USERS = frozenset({"root"})
BUILTIN_ROLES = frozenset({"admin", "public"})


class RbacMilvus(Protocol):
    """What reading and restoring RBAC needs from a server (:class:`~milvus_backup_lib.milvus.grpc.GrpcMilvus`)."""

    def list_databases(self) -> list[str]: ...
    def list_users(self) -> list[str]: ...
    def user_roles(self) -> dict[str, tuple[str, ...]]: ...
    def list_roles(self) -> list[str]: ...
    def role_grants(self, role: str, db: str) -> list[GrantInfo]: ...
    def create_role(self, role: str) -> None: ...
    def create_user(self, user: str, password: str) -> None: ...
    def grant_privilege(self, grant: GrantInfo) -> None: ...
    def add_user_to_role(self, user: str, role: str) -> None: ...


@attrs.frozen
class RbacUser:
    """A user and the roles it is bound to (the implicit ``public`` is not listed)."""

    name: str
    roles: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class RbacMeta:
    """A server's users, roles and grants: the ``rbac_meta`` of a backup, without passwords."""

    users: tuple[RbacUser, ...] = ()
    roles: tuple[str, ...] = ()
    grants: tuple[GrantInfo, ...] = ()
    #: Names of privilege groups in a backup made by the Go tool from Milvus 2.5+ (never restored).
    privilege_groups: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The upstream ``RBACMeta`` JSON object (no ``password``; empty values left out, as Go does)."""
        obj: dict[str, Any] = {}
        if self.users:
            obj["users"] = [
                {"user": u.name, **({"roles": [{"name": r} for r in u.roles]} if u.roles else {})}
                for u in self.users
            ]
        if self.roles:
            obj["roles"] = [{"name": r} for r in self.roles]
        if self.grants:
            obj["grants"] = [_grant_json(g) for g in self.grants]
        if self.privilege_groups:
            obj["privilege_groups"] = [{"group_name": g} for g in self.privilege_groups]
        return obj

    @classmethod
    def from_json(cls, obj: Any, file: str = FULL_META) -> RbacMeta:
        """Read an ``rbac_meta`` value (ours or the Go tool's); raises :class:`ManifestError`.

        Keys are matched case-insensitively, as Go's JSON decoder does; a password is ignored.
        """
        reader = _Reader(file)
        root = reader.object(obj, "rbac_meta")
        users = tuple(
            RbacUser(
                reader.string(user, "user", path),
                tuple(
                    reader.string(role, "name", f"{path}.roles[{j}]")
                    for j, role in enumerate(reader.objects(user, "roles", path))
                ),
            )
            for i, user in enumerate(reader.objects(root, "users", "rbac_meta"))
            for path in [f"rbac_meta.users[{i}]"]
        )
        roles = tuple(
            reader.string(role, "name", f"rbac_meta.roles[{i}]")
            for i, role in enumerate(reader.objects(root, "roles", "rbac_meta"))
        )
        grants = tuple(
            reader.grant(grant, f"rbac_meta.grants[{i}]")
            for i, grant in enumerate(reader.objects(root, "grants", "rbac_meta"))
        )
        groups = tuple(
            reader.string(group, "group_name", f"rbac_meta.privilege_groups[{i}]")
            for i, group in enumerate(reader.objects(root, "privilege_groups", "rbac_meta"))
        )
        return cls(users=users, roles=roles, grants=grants, privilege_groups=groups)


def _grant_json(grant: GrantInfo) -> dict[str, Any]:
    grantor: dict[str, Any] = {"privilege": {"name": grant.privilege}}
    if grant.grantor:
        grantor = {"user": {"name": grant.grantor}, **grantor}
    return {
        "role": {"name": grant.role},
        "object": {"name": grant.object_type},
        "object_name": grant.object_name,
        "grantor": grantor,
        "db_name": grant.db_name,
    }


class _Reader:
    """Typed access to a JSON value, raising :class:`ManifestError` with the field's path."""

    def __init__(self, file: str) -> None:
        self.file = file

    def _fail(self, path: str, expected: str, value: Any) -> ManifestError:
        return ManifestError(self.file, f"expected {expected}, got {type(value).__name__}", path)

    def object(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self._fail(path, "an object", value)
        return value

    def get(self, obj: Mapping[str, Any], key: str) -> Any:
        if key in obj:
            return obj[key]
        folded = key.lower()
        return next((v for k, v in obj.items() if k.lower() == folded), None)

    def objects(self, obj: Mapping[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        value = self.get(obj, key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._fail(f"{path}.{key}", "a list", value)
        return [self.object(item, f"{path}.{key}[{i}]") for i, item in enumerate(value)]

    def string(self, obj: Mapping[str, Any], key: str, path: str) -> str:
        value = self.get(obj, key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._fail(f"{path}.{key}", "a string", value)
        return value

    def name_of(self, obj: Mapping[str, Any], key: str, path: str) -> str:
        """``obj[key]["name"]``: the ``{"name": ...}`` entities of the proto messages."""
        inner = self.get(obj, key)
        if inner is None:
            return ""
        return self.string(self.object(inner, f"{path}.{key}"), "name", f"{path}.{key}")

    def grant(self, obj: Mapping[str, Any], path: str) -> GrantInfo:
        grantor = self.get(obj, "grantor")
        grantor = {} if grantor is None else self.object(grantor, f"{path}.grantor")
        return GrantInfo(
            role=self.name_of(obj, "role", path),
            object_type=self.name_of(obj, "object", path),
            object_name=self.string(obj, "object_name", path),
            privilege=self.name_of(grantor, "privilege", f"{path}.grantor"),
            # Milvus fills in the current database (default) when a grant names none.
            db_name=self.string(obj, "db_name", path) or DEFAULT_DATABASE,
            grantor=self.name_of(grantor, "user", f"{path}.grantor"),
        )


def read_rbac(milvus: RbacMilvus, databases: Iterable[str] = ()) -> RbacMeta:
    """Every user (with its roles), role and grant of the server, sorted by name.

    Grants are read per role and per database (Milvus answers ``SelectGrant`` only for one database
    and ``*``): every database the server lists, plus ``databases``. A grant for a database that does
    not exist (Milvus 2.3.5 accepts them) is only seen if that database is in ``databases``.
    Needs a user allowed ``ListDatabases``, ``ListCredUsers`` (``SelectOwnership``), ``SelectUser``,
    ``SelectRole`` and ``SelectGrant``: ``root`` or one with the ``admin`` role.
    """
    dbs = sorted(set(milvus.list_databases()) | {d for d in databases if d and d != "*"})
    roles_of = milvus.user_roles()
    names = sorted(set(milvus.list_users()) | set(roles_of))
    users = tuple(RbacUser(n, tuple(sorted(r for r in roles_of.get(n, ()) if r))) for n in names)
    roles = tuple(sorted(set(milvus.list_roles())))
    grants: dict[tuple[str, str, str, str, str], GrantInfo] = {}
    for role in roles:
        for db in dbs:
            for grant in milvus.role_grants(role, db):
                grants.setdefault(grant.key, grant)
    return RbacMeta(users=users, roles=roles, grants=tuple(grants[k] for k in sorted(grants)))


@attrs.frozen(kw_only=True)
class RbacRestoreReport:
    """What :func:`restore_rbac` did. Nothing in it is a secret: passwords are never recorded."""

    backup_name: str = ""
    roles_created: tuple[str, ...] = ()
    users_created: tuple[str, ...] = ()
    #: Users of the backup missing on the server for which no password was given: not created.
    users_skipped: tuple[str, ...] = ()
    grants_created: tuple[GrantInfo, ...] = ()
    #: Grants that cannot be restored: of a privilege group, or of a role that does not exist.
    grants_skipped: tuple[GrantInfo, ...] = ()
    #: ``(user, role)`` pairs bound for the users created.
    bindings_created: tuple[tuple[str, str], ...] = ()
    privilege_groups_skipped: tuple[str, ...] = ()
    #: Users, roles and grants of the backup that the server already had (left as they are).
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything was created."""
        return bool(self.roles_created or self.users_created or self.grants_created or self.bindings_created)

    def _items(self) -> list[tuple[str, str]]:
        def names(values: Iterable[object]) -> str:
            listed = [str(v) for v in values]
            return f"{len(listed)}: {', '.join(listed)}" if listed else "0"

        items = [
            ("backup", self.backup_name),
            ("roles created", names(self.roles_created)),
            ("users created", names(self.users_created)),
            ("users skipped (no password)", names(self.users_skipped)),
            ("grants created", names(self.grants_created)),
            ("user roles bound", names(f"{u}: {r}" for u, r in self.bindings_created)),
            ("already there", str(self.unchanged)),
        ]
        if self.grants_skipped:
            items.append(("grants skipped", names(self.grants_skipped)))
        if self.privilege_groups_skipped:
            items.append(("privilege groups skipped", names(self.privilege_groups_skipped)))
        return items

    def table(self) -> str:
        """What the restore did, one ``name  value`` line each."""
        return text_key_values(self._items())

    def _repr_html_(self) -> str:
        return html_block(
            html_heading(f"RBAC of {self.backup_name} restored"), html_key_values(self._items())
        )


def backed_up_rbac(backup: BackupInfo) -> RbacMeta:
    """The users, roles and grants a backup holds; :class:`RestorePlanError` if made without them."""
    if backup.rbac_meta is None:
        raise RestorePlanError(
            [f"backup {backup.name!r} holds no users, roles or grants: made without rbac=True"]
        )
    return RbacMeta.from_json(backup.rbac_meta)


def restore_rbac(
    milvus: RbacMilvus,
    meta: RbacMeta,
    user_passwords: Mapping[str, str] | None = None,
    *,
    backup_name: str = "",
) -> RbacRestoreReport:
    """Create the roles, users, grants and user roles of ``meta`` that the server lacks.

    ``user_passwords`` maps user names to the passwords to create them with; a missing user without
    one is skipped (reported). Raises :class:`RestorePlanError` before anything changes when
    ``user_passwords`` names a user the backup does not hold; :class:`MilvusPermissionError` when the
    connected user may not read or change RBAC. Everything already on the server is left as it is.
    """
    passwords = dict(user_passwords or {})
    backed_up = {u.name for u in meta.users}
    unknown = sorted(set(passwords) - backed_up)
    if unknown:
        raise RestorePlanError(
            [f"user_passwords names {u!r}, a user the backup {backup_name!r} does not hold" for u in unknown]
        )
    current = read_rbac(milvus, databases={g.db_name for g in meta.grants})
    unchanged = 0

    existing_roles = set(current.roles)
    roles_created = []
    for role in meta.roles:
        if role in existing_roles or role in BUILTIN_ROLES:
            unchanged += 1
            continue
        milvus.create_role(role)
        log.info("created role %s", role)
        existing_roles.add(role)
        roles_created.append(role)

    existing_users = {u.name for u in current.users}
    users_created: list[RbacUser] = []
    users_skipped = []
    for user in meta.users:
        if user.name in existing_users or user.name in BUILTIN_USERS:
            unchanged += 1
        elif user.name in passwords:
            milvus.create_user(user.name, passwords[user.name])
            log.info("created user %s", user.name)
            users_created.append(user)
        else:
            log.warning("user %s not created: no password given for it", user.name)
            users_skipped.append(user.name)

    existing_grants = {g.key for g in current.grants}
    groups = set(meta.privilege_groups)
    grants_created = []
    grants_skipped = []
    for grant in meta.grants:
        if grant.key in existing_grants:
            unchanged += 1
        elif grant.privilege in groups or grant.role not in existing_roles:
            log.warning("not restored: %s (a privilege group, or a role that does not exist)", grant)
            grants_skipped.append(grant)
        else:
            milvus.grant_privilege(grant)
            log.info("granted %s", grant)
            existing_grants.add(grant.key)
            grants_created.append(grant)

    # Every backed-up binding of a user who now exists: those of the users just created, and those
    # an existing user lost (its role was dropped and has just been created again).
    bound = {(u.name, r) for u in current.users for r in u.roles}
    present = existing_users | {u.name for u in users_created}
    bindings = []
    for user in meta.users:
        if user.name not in present or user.name in BUILTIN_USERS:
            continue
        for role in user.roles:
            if role == "public" or role not in existing_roles:  # public is implicit, never listed
                continue
            if (user.name, role) in bound:
                unchanged += 1
                continue
            milvus.add_user_to_role(user.name, role)
            log.info("bound user %s to role %s", user.name, role)
            bindings.append((user.name, role))

    return RbacRestoreReport(
        backup_name=backup_name,
        roles_created=tuple(roles_created),
        users_created=tuple(u.name for u in users_created),
        users_skipped=tuple(users_skipped),
        grants_created=tuple(grants_created),
        grants_skipped=tuple(grants_skipped),
        bindings_created=tuple(bindings),
        privilege_groups_skipped=tuple(meta.privilege_groups),
        unchanged=unchanged,
    )
