"""Security against a real Milvus 2.3.5 with authorization, TLS and a flush rate limit switched on.

One server for the module (``secure_server``): ``common.security.authorizationEnabled``, one-way TLS
(``common.security.tlsMode: 1`` with a CA and a server certificate for 127.0.0.1/localhost made here)
and ``quotaAndLimits.flushRate.max: 0.5``, so that two flushes within two seconds meet Milvus's rate
limiter. The root password is changed to a random one first, so that a grep can tell it from the
word "Milvus"; every test checks that no password or token reaches a log record of the library.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from pymilvus import DataType, MilvusClient

from milvus_backup_lib import (
    BackupClient,
    MilvusAuthenticationError,
    MilvusConnection,
    MilvusConnectionError,
    MilvusPermissionError,
    RestoreOptions,
    RestorePlanError,
    StorageLocation,
    open_backup,
)
from milvus_backup_lib.milvus import GrantInfo, GrpcMilvus
from milvus_backup_lib.rbac import RbacMeta, read_rbac
from milvus_backup_lib.testing.embedded import EmbeddedMilvus

pytestmark = pytest.mark.integration

ROOT_PASSWORD = f"Rt-{uuid.uuid4().hex}"
USER_PASSWORD = f"Us-{uuid.uuid4().hex}"
WRONG_PASSWORD = f"Wr-{uuid.uuid4().hex}"
#: What must never appear in a log record, a manifest or an error message.
SECRETS = (
    ROOT_PASSWORD,
    USER_PASSWORD,
    WRONG_PASSWORD,
    base64.b64encode(f"root:{ROOT_PASSWORD}".encode()).decode(),
    base64.b64encode(USER_PASSWORD.encode()).decode(),
)


@attrs.frozen
class SecureServer:
    """The module's server and how to reach it."""

    server: EmbeddedMilvus
    ca_path: str
    port: int
    collection: str  # default.<collection>: 100 rows, flushed, indexed

    @property
    def uri(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def connection(self, **kwargs: Any) -> MilvusConnection:
        kwargs.setdefault("ca_cert_path", self.ca_path)
        return MilvusConnection(uri=kwargs.pop("uri", self.uri), timeout=kwargs.pop("timeout", 20), **kwargs)

    def root(self) -> MilvusConnection:
        return self.connection(user="root", password=ROOT_PASSWORD)

    def client(self, root: Path, milvus: MilvusConnection | None = None) -> BackupClient:
        return BackupClient(
            milvus=milvus or self.root(),
            milvus_storage=StorageLocation(self.server.storage_url),
            backup_storage=StorageLocation(f"file://{root}"),
            pause_gc=False,
        )

    def pymilvus(self, token: str | None = None) -> MilvusClient:
        return MilvusClient(
            uri=self.uri, token=token or f"root:{ROOT_PASSWORD}", server_pem_path=self.ca_path
        )


def _write_certificates(directory: Path) -> None:
    """A CA and a server certificate for 127.0.0.1 and localhost: ca.pem, server.pem, server.key."""
    try:
        _write_certificates_with_cryptography(directory)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("TLS test needs the cryptography package or the openssl command to make certificates")
        _write_certificates_with_openssl(directory)


def _write_certificates_with_cryptography(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "milvus-backup-lib test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _write_certificates_with_openssl(directory: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    (directory / "san.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n", encoding="utf-8"
    )
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem")  # fmt: skip


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    tls = tmp_path_factory.mktemp("tls")
    _write_certificates(tls)
    config = {
        "common.security.authorizationEnabled": "true",
        "common.security.tlsMode": "1",
        "tls.serverPemPath": str(tls / "server.pem"),
        "tls.serverKeyPath": str(tls / "server.key"),
        "tls.caPemPath": str(tls / "ca.pem"),
        "quotaAndLimits.flushRate.enabled": "true",
        "quotaAndLimits.flushRate.max": "0.5",
    }
    with EmbeddedMilvus(tmp_path_factory.mktemp("milvus-secure"), extra_config=config) as server:
        ca_path = str(tls / "ca.pem")
        first = MilvusClient(
            uri=f"https://127.0.0.1:{server.port}", token="root:Milvus", server_pem_path=ca_path
        )
        first.update_password("root", "Milvus", ROOT_PASSWORD)
        first.close()
        secure = SecureServer(server, ca_path, server.port, f"auth_{uuid.uuid4().hex[:8]}")
        c = secure.pymilvus()
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
        c.create_collection(secure.collection, schema=schema)
        c.insert(secure.collection, [{"id": i, "v": [i / 100.0, 0.5, 0.25, 1.0]} for i in range(100)])
        c.flush(secure.collection)
        index = MilvusClient.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        c.create_index(secure.collection, index)
        c.close()
        yield secure


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every record of the library's loggers, at DEBUG, is free of passwords and tokens."""
    caplog.set_level(logging.DEBUG, logger="milvus_backup_lib")
    yield
    ours = [r for r in caplog.records if r.name.startswith("milvus_backup_lib")]
    assert_no_secret(*(r.getMessage() for r in ours), *(repr(r.args) for r in ours))


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked into: {text[:200]!r}"


def assert_error_is_clean(error: BaseException) -> None:
    """The error, and everything it was raised from, names no secret."""
    link: BaseException | None = error
    while link is not None:
        assert_no_secret(str(link), repr(link))
        link = link.__cause__ or link.__context__


def assert_tree_is_clean(root: Path) -> None:
    for path in root.rglob("*.json"):
        assert_no_secret(path.read_text(encoding="utf-8"))


def retries(caplog: pytest.LogCaptureFixture, operation: str) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == "milvus_backup_lib.retry" and r.getMessage().startswith(f"retrying {operation} ")
    )


# -- authentication ---------------------------------------------------------------------------------


def test_wrong_password_is_an_authentication_error(
    secure_server: SecureServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = f"127.0.0.1:{secure_server.port}"
    for milvus, who in [
        (secure_server.connection(user="root", password=WRONG_PASSWORD), "user 'root'"),
        (secure_server.connection(user="nobody", password=WRONG_PASSWORD), "user 'nobody'"),
        (secure_server.connection(token=f"root:{WRONG_PASSWORD}"), "the token"),
        (secure_server.connection(token=WRONG_PASSWORD), "the token"),  # an API key, not user:password
    ]:
        started = time.monotonic()
        with pytest.raises(MilvusAuthenticationError) as err:
            secure_server.client(tmp_path, milvus).create_backup("never")
        assert time.monotonic() - started < 10
        message = str(err.value)
        assert target in message and who in message and "auth check failure" in message, message
        assert isinstance(err.value, PermissionError) and not err.value.retryable
        assert_error_is_clean(err.value)
    assert retries(caplog, "Connect") == 0  # a refused credential is not tried again
    assert list(tmp_path.iterdir()) == []


def test_missing_credentials_is_an_authentication_error(secure_server: SecureServer, tmp_path: Path) -> None:
    with pytest.raises(MilvusAuthenticationError, match="requires authentication") as err:
        secure_server.client(tmp_path, secure_server.connection()).create_backup("never")
    assert f"127.0.0.1:{secure_server.port}" in str(err.value)
    assert "missing authorization" in str(err.value)
    with (
        pytest.raises(MilvusAuthenticationError, match="requires authentication"),
        GrpcMilvus(secure_server.connection()) as anonymous,
    ):
        anonymous.server_version()


#: What a backup reads before it flushes (DescribeCollection, ShowCollections and IndexDetail are the
#: built-in public role's already; Milvus 2.3.5 checks GetLoadState against the Load privilege).
READ_ONLY = [("Global", "ListDatabases"), ("Collection", "ShowPartitions"), ("Collection", "Load")]


def test_user_without_privileges_is_a_permission_error(secure_server: SecureServer, tmp_path: Path) -> None:
    user, role = f"np_{uuid.uuid4().hex[:6]}", f"lister_{uuid.uuid4().hex[:6]}"
    c = secure_server.pymilvus()
    c.create_user(user, USER_PASSWORD)
    try:
        bc = secure_server.client(tmp_path, secure_server.connection(user=user, password=USER_PASSWORD))
        # Connect and GetVersion are open to every user; ListDatabases is not.
        with pytest.raises(MilvusPermissionError) as err:
            bc.create_backup("denied", collections=[secure_server.collection])
        assert "ListDatabases" in str(err.value) and f"user {user!r}" in str(err.value)
        assert_error_is_clean(err.value)

        # Allowed to read, the backup gets as far as the flush.
        c.create_role(role)
        for object_type, privilege in READ_ONLY:
            c.grant_privilege(role, object_type, privilege, "*")
        c.grant_role(user, role)
        with pytest.raises(MilvusPermissionError) as err:
            bc.create_backup("denied", collections=[secure_server.collection])
        assert "Flush" in str(err.value), str(err.value)
        assert_error_is_clean(err.value)

        with pytest.raises(MilvusPermissionError, match="SelectUser"):
            bc.create_backup(
                "denied", collections=[secure_server.collection], strategy="meta_only", rbac=True
            )
        assert list(tmp_path.iterdir()) == []
    finally:
        c.drop_user(user)
        if role in c.list_roles():
            for object_type, privilege in READ_ONLY:
                c.revoke_privilege(role, object_type, privilege, "*")
            c.drop_role(role)
        c.close()


# -- backup and restore with credentials, over TLS ----------------------------------------------------


@pytest.mark.parametrize("auth", ["password", "token"])
def test_backup_and_restore_with_credentials(secure_server: SecureServer, tmp_path: Path, auth: str) -> None:
    milvus = (
        secure_server.root()
        if auth == "password"
        else secure_server.connection(token=f"root:{ROOT_PASSWORD}", server_name="localhost")
    )
    bc = secure_server.client(tmp_path, milvus)
    report = bc.create_backup("b", collections=[secure_server.collection])
    assert report.collections == (f"default.{secure_server.collection}",)
    assert report.info.collection_backups[0].num_rows == 100
    restored = bc.restore("b", RestoreOptions(suffix=f"_{auth}"))
    target = f"{secure_server.collection}_{auth}"
    assert [(r.target, r.imported_rows) for r in restored.collections] == [(f"default.{target}", 100)]
    c = secure_server.pymilvus()
    try:
        c.load_collection(target)
        assert c.query(target, filter="", output_fields=["count(*)"])[0]["count(*)"] == 100
    finally:
        c.drop_collection(target)
        c.close()
    assert_tree_is_clean(tmp_path)
    assert "=<hidden>" in repr(milvus)
    assert_no_secret(repr(milvus), repr(bc), report.table(), restored.table())


@pytest.mark.parametrize("auth", ["password", "token"])
def test_logical_backup_by_uri_and_credentials_alone(
    secure_server: SecureServer, tmp_path: Path, auth: str
) -> None:
    """A managed cluster's shape: an https URI and credentials, no storage: ``strategy="logical"``."""
    milvus = (
        secure_server.root()
        if auth == "password"
        else secure_server.connection(token=f"root:{ROOT_PASSWORD}", server_name="localhost")
    )
    c = secure_server.pymilvus()
    c.load_collection(secure_server.collection)
    c.close()
    bc = BackupClient(milvus=milvus, backup_storage=f"file://{tmp_path}")
    report = bc.create_backup("lg", collections=[secure_server.collection], strategy="logical")
    table = open_backup(f"file://{tmp_path}", "lg").read(f"default.{secure_server.collection}")
    assert sorted(table.column("id").to_pylist()) == list(range(100))
    assert bc.list_backups()[0].logical
    assert_tree_is_clean(tmp_path)
    assert_no_secret(repr(bc), report.table())
    wrong = secure_server.connection(token=f"root:{WRONG_PASSWORD}")
    with pytest.raises(MilvusAuthenticationError) as caught:
        BackupClient(milvus=wrong, backup_storage=f"file://{tmp_path}").create_backup(
            "lg2", collections=[secure_server.collection], strategy="logical"
        )
    assert_error_is_clean(caught.value)


# -- TLS -------------------------------------------------------------------------------------------------


def test_tls_needs_the_right_ca_and_is_not_retried(
    secure_server: SecureServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for ca in (None, str(tmp_path / "other-ca.pem")):
        if ca:
            other = tmp_path / "other"
            other.mkdir()
            _write_certificates(other)
            shutil.copy(other / "ca.pem", ca)
        started = time.monotonic()
        untrusted = secure_server.connection(ca_cert_path=ca, user="root", password=ROOT_PASSWORD)
        with pytest.raises(MilvusConnectionError, match="TLS handshake") as err, GrpcMilvus(untrusted) as bad:
            bad.connect()
        assert time.monotonic() - started < 10
        assert "ca_cert_path" in str(err.value) and not err.value.retryable
        assert_error_is_clean(err.value)
    assert retries(caplog, "Connect") == 0

    # The right CA with the host name the certificate names; plain http to a TLS port fails.
    with GrpcMilvus(secure_server.root()) as ok:
        assert ok.connect() == "v2.3.5-lite"
    named = secure_server.connection(
        uri=f"https://localhost:{secure_server.port}", user="root", password=ROOT_PASSWORD
    )
    with GrpcMilvus(named) as ok:
        assert ok.connect() == "v2.3.5-lite"
    plain = secure_server.connection(
        uri=f"http://127.0.0.1:{secure_server.port}", user="root", password=ROOT_PASSWORD, timeout=3
    )
    with pytest.raises(MilvusConnectionError), GrpcMilvus(plain) as bad:
        bad.connect()


# -- retries ---------------------------------------------------------------------------------------------


def test_rate_limited_flush_is_retried(secure_server: SecureServer, caplog: pytest.LogCaptureFixture) -> None:
    """Milvus answers a flush over its rate (0.5/s here) with a status, not a gRPC error: retried."""
    with GrpcMilvus(secure_server.root()) as milvus:
        milvus.connect()
        for _ in range(3):
            milvus.flush("default", secure_server.collection)
    assert retries(caplog, "Flush") >= 1


def test_unreachable_server_fails_within_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    with (
        pytest.raises(MilvusConnectionError, match=r"127\.0\.0\.1:1\b") as err,
        GrpcMilvus(MilvusConnection(uri="http://127.0.0.1:1", timeout=3)) as down,
    ):
        down.connect()
    assert time.monotonic() - started < 15
    assert err.value.retryable
    assert retries(caplog, "Connect") >= 1  # connection refused is transient: tried again, briefly


# -- RBAC --------------------------------------------------------------------------------------------------


def _grants_of(milvus: GrpcMilvus, role: str) -> set[tuple[str, str, str, str, str]]:
    return {g.key for g in read_rbac(milvus).grants if g.role == role}


def test_rbac_round_trip(secure_server: SecureServer, tmp_path: Path) -> None:
    user, role = f"u_{uuid.uuid4().hex[:6]}", f"r_{uuid.uuid4().hex[:6]}"
    coll = secure_server.collection
    grants = [
        ("Global", "ListDatabases", "*", "default"),
        ("Collection", "Query", coll, "default"),
        ("Collection", "Search", "*", "*"),
    ]
    c = secure_server.pymilvus()
    c.create_role(role)
    for object_type, privilege, name, db in grants:
        c.grant_privilege(role, object_type, privilege, name, db_name=db)
    c.create_user(user, USER_PASSWORD)
    c.grant_role(user, role)
    expected = {(role, o, n, p, d) for o, p, n, d in grants}

    bc = secure_server.client(tmp_path)
    report = bc.create_backup("rbac", collections=[coll], strategy="meta_only", rbac=True)
    meta = RbacMeta.from_json(report.info.rbac_meta)
    assert any(u.name == user and u.roles == (role,) for u in meta.users)
    assert role in meta.roles and {"admin", "public"} <= set(meta.roles)
    assert expected <= {g.key for g in meta.grants}
    full = json.loads((tmp_path / "rbac" / "meta" / "full_meta.json").read_text(encoding="utf-8"))
    assert full["rbac_meta"]["users"] and "password" not in json.dumps(full["rbac_meta"])
    assert_tree_is_clean(tmp_path)

    bc.create_backup("plain", collections=[coll], strategy="meta_only")
    with pytest.raises(RestorePlanError, match="made without rbac=True"):
        bc.restore_rbac("plain")
    with pytest.raises(RestorePlanError, match="nobody"):
        bc.restore_rbac("rbac", {"nobody": USER_PASSWORD})

    # Gone from the server: the grants, the user, the role.
    for object_type, privilege, name, db in grants:
        c.revoke_privilege(role, object_type, privilege, name, db_name=db)
    c.drop_user(user)
    c.drop_role(role)
    with GrpcMilvus(secure_server.root()) as milvus:
        assert role not in milvus.list_roles() and user not in milvus.list_users()

    restored = bc.restore_rbac("rbac", {user: USER_PASSWORD})
    assert restored.roles_created == (role,)
    assert restored.users_created == (user,) and restored.users_skipped == ()
    assert {g.key for g in restored.grants_created} == expected
    assert restored.bindings_created == ((user, role),)
    assert_no_secret(restored.table(), repr(restored))
    with GrpcMilvus(secure_server.root()) as milvus:
        assert milvus.user_roles()[user] == (role,)
        assert _grants_of(milvus, role) == expected

    # The user logs in with the password given, and has its privileges back (ListDatabases).
    with GrpcMilvus(secure_server.connection(user=user, password=USER_PASSWORD)) as as_user:
        as_user.connect()
        assert "default" in as_user.list_databases()
    with (
        pytest.raises(MilvusAuthenticationError),
        GrpcMilvus(secure_server.connection(user=user, password=WRONG_PASSWORD)) as wrong,
    ):
        wrong.connect()

    # Again: nothing to do, nothing duplicated.
    again = bc.restore_rbac("rbac", {user: USER_PASSWORD})
    assert not again.changed and again.unchanged >= len(meta.roles) - 2 + len(meta.grants)
    with GrpcMilvus(secure_server.root()) as milvus:
        assert milvus.user_roles()[user] == (role,)
        assert _grants_of(milvus, role) == expected

    # A missing user without a password is reported, not created.
    c.drop_user(user)
    skipped = bc.restore_rbac("rbac")
    assert skipped.users_skipped == (user,) and not skipped.changed
    with GrpcMilvus(secure_server.root()) as milvus:
        assert user not in milvus.list_users()

    for object_type, privilege, name, db in grants:
        c.revoke_privilege(role, object_type, privilege, name, db_name=db)
    c.drop_role(role)
    c.close()


def test_rbac_meta_reads_the_go_tools_json() -> None:
    """``rbac_meta`` as milvus-backup writes it (password hash included, keys in any case) is read."""
    go = {
        "users": [{"user": "u1", "password": "$2a$10$hash", "roles": [{"name": "r1"}]}, {"user": "root"}],
        "roles": [{"name": "r1"}],
        "Grants": [
            {
                "role": {"name": "r1"},
                "object": {"name": "Collection"},
                "object_name": "c1",
                "grantor": {"user": {"name": "root"}, "privilege": {"name": "Insert"}},
            }
        ],
        "privilege_groups": [{"group_name": "g1", "privileges": [{"name": "Query"}]}],
    }
    meta = RbacMeta.from_json(go)
    assert meta.grants == (GrantInfo("r1", "Collection", "c1", "Insert", "default", "root"),)
    assert meta.privilege_groups == ("g1",)
    assert "password" not in json.dumps(meta.to_json())
    assert RbacMeta.from_json(meta.to_json()) == meta


def test_cli_restore_rbac_brings_back_roles_grants_and_bindings(
    secure_server: SecureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``restore --rbac`` from the command line, with a Go v2 backup.yaml speaking TLS and a password."""
    from milvus_backup_lib.cli import main

    user, role = f"u_{uuid.uuid4().hex[:6]}", f"r_{uuid.uuid4().hex[:6]}"
    coll = secure_server.collection
    grants = [("Collection", "Query", coll, "default"), ("Global", "ListDatabases", "*", "default")]
    c = secure_server.pymilvus()
    c.create_role(role)
    for object_type, privilege, name, db in grants:
        c.grant_privilege(role, object_type, privilege, name, db_name=db)
    c.create_user(user, USER_PASSWORD)
    c.grant_role(user, role)
    expected = {(role, o, n, p, d) for o, p, n, d in grants}
    backups = tmp_path / "backups"
    backups.mkdir()
    secure_server.client(backups).create_backup(
        "clirbac", collections=[coll], strategy="meta_only", rbac=True
    )

    # the role goes (and with it the grants and the user's binding); the user stays
    for object_type, privilege, name, db in grants:
        c.revoke_privilege(role, object_type, privilege, name, db_name=db)
    c.drop_role(role)
    config = tmp_path / "backup.yaml"
    config.write_text(
        "configVersion: v2\n"
        "milvus:\n"
        f"  user: root\n  password: {ROOT_PASSWORD}\n"
        f"  grpc: {{address: 127.0.0.1, port: {secure_server.port}, tlsMode: server, "
        f"caCertPath: {secure_server.ca_path}}}\n"
        f"  storage: {{provider: local, rootPath: {secure_server.server.data_dir}}}\n"
        f"backup:\n  storage: {{provider: local, rootPath: {backups}}}\n  pauseGC: false\n",
        encoding="utf-8",
    )
    code = main(["--config", str(config), "restore", "-n", "clirbac", "-s", "_rb", "--meta_only", "--rbac"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert role in out and f"default.{coll}_rb" in out
    assert_no_secret(out, err)
    try:
        with GrpcMilvus(secure_server.root()) as milvus:
            assert role in milvus.list_roles()
            assert _grants_of(milvus, role) == expected
            assert milvus.user_roles()[user] == (role,)
    finally:
        for object_type, privilege, name, db in grants:
            c.revoke_privilege(role, object_type, privilege, name, db_name=db)
        c.drop_user(user)
        c.drop_role(role)
        if c.has_collection(f"{coll}_rb"):
            c.drop_collection(f"{coll}_rb")
        c.close()
