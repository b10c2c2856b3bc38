"""Tables for notebooks (``_repr_html_``) and terminals (``table()``).

Plain HTML: a ``<table>`` with a ``<thead>`` and a ``<tbody>``, every value escaped with
:func:`html.escape`, a compact inline style and no scripts or CSS classes, so it renders the same in
Jupyter, VS Code and on GitHub. The text tables use the same headers and cells.

Every cell, header and heading passes :func:`printable` first: a name read from a backup may hold
control characters (an ESC sequence that recolours or rewrites the terminal, a carriage return that
hides the start of a line), which are shown escaped instead.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterable, Sequence

__all__ = [
    "format_bytes",
    "format_count",
    "html_block",
    "html_heading",
    "html_key_values",
    "html_table",
    "printable",
    "text_key_values",
    "text_table",
]

Row = Sequence[str]

#: C0 and C1 control characters and DEL; tabs and newlines too (they would break a table's layout).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape_control(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: str) -> str:
    """``text`` with every control character (C0, C1, DEL) shown as ``\\xNN``: ESC sequences inert."""
    return _CONTROL.sub(_escape_control, text)


_TABLE_STYLE = "border-collapse:collapse;margin:2px 0 8px 0"
_CELL_STYLE = "padding:2px 8px;vertical-align:top"


def format_bytes(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 GiB``: binary units, one decimal."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} PiB"


def format_count(count: int) -> str:
    """A row or file count with thousands separators: ``1,000,000``."""
    return f"{count:,}"


def _cell(tag: str, value: str, right: bool) -> str:
    align = "right" if right else "left"
    return f'<{tag} style="{_CELL_STYLE};text-align:{align}">{html.escape(printable(value))}</{tag}>'


def html_table(headers: Row, rows: Iterable[Row], *, numeric: Collection[int] = ()) -> str:
    """A ``<table>`` of ``headers`` and ``rows`` (strings, escaped here); ``numeric`` columns align right."""
    head = "".join(_cell("th", h, i in numeric) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(_cell("td", value, i in numeric) for i, value in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def html_key_values(items: Iterable[tuple[str, str]]) -> str:
    """A two-column table of one record: the names in ``<th>``, the values in ``<td>``."""
    body = "".join(f"<tr>{_cell('th', key, False)}{_cell('td', value, False)}</tr>" for key, value in items)
    return f'<table style="{_TABLE_STYLE}"><tbody>{body}</tbody></table>'


def html_heading(text: str, detail: str = "") -> str:
    """A one-line heading: ``text`` in bold, then ``detail``; both escaped."""
    extra = f" {html.escape(printable(detail))}" if detail else ""
    return f'<p style="margin:4px 0"><strong>{html.escape(printable(text))}</strong>{extra}</p>'


def html_block(*parts: str) -> str:
    """Already rendered parts, in one ``<div>``."""
    return "<div>" + "".join(parts) + "</div>"


def text_table(headers: Row, rows: Iterable[Row], *, numeric: Collection[int] = ()) -> str:
    """A fixed-width text table with a dashed rule under the headers; ``numeric`` columns align right."""
    all_rows = [tuple(map(printable, headers)), *(tuple(map(printable, row)) for row in rows)]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        cells = [
            value.rjust(width) if i in numeric else value.ljust(width)
            for i, (value, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(all_rows[0]), rule, *(line(row) for row in all_rows[1:])])


def text_key_values(items: Iterable[tuple[str, str]]) -> str:
    """``name  value`` lines, the names padded to one width."""
    pairs = [(printable(key), printable(value)) for key, value in items]
    width = max((len(key) for key, _ in pairs), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}".rstrip() for key, value in pairs)
