"""Developer and CI tasks: ``nox -s tests``, ``nox -s lint typecheck``, ``nox -s demo``.

Sessions use the interpreter nox runs under; ``nox -R`` reuses their virtualenvs between runs.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_external_run = True

LINT_PATHS = ("src", "tests", "examples", "benchmarks", "noxfile.py")
#: The Azure Blob emulator of the storage contract tests, installed by npm from package.json.
AZURITE_BLOB = Path(__file__).resolve().parent / "node_modules" / ".bin" / "azurite-blob"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (integration tests start real Milvus 2.3.5 servers and storage emulators).

    Arguments go to pytest. Azurite comes from npm (Node.js 18+ on PATH): installed here when missing.
    """
    session.install(".[all,test]")
    if not AZURITE_BLOB.exists():
        session.run("npm", "install", "--no-audit", "--no-fund", external=True)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff")
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy --strict."""
    # The testing extra brings pyarrow, which the in-memory cluster (milvus_backup_lib.testing) imports;
    # all brings the storage backends (the conditional writes of the lock import azure.core).
    session.install(".[all,testing]", "mypy")
    session.run("mypy", "--strict", "src/milvus_backup_lib")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with ``mkdocs build --strict``: any warning fails.

    A broken link or anchor, a page left out of the nav, or a docstring mkdocstrings cannot read is a
    warning. Arguments go to ``mkdocs build``.
    """
    session.install(".[all]", "mkdocs-material", "mkdocstrings[python]")
    # mkdocs-material prints a banner about its successor on every build unless this is set.
    quiet_banner = {"NO_MKDOCS_2_WARNING": "1"}
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs, env=quiet_banner)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the end-to-end demo against an embedded Milvus server; arguments go to the demo."""
    session.install(".[test]")
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark backup copy and restore against raw fsspec copies and bare imports (embedded Milvus, moto),
    the 2 GiB streaming copy against s3fs's put (memory and speed, benchmarks/bench_streaming.py), then
    restore scheduling against sequential one-job-per-segment imports (benchmarks/bench_restore.py),
    the offline reader against pyarrow reading the same Parquet payloads (an embedded Milvus writes
    them), with its peak memory while iterating a 1 GiB collection (benchmarks/bench_reader.py), then
    logical backup against a hand-written query_iterator -> Parquet loop (benchmarks/bench_logical.py),
    restore by inserts against a hand-written reader + ``MilvusClient.insert`` loop (benchmarks/bench_insert.py),
    and a second incremental backup of unchanged data against the full one (benchmarks/bench_incremental.py).

    Arguments go to benchmarks/bench_backup.py, e.g. ``nox -s bench -- --rows 200000 --out docs/benchmarks.md``.
    """
    session.install(".[all,test]")
    args = list(session.posargs)
    if "--streaming-only" not in args and "--streaming" not in args:
        args.append("--streaming")  # the 2 GiB streaming copy (memory bound, speed against s3fs's put)
    session.run("python", "benchmarks/bench_backup.py", *args)
    if "--streaming-only" in args:
        return
    # Restore scheduling against one-job-per-segment sequential imports; written beside the above.
    out = [arg for i, arg in enumerate(session.posargs) if i and session.posargs[i - 1] == "--out"]
    session.run("python", "benchmarks/bench_restore.py", *(["--out", out[0]] if out else []))
    # The offline reader: throughput against pyarrow on the same payloads, memory over 1 GiB.
    session.run("python", "benchmarks/bench_reader.py", *(["--out", out[0]] if out else []))
    # Logical backup against a hand-written query_iterator -> Parquet loop; written beside the above.
    session.run("python", "benchmarks/bench_logical.py", *(["--out", out[0]] if out else []))
    # Restore by inserts against a hand-written read-and-insert loop (benchmarks/bench_insert.py).
    session.run("python", "benchmarks/bench_insert.py", *(["--out", out[0]] if out else []))
    # A second incremental backup of unchanged data against the full backup (docs/incremental.md).
    session.run("python", "benchmarks/bench_incremental.py", *(["--out", out[0]] if out else []))
