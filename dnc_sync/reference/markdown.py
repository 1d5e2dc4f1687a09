"""Markdown building blocks of the generated pages: escaped text, code spans, tables.

Text taken from the code (docstrings, descriptions, help) is written as it reads in a
terminal, so everything Markdown would act on is escaped, except ``code spans``, which are
kept as code.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Sequence

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_MARKUP = re.compile(r"([\\*_\[\]{}|#])")
_LIST_START = re.compile(r"^(\d*)([-+.])(?= )")  # "- x", "+ x", "1. x" would start a list
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _escape(value: str) -> str:
    """``value`` with HTML and Markdown markup characters escaped."""
    value = "".join(_HTML.get(char, char) for char in value)
    return _MARKUP.sub(r"\\\1", value)


def text(value: str) -> str:
    """``value`` as inline Markdown on one line: code spans kept as they are (a pipe in one
    does not split a table cell), everything else escaped; whitespace runs become one space."""
    value = " ".join(value.split())
    pieces: list[str] = []
    end = 0
    for match in _CODE_SPAN.finditer(value):
        pieces.append(_escape(value[end : match.start()]))
        pieces.append(match.group(0))
        end = match.end()
    pieces.append(_escape(value[end:]))
    return "".join(pieces)


def paragraphs(value: str | None) -> str:
    """A docstring or help text as Markdown paragraphs: indentation removed, each paragraph
    (blank-line separated) joined onto one escaped line; ``\\f`` ends the text, as in click."""
    body = inspect.cleandoc(value or "").partition("\f")[0]
    parts = (text(part) for part in body.split("\n\n") if part.strip())
    return "\n\n".join(_LIST_START.sub(r"\1\\\2", part) for part in parts)


def code(value: str) -> str:
    """``value`` as a code span, with enough backticks to hold any in it."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    padded = f" {value} " if value.startswith("`") or value.endswith("`") else value
    return f"{ticks}{padded}{ticks}"


def heading(level: int, title: str, anchor: str) -> str:
    """A heading with a fixed ``anchor`` (attr_list), so links to it survive a new title."""
    return f"{'#' * level} {title} {{ #{anchor} }}"


def slug(value: str) -> str:
    """``value`` as an anchor: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A pipe table of already-escaped cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)
