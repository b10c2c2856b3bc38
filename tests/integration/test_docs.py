"""The documentation works: the quickstart runs as written, every example parses, the site builds strictly.

The quickstart's Python blocks run in order in one namespace against the session's Milvus server.
Its first block starts an ``EmbeddedMilvus()`` and its last one stops it; here ``EmbeddedMilvus`` is
replaced by a stand-in that is the session server (``milvus_server``) and leaves it running, so the
blocks themselves need no change. A block whose code cannot run here is marked with a line
``# docs-test: skip`` (the quickstart has none).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient

import milvus_backup_lib.errors
import milvus_backup_lib.testing.embedded
from milvus_backup_lib import RestoreReport
from milvus_backup_lib.testing.embedded import EmbeddedMilvus

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
QUICKSTART = DOCS / "quickstart.md"
SKIP_MARKER = "# docs-test: skip"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z0-9_+-]*)[^`]*$")


def code_blocks(path: Path, language: str = "python") -> list[tuple[int, str]]:
    """The fenced ``language`` blocks of a Markdown file: (line number of the first code line, code).

    Blocks indented inside admonitions are dedented by their fence's indentation.
    """
    blocks: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    n = 0
    while n < len(lines):
        fence = _FENCE.match(lines[n])
        n += 1
        if fence is None:
            continue
        indent, body, start = fence["indent"], [], n + 1
        while n < len(lines) and lines[n].strip() != "```":
            body.append(lines[n][len(indent) :] if lines[n].startswith(indent) else lines[n].lstrip())
            n += 1
        n += 1  # the closing fence
        if fence["lang"] == language:
            blocks.append((start, "\n".join(body) + "\n"))
    return blocks


def run_blocks(path: Path, namespace: dict[str, Any]) -> int:
    """Run the Python blocks of ``path`` in order in ``namespace``; return how many ran.

    Tracebacks point at the Markdown file's own line numbers.
    """
    ran = 0
    for line, code in code_blocks(path):
        if SKIP_MARKER in code:
            continue
        padded = "\n" * (line - 1) + code
        exec(compile(padded, str(path), "exec"), namespace)
        ran += 1
    return ran


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def count_rows(client: MilvusClient, collection: str) -> int:
    result = client.query(collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(result[0]["count(*)"])


@pytest.fixture
def docs_milvus(milvus_server: EmbeddedMilvus) -> Iterator[MilvusClient]:
    """A client of the session server; the quickstart's collections are dropped afterwards."""
    client = MilvusClient(milvus_server.uri)
    names = ("books", "books_restored")
    taken = [n for n in names if client.has_collection(n)]
    assert not taken, f"the session server already has {taken}: the quickstart would collide with them"
    yield client
    for name in names:
        if client.has_collection(name):
            client.drop_collection(name)
    client.close()


def test_quickstart_runs(
    milvus_server: EmbeddedMilvus,
    docs_milvus: MilvusClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[str] = []

    class SessionServer:
        """Stands in for ``EmbeddedMilvus``: the session's server, neither started nor stopped here."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            inspect.signature(EmbeddedMilvus).bind(*args, **kwargs)  # called as the real class allows
            calls.append("init")

        def start(self) -> None:
            calls.append("start")

        def stop(self) -> None:
            calls.append("stop")

        def __getattr__(self, name: str) -> Any:
            return getattr(milvus_server, name)

    monkeypatch.setattr(milvus_backup_lib.testing.embedded, "EmbeddedMilvus", SessionServer)
    monkeypatch.chdir(tmp_path)  # the quickstart's backup root is ./my-backups
    namespace: dict[str, Any] = {"__name__": "quickstart"}

    assert run_blocks(QUICKSTART, namespace) == len(code_blocks(QUICKSTART))
    printed = capsys.readouterr().out

    assert calls == ["init", "start", "stop"], "the quickstart starts one server and stops it at the end"
    # the backup copied the binlogs of default.books into ./my-backups, and was deleted at the end
    report = namespace["report"]
    assert report.collections == ("default.books",)
    assert report.files > 0 and report.bytes_copied > 0
    assert report.info.collection("default", "books").num_rows == 1000
    assert (tmp_path / "my-backups").is_dir()
    assert not (tmp_path / "my-backups" / "first_backup").exists()
    assert namespace["client"].list_backups() == []
    # the restore brought back every row under the suffixed name, beside the original
    result = namespace["result"]
    assert isinstance(result, RestoreReport) and not result.dry_run
    [restored] = result.collections
    assert (restored.source, restored.target) == ("default.books", "default.books_restored")
    assert restored.backup_rows == restored.imported_rows == restored.target_rows == 1000
    assert namespace["count"] == 1000
    assert "books_restored holds 1000 rows" in printed
    assert docs_milvus.has_collection("books") and docs_milvus.has_collection("books_restored")
    assert count_rows(docs_milvus, "books_restored") == count_rows(docs_milvus, "books") == 1000
    assert set(docs_milvus.list_partitions("books_restored")) == {"_default", "novels"}
    assert list(docs_milvus.list_indexes("books_restored")) == ["vector"]
    # the printed plan and the second client's repr
    assert "create_collection  default.books_restored" in printed
    assert "minioadmin" not in printed


def test_code_blocks_dedents_and_skips(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n\n"
        "!!! note\n    ```python\n    x += 1\n    ```\n\n```python\n# docs-test: skip\nraise SystemExit\n```\n",
        encoding="utf-8",
    )
    assert code_blocks(page) == [
        (4, "x = 1\n"),
        (13, "x += 1\n"),
        (17, "# docs-test: skip\nraise SystemExit\n"),
    ]
    namespace: dict[str, Any] = {}
    assert run_blocks(page, namespace) == 2
    assert namespace["x"] == 2


def test_api_page_documents_every_public_name() -> None:
    """docs/api.md has a ``::: milvus_backup_lib.NAME`` entry for each name of ``__all__``."""
    documented = set(re.findall(r"^::: milvus_backup_lib\.(\S+)$", (DOCS / "api.md").read_text(), re.M))
    mentioned_in_text = {"__version__", "NULL_PROGRESS"}
    assert set(milvus_backup_lib.__all__) - mentioned_in_text - documented == set()
    # Beside the top-level names, only the public testing package is documented, all of it.
    assert documented - set(milvus_backup_lib.__all__) == {
        "testing.embedded.EmbeddedMilvus",
        "testing.embedded.EmbeddedMilvusError",
        "testing.memory.InMemoryMilvus",
    }


def test_troubleshooting_covers_every_error() -> None:
    """docs/troubleshooting.md has a section for each error class of errors.py (the base class aside)."""
    sections = set(re.findall(r"^## (\w+)$", (DOCS / "troubleshooting.md").read_text(), re.M))
    assert set(milvus_backup_lib.errors.__all__) - sections == {"MilvusBackupError"}


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_python_examples_parse(page: str) -> None:
    """Every Python block of every page is valid Python (only the quickstart's are run)."""
    for line, code in code_blocks(DOCS / page):
        try:
            ast.parse(code, filename=page)
        except SyntaxError as exc:
            pytest.fail(f"docs/{page}, block at line {line}: {exc}")


def test_site_builds_strictly(tmp_path: Path) -> None:
    """``mkdocs build --strict``, as ``nox -s docs`` runs it; skipped where the tools are not installed."""
    missing = [
        name
        for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
        if not importable(name)
    ]
    if missing:
        pytest.skip(f"not installed here: {', '.join(missing)} (nox -s docs installs them)")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "api" / "index.html").is_file()
