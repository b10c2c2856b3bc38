"""The docs cannot drift from the code: every complete Python sample runs, and the generated parts match.

Samples
-------
Every fenced ``python`` block of ``docs/*.md`` and ``README.md`` is one of:

- **run by the quickstart test**: every block of ``docs/quickstart.md``, in order, against a real
  Milvus (``tests/integration/test_docs.py``); they carry no marker;
- **run here**: marked by an HTML comment on the line before its fence (invisible on GitHub and on the
  site), ``<!-- test: run -->``, optionally with settings separated by ``;``:

  ==========================  ===================================================================
  ``given: client``           the sample uses a name it does not define: these names are provided
                              (``client``: a :class:`BackupClient` of the example cluster)
  ``backups: nightly, ...``   backups of these names (every collection of the example cluster) are
                              in the backup root before the sample runs
  ``cluster: empty``          the sample's Milvus is an empty cluster (a restore target), not the
                              example cluster
  ``main``                    run as a script (``__name__ == "__main__"``); ``sys.exit(0)`` passes
  ``as-is``                   no substitute (below): the sample brings its own in-memory cluster
  ==========================  ===================================================================

- **a fragment**: it uses names it does not define (``client``, ``BackupClient`` without its import)
  and cannot run alone; it is only parsed (``test_python_examples_parse`` in test_docs.py). An
  unmarked block that defines every name it uses is complete and fails
  :func:`test_every_complete_sample_is_run`: mark it ``<!-- test: run -->``. ``<!-- test: fragment -->``
  marks a complete-looking block that must not run (say why in the comment).

How a sample written for a real server runs here (the substitution): each sample runs alone, in a fresh
namespace, in a temporary working directory and a memory filesystem of its own (fsspec's
``memory://`` store is emptied for it), with ``milvus_backup_lib.BackupClient`` replaced by a
subclass that

1. first builds a real :class:`BackupClient` from the sample's own arguments, so they are checked
   exactly as written (types, URLs, the ``uri=`` shortcut, keyword names);
2. then connects, whatever URI and storage the sample names, to one in-memory cluster
   (:class:`InMemoryMilvus`, the *example cluster* below, or an empty one with ``cluster: empty``) and
   its storage, and to one ``memory://`` backup root per sample (so every client of a sample shares
   the backups).

``milvus_backup_lib.load_config_file`` returns :data:`EXAMPLE_CONFIG` for any path (the sample's
``from_milvus_backup_config`` then reads it for real). The example cluster holds what the docs name:
``default.c1`` (partitions ``_default`` and ``news``, an HNSW index, loaded, alias ``c1_alias``),
``db1.c1``, ``db1.c2``, ``db2.events``, ``prod.books`` (alias ``books_alias``) and ``prod.authors``.

Generated parts
---------------
- The "Go flag -> ours" table of ``docs/migration.md`` (between the ``flags:begin``/``flags:end``
  markers) is rendered from :func:`milvus_backup_lib.cli.parser.build_parser` by :func:`flag_table`,
  and its table of config keys accepted and not used (``keys:begin``/``keys:end``) from
  :mod:`milvus_backup_lib.backup_yaml.schema` by :func:`unused_keys_table`;
  ``python tests/unit/test_docs_samples.py`` rewrites both.
- The error tree of ``docs/errors.md`` is compared with the classes of :mod:`milvus_backup_lib.errors`,
  and the name tables of ``docs/api.md`` and ``docs/index.md`` with ``milvus_backup_lib.__all__``.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import inspect
import io
import re
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from fsspec.implementations.memory import MemoryFileSystem

import milvus_backup_lib
import milvus_backup_lib.errors
from milvus_backup_lib import BackupClient, MilvusConnection, RestoreOptions, StorageLocation
from milvus_backup_lib.backup_yaml import schema
from milvus_backup_lib.cli.parser import build_parser
from milvus_backup_lib.manifest.model import CollectionSchema, DataType
from milvus_backup_lib.testing.memory import InMemoryMilvus, field

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), REPO / "README.md"]
#: Run whole, in order, against a real Milvus by tests/integration/test_docs.py.
QUICKSTART = DOCS / "quickstart.md"
MIGRATION = DOCS / "migration.md"
REGENERATE = "python tests/unit/test_docs_samples.py"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z0-9_+-]*)[^`]*$")
_MARKER = re.compile(r"^\s*<!--\s*test:\s*(?P<body>.*?)\s*-->\s*$")

#: What ``load_config_file`` returns in a sample: a configVersion v2 file for a cluster on MinIO.
EXAMPLE_CONFIG: dict[str, Any] = {
    "configVersion": "v2",
    "milvus": {
        "grpc": {"address": "milvus.example.com", "port": 19530},
        "storage": {
            "provider": "minio",
            "address": "minio.example.com",
            "port": 9000,
            "bucketName": "a-bucket",
            "rootPath": "files",
            "auth": {"type": "static", "accessKeyID": "minioadmin", "secretAccessKey": "minioadmin"},
        },
    },
    "backup": {"storage": {"rootPath": "backup"}},
}


# --- reading the pages ---------------------------------------------------------------------------------


@attrs.frozen
class Sample:
    """One fenced Python block: where it is, its code, and its marker's settings (None: unmarked)."""

    page: Path
    line: int  # of the first code line
    code: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def settings(self) -> dict[str, str]:
        """``run; given: client; main`` -> ``{"run": "", "given": "client", "main": ""}``."""
        out: dict[str, str] = {}
        for part in (self.marker or "").split(";"):
            key, _, value = part.partition(":")
            if key.strip():
                out[key.strip()] = value.strip()
        return out

    def names(self, key: str) -> list[str]:
        return [n.strip() for n in self.settings.get(key, "").split(",") if n.strip()]


def samples(page: Path) -> list[Sample]:
    """The Python blocks of ``page``, each with the ``<!-- test: ... -->`` marker right before its fence.

    Blocks indented inside admonitions are dedented by their fence's indentation.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Sample] = []
    n = 0
    while n < len(lines):
        fence = _FENCE.match(lines[n])
        n += 1
        if fence is None:
            continue
        previous = next((lines[k] for k in range(n - 2, -1, -1) if lines[k].strip()), "")
        marker = _MARKER.match(previous)
        indent, body, start = fence["indent"], [], n + 1
        while n < len(lines) and lines[n].strip() != "```":
            body.append(lines[n][len(indent) :] if lines[n].startswith(indent) else lines[n].lstrip())
            n += 1
        n += 1  # the closing fence
        if fence["lang"] == "python":
            code = "\n".join(body) + "\n"
            found.append(Sample(page, start, code, marker["body"] if marker else None))
    return found


def free_names(code: str) -> set[str]:
    """Names ``code`` reads but never binds (imports, assignments, defs, arguments...), builtins aside."""
    tree = ast.parse(code)
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return read - bound - set(dir(builtins))


def all_samples() -> list[Sample]:
    return [s for page in PAGES for s in samples(page)]


def runnable() -> list[Sample]:
    return [s for s in all_samples() if "run" in s.settings]


# --- the world a sample runs in --------------------------------------------------------------------------


def _vector(i: int) -> list[float]:
    return [((i * 7 + k) % 13) / 13 for k in range(8)]


def _collection(
    cluster: InMemoryMilvus,
    db: str,
    name: str,
    rows: int,
    *,
    partitions: tuple[str, ...] = (),
    loaded: bool = False,
    alias: str = "",
) -> None:
    schema = CollectionSchema(
        fields=(
            field("id", DataType.INT64, primary=True),
            field("title", DataType.VARCHAR, max_length=64),
            field("vector", DataType.FLOAT_VECTOR, dim=8),
        )
    )
    cluster.create_collection(db, name, schema, shards_num=1, consistency_level=2)
    for number, partition in enumerate(("_default", *partitions)):
        if partition != "_default":
            cluster.create_partition(db, name, partition)
        first = number * 1000
        batch = [{"id": i, "title": f"{name} {i}", "vector": _vector(i)} for i in range(first, first + rows)]
        cluster.insert(db, name, batch, partition=partition)
    cluster.flush(db, name)
    index = (("index_type", "HNSW"), ("metric_type", "L2"), ("M", "8"), ("efConstruction", "64"))
    cluster.create_index(db, name, "vector", "vector", index)
    if loaded:
        cluster.load_collection(db, name)
    if alias:
        cluster.create_alias(db, name, alias)


def example_cluster() -> InMemoryMilvus:
    """The collections the docs' samples name (see the module docstring)."""
    cluster = InMemoryMilvus("2.3.5")
    for db in ("db1", "db2", "prod"):
        cluster.create_database(db)
    _collection(cluster, "default", "c1", 30, partitions=("news",), loaded=True, alias="c1_alias")
    _collection(cluster, "db1", "c1", 20)
    _collection(cluster, "db1", "c2", 10)
    _collection(cluster, "db2", "events", 10, loaded=True)
    _collection(cluster, "prod", "books", 20, loaded=True, alias="books_alias")
    _collection(cluster, "prod", "authors", 10)
    return cluster


@attrs.define
class World:
    """What one sample's clients connect to: one cluster, one backup root."""

    cluster: InMemoryMilvus
    backup_root: StorageLocation

    def client(self) -> BackupClient:
        return BackupClient(
            MilvusConnection(), self.cluster.storage, self.backup_root, milvus_factory=self.cluster.factory
        )


def sample_client_class(world: World) -> type[BackupClient]:
    """A :class:`BackupClient` that checks the sample's arguments, then uses ``world`` instead."""
    signature = inspect.signature(BackupClient)

    class SampleBackupClient(BackupClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            BackupClient(*args, **kwargs)  # the sample's arguments, checked as written
            bound = signature.bind(*args, **kwargs)
            bound.arguments["milvus_storage"] = world.cluster.storage
            bound.arguments["backup_storage"] = world.backup_root
            bound.arguments["milvus_factory"] = world.cluster.factory
            super().__init__(*bound.args, **bound.kwargs)

    return SampleBackupClient


def substitute(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the samples' ``BackupClient`` and ``load_config_file`` those of the module docstring."""
    monkeypatch.setattr(milvus_backup_lib, "BackupClient", sample_client_class(world))

    def load_config_file(path: object) -> dict[str, Any]:
        assert isinstance(path, str | Path), f"load_config_file({path!r}): a path is expected"
        return EXAMPLE_CONFIG

    monkeypatch.setattr(milvus_backup_lib, "load_config_file", load_config_file)


@pytest.fixture
def sample_world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    """A fresh example cluster and backup root, in a memory filesystem of the test's own."""
    monkeypatch.setattr(MemoryFileSystem, "store", {})
    monkeypatch.setattr(MemoryFileSystem, "pseudo_dirs", [""])
    monkeypatch.chdir(tmp_path)
    return World(example_cluster(), StorageLocation("memory://docs-samples/backups"))


#: The settings a ``<!-- test: ... -->`` marker may hold (see the module docstring).
SETTINGS = ("run", "given", "backups", "cluster", "main", "as-is")


def run_sample(sample: Sample, world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run ``sample`` as its marker says in ``world``; what it printed. Tracebacks show the page's lines."""
    settings = sample.settings
    given = sample.names("given")
    unknown = set(settings) - set(SETTINGS) | {f"given: {name}" for name in given if name != "client"}
    assert not unknown, f"{sample.where}: unknown marker setting(s) {sorted(unknown)}"
    for name in sample.names("backups"):
        world.client().create_backup(name)
    if settings.get("cluster") == "empty":
        world.cluster = InMemoryMilvus("2.3.5")
    if "as-is" not in settings:
        substitute(world, monkeypatch)
    namespace: dict[str, Any] = {"__name__": "__main__" if "main" in settings else "docs_sample"}
    if "client" in given:
        namespace["client"] = world.client()
    code = compile("\n" * (sample.line - 1) + sample.code, str(sample.page), "exec")
    printed = io.StringIO()
    exit_code: object = None
    with contextlib.redirect_stdout(printed):
        try:
            exec(code, namespace)
        except SystemExit as exc:
            exit_code = exc.code if "main" in settings else f"sys.exit({exc.code!r}) outside main"
    assert exit_code in (0, None), f"{sample.where}: exited with {exit_code!r}"
    return printed.getvalue()


# --- samples ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", runnable(), ids=lambda s: s.where)
def test_sample_runs(sample: Sample, sample_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each marked sample runs as written (against the substitutes of the module docstring)."""
    printed = run_sample(sample, sample_world, monkeypatch)
    assert "minioadmin" not in printed, f"{sample.where} printed a credential"


def test_every_complete_sample_is_run() -> None:
    """No complete sample escapes: outside the quickstart, an unmarked block must be a fragment."""
    unmarked_complete = [
        s.where for s in all_samples() if s.page != QUICKSTART and s.marker is None and not free_names(s.code)
    ]
    assert not unmarked_complete, (
        f"complete samples without a marker: {unmarked_complete}; put <!-- test: run --> on the line"
        " before the fence (see tests/unit/test_docs_samples.py)"
    )
    marked_quickstart = [s.where for s in samples(QUICKSTART) if s.marker is not None]
    assert not marked_quickstart, f"the quickstart is run whole by test_docs.py: {marked_quickstart}"


def test_marked_samples_define_what_they_use() -> None:
    """A sample marked ``run`` uses only names it defines or is given: what a reader can copy."""
    for sample in runnable():
        missing = free_names(sample.code) - set(sample.names("given"))
        assert not missing, f"{sample.where} uses {sorted(missing)} without defining them"


def test_samples_are_found_and_classified(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- test: run; given: client; backups: a, b -->\n```python\nclient.list_backups()\n```\n\n"
        "text\n\n```python\nx = y\n```\n\n!!! note\n    <!-- test: run -->\n    ```python\n    x = 1\n    ```\n",
        encoding="utf-8",
    )
    first, second, third = samples(page)
    assert (first.line, first.code, first.names("given"), first.names("backups")) == (
        3,
        "client.list_backups()\n",
        ["client"],
        ["a", "b"],
    )
    assert second.marker is None and free_names(second.code) == {"y"}
    assert (third.line, third.code, third.settings) == (15, "x = 1\n", {"run": ""})
    assert free_names("import a.b\nfrom c import d as e\ndef f(g):\n    return a, e, g, h\n") == {"h"}


def test_the_example_cluster_has_what_the_samples_name(
    sample_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = sample_world.cluster
    assert {db: cluster.list_collections(db) for db in cluster.list_databases()} == {
        "default": ["c1"],
        "db1": ["c1", "c2"],
        "db2": ["events"],
        "prod": ["books", "authors"],
    }
    # the client the samples get is a BackupClient, and a sample's own client lands in the same world
    substitute(sample_world, monkeypatch)
    client = milvus_backup_lib.BackupClient(
        uri="http://elsewhere:19530", milvus_storage="s3://x/files", backup_storage="s3://y"
    )
    assert isinstance(client, BackupClient) and client.backup_storage == sample_world.backup_root
    assert client.list_backups() == []
    with pytest.raises(TypeError):  # the sample's own arguments are checked as BackupClient checks them
        milvus_backup_lib.BackupClient(uri="http://elsewhere:19530", backup_root="s3://y")


# --- name tables ----------------------------------------------------------------------------------------


def _section(page: Path, start: str, end: str) -> str:
    text = page.read_text(encoding="utf-8")
    begin = text.index(start)
    return text[begin : text.index(end, begin)]


def test_name_tables_list_every_public_name() -> None:
    """api.md's overview (what GitHub readers see) and index.md's Public names list all of ``__all__``."""
    overview = _section(DOCS / "api.md", "| name |", "## The client")
    missing = [n for n in milvus_backup_lib.__all__ if f"`{n}`" not in overview]
    assert not missing, f"docs/api.md's table does not name {missing}"
    public = _section(DOCS / "index.md", "## Public names", "\n## ")
    errors = set(milvus_backup_lib.errors.__all__) - {"MilvusBackupError"}
    missing = [n for n in milvus_backup_lib.__all__ if n not in errors and f"`{n}`" not in public]
    assert not missing, f"docs/index.md's Public names table does not name {missing}"


# --- the flag table of migration.md ------------------------------------------------------------------------

#: Commands of this tool that the Go tool does not have.
OUR_COMMANDS = frozenset({"verify", "prune", "materialize"})
#: Flags of this tool that the Go tool does not have, as (command, first long spelling); "" is global.
OUR_FLAGS = frozenset(
    {
        ("", "--json"),
        ("", "--verbose"),
        ("", "--quiet"),
        ("create", "--resume"),
        ("create", "--pause_gc"),
        ("create", "--dry_run"),
        ("create", "--base"),
        ("create", "--self_contained"),
        ("list", "--all"),
        ("restore", "--no_rebuild_index"),
        ("restore", "--no_aliases"),
        ("restore", "--dry_run"),
    }
)
#: Go v0.5 flags outside the parsers' "v0.5 spellings" groups.
V05_FLAGS = frozenset({("list", "--collection"), ("get", "--detail")})
#: The Python side of each command and flag ("" when there is none).
PYTHON: dict[tuple[str, str], str] = {
    ("", "--config"): "`from_milvus_backup_config(load_config_file(path))`",
    ("", "--set"): "`from_milvus_backup_config(..., set_values={...})`",
    ("create", ""): "`create_backup()`",
    ("create", "--name"): "`create_backup(name)`",
    ("create", "--filter"): "`create_backup(collections=...)`",
    ("create", "--strategy"): "`create_backup(strategy=...)`",
    ("create", "--rbac"): "`create_backup(rbac=True)`",
    ("create", "--resume"): "`create_backup(resume=True)`",
    ("create", "--base"): '`create_backup(base="nightly_01")`, `base="latest"`',
    ("create", "--self_contained"): "`create_backup(self_contained=True)`",
    ("create", "--pause_gc"): '`BackupClient(pause_gc="auto"|True|False)`',
    ("create", "--dry_run"): "`plan_backup()`",
    ("create", "--colls"): "`create_backup(collections=...)`",
    ("create", "--databases"): '`create_backup(collections=["db1.*"])`',
    ("create", "--database_collections"): "`create_backup(collections=...)`",
    ("create", "--force"): '`create_backup(strategy="skip_flush")`',
    ("create", "--meta_only"): '`create_backup(strategy="meta_only")`',
    ("list", ""): "`list_backups()`",
    ("list", "--all"): "`list_unfinished()`",
    ("list", "--collection"): '`[s for s in list_backups() if "db.coll" in s.collections]`',
    ("get", ""): "`get_backup(name)`",
    ("get", "--name"): "`get_backup(name)`",
    ("get", "--detail"): "`get_backup(name)` (a `BackupInfo`)",
    ("delete", ""): "`delete_backup(name)`",
    ("delete", "--name"): "`delete_backup(name)`",
    ("materialize", ""): "`materialize(name)`",
    ("materialize", "--name"): "`materialize(name)`",
    ("restore", ""): "`restore(name, ...)`",
    ("restore", "--name"): "`restore(name)`",
    ("restore", "--suffix"): '`suffix="_bak"` (appended as given too)',
    ("restore", "--rename"): "`rename=`",
    ("restore", "--filter"): "`collections=` (by **source** name)",
    ("restore", "--rbac"): "`restore_rbac(name)`, after `restore`",
    ("restore", "--dry_run"): "`dry_run=True`, or `plan_restore()`",
    ("restore", "--collections"): "`collections=`",
    ("restore", "--databases"): '`collections=["db1.*"]`',
    ("restore", "--database_collections"): "`collections=`",
    ("restore", "--restore_index"): "`rebuild_indexes=True`",
    ("check", ""): "`StorageLocation.check_root()`",
    ("verify", ""): "`verify_backup(name)`",
    ("verify", "--name"): "`verify_backup(name)`",
    ("verify", "--level"): '`verify_backup(name, "checksum")`',
    ("prune", ""): "`prune(...)`",
    ("prune", "--keep-last"): "`prune(keep_last=N)`",
    ("prune", "--keep-hourly"): "`prune(keep_hourly=N)`",
    ("prune", "--keep-daily"): "`prune(keep_daily=N)`",
    ("prune", "--keep-weekly"): "`prune(keep_weekly=N)`",
    ("prune", "--keep-monthly"): "`prune(keep_monthly=N)`",
    ("prune", "--keep-yearly"): "`prune(keep_yearly=N)`",
    ("prune", "--keep-within"): '`prune(keep_within="7d")`',
    ("prune", "--unfinished-older-than"): '`prune(unfinished_older_than="2d")`',
    ("prune", "--dry_run"): "`prune(dry_run=True)` (the default in Python)",
}
_SKIPPED = ("-h", "--help", "--version")


def _cell(text: str) -> str:
    """``text`` as a table cell, on one line: ``|``, ``*`` (``db1.*``) and braces (JSON, which the
    site's ``attr_list`` would take for attributes at the end of a cell) escaped."""
    for char in "|*{}":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def _spelling(action: argparse.Action) -> str:
    """How the flag is written, with its argument: ``-n NAME``, ``--level {exists,size,checksum}``."""
    names = "/".join(action.option_strings)
    if action.nargs == 0:
        return f"`{names}`"
    if action.choices:
        return f"`{names} {{{','.join(str(c) for c in action.choices)}}}`"
    return f"`{names} {action.metavar or action.dest.upper()}`"


def _go_spelling(action: argparse.Action) -> str:
    """The Go tool's spelling: the option strings without the ``-`` twins of ``_`` names added here."""
    strings = action.option_strings
    return "/".join(s for s in strings if not ("-" in s[2:] and "--" + s[2:].replace("-", "_") in strings))


def _python(command: str, key: str, action: argparse.Action | None) -> str:
    if (command, key) in PYTHON:
        return PYTHON[(command, key)]
    if command == "restore" and action is not None and action.dest in attrs.fields_dict(RestoreOptions):
        if isinstance(action, argparse._StoreTrueAction):
            return f"`{action.dest}=True`"
        if isinstance(action, argparse._StoreFalseAction):
            return f"`{action.dest}=False`"
        return f"`{action.dest}=`"
    return "(none)"


def _long(action: argparse.Action) -> str:
    return next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])


def _rows(command: str, parser: argparse.ArgumentParser, *, globals_only: bool) -> list[str]:
    rows = []
    for group in parser._action_groups:
        is_global = group.title == "global options"
        if is_global != globals_only:
            continue
        v05_group = (group.title or "").startswith("v0.5")
        for action in group._group_actions:
            if not action.option_strings or set(action.option_strings) & set(_SKIPPED):
                continue
            key = _long(action)
            prefix = f"{command} " if command else ""
            if command in OUR_COMMANDS or (command, key) in OUR_FLAGS:
                go = "(none)"
            elif v05_group or (command, key) in V05_FLAGS:
                go = f"`{prefix}{_go_spelling(action)}` (v0.5)"
            else:
                go = f"`{prefix}{_go_spelling(action)}`"
            here = f"{prefix}{_spelling(action).strip('`')}"
            rows.append(f"| {go} | `{here}` | {_cell(action.help or '')} | {_python(command, key, action)} |")
    return rows


def flag_table() -> str:
    """The markdown table of every command and flag of :func:`build_parser`, with the Go tool's side."""
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    lines = [
        "| Go tool | `milvus-backup-lib` | what it does here | Python (`BackupClient` and `RestoreOptions`) |",
        "|---|---|---|---|",
        *_rows("", parser, globals_only=True),
    ]
    for name, sub in commands.choices.items():
        go = "(none)" if name in OUR_COMMANDS else f"`{name}`"
        lines.append(f"| {go} | `{name}` | **{_cell(helps.get(name) or '')}** | {_python(name, '', None)} |")
        lines.extend(_rows(name, sub, globals_only=False))
    return "\n".join(lines) + "\n"


def unused_keys_table() -> str:
    """The markdown table of the ``backup.yaml`` keys accepted and not used, by reason, v1 and v2."""
    reasons: dict[str, tuple[list[str], list[str]]] = {}
    for column, keys in enumerate((schema.V1_KEYS, schema.V2_KEYS)):
        for key, reason in keys.items():
            if reason:
                reasons.setdefault(reason, ([], []))[column].append(f"`{key}`")
    lines = ["| not used because | v1 keys | v2 keys |", "|---|---|---|"]
    lines += [f"| {_cell(why)} | {', '.join(v1)} | {', '.join(v2)} |" for why, (v1, v2) in reasons.items()]
    return "\n".join(lines) + "\n"


#: The generated parts of docs/migration.md: marker name -> what renders it.
GENERATED = {"flags": flag_table, "keys": unused_keys_table}


def _split(text: str, name: str) -> tuple[str, str, str]:
    """``text`` around the part between ``<!-- NAME:begin ... -->`` and ``<!-- NAME:end -->``."""
    begin = text.index(f"<!-- {name}:begin")
    body = text.index("\n", begin) + 1
    end = text.index(f"<!-- {name}:end -->", body)
    return text[:body], text[body:end], text[end:]


def write_generated() -> list[str]:
    """Rewrite the generated parts of docs/migration.md; the names of those that changed."""
    text = MIGRATION.read_text(encoding="utf-8")
    changed = []
    for name, render in GENERATED.items():
        head, old, tail = _split(text, name)
        if old != render():
            text = head + render() + tail
            changed.append(name)
    MIGRATION.write_text(text, encoding="utf-8")
    return changed


@pytest.mark.parametrize("name", list(GENERATED))
def test_generated_tables_of_migration_md_are_current(name: str) -> None:
    """The flag table is the parser's, the unused-key table the config schema's."""
    _, committed, _ = _split(MIGRATION.read_text(encoding="utf-8"), name)
    assert committed == GENERATED[name](), (
        f"the {name} table of docs/migration.md differs from what the code says: regenerate it with"
        f" `{REGENERATE}`"
    )


def test_flag_table_covers_every_flag() -> None:
    """Each command and each spelling of each flag has its row; the hand-kept tables name only real ones."""
    table = flag_table()
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    listed: set[tuple[str, str]] = set()
    for row in table.splitlines()[2:]:
        words = row.split(" | ")[1].strip("`").split()
        command = words[0] if words[0] in commands.choices else ""
        listed |= {(command, s) for word in words if word.startswith("-") for s in word.split("/")}
        if command and len(words) == 1:
            listed.add((command, ""))
    expected = {("", s) for a in parser._actions for s in a.option_strings if s not in _SKIPPED}
    for name, sub in commands.choices.items():
        expected.add((name, ""))
        for group in sub._action_groups:
            if group.title != "global options":
                expected |= {(name, s) for a in group._group_actions for s in a.option_strings}
    assert expected - {(c, s) for c, s in expected if s in _SKIPPED} == listed
    for key in {*OUR_FLAGS, *V05_FLAGS, *PYTHON}:
        command, flag = key
        if flag:
            assert flag in table, f"{key} names a flag the parser does not have"
        else:
            assert command in commands.choices, f"{key} names a command the parser does not have"
    assert "--level {exists,size,checksum}" in table


# --- the error tree of errors.md -------------------------------------------------------------------------

_TREE_LINE = re.compile(r"^(?P<lead>[ |+-]*)(?P<name>\w+Error)(?: \((?P<builtin>\w+)\))?")


def test_error_tree_of_errors_md_is_errors_py() -> None:
    """Each class of the diagram has the parent and the builtin it has in errors.py, and none is missing."""
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    block = text.split("```\n", 2)[1]
    module = milvus_backup_lib.errors
    ours = {name: getattr(module, name) for name in module.__all__}
    stack: list[tuple[int, str]] = []
    drawn = {}
    for line in block.splitlines():
        match = _TREE_LINE.match(line)
        assert match, f"errors.md tree: cannot read {line!r}"
        depth = len(match["lead"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        name, cls = match["name"], ours.get(match["name"])
        assert cls is not None, f"errors.md draws {name}, which errors.py does not define"
        parent = stack[-1][1] if stack else None
        library_bases = [b.__name__ for b in cls.__bases__ if b.__name__ in ours]
        assert library_bases[:1] == ([parent] if parent else []), f"{name}: drawn below {parent}"
        builtin = [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (object, BaseException)]
        own = [b.__name__ for b in cls.__bases__ if b.__module__ == "builtins"]
        if match["builtin"]:
            assert match["builtin"] in own or match["builtin"] == builtin[0].__name__, (
                f"{name} is drawn as a {match['builtin']}, but derives from {[b.__name__ for b in builtin]}"
            )
        else:
            assert not own, f"{name} derives from {own}, which the diagram does not say"
        drawn[name] = parent
        stack.append((depth, name))
    assert set(drawn) == set(ours), f"not drawn: {sorted(set(ours) - set(drawn))}"


if __name__ == "__main__":
    rewritten = write_generated()
    print(f"{MIGRATION.relative_to(REPO)}: rewrote {rewritten or 'nothing'}", file=sys.stderr)
