"""CSV import: ``read_csv`` turns an address-book CSV export into ``ImportRecord``s.

Parsing follows RFC 4180 as Python's ``csv`` module reads it with ``strict=True`` (quoted
fields with doubled quotes, CR, LF and TAB inside quotes), with the delimiter (``,``, ``;`` or
TAB) chosen from the header row. The header row decides what each column means
(``csv_dialects``); a file whose first row is not a header of a known layout is refused with
``ImportFormatError``.

Malformed rows. A quoted field may hold line breaks (a multi-line Notes field or address), so a
row may span lines. A row that breaks the quoting rules is one invalid record, whose ``_card``
error names the line where it starts ("The row starting on line N could not be read: ..."): a
quoted field still open at the end of the file, a closing quote followed by something else than
the delimiter or the line end (``"Smith" Jr``), a carriage return outside quotes, a field longer
than ``csv.field_size_limit()`` (131,072 characters). It never swallows the rows after it: when
its quoted field ran over line ends (up to line M), the lines after its first are read again as
rows of their own, held until every row starting on lines N+1 to M is known to be a row: it has
the header's number of fields, or none (a blank line), or is malformed itself (reported the same
way). If one has another number of fields, those lines may as well be text of the broken field,
so nothing after line N is imported, and one more invalid record (line N+1) says that lines N+1
to the end of the file (with their count) were not read. Rows that span lines but break no
rule are read as they are (a missing quote that another quote closes later is not detected
when the row it makes is well-formed).

Every data cell that is one or more ``'`` then ``=``, ``+``, ``-``, ``@``, TAB or CR loses its
first ``'`` (``csv_formulas.unescape_formula``): the escape against spreadsheet formulas that
``csv_writer`` (and other careful exporters) put there, undone so an export imports back to the
same contacts. The cost: a value of another writer that really starts with ``'=`` (or ``'+``,
``'-``...) comes in without that apostrophe; any other ``'`` (``'x``, ``O'Brien``) stays.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

from contacts_exchange.byte_source import plain_utf8, read_lines, rewindable, wide_encoding
from contacts_exchange.csv_dialects import Column, columns_for, row_fields
from contacts_exchange.csv_formulas import unescape_formula
from contacts_exchange.errors import ImportFormatError, ImportTooLarge
from contacts_exchange.file_encoding import UTF8, FileEncoding, guess_message, segments_encoding
from contacts_exchange.records import CARD, ImportRecord, problem, validate_record

DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_RECORDS: Final = 10_000
_DELIMITERS: Final = (",", ";", "\t")


def read_csv(
    stream: BinaryIO,
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    default_region: str = "US",
) -> Iterator[ImportRecord]:
    """Yield one ``ImportRecord`` per data row of ``stream`` (a binary file object).

    Encoding: decided once for the whole file (``file_encoding``): a BOM, else the NUL
    pattern of UTF-16/UTF-32, else UTF-8, else charset-normalizer's guess, which every row
    holding non-ASCII text reports as a warning ("read as shift_jis (a guess)"). A stream that
    is not seekable is copied first (``byte_source.rewindable``): the file is read twice.
    ``position`` and ``line`` are the 1-based line
    number where the row starts (the header is line 1; a quoted field may span lines).
    Rows with no value at all are skipped. A malformed row is an invalid record, and the rows
    after it are read again or reported unread (the module's docstring gives the rule). Phone
    numbers without ``+`` are read for ``default_region``.

    Raises ``ImportFormatError`` when the first row is not a recognizable header, and its
    subclass ``UndecodableFile`` when no encoding reads the file as clean text;
    ``ImportTooLarge`` past ``max_bytes`` bytes or ``max_records`` data rows.
    """
    stream = rewindable(stream, max_bytes=max_bytes)
    encoding = _file_encoding(stream, max_bytes)
    lines = _text_lines(read_lines(stream, max_bytes=max_bytes, encoding=encoding), encoding)
    first = next(lines, None)
    if first is None:
        return
    delimiter = max(_DELIMITERS, key=lambda d: _count_outside_quotes(first, d))
    source = _Lines(itertools.chain((first,), lines))
    header = _header(csv.reader(source, delimiter=delimiter, strict=False), source)
    columns = _header_columns(header)
    guess = f"The file is not UTF-8; {guess_message(encoding)}." if encoding.guessed else None
    rows = _rows(source, delimiter, width=len(header))
    yield from _records(
        rows, columns, max_records=max_records, default_region=default_region, guess=guess
    )


def _file_encoding(stream: BinaryIO, max_bytes: int) -> FileEncoding:
    """The encoding of the whole file (``file_encoding``); ``stream`` is left where it was."""
    encoding = wide_encoding(stream)
    if encoding is not None and encoding.wide:
        return encoding
    if plain_utf8(stream, max_bytes=max_bytes):
        return UTF8  # every line is UTF-8 then: what the pass below answers, at C speed
    start = stream.tell()
    encoding = segments_encoding(read_lines(stream, max_bytes=max_bytes))
    stream.seek(start)
    return encoding


def _header(reader: Any, source: _Lines) -> list[str]:
    # ``reader`` is a ``csv.reader`` (its type is private to ``_csv``) of ``source``.
    """The header row. Raises ``ImportFormatError`` when the first row is not CSV text, or
    does not end on the first line (a quote in it is not closed there)."""
    try:
        header: list[str] = next(reader, [])
    except csv.Error:
        raise ImportFormatError(
            "Not a CSV file: its first line is not CSV text (it has a carriage return "
            "outside quotes or an overlong field, as binary files do)."
        ) from None
    if len(source.taken) > 1:
        raise ImportFormatError(
            "The CSV file's header row (line 1) has a quoted column name that is not closed "
            "on that line."
        )
    return header


def _header_columns(header: list[str]) -> list[Column]:
    """The columns ``header`` names. Raises ``ImportFormatError`` when it names no column we
    know."""
    columns = columns_for(header)
    if not columns:
        raise ImportFormatError(
            "The CSV file has no header row naming its columns (expected e.g. 'First Name', "
            "'Last Name', 'E-mail 1 - Value' as Google Contacts and Outlook export them)."
        )
    return columns


class _Lines:
    """The lines of a CSV file for ``csv.reader`` to pull one at a time, numbered from 1:
    ``number`` is the number of the line it hands out next, ``taken`` the lines handed out
    since the caller last cleared it; ``put_back`` lines to have them read again."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._back: list[str] = []  # put back, the next one last
        self.number = 1
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else next(self._lines)
        self.taken.append(line)
        self.number += 1
        return line

    def put_back(self, lines: list[str]) -> None:
        self._back.extend(reversed(lines))
        self.number -= len(lines)


#: One data row: the line where it starts and its cells, or a ``str``: why it cannot be read.
_Row = tuple[int, list[str] | str]


def _rows(source: _Lines, delimiter: str, *, width: int) -> Iterator[_Row]:
    """The data rows of ``source`` (the header read), read strictly (RFC 4180); a row that
    breaks the quoting rules becomes its message, and the lines it swallowed are read again
    when that is unambiguous (``read_csv`` gives the rule; ``width`` is the header's number of
    fields)."""
    reader = csv.reader(source, delimiter=delimiter, strict=True)
    #: While lines a malformed row swallowed are read again (up to line ``reread_until``),
    #: their rows are held in ``held``, the malformed row first: they are yielded once every
    #: row starting on those lines proved to be one (or dropped, with the rest of the file).
    reread_until = 0
    held: list[_Row] = []
    while True:
        start = source.number
        source.taken.clear()
        try:
            row: list[str] | str = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            taken = list(source.taken)
            row = _malformed(start, start + len(taken) - 1, str(exc), delimiter)
            if len(taken) > 1:  # a quoted field ran over line ends: read them again
                if start > reread_until:  # the rows held before are rows
                    yield from held
                    held.clear()
                source.put_back(taken[1:])
                reader = csv.reader(source, delimiter=delimiter, strict=True)
                reread_until = max(reread_until, start + len(taken) - 1)
                held.append((start, row))
                continue
        if start <= reread_until:
            if isinstance(row, list) and any(cell.strip() for cell in row) and len(row) != width:
                yield held[0]
                yield _unread(source, held[0][0], start, len(row), width)
                return
            held.append((start, row))
            continue
        yield from held
        held.clear()
        yield start, row
    yield from held


def _malformed(start: int, end: int, error: str, delimiter: str) -> str:
    """Why the row starting on line ``start`` (read up to line ``end``) cannot be read, from
    the ``csv.Error`` message ``error``."""
    where = f"on line {end}, " if end != start else ""
    if error == "unexpected end of data":
        reason = "a quoted field is not closed before the end of the file"
    elif error.startswith("'"):  # "',' expected after '\"'"
        reason = (
            f"{where}a closing quote is followed by other text, not by '{delimiter}' or the "
            "end of the line"
        )
    elif error.startswith("new-line character"):
        reason = f"{where}a carriage return is outside quotes"
    else:
        reason = f"{where}{error}"
    return f"The row starting on line {start} could not be read: {reason}."


def _unread(source: _Lines, malformed: int, row: int, fields: int, width: int) -> _Row:
    """The error standing for the lines after line ``malformed`` up to the end of the file,
    which cannot be told apart from the text of its quoted field (the row starting on line
    ``row`` has ``fields`` fields where the header has ``width``)."""
    source.taken.clear()
    for _line in source:
        source.taken.clear()
    first, last = malformed + 1, source.number - 1
    lines = (
        f"Line {first} (the last line of the file) was"
        if first == last
        else f"Lines {first} to {last} ({last - malformed} lines, the rest of the file) were"
    )
    return (
        first,
        f"{lines} not read: the broken quoted field of the row on line {malformed} may hold "
        f"them (read as rows, the one on line {row} has {_fields(fields)}, the header "
        f"{_fields(width)}). Correct the quotes from line {malformed} on and import the file "
        "again.",
    )


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"


def _records(
    rows: Iterator[_Row],
    columns: list[Column],
    *,
    max_records: int,
    default_region: str,
    guess: str | None,
) -> Iterator[ImportRecord]:
    """One record per data row after the header (empty rows skipped); see ``read_csv``.
    ``guess`` is the warning of every row with non-ASCII text when the encoding is a guess."""
    count = 0
    for position, row in rows:
        if isinstance(row, list) and not any(cell.strip() for cell in row):
            continue
        count += 1
        if count > max_records:
            raise ImportTooLarge("max_records", max_records)
        if isinstance(row, str):
            record = ImportRecord(position=position, line=position)
            record.errors.append(problem(CARD, row))
            yield record
            continue
        record = _record(columns, row, position, default_region)
        if guess and not all(cell.isascii() for cell in row):
            record.warnings.append(problem(CARD, guess))
        yield record


def _record(
    columns: list[Column], row: list[str], position: int, default_region: str
) -> ImportRecord:
    record = ImportRecord(position=position, line=position)
    try:
        fields = row_fields(columns, _without_formula_escapes(row))
        validate_record(record, fields, default_region=default_region)
    except Exception as exc:  # one unreadable row must not stop the import
        record.data = None
        record.errors.append(problem(CARD, f"The row could not be read: {exc}"))
    return record


def _text_lines(lines: Iterator[bytes], encoding: FileEncoding) -> Iterator[str]:
    # UTF-16/32 lines come transcoded to UTF-8; the others decode cleanly (``segments_encoding``).
    name = "utf-8" if encoding.wide else encoding.name
    for line in lines:
        yield line.decode(name, errors="replace") + "\n"


def _without_formula_escapes(row: list[str]) -> list[str]:
    """``row`` with the spreadsheet formula escape (a leading ``'``) undone in every cell."""
    return [unescape_formula(cell) for cell in row]


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count = 0
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count
