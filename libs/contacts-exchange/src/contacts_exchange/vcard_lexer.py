"""Splitting a vCard byte stream into cards of unfolded content lines (still bytes).

Works on bytes so that folds and quoted-printable soft breaks that split a multi-byte UTF-8
sequence (seen in Android and Evolution exports) are joined before anything is decoded.

Rules, with the deviations from the specifications that real files need:

- Unfolding (RFC 6350 §3.2, RFC 2426 §5.8.1, vCard 2.1 §2.1.3): a line that starts with a
  space or a tab continues the previous line, without that one character.
- Quoted-printable soft breaks (RFC 2045 §6.7, vCard 2.1 §2.1.3): a line of a property whose
  encoding is QUOTED-PRINTABLE that ends in ``=`` continues on the next line, whatever that
  line starts with (``#`` included). A blank line right after the ``=`` is skipped when the
  line after it is not a property (some writers put one after every soft break); otherwise
  the value ends there and the dangling ``=`` is dropped.
- Lines starting with ``#`` outside a value and blank lines are ignored.
- ``BEGIN:VCARD`` inside a card starts a nested card (vCard 2.1 AGENT style): each nested card
  is a card of its own, numbered in the order its BEGIN appears.
- A file that starts with content lines without ``BEGIN:VCARD`` gets an implicit BEGIN; a card
  still open at the end of the file is closed there. Both are reported as warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from contacts_exchange.errors import ImportFormatError, ImportTooLarge

_BEGIN: Final = re.compile(rb"^\s*BEGIN\s*:\s*VCARD\s*$", re.IGNORECASE)
_END: Final = re.compile(rb"^\s*END\s*:\s*VCARD\s*$", re.IGNORECASE)
#: The start of a content line: an optional group, a name (RFC 6350 §3.3, plus ``/`` and ``_``
#: seen in KAddressBook files), then ``;`` or ``:``, or the end of the line (``FN`` alone).
_PROPERTY: Final = re.compile(rb"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_/-]+)?[A-Za-z0-9_/-]*\s*([;:]|$)")
_KNOWN_START: Final = re.compile(
    rb"^(VERSION|N|FN|TEL|EMAIL|ADR|ORG|UID|NOTE|TITLE|BDAY|PRODID)\s*[;:]", re.IGNORECASE
)
_QP: Final = re.compile(rb"QUOTED-PRINTABLE", re.IGNORECASE)
#: The first bytes a line ``_BEGIN`` or ``_END`` matches can start with (``\s`` of bytes is
#: these six): any other line is neither, known without running the regex.
_SPACES: Final = frozenset(b" \t\n\r\f\v")
_BEGIN_FIRST: Final = frozenset(b"Bb") | _SPACES
_END_FIRST: Final = frozenset(b"Ee") | _SPACES


@dataclass(slots=True)
class RawCard:
    """One card: its 1-based number and start line, and its unfolded content lines."""

    number: int
    line: int
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _head(line: bytes) -> bytes:
    """The part of a content line before the first ``:`` outside double quotes."""
    colon = line.find(b":")
    if colon < 0:
        return line
    if line.find(b'"', 0, colon) < 0:  # no quote before it: the common case, at C speed
        return line[:colon]
    quoted = False
    for i, byte in enumerate(line):
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x3A and not quoted:
            return line[:i]
    return line


def is_qp(line: bytes) -> bool:
    """True when the content line's parameters say QUOTED-PRINTABLE."""
    return bool(_QP.search(_head(line)))


class _Lines:
    """Physical lines with their 1-based numbers and one line of look-ahead."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        self._number = 0
        self._back: list[tuple[int, bytes]] = []

    def next(self) -> tuple[int, bytes] | None:
        if self._back:
            return self._back.pop()
        line = next(self._lines, None)
        if line is None:
            return None
        self._number += 1
        return self._number, line

    def push_back(self, item: tuple[int, bytes]) -> None:
        self._back.append(item)


def logical_lines(physical: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first line number, unfolded line)``; blank and ``#`` lines are left out."""
    lines = _Lines(physical)
    current: tuple[int, bytes] | None = None
    while (item := lines.next()) is not None:
        number, line = item
        # endswith first: it is cheaper than is_qp and seldom true.
        if current is not None and current[1].endswith(b"=") and is_qp(current[1]):
            if line.strip() == b"":
                after = lines.next()
                if after is not None and not (_PROPERTY.match(after[1]) or _END.match(after[1])):
                    current = (current[0], current[1][:-1] + after[1])
                    continue
                current = (current[0], current[1][:-1])
                if after is not None:
                    lines.push_back(after)
                continue
            current = (current[0], current[1][:-1] + line)
            continue
        if line[:1] in (b" ", b"\t") and current is not None:
            current = (current[0], current[1] + line[1:])
            continue
        if current is not None:
            yield current
            current = None
        if line.strip() == b"" or line.startswith(b"#"):
            continue
        current = (number, line)
    if current is not None:
        yield current


def split_cards(physical: Iterator[bytes], *, max_records: int) -> Iterator[RawCard]:
    """Yield the cards of a vCard stream in the order their END (or the file's end) closes them.

    Raises ``ImportFormatError`` when the first content line is neither ``BEGIN:VCARD`` nor a
    vCard property, and ``ImportTooLarge`` when card ``max_records + 1`` begins.
    """
    open_cards: list[RawCard] = []
    count = 0
    seen_content = False
    for number, line in logical_lines(physical):
        first = line[0]  # a logical line is never empty
        if first in _BEGIN_FIRST and _BEGIN.match(line):
            seen_content = True
            count += 1
            if count > max_records:
                raise ImportTooLarge("max_records", max_records)
            card = RawCard(count, number)
            if open_cards:
                card.warnings.append(f"Card nested inside card {open_cards[-1].number}.")
            open_cards.append(card)
            continue
        if first in _END_FIRST and _END.match(line):
            if open_cards:
                yield open_cards.pop()
            continue
        if not open_cards:
            if not _KNOWN_START.match(line):
                if seen_content:
                    continue  # stray text between cards
                # The line itself is not quoted: it may hold personal data (a CSV header
                # row is harmless, its next rows are not), and the message is sent back.
                raise ImportFormatError(
                    f"Not a vCard file: line {number} is neither BEGIN:VCARD nor a vCard "
                    "property such as VERSION or FN (a vCard file starts with BEGIN:VCARD)."
                )
            seen_content = True
            count += 1
            if count > max_records:
                raise ImportTooLarge("max_records", max_records)
            card = RawCard(count, number)
            card.warnings.append("The card has no BEGIN:VCARD line; one was assumed.")
            open_cards.append(card)
        open_cards[-1].lines.append((number, line))
    while open_cards:
        card = open_cards.pop()
        card.warnings.append("The file ends before the card's END:VCARD line.")
        yield card
