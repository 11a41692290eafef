"""CSV import: ``read_csv`` turns an address-book CSV export into ``ImportRecord``s.

Parsing follows RFC 4180 as Python's ``csv`` module reads it (quoted fields with doubled
quotes, CR, LF and TAB inside quotes), with the delimiter (``,``, ``;`` or TAB) chosen from
the header row. The header row decides what each column means (``csv_dialects``); a file
whose first row is not a header of a known layout is refused with ``ImportFormatError``.

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
    Rows with no value at all are skipped. Phone numbers without ``+`` are read for
    ``default_region``.

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
    reader = csv.reader(itertools.chain((first,), lines), delimiter=delimiter, strict=False)
    columns = _header_columns(reader)
    guess = f"The file is not UTF-8; {guess_message(encoding)}." if encoding.guessed else None
    yield from _records(
        reader, columns, max_records=max_records, default_region=default_region, guess=guess
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


def _header_columns(reader: Any) -> list[Column]:
    # ``reader`` is a ``csv.reader`` (its type is private to ``_csv``).
    """The columns the header row names. Raises ``ImportFormatError`` when the first row is
    not CSV text or names no column we know."""
    try:
        header = next(reader)
    except csv.Error:
        raise ImportFormatError(
            "Not a CSV file: its first line is not CSV text (it has a carriage return "
            "outside quotes or an overlong field, as binary files do)."
        ) from None
    columns = columns_for(header)
    if not columns:
        raise ImportFormatError(
            "The CSV file has no header row naming its columns (expected e.g. 'First Name', "
            "'Last Name', 'E-mail 1 - Value' as Google Contacts and Outlook export them)."
        )
    return columns


def _records(
    reader: Any,
    columns: list[Column],
    *,
    max_records: int,
    default_region: str,
    guess: str | None,
) -> Iterator[ImportRecord]:
    """One record per data row after the header (empty rows skipped); see ``read_csv``.
    ``guess`` is the warning of every row with non-ASCII text when the encoding is a guess."""
    count = 0
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            count += 1
            record = ImportRecord(position=start, line=start)
            record.errors.append(problem(CARD, f"The row could not be read: {exc}."))
            start = reader.line_num + 1
            yield record
            continue
        position, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        count += 1
        if count > max_records:
            raise ImportTooLarge("max_records", max_records)
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
