"""Writing a benchmark's results into docs/benchmarks.md: each benchmark owns the text between its markers."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, block: str, begin: str, end: str, heading: str = "") -> None:
    """Put ``block`` (which starts with ``begin`` and ends with ``end``) between those markers in ``path``,
    keeping the rest; without the markers, append it (under ``## heading`` when given); without the
    file, create it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + (f"## {heading}\n\n" if heading else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
