"""A real Milvus 2.3.5 standalone server on this machine, for tests and demos.

:class:`EmbeddedMilvus` runs the server binary shipped in the ``milvus`` wheel (an optional dependency:
``pip install milvus==2.3.5``, or the ``embedded`` extra) as a child process with its embedded etcd and
rocksmq, in a base directory of its own::

    with EmbeddedMilvus() as server:
        client = MilvusClient(server.uri)
        ...  # binlogs land under server.data_dir

Several servers can run at once (a source and a target cluster, or parallel test runs): every one gets
its own free ports, its embedded etcd included.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milvus_backup_lib.errors import MilvusBackupError
from milvus_backup_lib.testing._process import (
    LogWatch,
    ManagedProcess,
    StartStopContext,
    accepts_connections,
    free_ports,
    log_tail,
    url_answers,
)

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["MILVUS_VERSION", "EmbeddedMilvus", "EmbeddedMilvusError"]

#: The version of the ``milvus`` wheel (and so of the server) this helper drives.
MILVUS_VERSION = "2.3.5"

_INSTALL_HINT = (
    f"EmbeddedMilvus needs the 'milvus' wheel: pip install milvus=={MILVUS_VERSION} "
    "(or install milvus-backup-lib with the 'embedded' extra)"
)
_HOST = "127.0.0.1"
_START_ATTEMPTS = 3


class EmbeddedMilvusError(MilvusBackupError, RuntimeError):
    """The embedded Milvus server could not be started or stopped, or was used while not running."""


def _import_milvus_wheel() -> ModuleType:
    try:
        import milvus  # optional dependency: imported only when a server is started
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    version = getattr(milvus, "__version__", None)
    if version != MILVUS_VERSION:
        raise ImportError(f"found milvus wheel version {version!r}; {_INSTALL_HINT}")
    module: ModuleType = milvus
    return module


class EmbeddedMilvus(StartStopContext):
    """A Milvus 2.3.5 standalone server run from the ``milvus`` wheel, as a context manager.

    ``base_dir`` holds the server's configuration (``configs/milvus.yaml``), logs (``logs/``) and data
    (``data/``: etcd, rocksmq and the local storage root where binlogs land). Without ``base_dir`` a
    fresh temporary directory is used and removed by :meth:`stop`; a given ``base_dir`` is kept, and
    starting again on it brings the same collections back.

    ``extra_config`` sets keys of ``milvus.yaml`` by dotted path, for example
    ``{"common.storageType": "minio", "minio.address": "127.0.0.1", "minio.port": "9000"}`` or
    ``{"common.security.authorizationEnabled": "true"}``. A key that is not in the wheel's
    ``milvus.yaml`` template raises :class:`ValueError` (the wheel itself would ignore it silently).
    The etcd, port and storage-path keys are set by this class: do not override them.

    The server, its embedded etcd and every Milvus port bind free ports chosen at start; read them
    from :attr:`uri`, :attr:`port` and :attr:`management_url` once started. Not thread-safe.

    The wheel's binaries are unpacked once per user, under ``$XDG_CACHE_HOME/milvus-backup-lib``
    (``~/.cache`` by default), not into every base directory.

    Raises :class:`ImportError` if the ``milvus`` wheel is missing, :class:`EmbeddedMilvusError` if the
    server does not come up within ``start_timeout`` seconds or exits early (the message ends with
    the tail of the server's log).
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        extra_config: Mapping[str, str] | None = None,
        start_timeout: float = 180.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self._requested_base_dir = Path(base_dir).resolve() if base_dir is not None else None
        self._extra_config = dict(extra_config or {})
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._base_dir: Path | None = self._requested_base_dir
        self._owns_base_dir = False
        self._process: ManagedProcess | None = None
        self._port: int | None = None
        self._web_port: int | None = None
        self._etcd_url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until it answers on gRPC and ``/healthz``.

        Raises :class:`EmbeddedMilvusError` if it is already running, exits early or does not answer in
        time (the server is stopped again first); :class:`ImportError` without the ``milvus`` wheel;
        :class:`ValueError` for an ``extra_config`` key the ``milvus.yaml`` template does not have.
        """
        if self._process is not None:
            raise EmbeddedMilvusError(f"the embedded Milvus server in {self._base_dir} is already running")
        milvus = _import_milvus_wheel()
        _check_config_keys(milvus.MilvusServerConfig().template_text, self._extra_config)
        if self._requested_base_dir is None:
            self._base_dir = Path(tempfile.mkdtemp(prefix="embedded-milvus-"))
            self._owns_base_dir = True
        else:
            self._base_dir = self._requested_base_dir
            self._base_dir.mkdir(parents=True, exist_ok=True)
        try:
            bin_dir = _milvus_binaries(milvus, self._base_dir)
            for attempt in range(1, _START_ATTEMPTS + 1):
                try:
                    self._launch(milvus, bin_dir)
                    self._wait_until_ready()
                    return
                except _PortTakenError:
                    # Ports are probed free, then released for Milvus to bind a moment later; another
                    # process starting a server at the same time can take one in between.
                    self._terminate(graceful=False)
                    if attempt == _START_ATTEMPTS:
                        raise EmbeddedMilvusError(
                            f"Milvus could not bind its ports after {attempt} attempts\n{self._log_tail()}"
                        ) from None
        except BaseException:
            self._terminate(graceful=False)
            self._remove_owned_base_dir()
            raise

    def stop(self) -> None:
        """Stop the server and its etcd (SIGTERM, then SIGKILL after ``stop_timeout`` seconds).

        Removes the base directory if it was a temporary one made by :meth:`start`; a kept one is
        left ready for a quick restart. Data inserted but not flushed survives (it is in rocksmq).
        Does nothing if the server is not running. Raises :class:`EmbeddedMilvusError` if a server
        process survives.
        """
        try:
            self._terminate()
        finally:
            self._remove_owned_base_dir()

    @property
    def running(self) -> bool:
        """Whether the server process was started by :meth:`start` and has not exited."""
        return self._process is not None and self._process.poll() is None

    # -- where to reach it -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The gRPC port clients connect to (Milvus's ``proxy.port``)."""
        if self._port is None or self._process is None:
            raise EmbeddedMilvusError("the embedded Milvus server is not running")
        return self._port

    @property
    def uri(self) -> str:
        """The address to give ``MilvusClient``: ``http://127.0.0.1:PORT``."""
        return f"http://{_HOST}:{self.port}"

    @property
    def management_url(self) -> str:
        """The HTTP port with ``/healthz``, ``/metrics`` and the management API: ``http://127.0.0.1:PORT``."""
        if self._web_port is None or self._process is None:
            raise EmbeddedMilvusError("the embedded Milvus server is not running")
        return f"http://{_HOST}:{self._web_port}"

    @property
    def base_dir(self) -> Path:
        """The directory holding ``configs/``, ``logs/`` and ``data/``."""
        if self._base_dir is None:
            raise EmbeddedMilvusError("the embedded Milvus server has no base directory before start()")
        return self._base_dir

    @property
    def data_dir(self) -> Path:
        """The local storage root (``localStorage.path``), where ``insert_log/``, ``delta_log/``... land."""
        return self.base_dir / "data"

    @property
    def storage_url(self) -> str:
        """:attr:`data_dir` as an fsspec URL: ``file:///...``."""
        return self.data_dir.as_uri()

    def __repr__(self) -> str:
        state = f"uri={self.uri!r}" if self.running else "stopped"
        return f"<EmbeddedMilvus {state} base_dir={str(self._base_dir)!r}>"

    # -- internals ---------------------------------------------------------------------------------

    def _launch(self, milvus: ModuleType, bin_dir: Path) -> None:
        base = self.base_dir
        config = milvus.MilvusServerConfig(data_dir=str(base))
        port_keys = sorted(key for key in config.configurable_items if key.endswith("_port"))
        # Two more: the embedded etcd's peer port, and the HTTP port (healthz, metrics) set by METRICS_PORT.
        ports = free_ports(len(port_keys) + 2)  # on all interfaces, as Milvus binds them
        etcd_peer_port, web_port = ports[-2:]
        config.update(**dict(zip(port_keys, ports, strict=False)))
        for key, value in self._extra_config.items():
            config.set(key, value)
        try:
            config.resolve()  # writes configs/milvus.yaml and makes logs/ and data/
        except RuntimeError as exc:  # the wheel re-binds every port to check it, and says so this way
            if "bind failed" in str(exc):
                raise _PortTakenError from exc
            raise

        # The embedded etcd listens on 2379/2380 whatever milvus.yaml says, so a second server on the
        # machine dies with "address already in use"; an etcd config file named by ETCD_CONFIG_PATH
        # moves it (seen on 2.3.5 with a second server beside a running one).
        etcd_client_url = f"http://{_HOST}:{config.get('etcd_port')}"
        etcd_peer_url = f"http://{_HOST}:{etcd_peer_port}"
        etcd_config = base / "configs" / "embed-etcd.yaml"
        etcd_config.write_text(
            "name: default\n"
            f"listen-client-urls: {etcd_client_url}\n"
            f"advertise-client-urls: {etcd_client_url}\n"
            f"listen-peer-urls: {etcd_peer_url}\n"
            f"initial-advertise-peer-urls: {etcd_peer_url}\n"
            f"initial-cluster: default={etcd_peer_url}\n",
            encoding="utf-8",
        )

        env = dict(os.environ)
        # On SIGTERM, standalone 2.3.5 stops its coordinators before its query node, which then waits
        # queryNode.gracefulStopTimeout (30 s, not in the wheel's milvus.yaml) to hand over the segments
        # of loaded collections to a coordinator that is gone. Nothing is lost by not waiting: flushed
        # data is in binlogs and etcd, the rest in rocksmq.
        env.setdefault("QUERYNODE_GRACEFULSTOPTIMEOUT", "1")
        env.update(
            DEPLOY_MODE="STANDALONE",
            METRICS_PORT=str(web_port),
            MILVUS_RUN_DIR=str(base / "run"),
            ETCD_CONFIG_PATH=str(etcd_config),
            LD_LIBRARY_PATH=os.pathsep.join(
                p for p in (str(bin_dir), os.environ.get("LD_LIBRARY_PATH")) if p
            ),
        )
        stdout_log, stderr_log = self._log_paths()
        # The working directory is the base dir because bulk-import paths are resolved against it.
        self._process = ManagedProcess(
            f"the embedded Milvus server in {base}",
            [str(bin_dir / "milvus"), "run", "standalone"],
            cwd=base,
            stdout_log=stdout_log,
            stderr_log=stderr_log,
            env=env,
            owner=self,  # stopped at interpreter exit if forgotten
            error=EmbeddedMilvusError,
        )
        self._port = int(config.get("proxy_port"))
        self._web_port = web_port
        self._etcd_url = etcd_client_url

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        health_url = f"{self.management_url}/healthz"
        port_clash = LogWatch(self._log_paths(), b"address already in use")

        def check_ports() -> None:
            # A port taken by someone else does not always end the process: with its HTTP port taken,
            # 2.3.5 logs "handle metrics failed ... address already in use" and runs on without /healthz.
            if port_clash.seen():
                raise _PortTakenError

        self._process.wait_until(
            lambda: accepts_connections(_HOST, self.port) and url_answers(health_url, body_contains=b"OK"),
            timeout=self._start_timeout,
            what=f"on port {self.port} and {health_url}",
            check=check_ports,
        )

    def _terminate(self, *, graceful: bool = True) -> None:
        process = self._process
        if process is None:
            return
        try:
            if graceful and not self._owns_base_dir and process.poll() is None:
                self._forget_sessions()
            # A graceful stop of 2.3.5 ends in "panic: context canceled" (CloseEtcdClient, after the
            # embedded etcd is closed and everything is cleaned up), so its exit code says nothing.
            process.stop(self._stop_timeout, graceful=graceful)
        finally:
            self._process = None

    def _forget_sessions(self) -> None:
        """Delete the components' session keys from etcd, so that a restart on this base dir is quick.

        Milvus 2.3.5 leaves its session keys in etcd when it stops, and the embedded etcd revives their
        leases on the next start: the new coordinators then wait for the old ones' sessions to expire
        (restart seen at 55 s instead of 4 s, whether stopped by SIGTERM or SIGKILL). Revoking the
        leases instead makes Milvus kill itself at the first one. Keys are deleted through etcd's
        HTTP gateway; ``session/id`` is kept, as it allocates the next server IDs. Best effort: on
        failure the restart is only slower.
        """
        if self._etcd_url is None:
            return
        root = self._extra_config.get("etcd.rootPath", "by-dev")
        meta = self._extra_config.get("etcd.metaSubPath", "meta")
        prefix = f"{root}/{meta}/session/".encode()
        try:
            answer = _etcd_call(
                self._etcd_url,
                "/v3/kv/range",
                {"key": _b64(prefix), "range_end": _b64(prefix[:-1] + b"0"), "keys_only": True},
            )
            for kv in answer.get("kvs", []):
                key = base64.b64decode(kv["key"])
                if key != prefix + b"id":
                    _etcd_call(self._etcd_url, "/v3/kv/deleterange", {"key": _b64(key)})
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def _remove_owned_base_dir(self) -> None:
        if self._owns_base_dir and self._base_dir is not None:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._base_dir = None
            self._owns_base_dir = False

    def _log_paths(self) -> list[Path]:
        return [self.base_dir / "logs" / name for name in ("milvus-stdout.log", "milvus-stderr.log")]

    def _log_tail(self) -> str:
        return "" if self._base_dir is None else log_tail(self._log_paths())


class _PortTakenError(Exception):
    """Milvus could not bind a port probed free a moment before: another process took it."""


def _milvus_binaries(milvus: ModuleType, base_dir: Path) -> Path:
    """Return a directory holding the unpacked ``milvus`` binary and its libraries.

    The wheel ships them xz-compressed and unpacks them into every base directory (4 s and 250 MB
    each); they are unpacked once into a per-user cache instead, keyed by the wheel's files, and
    into the base directory only when the cache cannot be written.
    """
    packed = Path(milvus.__file__ or ".").parent / "data" / "bin"
    fingerprint = hashlib.sha256()
    for path in sorted(packed.glob("*.lzma")):
        fingerprint.update(f"{path.name}:{path.stat().st_size}\n".encode())
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "milvus-backup-lib"
    unpacked = cache_root / f"milvus-{MILVUS_VERSION}-{fingerprint.hexdigest()[:16]}"
    if (unpacked / "bin" / "milvus").is_file():
        return unpacked / "bin"
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=cache_root))
    except OSError:
        milvus._initialize_data_files(str(base_dir))
        return base_dir / "bin"
    try:
        milvus._initialize_data_files(str(staging))
        # rename is atomic: a concurrent unpacker either wins (and ours is dropped) or loses to us.
        with contextlib.suppress(OSError):
            staging.rename(unpacked)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not (unpacked / "bin" / "milvus").is_file():
        raise EmbeddedMilvusError(f"could not unpack the Milvus binaries into {unpacked}")
    return unpacked / "bin"


def _check_config_keys(template: str, extra_config: Mapping[str, str]) -> None:
    known = _yaml_key_paths(template)
    unknown = sorted(key for key in extra_config if key not in known)
    if unknown:
        raise ValueError(f"not keys of the Milvus {MILVUS_VERSION} milvus.yaml: {', '.join(unknown)}")


def _yaml_key_paths(text: str) -> set[str]:
    """Dotted paths of the mapping keys in a block-style YAML text, indented by two spaces.

    Mirrors how the wheel's ``MilvusServerConfig.update_extra_configs`` finds the line to rewrite.
    """
    paths: set[str] = set()
    stack: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        key = stripped.split(":", 1)[0]
        if not key.replace("_", "").isalnum():
            continue
        level = (len(line) - len(line.lstrip(" "))) // 2
        stack = [*stack[:level], key]
        paths.add(".".join(stack))
    return paths


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _etcd_call(base_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer
