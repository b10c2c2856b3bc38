"""Developer and CI tasks: ``nox -s tests``, ``nox -s lint typecheck``, ``nox -s demo``.

Sessions use the interpreter nox runs under; ``nox -R`` reuses their virtualenvs between runs.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_external_run = True

LINT_PATHS = ("src", "tests", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (integration tests start real Milvus 2.3.5 servers); arguments go to pytest."""
    session.install(".[all,test]")
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
    session.install(".", "mypy")
    session.run("mypy", "--strict", "src/milvus_backup_lib")


@nox.session
def demo(session: nox.Session) -> None:
    """Run the end-to-end demo against an embedded Milvus server; arguments go to the demo."""
    session.install(".[test]")
    session.run("python", "-m", "milvus_backup_lib.demo", *session.posargs)
