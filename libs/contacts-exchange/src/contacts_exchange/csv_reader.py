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

from contacts_exchange.byte_source import read_lines
from contacts_exchange.csv_dialects import Column, columns_for, row_fields
from contacts_exchange.csv_formulas import unescape_formula
from contacts_exchange.errors import ImportFormatError, ImportTooLarge
from contacts_exchange.records import CARD, ImportRecord, problem, validate_record

DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_RECORDS: Final = 10_000
_DELIMITERS: Final = (",", ";", "\t")
_FALLBACK_ENCODING: Final = "windows-1252"


def read_csv(
    stream: BinaryIO,
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    default_region: str = "US",
) -> Iterator[ImportRecord]:
    """Yield one ``ImportRecord`` per data row of ``stream`` (a binary file object).

    Encoding: UTF-16 with a BOM, else UTF-8 (a BOM is dropped), line by line falling back to
    windows-1252 for a line that is not UTF-8. ``position`` and ``line`` are the 1-based line
    number where the row starts (the header is line 1; a quoted field may span lines).
    Rows with no value at all are skipped. Phone numbers without ``+`` are read for
    ``default_region``.

    Raises ``ImportFormatError`` when the first row is not a recognizable header;
    ``ImportTooLarge`` past ``max_bytes`` bytes or ``max_records`` data rows.
    """
    lines = _text_lines(read_lines(stream, max_bytes=max_bytes))
    first = next(lines, None)
    if first is None:
        return
    delimiter = max(_DELIMITERS, key=lambda d: _count_outside_quotes(first, d))
    reader = csv.reader(itertools.chain((first,), lines), delimiter=delimiter, strict=False)
    columns = _header_columns(reader)
    yield from _records(reader, columns, max_records=max_records, default_region=default_region)


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
    reader: Any, columns: list[Column], *, max_records: int, default_region: str
) -> Iterator[ImportRecord]:
    """One record per data row after the header (empty rows skipped); see ``read_csv``."""
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
        yield _record(columns, row, position, default_region)


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


def _text_lines(lines: Iterator[bytes]) -> Iterator[str]:
    for line in lines:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode(_FALLBACK_ENCODING, errors="replace")
        yield text + "\n"


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
