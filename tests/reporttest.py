"""Test support for the written report: reading tables back out of a rendered page."""

from __future__ import annotations

import html.parser

__all__ = ["html_tables"]


class _Tables(html.parser.HTMLParser):
    """The tables of a page as lists of rows of cell texts (``<br>`` as a newline)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "meta") not in attrs:
            self.tables.append([])
            self._depth += 1
        elif self._depth and tag == "tr":
            self.tables[-1].append([])
        elif self._depth and tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(page: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables
