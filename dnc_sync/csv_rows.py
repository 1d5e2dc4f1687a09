"""The CSV side of an import: which columns hold what, reading rows, writing the rejects file.

Row numbers count CSV records with the header as row 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from dnc.errors import FieldProblem
from dnc.masking import redact

PHONE, ACTION, TIMESTAMP, REGION, EXPIRY = (
    "phoneNumber",
    "eventName",
    "timestamp",
    "region",
    "expiresAt",
)
REJECT_COLUMNS = ("reject_row", "reject_field", "reject_reason", "reject_message")
"""First columns of the rejects file; the input's own columns follow, raw."""


class HeaderError(ValueError):
    """The header row does not hold the columns asked for (missing or given twice): a usage
    problem, fixed with the ``--*-column`` options."""


class UnreadableFile(OSError):
    """The file cannot be read as CSV in the given encoding (``str()`` says where)."""


@dataclass(frozen=True, slots=True)
class Columns:
    """Header names of the columns to read. ``region`` / ``expiry``: ``None`` reads the column
    named ``region`` / ``expiresAt`` when the file has one; a name given must be present."""

    phone: str = PHONE
    action: str = ACTION
    timestamp: str = TIMESTAMP
    region: str | None = None
    expiry: str | None = None


def map_header(header: Sequence[str], columns: Columns) -> dict[str, int]:
    """Wire field name -> column index in ``header`` (names compared after stripping spaces).

    Raises ``HeaderError`` naming each missing header and the headers found (digit runs
    masked: a headerless file's first row may be data), or a header present twice.
    """
    names = [name.strip() for name in header]
    wanted = {PHONE: columns.phone, ACTION: columns.action, TIMESTAMP: columns.timestamp}
    for wire, given, default in (
        (REGION, columns.region, REGION),
        (EXPIRY, columns.expiry, EXPIRY),
    ):
        if given is not None or default in names:
            wanted[wire] = given if given is not None else default
    missing = [name for name in wanted.values() if name not in names]
    if missing:
        found = ", ".join(repr(redact(name, 40)) for name in names) or "none"
        raise HeaderError(
            f"missing header(s) {', '.join(map(repr, missing))}; headers found: {found}"
        )
    twice = [name for name in wanted.values() if names.count(name) > 1]
    if twice:
        raise HeaderError(f"header(s) {', '.join(map(repr, twice))} appear more than once")
    return {wire: names.index(name) for wire, name in wanted.items()}


class RejectsFile:
    """The rejects CSV on ``stream``: ``REJECT_COLUMNS`` then the input's header; one line per
    refused row with its row number, the fields, reasons and messages of its problems (joined
    with ``"; "``) and its raw cells. Fixed in place, it imports again as it is."""

    def __init__(self, stream: TextIO, header: Sequence[str], delimiter: str = ",") -> None:
        self._writer = csv.writer(stream, delimiter=delimiter, lineterminator="\n")
        self._writer.writerow([*REJECT_COLUMNS, *header])

    def write(self, row: int, cells: Sequence[str], problems: Sequence[FieldProblem]) -> None:
        """Append one refused row."""
        self._writer.writerow(
            [
                row,
                "; ".join(p.field for p in problems),
                "; ".join(p.reason for p in problems),
                "; ".join(p.message for p in problems),
                *cells,
            ]
        )


@dataclass(frozen=True, slots=True)
class CsvSource:
    """An open CSV: its ``header``, ``rows`` (row number, cells) after it, and ``bytes_read``
    (bytes of the file consumed so far, for progress)."""

    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    bytes_read: Callable[[], int]


@contextlib.contextmanager
def open_csv(path: Path, encoding: str, delimiter: str) -> Iterator[CsvSource]:
    """Open the CSV at ``path`` (``encoding``, e.g. ``utf-8-sig`` drops a BOM) and read its
    header; the file is closed on leaving the block.

    Raises ``OSError`` when it cannot be opened and ``UnreadableFile`` when it is empty;
    iterating ``rows`` raises ``UnreadableFile`` for text that does not decode or a line the
    csv module refuses, naming the last good row.
    """
    binary = path.open("rb")
    with io.TextIOWrapper(binary, encoding=encoding, newline="") as text:
        rows = _checked(csv.reader(text, delimiter=delimiter), binary.tell)
        try:
            _, header = next(rows)
        except StopIteration:
            raise UnreadableFile("the file is empty: no header row") from None
        yield CsvSource(header, rows, binary.tell)


def _checked(
    reader: Iterator[list[str]], tell: Callable[[], int]
) -> Iterator[tuple[int, list[str]]]:
    row = 0
    try:
        for row, cells in enumerate(reader, start=1):
            yield row, cells
    except UnicodeDecodeError as exc:
        # The decoder works on chunks: the bad byte is ahead of the file position by the
        # rest of the chunk it was in.
        at = tell() - len(exc.object) + exc.start
        raise UnreadableFile(
            f"cannot decode the file as {exc.encoding} at byte {at}, after row {row} "
            "(try --encoding)"
        ) from None
    except csv.Error as exc:
        raise UnreadableFile(f"unreadable CSV after row {row}: {exc}") from None


@dataclass(frozen=True, slots=True)
class CsvFormat:
    """How to read a file: the ``columns`` to map, its text ``encoding`` (``utf-8-sig``
    drops a BOM) and its one-character field ``delimiter``."""

    columns: Columns = Columns()
    encoding: str = "utf-8-sig"
    delimiter: str = ","


def row_fields(cells: Sequence[str], positions: Mapping[str, int]) -> dict[str, str]:
    """The webhook fields of a row: each mapped cell, stripped; a cell the row lacks is
    absent (a required one is then refused as ``missing``)."""
    return {name: cells[i].strip() for name, i in positions.items() if i < len(cells)}


def default_rejects_path(path: Path) -> Path:
    """Where the rejects of ``path`` go by default: beside it, ``optouts.csv`` ->
    ``optouts.rejects.csv`` (``list.txt`` -> ``list.txt.rejects.csv``)."""
    if path.suffix.lower() == ".csv":
        return path.with_name(path.name[: -len(path.suffix)] + ".rejects.csv")
    return path.with_name(path.name + ".rejects.csv")
